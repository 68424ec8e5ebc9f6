"""A tiny webhook endpoint for the notification tests, served for real on a loopback port:
it answers Graph's validation handshake and records every notification POST."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.loopback import serve_asgi


@dataclass
class Received:
    """One notification POST: the path it came to, its JSON body and when (monotonic)."""

    path: str
    body: Any
    at: float


@dataclass
class Receiver:
    """What the endpoint answers, and what it has received."""

    base_url: str = ""
    validation: str = "echo"  # echo | wrong (another body) | error (500)
    statuses: list[int] = field(default_factory=list)  # the next answers, then 202
    delays: list[float] = field(default_factory=list)  # the next answers' delays, then none
    received: list[Received] = field(default_factory=list)
    validations: list[tuple[str, str]] = field(default_factory=list)  # (path, token)

    def clear(self) -> None:
        """Back to answering everything well, with nothing received."""
        self.validation = "echo"
        self.statuses.clear()
        self.delays.clear()
        self.received.clear()
        self.validations.clear()

    def url(self, path: str = "hooks") -> str:
        """A notification URL on this endpoint."""
        return f"{self.base_url}/{path}"

    def wait(self, count: int, *, timeout: float = 5.0, path: str | None = None) -> list[Received]:
        """Poll until ``count`` notification POSTs (to ``path``, if given) have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.received if path is None or r.path == f"/{path}"]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.01)

    def wait_items(
        self, count: int, *, timeout: float = 5.0, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Poll until ``count`` notification items have arrived (over any number of POSTs)."""
        deadline = time.monotonic() + timeout
        while len(self.items(path)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.items(path)

    def settle(self, *, quiet: float = 0.2, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll until something has arrived and nothing more for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.received) != seen:
                seen, since = len(self.received), time.monotonic()
            elif seen > 0 and time.monotonic() - since >= quiet:
                break
            time.sleep(0.01)
        return self.items()

    def items(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every notification item received so far, in arrival order."""
        return [
            item
            for r in self.received
            if path is None or r.path == f"/{path}"
            for item in r.body["value"]
        ]

    async def _handle(self, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations.append((request.url.path, token))
            if self.validation == "error":
                return Response(status_code=500)
            return PlainTextResponse(token if self.validation == "echo" else "not the token")
        body = await request.json()
        self.received.append(Received(request.url.path, body, time.monotonic()))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 202)

    def app(self) -> Starlette:
        """The endpoint's ASGI app: any POST path."""
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A receiver served on a free loopback port until the block ends."""
    receiver = Receiver()
    with serve_asgi(receiver.app()) as base_url:
        receiver.base_url = base_url
        yield receiver
