"""R3 (issue 20): two API processes and two workers on PostgreSQL and Redis under every kind
of work at once — Teams syncs against a faulty Graph, contact imports, edits and merges,
business-unit moves, segment refreshes and email sends — with the busiest worker killed
(SIGKILL) and replaced mid-run; afterwards every invariant holds (``tests/soak.py`` says
which and how each is computed). ``make bench-soak`` is the long run: a kill every minute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import soak

REDIS_URL = "redis://127.0.0.1:6379/15"

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("GATHERLY_TEST_POSTGRES_URL"),
        reason="the soak runs on PostgreSQL: set GATHERLY_TEST_POSTGRES_URL",
    ),
    pytest.mark.skipif(
        not soak.redis_answers(REDIS_URL), reason=f"the soak's queue is Redis: none at {REDIS_URL}"
    ),
]


def test_two_api_processes_and_two_workers_keep_every_invariant_through_a_sigkill(
    tmp_path: Path,
) -> None:
    # About 12 s to set up, 25 s of driving with one kill half way, a few seconds to drain.
    params = soak.Params(duration=25, first_kill=12, kill_every=60, drain_timeout=30)
    outcome = soak.run_on_postgres(params, REDIS_URL, tmp_path, say=lambda _line: None)
    print(outcome.report())  # what was done and every verdict, with -s or on failure
    assert len(outcome.kills) == 1, outcome.report()
    assert outcome.ok, outcome.report()
