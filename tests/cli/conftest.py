"""Fixtures for the CLI suite: each test gets its own SQLite file under ``tmp_path``."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gatherly.core.db import make_engine
from tests.cli.helpers import CliRun, SeededDemo, make_cli, parse_demo, sqlite_url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file (not yet migrated)."""
    return sqlite_url(tmp_path / "gatherly.db")


@pytest.fixture(scope="session")
def upgraded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file ``gatherly db upgrade`` prepared once per process (the migrations run
    once; tests get a copy)."""
    path = tmp_path_factory.mktemp("template") / "gatherly.db"
    make_cli(sqlite_url(path))("db", "upgrade")
    with closing(sqlite3.connect(path)) as conn:  # everything in the main file, to be copied
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def cli(db_url: str, upgraded_template: Path, tmp_path: Path) -> CliRun:
    """In-process ``gatherly`` on a copy of a database ``gatherly db upgrade`` prepared."""
    shutil.copyfile(upgraded_template, tmp_path / "gatherly.db")
    return make_cli(db_url)


@pytest.fixture
def open_db(db_url: str) -> Iterator[Callable[[], Session]]:
    """Open sessions on the test's database (to check what the CLI wrote)."""
    engine = make_engine(db_url)
    sessions: list[Session] = []

    def open_session() -> Session:
        s = Session(engine, expire_on_commit=False)
        sessions.append(s)
        return s

    yield open_session
    for s in sessions:
        s.close()
    engine.dispose()


@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory: pytest.TempPathFactory) -> SeededDemo:
    """One ``gatherly demo --no-serve`` run shared by read-only tests (never re-run on it)."""
    url = sqlite_url(tmp_path_factory.mktemp("demo") / "gatherly.db")
    result = make_cli(url)("demo", "--no-serve")
    return SeededDemo(database_url=url, output=parse_demo(result.stdout))
