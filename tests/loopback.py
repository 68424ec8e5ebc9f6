"""Serve an ASGI app over real HTTP on a free loopback port, for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gatherly.core.background import serve_in_thread


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on 127.0.0.1:<free port>; yields its base URL."""
    with serve_in_thread(app) as base_url:
        yield base_url
