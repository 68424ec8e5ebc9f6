"""A PostgreSQL server that never answers fails a new connection in bounded time (libpq
would otherwise wait for ever), unless the URL sets its own limit (core/db.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from gatherly.core import db as core_db
from gatherly.core.db import make_engine


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port where the kernel completes connections but no server ever speaks."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


def _seconds_to_fail(url: str) -> float:
    engine = make_engine(url)
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError):
            engine.connect()
        return time.monotonic() - started
    finally:
        engine.dispose()


def test_a_silent_server_fails_the_connection_in_time(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_db, "CONNECT_TIMEOUT", 2)  # libpq's least
    url = f"postgresql+psycopg://gatherly@127.0.0.1:{silent_port}/gatherly"
    assert 1.5 < _seconds_to_fail(url) < 6


def test_the_urls_own_connect_timeout_wins(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_db, "CONNECT_TIMEOUT", 3600)
    url = f"postgresql+psycopg://gatherly@127.0.0.1:{silent_port}/gatherly?connect_timeout=2"
    assert 1.5 < _seconds_to_fail(url) < 6
