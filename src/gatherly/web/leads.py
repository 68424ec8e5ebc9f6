"""Web pages for leads: the list and search, a lead's page, and qualifying a lead into a
contact (SPEC M). Creating, editing, deleting, giving and sharing a lead are the pages in
``web.people``, shared with contacts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gatherly.api.params import PathId
from gatherly.contact import service
from gatherly.contact.models import Lead
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.scoring import service as scoring_service
from gatherly.scoring.models import ScoringModel
from gatherly.web import people
from gatherly.web.contacts import country_name, full_name, merged_notice, owners_of
from gatherly.web.pages import CsrfChecked, CurrentViewer, WebDb, may, page

router = APIRouter(include_in_schema=False)
LEAD = service.LEAD
PAGE_SIZE = 50
MAX_TEXT = 200
SORTS = {
    "-modified_at": "Last modified, newest first",
    "modified_at": "Last modified, oldest first",
    "last_name": "Name, A to Z",
    "-last_name": "Name, Z to A",
}


@router.get("/leads")
def lead_list(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    status: str = "",
    sort: str = "-modified_at",
    cursor: str = "",
) -> Response:
    """Search and list the leads the viewer may read, with their count."""
    form = {"q": q.strip(), "status": status, "sort": sort}
    errors: dict[str, str] = {}
    if len(form["q"]) > MAX_TEXT:
        errors["q"] = f"Use at most {MAX_TEXT} characters."
    if status and status not in people.STATUS_LABELS:
        errors["status"] = "Pick a status from the list."
    if sort not in SORTS:
        errors["sort"] = "Pick an order from the list."
    items: list[Any] = []
    total, next_cursor = 0, None
    if not errors:
        flt = service.ListFilter(q=form["q"] or None, status=status or None)
        try:
            found = service.list_records(
                db=db,
                principal=viewer.principal,
                kind=LEAD,
                flt=flt,
                sort=sort,
                cursor=cursor or None,
                limit=PAGE_SIZE,
            )
        except ValidationFailed as exc:
            errors["cursor"] = exc.message
        else:
            items, next_cursor = list(found.items), found.next_cursor
            total = service.count_records(db=db, principal=viewer.principal, kind=LEAD, flt=flt)
    query = {k: v for k, v in form.items() if v and not (k == "sort" and v == "-modified_at")}
    return page(
        request,
        "leads/list.html",
        viewer,
        status_code=422 if errors else 200,
        form=form,
        errors=errors,
        sorts=SORTS,
        statuses=people.STATUS_LABELS,
        items=items,
        owners=owners_of(db, viewer, items),
        total=total,
        first_url="/leads" + (f"?{urlencode(query)}" if query else ""),
        next_url=f"/leads?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
        paged=bool(cursor),
        full_name=full_name,
    )


@router.get("/leads/{lead_id}")
def lead_page(
    lead_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    qualified: str = "",
    merged: str = "",
    took: str = "",
) -> Response:
    """A lead's properties, ownership, its contact (when qualified), its scores the viewer
    may read (and since when it is sales-ready) and what may be done."""
    lead = service.get(db=db, principal=viewer.principal, kind=LEAD, record_id=lead_id)
    assert isinstance(lead, Lead)
    contact = None
    if lead.contact_id is not None:
        try:
            contact = service.get(
                db=db, principal=viewer.principal, kind=service.CONTACT, record_id=lead.contact_id
            )
        except NotFound:
            contact = None  # a contact the viewer may not read is not named
    ready_in: ScoringModel | None = None
    if lead.sales_ready_at is not None and lead.sales_ready_model_id is not None:
        try:
            ready_in = scoring_service.get_model(
                db=db, principal=viewer.principal, model_id=lead.sales_ready_model_id
            )
        except NotFound:
            ready_in = None  # a model the viewer may not read is not named
    return page(
        request,
        "leads/detail.html",
        viewer,
        lead=lead,
        name=full_name(lead),
        country=country_name(lead.country),
        owner=owners_of(db, viewer, [lead])[lead.id],
        contact=contact,
        contact_name=full_name(contact) if contact is not None else None,
        qualified=qualified if qualified in ("created", "linked") else "",
        statuses=people.STATUS_LABELS,
        custom=people.custom_text(lead.custom),
        merged_notice=merged_notice("lead", merged, "", took),
        scores=scoring_service.scores_of(db=db, principal=viewer.principal, lead_id=lead.id),
        sales_ready_model=ready_in,
        **may(db, viewer, LEAD.record_type, lead),
    )


@router.post("/leads/{lead_id}/qualify")
def qualify(
    lead_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """Qualify the lead into a contact, then show the lead with what happened."""
    try:
        done = service.qualify(db=db, principal=viewer.principal, lead_id=lead_id)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        db.rollback()
        lead = service.get(db=db, principal=viewer.principal, kind=LEAD, record_id=lead_id)
        return page(
            request,
            "error.html",
            viewer,
            status_code=exc.status_code,
            title="Cannot qualify this lead",
            message=exc.message,
            back=(f"/leads/{lead.id}", f"Back to {full_name(lead)}"),
        )
    outcome = "created" if done.created else "linked"
    return RedirectResponse(f"/leads/{lead_id}?qualified={outcome}", status_code=303)
