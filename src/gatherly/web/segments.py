"""Web pages: segments and marketing lists (SPEC B5, B13).

Every page reads and writes through ``segment.service`` with the viewer's principal, making
the same calls and checks as the REST routes in ``segment/router.py``: a segment or list the
viewer may not read is a 404 page, and members (and their counts) are only ever the contacts
the viewer may read.

The criteria builder, a plain form of rows with a JSON editor for what rows cannot show,
is ``web/criteria_form.py``; the pages here save, preview and list what it builds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.api.params import PathId, QueryId
from gatherly.api.responses import csv_download
from gatherly.contact import service as contact_service
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    GatherlyError,
    NotFound,
    ValidationFailed,
)
from gatherly.core.ids import MAX_ID
from gatherly.event import service as event_service
from gatherly.event.models import MarketingEvent
from gatherly.org import service as org_service
from gatherly.scoring import service as scoring_service
from gatherly.segment import criteria as crit
from gatherly.segment import service
from gatherly.segment.models import DYNAMIC, SCOPE_BUSINESS_UNIT, SCOPE_ORGANIZATION, Segment
from gatherly.segment.schemas import ListUpdate
from gatherly.web import bulk
from gatherly.web.criteria_form import (
    FIELD_LABELS,
    OP_LABELS,
    PARTICIPATION_LABELS,
    SCORE_TEST_LABELS,
    Builder,
    Row,
    apply_action,
    as_int,
    read_builder,
)
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    may,
    page,
    parse_form,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CHOICES = 200  # events, lists and scoring models the builder's selects offer (newest first)
MINUTE_COLUMNS = 3  # events named by the criteria shown as minutes beside the members
MAX_UPLOAD = 20_000_000  # bytes, as the API's CsvIn allows
# Form fields arrive as text and are checked here, so an error can name the builder row.
Text = Annotated[str, Form()]

SCOPE_LABELS = {SCOPE_BUSINESS_UNIT: "Business unit", SCOPE_ORGANIZATION: "Organization"}
_ROW_PATH = re.compile(r"^criteria\.(?:all|any)\[(\d+)\]")


def _search(q: str | None) -> str | None:
    # NUL dropped: PostgreSQL cannot compare text holding one.
    return (q or "").replace("\x00", "").strip()[:200] or None


# ---------------------------------------------------------------- the segment form


@dataclass
class SegmentForm:
    """What the segment form holds."""

    name: str = ""
    description: str = ""
    scope: str = SCOPE_BUSINESS_UNIT
    builder: Builder = field(default_factory=Builder)
    action: str = "save"

    @classmethod
    def read(cls, form: FormData) -> SegmentForm:
        scope = str(form.get("scope") or SCOPE_BUSINESS_UNIT)
        return cls(
            name=str(form.get("name") or "").strip(),
            description=str(form.get("description") or "").strip(),
            scope=scope,
            builder=read_builder(form),
            action=str(form.get("action") or "save"),
        )

    def check(self) -> dict[str, str]:
        return _naming_errors(self.name, self.description)


def _named(name: str, description: str) -> tuple[str, str, dict[str, str]]:
    """A list's or segment's name and description as typed, trimmed, with what is wrong."""
    name, description = name.strip(), description.strip()
    return name, description, _naming_errors(name, description)


def _naming_errors(name: str, description: str) -> dict[str, str]:
    """What the API's schema refuses in a name or description (segments and lists share
    the types; the services trust their callers here)."""
    try:
        parse_form(ListUpdate, name=name, description=description)
    except ValidationFailed as exc:
        return {exc.field or "name": exc.message}
    return {} if name else {"name": "Give it a name."}


def _errors(exc: GatherlyError, builder: Builder) -> dict[str, str]:
    """Where a service error shows: next to its row, the criteria, the name or the scope."""
    where = exc.field or "form"
    found = _ROW_PATH.match(where)
    if found and not builder.json_only:
        return {f"row-{found.group(1)}": exc.message}
    if where.startswith("criteria"):
        return {"criteria": exc.message}
    return {where if where in ("name", "scope", "description") else "form": exc.message}


def _preview(
    db: Session, viewer: Viewer, builder: Builder, scope: str, segment: Segment | None
) -> dict[str, Any]:
    """The live count as the preview shows it: what the viewer may see, or why not.

    A saved segment's edit is previewed in its owner's BU, as its refreshes will be.
    """
    if not builder.json_only and not builder.rows:
        return {"preview_hint": "Add a condition to see who is in the segment."}
    try:
        found = service.preview(
            db=db,
            principal=viewer.principal,
            criteria=builder.tree(),
            scope=scope,
            segment_id=segment.id if segment else None,
            limit=0,
        )
    except (ValidationFailed, Forbidden, NotFound) as exc:
        return {"preview_error": exc.message}
    return {"visible": found.visible, "applied": found.scope}


def _events(db: Session, principal: access.Principal, q: str) -> list[MarketingEvent]:
    """The events the builder offers: those whose name holds ``q`` (all when empty), newest
    first, among the events the viewer may read."""
    flt = event_service.EventFilter(q=_search(q))
    return list(event_service.list_events(db=db, principal=principal, flt=flt, limit=CHOICES).items)


def _with_chosen(
    db: Session, principal: access.Principal, events: list[MarketingEvent], row: Row
) -> list[MarketingEvent]:
    """``events`` and the row's chosen event when the search left it out (if the viewer may
    read it; otherwise the page shows its id)."""
    chosen = as_int(row.event_id)
    if chosen is None or any(e.id == chosen for e in events):
        return events
    try:
        return [event_service.get_event(db=db, principal=principal, event_id=chosen), *events]
    except NotFound:
        return events


def _form_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    state: SegmentForm,
    segment: Segment | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    errors = errors or {}
    principal = viewer.principal
    scopes = [SCOPE_BUSINESS_UNIT]
    if service.may_choose_organization(principal) or (
        segment and segment.scope != SCOPE_BUSINESS_UNIT
    ):
        scopes.append(SCOPE_ORGANIZATION)
    lists = list(service.list_lists(db=db, principal=principal, limit=CHOICES).items)
    builder = state.builder
    recent: list[MarketingEvent] | None = None  # read once, for every row without a search
    event_choices: dict[int, list[MarketingEvent]] = {}
    for i, row in enumerate(builder.rows):
        if row.kind != "participation":
            continue
        if row.event_q:
            found = _events(db, principal, row.event_q)
        else:
            recent = found = recent if recent is not None else _events(db, principal, "")
        event_choices[i] = _with_chosen(db, principal, found, row)
    model_choices: list[Any] = []
    if any(row.kind == "score" for row in builder.rows):
        model_choices = list(
            scoring_service.list_models(db=db, principal=principal, limit=CHOICES).items
        )
    dynamic = segment is None or segment.kind == DYNAMIC
    count = {}
    if dynamic and not any(k == "criteria" or k.startswith("row-") for k in errors):
        count = _preview(db, viewer, builder, state.scope, segment)
    return page(
        request,
        "segments/segment_form.html",
        viewer,
        status_code=status_code,
        form=state,
        b=builder,
        segment=segment,
        dynamic=dynamic,
        errors=errors,
        scopes=scopes,
        scoping_on=service.scoping_on(db=db),
        event_choices=event_choices,
        lists=lists,
        model_choices=model_choices,
        **count,
        **_labels(),
    )


def _labels() -> dict[str, Any]:
    return {
        "field_labels": FIELD_LABELS,
        "op_labels": OP_LABELS,
        "participation_labels": PARTICIPATION_LABELS,
        "score_test_labels": SCORE_TEST_LABELS,
        "scope_labels": SCOPE_LABELS,
    }


def _save(
    request: Request,
    db: Session,
    viewer: Viewer,
    form: FormData,
    segment: Segment | None,
) -> Response:
    state = SegmentForm.read(form)
    dynamic = segment is None or segment.kind == DYNAMIC
    if state.action != "save":
        state.builder = apply_action(state.builder, state.action)
        return _form_page(request, db, viewer, state, segment)
    errors = state.check()
    if dynamic and not state.builder.json_only and not state.builder.rows:
        errors["criteria"] = "Add at least one condition: who should be in the segment?"
    if not errors:
        try:
            criteria = state.builder.tree() if dynamic else service.UNSET
            if segment is None:
                saved = service.create_segment(
                    db=db,
                    principal=viewer.principal,
                    name=state.name,
                    kind=DYNAMIC,
                    criteria=criteria,
                    scope=state.scope,
                    description=state.description,
                )
            else:
                saved = service.update_segment(
                    db=db,
                    principal=viewer.principal,
                    segment_id=segment.id,
                    name=state.name,
                    description=state.description,
                    scope=state.scope,
                    criteria=service.UNSET if criteria == segment.criteria else criteria,
                )
        except (ValidationFailed, Forbidden) as exc:
            db.rollback()  # nothing half-changed is committed with the error page
            errors = _errors(exc, state.builder)
        else:
            return RedirectResponse(f"/segments/{saved.id}", status_code=303)
    return _form_page(request, db, viewer, state, segment, errors, status_code=422)


# ---------------------------------------------------------------- segment routes


@router.get("/segments")
def segments_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    principal = viewer.principal
    found = service.list_segments(
        db=db, principal=principal, q=_search(q), cursor=cursor, limit=PAGE_SIZE
    )
    rows = [
        {
            "segment": s,
            "applied": service.effective_scope(db=db, segment=s),
            "counts": service.segment_counts(db=db, principal=principal, segment=s),
        }
        for s in found.items
    ]
    return page(
        request,
        "segments/segments.html",
        viewer,
        rows=rows,
        count=service.count_segments(db=db, principal=principal, q=_search(q)),
        q=q or "",
        cursor=cursor,
        next_cursor=found.next_cursor,
        **_labels(),
    )


@router.get("/segments/new")
def new_segment(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    # While scoping is off every segment includes all business units: say so by default
    # for those who may choose organization scope.
    state = SegmentForm()
    if not service.scoping_on(db=db) and service.may_choose_organization(viewer.principal):
        state.scope = SCOPE_ORGANIZATION
    return _form_page(request, db, viewer, state)


@router.post("/segments/preview")
def preview_count(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    """The live "members you can see" count for the form as it stands (an htmx fragment)."""
    state = SegmentForm.read(form)
    segment_id = as_int(form.get("segment_id"))
    segment = (
        service.get_segment(db=db, principal=viewer.principal, segment_id=segment_id)
        if segment_id
        else None
    )
    count = _preview(db, viewer, state.builder, state.scope, segment)
    return page(request, "segments/_count.html", viewer, b=state.builder, **count)


@router.post("/segments")
def create_segment(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    return _save(request, db, viewer, form, None)


@router.get("/segments/{segment_id}")
def segment_page(
    segment_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    cursor: str | None = None,
) -> Response:
    return _segment_page(request, db, viewer, segment_id, cursor)


def _segment_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    segment_id: int,
    cursor: str | None = None,
    refreshed: dict[str, Any] | None = None,
) -> Response:
    principal = viewer.principal
    segment = service.get_segment(db=db, principal=principal, segment_id=segment_id)
    found = service.members(
        db=db, principal=principal, segment_id=segment_id, cursor=cursor, limit=PAGE_SIZE
    )
    parsed = crit.parse(segment.criteria) if segment.criteria is not None else None
    names = service.reference_names(db=db, principal=principal, criteria=parsed) if parsed else {}
    return page(
        request,
        "segments/segment.html",
        viewer,
        segment=segment,
        members=found,
        minutes=_minute_columns(db, principal, parsed, names, [c.id for c in found.page.items]),
        applied=service.effective_scope(db=db, segment=segment),
        business_unit=org_service.owner_names(
            db=db, principal=viewer.principal, records=[segment]
        ).business_unit(segment),
        summary=parsed.root if parsed else None,
        names=names,
        criteria_json=json.dumps(segment.criteria, indent=2),
        cursor=cursor,
        refreshed=refreshed,
        **bulk.bulk_context(db, viewer),
        **may(db, viewer, service.SEGMENT, segment),
        **_labels(),
    )


@dataclass(frozen=True)
class MinutesColumn:
    """Minutes each member attended one event the criteria name (shown beside members)."""

    event_id: int
    event_name: str
    minutes: dict[int, int]  # contact id -> whole minutes; absent: did not attend


def _minute_columns(
    db: Session,
    principal: access.Principal,
    parsed: crit.Criteria | None,
    names: crit.Names,
    contact_ids: list[int],
) -> list[MinutesColumn]:
    """A column per event the criteria name (up to three), among those the viewer may read."""
    if parsed is None:
        return []
    events = [i for i in sorted(parsed.event_ids) if ("event", i) in names][:MINUTE_COLUMNS]
    seconds = event_service.seconds_attended(
        db=db, principal=principal, event_ids=events, contact_ids=contact_ids
    )
    return [
        MinutesColumn(
            event_id=event_id,
            event_name=names[("event", event_id)],
            minutes={c: round(s / 60) for (c, e), s in seconds.items() if e == event_id},
        )
        for event_id in events
    ]


@router.get("/segments/{segment_id}/explain")
def explain_page(
    segment_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    contact_id: QueryId = None,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Why a contact is in the segment or not, condition by condition; or, with ``q``, the
    contacts to choose from (only those the viewer may read)."""
    principal = viewer.principal
    segment = service.get_segment(db=db, principal=principal, segment_id=segment_id)
    found: list[Any] = []
    explained = contact = None
    if contact_id is not None:
        explained = service.explain(
            db=db, principal=principal, segment_id=segment_id, contact_id=contact_id
        )
        contact = contact_service.get(
            db=db, principal=principal, kind=contact_service.CONTACT, record_id=contact_id
        )
    elif _search(q):
        flt = contact_service.ListFilter(q=_search(q))
        found = list(
            contact_service.list_records(
                db=db, principal=principal, kind=contact_service.CONTACT, flt=flt, limit=20
            ).items
        )
    bus = org_service.owner_names(
        db=db, principal=principal, records=[segment, *([contact] if contact else [])]
    )
    return page(
        request,
        "segments/explain.html",
        viewer,
        segment=segment,
        q=q,
        found=found,
        contact=contact,
        explained=explained,
        segment_bu=bus.business_unit(segment),
        contact_bu=bus.business_unit(contact) if contact else "",
        **_labels(),
    )


@router.get("/segments/{segment_id}/edit")
def edit_segment(
    segment_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    segment = service.get_segment(
        db=db, principal=viewer.principal, segment_id=segment_id, privilege=Privilege.WRITE
    )
    state = SegmentForm(
        name=segment.name,
        description=segment.description,
        scope=segment.scope,
        builder=Builder.from_tree(segment.criteria) if segment.kind == DYNAMIC else Builder(),
    )
    return _form_page(request, db, viewer, state, segment)


@router.post("/segments/{segment_id}")
def update_segment(
    segment_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    form: FormFields,
) -> Response:
    segment = service.get_segment(
        db=db, principal=viewer.principal, segment_id=segment_id, privilege=Privilege.WRITE
    )
    return _save(request, db, viewer, form, segment)


@router.post("/segments/{segment_id}/refresh")
def refresh_segment(
    segment_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """Refresh now (synchronous), then the page with what changed as the viewer sees it."""
    principal = viewer.principal
    before = service.segment_counts(
        db=db,
        principal=principal,
        segment=service.get_segment(db=db, principal=principal, segment_id=segment_id),
    )
    segment, result = service.refresh_for(db=db, principal=principal, segment_id=segment_id)
    after = service.segment_counts(db=db, principal=principal, segment=segment)
    refreshed = {
        "before": before.visible,
        "after": after.visible,
        "total": after.total,
        # Adds and removes count every member: shown only where totals may be (B5).
        "result": result if after.total is not None else None,
        "seconds": None if result is None else result.seconds,
        "static": result is None,
    }
    return _segment_page(request, db, viewer, segment_id, refreshed=refreshed)


@router.get("/segments/{segment_id}/members.csv")
def export_members(
    segment_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """The segment's CSV export for the signed-in viewer (the API's service, same checks)."""
    return _export(request, db, viewer, "segment", segment_id)


@router.get("/segments/{segment_id}/delete")
def confirm_delete_segment(
    segment_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    segment = service.get_segment(
        db=db, principal=viewer.principal, segment_id=segment_id, privilege=Privilege.DELETE
    )
    return page(
        request,
        "segments/confirm_delete.html",
        viewer,
        what="segment",
        name=segment.name,
        action=f"/segments/{segment.id}/delete",
        back=f"/segments/{segment.id}",
    )


@router.post("/segments/{segment_id}/delete")
def delete_segment(
    segment_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    service.delete_segment(db=db, principal=viewer.principal, segment_id=segment_id)
    return RedirectResponse("/segments", status_code=303)


# ---------------------------------------------------------------- marketing lists


def _lists_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    q: str | None = None,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    principal = viewer.principal
    found = service.list_lists(
        db=db, principal=principal, q=_search(q), cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "segments/lists.html",
        viewer,
        status_code=status_code,
        lists=found.items,
        count=service.count_lists(db=db, principal=principal, q=_search(q)),
        q=q or "",
        cursor=cursor,
        next_cursor=found.next_cursor,
        values=values or {},
        errors=errors or {},
    )


@router.get("/lists")
def lists_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    return _lists_page(request, db, viewer, q, cursor)


@router.post("/lists")
def create_list(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    name: Text = "",
    description: Text = "",
) -> Response:
    name, description, errors = _named(name, description)
    if not errors:
        try:
            row = service.create_list(
                db=db, principal=viewer.principal, name=name, description=description
            )
        except (ValidationFailed, Forbidden) as exc:
            db.rollback()
            errors = {"form": exc.message}
        else:
            return RedirectResponse(f"/lists/{row.id}", status_code=303)
    values = {"name": name, "description": description}
    return _lists_page(request, db, viewer, values=values, errors=errors, status_code=422)


def _list_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    list_id: int,
    cursor: str | None = None,
    *,
    report: service.MembershipChange | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    principal = viewer.principal
    row = service.get_list(db=db, principal=principal, list_id=list_id)
    members, visible = service.list_members(
        db=db, principal=principal, list_id=list_id, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "segments/list.html",
        viewer,
        status_code=status_code,
        mlist=row,
        members=members,
        visible=visible,
        business_unit=org_service.owner_names(
            db=db, principal=viewer.principal, records=[row]
        ).business_unit(row),
        cursor=cursor,
        **may(db, viewer, service.LIST, row),
        report=report,
        values=values or {},
        errors=errors or {},
    )


@router.get("/lists/{list_id}/members.csv")
def export_list_members(
    list_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """The list's CSV export for the signed-in viewer (the API's service, same checks)."""
    return _export(request, db, viewer, "list", list_id)


def _export(
    request: Request,
    db: Session,
    viewer: Viewer,
    kind: Literal["segment", "list"],
    record_id: int,
) -> StreamingResponse:
    factory = request.app.state.session_factory
    return csv_download(
        service.export_members(
            db=db,
            principal=viewer.principal,
            kind=kind,
            record_id=record_id,
            session_factory=factory,
        )
    )


@router.get("/lists/{list_id}")
def list_page(
    list_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, cursor: str | None = None
) -> Response:
    return _list_page(request, db, viewer, list_id, cursor)


@router.post("/lists/{list_id}")
def rename_list(
    list_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    name: Text = "",
    description: Text = "",
) -> Response:
    name, description, errors = _named(name, description)
    if not errors:
        service.update_list(
            db=db, principal=viewer.principal, list_id=list_id, name=name, description=description
        )
        return RedirectResponse(f"/lists/{list_id}", status_code=303)
    values = {"name": name, "description": description}
    return _list_page(request, db, viewer, list_id, values=values, errors=errors, status_code=422)


def _import(
    request: Request, db: Session, viewer: Viewer, list_id: int, text: str, where: str
) -> Response:
    try:
        report = service.import_csv(db=db, principal=viewer.principal, list_id=list_id, text=text)
    except ValidationFailed as exc:
        db.rollback()
        return _list_page(
            request, db, viewer, list_id, errors={where: exc.message}, status_code=422
        )
    return _list_page(request, db, viewer, list_id, report=report)


@router.post("/lists/{list_id}/add")
def add_by_email(
    list_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    emails: Text = "",
) -> Response:
    """Add contacts by email: the import's rules and report, one email per row."""
    found = [e for e in re.split(r"[\s,;]+", emails) if e]
    if not found:
        service.get_list(
            db=db, principal=viewer.principal, list_id=list_id, privilege=Privilege.WRITE
        )
        return _list_page(
            request,
            db,
            viewer,
            list_id,
            errors={"emails": "Enter at least one email address."},
            status_code=422,
        )
    return _import(request, db, viewer, list_id, "email\n" + "\n".join(found), "emails")


@router.post("/lists/{list_id}/import")
def import_list(
    list_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    data = file.file.read(MAX_UPLOAD + 1) if file is not None else b""
    problem = None
    if not data:
        problem = "Choose a CSV file with an email column."
    elif len(data) > MAX_UPLOAD:
        problem = "The file is larger than 20 MB; split it into smaller files."
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = "The file is not UTF-8 text; save it as CSV (UTF-8) and try again."
    if problem is not None:
        service.get_list(
            db=db, principal=viewer.principal, list_id=list_id, privilege=Privilege.WRITE
        )
        return _list_page(request, db, viewer, list_id, errors={"file": problem}, status_code=422)
    return _import(request, db, viewer, list_id, text, "file")


@router.post("/lists/{list_id}/remove")
def remove_member(
    list_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    contact_id: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    service.remove_from_list(
        db=db, principal=viewer.principal, list_id=list_id, contact_ids=[contact_id]
    )
    return RedirectResponse(f"/lists/{list_id}", status_code=303)


@router.get("/lists/{list_id}/delete")
def confirm_delete_list(
    list_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    row = service.get_list(
        db=db, principal=viewer.principal, list_id=list_id, privilege=Privilege.DELETE
    )
    return _confirm_list(request, viewer, row.id, row.name)


def _confirm_list(
    request: Request, viewer: Viewer, list_id: int, name: str, error: str | None = None
) -> Response:
    return page(
        request,
        "segments/confirm_delete.html",
        viewer,
        status_code=409 if error else 200,
        what="list",
        name=name,
        action=f"/lists/{list_id}/delete",
        back=f"/lists/{list_id}",
        error=error,
    )


@router.post("/lists/{list_id}/delete")
def delete_list(
    list_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    try:
        service.delete_list(db=db, principal=viewer.principal, list_id=list_id)
    except Conflict as exc:
        db.rollback()
        row = service.get_list(db=db, principal=viewer.principal, list_id=list_id)
        return _confirm_list(request, viewer, row.id, row.name, exc.message)
    return RedirectResponse("/lists", status_code=303)
