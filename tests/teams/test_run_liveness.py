"""Sync runs whose worker died: a run beats from a thread of its own while it works, and
the sweep (on every worker's start, every minute, and before a new run) gives up the runs
whose worker is gone — at once on this machine, a minute after the last beat elsewhere —
and queued runs never taken after ten minutes; the others are left alone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.teams import jobs as teams_jobs
from gatherly.teams import sync
from gatherly.teams.models import RUN_INTERRUPTED, RUN_RUNNING, SyncRun


def _gone_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_the_sweep_gives_up_exactly_the_runs_whose_worker_is_gone(
    session_factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    here = sync.current_process().rpartition(":")[0]
    cases = {
        # name: (taken_at, heartbeat age, taken_by), expected status after the sweep
        "silent a minute": ((now, timedelta(minutes=2), "elsewhere:1"), RUN_INTERRUPTED),
        "beating": ((now, timedelta(seconds=10), "elsewhere:1"), RUN_RUNNING),
        "queued a while": ((None, timedelta(minutes=5), None), RUN_RUNNING),
        "queued for good": ((None, timedelta(minutes=11), None), RUN_INTERRUPTED),
        "worker killed here": (
            (now, timedelta(seconds=1), f"{here}:{_gone_pid()}"),
            RUN_INTERRUPTED,
        ),
        "this process": ((now, timedelta(seconds=1), sync.current_process()), RUN_RUNNING),
    }
    ids = {}
    with session_factory() as db, db.begin():
        runs = {name: sync.create_run(db, kind="full") for name in cases}  # (each sweeps)
        for name, ((taken_at, age, taken_by), _) in cases.items():
            run = runs[name]
            run.taken_at, run.heartbeat_at, run.taken_by = taken_at, now - age, taken_by
            ids[name] = run.id
    with session_factory() as db:
        assert teams_jobs.running(db, now=now)  # the live ones
    swept = teams_jobs.sweep(session_factory, now=now)
    with session_factory() as db:
        found = {name: db.get(SyncRun, run_id).status for name, run_id in ids.items()}  # type: ignore[union-attr]
    assert found == {name: expected for name, (_, expected) in cases.items()}
    assert sorted(swept) == sorted(ids[n] for n, (_, e) in cases.items() if e == RUN_INTERRUPTED)


def test_a_run_at_work_beats_from_its_own_thread(
    session_factory: sessionmaker[Session], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "HEARTBEAT", timedelta(seconds=0.05))
    with session_factory() as db, db.begin():
        run = sync.create_run(db, kind="full")
        run.heartbeat_at = utcnow() - timedelta(minutes=5)
        run_id = run.id
    syncer = sync.Syncer(session_factory, Settings(database_url=database_url))
    syncer.report.run_id = run_id
    stop = threading.Event()
    beating = threading.Thread(target=syncer._keep_beating, args=(stop,))
    beating.start()
    time.sleep(0.3)
    stop.set()
    beating.join(5)
    with session_factory() as db:
        beat = db.get(SyncRun, run_id).heartbeat_at  # type: ignore[union-attr]
    assert utcnow() - beat < timedelta(seconds=5)
