"""The Graph client over real HTTP: paging, error classes, retries, Retry-After, rate limit."""

from __future__ import annotations

import email.utils
import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.core.exceptions import FatalSyncError
from gatherly.graph import (
    AccessPolicyMissing,
    GraphClient,
    GraphNotFound,
    PermissionMissing,
    Throttled,
)
from gatherly.graph_emulator.state import Faults
from tests.graph.conftest import StaticCredential, credential, faults, request_log, serve
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

WEBINARS = "/solutions/virtualEvents/webinars"
FAULT_KINDS = ["429", "503", "504", "drop", "expired_token", "slow"]


def _walk(graph: GraphClient) -> dict[str, list[dict[str, Any]]]:
    """Every webinar's registrations, keyed by webinar id."""
    return {
        w["id"]: list(graph.paginate(f"{WEBINARS}/{w['id']}/registrations"))
        for w in graph.paginate(WEBINARS)
    }


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def test_paging_walks_every_page_once(client: GraphClient, emulator: Emulator) -> None:
    regs = list(client.paginate(f"{WEBINARS}/{fx.LAUNCH}/registrations"))
    ids = [r["id"] for r in regs]
    assert len(ids) == len(set(ids)) == fx.REGISTRATION_COUNT
    assert set(ids) == {fx.registration_id(n) for n in range(fx.REGISTRATION_COUNT)}
    pages = [r for r in request_log(emulator) if r["path"].endswith("/registrations")]
    assert len(pages) == 3  # page size 10
    assert client.stats.requests == 3


def test_repeating_next_link_is_a_paging_loop() -> None:
    async def loop(request: Request) -> Response:
        return JSONResponse(
            {"value": [{"id": "same"}], "@odata.nextLink": f"{request.base_url}v1.0/things?p=2"}
        )

    app = Starlette(routes=[Route("/v1.0/things", loop)])
    with serve(app) as base, GraphClient(f"{base}/v1.0", StaticCredential()) as graph:
        seen: list[dict[str, Any]] = []
        with pytest.raises(FatalSyncError, match="paging loop"):
            seen.extend(graph.paginate("/things"))
        assert len(seen) == 2
        assert graph.stats.requests == 2


def test_next_link_to_another_host_is_refused() -> None:
    async def away(request: Request) -> Response:
        return JSONResponse({"value": [], "@odata.nextLink": "https://evil.example/v1.0/x"})

    app = Starlette(routes=[Route("/v1.0/things", away)])
    with (
        serve(app) as base,
        GraphClient(f"{base}/v1.0", StaticCredential()) as graph,
        pytest.raises(FatalSyncError, match="points elsewhere"),
    ):
        list(graph.paginate("/things"))


def test_missing_permission_is_named(emulator: Emulator) -> None:
    cred = credential(emulator, app=fx.LIMITED_APP, secret=fx.LIMITED_SECRET)
    with GraphClient(f"{emulator.base_url}/v1.0", cred) as graph:
        with pytest.raises(PermissionMissing) as info:
            graph.get_json(
                f"/users/{fx.MARTA}/onlineMeetings",
                {"$filter": f"JoinWebUrl eq '{fx.JOIN_URL}'"},
            )
        assert graph.stats.requests == 1  # 403 is fatal: not retried
    error = info.value
    assert error.status == 403
    assert error.permissions == ["OnlineMeetings.Read.All"]
    assert "OnlineMeetings.Read.All" in str(error)
    assert error.request_id


def test_access_policy_missing(client: GraphClient) -> None:
    with pytest.raises(AccessPolicyMissing) as info:
        client.get_json(f"{WEBINARS}/{fx.HIDDEN}")
    assert info.value.status == 403
    assert info.value.graph_message == "No Application Access Policy found for this app"
    assert "Grant-CsApplicationAccessPolicy" in str(info.value)
    assert isinstance(info.value, FatalSyncError)


def test_not_found_is_fatal_and_not_retried(client: GraphClient, emulator: Emulator) -> None:
    with pytest.raises(GraphNotFound):
        client.get_json(f"{WEBINARS}/00000000-0000-4000-8000-000000000000@{fx.TENANT}")
    assert [r["status"] for r in request_log(emulator) if r["path"].startswith("/v1.0")] == [404]


def test_get_bytes_reads_vtt(client: GraphClient) -> None:
    [meeting] = client.paginate(
        f"/users/{fx.MARTA}/onlineMeetings", {"$filter": f"JoinWebUrl eq '{fx.JOIN_URL}'"}
    )
    path = f"/users/{fx.MARTA}/onlineMeetings/{meeting['id']}/transcripts/{fx.TRANSCRIPT}/content"
    assert client.get_bytes(path, {"$format": "text/vtt"}).decode() == fx.VTT


def test_faulted_walk_equals_fault_free_walk(client: GraphClient, emulator: Emulator) -> None:
    clean = _walk(client)
    assert sum(len(v) for v in clean.values()) > fx.REGISTRATION_COUNT - 1
    faults(emulator, rate=0.2, seed=6, kinds=FAULT_KINDS, retry_after=0.05, slow_seconds=0.05)
    for _ in range(6):
        assert _walk(client) == clean
    met = {r["fault"] for r in request_log(emulator)} - {None}
    assert met == set(FAULT_KINDS)
    stats = client.stats
    assert stats.retries > 0
    assert stats.throttled > 0
    assert stats.unavailable > 0
    assert stats.connection_errors > 0
    assert stats.token_refreshes > 0


def test_retry_after_is_honoured(emulator: Emulator) -> None:
    settings: dict[str, Any] = {"rate": 0.3, "seed": 5, "kinds": ["429"], "retry_after": 0.3}
    faults(emulator, **settings)
    cred = credential(emulator)
    with GraphClient(
        f"{emulator.base_url}/v1.0",
        cred,
        max_attempts=10,
        backoff_base=0.01,
        backoff_max=0.02,
        seed=2,
    ) as graph:
        for _ in range(3):
            list(graph.paginate(f"{WEBINARS}/{fx.LAUNCH}/registrations"))
        assert graph.stats.throttled > 0
    # Replay the emulator's seeded fault stream to learn which 429s carried Retry-After.
    replay = Faults(rate=settings["rate"], seed=settings["seed"], kinds=settings["kinds"])
    replay.rng.seed(settings["seed"])
    calls = [r for r in request_log(emulator) if r["path"].startswith("/v1.0/")]
    honoured = 0
    for entry, following in itertools.pairwise(calls):
        picked = replay.pick()
        assert (picked[0] if picked else None) == entry["fault"]
        if picked is not None and picked[1]:
            assert _at(following) - _at(entry) >= settings["retry_after"]
            honoured += 1
    assert honoured > 0


def test_retry_after_holds_every_thread_of_the_client(emulator: Emulator) -> None:
    faults(emulator, rate=0.25, seed=11, kinds=["429"], retry_after=0.4)
    cred = credential(emulator)
    with (
        GraphClient(
            f"{emulator.base_url}/v1.0", cred, max_attempts=12, backoff_base=0.01, seed=3
        ) as graph,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        list(pool.map(lambda _: graph.get_json(f"{WEBINARS}/{fx.LAUNCH}"), range(24)))
        assert graph.stats.throttled > 0
    calls = [r for r in request_log(emulator) if r["path"].startswith("/v1.0/")]
    told = [
        (_at(r) + r["duration_ms"] / 1000, r["retry_after"])
        for r in calls
        if r["retry_after"] is not None
    ]
    assert told
    for answered, wait in told:
        # Once the 429 was answered, no thread of the client sent before its Retry-After
        # passed. Slack: the client reads the answer on a GIL shared with this in-process
        # server, and one request (a 40 ms rate slot) may already have been admitted.
        early = [
            round(_at(r) - answered, 3)
            for r in calls
            if answered + 0.08 < _at(r) < answered + wait - 0.01
        ]
        assert early == []


def test_retry_after_http_date_is_honoured() -> None:
    arrivals: list[float] = []
    until: list[float] = []

    async def busy(request: Request) -> Response:
        arrivals.append(time.time())
        if len(arrivals) == 1:
            until.append(math.ceil(time.time()) + 1.0)
            date = email.utils.formatdate(until[0], usegmt=True)
            return JSONResponse(
                {"error": {"code": "serviceNotAvailable", "message": "busy"}},
                status_code=503,
                headers={"Retry-After": date},
            )
        return JSONResponse({"value": [{"id": "x"}]})

    app = Starlette(routes=[Route("/v1.0/things", busy)])
    with serve(app) as base, GraphClient(f"{base}/v1.0", StaticCredential()) as graph:
        assert list(graph.paginate("/things")) == [{"id": "x"}]
        assert graph.stats.unavailable == 1
    assert len(arrivals) == 2
    assert arrivals[1] >= until[0]


def test_throttled_until_attempts_run_out(emulator: Emulator) -> None:
    faults(emulator, rate=1.0, seed=1, kinds=["429"], retry_after=0.01)
    cred = credential(emulator)
    with GraphClient(
        f"{emulator.base_url}/v1.0", cred, max_attempts=3, backoff_base=0.01, seed=1
    ) as graph:
        with pytest.raises(Throttled) as info:
            graph.get_json(WEBINARS)
        assert graph.stats.requests == 3
        assert graph.stats.retries == 2
    assert info.value.status == 429


def test_rate_limit_holds(emulator: Emulator) -> None:
    cred = credential(emulator)
    cred.token()
    with GraphClient(f"{emulator.base_url}/v1.0", cred, rate_per_second=10) as graph:
        for _ in range(22):
            graph.get_json(f"{WEBINARS}/{fx.LAUNCH}")
    times = sorted(_at(r) for r in request_log(emulator) if r["path"].startswith("/v1.0/"))
    assert len(times) == 22
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 1.0]
        assert len(in_window) <= 10
    assert times[-1] - times[0] >= 2.0


def test_stats_as_dict(client: GraphClient) -> None:
    client.get_json(WEBINARS)
    assert client.stats.as_dict()["requests"] == 1
    assert datetime.now(UTC).year >= 2024
