"""Several API processes on one port, each with a listening socket of its own
(``SO_REUSEPORT``): the kernel spreads new connections over them evenly.

uvicorn's ``--workers`` shares one socket, and asyncio accepts every connection waiting
each time it looks: the process that wakes first takes a whole burst — the keep-alive
connections a proxy or a load generator opens at once — and keeps them, so one process
did nearly all the work while the others idled (measured: 10 s of CPU against 3).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Scope

from gatherly.core import metrics

log = logging.getLogger(__name__)
RESTART_PAUSE = 1.0  # seconds between restarts of a process that keeps dying


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def settle(app: ASGIApp) -> None:
    """Call in an API process once its app is built, before it serves: take one request
    through the app, collect, then freeze what is left out of the garbage collector's reach
    (``gc.freeze``), and time the collections from then on (``gatherly_gc_pause_seconds``).

    What is left lives as long as the process: the code, the routes, the models and their
    validators, the mappers, and what the first request builds (Starlette's middleware
    stack, FastAPI's and the metrics' route tables): some 350,000 objects. A full
    collection otherwise walks all of them however little is garbage — one every few
    seconds under load, 30 ms each on a 2-core box with the first request's share alone,
    during which every request in the process waits (bench/load.py prints the pauses).
    """
    asyncio.run(_first_request(app))
    gc.collect()
    gc.freeze()
    metrics.watch_gc()


async def _first_request(app: ASGIApp) -> None:
    """``GET /healthz`` through ``app``, as a server would send it (its answer is dropped)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    await app(scope, receive, send)


def _serve_one(host: str, port: int, options: dict[str, Any]) -> None:
    """One API process: its own socket on the shared port, the app from the environment's
    settings (``gatherly.app:create_app``)."""
    import uvicorn

    config = uvicorn.Config("gatherly.app:create_app", factory=True, **options)
    config.load()  # what uvicorn would do first, here so that the app exists to settle
    settle(config.loaded_app)
    uvicorn.Server(config).run(sockets=[_listen(host, port)])


def run(*, host: str, port: int, processes: int, options: dict[str, Any]) -> None:
    """Run ``processes`` API processes until SIGTERM or SIGINT, then stop them gracefully
    (each lets its requests in flight finish: uvicorn's ``timeout_graceful_shutdown``).
    A process that dies is started again."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as uvicorn does
    stopping = False

    def start(index: int) -> BaseProcess:
        proc = context.Process(
            target=_serve_one, args=(host, port, options), name=f"gatherly-api-{index}"
        )
        proc.start()
        return proc

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = [start(i) for i in range(processes)]
    log.info("serving on %s:%s with %s API processes", host, port, processes)
    try:
        while not stopping:
            time.sleep(0.2)
            for index, child in enumerate(children):
                if not child.is_alive() and not stopping:
                    log.warning(
                        "API process %s exited (%s); starting it again", child.pid, child.exitcode
                    )
                    time.sleep(RESTART_PAUSE)
                    children[index] = start(index)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + float(options.get("timeout_graceful_shutdown") or 0) + 10
        for child in children:
            child.join(max(deadline - time.monotonic(), 0))
            if child.is_alive():
                child.kill()
                child.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
