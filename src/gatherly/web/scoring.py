"""Web pages for lead scoring (SPEC B9): the scoring models, a model's page (its
conditions in words, grades, threshold, state, the last full rescore, the scores the
viewer may read with a CSV download), the editor (conditions and grades as rows), going
live, stopping, a rescore by the worker, giving it to another owner, deleting it; and a
score's explanation.

Every page reads and changes through ``scoring.service`` with the viewer's principal, as
the API and the CLI do. A score is its model owner's record: whether a viewer sees one
follows their roles, and the person scored is named only when they may read the person.
The editor's row buttons re-render it with what was typed and store nothing
(``web.scoring_form``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.params import PathId
from gatherly.api.responses import csv_download
from gatherly.capture import forms
from gatherly.core.exceptions import Conflict, Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.email import service as email_service
from gatherly.event import service as event_service
from gatherly.org import service as org_service
from gatherly.scoring import definition as sd
from gatherly.scoring import service
from gatherly.scoring.models import ScoringModel
from gatherly.web import people
from gatherly.web import scoring_form as sf
from gatherly.web.marketing_forms import may_create, sentence
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
PAGE_SIZE = 50  # models a page lists
SCORES = 25  # scores a model's page lists
CHOICES = 200  # records offered in a select (newest first), and the ones a model names
STATES = {"draft": "Draft", "live": "Live"}
DONE = {
    "created": "Scoring model created. It is a draft: give it its conditions, then take it live.",
    "saved": "Saved.",
    "saved_live": "Saved. The worker rescores every record in full shortly.",
    "live": "The model is live: the worker scores everyone it applies to shortly, then keeps "
    "the scores up to date as people register, attend, open, click and submit.",
    "draft": "The model is stopped: its scores stay as they are, no longer kept up to date.",
    "rescore": "A full rescore was asked for: the worker does it shortly. Reload the page to "
    "see when it finished.",
    "owner": "The model and its scores were given to their new owner; the worker rescores it "
    "as the new owner reads.",
}
# What an interaction is about, and where its page is.
ABOUT = {
    "marketing_event": ("event", "/events/"),
    "email_message": ("email", "/email/messages/"),
    "marketing_form": ("form", "/forms/"),
    "marketing_page": ("page", "/pages/"),
}
_PATH = re.compile(r"^(conditions|grades)(\[\d+\]|\.\w+)*: ")


# ------------------------------------------------------------------ names


def _names(
    db: Session, viewer: Viewer, wanted: dict[str, set[int]], known: dict[tuple[str, int], str]
) -> dict[tuple[str, int], str]:
    """The names of the records ``wanted`` names (by form field: ``event``,
    ``message_id``, ``form_id``, ``page_id``) that the viewer may read; the others are
    shown by number."""
    principal = viewer.principal
    names = dict(known)
    missing = {k: {i for i in ids if (k, i) not in names} for k, ids in wanted.items()}
    names.update(
        (("message_id", i), n)
        for i, n in email_service.message_names(
            db=db, principal=principal, ids=missing.get("message_id", set())
        ).items()
    )
    getters: dict[str, Any] = {
        "event": lambda i: event_service.get_event(db=db, principal=principal, event_id=i),
        "form_id": lambda i: forms.get_form(db=db, principal=principal, form_id=i),
        "page_id": lambda i: forms.get_page(db=db, principal=principal, page_id=i),
    }
    for kind, get in getters.items():
        for record_id in sorted(missing.get(kind, set()))[:CHOICES]:
            with contextlib.suppress(NotFound):  # not the viewer's: shown by number
                names[(kind, record_id)] = get(record_id).name
    return names


def _conditions(db: Session, viewer: Viewer, model: ScoringModel) -> list[dict[str, Any]]:
    """The model's conditions: name, points and what each asks, in words."""
    checked = sd.parse_conditions(model.conditions)
    words = service.condition_words(db=db, principal=viewer.principal, checked=checked)
    return [
        {"name": c.condition.name, "points": c.condition.points, "said": words[c.index]}
        for c in checked
    ]


# ------------------------------------------------------------------ the list


def _list_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    q: str = "",
    cursor: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    error = None
    items: list[Any] = []
    next_cursor = None
    try:
        found = service.list_models(
            db=db, principal=viewer.principal, q=q or None, cursor=cursor or None, limit=PAGE_SIZE
        )
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    return page(
        request,
        "scoring/list.html",
        viewer,
        status_code=422 if error and status_code == 200 else status_code,
        items=items,
        q=q,
        next_cursor=next_cursor,
        error=error,
        states=STATES,
        targets=sf.TARGETS,
        values=values or {"name": "", "target": "contact"},
        errors=errors or {},
        notice=notice,
        may_create=may_create(viewer, service.MODEL),
    )


@router.get("/scoring")
def models_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    cursor: str = "",
    deleted: bool = False,
) -> Response:
    """The scoring models the viewer may read, newest first, and a new model's form."""
    query = q.replace("\x00", "").strip()[:200]
    notice = "The scoring model and its scores were deleted." if deleted else ""
    return _list_page(request, db, viewer, q=query, cursor=cursor, notice=notice)


@router.post("/scoring")
def create_model(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """A new draft model (the default grades A–D); its conditions come in the editor."""
    values = {"name": form_text(form, "name")[:300], "target": form_text(form, "target")}
    try:
        row = service.create_model(
            db=db,
            principal=viewer.principal,
            name=values["name"].strip()[:200],
            target=values["target"] or "contact",
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        where = exc.field if exc.field in ("name", "target") else "form"
        return _list_page(
            request,
            db,
            viewer,
            values=values,
            errors={where: sentence(exc.message)},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/scoring/{row.id}/edit?done=created", status_code=303)


# ------------------------------------------------------------------ a score


@router.get("/scoring/scores/{score_id}")
def score_page(score_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """Why a score is what it is: each condition's points, from which interactions."""
    said = service.explain(db=db, principal=viewer.principal, score_id=score_id)
    words = {p.index: p.description for p in said.parts}
    model_readable = True
    try:
        service.get_model(db=db, principal=viewer.principal, model_id=said.model.id)
    except NotFound:
        model_readable = False
    return page(
        request,
        "scoring/score.html",
        viewer,
        said=said,
        score=said.score,
        words=words,
        person_url=_person_url(said.score),
        model_readable=model_readable,
        about=ABOUT,
    )


def _person_url(score: Any) -> str:
    """The page of the contact or lead a score is about."""
    if score.lead_id is not None:
        return f"/leads/{score.lead_id}"
    return f"/contacts/{score.contact_id}"


# ------------------------------------------------------------------ a model


def _model_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    row: ScoringModel,
    *,
    cursor: str = "",
    notice: str = "",
    error: GatherlyError | None = None,
) -> Response:
    principal = viewer.principal
    rights = may(db, viewer, service.MODEL, row)
    scores: list[Any] = []
    next_url = None
    scores_error = None
    try:
        found = service.list_scores(
            db=db, principal=principal, model_id=row.id, cursor=cursor or None, limit=SCORES
        )
        scores = list(found.items)
        if found.next_cursor:
            next_url = f"/scoring/{row.id}?{urlencode({'cursor': found.next_cursor})}#scores"
    except ValidationFailed as exc:
        scores_error = exc.message
    names = org_service.owner_names(db=db, principal=principal, records=[row])
    return page(
        request,
        "scoring/model.html",
        viewer,
        status_code=error.status_code if error else (422 if scores_error else 200),
        model=row,
        conditions=_conditions(db, viewer, row),
        owner=names.owner(row) or f"{row.owner_type} {row.owner_id}",
        business_unit=names.business_unit(row) or f"business unit {row.owning_bu_id}",
        scores=scores,
        scores_error=scores_error,
        paged=bool(cursor),
        next_url=next_url,
        total=service.count_scores(db=db, principal=principal, model_id=row.id),
        ready=service.count_scores(db=db, principal=principal, model_id=row.id, sales_ready=True),
        owners=people.owner_choices(db, viewer) if rights["may_assign"] else [],
        person_url=_person_url,
        states=STATES,
        targets=sf.TARGETS,
        notice=notice,
        error=sentence(error.message) if error else "",
        **rights,
    )


def _refused(
    request: Request, db: Session, viewer: Viewer, model_id: int, exc: GatherlyError
) -> Response:
    """The model's page again, saying why the change was refused (nothing changed)."""
    db.rollback()
    row = service.get_model(db=db, principal=viewer.principal, model_id=model_id)
    return _model_page(request, db, viewer, row, error=exc)


@router.get("/scoring/{model_id}")
def model_page(
    model_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    cursor: str = "",
    done: str = "",
) -> Response:
    """A model: its conditions in words, grades, threshold, state, last full rescore, and
    the scores the viewer may read, highest first."""
    row = service.get_model(db=db, principal=viewer.principal, model_id=model_id)
    return _model_page(request, db, viewer, row, cursor=cursor, notice=DONE.get(done[:20], ""))


@router.post("/scoring/{model_id}/state")
def set_state(
    model_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Go live (the worker then scores everyone) or stop (the scores stay as they are)."""
    state = form_text(form, "state")
    try:
        service.set_state(db=db, principal=viewer.principal, model_id=model_id, state=state)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _refused(request, db, viewer, model_id, exc)
    return RedirectResponse(f"/scoring/{model_id}?done={state}", status_code=303)


@router.post("/scoring/{model_id}/rescore")
def rescore(
    model_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """Ask the worker for a full rescore of a live model."""
    try:
        service.request_rescore(db=db, principal=viewer.principal, model_id=model_id)
    except (Conflict, Forbidden) as exc:
        return _refused(request, db, viewer, model_id, exc)
    return RedirectResponse(f"/scoring/{model_id}?done=rescore", status_code=303)


@router.post("/scoring/{model_id}/owner")
def give_model(
    model_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Give the model, and its scores, to another user or team."""
    try:
        owner = people.owner_ref(form_text(form, "owner"), "owner")
        service.assign_model(db=db, principal=viewer.principal, model_id=model_id, owner=owner)
    except (ValidationFailed, Forbidden, Conflict) as exc:
        return _refused(request, db, viewer, model_id, exc)
    return RedirectResponse(f"/scoring/{model_id}?done=owner", status_code=303)


@router.get("/scoring/{model_id}/scores.csv")
def export_scores(
    model_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """The model's scores the viewer may read, as CSV (the API's service, same checks)."""
    return csv_download(
        service.export_scores(
            db=db,
            principal=viewer.principal,
            model_id=model_id,
            session_factory=request.app.state.session_factory,
        )
    )


@router.get("/scoring/{model_id}/delete")
def confirm_delete(
    model_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    """What deleting the model does, before it happens."""
    row = service.get_model(
        db=db, principal=viewer.principal, model_id=model_id, privilege=Privilege.DELETE
    )
    total = service.count_scores(db=db, principal=viewer.principal, model_id=row.id)
    return page(
        request,
        "forms/delete.html",
        viewer,
        what="scoring model",
        name=row.name,
        consequences=[
            f"Its scores are deleted with it ({total} you may read); the contacts and "
            "leads it scored stay.",
            "Journeys that start when people become sales-ready in it no longer start anyone.",
        ],
        action=f"/scoring/{row.id}/delete",
        back=f"/scoring/{row.id}",
    )


@router.post("/scoring/{model_id}/delete")
def delete_model(model_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    service.delete_model(db=db, principal=viewer.principal, model_id=model_id)
    return RedirectResponse("/scoring?deleted=1", status_code=303)


# ------------------------------------------------------------------ the editor


@dataclass
class Choices:
    """What the editor's selects offer (records the viewer may read, newest first) and the
    names of the records the rows name (the others show by number)."""

    events: list[tuple[int, str]] = field(default_factory=list)
    message_id: list[tuple[int, str]] = field(default_factory=list)
    form_id: list[tuple[int, str]] = field(default_factory=list)
    page_id: list[tuple[int, str]] = field(default_factory=list)
    names: dict[tuple[str, int], str] = field(default_factory=dict)


def _choices(db: Session, viewer: Viewer, editor: sf.Editor) -> Choices:
    principal = viewer.principal
    found = Choices(
        events=[
            (e.id, e.name)
            for e in event_service.list_events(db=db, principal=principal, limit=CHOICES).items
        ],
        message_id=[
            (m.id, m.name)
            for m in email_service.list_messages(db=db, principal=principal, limit=CHOICES).items
        ],
        form_id=[
            (x.id, x.name)
            for x in forms.list_forms(db=db, principal=principal, limit=CHOICES).items
        ],
        page_id=[
            (x.id, x.name)
            for x in forms.list_pages(db=db, principal=principal, limit=CHOICES).items
        ],
    )
    known = {("event", i): n for i, n in found.events}
    for kind in ("message_id", "form_id", "page_id"):
        known.update(((kind, i), n) for i, n in getattr(found, kind))
    wanted: dict[str, set[int]] = {"event": set(), "message_id": set(), "form_id": set()}
    wanted["page_id"] = set()
    for row in editor.conditions:
        for kind, ref in row.chosen.items():
            wanted[kind].add(ref)
    found.names = _names(db, viewer, wanted, known)
    return found


def _editor_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    row: ScoringModel,
    editor: sf.Editor,
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    focus: str = "",
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "scoring/edit.html",
        viewer,
        status_code=status_code,
        model=row,
        e=editor,
        errors=errors or {},
        notice=notice,
        focus=focus,
        choices=_choices(db, viewer, editor),
        kinds=sf.KINDS,
        fields=sf.FIELDS,
        ops=sf.OPS,
        frequencies=sf.FREQUENCIES,
        targets=sf.TARGETS,
        reference=sf.REFERENCE,
        max_conditions=sd.MAX_CONDITIONS,
        max_grades=sd.MAX_GRADES,
        states=STATES,
    )


@router.get("/scoring/{model_id}/edit")
def edit_model(
    model_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, done: str = ""
) -> Response:
    """The editor: name, description, target, threshold, grades and conditions as rows."""
    row = service.get_model(
        db=db, principal=viewer.principal, model_id=model_id, privilege=Privilege.WRITE
    )
    notice = DONE.get(done[:20], "")
    return _editor_page(request, db, viewer, row, sf.Editor.of(row), notice=notice)


@router.post("/scoring/{model_id}/edit")
def save_model(
    model_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """A row button (re-render, nothing stored), or Save (all of it stored, or nothing)."""
    row = service.get_model(
        db=db, principal=viewer.principal, model_id=model_id, privilege=Privilege.WRITE
    )
    editor = sf.Editor.read(form)
    if editor.action != "save":
        return _editor_page(request, db, viewer, row, editor, focus=editor.apply())
    try:
        service.update_model(
            db=db, principal=viewer.principal, model_id=row.id, changes=editor.values()
        )
    except (ValidationFailed, NotFound, Conflict, Forbidden) as exc:
        db.rollback()  # nothing half-saved: the model stays as it was
        row = service.get_model(db=db, principal=viewer.principal, model_id=model_id)
        where = editor.place(exc.field)
        errors = {where: sentence(_PATH.sub("", exc.message))}
        if where != "form":
            errors["form"] = "Nothing was saved: see the message below."
        status = 422 if isinstance(exc, NotFound) else exc.status_code
        return _editor_page(request, db, viewer, row, editor, errors=errors, status_code=status)
    done = "saved_live" if row.state == "live" and row.full_pending else "saved"
    return RedirectResponse(f"/scoring/{row.id}?done={done}", status_code=303)
