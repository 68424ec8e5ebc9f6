"""What "registered", "attended" and "cancelled" mean, once for the whole product (SPEC T7).

The event's counts (written by the Teams sync), its reconciliation, the contact timeline and
the segment criteria all build on these predicates, so a person a segment calls an attendee
is one the event counts as one:

- **registered**: a counted registration (not excluded) whose status is ``registered``;
- **cancelled**: a counted registration whose status is ``canceled`` while the same person
  (email) holds no counted active registration for the event (someone who cancelled and
  registered again is a registrant, not a cancellation);
- **attended**: a counted attendance row with time in a session (``total_seconds > 0``); a
  row Teams reports with no time is kept but is not attendance.

Excluded rows (organizers, presenters, internal people …) are kept on the event and never
counted; see ``docs/teams.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, inspect, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.util import ClauseAdapter

from gatherly.event.models import EventAttendance, EventRegistration

REGISTERED = "registered"
CANCELED = "canceled"  # Graph's spelling, as stored


def is_registered(r: Any = EventRegistration) -> ColumnElement[bool]:
    """A registration (row or alias ``r``) that counts as registered."""
    return and_(r.excluded_reason.is_(None), r.status == REGISTERED)


def is_cancelled(
    r: Any = EventRegistration, *, readable: Sequence[ColumnElement[bool]] = ()
) -> ColumnElement[bool]:
    """A registration that counts as cancelled: no active one of the same person remains.

    ``readable`` are the access predicates (written on ``event_registration``) of the
    caller's view; the active registration looked for must pass them too, so a registration
    the caller may not read never changes what they see. The event's stored counts pass none.
    """
    active = aliased(EventRegistration)
    on_active = ClauseAdapter(inspect(active).selectable).traverse
    still_registered = (
        select(active.id)
        .where(
            active.event_id == r.event_id,
            active.email == r.email,
            is_registered(active),
            *(on_active(condition) for condition in readable),
        )
        .exists()
    )
    return and_(r.excluded_reason.is_(None), r.status == CANCELED, ~still_registered)


def is_attended(a: Any = EventAttendance) -> ColumnElement[bool]:
    """An attendance row that counts as attendance."""
    return and_(a.excluded_reason.is_(None), a.total_seconds > 0)


def attended_row(total_seconds: int, excluded_reason: str | None) -> bool:
    """:func:`is_attended` for a row already loaded (the timeline, the event page)."""
    return excluded_reason is None and total_seconds > 0


@dataclass(frozen=True)
class Counts:
    """An event's numbers: distinct registrant and cancelled emails, attendees."""

    registrants: int
    cancellations: int
    attendees: int


def event_counts(db: Session, *, event_id: int) -> Counts:
    """The event's counts over every row (the stored totals; not scoped to a viewer)."""
    r, a = EventRegistration, EventAttendance
    registrants = db.scalar(
        select(func.count(func.distinct(r.email))).where(r.event_id == event_id, is_registered())
    )
    cancellations = db.scalar(
        select(func.count(func.distinct(r.email))).where(r.event_id == event_id, is_cancelled())
    )
    attendees = db.scalar(select(func.count()).where(a.event_id == event_id, is_attended()))
    return Counts(int(registrants or 0), int(cancellations or 0), int(attendees or 0))
