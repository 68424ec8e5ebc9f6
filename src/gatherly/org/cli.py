"""``gatherly audit`` and ``gatherly tokens``: the audit trail and everyone's API tokens for
an operator at the command line (who holds the database, so sees what a system
administrator sees), through the same services as the API and the admin pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import print_json
from gatherly.core import audit
from gatherly.core.config import Settings
from gatherly.core.db import isoformat, session_scope
from gatherly.core.exceptions import ValidationFailed
from gatherly.org import service
from gatherly.org import service as org_service
from gatherly.org.models import ApiToken

audit_app = typer.Typer(help="The audit trail of security-relevant changes.", no_args_is_help=True)
tokens_app = typer.Typer(help="Everyone's API tokens: list and revoke.", no_args_is_help=True)
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


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
        user_id = org_service.find_user(db=db, ref=user, field="user").id if user else None
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
