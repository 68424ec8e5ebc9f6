"""Tokens through msal against the emulator's identity endpoints."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from gatherly.core.exceptions import FatalSyncError
from gatherly.graph import ClientSecretCredential, GraphClient, TokenError
from tests.graph.conftest import _open, credential, request_log
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

WEBINARS = "/solutions/virtualEvents/webinars"


def _tokens(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("gatherly_graph_token_requests_total", {"outcome": outcome}) or 0
    )


def test_token_via_msal_is_cached(emulator: Emulator) -> None:
    acquired = _tokens("acquired")
    cred = credential(emulator)
    first = cred.token()
    assert first.count(".") == 2
    assert cred.token() == first
    assert cred.acquired == 1
    assert _tokens("acquired") - acquired == 1  # the metric counts requests, not cache hits
    paths = [(r["method"], r["path"]) for r in request_log(emulator)]
    assert paths == [
        ("GET", f"/{fx.TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{fx.TENANT}/oauth2/v2.0/token"),
    ]


def test_wrong_secret_refused_clearly_secret_never_shown(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-secret-Zq9"
    caplog.set_level(logging.DEBUG)
    refused = _tokens("refused")
    cred = credential(emulator, secret=secret)
    with pytest.raises(TokenError) as info:
        cred.token()
    assert _tokens("refused") - refused == 1
    message = str(info.value)
    assert "invalid_client" in message
    assert "AADSTS7000215" in message
    assert "Invalid client secret" in message
    assert secret not in message
    assert secret not in caplog.text
    assert secret not in repr(cred)
    assert isinstance(info.value, FatalSyncError)


def test_unknown_tenant_refused(emulator: Emulator) -> None:
    cred = ClientSecretCredential(
        f"{emulator.base_url}/no-such-tenant.example", fx.APP, SecretStr(fx.SECRET)
    )
    try:
        with pytest.raises(TokenError, match=r"no-such-tenant\.example"):
            cred.token()
    finally:
        cred.close()


def test_refresh_before_expiry(emulator: Emulator) -> None:
    now = [1000.0]
    cred = ClientSecretCredential(
        f"{emulator.base_url}/{fx.TENANT}",
        fx.APP,
        SecretStr(fx.SECRET),
        clock=lambda: now[0],
        refresh_margin=300,
    )
    _open.append(cred)
    first = cred.token()
    now[0] += 3599 - 301
    assert cred.token() == first
    now[0] += 2  # inside the refresh margin: a new token, not msal's cached one
    second = cred.token()
    assert second != first
    assert cred.acquired == 2


def test_expired_token_triggers_one_refresh(emulator: Emulator) -> None:
    cred = credential(emulator)
    with GraphClient(f"{emulator.base_url}/v1.0", cred) as graph:
        before = cred.token()
        httpx.post(
            f"{emulator.base_url}/_emulator/clock", json={"advance_seconds": 3600}
        ).raise_for_status()
        assert len(graph.get_json(WEBINARS)["value"]) == 2
        assert graph.stats.token_refreshes == 1
        assert cred.token() != before
    statuses = [r["status"] for r in request_log(emulator) if r["path"].startswith("/v1.0")]
    assert statuses == [401, 200]


def test_plain_http_authority_only_on_loopback() -> None:
    with pytest.raises(FatalSyncError, match="loopback"):
        ClientSecretCredential("http://login.example.com/contoso", fx.APP, SecretStr("x"))
    with pytest.raises(FatalSyncError, match="must look like"):
        ClientSecretCredential("login.example.com", fx.APP, SecretStr("x"))
