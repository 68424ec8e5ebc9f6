"""REST routes for journeys (SPEC B6, B7, M)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.contact.schemas import PageOut
from gatherly.core.ids import MAX_ID
from gatherly.journey import explain, service
from gatherly.journey import schemas as s

router = APIRouter(prefix="/journeys", tags=["journeys"])


@router.get("", summary="Journeys you may read", response_model=PageOut[s.JourneyOut])
def list_journeys(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
    state: Annotated[str | None, Query(pattern="^(draft|live|paused|stopped|completed)$")] = None,
) -> Any:
    page = service.list_journeys(
        db=db, principal=principal, q=q, state=state, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("", status_code=201, summary="Create a draft journey", response_model=s.JourneyOut)
def create_journey(body: s.JourneyIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    data = body.model_dump(exclude={"owner"}, exclude_none=True)
    return service.create_journey(db=db, principal=principal, owner=body.owner, **data)


@router.get("/{journey_id}", summary="Read a journey", response_model=s.JourneyOut)
def read_journey(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_journey(db=db, principal=principal, journey_id=journey_id)


@router.patch(
    "/{journey_id}",
    summary="Change a journey (a live one: only its end time, description and exclusions)",
    response_model=s.JourneyOut,
)
def update_journey(
    journey_id: PathId, body: s.JourneyFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    changes = body.model_dump(include=body.model_fields_set)
    return service.update_journey(
        db=db, principal=principal, journey_id=journey_id, changes=changes
    )


@router.delete("/{journey_id}", status_code=204, summary="Delete a draft or stopped journey")
def delete_journey(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_journey(db=db, principal=principal, journey_id=journey_id)
    return no_content()


@router.post(
    "/{journey_id}/copy", status_code=201, summary="Copy it as a draft", response_model=s.JourneyOut
)
def copy_journey(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.copy_journey(db=db, principal=principal, journey_id=journey_id)


@router.get(
    "/{journey_id}/check",
    summary="What stands between the journey and going live",
    response_model=s.JourneyCheckOut,
)
def check_journey(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    problems = service.check(db=db, principal=principal, journey_id=journey_id)
    return s.JourneyCheckOut(
        ready=not problems, problems=[s.ProblemOut(field=f, message=m) for f, m in problems]
    )


@router.post(
    "/{journey_id}/live",
    summary="Check the journey and take it live (its scope is fixed now)",
    response_model=s.JourneyOut,
)
def go_live(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.go_live(db=db, principal=principal, journey_id=journey_id)


@router.put(
    "/{journey_id}/state",
    summary="Pause, resume (live) or stop a journey",
    response_model=s.JourneyOut,
)
def set_state(
    journey_id: PathId, body: s.StateIn, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.set_state(db=db, principal=principal, journey_id=journey_id, state=body.state)


@router.get(
    "/{journey_id}/progress",
    summary="Members by state and what each step did",
    response_model=s.ProgressOut,
)
def journey_progress(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    found = service.progress(db=db, principal=principal, journey_id=journey_id)
    return s.ProgressOut.of(found)


@router.get(
    "/{journey_id}/explain",
    summary="Where a contact is in the journey and how it got there, or why it is not in it",
    response_model=s.ExplanationOut,
)
def explain_contact(
    journey_id: PathId,
    contact_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    db: DbSession,
    principal: CurrentPrincipal,
) -> Any:
    return explain.explain(db=db, principal=principal, journey_id=journey_id, contact_id=contact_id)


@router.post(
    "/{journey_id}/simulate",
    summary="Walk today's audience through the journey, sending and writing nothing",
    response_model=s.SimulationOut,
)
def simulate(journey_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return explain.simulate(db=db, principal=principal, journey_id=journey_id)


@router.get(
    "/{journey_id}/people",
    summary="Who took a step (and branch), or who is in a state; anonymous where you may not read",
    response_model=PageOut[s.JourneyPersonOut],
)
def journey_people(
    journey_id: PathId,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    step: Annotated[str | None, Query(max_length=40, description="A step of the journey")] = None,
    outcome: Annotated[
        str | None, Query(max_length=40, description="With step: yes, no, queued, suppressed …")
    ] = None,
    status: Annotated[
        str | None,
        Query(max_length=20, description="Without step: active, done, exited, out_of_scope"),
    ] = None,
) -> Any:
    page = service.people(
        db=db,
        principal=principal,
        journey_id=journey_id,
        step=step,
        outcome=outcome,
        status=status,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    items = [
        s.JourneyPersonOut(
            anonymous=p.contact is None,
            contact_id=p.contact.id if p.contact else None,
            name=f"{p.contact.first_name} {p.contact.last_name}".strip()
            if p.contact
            else "Anonymous contact",
            email=p.contact.email if p.contact else None,
            status=p.status,
            step=p.step,
            outcome=p.outcome,
            at=p.at,
        )
        for p in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}
