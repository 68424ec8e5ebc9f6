"""The Teams sync feeds segments: what it changes reaches dependent segments through the
change outbox, and a sync with nothing new queues nothing (SPEC B5 with T12)."""

from __future__ import annotations

from sqlalchemy import select

from gatherly.core.changes import DataChange
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.org.directory import load_principal
from gatherly.segment import jobs
from gatherly.segment import service as seg
from tests.teams.conftest import Connected


def _outbox(connected: Connected) -> list[str]:
    with connected.session_factory() as db:
        return list(db.execute(select(DataChange.topic).order_by(DataChange.id)).scalars())


def test_synced_attendance_reaches_attendance_segments_without_anyone_asking(
    connected: Connected,
) -> None:
    with connected.session_factory() as db, db.begin():
        admin = load_principal(db, connected.admin_id)
        attended = seg.create_segment(
            db=db,
            principal=admin,
            name="Attended any webinar",
            criteria={"participation": "attended"},
            scope="organization",
        ).id
        registered_only = seg.create_segment(
            db=db,
            principal=admin,
            name="Registered, did not attend",
            criteria={"participation": "not_attended"},
            scope="organization",
        ).id
    jobs.process_changes(connected.session_factory)  # first refresh: empty
    connected.full_sync()
    topics = _outbox(connected)
    assert "event" in topics
    assert "contact" in topics  # the contacts the sync created
    report = jobs.process_changes(connected.session_factory)
    assert {r.segment_id for r in report.refreshed} >= {attended, registered_only}
    assert all(r.partial for r in report.refreshed)  # only the people the sync touched
    with connected.session_factory() as db:
        admin = load_principal(db, connected.admin_id)
        attendees = set(
            db.execute(
                select(EventAttendance.contact_id).where(
                    EventAttendance.contact_id.is_not(None),
                    EventAttendance.excluded_reason.is_(None),
                )
            ).scalars()
        )
        members = seg.members(db=db, principal=admin, segment_id=attended, limit=500)
        assert attendees
        assert {c.id for c in members.page.items} == attendees
        assert members.visible == len(attendees)
        registrations = set(
            db.execute(
                select(EventRegistration.contact_id, EventRegistration.event_id).where(
                    EventRegistration.contact_id.is_not(None),
                    EventRegistration.excluded_reason.is_(None),
                    EventRegistration.status == "registered",
                )
            ).all()
        )
        attendance = set(
            db.execute(
                select(EventAttendance.contact_id, EventAttendance.event_id).where(
                    EventAttendance.excluded_reason.is_(None)
                )
            ).all()
        )
        expected = {contact for contact, event in registrations - attendance}
        no_shows = seg.members(db=db, principal=admin, segment_id=registered_only, limit=500)
        assert expected
        assert {c.id for c in no_shows.page.items} == expected
        # A live evaluation agrees with the incrementally maintained membership.
        live = seg.members(db=db, principal=admin, segment_id=registered_only, live=True, limit=500)
        assert {c.id for c in live.page.items} == {c.id for c in no_shows.page.items}


def test_a_sync_with_nothing_new_queues_no_refresh(connected: Connected) -> None:
    connected.full_sync()
    jobs.process_changes(connected.session_factory)
    assert _outbox(connected) == []
    report = connected.sync()
    assert report.status == "succeeded"
    assert _outbox(connected) == []


def test_a_dry_run_leaves_no_change_behind(connected: Connected) -> None:
    connected.sync()
    connected.tick_all()
    before = _outbox(connected)  # the set-up's own (the administrator's roles)
    report = connected.sync(dry_run=True)
    assert report.status == "succeeded"
    assert _outbox(connected) == before
