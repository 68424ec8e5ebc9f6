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
from gatherly.teams import sync
from gatherly.teams.connection import CONNECTION_ID, ClientFactory
from gatherly.teams.models import RUN_RUNNING, SyncRun, TeamsConnection

SCHEDULED_KINDS = ("full", "scheduled")


def due(db: Session, *, now: datetime) -> bool:
    """Whether a scheduled full sync should start now.

    Due when Teams is connected with 'sync webinar data' on, no sync is running (a run
    without a heartbeat for ``sync.STALE_AFTER`` counts as dead), and the last full or
    scheduled run started at least the configured interval ago.
    """
    connection = db.get(TeamsConnection, CONNECTION_ID)
    if connection is None or not connection.sync_enabled:
        return False
    alive = now - sync.STALE_AFTER
    running = db.scalar(
        select(SyncRun.id).where(SyncRun.status == RUN_RUNNING, SyncRun.heartbeat_at >= alive)
    )
    if running is not None:
        return False
    last = db.scalar(
        select(SyncRun.started_at)
        .where(SyncRun.kind.in_(SCHEDULED_KINDS))
        .order_by(SyncRun.started_at.desc())
        .limit(1)
    )
    return last is None or now - last >= timedelta(minutes=connection.sync_interval_minutes)


def run_scheduled_if_due(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: Callable[[], datetime] = utcnow,
    make_client: ClientFactory | None = None,
) -> sync.RunReport | None:
    """Refresh ticked webinars and pick up new ones, when the schedule says so."""
    with session_factory() as db:
        if not due(db, now=now()):
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
