"""Log lines (issue 20): structlog renders every line — ours, uvicorn's, Huey's — as JSON or
as readable console text, with the request id bound, and secrets masked.

``configure(settings)`` is called where a process starts (``gatherly serve``, ``demo``,
``worker``), never at import. Code keeps logging through the standard library
(``logging.getLogger(__name__).info("sync run %s", run_id)``); a ``ProcessorFormatter``
on the root logger turns each record into an event dict, adds the bound context
(``structlog.contextvars``: ``request_id``, ``task``, ``task_id``) and renders it.

``RequestIds`` is the ASGI side: it gives each request an id (a sane incoming
``X-Request-ID``, else a new one), binds it for the request's lines, returns it in the
response header and writes one access line per request. The job queue carries the id into
the tasks a request queues (``gatherly.jobs.context``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any, Literal, ParamSpec, TypeVar

import structlog
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, Processor, WrappedLogger

from gatherly.core import metrics
from gatherly.core.config import Settings

REQUEST_ID = "request_id"
HEADER = "X-Request-ID"
# An incoming id is kept when it is this (a proxy's or a client's); else a new one is made.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# uvicorn's loggers: their records go to the root's handler like everyone's.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Probes and scrapes come every few seconds: their access lines are DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MASK = "***"

access_log = logging.getLogger("gatherly.access")
P = ParamSpec("P")
R = TypeVar("R")

# ------------------------------------------------------------------ redaction

# A key whose value is never written: password, client_secret, api_token, set-cookie, ...
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|^pwd$|secret|token|authori[sz]ation|cookie|api_?key|private_?key|"
    r"credential|client_state",
    re.IGNORECASE,
)
# Secrets recognised by their shape, wherever they appear in a text. The API token is
# org.service's TOKEN_PREFIX and secrets.token_urlsafe (letters, digits, "-" and "_").
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + MASK),
    (re.compile(r"(?<![A-Za-z0-9_-])gly_[A-Za-z0-9_-]{8,}"), "gly_" + MASK),
    # scheme://user:password@host: userinfo holds no "/", "?", "#" or "@" (RFC 3986).
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):[^\s/?#@]*@"), r"\1:" + MASK + "@"),
    # JSON Web Tokens (Graph's access tokens).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "eyJ" + MASK),
    # key=value and "key": "value" pairs in free text (form bodies, query strings, JSON,
    # headers): the value, quoted or up to a separator.
    (
        re.compile(
            r"((?:password|passwd|secret|token|api_?key|client_state|cookie)"
            r"""[A-Za-z0-9_-]*["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"'&,;}]+)""",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
    # Cookies by name (gatherly_session=…, a CSRF token).
    (re.compile(r"((?:session|csrf)[A-Za-z0-9_-]*=)[^\s\"'&,;}]+", re.IGNORECASE), r"\1" + MASK),
)
_MAYBE = re.compile(
    r"gly_|bearer|basic|://|eyJ|pass|secret|token|key|cookie|state|session|csrf", re.I
)


def redact_text(text: str) -> str:
    """``text`` with every secret of a known shape masked (tokens, Bearer values, URL
    passwords, JWTs, ``password=…`` pairs)."""
    if not _MAYBE.search(text):  # most lines: one scan, no substitutions
        return text
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_KEY.search(key.replace("-", "_")):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if depth < 4 and isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple):
        return [_redact_value("", v, depth + 1) for v in value]
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Mask secrets: values under secret-sounding keys, and secrets of a known shape in
    every text (the message itself, a formatted traceback, bound values)."""
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


# ------------------------------------------------------------------ configuration

# A record's attributes that are not ``extra`` fields; uvicorn's ``color_message`` is its
# message again, with terminal colours.
_NOT_EXTRA = frozenset(
    [
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        *("message", "asctime", "taskName", "color_message"),
    ]
)


def _extra(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """A standard-library record's ``extra={...}`` fields, as bound values."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA and not key.startswith("_"):
                event_dict.setdefault(key, value)
    return event_dict


def _shared() -> list[Processor]:
    """What every line gets, ours through structlog or a library's through logging."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),  # 2026-12-06T10:00:00.1Z
    ]


def _configure_structlog() -> None:
    """structlog's own loggers (``structlog.get_logger()``) hand their lines to logging."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: configure() may run again (tests, the demo) and must take effect.
        cache_logger_on_first_use=False,
    )


def resolve_format(log_format: str, stream: IO[str]) -> Literal["json", "console"]:
    """``auto``: console lines on a terminal, JSON lines otherwise (a file, a collector)."""
    if log_format == "auto":
        return "console" if stream.isatty() else "json"
    return "console" if log_format == "console" else "json"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler ``configure`` installs (and replaces when called again). Without a
    stream of its own it writes to whatever ``sys.stderr`` is at the time, as logging's
    last-resort handler does: a stderr replaced meanwhile (and closed: a test runner's
    capture) must not break logging for the rest of the process."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream or sys.stderr)
        self._own = stream is not None

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._own else sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        self._stream = value


def handler(log_format: str = "auto", stream: IO[str] | None = None) -> logging.Handler:
    """A handler rendering every record (JSON or console), secrets masked; also sets up
    structlog. The factory uvicorn's ``log_config`` names, so that its worker processes
    log the same way (see ``uvicorn_config``)."""
    where = stream or sys.stderr
    _configure_structlog()
    fmt = resolve_format(log_format, where)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=where.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    out = _Handler(stream)
    out.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_shared(), _extra],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks become text before redaction (and Rich's, which would show
                # local variables, is never used): a secret in one is masked too.
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    return out


def configure(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Route every logger (ours, uvicorn's, Huey's) through one handler on ``stream``
    (stderr) in ``settings.log_format``, at ``settings.log_level``. Idempotent: a second
    call replaces the first one's handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler(settings.log_format, stream))
    root.setLevel(settings.log_level.upper())
    # Huey writes two INFO lines for every task and periodic run (a dozen a minute when
    # idle); the jobs log their own outcomes. Its warnings and errors still show.
    verbose = settings.log_level.upper() == "DEBUG"
    logging.getLogger("huey").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in SERVER_LOGGERS:
        server = logging.getLogger(name)
        server.handlers.clear()
        server.propagate = True
        # The root's level, not one an in-process uvicorn (an emulator's) set for all.
        server.setLevel(logging.NOTSET)


def uvicorn_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``log_config``: the same root handler, in the server process and in each
    API process it starts (``--workers``: those are new interpreters, not forks)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "gatherly": {
                "()": f"{__name__}.handler",
                "log_format": resolve_format(settings.log_format, sys.stderr),
            }
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["gatherly"]},
        "loggers": {name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
    }


# ------------------------------------------------------------------ request ids


def current_request_id() -> str | None:
    """The id bound for the request (or the task) this code runs in, if any."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return value if isinstance(value, str) else None


def in_this_context(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with this thread's bound values (the request id, the task), for a function
    another thread runs: a new thread starts with none."""
    bound = structlog.contextvars.get_contextvars()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with structlog.contextvars.bound_contextvars(**bound):
            return fn(*args, **kwargs)

    return run


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if SANE_ID.fullmatch(candidate) else None
    return None


class RequestIds:
    """ASGI middleware: a request id bound for every line of the request, returned in
    ``X-Request-ID``, and one access line (method, route, status, milliseconds).

    Installed around the whole app (``install``), so that the 500 Starlette's error
    middleware answers carries the header and gets its access line too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes = metrics.RouteTemplates()  # the same templates as the metrics'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        header = (HEADER.lower().encode(), request_id.encode())
        status = 500  # unless the app answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != header[0]]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(**{REQUEST_ID: request_id})
        start = time.perf_counter()
        failed = True
        try:
            await self.app(scope, receive, send_with_id)
            failed = False
        finally:
            # The route's template (/email/u/{token}) rather than the path: shorter to group
            # by, and a token in a path never reaches the log.
            path = self._routes.of(scope)
            if path == metrics.UNMATCHED:
                path = scope.get("path", "")
            _access_line(scope, path, status, time.perf_counter() - start)
            # After an error the id stays bound: the server logs the traceback next, in
            # this request's own task (uvicorn gives each a fresh context), and that line
            # needs it most.
            if not failed:
                structlog.contextvars.reset_contextvars(**tokens)


def _access_line(scope: Scope, path: str, status: int, seconds: float) -> None:
    access_log.log(
        logging.DEBUG if path in QUIET_PATHS else logging.INFO,
        "%s %s %s",
        scope.get("method", ""),
        path,
        status,
        extra={
            "method": scope.get("method", ""),
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )


def install(app: Starlette) -> None:
    """Wrap ``app``'s middleware stack (built on its first request) in ``RequestIds``,
    outside Starlette's error middleware, which ``add_middleware`` cannot reach: its 500
    answers get the header and an access line too."""
    build = app.build_middleware_stack

    def build_with_request_ids() -> ASGIApp:
        return RequestIds(build())

    app.build_middleware_stack = build_with_request_ids  # type: ignore[method-assign]
