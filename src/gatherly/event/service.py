"""Reading marketing events: lists, counts, reconciliation, recordings and transcripts, and the
contact timeline (SPEC T6, T7, T9, T11).

Every query goes through the access engine: events by ``marketing_event``, the people
on them by ``event_registration`` / ``event_attendance`` (owned by the event's owner, B10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, literal, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.core import csvout
from gatherly.core.csvout import CsvExport
from gatherly.core.db import UTCDateTime, icontains
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.core.pagination import MAX_LIMIT, Page, paginate
from gatherly.event import participation
from gatherly.event.models import (
    AttendanceInterval,
    EventAttendance,
    EventRecording,
    EventRegistration,
    EventSession,
    EventTranscript,
    MarketingEvent,
    RegistrationStatusChange,
    TranscriptCue,
)

EVENT = "marketing_event"
REGISTRATION = "event_registration"
ATTENDANCE = "event_attendance"
EVENT_STATUSES = ("draft", "published", "canceled", "other")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EventFilter:
    """Filters for the event list (the T6 properties)."""

    q: str | None = None
    status: str | None = None
    organizer: str | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None
    source: str | None = None


def _filtered(flt: EventFilter) -> Select[Any]:
    stmt = select(MarketingEvent)
    if flt.q:
        stmt = stmt.where(icontains(flt.q, MarketingEvent.name))
    if flt.status:
        if flt.status not in EVENT_STATUSES:
            raise ValidationFailed(
                f"status must be one of {', '.join(EVENT_STATUSES)}", field="status"
            )
        stmt = stmt.where(MarketingEvent.status == flt.status)
    if flt.organizer:
        organizer = (MarketingEvent.organizer_name, MarketingEvent.organizer_email)
        stmt = stmt.where(icontains(flt.organizer, *organizer))
    if flt.start_from:
        stmt = stmt.where(MarketingEvent.start_at >= flt.start_from)
    if flt.start_to:
        stmt = stmt.where(MarketingEvent.start_at < flt.start_to)
    if flt.source:
        stmt = stmt.where(MarketingEvent.source == flt.source)
    return stmt


SORTABLE = {
    # Events without a start date sort as if they started at the epoch (keys are never null).
    "start_at": func.coalesce(MarketingEvent.start_at, literal(_EPOCH, UTCDateTime)),
    "name": MarketingEvent.name,
    "registrant_count": MarketingEvent.registrant_count,
    "attendee_count": MarketingEvent.attendee_count,
    "modified_at": MarketingEvent.modified_at,
}


def list_events(
    *,
    db: Session,
    principal: access.Principal,
    flt: EventFilter = EventFilter(),
    sort: str = "-start_at",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the events the caller may read."""
    return paginate(
        db,
        access.scope(_filtered(flt), principal=principal, record_type=EVENT),
        id_column=MarketingEvent.id,
        sortable=SORTABLE,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )


def count_events(
    *, db: Session, principal: access.Principal, flt: EventFilter = EventFilter()
) -> int:
    """How many events match, among those the caller may read."""
    stmt = None if flt == EventFilter() else _filtered(flt)
    return int(access.count(db, stmt, principal=principal, record_type=EVENT))


def get_event(*, db: Session, principal: access.Principal, event_id: int) -> MarketingEvent:
    """One event the caller may read (NotFound otherwise)."""
    event = access.get(db, principal=principal, record_type=EVENT, record_id=event_id)
    if event is None:
        raise NotFound(f"marketing event {event_id} not found", field="event_id")
    return cast(MarketingEvent, event)


def sessions(*, db: Session, principal: access.Principal, event_id: int) -> list[EventSession]:
    """The sessions of an event the caller may read."""
    get_event(db=db, principal=principal, event_id=event_id)
    return list(
        db.scalars(
            select(EventSession)
            .where(EventSession.event_id == event_id)
            .order_by(EventSession.start_at, EventSession.id)
        )
    )


def registrations(
    *, db: Session, principal: access.Principal, event_id: int, status: str | None = None
) -> list[EventRegistration]:
    """Every registration of the event the caller may read, by email."""
    get_event(db=db, principal=principal, event_id=event_id)
    return _registration_rows(db, principal, event_id, status)


def registration_page(
    *,
    db: Session,
    principal: access.Principal,
    event_id: int,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the event's registrations the caller may read, by email then id."""
    get_event(db=db, principal=principal, event_id=event_id)
    return paginate(
        db,
        _registration_stmt(principal, event_id, status),
        id_column=EventRegistration.id,
        sortable={"email": func.coalesce(EventRegistration.email, "")},
        sort="email",
        cursor=cursor,
        limit=limit,
    )


@dataclass(frozen=True)
class Attended:
    """One attendance row with its join/leave intervals, earliest first."""

    attendance: EventAttendance
    intervals: list[AttendanceInterval]


def attendance_page(
    *,
    db: Session,
    principal: access.Principal,
    event_id: int,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the event's attendance rows the caller may read (by person), as
    :class:`Attended` items."""
    get_event(db=db, principal=principal, event_id=event_id)
    page = paginate(
        db,
        _attendance_stmt(principal, event_id),
        id_column=EventAttendance.id,
        sortable={"person": EventAttendance.person_key},
        sort="person",
        cursor=cursor,
        limit=limit,
    )
    return Page(_with_intervals(db, list(page.items), event_id), page.next_cursor)


def _attendance_stmt(principal: access.Principal, event_id: int) -> Select[Any]:
    return access.scope(
        select(EventAttendance).where(EventAttendance.event_id == event_id),
        principal=principal,
        record_type=ATTENDANCE,
    )


def _attendance_rows(
    db: Session, principal: access.Principal, event_id: int
) -> list[EventAttendance]:
    stmt = _attendance_stmt(principal, event_id)
    return list(db.scalars(stmt.order_by(EventAttendance.person_key)))


def _registration_stmt(
    principal: access.Principal, event_id: int, status: str | None = None
) -> Select[Any]:
    stmt = select(EventRegistration).where(EventRegistration.event_id == event_id)
    if status:
        stmt = stmt.where(EventRegistration.status == status)
    return access.scope(stmt, principal=principal, record_type=REGISTRATION)


def _registration_rows(
    db: Session, principal: access.Principal, event_id: int, status: str | None = None
) -> list[EventRegistration]:
    stmt = _registration_stmt(principal, event_id, status)
    return list(db.scalars(stmt.order_by(EventRegistration.email, EventRegistration.id)))


def attendance(*, db: Session, principal: access.Principal, event_id: int) -> list[Attended]:
    """Every attendance row of the event the caller may read, each with its intervals."""
    get_event(db=db, principal=principal, event_id=event_id)
    return _with_intervals(db, _attendance_rows(db, principal, event_id), event_id)


def seconds_attended(
    *,
    db: Session,
    principal: access.Principal,
    event_ids: Sequence[int],
    contact_ids: Sequence[int],
) -> dict[tuple[int, int], int]:
    """Seconds each contact attended each event, by ``(contact_id, event_id)``, from the
    counted attendance the caller may read (a column beside a segment's members)."""
    if not event_ids or not contact_ids:
        return {}
    stmt = (
        select(
            EventAttendance.contact_id,
            EventAttendance.event_id,
            func.sum(EventAttendance.total_seconds),
        )
        .where(
            EventAttendance.event_id.in_(sorted(set(event_ids))),
            EventAttendance.contact_id.in_(sorted(set(contact_ids))),
            participation.is_attended(),
            access.readable(principal, ATTENDANCE),
        )
        .group_by(EventAttendance.contact_id, EventAttendance.event_id)
    )
    return {(c, e): int(total) for c, e, total in db.execute(stmt) if c is not None}


def _with_intervals(db: Session, rows: list[EventAttendance], event_id: int) -> list[Attended]:
    intervals: dict[int, list[AttendanceInterval]] = {r.id: [] for r in rows}
    stmt = select(AttendanceInterval).order_by(AttendanceInterval.join_at, AttendanceInterval.id)
    if len(rows) <= MAX_LIMIT:  # a page: its rows' intervals by id
        stmt = stmt.where(AttendanceInterval.attendance_id.in_(list(intervals)))
    else:  # the whole event: one pass over its intervals, not an IN list of every row
        stmt = stmt.join(EventAttendance).where(EventAttendance.event_id == event_id)
    if rows:
        for interval in db.scalars(stmt):
            if interval.attendance_id in intervals:
                intervals[interval.attendance_id].append(interval)
    return [Attended(r, intervals[r.id]) for r in rows]


def recordings(
    *, db: Session, principal: access.Principal, event_id: int, search: str | None = None
) -> tuple[list[EventRecording], list[tuple[EventTranscript, list[TranscriptCue]]]]:
    """An event's recordings and transcripts (with cues), for those who may read it (T11);
    ``search`` keeps the cues whose text or speaker holds it (ignoring case)."""
    get_event(db=db, principal=principal, event_id=event_id)
    recs = list(
        db.scalars(
            select(EventRecording)
            .where(EventRecording.event_id == event_id)
            .order_by(EventRecording.recorded_at, EventRecording.id)
        )
    )
    transcripts = list(
        db.scalars(
            select(EventTranscript)
            .where(EventTranscript.event_id == event_id)
            .order_by(EventTranscript.recorded_at, EventTranscript.id)
        )
    )
    cues: dict[int, list[TranscriptCue]] = {t.id: [] for t in transcripts}
    if transcripts:
        found = select(TranscriptCue).where(TranscriptCue.transcript_id.in_(list(cues)))
        if search and search.strip():
            found = found.where(icontains(search, TranscriptCue.text, TranscriptCue.speaker))
        for cue in db.scalars(found.order_by(TranscriptCue.transcript_id, TranscriptCue.seq)):
            cues[cue.transcript_id].append(cue)
    return recs, [(t, cues[t.id]) for t in transcripts]


def recording(
    *, db: Session, principal: access.Principal, event_id: int, recording_id: int
) -> EventRecording:
    """One recording of an event the caller may read (NotFound otherwise)."""
    get_event(db=db, principal=principal, event_id=event_id)
    found = db.get(EventRecording, recording_id)
    if found is None or found.event_id != event_id:
        raise NotFound(f"recording {recording_id} not found on this event", field="recording_id")
    return found


@dataclass(frozen=True)
class Counts:
    """The event's numbers as stored (registrants, attendees, cancellations) and its no-shows."""

    registrants: int
    attendees: int
    cancellations: int
    no_shows: int


@dataclass(frozen=True)
class Reconciliation:
    """Every number on an event with the people behind it (those the caller may read), and
    who is kept but not counted, by reason."""

    event_id: int
    counts: Counts
    registrants: list[str]
    cancellations: list[str]
    attendees: list[str]
    no_shows: list[str]
    other_statuses: dict[str, list[str]]
    not_counted: dict[str, list[str]]


def reconciliation(*, db: Session, principal: access.Principal, event_id: int) -> Reconciliation:
    """Every number on the event with the people behind it, and who is kept but not counted.

    Registrants, cancellations and attendees as :mod:`gatherly.event.participation` defines
    them (the definitions the counts and the segment criteria use); no-shows = registrants
    who never attended. Lists name only people the caller may read.
    """
    event = get_event(db=db, principal=principal, event_id=event_id)
    # The event is looked up once; people are read without their intervals (not needed).
    regs = _registration_rows(db, principal, event_id)
    att = _attendance_rows(db, principal, event_id)

    def emails(counted: ColumnElement[bool]) -> list[str]:
        stmt = _registration_stmt(principal, event_id).where(
            counted, EventRegistration.email.is_not(None)
        )
        found = db.scalars(stmt.with_only_columns(EventRegistration.email).distinct())
        return sorted(e for e in found if e)

    registered = emails(participation.is_registered())
    readable = access.readable(principal, REGISTRATION)
    canceled = emails(participation.is_cancelled(readable=[readable]))
    attendees = sorted(
        db.scalars(
            _attendance_stmt(principal, event_id)
            .where(participation.is_attended())
            .with_only_columns(EventAttendance.person_key)
        )
    )
    other: dict[str, list[str]] = {}
    for r in regs:
        if r.status not in ("registered", "canceled") and not r.excluded_reason and r.email:
            other.setdefault(r.status, []).append(r.email)
    excluded: dict[str, list[str]] = {}
    for key, reason in [(r.email or r.external_id, r.excluded_reason) for r in regs] + [
        (a.email or a.display_name or a.person_key, a.excluded_reason) for a in att
    ]:
        if reason and key not in excluded.setdefault(reason, []):
            excluded[reason].append(key)
    no_shows = sorted(set(registered) - set(attendees))
    return Reconciliation(
        event_id=event.id,
        counts=Counts(
            registrants=event.registrant_count,
            attendees=event.attendee_count,
            cancellations=event.cancellation_count,
            no_shows=len(no_shows),
        ),
        registrants=registered,
        cancellations=canceled,
        attendees=attendees,
        no_shows=no_shows,
        other_statuses={k: sorted(v) for k, v in sorted(other.items())},
        not_counted={k: sorted(v) for k, v in sorted(excluded.items())},
    )


# The tabs of an event's people, in the order a page shows them.
TABS = ("registered", "attended", "no_show", "cancelled", "not_counted")
PEOPLE_SORTS = ("name", "-minutes", "first_join", "registered_at")


@dataclass(frozen=True)
class Person:
    """One person on an event: their registration and attendance as far as the caller may
    read them, and the tabs they belong to (``TABS``; an attendee who never registered is
    also a ``walk_in``, and one without an email, a town hall's, ``anonymous``)."""

    name: str
    email: str
    contact_id: int | None
    status: str  # the registration's status, or "not registered"
    registered_at: datetime | None
    not_counted: str | None  # why the event keeps but does not count them
    first_join: datetime | None
    last_leave: datetime | None
    seconds: int | None
    intervals: int | None
    tabs: frozenset[str]


def _tabs(reg: EventRegistration | None, att: EventAttendance | None, active: set[str]) -> set[str]:
    """The tabs of one person, by the definitions of :mod:`gatherly.event.participation`."""
    reason = (reg.excluded_reason if reg else None) or (att.excluded_reason if att else None)
    if reason:
        return {"not_counted"}
    attended = att is not None and participation.attended_row(att.total_seconds, None)
    tabs = {"attended"} if attended else set()
    if attended and att is not None and not att.email:
        tabs.add("anonymous")  # a town hall's attendee without an email: counted, no contact
    if reg is not None and reg.status == participation.REGISTERED:
        return tabs | {"registered"} | (set() if attended else {"no_show"})
    if (
        reg is not None
        and reg.status == participation.CANCELED
        and (reg.email or "").casefold() not in active
    ):
        tabs.add("cancelled")
    return tabs | ({"walk_in"} if attended else set())


def event_people(
    *, db: Session, principal: access.Principal, event_id: int, sort: str = "name"
) -> list[Person]:
    """Everyone on the event the caller may read: each registration with its attendance
    (matched by registration, else by email), then attendees who never registered."""
    if sort not in PEOPLE_SORTS:
        raise ValidationFailed(f"sort by one of {', '.join(PEOPLE_SORTS)}", field="sort")
    get_event(db=db, principal=principal, event_id=event_id)
    regs = _registration_rows(db, principal, event_id)
    attendance = _attendance_rows(db, principal, event_id)
    # How many joins and leaves each row has: counted, not loaded (the page's charts load
    # the intervals themselves).
    counted = db.execute(
        select(AttendanceInterval.attendance_id, func.count())
        .join(EventAttendance)
        .where(EventAttendance.event_id == event_id)
        .group_by(AttendanceInterval.attendance_id)
    )
    intervals = {attendance_id: int(n) for attendance_id, n in counted}
    active = {
        (r.email or "").casefold()
        for r in regs
        if r.status == participation.REGISTERED and not r.excluded_reason
    }
    by_registration = {a.registration_id: a for a in attendance if a.registration_id}
    by_email = {a.email.casefold(): a for a in attendance if a.email}
    # Active registrations first, so a re-registration takes the attendance, not the cancel.
    regs.sort(key=lambda r: (r.status != participation.REGISTERED, r.id))
    people, used = [], set()
    for reg in regs:
        att = by_registration.get(reg.id) or by_email.get((reg.email or "").casefold())
        if att is not None and att.id in used:
            att = None  # one attendance row is shown once
        if att is not None:
            used.add(att.id)
        name = f"{reg.first_name} {reg.last_name}".strip()
        people.append(_person(name, reg.email or "", reg, att, intervals, active))
    people += [
        _person(a.display_name, a.email or "", None, a, intervals, active)
        for a in attendance
        if a.id not in used
    ]
    return sorted(people, key=_PEOPLE_KEYS[sort])


def _person(
    name: str,
    email: str,
    reg: EventRegistration | None,
    record: EventAttendance | None,
    intervals: dict[int, int],
    active: set[str],
) -> Person:
    return Person(
        name=name,
        email=email,
        contact_id=(reg.contact_id if reg else None) or (record.contact_id if record else None),
        status=reg.status if reg else "not registered",
        registered_at=reg.registered_at if reg else None,
        not_counted=(reg.excluded_reason if reg else None)
        or (record.excluded_reason if record else None),
        first_join=record.first_join_at if record else None,
        last_leave=record.last_leave_at if record else None,
        seconds=record.total_seconds if record else None,
        intervals=intervals.get(record.id, 0) if record else None,
        tabs=frozenset(_tabs(reg, record, active)),
    )


_NEVER = datetime.max.replace(tzinfo=UTC)
_PEOPLE_KEYS: dict[str, Callable[[Person], Any]] = {
    "name": lambda p: (p.name.casefold() or p.email.casefold(), p.email),
    "-minutes": lambda p: (-(p.seconds or 0), p.name.casefold()),
    "first_join": lambda p: (p.first_join or _NEVER, p.name.casefold()),
    "registered_at": lambda p: (p.registered_at or _NEVER, p.name.casefold()),
}


@dataclass(frozen=True)
class Numbers:
    """An event's numbers as its tabs hold them, so each adds up and a page can link each to
    its tab."""

    registered: int
    attended: int
    walk_ins: int
    no_shows: int
    cancelled: int
    not_counted: int
    anonymous: int = 0  # attendees without an email (town halls), among ``attended``

    @property
    def registered_attended(self) -> int:
        return self.attended - self.walk_ins

    @property
    def rate(self) -> int | None:
        """Of the people registered, the share who attended (walk-ins are not in it)."""
        if not self.registered:
            return None
        return round(100 * self.registered_attended / self.registered)


def people_numbers(people: Sequence[Person]) -> Numbers:
    def n(tab: str) -> int:
        return sum(1 for p in people if tab in p.tabs)

    return Numbers(
        n("registered"),
        n("attended"),
        n("walk_in"),
        n("no_show"),
        n("cancelled"),
        n("not_counted"),
        n("anonymous"),
    )


PEOPLE_COLUMNS = (
    "name",
    "email",
    "status",
    "registered_at",
    "first_join",
    "last_leave",
    "minutes",
    "not_counted",
)


def export_people(
    *, db: Session, principal: access.Principal, event_id: int, tab: str | None = None
) -> CsvExport:
    """An event's people the caller may read (one tab, or all), as CSV through the one
    writer; read now, so a refusal comes before the download starts."""
    if tab is not None and tab not in (*TABS, "walk_in"):
        raise ValidationFailed(f"tab is one of {', '.join(TABS)}", field="tab")
    people = [
        p
        for p in event_people(db=db, principal=principal, event_id=event_id)
        if tab is None or tab in p.tabs
    ]
    rows = (
        [
            p.name,
            p.email,
            p.status,
            p.registered_at,
            p.first_join,
            p.last_leave,
            round((p.seconds or 0) / 60) if p.seconds is not None else None,
            p.not_counted,
        ]
        for p in people
    )
    name = f"event-{event_id}-{tab or 'people'}.csv".replace("_", "-")
    return CsvExport(name, csvout.stream(PEOPLE_COLUMNS, rows))


@dataclass(frozen=True)
class StatusChange:
    """One step of a registration's status history."""

    status: str
    at: datetime


@dataclass(frozen=True)
class TimelineInterval:
    """One join and leave of a session."""

    session_id: int
    join_at: datetime
    leave_at: datetime
    duration_seconds: int


@dataclass(frozen=True)
class TimelineEntry:
    """A contact's participation in one event."""

    event_id: int
    event_name: str
    event_start_at: datetime | None
    event_end_at: datetime | None
    registration_status: str | None
    registered_at: datetime | None
    canceled_at: datetime | None
    status_history: list[StatusChange]
    attended: bool
    first_join_at: datetime | None
    last_leave_at: datetime | None
    total_seconds: int
    intervals: list[TimelineInterval]


def timeline(*, db: Session, principal: access.Principal, contact_id: int) -> list[TimelineEntry]:
    """A contact's webinar participation, newest event first (T9).

    Each entry: the event and its date, the registration status with its history, when the
    contact first joined and last left, total seconds attended (the sum of every interval),
    and the intervals themselves.
    """
    if access.get(db, principal=principal, record_type="contact", record_id=contact_id) is None:
        raise NotFound(f"contact {contact_id} not found", field="contact_id")
    events_stmt = access.scope(select(MarketingEvent.id), principal=principal, record_type=EVENT)
    regs = db.scalars(
        access.scope(
            select(EventRegistration).where(
                EventRegistration.contact_id == contact_id,
                EventRegistration.event_id.in_(events_stmt),
            ),
            principal=principal,
            record_type=REGISTRATION,
        )
    ).all()
    atts = db.scalars(
        access.scope(
            select(EventAttendance).where(
                EventAttendance.contact_id == contact_id,
                EventAttendance.event_id.in_(events_stmt),
            ),
            principal=principal,
            record_type=ATTENDANCE,
        )
    ).all()
    event_ids = {r.event_id for r in regs} | {a.event_id for a in atts}
    if not event_ids:
        return []
    events = {
        e.id: e for e in db.scalars(select(MarketingEvent).where(MarketingEvent.id.in_(event_ids)))
    }
    history: dict[int, list[RegistrationStatusChange]] = {}
    for change in db.scalars(
        select(RegistrationStatusChange)
        .where(RegistrationStatusChange.registration_id.in_([r.id for r in regs]))
        .order_by(RegistrationStatusChange.changed_at, RegistrationStatusChange.id)
    ):
        history.setdefault(change.registration_id, []).append(change)
    intervals: dict[int, list[AttendanceInterval]] = {}
    for interval in db.scalars(
        select(AttendanceInterval)
        .where(AttendanceInterval.attendance_id.in_([a.id for a in atts]))
        .order_by(AttendanceInterval.join_at)
    ):
        intervals.setdefault(interval.attendance_id, []).append(interval)
    entries: list[TimelineEntry] = []
    for event_id in event_ids:
        event = events[event_id]
        reg = next((r for r in regs if r.event_id == event_id), None)
        att = next((a for a in atts if a.event_id == event_id), None)
        entries.append(
            TimelineEntry(
                event_id=event.id,
                event_name=event.name,
                event_start_at=event.start_at,
                event_end_at=event.end_at,
                registration_status=reg.status if reg else None,
                registered_at=reg.registered_at if reg else None,
                canceled_at=reg.canceled_at if reg else None,
                status_history=[
                    StatusChange(h.status, h.changed_at) for h in history.get(reg.id, [])
                ]
                if reg
                else [],
                attended=bool(att and att.total_seconds > 0),
                first_join_at=att.first_join_at if att else None,
                last_leave_at=att.last_leave_at if att else None,
                total_seconds=att.total_seconds if att else 0,
                intervals=[
                    TimelineInterval(i.session_id, i.join_at, i.leave_at, i.duration_seconds)
                    for i in intervals.get(att.id, [])
                ]
                if att
                else [],
            )
        )
    entries.sort(key=lambda e: e.event_start_at or _EPOCH, reverse=True)
    return entries
