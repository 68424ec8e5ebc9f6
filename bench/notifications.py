"""Change-notification latency benchmark (issue 19, part 2): seconds from a registration
created in Teams (the emulator) to the registration on the contact's record in Gatherly,
through Graph's notification, the public webhook, the queue and a worker's targeted sync.

The sample tenant is served over loopback with its notification delivery (batched within
100 ms, as the emulator does); Gatherly's app serves the webhook; ``gatherly worker`` runs
in its own process. One webinar is ticked and subscribed. ``--changes`` registrations
(200) are created ``--every`` seconds apart (0.2), and a watcher polls the database for
each one's registration row with its contact.

  notified   median and p95 latency over the changes        target: p95 < 5 s
  baseline   the same change found by polling alone: half the scheduled interval on
             average plus one scheduled sync, timed in this run

    python bench/notifications.py
    python bench/notifications.py --changes 50 --every 0.5
    python bench/notifications.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync import fresh_database

from gatherly.app import create_app
from gatherly.core.background import serve_in_thread
from gatherly.core.config import Settings
from gatherly.core.crypto import generate_key
from gatherly.core.db import make_session_factory
from gatherly.event.models import EventRegistration
from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
from gatherly.teams import notifications
from gatherly.teams import service as teams
from gatherly.teams.models import TeamsWebinar
from gatherly.teams.sync import run_sync

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample-tenant.json"
WEBINAR = "Holiday Campaign Masterclass"


def _worker(settings: Settings) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "GATHERLY_DATABASE_URL": settings.database_url,
        "GATHERLY_QUEUE_PATH": settings.queue_path,
        "GATHERLY_SECRET_KEY": settings.secret_key.get_secret_value()
        if settings.secret_key
        else "",
        "GATHERLY_GRAPH_RATE_PER_SECOND": str(settings.graph_rate_per_second),
    }
    env.pop("GATHERLY_REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from gatherly.cli import main; main()", "worker", "--no-schedule"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


class Watcher(threading.Thread):
    """Polls the database for the registrations awaited; records when each appeared."""

    def __init__(self, factory: Any) -> None:
        super().__init__(daemon=True)
        self.factory = factory
        self.awaited: dict[str, float] = {}  # email -> when it was created in Teams
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                waiting = [e for e in self.awaited if e not in self.seen]
            if waiting:
                with self.factory() as db:
                    found = db.scalars(
                        select(EventRegistration.email).where(
                            EventRegistration.email.in_(waiting),
                            EventRegistration.contact_id.is_not(None),
                        )
                    ).all()
                now = time.perf_counter()
                with self.lock:
                    for email in found:
                        self.seen.setdefault(email, now)
            time.sleep(0.02)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.2, help="seconds between changes")
    parser.add_argument("--rate", type=float, default=25.0, help="Graph requests per second")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="gatherly-bench-notify-"))
    data = load_fixture(SAMPLE)
    state = EmulatorState(copy.deepcopy(data), page_size=100)
    with serve_in_thread(create_emulator_app(state)) as graph_url:
        db_url, engine, owner = fresh_database(args.database_url, workdir, "notify")
        settings = Settings(
            database_url=db_url,
            queue_path=str(workdir / "queue.db"),
            secret_key=generate_key(),
            graph_rate_per_second=args.rate,
            teams_watch_days_after_end=100_000,
        )
        app_settings = settings
        factory = make_session_factory(engine)
        application = data["applications"][0]
        tenant_id = data["tenant"]["id"]
        with factory() as db, db.begin():
            teams.connect(
                db=db,
                settings=settings,
                tenant_id=tenant_id,
                client_id=application["appId"],
                client_secret=SecretStr(application["secret"]),
                authority=f"{graph_url}/{tenant_id}",
                graph_url=f"{graph_url}/v1.0",
                default_owner_id=owner,
            )
        run_sync(factory, settings)  # discovery
        webinar = next(w for w in data["webinars"] if w["displayName"] == WEBINAR)
        with factory() as db, db.begin():
            db.execute(
                update(TeamsWebinar)
                .where(TeamsWebinar.graph_id == webinar["id"])
                .values(sync_enabled=True)
            )
        started = time.perf_counter()
        scheduled = run_sync(factory, settings, kind="scheduled")
        scheduled_s = time.perf_counter() - started
        assert scheduled.status == "succeeded", scheduled.errors

        app = create_app(app_settings)
        with serve_in_thread(app) as app_url:
            with factory() as db, db.begin():
                teams.update_settings(db=db, notifications_enabled=True, public_base_url=app_url)
            managed = notifications.manage(factory, settings)
            assert managed.failed == 0, managed.errors
            print(f"emulator {graph_url}, Gatherly {app_url}: {managed.created} subscriptions")
            worker = _worker(settings)
            time.sleep(3)  # the worker's start
            watcher = Watcher(factory)
            watcher.start()
            path = f"{graph_url}/_emulator/webinars/{quote(webinar['id'], safe='')}/registrations"
            try:
                with httpx.Client(timeout=30) as control:
                    for n in range(args.changes):
                        email = f"bench{n:04d}@fabrikam.example"
                        with watcher.lock:
                            watcher.awaited[email] = time.perf_counter()
                        body = {"email": email, "firstName": "Bench", "lastName": f"{n:04d}"}
                        control.post(path, json=body).raise_for_status()
                        time.sleep(args.every)
                deadline = time.monotonic() + 60
                while len(watcher.seen) < args.changes and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                watcher.done.set()
                worker.terminate()
                worker.wait(timeout=30)
        app.state.engine.dispose()
        engine.dispose()

    latencies = sorted(watcher.seen[e] - t for e, t in watcher.awaited.items() if e in watcher.seen)
    missing = args.changes - len(latencies)
    if not latencies:
        print("no change arrived")
        return 1
    median = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    baseline = 15 * 60 / 2 + scheduled_s
    print()
    print(f"{args.changes} registrations, one every {args.every:g} s, Graph at {args.rate:g}/s:")
    print(
        f"  notified   median {median:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s"
        f"{f', {missing} never arrived' if missing else ''}   (target: p95 < 5 s)"
    )
    print(
        f"  baseline   polling alone: 450 s average wait (15-minute schedule) + one scheduled "
        f"sync {scheduled_s:.2f} s = {baseline:.0f} s"
    )
    print(f"  ratio      notified median / baseline = {median / baseline:.4f}")
    ok = p95 < 5 and not missing
    print("  target met" if ok else "  TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
