"""REST routes for reports and dashboards (SPEC T6, M)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.api.responses import CSV_RESPONSE, csv_download
from gatherly.contact.schemas import PageOut
from gatherly.report import definition as rd
from gatherly.report import schemas as s
from gatherly.report import service

router = APIRouter(tags=["reports"])
BuiltinKey = Annotated[
    str, Path(max_length=60, pattern="^[a-z0-9-]+$", description="A built-in report's key")
]


def run_out(run: service.Run) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "name": run.name,
        "description": run.description,
        "report_id": run.report_id,
        "builtin": run.builtin,
        "definition": run.definition,
        "columns": run.result.columns,
        "group_by": list(run.result.dims),
        "measures": list(run.result.measures),
        "rows": [{"keys": list(keys), "values": list(values)} for keys, values in run.result.rows],
        "at": run.at,
    }


@router.get("/reports", summary="Saved reports you may read", response_model=PageOut[s.ReportOut])
def list_reports(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
) -> Any:
    page = service.list_reports(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/reports/builtin", summary="The built-in reports", response_model=list[s.BuiltinOut])
def list_builtins(principal: CurrentPrincipal) -> Any:
    return [
        {"key": b.key, "name": b.name, "description": b.description, "definition": b.definition}
        for b in rd.BUILTINS.values()
    ]


@router.get(
    "/reports/builtin/{key}/run",
    summary="Run a built-in report (it counts what you may read)",
    response_model=s.RunOut,
)
def run_builtin(key: BuiltinKey, db: DbSession, principal: CurrentPrincipal) -> Any:
    return run_out(service.run_report(db=db, principal=principal, builtin=key))


@router.get(
    "/reports/builtin/{key}/run.csv",
    summary="A built-in report's table as CSV",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_builtin(
    key: BuiltinKey, db: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    return csv_download(
        service.export_csv(service.run_report(db=db, principal=principal, builtin=key))
    )


@router.post(
    "/reports/builtin/{key}/copy",
    status_code=201,
    summary="A report of your own from a built-in one",
    response_model=s.ReportOut,
)
def copy_builtin(key: BuiltinKey, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.copy_builtin(db=db, principal=principal, key=key)


@router.post(
    "/reports/preview",
    summary="Run an unsaved definition (it counts what you may read)",
    response_model=s.RunOut,
)
def preview(body: s.PreviewIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return run_out(service.run_report(db=db, principal=principal, definition=body.definition))


@router.post("/reports", status_code=201, summary="Save a report", response_model=s.ReportOut)
def create_report(body: s.ReportIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.create_report(
        db=db,
        principal=principal,
        name=body.name,
        definition=body.definition,
        description=body.description or "",
        owner=body.owner,
    )


@router.get("/reports/{report_id}", summary="Read a saved report", response_model=s.ReportOut)
def read_report(report_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_report(db=db, principal=principal, report_id=report_id)


@router.patch("/reports/{report_id}", summary="Change a saved report", response_model=s.ReportOut)
def update_report(
    report_id: PathId, body: s.ReportFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    changes = body.model_dump(include=body.model_fields_set)
    return service.update_report(db=db, principal=principal, report_id=report_id, changes=changes)


@router.delete("/reports/{report_id}", status_code=204, summary="Delete a saved report")
def delete_report(report_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_report(db=db, principal=principal, report_id=report_id)
    return no_content()


@router.get(
    "/reports/{report_id}/run",
    summary="Run a saved report (it counts what you may read)",
    response_model=s.RunOut,
)
def run_report(report_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return run_out(service.run_report(db=db, principal=principal, report_id=report_id))


@router.get(
    "/reports/{report_id}/run.csv",
    summary="A saved report's table as CSV",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_report(
    report_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    return csv_download(
        service.export_csv(service.run_report(db=db, principal=principal, report_id=report_id))
    )


@router.get(
    "/dashboards", summary="Dashboards you may read", response_model=PageOut[s.DashboardOut]
)
def list_dashboards(db: DbSession, principal: CurrentPrincipal, paging: Paging) -> Any:
    page = service.list_dashboards(
        db=db, principal=principal, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/dashboards", status_code=201, summary="Make a dashboard", response_model=s.DashboardOut
)
def create_dashboard(body: s.DashboardIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.create_dashboard(
        db=db,
        principal=principal,
        name=body.name,
        items=body.items or [],
        description=body.description or "",
        owner=body.owner,
    )


@router.get(
    "/dashboards/{dashboard_id}",
    summary="A dashboard with each pinned report run for you",
    response_model=s.DashboardRunOut,
)
def read_dashboard(dashboard_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    row, panels = service.run_dashboard(db=db, principal=principal, dashboard_id=dashboard_id)
    return {
        "dashboard": row,
        "panels": [
            {"item": p.item, "run": run_out(p.run) if p.run else None, "problem": p.problem}
            for p in panels
        ],
    }


@router.patch(
    "/dashboards/{dashboard_id}", summary="Change a dashboard", response_model=s.DashboardOut
)
def update_dashboard(
    dashboard_id: PathId, body: s.DashboardFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    changes = body.model_dump(include=body.model_fields_set)
    return service.update_dashboard(
        db=db, principal=principal, dashboard_id=dashboard_id, changes=changes
    )


@router.delete("/dashboards/{dashboard_id}", status_code=204, summary="Delete a dashboard")
def delete_dashboard(dashboard_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_dashboard(db=db, principal=principal, dashboard_id=dashboard_id)
    return no_content()
