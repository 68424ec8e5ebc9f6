"""One meaning of "registered", "attended" and "cancelled": the event's counts, its
reconciliation and the segment criteria all name the same people."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gatherly.access.levels import Level, Privilege, rights_mask
from gatherly.access.models import RecordShare
from gatherly.event import participation
from gatherly.event import service as event_service
from gatherly.event.models import EXCLUDED_ORGANIZER
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.segment import service as seg
from tests import factories as f


def test_counts_reconciliation_and_segments_agree_on_every_edge(db: Session) -> None:
    owner = f.user(db, "owner", f.bu(db, "A"), "Marketing Administrator")
    people = {n: f.contact(db, owner, email=f"{n}@x.example", last_name=n) for n in "abcdefg"}
    ev = f.event(db, owner, "Launch")
    f.registration(db, ev, people["a"])
    f.attendance(db, ev, people["a"], seconds=600)  # registered, attended
    f.registration(db, ev, people["b"])
    f.attendance(db, ev, people["b"], seconds=0)  # a row with no time: a no-show
    f.registration(db, ev, people["c"], status="canceled")  # cancelled
    first = f.registration(db, ev, people["d"], status="canceled")
    first.external_id = "cancelled-first"
    f.registration(db, ev, people["d"])  # cancelled, then registered again
    f.registration(db, ev, people["e"], excluded_reason=EXCLUDED_ORGANIZER)
    f.attendance(db, ev, people["e"], seconds=900, excluded_reason=EXCLUDED_ORGANIZER)
    f.attendance(db, ev, people["f"], seconds=300)  # walked in without registering
    f.registration(db, ev, people["g"], status="canceled", excluded_reason=EXCLUDED_ORGANIZER)
    db.commit()
    principal = load_principal(db, owner.id)

    def members(participation_name: str) -> list[str]:
        tree = {"participation": participation_name, "event": {"id": ev.id}}
        page = seg.preview(db=db, principal=principal, criteria=tree, limit=100)
        return sorted(c.email for c in page.items if c.email)

    counts = participation.event_counts(db, event_id=ev.id)
    numbers = event_service.reconciliation(db=db, principal=principal, event_id=ev.id)
    assert (
        numbers.registrants
        == members("registered")
        == ["a@x.example", "b@x.example", "d@x.example"]
    )
    assert numbers.attendees == members("attended") == ["a@x.example", "f@x.example"]
    assert numbers.cancellations == members("cancelled") == ["c@x.example"]
    assert numbers.no_shows == members("not_attended") == ["b@x.example", "d@x.example"]
    assert counts == participation.Counts(registrants=3, cancellations=1, attendees=2)
    # The event page's tabs hold the same people, so its numbers add up to the same.
    people = event_service.event_people(db=db, principal=principal, event_id=ev.id)
    tabs = _tabs(people)
    shown = event_service.people_numbers(people)  # the event page's numbers
    assert (shown.registered, shown.attended, shown.walk_ins) == (3, 2, 1)
    assert shown.registered == shown.registered_attended + shown.no_shows
    assert (shown.rate, shown.cancelled, shown.not_counted) == (33, 1, 2)
    assert tabs["registered"] == numbers.registrants
    assert tabs["attended"] == numbers.attendees
    assert tabs["cancelled"] == numbers.cancellations
    assert tabs["no_show"] == numbers.no_shows
    assert tabs["walk_in"] == ["f@x.example"]
    assert tabs["not_counted"] == ["e@x.example", "g@x.example"]


def _tabs(people: list[event_service.Person]) -> dict[str, list[str]]:
    names = (*event_service.TABS, "walk_in")
    return {tab: sorted(p.email for p in people if tab in p.tabs) for tab in names}


def test_a_registration_the_viewer_may_not_read_never_changes_who_cancelled(db: Session) -> None:
    """X cancelled, then registered again. A viewer who may read only the cancelled
    registration (shared with them) sees a cancellation: the active registration they may not
    read is not looked at, in the reconciliation nor in a segment."""
    owner = f.user(db, "owner", f.bu(db, "A"), "Marketing Administrator")
    x = f.contact(db, owner, email="x@x.example", last_name="x")
    ev = f.event(db, owner, "Launch")
    first = f.registration(db, ev, x, status="canceled")
    first.external_id = "cancelled-first"
    f.registration(db, ev, x)
    grants = {
        "marketing_event": {"read": Level.ORGANIZATION},
        "contact": {"read": Level.ORGANIZATION},
        "event_registration": {"read": Level.USER},  # held, but none of these are theirs
        "segment": {"read": Level.USER, "create": Level.USER},
    }
    role = org.create_role(db=db, name="Event reader", privileges=grants)
    viewer = f.user(db, "vera", None, role.id)
    db.add(
        RecordShare(
            record_type="event_registration",
            record_id=first.id,
            principal_type="user",
            principal_id=viewer.id,
            rights=rights_mask({Privilege.READ}),
        )
    )
    db.commit()
    seen = load_principal(db, viewer.id)
    numbers = event_service.reconciliation(db=db, principal=seen, event_id=ev.id)
    assert (numbers.registrants, numbers.cancellations) == ([], ["x@x.example"])
    tabs = _tabs(event_service.event_people(db=db, principal=seen, event_id=ev.id))
    assert (tabs["registered"], tabs["cancelled"]) == ([], ["x@x.example"])
    tree = {"participation": "cancelled", "event": {"id": ev.id}}
    preview = seg.preview(db=db, principal=seen, criteria=tree, limit=10)
    assert [c.email for c in preview.items] == ["x@x.example"]
    # Whoever may read both registrations sees a registrant, as the event's counts do.
    full = event_service.reconciliation(
        db=db, principal=load_principal(db, owner.id), event_id=ev.id
    )
    assert (full.registrants, full.cancellations) == (["x@x.example"], [])
    tabs = _tabs(
        event_service.event_people(db=db, principal=load_principal(db, owner.id), event_id=ev.id)
    )
    assert (tabs["registered"], tabs["cancelled"]) == (["x@x.example"], [])
