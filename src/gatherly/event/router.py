"""REST routes for marketing events, their registrations, attendance and reconciliation, and
a contact's event timeline (SPEC T6, T7, T9, B10).

Every route reads through ``event.service``, so through the access engine: an event the
caller may not read answers 404 and is neither listed nor counted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from gatherly.api.deps import CurrentPrincipal, DbSession, QuickPrincipal
from gatherly.api.params import Paging, PathId
from gatherly.contact.schemas import CountOut, PageOut
from gatherly.event import schemas as s
from gatherly.event import service

router = APIRouter(tags=["events"])


async def filters(  # async: no I/O, so no trip to a worker thread
    q: Annotated[str | None, Query(max_length=200, description="Search event names")] = None,
    status: Literal["draft", "published", "canceled", "other"] | None = None,
    organizer: Annotated[str | None, Query(max_length=320, description="Name or email")] = None,
    start_from: Annotated[s.UtcDateTime | None, Query(description="Starts at or after")] = None,
    start_to: Annotated[s.UtcDateTime | None, Query(description="Starts before")] = None,
    source: Literal["teams", "manual"] | None = None,
) -> service.EventFilter:
    """The event list's filters from the query string."""
    return service.EventFilter(
        q=q,
        status=status,
        organizer=organizer,
        start_from=start_from,
        start_to=start_to,
        source=source,
    )


Filters = Annotated[service.EventFilter, Depends(filters)]


@router.get("/events", summary="List events you may read", response_model=PageOut[s.EventOut])
async def list_events(  # a quick read (api/deps.py): one page, on the event loop
    db: DbSession,
    principal: QuickPrincipal,
    paging: Paging,
    flt: Filters,
    sort: Annotated[
        str, Query(description="start_at, name, registrant_count, attendee_count, modified_at")
    ] = "-start_at",
) -> Any:
    page = service.list_events(
        db=db, principal=principal, flt=flt, sort=sort, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/events/count", summary="Count events you may read")
def count_events(db: DbSession, principal: CurrentPrincipal, flt: Filters) -> CountOut:
    return CountOut(count=service.count_events(db=db, principal=principal, flt=flt))


@router.get("/events/{event_id}", summary="One event: properties, counts and sessions")
async def get_event(
    event_id: PathId, db: DbSession, principal: QuickPrincipal
) -> s.EventDetailOut:  # a quick read (api/deps.py): one event and its sessions, on the loop
    event = service.get_event(db=db, principal=principal, event_id=event_id)
    sessions = service.sessions(db=db, principal=principal, event_id=event_id)
    return s.EventDetailOut.model_validate(
        {
            **s.EventOut.model_validate(event).model_dump(),
            "description": event.description,
            "join_url": event.join_url,
            "sessions": [s.SessionOut.model_validate(x) for x in sessions],
        }
    )


@router.get(
    "/events/{event_id}/registrations",
    summary="The event's registrations you may read, by email",
    response_model=PageOut[s.RegistrationOut],
)
def list_registrations(
    event_id: PathId,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    status: Annotated[str | None, Query(max_length=30)] = None,
) -> Any:
    page = service.registration_page(
        db=db,
        principal=principal,
        event_id=event_id,
        status=status,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/events/{event_id}/attendance",
    summary="Who attended, by person, with every interval",
    response_model=PageOut[s.AttendanceOut],
)
def list_attendance(
    event_id: PathId,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
) -> Any:
    page = service.attendance_page(
        db=db, principal=principal, event_id=event_id, cursor=paging.cursor, limit=paging.limit
    )
    items = [
        s.AttendanceOut.model_validate(
            {
                **{
                    k: getattr(a.attendance, k)
                    for k in s.AttendanceOut.model_fields
                    if k != "intervals"
                },
                "intervals": [s.IntervalOut.model_validate(i) for i in a.intervals],
            }
        )
        for a in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.get(
    "/events/{event_id}/recordings",
    summary="The event's recordings and transcripts with their cues",
)
def recordings(event_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.RecordingsOut:
    recs, transcripts = service.recordings(db=db, principal=principal, event_id=event_id)
    return s.RecordingsOut(
        recordings=[s.RecordingOut.model_validate(r) for r in recs],
        transcripts=[
            s.TranscriptOut.model_validate(
                {
                    **{k: getattr(t, k) for k in s.TranscriptOut.model_fields if k != "cues"},
                    "cues": [s.CueOut.model_validate(c) for c in cues],
                }
            )
            for t, cues in transcripts
        ],
    )


@router.get(
    "/events/{event_id}/reconciliation",
    summary="Every number on the event with the people behind it",
)
def reconciliation(
    event_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> s.ReconciliationOut:
    data = service.reconciliation(db=db, principal=principal, event_id=event_id)
    return s.ReconciliationOut.model_validate(data, from_attributes=True)


@router.get(
    "/contacts/{contact_id}/timeline",
    tags=["contacts"],
    summary="A contact's webinar participation, newest event first",
)
def timeline(
    contact_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> list[s.TimelineEntryOut]:
    entries = service.timeline(db=db, principal=principal, contact_id=contact_id)
    return [s.TimelineEntryOut.model_validate(e, from_attributes=True) for e in entries]
