"""The LinkedIn emulator served for real: uvicorn on a free loopback port in a background
thread, one for the session, reset before each test."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from gatherly.linkedin_emulator import LinkedInState, create_linkedin_app
from tests.linkedin_emulator import fixture as fx
from tests.loopback import serve_asgi

SCOPE = "r_marketing_leadgen_automation openid profile email"
# One TLS context for every client: httpx builds a new one (~35 ms) for each client otherwise.
TLS = ssl.create_default_context()


def current_version() -> str:
    """An active LinkedIn-Version: this month."""
    return f"{datetime.now(UTC):%Y%m}"


def owner_param(urn: str) -> str:
    """``(sponsoredAccount:urn%3Ali%3A…)`` / ``(organization:…)`` as sent on the wire."""
    kind = "organization" if ":organization:" in urn else "sponsoredAccount"
    return f"({kind}:{quote(urn, safe='')})"


@dataclass
class Emulator:
    """A running emulator: its base URL and its state."""

    base_url: str
    state: LinkedInState
    http: httpx.Client  # on base_url, for control and OAuth calls

    def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """A control request (``/_emulator{path}``)."""
        return self.http.request(method, f"/_emulator{path}", json=body)

    def authorize_params(self, scope: str = SCOPE, state: str = "st-1") -> dict[str, str]:
        """The query of ``GET /oauth/v2/authorization``."""
        return {
            "response_type": "code",
            "client_id": fx.APP,
            "redirect_uri": fx.REDIRECT,
            "state": state,
            "scope": scope,
        }

    def code(self, member: str = fx.KEIKO, scope: str = SCOPE) -> str:
        """Consent as ``member``; the code from the redirect."""
        params = self.authorize_params(scope)
        answer = self.http.post("/oauth/v2/authorization", data={**params, "member": member})
        assert answer.status_code == 302, answer.text
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["state"] == ["st-1"]
        return query["code"][0]

    def exchange(self, code: str, **overrides: str) -> httpx.Response:
        """``POST /oauth/v2/accessToken`` with the authorization code grant."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": fx.REDIRECT,
            "client_id": fx.APP,
            "client_secret": fx.SECRET,
            **overrides,
        }
        return self.http.post("/oauth/v2/accessToken", data=data)

    def refresh(self, refresh_token: str, **overrides: str) -> httpx.Response:
        """``POST /oauth/v2/accessToken`` with the refresh token grant."""
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": fx.APP,
            "client_secret": fx.SECRET,
            **overrides,
        }
        return self.http.post("/oauth/v2/accessToken", data=data)

    def login(self, member: str = fx.KEIKO, scope: str = SCOPE) -> dict[str, Any]:
        """The whole three-legged flow; the token answer."""
        answer = self.exchange(self.code(member, scope))
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def rest(self, token: str) -> httpx.Client:
        """A client on ``/rest`` sending the three headers LinkedIn requires."""
        headers = {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": current_version(),
            "X-Restli-Protocol-Version": "2.0.0",
        }
        return httpx.Client(
            base_url=f"{self.base_url}/rest", headers=headers, timeout=10, verify=TLS
        )


@pytest.fixture(scope="session")
def running() -> Iterator[Emulator]:
    """One emulator for the test session."""
    state = LinkedInState(fx.build())
    with (
        serve_asgi(create_linkedin_app(state)) as base_url,
        httpx.Client(base_url=base_url, timeout=10, verify=TLS) as http,
    ):
        yield Emulator(base_url, state, http)


@pytest.fixture
def emulator(running: Emulator) -> Emulator:
    """The running emulator, reset to the fixture."""
    running.control("POST", "/reset").raise_for_status()
    return running


@pytest.fixture
def keiko(emulator: Emulator) -> Iterator[httpx.Client]:
    """A ``/rest`` client with Keiko's token (roles on both ad accounts, no organization)."""
    with emulator.rest(emulator.login(fx.KEIKO)["access_token"]) as client:
        yield client


@pytest.fixture
def lars(emulator: Emulator) -> Iterator[httpx.Client]:
    """A ``/rest`` client with Lars's token (the other ad account and the organization)."""
    with emulator.rest(emulator.login(fx.LARS)["access_token"]) as client:
        yield client
