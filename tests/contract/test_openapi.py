"""Schemathesis fuzzes every route from the OpenAPI document: no input may cause a server
error, and every response must match the documented schema.

Random strings seldom make a well-formed cursor or a criteria tree, so the fuzzing mixes in
the hostile shapes of issue 12 F5 (tests/bad_input.py): forged cursors on every paged list
and extreme values in segment criteria; two tests then send each shape on purpose."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.app import create_app
from gatherly.capture import duplicates
from gatherly.capture import forms as capture_forms
from gatherly.core import migrate
from gatherly.core.config import Settings
from gatherly.core.db import make_engine
from gatherly.core.exceptions import Unauthenticated
from gatherly.graph.transport import SyncASGITransport
from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
from gatherly.journey import service as journey_service
from gatherly.org import defaults
from gatherly.org import service as org_service
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from gatherly.teams.connection import client_factory
from tests import bad_input as bad
from tests import factories as f
from tests.teams.conftest import SAMPLE

HEADERS: dict[str, str] = {}
FUZZ_EXAMPLES = int(os.environ.get("GATHERLY_FUZZ_EXAMPLES", "8"))
# Schemathesis collects operations at import time, so the app exists before the fixtures;
# its database file is created and seeded by the module fixture below.
DB_DIR = Path(tempfile.mkdtemp(prefix="gatherly-contract-"))
DB_URL = f"sqlite:///{DB_DIR / 'contract.db'}"
SETTINGS = Settings(database_url=DB_URL, queue_path=str(DB_DIR / "queue.db"))
APP = create_app(SETTINGS)
# Whatever authority or Graph URL the fuzzer sends to PUT /integrations/teams/connection, the connector
# talks to the bundled emulator in-process: never to the network.
APP.state.graph_client_factory = client_factory(
    SETTINGS,
    transport=SyncASGITransport(create_emulator_app(EmulatorState(load_fixture(SAMPLE)))),
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@schemathesis.serializer("message/rfc822")
def _rfc822(_ctx: Any, value: Any) -> bytes:
    """A raw report posted to the bounce webhook: the generated string, as bytes."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return value if isinstance(value, bytes) else str(value or "").encode()


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


def _has_cursor(operation: Any) -> bool:
    return any(p.name == "cursor" for p in operation.query)


def _default_sort(operation: Any) -> str:
    for p in operation.query:
        if p.name == "sort":
            return str(p.definition.get("schema", {}).get("default", "-id"))
    return "-id"


CRITERIA_BODIES = {"/api/v1/segments/preview", "/api/v1/segments"}


def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    """Mix forged cursors (issue 12 F5) into the queries of every paged list: half the
    examples are the fuzzer's own, half a forged cursor alone (so no other bad parameter
    gets the request refused before the cursor is read)."""
    operation = context.operation
    if operation is None or not _has_cursor(operation):
        return st.just(query)
    forged = bad.cursors(_default_sort(operation)).map(lambda c: {"cursor": c})
    return st.one_of(st.just(query), forged)


def flatmap_body(context: Any, body: Any) -> Any:
    """Mix criteria holding extreme values (issue 12 F5) into segment bodies, likewise."""
    operation = context.operation
    if operation is None or operation.path not in CRITERIA_BODIES:
        return st.just(body)
    named = {"name": "Fuzzed"} if operation.path == "/api/v1/segments" else {}
    return st.one_of(st.just(body), bad.extreme_criteria().map(lambda t: {**named, "criteria": t}))


@schema.hooks.apply(flatmap_body)
@schema.hooks.apply(flatmap_query)
@schema.parametrize()
# 8 examples per operation (~230 operations): every route fuzzed on every run (4 were no
# faster: the time goes per operation, not per example);
# GATHERLY_FUZZ_EXAMPLES=100 for a long run. The forged-cursor and extreme-criteria tests
# below aim on purpose.
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(
        headers=_valid_headers(), checks=[not_a_server_error, response_schema_conformance]
    )


def _valid_headers() -> dict[str, str]:
    """The fuzz admin's token, minted anew once the fuzzer has revoked it (it fuzzes the
    token routes too): otherwise every operation fuzzed after that would only meet a 401."""
    with Session(APP.state.engine) as db:
        secret = HEADERS["Authorization"].removeprefix("Bearer ")
        try:
            org_service.authenticate_token(db=db, secret=secret)
        except Unauthenticated:
            admin = db.scalar(select(User).where(User.username == "fuzz_admin"))
            assert admin is not None
            HEADERS.update(f.token(db, admin))
    return HEADERS


def _operations() -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


@pytest.fixture
def own() -> dict[str, Any]:
    """An administrator of this test's own, with a token, a segment, a list and an event: the fuzzer
    may have revoked, demoted or deleted whatever was made before it."""
    engine = make_engine(DB_URL)
    try:
        with Session(engine) as db:
            admin = f.user(db, f"cursor_admin_{uuid.uuid4().hex[:8]}", None, "System Administrator")
            principal = f.principal(db, admin)
            tree = {"contact": {"country": {"empty": False}}}
            segment = segment_service.create_segment(
                db=db, principal=principal, name="C", criteria=tree
            )
            mlist = segment_service.create_list(db=db, principal=principal, name="C")
            event = f.event(db, admin, "C")
            journey = journey_service.create_journey(db=db, principal=principal, name="C")
            job = duplicates.start_job(
                db=db, principal=principal, record_type="contact", queue=None
            )
            form = capture_forms.create_form(
                db=db,
                principal=principal,
                form_in={"name": "C", "fields": [{"key": "email", "label": "Email"}]},
            )
            page = capture_forms.create_page(
                db=db,
                principal=principal,
                page_in={"name": "C", "slug": f"c-{uuid.uuid4().hex[:8]}"},
            )
            headers = f.token(db, admin)  # commits
            return {
                "headers": headers,
                "segment_id": segment.id,
                "list_id": mlist.id,
                "event_id": event.id,
                "journey_id": journey.id,
                "job_id": job.id,
                "form_id": form.id,
                "page_id": page.id,
            }
    finally:
        engine.dispose()


def test_every_paged_list_refuses_forged_cursors_by_name(own: dict[str, Any]) -> None:
    """Every operation with a ``cursor`` parameter, read off the OpenAPI document (so a new
    paged list is covered too), answers each hostile cursor shape with a 422 naming it."""
    paged = [op for op in _operations() if _has_cursor(op)]
    assert len(paged) >= 8
    for operation in paged:
        path_parameters = {p.name: own[p.name] for p in operation.path_parameters}
        sort = _default_sort(operation)
        for cursor in bad.forged_cursors(sort):
            case = operation.Case(query={"cursor": cursor}, path_parameters=path_parameters)
            response = case.call_and_validate(
                headers=own["headers"], checks=[not_a_server_error, response_schema_conformance]
            )
            assert response.status_code == 422, (operation.label, cursor, response.text)
            assert response.json()["error"]["field"] == "cursor", operation.label


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=bad.extreme_criteria())
def test_segment_criteria_with_extreme_values_are_refused_by_name(
    own: dict[str, Any], tree: Any
) -> None:
    (preview,) = [op for op in _operations() if op.path == "/api/v1/segments/preview"]
    case = preview.Case(body={"criteria": tree})
    response = case.call_and_validate(
        headers=own["headers"], checks=[not_a_server_error, response_schema_conformance]
    )
    assert response.status_code == 422, response.text
    assert str(response.json()["error"]["field"]).startswith("criteria"), response.text
