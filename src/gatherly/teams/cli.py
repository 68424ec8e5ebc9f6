"""``gatherly teams``: connect a tenant, settings, organizers, webinars and sync (SPEC T1–T5, T12)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Column, Table
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.engine import Principal
from gatherly.access.levels import Privilege
from gatherly.clitools import JsonOpt, print_json
from gatherly.core import crypto
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, session_scope, transaction
from gatherly.core.exceptions import GatherlyError, ValidationFailed
from gatherly.org import service as org
from gatherly.org import service as org_service
from gatherly.org.directory import load_principal
from gatherly.teams import service as teams
from gatherly.teams.models import (
    KIND_LABELS,
    RUN_FAILED,
    RUN_PARTIAL,
    TeamsConnection,
    TeamsOrganizer,
)
from gatherly.teams.sync import ProgressCallback, RunReport, run_sync

app = typer.Typer(
    help="Microsoft Teams webinar and town hall sync: connection, settings, organizers, "
    "webinars, sync.",
    no_args_is_help=True,
)
out = Console()
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Act as this user (username or id) with their rights; "
        "default: the operator, with full rights.",
    ),
]


DefaultOwnerOpt = Annotated[
    str | None, typer.Option(help="Username owning webinars of unmapped organizers.")
]


def _principal(db: Session, ref: str | None) -> Principal:
    """The ``--as`` user, or the operator (full rights, recorded as nobody)."""
    if ref is not None:
        return load_principal(db, org_service.find_user(db=db, ref=ref, field="as").id)
    return Principal(
        user_id=0,
        username="(operator)",
        business_unit_id=org.get_root(db=db).id,
        disabled=False,
        team_ids=frozenset(),
        grants=(),
        system_admin_role="command-line operator",
        dialect=db.get_bind().dialect.name,
    )


def _by(principal: Principal) -> int | None:
    return principal.user_id or None


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _settings_dict(db: Session, c: TeamsConnection) -> dict[str, Any]:
    owner = org_service.get_user(db=db, user_id=c.default_owner_id) if c.default_owner_id else None
    return {
        "tenant_id": c.tenant_id,
        "client_id": c.client_id,
        "client_secret_source": "stored (encrypted)"
        if c.client_secret_encrypted
        else "from GATHERLY_TEAMS_CLIENT_SECRET",
        "authority": c.authority,
        "graph_url": c.graph_url,
        "status": c.status,
        "status_detail": c.status_detail,
        "granted_permissions": c.granted_permissions,
        "checked_at": c.checked_at,
        "sync_enabled": c.sync_enabled,
        "organizer_exclusion_domains": c.organizer_exclusion_domains,
        "contact_exclusion_domains": c.contact_exclusion_domains,
        "default_owner": owner.username if owner else None,
        "sync_interval_minutes": c.sync_interval_minutes,
        "policy_name": c.policy_name,
        "notifications_enabled": c.notifications_enabled,
        "public_base_url": c.public_base_url,
    }


def _print_status(data: dict[str, Any]) -> None:
    colour = {"connected": "green", "limited": "yellow"}.get(data["status"], "red")
    out.print(
        f"[{colour}]{escape(data['status'])}[/]: tenant {escape(data['tenant_id'])}, "
        f"app {escape(data['client_id'])}",
        soft_wrap=True,
    )
    out.print(data["status_detail"], markup=False, soft_wrap=True)


# ------------------------------------------------------------------ connection (T1)


@app.command()
def connect(
    tenant_id: Annotated[str, typer.Option(help="Directory (tenant) id.")],
    client_id: Annotated[str, typer.Option(help="Application (client) id.")],
    client_secret: Annotated[
        str | None,
        typer.Option(
            help="Client secret, stored encrypted; '-' prompts for it. Omit it to read "
            "GATHERLY_TEAMS_CLIENT_SECRET at each sync (then nothing is stored).",
        ),
    ] = None,
    authority: Annotated[
        str | None, typer.Option(help="Token authority (default: login.microsoftonline.com).")
    ] = None,
    graph_url: Annotated[
        str | None, typer.Option(help="Graph base URL (default: graph.microsoft.com/v1.0).")
    ] = None,
    default_owner: DefaultOwnerOpt = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the app's token and permissions, then save the connection."""
    if client_secret == "-":  # noqa: S105 - "-" asks for a prompt
        client_secret = typer.prompt("client secret", hide_input=True)
    settings = crypto.resolve(Settings())
    with session_scope(settings.database_url) as db:
        principal = _principal(db, as_user)
        teams.require_admin(principal)
        owner_id = (
            org_service.find_user(db=db, ref=default_owner, field="default_owner").id
            if default_owner
            else None
        )
        connection, _ = teams.connect(
            db=db,
            settings=settings,
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=SecretStr(client_secret) if client_secret is not None else None,
            authority=authority,
            graph_url=graph_url,
            default_owner_id=owner_id,
            by_user_id=_by(principal),
        )
        data = _settings_dict(db, connection)
    print_json(data) if as_json else _print_status(data)


@app.command("test")
def check_command(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Re-check the saved connection's token and permissions."""
    settings = crypto.resolve(Settings())
    failure: GatherlyError | None = None
    with session_scope(settings.database_url) as db:
        teams.require_admin(_principal(db, as_user))
        try:
            connection, _ = teams.check_connection(db=db, settings=settings)
        except GatherlyError as exc:
            failure = exc  # the failed status is saved, then reported
        else:
            data = _settings_dict(db, connection)
    if failure is not None:
        raise failure
    print_json(data) if as_json else _print_status(data)


@app.command("disconnect")
def disconnect_command(as_user: AsOpt = None) -> None:
    """Forget the connection and its secret (synced events and contacts stay)."""
    with session_scope(Settings().database_url) as db:
        principal = _principal(db, as_user)
        teams.require_admin(principal)
        teams.disconnect(db=db, by_user_id=_by(principal))
    out.print("disconnected from Microsoft Teams")


# ------------------------------------------------------------------ settings (T3)


@app.command("settings")
def settings_command(
    sync: Annotated[
        bool | None, typer.Option("--sync/--no-sync", help="Sync webinar data at all.")
    ] = None,
    organizer_exclusion: Annotated[
        list[str] | None,
        typer.Option(help="Domain whose organizers are never synced; repeat; replaces the list."),
    ] = None,
    contact_exclusion: Annotated[
        list[str] | None,
        typer.Option(help="Domain whose people never become contacts; repeat; replaces the list."),
    ] = None,
    clear_organizer_exclusions: Annotated[
        bool, typer.Option(help="Empty the organizer exclusions.")
    ] = False,
    clear_contact_exclusions: Annotated[
        bool, typer.Option(help="Empty the contact exclusions.")
    ] = False,
    default_owner: DefaultOwnerOpt = None,
    interval: Annotated[
        int | None, typer.Option(help="Minutes between scheduled syncs (5–1440).")
    ] = None,
    policy_name: Annotated[
        str | None, typer.Option(help="Application access policy name in the remedies.")
    ] = None,
    notifications: Annotated[
        bool | None,
        typer.Option(
            "--notifications/--no-notifications",
            help="Subscribe to Graph's change notifications (needs --public-url).",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="This installation's base URL as Microsoft Graph reaches it (https://…); "
            "'' clears it."
        ),
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the global Teams settings; options change them (all validated first)."""
    changes: dict[str, Any] = {}
    for name, values, clear in (
        ("organizer_exclusion_domains", organizer_exclusion, clear_organizer_exclusions),
        ("contact_exclusion_domains", contact_exclusion, clear_contact_exclusions),
    ):
        if values and clear:
            raise ValidationFailed("give the domains or the clear option, not both", field=name)
        if values or clear:
            changes[name] = values or []
    if sync is not None:
        changes["sync_enabled"] = sync
    if interval is not None:
        changes["sync_interval_minutes"] = interval
    if policy_name is not None:
        changes["policy_name"] = policy_name
    if public_url is not None:
        changes["public_base_url"] = public_url or None
    if notifications is not None:
        changes["notifications_enabled"] = notifications
    with session_scope(Settings().database_url) as db:
        principal = _principal(db, as_user)
        if default_owner is not None:
            changes["default_owner_id"] = org_service.find_user(
                db=db, ref=default_owner, field="default_owner"
            ).id
        teams.require_admin(principal, Privilege.WRITE if changes else Privilege.READ)
        connection = teams.update_settings(db=db, **changes, by_user_id=_by(principal))
        data = _settings_dict(db, connection)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        text = ", ".join(value) if isinstance(value, list) else value
        out.print(f"{key}: {'' if text is None else text}", markup=False, soft_wrap=True)


@app.command("subscriptions")
def subscriptions_command(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The change-notification subscriptions and their health."""
    with session_scope(Settings().database_url) as db:
        rows: list[dict[str, Any]] = [
            {
                "id": v.subscription.id,
                "resource": v.subscription.resource,
                "scope": v.subscription.scope,
                "webinar": v.webinar_name,
                "status": v.subscription.status,
                "expires_at": _iso(v.subscription.expires_at),
                "last_notification_at": _iso(v.subscription.last_notification_at),
                "last_catch_up_at": _iso(v.subscription.last_catch_up_at),
                "last_error": v.subscription.last_error,
            }
            for v in teams.list_subscriptions(db=db, principal=_principal(db, as_user))
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(
            "no subscriptions: turn change notifications on with `gatherly teams settings "
            "--notifications --public-url https://…`; the worker subscribes within a minute"
        )
        return
    table = Table("what", "status", "expires", "last notification", "last catch-up")
    for r in rows:
        what = r["scope"] if r["webinar"] is None else f"{r['webinar']}: {r['scope']}"
        table.add_row(
            escape(what),
            escape(r["status"] + (f" ({r['last_error']})" if r["last_error"] else "")),
            r["expires_at"] or "",
            r["last_notification_at"] or "never",
            r["last_catch_up_at"] or "never",
        )
    out.print(table)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ------------------------------------------------------------------ organizers (T2, T4)


def _organizer_dict(connection: TeamsConnection, o: TeamsOrganizer) -> dict[str, Any]:
    return {
        "id": o.id,
        "graph_user_id": o.graph_user_id,
        "display_name": o.display_name,
        "email": o.email,
        "status": o.status,
        "status_detail": o.status_detail,
        "sync_new_by_default": o.sync_new_by_default,
        "sync_recordings": o.sync_recordings,
        "user_id": o.user_id,
        "organizes": o.organizes,
        "probed_at": o.probed_at.isoformat() if o.probed_at else None,
        "remedy": teams.remedy(connection, o),
    }


def _print_remedy(o: dict[str, Any], seen: set[str]) -> None:
    """The organizer's remedy, leaving out lines already printed for another organizer."""
    out.print(
        f"\n{o['display_name'] or o['graph_user_id']} ({o['status']}, object id "
        f"{o['graph_user_id']}):",
        markup=False,
        soft_wrap=True,
    )
    for line in o["remedy"]:
        if line not in seen:
            out.print(f"  {line}", markup=False, soft_wrap=True, highlight=False)
            seen.add(line)


def _tick(value: bool) -> str:
    return "✓" if value else ""


@app.command("organizers")
def organizers(
    everyone: Annotated[
        bool, typer.Option("--all", help="Every directory user, not only organizers.")
    ] = False,
    search: Annotated[
        str | None, typer.Option("--search", help="Only users whose name or email has this.")
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Organizers (and users mapped to Gatherly users) with their sync status; prints the fix
    for each one that cannot sync. Other directory users: --all, --search."""
    with session_scope(Settings().database_url) as db:
        connection = teams.get_connection(db)
        principal = _principal(db, as_user)
        found = teams.list_organizers(
            db=db, principal=principal, everyone=everyone or bool(search), query=search
        )
        rows = [_organizer_dict(connection, o) for o in found]
        summary = None
        if not search and teams.is_admin(principal, Privilege.READ):
            summary = teams.directory_summary(db=db, principal=principal)
    if as_json:
        print_json(rows)
        return
    if summary is not None and summary.others_blocked and not everyone:
        out.print(
            f"{summary.others_blocked} other directory users have no access policy; they "
            "organize nothing Gatherly can see, so they need nothing (list them with --all)"
        )
    if not rows:
        out.print("no users match" if search else "no organizers yet: run `gatherly teams sync`")
        return
    table = Table("id", "name", "email", "status", "sync new", "recordings")
    for o in rows:
        table.add_row(
            str(o["id"]),
            escape(o["display_name"]),
            escape(o["email"] or ""),
            escape(o["status"]),
            _tick(o["sync_new_by_default"]),
            _tick(o["sync_recordings"]),
        )
    out.print(table)
    seen: set[str] = set()
    for o in rows:
        if o["remedy"]:
            _print_remedy(o, seen)


@app.command("organizer")
def organizer(
    ref: Annotated[str, typer.Argument(help="Organizer email, Graph user id or Gatherly id.")],
    sync_new: Annotated[
        bool | None,
        typer.Option("--sync-new/--no-sync-new", help="Tick Sync on newly found webinars."),
    ] = None,
    recordings: Annotated[
        bool | None,
        typer.Option("--recordings/--no-recordings", help="Sync recordings and transcripts."),
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one organizer; options change their per-user settings."""
    with session_scope(Settings().database_url) as db:
        principal = _principal(db, as_user)
        found = teams.find_organizer(db=db, principal=principal, ref=ref)
        if sync_new is not None or recordings is not None:
            found = teams.update_organizer(
                db=db,
                principal=principal,
                organizer_id=found.id,
                sync_new_by_default=sync_new,
                sync_recordings=recordings,
            )
        data = _organizer_dict(teams.get_connection(db), found)
    if as_json:
        print_json(data)
        return
    for key in ("id", "display_name", "email", "graph_user_id", "status"):
        out.print(f"{key}: {data[key] or ''}", markup=False, soft_wrap=True)
    out.print(f"sync new webinars by default: {'yes' if data['sync_new_by_default'] else 'no'}")
    out.print(f"sync recordings and transcripts: {'yes' if data['sync_recordings'] else 'no'}")
    if data["remedy"]:
        _print_remedy(data, set())


@app.command("check")
def check_organizer(
    ref: Annotated[str, typer.Argument(help="User email, Graph user id or Gatherly id.")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask Teams now whether the access policy covers one user, and record the answer."""
    settings = crypto.resolve(Settings())
    with session_scope(settings.database_url) as db:
        principal = _principal(db, as_user)
        found = teams.find_organizer(db=db, principal=principal, ref=ref)
        found = teams.check_organizer(
            db=db, principal=principal, organizer_id=found.id, settings=settings
        )
        data = _organizer_dict(teams.get_connection(db), found)
    if as_json:
        print_json(data)
        return
    name = data["display_name"] or data["graph_user_id"]
    out.print(f"{name}: {data['status']}", markup=False, soft_wrap=True)
    if data["remedy"]:
        _print_remedy(data, set())


# ------------------------------------------------------------------ webinars (T4, T5)


@app.command("webinars")
def webinars(
    organizer_ref: Annotated[
        str | None, typer.Option("--organizer", help="Only this organizer (email or id).")
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Webinars and town halls found in Teams, newest first, with their Sync tick and event."""
    with session_scope(Settings().database_url) as db:
        principal = _principal(db, as_user)
        organizer_id = (
            teams.find_organizer(db=db, principal=principal, ref=organizer_ref).id
            if organizer_ref
            else None
        )
        rows: list[dict[str, Any]] = [
            {
                "id": w.id,
                "graph_id": w.graph_id,
                "kind": w.kind,
                "name": w.display_name,
                "start_at": w.start_at,
                "end_at": w.end_at,
                "status": w.status,
                "organizer": o.display_name,
                "organizer_email": o.email,
                "sync_enabled": w.sync_enabled,
                "event_id": w.event_id,
                "last_changed_at": w.last_changed_at,
                "last_error": w.last_error,
            }
            for w, o in teams.list_webinars(db=db, principal=principal, organizer_id=organizer_id)
        ]
    if as_json:
        print_json(rows)
        return
    kind = Column("type", no_wrap=True)
    table = Table(
        "id", kind, "name", "start (UTC)", "status", "organizer", "sync", "event", "error"
    )
    for r in rows:
        table.add_row(
            str(r["id"]),
            KIND_LABELS.get(r["kind"], r["kind"]),
            escape(r["name"]),
            _when(r["start_at"]),
            escape(r["status"]),
            escape(r["organizer"]),
            _tick(r["sync_enabled"]),
            str(r["event_id"] or ""),
            escape(r["last_error"]),
        )
    out.print(table)


@app.command("tick")
def tick(
    refs: Annotated[
        list[str], typer.Argument(help="Webinar or town hall ids (Gatherly or Graph).")
    ],
    off: Annotated[bool, typer.Option("--off", help="Untick instead.")] = False,
    as_user: AsOpt = None,
) -> None:
    """Tick Sync on webinars so their data flows in (--off unticks)."""
    with session_scope(Settings().database_url) as db:
        principal = _principal(db, as_user)
        names = []
        for ref in refs:
            webinar = teams.find_webinar(db=db, principal=principal, ref=ref)
            teams.set_webinar_sync(
                db=db, principal=principal, webinar_id=webinar.id, enabled=not off
            )
            names.append(f"{webinar.id} {webinar.display_name}")
    for name in names:
        out.print(f"{'unticked' if off else 'ticked'} {name}", markup=False, soft_wrap=True)


# ------------------------------------------------------------------ sync (T12)


def _counts(counter: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items() if v) or "none"


def print_report(report: RunReport) -> None:
    """A run's summary: fetched, changes, the dry-run plan and errors."""
    data = report.as_dict()
    run = "dry run" if report.dry_run else f"run {report.run_id}"
    colour = {RUN_FAILED: "red", RUN_PARTIAL: "yellow"}.get(report.status, "green")
    out.print(f"sync [{colour}]{report.status}[/] ({run})")
    for note in report.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    out.print(f"fetched: {_counts(data['fetched'])}", markup=False, soft_wrap=True)
    changes = _counts(data["changes"])
    out.print(
        f"{'would change' if report.dry_run else 'changes'}: "
        f"{'no changes' if changes == 'none' else changes}",
        markup=False,
        soft_wrap=True,
    )
    for plan in report.plan:
        out.print(
            f"\n{plan['webinar']}: event {plan['event']}; {_counts(plan['changes'])}",
            markup=False,
            soft_wrap=True,
        )
        if plan["contacts_to_create"]:
            out.print(
                f"  contacts to create ({len(plan['contacts_to_create'])}): "
                + ", ".join(plan["contacts_to_create"]),
                markup=False,
                soft_wrap=True,
            )
        for reason, people in plan["excluded"].items():
            out.print(
                f"  not counted ({reason}): {', '.join(people)}", markup=False, soft_wrap=True
            )
        if plan.get("anonymous_attendees"):
            out.print(f"  anonymous attendees (counted, no contact): {plan['anonymous_attendees']}")
    if report.errors:
        out.print(f"\n[red]errors ({len(report.errors)}):[/]")
    for e in report.errors:
        who = f"{e['scope']} {e['name'] or e['id']}".strip()
        out.print(f"  {who}: {e['message']}", markup=False, soft_wrap=True)


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A transient Rich progress bar on stderr, and the callback a sync reports to."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("connecting to Microsoft Graph", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total or None, description=label)

        yield progress


def run_with_progress(
    factory: sessionmaker[Session], settings: Settings, **options: Any
) -> RunReport:
    """``run_sync`` with a progress bar (the demo's own runs, as the operator)."""
    with progress_bar() as progress:
        return run_sync(factory, settings, progress=progress, **options)


@app.command("sync")
def sync_command(
    webinar: Annotated[
        str | None,
        typer.Option(help="Sync now: only this webinar or town hall (Gatherly or Graph id)."),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="Every organizer and ticked webinar (the default without --webinar)."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write nothing; print what would change.")
    ] = False,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync now with a progress bar and summarise; exit 0 succeeded, 2 partial, 1 failed."""
    if everything and webinar is not None:
        raise ValidationFailed("give --webinar ID or --all, not both", field="all")
    settings = crypto.resolve(Settings())
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as db, progress_bar() as progress:
            principal = _principal(db, as_user)
            found = (
                teams.find_webinar(db=db, principal=principal, ref=webinar)
                if webinar is not None
                else None
            )
            report = teams.sync_now(
                db=db,
                principal=principal,
                session_factory=factory,
                settings=settings,
                webinar_id=found.id if found is not None else None,
                dry_run=dry_run,
                progress=progress,
            )
    finally:
        engine.dispose()
    print_json(report.as_dict()) if as_json else print_report(report)
    if report.status in (RUN_FAILED, RUN_PARTIAL):
        raise typer.Exit(1 if report.status == RUN_FAILED else 2)
