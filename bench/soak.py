"""R3, the long run: the concurrency soak for ``--minutes`` (10), a worker killed every minute.

Two API processes (``gatherly serve --workers 2 --no-worker``) and two workers (``gatherly
worker --concurrency 2``) on PostgreSQL and Redis while a driver runs at once Teams syncs
against the Graph emulator with 20 % of its answers faulty, contact imports, edits and
merges, business-unit moves of users and records, segment edits and refreshes, and email
sends into a local SMTP server; every ``--kill-every`` seconds the busiest worker gets
SIGKILL and a replacement starts. Then the work drains (at most ``--drain-timeout``) and
every invariant is checked: see ``tests/soak.py``, which ``tests/test_concurrency.py`` runs
short in the suite. It is a robustness run, not a speed benchmark: it prints what the
driver did, the kills, and each invariant's verdict, and exits 1 if any failed (the
processes' logs are then kept and named).

    .venv/bin/python bench/soak.py                     # 10 minutes (make bench-soak)
    .venv/bin/python bench/soak.py --minutes 3 --seed 7

Data: a fresh schema of ``--database-url`` (default ``GATHERLY_TEST_POSTGRES_URL``, else
the local server's ``test`` database), dropped afterwards; a queue of its own on Redis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.soak

from tests import soak

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="of driving")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="of Graph's answers")
    parser.add_argument("--people", type=int, default=200, help="emails the intakes share")
    parser.add_argument("--mail-lists", type=int, default=3)
    parser.add_argument("--list-size", type=int, default=40, help="people a send goes to")
    parser.add_argument("--send-every", type=float, default=4.0, help="seconds between sends")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--database-url", default=os.environ.get("GATHERLY_TEST_POSTGRES_URL") or PG_DEFAULT
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    if not soak.redis_answers(args.redis_url):
        parser.error(f"no Redis answers at {args.redis_url}")
    os.environ["GATHERLY_TEST_POSTGRES_URL"] = args.database_url
    params = soak.Params(
        duration=args.minutes * 60,
        kill_every=args.kill_every,
        fault_rate=args.fault_rate,
        people=args.people,
        mail_lists=args.mail_lists,
        list_size=args.list_size,
        send_every=args.send_every,
        drain_timeout=args.drain_timeout,
        seed=args.seed,
    )
    workdir = Path(tempfile.mkdtemp(prefix="gatherly-soak-"))
    outcome = soak.run_on_postgres(params, args.redis_url, workdir)
    print(outcome.report())
    if outcome.ok:
        shutil.rmtree(workdir)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
