"""``gatherly reports``: run reports as a user, as a table or CSV (SPEC T6, M).

Every command acts as the ``--as`` user through ``report.service``, as the API does: a
report counts only what that user may read.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, read_input, validated
from gatherly.core import csvout
from gatherly.core.ids import MAX_ID
from gatherly.journey import definition as jd
from gatherly.report import definition as rd
from gatherly.report import router as api
from gatherly.report import schemas as s
from gatherly.report import service

app = typer.Typer(help="Reports: run them, save them, export them as CSV.", no_args_is_help=True)
out = Console()


@app.command("list")
def list_command(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The built-in reports and the saved reports the user may read."""
    with acting(as_user) as (db, principal):
        fetch = partial(service.list_reports, db=db, principal=principal, limit=500)
        saved = [
            s.ReportOut.model_validate(r).model_dump(mode="json")
            for r in every_page(lambda cursor: fetch(cursor=cursor))
        ]
    builtins = [{"key": b.key, "name": b.name} for b in rd.BUILTINS.values()]
    if as_json:
        print_json({"builtin": builtins, "saved": saved})
        return
    table = Table("run as", "name", "kind")
    for b in builtins:
        table.add_row(b["key"], escape(b["name"]), "built-in")
    for r in saved:
        table.add_row(str(r["id"]), escape(r["name"]), rd.SOURCES[r["definition"]["source"]].label)
    out.print(table)


@app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="A built-in key, a report id, or a report's name.")],
    as_user: AsOpt,
    as_csv: Annotated[bool, typer.Option("--csv", help="The table as CSV.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a report as the user: it counts only what they may read."""
    with acting(as_user) as (db, principal):
        run = service.run_report(
            db=db, principal=principal, **service.find(db=db, principal=principal, name=name)
        )
    if as_csv:
        header, rows = service.csv_rows(run)
        csvout.write(sys.stdout, header, rows)
        return
    if as_json:
        print_json(s.RunOut.model_validate(api.run_out(run)).model_dump(mode="json"))
        return
    table = Table(*run.result.columns, title=run.name)
    for keys, values in run.result.rows:
        cells = [escape(k.label) for k in keys]
        for measure, value in zip(run.result.measures, values, strict=True):
            cells.append(_cell(measure, value))
        table.add_row(*cells)
    out.print(table)
    if not run.result.rows:
        out.print("nothing to count that you may read", markup=False)


def _cell(measure: str, value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.0%}" if measure in rd.RATES else f"{value:,}"


@app.command("save")
def save_command(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    as_user: AsOpt,
    file: Annotated[
        Path, typer.Option("--file", help="The definition, JSON or YAML ('-': standard input).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Save a report from a definition file (see docs/reports.md)."""
    definition = jd.from_text(read_input(file), field="file")
    body = validated(s.ReportIn, name=name, definition=definition)
    with acting(as_user) as (db, principal):
        row = service.create_report(
            db=db, principal=principal, name=body.name, definition=body.definition
        )
        data = s.ReportOut.model_validate(row).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    out.print(f"saved report {name!r} (id {data['id']})", markup=False)


@app.command("delete")
def delete_command(
    report_id: Annotated[int, typer.Argument(help="Report id.", min=1, max=MAX_ID)],
    as_user: AsOpt,
) -> None:
    """Delete a saved report."""
    with acting(as_user) as (db, principal):
        service.delete_report(db=db, principal=principal, report_id=report_id)
    out.print(f"report {report_id} deleted", markup=False)
