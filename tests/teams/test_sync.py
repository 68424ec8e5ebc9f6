"""The Teams sync end to end over real HTTP to the emulator: one named test per SPEC rule
(T1–T12, B8, B10) plus idempotency, dry run, faults and interruption."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core.config import Settings
from gatherly.core.exceptions import Conflict, NotFound, ValidationFailed
from gatherly.event import service as event_service
from gatherly.event.models import (
    AttendanceInterval,
    EventAttendance,
    EventRecording,
    EventRegistration,
    MarketingEvent,
    RegistrationStatusChange,
)
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.org.models import User
from gatherly.teams import service as teams
from gatherly.teams.connection import client_factory
from gatherly.teams.models import SyncRun, TeamsConnection, TeamsOrganizer, TeamsWebinar
from tests import factories
from tests.teams.conftest import INTERNAL_DOMAIN, Connected, Tenant
from tests.teams.oracle import expected_counts, snapshot, wipe_synced
from tests.web.conftest import client_sign_in


def _event(db: Session, name: str) -> MarketingEvent:
    return db.scalars(select(MarketingEvent).where(MarketingEvent.name.startswith(name))).one()


def _organizer(db: Session, name: str) -> TeamsOrganizer:
    return db.scalars(select(TeamsOrganizer).where(TeamsOrganizer.display_name == name)).one()


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------- T1 connection


def test_t1_connect_checks_token_and_names_missing_permissions(
    session_factory: sessionmaker[Session], connected: Connected, tenant: Tenant
) -> None:
    limited = tenant.app(1)
    with session_factory() as db:
        connection, check = teams.connect(
            db=db,
            settings=connected.settings,
            tenant_id=tenant.tenant_id,
            client_id=limited["appId"],
            client_secret=SecretStr(limited["secret"]),
            authority=f"{tenant.base_url}/{tenant.tenant_id}",
            graph_url=f"{tenant.base_url}/v1.0",
        )
        assert connection.status == "limited"
        assert check.missing_optional == [
            "OnlineMeetingRecording.Read.All",
            "OnlineMeetingTranscript.Read.All",
        ]
        assert "OnlineMeetingRecording.Read.All" in connection.status_detail
        # The secret is stored encrypted, never in clear.
        assert limited["secret"] not in (connection.client_secret_encrypted or "")
        db.rollback()


def test_t1_wrong_secret_is_refused_and_nothing_saved(
    session_factory: sessionmaker[Session], connected: Connected, tenant: Tenant
) -> None:
    with session_factory() as db:
        before = db.get(TeamsConnection, 1)
        assert before is not None
        client_id = before.client_id
        with pytest.raises(ValidationFailed) as caught:
            teams.connect(
                db=db,
                settings=connected.settings,
                tenant_id=tenant.tenant_id,
                client_id=tenant.app(0)["appId"],
                client_secret=SecretStr("not-the-secret"),
                authority=f"{tenant.base_url}/{tenant.tenant_id}",
                graph_url=f"{tenant.base_url}/v1.0",
            )
        assert caught.value.field == "client_secret"
        assert "invalid_client" in caught.value.message
        assert "not-the-secret" not in caught.value.message
    with session_factory() as db:
        after = db.get(TeamsConnection, 1)
        assert after is not None
        assert after.client_id == client_id


def test_t1_missing_required_permission_is_named(
    session_factory: sessionmaker[Session], connected: Connected, tenant: Tenant
) -> None:
    tenant.state.data["applications"].append(
        {
            "appId": "0f0f0f0f-1111-4222-8333-444455556666",
            "secret": "s3",
            "permissions": ["User.Read.All"],
        }
    )
    with session_factory() as db, pytest.raises(ValidationFailed) as caught:
        teams.connect(
            db=db,
            settings=connected.settings,
            tenant_id=tenant.tenant_id,
            client_id="0f0f0f0f-1111-4222-8333-444455556666",
            client_secret=SecretStr("s3"),
            authority=f"{tenant.base_url}/{tenant.tenant_id}",
            graph_url=f"{tenant.base_url}/v1.0",
        )
    assert caught.value.field == "permissions"
    assert "VirtualEvent.Read.All" in caught.value.message
    assert "OnlineMeetingArtifact.Read.All" in caught.value.message


# ---------------------------------------------------------------- T2 access policy


def test_t2_policy_missing_gives_remedy_with_client_id_while_others_sync(
    synced: Connected, tenant: Tenant
) -> None:
    report = synced.report
    assert report is not None
    kenji = tenant.user("Kenji Sato")
    with synced.session_factory() as db:
        organizer = _organizer(db, "Kenji Sato")
        assert organizer.status == "policy_not_granted"
        connection = teams.get_connection(db)
        lines = "\n".join(teams.remedy(connection, organizer))
        assert f'-AppIds "{connection.client_id}"' in lines
        assert f'-Identity "{kenji["id"]}"' in lines
        assert "Get-CsOnlineUser | Grant-CsApplicationAccessPolicy" in lines
        assert "-Global" in lines
        assert "one application access policy at a time" in lines
        # Kenji's webinars are not there; Marta's are.
        assert (
            db.scalar(
                select(func.count()).where(MarketingEvent.name.startswith("Customer Roundtable"))
            )
            == 0
        )
        assert _event(db, "Autumn Product Launch").registrant_count > 0
    assert report.changes["events_created"] >= 1


def test_t2_permission_missing_during_sync_is_named(connected: Connected, tenant: Tenant) -> None:
    connected.sync()
    connected.tick_all()
    app = next(a for a in tenant.state.data["applications"] if a["appId"] == tenant.app(0)["appId"])
    app["permissions"].remove("OnlineMeetingArtifact.Read.All")
    report = connected.sync()
    assert report.status == "partial"
    messages = " ".join(e["message"] for e in report.errors if e["scope"] == "webinar")
    assert "OnlineMeetingArtifact.Read.All" in messages


# ---------------------------------------------------------------- T3 global settings


def test_t3_excluded_organizer_webinars_are_never_synced(synced: Connected) -> None:
    with synced.session_factory() as db:
        priya = _organizer(db, "Priya Natarajan")
        assert priya.status == "excluded"
        assert (
            db.scalar(
                select(func.count()).where(MarketingEvent.organizer_name == "Priya Natarajan")
            )
            == 0
        )
        assert db.scalar(select(func.count()).where(TeamsWebinar.organizer_id == priya.id)) == 0
        admin = load_principal(db, synced.admin_id)
        with pytest.raises(Conflict):
            teams.update_organizer(
                db=db, principal=admin, organizer_id=priya.id, sync_new_by_default=True
            )


def test_t3_internal_domain_never_becomes_a_contact(synced: Connected) -> None:
    with synced.session_factory() as db:
        internal = db.scalar(
            select(func.count()).where(Contact.email.endswith("@" + INTERNAL_DOMAIN))
        )
        assert internal == 0
        kept = db.scalars(
            select(EventRegistration).where(EventRegistration.email.endswith("@" + INTERNAL_DOMAIN))
        ).all()
        assert kept
        assert all(r.excluded_reason in ("internal", "organizer", "presenter") for r in kept)
        assert all(r.contact_id is None for r in kept)


def test_t3_global_switch_off_syncs_nothing(connected: Connected) -> None:
    with connected.session_factory() as db, db.begin():
        teams.update_settings(db=db, sync_enabled=False)
    report = connected.sync()
    assert report.errors[0]["code"] == "sync_disabled"
    with connected.session_factory() as db:
        assert _count(db, MarketingEvent) == 0
        assert _count(db, TeamsWebinar) == 0


# ---------------------------------------------------------------- T4 / T5 per-user and organizer


def test_t4_new_webinars_follow_the_organizers_default(
    connected: Connected, tenant: Tenant
) -> None:
    connected.sync()  # discovers organizers; nothing ticked by default
    with connected.session_factory() as db, db.begin():
        assert not db.scalar(select(func.count()).where(TeamsWebinar.sync_enabled))
        marta = _organizer(db, "Marta Lindqvist")
        admin = load_principal(db, connected.admin_id)
        teams.update_organizer(
            db=db, principal=admin, organizer_id=marta.id, sync_new_by_default=True
        )
    new = dict(tenant.webinar("Spring Launch"))
    new["id"] = "0d0d0d0d-aaaa-4bbb-8ccc-0123456789ab@" + tenant.tenant_id
    new["displayName"] = "Brand New Webinar"
    tenant.control("webinars", new)
    connected.sync()
    with connected.session_factory() as db:
        ticked = db.scalar(
            select(TeamsWebinar).where(TeamsWebinar.display_name == "Brand New Webinar")
        )
        assert ticked is not None
        assert ticked.sync_enabled
        assert _event(db, "Brand New Webinar").organizer_name == "Marta Lindqvist"
        # Webinars discovered before the default changed stay as they were.
        assert not db.scalar(
            select(TeamsWebinar.sync_enabled).where(TeamsWebinar.display_name.startswith("Autumn"))
        )


def test_t5_sync_now_pulls_one_unticked_webinar(connected: Connected) -> None:
    connected.sync()
    with connected.session_factory() as db:
        graph_id = db.scalars(
            select(TeamsWebinar.graph_id).where(TeamsWebinar.display_name.startswith("Data Summit"))
        ).one()
    report = connected.sync(webinar_graph_id=graph_id)
    assert report.status == "succeeded"
    with connected.session_factory() as db:
        assert [e.name for e in db.scalars(select(MarketingEvent))] == [
            "Data Summit (two-day series)"
        ]
        assert _event(db, "Data Summit").attendee_count > 0


def test_t5_organizer_manages_only_their_own_webinars(connected: Connected) -> None:
    with connected.session_factory() as db, db.begin():
        marta_user = org.create_user(
            db=db,
            username="marta",
            business_unit_id=org.get_root(db=db).id,
            email="Marta.Lindqvist@contoso.example",
        )
        marta_id = marta_user.id
    connected.sync()
    with connected.session_factory() as db, db.begin():
        marta = load_principal(db, marta_id)
        mine = teams.list_webinars(db=db, principal=marta)
        assert mine
        assert {o.display_name for _, o in mine} == {"Marta Lindqvist"}
        webinar = mine[0][0]
        assert teams.set_webinar_sync(
            db=db, principal=marta, webinar_id=webinar.id, enabled=True
        ).sync_enabled
        tomas_webinar = db.scalars(
            select(TeamsWebinar)
            .join(TeamsOrganizer)
            .where(TeamsOrganizer.display_name == "Tomas Berg")
        ).first()
        assert tomas_webinar is not None
        with pytest.raises(NotFound, match="no Teams webinar"):
            teams.set_webinar_sync(
                db=db, principal=marta, webinar_id=tomas_webinar.id, enabled=True
            )


# ---------------------------------------------------------------- T6 / T7 counts


def test_t6_events_carry_the_webinar_properties_and_oracle_counts(
    synced: Connected, tenant: Tenant
) -> None:
    users = tenant.data["users"]
    with synced.session_factory() as db:
        events = {e.external_id: e for e in db.scalars(select(MarketingEvent))}
        synced = [w for w in tenant.data["webinars"] if w["id"] in events]
        assert len(synced) == 8  # Kenji's (no policy) and Priya's (excluded) are not there
        for webinar in synced:
            event = events[webinar["id"]]
            want = expected_counts(webinar, users, internal_domains={INTERNAL_DOMAIN})
            assert event.name == webinar["displayName"]
            assert event.status == webinar["status"]
            assert event.registrant_count == len(want.registrants), event.name
            assert event.cancellation_count == len(want.cancellations), event.name
            assert event.attendee_count == len(want.attendees), event.name
            assert event.description == (webinar.get("description") or {}).get("content", "")
            assert event.organizer_name == webinar["createdBy"]["user"]["displayName"]
            assert event.start_at is not None
            assert event.end_at is not None
            assert event.start_at < event.end_at
        autumn = _event(db, "Autumn Product Launch")
        # 09:00 Pacific Standard Time on 2026-11-04 is 17:00 UTC.
        assert autumn.start_at.isoformat() == "2026-11-04T17:00:00+00:00"
        assert autumn.time_zone == "America/Los_Angeles"


def test_t7_organizer_who_registers_and_attends_is_not_counted(
    synced: Connected, tenant: Tenant
) -> None:
    with synced.session_factory() as db:
        event = _event(db, "APAC Partner Briefing")
        tomas = "tomas.berg@contoso.example"
        reg = db.scalars(
            select(EventRegistration).where(
                EventRegistration.event_id == event.id, EventRegistration.email == tomas
            )
        ).one()
        assert reg.status == "registered"
        assert reg.excluded_reason == "organizer"
        att = db.scalars(
            select(EventAttendance).where(
                EventAttendance.event_id == event.id, EventAttendance.person_key == tomas
            )
        ).one()
        assert att.excluded_reason == "organizer"
        assert att.total_seconds > 0
        principal = load_principal(db, synced.admin_id)
        rec = event_service.reconciliation(db=db, principal=principal, event_id=event.id)
        assert tomas not in rec.registrants
        assert tomas not in rec.attendees
        assert tomas in rec.not_counted["organizer"]
        assert rec.counts.registrants == len(rec.registrants) == event.registrant_count
        assert rec.counts.no_shows == len(set(rec.registrants) - set(rec.attendees))


# ---------------------------------------------------------------- T8 contacts


def test_t8_contacts_have_name_and_email_only_and_are_not_duplicated(connected: Connected) -> None:
    with connected.session_factory() as db, db.begin():
        existing = factories.contact(
            db,
            org.get_user(db=db, user_id=connected.admin_id),
            email="lukas.brennan@tailspin.example",
            first_name="Lukas",
            last_name="Existing",
            company="Tailspin",
        )
        existing_id = existing.id
    connected.full_sync()
    with connected.session_factory() as db:
        lukas = db.scalars(
            select(Contact).where(Contact.email == "lukas.brennan@tailspin.example")
        ).all()
        assert [c.id for c in lukas] == [existing_id]
        assert lukas[0].last_name == "Existing"  # matched, not overwritten
        created = db.scalars(select(Contact).where(Contact.origin == "teams_sync")).all()
        assert created
        for contact in created:
            assert contact.email
            assert contact.email == contact.email.strip().casefold()
            assert (contact.company, contact.job_title, contact.phone, contact.country) == (
                "",
                "",
                "",
                None,
            )
            assert contact.origin_sync_run_id is not None
            assert contact.origin_event_id is not None
        emails = [c.email for c in db.scalars(select(Contact))]
        assert len(emails) == len(set(emails))
        # An attendee who never registered is still recorded, with a contact.
        diego = db.scalars(
            select(EventAttendance).where(
                EventAttendance.person_key == "diego.lindgren@wingtip.example"
            )
        ).one()
        assert diego.registration_id is None
        assert diego.contact_id is not None


def test_t8_deleted_contact_is_not_recreated(synced: Connected) -> None:
    email = "lukas.brennan@tailspin.example"
    with synced.session_factory() as db, db.begin():
        contact_id = db.scalars(select(Contact.id).where(Contact.email == email)).one()
        admin = load_principal(db, synced.admin_id)
        before = _event(db, "Autumn Product Launch").attendee_count
        contact_service.delete_record(
            db=db, principal=admin, kind=contact_service.CONTACT, record_id=contact_id
        )
    report = synced.sync()
    assert report.changes["contacts_created"] == 0
    with synced.session_factory() as db:
        assert db.scalar(select(func.count()).where(Contact.email == email)) == 0
        att = db.scalars(select(EventAttendance).where(EventAttendance.person_key == email)).all()
        assert att
        assert all(a.excluded_reason == "tombstoned" for a in att)
        assert _event(db, "Autumn Product Launch").attendee_count == before - 1


# ---------------------------------------------------------------- T9 timeline


def test_t9_timeline_sums_every_join_and_leave(synced: Connected, tenant: Tenant) -> None:
    email = "lukas.brennan@tailspin.example"
    record = next(
        r
        for s in tenant.webinar("Autumn Product Launch")["sessions"]
        for rep in s["attendanceReports"]
        for r in rep["attendanceRecords"]
        if (r.get("emailAddress") or "").lower() == email
    )
    intervals = record["attendanceIntervals"]
    assert len(intervals) > 1
    with synced.session_factory() as db:
        contact_id = db.scalars(select(Contact.id).where(Contact.email == email)).one()
        entries = event_service.timeline(
            db=db, principal=load_principal(db, synced.admin_id), contact_id=contact_id
        )
    entry = next(e for e in entries if e.event_name == "Autumn Product Launch")
    assert entry.attended
    assert len(entry.intervals) == len(intervals)
    assert entry.total_seconds == sum(i.duration_seconds for i in entry.intervals)
    assert entry.first_join_at == min(i.join_at for i in entry.intervals)
    assert entry.last_leave_at == max(i.leave_at for i in entry.intervals)
    assert entry.registration_status == "registered"
    assert entry.event_start_at.isoformat() == "2026-11-04T17:00:00+00:00"


# ---------------------------------------------------------------- T10 registration status


def test_t10_cancellation_after_registration_moves_the_counts(
    synced: Connected, tenant: Tenant
) -> None:
    webinar = tenant.webinar("Holiday Campaign Masterclass")
    reg = next(
        r
        for r in webinar["registrations"]
        if r["status"] == "registered" and not r["email"].lower().endswith(INTERNAL_DOMAIN)
    )
    with synced.session_factory() as db:
        event = _event(db, "Holiday Campaign Masterclass")
        registrants, cancellations = event.registrant_count, event.cancellation_count
    tenant.control(
        f"{tenant.webinar_path('Holiday Campaign Masterclass')}/registrations/{reg['id']}/cancel"
    )
    report = synced.sync()
    assert report.changes["registration_status_changes"] == 1
    with synced.session_factory() as db:
        event = _event(db, "Holiday Campaign Masterclass")
        assert (event.registrant_count, event.cancellation_count) == (
            registrants - 1,
            cancellations + 1,
        )
        row = db.scalars(
            select(EventRegistration).where(EventRegistration.external_id == reg["id"])
        ).one()
        history = [
            h.status
            for h in db.scalars(
                select(RegistrationStatusChange)
                .where(RegistrationStatusChange.registration_id == row.id)
                .order_by(RegistrationStatusChange.id)
            )
        ]
        assert history == ["registered", "canceled"]
        assert row.canceled_at is not None


def test_t10_new_registration_and_attendance_flow_in(synced: Connected, tenant: Tenant) -> None:
    path = tenant.webinar_path("Autumn Product Launch")
    tenant.control(
        f"{path}/registrations",
        {"email": "New.Person@Example.org", "firstName": "New", "lastName": "Person"},
    )
    session_id = tenant.webinar("Autumn Product Launch")["sessions"][0]["id"]
    tenant.control(
        f"{path}/sessions/{session_id}/attendance",
        {
            "reportId": "ffffffff-0000-4000-8000-00000000abcd",
            "emailAddress": "new.person@example.org",
            "joinDateTime": "2026-11-04T17:05:00Z",
            "leaveDateTime": "2026-11-04T17:35:00Z",
        },
    )
    synced.sync()
    with synced.session_factory() as db:
        contact = db.scalars(select(Contact).where(Contact.email == "new.person@example.org")).one()
        assert (contact.first_name, contact.last_name) == ("New", "Person")
        att = db.scalars(
            select(EventAttendance).where(EventAttendance.person_key == "new.person@example.org")
        ).one()
        assert att.total_seconds == 1800
        assert att.registration_id is not None


# ---------------------------------------------------------------- T12 idempotency and faults


def test_t12_the_same_sync_twice_changes_nothing(synced: Connected) -> None:
    first = snapshot(synced.session_factory)
    again = synced.sync()
    assert again.status == "succeeded"
    assert dict(again.changes) == {}
    assert snapshot(synced.session_factory) == first


def test_t12_faults_at_20_percent_end_equal_to_the_fault_free_run(
    synced: Connected, tenant: Tenant
) -> None:
    clean = snapshot(synced.session_factory)
    wipe_synced(synced.session_factory)
    tenant.control(
        "faults",
        {
            "rate": 0.2,
            "seed": 7,
            "kinds": ["429", "503", "504", "drop", "slow", "expired_token"],
            "retry_after": 0.05,
            "slow_seconds": 1.5,
        },
    )
    make_client = client_factory(
        synced.settings, timeout=0.75, backoff_base=0.01, backoff_max=0.1, max_attempts=10
    )
    report = synced.sync(make_client=make_client)
    assert report.status == "succeeded", report.errors
    assert report.graph_stats["retries"] > 0
    faulted = {r.get("fault") for r in tenant.requests() if r.get("fault")}
    assert {"429", "503", "drop", "slow", "expired_token"} <= faulted
    assert snapshot(synced.session_factory) == clean


class _Kill(BaseException):
    """Stands in for the process dying (not an Exception, so nothing catches it)."""


@pytest.mark.parametrize("after", [1, 4, 7])
def test_t12_a_killed_sync_rerun_ends_equal(synced: Connected, after: int) -> None:
    reference = snapshot(synced.session_factory)
    wipe_synced(synced.session_factory)

    def die(done: int, total: int, label: str) -> None:
        # Discovery reports "checking <user>"; webinars report their names as they land.
        if done == after and not label.startswith(("checking", "fetching")):
            raise _Kill

    with pytest.raises(_Kill):
        synced.sync(progress=die)
    with synced.session_factory() as db:
        assert 0 < _count(db, MarketingEvent) < 8
        killed = db.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert killed is not None
        assert killed.status == "interrupted"
    assert synced.sync().status == "succeeded"
    assert snapshot(synced.session_factory) == reference


def test_t12_attendance_aged_out_of_graph_is_kept(synced: Connected, tenant: Tenant) -> None:
    before = snapshot(synced.session_factory)
    # Graph lists only the 10 most recent reports: an old one disappearing is not a deletion.
    tenant.webinar("Data Summit")["sessions"][0]["attendanceReports"].pop(0)
    report = synced.sync()
    assert report.changes.get("intervals_deleted", 0) == 0
    assert snapshot(synced.session_factory) == before


# ---------------------------------------------------------------- dry run and run records


def test_dry_run_reports_the_plan_and_writes_nothing(connected: Connected) -> None:
    connected.sync()
    connected.tick_all()
    before = snapshot(connected.session_factory)
    with connected.session_factory() as db:
        runs = _count(db, SyncRun)
    report = connected.sync(dry_run=True)
    assert report.run_id is None
    assert report.status == "succeeded"
    assert snapshot(connected.session_factory) == before
    with connected.session_factory() as db:
        assert _count(db, SyncRun) == runs
        assert _count(db, MarketingEvent) == 0
    plan = {p["webinar"]: p for p in report.plan}
    autumn = plan["Autumn Product Launch"]
    assert autumn["event"] == "create"
    assert "diego.lindgren@wingtip.example" in autumn["contacts_to_create"]
    assert any(e.endswith(INTERNAL_DOMAIN) for e in autumn["excluded"]["internal"])
    real = connected.sync()
    assert real.changes["contacts_created"] == report.changes["contacts_created"]
    # 8 webinars and 2 town halls of organizers with the policy, outside excluded domains.
    assert real.changes["events_created"] == report.changes["events_created"] == 10


def test_every_run_is_recorded_with_what_it_fetched_and_changed(synced: Connected) -> None:
    report = synced.report
    assert report is not None
    with synced.session_factory() as db:
        run = db.get(SyncRun, report.run_id)
        assert run is not None
        assert run.status == "succeeded"
        assert run.finished_at is not None
        assert run.fetched["registrations"] > 0
        assert run.changes["events_created"] == 10  # 8 webinars, 2 town halls
        assert run.graph_stats["requests"] > 0
        assert run.progress_done == run.progress_total == 10
        reg = db.scalars(select(EventRegistration)).first()
        assert reg is not None
        assert reg.created_by_sync_run_id == run.id
        contact = db.scalars(select(Contact).where(Contact.origin == "teams_sync")).first()
        assert contact is not None
        assert contact.origin_sync_run_id == run.id


# ---------------------------------------------------------------- B8 / B10


def test_b8_with_scoping_on_identical_people_in_other_bus_are_separate(
    connected: Connected,
) -> None:
    email = "lukas.brennan@tailspin.example"
    with connected.session_factory() as db, db.begin():
        emea = factories.bu(db, "EMEA")
        other_owner = factories.user(db, "emma", emea, "Marketer")
        other = factories.contact(
            db, other_owner, email=email, first_name="Lukas", last_name="Emea"
        )
        other_id = other.id
        org.set_feature(db=db, name=org.BU_SCOPING, enabled=True, by_user_id=connected.admin_id)
    connected.full_sync()
    with connected.session_factory() as db:
        contacts = db.scalars(
            select(Contact).where(Contact.email == email).order_by(Contact.id)
        ).all()
        assert next(c.id for c in contacts) == other_id
        assert len(contacts) == 2
        root = org.get_root(db=db).id
        assert contacts[1].owning_bu_id == root
        att = db.scalars(select(EventAttendance).where(EventAttendance.person_key == email)).first()
        assert att is not None
        assert att.contact_id == contacts[1].id


def test_b8_with_scoping_off_matching_ignores_bu(connected: Connected) -> None:
    email = "lukas.brennan@tailspin.example"
    with connected.session_factory() as db, db.begin():
        emea = factories.bu(db, "EMEA")
        owner = factories.user(db, "emma", emea, "Marketer")
        other_id = factories.contact(
            db, owner, email=email, first_name="Lukas", last_name="Emea"
        ).id
    connected.full_sync()
    with connected.session_factory() as db:
        assert db.scalars(select(Contact.id).where(Contact.email == email)).all() == [other_id]


def test_b10_event_records_belong_to_the_event_owner(connected: Connected) -> None:
    with connected.session_factory() as db, db.begin():
        emea = factories.bu(db, "EMEA")
        marta = factories.user(db, "marta", emea, "Marketer")
        marta.email = "marta.lindqvist@contoso.example"
        marta_id = marta.id
        outsider = factories.user(db, "olaf", factories.bu(db, "Americas"), "Marketer").id
    connected.full_sync()
    with connected.session_factory() as db:
        autumn = _event(db, "Autumn Product Launch")
        assert (autumn.owner_type, autumn.owner_id, autumn.owning_bu_id) == (
            "user",
            marta_id,
            emea.id,
        )
        apac = _event(db, "APAC Partner Briefing")  # Tomas has no Gatherly user: default owner
        assert apac.owner_id == connected.admin_id
        for model in (EventRegistration, EventAttendance):
            rows = db.scalars(select(model).where(model.event_id == autumn.id)).all()
            assert rows
            assert {(r.owner_id, r.owning_bu_id) for r in rows} == {(marta_id, emea.id)}
        created = db.scalars(select(Contact).where(Contact.origin_event_id == autumn.id)).all()
        assert created
        assert {c.owning_bu_id for c in created} == {emea.id}
        # A Marketer of another BU sees none of it.
        viewer = load_principal(db, outsider)
        assert event_service.count_events(db=db, principal=viewer) == 0
        assert event_service.timeline(
            db=db, principal=load_principal(db, marta_id), contact_id=created[0].id
        )


def test_emulator_users_endpoint_needs_user_read_all(tenant: Tenant) -> None:
    token = httpx.post(
        f"{tenant.base_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": tenant.app(0)["appId"],
            "client_secret": tenant.app(0)["secret"],
            "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials",
        },
    ).json()["access_token"]
    users = httpx.get(
        f"{tenant.base_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert {u["displayName"] for u in users["value"]} >= {"Marta Lindqvist", "Kenji Sato"}
    assert "applicationAccessPolicy" not in users["value"][0]
    # Without User.Read.All (or Directory.Read.All) Graph refuses, naming the permission.
    tenant.state.data["applications"].append(
        {
            "appId": "1e1e1e1e-2222-4333-8444-555566667777",
            "secret": "s4",
            "permissions": ["VirtualEvent.Read.All"],
        }
    )
    bare = httpx.post(
        f"{tenant.base_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": "1e1e1e1e-2222-4333-8444-555566667777",
            "client_secret": "s4",
            "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials",
        },
    ).json()["access_token"]
    refused = httpx.get(
        f"{tenant.base_url}/v1.0/users", headers={"Authorization": f"Bearer {bare}"}
    )
    assert refused.status_code == 403
    assert "User.Read.All" in refused.json()["error"]["message"]


# ---------------------------------------------------------------- T11 recordings and transcripts


def _recordings_for(connected: Connected, name: str) -> None:
    connected.sync()
    with connected.session_factory() as db, db.begin():
        organizer = _organizer(db, name)
        admin = load_principal(db, connected.admin_id)
        teams.update_organizer(
            db=db, principal=admin, organizer_id=organizer.id, sync_recordings=True
        )


def test_t11_recordings_and_transcripts_sync_for_users_whose_setting_says_so(
    connected: Connected, tenant: Tenant
) -> None:
    _recordings_for(connected, "Marta Lindqvist")
    connected.tick_all()
    report = connected.sync()
    assert report.status == "succeeded", report.errors
    session = tenant.webinar("Autumn Product Launch")["sessions"][0]
    fixture_transcript = session["transcripts"][0]
    with connected.session_factory() as db:
        autumn = _event(db, "Autumn Product Launch")
        principal = load_principal(db, connected.admin_id)
        recordings, transcripts = event_service.recordings(
            db=db, principal=principal, event_id=autumn.id
        )
        assert [r.external_id for r in recordings] == [session["recordings"][0]["id"]]
        assert len(transcripts) == 1
        transcript, cues = transcripts[0]
        assert transcript.external_id == fixture_transcript["id"]
        assert transcript.vtt == fixture_transcript["content"]
        assert transcript.recording_id == recordings[0].id  # paired by contentCorrelationId
        assert cues[0].speaker == "Marta Lindqvist"
        assert cues[0].text == "Welcome everyone, thanks for joining us today."
        assert (cues[0].start_ms, cues[0].end_ms) == (0, 5440)
        assert len(cues) == fixture_transcript["content"].count(" --> ")
        # Tomas's setting is off: his webinars' recordings are not synced.
        apac = _event(db, "APAC Partner Briefing")
        assert event_service.recordings(db=db, principal=principal, event_id=apac.id) == ([], [])
    assert connected.sync().changes == {}


def test_t11_a_recording_plays_streamed_from_teams_for_who_may_read_the_event(
    connected: Connected, tenant: Tenant, client: TestClient
) -> None:
    """The video is streamed from Graph piece by piece (never held whole), through the API
    and the event page, only to users who may read the event."""
    _recordings_for(connected, "Marta Lindqvist")
    connected.tick_all()
    assert connected.sync().status == "succeeded"
    video = os.urandom(3 * teams.CHUNK + 1000)
    served = tenant.webinar("Autumn Product Launch")["sessions"][0]["recordings"][0]
    served["contentBase64"] = base64.b64encode(video).decode()
    with connected.session_factory() as db:
        autumn = _event(db, "Autumn Product Launch")
        admin = load_principal(db, connected.admin_id)
        [recording], _ = event_service.recordings(db=db, principal=admin, event_id=autumn.id)
        content = teams.recording_content(
            db=db,
            principal=admin,
            settings=connected.settings,
            event_id=autumn.id,
            recording_id=recording.id,
        )
        assert (content.media_type, content.length) == ("video/mp4", len(video))
        pieces = list(content.chunks)
        assert len(pieces) == 4  # read a piece at a time
        assert b"".join(pieces) == video
        outsider = factories.user(db, "outsider", org.get_root(db=db), "Marketing Assistant")
        web_user = factories.user(db, "player", None, "Marketing Administrator")
        for user in (web_user, outsider):
            org.set_password(db=db, user_id=user.id, password="correct horse battery")
        db.commit()
        ids = (autumn.id, recording.id, factories.token(db, outsider))
        admin_headers = factories.token(db, db.get(User, connected.admin_id))  # type: ignore[arg-type]
    event_id, recording_id, outsider_headers = ids
    url = f"/api/v1/events/{event_id}/recordings/{recording_id}/content"
    played = client.get(url, headers=admin_headers)
    assert played.status_code == 200, played.text
    assert played.headers["content-type"] == "video/mp4"
    assert played.headers["cache-control"] == "private, no-store"
    assert played.content == video
    for wrong in (url, url.replace(f"/{recording_id}/", "/999999/")):
        refused = client.get(wrong, headers=outsider_headers)
        assert refused.status_code == 404, refused.text  # the event is not theirs to read
    missing = client.get(url.replace(f"/{recording_id}/", "/999999/"), headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "recording_id"

    client_sign_in(client, "outsider")
    assert client.get(f"/events/{event_id}/recordings/{recording_id}").status_code == 404
    client_sign_in(client, "player")
    page = client.get(f"/events/{event_id}").text
    link = f'href="/events/{event_id}/recordings/{recording_id}"'
    assert link in page
    assert client.get(f"/events/{event_id}/recordings/{recording_id}").content == video
    # Teams forgets the recording: the page says so instead of failing.
    served["contentBase64"] = None
    gone = client.get(f"/events/{event_id}/recordings/{recording_id}")
    assert gone.status_code == 404
    assert "Microsoft Teams no longer has this recording" in gone.text


def test_t11_a_limited_install_syncs_everything_else_and_says_what_is_missing(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant
) -> None:
    from tests.teams.conftest import connect

    settings = Settings(database_url=database_url, graph_rate_per_second=500)
    admin_id = connect(session_factory, settings, tenant, app_index=1)
    limited = Connected(session_factory, settings, tenant, admin_id)
    _recordings_for(limited, "Marta Lindqvist")
    limited.tick_all()
    report = limited.sync()
    assert report.status == "partial"
    [error] = [e for e in report.errors if e["code"] == "limited_install"]
    assert "OnlineMeetingRecording.Read.All" in error["message"]
    assert "OnlineMeetingTranscript.Read.All" in error["message"]
    with session_factory() as db:
        assert _event(db, "Autumn Product Launch").attendee_count > 0
        assert _count(db, EventRecording) == 0


def test_t9_a_capped_attendance_expansion_falls_back_to_paging_the_records(
    synced: Connected, tenant: Tenant
) -> None:
    reference = snapshot(synced.session_factory)
    with synced.session_factory() as db, db.begin():
        for model in (AttendanceInterval, EventAttendance):
            db.execute(model.__table__.delete())
    tenant.state.expand_limit = 3
    try:
        synced.sync()
    finally:
        tenant.state.expand_limit = None
    assert snapshot(synced.session_factory) == reference
    paged = [r for r in tenant.requests() if r["path"].endswith("/attendanceRecords")]
    assert paged  # the records endpoint was used because the expansion came back short
