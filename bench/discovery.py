"""Discovery benchmark (issue 19, part 1): how many Graph requests, and how long at the
configured rate, the Teams sync spends finding organizers and webinars in a large tenant.

An emulated tenant (``graph_emulator.generate.large_tenant``): ``--users`` directory users
(50,000), ``--organizers`` of them organizing (300), ``--ungranted`` of those without the
application access policy (20; Graph silently leaves their webinars out of the tenant's
list), ``--webinars`` webinars (2,000), served over real HTTP on loopback at
``--rate`` requests per second (25). Nothing is ticked: this is discovery alone.

Measured, in one run:

  first       the first sync on an empty database: the whole directory through
              ``/users/delta``, the tenant-wide webinar and town-hall lists, the day's
              share of single-user probes
  steady      a scheduled run after 5 new webinars and a few directory changes
              (targets: under 200 requests and under 15 s)
  baseline    the per-user discovery the sync used before (``getByUserIdAndRole`` for
              webinars and town halls, per directory user), timed over ``--sample`` users
              at the same rate and scaled to the tenant: what one run used to cost

    python bench/discovery.py                       # the issue's sizes, SQLite
    python bench/discovery.py --users 5000 --webinars 300 --rate 200   # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync import fresh_database, log_size, request_log

from gatherly.core.background import serve_in_thread
from gatherly.core.config import Settings
from gatherly.core.db import make_session_factory
from gatherly.graph.errors import GraphError
from gatherly.graph_emulator import (
    EmulatorState,
    create_emulator_app,
    generate,
)
from gatherly.teams import fetch
from gatherly.teams import service as teams
from gatherly.teams.models import KIND_TOWNHALL, KIND_WEBINAR
from gatherly.teams.sync import run_sync


def connect(engine: Any, settings: Settings, base_url: str, owner_id: int) -> None:
    """Connect the database to the generated tenant; nothing excluded."""
    with make_session_factory(engine)() as db, db.begin():
        teams.connect(
            db=db,
            settings=settings,
            tenant_id=generate.TENANT,
            client_id=generate.APP,
            client_secret=SecretStr(generate.SECRET),
            authority=f"{base_url}/{generate.TENANT}",
            graph_url=f"{base_url}/v1.0",
            default_owner_id=owner_id,
        )


def _new_webinars(tenant: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` webinars like the tenant's first ones, under new ids and names."""
    made = []
    for n in range(count):
        webinar = copy.deepcopy(tenant["webinars"][n])
        webinar["id"] = f"{uuid.uuid4()}@{generate.TENANT}"
        webinar["displayName"] = f"New webinar {n + 1}"
        for session in webinar.get("sessions", []):
            session["id"] = f"{uuid.uuid4()}"
        made.append(webinar)
    return made


def _run(label: str, factory: Any, settings: Settings, base_url: str) -> tuple[float, int, Any]:
    mark = log_size(base_url)
    started = time.perf_counter()
    report = run_sync(factory, settings, kind="scheduled")
    seconds = time.perf_counter() - started
    requests = len(request_log(base_url, mark))
    assert report.status == "succeeded", report.errors
    print(f"  {label:<34} {requests:6d} requests {seconds:8.2f} s", flush=True)
    print(f"      fetched {dict(report.fetched)}")
    print(f"      changes {dict(report.changes)}")
    return seconds, requests, report


def baseline(settings: Settings, base_url: str, engine: Any, sample: int) -> float:
    """Seconds per directory user of the old per-user discovery, over ``sample`` users."""
    with make_session_factory(engine)() as db:
        connection = teams.get_connection(db)
        db.expunge(connection)
    with teams.client_factory(settings)(connection) as client:
        page = client.get_json("/users", {"$top": str(sample)})
        users = [fetch.parse_user(u) for u in page["value"]]
        started = time.perf_counter()
        for user in users:
            for kind in (KIND_WEBINAR, KIND_TOWNHALL):
                # No access policy: the old sync recorded that and went on.
                with contextlib.suppress(GraphError):
                    fetch.organizer_webinars(client, user.id, kind)
        return (time.perf_counter() - started) / max(1, len(users))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--organizers", type=int, default=300)
    parser.add_argument("--ungranted", type=int, default=20)
    parser.add_argument("--webinars", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=25.0, help="Graph requests per second")
    parser.add_argument("--page-size", type=int, default=100, help="the emulator's page size")
    parser.add_argument("--sample", type=int, default=250, help="users timed for the baseline")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    tenant = generate.large_tenant(
        users=args.users,
        organizers=args.organizers,
        ungranted=args.ungranted,
        webinars=args.webinars,
    )
    state = EmulatorState(tenant, page_size=args.page_size)
    workdir = Path(tempfile.mkdtemp(prefix="gatherly-bench-discovery-"))
    settings = Settings(graph_rate_per_second=args.rate, queue_path=str(workdir / "queue.db"))
    print(
        f"tenant: {args.users} users, {args.organizers} organizers ({args.ungranted} without "
        f"the access policy), {args.webinars} webinars; Graph rate {args.rate}/s, pages of "
        f"{args.page_size}"
    )
    with serve_in_thread(create_emulator_app(state)) as base_url:
        db_url, engine, owner = fresh_database(args.database_url, workdir, "discovery")
        s = settings.model_copy(update={"database_url": db_url})
        connect(engine, s, base_url, owner)
        factory = make_session_factory(engine)
        first_s, first_n, _ = _run("first sync, empty database", factory, s, base_url)

        for webinar in _new_webinars(tenant, 5):
            httpx.post(
                f"{base_url}/_emulator/webinars", json=webinar, timeout=30
            ).raise_for_status()
        for n in range(3):
            httpx.post(
                f"{base_url}/_emulator/users",
                json={
                    "displayName": f"New Hire {n}",
                    "userPrincipalName": f"new.hire{n}@{generate.DOMAIN}",
                    "mail": f"new.hire{n}@{generate.DOMAIN}",
                    "applicationAccessPolicy": generate.POLICY,
                },
                timeout=30,
            ).raise_for_status()
        steady_s, steady_n, steady = _run("steady state: 5 new webinars", factory, s, base_url)
        found = steady.changes.get("webinars_discovered", 0)

        per_user = baseline(s, base_url, engine, args.sample)
        engine.dispose()

    old = per_user * args.users
    print()
    print(f"discovery in a tenant of {args.users} users at {args.rate:g} requests/s:")
    print(f"  first sync     {first_n:6d} requests {first_s:8.2f} s")
    print(
        f"  steady state   {steady_n:6d} requests {steady_s:8.2f} s, {found} new webinars "
        "found   (targets: < 200 requests, < 15 s)"
    )
    print(
        f"  baseline       per-user discovery {per_user * 1000:.1f} ms per user (over "
        f"{args.sample}), {old:.0f} s per run for {args.users} users"
    )
    print(f"  ratio          steady state / baseline = {steady_s / old:.4f}")
    ok = steady_n < 200 and steady_s < 15 and found == 5
    print("  targets met" if ok else "  TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
