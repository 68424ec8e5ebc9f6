"""Segments stay fresh without anyone asking: the change outbox, drained by
``jobs.process_changes``, refreshes exactly the segments a change concerns, incrementally
where it can; relative dates are refreshed by ``jobs.refresh_due`` (SPEC B5)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from gatherly.contact import service as contact_service
from gatherly.contact.schemas import ContactUpdate
from gatherly.core import changes
from gatherly.core.changes import DataChange
from gatherly.event.models import EventAttendance
from gatherly.org import service as org
from gatherly.org.models import BusinessUnit
from gatherly.segment import jobs
from gatherly.segment import service as seg
from gatherly.segment.models import Segment, SegmentMember
from tests import factories as f
from tests.segment.conftest import Org


def stored(acme: Org, segment_id: int) -> set[int]:
    """The materialised membership, as stored."""
    return set(
        acme.db.execute(
            select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment_id)
        ).scalars()
    )


def refreshed(report: jobs.DrainReport) -> dict[int, seg.RefreshResult]:
    return {r.segment_id: r for r in report.refreshed}


def outbox(acme: Org) -> int:
    return int(acme.db.execute(select(func.count()).select_from(DataChange)).scalar_one())


def edit_country(acme: Org, name: str, country: str) -> None:
    contact_service.update(
        db=acme.db,
        principal=acme.p("uOrg"),
        kind=contact_service.CONTACT,
        record_id=acme.contacts[name].id,
        record_in=ContactUpdate(country=country),
    )
    acme.db.commit()


def test_new_segment_gets_a_full_refresh(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    segment = acme.db.get(Segment, seg_id)
    assert segment is not None
    assert (segment.refresh_state, segment.refreshed_at) == ("pending", None)
    report = acme.drain()
    result = refreshed(report)[seg_id]
    assert result.partial is False
    assert (result.removed, result.total) == (0, 3)
    assert stored(acme, seg_id) == acme.ids("c1", "c2", "c3")
    segment = acme.db.get(Segment, seg_id)
    assert segment is not None
    assert segment.refresh_state == "fresh"
    assert segment.member_total == 3
    assert segment.refreshed_at is not None
    assert outbox(acme) == 0


def test_editing_a_contact_refreshes_only_that_contact(acme: Org) -> None:
    jp = acme.segment("uOrg", {"contact": {"country": "JP"}}, scope="organization")
    de = acme.segment("uOrg", {"contact": {"country": "DE"}}, scope="organization", name="DE")
    acme.drain()
    edit_country(acme, "c1", "DE")
    assert outbox(acme) == 1
    report = acme.drain()
    results = refreshed(report)
    assert results.keys() == {jp, de}  # a contact change concerns every dynamic segment
    assert results[jp].partial is True
    assert (results[jp].removed, results[jp].total) == (1, 2)
    assert (results[de].removed, results[de].total) == (0, 1)
    assert stored(acme, jp) == acme.ids("c2", "c3")
    assert stored(acme, de) == acme.ids("c1")
    assert acme.visible("uOrg", jp) == acme.ids("c2", "c3")
    edit_country(acme, "c1", "JP")
    acme.drain()
    assert stored(acme, jp) == acme.ids("c1", "c2", "c3")
    assert stored(acme, de) == set()


def test_refresh_reports_how_many_joined_and_left(acme: Org) -> None:
    jp = acme.segment("uOrg", {"contact": {"country": "JP"}}, scope="organization")
    de = acme.segment("uOrg", {"contact": {"country": "DE"}}, scope="organization", name="DE")
    first = refreshed(acme.drain())
    assert (first[jp].added, first[jp].removed, first[de].added) == (3, 0, 0)
    edit_country(acme, "c1", "DE")
    results = refreshed(acme.drain())
    assert (results[jp].added, results[jp].removed) == (0, 1)
    assert (results[de].added, results[de].removed) == (1, 0)
    again = seg.refresh(db=acme.db, segment_id=jp)
    assert again is not None
    assert (again.added, again.removed, again.total) == (0, 0, 2)


def test_partial_refresh_leaves_untouched_members_alone(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    acme.drain()
    # Someone changes c3 behind the services' back (no outbox row): a partial refresh for
    # c1 must not notice, a full one must.
    acme.contacts["c3"].country = "FR"
    acme.db.commit()
    edit_country(acme, "c1", "DE")
    acme.drain()
    assert stored(acme, seg_id) == acme.ids("c2", "c3")
    result = seg.refresh(db=acme.db, segment_id=seg_id)
    assert result is not None
    assert (result.partial, result.removed) == (False, 1)
    assert stored(acme, seg_id) == acme.ids("c2")


def test_list_changes_refresh_the_segments_using_that_list_only(acme: Org) -> None:
    admin = acme.p("uOrg")
    vip = seg.create_list(db=acme.db, principal=admin, name="VIP")
    other = seg.create_list(db=acme.db, principal=admin, name="Other")
    acme.db.commit()
    uses_vip = acme.segment("uOrg", {"list": vip.id}, scope="organization", name="VIP")
    uses_other = acme.segment("uOrg", {"not": {"list": other.id}}, scope="organization")
    by_country = acme.segment("uOrg", scope="organization", name="JP")
    acme.drain()
    assert stored(acme, uses_vip) == set()
    assert stored(acme, uses_other) == acme.ids("c1", "c2", "c3")

    seg.add_to_list(
        db=acme.db, principal=admin, list_id=vip.id, contact_ids=sorted(acme.ids("c1", "c3"))
    )
    acme.db.commit()
    report = acme.drain()
    assert refreshed(report).keys() == {uses_vip}
    assert refreshed(report)[uses_vip].partial is True
    assert stored(acme, uses_vip) == acme.ids("c1", "c3")

    seg.remove_from_list(
        db=acme.db, principal=admin, list_id=vip.id, contact_ids=[acme.contacts["c1"].id]
    )
    acme.db.commit()
    report = acme.drain()
    assert refreshed(report).keys() == {uses_vip}
    assert stored(acme, uses_vip) == acme.ids("c3")

    seg.add_to_list(
        db=acme.db, principal=admin, list_id=other.id, contact_ids=[acme.contacts["c2"].id]
    )
    acme.db.commit()
    report = acme.drain()
    assert refreshed(report).keys() == {uses_other}
    assert stored(acme, uses_other) == acme.ids("c1", "c3")
    assert stored(acme, by_country) == acme.ids("c1", "c2", "c3")


def test_event_change_refreshes_participation_segments_only(acme: Org) -> None:
    owner = acme.users["uOrg"]
    event = f.event(acme.db, owner, "Launch", event_type="webinar")
    acme.db.commit()
    attended = acme.segment(
        "uOrg", {"participation": "attended", "event": {"id": event.id}}, scope="organization"
    )
    webinars = acme.segment(
        "uOrg",
        {"participation": "attended", "event": {"type": "webinar"}, "min_minutes": 10},
        scope="organization",
        name="webinars",
    )
    by_country = acme.segment("uOrg", scope="organization", name="JP")
    flags = {s.id: s.uses_events for s in acme.db.execute(select(Segment)).scalars().all()}
    assert flags == {attended: True, webinars: True, by_country: False}
    acme.drain()
    assert stored(acme, attended) == set()

    f.attendance(acme.db, event, acme.contacts["c2"], seconds=1200)
    changes.record(acme.db, changes.EVENT, ref_id=event.id)
    acme.db.commit()
    report = acme.drain()
    results = refreshed(report)
    assert results.keys() == {attended, webinars}  # not the contact-field segment
    assert all(r.partial for r in results.values())
    assert stored(acme, attended) == acme.ids("c2")
    assert stored(acme, webinars) == acme.ids("c2")
    assert stored(acme, by_country) == acme.ids("c1", "c2", "c3")

    # An attendance that turns out to be the organizer's stops counting.
    row = acme.db.execute(select(EventAttendance)).scalar_one()
    row.excluded_reason = "organizer"
    changes.record(acme.db, changes.EVENT, ref_id=event.id, contact_ids=[acme.contacts["c2"].id])
    acme.db.commit()
    acme.drain()
    assert stored(acme, attended) == set()
    assert stored(acme, webinars) == set()


def test_moving_a_user_rescopes_their_business_unit_segments(acme: Org) -> None:
    acme.scoping(True)
    mine = acme.segment("uA")  # business-unit scope: A
    theirs = acme.segment("uB", name="B's")  # business-unit scope: B
    acme.drain()
    assert stored(acme, mine) == acme.ids("c1")
    assert stored(acme, theirs) == acme.ids("c3")
    org.move_user(db=acme.db, user_id=acme.users["uA"].id, business_unit_id=acme.bus["B"])
    acme.db.commit()
    assert acme.db.execute(select(DataChange.topic)).scalars().all() == ["owner"]
    report = acme.drain()
    assert all(r.partial is False for r in report.refreshed)
    segment = acme.db.get(Segment, mine)
    assert segment is not None
    assert (segment.owning_bu_id, segment.scope_bu_id) == (acme.bus["B"], acme.bus["B"])
    assert stored(acme, mine) == acme.ids("c3")
    assert acme.visible("uOrg", mine) == acme.ids("c3")
    assert stored(acme, theirs) == acme.ids("c3")


def test_moving_a_team_brings_its_contacts_into_the_new_units_segments(acme: Org) -> None:
    acme.scoping(True)
    a = acme.db.get(BusinessUnit, acme.bus["A"])
    assert a is not None
    team = f.team(acme.db, "Campaign", a)
    c4 = f.contact(acme.db, team, email="c4@x.example", country="JP", last_name="Four")
    theirs = acme.segment("uB", name="B's")  # business-unit scope: B
    acme.drain()
    assert stored(acme, theirs) == acme.ids("c3")
    org.update_team(db=acme.db, team_id=team.id, business_unit_id=acme.bus["B"])
    acme.db.commit()
    assert acme.db.execute(select(DataChange.topic)).scalars().all() == ["owner"]
    acme.drain()
    assert stored(acme, theirs) == acme.ids("c3") | {c4.id}


def test_moving_a_business_unit_refreshes_what_participation_sees(acme: Org) -> None:
    # The Marketing Manager in A reads events along A's subtree: an attendance of an event
    # owned in A1 counts for their segment until A1 moves under B (found by the soak).
    event = f.event(acme.db, acme.users["uOrg"], "A1 webinar")
    f.attendance(acme.db, event, acme.contacts["c3"], seconds=600)
    attended = acme.segment("uA_deep", {"participation": "attended"})
    acme.drain()
    assert stored(acme, attended) == acme.ids("c3")
    org.update_bu(db=acme.db, bu_id=acme.bus["A1"], parent_id=acme.bus["B"])
    acme.db.commit()
    assert acme.db.execute(select(DataChange.topic)).scalars().all() == ["all"]
    acme.drain()
    assert stored(acme, attended) == set()


def test_a_role_taken_or_given_refreshes_what_participation_sees(acme: Org) -> None:
    event = f.event(acme.db, acme.users["uOrg"], "A1 webinar")
    f.attendance(acme.db, event, acme.contacts["c3"], seconds=600)
    attended = acme.segment("uA_deep", {"participation": "attended"})
    acme.drain()
    assert stored(acme, attended) == acme.ids("c3")
    manager = org.get_role_by_name(db=acme.db, name="Marketing Manager").id
    owner = acme.users["uA_deep"].id
    org.unassign_role(db=acme.db, role_id=manager, user_id=owner)
    acme.db.commit()
    assert acme.db.execute(select(DataChange.topic)).scalars().all() == ["access"]
    acme.drain()
    assert stored(acme, attended) == set()  # its owner reads no event any more
    org.assign_role(db=acme.db, role_id=manager, user_id=owner)
    acme.drain()
    assert stored(acme, attended) == acme.ids("c3")


def test_a_rolled_back_change_leaves_no_outbox_row(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    acme.drain()
    changes.record(acme.db, changes.CONTACT, contact_ids=[acme.contacts["c1"].id])
    acme.db.flush()
    assert outbox(acme) == 1  # visible inside the transaction …
    acme.db.rollback()
    assert outbox(acme) == 0  # … gone with it
    # A dry run of a real edit: the contact and the outbox roll back together.
    contact_service.update(
        db=acme.db,
        principal=acme.p("uOrg"),
        kind=contact_service.CONTACT,
        record_id=acme.contacts["c1"].id,
        record_in=ContactUpdate(country="DE"),
    )
    acme.db.rollback()
    assert outbox(acme) == 0
    report = acme.drain()
    assert (report.changes, report.refreshed) == (0, [])
    assert stored(acme, seg_id) == acme.ids("c1", "c2", "c3")


def test_no_change_is_recorded_for_an_empty_id_list(acme: Org) -> None:
    changes.record(acme.db, changes.CONTACT, contact_ids=[])
    acme.db.commit()
    assert outbox(acme) == 0


def test_draining_is_idempotent(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    acme.drain()
    edit_country(acme, "c2", "DE")
    first = acme.drain()
    assert first.changes == 1
    after_first = stored(acme, seg_id)
    second = acme.drain()
    assert (second.changes, second.refreshed, second.failed) == (0, [], {})
    assert stored(acme, seg_id) == after_first == acme.ids("c1", "c3")
    # A worker that died after refreshing but before deleting its rows runs them again.
    changes.record(acme.db, changes.CONTACT, contact_ids=[acme.contacts["c2"].id])
    changes.record(acme.db, changes.CONTACT, contact_ids=[acme.contacts["c2"].id])
    changes.record(acme.db, changes.SEGMENT, ref_id=seg_id)
    acme.db.commit()
    again = acme.drain()
    assert again.changes == 3
    result = refreshed(again)[seg_id]
    assert (result.removed, result.total, result.partial) == (0, 2, False)
    assert stored(acme, seg_id) == after_first


def test_a_failing_segment_is_marked_and_the_others_still_refresh(acme: Org) -> None:
    good = acme.segment("uOrg", scope="organization")
    owner = acme.users["uOrg"]
    broken = Segment(
        name="broken",
        kind="dynamic",
        scope="organization",
        criteria={"frobnicate": 1},  # written around the validation
        owner_type="user",
        owner_id=owner.id,
        owning_bu_id=owner.business_unit_id,
    )
    acme.db.add(broken)
    acme.db.commit()
    changes.record(acme.db, changes.ALL)
    acme.db.commit()
    report = acme.drain()
    assert set(report.failed) == {broken.id}
    assert "unknown criterion 'frobnicate'" in report.failed[broken.id]
    assert refreshed(report).keys() == {good}
    failed = acme.db.get(Segment, broken.id)
    assert failed is not None
    assert failed.refresh_state == "failed"
    assert failed.refresh_error is not None
    assert "frobnicate" in failed.refresh_error
    assert stored(acme, good) == acme.ids("c1", "c2", "c3")
    assert outbox(acme) == 0  # the changes are spent; the failure is on the segment
    # Fixed by hand, it refreshes again on the next pass.
    failed.criteria = {"contact": {"country": "JP"}}
    changes.record(acme.db, changes.SEGMENT, ref_id=broken.id)
    acme.db.commit()
    report = acme.drain()
    assert report.failed == {}
    fixed = acme.db.get(Segment, broken.id)
    assert fixed is not None
    assert (fixed.refresh_state, fixed.refresh_error) == ("fresh", None)


def test_refresh_due_refreshes_stale_relative_segments_only(acme: Org) -> None:
    t0 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    acme.contacts["c1"].created_at = t0 - timedelta(days=20)
    acme.contacts["c2"].created_at = t0 - timedelta(days=5)
    acme.contacts["c3"].created_at = t0 + timedelta(days=3)
    acme.db.commit()
    recent = acme.segment(
        "uOrg", {"contact": {"created_at": {"in_last_days": 30}}}, scope="organization"
    )
    fixed = acme.segment(
        "uOrg", {"contact": {"created_at": {"before": "2026-04-01"}}}, scope="organization"
    )
    jobs.process_changes(acme.factory, now=t0)
    acme.db.expire_all()
    assert stored(acme, recent) == acme.ids("c1", "c2")
    assert stored(acme, fixed) == acme.ids("c1")

    soon = jobs.refresh_due(
        acme.factory, max_age=timedelta(hours=1), now=t0 + timedelta(minutes=30)
    )
    assert soon.refreshed == []  # refreshed 30 minutes ago: still fresh

    later = t0 + timedelta(days=15)
    due = jobs.refresh_due(acme.factory, max_age=timedelta(hours=1), now=later)
    acme.db.expire_all()
    assert refreshed(due).keys() == {recent}
    assert refreshed(due)[recent].partial is False
    assert stored(acme, recent) == acme.ids("c2", "c3")  # c1 aged out, c3 arrived
    assert stored(acme, fixed) == acme.ids("c1")
    segment = acme.db.get(Segment, recent)
    assert segment is not None
    assert segment.refreshed_at == later
    assert jobs.refresh_due(acme.factory, max_age=timedelta(hours=1), now=later).refreshed == []


def test_refresh_due_picks_up_never_refreshed_segments(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    acme.db.execute(delete(DataChange))
    acme.db.commit()  # the wake-up was lost: the periodic pass still finds the segment
    report = jobs.refresh_due(acme.factory, max_age=timedelta(hours=1))
    acme.db.expire_all()
    assert refreshed(report).keys() == {seg_id}
    assert stored(acme, seg_id) == acme.ids("c1", "c2", "c3")


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: outbox ids always commit in order")


@pytest.mark.usefixtures("postgres_only")
def test_a_change_committed_during_a_drain_is_not_lost(
    acme: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox ids are taken at insert, not at commit: a transaction holding a lower id may
    commit while a pass runs, and its row must survive the pass's delete."""
    seg_id = acme.segment("uOrg", scope="organization")
    acme.drain()
    # A slow transaction takes an outbox id first and commits last.
    with acme.factory() as slow:
        contact_service.update(
            db=slow,
            principal=f.principal(slow, acme.users["uOrg"]),
            kind=contact_service.CONTACT,
            record_id=acme.contacts["c1"].id,
            record_in=ContactUpdate(country="DE"),
        )
        slow.flush()
        edit_country(acme, "c2", "DE")  # a later id, committed first
        real = jobs._refresh_one

        def commit_slow_then_refresh(*args: Any, **kwargs: Any) -> None:
            if slow.in_transaction():
                slow.commit()  # lands between the drain's read and its delete
            real(*args, **kwargs)

        monkeypatch.setattr(jobs, "_refresh_one", commit_slow_then_refresh)
        acme.drain()
    acme.drain()
    assert stored(acme, seg_id) == acme.ids("c3")  # c1 is in DE now too


@pytest.mark.usefixtures("postgres_only")
def test_two_refreshes_of_a_segment_at_once_take_turns(acme: Org) -> None:
    """A user's refresh beside the worker's (found by the soak): the second waits for the
    first, then finds its members there, instead of inserting them again and failing."""
    seg_id = acme.segment("uOrg", scope="organization")
    errors: list[BaseException] = []
    with acme.factory() as first:
        seg.refresh(db=first, segment_id=seg_id)  # members inserted, not committed yet

        def second() -> None:
            try:
                with acme.factory() as db, db.begin():
                    seg.refresh(db=db, segment_id=seg_id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # waiting for the first
        first.commit()
    thread.join(timeout=30)
    assert not errors
    assert stored(acme, seg_id) == acme.ids("c1", "c2", "c3")
