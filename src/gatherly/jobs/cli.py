"""``gatherly worker``: consume the job queue and run the schedule (SPEC T12)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from gatherly.core.config import Settings


class Pool(StrEnum):
    """How a worker runs its tasks side by side."""

    process = "process"
    thread = "thread"


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Tasks run at once (worker processes or threads).")
    ] = 1,
    pool: Annotated[
        Pool,
        typer.Option(
            help="thread: threads in this process (syncs and sends mostly wait on Graph, "
            "SMTP and the database); process: a process per task, for CPU-heavy loads."
        ),
    ] = Pool.thread,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Also queue the periodic tasks (scheduled syncs, refreshes); safe on every "
            "worker: each runs once a minute however many queue it.",
        ),
    ] = True,
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="On SIGTERM or Ctrl-C, seconds to let the tasks at hand finish before "
            "interrupting them (their work is taken up again on the next start).",
        ),
    ] = 300.0,
) -> None:
    """Run queued and scheduled jobs until stopped (SIGTERM or Ctrl-C: gracefully)."""
    from sqlalchemy.engine import make_url

    from gatherly.core import crypto, logs, metrics
    from gatherly.jobs.queue import Jobs

    settings = Settings()
    logs.configure(settings)  # first: the key's warnings come out as log lines too
    settings = crypto.resolve(settings)  # refuse a bad key at start, not at the first sync
    processes = concurrency if pool is Pool.process else 1
    metrics.prepare_processes(settings, processes=processes, role="worker")
    jobs = Jobs(settings)
    backend = (
        f"Redis {make_url(settings.redis_url).render_as_string(hide_password=True)}"
        if settings.redis_url
        else f"SQLite {settings.queue_path}"
    )
    typer.echo(
        f"gatherly worker: queue on {backend}, {concurrency} {pool.value}(s), "
        f"schedule {'on' if schedule else 'off'}"
    )
    jobs.consumer(
        workers=concurrency, pool=pool.value, schedule=schedule, shutdown_timeout=grace
    ).run()
