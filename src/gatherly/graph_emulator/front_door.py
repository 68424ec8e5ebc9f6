"""The front door every request passes: the request log, and the faults a test asks for
(429/503/504, slow answers, dropped connections, expired tokens)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatherly.graph_emulator.control import _iso
from gatherly.graph_emulator.errors import GraphError, _ids, error_response
from gatherly.graph_emulator.graph_api import _unauthenticated
from gatherly.graph_emulator.state import EmulatorState

_METERED = re.compile(r"/onlineMeetings/[^/]+/(recordings|transcripts)")


class FrontDoor:
    """Logs every request and injects the configured faults on ``/v1.0`` calls."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        state = self.state
        started, at = time.monotonic(), state.now()
        seen: dict[str, Any] = {"status": None}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            await send(message)

        picked = state.faults.pick() if scope["path"].startswith("/v1.0/") else None
        kind = picked[0] if picked else None
        if kind == "402" and not _METERED.search(scope["path"]):
            kind = None  # only recordings and transcripts are metered APIs
        try:
            if kind == "drop":
                # Headers promise a body that never comes: the client sees a broken connection.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"100")],
                    }
                )
            elif kind in ("429", "503", "504", "402", "expired_token"):
                assert picked is not None
                request = Request(scope, receive)
                request_id, client_request_id = _ids(request)
                exc = _fault_error(
                    kind,
                    with_retry_after=picked[1],
                    retry_after=state.faults.retry_after,
                    now=state.now(),
                )
                await error_response(
                    exc, request_id=request_id, client_request_id=client_request_id, now=state.now()
                )(scope, receive, logged_send)
            else:
                if kind == "slow":
                    await asyncio.sleep(state.faults.slow_seconds)
                await self.app(scope, receive, logged_send)
        finally:
            state.requests.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode(),
                    "status": seen["status"],
                    "time": _iso(at),
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "fault": kind,
                    # The Retry-After this answer carried (seconds), so tests and benchmarks
                    # can check the client waited: 429/503/504 send it unless told not to.
                    "retry_after": (
                        state.faults.retry_after
                        if picked and picked[1] and kind in ("429", "503", "504")
                        else None
                    ),
                }
            )


def _fault_error(
    kind: str, *, with_retry_after: bool, retry_after: float, now: datetime
) -> GraphError:
    seconds = f"{retry_after:g}"
    headers = {"Retry-After": seconds} if with_retry_after else {}
    if kind == "429":
        inner = {"code": "429", "message": "Please retry after", "status": "429"}
        return GraphError(
            429, "TooManyRequests", "Please retry again later.", headers=headers, inner=inner
        )
    if kind == "503":
        return GraphError(
            503, "serviceNotAvailable", "Service unavailable. Please retry later.", headers=headers
        )
    if kind == "402":
        return GraphError(
            402,
            "PaymentRequired",
            "Payment Required. Ensure that your application is able to call this premium API.",
        )
    if kind == "504":
        return GraphError(504, "UnknownError", "Gateway timeout.", headers=headers)
    return _unauthenticated("Lifetime validation failed, the token is expired.")
