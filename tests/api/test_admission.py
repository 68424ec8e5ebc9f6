"""A burst of more requests than the database pool holds, for real (uvicorn over loopback):
every one is answered, none waits for the pool's timeout. Without admission control the
process deadlocks — requests holding connections wait for a thread, threads wait for a
connection (core/admission.py) — and answers 500 after 30 seconds."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gatherly.app import create_app
from gatherly.core.config import Settings
from tests.api.conftest import Org
from tests.loopback import serve_asgi

BURST = 60  # more than the 40 threads of the server's pool, with only 3 + 4 connections


def test_a_burst_beyond_the_pool_is_served_in_turn(
    org: Org, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url, queue_path=str(tmp_path / "queue.db"), api_concurrency=3
    )
    app = create_app(settings)
    headers = org.headers["marketer"]
    with serve_asgi(app) as base_url:

        def one(_: int) -> int:
            with httpx.Client(base_url=base_url, timeout=25) as client:
                return client.get("/api/v1/contacts", headers=headers).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(one, range(BURST)))
        took = time.monotonic() - started
        assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert answers == [200] * BURST
    assert took < 20, f"{took:.1f} s: requests waited for the pool's timeout"
    assert app.state.engine.pool.checkedout() == 0
