"""T12 for real: ``gatherly teams sync`` killed with SIGKILL part-way, then run again, ends
in the same state as an uninterrupted sync (the database rolls back the webinar in flight)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from gatherly.event.models import (
    MarketingEvent,
)
from gatherly.teams.models import SyncRun
from tests.teams.conftest import Connected
from tests.teams.oracle import snapshot, wipe_synced


def test_t12_a_sync_process_killed_with_sigkill_converges_on_rerun(connected: Connected) -> None:
    connected.full_sync()
    reference = snapshot(connected.session_factory)
    wipe_synced(connected.session_factory)
    with connected.session_factory() as db:
        last_run = db.scalar(select(func.max(SyncRun.id)))
    env = {
        **os.environ,
        "GATHERLY_DATABASE_URL": connected.settings.database_url,
        # Slow enough to be caught part-way: about 80 requests at 30 a second.
        "GATHERLY_GRAPH_RATE_PER_SECOND": "30",
        "GATHERLY_GRAPH_CONCURRENCY": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gatherly.cli import main; main()", "teams", "sync"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        done = 0
        while done < 3:
            assert proc.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline
            with connected.session_factory() as db:
                run = db.scalars(select(SyncRun).where(SyncRun.id > (last_run or 0))).first()
                done = run.progress_done if run else 0
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with connected.session_factory() as db:
        events = db.scalar(select(func.count()).select_from(MarketingEvent))
        assert 0 < (events or 0) < 8
    assert connected.sync().status == "succeeded"
    assert snapshot(connected.session_factory) == reference
