"""The database ends a request's connection mid-request (a restart): the answer is a 503
that says to send the request again, never a 500, and the next request succeeds."""

from __future__ import annotations

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


def test_a_connection_lost_mid_request_answers_503(
    org: Org, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite database is a file: no connection to lose")
    app = create_app(Settings(database_url=database_url, queue_path=str(tmp_path / "q.db")))
    admin = make_engine(database_url)

    @app.get("/api/v1/test-lost")  # an API path: errors answer JSON
    def lost(db: DbSession) -> int:
        pid = db.scalar(text("SELECT pg_backend_pid()"))
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return int(db.scalar(text("SELECT count(*) FROM contact")) or 0)

    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.get("/api/v1/test-lost")
            error = assert_error(answer, 503)
            assert error["code"] == "unavailable"
            assert "send the request again" in error["message"]
            assert answer.headers["retry-after"] == "1"
            following = client.get("/api/v1/me", headers=org.headers["marketer"])
            assert following.status_code == 200, following.text
    finally:
        admin.dispose()
