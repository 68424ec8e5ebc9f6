"""The emulator served for real: uvicorn on a free loopback port in a background thread."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from gatherly.graph_emulator import EmulatorState, create_emulator_app
from tests.graph_emulator import fixture as fx
from tests.loopback import serve_asgi

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# One SSL context for every test client: httpx builds one per client otherwise, which costs
# about 0.1 s each (the emulator is plain HTTP on loopback; the context is never used).
SSL: ssl.SSLContext = httpx.create_ssl_context()


@dataclass
class Emulator:
    """A running emulator: its base URL and its state."""

    base_url: str
    state: EmulatorState

    def token(self, app: str = fx.APP, secret: str = fx.SECRET) -> str:
        """A fresh access token from the emulator's token endpoint."""
        response = httpx.post(
            f"{self.base_url}/{fx.TENANT}/oauth2/v2.0/token",
            verify=SSL,
            data={
                "client_id": app,
                "client_secret": secret,
                "scope": GRAPH_SCOPE,
                "grant_type": "client_credentials",
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def client(self, token: str | None = None) -> httpx.Client:
        """An httpx client on ``/v1.0`` carrying a bearer token."""
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return httpx.Client(
            base_url=f"{self.base_url}/v1.0", headers=headers, timeout=10, verify=SSL
        )

    def control(self) -> httpx.Client:
        """An httpx client on the ``/_emulator`` control API."""
        return httpx.Client(base_url=f"{self.base_url}/_emulator", timeout=10, verify=SSL)


@contextmanager
def serve(state: EmulatorState) -> Iterator[Emulator]:
    """Serve an emulator state over real HTTP on a free loopback port until the block ends."""
    with serve_asgi(create_emulator_app(state)) as base_url:
        yield Emulator(base_url, state)


@pytest.fixture(scope="session")
def running() -> Iterator[Emulator]:
    """One emulator for the test session (reset before each test)."""
    with serve(EmulatorState(fx.build(), page_size=10)) as emulator:
        yield emulator


@pytest.fixture
def emulator(running: Emulator) -> Emulator:
    """The running emulator, reset to the fixture."""
    httpx.post(f"{running.base_url}/_emulator/reset", verify=SSL).raise_for_status()
    return running


@pytest.fixture
def graph(emulator: Emulator) -> Iterator[httpx.Client]:
    """A client with a token for the fully permitted application."""
    with emulator.client() as client:
        yield client
