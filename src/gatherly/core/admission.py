"""Admission: at most N requests of an API process work at once; the others wait their
turn in the event loop, holding neither a thread nor a database connection.

Without it, a burst of more requests than the database pool has connections deadlocks a
process: FastAPI runs a request's synchronous dependencies (the session, the principal),
the route and the response's validation on separate trips to one thread pool (40
threads); requests holding a connection wait for a thread while the threads wait for a
connection, until the pool's 30-second timeout answers 500s (docs/decisions.md).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

# Answered without waiting: liveness must not look dead because the process is busy, and
# the scrape must work under load to show it. Neither holds a request's connection.
UNGATED = frozenset({"/healthz", "/metrics"})


class Admission:
    """Pure ASGI middleware letting ``limit`` HTTP requests in at once (first come, first
    served: asyncio's semaphore wakes waiters in order)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._gate: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED:
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            await self.app(scope, receive, send)
