"""Schemathesis fuzzes every route from the OpenAPI document: no input may cause a server
error, and every response must match the documented schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.orm import Session

from gatherly.app import create_app
from gatherly.core import migrate
from gatherly.core.config import Settings
from gatherly.core.db import make_engine
from gatherly.graph.transport import SyncASGITransport
from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
from gatherly.org import defaults
from gatherly.teams.service import client_factory
from tests import factories as f
from tests.teams.conftest import SAMPLE

HEADERS: dict[str, str] = {}
# Schemathesis collects operations at import time, so the app exists before the fixtures;
# its database file is created and seeded by the module fixture below.
DB_DIR = Path(tempfile.mkdtemp(prefix="gatherly-contract-"))
DB_URL = f"sqlite:///{DB_DIR / 'contract.db'}"
SETTINGS = Settings(database_url=DB_URL, queue_path=str(DB_DIR / "queue.db"))
APP = create_app(SETTINGS)
# Whatever authority or Graph URL the fuzzer sends to PUT /teams/connection, the connector
# talks to the bundled emulator in-process: never to the network.
APP.state.graph_client_factory = client_factory(
    SETTINGS,
    transport=SyncASGITransport(create_emulator_app(EmulatorState(load_fixture(SAMPLE)))),
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[None]:
    engine = make_engine(DB_URL)
    migrate.upgrade(engine)
    with Session(engine) as db:
        defaults.ensure_defaults(db)
        emea = f.bu(db, "EMEA")
        admin = f.user(db, "fuzz_admin", None, "System Administrator")
        f.user(db, "fuzz_marketer", emea, "Marketer")
        for i in range(5):
            f.contact(db, admin, email=f"p{i}@fuzz.example", last_name=f"P{i}")
        HEADERS.update(f.token(db, admin))
        db.commit()
    engine.dispose()
    yield
    APP.state.engine.dispose()
    shutil.rmtree(DB_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(
        headers=HEADERS, checks=[not_a_server_error, response_schema_conformance]
    )
