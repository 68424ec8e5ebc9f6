"""The ``gatherly`` command: database, server, demo, users, BUs, roles, features, access; domain
sub-apps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import gatherly.models  # noqa: F401 - registers every record type
from gatherly.access import engine as access
from gatherly.access import registry
from gatherly.access.levels import Privilege
from gatherly.clitools import print_json
from gatherly.core import crypto, migrate
from gatherly.core.bounds import parse_id
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, session_scope, transaction
from gatherly.core.exceptions import Forbidden, GatherlyError, NotFound
from gatherly.event.cli import contacts_app, events_app
from gatherly.jobs.cli import worker as worker_command
from gatherly.org import defaults, directory
from gatherly.org import service as org
from gatherly.org.cli import audit_app, tokens_app
from gatherly.org.models import BusinessUnit, FeatureSwitch, SecurityRole, User
from gatherly.secret_key_cli import app as secret_key_app
from gatherly.segment.cli import lists_app, segments_app
from gatherly.teams.cli import app as teams_app

app = typer.Typer(
    help="Gatherly: Teams webinars into marketing events, with BU security.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their API tokens.", no_args_is_help=True)
bu_app = typer.Typer(help="Business units.", no_args_is_help=True)
roles_app = typer.Typer(help="Security roles and their assignment.", no_args_is_help=True)
access_app = typer.Typer(help="The access engine.", no_args_is_help=True)
features_app = typer.Typer(
    help="Installation-wide feature switches (BU scoping, segment totals).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(bu_app, name="bu")
app.add_typer(roles_app, name="roles")
app.add_typer(access_app, name="access")
app.add_typer(features_app, name="features")
app.add_typer(teams_app, name="teams")
app.add_typer(events_app, name="events")
app.add_typer(contacts_app, name="contacts")
app.add_typer(segments_app, name="segments")
app.add_typer(lists_app, name="lists")
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")
app.add_typer(secret_key_app, name="secret-key")
app.command(name="worker")(worker_command)

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@contextmanager
def session() -> Iterator[Session]:
    """A committed-on-success session on the configured database."""
    with session_scope(Settings().database_url) as db:
        yield db


def upgrade_database(settings: Settings) -> None:
    """Run migrations, then make sure the root BU and built-in roles exist."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with transaction(make_session_factory(engine)) as db:
            defaults.ensure_defaults(db)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ db, serve, demo


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations and create the root BU and built-in roles (idempotent)."""
    settings = Settings()
    upgrade_database(settings)
    out.print(f"database is up to date: {make_engine(settings.database_url).url!r}", markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run a job worker in this process (Sync now, scheduled syncs); turn it off "
            "when separate `gatherly worker` processes consume the queue.",
        ),
    ] = True,
) -> None:
    """Upgrade the database, then serve the API (docs at /api/v1/docs) and, by default, a worker."""
    import uvicorn

    from gatherly.app import create_app
    from gatherly.jobs.queue import Jobs

    # The secret key, once: a weak one is warned about, the old public default refused.
    settings = crypto.resolve(Settings())
    upgrade_database(settings)
    consumer = Jobs(settings).consumer(workers=2) if worker else None
    if consumer is not None:
        consumer.start()
    try:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level=settings.log_level.lower()
        )
    finally:
        if consumer is not None:
            consumer.stop()


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the worker and the server.")
    ] = True,
    fixture: Annotated[
        Path, typer.Option(help="Sample Teams tenant for the bundled Graph emulator.")
    ] = Path("examples/sample-tenant.json"),
    emulator_port: Annotated[
        int, typer.Option(help="Port of the Graph emulator (0: any free port).")
    ] = 8765,
) -> None:
    """Seed the sample organisation, sync the emulated Teams tenant, start the worker and serve."""
    from contextlib import ExitStack

    from gatherly import demo as sample
    from gatherly.core.background import serve_in_thread
    from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
    from gatherly.segment import jobs as segment_jobs
    from gatherly.teams.cli import print_report, run_with_progress

    settings = crypto.resolve(Settings())  # generates var/secret.key on the first run
    upgrade_database(settings)
    tenant = load_fixture(fixture)
    with session() as db:
        sample.seed(db)
        tokens = sample.issue_tokens(db)
        total = sample.contact_total(db)
    base = f"http://{host}:{port}"
    table = Table(title=f"Sample users ({total} contacts in all)")
    for col in ("user", "role", "business unit"):
        table.add_column(col)
    table.add_column("API token", no_wrap=True, overflow="ignore")
    for t in tokens:
        table.add_row(t.username, t.role, t.business_unit, t.token)
    Console(width=200).print(table)
    by_user = {t.username: t for t in tokens}
    out.print(
        f"Web UI: open {base}/ and sign in as any sample user above (admin is the system "
        "administrator; gustav sees only Germany) with the password 'gatherly-demo'."
    )
    out.print("How many contacts each user may read — the same list, four security roles:")
    for name in ("olivia", "emma", "gustav", "ulla"):
        t = by_user[name]
        out.print(f"  # {name}: {t.role} in {t.business_unit}", markup=False)
        out.print(
            f"  curl -s -H 'Authorization: Bearer {t.token}' {base}/api/v1/contacts/count",
            soft_wrap=True,
        )
    with ExitStack() as stack:
        try:
            emulator = stack.enter_context(
                serve_in_thread(create_emulator_app(EmulatorState(tenant)), port=emulator_port)
            )
        except (OSError, RuntimeError):  # the port is taken: any free one will do
            emulator = stack.enter_context(
                serve_in_thread(create_emulator_app(EmulatorState(tenant)))
            )
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        factory = make_session_factory(engine)
        with transaction(factory) as db:
            sample.connect_sample_tenant(db, settings, fixture=tenant, emulator_url=emulator)
        out.print(
            f"\nMicrosoft Teams: the sample tenant is served by the Graph emulator at {emulator}"
        )
        run_with_progress(factory, settings)  # discovers organizers and their webinars
        with transaction(factory) as db:
            ticked = sample.tick_everything(db)
        out.print(f"Syncing {ticked} webinars into marketing events …")
        print_report(run_with_progress(factory, settings))
        out.print(
            "\nMarketing events as Gustav (Marketer, Germany; owns the synced webinars) sees them:"
        )
        out.print(
            f"  curl -s -H 'Authorization: Bearer {by_user['gustav'].token}' {base}/api/v1/events",
            soft_wrap=True,
        )
        with transaction(factory) as db:
            samples = sample.sample_segments(db)
        segment_jobs.process_changes(factory)
        out.print("\nSegments (materialised; members and counts differ per viewer, SPEC B5):")
        for item in samples:
            out.print(f"  #{item.id} {item.name} (owner {item.owner})", markup=False)
        first = samples[0].id
        for name in ("olivia", "gustav"):
            out.print(
                f"  curl -s -H 'Authorization: Bearer {by_user[name].token}' "
                f"{base}/api/v1/segments/{first}/members",
                soft_wrap=True,
            )
        out.print("Organizer statuses and the access-policy remedy: gatherly teams organizers")
        out.print(f"API docs: {base}/api/v1/docs")
        if serve_after:
            out.print("Worker: starting with the server (scheduled refreshes and Sync now).")
            serve(host=host, port=port, worker=True)


@app.command("graph-emulator")
def graph_emulator(
    fixture: Annotated[
        Path, typer.Option(help="Fixture JSON: tenant, applications, users, webinars.")
    ],
    port: Annotated[int, typer.Option(help="TCP port.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the bundled Microsoft Graph emulator on a fixture (token endpoint, /v1.0, /_emulator)."""
    import uvicorn

    from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture

    state = EmulatorState(load_fixture(fixture))
    tenant = state.tenant["id"]
    base = f"http://{host}:{port}"
    out.print(f"Graph emulator for tenant {tenant} on {base}", markup=False, soft_wrap=True)
    out.print(f"  token endpoint: {base}/{tenant}/oauth2/v2.0/token", markup=False, soft_wrap=True)
    uvicorn.run(create_emulator_app(state), host=host, port=port, log_level="warning")


# ------------------------------------------------------------------ users


@users_app.command("create")
def users_create(
    username: str,
    bu: Annotated[str | None, typer.Option(help="BU name or id (default: the root).")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    full_name: Annotated[str, typer.Option()] = "",
    role: Annotated[list[str] | None, typer.Option(help="Role name; repeat for several.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Sign-in password (prompted if '-').")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user, optionally with roles."""
    from gatherly.core.schemas import normalize_email

    if password == "-":  # noqa: S105 - "-" asks for a prompt
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with session() as db:
        if email:
            try:
                email = normalize_email(email)
            except ValueError as exc:
                raise GatherlyError(str(exc), field="email") from None
        user = org.create_user(
            db=db,
            username=username,
            business_unit_id=org.find_bu(db=db, ref=bu).id,
            email=email,
            full_name=full_name,
            password=password,
        )
        for name in role or []:
            org.assign_role(
                db=db, role_id=org.get_role_by_name(db=db, name=name).id, user_id=user.id
            )
        data = {"id": user.id, "username": user.username, "business_unit_id": user.business_unit_id}
    print_json(data) if as_json else out.print(
        f"created user {username!r} (id {data['id']})", markup=False
    )


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users with their BU and roles."""
    with session() as db:
        names = {bu.id: bu.name for bu in db.execute(select(BusinessUnit)).scalars()}
        rows: list[dict[str, Any]] = [
            {
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "business_unit": names[u.business_unit_id],
                "disabled": u.disabled,
                "roles": [r.name for r in org.roles_of_user(db=db, user_id=u.id)],
            }
            for u in db.execute(select(User).order_by(User.username)).scalars()
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "username", "business unit", "roles", "disabled")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["username"]),
            escape(r["business_unit"]),
            escape(", ".join(r["roles"])),
            "yes" if r["disabled"] else "",
        )
    out.print(table)


@users_app.command("token")
def users_token(
    username: str,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    expires_days: Annotated[
        int | None,
        typer.Option(help="Expire after this many days (default: the token policy's)."),
    ] = None,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="Never expire (if the policy allows it).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token for a user and print it (shown this once; audited)."""
    with session() as db:
        user = org.find_user(db=db, ref=username)
        token, secret = org.create_token(
            db=db,
            user_id=user.id,
            name=name,
            expires_in_days=expires_days,
            never_expires=never_expires,
        )
        data = {"id": token.id, "user": user.username, "token": secret}
        data["expires_at"] = token.expires_at
    if as_json:
        print_json(data)
    else:
        sys.stdout.write(secret + "\n")


@users_app.command("revoke-token")
def users_revoke_token(username: str, token_id: int) -> None:
    """Revoke one of a user's API tokens."""
    with session() as db:
        org.revoke_token(db=db, token_id=token_id, user_id=org.find_user(db=db, ref=username).id)
    out.print(f"token {token_id} revoked")


# ------------------------------------------------------------------ business units


@bu_app.command("create")
def bu_create(
    name: str,
    parent: Annotated[
        str | None, typer.Option(help="Parent BU name or id (default: the root).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a business unit (and its default team)."""
    with session() as db:
        bu = org.create_bu(db=db, name=name, parent_id=org.find_bu(db=db, ref=parent).id)
        data = {"id": bu.id, "name": bu.name, "parent_id": bu.parent_id}
    print_json(data) if as_json else out.print(
        f"created business unit {name!r} (id {data['id']})", markup=False
    )


@bu_app.command("list")
def bu_list(as_json: JsonOpt = False) -> None:
    """Show the BU tree."""
    with session() as db:
        rows: list[dict[str, Any]] = [
            {"id": b.id, "name": b.name, "parent_id": b.parent_id}
            for b in db.execute(select(BusinessUnit).order_by(BusinessUnit.id)).scalars()
        ]
    if as_json:
        print_json(rows)
        return
    nodes: dict[int | None, Any] = {}
    root = next(r for r in rows if r["parent_id"] is None)
    nodes[root["id"]] = tree = Tree(f"{escape(root['name'])} [dim](id {root['id']})[/]")
    pending = [r for r in rows if r is not root]
    while pending:
        rest = []
        for r in pending:
            if r["parent_id"] in nodes:
                nodes[r["id"]] = nodes[r["parent_id"]].add(
                    f"{escape(r['name'])} [dim](id {r['id']})[/]"
                )
            else:
                rest.append(r)
        pending = rest
    out.print(tree)


# ------------------------------------------------------------------ roles


@roles_app.command("list")
def roles_list(as_json: JsonOpt = False) -> None:
    """List roles with their privileges."""
    with session() as db:
        rows: list[dict[str, Any]] = []
        for role in db.execute(select(SecurityRole).order_by(SecurityRole.name)).scalars():
            privileges = org.role_privileges(db=db, role_id=role.id)
            rows.append(
                {
                    "id": role.id,
                    "name": role.name,
                    "builtin": role.is_builtin,
                    "system_admin": role.is_system_admin,
                    "description": role.description,
                    "privileges": {
                        t: {p: lv.label for p, lv in pr.items()} for t, pr in privileges.items()
                    },
                }
            )
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "contact read", "description")
    for r in rows:
        level = (
            "all" if r["system_admin"] else r["privileges"].get("contact", {}).get("read", "none")
        )
        table.add_row(str(r["id"]), escape(r["name"]), level, escape(r["description"]))
    out.print(table)


@roles_app.command("assign")
def roles_assign(
    role: Annotated[str, typer.Argument(help="Role name or id.")],
    user: Annotated[str | None, typer.Option(help="Username or id.")] = None,
    team: Annotated[str | None, typer.Option(help="Team id.")] = None,
) -> None:
    """Assign a role to a user or a team."""
    if (user is None) == (team is None):
        raise GatherlyError("give exactly one of --user or --team", field="user")
    team_id = None if team is None else parse_id(team)
    if team is not None and team_id is None:
        raise GatherlyError(f"--team takes a team id, not {team!r}", field="team")
    with session() as db:
        role_id = parse_id(role)
        r = (
            org.get_role(db=db, role_id=role_id)
            if role_id is not None
            else org.get_role_by_name(db=db, name=role)
        )
        if user is not None:
            org.assign_role(db=db, role_id=r.id, user_id=org.find_user(db=db, ref=user).id)
        else:
            org.assign_role(
                db=db, role_id=r.id, team_id=org.get_team(db=db, team_id=team_id or 0).id
            )
    out.print(
        f"assigned {r.name!r} to {'user ' + user if user else 'team ' + str(team)}", markup=False
    )


# ------------------------------------------------------------------ feature switches


class Switch(StrEnum):
    """A switch position."""

    on = "on"
    off = "off"


def _feature_dict(db: Session, switch: FeatureSwitch) -> dict[str, Any]:
    by = db.get(User, switch.changed_by_id) if switch.changed_by_id else None
    return {
        "name": switch.name,
        "label": org.FEATURES[switch.name],
        "enabled": bool(switch.enabled),
        "changed_at": switch.changed_at,
        "changed_by": by.username if by else None,
    }


@features_app.command("list")
def features_list(as_json: JsonOpt = False) -> None:
    """Every feature switch, on or off, with who changed it last."""
    with session() as db:
        rows = [_feature_dict(db, f) for f in org.features(db=db)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "state", "changed (UTC)", "by", "what it does")
    for r in rows:
        changed = r["changed_at"].strftime("%Y-%m-%d %H:%M") if r["changed_at"] else ""
        table.add_row(
            r["name"],
            "on" if r["enabled"] else "off",
            changed,
            escape(r["changed_by"] or ""),
            escape(r["label"]),
        )
    out.print(table)


@features_app.command("set")
def features_set(
    name: Annotated[str, typer.Argument(help=f"The switch: {', '.join(org.FEATURES)}.")],
    state: Annotated[Switch, typer.Argument(help="on or off.")],
    as_user: Annotated[
        str, typer.Option("--as", help="The system administrator making the change (audited).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Turn a switch on or off (system administrators only; audited)."""
    with session() as db:
        user = org.find_user(db=db, ref=as_user, field="as")
        if not directory.load_principal(db, user.id).is_system_admin:
            raise Forbidden(
                "forbidden: only a system administrator may turn feature switches on or off",
                field="as",
            )
        before = org.feature_enabled(db=db, name=name)
        data = _feature_dict(
            db, org.set_feature(db=db, name=name, enabled=state == Switch.on, by_user_id=user.id)
        )
    data["previous"] = before
    if as_json:
        print_json(data)
        return
    was, now = ("on" if before else "off"), ("on" if data["enabled"] else "off")
    if was == now:
        out.print(f"{name} is already {now}; nothing changed", markup=False)
        return
    out.print(f"{name}: {was} -> {now} (by {user.username}, audited)", markup=False)
    if name == org.BU_SCOPING:
        out.print(
            "every segment's membership is recomputed by the worker "
            "(or now: gatherly segments refresh --pending)",
            markup=False,
            soft_wrap=True,
        )


# ------------------------------------------------------------------ access


@access_app.command("explain")
def access_explain(
    user: Annotated[str, typer.Option(help="Username or id.")],
    record_type: Annotated[str, typer.Option("--type", help="Record type, e.g. contact.")],
    record_id: Annotated[int | None, typer.Option("--id", help="Record id.")] = None,
    privilege: Annotated[Privilege, typer.Option(help="Privilege to explain.")] = Privilege.READ,
    as_json: JsonOpt = False,
) -> None:
    """Explain why a user may or may not act on a record."""
    with session() as db:
        principal = directory.load_principal(db, org.find_user(db=db, ref=user).id)
        rtype = registry.get(record_type, field="type")
        record = None
        if not rtype.organization_owned:
            if record_id is None:
                raise GatherlyError("--id is required for this record type", field="id")
            record = db.get(rtype.model, record_id)
            if record is None:
                raise NotFound(f"{record_type} {record_id} not found", field="id")
        result = access.explain(db, principal, privilege, record_type, record).as_dict()
    if as_json:
        print_json(result)
        return
    out.print(("[green]" if result["allowed"] else "[red]") + escape(result["summary"]) + "[/]")
    for p in result["paths"]:
        mark = "[green]✓[/]" if p["granted"] else "[dim]✗[/]"
        out.print(f"  {mark} {p['path']}: {escape(p['detail'])}")


def main() -> None:
    """Entry point: run the app, turning expected errors into one line and exit code 1."""
    err = Console(stderr=True)
    try:
        app()
    except GatherlyError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.print(f"error{where}: {exc.message}", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:
        err.print(
            f"database error: {str(exc).splitlines()[0]}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None
