"""``gatherly linkedin``: connected LinkedIn profiles, their sources, polling, the leads taken
in and assignment rules (SPEC B12). Connecting a member is done in a browser (the LinkedIn
page), since LinkedIn asks the member to allow it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, validated
from gatherly.contact.schemas import OwnerRef
from gatherly.core import crypto
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, session_scope
from gatherly.core.ids import MAX_ID
from gatherly.linkedin import intake, service
from gatherly.linkedin import schemas as s
from gatherly.org import service as org

app = typer.Typer(
    help="LinkedIn Lead Gen: connected profiles, their sources, polling, leads, assignment rules.",
    no_args_is_help=True,
)
out = Console()
ProfileArg = Annotated[int, typer.Argument(help="Profile id.", min=1, max=MAX_ID)]


@app.command("profiles")
def profiles_command(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The connected LinkedIn profiles the user may read."""
    with acting(as_user) as (db, principal):
        rows = [
            s.ProfileOut.model_validate(p).model_dump(mode="json")
            for p in service.list_profiles(db=db, principal=principal)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "member", "state", "last polled", "owner")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            r["state"] + (f" ({escape(r['last_error'])})" if r["last_error"] else ""),
            (r["last_polled_at"] or "never")[:19],
            f"{r['owner']['type']} {r['owner']['id']}",
        )
    out.print(table)


@app.command("sources")
def sources_command(profile_id: ProfileArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The ad accounts and company pages a profile reads."""
    with acting(as_user) as (db, principal):
        rows = [
            s.SourceOut.model_validate(x).model_dump(mode="json")
            for x in service.sources(db=db, principal=principal, profile_id=profile_id)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "source", "role", "read")
    for r in rows:
        table.add_row(str(r["id"]), r["owner_urn"], r["role"], "yes" if r["enabled"] else "no")
    out.print(table)


@app.command("source")
def source_command(
    profile_id: ProfileArg,
    source_id: Annotated[int, typer.Argument(help="Source id.", min=1, max=MAX_ID)],
    as_user: AsOpt,
    enable: Annotated[bool, typer.Option("--enable/--disable", help="Read it or not.")] = True,
) -> None:
    """Read a source's leads, or stop."""
    with acting(as_user) as (db, principal):
        row = service.set_source(
            db=db, principal=principal, profile_id=profile_id, source_id=source_id, enabled=enable
        )
        out.print(f"{row.owner_urn}: {'read' if row.enabled else 'not read'}", markup=False)


@app.command("poll")
def poll_command(profile_id: ProfileArg, as_user: AsOpt) -> None:
    """Read a profile's new leads now, here (the worker does it on its schedule)."""
    settings = crypto.resolve(Settings())
    with acting(as_user) as (db, principal):
        service.get_profile(db=db, principal=principal, profile_id=profile_id)
    engine = make_engine(settings.database_url)
    try:
        report = intake.poll(make_session_factory(engine), settings, profile_id)
    finally:
        engine.dispose()
    out.print(
        f"{report.taken} leads taken in, {report.test} test leads kept apart, "
        f"{report.seen} responses seen ({report.requests} requests)"
        + (f"; {report.error}" if report.error else ""),
        markup=False,
    )
    if report.error:
        raise typer.Exit(1)


@app.command("leads")
def leads_command(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The LinkedIn leads the user may read, newest first."""
    with acting(as_user) as (db, principal):
        rows = [
            s.LeadOut.model_validate(x).model_dump(mode="json")
            for x in every_page(
                lambda cursor: service.list_leads(
                    db=db, principal=principal, cursor=cursor, limit=500
                )
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "submitted", "email", "form", "outcome")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["submitted_at"][:19],
            escape(str(r["data"].get("email", ""))),
            escape(r["form_name"]),
            escape(r["outcome"]),
        )
    out.print(table)


@app.command("rules")
def rules_command(as_json: JsonOpt = False) -> None:
    """The assignment rules, in the order they are tried."""
    with session_scope(Settings().database_url) as db:
        rows = [
            s.RuleOut.model_validate(r).model_dump(mode="json")
            for r in service.list_rules(db=db, principal=None)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "position", "name", "when", "owner")
    for r in rows:
        when = ", ".join(
            f"{k.removesuffix('_urn')} {r[k]}"
            for k in ("form_urn", "campaign_urn", "lead_type", "country")
            if r[k]
        )
        table.add_row(
            str(r["id"]), str(r["position"]), escape(r["name"]), escape(when),
            f"{r['owner_type']} {r['owner_id']}",
        )  # fmt: skip
    out.print(table)


@app.command("rule-add")
def rule_add_command(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    owner: Annotated[str, typer.Option(help="The user (name or id) the leads go to.")],
    form_urn: Annotated[str | None, typer.Option(help="urn:li:leadGenForm:N")] = None,
    campaign_urn: Annotated[str | None, typer.Option(help="urn:li:sponsoredCampaign:N")] = None,
    lead_type: Annotated[str | None, typer.Option(help="SPONSORED, EVENT, COMPANY …")] = None,
    country: Annotated[str | None, typer.Option(help="A country code or name.")] = None,
    position: Annotated[int, typer.Option(help="Lower is tried first.", min=0)] = 0,
) -> None:
    """Send matching LinkedIn leads to another owner than the profile's (audited)."""
    with session_scope(Settings().database_url) as db:
        user = org.find_user(db=db, ref=owner, field="owner")
        body: Any = validated(
            s.RuleIn,
            name=name,
            owner={"type": "user", "id": user.id},
            form_urn=form_urn,
            campaign_urn=campaign_urn,
            lead_type=lead_type,
            country=country,
            position=position,
        )
        rule = service.save_rule(
            db=db,
            principal=None,
            rule_in=service.RuleIn(
                **body.model_dump(exclude={"owner"}), owner=OwnerRef(type="user", id=user.id)
            ),
        )
        out.print(f"made assignment rule {rule.name!r} (id {rule.id})", markup=False)


@app.command("rule-delete")
def rule_delete_command(
    rule_id: Annotated[int, typer.Argument(help="Rule id.", min=1, max=MAX_ID)],
) -> None:
    """Delete an assignment rule."""
    with session_scope(Settings().database_url) as db:
        service.delete_rule(db=db, principal=None, rule_id=rule_id)
    out.print(f"deleted assignment rule {rule_id}")
