"""OAuth 2.0 three-legged: consent page → code → token → userinfo, and what is refused."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.linkedin_emulator import fixture as fx
from tests.linkedin_emulator.conftest import Emulator


def test_the_consent_page_lists_the_members(emulator: Emulator) -> None:
    params = emulator.authorize_params()
    page = emulator.http.get("/oauth/v2/authorization", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    assert "Allow as Keiko Tanaka" in page.text
    assert "Allow as Lars Eriksen" in page.text
    forms = re.findall(
        r'<form method="post" action="/oauth/v2/authorization">(.*?)</form>', page.text
    )
    assert len(forms) == 3  # one per member, and Cancel
    for name, value in params.items():
        assert f'name="{name}" value="{value}"' in forms[0]
    assert f'name="member" value="{fx.KEIKO}"' in forms[0]


def test_unknown_client_or_redirect_is_a_400_page(emulator: Emulator) -> None:
    url = "/oauth/v2/authorization"
    for change in (
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": ""},
    ):
        params = {**emulator.authorize_params(), **change}
        page = emulator.http.get(url, params=params)
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        posted = emulator.http.post(url, data={**params, "member": fx.KEIKO})
        assert posted.status_code == 400


def test_the_whole_flow(emulator: Emulator) -> None:
    code = emulator.code(fx.KEIKO)
    answer = emulator.exchange(code)
    assert answer.status_code == 200
    tokens = answer.json()
    assert set(tokens) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "scope",
    }
    assert tokens["expires_in"] in (3599, 3600)
    assert 365 * 86400 - 2 <= tokens["refresh_token_expires_in"] <= 365 * 86400
    assert "r_marketing_leadgen_automation" in tokens["scope"].split(",")
    me = emulator.http.get(
        "/v2/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200
    body = me.json()
    assert (body["sub"], body["name"], body["email"]) == (
        fx.KEIKO,
        "Keiko Tanaka",
        "keiko@agency.example",
    )


def test_a_code_is_single_use(emulator: Emulator) -> None:
    code = emulator.code()
    assert emulator.exchange(code).status_code == 200
    again = emulator.exchange(code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_lives_ten_minutes(emulator: Emulator) -> None:
    code = emulator.code()
    emulator.control("POST", "/clock", {"advance_seconds": 601}).raise_for_status()
    assert emulator.exchange(code).json()["error"] == "invalid_grant"


def test_the_redirect_uri_must_be_the_one_authorized(emulator: Emulator) -> None:
    answer = emulator.exchange(emulator.code(), redirect_uri="http://127.0.0.1:9/other")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_client_authentication(emulator: Emulator) -> None:
    code = emulator.code()
    wrong = emulator.exchange(code, client_secret="guess")
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }
    assert emulator.exchange(code, client_id="other").status_code == 401
    missing = emulator.exchange(code, client_secret="")
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert emulator.exchange(code).status_code == 200  # refused attempts did not use the code


def test_cancel_redirects_with_an_error(emulator: Emulator) -> None:
    params = emulator.authorize_params()
    answer = emulator.http.post("/oauth/v2/authorization", data={**params, "action": "cancel"})
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(fx.REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["user_cancelled_authorize"]
    assert query["state"] == ["st-1"]
    assert "code" not in query


def test_refresh_rotates_the_access_token(emulator: Emulator) -> None:
    first = emulator.login()
    emulator.control("POST", "/clock", {"advance_seconds": 10}).raise_for_status()
    answer = emulator.refresh(first["refresh_token"])
    assert answer.status_code == 200
    second = answer.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] == first["refresh_token"]  # LinkedIn keeps it; its TTL runs on
    assert second["refresh_token_expires_in"] <= first["refresh_token_expires_in"] - 10
    with emulator.rest(first["access_token"]) as old:
        refused = old.get("/adAccountUsers", params={"q": "authenticatedUser"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "INVALID_ACCESS_TOKEN"
    with emulator.rest(second["access_token"]) as new:
        assert new.get("/adAccountUsers", params={"q": "authenticatedUser"}).status_code == 200
    bad = emulator.refresh("AQXnot-a-token")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")
    assert emulator.refresh(first["refresh_token"], client_secret="guess").status_code == 401


def test_without_the_lead_sync_scope_rest_calls_are_denied(emulator: Emulator) -> None:
    tokens = emulator.login(scope="openid profile email")
    assert "r_marketing_leadgen_automation" not in tokens["scope"]
    me = emulator.http.get(
        "/v2/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200
    with emulator.rest(tokens["access_token"]) as client:
        denied = client.get("/adAccountUsers", params={"q": "authenticatedUser"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "ACCESS_DENIED"
