"""The front door every request passes: the request log and per-route statistics, and the
faults a test asks for on ``/rest`` requests (429 with or without ``Retry-After``, 5xx).
Control requests (``/_emulator``) pass straight through: never logged, never counted."""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatherly.linkedin_emulator.errors import server_error, throttled
from gatherly.linkedin_emulator.state import LinkedInState

# Concrete paths folded into their route templates for the statistics.
_TEMPLATES = (
    (re.compile(r"/rest/leadForms/[^/]+"), "/rest/leadForms/{id}"),
    (re.compile(r"/rest/versionedLeadGenForms/[^/]+"), "/rest/versionedLeadGenForms/{urn}"),
    (re.compile(r"/rest/leadFormResponses/[^/]+"), "/rest/leadFormResponses/{id}"),
)


def route_key(method: str, path: str) -> str:
    """``"GET /rest/leadFormResponses/{id}"`` for ``GET /rest/leadFormResponses/abc``."""
    for pattern, template in _TEMPLATES:
        if pattern.fullmatch(path):
            return f"{method} {template}"
    return f"{method} {path}"


class FrontDoor:
    """Logs and counts every non-control request; injects faults on ``/rest`` calls."""

    def __init__(self, app: ASGIApp, state: LinkedInState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        state = self.state
        started, at = time.monotonic(), state.now()
        seen: dict[str, int | None] = {"status": None}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            await send(message)

        fault = state.faults.pick() if scope["path"].startswith("/rest/") else None
        retry_after = state.faults.retry_after if fault == "429" else None
        try:
            if fault == "429":
                await throttled(retry_after).response()(scope, receive, logged_send)
            elif fault is not None:
                await server_error(int(fault)).response()(scope, receive, logged_send)
            else:
                await self.app(scope, receive, logged_send)
        finally:
            state.record(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "status": seen["status"],
                    "time": at.isoformat().replace("+00:00", "Z"),
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "fault": fault,
                    "retry_after": retry_after,
                },
                route_key(scope["method"], scope["path"]),
            )
