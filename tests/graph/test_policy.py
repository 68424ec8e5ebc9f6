"""Retry-After parsing, the rate limiter's spacing and the package boundary."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import gatherly.graph
from gatherly.graph import GraphClient, GraphUnauthorized, RateLimiter
from gatherly.graph.transport import parse_retry_after
from tests.graph.conftest import StaticCredential, serve

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("10", 10.0),
        ("2.128", 2.128),
        ("Mon, 23 Nov 2026 12:00:05 GMT", 5.0),
        ("Mon, 23 Nov 2026 11:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, lambda: NOW) == seconds


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(25):
        limiter.acquire()
        starts.append(now[0])
    for i, start in enumerate(starts):
        assert sum(1 for t in starts[i:] if t < start + 1.0) <= 10
    assert starts[-1] == pytest.approx(24 * RateLimiter.SAFETY / 10)


def test_second_401_after_refresh_is_fatal() -> None:
    calls: list[str] = []

    async def refuse(request: Request) -> Response:
        calls.append(request.headers["authorization"])
        body = {"error": {"code": "InvalidAuthenticationToken", "message": "Token expired."}}
        return JSONResponse(body, status_code=401)

    app = Starlette(routes=[Route("/v1.0/me", refuse)])
    with serve(app) as base, GraphClient(f"{base}/v1.0", StaticCredential()) as graph:
        with pytest.raises(GraphUnauthorized, match="InvalidAuthenticationToken"):
            graph.get_json("/me")
        assert graph.stats.token_refreshes == 1
    assert len(calls) == 2


def test_graph_package_imports_nothing_from_the_emulator() -> None:
    package = Path(gatherly.graph.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("gatherly.graph_emulator") for n in names), source
