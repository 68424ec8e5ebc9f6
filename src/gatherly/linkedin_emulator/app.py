"""The LinkedIn emulator's ASGI app, put together from its parts: OAuth 2.0 (``oauth``), the
``/rest`` Lead Sync surface and ``/v2/userinfo`` (``rest_api``), the ``/_emulator`` control
API (``control``) and the front door that logs requests and injects faults (``front_door``).

Follows ../shared/reference/linkedin-lead-sync.md; what it infers is listed in
docs/linkedin-emulator.md.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from gatherly.linkedin_emulator import control, oauth, rest_api
from gatherly.linkedin_emulator.front_door import FrontDoor
from gatherly.linkedin_emulator.state import LinkedInState


def create_linkedin_app(state: LinkedInState) -> ASGIApp:
    """Build the emulator's ASGI app around ``state`` (no side effects until served)."""
    app = Starlette(routes=[*oauth.routes(), *rest_api.routes(), *control.routes()])
    app.state.linkedin = state
    return FrontDoor(app, state)
