"""Town halls sync as marketing events under the webinars' rules (issue 19 §3), end to end
over real HTTP to the emulator serving the sample tenant: type ``town hall``, no
registrations, attendance from the sessions' reports, the organizer and co-organizers not
counted, internal staff not made contacts, anonymous attendees counted and never contacts,
Graph's ``"PacificSt"`` read as UTC with a note on the run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core.exceptions import FatalSyncError
from gatherly.event import service as event_service
from gatherly.event.models import EventAttendance, EventRegistration, MarketingEvent
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.report import definition as rd
from gatherly.report import engine as report_engine
from gatherly.segment import criteria
from gatherly.segment import service as segment_service
from gatherly.teams import fetch
from gatherly.teams import service as teams
from gatherly.teams.models import SyncRun, TeamsOrganizer, TeamsWebinar
from tests import factories
from tests.teams.conftest import INTERNAL_DOMAIN, Connected, Tenant
from tests.teams.oracle import expected_counts, snapshot
from tests.web.conftest import client_sign_in

VISION = "Customer Town Hall: 2027 Product Vision"  # past, public, "PacificSt", anonymous
ALL_HANDS = "Q4 All-Hands (internal)"  # future, organization only, invite only
HIDDEN = "Tokyo Office Town Hall"  # its organizer holds no access policy


def _event(db: Session, name: str) -> MarketingEvent:
    return db.scalars(select(MarketingEvent).where(MarketingEvent.name == name)).one()


def _row(db: Session, name: str) -> TeamsWebinar:
    return db.scalars(select(TeamsWebinar).where(TeamsWebinar.display_name == name)).one()


@contextmanager
def _writes(engine: Engine) -> Iterator[list[str]]:
    """The statements that changed rows while the block ran (the run's own record aside)."""
    found: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        changed = verb in ("INSERT", "UPDATE", "DELETE") and cursor.rowcount
        if changed and "sync_run" not in statement[:40]:
            found.append(statement[:80])

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "after_cursor_execute", after)


def test_a_town_hall_becomes_an_event_counted_by_the_webinar_rules(
    synced: Connected, tenant: Tenant
) -> None:
    want = expected_counts(
        tenant.townhall(VISION),
        tenant.data["users"],
        internal_domains={INTERNAL_DOMAIN},
        townhall=True,
    )
    assert want.anonymous == 4
    with synced.session_factory() as db:
        vision = _event(db, VISION)
        assert (vision.event_type, vision.source, vision.status) == (
            "town hall",
            "teams",
            "published",
        )
        assert vision.audience == "everyone"
        assert vision.organizer_email == "marta.lindqvist@contoso.example"
        # Invited attendees are not registrants: a town hall has no registrations at all.
        assert (vision.registrant_count, vision.cancellation_count) == (0, 0)
        assert not db.scalar(select(func.count()).where(EventRegistration.event_id == vision.id))
        assert vision.attendee_count == len(want.attendees) + want.anonymous == 36
        rows = db.scalars(select(EventAttendance).where(EventAttendance.event_id == vision.id))
        by_key = {a.person_key: a for a in rows}
        counted = {k for k, a in by_key.items() if a.excluded_reason is None}
        assert {k for k in counted if "@" in k} == want.attendees
        # The organizer, Tomas (co-organizer) and the presenter are kept, never counted;
        # the two staff members are internal: kept, not counted, no contact.
        excluded = {a.email: a.excluded_reason for a in by_key.values() if a.excluded_reason}
        assert excluded == want.excluded
        assert sorted(set(excluded.values())) == ["internal", "organizer", "presenter"]
        assert all(by_key[e].contact_id is None for e in excluded)
        # Every counted person with an email is a contact; the anonymous never are.
        assert all(by_key[e].contact_id for e in want.attendees)
        anonymous = [a for a in by_key.values() if not a.email]
        assert len(anonymous) == 4
        assert all(a.excluded_reason is None and a.contact_id is None for a in anonymous)
        assert all(a.person_key.startswith("anon:") and a.total_seconds > 0 for a in anonymous)
        assert sorted(a.display_name for a in anonymous) == [
            "Anonymous",
            "Anonymous",
            "Guest (unverified)",
            "Viewer 4417",
        ]
        assert not db.scalar(
            select(func.count()).where(Contact.email.is_(None) | (Contact.email == ""))
        )
        # The future, internal town hall is an event too, with nobody yet.
        all_hands = _event(db, ALL_HANDS)
        assert (all_hands.event_type, all_hands.audience) == ("town hall", "organization")
        assert all_hands.attendee_count == 0
        assert all_hands.start_at == datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
        # Town halls are listed, ticked and synced as webinars are.
        rows_th = db.scalars(select(TeamsWebinar).where(TeamsWebinar.kind == "townhall")).all()
        assert sorted(r.display_name for r in rows_th) == [VISION, ALL_HANDS]
        assert all(r.sync_enabled and r.event_id for r in rows_th)


def test_the_event_page_counts_anonymous_attendees(synced: Connected, client: TestClient) -> None:
    with synced.session_factory() as db:
        vision = _event(db, VISION)
        admin = load_principal(db, synced.admin_id)
        people = event_service.event_people(db=db, principal=admin, event_id=vision.id)
        numbers = event_service.people_numbers(people)
        assert (numbers.attended, numbers.anonymous, numbers.registered) == (36, 4, 0)
        viewer = factories.user(db, "viewer", org.get_root(db=db), "Marketing Administrator")
        org.set_password(db=db, user_id=viewer.id, password="correct horse battery")
        db.commit()
        event_id = vision.id
    client_sign_in(client, "viewer", "correct horse battery")
    page = client.get(f"/events/{event_id}").text
    assert "<dt>Type</dt><dd>town hall</dd>" in page
    assert "of whom <strong>4</strong> anonymously" in page
    assert "A town hall has no registration" in page


def test_an_unknown_time_zone_is_read_as_utc_and_the_run_says_so(synced: Connected) -> None:
    report = synced.report
    assert report is not None
    assert report.status == "succeeded"
    [note] = [n for n in report.notes if "PacificSt" in n]
    assert note.startswith(f"Town hall {VISION!r}: Teams gave a time zone")
    assert "read as UTC" in note
    with synced.session_factory() as db:
        run = db.get(SyncRun, report.run_id)
        assert run is not None
        assert note in run.notes  # what the pages and the API show
        vision = _event(db, VISION)
        # The raw name is kept; the wall time (09:00 in Graph's sample) was read as UTC.
        assert vision.time_zone == "PacificSt"
        assert vision.start_at == datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
        assert vision.end_at == datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
        assert _row(db, VISION).start_at == vision.start_at
        # Its session was written in UTC, a known zone: nothing assumed there.
        assert "session" not in note


def test_town_halls_of_organizers_without_the_policy_stay_hidden(synced: Connected) -> None:
    with synced.session_factory() as db:
        assert db.scalar(select(TeamsWebinar).where(TeamsWebinar.display_name == HIDDEN)) is None
        kenji = db.scalars(
            select(TeamsOrganizer).where(TeamsOrganizer.display_name == "Kenji Sato")
        ).one()
        assert kenji.status == "policy_not_granted"


def test_sync_now_of_one_town_hall_then_again_writes_nothing(
    connected: Connected, tenant: Tenant, engine: Engine
) -> None:
    discovered = connected.sync()
    assert discovered.changes["townhalls_discovered"] == 2
    assert discovered.fetched["townhalls"] == 2
    with connected.session_factory() as db:
        row = _row(db, VISION)
        assert (row.kind, row.sync_enabled, row.event_id) == ("townhall", False, None)
        graph_id = row.graph_id
    mark = len(tenant.requests())
    report = connected.sync(webinar_graph_id=graph_id)
    assert report.status == "succeeded", report.errors
    assert report.fetched["townhalls"] == 1
    assert report.fetched["registrations"] == 0
    assert report.changes["events_created"] == 1
    assert any("PacificSt" in n for n in report.notes)
    paths = [r["path"] for r in tenant.requests()[mark:]]
    assert any(p.startswith("/v1.0/solutions/virtualEvents/townhalls/") for p in paths)
    assert not any("registrations" in p or "/webinars/" in p for p in paths)
    with connected.session_factory() as db:
        assert [e.name for e in db.scalars(select(MarketingEvent))] == [VISION]
        assert _event(db, VISION).attendee_count == 36
        assert not _row(db, VISION).sync_enabled  # Sync now does not tick it
    before = snapshot(connected.session_factory)
    with _writes(engine) as written:
        again = connected.sync(webinar_graph_id=graph_id)
    assert again.status == "succeeded"
    assert dict(again.changes) == {}
    assert [w for w in written if "teams_webinar" not in w] == []  # only last_synced_at
    assert snapshot(connected.session_factory) == before


def test_sync_now_through_the_service_and_the_organizers_lost_policy(
    connected: Connected, tenant: Tenant
) -> None:
    connected.sync()
    with connected.session_factory() as db:
        admin = load_principal(db, connected.admin_id)
        row_id = _row(db, VISION).id
        found = teams.find_webinar(db=db, principal=admin, ref=_row(db, VISION).graph_id)
        assert found.id == row_id
        report = teams.sync_now(
            db=db,
            principal=admin,
            session_factory=connected.session_factory,
            settings=connected.settings,
            webinar_id=row_id,
        )
    assert report.status == "succeeded"
    marta = next(u for u in tenant.state.data["users"] if u["displayName"] == "Marta Lindqvist")
    marta["applicationAccessPolicy"] = None
    refused = connected.sync(webinar_graph_id=tenant.townhall(VISION)["id"])
    assert refused.status == "failed"
    assert "no application access policy grants this app access" in refused.errors[0]["message"]
    with connected.session_factory() as db:
        organizer = db.scalars(
            select(TeamsOrganizer).where(TeamsOrganizer.display_name == "Marta Lindqvist")
        ).one()
        assert organizer.status == "policy_not_granted"


def test_new_town_halls_follow_the_organizers_default_tick(
    connected: Connected, tenant: Tenant
) -> None:
    connected.sync()
    with connected.session_factory() as db, db.begin():
        admin = load_principal(db, connected.admin_id)
        tomas = db.scalars(
            select(TeamsOrganizer).where(TeamsOrganizer.display_name == "Tomas Berg")
        ).one()
        teams.update_organizer(
            db=db, principal=admin, organizer_id=tomas.id, sync_new_by_default=True
        )
    new = dict(tenant.townhall(ALL_HANDS))
    new["id"] = "0e0e0e0e-aaaa-4bbb-8ccc-0123456789ab@" + tenant.tenant_id
    new["displayName"] = "Brand New Town Hall"
    tenant.control("townhalls", new)
    report = connected.sync()
    assert report.changes["townhalls_discovered"] == 1
    assert report.fetched["townhalls_ticked"] == 1
    with connected.session_factory() as db:
        assert _row(db, "Brand New Town Hall").sync_enabled
        assert _event(db, "Brand New Town Hall").event_type == "town hall"
        assert not _row(db, ALL_HANDS).sync_enabled  # found before the default changed


def test_a_dry_run_plans_the_anonymous_without_contacts(connected: Connected) -> None:
    connected.sync()
    connected.tick(VISION)
    report = connected.sync(dry_run=True)
    [plan] = [p for p in report.plan if p["webinar"] == VISION]
    assert plan["anonymous_attendees"] == 4
    assert all("@" in c for c in plan["contacts_to_create"])
    assert "no_email" not in plan["excluded"]
    assert plan["excluded"]["internal"]


def test_segments_and_reports_filter_on_the_town_hall_type(synced: Connected) -> None:
    # Stored "town hall"; Graph's "townhall" and any casing name the same type.
    for spelling in ("town hall", "Town Hall", "townhall", " TownHall "):
        parsed = criteria.parse({"participation": "attended", "event": {"type": spelling}})
        assert parsed.root.conditions[0].value == "town hall"
    with synced.session_factory() as db:
        admin = load_principal(db, synced.admin_id)
        vision = _event(db, VISION)
        contacts = set(
            db.scalars(
                select(EventAttendance.contact_id).where(
                    EventAttendance.event_id == vision.id, EventAttendance.contact_id.is_not(None)
                )
            )
        )
        preview = segment_service.preview(
            db=db,
            principal=admin,
            criteria={"participation": "attended", "event": {"type": "townhall"}},
            limit=100,
        )
        assert preview.visible == len(contacts) == 32  # the anonymous are nobody's contact
        assert {c.id for c in preview.items} == contacts
        checked = rd.parse(
            {
                "source": "events",
                "filters": {"event": {"type": "Town Hall"}},
                "group_by": ["type"],
                "measures": ["events", "attendees"],
            }
        )
        result = report_engine.run(db, admin, checked, now=datetime(2026, 11, 20, tzinfo=UTC))
        assert result.table() == [["town hall", 2, 36]]


def test_a_town_hall_listing_failure_never_holds_up_webinars(
    connected: Connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = fetch.tenant_events

    def town_halls_fail(client: Any, kind: str = "webinar") -> Any:
        if kind == "townhall":
            raise FatalSyncError("Graph answered 400 BadRequest")
        return listed(client, kind)

    monkeypatch.setattr(fetch, "tenant_events", town_halls_fail)
    report = connected.sync()
    assert report.status == "partial"
    assert report.changes["webinars_discovered"] == 8  # every visible webinar still found
    assert "townhalls_discovered" not in report.changes
    [error] = [e for e in report.errors if e["name"] == "town halls"]
    assert "400 BadRequest" in error["message"]
    with connected.session_factory() as db:
        statuses = {o.display_name: o.status for o in db.scalars(select(TeamsOrganizer))}
        assert statuses["Marta Lindqvist"] == statuses["Tomas Berg"] == "ok"
