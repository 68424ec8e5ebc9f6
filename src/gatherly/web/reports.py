"""Web pages for reports and dashboards (SPEC T6, M): the built-in and saved reports, a
report's chart and table, the builder with its preview, CSV downloads, and dashboards of
pinned reports.

Every page reads and changes through ``report.service`` with the viewer's principal, as
the API and the CLI do: a run counts only what the viewer may read, so the same report
shows each viewer the numbers of their own view, and a report or dashboard the viewer may
not read is the same "Not found" page as one that does not exist. The builder only turns
the form into a definition (and back); the service checks it and names the bad field.

The contact filter is the segment criteria builder (``web/criteria_form.py``, its rows
drawn by ``segments/_builder.html``); the event filter offers a few common event fields,
or the JSON of a filter those fields cannot show.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access.levels import Privilege
from gatherly.api.params import PathId
from gatherly.api.responses import csv_download
from gatherly.core.exceptions import Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.event import service as event_service
from gatherly.event.models import MarketingEvent
from gatherly.report import definition as rd
from gatherly.report import service
from gatherly.report.models import Dashboard, Report
from gatherly.report.schemas import ReportFields
from gatherly.scoring import service as scoring_service
from gatherly.segment import service as segment_service
from gatherly.web.criteria_form import (
    FIELD_LABELS,
    OP_LABELS,
    PARTICIPATION_LABELS,
    SCORE_TEST_LABELS,
    Builder,
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
    form_text,
    may,
    page,
    parse_form,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CHOICES = 200  # events, lists and reports offered in a select (newest first)
GROUPINGS = 2  # group-by selects (the definition takes at most two)
CHARTS = {"bar": "Bars", "line": "Lines", "table": "Table only"}
# Where a record a grouping names has its page.
RECORD_PAGES = {
    "marketing_event": "/events/{}",
    "email_message": "/email/messages/{}",
    "journey": "/journeys/{}",
}
NO_PANEL = "a report you may not read, or one deleted since"
_CONTACT_ROW = re.compile(r"^definition\.filters\.contact\.(?:all|any)\[(\d+)\]")
_GROUPING = re.compile(r"^definition\.group_by\[(\d+)\]")
_EVENT_FIELDS = {"type": "event_type", "name": "event_name", "start": "event_days"}


def _search(q: str | None) -> str | None:
    # NUL dropped: PostgreSQL cannot compare text holding one.
    return (q or "").replace("\x00", "").strip()[:200] or None


# ---------------------------------------------------------------- a run as a page shows it


@dataclass(frozen=True)
class Cell:
    """One cell of a report's table: its text, the page of the record it names, and
    whether it is a number (right-aligned)."""

    text: str
    href: str | None = None
    number: bool = False


@dataclass(frozen=True)
class Shown:
    """A run as the page shows it: the chart (trusted SVG), the table's headings and rows."""

    run: service.Run
    chart: Markup | None
    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]


def _value(measure: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    if measure in rd.RATES:
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def shown(run: service.Run) -> Shown:
    """The run's chart and table: rates as percentages, a grouping that names an event,
    email message or journey linked to its page."""
    result = run.result
    rows = []
    for keys, values in result.rows:
        cells = [
            Cell(
                k.label,
                RECORD_PAGES[k.record_type].format(k.record_id)
                if k.record_type in RECORD_PAGES and k.record_id is not None
                else None,
            )
            for k in keys
        ]
        cells += [
            Cell(_value(m, v), number=True) for m, v in zip(result.measures, values, strict=True)
        ]
        rows.append(cells)
    # charts.svg escapes every text it draws and holds no script (report/charts.py).
    chart = Markup(run.svg) if run.svg else None  # noqa: S704
    numeric = [False] * len(result.dims) + [True] * len(result.measures)
    return Shown(run, chart, result.columns, numeric, rows)


# ---------------------------------------------------------------- the builder's form


def _number(text: str) -> Any:
    """A whole number when the text is one; otherwise the text, for the service to refuse."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else text


@dataclass
class EventFilter:
    """The event filter as the form holds it: type, name contains, start in the last N
    days; or the JSON of a filter those fields cannot show (``json_only``)."""

    type: str = ""
    name: str = ""
    days: str = ""
    json_only: bool = False
    text: str = ""

    def tree(self) -> Any:
        """The ``filters.event`` part of the definition (None for no filter)."""
        if self.json_only:
            if not self.text.strip():
                return None
            try:
                return json.loads(self.text)
            except ValueError as exc:
                raise ValidationFailed(
                    f"the event filter is not valid JSON ({exc})", field="event_filter"
                ) from exc
        out: dict[str, Any] = {}
        if self.type.strip():
            out["type"] = self.type.strip()
        if self.name.strip():
            out["name"] = {"contains": self.name.strip()}
        if self.days.strip():
            out["start"] = {"in_last_days": _number(self.days)}
        return out or None

    @classmethod
    def from_tree(cls, tree: Any) -> EventFilter:
        """The fields showing ``tree``, or its JSON when they cannot."""
        if tree is None:
            return cls()
        found = cls()
        if isinstance(tree, dict) and set(tree) <= set(_EVENT_FIELDS):
            kind, name, start = tree.get("type"), tree.get("name"), tree.get("start")
            if isinstance(kind, dict) and set(kind) == {"equals"}:
                kind = kind["equals"]
            if isinstance(kind, str):
                found.type = kind
            if isinstance(name, dict) and set(name) == {"contains"}:
                found.name = str(name["contains"])
            if isinstance(start, dict) and set(start) == {"in_last_days"}:
                found.days = str(start["in_last_days"])
            if found.tree() == cls._normal(tree):
                return found
        return cls(json_only=True, text=json.dumps(tree, indent=2))

    @staticmethod
    def _normal(tree: dict[str, Any]) -> dict[str, Any]:
        out = dict(tree)
        kind = out.get("type")
        if isinstance(kind, dict) and set(kind) == {"equals"}:
            out["type"] = kind["equals"]
        return out


@dataclass
class ReportForm:
    """What the report builder holds, as typed."""

    name: str = ""
    description: str = ""
    source: str = "events"
    group_by: list[str] = field(default_factory=lambda: [""] * GROUPINGS)
    measures: list[str] = field(default_factory=list)
    chart: str = "bar"
    event: EventFilter = field(default_factory=EventFilter)
    contact: Builder = field(default_factory=Builder)
    action: str = "save"

    @property
    def spec(self) -> rd.Source | None:
        """The chosen source (None when the form names none the definition knows)."""
        return rd.SOURCES.get(self.source)

    def takes(self, name: str) -> bool:
        """Whether the chosen source takes the ``event`` or ``contact`` filter."""
        return self.spec is not None and name in self.spec.filters

    @classmethod
    def new(cls) -> ReportForm:
        source = rd.SOURCES["events"]
        return cls(source=source.key, measures=list(source.measures[:1]))

    @classmethod
    def read(cls, form: FormData) -> ReportForm:
        def text(name: str, limit: int = 2000) -> str:
            return form_text(form, name).strip()[:limit]

        mode = text("event_mode")
        return cls(
            name=text("name", 1000),
            description=text("description", 5000),
            source=text("source", 60),
            group_by=[text(f"group_by_{i}", 60) for i in range(GROUPINGS)],
            measures=[str(m)[:60] for m in form.getlist("measures") if isinstance(m, str)][:20],
            chart=text("chart", 20) or "bar",
            event=EventFilter(
                type=text("event_type", 200),
                name=text("event_name", 200),
                days=text("event_days", 20),
                json_only=mode == "json",
                text=form_text(form, "event_json")[:20_000] if mode == "json" else "",
            ),
            contact=read_builder(form),
            action=text("action", 60) or "save",
        )

    @classmethod
    def of(cls, name: str, description: str, definition: dict[str, Any]) -> ReportForm:
        """The form showing a saved (or built-in) report."""
        filters = definition.get("filters") or {}
        group_by = list(definition.get("group_by") or [])[:GROUPINGS]
        contact = filters.get("contact")
        return cls(
            name=name,
            description=description,
            source=str(definition.get("source") or "events"),
            group_by=group_by + [""] * (GROUPINGS - len(group_by)),
            measures=list(definition.get("measures") or []),
            chart=str(definition.get("chart") or "bar"),
            event=EventFilter.from_tree(filters.get("event")),
            contact=Builder.from_tree(contact) if contact is not None else Builder(),
        )

    def follow_source(self) -> None:
        """After the source changed: keep the groupings and measures that apply to it, and
        tick its first measure when none does."""
        spec = self.spec
        if spec is None:
            return
        self.group_by = [g if g in spec.dims else "" for g in self.group_by]
        self.measures = [m for m in self.measures if m in spec.measures] or [spec.measures[0]]
        if self.chart not in CHARTS:
            self.chart = "bar"

    def definition(self) -> dict[str, Any]:
        """The definition the form says (ValidationFailed when a filter's JSON does not
        parse); the service checks the rest and names the bad field."""
        out: dict[str, Any] = {
            "source": self.source,
            "group_by": [g for g in self.group_by if g],
            "measures": self.measures,
            "chart": self.chart,
        }
        filters: dict[str, Any] = {}
        if self.takes("event") and (event := self.event.tree()) is not None:
            filters["event"] = event
        if self.takes("contact"):
            contact = self._contact_tree()
            if contact is not None:
                filters["contact"] = contact
        if filters:
            out["filters"] = filters
        return out

    def _contact_tree(self) -> Any:
        b = self.contact
        if b.json_only:
            return b.tree() if b.text.strip() else None
        return b.tree() if b.rows else None


def _errors(exc: GatherlyError, state: ReportForm) -> dict[str, str]:
    """Where a service error shows: beside its field of the builder (the message without
    the definition's path, which its place says)."""
    where = exc.field or "form"
    return {_place(where, state): exc.message.removeprefix(f"{where}: ")}


def _place(where: str, state: ReportForm) -> str:
    """The builder's field for an error's path (``definition.group_by[1]`` …)."""
    if where in ("name", "description", "event_filter", "criteria"):
        return where
    if found := _GROUPING.match(where):
        return f"group_by_{found.group(1)}"
    if (found := _CONTACT_ROW.match(where)) and not state.contact.json_only:
        return f"row-{found.group(1)}"
    for prefix, key in (
        ("definition.group_by", "group_by_0"),
        ("definition.source", "source"),
        ("definition.measures", "measures"),
        ("definition.chart", "chart"),
        ("definition.filters.contact", "criteria"),
    ):
        if where.startswith(prefix):
            return key
    if where.startswith("definition.filters.event"):
        rest = where.removeprefix("definition.filters.event").lstrip(".")
        name = _EVENT_FIELDS.get(rest.split(".", 1)[0].split("[", 1)[0])
        return name if name and not state.event.json_only else "event_filter"
    return "form"


def _naming_errors(state: ReportForm) -> dict[str, str]:
    """What the API's schema refuses in a name or description."""
    try:
        parse_form(ReportFields, name=state.name, description=state.description)
    except ValidationFailed as exc:
        return {exc.field or "name": exc.message}
    return {} if state.name else {"name": "Give the report a name."}


def _events(db: Session, viewer: Viewer, q: str) -> list[MarketingEvent]:
    flt = event_service.EventFilter(q=_search(q))
    return list(
        event_service.list_events(db=db, principal=viewer.principal, flt=flt, limit=CHOICES).items
    )


def _builder_choices(db: Session, viewer: Viewer, builder: Builder) -> dict[str, Any]:
    """What the contact filter's rows offer: the events, lists and scoring models the viewer
    may read."""
    recent: list[MarketingEvent] | None = None
    event_choices: dict[int, list[MarketingEvent]] = {}
    lists: list[Any] = []
    models: list[Any] = []
    for i, row in enumerate(builder.rows):
        if row.kind == "participation":
            if row.event_q:
                event_choices[i] = _events(db, viewer, row.event_q)
            else:
                recent = event_choices[i] = (
                    recent if recent is not None else _events(db, viewer, "")
                )
        elif row.kind == "list" and not lists:
            lists = list(
                segment_service.list_lists(db=db, principal=viewer.principal, limit=CHOICES).items
            )
        elif row.kind == "score" and not models:
            models = list(
                scoring_service.list_models(db=db, principal=viewer.principal, limit=CHOICES).items
            )
    return {
        "event_choices": event_choices,
        "lists": lists,
        "model_choices": models,
        "score_test_labels": SCORE_TEST_LABELS,
        "field_labels": FIELD_LABELS,
        "op_labels": OP_LABELS,
        "participation_labels": PARTICIPATION_LABELS,
    }


def _builder_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    state: ReportForm,
    report: Report | None = None,
    *,
    errors: dict[str, str] | None = None,
    preview: Shown | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "reports/builder.html",
        viewer,
        status_code=status_code,
        form=state,
        b=state.contact,
        report=report,
        action=f"/reports/{report.id}/edit" if report else "/reports/new",
        errors=errors or {},
        preview=preview,
        sources=rd.SOURCES,
        dim_labels=rd.DIM_LABELS,
        measure_labels=rd.MEASURE_LABELS,
        charts=CHARTS,
        **_builder_choices(db, viewer, state.contact),
    )


def _builder_post(
    request: Request, db: Session, viewer: Viewer, form: FormData, report: Report | None
) -> Response:
    """A builder button: redraw (source changed, a row added …), preview, or save."""
    state = ReportForm.read(form)
    if state.action == "update":
        state.follow_source()
        return _builder_page(request, db, viewer, state, report)
    if state.action not in ("save", "preview"):
        state.contact = apply_action(state.contact, state.action)
        return _builder_page(request, db, viewer, state, report)
    errors = _naming_errors(state) if state.action == "save" else {}
    try:
        definition = state.definition()
        if errors:
            rd.parse(definition)  # say what else is wrong, beside the name
        if state.action == "preview":
            run = service.run_report(db=db, principal=viewer.principal, definition=definition)
            return _builder_page(request, db, viewer, state, report, preview=shown(run))
        if not errors:
            if report is None:
                saved = service.create_report(
                    db=db,
                    principal=viewer.principal,
                    name=state.name,
                    description=state.description,
                    definition=definition,
                )
            else:
                saved = service.update_report(
                    db=db,
                    principal=viewer.principal,
                    report_id=report.id,
                    changes={
                        "name": state.name,
                        "description": state.description,
                        "definition": definition,
                    },
                )
            return RedirectResponse(f"/reports/{saved.id}", status_code=303)
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()  # nothing half-changed is committed with the error page
        errors = {**errors, **_errors(exc, state)}
    return _builder_page(request, db, viewer, state, report, errors=errors, status_code=422)


# ---------------------------------------------------------------- the reports pages


@router.get("/reports")
def reports_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    found = service.list_reports(
        db=db, principal=viewer.principal, q=_search(q), cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "reports/list.html",
        viewer,
        builtins=list(rd.BUILTINS.values()),
        reports=found.items,
        q=q or "",
        cursor=cursor,
        next_cursor=found.next_cursor,
        sources=rd.SOURCES,
    )


@router.get("/reports/new")
def new_report(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _builder_page(request, db, viewer, ReportForm.new())


@router.post("/reports/new")
def create_report(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    return _builder_post(request, db, viewer, form, None)


def _writable_dashboards(db: Session, viewer: Viewer) -> list[Dashboard]:
    """The dashboards a report may be pinned to: those the viewer may change."""
    found = service.list_dashboards(db=db, principal=viewer.principal, limit=PAGE_SIZE)
    return [d for d in found.items if may(db, viewer, service.DASHBOARD, d)["may_write"]]


def _report_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    report_id: int | None = None,
    builtin: str | None = None,
    pin_errors: dict[str, str] | None = None,
    pin_values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    principal = viewer.principal
    run = service.run_report(db=db, principal=principal, report_id=report_id, builtin=builtin)
    rights: dict[str, bool] = {}
    report = None
    if report_id is not None:
        report = service.get_report(db=db, principal=principal, report_id=report_id)
        rights = may(db, viewer, service.REPORT, report)
    base = f"/reports/{report_id}" if report_id is not None else f"/reports/builtin/{builtin}"
    return page(
        request,
        "reports/report.html",
        viewer,
        status_code=status_code,
        shown=shown(run),
        report=report,
        builtin=builtin,
        base=base,
        source=rd.SOURCES[run.definition["source"]],
        dim_labels=rd.DIM_LABELS,
        dashboards=_writable_dashboards(db, viewer),
        pin_errors=pin_errors or {},
        pin_values=pin_values or {},
        **rights,
    )


@router.get("/reports/builtin/{key}")
def builtin_page(key: str, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _report_page(request, db, viewer, builtin=key)


@router.get("/reports/builtin/{key}/report.csv")
def export_builtin(
    key: str, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """The built-in report's table as CSV, counted for the viewer (the one CSV writer)."""
    return csv_download(
        service.export_csv(service.run_report(db=db, principal=viewer.principal, builtin=key))
    )


@router.post("/reports/builtin/{key}/copy")
def copy_builtin(
    key: str, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    made = service.copy_builtin(db=db, principal=viewer.principal, key=key)
    return RedirectResponse(f"/reports/{made.id}/edit", status_code=303)


@router.post("/reports/builtin/{key}/pin")
def pin_builtin(
    key: str, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    return _pin(request, db, viewer, form, {"builtin": key}, builtin=key)


@router.get("/reports/{report_id}")
def report_page(report_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _report_page(request, db, viewer, report_id=report_id)


@router.get("/reports/{report_id}/report.csv")
def export_report(
    report_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> StreamingResponse:
    """The saved report's table as CSV, counted for the viewer (the one CSV writer)."""
    return csv_download(
        service.export_csv(
            service.run_report(db=db, principal=viewer.principal, report_id=report_id)
        )
    )


@router.get("/reports/{report_id}/edit")
def edit_report(report_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    report = service.get_report(
        db=db, principal=viewer.principal, report_id=report_id, privilege=Privilege.WRITE
    )
    state = ReportForm.of(report.name, report.description, report.definition)
    return _builder_page(request, db, viewer, state, report)


@router.post("/reports/{report_id}/edit")
def save_report(
    report_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    form: FormFields,
) -> Response:
    report = service.get_report(
        db=db, principal=viewer.principal, report_id=report_id, privilege=Privilege.WRITE
    )
    return _builder_post(request, db, viewer, form, report)


@router.post("/reports/{report_id}/pin")
def pin_report(
    report_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    form: FormFields,
) -> Response:
    service.get_report(db=db, principal=viewer.principal, report_id=report_id)
    return _pin(request, db, viewer, form, {"report": report_id}, report_id=report_id)


def _pin(
    request: Request,
    db: Session,
    viewer: Viewer,
    form: FormData,
    item: dict[str, Any],
    *,
    report_id: int | None = None,
    builtin: str | None = None,
) -> Response:
    """Pin the report to one of the viewer's dashboards, or to a new one."""
    chosen = form_text(form, "dashboard").strip()
    new_name = form_text(form, "new_name").strip()[:1000]
    try:
        if chosen == "new":
            if not new_name:
                raise ValidationFailed("Name the new dashboard.", field="new_name")
            board = service.create_dashboard(
                db=db, principal=viewer.principal, name=new_name, items=[item]
            )
        else:
            board_id = as_int(chosen)
            if board_id is None:
                raise ValidationFailed("Choose a dashboard.", field="dashboard")
            board = service.get_dashboard(
                db=db, principal=viewer.principal, dashboard_id=board_id, privilege=Privilege.WRITE
            )
            service.update_dashboard(
                db=db,
                principal=viewer.principal,
                dashboard_id=board.id,
                changes={"items": [*board.items, item]},
            )
    except (ValidationFailed, Forbidden, NotFound) as exc:
        db.rollback()
        where = exc.field if exc.field in ("new_name", "dashboard") else "pin"
        if exc.field == "name":
            where = "new_name"
        return _report_page(
            request,
            db,
            viewer,
            report_id=report_id,
            builtin=builtin,
            pin_errors={where: exc.message},
            pin_values={"dashboard": chosen, "new_name": new_name},
            status_code=422,
        )
    return RedirectResponse(f"/dashboards/{board.id}", status_code=303)


@router.get("/reports/{report_id}/delete")
def confirm_delete_report(
    report_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    report = service.get_report(
        db=db, principal=viewer.principal, report_id=report_id, privilege=Privilege.DELETE
    )
    return page(
        request,
        "reports/confirm_delete.html",
        viewer,
        what="report",
        name=report.name,
        consequence="Dashboards that pinned it will say it is gone.",
        action=f"/reports/{report.id}/delete",
        back=f"/reports/{report.id}",
    )


@router.post("/reports/{report_id}/delete")
def delete_report(
    report_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    service.delete_report(db=db, principal=viewer.principal, report_id=report_id)
    return RedirectResponse("/reports", status_code=303)


# ---------------------------------------------------------------- dashboards


def _dashboards_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    cursor: str | None = None,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    found = service.list_dashboards(
        db=db, principal=viewer.principal, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "reports/dashboards.html",
        viewer,
        status_code=status_code,
        dashboards=found.items,
        cursor=cursor,
        next_cursor=found.next_cursor,
        values=values or {},
        errors=errors or {},
    )


@router.get("/dashboards")
def dashboards_page(
    request: Request, db: WebDb, viewer: CurrentViewer, cursor: str | None = None
) -> Response:
    return _dashboards_page(request, db, viewer, cursor)


@router.post("/dashboards")
def create_dashboard(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked, form: FormFields
) -> Response:
    name = form_text(form, "name").strip()[:1000]
    description = form_text(form, "description").strip()[:5000]
    try:
        parse_form(ReportFields, name=name, description=description)  # the same bounds
        board = service.create_dashboard(
            db=db, principal=viewer.principal, name=name, description=description
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        where = exc.field if exc.field in ("name", "description") else "form"
        return _dashboards_page(
            request,
            db,
            viewer,
            values={"name": name, "description": description},
            errors={where: exc.message},
            status_code=422,
        )
    return RedirectResponse(f"/dashboards/{board.id}", status_code=303)


@dataclass(frozen=True)
class PanelView:
    """A pinned report on the dashboard: its title and page, and its run or problem."""

    title: str
    href: str | None
    shown: Shown | None
    problem: str | None


def _item_href(item: dict[str, Any]) -> str:
    if "builtin" in item:
        return f"/reports/builtin/{item['builtin']}"
    return f"/reports/{item['report']}"


@router.get("/dashboards/{dashboard_id}")
def dashboard_page(
    dashboard_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    board, panels = service.run_dashboard(
        db=db, principal=viewer.principal, dashboard_id=dashboard_id
    )
    views = [
        PanelView(p.run.name, _item_href(p.item), shown(p.run), None)
        if p.run is not None
        else PanelView(_item_title(p.item), None, None, p.problem or NO_PANEL)
        for p in panels
    ]
    return page(
        request,
        "reports/dashboard.html",
        viewer,
        board=board,
        panels=views,
        **may(db, viewer, service.DASHBOARD, board),
    )


def _item_title(item: dict[str, Any]) -> str:
    if "builtin" in item:
        found = rd.BUILTINS.get(str(item["builtin"]))
        return found.name if found else str(item["builtin"])
    return f"Report {item.get('report')}"


def _item_code(item: dict[str, Any]) -> str:
    """A pinned report as the edit form carries it: ``builtin:KEY`` or ``report:ID``."""
    if "builtin" in item:
        return f"builtin:{item['builtin']}"
    return f"report:{item.get('report')}"


def _item_of(code: str) -> dict[str, Any]:
    """A pinned report from the form's code (the service checks it)."""
    kind, _sep, value = code.partition(":")
    if kind == "builtin":
        return {"builtin": value[:60]}
    number = as_int(value)
    return {"report": number if number is not None else value[:30]}


@dataclass(frozen=True)
class PinView:
    """A pinned report on the edit page."""

    code: str
    title: str
    href: str | None


def _pins(db: Session, viewer: Viewer, items: list[dict[str, Any]]) -> list[PinView]:
    """The pinned reports with their names (a report the viewer may not read says so)."""
    out = []
    for item in items:
        code = _item_code(item)
        if "builtin" in item:
            out.append(PinView(code, _item_title(item), _item_href(item)))
            continue
        report_id = item.get("report")
        try:
            if not isinstance(report_id, int):
                raise NotFound("not a report", field="items")
            found = service.get_report(db=db, principal=viewer.principal, report_id=report_id)
        except NotFound:
            out.append(PinView(code, f"Report {report_id} ({NO_PANEL})", None))
        else:
            out.append(PinView(code, found.name, f"/reports/{found.id}"))
    return out


def _edit_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    board: Dashboard,
    *,
    name: str | None = None,
    description: str | None = None,
    items: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    saved = service.list_reports(db=db, principal=viewer.principal, limit=CHOICES).items
    return page(
        request,
        "reports/dashboard_edit.html",
        viewer,
        status_code=status_code,
        board=board,
        name=board.name if name is None else name,
        description=board.description if description is None else description,
        pins=_pins(db, viewer, board.items if items is None else items),
        builtins=list(rd.BUILTINS.values()),
        saved=saved,
        errors=errors or {},
        **may(db, viewer, service.DASHBOARD, board),
    )


@router.get("/dashboards/{dashboard_id}/edit")
def edit_dashboard(
    dashboard_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    board = service.get_dashboard(
        db=db, principal=viewer.principal, dashboard_id=dashboard_id, privilege=Privilege.WRITE
    )
    return _edit_page(request, db, viewer, board)


def _moved(items: list[dict[str, Any]], action: str, add: str) -> list[dict[str, Any]]:
    """The pinned reports after a button: ``up_N``, ``down_N``, ``remove_N`` or ``add``."""
    kind, _sep, where = action.partition("_")
    index = int(where) if where.isdigit() and len(where) <= 3 else -1
    out = list(items)
    if kind == "add" and add:
        out.append(_item_of(add))
    elif 0 <= index < len(out):
        if kind == "remove":
            out.pop(index)
        elif kind == "up" and index > 0:
            out[index - 1], out[index] = out[index], out[index - 1]
        elif kind == "down" and index < len(out) - 1:
            out[index + 1], out[index] = out[index], out[index + 1]
    return out


@router.post("/dashboards/{dashboard_id}/edit")
def save_dashboard(
    dashboard_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    form: FormFields,
) -> Response:
    """Save the name, description and pinned reports as the form holds them, after the
    button pressed (move a pin up or down, remove one, add one, or just save)."""
    board = service.get_dashboard(
        db=db, principal=viewer.principal, dashboard_id=dashboard_id, privilege=Privilege.WRITE
    )
    name = form_text(form, "name").strip()[:1000]
    description = form_text(form, "description").strip()[:5000]
    codes = [c for c in form.getlist("item") if isinstance(c, str)][: service.MAX_ITEMS + 1]
    items = _moved(
        [_item_of(c) for c in codes], form_text(form, "action"), form_text(form, "add").strip()
    )
    try:
        parse_form(ReportFields, name=name, description=description)  # the same bounds
        service.update_dashboard(
            db=db,
            principal=viewer.principal,
            dashboard_id=board.id,
            changes={"name": name, "description": description, "items": items},
        )
    except (ValidationFailed, Forbidden, NotFound) as exc:
        db.rollback()
        where = exc.field if exc.field in ("name", "description") else "items"
        board = service.get_dashboard(db=db, principal=viewer.principal, dashboard_id=dashboard_id)
        return _edit_page(
            request,
            db,
            viewer,
            board,
            name=name,
            description=description,
            items=items,
            errors={where: exc.message},
            status_code=422,
        )
    if form_text(form, "action") == "done":
        return RedirectResponse(f"/dashboards/{board.id}", status_code=303)
    return RedirectResponse(f"/dashboards/{board.id}/edit", status_code=303)


@router.get("/dashboards/{dashboard_id}/delete")
def confirm_delete_dashboard(
    dashboard_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    board = service.get_dashboard(
        db=db, principal=viewer.principal, dashboard_id=dashboard_id, privilege=Privilege.DELETE
    )
    return page(
        request,
        "reports/confirm_delete.html",
        viewer,
        what="dashboard",
        name=board.name,
        consequence="The reports pinned to it stay.",
        action=f"/dashboards/{board.id}/delete",
        back=f"/dashboards/{board.id}",
    )


@router.post("/dashboards/{dashboard_id}/delete")
def delete_dashboard(
    dashboard_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    service.delete_dashboard(db=db, principal=viewer.principal, dashboard_id=dashboard_id)
    return RedirectResponse("/dashboards", status_code=303)
