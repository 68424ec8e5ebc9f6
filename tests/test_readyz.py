"""``GET /readyz`` (issue 20): 200 when the database answers, its schema is the code's and
the job queue opens; otherwise 503 naming what is not ready, in words, with nothing secret
and never after a long wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gatherly.app import create_app
from gatherly.core import crypto, health, migrate
from gatherly.core.config import Settings
from gatherly.core.db import make_engine
from tests.routing import api_route_pairs

UPGRADE = "run `gatherly db upgrade`"
Get = Callable[[str, Path], tuple[int, dict[str, Any], str]]


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    """One app for the module, pointed at each test's database and queue (an app's first
    request costs half a second: it builds every route's handler)."""
    app = create_app(Settings(database_url="sqlite://"))
    yield app
    app.state.engine.dispose()


@pytest.fixture
def readyz(app: FastAPI) -> Iterator[Get]:
    """``GET /readyz`` on the app with this database and queue file: status, body, text."""

    def get(database_url: str, queue_path: Path) -> tuple[int, dict[str, Any], str]:
        app.state.engine.dispose()
        app.state.engine = make_engine(database_url)
        app.state.settings = crypto.resolve(
            Settings(database_url=database_url, queue_path=str(queue_path))
        )
        app.state.jobs = None  # opened on first use, on this queue file
        with TestClient(app) as client:
            response = client.get("/readyz")
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        return response.status_code, response.json(), response.text

    yield get
    app.state.engine.dispose()


def _heads() -> tuple[str, str]:
    """The code's head revision and the one before it."""
    scripts = migrate._scripts()
    head = scripts.get_current_head()
    assert head is not None
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str)
    return head, previous


def test_ready_when_the_database_is_migrated_and_the_queue_opens(
    readyz: Get, database_url: str, tmp_path: Path
) -> None:
    status, body, _ = readyz(database_url, tmp_path / "queue.db")
    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "queue": "ok"},
    }


def test_readyz_is_not_in_the_api_document(app: FastAPI) -> None:
    paths = {path: route for route, path in api_route_pairs(app)}
    assert paths["/readyz"].include_in_schema is False


def test_a_database_one_revision_behind_is_not_ready_until_upgraded(
    readyz: Get, tmp_path: Path
) -> None:
    head, previous = _heads()
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, revision=previous)

    status, body, _ = readyz(url, tmp_path / "queue.db")
    assert status == 503
    assert body == {
        "status": "not ready",
        "checks": {
            "database": "ok",
            "migrations": f"behind: the database is at {previous}, the code needs {head}; "
            f"{UPGRADE}",
            "queue": "ok",
        },
    }

    migrate.upgrade(engine)
    engine.dispose()
    assert readyz(url, tmp_path / "queue.db")[0] == 200


def test_an_empty_database_or_an_unknown_revision_is_not_ready(readyz: Get, tmp_path: Path) -> None:
    head, _ = _heads()
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    status, body, _ = readyz(url, tmp_path / "queue.db")
    assert status == 503
    assert body["checks"]["migrations"] == (
        f"no schema: the database has no revision, the code needs {head}; {UPGRADE}"
    )

    # A newer release migrated it further than this code knows.
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    status, body, _ = readyz(url, tmp_path / "queue.db")
    assert status == 503
    assert body["checks"] == {
        "database": "ok",
        "migrations": "unknown revision: the database is at 9999, which this code does not "
        f"know (a newer release migrated it); the code needs {head}",
        "queue": "ok",
    }


def test_an_unreachable_database_is_named_quickly_without_its_password(
    readyz: Get, tmp_path: Path
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+psycopg://gatherly:pa55-w0rd-s3cret@127.0.0.1:1/gatherly"
    started = time.monotonic()
    status, body, raw = readyz(url, tmp_path / "queue.db")
    assert time.monotonic() - started < health.TIMEOUT_SECONDS
    assert status == 503
    assert body == {
        "status": "not ready",
        "checks": {
            "database": "unreachable: the database did not answer (OperationalError); "
            "the server's log has the details",
            "migrations": "not checked: the database is unreachable",
            "queue": "ok",
        },
    }
    assert "pa55-w0rd-s3cret" not in raw
    assert "127.0.0.1" not in raw
    assert "Traceback" not in raw

    # SQLite: a "database file" that is a directory cannot be opened.
    status, body, _ = readyz(f"sqlite:///{tmp_path}", tmp_path / "queue.db")
    assert status == 503
    assert body["checks"]["database"].startswith("unreachable: the database did not answer")


def test_a_queue_that_cannot_be_opened_is_named(
    readyz: Get, database_url: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, body, raw = readyz(database_url, blocker / "var" / "queue.db")
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    assert body["checks"]["queue"].startswith("unreachable: the job queue could not be opened (")
    assert str(blocker) not in raw


def test_a_check_that_hangs_fails_within_the_timeout(database_url: str) -> None:
    engine = make_engine(database_url)
    release = threading.Event()

    class Stuck:
        def pending(self) -> int:
            release.wait(10)
            return 0

    migrate._scripts()  # read once per process: not part of what is timed here
    started = time.monotonic()
    try:
        result = health.readiness(engine=engine, jobs=Stuck, timeout=0.5)
    finally:
        release.set()
        engine.dispose()
    assert time.monotonic() - started < 1.5
    assert not result.ready
    assert result.checks == {
        "database": "ok",
        "migrations": "ok",
        "queue": "unreachable: no answer within 0.5 s",
    }
