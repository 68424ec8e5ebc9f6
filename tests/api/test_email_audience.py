"""Who a send would reach (issue 15): the audience of segments and lists as the sender may
read it, each suppressed contact with its reason, and the suppression list (one place for
unsubscribes, hard bounces and complaints) with its audited lift."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact, Tombstone
from gatherly.contact.schemas import OwnerRef
from gatherly.core import audit
from gatherly.email import audience as audiences
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.api.conftest import EVERYTHING, VISIBLE, Org
from tests.api.helpers import API, assert_error

AUDIENCE = f"{API}/email/audience"


def _everyone_list(db: Session, org: Org) -> int:
    """A list owned by the Sales marketer holding every contact of the organisation."""
    admin = f.principal(db, org.users["admin"])
    mlist = segment_service.create_list(
        db=db,
        principal=admin,
        name="Everyone",
        owner=OwnerRef(type="user", id=org.users["marketer"].id),
    )
    segment_service.add_to_list(
        db=db, principal=admin, list_id=mlist.id, contact_ids=list(org.contacts.values())
    )
    db.commit()
    return mlist.id


def _suppress_some(db: Session, org: Org) -> None:
    """manager: bounced; marketer: unsubscribed; assistant: no email; eu: complained."""
    audiences.suppress(db=db, email="manager@example.com", reason="hard_bounce", source="smtp")
    audiences.suppress(
        db=db, email="marketer@example.com", reason="unsubscribed", source="one_click"
    )
    audiences.suppress(db=db, email="eu@example.com", reason="complaint", source="webhook")
    assistant = db.get(Contact, org.contacts["assistant"])
    assert assistant is not None
    assistant.email = None
    db.commit()


def test_the_count_says_who_receives_and_who_is_suppressed_and_why(
    client: TestClient, db: Session, org: Org
) -> None:
    list_id = _everyone_list(db, org)
    _suppress_some(db, org)
    # The support contact's address also belongs to a contact deleted in its BU.
    db.add(Tombstone(record_type="contact", record_id=999, email="support@example.com",
                     owning_bu_id=org.support.id))  # fmt: skip
    db.commit()
    seen = client.get(AUDIENCE, params={"list_id": list_id}, headers=org.headers["admin"]).json()
    assert seen["total"] == len(EVERYTHING)
    assert seen["suppressed"] == {
        "no_email": 1,
        "tombstoned": 1,
        "bounced": 1,
        "complained": 1,
        "unsubscribed": 1,
    }
    assert seen["receiving"] == len(EVERYTHING) - 5  # admin and team
    assert seen["reasons"]["bounced"] == "its address bounced hard"
    # The marketer owns the list but reads only Sales: the count is of what they may read.
    mine = client.get(AUDIENCE, params={"list_id": list_id}, headers=org.headers["marketer"])
    assert mine.json()["total"] == len(VISIBLE["marketer"])
    assert mine.json()["suppressed"] == {"no_email": 1, "bounced": 1, "unsubscribed": 1}
    people = client.get(
        f"{AUDIENCE}/people", params={"list_id": list_id}, headers=org.headers["marketer"]
    ).json()["items"]
    assert {(p["contact_id"], p["reason"]) for p in people} == {
        (org.contacts["manager"], "bounced"),
        (org.contacts["marketer"], "unsubscribed"),
        (org.contacts["assistant"], "no_email"),
    }
    everyone = client.get(
        f"{AUDIENCE}/people",
        params={"list_id": list_id, "all": "true"},
        headers=org.headers["marketer"],
    ).json()["items"]
    assert {p["contact_id"] for p in everyone} == {org.contacts[k] for k in VISIBLE["marketer"]}


def test_a_lifted_bounce_counts_again_and_the_lift_is_audited(
    client: TestClient, db: Session, org: Org
) -> None:
    list_id = _everyone_list(db, org)
    _suppress_some(db, org)
    listed = client.get(f"{API}/email/suppressions", headers=org.headers["marketer"]).json()
    # Only the addresses of contacts the marketer may read (not eu's complaint).
    assert {s["email"] for s in listed["items"]} == {"manager@example.com", "marketer@example.com"}
    bounce = next(s for s in listed["items"] if s["reason"] == "hard_bounce")
    unsubscribe = next(s for s in listed["items"] if s["reason"] == "unsubscribed")
    lift = f"{API}/email/suppressions/{{}}/lift"
    assert_error(
        client.post(lift.format(bounce["id"]), json={"why": "x"}, headers=org.headers["marketer"]),
        403,
    )
    assert_error(
        client.post(
            lift.format(unsubscribe["id"]), json={"why": "x"}, headers=org.headers["admin"]
        ),
        422,
        "id",
    )
    assert_error(
        client.post(lift.format(bounce["id"]), json={"why": ""}, headers=org.headers["admin"]),
        422,
        "why",
    )
    done = client.post(
        lift.format(bounce["id"]),
        json={"why": "mailbox restored"},
        headers=org.headers["admin"],
    )
    assert done.status_code == 200, done.text
    assert_error(
        client.post(lift.format(bounce["id"]), json={"why": "again"}, headers=org.headers["admin"]),
        404,
    )
    seen = client.get(AUDIENCE, params={"list_id": list_id}, headers=org.headers["marketer"])
    assert "bounced" not in seen.json()["suppressed"]
    db.expire_all()
    [entry] = audit.search(db, audit.Filters(action="email_suppression.lift")).items
    assert entry.after == {"reason": "hard_bounce", "active": False, "why": "mailbox restored"}
    # Suppressing again is idempotent: one active row per address and reason.
    first = audiences.suppress(
        db=db, email=" Manager@Example.com", reason="hard_bounce", source="smtp"
    )
    again = audiences.suppress(
        db=db, email="manager@example.com", reason="hard_bounce", source="smtp"
    )
    assert first.id == again.id


def test_segments_and_lists_the_sender_may_not_read_are_not_found(
    client: TestClient, db: Session, org: Org
) -> None:
    support = f.principal(db, org.users["support_assistant"])
    theirs = segment_service.create_list(db=db, principal=support, name="Support only")
    db.commit()
    headers = org.headers["marketer"]
    assert_error(
        client.get(AUDIENCE, params={"list_id": theirs.id}, headers=headers), 404, "list_id"
    )
    assert_error(
        client.get(AUDIENCE, params={"segment_id": 999999}, headers=headers), 404, "segment_id"
    )
    assert_error(client.get(AUDIENCE, headers=headers), 422, "segment_id")
    bad: Any = client.get(AUDIENCE, params={"list_id": "first"}, headers=headers)
    assert assert_error(bad, 422)["field"].startswith("list_id")
