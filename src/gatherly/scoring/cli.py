"""``gatherly scoring``: scoring models and lead scores as a user (SPEC B9).

Every command acts as the ``--as`` user through ``scoring.service``, as the API does;
``rescore`` runs a full rescore here and now (the worker does the same on its own).
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
from gatherly.scoring import router as api
from gatherly.scoring import schemas as s
from gatherly.scoring import service

app = typer.Typer(
    help="Lead scoring: models, their scores, and why a score is what it is.",
    no_args_is_help=True,
)
out = Console()
IdArg = Annotated[int, typer.Argument(help="Scoring model id.", min=1, max=MAX_ID)]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="The model's conditions, grades and threshold, JSON or YAML ('-': standard input).",
    ),
]


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    return jd.from_text(read_input(path), field="file", source=str(path))


def _out(row: Any) -> dict[str, Any]:
    return s.ModelOut.model_validate(row).model_dump(mode="json")


@app.command("list")
def list_command(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The scoring models the user may read, newest first."""
    with acting(as_user) as (db, principal):
        fetch = partial(service.list_models, db=db, principal=principal, limit=500)
        data = [_out(r) for r in every_page(lambda cursor: fetch(cursor=cursor))]
    if as_json:
        print_json(data)
        return
    table = Table("id", "name", "target", "state", "scored", "sales-ready at")
    for r in data:
        scored = r["scored_at"] or ("pending" if r["state"] == "live" else "—")
        threshold = "—" if r["sales_ready"] is None else str(r["sales_ready"])
        table.add_row(str(r["id"]), escape(r["name"]), r["target"], r["state"], scored, threshold)
    out.print(table)


@app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    as_user: AsOpt,
    file: FileOpt = None,
    target: Annotated[str, typer.Option(help="contact or lead.")] = "contact",
    as_json: JsonOpt = False,
) -> None:
    """Create a draft model owned by the user, from a file of conditions, grades and
    sales_ready (see docs/scoring.md)."""
    body = validated(s.ModelIn, name=name, target=target, **_read(file))
    data_in = body.model_dump(exclude={"owner"}, exclude_unset=True)
    with acting(as_user) as (db, principal):
        data = _out(service.create_model(db=db, principal=principal, **data_in))
    if as_json:
        print_json(data)
        return
    out.print(f"created draft scoring model {name!r} (id {data['id']})", markup=False)


@app.command("update")
def update_command(model_id: IdArg, as_user: AsOpt, file: FileOpt = None) -> None:
    """Change a model from a file (only the keys it holds change)."""
    body = validated(s.ModelFields, **_read(file))
    with acting(as_user) as (db, principal):
        row = service.update_model(
            db=db,
            principal=principal,
            model_id=model_id,
            changes=body.model_dump(include=body.model_fields_set),
        )
        said = f"scoring model {row.name!r} saved" + (
            " (a full rescore is due)" if row.full_pending and row.state == "live" else ""
        )
    out.print(said, markup=False)


def _state(model_id: int, as_user: str, state: str) -> None:
    with acting(as_user) as (db, principal):
        row = service.set_state(db=db, principal=principal, model_id=model_id, state=state)
        said = f"scoring model {row.name!r} is {row.state}"
    out.print(said, markup=False)


@app.command("live")
def live_command(model_id: IdArg, as_user: AsOpt) -> None:
    """Take a model live: the worker scores everything the model's owner may read."""
    _state(model_id, as_user, "live")


@app.command("stop")
def stop_command(model_id: IdArg, as_user: AsOpt) -> None:
    """Take a model back to draft: its scores stay, no longer kept up to date."""
    _state(model_id, as_user, "draft")


@app.command("delete")
def delete_command(model_id: IdArg, as_user: AsOpt) -> None:
    """Delete a model and its scores."""
    with acting(as_user) as (db, principal):
        service.delete_model(db=db, principal=principal, model_id=model_id)
    out.print(f"scoring model {model_id} deleted", markup=False)


@app.command("rescore")
def rescore_command(model_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """Rescore a live model in full, now."""
    with acting(as_user) as (db, principal):
        result = service.rescore_model(db=db, principal=principal, model_id=model_id)
    data = s.RescoredOut.model_validate(result, from_attributes=True).model_dump()
    if as_json:
        print_json(data)
        return
    out.print(
        f"scored {result.scored} records in {result.seconds:.2f} s: {result.changed} changed, "
        f"{result.removed} removed, {result.became_ready} became sales-ready",
        markup=False,
    )


@app.command("scores")
def scores_command(
    model_id: IdArg,
    as_user: AsOpt,
    as_csv: Annotated[bool, typer.Option("--csv", help="Every score as CSV.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Highest scores shown.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A model's scores the user may read, highest first (``--csv``: all of them)."""
    with acting(as_user) as (db, principal):
        if as_csv:
            service.get_model(db=db, principal=principal, model_id=model_id)
            rows = service.export_rows(db, principal, model_id)
            csvout.write(sys.stdout, service.EXPORT_COLUMNS, rows)
            return
        total = service.count_scores(db=db, principal=principal, model_id=model_id)
        page = service.list_scores(db=db, principal=principal, model_id=model_id, limit=limit)
        data = [api.score_out(v) for v in page.items]
    if as_json:
        print_json([s.ScoreOut.model_validate(d).model_dump(mode="json") for d in data])
        return
    table = Table("score id", "record", "name", "score", "grade", "sales-ready")
    for d in data:
        table.add_row(
            str(d["id"]),
            f"{d['record_type']} {d['record_id']}",
            escape(d["name"] or "(you may not read this person)"),
            str(d["score"]),
            d["grade"] or "—",
            "yes" if d["sales_ready"] else "",
        )
    out.print(table)
    out.print(f"{total} scores you may read", markup=False)


@app.command("explain")
def explain_command(
    score_id: Annotated[int, typer.Argument(help="Score id.", min=1, max=MAX_ID)],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Why a score is what it is: each condition's points, from which interactions."""
    with acting(as_user) as (db, principal):
        said = service.explain(db=db, principal=principal, score_id=score_id)
        model_name, label = said.model.name, said.label
    if as_json:
        print_json(
            {
                "score": said.score.score,
                "total": said.total,
                "grade": said.grade,
                "current": said.current,
                "parts": [
                    s.PartOut.model_validate(p, from_attributes=True).model_dump(mode="json")
                    for p in said.parts
                ],
            }
        )
        return
    who = label or "a person you may not read"
    out.print(
        f"{who}: {said.total} points in {model_name!r} (grade {said.grade or '—'})", markup=False
    )
    if not said.current:
        out.print(f"  stored score {said.score.score}: an update is on its way", markup=False)
    for p in said.parts:
        count = "" if p.count is None else f" ({p.count} found)"
        out.print(f"  {p.earned:+d}  {p.name}: {p.description}{count}", markup=False)
        for item in p.items:
            what = item.about or f"{item.about_type.replace('_', ' ')} {item.about_id}"
            when = item.at.isoformat() if item.at else ""
            out.print(f"        {when}  {what}", markup=False)
        if p.hidden:
            out.print(f"        and {p.hidden} you may not open", markup=False)
