"""The bundled LinkedIn emulator for Lead Gen Forms (OAuth 2.0, the Lead Sync REST API,
fixture loader, faults).

Imports nothing from ``gatherly.linkedin``, ``gatherly.capture`` or ``gatherly.contact``:
the emulator and the client are meant to check each other.
"""

from gatherly.linkedin_emulator.app import create_linkedin_app
from gatherly.linkedin_emulator.fixture import FixtureError, load_fixture, validate_fixture
from gatherly.linkedin_emulator.state import LinkedInState

__all__ = [
    "FixtureError",
    "LinkedInState",
    "create_linkedin_app",
    "load_fixture",
    "validate_fixture",
]
