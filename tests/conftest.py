"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when
``GATHERLY_TEST_POSTGRES_URL`` is set), a clean organisation per test, and API clients."""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from gatherly.app import create_app
from gatherly.core import crypto, logs, migrate
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.org import defaults
from gatherly.org import service as org_service
from tests.dbstate import Snapshot

# Argon2 at its production cost takes ~0.15 s a hash; tests set and check hundreds of
# passwords. The same algorithm with a small cost keeps them fast (a hash carries its own
# parameters, so verification is unchanged); the product keeps argon2-cffi's defaults.
org_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# Every Settings the suite builds, and every gatherly process it starts, uses this key: no
# test falls back to generating ./var/secret.key. Tests of the key file unset it and name
# their own file; one that forgets fails on this path, which cannot be created.
os.environ["GATHERLY_SECRET_KEY"] = "gatherly-test-suite-secret-key-0123456789abcdef"
os.environ["GATHERLY_SECRET_KEY_FILE"] = f"{os.devnull}/tests-name-their-own-key-file"

# `make test-authz-long`: the long authorization run, 10,000 random organisations checked
# against the oracle (docs/access.md, "How it is tested"); the suite's own runs keep each
# property's small default.
hypothesis_settings.register_profile("long", max_examples=10_000, deadline=None)


def examples(default: int) -> int:
    """Examples for a property: ``default``, or the loaded profile's under ``long``."""
    if hypothesis_settings.get_current_profile_name() == "long":
        return hypothesis_settings.default.max_examples
    return default


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("GATHERLY_TEST_POSTGRES_URL") else [])
# The interfaces' own suites (web pages, the CLI) run on SQLite; on PostgreSQL too only with
# GATHERLY_TEST_INTERFACES_POSTGRES=1 (docs/decisions.md: "Interface tests on SQLite").
INTERFACES_ON_POSTGRES = os.environ.get("GATHERLY_TEST_INTERFACES_POSTGRES") == "1"
INTERFACE_SUITES = ("tests/web/", "tests/cli/")
# The web's own session store (web/auth.py) holds SQL: its tests run on both.
ON_BOTH_ANYWAY = ("tests/web/test_signin.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Pages and commands call the same service functions the API and service suites run
    on both databases, and hold no SQL of their own (tests/test_layers.py checks; the web's
    session store is the exception, and its tests run on both):
    running them a second time on PostgreSQL tests no new SQL and cost a fifth of the
    suite's time. They run on SQLite unless asked for; so do tests marked ``sqlite_only``."""

    def sqlite_only(item: pytest.Function) -> bool:
        if item.get_closest_marker("sqlite_only") is not None:
            return True
        where = str(item.path.relative_to(config.rootpath))
        interface = where.startswith(INTERFACE_SUITES) and not where.startswith(ON_BOTH_ANYWAY)
        return interface and not INTERFACES_ON_POSTGRES

    skipped = [
        item
        for item in items
        if isinstance(item, pytest.Function)
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "postgresql"
        and sqlite_only(item)
    ]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]


# GATHERLY_TEST_CPU_REPORT=DIR: each test process appends, per test, its wall time and the
# CPU time it spent itself and in children it reaped (not Chromium's, the PostgreSQL
# server's or the Graph emulator threads' of other tests) — to find where the suite's CPU
# goes, since on two cores the slowest tests by wall time are not the costliest.
_CPU_REPORT = os.environ.get("GATHERLY_TEST_CPU_REPORT")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    if not _CPU_REPORT:
        return (yield)
    started = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        return (yield)
    finally:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (after.ru_utime + after.ru_stime) - (started[2].ru_utime + started[2].ru_stime)
        line = (
            f"{time.perf_counter() - started[0]:.3f}\t{time.process_time() - started[1]:.3f}"
            f"\t{children:.3f}\t{item.nodeid}\n"
        )
        with open(Path(_CPU_REPORT) / f"cpu-{os.getpid()}.tsv", "a") as out:
            out.write(line)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger, uvicorn's, Huey's and structlog back as they were after each
    test: a command run in-process (``serve``, ``worker``) configures logging for the
    whole process, and its handler would write the next tests' lines into their output."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    named = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).propagate,
            logging.getLogger(n).level,
        )
        for n in (*logs.SERVER_LOGGERS, "huey")
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)
    for name, (own, propagate, own_level) in named.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = own
        logger.propagate = propagate
        logger.setLevel(own_level)


def _postgres_url(schema: str) -> str:
    base = os.environ["GATHERLY_TEST_POSTGRES_URL"]
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(name: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for this process; yields its URL, drops it after."""
    schema = f"{name}_{os.getpid()}"
    admin = make_engine(os.environ["GATHERLY_TEST_POSTGRES_URL"])
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _postgres_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated database for the whole session, one per backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "gatherly.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    with postgres_schema("gatherly_test") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The session's engine on the migrated database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


_DEFAULTS: dict[str, Snapshot] = {}


def reset_database(engine: Engine) -> None:
    """Empty every table and recreate the root BU and built-in roles.

    ``ensure_defaults`` runs once per database; later resets put its rows back (ids and
    sequences included), which is several times faster.
    """
    url = engine.url.render_as_string(hide_password=False)
    snapshot = _DEFAULTS.get(url)
    if snapshot is None:
        Snapshot({}).restore(engine)
        with Session(engine) as db, db.begin():
            defaults.ensure_defaults(db)
        snapshot = _DEFAULTS[url] = Snapshot.take(engine)
    snapshot.restore(engine)


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory on a clean organisation (root BU + built-in roles)."""
    reset_database(engine)
    return make_session_factory(engine)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on a clean organisation; commit explicitly when a test needs to."""
    with session_factory() as session:
        yield session


_APPS: dict[str, FastAPI] = {}


def shared_app(settings: Settings) -> FastAPI:
    """The app for one test, with this test's settings (and so its queue file): one app per
    database and process. FastAPI builds every route's handler on an app's first request
    (about 0.2 s for the ~200 routes), which a new app per test paid over again."""
    settings = crypto.resolve(settings)
    app = _APPS.get(settings.database_url)
    if app is None:
        app = _APPS[settings.database_url] = create_app(settings)
    app.state.settings = settings
    app.state.jobs = None  # opened on first use, on this test's queue file
    return app


@pytest.fixture
def client(
    database_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[TestClient]:
    """An API client on the same clean database (requests carry no token by default)."""
    settings = Settings(database_url=database_url, queue_path=str(tmp_path / "queue.db"))
    with TestClient(shared_app(settings)) as test_client:
        yield test_client
