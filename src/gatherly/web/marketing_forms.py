"""Web pages for marketing forms: the list, the builder (fields, consents, what a submission
does, the duplicate rule, what people see after) with a live preview, taking a form live,
the embed snippet and its key, and the submissions with what became of each (SPEC B7, B11).

Every page reads and changes through ``capture.forms`` with the viewer's principal, as the
API and the CLI do. The builder's row buttons re-render it with what was typed and store
nothing (``web.form_builder``); Save, Take live and Back to draft store the whole form in one
transaction or nothing. The preview is the public page's own HTML in a sandboxed frame
that may not send forms, built from a form numbered 0, so it can never submit.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.params import PathId
from gatherly.capture import forms
from gatherly.capture import schemas as s
from gatherly.capture.models import MarketingForm
from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.web import form_builder as fb
from gatherly.web.contacts import full_name
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    may,
    page,
    templates,
)

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25  # forms a page lists (each with its counts)
SUBMISSIONS = 50
STATES = {"draft": "Draft", "live": "Live"}
SUBMISSION_STATES = {"pending": "Waiting", "processed": "Processed", "failed": "Failed"}
DONE = {
    "created": "Form created. It is a draft: take it live to take submissions.",
    "saved": "Saved.",
    "live": "The form is live: it takes submissions.",
    "draft": "The form is back to draft: it refuses submissions.",
    "rotated": "New embed key: snippets copied before now no longer work.",
}


def sentence(text: str) -> str:
    """A service's message as a sentence: capital first, full stop last."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def public_document(
    title: str, *, form_html: Any = None, paragraphs: list[str] | None = None
) -> str:
    """The public page's own template rendered to a string (a preview frame's document)."""
    return templates.env.get_template("capture/public.html").render(
        title=title, form_html=form_html, paragraphs=paragraphs or [], thanks=None, problem=None
    )


def _preview(request: Request, builder: fb.Builder) -> str:
    """The builder's form as the public page shows it (what was typed, saved or not)."""
    shown = forms.render_form(request.app.state.settings, builder.preview())
    return public_document(builder.name.strip() or "Untitled form", form_html=shown)


def may_create(viewer: Viewer, record_type: str) -> bool:
    """Whether a role lets the viewer create records of the type at all (a page offers
    "New …"; the service checks the owner and business unit when it is used)."""
    principal = viewer.principal
    return principal.is_system_admin or bool(principal.grants_for(record_type, Privilege.CREATE))


def _rules(db: Session, viewer: Viewer) -> dict[str, list[Any]]:
    """The duplicate detection rules the viewer may read, by record type."""
    grouped: dict[str, list[Any]] = {"contact": [], "lead": []}
    with contextlib.suppress(Forbidden):
        for rule in matching.list_rules(db=db, principal=viewer.principal):
            grouped.setdefault(rule.record_type, []).append(rule)
    return grouped


def _builder_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    row: MarketingForm | None,
    builder: fb.Builder,
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    focus: str = "",
    status_code: int = 200,
) -> Response:
    rights = (
        may(db, viewer, forms.FORM, row)
        if row is not None
        else {"may_write": True, "may_delete": False}
    )
    context: dict[str, Any] = {}
    if row is not None:
        settings = request.app.state.settings
        context = {
            "stats": forms.stats(db=db, principal=viewer.principal, form_id=row.id),
            "embed": forms.embed(
                db=db, principal=viewer.principal, settings=settings, form_id=row.id
            ),
            "action_url": forms.action_url(settings, row.id),
        }
    return page(
        request,
        "forms/builder.html",
        viewer,
        status_code=status_code,
        form=row,
        b=builder,
        errors=errors or {},
        notice=notice,
        focus=focus,
        writable=rights["may_write"],
        may_delete=rights["may_delete"],
        rules=_rules(db, viewer),
        preview=_preview(request, builder),
        attributes=fb.ATTRIBUTES,
        types=fb.TYPES,
        on_submit=fb.ON_SUBMIT,
        max_fields=fb.MAX_FIELDS,
        max_consents=fb.MAX_CONSENTS,
        states=STATES,
        **context,
    )


# ------------------------------------------------------------------ the list


@router.get("/forms")
def forms_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    cursor: str = "",
    deleted: bool = False,
) -> Response:
    """The forms the viewer may read, newest first, with their counts."""
    query = q.replace("\x00", "").strip()[:200]
    error = None
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        found = forms.list_forms(
            db=db,
            principal=viewer.principal,
            q=query or None,
            cursor=cursor or None,
            limit=PAGE_SIZE,
        )
        rows = [
            {"form": f, "stats": forms.stats(db=db, principal=viewer.principal, form_id=f.id)}
            for f in found.items
        ]
        next_cursor = found.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    return page(
        request,
        "forms/list.html",
        viewer,
        status_code=422 if error else 200,
        rows=rows,
        q=query,
        next_cursor=next_cursor,
        error=error,
        states=STATES,
        notice="The form was deleted." if deleted else "",
        may_create=may_create(viewer, forms.FORM),
    )


# ------------------------------------------------------------------ the builder


@router.get("/forms/new")
def new_form(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """A new form: an email field to start from."""
    if not may_create(viewer, forms.FORM):
        raise Forbidden("your roles do not let you create forms")
    return _builder_page(request, db, viewer, None, fb.Builder.blank())


def _post_builder(
    request: Request, db: Session, viewer: Viewer, form: Any, row: MarketingForm | None
) -> Response:
    """A row button (re-render, nothing stored), or Save / Take live / Back to draft
    (all of it stored, or nothing)."""
    builder = fb.Builder.read(form)
    if builder.action not in ("save", "live", "draft"):
        focus = "preview" if builder.action == "preview" else builder.apply()
        return _builder_page(request, db, viewer, row, builder, focus=focus)
    try:
        if row is None:
            made = forms.create_form(
                db=db, principal=viewer.principal, form_in=builder.checked(s.FormIn)
            )
            return RedirectResponse(f"/forms/{made.id}?done=created", status_code=303)
        forms.update_form(
            db=db,
            principal=viewer.principal,
            form_id=row.id,
            changes_in=builder.checked(s.FormFields),
        )
        if builder.action in ("live", "draft"):
            forms.set_form_state(
                db=db, principal=viewer.principal, form_id=row.id, state=builder.action
            )
    except (ValidationFailed, Conflict) as exc:
        db.rollback()  # nothing half-saved: the form stays as it was
        where = builder.place(exc.field)
        errors = {where: sentence(exc.message)}
        if where != "form":
            errors["form"] = "Nothing was saved: see the message below."
        return _builder_page(
            request, db, viewer, row, builder, errors=errors, status_code=exc.status_code
        )
    return RedirectResponse(f"/forms/{row.id}?done={builder.action}", status_code=303)


@router.post("/forms/new")
def create_form(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    return _post_builder(request, db, viewer, form, None)


@router.post("/forms/preview")
def live_preview(
    request: Request, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """The builder's preview of what was typed (htmx, as the builder changes); stores
    nothing and reads nothing but the posted form."""
    builder = fb.Builder.read(form)
    return page(request, "forms/_preview.html", viewer, preview=_preview(request, builder))


@router.get("/forms/submissions/{submission_id}")
def submission_page(
    submission_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    """One submission: what was sent, the consents with the wording shown, what became of it."""
    found = forms.get_submission(db=db, principal=viewer.principal, submission_id=submission_id)
    form: MarketingForm | None = None
    with contextlib.suppress(NotFound):
        form = forms.get_form(db=db, principal=viewer.principal, form_id=found.form_id)
    shown_page = None
    if found.page_id is not None:
        with contextlib.suppress(NotFound):
            shown_page = forms.get_page(db=db, principal=viewer.principal, page_id=found.page_id)
    labels = {f["key"]: f["label"] for f in (form.fields if form else [])}
    return page(
        request,
        "forms/submission.html",
        viewer,
        sub=found,
        form=form,
        shown_page=shown_page,
        labels=labels,
        states=SUBMISSION_STATES,
        **_people(db, viewer, [found]),
    )


@router.get("/forms/{form_id}")
def form_page(
    form_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, done: str = ""
) -> Response:
    """A form in the builder (read-only without write), its preview, counts and embed."""
    row = forms.get_form(db=db, principal=viewer.principal, form_id=form_id)
    return _builder_page(
        request, db, viewer, row, fb.Builder.of(row), notice=DONE.get(done[:20], "")
    )


@router.post("/forms/{form_id}")
def save_form(
    form_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    row = forms.get_form(
        db=db, principal=viewer.principal, form_id=form_id, privilege=Privilege.WRITE
    )
    return _post_builder(request, db, viewer, form, row)


@router.post("/forms/{form_id}/embed-key")
def rotate_embed_key(form_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    """A new embed key: every snippet copied before stops working."""
    forms.rotate_embed_key(db=db, principal=viewer.principal, form_id=form_id)
    return RedirectResponse(f"/forms/{form_id}?done=rotated#embed", status_code=303)


@router.get("/forms/{form_id}/delete")
def confirm_delete_form(
    form_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    """What deleting the form does, before it happens."""
    row = forms.get_form(
        db=db, principal=viewer.principal, form_id=form_id, privilege=Privilege.DELETE
    )
    counts = forms.stats(db=db, principal=viewer.principal, form_id=row.id)
    return page(
        request,
        "forms/delete.html",
        viewer,
        what="form",
        name=row.name,
        consequences=[
            f"Its {counts.submissions} submission{'' if counts.submissions == 1 else 's'} "
            "and counts are deleted with it; the contacts and leads they made stay.",
            "Pages that show it show no form, and its embed snippets stop working.",
        ],
        action=f"/forms/{row.id}/delete",
        back=f"/forms/{row.id}",
    )


@router.post("/forms/{form_id}/delete")
def delete_form(form_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    forms.delete_form(db=db, principal=viewer.principal, form_id=form_id)
    return RedirectResponse("/forms?deleted=1", status_code=303)


# ------------------------------------------------------------------ submissions


def _people(db: Session, viewer: Viewer, items: list[Any]) -> dict[str, Any]:
    """The contacts and leads the submissions made that the viewer may read (the others
    are neither linked nor numbered)."""
    principal = viewer.principal
    return {
        "contacts": contact_service.readable_records(
            db=db,
            principal=principal,
            kind=contact_service.CONTACT,
            ids=[i.contact_id for i in items],
        ),
        "leads": contact_service.readable_records(
            db=db, principal=principal, kind=contact_service.LEAD, ids=[i.lead_id for i in items]
        ),
        "full_name": full_name,
    }


@router.get("/forms/{form_id}/submissions")
def submissions_page(
    form_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = ""
) -> Response:
    """A form's submissions, newest first: who sent it, what became of it."""
    row = forms.get_form(db=db, principal=viewer.principal, form_id=form_id)
    error = None
    items: list[Any] = []
    next_url = None
    try:
        found = forms.list_submissions(
            db=db,
            principal=viewer.principal,
            form_id=row.id,
            cursor=cursor or None,
            limit=SUBMISSIONS,
        )
        items = list(found.items)
        if found.next_cursor:
            next_url = f"/forms/{row.id}/submissions?{urlencode({'cursor': found.next_cursor})}"
    except ValidationFailed as exc:
        error = exc.message
    return page(
        request,
        "forms/submissions.html",
        viewer,
        status_code=422 if error else 200,
        form=row,
        items=items,
        next_url=next_url,
        error=error,
        states=SUBMISSION_STATES,
        stats=forms.stats(db=db, principal=viewer.principal, form_id=row.id),
        **_people(db, viewer, items),
    )
