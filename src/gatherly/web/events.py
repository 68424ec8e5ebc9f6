"""Web pages: marketing events (SPEC T6, T7, T9).

``/events`` lists the events the viewer may read, filtered, counted and paged by the event
service; ``/events/{id}`` shows one event: its T6 properties, the registered → attended
funnel, people present per minute in each session and the people on it. Everything is
read through ``event.service`` with the viewer's principal, so an event the viewer may not
read is a 404 like an unknown one, and people they may not read are neither shown nor
counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gatherly.api.params import PathId
from gatherly.core.exceptions import ValidationFailed
from gatherly.event import service
from gatherly.event.models import (
    EventRegistration,
    EventSession,
)
from gatherly.event.presence import MINUTE, Minute, per_minute
from gatherly.event.service import Attended
from gatherly.web.pages import CurrentViewer, WebDb, page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_CHART_MINUTES = 24 * 60  # a session chart shows at most its first day
FILTER_LIMITS = {"q": 200, "organizer": 320}


def _zone(name: str) -> tuple[ZoneInfo, str]:
    """The event's time zone and its label; an unusable zone name shows times in UTC."""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC"), "UTC"


def local(at: datetime | None, zone_name: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time shown in the event's time zone (without the zone's name)."""
    if at is None:
        return "—"
    return at.astimezone(_zone(zone_name)[0]).strftime(fmt)


def duration(seconds: int) -> str:
    """Seconds as h:mm (minutes rounded down)."""
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"


# --- the list --------------------------------------------------------------------------


def _day(raw: str, field: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


def _filters(form: dict[str, str]) -> tuple[service.EventFilter, dict[str, str]]:
    """The list's filters from the form, with a message per field that cannot be used."""
    errors = {
        name: f"Use at most {limit} characters."
        for name, limit in FILTER_LIMITS.items()
        if len(form[name]) > limit
    }
    first = _day(form["start_from"], "start_from", errors)
    last = _day(form["start_to"], "start_to", errors)
    if first and last and first > last:
        errors["start_to"] = "The last day is before the first day."
    start_to = None
    if last is not None:
        try:
            start_to = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
        except OverflowError:
            errors["start_to"] = "Enter a date before 9999-12-31."
    flt = service.EventFilter(
        q=form["q"].strip() or None,
        status=form["status"] or None,
        organizer=form["organizer"].strip() or None,
        start_from=datetime.combine(first, datetime.min.time(), UTC) if first else None,
        start_to=start_to,
    )
    return flt, errors


@router.get("/events", response_class=HTMLResponse)
def event_list(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    status: str = "",
    organizer: str = "",
    start_from: str = "",
    start_to: str = "",
    cursor: str = "",
) -> Response:
    form = {
        "q": q,
        "status": status,
        "organizer": organizer,
        "start_from": start_from,
        "start_to": start_to,
    }
    flt, errors = _filters(form)
    total: int | None = None
    events: list[Any] = []
    next_url = None
    if not errors:
        try:
            total = service.count_events(db=db, principal=viewer.principal, flt=flt)
            found = service.list_events(
                db=db, principal=viewer.principal, flt=flt, cursor=cursor or None, limit=PAGE_SIZE
            )
        except ValidationFailed as exc:
            errors[exc.field if exc.field in form else "page"] = exc.message
            total = None
        else:
            events = list(found.items)
            if found.next_cursor:
                query = request.url.include_query_params(cursor=found.next_cursor).query
                next_url = f"/events?{query}"
    return page(
        request,
        "events/list.html",
        viewer,
        status_code=422 if errors else 200,
        form=form,
        errors=errors,
        statuses=service.EVENT_STATUSES,
        total=total,
        events=events,
        next_url=next_url,
        first_url=f"/events?{request.url.remove_query_params('cursor').query}" if cursor else None,
        local=local,
        zone_label=lambda name: _zone(name)[1],
    )


# --- one event ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRow:
    """One person on the event: their registration and attendance, as far as readable."""

    name: str
    email: str
    status: str
    not_counted: str | None
    first_join: datetime | None
    last_leave: datetime | None
    seconds: int | None
    intervals: int | None


@dataclass(frozen=True)
class SessionPresence:
    """One session's per-minute presence chart."""

    session: EventSession
    minutes: list[Minute]
    peak: int
    peak_at: datetime | None
    ticks: list[tuple[float, datetime]]
    clipped: bool


def _row(name: str, email: str, status: str, reason: str | None, att: Attended | None) -> PersonRow:
    if att is None:
        return PersonRow(name, email, status, reason, None, None, None, None)
    record, intervals = att.attendance, att.intervals
    return PersonRow(
        name,
        email,
        status,
        reason or record.excluded_reason,
        record.first_join_at,
        record.last_leave_at,
        record.total_seconds,
        len(intervals),
    )


def _people(registrations: list[EventRegistration], attendance: list[Attended]) -> list[PersonRow]:
    """Registrations joined to attendance (by registration, else by email), then walk-ins."""
    by_registration = {
        a.attendance.registration_id: a for a in attendance if a.attendance.registration_id
    }
    by_email = {a.attendance.email.casefold(): a for a in attendance if a.attendance.email}
    rows, used = [], set()
    for reg in registrations:
        att = by_registration.get(reg.id) or by_email.get((reg.email or "").casefold())
        if att is not None and att.attendance.id in used:
            att = None  # one attendance row is shown once
        if att is not None:
            used.add(att.attendance.id)
        name = f"{reg.first_name} {reg.last_name}".strip()
        rows.append(_row(name, reg.email or "", reg.status, reg.excluded_reason, att))
    rows += [
        _row(a.attendance.display_name, a.attendance.email or "", "not registered", None, a)
        for a in attendance
        if a.attendance.id not in used
    ]
    return sorted(rows, key=lambda r: (r.name.casefold() or r.email.casefold(), r.email))


def _presence(session: EventSession, attendance: list[Attended]) -> SessionPresence:
    """People present per minute over the session's time and everyone's intervals in it."""
    spans = [
        (a.attendance.id, i.join_at, i.leave_at)
        for a in attendance
        for i in a.intervals
        if i.session_id == session.id
    ]
    times = [t for t in (session.start_at, session.end_at) if t is not None]
    times += [t for _p, join, leave in spans for t in (join, leave)]
    if not times:
        return SessionPresence(session, [], 0, None, [], False)
    start, end = min(times), max(times)
    clipped = end - start > MAX_CHART_MINUTES * MINUTE
    if clipped:
        end = start + MAX_CHART_MINUTES * MINUTE
    minutes = per_minute(spans, start, end)
    top = max(minutes, key=lambda m: m.present, default=None)
    peak = top.present if top else 0
    size = len(minutes)
    ticks = (
        [
            (100 * i / size, minutes[0].start + i * MINUTE)
            for i in sorted({round(size * k / 4) for k in range(5)})
        ]
        if size
        else []
    )
    peak_at = top.start if top is not None and peak else None
    return SessionPresence(session, minutes, peak, peak_at, ticks, clipped)


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_detail(request: Request, event_id: PathId, db: WebDb, viewer: CurrentViewer) -> Response:
    principal = viewer.principal
    event = service.get_event(db=db, principal=principal, event_id=event_id)
    sessions = service.sessions(db=db, principal=principal, event_id=event.id)
    registrations = service.registrations(db=db, principal=principal, event_id=event.id)
    attendance = service.attendance(db=db, principal=principal, event_id=event.id)
    numbers = service.reconciliation(db=db, principal=principal, event_id=event.id)
    registered, attended = len(numbers.registrants), len(numbers.attendees)
    return page(
        request,
        "events/detail.html",
        viewer,
        event=event,
        zone=_zone(event.time_zone)[1],
        registered=registered,
        attended=attended,
        canceled=len(numbers.cancellations),
        no_shows=len(numbers.no_shows),
        rate=round(100 * attended / registered) if registered else None,
        charts=[_presence(s, attendance) for s in sessions],
        people=_people(registrations, attendance),
        local=local,
        duration=duration,
        minute=MINUTE,
    )
