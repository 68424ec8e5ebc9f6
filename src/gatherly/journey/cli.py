"""``gatherly journeys``: journeys as a user, from a JSON or YAML definition (SPEC B6, M).

Every command acts as the ``--as`` user through ``journey.service``, as the API does.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, read_input, validated
from gatherly.core.ids import MAX_ID
from gatherly.journey import definition as jd
from gatherly.journey import explain, service
from gatherly.journey import schemas as s

app = typer.Typer(help="Customer journeys: create, check, take live, follow.", no_args_is_help=True)
out = Console()
IdArg = Annotated[int, typer.Argument(help="Journey id.", min=1, max=MAX_ID)]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="The definition, JSON or YAML ('-': standard input)."),
]


def _definition(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return jd.from_text(read_input(path), field="file", source=str(path))


def _out(row: Any) -> dict[str, Any]:
    return s.JourneyOut.model_validate(row).model_dump(mode="json")


@app.command("list")
def list_command(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The journeys the user may read, newest first."""
    with acting(as_user) as (db, principal):
        fetch = partial(service.list_journeys, db=db, principal=principal, limit=500)
        data = [_out(r) for r in every_page(lambda cursor: fetch(cursor=cursor))]
    if as_json:
        print_json(data)
        return
    table = Table("id", "name", "state", "scope")
    for r in data:
        table.add_row(str(r["id"]), escape(r["name"]), r["state"], r["live_scope"] or r["scope"])
    out.print(table)


@app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    as_user: AsOpt,
    file: FileOpt = None,
    scope: Annotated[str, typer.Option(help="business_unit or organization.")] = "business_unit",
    as_json: JsonOpt = False,
) -> None:
    """Create a draft journey owned by the user."""
    body = validated(s.JourneyIn, name=name, definition=_definition(file), scope=scope)
    data_in = body.model_dump(exclude={"owner"}, exclude_none=True)
    with acting(as_user) as (db, principal):
        data = _out(service.create_journey(db=db, principal=principal, **data_in))
    if as_json:
        print_json(data)
        return
    out.print(f"created draft journey {name!r} (id {data['id']})", markup=False)


@app.command("update")
def update_command(journey_id: IdArg, as_user: AsOpt, file: FileOpt = None) -> None:
    """Replace a journey's definition (a live one: only more exclusions)."""
    body = validated(s.JourneyFields, definition=_definition(file))
    with acting(as_user) as (db, principal):
        row = service.update_journey(
            db=db,
            principal=principal,
            journey_id=journey_id,
            changes=body.model_dump(include={"definition"}),
        )
        name = row.name
    out.print(f"journey {name!r} saved", markup=False)


@app.command("check")
def check_command(journey_id: IdArg, as_user: AsOpt) -> None:
    """What stands between the journey and going live; exits 1 while anything does."""
    with acting(as_user) as (db, principal):
        problems = service.check(db=db, principal=principal, journey_id=journey_id)
    for field, message in problems:
        out.print(f"{field}: {message}", markup=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out.print("ready to go live", markup=False)


@app.command("live")
def live_command(journey_id: IdArg, as_user: AsOpt) -> None:
    """Check the journey and take it live; its scope is fixed now."""
    with acting(as_user) as (db, principal):
        row = service.go_live(db=db, principal=principal, journey_id=journey_id)
        said = f"journey {row.name!r} is live ({row.live_scope} scope)"
    out.print(said, markup=False)


def _state(journey_id: int, as_user: str, state: str) -> None:
    with acting(as_user) as (db, principal):
        row = service.set_state(db=db, principal=principal, journey_id=journey_id, state=state)
        said = f"journey {row.name!r} is {row.state}"
    out.print(said, markup=False)


@app.command("pause")
def pause_command(journey_id: IdArg, as_user: AsOpt) -> None:
    """Pause a live journey: nobody moves until it resumes."""
    _state(journey_id, as_user, "paused")


@app.command("resume")
def resume_command(journey_id: IdArg, as_user: AsOpt) -> None:
    """Resume a paused journey."""
    _state(journey_id, as_user, "live")


@app.command("stop")
def stop_command(journey_id: IdArg, as_user: AsOpt) -> None:
    """Stop a journey for good: everyone still in it leaves."""
    _state(journey_id, as_user, "stopped")


def _progress(journey_id: int, as_user: str) -> dict[str, Any]:
    with acting(as_user) as (db, principal):
        found = service.progress(db=db, principal=principal, journey_id=journey_id)
        return s.ProgressOut.of(found).model_dump(mode="json")


@app.command("show")
def show_command(journey_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """A journey, its members by state, where the active ones are, and what each step did."""
    data = _progress(journey_id, as_user)
    if as_json:
        print_json(data)
        return
    j = data["journey"]
    out.print(f"{j['name']} ({j['state']}, {j['live_scope'] or j['scope']} scope)", markup=False)
    for status, n in sorted(data["members"].items()):
        out.print(f"  {status}: {n}", markup=False)
    _steps(data)


def _steps(data: dict[str, Any]) -> None:
    defined = list((data["journey"].get("definition") or {}).get("steps") or {})
    for step in dict.fromkeys([*defined, *data["steps"], *data["at_step"]]):
        if step not in data["steps"] and not data["at_step"].get(step):
            continue
        said = [f"{k} {v}" for k, v in sorted(data["steps"].get(step, {}).items())]
        if data["at_step"].get(step):
            said.append(f"{data['at_step'][step]} here now")
        out.print(f"  {step}: {'; '.join(said)}", markup=False)
    for step, n in data["ended"].items():
        out.print(f"  {step}: ended here {n}", markup=False)


@app.command("insights")
def insights_command(journey_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The funnel (members by state, each step's outcomes) and each email step's counts."""
    data = _progress(journey_id, as_user)
    if as_json:
        print_json({k: data[k] for k in ("members", "at_step", "steps", "ended", "emails")})
        return
    entered = sum(data["members"].values())
    states = ", ".join(f"{k} {v}" for k, v in sorted(data["members"].items()))
    out.print(f"entered {entered}" + (f": {states}" if states else ""), markup=False)
    _steps(data)
    for step, mail in data["emails"].items():
        bounced = mail["hard_bounces"] + mail["soft_bounces"]
        out.print(
            f"  {step} (send {mail['send_id']}): {mail['sent']} sent, {mail['delivered']} "
            f"delivered, {mail['opened']} opened, {mail['clicked']} clicked, {bounced} bounced, "
            f"{mail['unsubscribed']} unsubscribed",
            markup=False,
            soft_wrap=True,
        )


@app.command("explain")
def explain_command(
    journey_id: IdArg,
    as_user: AsOpt,
    contact: Annotated[int, typer.Option(min=1, max=MAX_ID, help="The contact.")],
    as_json: JsonOpt = False,
) -> None:
    """Where a contact is in the journey and how it got there, or why it is not in it."""
    with acting(as_user) as (db, principal):
        found = explain.explain(
            db=db, principal=principal, journey_id=journey_id, contact_id=contact
        )
        data = s.ExplanationOut.model_validate(found).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    if data["why_not"]:
        out.print(f"not in the journey: {data['why_not']}", markup=False)
    for p in data["passes"]:
        where = p["status"].replace("_", " ")
        if p["step"]:
            where = f"at {p['step']}" if p["status"] == "active" else f"{where} at {p['step']}"
        out.print(f"pass {p['entry']}: {where}, entered {p['entered_at']}", markup=False)
        for step in p["steps"]:
            why = ""
            if step["because_at"]:
                why = f" (they {step['because']} at {step['because_at']})"
            elif step["because"]:
                why = f" ({step['because']} by then)"
            out.print(f"  {step['at']}  {step['step']}: {step['outcome']}{why}", markup=False)
        if p["reason"]:
            out.print(f"  ({p['reason']})", markup=False)
    if data["again"]:
        out.print(f"again? {data['again']}", markup=False)


@app.command("simulate")
def simulate_command(journey_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """What the journey would do with today's audience; nothing is sent or written."""
    with acting(as_user) as (db, principal):
        found = explain.simulate(db=db, principal=principal, journey_id=journey_id)
        data = s.SimulationOut.model_validate(found).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    out.print(
        f"{data['audience']} in the audience; {data['out_of_scope']} out of scope, "
        f"{data['excluded']} excluded",
        markup=False,
        soft_wrap=True,
    )
    for step, n in data["reached"].items():
        extra = ""
        if step in data["branches"]:
            b = data["branches"][step]
            extra = (
                f" (yes {b['yes']}, no {b['no']}{', assumed' if step in data['assumed'] else ''})"
            )
        if data["suppressed"].get(step):
            extra += f" ({data['suppressed'][step]} suppressed)"
        out.print(f"  {step}: {n}{extra}", markup=False)
