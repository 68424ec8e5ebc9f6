"""Web pages: bulk actions on the contacts ticked in a list (the contact search, a segment's
members, a tab of an event's people), or on every contact the list matches: add to a marketing list, remove from one,
export as CSV.

The first POST counts what would happen and asks to confirm; the second does it. Both go
through ``segment.service`` with the viewer's principal: only contacts the viewer may read
are counted, changed or exported, and only lists they may change are offered.
"""

from __future__ import annotations

from typing import Any, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.api.responses import csv_download
from gatherly.contact import service as contact_service
from gatherly.core.exceptions import ValidationFailed
from gatherly.segment import service
from gatherly.web.criteria_form import as_int
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
)

router = APIRouter(include_in_schema=False)
BulkAction = Literal["add", "remove", "export"]
ACTIONS = {"add": "Add to list", "remove": "Remove from list", "export": "Export CSV"}
# The form fields that say which contacts: carried from the list page to the confirmation.
SELECTION_FIELDS = ("source", "segment_id", "event_id", "tab", "q", "country", "company", "choose")


def _text(form: FormData, name: str) -> str:
    return form_text(form, name).strip()[:200]


def selection_of(form: FormData) -> tuple[service.Selection, str]:
    """The selection a bulk form describes, and the page to go back to."""
    all_matching = _text(form, "choose") == "all"
    ids = tuple(i for i in (as_int(v) for v in form.getlist("contact_id")) if i is not None)
    if _text(form, "source") == "event":
        event_id = as_int(form.get("event_id"))
        if event_id is None:
            raise ValidationFailed("the event is missing", field="event_id")
        tab = _text(form, "tab") or "all"
        back = f"/events/{event_id}?tab={tab}#people-h"
        selection = service.Selection(
            ids=ids, all_matching=all_matching, event_id=event_id, tab=tab
        )
        return selection, back
    if _text(form, "source") == "segment":
        segment_id = as_int(form.get("segment_id"))
        if segment_id is None:
            raise ValidationFailed("the segment is missing", field="segment_id")
        back = f"/segments/{segment_id}"
        return service.Selection(ids=ids, all_matching=all_matching, segment_id=segment_id), back
    search = {k: _text(form, k) for k in ("q", "country", "company") if _text(form, k)}
    flt = contact_service.ListFilter(
        q=search.get("q"), country=search.get("country"), company=search.get("company")
    )
    back = "/contacts" + (f"?{urlencode(search)}" if search else "")
    return service.Selection(ids=ids, all_matching=all_matching, contacts=flt), back


def _carried(form: FormData) -> dict[str, Any]:
    """The selection's fields, to carry in the confirmation's hidden inputs."""
    return {
        "fields": {k: _text(form, k) for k in SELECTION_FIELDS if _text(form, k)},
        "contact_ids": [i for i in (as_int(v) for v in form.getlist("contact_id")) if i],
    }


def _action(form: FormData) -> BulkAction:
    action = _text(form, "action")
    if action not in ACTIONS:
        raise ValidationFailed("choose add to list, remove from list or export", field="action")
    return cast(BulkAction, action)


def _list_id(form: FormData) -> int:
    list_id = as_int(form.get("list_id"))
    if list_id is None:
        raise ValidationFailed("choose the marketing list", field="list_id")
    return list_id


def _refused(
    request: Request, db: Session, viewer: Viewer, back: str, exc: ValidationFailed
) -> Response:
    db.rollback()
    return page(
        request, "bulk/refused.html", viewer, status_code=422, message=exc.message, back=back
    )


@router.post("/bulk")
def confirm(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    """What the chosen action would do, counted, with a button to do it."""
    selection, back = selection_of(form)
    principal = viewer.principal
    try:
        action = _action(form)
        if action == "export":
            count = service.count_selected(db=db, principal=principal, selection=selection)
            plan = None
        else:
            plan = service.plan_list_change(
                db=db,
                principal=principal,
                selection=selection,
                list_id=_list_id(form),
                action=action,
            )
            count = plan.selected
        if not count:
            raise ValidationFailed("none of the chosen contacts is one you may read")
    except ValidationFailed as exc:
        return _refused(request, db, viewer, back, exc)
    return page(
        request,
        "bulk/confirm.html",
        viewer,
        action=action,
        plan=plan,
        count=count,
        back=back,
        **_carried(form),
    )


@router.post("/bulk/apply")
def apply(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    """Do the confirmed action: change the list, or download the CSV."""
    selection, back = selection_of(form)
    principal = viewer.principal
    try:
        action = _action(form)
        if action == "export":
            return csv_download(
                service.export_selection(
                    db=db,
                    principal=principal,
                    selection=selection,
                    session_factory=request.app.state.session_factory,
                )
            )
        list_id = _list_id(form)
        done = service.apply_list_change(
            db=db, principal=principal, selection=selection, list_id=list_id, action=action
        )
        target = service.get_list(db=db, principal=principal, list_id=list_id)
    except ValidationFailed as exc:
        return _refused(request, db, viewer, back, exc)
    return page(
        request, "bulk/done.html", viewer, action=action, done=done, mlist=target, back=back
    )


def bulk_context(db: Session, viewer: Viewer) -> dict[str, Any]:
    """What a list page needs to draw the bulk bar: the lists the viewer may change."""
    return {"bulk_lists": service.writable_lists(db=db, principal=viewer.principal)}
