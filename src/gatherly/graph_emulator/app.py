"""The Graph emulator's ASGI app, put together from its parts: the identity platform
(``identity``), the ``/v1.0`` webinar and town hall surface (``graph_api``), the
``/_emulator`` control API (``control``) and the front door that logs every request and
injects faults (``front_door``).

Serves what the connector needs to prove SPEC T1 (token, permissions named on 403),
T2 (application access policy 403s and silent omission) and T12 (paging, 429/503/504,
dropped connections, expired tokens).

Also serves the directory's ``/users/delta`` and change-notification subscriptions
(``subscriptions``, delivered by ``notifier``; graph-notifications-townhalls.md §1, §2).

Also serves the tenant's OpenID configuration document
(``GET /{tenant}/v2.0/.well-known/openid-configuration``), which msal reads before it asks
for a token.

Follows ../shared/reference/graph-webinars.md: identity-platform token errors (§1.1),
permissions and the application access policy (§1.2, §1.3), endpoints W1-W4, R1-R4, S1-S2,
A1-A3, M1, C1-C3, T1-T3 (§2), paging (§2.6), the error envelope and throttling (§4); and
../shared/reference/graph-notifications-townhalls.md §3 for town halls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp

from gatherly.graph_emulator import control, graph_api, identity, subscriptions
from gatherly.graph_emulator.front_door import FrontDoor
from gatherly.graph_emulator.state import EmulatorState


def create_emulator_app(state: EmulatorState) -> ASGIApp:
    """Build the emulator's ASGI app around ``state`` (no side effects until served).

    Notification deliveries run on the serving event loop; they stop at the lifespan's
    shutdown, or (servers without lifespan) when the loop ends and cancels them."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.notifier.aclose()

    app = Starlette(
        routes=[
            *identity.routes(),
            *subscriptions.routes(),
            *graph_api.routes(),
            *control.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.emulator = state
    return FrontDoor(app, state)
