"""Readiness (``GET /readyz``): may this process take traffic? The database answers, its
schema is the code's, and the job queue can be reached.

Each failing check is named in words an operator can act on; no answer holds a URL, a
password or a traceback (the exception's class goes in the answer, its message in the log).
The checks run on daemon threads bounded by ``timeout``: a database or Redis that does not
answer (a dropped packet, a full pool) makes the answer "not ready" within seconds rather
than hanging the probe; a thread left waiting ends with the driver's own timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

from gatherly.core import logs, migrate

log = logging.getLogger(__name__)

OK = "ok"
TIMEOUT_SECONDS = 2.0


class Queue(Protocol):
    """What readiness needs of the job queue (``gatherly.jobs.queue.Jobs``)."""

    def pending(self) -> int: ...


@dataclass(frozen=True)
class Readiness:
    """Each check's answer: ``"ok"``, or what is wrong."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(answer == OK for answer in self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not ready", "checks": dict(self.checks)}


class _Answers:
    """The checks' answers as they come, written by their threads, read once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, str] = {}

    def __setitem__(self, check: str, answer: str) -> None:
        with self._lock:
            self._answers[check] = answer

    def copy(self) -> dict[str, str]:
        with self._lock:
            return dict(self._answers)


def _failed(check: str, what: str, exc: Exception) -> str:
    """The answer for a check that raised: the exception's class; its message is logged."""
    log.warning("readiness: %s check failed: %s: %s", check, type(exc).__name__, exc)
    return f"{what} ({type(exc).__name__}); the server's log has the details"


def _check_database(engine: Engine, timeout: float, out: _Answers) -> None:
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # SET LOCAL: for this check's transaction only, rolled back on close.
                connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        out["database"] = _failed("database", "unreachable: the database did not answer", exc)
        return
    out["database"] = OK
    try:
        _matches, answer = migrate.current_matches_head(engine)
    except Exception as exc:
        answer = _failed("migrations", "unknown: the schema's revision could not be read", exc)
    out["migrations"] = answer


def _check_queue(jobs: Callable[[], Queue], out: _Answers) -> None:
    try:
        jobs().pending()
    except Exception as exc:
        out["queue"] = _failed("queue", "unreachable: the job queue could not be opened", exc)
    else:
        out["queue"] = OK


def readiness(
    *, engine: Engine, jobs: Callable[[], Queue], timeout: float = TIMEOUT_SECONDS
) -> Readiness:
    """Check the database, its migrations and the queue (opened by ``jobs()``) side by
    side, waiting ``timeout`` seconds at most: a check with no answer by then fails."""
    out = _Answers()
    threads = [  # their log lines carry the request's id (logs.in_this_context)
        threading.Thread(
            target=logs.in_this_context(_check_database), args=(engine, timeout, out), daemon=True
        ),
        threading.Thread(target=logs.in_this_context(_check_queue), args=(jobs, out), daemon=True),
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    answers = out.copy()  # a thread still running may answer later, not into this answer
    late = f"no answer within {timeout:g} s"
    database = answers.get("database", f"unreachable: {late}")
    if database == OK:
        migrations = answers.get("migrations", f"unknown: {late}")
    else:
        migrations = "not checked: the database is unreachable"
    queue = answers.get("queue", f"unreachable: {late}")
    return Readiness({"database": database, "migrations": migrations, "queue": queue})
