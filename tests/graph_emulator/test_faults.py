"""Fault injection (reproducible for a seed) and the request log."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gatherly.graph_emulator import EmulatorState, create_emulator_app
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

W = "/solutions/virtualEvents/webinars"


def _faults(emulator: Emulator, **settings: Any) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def _run(emulator: Emulator, graph: httpx.Client, n: int) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        response = graph.get(W)
        out.append((response.status_code, response.headers.get("Retry-After")))
    return out


def test_same_seed_same_faults(emulator: Emulator, graph: httpx.Client) -> None:
    settings = {"rate": 0.5, "seed": 7, "kinds": ["429", "503", "504"], "retry_after": 2}
    _faults(emulator, **settings)
    first = _run(emulator, graph, 40)
    _faults(emulator, **settings)
    second = _run(emulator, graph, 40)
    assert first == second
    statuses = {s for s, _ in first}
    assert statuses == {200, 429, 503, 504}
    throttled = [retry for s, retry in first if s == 429]
    assert "2" in throttled
    assert None in throttled
    _faults(emulator, **{**settings, "seed": 8})
    assert _run(emulator, graph, 40) != first


def test_throttle_body_matches_graph(emulator: Emulator, graph: httpx.Client) -> None:
    _faults(emulator, rate=1.0, seed=1, kinds=["429"])
    error = graph.get(W).json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["innerError"]["status"] == "429"
    assert {"date", "request-id"} <= set(error["innerError"])


def test_expired_token_fault(emulator: Emulator, graph: httpx.Client) -> None:
    _faults(emulator, rate=1.0, seed=1, kinds=["expired_token"])
    response = graph.get(W)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_drop_breaks_the_connection(emulator: Emulator, graph: httpx.Client) -> None:
    _faults(emulator, rate=1.0, seed=1, kinds=["drop"])
    with pytest.raises(httpx.RemoteProtocolError):
        graph.get(W)
    _faults(emulator, rate=0)
    assert graph.get(W).status_code == 200


def test_slow_fault_delays(emulator: Emulator, graph: httpx.Client) -> None:
    _faults(emulator, rate=1.0, seed=1, kinds=["slow"], slow_seconds=0.3)
    assert graph.get(W).status_code == 200
    log = httpx.get(f"{emulator.base_url}/_emulator/requests").json()["value"]
    assert log[-1]["fault"] == "slow"
    assert log[-1]["duration_ms"] >= 300


def test_unknown_fault_kind_is_refused(emulator: Emulator) -> None:
    response = httpx.post(
        f"{emulator.base_url}/_emulator/faults", json={"rate": 0.5, "kinds": ["boom"]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("kinds[0]: ")


def test_request_log_records_method_path_status_time(
    emulator: Emulator, graph: httpx.Client
) -> None:
    graph.get(W)
    graph.get(f"{W}/nope")
    log = httpx.get(f"{emulator.base_url}/_emulator/requests").json()["value"]
    assert [entry["method"] for entry in log] == ["POST", "GET", "GET"]  # token, then two calls
    assert log[0]["path"] == f"/{fx.TENANT}/oauth2/v2.0/token"
    assert [entry["status"] for entry in log] == [200, 200, 404]
    assert log[1]["path"] == f"/v1.0{W}"
    assert all(entry["time"].endswith("Z") for entry in log)
    assert all(entry["fault"] is None for entry in log)


def test_faults_in_process_through_asgi_transport() -> None:
    state = EmulatorState(fx.build())
    app = create_emulator_app(state)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://graph.test") as client:
            token = (
                await client.post(
                    f"/{fx.TENANT}/oauth2/v2.0/token",
                    data={
                        "client_id": fx.APP,
                        "client_secret": fx.SECRET,
                        "scope": "https://graph.microsoft.com/.default",
                        "grant_type": "client_credentials",
                    },
                )
            ).json()["access_token"]
            await client.post("/_emulator/faults", json={"rate": 0.3, "seed": 3, "kinds": ["503"]})
            headers = {"Authorization": f"Bearer {token}"}
            return [(await client.get(f"/v1.0{W}", headers=headers)).status_code for _ in range(30)]

    first = asyncio.run(scenario())
    state.reset()
    assert asyncio.run(scenario()) == first
    assert set(first) == {200, 503}


def test_payment_required_only_on_metered_apis(emulator: Emulator, graph: httpx.Client) -> None:
    _faults(emulator, rate=1.0, seed=1, kinds=["402"])
    assert graph.get(W).status_code == 200
    found = graph.get(
        f"/users/{fx.MARTA}/onlineMeetings", params={"$filter": f"JoinWebUrl eq '{fx.JOIN_URL}'"}
    )
    meeting = found.json()["value"][0]["id"]
    response = graph.get(f"/users/{fx.MARTA}/onlineMeetings/{meeting}/transcripts")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "PaymentRequired"


def test_control_index_lists_the_routes(emulator: Emulator) -> None:
    routes = httpx.get(f"{emulator.base_url}/_emulator/").json()["routes"]
    assert "POST /_emulator/faults" in routes
    assert '"drop"' in routes["POST /_emulator/faults"]
