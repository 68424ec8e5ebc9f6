"""Delivering change notifications the way Graph's webhooks do
(graph-notifications-townhalls.md §2): the validation handshake, a queue per notification
URL batched over a short window, retries with back-off, injected delivery faults
(duplicates, drops, reordering, a slow first attempt) and a log of every attempt.

Deliveries run as asyncio tasks on the event loop that serves the emulator, so a control
call that changes the tenant returns at once. They end with that loop (uvicorn cancels the
tasks when it stops), with ``aclose()`` (the app's lifespan shutdown) and with ``reset()``.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

NOTIFICATION = "notification"
LIFECYCLE = "lifecycle"
REORDER_KINDS = ("reverse", "shuffle")


@dataclass
class DeliverySettings:
    """Timings of delivery (fast by default: Graph retries for hours, an emulator must not)."""

    batch_window_seconds: float = 0.1
    max_batch: int = 100
    attempt_timeout_seconds: float = 3.0
    retry_base_seconds: float = 0.2
    retry_cap_seconds: float = 2.0
    retry_max_seconds: float = 30.0
    validation_timeout_seconds: float = 10.0


@dataclass
class DeliveryFaults:
    """Delivery faults and their seeded random stream (one draw per notification)."""

    duplicate: float = 0.0
    drop: float = 0.0
    reorder: str | None = None
    slow_first_attempt_seconds: float = 0.0
    seed: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {
            "duplicate": self.duplicate,
            "drop": self.drop,
            "reorder": self.reorder,
            "slow_first_attempt_seconds": self.slow_first_attempt_seconds,
            "seed": self.seed,
        }


@dataclass
class _Pending:
    item: dict[str, Any]
    subscription_id: str
    duplicate: bool = False


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle for every delivery would cost more than the POST.
    return httpx.create_ssl_context()


def _client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=_ssl_context(), timeout=timeout, trust_env=False)


def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel a task from its own loop or from any other thread."""
    if task.done():
        return
    loop = task.get_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task.cancel()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


class Notifier:
    """Queues, batches and delivers notifications; keeps the delivery log and statistics."""

    def __init__(self, settings: DeliverySettings, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._generation = 0
        self._flushers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.reset(settings)

    def reset(self, settings: DeliverySettings) -> None:
        """Drop every pending delivery, the log and the statistics; faults off."""
        for task in self._flushers.values():
            _cancel(task)
        self._generation += 1  # an attempt already on the wire is not logged
        self._flushers = {}
        self._queues: dict[tuple[str, str], list[_Pending]] = {}
        self.settings = settings
        self.faults = DeliveryFaults()
        self.log: list[dict[str, Any]] = []
        self.stats: dict[str, dict[str, int]] = {}

    async def aclose(self) -> None:
        """Stop delivering: cancel every pending delivery and wait until they have ended."""
        tasks = list(self._flushers.values())
        self.reset(self.settings)
        await asyncio.gather(*tasks, return_exceptions=True)

    def pending(self) -> int:
        """How many URLs have deliveries queued or under way."""
        return sum(not task.done() for task in self._flushers.values())

    def stats_of(self, subscription_id: str) -> dict[str, int]:
        """Counts for one subscription: queued, dropped, duplicated, delivered, failed."""
        return self.stats.setdefault(
            subscription_id,
            {"queued": 0, "dropped": 0, "duplicated": 0, "delivered": 0, "failed": 0},
        )

    # ------------------------------------------------------------ the handshake

    async def validate(self, url: str) -> bool:
        """Graph's validation request: POST ``?validationToken=…``, expect the token back as
        ``text/plain`` with 200 within the validation timeout."""
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
        status: int | None = None
        error: str | None = None
        ok = False
        try:
            async with _client(self.settings.validation_timeout_seconds) as client:
                response = await client.post(
                    target, headers={"Content-Type": "text/plain; charset=utf-8"}
                )
            status = response.status_code
            ok = (
                status == 200
                and response.headers.get("content-type", "").startswith("text/plain")
                and response.text == token
            )
            if not ok:
                error = "the answer was not 200 text/plain with the token as its body"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._log(url, "validation", 1, status, error, 0, token)
        return ok

    # ------------------------------------------------------------ queueing

    def enqueue(
        self,
        url: str,
        item: dict[str, Any],
        *,
        subscription_id: str,
        channel: str = NOTIFICATION,
    ) -> None:
        """Queue one notification item for ``url``; must run on the serving event loop.

        Change notifications pass through the delivery faults; lifecycle ones do not.
        """
        stats = self.stats_of(subscription_id)
        stats["queued"] += 1
        duplicate = False
        if channel == NOTIFICATION:
            faults = self.faults
            dropped = faults.rng.random() < faults.drop
            duplicate = faults.rng.random() < faults.duplicate
            if dropped:
                stats["dropped"] += 1
                return
        key = (url, channel)
        self._queues.setdefault(key, []).append(_Pending(item, subscription_id, duplicate))
        loop = asyncio.get_running_loop()
        task = self._flushers.get(key)
        if task is None or task.done() or task.get_loop() is not loop:
            self._flushers[key] = loop.create_task(self._flush(key, self._generation))

    async def _flush(self, key: tuple[str, str], generation: int) -> None:
        try:
            await asyncio.sleep(self.settings.batch_window_seconds)
            while generation == self._generation and (queue := self._queues.get(key)):
                size = max(1, self.settings.max_batch)
                batch = queue[:size]
                del queue[:size]
                await self._deliver(key, batch, generation)
        finally:
            if self._flushers.get(key) is asyncio.current_task():
                del self._flushers[key]

    # ------------------------------------------------------------ delivery

    def _ordered(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.faults.reorder == "reverse":
            return items[::-1]
        if self.faults.reorder == "shuffle":
            shuffled = list(items)
            self.faults.rng.shuffle(shuffled)
            return shuffled
        return items

    async def _deliver(self, key: tuple[str, str], batch: list[_Pending], generation: int) -> None:
        """POST one batch, retrying with back-off until a 2xx or the retry time is used up."""
        url, channel = key
        settings = self.settings
        items = [p.item for p in batch]
        body = {"value": self._ordered(items) if channel == NOTIFICATION else items}
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = settings.retry_base_seconds
        attempt = 0
        async with _client(settings.attempt_timeout_seconds) as client:
            while True:
                attempt += 1
                slow = self.faults.slow_first_attempt_seconds
                if attempt == 1 and channel == NOTIFICATION and slow > 0:
                    await asyncio.sleep(slow)
                status: int | None = None
                error: str | None = None
                try:
                    response = await client.post(url, json=body)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if generation != self._generation:
                    return
                if status is not None and 200 <= status < 300:
                    self._log(url, channel, attempt, status, error, len(items), body)
                    self._delivered(key, batch)
                    return
                gave_up = loop.time() - started + delay > settings.retry_max_seconds
                entry = self._log(url, channel, attempt, status, error, len(items), body)
                if gave_up:
                    entry["gave_up"] = True
                    for pending in batch:
                        self.stats_of(pending.subscription_id)["failed"] += 1
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.retry_cap_seconds)

    def _delivered(self, key: tuple[str, str], batch: list[_Pending]) -> None:
        again = []
        for pending in batch:
            stats = self.stats_of(pending.subscription_id)
            stats["delivered"] += 1
            if pending.duplicate:  # delivered once more, in a later POST
                stats["duplicated"] += 1
                again.append(_Pending(pending.item, pending.subscription_id))
        if again:
            self._queues.setdefault(key, []).extend(again)

    def _log(
        self,
        url: str,
        kind: str,
        attempt: int,
        status: int | None,
        error: str | None,
        items: int,
        body: Any,
    ) -> dict[str, Any]:
        entry = {
            "time": self._clock().strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "url": url,
            "kind": kind,
            "attempt": attempt,
            "status": status,
            "error": error,
            "items": items,
            "body": body,
            "gave_up": False,
        }
        self.log.append(entry)
        return entry
