"""Reports and dashboards: make, change, run, export (SPEC T6, M).

Reports and dashboards are owned records read and changed through the access engine, and
shared like any other. A run counts, at that moment, only what its viewer may read
(``report.engine``), so one report shows each viewer the numbers of their own view. The
built-in reports (``definition.BUILTINS``) are there for everyone, by key; copying one
makes a report of your own to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import owned
from gatherly.contact.schemas import OwnerRef
from gatherly.core import audit, csvout
from gatherly.core.csvout import CsvExport
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.core.pagination import Page
from gatherly.report import charts, engine
from gatherly.report import definition as rd
from gatherly.report.models import Dashboard, Report

REPORT, DASHBOARD = "report", "dashboard"
MAX_ITEMS = 12


def get_report(
    *,
    db: Session,
    principal: access.Principal,
    report_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> Report:
    """A report the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(
        db, principal, REPORT, report_id, noun="report", privilege=privilege, field=field
    )
    return cast(Report, found)


def list_reports(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the saved reports the caller may read, newest first."""
    return owned.page(db, principal, Report, REPORT, q=q, cursor=cursor, limit=limit)


def _name(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ValidationFailed("name cannot be empty", field="name")
    return name[:200]


def _audit(
    db: Session, principal: access.Principal, row: Report | Dashboard, verb: str, **change: Any
) -> None:
    kind = REPORT if isinstance(row, Report) else DASHBOARD
    audit.log(
        db,
        actor=principal,
        action=f"{kind}.{verb}",
        target_type=kind,
        target_id=row.id,
        target_label=row.name,
        **change,
    )


def create_report(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    definition: dict[str, Any],
    description: str = "",
    owner: OwnerRef | None = None,
) -> Report:
    """A report owned by ``owner`` (default: the caller)."""
    columns = owned.new_columns(db, principal, REPORT, owner)
    checked = rd.parse(definition)
    row = Report(
        name=_name(name),
        description=description or "",
        definition=checked.definition.model_dump(mode="json", exclude_defaults=True),
        **columns,
    )
    db.add(row)
    db.flush()
    _audit(db, principal, row, "create", after={"name": row.name, "definition": row.definition})
    return row


def copy_builtin(*, db: Session, principal: access.Principal, key: str) -> Report:
    """A report of the caller's own from a built-in one, to change."""
    builtin = _builtin(key)
    return create_report(
        db=db,
        principal=principal,
        name=builtin.name,
        description=builtin.description,
        definition=builtin.definition,
    )


def update_report(
    *, db: Session, principal: access.Principal, report_id: int, changes: dict[str, Any]
) -> Report:
    """Change the name, description or definition given (needs Write)."""
    row = get_report(db=db, principal=principal, report_id=report_id, privilege=Privilege.WRITE)
    before = {"name": row.name, "description": row.description, "definition": row.definition}
    if "name" in changes:
        row.name = _name(changes["name"])
    if "description" in changes:
        row.description = changes["description"] or ""
    if "definition" in changes:
        checked = rd.parse(changes["definition"])
        row.definition = checked.definition.model_dump(mode="json", exclude_defaults=True)
    after = {"name": row.name, "description": row.description, "definition": row.definition}
    if after != before:
        owned.touch(row, principal)
        db.flush()
        old, new = audit.diff(before, after)
        _audit(db, principal, row, "update", before=old, after=new)
    return row


def delete_report(*, db: Session, principal: access.Principal, report_id: int) -> None:
    """Delete a report (needs Delete); dashboards that pinned it show it as gone."""
    row = get_report(db=db, principal=principal, report_id=report_id, privilege=Privilege.DELETE)
    _audit(db, principal, row, "delete", before={"name": row.name, "definition": row.definition})
    db.delete(row)
    db.flush()


def _builtin(key: str, field: str = "key") -> rd.Builtin:
    found = rd.BUILTINS.get(key)
    if found is None:
        known = ", ".join(rd.BUILTINS)
        raise NotFound(f"there is no built-in report {key!r}; built-in: {known}", field=field)
    return found


@dataclass(frozen=True)
class Run:
    """A report's numbers for its viewer, and its chart."""

    name: str
    description: str
    definition: dict[str, Any]
    result: engine.Result
    svg: str | None
    report_id: int | None = None
    builtin: str | None = None
    at: datetime | None = None


def run_report(
    *,
    db: Session,
    principal: access.Principal,
    report_id: int | None = None,
    builtin: str | None = None,
    definition: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Run:
    """Run a saved report, a built-in one (by key), or an unsaved definition (a preview),
    counting only what the caller may read."""
    now = now or utcnow()
    if report_id is not None:
        row = get_report(db=db, principal=principal, report_id=report_id)
        name, description, data = row.name, row.description, row.definition
    elif builtin is not None:
        b = _builtin(builtin)
        name, description, data = b.name, b.description, b.definition
    elif definition is not None:
        name, description, data = "Preview", "", definition
    else:
        raise ValidationFailed("name a report, a built-in report or a definition", field="report")
    checked = rd.parse(data)
    result = engine.run(db, principal, checked, now=now)
    return Run(
        name=name,
        description=description,
        definition=checked.definition.model_dump(mode="json"),
        result=result,
        svg=charts.svg(result, checked.definition.chart),
        report_id=report_id,
        builtin=builtin,
        at=now,
    )


def find(*, db: Session, principal: access.Principal, name: str) -> dict[str, Any]:
    """What ``gatherly reports run NAME`` names: a built-in key, a report id, or the name
    of one report the caller may read (``{"builtin": key}`` or ``{"report_id": id}``)."""
    if name in rd.BUILTINS:
        return {"builtin": name}
    if name.isdigit():
        return {"report_id": get_report(db=db, principal=principal, report_id=int(name)).id}
    found = list_reports(db=db, principal=principal, q=name, limit=50).items
    exact = [r for r in found if r.name.casefold() == name.casefold()]
    if len(exact) == 1:
        return {"report_id": exact[0].id}
    if len(exact) > 1:
        ids = ", ".join(str(r.id) for r in exact)
        raise ValidationFailed(
            f"several reports are called {name!r} (ids {ids}): give an id", field="name"
        )
    known = ", ".join(rd.BUILTINS)
    raise NotFound(f"no report {name!r} you may read (built-in: {known})", field="name")


def csv_rows(run: Run) -> tuple[list[str], list[list[Any]]]:
    """A run's table: its headings and rows, for the one CSV writer."""
    return run.result.columns, run.result.table()


def export_csv(run: Run) -> CsvExport:
    """A run as a CSV download through the one writer."""
    header, rows = csv_rows(run)
    slug = run.builtin or (f"report-{run.report_id}" if run.report_id else "report")
    return CsvExport(f"{slug}.csv", csvout.stream(header, rows))


# ------------------------------------------------------------------ dashboards


def get_dashboard(
    *,
    db: Session,
    principal: access.Principal,
    dashboard_id: int,
    privilege: Privilege = Privilege.READ,
) -> Dashboard:
    """A dashboard the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(db, principal, DASHBOARD, dashboard_id, noun="dashboard", privilege=privilege)
    return cast(Dashboard, found)


def list_dashboards(
    *, db: Session, principal: access.Principal, cursor: str | None = None, limit: int = 50
) -> Page:
    """A page of the dashboards the caller may read, newest first."""
    return owned.page(db, principal, Dashboard, DASHBOARD, q=None, cursor=cursor, limit=limit)


def _items(db: Session, principal: access.Principal, items: Any) -> list[dict[str, Any]]:
    """Pinned reports, checked: each a built-in key or a report the caller may read."""
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise ValidationFailed(f"items is a list of at most {MAX_ITEMS} reports", field="items")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict) or len(item) != 1 or not set(item) <= {"report", "builtin"}:
            raise ValidationFailed(
                f"{where}: pin {{'report': <id>}} or {{'builtin': <key>}}", field=where
            )
        if "builtin" in item:
            _builtin(str(item["builtin"]), field=f"{where}.builtin")
            out.append({"builtin": str(item["builtin"])})
            continue
        ref = item["report"]
        if not isinstance(ref, int) or isinstance(ref, bool) or ref < 1:
            raise ValidationFailed(f"{where}.report: a report id", field=f"{where}.report")
        get_report(db=db, principal=principal, report_id=ref, field=f"{where}.report")
        out.append({"report": ref})
    return out


def create_dashboard(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    items: list[dict[str, Any]] | None = None,
    description: str = "",
    owner: OwnerRef | None = None,
) -> Dashboard:
    """A dashboard owned by ``owner`` (default: the caller), pinning ``items``."""
    columns = owned.new_columns(db, principal, DASHBOARD, owner)
    row = Dashboard(
        name=_name(name),
        description=description or "",
        items=_items(db, principal, items or []),
        **columns,
    )
    db.add(row)
    db.flush()
    _audit(db, principal, row, "create", after={"name": row.name, "items": row.items})
    return row


def update_dashboard(
    *, db: Session, principal: access.Principal, dashboard_id: int, changes: dict[str, Any]
) -> Dashboard:
    """Change a dashboard's name, description or pinned reports (needs Write)."""
    row = get_dashboard(
        db=db, principal=principal, dashboard_id=dashboard_id, privilege=Privilege.WRITE
    )
    before = {"name": row.name, "description": row.description, "items": row.items}
    if "name" in changes:
        row.name = _name(changes["name"])
    if "description" in changes:
        row.description = changes["description"] or ""
    if "items" in changes:
        row.items = _items(db, principal, changes["items"])
    after = {"name": row.name, "description": row.description, "items": row.items}
    if after != before:
        owned.touch(row, principal)
        db.flush()
        old, new = audit.diff(before, after)
        _audit(db, principal, row, "update", before=old, after=new)
    return row


def delete_dashboard(*, db: Session, principal: access.Principal, dashboard_id: int) -> None:
    """Delete a dashboard (needs Delete); the reports stay."""
    row = get_dashboard(
        db=db, principal=principal, dashboard_id=dashboard_id, privilege=Privilege.DELETE
    )
    _audit(db, principal, row, "delete", before={"name": row.name, "items": row.items})
    db.delete(row)
    db.flush()


@dataclass(frozen=True)
class Panel:
    """One pinned report as the viewer sees it: its run, or why there is none."""

    item: dict[str, Any]
    run: Run | None
    problem: str | None = None


def run_dashboard(
    *,
    db: Session,
    principal: access.Principal,
    dashboard_id: int,
    now: datetime | None = None,
) -> tuple[Dashboard, list[Panel]]:
    """A dashboard and each pinned report run for the caller (a report they may not read,
    or one deleted since, is a panel saying so)."""
    row = get_dashboard(db=db, principal=principal, dashboard_id=dashboard_id)
    now = now or utcnow()
    panels = []
    for item in row.items:
        try:
            run = run_report(
                db=db,
                principal=principal,
                report_id=item.get("report"),
                builtin=item.get("builtin"),
                now=now,
            )
        except NotFound:
            panels.append(Panel(item, None, "a report you may not read, or one deleted since"))
            continue
        panels.append(Panel(item, run))
    return row, panels
