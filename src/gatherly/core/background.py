"""Serve an ASGI app with uvicorn on a background thread (the demo's emulator, tests), and
check that a port is free before a command starts work that ends in serving on it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from gatherly.core.exceptions import ValidationFailed


def check_port(host: str, port: int, *, option: str = "--port") -> None:
    """Refuse, before any work, to start a server on a port another process holds (a server
    started later would fail only after the work was done)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise ValidationFailed(
            f"{host}:{port} is taken by another program ({exc.strerror or exc}), perhaps "
            f"another Gatherly: stop it, or choose a free port with {option} "
            f"(make demo PORT={port + 10})",
            field="port",
        ) from None
    finally:
        probe.close()


def free_port(host: str = "127.0.0.1", preferred: int = 0) -> int:
    """``preferred`` when it is free, else a port the system says is free now."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host}")


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` until the block ends; ``port=0`` picks a free port. Yields the base URL."""
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()  # the port is taken: the caller may try another
        raise
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="critical", access_log=False, lifespan="off", ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"could not serve on {host}:{bound}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
