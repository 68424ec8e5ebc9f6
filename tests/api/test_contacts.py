"""Contacts through the API: CRUD, input rules, filters, sorting, cursor paging, tombstones."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access.models import RecordShare
from gatherly.contact.models import Contact, Tombstone
from gatherly.contact.service import is_tombstoned
from tests import factories as f
from tests.api.conftest import EVERYTHING, Org
from tests.api.helpers import API, assert_error, count, visible_ids, walk

URL = f"{API}/contacts"


def test_contact_round_trip_normalises_and_defaults_the_owner(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    body = {
        "email": "  Alice.Smith@Example.COM ",
        "first_name": " Alice ",
        "last_name": "Smith",
        "company": "Acme",
        "job_title": "CMO",
        "phone": "+49 (30) 1234-5678 ext. 12",
        "country": "germany",
        "custom": {"fav_color": "blue", "score": 3, "vip": True, "note": None},
    }
    created = client.post(URL, json=body, headers=headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["email"] == "alice.smith@example.com"
    assert record["first_name"] == "Alice"
    assert record["country"] == "DE"
    assert record["custom"] == {"fav_color": "blue", "score": 3, "vip": True, "note": None}
    assert record["owner"] == {"type": "user", "id": org.users["marketer"].id}
    assert record["owning_bu_id"] == org.sales.id
    rid = record["id"]

    assert client.get(f"{URL}/{rid}", headers=headers).json() == record
    row = db.execute(select(Contact).where(Contact.id == rid)).scalar_one()
    assert row.email == "alice.smith@example.com"
    assert row.created_by_id == org.users["marketer"].id
    # Colleagues who reach Sales see it; the Sales EU marketer does not.
    assert client.get(f"{URL}/{rid}", headers=org.headers["manager"]).status_code == 200
    assert_error(client.get(f"{URL}/{rid}", headers=org.headers["eu_marketer"]), 404)

    patched = client.patch(
        f"{URL}/{rid}", json={"job_title": "CEO", "country": "FRA"}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["job_title"] == "CEO"
    assert after["country"] == "FR"
    unchanged = {k: v for k, v in after.items() if k not in {"job_title", "country", "modified_at"}}
    assert unchanged == {
        k: v for k, v in record.items() if k not in {"job_title", "country", "modified_at"}
    }
    assert after["modified_at"] >= record["modified_at"]

    cleared = client.patch(f"{URL}/{rid}", json={"email": None, "custom": {}}, headers=headers)
    assert cleared.json()["email"] is None
    assert cleared.json()["custom"] == {}
    assert cleared.json()["last_name"] == "Smith"

    assert count(client, "contacts", headers) == 4
    assert client.delete(f"{URL}/{rid}", headers=headers).status_code == 204
    assert_error(client.get(f"{URL}/{rid}", headers=headers), 404, "id")
    assert_error(client.delete(f"{URL}/{rid}", headers=headers), 404)
    assert count(client, "contacts", headers) == 3


def test_delete_leaves_a_tombstone_and_drops_the_shares(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["marketer"]
    share = {"principal_type": "user", "principal_id": org.users["eu_marketer"].id}
    shared = client.post(f"{URL}/{rid}/shares", json={**share, "rights": ["read"]}, headers=headers)
    assert shared.status_code == 201
    assert not is_tombstoned(db=db, record_type="contact", email="marketer@example.com")

    assert client.delete(f"{URL}/{rid}", headers=headers).status_code == 204

    db.expire_all()
    assert is_tombstoned(db=db, record_type="contact", email=" Marketer@Example.com ")
    assert is_tombstoned(
        db=db, record_type="contact", email="marketer@example.com", owning_bu_id=org.sales.id
    )
    assert not is_tombstoned(
        db=db, record_type="contact", email="marketer@example.com", owning_bu_id=org.support.id
    )
    assert not is_tombstoned(db=db, record_type="lead", email="marketer@example.com")
    stone = db.execute(select(Tombstone)).scalar_one()
    assert (stone.record_id, stone.deleted_by_id) == (rid, org.users["marketer"].id)
    assert db.get(Contact, rid) is None
    assert db.execute(select(RecordShare)).scalars().all() == []
    assert count(client, "contacts", org.headers["eu_marketer"]) == 1


BAD_CONTACTS: list[tuple[dict[str, Any], str]] = [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b..example"}, "email"),
    ({"email": 42}, "email"),
    ({"country": "Atlantis"}, "country"),
    ({"phone": "call me maybe"}, "phone"),
    ({"custom": {"Fav Color": "blue"}}, "custom"),
    ({"custom": {"9lives": 1}}, "custom"),
    ({"custom": {"note": "x" * 2001}}, "custom"),
    ({"first_name": "x" * 101}, "first_name"),
    ({"nickname": "Al"}, "nickname"),
    ({"owning_bu_id": 1}, "owning_bu_id"),
]


def test_bad_contact_input_is_422_naming_the_field(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["marketer"]
    for body, field in BAD_CONTACTS:
        error = assert_error(client.post(URL, json=body, headers=headers), 422, field)
        assert error["code"] == "validation_failed"
        assert_error(client.patch(f"{URL}/{rid}", json=body, headers=headers), 422, field)
    bad_owners: list[tuple[Any, str]] = [
        ({"type": "group", "id": 1}, "owner.type"),
        ({"type": "user"}, "owner.id"),
        ("marketer", "owner"),
    ]
    for owner, field in bad_owners:
        assert_error(client.post(URL, json={"owner": owner}, headers=headers), 422, field)
    # The owner is changed by assign, never by PATCH.
    owner = {"type": "user", "id": org.users["manager"].id}
    assert_error(client.patch(f"{URL}/{rid}", json={"owner": owner}, headers=headers), 422, "owner")
    not_json = client.post(
        URL, content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert_error(not_json, 422)
    assert_error(client.post(URL, json=[1, 2], headers=headers), 422)
    # Nothing was created or changed.
    assert count(client, "contacts", org.headers["admin"]) == len(EVERYTHING)
    assert client.get(f"{URL}/{rid}", headers=headers).json()["email"] == "marketer@example.com"


def test_create_checks_the_owner(client: TestClient, org: Org) -> None:
    marketer, assistant = org.headers["marketer"], org.headers["assistant"]
    colleague = {"type": "user", "id": org.users["assistant"].id}
    made = client.post(URL, json={"last_name": "x", "owner": colleague}, headers=marketer)
    assert made.status_code == 201
    assert made.json()["owning_bu_id"] == org.sales.id
    # A business-unit creator cannot place a record in another BU ...
    elsewhere = {"type": "user", "id": org.users["support_assistant"].id}
    denied = client.post(URL, json={"owner": elsewhere}, headers=marketer)
    assert_error(denied, 403, "owner")
    # ... a user-level creator only for themselves or their teams, in the team's BU.
    other = {"type": "user", "id": org.users["marketer"].id}
    assert_error(client.post(URL, json={"owner": other}, headers=assistant), 403, "owner")
    team = {"type": "team", "id": org.campaign.id}
    by_team = client.post(URL, json={"last_name": "t", "owner": team}, headers=assistant)
    assert by_team.status_code == 201
    assert by_team.json()["owning_bu_id"] == org.support.id
    assert by_team.json()["owner"] == team
    assert_error(client.post(URL, json={"owner": team}, headers=marketer), 403, "owner")
    ghost = {"type": "user", "id": 999999}
    assert_error(client.post(URL, json={"owner": ghost}, headers=marketer), 404, "owner.id")
    ghost_team = {"type": "team", "id": 999999}
    assert_error(client.post(URL, json={"owner": ghost_team}, headers=marketer), 404, "owner.id")
    assert count(client, "contacts", org.headers["admin"]) == len(EVERYTHING) + 2
    # The assistant reads what they created for their team; the marketer does not.
    assert count(client, "contacts", assistant) == 4  # own, team, and the two new ones
    assert_error(client.get(f"{URL}/{by_team.json()['id']}", headers=marketer), 404)


@pytest.fixture
def people(db: Session, org: Org) -> dict[str, int]:
    """More Sales contacts with varied fields, for filters and sorting (admin sees all)."""
    rows: dict[str, dict[str, Any]] = {
        "ada": {"email": "ada@lovelace.example", "company": "Analytical", "country": "GB"},
        "bob": {"email": "bob@builder.example", "company": "BuildCo", "country": "DE"},
        "cyd": {"email": None, "company": "analytical", "country": None},
        "dee": {"email": "dee@acme.example", "company": "Acme Corp", "country": "DE"},
    }
    ids = {}
    for name, extra in rows.items():
        ids[name] = f.contact(
            db,
            org.users["marketer"],
            first_name=name.capitalize(),
            last_name=f"{name}son",
            **extra,
        ).id
    ids["teamed"] = f.contact(db, org.campaign, last_name="teamed", company="Acme Corp").id
    db.commit()
    return ids


def test_filters_select_the_matching_readable_contacts(
    client: TestClient, org: Org, people: dict[str, int]
) -> None:
    admin, marketer = org.headers["admin"], org.headers["marketer"]

    def ids(*names: str) -> set[int]:
        return {people[n] if n in people else org.contacts[n] for n in names}

    cases: list[tuple[dict[str, Any], set[int]]] = [
        ({"q": "ADA"}, ids("ada")),  # first name, case-insensitive
        ({"q": "lovelace"}, ids("ada")),  # email
        ({"q": "analyt"}, ids("ada", "cyd")),  # company, any case
        ({"q": "bobson"}, ids("bob")),  # last name
        ({"email": " BOB@Builder.example "}, ids("bob")),  # normalised like input
        ({"country": "de"}, ids("bob", "dee", "manager", "marketer")),
        ({"country": "Germany"}, ids("bob", "dee", "manager", "marketer")),  # like input
        ({"country": "GBR"}, ids("ada")),
        ({"company": "acme corp"}, ids("dee", "teamed")),
        ({"owning_bu_id": org.support.id}, ids("support", "team", "teamed")),
        ({"owner_type": "team"}, ids("team", "teamed")),
        ({"owner_id": org.users["manager"].id}, ids("manager")),
        ({"owner_type": "team", "owner_id": org.campaign.id}, ids("team", "teamed")),
        ({"owner_type": "team", "owner_id": org.users["manager"].id}, set()),
        ({"country": "DE", "company": "BuildCo"}, ids("bob")),
        ({"q": "nobody-has-this"}, set()),
        ({"q": " ada adason"}, ids("ada")),  # first and last name together
        ({"q": "a_a"}, set()),  # _ and % are literal, not wildcards
        ({"q": "%"}, set()),
    ]
    for params, expected in cases:
        assert visible_ids(client, "contacts", admin, **params) == expected, params
    # The same filters for the Sales marketer keep only what they may read.
    assert visible_ids(client, "contacts", marketer, company="acme corp") == ids("dee")
    assert visible_ids(client, "contacts", marketer, owner_type="team") == set()
    assert visible_ids(client, "contacts", marketer, country="DE") == ids(
        "bob", "dee", "manager", "marketer"
    )


def test_bad_filters_and_paging_parameters_are_422_naming_the_field(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["admin"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"owner_type": "group"}, "owner_type"),
        ({"owning_bu_id": "sales"}, "owning_bu_id"),
        ({"owner_id": "me"}, "owner_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"sort": "password"}, "sort"),
        ({"sort": "-"}, "sort"),
        ({"sort": "owner_id"}, "sort"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),  # base64 of "[]"
        ({"country": "Atlantis"}, "country"),
        ({"status": "new"}, "status"),  # contacts have no status
    ]
    for params, field in cases:
        assert_error(client.get(URL, params=params, headers=headers), 422, field)
    for params, field in cases[:3] + cases[-2:]:
        assert_error(client.get(f"{URL}/count", params=params, headers=headers), 422, field)


def _expected_order(items: list[dict[str, Any]], sort: str) -> list[int]:
    name = sort.lstrip("-")

    def key(item: dict[str, Any]) -> tuple[Any, int]:
        value = item[name]
        if name.endswith("_at"):
            value = datetime.fromisoformat(value)
        return (value if value is not None else "", item["id"])

    ordered = sorted(items, key=key, reverse=sort.startswith("-"))
    return [i["id"] for i in ordered]


def test_cursor_paging_walks_every_sort_without_duplicates_or_omissions(
    client: TestClient, db: Session, org: Org
) -> None:
    # 23 more Sales contacts with many ties: three last names, one shared created_at,
    # five modified_at values, some without email, so the id tie-breaker carries the
    # cursor across page edges.
    same_time = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(23):
        f.contact(
            db,
            org.users["marketer"],
            last_name=["miller", "jones", "khan"][i % 3],
            first_name=f"p{i:02d}",
            company=["a", "b"][i % 2],
            email=None if i % 4 == 0 else f"p{i % 7}@example.com",
            created_at=same_time,
            modified_at=same_time + timedelta(seconds=i % 5, microseconds=i % 2),
        )
    db.commit()
    headers = org.headers["marketer"]
    everything = walk(client, "contacts", headers, limit=500, sort="id")
    assert len(everything) == 26 == count(client, "contacts", headers)
    assert [i["id"] for i in everything] == sorted(i["id"] for i in everything)
    plans = [("last_name", 2), ("-last_name", 5), ("email", 5), ("-email", 7), ("company", 5)]
    plans += [("first_name", 7), ("-created_at", 5), ("modified_at", 5), ("-modified_at", 4)]
    plans += [("-id", 6)]
    for sort, limit in plans:
        ids = [i["id"] for i in walk(client, "contacts", headers, limit=limit, sort=sort)]
        assert len(ids) == len(set(ids)) == 26, (sort, limit)
        assert ids == _expected_order(everything, sort), (sort, limit)
    # Without a sort the list is newest change first.
    default = client.get(URL, params={"limit": 500}, headers=headers).json()["items"]
    assert [i["id"] for i in default] == _expected_order(everything, "-modified_at")


def test_cursor_is_tied_to_its_sort_and_to_the_callers_access(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    first = client.get(URL, params={"limit": 2, "sort": "last_name"}, headers=admin).json()
    cursor = first["next_cursor"]
    assert cursor
    other_sort = client.get(URL, params={"cursor": cursor, "sort": "email"}, headers=admin)
    assert "sort" in assert_error(other_sort, 422, "cursor")["message"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert_error(
        client.get(URL, params={"cursor": tampered, "sort": "last_name"}, headers=admin),
        422,
        "cursor",
    )
    forged = base64.urlsafe_b64encode(json.dumps(["last_name", "", "1"]).encode()).decode()
    assert_error(
        client.get(URL, params={"cursor": forged, "sort": "last_name"}, headers=admin),
        422,
        "cursor",
    )
    # An admin's cursor in a marketer's hands pages the marketer's records only.
    rest = client.get(
        URL,
        params={"cursor": cursor, "sort": "last_name", "limit": 500},
        headers=org.headers["marketer"],
    )
    assert rest.status_code == 200
    seen = {i["id"] for i in rest.json()["items"]}
    assert seen <= org.ids("contacts", {"manager", "marketer", "assistant"})


def test_a_forged_cursor_value_of_the_wrong_type_is_422(client: TestClient, org: Org) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(["-modified_at", "yesterday", 1]).encode())
    response = client.get(
        URL,
        params={"cursor": forged.decode(), "sort": "-modified_at"},
        headers=org.headers["admin"],
    )
    assert_error(response, 422, "cursor")
