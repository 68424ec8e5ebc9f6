"""The organisation at the command line: ``gatherly users``, ``bu``, ``roles``, ``features``,
``access``, ``audit`` and ``tokens``, for an operator (who holds the database, so acts as the
installation itself unless ``--as`` names a user), through the same services as the API and
the admin pages."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.clitools import JsonOpt, print_json
from gatherly.core import audit
from gatherly.core.bounds import parse_id
from gatherly.core.config import Settings
from gatherly.core.db import isoformat, session_scope
from gatherly.core.exceptions import Forbidden, GatherlyError, ValidationFailed
from gatherly.org import directory, service
from gatherly.org.models import ApiToken, FeatureSwitch

users_app = typer.Typer(help="Users and their API tokens.", no_args_is_help=True)
bu_app = typer.Typer(help="Business units.", no_args_is_help=True)
roles_app = typer.Typer(help="Security roles and their assignment.", no_args_is_help=True)
access_app = typer.Typer(help="The access engine.", no_args_is_help=True)
features_app = typer.Typer(
    help="Installation-wide feature switches (BU scoping, segment totals).", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit trail of security-relevant changes.", no_args_is_help=True)
tokens_app = typer.Typer(help="Everyone's API tokens: list and revoke.", no_args_is_help=True)
out = Console()


def _instant(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{text!r} is not an ISO 8601 date and time, e.g. 2026-12-05T09:00:00+00:00",
            field=field,
        ) from None


def _iso(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def audit_dict(entry: audit.AuditEntry) -> dict[str, Any]:
    """An entry as JSON, with its time in ISO 8601 with its zone."""
    return {
        "id": entry.id,
        "at": _iso(entry.at),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_label": entry.target_label,
        "before": entry.before,
        "after": entry.after,
        "details": entry.details,
    }


def _short(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)


@audit_app.command("list")
def audit_list(
    action: Annotated[
        str | None, typer.Option(help="Action prefix, e.g. role or user.move.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="The actor's username as recorded.")] = None,
    target_type: Annotated[str | None, typer.Option(help="e.g. user, contact, team.")] = None,
    target_id: Annotated[str | None, typer.Option(help="The target's id.")] = None,
    since: Annotated[str | None, typer.Option(help="At or after (ISO 8601 with a zone).")] = None,
    until: Annotated[str | None, typer.Option(help="Before (ISO 8601 with a zone).")] = None,
    limit: Annotated[int, typer.Option(help="How many entries (newest first).")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="The next_cursor of an earlier --json listing.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit entries, newest first, filtered like GET /api/v1/admin/audit."""
    filters = audit.Filters(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    with session_scope(Settings().database_url) as db:
        found = service.audit_trail(
            db=db, principal=None, filters=filters, cursor=cursor, limit=limit
        )
        rows = [audit_dict(e) for e in found.items]
        changes = {e.id: e.changes for e in found.items}
    if as_json:
        print_json({"items": rows, "next_cursor": found.next_cursor})
        return
    table = Table("when (UTC)", "who", "action", "target", "before → after")
    for column in table.columns[:3]:
        column.no_wrap = True
    for r in rows:
        parts = []
        for k, old, new in changes[r["id"]]:
            if r["before"] is None:
                parts.append(f"{k}: {_short(new)}")
            elif r["after"] is None:
                parts.append(f"{k}: {_short(old)} (removed)")
            else:
                parts.append(f"{k}: {_short(old)} → {_short(new)}")
        target = f"{r['target_label'] or r['target_id']} ({r['target_type']} {r['target_id']})"
        table.add_row(
            r["at"][:16].replace("T", " "),
            escape(r["actor_name"] or "system"),
            escape(r["action"]),
            escape(target),
            escape("; ".join(parts)),
        )
    out.print(table)
    if found.next_cursor:
        out.print(f"more: --cursor {found.next_cursor}", markup=False, soft_wrap=True)


def token_dict(token: ApiToken, username: str) -> dict[str, Any]:
    """A token as JSON (never its secret nor its hash)."""
    return {
        "id": token.id,
        "user": username,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
        "status": token.status,
    }


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this user's (username or id).")] = None,
    status: Annotated[str | None, typer.Option(help="active, expired or revoked.")] = None,
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens with their status, last use and expiry."""
    with session_scope(Settings().database_url) as db:
        user_id = service.find_user(db=db, ref=user, field="user").id if user else None
        found = service.all_tokens(
            db=db, principal=None, user_id=user_id, status=status, limit=limit
        )
        names = service.usernames(db=db, user_ids={t.user_id for t in found.items})
        rows = [token_dict(t, names.get(t.user_id, "")) for t in found.items]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "user", "name", "prefix", "last used", "expires", "status")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["user"]),
            escape(r["name"]),
            r["prefix"] + "…",
            (r["last_used_at"] or "never")[:16].replace("T", " "),
            (r["expires_at"] or "never")[:16].replace("T", " "),
            r["status"],
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke any API token at once (audited as the system)."""
    with session_scope(Settings().database_url) as db:
        token = service.revoke_token(db=db, token_id=token_id)
        name = token.name
    out.print(f"token {token_id} ({name}) revoked", markup=False)


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
    with session_scope(Settings().database_url) as db:
        if email:
            try:
                email = normalize_email(email)
            except ValueError as exc:
                raise GatherlyError(str(exc), field="email") from None
        user = service.create_user(
            db=db,
            username=username,
            business_unit_id=service.find_bu(db=db, ref=bu).id,
            email=email,
            full_name=full_name,
            password=password,
        )
        for name in role or []:
            service.assign_role(
                db=db, role_id=service.get_role_by_name(db=db, name=name).id, user_id=user.id
            )
        data = {"id": user.id, "username": user.username, "business_unit_id": user.business_unit_id}
    print_json(data) if as_json else out.print(
        f"created user {username!r} (id {data['id']})", markup=False
    )


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users with their BU and roles."""
    with session_scope(Settings().database_url) as db:
        names = {bu.id: bu.name for bu in service.list_bus(db=db)}
        users, _total = service.list_users(db=db, limit=None)
        rows: list[dict[str, Any]] = [
            {
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "business_unit": names[u.business_unit_id],
                "disabled": u.disabled,
                "roles": [r.name for r in service.roles_of_user(db=db, user_id=u.id)],
            }
            for u in users
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
    with session_scope(Settings().database_url) as db:
        user = service.find_user(db=db, ref=username)
        token, secret = service.create_token(
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
    with session_scope(Settings().database_url) as db:
        service.revoke_token(
            db=db, token_id=token_id, user_id=service.find_user(db=db, ref=username).id
        )
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
    with session_scope(Settings().database_url) as db:
        bu = service.create_bu(db=db, name=name, parent_id=service.find_bu(db=db, ref=parent).id)
        data = {"id": bu.id, "name": bu.name, "parent_id": bu.parent_id}
    print_json(data) if as_json else out.print(
        f"created business unit {name!r} (id {data['id']})", markup=False
    )


@bu_app.command("list")
def bu_list(as_json: JsonOpt = False) -> None:
    """Show the BU tree."""
    with session_scope(Settings().database_url) as db:
        rows: list[dict[str, Any]] = [
            {"id": b.id, "name": b.name, "parent_id": b.parent_id} for b in service.list_bus(db=db)
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
    with session_scope(Settings().database_url) as db:
        rows: list[dict[str, Any]] = []
        for role in service.list_roles(db=db):
            privileges = service.role_privileges(db=db, role_id=role.id)
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
    with session_scope(Settings().database_url) as db:
        role_id = parse_id(role)
        r = (
            service.get_role(db=db, role_id=role_id)
            if role_id is not None
            else service.get_role_by_name(db=db, name=role)
        )
        if user is not None:
            service.assign_role(db=db, role_id=r.id, user_id=service.find_user(db=db, ref=user).id)
        else:
            service.assign_role(
                db=db, role_id=r.id, team_id=service.get_team(db=db, team_id=team_id or 0).id
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
    by = service.usernames(
        db=db, user_ids={switch.changed_by_id} if switch.changed_by_id else set()
    )
    return {
        "name": switch.name,
        "label": service.FEATURES[switch.name],
        "enabled": bool(switch.enabled),
        "changed_at": switch.changed_at,
        "changed_by": by.get(switch.changed_by_id) if switch.changed_by_id else None,
    }


@features_app.command("list")
def features_list(as_json: JsonOpt = False) -> None:
    """Every feature switch, on or off, with who changed it last."""
    with session_scope(Settings().database_url) as db:
        rows = [_feature_dict(db, f) for f in service.features(db=db)]
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
    name: Annotated[str, typer.Argument(help=f"The switch: {', '.join(service.FEATURES)}.")],
    state: Annotated[Switch, typer.Argument(help="on or off.")],
    as_user: Annotated[
        str, typer.Option("--as", help="The system administrator making the change (audited).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Turn a switch on or off (system administrators only; audited)."""
    with session_scope(Settings().database_url) as db:
        user = service.find_user(db=db, ref=as_user, field="as")
        if not directory.load_principal(db, user.id).is_system_admin:
            raise Forbidden(
                "forbidden: only a system administrator may turn feature switches on or off",
                field="as",
            )
        before = service.feature_enabled(db=db, name=name)
        data = _feature_dict(
            db,
            service.set_feature(db=db, name=name, enabled=state == Switch.on, by_user_id=user.id),
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
    if name == service.BU_SCOPING:
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
    with session_scope(Settings().database_url) as db:
        subject = service.find_user(db=db, ref=user)
        try:
            explanation = service.explain_access(
                db=db,
                principal=None,
                record_type=record_type,
                privilege=privilege,
                record_id=record_id,
                user=subject.id,
            )
        except GatherlyError as exc:  # name the options, not the API's fields
            exc.field = {"record_type": "type", "record_id": "id"}.get(exc.field or "", exc.field)
            raise
        result = explanation.as_dict()
    if as_json:
        print_json(result)
        return
    out.print(("[green]" if result["allowed"] else "[red]") + escape(result["summary"]) + "[/]")
    for p in result["paths"]:
        mark = "[green]✓[/]" if p["granted"] else "[dim]✗[/]"
        out.print(f"  {mark} {p['path']}: {escape(p['detail'])}")
