"""Leads through the API: their own fields, the status filter and the link to a contact."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.contact.service import is_tombstoned
from tests import factories as f
from tests.api.conftest import EVERYTHING, Org
from tests.api.helpers import API, assert_error, count, lead, visible_ids, walk

URL = f"{API}/leads"


def test_lead_round_trip_with_status_and_contact_link(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    contact_id = org.contacts["manager"]  # a Sales contact the marketer may read
    body = {
        "email": " Lead@Example.COM",
        "last_name": "Prospect",
        "topic": "Webinar follow-up",
        "status": "contacted",
        "source": "webinar",
        "contact_id": contact_id,
        "country": "FR",
    }
    created = client.post(URL, json=body, headers=headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["email"] == "lead@example.com"
    assert (record["topic"], record["status"], record["source"]) == (
        "Webinar follow-up",
        "contacted",
        "webinar",
    )
    assert record["contact_id"] == contact_id
    assert record["owner"] == {"type": "user", "id": org.users["marketer"].id}
    rid = record["id"]
    assert client.get(f"{URL}/{rid}", headers=headers).json() == record

    patched = client.patch(f"{URL}/{rid}", json={"status": "qualified"}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["status"] == "qualified"
    assert patched.json()["topic"] == "Webinar follow-up"  # untouched by PATCH
    assert patched.json()["contact_id"] == contact_id

    # Deleting the linked contact unlinks the lead rather than deleting it.
    assert client.delete(f"{API}/contacts/{contact_id}", headers=headers).status_code == 204
    assert client.get(f"{URL}/{rid}", headers=headers).json()["contact_id"] is None

    assert client.delete(f"{URL}/{rid}", headers=headers).status_code == 204
    assert_error(client.get(f"{URL}/{rid}", headers=headers), 404, "id")
    db.expire_all()
    assert is_tombstoned(
        db=db, record_type="lead", email="lead@example.com", owning_bu_id=org.sales.id
    )
    assert not is_tombstoned(db=db, record_type="contact", email="lead@example.com")
    assert count(client, "leads", org.headers["admin"]) == len(EVERYTHING)


def test_a_lead_links_only_to_a_contact_the_caller_may_read(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    hidden = org.contacts["support"]  # exists, but not readable by the Sales marketer
    for contact_id in (hidden, 999999):
        error = assert_error(
            client.post(URL, json={"contact_id": contact_id}, headers=headers), 422, "contact_id"
        )
        # Same answer for hidden and missing: no existence leak.
        assert error["message"] == f"contact {contact_id} not found"
    rid = org.leads["marketer"]
    assert_error(
        client.patch(f"{URL}/{rid}", json={"contact_id": hidden}, headers=headers),
        422,
        "contact_id",
    )
    assert client.get(f"{URL}/{rid}", headers=headers).json()["contact_id"] is None
    assert count(client, "leads", org.headers["admin"]) == len(EVERYTHING)


def test_linking_needs_append_to_on_the_contact(client: TestClient, db: Session, org: Org) -> None:
    lead_role = f.role(
        db, "Lead worker", Level.BUSINESS_UNIT, "lead", ("create", "read", "write", "append")
    )
    contact_reader = f.role(db, "Contact reader", Level.BUSINESS_UNIT, "contact", ("read",))
    worker = f.user(db, "worker", org.sales, lead_role, contact_reader)
    db.commit()
    headers = f.token(db, worker)
    contact_id = org.contacts["marketer"]
    assert client.get(f"{API}/contacts/{contact_id}", headers=headers).status_code == 200
    assert_error(client.post(URL, json={"contact_id": contact_id}, headers=headers), 403)
    plain = client.post(URL, json={"last_name": "Unlinked"}, headers=headers)
    assert plain.status_code == 201
    assert plain.json()["contact_id"] is None


def test_linking_needs_append_on_the_lead(client: TestClient, db: Session, org: Org) -> None:
    lead_role = f.role(db, "Lead editor", Level.BUSINESS_UNIT, "lead", ("create", "read", "write"))
    contact_role = f.role(
        db, "Contact appender", Level.BUSINESS_UNIT, "contact", ("read", "append_to")
    )
    editor = f.user(db, "editor", org.sales, lead_role, contact_role)
    db.commit()
    headers = f.token(db, editor)
    contact_id = org.contacts["marketer"]
    assert_error(client.post(URL, json={"contact_id": contact_id}, headers=headers), 403)
    rid = org.leads["marketer"]
    assert_error(
        client.patch(f"{URL}/{rid}", json={"contact_id": contact_id}, headers=headers), 403
    )
    assert client.get(f"{URL}/{rid}", headers=headers).json()["contact_id"] is None


BAD_LEADS: list[tuple[dict[str, Any], str]] = [
    ({"status": "hot"}, "status"),
    ({"status": None}, "status"),
    ({"topic": "x" * 301}, "topic"),
    ({"source": "x" * 61}, "source"),
    ({"contact_id": "first"}, "contact_id"),
    ({"email": "nobody@"}, "email"),
    ({"country": "Middle Earth"}, "country"),
    ({"phone": "ring ring"}, "phone"),
    ({"custom": {"Score": 1}}, "custom"),
    ({"stage": "won"}, "stage"),
]


def test_bad_lead_input_is_422_naming_the_field(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.leads["marketer"]
    for body, field in BAD_LEADS:
        assert_error(client.post(URL, json=body, headers=headers), 422, field)
        assert_error(client.patch(f"{URL}/{rid}", json=body, headers=headers), 422, field)
    assert count(client, "leads", org.headers["admin"]) == len(EVERYTHING)
    unchanged = client.get(f"{URL}/{rid}", headers=headers).json()
    assert (unchanged["status"], unchanged["topic"]) == ("new", "topic marketer")


def test_status_and_other_filters_count_what_they_list(
    client: TestClient, db: Session, org: Org
) -> None:
    marketer = org.users["marketer"]
    statuses = ["new", "contacted", "qualified", "qualified", "disqualified", "contacted"]
    made = {}
    for i, status in enumerate(statuses):
        made[i] = lead(db, marketer, last_name=f"l{i}", status=status, company="Leadco").id
    hidden = lead(db, org.users["support_assistant"], status="qualified", company="Leadco").id
    db.commit()
    headers = org.headers["marketer"]
    by_status = {
        status: {made[i] for i, s in enumerate(statuses) if s == status} for status in set(statuses)
    }
    # The fixture's own Sales leads are all "new".
    by_status["new"] |= org.ids("leads", {"manager", "marketer", "assistant"})
    for status, expected in by_status.items():
        assert visible_ids(client, "leads", headers, status=status) == expected, status
    assert visible_ids(client, "leads", headers, status="qualified", company="LEADCO") == {
        made[2],
        made[3],
    }
    assert hidden in visible_ids(client, "leads", org.headers["admin"], status="qualified")
    # A status that no lead can have is bad input, not an empty result.
    for url in (URL, f"{URL}/count"):
        error = assert_error(client.get(url, params={"status": "hot"}, headers=headers), 422)
        assert error["field"] == "status"
    # Paging through a filtered, sorted list keeps the filter on every page.
    items = walk(client, "leads", headers, limit=2, sort="-last_name", company="leadco")
    assert [i["last_name"] for i in items] == [f"l{i}" for i in reversed(range(6))]


def test_qualifying_makes_a_contact_from_the_lead_once(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    body = {
        "email": "quinn@example.com",
        "first_name": "Quinn",
        "last_name": "Qualify",
        "company": "Q Corp",
        "country": "DE",
        "custom": {"industry": "Retail", "employees": 250},
    }
    rid = client.post(URL, json=body, headers=headers).json()["id"]
    done = client.post(f"{URL}/{rid}/qualify", headers=headers)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["created"] is True
    contact = result["contact"]
    assert {k: contact[k] for k in body} == body
    assert contact["owner"] == {"type": "user", "id": org.users["marketer"].id}
    assert (result["lead"]["status"], result["lead"]["contact_id"]) == ("qualified", contact["id"])
    assert client.get(f"{API}/contacts/{contact['id']}", headers=headers).status_code == 200
    contacts_before = count(client, "contacts", org.headers["admin"])
    # Once qualified, again is a conflict and makes nothing.
    assert_error(client.post(f"{URL}/{rid}/qualify", headers=headers), 409, "status")
    assert count(client, "contacts", org.headers["admin"]) == contacts_before


def test_qualifying_links_a_readable_contact_with_the_same_email(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    existing = client.get(f"{API}/contacts/{org.contacts['marketer']}", headers=headers).json()
    hidden = client.get(
        f"{API}/contacts/{org.contacts['support']}", headers=org.headers["admin"]
    ).json()
    contacts_before = count(client, "contacts", org.headers["admin"])
    # The fixture's leads have the contacts' emails: these leads are duplicates on purpose.
    dup = {"allow_duplicate": "true"}
    same = client.post(URL, json={"email": existing["email"]}, headers=headers, params=dup).json()
    linked = client.post(f"{URL}/{same['id']}/qualify", headers=headers).json()
    assert (linked["created"], linked["contact"]["id"]) == (False, existing["id"])
    assert count(client, "contacts", org.headers["admin"]) == contacts_before
    # A contact the marketer may not read is never linked nor named: a new one is made.
    other = client.post(URL, json={"email": hidden["email"]}, headers=headers, params=dup).json()
    made = client.post(f"{URL}/{other['id']}/qualify", headers=headers).json()
    assert made["created"] is True
    assert made["contact"]["id"] != hidden["id"]
    assert count(client, "contacts", org.headers["admin"]) == contacts_before + 1


def test_qualifying_needs_write_on_the_lead_and_create_on_contacts(
    client: TestClient, db: Session, org: Org
) -> None:
    reader = f.role(db, "Lead reader", Level.BUSINESS_UNIT, "lead", ("read",))
    lead_writer = f.role(
        db, "Lead writer", Level.BUSINESS_UNIT, "lead", ("read", "write", "append")
    )
    contact_reader = f.role(db, "Contact reader only", Level.BUSINESS_UNIT, "contact", ("read",))
    looker = f.user(db, "looker", org.sales, reader)
    writer = f.user(db, "writer", org.sales, lead_writer, contact_reader)
    db.commit()
    rid = org.leads["marketer"]
    assert_error(client.post(f"{URL}/{rid}/qualify", headers=f.token(db, looker)), 403)
    assert_error(client.post(f"{URL}/{rid}/qualify", headers=f.token(db, writer)), 403)
    hidden = org.leads["support"]
    assert_error(client.post(f"{URL}/{hidden}/qualify", headers=org.headers["marketer"]), 404)
    lead = client.get(f"{URL}/{rid}", headers=org.headers["admin"]).json()
    assert (lead["status"], lead["contact_id"]) == ("new", None)
    assert count(client, "contacts", org.headers["admin"]) == len(EVERYTHING)
