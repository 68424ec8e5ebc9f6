"""Engine and session factories, the declarative base and its naming convention."""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    exc,
    func,
    or_,
)
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """Values are ``datetime`` (TypeDecorator would otherwise say ``object``)."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class AuditedMixin:
    """When a record was created and last changed, and by which user (ids, not keys)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    modified_by_id: Mapped[int | None] = mapped_column(Integer)


def isoformat(value: datetime) -> str:
    """An instant as the API writes it: ISO 8601 with its zone, UTC as ``Z``
    (``2026-10-20T10:00:00Z``); a naive value is taken as UTC."""
    text = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


LIKE_ESCAPE = "/"


def icontains(text: str, *columns: Any) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text`` (trimmed), ignoring case; ``%`` and ``_`` typed by
    a person are literal and a NULL column contains nothing. The search of every list."""
    needle = text.strip().lower()
    return or_(*(func.lower(column).contains(needle, autoescape=True) for column in columns))


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``LIKE_ESCAPE``) matching values that contain
    ``text``, its ``%`` and ``_`` taken literally — for a pattern sent as a parameter."""
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return f"%{text}%"


def folded(db: Session, column: Any) -> ColumnElement[str]:
    """``lower(column)`` folding every letter on SQLite too, whose own ``lower()`` folds ASCII
    only (``unicode_lower`` is registered on each connection below)."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    return func.unicode_lower(column) if sqlite else func.lower(column)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # lower() for every letter, not only ASCII (segment criteria on non-ASCII names).
    dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(database_url: str, *, connections: int | None = None, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a parent directory. With
    ``connections``, its pool keeps that many and opens no more (an in-memory SQLite
    database has one per thread whatever it is told)."""
    url = make_url(database_url)
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if connections is not None and not in_memory:
        kwargs.update(pool_size=connections, max_overflow=0)
    if url.get_backend_name() == "sqlite":
        if not in_memory:
            assert url.database is not None
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in url.query:
        # libpq waits for ever by default: a server that stopped answering would hold a
        # request (a quick read, its whole API process) until TCP gave up.
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT,
            **kwargs.get("connect_args", {}),
        }
    engine = create_engine(url, **kwargs)
    _check_on_checkout(engine)
    return engine


CONNECT_TIMEOUT = 10  # seconds to open a PostgreSQL connection, unless the URL says otherwise
PING_AFTER = 10.0  # seconds a pooled connection may rest before it is pinged again


def _check_on_checkout(engine: Engine) -> None:
    """Make sure a pooled connection still works before it is handed out — as SQLAlchemy's
    ``pool_pre_ping`` does, but without its round trip for a connection given back less
    than ``PING_AFTER`` seconds ago whose socket has nothing to read. A server that ended
    the connection (a restart, ``pg_terminate_backend``, an idle timeout) has written its
    farewell or closed the socket, which makes it readable; such a connection, and any that
    rested longer, is pinged, and one that fails is replaced (the pool tries again)."""

    def checked_in(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    def checkout(dbapi: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        rested = time.monotonic() - record.info.get("checked_in", float("-inf"))
        if rested < PING_AFTER and not _readable(dbapi):
            return
        try:
            alive = engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("the database did not answer a ping")

    event.listen(engine, "connect", checked_in)  # a new connection needs no ping
    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checkout)


def _readable(dbapi: Any) -> bool:
    """Whether an idle connection's socket has something to read (or is closed): nothing
    should arrive unasked, so it means the server has ended it. True when unknown."""
    try:
        fd = dbapi.fileno()
    except Exception:  # closed, or no socket: ping to find out
        return True
    poller = select.poll()  # not select.select: it refuses descriptors above 1023
    poller.register(fd, select.POLLIN)  # hang-ups and errors are reported too
    return bool(poller.poll(0))


_AFTER_COMMIT = "gatherly.after_commit"


def after_commit(db: Session, fn: Callable[[], object]) -> None:
    """Call ``fn`` once the session's transaction commits, never if it rolls back: for what
    must count only what was stored (a metric of reports a webhook received)."""
    db.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop(_AFTER_COMMIT, ()):
        fn()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory that keeps objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A committed-on-success session on its own engine, disposed after (CLI commands)."""
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as db:
            yield db
    finally:
        engine.dispose()
