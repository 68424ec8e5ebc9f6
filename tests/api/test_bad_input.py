"""Issue 12 F5: forged cursors, extreme integers and extreme dates answer 4xx naming the field.

Each of these used to answer 500 (an OverflowError in the SQLite driver, a naive datetime in
the UTC column type, a date that overflows once converted to UTC, or PostgreSQL's
"integer out of range"). They must be refused before any SQL runs, on both backends, with
``{"error": {"code", "message", "field"}}`` naming the field.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.bad_input import EARLY, HUGE_INTS, LATE, NAIVE, forge

# (path, sort, kind of the sort key): every paged list the API serves.
PAGED = [
    ("/contacts", "-modified_at", "time"),
    ("/contacts", "created_at", "time"),
    ("/contacts", "id", "int"),
    ("/contacts", "last_name", "text"),
    ("/leads", "-modified_at", "time"),
    ("/leads", "-id", "int"),
    ("/events", "-start_at", "time"),
    ("/events", "modified_at", "time"),
    ("/events", "-registrant_count", "int"),
    ("/events", "attendee_count", "int"),
    ("/integrations/teams/sync-runs", "-started_at", "time"),
    ("/segments", "-id", "int"),
    ("/lists", "-id", "int"),
    ("/segments/{segment}/members", "created_at", "time"),
    ("/segments/{segment}/members", "id", "int"),
    ("/lists/{list}/members", "-modified_at", "time"),
    ("/lists/{list}/members", "last_name", "text"),
]


@pytest.fixture
def paths(client: TestClient, org: Org) -> dict[str, str]:
    admin = org.headers["admin"]
    segment = client.post(
        f"{API}/segments",
        json={"name": "All", "criteria": {"contact": {"country": {"empty": False}}}},
        headers=admin,
    )
    mlist = client.post(f"{API}/lists", json={"name": "L"}, headers=admin)
    assert segment.status_code == 201, segment.text
    assert mlist.status_code == 201, mlist.text
    return {"segment": str(segment.json()["id"]), "list": str(mlist.json()["id"])}


def _get(
    client: TestClient, org: Org, path: str, sort: str, cursor: str, paths: dict[str, str]
) -> Any:
    url = API + path.format(**paths)
    # /segments, /lists and /integrations/teams/sync-runs have one fixed sort and no sort parameter.
    params = {"cursor": cursor, "sort": sort}
    return client.get(url, params=params, headers=org.headers["admin"])


def _forged_cursors(sort: str, kind: str) -> list[str]:
    wrong_ids = [forge(sort, _valid_value(kind), bad) for bad in HUGE_INTS]
    if kind == "time":
        return [
            forge(sort, {"t": NAIVE}),
            forge(sort, {"t": LATE}),
            forge(sort, {"t": EARLY}),
            forge(sort, {"t": "2026-02-30T00:00:00+00:00"}),
            *wrong_ids,
        ]
    if kind == "int":
        return [forge(sort, bad) for bad in HUGE_INTS] + wrong_ids
    return wrong_ids


def _valid_value(kind: str) -> Any:
    return {"time": {"t": "2026-03-01T09:00:00+00:00"}, "int": 5, "text": "Smith"}[kind]


@contextmanager
def case(label: object) -> Iterator[None]:
    """Name the case in a failure (the cases share one organisation, built once per test)."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{label}: {exc}") from exc


def test_a_forged_cursor_is_a_422_naming_the_cursor(
    client: TestClient, org: Org, paths: dict[str, str]
) -> None:
    for path, sort, kind in PAGED:
        for cursor in _forged_cursors(sort, kind):
            with case((path, sort, cursor)):
                response = _get(client, org, path, sort, cursor, paths)
                error = assert_error(response, 422, "cursor")
                assert "cursor" in error["message"], error
        # A well-formed cursor of the same shape is accepted (the refusals above are about
        # the values, not the shape).
        fine = _get(client, org, path, sort, forge(sort, _valid_value(kind), 7), paths)
        assert fine.status_code == 200, (path, sort, fine.text)


def test_a_cursor_that_is_not_json_or_too_deep_or_too_long_is_refused(
    client: TestClient, org: Org
) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 700 + b"]" * 700).decode()
    for cursor in (deep, "A" * 5000, "%%%", forge("-modified_at", {"t": None})):
        response = client.get(
            f"{API}/contacts", params={"cursor": cursor}, headers=org.headers["admin"]
        )
        assert_error(response, 422, "cursor")


# ---------------------------------------------------------------- segment criteria

CRITERIA: list[tuple[Any, str]] = [
    (
        {"participation": "registered", "event": {"registrants": {"gt": 99999999999999999999}}},
        "criteria.event.registrants",
    ),
    (
        {"participation": "attended", "event": {"attendees": {"lt": -(2**63) - 1}}},
        "criteria.event.attendees",
    ),
    ({"participation": "registered", "event": {"id": 2**63}}, "criteria.event.id"),
    ({"participation": "registered", "event": {"id": {"in": [1, 2**64]}}}, "criteria.event.id"),
    ({"contact": {"id": 2**63}}, "criteria.contact.id"),
    ({"contact": {"id": {"between": [1, 2**63]}}}, "criteria.contact.id"),
    ({"contact": {"business_unit_id": {"not_in": [2**64]}}}, "criteria.contact.business_unit_id"),
    ({"contact": {"business_unit_id": 2**31}}, "criteria.contact.business_unit_id"),
    ({"list": 2**64}, "criteria.list"),
    ({"list": {"id": 2**63}}, "criteria.list"),
    (
        {"any": [{"contact": {"country": "DE"}}, {"list": 99999999999999999999}]},
        "criteria.any[1].list",
    ),
    ({"contact": {"created_at": {"before": LATE}}}, "criteria.contact.created_at"),
    ({"contact": {"created_at": {"after": EARLY}}}, "criteria.contact.created_at"),
    ({"contact": {"modified_at": {"on": LATE}}}, "criteria.contact.modified_at"),
    (
        {"contact": {"created_at": {"between": [EARLY, "2026-01-01"]}}},
        "criteria.contact.created_at",
    ),
    ({"contact": {"created_at": {"between": ["2026-01-01", LATE]}}}, "criteria.contact.created_at"),
    ({"participation": "attended", "event": {"start": {"after": LATE}}}, "criteria.event.start"),
    ({"contact": {"custom.score": {"gt": 10**400}}}, "criteria.contact.custom.score"),
    ({"contact": {"custom.score": {"in": [1, 10**400]}}}, "criteria.contact.custom.score"),
    ({"contact": {"custom.score": {"between": ["a", 5]}}}, "criteria.contact.custom.score"),
]


def test_extreme_values_in_criteria_are_a_422_naming_the_node(client: TestClient, org: Org) -> None:
    headers = org.headers["admin"]
    for tree, field in CRITERIA:
        with case(tree):
            preview = client.post(
                f"{API}/segments/preview", json={"criteria": tree}, headers=headers
            )
            error = assert_error(preview, 422, field)
            assert error["message"].startswith(f"{field}: "), error
            created = client.post(
                f"{API}/segments", json={"name": "Edge", "criteria": tree}, headers=headers
            )
            assert_error(created, 422, field)
    assert client.get(f"{API}/segments/count", headers=headers).json()["count"] == 0


FITTING = [
    {"contact": {"created_at": {"before": "9999-12-31T23:59:59+00:00"}}},
    {"contact": {"created_at": {"on": "9999-12-31"}}},
    {"contact": {"created_at": {"after": "0001-01-01T00:00:00Z"}}},
    {"contact": {"created_at": {"between": ["0001-01-01", "9999-12-31"]}}},
    {"contact": {"id": {"between": [-(2**31), 2**31 - 1]}}},
    {"participation": "registered", "event": {"registrants": {"gt": 2**31 - 1}}},
]


def test_the_extremes_that_fit_are_accepted(client: TestClient, org: Org) -> None:
    for tree in FITTING:
        with case(tree):
            _accepted(client, org, tree)


def _accepted(client: TestClient, org: Org, tree: Any) -> None:
    headers = org.headers["admin"]
    preview = client.post(f"{API}/segments/preview", json={"criteria": tree}, headers=headers)
    assert preview.status_code == 200, preview.text
    created = client.post(
        f"{API}/segments", json={"name": "Edge", "criteria": tree}, headers=headers
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    refreshed = client.post(f"{API}/segments/{segment_id}/refresh", headers=headers)
    assert refreshed.status_code == 200, refreshed.text
    contact = org.contacts["admin"]
    explained = client.get(
        f"{API}/segments/{segment_id}/explain", params={"contact_id": contact}, headers=headers
    )
    assert explained.status_code == 200, explained.text


def test_non_finite_numbers_in_criteria_are_refused(client: TestClient, org: Org) -> None:
    # Python's JSON reader takes NaN and Infinity; the criteria must not.
    headers = {**org.headers["admin"], "Content-Type": "application/json"}
    for body, field in (
        ('{"criteria": {"participation": "attended", "min_minutes": NaN}}', "criteria.min_minutes"),
        (
            '{"criteria": {"contact": {"custom.score": {"gte": Infinity}}}}',
            "criteria.contact.custom.score",
        ),
        ('{"criteria": {"contact": {"custom.score": NaN}}}', "criteria.contact.custom.score"),
    ):
        response = client.post(f"{API}/segments/preview", content=body, headers=headers)
        if response.status_code == 422 and response.json()["error"]["field"] in ("body", None):
            continue  # the JSON reader refused it first: also fine
        assert_error(response, 422, field)


def test_extreme_ids_in_paths_queries_and_bodies_are_a_422(
    client: TestClient, org: Org, paths: dict[str, str]
) -> None:
    for bad in (2**31, 2**63, 2**64, 99999999999999999999):
        with case(bad):
            _extreme_ids_refused(client, org, paths, bad)


def _extreme_ids_refused(client: TestClient, org: Org, paths: dict[str, str], bad: int) -> None:
    headers = org.headers["admin"]
    for method, url, kwargs, field in (
        ("GET", f"{API}/lists/{bad}", {}, "list_id"),
        ("GET", f"{API}/lists/{bad}/members.csv", {}, "list_id"),
        ("GET", f"{API}/segments/{bad}/members.csv", {}, "segment_id"),
        ("GET", f"{API}/events/{bad}", {}, "event_id"),
        ("GET", f"{API}/contacts", {"params": {"owning_bu_id": bad}}, "owning_bu_id"),
        (
            "GET",
            f"{API}/segments/{paths['segment']}/explain",
            {"params": {"contact_id": bad}},
            "contact_id",
        ),
        (
            "POST",
            f"{API}/lists/{paths['list']}/members",
            {"json": {"contact_ids": [bad]}},
            "contact_ids.0",
        ),
    ):
        response = client.request(method, url, headers=headers, **kwargs)
        assert_error(response, 422, field)


def test_a_nul_in_a_search_or_filter_is_a_422_naming_it(client: TestClient, org: Org) -> None:
    # PostgreSQL cannot compare text holding NUL: refused at the edge, on both backends.
    for kind in ("segments", "lists", "contacts", "leads", "events"):
        for path in (f"{API}/{kind}", f"{API}/{kind}/count"):
            response = client.get(path, params={"q": "a\x00b"}, headers=org.headers["admin"])
            assert_error(response, 422, "q")
        fine = client.get(f"{API}/{kind}", params={"q": "ab"}, headers=org.headers["admin"])
        assert fine.status_code == 200, fine.text
    for path, name in ((f"{API}/contacts", "email"), (f"{API}/events", "organizer")):
        response = client.get(path, params={name: "x\x00@y"}, headers=org.headers["admin"])
        assert_error(response, 422, name)
