"""The bundled Microsoft Graph emulator for Teams webinars and town halls (ASGI app, fixture
loader, faults).

Imports nothing from ``gatherly.graph`` or ``gatherly.teams``: the emulator and the
connector are meant to check each other.
"""

from gatherly.graph_emulator.app import create_emulator_app
from gatherly.graph_emulator.fixture import FixtureError, load_fixture, validate_fixture
from gatherly.graph_emulator.state import EmulatorState

__all__ = [
    "EmulatorState",
    "FixtureError",
    "create_emulator_app",
    "load_fixture",
    "validate_fixture",
]
