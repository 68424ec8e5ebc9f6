"""The Graph client against the emulator served for real on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gatherly.graph import ClientSecretCredential, GraphClient
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator, running
from tests.loopback import serve_asgi

__all__ = ["running"]


def credential(
    emulator: Emulator, app: str = fx.APP, secret: str = fx.SECRET
) -> ClientSecretCredential:
    """A msal credential whose authority is the emulator (closed after the test)."""
    cred = ClientSecretCredential(f"{emulator.base_url}/{fx.TENANT}", app, SecretStr(secret))
    _open.append(cred)
    return cred


_open: list[ClientSecretCredential] = []


@pytest.fixture(autouse=True)
def _close_credentials() -> Iterator[None]:
    """Close the credentials a test made, passed or failed."""
    yield
    while _open:
        _open.pop().close()


def faults(emulator: Emulator, **settings: Any) -> None:
    """Configure the emulator's fault injection."""
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def request_log(emulator: Emulator) -> list[dict[str, Any]]:
    """The emulator's request log."""
    log: list[dict[str, Any]] = httpx.get(f"{emulator.base_url}/_emulator/requests").json()["value"]
    return log


class StaticCredential:
    """A fixed bearer token, for the tests' own little servers that check none."""

    def token(self) -> str:
        """The fixed token."""
        return "static-token"

    def invalidate(self) -> None:
        """Nothing to forget."""


serve = serve_asgi  # the tests import it from here


@pytest.fixture
def emulator(running: Emulator) -> Emulator:
    """The running emulator, reset to the fixture."""
    httpx.post(f"{running.base_url}/_emulator/reset").raise_for_status()
    return running


@pytest.fixture
def client(emulator: Emulator) -> Iterator[GraphClient]:
    """A Graph client for the fully permitted app, fast retries, default rate."""
    cred = credential(emulator)
    with GraphClient(
        f"{emulator.base_url}/v1.0", cred, backoff_base=0.01, backoff_max=0.05, seed=1
    ) as graph:
        yield graph
    cred.close()
