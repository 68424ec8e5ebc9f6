"""Web pages for marketing pages: the list, a new page, and a page's editor (name, address,
title, text, its form) with a preview, publishing at ``/p/{slug}`` and taking it down, its
counts, and deleting it (SPEC B7, B11).

Every page reads and changes through ``capture.forms`` with the viewer's principal, as the
API and the CLI do. The preview is the public page's own template in a sandboxed frame
(see ``web.marketing_forms``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.errors import plain
from gatherly.api.params import PathId
from gatherly.capture import forms
from gatherly.capture import schemas as s
from gatherly.capture.models import MarketingForm, MarketingPage
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.web import form_builder as fb
from gatherly.web.marketing_forms import STATES, may_create, public_document, sentence
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
PAGE_SIZE = 50
CHOICES = 200  # forms offered in the select (newest first), and the page's own
FIELDS = ("name", "slug", "title", "body", "form_id")
WORDS = {
    "name": "the name",
    "title": "the title",
    "body": "the text",
    "form_id": "the form",
}
SLUG_RULE = (
    "the address uses lowercase letters, digits and hyphens (not first or last), at most 100"
)
DONE = {
    "created": "Page created. It is a draft: publish it to put it on the web.",
    "saved": "Saved.",
    "live": "Published: the page is on the web.",
    "draft": "Taken down: the address shows “not found” until you publish it again.",
}


def _stored(row: MarketingPage) -> dict[str, str]:
    return {
        "name": row.name,
        "slug": row.slug,
        "title": row.title or "",
        "body": row.body or "",
        "form_id": str(row.form_id or ""),
    }


def _checked(model: type[BaseModel], typed: Mapping[str, str], row: MarketingPage | None) -> Any:
    """The typed values as the API's input, checked by its model first so a mistake is
    said in words; the form is left out when unchanged (it may be one the viewer cannot
    read, and need not be)."""
    chosen = typed["form_id"]
    values: dict[str, Any] = {k: typed[k] for k in ("name", "slug", "title", "body")}
    values["slug"] = values["slug"].strip()
    values["form_id"] = (int(chosen) if chosen.isascii() and chosen.isdigit() else chosen) or None
    if row is not None and values["form_id"] == row.form_id:
        del values["form_id"]
    try:
        model.model_validate(values)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        said = (
            SLUG_RULE
            if where == "slug" and first["type"] == "string_pattern_mismatch"
            else f"{WORDS.get(where, where)} {plain(first)}"
        )
        raise ValidationFailed(said, field=where) from None
    return values


def _form_choices(db: Session, viewer: Viewer, chosen: str) -> list[tuple[int, str, str]]:
    """The forms the viewer may read (id, name, state), and the chosen one if it is theirs."""
    found = forms.list_forms(db=db, principal=viewer.principal, limit=CHOICES).items
    items = [(f.id, f.name, f.state) for f in found]
    wanted = chosen.isascii() and chosen.isdigit() and 0 < len(chosen) < 10
    if wanted and int(chosen) not in {i for i, _n, _s in items}:
        with contextlib.suppress(NotFound):
            f = forms.get_form(db=db, principal=viewer.principal, form_id=int(chosen))
            items.append((f.id, f.name, f.state))
    return items


def _preview(request: Request, db: Session, viewer: Viewer, row: MarketingPage) -> dict[str, Any]:
    """The saved page as the public page shows it (the form even while it is a draft)."""
    form: MarketingForm | None = None
    hidden_form = False
    if row.form_id is not None:
        try:
            form = forms.get_form(db=db, principal=viewer.principal, form_id=row.form_id)
        except NotFound:
            hidden_form = True
    form_html = (
        forms.render_form(request.app.state.settings, fb.Builder.of(form).preview())
        if form is not None
        else None
    )
    document = public_document(
        row.title or row.name, form_html=form_html, paragraphs=forms.paragraphs(row.body)
    )
    return {"preview": document, "page_form": form, "hidden_form": hidden_form}


def _editor(
    request: Request,
    db: Session,
    viewer: Viewer,
    row: MarketingPage | None,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    public_url = str(request.app.state.settings.public_url).rstrip("/")
    rights = (
        may(db, viewer, forms.PAGE, row)
        if row is not None
        else {"may_write": True, "may_delete": False}
    )
    context: dict[str, Any] = {}
    if row is not None:
        context = {
            "stats": forms.stats(db=db, principal=viewer.principal, page_id=row.id),
            **_preview(request, db, viewer, row),
        }
    return page(
        request,
        "marketing_pages/editor.html",
        viewer,
        status_code=status_code,
        row=row,
        values=values,
        errors=errors or {},
        notice=notice,
        public_url=public_url,
        form_choices=_form_choices(db, viewer, values.get("form_id", "")),
        states=STATES,
        writable=rights["may_write"],
        may_delete=rights["may_delete"],
        **context,
    )


def _refused(
    request: Request,
    db: Session,
    viewer: Viewer,
    page_id: int | None,
    values: dict[str, str],
    exc: ValidationFailed | Conflict,
) -> Response:
    """The editor again with what was typed and the message beside its field."""
    db.rollback()
    row = forms.get_page(db=db, principal=viewer.principal, page_id=page_id) if page_id else None
    where = exc.field if exc.field in (*FIELDS, "state") else "form"
    return _editor(
        request,
        db,
        viewer,
        row,
        values,
        errors={str(where): sentence(exc.message)},
        status_code=exc.status_code,
    )


@router.get("/pages")
def pages_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    cursor: str = "",
    deleted: bool = False,
) -> Response:
    """The pages the viewer may read, newest first."""
    query = q.replace("\x00", "").strip()[:200]
    error = None
    items: list[Any] = []
    next_cursor = None
    try:
        found = forms.list_pages(
            db=db,
            principal=viewer.principal,
            q=query or None,
            cursor=cursor or None,
            limit=PAGE_SIZE,
        )
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    names = {i: n for i, n, _s in _form_choices(db, viewer, "")}
    return page(
        request,
        "marketing_pages/list.html",
        viewer,
        status_code=422 if error else 200,
        items=items,
        form_names=names,
        q=query,
        next_cursor=next_cursor,
        error=error,
        states=STATES,
        public_url=str(request.app.state.settings.public_url).rstrip("/"),
        notice="The page was deleted." if deleted else "",
        may_create=may_create(viewer, forms.PAGE),
    )


@router.get("/pages/new")
def new_page(request: Request, db: WebDb, viewer: CurrentViewer, form_id: str = "") -> Response:
    """A new page (``form_id``: the form it shows, from a form's page)."""
    if not may_create(viewer, forms.PAGE):
        raise Forbidden("your roles do not let you create pages")
    values = dict.fromkeys(FIELDS, "") | {"form_id": form_id[:12]}
    return _editor(request, db, viewer, None, values)


@router.post("/pages/new")
def create_page(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    values = {k: form_text(form, k) for k in FIELDS}
    try:
        made = forms.create_page(
            db=db, principal=viewer.principal, page_in=_checked(s.PageIn, values, None)
        )
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, None, values, exc)
    return RedirectResponse(f"/pages/{made.id}?done=created", status_code=303)


@router.get("/pages/{page_id}")
def page_editor(
    page_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, done: str = ""
) -> Response:
    """A page: its settings (read-only without write), preview, state and counts."""
    row = forms.get_page(db=db, principal=viewer.principal, page_id=page_id)
    return _editor(request, db, viewer, row, _stored(row), notice=DONE.get(done[:20], ""))


@router.post("/pages/{page_id}")
def save_page(
    page_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    row = forms.get_page(
        db=db, principal=viewer.principal, page_id=page_id, privilege=Privilege.WRITE
    )
    values = {k: form_text(form, k) for k in FIELDS}
    try:
        forms.update_page(
            db=db,
            principal=viewer.principal,
            page_id=row.id,
            changes_in=_checked(s.PageFields, values, row),
        )
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, page_id, values, exc)
    return RedirectResponse(f"/pages/{page_id}?done=saved", status_code=303)


@router.post("/pages/{page_id}/state")
def set_state(
    page_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Publish the page (``state=live``) or take it down (``draft``)."""
    state = form_text(form, "state")
    try:
        forms.set_page_state(db=db, principal=viewer.principal, page_id=page_id, state=state)
    except (ValidationFailed, Conflict) as exc:
        db.rollback()
        row = forms.get_page(db=db, principal=viewer.principal, page_id=page_id)
        return _editor(
            request,
            db,
            viewer,
            row,
            _stored(row),
            errors={"state": sentence(exc.message)},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        f"/pages/{page_id}?done={'live' if state == 'live' else 'draft'}", status_code=303
    )


@router.get("/pages/{page_id}/delete")
def confirm_delete_page(
    page_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    """What deleting the page does, before it happens."""
    row = forms.get_page(
        db=db, principal=viewer.principal, page_id=page_id, privilege=Privilege.DELETE
    )
    return page(
        request,
        "forms/delete.html",
        viewer,
        what="page",
        name=row.name,
        consequences=[
            f"The address /p/{row.slug} stops working. The visits to it and the "
            "submissions sent through it still count on the form.",
            "Its form, the form's submissions and the contacts they made stay.",
        ],
        action=f"/pages/{row.id}/delete",
        back=f"/pages/{row.id}",
    )


@router.post("/pages/{page_id}/delete")
def delete_page(page_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    forms.delete_page(db=db, principal=viewer.principal, page_id=page_id)
    return RedirectResponse("/pages?deleted=1", status_code=303)
