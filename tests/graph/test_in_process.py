"""The transport seam: the same client and credential run in-process over ASGI."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gatherly.graph import (
    AccessPolicyMissing,
    ClientSecretCredential,
    GraphClient,
    SyncASGITransport,
)
from gatherly.graph_emulator import EmulatorState, create_emulator_app
from tests.graph_emulator import fixture as fx

BASE = "http://graph.test"


@pytest.fixture
def graph() -> GraphClient:
    """A client and msal credential wired to an in-process emulator."""
    transport = SyncASGITransport(create_emulator_app(EmulatorState(fx.build(), page_size=4)))
    cred = ClientSecretCredential(
        f"{BASE}/{fx.DOMAIN}", fx.APP, SecretStr(fx.SECRET), transport=transport
    )
    return GraphClient(f"{BASE}/v1.0", cred, transport=transport)


def test_paging_in_process(graph: GraphClient) -> None:
    regs = list(graph.paginate(f"/solutions/virtualEvents/webinars/{fx.LAUNCH}/registrations"))
    assert len({r["id"] for r in regs}) == len(regs) == fx.REGISTRATION_COUNT
    assert graph.stats.requests == 6  # 23 registrations, 4 a page
    graph.close()


def test_policy_error_in_process(graph: GraphClient) -> None:
    with pytest.raises(AccessPolicyMissing):
        graph.get_json(f"/solutions/virtualEvents/webinars/{fx.HIDDEN}")
    graph.close()
