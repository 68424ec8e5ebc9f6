"""Scheduled and queued Teams syncs, as the worker runs them (SPEC T12).

The queue (``gatherly.jobs.queue``) calls these plain functions; they hold the domain
rules: when a scheduled refresh is due, and how a queued *Sync now* is carried out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.teams import notifications, sync
from gatherly.teams.connection import CONNECTION_ID, ClientFactory
from gatherly.teams.models import SyncRun, TeamsConnection

SCHEDULED_KINDS = ("full", "scheduled")
NOTIFIED_SLOWDOWN = 4  # scheduled syncs this many times further apart while notifications flow


def due(db: Session, *, now: datetime, settings: Settings | None = None) -> bool:
    """Whether a scheduled full sync should start now.

    Due when Teams is connected with 'sync webinar data' on, no sync is running (a run
    whose worker died does not count: ``sync.alive``), and the last full or
    scheduled run started at least the configured interval ago (four times that while
    change notifications flow: ``notifications.healthy``).
    """
    connection = db.get(TeamsConnection, CONNECTION_ID)
    if connection is None or not connection.sync_enabled:
        return False
    if running(db, now=now):
        return False
    last = db.scalar(
        select(SyncRun.started_at)
        .where(SyncRun.kind.in_(SCHEDULED_KINDS))
        .order_by(SyncRun.started_at.desc())
        .limit(1)
    )
    interval = timedelta(minutes=connection.sync_interval_minutes)
    if notifications.healthy(db, now=now, settings=settings or Settings()):
        interval *= NOTIFIED_SLOWDOWN  # changes arrive as they happen: polling is the net
    return last is None or now - last >= interval


def sweep(session_factory: sessionmaker[Session], *, now: datetime) -> list[int]:
    """Mark the runs whose worker died interrupted (every minute, from the schedule)."""
    with session_factory() as db, db.begin():
        return sync.sweep(db, now=now)


def running(db: Session, *, now: datetime) -> bool:
    """Whether a sync is running (one whose worker died is not: ``sync.alive``)."""
    return db.scalar(select(SyncRun.id).where(sync.alive(now))) is not None


def run_scheduled_if_due(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: Callable[[], datetime] = utcnow,
    make_client: ClientFactory | None = None,
) -> sync.RunReport | None:
    """Refresh ticked webinars and pick up new ones, when the schedule says so."""
    with session_factory() as db:
        if not due(db, now=now(), settings=settings):
            return None
    return sync.run_sync(session_factory, settings, kind="scheduled", make_client=make_client)


def run_queued(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    run_id: int,
    webinar_graph_id: str | None = None,
    make_client: ClientFactory | None = None,
) -> sync.RunReport:
    """Carry out a run the API or CLI recorded with ``sync.create_run``."""
    return sync.run_sync(
        session_factory,
        settings,
        run_id=run_id,
        webinar_graph_id=webinar_graph_id,
        make_client=make_client,
    )
