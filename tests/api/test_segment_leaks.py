"""Segments reveal nothing their users could not open (issue 12, F2 and F3): participation
criteria see only the events, registrations and attendance the viewer (preview, explain)
and the segment's owner (membership) may read; previews give no totals and check the owner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact
from gatherly.event.models import MarketingEvent
from gatherly.segment import jobs
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

START = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def _hidden_webinar(db: Session, org: Org) -> MarketingEvent:
    """A Sales EU webinar (the marketer, BU level in Sales, may not open it) that the
    marketer's own contact registered for and attended for 45 minutes."""
    event = f.event(
        db,
        org.users["eu_marketer"],
        "APAC Partner Summit",
        start_at=START,
        organizer_email="eu_marketer@example.com",
        organizer_name="EU Marketer",
        registrant_count=1,
        attendee_count=1,
    )
    person = db.get(Contact, org.contacts["marketer"])
    assert person is not None
    f.registration(db, event, person)
    f.attendance(db, event, person, seconds=45 * 60)
    db.commit()
    return event


# What a marketer might try, to learn about a webinar they cannot open.
PROBES: list[dict[str, Any]] = [
    {"participation": "registered", "event": {"name": {"contains": "APAC"}}},
    {"participation": "registered", "event": {"name": {"starts_with": "APAC P"}}},
    {"participation": "registered", "event": {"organizer": {"contains": "eu_marketer"}}},
    {"participation": "registered", "event": {"start": {"on": "2026-03-04"}}},
    {"participation": "registered", "event": {"registrants": {"gte": 1}}},
    {"participation": "attended", "min_minutes": 40},
    {"participation": "registered"},
    {"not": {"participation": "attended", "event": {"name": {"contains": "APAC"}}}},
]


def test_a_preview_sees_only_events_the_viewer_may_read(
    client: TestClient, db: Session, org: Org
) -> None:
    _hidden_webinar(db, org)
    mine = {"contact": {"email": "marketer@example.com"}}
    for probe in PROBES:
        tree = {"all": [mine, probe]}
        negated = "not" in probe
        # The manager (parent-child in Sales) reads the Sales EU webinar; the marketer not.
        expected = {"marketer": 1 if negated else 0, "manager": 0 if negated else 1}
        for who, visible in expected.items():
            response = client.post(
                f"{API}/segments/preview", json={"criteria": tree}, headers=org.headers[who]
            )
            assert response.status_code == 200, response.text
            assert response.json()["visible"] == visible, (who, probe)


def test_a_saved_segment_holds_what_its_owner_may_read_and_explain_what_both_may(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    _hidden_webinar(db, org)
    tree = {"participation": "attended", "event": {"name": {"contains": "APAC"}}}
    made = {}
    for who in ("marketer", "manager"):
        response = client.post(
            f"{API}/segments", json={"name": who, "criteria": tree}, headers=org.headers[who]
        )
        assert response.status_code == 201, response.text
        made[who] = response.json()["id"]
        f.share_with_organization(db, "segment", made[who])
    jobs.process_changes(session_factory)
    contact = org.contacts["marketer"]

    def members(segment: str, viewer: str, live: bool = False) -> list[int]:
        response = client.get(
            f"{API}/segments/{made[segment]}/members",
            params={"live": live},
            headers=org.headers[viewer],
        )
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    # The marketer's own segment cannot match on an event the marketer cannot open.
    assert members("marketer", "marketer") == []
    assert members("marketer", "marketer", live=True) == []
    # The manager's segment is the manager's: it holds the contact, which the marketer
    # may read — membership is the owner's, what a viewer sees of it is theirs.
    assert members("manager", "manager") == [contact]
    assert members("manager", "marketer") == [contact]
    assert members("manager", "marketer", live=True) == [contact]

    def explain(segment: str, viewer: str) -> dict[str, Any]:
        response = client.get(
            f"{API}/segments/{made[segment]}/explain",
            params={"contact_id": contact},
            headers=org.headers[viewer],
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    # Explain evaluates each node over what the owner *and* the caller may read.
    assert explain("manager", "manager")["criteria"][0]["matched"] is True
    assert explain("manager", "marketer")["criteria"][0]["matched"] is False
    assert explain("marketer", "manager")["criteria"][0]["matched"] is False


def test_a_team_owned_segment_sees_what_the_teams_roles_reach(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    event = _hidden_webinar(db, org)
    tree = {"participation": "registered", "event": {"id": event.id}}
    body = {"name": "Team", "criteria": tree, "owner": {"type": "team", "id": org.campaign.id}}
    # The admin may name the event; the Campaign team (no roles of its own) reads nothing.
    response = client.post(f"{API}/segments", json=body, headers=org.headers["admin"])
    assert response.status_code == 201, response.text
    jobs.process_changes(session_factory)
    shown = client.get(
        f"{API}/segments/{response.json()['id']}/members", headers=org.headers["admin"]
    )
    assert shown.json()["items"] == []


def test_a_preview_checks_the_owner_and_gives_no_total(
    client: TestClient, db: Session, org: Org
) -> None:
    response = client.put(
        f"{API}/admin/features/segment_totals", json={"enabled": True}, headers=org.headers["admin"]
    )
    assert response.status_code == 200, response.text
    tree = {"contact": {"country": {"in": ["JP", "DE", "FR", "US"]}}}
    # Aiming a business-unit scope at a BU the caller cannot create in is refused.
    aimed = {"criteria": tree, "owner": {"type": "user", "id": org.users["support_assistant"].id}}
    refused = client.post(f"{API}/segments/preview", json=aimed, headers=org.headers["marketer"])
    assert_error(refused, 403, "owner")
    # A preview answers what the caller may read, and never a total.
    mine = client.post(
        f"{API}/segments/preview", json={"criteria": tree}, headers=org.headers["marketer"]
    )
    assert mine.status_code == 200, mine.text
    assert "total" not in mine.json()
    assert mine.json()["visible"] == 3  # Sales: manager, marketer, assistant
    # Editing a saved segment is previewed in its owner's BU, and needs write on it.
    saved = client.post(
        f"{API}/segments", json={"name": "S", "criteria": tree}, headers=org.headers["marketer"]
    ).json()
    edit = {"criteria": tree, "segment_id": saved["id"]}
    ok = client.post(f"{API}/segments/preview", json=edit, headers=org.headers["manager"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["scope_business_unit_id"] is None  # scoping is off: organization scope
    other = client.post(f"{API}/segments/preview", json=edit, headers=org.headers["eu_marketer"])
    assert_error(other, 404, "id")
    both = {**edit, "owner": {"type": "user", "id": org.users["marketer"].id}}
    assert_error(
        client.post(f"{API}/segments/preview", json=both, headers=org.headers["marketer"]),
        422,
        "owner",
    )
