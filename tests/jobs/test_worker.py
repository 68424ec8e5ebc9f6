"""The job queue for real (SPEC T12): ``gatherly worker`` in its own process consumes
queued syncs from Huey on SQLite, and on Redis; the schedule decides when a refresh is due."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.event.models import MarketingEvent
from gatherly.jobs.queue import Jobs
from gatherly.org import directory
from gatherly.teams import jobs as teams_jobs
from gatherly.teams import service as teams
from gatherly.teams.models import SyncRun
from gatherly.teams.sync import create_run
from tests.teams.conftest import Connected
from tests.workers import worker_process

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(REDIS) == 0


def _wait_for_run(connected: Connected, run_id: int, proc: subprocess.Popen[str]) -> SyncRun:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with connected.session_factory() as db:
            run = db.get(SyncRun, run_id)
            assert run is not None
            if run.status != "running":
                db.expunge(run)
                return run
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "worker died"
        time.sleep(0.2)
    raise AssertionError("the worker did not finish the run in time")


def _queued_sync_through_worker(connected: Connected, settings: Settings) -> None:
    connected.sync()  # discovery
    graph_id = connected.tick("Autumn Product Launch")
    jobs = Jobs(settings)
    jobs.huey.flush()
    with connected.session_factory() as db, db.begin():
        run_id = create_run(db, kind="webinar", webinar_graph_id=graph_id).id
    jobs.enqueue_sync(run_id=run_id, webinar_graph_id=graph_id)
    assert jobs.pending() == 1
    with worker_process(settings) as proc:
        run = _wait_for_run(connected, run_id, proc)
        # The sync's commits woke the segment refresh, whose changes wake the journeys in
        # turn: the worker takes them next. Wait for the queue to stay empty for a while
        # rather than catch it between a job taken and the job it queues.
        deadline, quiet_since = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            if jobs.pending():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 2:
                break
            time.sleep(0.1)
    assert run.status == "succeeded", run.errors
    assert run.changes["events_created"] == 1
    assert run.progress_done == 1
    assert jobs.pending() == 0, [t.name for t in jobs.huey.pending()]
    with connected.session_factory() as db:
        names = db.scalars(select(MarketingEvent.name)).all()
        assert names == ["Autumn Product Launch"]


def test_t12_worker_runs_queued_sync_from_the_sqlite_queue(
    connected: Connected, tmp_path: Path
) -> None:
    settings = connected.settings.model_copy(update={"queue_path": str(tmp_path / "queue.db")})
    _queued_sync_through_worker(connected, settings)


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
@pytest.mark.sqlite_only  # the queue's backend is what differs here, not the database's
def test_t12_worker_runs_queued_sync_from_redis(connected: Connected, tmp_path: Path) -> None:
    settings = connected.settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:6379/15",
            # Test processes running side by side each get their own queue on the server.
            "queue_name": f"gatherly-test-{os.getpid()}",
            "queue_path": str(tmp_path / "unused.db"),
        }
    )
    _queued_sync_through_worker(connected, settings)
    assert not (tmp_path / "unused.db").exists()


def test_t12_schedule_is_due_by_interval_switch_and_running_runs(connected: Connected) -> None:
    now = utcnow()
    with connected.session_factory() as db, db.begin():
        assert teams_jobs.due(db, now=now)  # connected, never synced
        run = create_run(db, kind="scheduled", now=lambda: now)
        assert not teams_jobs.due(db, now=now)  # one is running
        run.status = "succeeded"
        assert not teams_jobs.due(db, now=now + timedelta(minutes=14))
        assert teams_jobs.due(db, now=now + timedelta(minutes=15))  # default interval
        teams.update_settings(db=db, sync_interval_minutes=60)
        assert not teams_jobs.due(db, now=now + timedelta(minutes=59))
        teams.update_settings(db=db, sync_enabled=False)
        assert not teams_jobs.due(db, now=now + timedelta(days=1))
        teams.update_settings(db=db, sync_enabled=True)
        # A run whose process died (no heartbeat for 10 minutes) does not block the schedule.
        stale = create_run(db, kind="webinar", now=lambda: now + timedelta(hours=1))
        assert stale.status == "running"
        assert teams_jobs.due(db, now=now + timedelta(hours=1, minutes=11))


def test_t12_scheduled_task_syncs_ticked_webinars_and_picks_up_new_ones(
    connected: Connected, tmp_path: Path
) -> None:
    jobs = Jobs(connected.settings.model_copy(update={"queue_path": str(tmp_path / "q.db")}))
    with connected.session_factory() as db, db.begin():
        admin = (
            directory.load_principal(db, connected.admin_id)
            if hasattr(teams, "load_principal")
            else None
        )
        del admin
    jobs._factory = connected.session_factory
    jobs.teams_schedule.call_local()  # first run: discovers, nothing ticked yet
    with connected.session_factory() as db:
        first = db.scalars(select(SyncRun)).one()
        assert (first.kind, first.status) == ("scheduled", "succeeded")
        assert first.changes["webinars_discovered"] == 8
    jobs.teams_schedule.call_local()  # not due again yet: no new run
    with connected.session_factory() as db:
        assert len(db.scalars(select(SyncRun)).all()) == 1


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_a_periodic_task_runs_once_a_minute_however_many_workers_queue_it(
    tmp_path: Path,
) -> None:
    # Every consumer's scheduler queues each periodic task each minute; the copies the
    # other workers run find the minute claimed and do nothing.
    settings = Settings(
        redis_url="redis://127.0.0.1:6379/15",
        queue_name=f"gatherly-test-periodic-{os.getpid()}-{time.monotonic_ns()}",
        queue_path=str(tmp_path / "unused.db"),
    )
    ran: list[str] = []
    workers = [Jobs(settings) for _ in range(3)]
    copies = [
        jobs._every_minute("test.tick")(lambda name=f"worker {i}": ran.append(name))
        for i, jobs in enumerate(workers)
    ]
    try:
        for copy in copies:
            copy.call_local()
        assert ran == ["worker 0"]
        # On the SQLite queue (one consumer, one scheduler) nothing is claimed.
        alone = Jobs(Settings(queue_path=str(tmp_path / "queue.db")))
        tick = alone._every_minute("test.tick")(lambda: ran.append("alone"))
        tick.call_local()
        tick.call_local()
        assert ran == ["worker 0", "alone", "alone"]
    finally:
        workers[0].huey.storage.flush_all()
