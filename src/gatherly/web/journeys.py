"""Web pages for journeys: the list, a new journey, and a journey's page — its definition
(YAML) with the check, going live, pausing and stopping, what each step did, explain for
one contact, and a simulation on today's audience (SPEC B6, M).

Every page reads and changes through ``journey.service`` and ``journey.explain`` with the
viewer's principal, as the API and the CLI do.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from gatherly.api.params import PathId
from gatherly.core.exceptions import Conflict, Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.journey import definition as jd
from gatherly.journey import explain, service
from gatherly.journey.models import Journey
from gatherly.segment import service as segment_service
from gatherly.web.email import preview_contact
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    may,
    page,
)

router = APIRouter(include_in_schema=False)
STATES = {
    "draft": "Draft",
    "live": "Live",
    "paused": "Paused",
    "stopped": "Stopped",
    "completed": "Completed",
}
STARTER = """# Who enters: segments and lists (or a trigger: {attended: <event id>})
audience:
  lists: []
start: invite
steps:
  invite: {type: send_email, message_id: 0, next: pause}
  pause: {type: wait, duration: P2D, next: opened?}
  opened?: {type: condition, test: {opened: invite}, yes: lead, no: reminder}
  lead: {type: create_lead, topic: Follow-up}
  reminder: {type: send_email, message_id: 0}
"""


@router.get("/journeys")
def journeys_page(request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = "") -> Response:
    """The journeys the viewer may read, newest first."""
    error = None
    items: list[Any] = []
    next_cursor = None
    try:
        found = service.list_journeys(db=db, principal=viewer.principal, cursor=cursor or None)
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    return page(
        request,
        "journeys/list.html",
        viewer,
        status_code=422 if error else 200,
        items=items,
        next_cursor=next_cursor,
        error=error,
        states=STATES,
    )


def _new_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "journeys/new.html",
        viewer,
        status_code=status_code,
        values=values,
        errors=errors or {},
        may_choose_organization=segment_service.may_choose_organization(
            viewer.principal, service.JOURNEY
        ),
    )


@router.get("/journeys/new")
def new_journey(request: Request, viewer: CurrentViewer) -> Response:
    return _new_page(request, viewer, {"name": "", "scope": "business_unit", "definition": STARTER})


@router.post("/journeys/new")
def create_journey(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    values = {k: form_text(form, k) for k in ("name", "scope", "definition")}
    try:
        if not values["name"].strip():
            raise ValidationFailed("give the journey a name", field="name")
        row = service.create_journey(
            db=db,
            principal=viewer.principal,
            name=values["name"].strip()[:200],
            scope=values["scope"] or "business_unit",
            definition=jd.from_text(values["definition"], field="definition"),
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        field = (exc.field or "form").split(".")[0]
        message = exc.message if field != "definition" else f"{exc.field}: {exc.message}"
        return _new_page(request, viewer, values, {field: message}, status_code=exc.status_code)
    return RedirectResponse(f"/journeys/{row.id}", status_code=303)


def _detail(
    request: Request,
    db: Session,
    viewer: Viewer,
    journey: Journey,
    *,
    text: str | None = None,
    error: GatherlyError | None = None,
    notice: str = "",
    simulation: explain.Simulation | None = None,
    explained: explain.Explanation | None = None,
    explain_q: str = "",
    who: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    problems = (
        service.check(db=db, principal=viewer.principal, journey_id=journey.id)
        if journey.state == "draft"
        else []
    )
    progress = service.progress(db=db, principal=viewer.principal, journey_id=journey.id)
    return page(
        request,
        "journeys/detail.html",
        viewer,
        status_code=error.status_code if error else status_code,
        journey=journey,
        text=text if text is not None else jd.to_text(journey.definition),
        error=error,
        notice=notice,
        problems=problems,
        progress=progress,
        steps=list(jd.parse(journey.definition).steps),
        simulation=simulation,
        explained=explained,
        explain_q=explain_q,
        who=who,
        states=STATES,
        **may(db, viewer, service.JOURNEY, journey),
    )


def _refused(
    request: Request,
    db: Session,
    viewer: Viewer,
    journey_id: int,
    exc: GatherlyError,
    text: str | None = None,
) -> Response:
    """The journey's page again, saying why the change was refused (nothing changed)."""
    db.rollback()
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    return _detail(request, db, viewer, journey, text=text, error=exc)


@router.get("/journeys/{journey_id}")
def journey_page(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    saved: bool = False,
    step: str = "",
    outcome: str = "",
    status: str = "",
    cursor: str = "",
) -> Response:
    """A journey: its definition, check, state, progress; ``q``: explain that contact;
    ``step`` (``outcome``) or ``status``: who is there."""
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    explained = None
    error: GatherlyError | None = None
    who = None
    if step or status:
        try:
            found = service.people(
                db=db,
                principal=viewer.principal,
                journey_id=journey.id,
                step=step[:40] or None,
                outcome=outcome[:40] or None,
                status=status[:20] or None,
                cursor=cursor or None,
            )
            who = {
                "items": list(found.items),
                "next_cursor": found.next_cursor,
                "query": {"step": step, "outcome": outcome, "status": status},
            }
        except ValidationFailed as exc:
            error = exc
    if q.strip():
        contact = preview_contact(db, viewer, q)
        if contact is None:
            error = NotFound(f"no contact you may read matches “{q.strip()[:200]}”", field="q")
        else:
            explained = explain.explain(
                db=db, principal=viewer.principal, journey_id=journey.id, contact_id=contact.id
            )
    return _detail(
        request,
        db,
        viewer,
        journey,
        explained=explained,
        explain_q=q,
        error=error,
        who=who,
        notice="Saved." if saved else "",
    )


@router.post("/journeys/{journey_id}")
def save_journey(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    text = form_text(form, "definition")
    try:
        definition = jd.from_text(text, field="definition")
        service.update_journey(
            db=db,
            principal=viewer.principal,
            journey_id=journey_id,
            changes={"definition": definition},
        )
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _refused(request, db, viewer, journey_id, exc, text=text)
    return RedirectResponse(f"/journeys/{journey_id}?saved=1", status_code=303)


@router.post("/journeys/{journey_id}/live")
def go_live(
    journey_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    try:
        service.go_live(db=db, principal=viewer.principal, journey_id=journey_id)
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, journey_id, exc)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/state")
def set_state(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    try:
        service.set_state(
            db=db, principal=viewer.principal, journey_id=journey_id, state=form_text(form, "state")
        )
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, journey_id, exc)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/simulate")
def simulate(
    journey_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    try:
        found = explain.simulate(db=db, principal=viewer.principal, journey_id=journey_id)
    except ValidationFailed as exc:
        return _detail(request, db, viewer, journey, error=exc)
    return _detail(request, db, viewer, journey, simulation=found)
