"""Duplicate detection through the API (SPEC B8): 409 with the readable matches, create
anyway, BU-aware matching, rules, CSV import, duplicate jobs and merge."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture import duplicates
from gatherly.contact.models import Contact, Lead, Tombstone
from gatherly.core.audit import AuditEntry
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.org import service as org_service
from gatherly.segment.models import MarketingList, MarketingListMember
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

CONTACTS = f"{API}/contacts"
RULES = f"{API}/duplicates/rules"


def _scoping(db: Session, on: bool) -> None:
    org_service.set_feature(db=db, name=org_service.BU_SCOPING, enabled=on, by_user_id=None)
    db.commit()


def _count(db: Session, email: str) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).where(Contact.email == email)) or 0


def test_a_second_contact_with_a_readable_email_is_refused_with_the_matches(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    error = assert_error(
        client.post(CONTACTS, json={"email": " Manager@Example.com "}, headers=headers),
        409,
        "email",
    )
    assert error["code"] == "duplicate"
    assert [m["id"] for m in error["matches"]] == [org.contacts["manager"]]
    assert error["matches"][0]["created_at"].endswith("Z")
    assert "allow_duplicate" in error["message"]
    assert _count(db, "manager@example.com") == 1
    # Asked for, it is made, and it does not take the key the first one holds.
    made = client.post(
        CONTACTS,
        json={"email": "manager@example.com"},
        headers=headers,
        params={"allow_duplicate": "true"},
    )
    assert made.status_code == 201, made.text
    assert _count(db, "manager@example.com") == 2
    # A change of email onto a readable one is refused the same way, and changes nothing.
    mine = org.contacts["marketer"]
    error = assert_error(
        client.patch(
            f"{CONTACTS}/{mine}", json={"email": "assistant@example.com"}, headers=headers
        ),
        409,
        "email",
    )
    assert [m["id"] for m in error["matches"]] == [org.contacts["assistant"]]
    assert client.get(f"{CONTACTS}/{mine}", headers=headers).json()["email"] == (
        "marketer@example.com"
    )
    # A change of other fields of a record that has a duplicate is not refused.
    same = client.patch(
        f"{CONTACTS}/{made.json()['id']}", json={"company": "ACME"}, headers=headers
    )
    assert same.status_code == 200, same.text


def test_a_match_the_caller_may_not_read_is_never_revealed(
    client: TestClient, db: Session, org: Org
) -> None:
    # support@example.com is in Support, which the marketer may not read: not a 409 (that
    # would tell them it exists), a new record, owned by them.
    made = client.post(
        CONTACTS, json={"email": "support@example.com"}, headers=org.headers["marketer"]
    )
    assert made.status_code == 201, made.text
    assert "support" not in made.text.replace("support@example.com", "")
    assert _count(db, "support@example.com") == 2


def test_with_bu_scoping_on_the_same_person_in_another_bu_is_not_a_duplicate(
    client: TestClient, db: Session, org: Org
) -> None:
    admin = org.headers["admin"]
    eu_owner = {"type": "user", "id": org.users["eu_marketer"].id}
    body: dict[str, Any] = {"email": "marketer@example.com", "owner": eu_owner}
    # Off: BUs are ignored, and the admin reads the Sales contact.
    assert_error(client.post(CONTACTS, json=body, headers=admin), 409, "email")
    _scoping(db, True)
    made = client.post(CONTACTS, json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["owning_bu_id"] == org.sales_eu.id
    # In the same BU it still is one.
    again = client.post(CONTACTS, json=body, headers=admin)
    assert [m["id"] for m in assert_error(again, 409)["matches"]] == [made.json()["id"]]
    # Both hold their own key now; turning scoping off gives the email's key to the oldest.
    db.expire_all()
    keys = dict(
        db.execute(
            select(Contact.id, Contact.match_key).where(Contact.email == "marketer@example.com")
        ).all()
    )
    assert keys[made.json()["id"]] == f"{org.sales_eu.id}|marketer@example.com"
    assert keys[org.contacts["marketer"]] == f"{org.sales.id}|marketer@example.com"
    _scoping(db, False)
    keys = dict(
        db.execute(
            select(Contact.id, Contact.match_key).where(Contact.email == "marketer@example.com")
        ).all()
    )
    assert keys == {org.contacts["marketer"]: "*|marketer@example.com", made.json()["id"]: None}


def test_rules_everyone_reads_administrators_change_and_audits(
    client: TestClient, db: Session, org: Org
) -> None:
    listed = client.get(RULES, headers=org.headers["assistant"])
    assert listed.status_code == 200
    builtin = [r for r in listed.json() if r["builtin"]]
    assert {r["record_type"] for r in builtin} == {"contact", "lead"}
    rule = {
        "record_type": "contact",
        "name": "Same name and company",
        "conditions": [
            {"field": "last_name"},
            {"field": "first_name", "match": "first", "length": 3},
            {"field": "company", "match": "first", "length": 5},
        ],
        "published": True,
    }
    assert_error(client.post(RULES, json=rule, headers=org.headers["marketer"]), 403)
    assert_error(
        client.post(RULES, json={**rule, "conditions": []}, headers=org.headers["admin"]),
        422,
        "conditions",
    )
    made = client.post(RULES, json=rule, headers=org.headers["admin"])
    assert made.status_code == 201, made.text
    assert_error(client.post(RULES, json=rule, headers=org.headers["admin"]), 409, "name")
    # The custom rule: same last name, first 3 letters of first name, first 5 of company.
    twin = {"last_name": "owner-MANAGER", "first_name": "Manfred", "company": "manag Inc."}
    error = assert_error(client.post(CONTACTS, json=twin, headers=org.headers["marketer"]), 409)
    assert [m["id"] for m in error["matches"]] == [org.contacts["manager"]]
    # The built-in rule is published or not, never changed.
    contact_rule = next(r for r in builtin if r["record_type"] == "contact")
    url = f"{RULES}/{contact_rule['id']}"
    assert_error(
        client.patch(url, json={"conditions": [{"field": "phone"}]}, headers=org.headers["admin"]),
        409,
        "conditions",
    )
    assert_error(client.delete(url, headers=org.headers["admin"]), 409, "rule_id")
    off = client.patch(url, json={"published": False}, headers=org.headers["admin"])
    assert off.json()["published"] is False
    made_again = client.post(
        CONTACTS, json={"email": "manager@example.com"}, headers=org.headers["marketer"]
    )
    assert made_again.status_code == 201, made_again.text
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.action.like("duplicate_rule.%"))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["duplicate_rule.create", "duplicate_rule.update"]


def test_csv_import_reports_each_row_and_matches_only_what_the_user_may_read(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = {**org.headers["marketer"], "Content-Type": "text/csv"}
    csv_text = (
        "email,first_name,last_name,company,custom.tier\n"
        "manager@example.com,,,New Co,gold\n"  # matches a readable contact: updated
        "new.person@example.com,New,Person,,\n"  # created
        "not-an-email,Bad,Row,,\n"  # refused: the email
        "support@example.com,Sup,Port,,\n"  # the match is not readable: created
        "new.person@example.com,New,Again,,\n"  # matches the row made above
        "\n"
    )
    done = client.post(f"{CONTACTS}/import", content=csv_text.encode(), headers=headers)
    assert done.status_code == 200, done.text
    body = done.json()
    assert [(r["line"], r["outcome"]) for r in body["rows"]] == [
        (2, "matched"),
        (3, "created"),
        (4, "refused"),
        (5, "created"),
        (6, "matched"),
    ]
    assert body["rows"][2]["field"] == "email"
    assert body["totals"] == {"matched": 2, "created": 2, "skipped": 0, "refused": 1}
    manager = client.get(
        f"{CONTACTS}/{org.contacts['manager']}", headers=org.headers["marketer"]
    ).json()
    assert (manager["company"], manager["first_name"], manager["custom"]) == (
        "New Co",
        "Manager",
        {"tier": "gold"},
    )
    assert _count(db, "new.person@example.com") == 1
    skip = client.post(
        f"{CONTACTS}/import",
        content=b"email\nmanager@example.com\n",
        headers=headers,
        params={"on_match": "skip"},
    )
    assert skip.json()["rows"][0]["outcome"] == "skipped"
    # A bad file is refused whole and changes nothing.
    before = _count(db, "whole@example.com")
    bad = client.post(
        f"{CONTACTS}/import", content=b"email,shoe_size\nwhole@example.com,42\n", headers=headers
    )
    assert "shoe_size" in assert_error(bad, 422, "file")["message"]
    assert _count(db, "whole@example.com") == before == 0
    # A user who may not create contacts gets every new row refused, and nothing is made.
    nobody = {**org.headers["nobody"], "Content-Type": "text/csv"}
    refused = client.post(f"{CONTACTS}/import", content=b"email\nz@example.com\n", headers=nobody)
    assert refused.json()["totals"]["refused"] == 1
    assert _count(db, "z@example.com") == 0


def _run(session_factory: sessionmaker[Session], job_id: int) -> None:
    job = duplicates.run_job(session_factory, job_id)
    assert job is not None
    assert job.state == "done", job.error


def _twins(db: Session, org: Org) -> dict[str, int]:
    """A duplicate of the marketer's contact owned by the manager (Sales), and of the
    support assistant's owned by the admin (root BU)."""
    made = {
        "sales": f.contact(
            db, org.users["manager"], email="marketer@example.com", first_name="M2"
        ).id,
        "support": f.contact(db, org.users["admin"], email="support@example.com").id,
    }
    db.commit()
    return made


def test_a_duplicate_job_lists_only_pairs_the_viewer_may_read(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    twins = _twins(db, org)
    started = client.post(
        f"{API}/duplicates/jobs", json={"record_type": "contact"}, headers=org.headers["marketer"]
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "queued"
    _run(session_factory, job["id"])
    url = f"{API}/duplicates/jobs/{job['id']}"
    pairs = client.get(f"{url}/pairs", headers=org.headers["marketer"]).json()["items"]
    assert [(p["record"]["id"], p["duplicate"]["id"]) for p in pairs] == [
        (org.contacts["marketer"], twins["sales"])
    ]
    assert pairs[0]["rule_name"] == "Same email address"
    assert client.get(f"{url}/pairs/count", headers=org.headers["marketer"]).json() == {"count": 1}
    # Another user's job is not theirs to see, not even its count.
    assert_error(client.get(url, headers=org.headers["manager"]), 404, "job_id")
    assert_error(client.get(f"{url}/pairs/count", headers=org.headers["manager"]), 404)
    # The admin's own job sees both pairs.
    admin_job = client.post(
        f"{API}/duplicates/jobs", json={"record_type": "contact"}, headers=org.headers["admin"]
    ).json()
    _run(session_factory, admin_job["id"])
    counted = client.get(
        f"{API}/duplicates/jobs/{admin_job['id']}/pairs/count", headers=org.headers["admin"]
    )
    assert counted.json() == {"count": 2}
    assert_error(
        client.post(
            f"{API}/duplicates/jobs", json={"record_type": "contact"}, headers=org.headers["nobody"]
        ),
        403,
    )


def test_merge_moves_history_to_the_master_and_needs_write_on_both(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    twins = _twins(db, org)
    master, other = org.contacts["marketer"], twins["sales"]
    ev = f.event(db, org.users["marketer"])
    dup = db.get_one(Contact, other)
    f.registration(db, ev, dup)
    f.attendance(db, ev, dup)
    listed = MarketingList(
        name="VIP",
        owner_type="user",
        owner_id=org.users["marketer"].id,
        owning_bu_id=org.sales.id,
    )
    db.add(listed)
    db.flush()
    db.add(MarketingListMember(list_id=listed.id, contact_id=other))
    lead = db.get_one(Lead, org.leads["manager"])
    lead.contact_id = other
    db.commit()
    body = {
        "record_type": "contact",
        "master_id": master,
        "duplicate_id": other,
        "take": ["first_name"],
    }
    # The assistant may read neither as writable; the marketer may not write support's.
    assert_error(
        client.post(
            f"{API}/duplicates/merge",
            json={**body, "master_id": org.contacts["support"]},
            headers=org.headers["marketer"],
        ),
        404,
        "id",
    )
    assert_error(
        client.post(
            f"{API}/duplicates/merge",
            json={**body, "duplicate_id": org.contacts["support"]},
            headers=org.headers["marketer"],
        ),
        404,
        "duplicate_id",
    )
    assert_error(
        client.post(
            f"{API}/duplicates/merge",
            json={**body, "duplicate_id": master},
            headers=org.headers["marketer"],
        ),
        422,
        "duplicate_id",
    )
    done = client.post(f"{API}/duplicates/merge", json=body, headers=org.headers["marketer"])
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["master"]["id"] == master
    assert out["master"]["first_name"] == "M2"
    assert out["moved"] == {
        "registrations": 1,
        "attendance": 1,
        "leads": 1,
        "list_memberships": 1,
    }
    db.expire_all()
    assert db.get(Contact, other) is None
    stone = db.scalars(select(Tombstone).where(Tombstone.record_id == other)).one()
    assert stone.merged_into_id == master
    assert (
        db.scalar(select(EventRegistration.contact_id).where(EventRegistration.event_id == ev.id))
        == master
    )
    assert (
        db.scalar(select(EventAttendance.contact_id).where(EventAttendance.event_id == ev.id))
        == master
    )
    assert db.get_one(Lead, org.leads["manager"]).contact_id == master
    assert db.get(MarketingListMember, (listed.id, master)) is not None
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact.merge")).one()
    assert entry.after["merged"]["id"] == other
    assert db.get_one(Contact, master).match_key == "*|marketer@example.com"
    assert_error(client.get(f"{CONTACTS}/{other}", headers=org.headers["admin"]), 404)
