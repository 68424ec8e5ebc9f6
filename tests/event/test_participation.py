"""One meaning of "registered", "attended" and "cancelled": the event's counts, its
reconciliation and the segment criteria all name the same people."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gatherly.event import participation
from gatherly.event import service as event_service
from gatherly.event.models import EXCLUDED_ORGANIZER
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
