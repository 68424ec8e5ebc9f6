"""Prometheus metrics (issue 20): the metric objects, the request-latency middleware, the
multi-process directory and the exposition behind ``GET /metrics``.

Every metric is named ``gatherly_…`` and listed, with its labels and what to alert on, in
docs/operations.md ("Metrics"). Label values come from short fixed sets (route templates,
task names, outcomes, status codes), never from ids, paths or addresses.

One process (``gatherly serve`` with its in-process worker): metrics live in the process's
memory and the default registry is exposed. Several processes (``gatherly serve --workers
N``, a worker pool of processes, or a ``gatherly worker`` beside the server with
``GATHERLY_METRICS_DIR`` set): ``prepare_processes`` puts each process's values in files in
one directory per command (prometheus_client's multi-process mode), and a scrape of any
server process sums the files of every command on the machine.

Importing this module has no side effect beyond defining the metrics (prometheus_client
registers them on its default registry).
"""

from __future__ import annotations

import gc
import glob
import logging
import os
import re
import shutil
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gatherly.core import crypto
from gatherly.core.exceptions import NotFound, Unauthenticated

if TYPE_CHECKING:
    from re import Pattern

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from gatherly.core.config import Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# One directory per command that starts processes: ``<role>-<pid of the command>``.
_GROUP = re.compile(r"^[a-z]+-[0-9]+$")

# Seconds. Fine steps up to 100 ms (most API answers take 1-50 ms), coarse beyond.
LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,  # the cached GET of one record's target (docs/operations.md)
    0.004,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Jobs run from milliseconds (an empty refresh) to an hour (a first full sync).
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
# From a data change to the segment refresh that took it in: seconds normally (the commit
# wakes the worker), up to a minute when a wake-up was lost (the periodic drain).
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

HTTP_REQUEST_SECONDS = Histogram(
    "gatherly_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer.",
    ("method", "route", "status"),
    buckets=LATENCY_BUCKETS,
)
JOB_SECONDS = Histogram(
    "gatherly_job_duration_seconds",
    "Time a queued or periodic job ran, by task and outcome.",
    ("task", "outcome"),
    buckets=JOB_BUCKETS,
)
SYNC_RUNS = Counter(
    "gatherly_teams_sync_runs",
    "Teams sync runs finished, by kind and outcome.",
    ("kind", "outcome"),
)
GRAPH_REQUESTS = Counter(
    "gatherly_graph_requests",
    "Requests sent to Microsoft Graph, by method and answer (status code, or 'error' when "
    "none came: timeout, dropped connection).",
    ("method", "status"),
)
GRAPH_TOKENS = Counter(
    "gatherly_graph_token_requests",
    "Token requests to the Microsoft identity platform (msal), by outcome: 'acquired', "
    "'refused' (it answered with an error), 'unreachable'.",
    ("outcome",),
)
GRAPH_THROTTLED = Counter(
    "gatherly_graph_throttled",
    "Graph answers asking the connector to slow down: 429, or 503/504 with Retry-After.",
    ("status",),
)
GRAPH_RETRY_WAIT = Counter(
    "gatherly_graph_retry_wait_seconds",
    "Seconds spent waiting before Graph retries: as Retry-After said, or backing off.",
    ("reason",),
)
EMAIL_DELIVERIES = Counter(
    "gatherly_email_deliveries",
    "Delivery attempts by the SMTP server's answer: sent, deferred (tried again later), "
    "rejected, hard_bounce, soft_bounce (deferred too often), not_rendered.",
    ("outcome",),
)
EMAIL_BOUNCES = Counter(
    "gatherly_email_bounces",
    "Bounces and complaints recorded against a delivery, by kind (hard, soft, complaint) "
    "and where they came from (smtp: the server's answer; webhook, import: reports after).",
    ("kind", "source"),
)
SEGMENT_CHANGE_LAG = Histogram(
    "gatherly_segment_change_lag_seconds",
    "Time from a data change's commit to the segment refresh that processed it.",
    ("topic",),
    buckets=LAG_BUCKETS,
)
GC_PAUSE_SECONDS = Histogram(
    "gatherly_gc_pause_seconds",
    "Time an API process stopped for Python's cyclic garbage collector, by generation (1, "
    "or 2: a full collection). Every request in the process waits meanwhile.",
    ("generation",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
# Every metric above has labels: their values are made on first use, after
# ``prepare_processes`` has chosen where they live (see there).
RECORDED = (
    HTTP_REQUEST_SECONDS,
    JOB_SECONDS,
    SYNC_RUNS,
    GRAPH_REQUESTS,
    GRAPH_TOKENS,
    GRAPH_THROTTLED,
    GRAPH_RETRY_WAIT,
    EMAIL_DELIVERIES,
    EMAIL_BOUNCES,
    SEGMENT_CHANGE_LAG,
    GC_PAUSE_SECONDS,
)

# Read when scraped (the queue and the database are the same for every process).
QUEUE_PENDING = "gatherly_queue_pending_jobs"
CHANGES_OLDEST_AGE = "gatherly_segment_changes_oldest_age_seconds"


# ------------------------------------------------------------------ recording helpers


def graph_answered(method: str, status: int | None) -> None:
    """Count one request sent to Graph (``status`` None: no answer came)."""
    GRAPH_REQUESTS.labels(method.upper(), "error" if status is None else str(status)).inc()


def observe_change_lag(recorded: Iterable[tuple[str, datetime]]) -> None:
    """Observe, per change (topic, recorded at), the time until it was processed (now)."""
    now = datetime.now(UTC)
    for topic, at in recorded:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        SEGMENT_CHANGE_LAG.labels(topic).observe(max(0.0, (now - at).total_seconds()))


# Huey's signals (huey/signals.py) that end a task's execution, and their outcome labels.
_JOB_ENDS = {
    "complete": "complete",
    "error": "error",
    "timeout": "timeout",
    "locked": "locked",
    "canceled": "canceled",
    "rate-limited": "rate_limited",
    "interrupted": "interrupted",
}


def watch_jobs(huey: Any) -> None:
    """Time every task ``huey``'s consumer runs, by task name and outcome (Huey's signals).

    Signals run on the worker thread (or process) that runs the task; "interrupted" may
    come from the consumer's main thread at shutdown, hence the lock.
    """
    started: dict[str, float] = {}
    lock = threading.Lock()

    def on_signal(signal: str, task: Any, *_args: Any) -> None:
        if signal == "executing":
            with lock:
                started[task.id] = perf_counter()
            return
        with lock:
            began = started.pop(task.id, None)
        if began is not None:  # revoked and expired tasks never started
            JOB_SECONDS.labels(task.name, _JOB_ENDS[signal]).observe(perf_counter() - began)

    huey.signal("executing", *_JOB_ENDS)(on_signal)


def watch_gc() -> None:
    """Time this process's collections of generations 1 and 2 (``gc.callbacks``; generation
    0's, every 700 allocations and some microseconds long, are left out as too frequent to
    be worth a write each). Installed once per process, however often called.

    A collection can start inside a metric's update, which holds prometheus_client's lock
    (one per process in multi-process mode, not reentrant): observing from the callback
    would wait for that lock for ever. The callback only notes the pause;
    ``record_gc_pauses`` observes it later, after each request."""
    if _on_gc in gc.callbacks:
        return
    gc.callbacks.append(_on_gc)


_gc_started = [0.0]  # one collection runs at a time in a process (the collector's own lock)
_gc_pauses: deque[tuple[str, float]] = deque(maxlen=10_000)  # (generation, seconds)


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if info["generation"] == 0:
        return
    if phase == "start":
        _gc_started[0] = perf_counter()
    else:
        _gc_pauses.append((str(info["generation"]), perf_counter() - _gc_started[0]))


def record_gc_pauses() -> None:
    """Observe the collections ``watch_gc`` noted since the last call."""
    while _gc_pauses:  # after every request: mostly empty, so no exception raised
        try:
            generation, seconds = _gc_pauses.popleft()
        except IndexError:  # taken meanwhile by another thread
            return
        GC_PAUSE_SECONDS.labels(generation).observe(seconds)


# ------------------------------------------------------------------ request latency

UNMATCHED = "<unmatched>"  # no route: a 404 for an unknown path, a slash redirect
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


class RequestMetrics:
    """Pure ASGI middleware: each HTTP request's latency by method, route template (the
    path as routed, ``/api/v1/contacts/{record_id}``) and status class (``2xx`` …)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            status_class = _STATUS_CLASSES[min(max(status // 100, 0), 5)]
            HTTP_REQUEST_SECONDS.labels(method, self._templates.of(scope), status_class).observe(
                perf_counter() - start
            )
            record_gc_pauses()


@dataclass(frozen=True)
class _Candidate:
    regex: Pattern[str] | None
    template: str


class RouteTemplates:
    """The full path template of the route that served a request, from the endpoint the
    router put in the scope (``scope["route"]`` of a route in an included router lacks the
    router's prefix). Built from the app's routes on first use, and again for an endpoint
    it does not know (a route added later); anything else is labelled by what the scope
    says, never by the raw path."""

    def __init__(self) -> None:
        # id(endpoint) -> (endpoint, its routes); the endpoint is kept so the id stays its.
        self._known: dict[int, tuple[object, list[_Candidate]]] = {}

    def of(self, scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        found = self._known.get(id(endpoint))
        if found is None or found[0] is not endpoint:
            self._build(scope.get("app"))
            found = self._known.get(id(endpoint))
            if found is None or found[0] is not endpoint:
                route = scope.get("route")
                template = getattr(route, "path_format", None) or "<other>"
                found = self._known[id(endpoint)] = (endpoint, [_Candidate(None, template)])
        candidates = found[1]
        if len(candidates) > 1:  # one endpoint under several paths: the one that matched
            path = scope.get("path", "")
            for candidate in candidates:
                if candidate.regex is not None and candidate.regex.match(path):
                    return candidate.template
        return candidates[0].template

    def _build(self, app: Any) -> None:
        routes = getattr(app, "routes", None)
        if routes is None:
            return
        from starlette.routing import Mount

        try:  # FastAPI >= 0.137 keeps included routers as nodes; this flattens them.
            from fastapi.routing import iter_route_contexts
        except ImportError:  # pragma: no cover - older FastAPI: app.routes is already flat
            flat: list[Any] = list(routes)
        else:
            flat = list(iter_route_contexts(routes))
        known: dict[int, tuple[object, list[_Candidate]]] = {}
        for route in flat:
            original = getattr(route, "original_route", route)
            # A mount's scope carries the mounted app as its endpoint.
            key = original.app if isinstance(original, Mount) else getattr(route, "endpoint", None)
            template = getattr(route, "path_format", None)
            if key is None or not template:
                continue
            entry = known.setdefault(id(key), (key, []))
            entry[1].append(_Candidate(getattr(route, "path_regex", None), template))
        self._known.update(known)


# ------------------------------------------------------------------ several processes


def prepare_processes(
    settings: Settings, *, processes: int = 2, role: str = "gatherly"
) -> Path | None:
    """Set up multi-process metrics in a command that starts other processes (``gatherly
    serve --workers N``, ``gatherly worker --concurrency K``), before they start and
    before this process records any metric.

    Multi-process mode is on when ``processes`` > 1 or ``settings.metrics_dir`` is set (a
    server and separate workers on one machine share it). Its files go to
    ``<metrics_dir>/<role>-<pid>`` (``metrics_dir`` unset: ``metrics`` beside the queue
    file), emptied first, and the directories of earlier commands no longer running are
    removed; children inherit ``PROMETHEUS_MULTIPROC_DIR`` and their metrics live there.
    When that variable is set already (by the operator, or an earlier call), it is left
    alone.

    Returns:
        The directory, or None when one process will run (metrics stay in memory).

    Example:
        >>> prepare_processes(settings, processes=workers, role="serve")  # doctest: +SKIP
    """
    if not re.fullmatch(r"[a-z]+", role):
        raise ValueError(f"role must be lowercase letters, not {role!r}")
    if os.environ.get(MULTIPROC_ENV):
        given = Path(os.environ[MULTIPROC_ENV])
        given.mkdir(parents=True, exist_ok=True)
        _use_files()
        return given
    if processes <= 1 and settings.metrics_dir is None:
        return None
    root = (settings.metrics_dir or Path(settings.queue_path).parent / "metrics").absolute()
    own = root / f"{role}-{os.getpid()}"
    root.mkdir(parents=True, exist_ok=True)
    for group in root.iterdir():
        if group.is_dir() and _GROUP.match(group.name):
            pid = int(group.name.rsplit("-", 1)[1])
            if group == own or not _running(pid):
                shutil.rmtree(group, ignore_errors=True)
    own.mkdir()
    os.environ[MULTIPROC_ENV] = str(own)
    _use_files()
    return own


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _use_files() -> None:
    """Make values from now on live in files, even though prometheus_client was imported
    before the variable was set: it chooses ``values.ValueClass`` at import, and a labelled
    metric makes its values from it on first use. Values made before (none, when called
    as documented) are dropped. Children forked later inherit the choice; spawned ones
    (uvicorn's workers) import afresh with the variable set."""
    if getattr(values.ValueClass, "_multiprocess", False):
        return
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    with warnings.catch_warnings():
        # It warns that clearing does not reach the files: there are none yet to reach.
        warnings.filterwarnings("ignore", "Clearing labels", UserWarning)
        for metric in RECORDED:
            metric.clear()


# ------------------------------------------------------------------ the scrape


def check_token(settings: Settings, authorization: str | None) -> None:
    """Let a scrape through only with the metrics token.

    Raises:
        NotFound: no token is configured (metrics are off).
        Unauthenticated: the ``Authorization: Bearer`` token is missing or wrong.
    """
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not expected:
        raise NotFound("metrics are off: set GATHERLY_METRICS_TOKEN to turn them on")
    if not crypto.bearer_matches(authorization, expected):
        raise Unauthenticated("send the metrics token as 'Authorization: Bearer <token>'")


class Probe:
    """A gauge read when scraped, from the database or the queue; a read that fails leaves
    it out of the answer (and says why in the log) instead of failing the scrape."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float | None]) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read

    def collect(self) -> Iterator[Metric]:
        """The gauge's one sample, if it could be read."""
        try:
            value = self.read()
        except Exception as exc:
            log.warning("metric %s could not be read: %s: %s", self.name, type(exc).__name__, exc)
            return
        if value is not None:
            yield GaugeMetricFamily(self.name, self.documentation, value=value)


def probes(
    *, pending_jobs: Callable[[], int], oldest_change: Callable[[], datetime | None]
) -> list[Probe]:
    """The scrape-time gauges: the queue's depth and the age of the oldest data change
    segments have not taken in yet (0 when none waits)."""

    def age() -> float:
        at = oldest_change()
        if at is None:
            return 0.0
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - at).total_seconds())

    return [
        Probe(QUEUE_PENDING, "Jobs waiting in the queue (read when scraped).", pending_jobs),
        Probe(
            CHANGES_OLDEST_AGE,
            "Age of the oldest data change no segment refresh has processed yet (0: none "
            "waits); read when scraped.",
            age,
        ),
    ]


class _Groups(MultiProcessCollector):
    """prometheus_client's collector over the files of every command's directory on this
    machine (``<metrics_dir>/<role>-<pid>``), not only this process's own."""

    def __init__(self, registry: CollectorRegistry, path: str) -> None:
        super().__init__(registry, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        files: list[str] = []
        for directory in multiprocess_dirs(Path(self._path)):
            files.extend(glob.glob(os.path.join(directory, "*.db")))
        result: Iterable[Metric] = self.merge(sorted(files), accumulate=True)  # type: ignore[no-untyped-call]
        return result


def multiprocess_dirs(own: Path) -> list[Path]:
    """``own`` and, when it is a command's directory, the other commands' beside it."""
    found = {own}
    if _GROUP.match(own.name) and own.parent.is_dir():
        found.update(p for p in own.parent.iterdir() if p.is_dir() and _GROUP.match(p.name))
    return sorted(found)


def exposition(accept: str | None, extra: Sequence[Probe] = ()) -> tuple[bytes, str]:
    """The metrics in the text format the ``Accept`` header asks for, and its media type:
    the default registry with one process, the files of every process in multi-process
    mode; plus the ``extra`` gauges, read now."""
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        _Groups(registry, path)
    else:
        registry.register(REGISTRY)
    for probe in extra:
        registry.register(probe)
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type
