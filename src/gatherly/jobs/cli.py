"""``gatherly worker``: consume the job queue and run the sync schedule (SPEC T12)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from gatherly.core.config import Settings


def worker(
    workers: Annotated[int, typer.Option(min=1, max=32, help="Task threads.")] = 1,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Also run the periodic sync schedule (run it on one worker when several share Redis).",
        ),
    ] = True,
) -> None:
    """Run queued syncs (Sync now) and scheduled refreshes until interrupted (Ctrl-C)."""
    from gatherly.core import crypto
    from gatherly.jobs.queue import Jobs

    settings = crypto.resolve(Settings())  # refuse a bad key at start, not at the first sync
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    jobs = Jobs(settings)
    backend = (
        f"Redis {settings.redis_url}" if settings.redis_url else f"SQLite {settings.queue_path}"
    )
    typer.echo(
        f"gatherly worker: queue on {backend}, {workers} thread(s), schedule {'on' if schedule else 'off'}"
    )
    jobs.consumer(workers=workers, schedule=schedule).run()
