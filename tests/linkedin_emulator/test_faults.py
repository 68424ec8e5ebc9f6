"""Faults on ``/rest`` (every Nth throttled or failed), token expiry and lifetime, and the
request statistics."""

from __future__ import annotations

import httpx

from tests.linkedin_emulator.conftest import Emulator

ACCOUNTS = "/adAccountUsers?q=authenticatedUser"


def _faults(emulator: Emulator, **settings: object) -> None:
    emulator.control("POST", "/faults", settings).raise_for_status()


def _run(client: httpx.Client, n: int) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        answer = client.get(ACCOUNTS)
        out.append((answer.status_code, answer.headers.get("Retry-After")))
    return out


def test_every_third_request_is_throttled(emulator: Emulator, keiko: httpx.Client) -> None:
    _faults(emulator, throttle_every=3, retry_after=2)
    assert _run(keiko, 6) == [(200, None), (200, None), (429, "2")] * 2
    assert keiko.get(ACCOUNTS).status_code == 200  # the 7th
    _faults(emulator, retry_after=None)  # the counter restarts; throttle_every is kept
    statuses = _run(keiko, 3)
    assert statuses == [(200, None), (200, None), (429, None)]


def test_throttle_body(emulator: Emulator, keiko: httpx.Client) -> None:
    _faults(emulator, throttle_every=1)
    body = keiko.get(ACCOUNTS).json()
    assert body["status"] == 429
    assert body["code"] == "TOO_MANY_REQUESTS"
    assert isinstance(body["serviceErrorCode"], int)


def test_server_errors(emulator: Emulator, keiko: httpx.Client) -> None:
    _faults(emulator, fail_every=2, fail_status=500)
    assert [s for s, _ in _run(keiko, 4)] == [200, 500, 200, 500]
    _faults(emulator, fail_status=503)
    answers = [keiko.get(ACCOUNTS) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 503]
    assert answers[1].json()["code"] == "SERVICE_UNAVAILABLE"
    _faults(emulator, throttle_every=2, fail_every=3)  # throttling wins when both fall due
    assert [s for s, _ in _run(keiko, 6)] == [200, 429, 503, 429, 200, 429]
    emulator.control("DELETE", "/faults").raise_for_status()
    assert [s for s, _ in _run(keiko, 3)] == [200, 200, 200]


def test_control_and_oauth_requests_are_not_counted(emulator: Emulator) -> None:
    _faults(emulator, throttle_every=2)
    with emulator.rest(emulator.login()["access_token"]) as client:
        statuses = []
        for _ in range(4):
            statuses.append(client.get(ACCOUNTS).status_code)
            emulator.control("GET", "/state").raise_for_status()
            emulator.http.get("/v2/userinfo")
    assert statuses == [200, 429, 200, 429]


def test_expired_tokens_then_refresh(emulator: Emulator) -> None:
    tokens = emulator.login()
    with emulator.rest(tokens["access_token"]) as client:
        assert client.get(ACCOUNTS).status_code == 200
        assert emulator.control("POST", "/tokens/expire").json() == {"expired": 1}
        expired = client.get(ACCOUNTS)
    assert expired.status_code == 401
    assert expired.json() == {
        "status": 401,
        "serviceErrorCode": 65601,
        "code": "EXPIRED_ACCESS_TOKEN",
        "message": "The token used in the request has expired",
    }
    renewed = emulator.refresh(tokens["refresh_token"])
    assert renewed.status_code == 200
    with emulator.rest(renewed.json()["access_token"]) as client:
        assert client.get(ACCOUNTS).status_code == 200


def test_token_lifetime(emulator: Emulator) -> None:
    answer = emulator.control("POST", "/faults", {"token_lifetime": 60})
    assert answer.json()["token_lifetime"] == 60
    tokens = emulator.login()
    assert tokens["expires_in"] in (59, 60)
    emulator.control("POST", "/clock", {"advance_seconds": 61}).raise_for_status()
    with emulator.rest(tokens["access_token"]) as client:
        assert client.get(ACCOUNTS).json()["code"] == "EXPIRED_ACCESS_TOKEN"
    emulator.control("DELETE", "/faults").raise_for_status()
    assert emulator.control("GET", "/state").json()["token_lifetime"] == 3600


def test_bad_fault_settings_are_refused(emulator: Emulator) -> None:
    for body, where in (
        ({"throttle_evry": 2}, "throttle_evry: unknown setting"),
        ({"fail_status": 418}, "fail_status: "),
        ({"throttle_every": -1}, "throttle_every: "),
        ({"token_lifetime": 0}, "token_lifetime: "),
    ):
        answer = emulator.control("POST", "/faults", body)
        assert answer.status_code == 422
        assert answer.json()["error"]["message"].startswith(where)


def test_request_statistics(emulator: Emulator, keiko: httpx.Client) -> None:
    _faults(emulator, throttle_every=2)
    keiko.get(ACCOUNTS)
    keiko.get(ACCOUNTS)
    keiko.get("/leadFormResponses/nope")
    keiko.get("/leadFormResponses/also-nope")
    stats = emulator.control("GET", "/requests").json()
    assert stats["routes"] == {
        "POST /oauth/v2/authorization": {"302": 1},  # the keiko fixture's login
        "POST /oauth/v2/accessToken": {"200": 1},
        "GET /rest/adAccountUsers": {"200": 1, "429": 1},
        "GET /rest/leadFormResponses/{id}": {"404": 1, "429": 1},
    }
    log = stats["log"]
    assert stats["total"] == len(log) == 6
    assert [entry["fault"] for entry in log[2:]] == [None, "429", None, "429"]
    assert log[3]["retry_after"] == 1
    assert emulator.control("GET", "/requests?since=5").json()["log"] == log[5:]
