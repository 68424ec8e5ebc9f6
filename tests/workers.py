"""``gatherly worker`` in its own process, for tests that need queued jobs carried out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from gatherly.core.config import Settings


@contextmanager
def worker_process(
    settings: Settings,
    *args: str,
    schedule: bool = False,
    env_extra: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``gatherly worker --no-schedule ARGS…`` with the test's settings in the environment
    (and ``env_extra``: settings a test sets only for its workers, such as the log level)."""
    env = {
        **os.environ,
        "GATHERLY_DATABASE_URL": settings.database_url,
        "GATHERLY_QUEUE_PATH": settings.queue_path,
        "GATHERLY_QUEUE_NAME": settings.queue_name,
        "GATHERLY_GRAPH_RATE_PER_SECOND": str(settings.graph_rate_per_second),
        "GATHERLY_SECRET_KEY_FILE": str(settings.secret_key_file),
        "GATHERLY_PUBLIC_URL": settings.public_url,
        "GATHERLY_SMTP_RATE_PER_SECOND": str(settings.smtp_rate_per_second),
        "GATHERLY_EMAIL_LEASE_SECONDS": str(settings.email_lease_seconds),
        "GATHERLY_JOURNEY_BATCH": str(settings.journey_batch),
    }
    env.pop("GATHERLY_SMTP_URL", None)
    if settings.smtp_url is not None:
        env["GATHERLY_SMTP_URL"] = settings.smtp_url.get_secret_value()
    env.pop("GATHERLY_SECRET_KEY", None)
    if settings.secret_key is not None:
        env["GATHERLY_SECRET_KEY"] = settings.secret_key.get_secret_value()
    env.pop("GATHERLY_REDIS_URL", None)
    if settings.redis_url:
        env["GATHERLY_REDIS_URL"] = settings.redis_url
    env.update(env_extra or {})
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-c", "from gatherly.cli import main; main()", "worker", *args]
        + ([] if schedule else ["--no-schedule"]),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        stop(proc, signal.SIGINT)
        if proc.stdout:
            proc.stdout.close()


def stop(proc: subprocess.Popen[Any], how: signal.Signals, timeout: float = 20) -> None:
    """Stop a process with the signal ``how`` (if it still runs), SIGKILL it after
    ``timeout`` seconds, and reap it."""
    if proc.poll() is None:
        proc.send_signal(how)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
