"""Token endpoint, bearer checks, permissions and the application access policy."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import GRAPH_SCOPE, Emulator

WEBINARS = "/solutions/virtualEvents/webinars"


def _token_request(emulator: Emulator, tenant: str = fx.TENANT, **form: str) -> httpx.Response:
    data = {
        "client_id": fx.APP,
        "client_secret": fx.SECRET,
        "scope": GRAPH_SCOPE,
        "grant_type": "client_credentials",
        **form,
    }
    return httpx.post(f"{emulator.base_url}/{tenant}/oauth2/v2.0/token", data=data)


def test_token_is_issued_with_expiry(emulator: Emulator) -> None:
    response = _token_request(emulator)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert body["access_token"].count(".") == 2


def test_token_by_domain_and_basic_auth(emulator: Emulator) -> None:
    response = httpx.post(
        f"{emulator.base_url}/{fx.DOMAIN}/oauth2/v2.0/token",
        data={"scope": GRAPH_SCOPE, "grant_type": "client_credentials"},
        auth=(fx.APP, fx.SECRET),
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


def _aad(response: httpx.Response, status: int, error: str, code: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_wrong_secret_is_refused(emulator: Emulator) -> None:
    _aad(_token_request(emulator, client_secret="nope"), 401, "invalid_client", 7000215)


def test_wrong_tenant_is_refused(emulator: Emulator) -> None:
    response = _token_request(emulator, tenant="00000000-0000-0000-0000-000000000000")
    _aad(response, 400, "invalid_request", 90002)


def test_unknown_client_is_refused(emulator: Emulator) -> None:
    response = _token_request(emulator, client_id="00000000-1111-2222-3333-444444444444")
    _aad(response, 400, "unauthorized_client", 700016)


def test_bad_scope_and_grant_type_are_refused(emulator: Emulator) -> None:
    _aad(_token_request(emulator, scope="User.Read"), 400, "invalid_scope", 70011)
    response = _token_request(emulator, grant_type="password")
    _aad(response, 400, "unsupported_grant_type", 70003)


def _graph_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert len(inner["date"]) == len("2025-09-18T15:40:02")
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer not-a-token", "Access token validation failure. Invalid audience."),
        ("Basic abc", "Access token is empty."),
    ],
)
def test_missing_or_invalid_token_is_401(
    emulator: Emulator, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{emulator.base_url}/v1.0{WEBINARS}", headers=headers)
    assert _graph_error(response, 401, "InvalidAuthenticationToken") == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_expired_token_is_401(emulator: Emulator) -> None:
    with emulator.client() as graph:
        assert graph.get(WEBINARS).status_code == 200
        httpx.post(
            f"{emulator.base_url}/_emulator/clock", json={"advance_seconds": 3600}
        ).raise_for_status()
        message = _graph_error(graph.get(WEBINARS), 401, "InvalidAuthenticationToken")
    assert "expired" in message
    with emulator.client() as fresh:
        assert fresh.get(WEBINARS).status_code == 200


def test_missing_permission_is_403_naming_it(emulator: Emulator) -> None:
    token = emulator.token(fx.LIMITED_APP, fx.LIMITED_SECRET)
    with emulator.client(token) as graph:
        assert graph.get(WEBINARS).status_code == 200
        path = f"{WEBINARS}/{fx.LAUNCH}/sessions/{fx.SESSION}/attendanceReports"
        message = _graph_error(graph.get(path), 403, "Authorization_RequestDenied")
        assert "OnlineMeetingArtifact.Read.All" in message
        meetings = f"/users/{fx.MARTA}/onlineMeetings?$filter=JoinWebUrl eq '{fx.JOIN_URL}'"
        message = _graph_error(graph.get(meetings), 403, "Authorization_RequestDenied")
        assert "OnlineMeetings.Read.All" in message


POLICY = "No Application Access Policy found for this app"


def test_list_silently_omits_organizers_without_policy(graph: httpx.Client) -> None:
    ids = {w["id"] for w in graph.get(WEBINARS).json()["value"]}
    assert ids == {fx.LAUNCH, fx.DRAFT}


@pytest.mark.parametrize(
    "path",
    [
        f"{WEBINARS}/{fx.HIDDEN}",
        f"{WEBINARS}/{quote(fx.HIDDEN)}/registrations",
        f"{WEBINARS}/{fx.HIDDEN}/sessions",
        f"{WEBINARS}/getByUserIdAndRole(userId='{fx.OLAF}',role='organizer')",
        f"/users/{fx.OLAF}/onlineMeetings?$filter=JoinWebUrl eq 'x'",
    ],
)
def test_policy_missing_is_403_on_single_resources(graph: httpx.Client, path: str) -> None:
    assert _graph_error(graph.get(path), 403, "Forbidden") == POLICY


def test_policy_error_is_configurable(emulator: Emulator) -> None:
    emulator.state.policy_code, emulator.state.policy_message = (
        "General",
        "No application access policy found for this app.",
    )
    try:
        with emulator.client() as graph:
            response = graph.get(f"{WEBINARS}/{fx.HIDDEN}")
        assert (
            _graph_error(response, 403, "General")
            == "No application access policy found for this app."
        )
    finally:
        emulator.state.policy_code, emulator.state.policy_message = "Forbidden", POLICY


def test_granting_is_per_organizer(graph: httpx.Client) -> None:
    assert graph.get(f"{WEBINARS}/{fx.LAUNCH}").status_code == 200
    response = graph.get(f"{WEBINARS}/getByUserIdAndRole(userId='{fx.TOMAS}', role='coOrganizer')")
    assert [w["id"] for w in response.json()["value"]] == [fx.DRAFT]


def test_openid_configuration_points_at_the_emulator(emulator: Emulator) -> None:
    response = httpx.get(f"{emulator.base_url}/{fx.DOMAIN}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    body = response.json()
    base = f"{emulator.base_url}/{fx.TENANT}"
    assert body["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert body["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert body["issuer"] == f"{base}/v2.0"
    assert "client_secret_post" in body["token_endpoint_auth_methods_supported"]
    unknown = httpx.get(
        f"{emulator.base_url}/nowhere.example/v2.0/.well-known/openid-configuration"
    )
    assert unknown.status_code == 400
    assert unknown.json()["error_codes"] == [90002]
