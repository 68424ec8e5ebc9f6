"""``gatherly audit list``, ``gatherly tokens list/revoke`` and ``users token --expires-days``
(issue 12), in-process and, for the errors, through the real console script."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gatherly.core.db import utcnow
from gatherly.core.exceptions import Unauthenticated
from gatherly.org import service as org
from tests.cli.helpers import CliRun, plain, run_script


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def _instant(text: str) -> datetime:
    """An instant as the API writes it: ISO 8601, UTC as ``Z`` (``2026-10-20T10:00:00Z``)."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), text
    return datetime.fromisoformat(text)


def test_users_token_expires_as_asked_and_never_beyond_the_policy(
    cli: CliRun, open_db: Callable[[], Session], db_url: str
) -> None:
    cli("users", "create", "ulla")
    default = as_json(cli("users", "token", "ulla", "--json"))
    assert _instant(default["expires_at"]) <= utcnow() + timedelta(days=90)
    short = as_json(cli("users", "token", "ulla", "--expires-days", "3", "--json"))
    expires = _instant(short["expires_at"])
    assert utcnow() + timedelta(days=2) < expires <= utcnow() + timedelta(days=3)

    too_long = run_script(db_url, "users", "token", "ulla", "--expires-days", "400")
    assert too_long.returncode == 1
    assert "error (expires_in_days): a token may live at most 365 days" in too_long.stderr
    assert "Traceback" not in too_long.stderr
    forever = run_script(db_url, "users", "token", "ulla", "--never-expires")
    assert forever.returncode == 1
    assert "error (never_expires): tokens must expire" in forever.stderr

    db = open_db()
    user = org.get_user_by_username(db=db, username="ulla")
    assert len(org.list_tokens(db=db, user_id=user.id)) == 2


def test_tokens_list_and_revoke(cli: CliRun, open_db: Callable[[], Session], db_url: str) -> None:
    cli("users", "create", "ulla")
    cli("users", "create", "otto")
    mine = as_json(cli("users", "token", "ulla", "--name", "laptop", "--json"))
    as_json(cli("users", "token", "otto", "--name", "ci", "--json"))

    rows = as_json(cli("tokens", "list", "--json"))
    assert [(r["user"], r["name"], r["status"]) for r in rows] == [
        ("otto", "ci", "active"),
        ("ulla", "laptop", "active"),
    ]
    assert mine["token"] not in json.dumps(rows)
    for r in rows:
        _instant(r["created_at"])
        _instant(r["expires_at"])
    only = as_json(cli("tokens", "list", "--user", "ulla", "--json"))
    assert [r["name"] for r in only] == ["laptop"]
    table = plain(cli("tokens", "list").stdout)
    assert "laptop" in table
    assert "ci" in table

    assert f"token {mine['id']} (laptop) revoked" in plain(
        cli("tokens", "revoke", str(mine["id"])).stdout
    )
    db = open_db()
    with pytest.raises(Unauthenticated, match="revoked"):
        org.authenticate_token(db=db, secret=mine["token"])
    revoked = as_json(cli("tokens", "list", "--status", "revoked", "--json"))
    assert [r["name"] for r in revoked] == ["laptop"]

    missing = run_script(db_url, "tokens", "revoke", "4242")
    assert missing.returncode == 1
    assert "error (token_id): token 4242 not found" in missing.stderr
    bad = run_script(db_url, "tokens", "list", "--status", "lost")
    assert bad.returncode == 1
    assert "error (status): unknown status 'lost'" in bad.stderr


def test_audit_list_shows_the_trail_filtered_as_json_or_a_table(cli: CliRun, db_url: str) -> None:
    cli("bu", "create", "Germany")
    cli("users", "create", "ulla", "--bu", "Germany", "--role", "Marketer")
    token = as_json(cli("users", "token", "ulla", "--json"))
    cli("tokens", "revoke", str(token["id"]))

    listing = as_json(cli("audit", "list", "--action", "token", "--json"))
    assert [e["action"] for e in listing["items"]] == ["token.revoke", "token.create"]
    revoke = listing["items"][0]
    assert (revoke["target_type"], revoke["target_id"]) == ("api_token", str(token["id"]))
    assert revoke["actor_id"] is None  # the operator at the command line: the system
    assert revoke["before"] == {"revoked_at": None}
    _instant(revoke["at"])
    _instant(revoke["after"]["revoked_at"])
    assert token["token"] not in json.dumps(listing)

    users = as_json(cli("audit", "list", "--target-type", "user", "--json"))["items"]
    assert [e["action"] for e in users] == ["role.assign", "user.create"]
    paged = as_json(cli("audit", "list", "--limit", "1", "--json"))
    assert len(paged["items"]) == 1
    assert paged["next_cursor"]
    following = as_json(
        cli("audit", "list", "--limit", "1", "--cursor", paged["next_cursor"], "--json")
    )
    assert following["items"][0]["id"] < paged["items"][0]["id"]

    table = plain(cli("audit", "list", "--action", "business_unit").stdout)
    assert "business_unit.create" in table
    assert "Germany" in table

    naive = run_script(db_url, "audit", "list", "--since", "2026-12-05T10:00:00")
    assert naive.returncode == 1
    assert "error (since): give a time zone" in naive.stderr
    garbage = run_script(db_url, "audit", "list", "--until", "soon")
    assert garbage.returncode == 1
    assert "error (until):" in garbage.stderr
    assert "Traceback" not in garbage.stderr
