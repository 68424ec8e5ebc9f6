"""A pooled PostgreSQL connection is checked before it is handed out, without a round trip
when it was given back moments ago and its server has not ended it (core/db.py)."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from gatherly.core import db as core_db
from gatherly.core.db import make_engine

pytestmark = pytest.mark.skipif(
    not os.environ.get("GATHERLY_TEST_POSTGRES_URL"), reason="PostgreSQL's connections only"
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(os.environ["GATHERLY_TEST_POSTGRES_URL"], connections=1)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each ping the pool sends, with its outcome (the real ping, counted)."""
    sent: list[str] = []
    ping = engine.dialect.do_ping

    def counted(dbapi: Any) -> bool:
        try:
            alive = ping(dbapi)
        except Exception:
            sent.append("failed")
            raise
        sent.append("alive" if alive else "dead")
        return alive

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return sent


def backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def test_a_connection_back_moments_ago_is_used_without_a_ping(
    engine: Engine, pings: list[str]
) -> None:
    first = backend(engine)
    assert backend(engine) == first  # the pool's one connection, again
    assert pings == []


def test_a_connection_that_rested_is_pinged(
    engine: Engine, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend(engine)
    monkeypatch.setattr(core_db, "PING_AFTER", 0.0)
    assert backend(engine) == first
    assert pings == ["alive"]


def test_a_connection_the_server_ended_is_replaced_before_use(
    engine: Engine, pings: list[str]
) -> None:
    first = backend(engine)
    raw = engine.pool._pool.queue[0].dbapi_connection  # type: ignore[attr-defined]
    admin = make_engine(os.environ["GATHERLY_TEST_POSTGRES_URL"])
    try:
        with admin.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    deadline = time.monotonic() + 5
    while not select.select([raw.fileno()], [], [], 0.05)[0]:  # the farewell arrives
        assert time.monotonic() < deadline, "the ended connection's socket never turned readable"
    second = backend(engine)  # no error: the pool pinged, saw it dead, and connected anew
    assert second != first
    assert pings in (["failed"], ["dead"])
