"""Property (issue 12 F5): hostile values never make the API answer 5xx. Forged cursors on
every paged list, integers beyond any column on id paths and queries, and criteria holding
extreme numbers or dates answer 4xx with ``{"error": {"code", "message", "field"}}``
naming the field, on SQLite and PostgreSQL.

The paged lists are read off the OpenAPI document, so a list added later is covered.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from gatherly.core.bounds import INT_MAX, INT_MIN
from gatherly.segment import criteria as crit
from tests import bad_input as bad
from tests import factories as f
from tests.api.conftest import build_org
from tests.api.helpers import API

EXAMPLES = int(os.environ.get("GATHERLY_BAD_INPUT_EXAMPLES", "30"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OUT_OF_RANGE = st.one_of(
    st.integers(min_value=INT_MAX + 1), st.integers(max_value=INT_MIN - 1)
).filter(lambda n: len(str(n)) < 4000)  # Python refuses to print longer integers
OUT_OF_RANGE_ID = st.one_of(OUT_OF_RANGE, st.integers(max_value=0))
# Date-times that no column holds: naive, or out of range once converted to UTC.
NAIVE_TIMES = st.datetimes().map(lambda d: d.isoformat())
EXTREME_TIMES = bad.EXTREME_DATES


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code < 500, (response.status_code, response.text)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    assert body["error"]["field"], body  # names what was wrong
    return dict(body["error"])


def _paged(client: TestClient) -> list[tuple[str, str]]:
    """(path template, default sort) of every GET with a ``cursor`` parameter."""
    found = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        get = operations.get("get")
        params = {p["name"]: p for p in (get or {}).get("parameters", [])}
        if "cursor" in params:
            sort = params.get("sort", {}).get("schema", {}).get("default", "-id")
            found.append((path, str(sort)))
    return found


@pytest.fixture
def world(client: TestClient, db: Session) -> dict[str, Any]:
    built = build_org(db)
    admin = built.headers["admin"]
    event = f.event(db, built.users["admin"], "Launch")
    db.commit()
    segment = client.post(
        f"{API}/segments",
        json={"name": "Everyone", "criteria": {"contact": {"country": {"empty": False}}}},
        headers=admin,
    ).json()
    mlist = client.post(f"{API}/lists", json={"name": "L"}, headers=admin).json()
    journey = client.post(f"{API}/journeys", json={"name": "J"}, headers=admin).json()
    job = client.post(
        f"{API}/duplicates/jobs", json={"record_type": "contact"}, headers=admin
    ).json()
    form = client.post(
        f"{API}/forms",
        json={"name": "F", "fields": [{"key": "email", "label": "Email"}]},
        headers=admin,
    ).json()
    page = client.post(
        f"{API}/pages", json={"name": "P", "slug": "p-bad-input"}, headers=admin
    ).json()
    ids = {
        "job_id": job["id"],
        "form_id": form["id"],
        "page_id": page["id"],
        "segment_id": segment["id"],
        "list_id": mlist["id"],
        "event_id": event.id,
        "journey_id": journey["id"],
    }
    paged = _paged(client)
    assert len(paged) >= 8, paged
    for path, _sort in paged:
        assert set(re.findall(r"\{(\w+)\}", path)) <= set(ids), path
    return {"client": client, "headers": admin, "ids": ids, "paged": paged}


def _hostile_cursor(sort: str) -> st.SearchStrategy[str]:
    """Cursors every list must refuse: a naive or out-of-range time, or an id or integer
    sort value beyond the column, in the API's own encoding."""
    fine_id = st.integers(min_value=1, max_value=INT_MAX)
    return st.one_of(
        st.builds(bad.forge, st.just(sort), NAIVE_TIMES.map(lambda t: {"t": t}), fine_id),
        st.builds(bad.forge, st.just(sort), EXTREME_TIMES.map(lambda t: {"t": t}), fine_id),
        st.builds(bad.forge, st.just(sort), st.text(max_size=10), OUT_OF_RANGE),
        st.builds(bad.forge, st.just(sort), OUT_OF_RANGE, fine_id),
    )


@FAST
@given(data=st.data())
def test_forged_cursors_on_every_paged_list_are_refused_naming_the_cursor(
    world: dict[str, Any], data: st.DataObject
) -> None:
    path, sort = data.draw(st.sampled_from(world["paged"]), label="list")
    url = path.format(**world["ids"])  # the document's paths are absolute
    hostile = data.draw(_hostile_cursor(sort), label="cursor")
    response = world["client"].get(url, params={"cursor": hostile}, headers=world["headers"])
    error = _error(response)
    assert response.status_code == 422, response.text
    assert error["field"] == "cursor"
    # Anything else in the cursor's encoding: a page or a 422 on the cursor, never a 5xx.
    anything = data.draw(bad.cursors(sort), label="any cursor")
    response = world["client"].get(url, params={"cursor": anything}, headers=world["headers"])
    if response.status_code != 200:
        assert _error(response)["field"] == "cursor"


ID_ROUTES = [
    ("GET", "/contacts/{n}", "record_id"),
    ("GET", "/leads/{n}", "record_id"),
    ("GET", "/events/{n}", "event_id"),
    ("GET", "/segments/{n}", "segment_id"),
    ("GET", "/segments/{n}/members.csv", "segment_id"),
    ("GET", "/lists/{n}", "list_id"),
    ("GET", "/lists/{n}/members", "list_id"),
    ("GET", "/lists/{n}/members.csv", "list_id"),
    ("DELETE", "/lists/{n}", "list_id"),
    ("GET", "/integrations/teams/sync-runs/{n}", "run_id"),
]


@FAST
@given(data=st.data())
def test_ids_beyond_any_column_are_refused_naming_the_parameter(
    world: dict[str, Any], data: st.DataObject
) -> None:
    client, headers = world["client"], world["headers"]
    n = data.draw(OUT_OF_RANGE_ID, label="id")
    method, template, field = data.draw(st.sampled_from(ID_ROUTES), label="route")
    response = client.request(method, API + template.format(n=n), headers=headers)
    assert _error(response)["field"] == field
    assert response.status_code == 422
    query = data.draw(st.sampled_from(["owning_bu_id", "owner_id"]), label="query")
    response = client.get(f"{API}/contacts", params={query: n}, headers=headers)
    assert _error(response)["field"] == query
    segment = world["ids"]["segment_id"]
    response = client.get(
        f"{API}/segments/{segment}/explain", params={"contact_id": n}, headers=headers
    )
    assert _error(response)["field"] == "contact_id"


@FAST
@given(tree=bad.extreme_criteria())
def test_criteria_with_extreme_values_are_refused_naming_the_node(
    world: dict[str, Any], tree: Any
) -> None:
    response = _preview(world, tree)
    error = _error(response)
    assert response.status_code == 422
    assert error["field"].startswith("criteria"), error
    assert error["message"].startswith(error["field"] + ": "), error


def _preview(world: dict[str, Any], tree: Any) -> Any:
    """POST the tree to the preview. Encoded by Python's json, as a careless client would:
    NaN and Infinity go out as the tokens the server's parser accepts, and reach the criteria
    (the test client's own encoder would refuse to send them)."""
    return world["client"].post(
        f"{API}/segments/preview",
        content=json.dumps({"criteria": tree}),
        headers={**world["headers"], "Content-Type": "application/json"},
    )


def _any_value() -> st.SearchStrategy[Any]:
    """Any JSON value a criterion may hold, extremes included."""
    scalars = st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.booleans(),
        st.none(),
        NAIVE_TIMES,
        EXTREME_TIMES,
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.dates().map(lambda d: d.isoformat()),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=3))


FIELDS = [*sorted(crit.CONTACT_FIELDS), "custom.score"]
EVENT_FIELDS = sorted(crit.EVENT_FIELDS)
OPS = sorted(set(crit.STRING_OPS) | set(crit.NUMBER_OPS) | set(crit.DATE_OPS))


def _trees() -> st.SearchStrategy[Any]:
    contact = st.builds(
        lambda f, o, v: {"contact": {f: {o: v}}},
        st.sampled_from(FIELDS),
        st.sampled_from(OPS),
        _any_value(),
    )
    event = st.builds(
        lambda p, f, o, v, m: {"participation": p, "event": {f: {o: v}}, **m},
        st.sampled_from(crit.PARTICIPATIONS),
        st.sampled_from(EVENT_FIELDS),
        st.sampled_from(OPS),
        _any_value(),
        st.one_of(st.just({}), st.builds(lambda v: {"min_minutes": v}, _any_value())),
    )
    lists = st.builds(lambda v: {"list": v}, _any_value())
    return st.one_of(contact, event, lists, bad.extreme_criteria())


@settings(max_examples=200, deadline=None)
@given(tree=_trees())
def test_the_parser_refuses_by_name_or_holds_only_comparable_values(tree: Any) -> None:
    """No database: the parser alone, so many examples cost little. What it accepts holds
    only values SQL can compare: integers in range, finite numbers, times in UTC (the
    preview test below runs such trees against the database)."""
    try:
        parsed = crit.parse(tree)
    except crit.CriteriaError as exc:
        refused: crit.CriteriaError | None = exc
    else:
        refused = None
    if refused is not None:
        assert str(refused.field).startswith("criteria"), refused.message
        assert refused.message.startswith(f"{refused.field}: ")
        return
    for node in parsed.root.walk():
        if node.list_id is not None:
            assert 1 <= node.list_id <= INT_MAX
        for c in node.conditions:
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            whole = c.op not in crit.RELATIVE_OPS and not c.field.startswith("custom.")
            for v in values:
                if whole and isinstance(v, int) and not isinstance(v, bool):
                    assert INT_MIN <= v <= INT_MAX, (c, v)
                if isinstance(v, float):
                    assert math.isfinite(v), (c, v)
                if isinstance(v, datetime):
                    assert v.utcoffset() == timedelta(0), (c, v)


@FAST
@given(tree=_trees())
def test_any_criteria_preview_answers_a_page_or_a_named_4xx(
    world: dict[str, Any], tree: Any
) -> None:
    response = _preview(world, tree)
    if response.status_code != 200:
        assert _error(response)["field"]
