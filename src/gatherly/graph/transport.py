"""httpx behind one seam: rate limiting, Retry-After, backoff with jitter, token refresh.

Retried: 429, 503, 504 and connect/read errors, timeouts and dropped connections. Waits
for ``Retry-After`` (seconds or an HTTP date) when Graph sends it, else exponential
backoff with full jitter. A 401 from Graph triggers one token refresh and an immediate
resend. Every other error answer is final.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from gatherly.core import metrics
from gatherly.graph.auth import Credential
from gatherly.graph.errors import (
    RETRIABLE_STATUSES,
    GraphConnectionError,
    GraphError,
    GraphRetriableError,
    Throttled,
    classify,
)

log = logging.getLogger(__name__)

_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass
class GraphStats:
    """Counters the sync records on its run: requests, retries and throttling met."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    unavailable: int = 0
    connection_errors: int = 0
    token_refreshes: int = 0
    waited_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "unavailable": self.unavailable,
            "connection_errors": self.connection_errors,
            "token_refreshes": self.token_refreshes,
            "waited_seconds": round(self.waited_seconds, 3),
        }


class RateLimiter:
    """Spaces request starts so no one-second window holds more than ``rate`` requests."""

    # 10 % slack: requests are spaced when sent, but Graph counts them when they arrive, and
    # network jitter can bunch arrivals (the full benchmark saw 26 in a second at 2 %).
    SAFETY = 1.1

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.interval = self.SAFETY / rate_per_second
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (Graph's Retry-After applies to the whole app).

        Threads already waiting for a slot see the hold when they wake and wait on.
        """
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)

    def acquire(self) -> float:
        """Block until the next request may start; returns the seconds waited.

        The lock is never held while sleeping, so a ``hold`` takes effect at once.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._next - now
                if wait <= 0:
                    self._next = max(now, self._next) + self.interval
                    return waited
            self._sleep(wait)
            waited += wait


def parse_retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (float ok) or HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now()).total_seconds()
    return max(0.0, seconds)


class SyncASGITransport(httpx.BaseTransport):
    """httpx.ASGITransport for a sync client: each request runs on a fresh event loop.

    The in-process side of the transport seam (tests, demo without a port). Not for use
    from inside a running event loop.
    """

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run the ASGI app on the request and return the fully read response."""

        async def run() -> httpx.Response:
            body = await request.aread()
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            await response.aclose()
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                content=content,
                request=request,
            )

        return asyncio.run(run())


class _Retry(Exception):
    """Internal: one attempt failed in a retriable way."""

    def __init__(self, error: Exception, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class GraphTransport:
    """Sends GET requests to Graph with auth, rate limit and the retry policy above."""

    def __init__(
        self,
        base_url: str,
        credential: Credential,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_per_second: float = 25.0,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.stats = GraphStats()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._now = now
        self._rng = random.Random(seed)
        self._limiter = RateLimiter(rate_per_second, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            transport=transport,
            timeout=timeout,
            follow_redirects=True,
        )
        origin = httpx.URL(self.base_url)
        self._origin = (origin.scheme, origin.host, origin.port)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def same_origin(self, url: str) -> bool:
        """Whether an absolute URL (a nextLink) points at this client's Graph host."""
        parsed = httpx.URL(url)
        return (parsed.scheme, parsed.host, parsed.port) == self._origin

    # ---------------------------------------------------------------- retry policy

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retry) and error.retry_after is not None:
            return error.retry_after
        cap = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(0.0, cap)

    def _before_sleep(self, state: RetryCallState) -> None:
        seconds = state.upcoming_sleep
        self.stats.retries += 1
        self.stats.waited_seconds += seconds
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        reason = error.error if isinstance(error, _Retry) else error
        told = isinstance(error, _Retry) and error.retry_after is not None
        metrics.GRAPH_RETRY_WAIT.labels("retry_after" if told else "backoff").inc(seconds)
        log.warning("graph retry %d in %.3fs after %s", state.attempt_number, seconds, reason)

    def get(
        self, url: str, params: dict[str, Any] | None = None, *, stream: bool = False
    ) -> httpx.Response:
        """GET a Graph path or absolute URL; the 2xx response, or the classified error.

        With ``stream`` the body is not read: the caller iterates it and closes the response
        (retries happen only before the body starts)."""
        return self.request("GET", url, params, stream=stream)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        *,
        json: Any = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Any Graph request (subscriptions are created, renewed and deleted), retried and
        classified as ``get`` is."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retry)),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            response: httpx.Response = retrying(self._attempt, method, url, params, json, stream)
        except _Retry as exc:
            raise exc.error from None
        return response

    def _attempt(
        self, method: str, url: str, params: dict[str, Any] | None, body: Any, stream: bool
    ) -> httpx.Response:
        refreshed = False
        while True:
            response = self._send(method, url, params, body, stream)
            if response.status_code == 401 and not refreshed:
                response.close()
                # Expired or revoked token: fetch a new one once and resend.
                refreshed = True
                self.stats.token_refreshes += 1
                self.credential.invalidate()
                log.info("graph answered 401; refreshing the token once")
                continue
            break
        if response.is_success:
            return response
        response.read()  # a streamed error's body, for classify
        response.close()
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now)
        error = classify(response, retry_after)
        if response.status_code == 429:
            self.stats.throttled += 1
        elif response.status_code in RETRIABLE_STATUSES:
            self.stats.unavailable += 1
        if response.status_code == 429 or (
            retry_after is not None and response.status_code in RETRIABLE_STATUSES
        ):
            metrics.GRAPH_THROTTLED.labels(str(response.status_code)).inc()
        if isinstance(error, GraphRetriableError):
            if retry_after is not None:
                # Every thread of this client waits, not only the one that was told to.
                self._limiter.hold(retry_after)
            raise _Retry(error, retry_after)
        raise error

    def _send(
        self, method: str, url: str, params: dict[str, Any] | None, body: Any, stream: bool
    ) -> httpx.Response:
        self._limiter.acquire()
        self.stats.requests += 1
        headers = {"Authorization": f"Bearer {self.credential.token()}"}
        try:
            request = self._http.build_request(
                method, url, params=params, headers=headers, json=body
            )
            response = self._http.send(request, stream=stream)
        except _TRANSIENT as exc:
            self.stats.connection_errors += 1
            metrics.graph_answered(method, None)
            error = GraphConnectionError(f"Graph request failed: {type(exc).__name__}: {exc}")
            raise _Retry(error, None) from None
        metrics.graph_answered(method, response.status_code)
        return response


__all__ = [
    "GraphError",
    "GraphStats",
    "GraphTransport",
    "RateLimiter",
    "SyncASGITransport",
    "Throttled",
    "parse_retry_after",
]
