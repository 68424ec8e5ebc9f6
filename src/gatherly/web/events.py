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
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from gatherly.api.params import PathId
from gatherly.api.responses import csv_download, media_stream
from gatherly.contact import service as contact_service
from gatherly.core.exceptions import ValidationFailed
from gatherly.event import service
from gatherly.event.models import EventSession
from gatherly.event.presence import MINUTE, Minute, per_minute
from gatherly.event.service import Attended
from gatherly.teams import service as teams_service
from gatherly.web import bulk
from gatherly.web.pages import CurrentViewer, WebDb, page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_CHART_MINUTES = 24 * 60  # a session chart shows at most its first day
FILTER_LIMITS = {"q": 200, "organizer": 320}


def duration(seconds: int) -> str:
    """Seconds as h:mm (minutes rounded down)."""
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"


# --- the list --------------------------------------------------------------------------


def clock(ms: int) -> str:
    """A time into a recording: ``1:02:03`` or ``2:03``."""
    hours, rest = divmod(max(ms, 0) // 1000, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


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
    )


# --- one event ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPresence:
    """One session's per-minute presence chart."""

    session: EventSession
    minutes: list[Minute]
    peak: int
    peak_at: datetime | None
    ticks: list[tuple[float, datetime]]
    clipped: bool


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


TAB_LABELS = {
    "registered": "Registered",
    "attended": "Attended",
    "no_show": "No-show",
    "cancelled": "Cancelled",
    "not_counted": "Not counted",
}
SORT_LABELS = {
    "name": "Name",
    "-minutes": "Minutes attended, most first",
    "first_join": "First join",
    "registered_at": "Registration date",
}
PEOPLE_PAGE = 100
TabName = Literal["all", "registered", "attended", "no_show", "cancelled", "not_counted"]


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_detail(
    request: Request,
    event_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    tab: TabName = "all",
    sort: Annotated[str, Query(max_length=20)] = "name",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    said: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    principal = viewer.principal
    event = service.get_event(db=db, principal=principal, event_id=event_id)
    recordings, transcripts = service.recordings(
        db=db, principal=principal, event_id=event.id, search=said
    )
    sessions = service.sessions(db=db, principal=principal, event_id=event.id)
    attendance = service.attendance(db=db, principal=principal, event_id=event.id)
    people = service.event_people(db=db, principal=principal, event_id=event.id, sort=sort)
    shown = [p for p in people if tab == "all" or tab in p.tabs]
    start = (page_number - 1) * PEOPLE_PAGE
    on_page = shown[start : start + PEOPLE_PAGE]
    # The contacts behind the tab's people the viewer may read: linked, and the bulk bar's.
    readable = contact_service.readable_ids(
        db=db, principal=principal, kind=contact_service.CONTACT, ids=[p.contact_id for p in shown]
    )
    linked = {p.contact_id for p in on_page if p.contact_id in readable}
    return page(
        request,
        "events/detail.html",
        viewer,
        event=event,
        numbers=service.people_numbers(people),
        sync=teams_service.event_sync_state(db=db, principal=principal, event=event),
        charts=[_presence(s, attendance) for s in sessions],
        session_names={s.id: s.subject or "Session" for s in sessions},
        recordings=recordings,
        transcripts=transcripts,
        said=said.strip(),
        clock=clock,
        people=on_page,
        people_total=len(shown),
        people_page=page_number,
        people_pages=max(1, -(-len(shown) // PEOPLE_PAGE)),
        linked=linked,
        bulk_total=len(readable),
        bulk_hidden={"source": "event", "event_id": event.id, "tab": tab},
        **bulk.bulk_context(db, viewer),
        tab=tab,
        sort=sort,
        tab_labels=TAB_LABELS,
        sort_labels=SORT_LABELS,
        duration=duration,
        minute=MINUTE,
    )


@router.get("/events/{event_id}/recordings/{recording_id}")
def play_recording(
    event_id: PathId, recording_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """A recording's video, streamed from Teams for the browser to play."""
    content = teams_service.recording_content(
        db=db,
        principal=viewer.principal,
        settings=request.app.state.settings,
        event_id=event_id,
        recording_id=recording_id,
        make_client=getattr(request.app.state, "graph_client_factory", None),
    )
    return media_stream(content.chunks, content.media_type, content.length)


@router.get("/events/{event_id}/people.csv")
def export_people(
    event_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    tab: TabName = "all",
) -> StreamingResponse:
    """The people of one tab (or all) the viewer may read, as CSV."""
    return csv_download(
        service.export_people(
            db=db, principal=viewer.principal, event_id=event_id, tab=None if tab == "all" else tab
        )
    )
