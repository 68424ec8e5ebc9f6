"""Web pages that find and merge duplicate contacts and leads (SPEC B8).

``/duplicates`` starts a search (``capture.duplicates.start_job``, run by the worker as the
viewer) and shows the viewer's latest one: its state, polled while it runs, then the pairs
the viewer may read now. ``/duplicates/merge`` shows two records field by field and merges
one into the other (``capture.merge.merge``, Write on both). A job is the viewer's own:
another user's is the same 404 as a job that does not exist.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.params import PathId, QueryId
from gatherly.capture import duplicates, merge
from gatherly.capture.models import DONE, FAILED, QUEUED, RUNNING, DuplicateJob
from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import PersonMixin
from gatherly.core.exceptions import Forbidden, ValidationFailed
from gatherly.jobs.queue import app_jobs
from gatherly.web.contacts import FIELD_WORDS, full_name, merged_query, owners_of
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
)
from gatherly.web.people import CONTACTS, LEADS, PersonKind, custom_text

router = APIRouter(include_in_schema=False)

KINDS = {"contact": CONTACTS, "lead": LEADS}
PAGE_SIZE = 50
STATES = {
    QUEUED: "Waiting to start",
    RUNNING: "Looking for duplicates",
    DONE: "Done",
    FAILED: "Failed",
}
MERGE_FIELDS = (*merge.FIELDS, "custom")


def _kind(record_type: str) -> PersonKind:
    found = KINDS.get(record_type)
    if found is None:
        raise ValidationFailed("Choose contacts or leads.", field="record_type")
    return found


# ------------------------------------------------------------------ the search and its pairs


def _job_context(
    db: Session, viewer: Viewer, job: DuplicateJob | None, cursor: str = ""
) -> dict[str, Any]:
    """A job's state and, once done, a page of its pairs the viewer may read now."""
    context: dict[str, Any] = {"job": job, "pairs": [], "next_url": None, "cursor": cursor}
    context["running"] = job is not None and job.state in (QUEUED, RUNNING)
    if job is None or job.state != DONE:
        return context
    try:
        _job, found = duplicates.pairs(
            db=db, principal=viewer.principal, job_id=job.id, cursor=cursor or None, limit=PAGE_SIZE
        )
    except ValidationFailed as exc:
        context["cursor_error"] = exc.message
        return context
    items = list(found.items)
    records = [p.record for p in items] + [p.duplicate for p in items]
    context.update(
        pairs=items,
        owners=owners_of(db, viewer, records),
        total=duplicates.count_pairs(db=db, principal=viewer.principal, job_id=job.id),
        next_url=(
            f"/duplicates/jobs/{job.id}?{urlencode({'cursor': found.next_cursor})}"
            if found.next_cursor
            else None
        ),
        merge_url=lambda p: (
            "/duplicates/merge?"
            + urlencode(
                {"record_type": job.record_type, "master": p.record.id, "duplicate": p.duplicate.id}
            )
        ),
    )
    return context


def _page(
    request: Request,
    db: Session,
    viewer: Viewer,
    pk: PersonKind,
    job: DuplicateJob | None,
    *,
    cursor: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    fragment = bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )
    return page(
        request,
        "duplicates/_job.html" if fragment else "duplicates/page.html",
        viewer,
        status_code=status_code,
        pk=pk,
        kinds=KINDS,
        rules=[
            r
            for r in matching.list_rules(
                db=db, principal=viewer.principal, record_type=pk.kind.record_type
            )
            if r.published
        ],
        describe=lambda r: matching.Rule.of(r).describe(),
        states=STATES,
        error=error,
        full_name=full_name,
        **_job_context(db, viewer, job, cursor),
    )


@router.get("/duplicates")
def duplicates_page(
    request: Request, db: WebDb, viewer: CurrentViewer, record_type: str = "contact"
) -> Response:
    """The viewer's latest search for duplicate contacts (or leads), and a button to start one."""
    pk = _kind(record_type)
    job = duplicates.latest_job(db=db, principal=viewer.principal, record_type=record_type)
    return _page(request, db, viewer, pk, job)


@router.post("/duplicates")
def start_search(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """Queue a search among the records the viewer may read; the worker carries it out."""
    record_type = form_text(form, "record_type")
    pk = _kind(record_type)
    try:
        job = duplicates.start_job(
            db=db,
            principal=viewer.principal,
            record_type=record_type,
            queue=app_jobs(request.app),
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        latest = duplicates.latest_job(db=db, principal=viewer.principal, record_type=record_type)
        message = exc.message[:1].upper() + exc.message[1:]
        if exc.field == "rule_ids":  # none published: say who can change that, and where
            message = (
                f"No {pk.noun} duplicate detection rule is published, so there is nothing to "
                "compare by. An administrator can publish one under Admin › Duplicate rules."
            )
        return _page(request, db, viewer, pk, latest, error=message, status_code=exc.status_code)
    return RedirectResponse(f"/duplicates/jobs/{job.id}", status_code=303)


@router.get("/duplicates/jobs/{job_id}")
def job_page(
    job_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = ""
) -> Response:
    """One of the viewer's searches (htmx asks for the state area alone while it runs)."""
    job = duplicates.get_job(db=db, principal=viewer.principal, job_id=job_id)
    return _page(request, db, viewer, _kind(job.record_type), job, cursor=cursor[:500])


# ------------------------------------------------------------------ merge


def _record(
    db: Session, viewer: Viewer, pk: PersonKind, record_id: int | None, which: str
) -> PersonMixin:
    if record_id is None:
        raise ValidationFailed(
            f"Choose the {which} record: open the merge from a pair on the Duplicates page.",
            field=which,
        )
    return contact_service.get(
        db=db,
        principal=viewer.principal,
        kind=pk.kind,
        record_id=record_id,
        privilege=Privilege.WRITE,
    )


def _value_text(record: PersonMixin, name: str) -> str:
    if name == "custom":
        return custom_text(record.custom)
    return str(getattr(record, name) or "")


def _field_rows(master: PersonMixin, other: PersonMixin) -> list[dict[str, Any]]:
    """Each field of the two records and what a merge does with it."""
    rows = []
    for name in MERGE_FIELDS:
        mine, theirs = _value_text(master, name), _value_text(other, name)
        if name == "custom":
            clash = sorted(set(master.custom) & set(other.custom))
            same = all(master.custom[k] == other.custom[k] for k in clash)
            choose = bool(clash) and not same
            note = (
                "Both sets are kept."
                if not choose
                else "Both sets are kept; choose whose value wins where both have one."
            )
        else:
            choose = bool(mine) and bool(theirs) and mine != theirs
            note = ""
            if not mine and theirs:
                note = "Filled from the duplicate: the master's is blank."
            elif mine == theirs and mine:
                note = "The same in both."
        rows.append(
            {
                "name": name,
                "label": FIELD_WORDS[name].capitalize(),
                "master": mine,
                "duplicate": theirs,
                "choose": choose,
                "note": note,
            }
        )
    return rows


@router.get("/duplicates/merge")
def merge_form(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    record_type: str = "contact",
    master: QueryId = None,
    duplicate: QueryId = None,
) -> Response:
    """Two records side by side, a choice per field, and the button that merges them."""
    pk = _kind(record_type)
    kept = _record(db, viewer, pk, master, "master")
    other = _record(db, viewer, pk, duplicate, "duplicate")
    if kept.id == other.id:
        raise ValidationFailed("A record cannot be merged into itself.", field="duplicate")
    swap = urlencode({"record_type": record_type, "master": other.id, "duplicate": kept.id})
    return page(
        request,
        "duplicates/merge.html",
        viewer,
        pk=pk,
        master=kept,
        duplicate=other,
        master_name=full_name(kept),
        duplicate_name=full_name(other),
        owners=owners_of(db, viewer, [kept, other]),
        rows=_field_rows(kept, other),
        swap_url=f"/duplicates/merge?{swap}",
    )


@router.post("/duplicates/merge")
def merge_records(db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked) -> Response:
    """Merge the duplicate into the master, then open the master with what moved."""
    record_type = form_text(form, "record_type")
    pk = _kind(record_type)
    ids = {}
    for which in ("master", "duplicate"):
        text = form_text(form, which)
        if not (text.isascii() and text.isdigit() and len(text) < 12):
            raise ValidationFailed(f"The {which} must be a record's number.", field=which)
        ids[which] = int(text)
    take = [name for name in MERGE_FIELDS if form_text(form, f"keep_{name}") == "duplicate"]
    done = merge.merge(
        db=db,
        principal=viewer.principal,
        record_type=record_type,
        master_id=ids["master"],
        duplicate_id=ids["duplicate"],
        take=take,
    )
    query = merged_query(done.merged_id, done.moved, done.fields)
    return RedirectResponse(f"{pk.path}/{done.master.id}?{query}", status_code=303)
