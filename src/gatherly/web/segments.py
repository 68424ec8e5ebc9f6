"""Web pages: segments and marketing lists (SPEC B5, B13).

Every page reads and writes through ``segment.service`` with the viewer's principal, making
the same calls and checks as the REST routes in ``segment/router.py``: a segment or list the
viewer may not read is a 404 page, and members (and their counts) are only ever the contacts
the viewer may read.

The criteria builder is a plain form: "match all / any of" and rows of conditions (a contact
field, an event participation, or a marketing list). Buttons named ``action`` add or remove
rows and re-render the form without saving; ``save`` saves. "Advanced (JSON)" shows the tree
the rows make (kept up to date by the live count) and switches the form to a JSON editor; a
tree the rows cannot show exactly (nested groups, several fields in one node …) is edited as
JSON only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.api.params import PathId
from gatherly.api.responses import csv_download
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    GatherlyError,
    NotFound,
    ValidationFailed,
)
from gatherly.core.ids import MAX_ID
from gatherly.event import service as event_service
from gatherly.org import service as org_service
from gatherly.segment import criteria as crit
from gatherly.segment import service
from gatherly.segment.models import DYNAMIC, SCOPE_BUSINESS_UNIT, SCOPE_ORGANIZATION, Segment
from gatherly.segment.schemas import ListUpdate
from gatherly.web.pages import CsrfChecked, CurrentViewer, Viewer, WebDb, page, parse_form

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CHOICES = 200  # events and lists offered in the builder's selects (newest first)
MAX_ROWS = 50
MAX_UPLOAD = 20_000_000  # bytes, as the API's CsvIn allows
# Form fields arrive as text and are checked here, so an error can name the builder row.
Text = Annotated[str, Form()]

FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "job_title": "Job title",
    "phone": "Phone",
    "country": "Country (ISO code)",
    "origin": "Origin",
    "created_at": "Created",
    "modified_at": "Modified",
    "business_unit_id": "Business unit id",
    "id": "Contact id",
    "custom": "Custom property…",
}
OP_LABELS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "in": "is one of (comma-separated)",
    "not_in": "is none of (comma-separated)",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "empty": "is empty (true/false)",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between (low, high)",
    "before": "is before",
    "after": "is on or after",
    "on": "is on the day",
    "in_last_days": "in the last N days",
    "in_next_days": "in the next N days",
    "more_than_days_ago": "more than N days ago",
}
PARTICIPATION_LABELS = {
    "registered": "registered for",
    "attended": "attended",
    "cancelled": "cancelled their registration for",
    "not_attended": "registered for but did not attend",
}
SCOPE_LABELS = {SCOPE_BUSINESS_UNIT: "Business unit", SCOPE_ORGANIZATION: "Organization"}
_ROW_PATH = re.compile(r"^criteria\.(?:all|any)\[(\d+)\]")


def _search(q: str | None) -> str | None:
    # NUL dropped: PostgreSQL cannot compare text holding one.
    return (q or "").replace("\x00", "").strip()[:200] or None


# ---------------------------------------------------------------- the criteria builder


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    return "" if value is None else str(value)


def _whole(text: str) -> int | None:
    """``text`` as a whole number when it is ASCII digits, else None: ``"²".isdigit()`` holds
    but ``int`` refuses it, as it does thousands of digits (a number too large for an id is
    left to the service, which refuses it by name)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 30 else None


def _number(text: str) -> Any:
    """A typed number when the text is one; otherwise the text, for the service to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@dataclass
class Row:
    """One condition of the builder, as the form holds it (text in, typed JSON out)."""

    kind: str = "contact"  # contact, participation or list
    field: str = "country"  # a contact field, or "custom" with ``prop``
    prop: str = ""
    op: str = "equals"
    value: str = ""
    participation: str = "attended"
    event_id: str = ""  # "" is any event
    list_id: str = ""

    @property
    def field_kind(self) -> str:
        if self.field == "custom":
            return "custom"
        spec = crit.CONTACT_FIELDS.get(self.field)
        return spec.kind if spec else "string"

    @property
    def ops(self) -> tuple[str, ...]:
        """The operators that apply to this row's field."""
        if self.field == "custom":
            return crit.CUSTOM_OPS
        spec = crit.CONTACT_FIELDS.get(self.field)
        return spec.ops if spec else crit.STRING_OPS

    def _scalar(self, text: str) -> Any:
        return _number(text) if self.field_kind == "number" else text

    def _typed(self) -> Any:
        text = self.value.strip()
        if self.op == "empty":
            return {"": True, "true": True, "yes": True, "false": False, "no": False}.get(
                text.lower(), text
            )
        if self.op in ("in", "not_in", "between"):
            return [self._scalar(part.strip()) for part in text.split(",") if part.strip()]
        if self.op in crit.RELATIVE_OPS:
            return _number(text)
        if self.field_kind == "custom" and self.op in ("gt", "gte", "lt", "lte"):
            return _number(text)
        return self._scalar(text)

    def tree(self) -> dict[str, Any]:
        """This row as a criteria node."""
        if self.kind == "list":
            list_id = _whole(self.list_id)
            return {"list": self.list_id if list_id is None else list_id}
        if self.kind == "participation":
            node: dict[str, Any] = {"participation": self.participation}
            if self.event_id:
                event_id = _whole(self.event_id)
                node["event"] = {"id": self.event_id if event_id is None else event_id}
            return node
        name = f"custom.{self.prop.strip()}" if self.field == "custom" else self.field
        return {"contact": {name: {self.op: self._typed()}}}

    @classmethod
    def from_node(cls, node: Any) -> Row | None:
        """The row showing a criteria node, or None when a row cannot show it."""
        if not isinstance(node, dict):
            return None
        if set(node) == {"list"}:
            return cls(kind="list", list_id=_as_text(node["list"]))
        if "participation" in node and set(node) <= {"participation", "event"}:
            event = node.get("event")
            event_id = event.get("id") if isinstance(event, dict) and set(event) == {"id"} else None
            if event is not None and event_id is None:
                return None
            return cls(
                kind="participation",
                participation=_as_text(node["participation"]),
                event_id=_as_text(event_id),
            )
        fields = node.get("contact")
        if set(node) != {"contact"} or not isinstance(fields, dict) or len(fields) != 1:
            return None
        name, condition = next(iter(fields.items()))
        op, value = (
            next(iter(condition.items()))
            if isinstance(condition, dict) and len(condition) == 1
            else ("equals", condition)
        )
        if str(name).startswith("custom."):
            return cls(field="custom", prop=str(name)[7:], op=str(op), value=_as_text(value))
        return cls(field=str(name), op=str(op), value=_as_text(value))


@dataclass
class Builder:
    """The criteria part of the form: rows under all/any, or a JSON text (``json_only``)."""

    match: str = "all"
    rows: list[Row] = field(default_factory=lambda: [Row()])
    json_only: bool = False
    text: str = ""  # the JSON as the person left it (json_only)

    def tree(self) -> Any:
        """The criteria tree (ValidationFailed when the JSON text does not parse)."""
        if not self.json_only:
            return {self.match: [row.tree() for row in self.rows]}
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise ValidationFailed(f"criteria: not valid JSON ({exc})", field="criteria") from exc

    @property
    def json_text(self) -> str:
        """The tree as the "Advanced (JSON)" box shows it."""
        return self.text if self.json_only else json.dumps(self.tree(), indent=2)

    @classmethod
    def from_tree(cls, tree: Any) -> Builder:
        """Rows when they show ``tree`` exactly (checked by a round trip), else JSON only."""
        top = tree if isinstance(tree, dict) and set(tree) in ({"all"}, {"any"}) else None
        match = next(iter(top)) if top else "all"
        children = top[match] if top else [tree]
        if isinstance(children, list) and children and len(children) <= MAX_ROWS:
            rows = [Row.from_node(child) for child in children]
            if all(rows):
                built = cls(match=match, rows=[r for r in rows if r])
                if built.tree() == _normal(tree):
                    return built
        return cls(json_only=True, rows=[], text=json.dumps(tree, indent=2))

    @classmethod
    def from_text(cls, text: str) -> Builder:
        try:
            tree = json.loads(text)
        except ValueError:
            return cls(json_only=True, rows=[], text=text)
        return cls.from_tree(tree)


def _normal(tree: Any) -> Any:
    """``tree`` as the rows write it: a top-level all, and explicit ``equals``."""
    top = tree if isinstance(tree, dict) and set(tree) in ({"all"}, {"any"}) else {"all": [tree]}
    match = next(iter(top))
    out = []
    for node in top[match]:
        if (
            isinstance(node, dict)
            and set(node) == {"contact"}
            and isinstance(node["contact"], dict)
        ):
            node = {
                "contact": {
                    k: v if isinstance(v, dict) else {"equals": v}
                    for k, v in node["contact"].items()
                }
            }
        out.append(node)
    return {match: out}


def _read_builder(form: FormData) -> Builder:
    if form.get("mode") == "json":
        return Builder(json_only=True, rows=[], text=str(form.get("criteria_json") or ""))
    rows = []
    for i in range(min(_int(form.get("row_count")) or 0, MAX_ROWS)):
        got = {
            name: str(form.get(f"row-{i}-{name}") or "").strip()
            for name in ("kind", "field", "prop", "op", "value", "participation", "event", "list")
        }
        rows.append(
            Row(
                kind=got["kind"] or "contact",
                field=got["field"] or "country",
                prop=got["prop"],
                op=got["op"] or "equals",
                value=got["value"],
                participation=got["participation"] or "attended",
                event_id=got["event"],
                list_id=got["list"],
            )
        )
    match = "any" if form.get("match") == "any" else "all"
    return Builder(match=match, rows=rows)


def _int(value: Any) -> int | None:
    number = _whole(str(value or "").strip())
    return number if number is not None and 0 < number <= MAX_ID else None


def _apply(builder: Builder, action: str) -> Builder:
    """A builder button: add or remove a row, or switch between the rows and the JSON."""
    if action == "apply_json":
        return Builder.from_text(builder.json_text)
    if action == "edit_json":
        return Builder(json_only=True, rows=[], text=builder.json_text)
    if builder.json_only:
        return builder
    if action.startswith("add_") and len(builder.rows) < MAX_ROWS:
        kind = action[4:] if action[4:] in ("participation", "list") else "contact"
        builder.rows.append(Row(kind=kind))
    elif action.startswith("remove_"):
        index = _whole(action[7:])
        if index is not None and index < len(builder.rows):
            builder.rows.pop(index)
    for row in builder.rows:
        if row.op not in row.ops:
            row.op = row.ops[0]
    return builder


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
            builder=_read_builder(form),
            action=str(form.get("action") or "save"),
        )

    def check(self) -> dict[str, str]:
        return _naming_errors(self.name, self.description)


def _naming_errors(name: str, description: str) -> dict[str, str]:
    """What the API's schema refuses in a name or description (segments and lists share
    the types; the services trust their callers here)."""
    try:
        parse_form(ListUpdate, name=name, description=description)
    except ValidationFailed as exc:
        return {exc.field or "name": exc.message}
    return {} if name else {"name": "Give it a name."}


async def _form(request: Request) -> FormData:
    return await request.form()


Fields = Annotated[FormData, Depends(_form)]


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
    events = list(event_service.list_events(db=db, principal=principal, limit=CHOICES).items)
    lists = list(service.list_lists(db=db, principal=principal, limit=CHOICES).items)
    builder = state.builder
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
        events=events,
        event_names={str(e.id): e.name for e in events},
        lists=lists,
        **count,
        **_labels(),
    )


def _rights(db: Session, viewer: Viewer, record_type: str, record: Any) -> dict[str, bool]:
    """Which change links to offer (the services check again when they are used)."""
    return {
        f"may_{p.value}": access.can(db, viewer.principal, p, record_type, record)
        for p in (Privilege.WRITE, Privilege.DELETE)
    }


def _labels() -> dict[str, Any]:
    return {
        "field_labels": FIELD_LABELS,
        "op_labels": OP_LABELS,
        "participation_labels": PARTICIPATION_LABELS,
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
        state.builder = _apply(state.builder, state.action)
        return _form_page(request, db, viewer, state, segment)
    errors = state.check()
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
    return _form_page(request, db, viewer, SegmentForm())


@router.post("/segments/preview")
def preview_count(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: Fields
) -> Response:
    """The live "members you can see" count for the form as it stands (an htmx fragment)."""
    state = SegmentForm.read(form)
    segment_id = _int(form.get("segment_id"))
    segment = (
        service.get_segment(db=db, principal=viewer.principal, segment_id=segment_id)
        if segment_id
        else None
    )
    count = _preview(db, viewer, state.builder, state.scope, segment)
    return page(request, "segments/_count.html", viewer, b=state.builder, **count)


@router.post("/segments")
def create_segment(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: Fields
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
    summary = crit.parse(segment.criteria).root if segment.criteria is not None else None
    return page(
        request,
        "segments/segment.html",
        viewer,
        segment=segment,
        members=found,
        applied=service.effective_scope(db=db, segment=segment),
        business_unit=org_service.get_bu(db=db, bu_id=segment.owning_bu_id).name,
        summary=summary,
        criteria_json=json.dumps(segment.criteria, indent=2),
        cursor=cursor,
        refreshed=refreshed,
        **_rights(db, viewer, service.SEGMENT, segment),
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
        builder=Builder.from_tree(segment.criteria)
        if segment.kind == DYNAMIC
        else Builder(rows=[]),
    )
    return _form_page(request, db, viewer, state, segment)


@router.post("/segments/{segment_id}")
def update_segment(
    segment_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    form: Fields,
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
        "before": before["visible"],
        "after": after["visible"],
        "total": after["total"],
        # Adds and removes count every member: shown only where totals may be (B5).
        "result": result if after["total"] is not None else None,
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
    name, description = name.strip(), description.strip()
    errors = _naming_errors(name, description)
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
        business_unit=org_service.get_bu(db=db, bu_id=row.owning_bu_id).name,
        cursor=cursor,
        **_rights(db, viewer, service.LIST, row),
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
    name, description = name.strip(), description.strip()
    errors = _naming_errors(name, description)
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
