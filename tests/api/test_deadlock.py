"""Two transactions whose locks cross, for real (PostgreSQL detects the deadlock and rolls
one back): the request that loses answers 409 — nothing it did stays, the same request
again succeeds — never a 500."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gatherly.api.deps import DbSession
from gatherly.app import create_app
from gatherly.core.config import Settings
from gatherly.core.db import make_engine
from tests.api.conftest import Org
from tests.api.helpers import assert_error


def test_a_deadlock_answers_409_and_changes_nothing(
    org: Org, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: its transactions' locks never cross")
    first, second = org.contacts["marketer"], org.contacts["manager"]
    app = create_app(Settings(database_url=database_url, queue_path=str(tmp_path / "q.db")))
    other = make_engine(database_url)
    holding = threading.Event()

    def rival() -> None:
        # Takes the second row, then waits for the first; it looks for the deadlock late,
        # so the request is the one PostgreSQL rolls back.
        with other.begin() as conn:
            conn.execute(text("SET LOCAL deadlock_timeout = '20s'"))
            conn.execute(text("SELECT id FROM contact WHERE id = :id FOR UPDATE"), {"id": second})
            holding.set()
            conn.execute(text("SELECT id FROM contact WHERE id = :id FOR UPDATE"), {"id": first})

    @app.post("/api/v1/test-crossed")  # an API path: errors answer JSON
    def crossed(db: DbSession) -> None:
        db.execute(text("UPDATE contact SET company = 'Changed' WHERE id = :id"), {"id": first})
        thread = threading.Thread(target=rival)
        thread.start()
        holding.wait(10)
        try:
            db.execute(text("SELECT id FROM contact WHERE id = :id FOR UPDATE"), {"id": second})
        finally:
            db.rollback()  # the rival's wait ends (as it would once this request's tx ends)
            thread.join(30)

    try:
        with TestClient(app) as client:
            answer = client.post("/api/v1/test-crossed")
        error = assert_error(answer, 409)
        assert error["code"] == "conflict"
        assert "send the request again" in error["message"]
        assert answer.headers["retry-after"] == "1"
        with other.connect() as conn:
            company = conn.scalar(text("SELECT company FROM contact WHERE id = :id"), {"id": first})
        assert company != "Changed"
    finally:
        other.dispose()
