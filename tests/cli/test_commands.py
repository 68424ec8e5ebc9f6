"""The Typer app in-process: database, business units, users, tokens, roles and access."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.cli import app
from gatherly.core.exceptions import Unauthenticated
from gatherly.org import service as org
from gatherly.org.models import BusinessUnit, SecurityRole
from tests import factories as f
from tests.cli.helpers import CliRun, make_cli, plain

BUILTIN_ROLES = {
    "System Administrator",
    "Marketing Administrator",
    "Marketing Manager",
    "Marketer",
    "Marketing Assistant",
}


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def by_name(rows: list[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


# ------------------------------------------------------------------ db upgrade


def test_db_upgrade_twice_keeps_one_root_and_the_five_builtin_roles(
    db_url: str, open_db: Callable[[], Session]
) -> None:
    run = make_cli(db_url)
    first = run("db", "upgrade")
    second = run("db", "upgrade")
    assert "database is up to date" in first.stdout
    assert "database is up to date" in second.stdout

    db = open_db()
    roots = db.execute(select(BusinessUnit).where(BusinessUnit.parent_id.is_(None))).scalars()
    assert [bu.name for bu in roots] == ["Organization"]
    names = db.execute(select(SecurityRole.name)).scalars().all()
    assert sorted(names) == sorted(BUILTIN_ROLES)


# ------------------------------------------------------------------ business units


def test_bu_create_puts_units_under_the_named_parent_and_list_json_shows_the_tree(
    cli: CliRun,
) -> None:
    emea = as_json(cli("bu", "create", "EMEA", "--json"))
    germany = as_json(cli("bu", "create", "Germany", "--parent", "EMEA", "--json"))
    france = as_json(cli("bu", "create", "France", "--parent", str(emea["id"]), "--json"))

    rows = by_name(as_json(cli("bu", "list", "--json")))
    assert set(rows) == {"Organization", "EMEA", "Germany", "France"}
    assert rows["Organization"]["parent_id"] is None
    assert rows["EMEA"] == {
        "id": emea["id"],
        "name": "EMEA",
        "parent_id": rows["Organization"]["id"],
    }
    assert rows["Germany"]["id"] == germany["id"]
    assert rows["Germany"]["parent_id"] == emea["id"]
    assert rows["France"]["id"] == france["id"]
    assert rows["France"]["parent_id"] == emea["id"]


def test_bu_create_without_json_confirms_in_words(cli: CliRun) -> None:
    result = cli("bu", "create", "Americas")
    assert "created business unit 'Americas'" in plain(result.stdout)


def test_bu_list_prints_an_indented_tree(cli: CliRun) -> None:
    cli("bu", "create", "EMEA")
    cli("bu", "create", "Germany", "--parent", "EMEA")
    cli("bu", "create", "Americas")

    lines = [line.rstrip() for line in plain(cli("bu", "list").stdout).splitlines() if line]

    def indent(name: str) -> int:
        line = next(line for line in lines if f"{name} (id " in line)
        return len(line) - len(line.lstrip(" │├└─"))

    assert lines[0].startswith("Organization (id ")
    assert indent("EMEA") == indent("Americas") > indent("Organization")
    assert indent("Germany") > indent("EMEA")
    assert lines.index(next(x for x in lines if "Germany" in x)) == (
        lines.index(next(x for x in lines if "EMEA" in x)) + 1
    )


# ------------------------------------------------------------------ users


def test_users_create_places_the_user_in_the_bu_with_the_roles_given(cli: CliRun) -> None:
    cli("bu", "create", "EMEA")
    created = as_json(
        cli(
            "users",
            "create",
            "gustav",
            "--bu",
            "EMEA",
            "--role",
            "Marketer",
            "--role",
            "marketing assistant",  # role names are case-insensitive
            "--email",
            " Gustav@Example.COM ",
            "--full-name",
            "Gustav G",
            "--json",
        )
    )
    bus = by_name(as_json(cli("bu", "list", "--json")))
    assert created["username"] == "gustav"
    assert created["business_unit_id"] == bus["EMEA"]["id"]

    users = by_name(as_json(cli("users", "list", "--json")), key="username")
    assert users["gustav"] == {
        "id": created["id"],
        "username": "gustav",
        "email": "gustav@example.com",
        "business_unit": "EMEA",
        "disabled": False,
        "roles": ["Marketer", "Marketing Assistant"],
    }


def test_users_create_defaults_to_the_root_bu_and_no_roles(cli: CliRun) -> None:
    result = cli("users", "create", "olivia")
    assert "created user 'olivia'" in plain(result.stdout)
    [row] = as_json(cli("users", "list", "--json"))
    assert row["username"] == "olivia"
    assert row["business_unit"] == "Organization"
    assert row["roles"] == []
    assert row["email"] is None


def test_users_list_table_shows_bu_and_roles(cli: CliRun) -> None:
    cli("bu", "create", "France")
    cli("users", "create", "fran", "--bu", "France", "--role", "Marketer")
    text = plain(cli("users", "list").stdout)
    row = next(line for line in text.splitlines() if " fran " in line)
    assert "France" in row
    assert "Marketer" in row


def test_users_token_prints_a_secret_that_authenticates_as_that_user(
    cli: CliRun, open_db: Callable[[], Session]
) -> None:
    cli("users", "create", "ulla")
    printed = cli("users", "token", "ulla").stdout.strip()
    assert printed.startswith(org.TOKEN_PREFIX)
    assert len(printed.splitlines()) == 1

    db = open_db()
    assert org.authenticate_token(db=db, secret=printed).username == "ulla"
    with pytest.raises(Unauthenticated):
        org.authenticate_token(db=db, secret=printed + "x")


def test_users_revoke_token_stops_that_token_only(
    cli: CliRun, open_db: Callable[[], Session]
) -> None:
    cli("users", "create", "ulla")
    first = as_json(cli("users", "token", "ulla", "--name", "laptop", "--json"))
    second = as_json(cli("users", "token", "ulla", "--json"))
    assert first["user"] == "ulla"
    assert first["id"] != second["id"]

    result = cli("users", "revoke-token", "ulla", str(first["id"]))
    assert f"token {first['id']} revoked" in plain(result.stdout)

    db = open_db()
    with pytest.raises(Unauthenticated, match="revoked"):
        org.authenticate_token(db=db, secret=first["token"])
    assert org.authenticate_token(db=db, secret=second["token"]).username == "ulla"
    user = org.get_user_by_username(db=db, username="ulla")
    names = {t.id: t.name for t in org.list_tokens(db=db, user_id=user.id)}
    assert names == {first["id"]: "laptop", second["id"]: "cli"}


# ------------------------------------------------------------------ roles


def test_roles_list_json_shows_the_five_builtin_roles_and_their_levels(cli: CliRun) -> None:
    roles = by_name(as_json(cli("roles", "list", "--json")))
    assert set(roles) == BUILTIN_ROLES
    assert all(r["builtin"] for r in roles.values())
    assert [n for n, r in roles.items() if r["system_admin"]] == ["System Administrator"]
    expected = {
        "Marketing Administrator": "organization",
        "Marketing Manager": "parent_child",
        "Marketer": "business_unit",
        "Marketing Assistant": "user",
    }
    for name, level in expected.items():
        contact = roles[name]["privileges"]["contact"]
        assert contact["read"] == level, name
        assert contact["write"] == level, name
        assert roles[name]["privileges"]["business_unit"] == {"read": "organization"}


def test_roles_list_table_names_each_role_with_its_contact_read_level(cli: CliRun) -> None:
    text = plain(cli("roles", "list").stdout)
    for name in BUILTIN_ROLES:
        assert name in text
    marketer = next(line for line in text.splitlines() if "│ Marketer " in line)
    assert "business_unit" in marketer


def test_roles_assign_gives_a_user_an_extra_role(cli: CliRun) -> None:
    cli("users", "create", "emma", "--role", "Marketer")
    result = cli("roles", "assign", "Marketing Manager", "--user", "emma")
    assert "assigned 'Marketing Manager' to user emma" in plain(result.stdout)
    [row] = as_json(cli("users", "list", "--json"))
    assert row["roles"] == ["Marketer", "Marketing Manager"]
    # Assigning again is harmless.
    cli("roles", "assign", "Marketing Manager", "--user", "emma")
    [row] = as_json(cli("users", "list", "--json"))
    assert row["roles"] == ["Marketer", "Marketing Manager"]


def test_roles_assign_by_role_id_gives_a_team_the_role(
    cli: CliRun, open_db: Callable[[], Session]
) -> None:
    emea = as_json(cli("bu", "create", "EMEA", "--json"))
    roles = by_name(as_json(cli("roles", "list", "--json")))
    db = open_db()
    team = org.default_team(db=db, bu_id=emea["id"])
    db.rollback()

    result = cli("roles", "assign", str(roles["Marketer"]["id"]), "--team", str(team.id))
    assert f"to team {team.id}" in plain(result.stdout)
    assert [r.name for r in org.roles_of_team(db=db, team_id=team.id)] == ["Marketer"]


# ------------------------------------------------------------------ access explain


@pytest.fixture
def contacts(cli: CliRun, open_db: Callable[[], Session]) -> dict[str, int]:
    """EMEA > Germany, France; emma (EMEA Marketer) and a contact in each of EMEA and France."""
    cli("bu", "create", "EMEA")
    cli("bu", "create", "Germany", "--parent", "EMEA")
    cli("bu", "create", "France", "--parent", "EMEA")
    cli("users", "create", "emma", "--bu", "EMEA", "--role", "Marketer")
    cli("users", "create", "fran", "--bu", "France", "--role", "Marketer")
    db = open_db()
    emma = org.get_user_by_username(db=db, username="emma")
    fran = org.get_user_by_username(db=db, username="fran")
    ids = {
        "emea": f.contact(db, fran, bu_id=emma.business_unit_id, email="a@example.com").id,
        "france": f.contact(db, fran, email="b@example.com").id,
    }
    db.commit()
    return ids


def explain(cli: CliRun, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = as_json(cli("access", "explain", *args, "--json"))
    return result


def test_access_explain_allows_a_bu_level_reader_on_a_record_in_their_bu(
    cli: CliRun, contacts: dict[str, int]
) -> None:
    result = explain(cli, "--user", "emma", "--type", "contact", "--id", str(contacts["emea"]))
    assert result["allowed"] is True
    assert result["username"] == "emma"
    assert result["privilege"] == "read"
    assert result["record_id"] == contacts["emea"]
    assert result["summary"].startswith("allowed")
    paths = {p["path"]: p for p in result["paths"]}
    assert paths["business_unit"]["granted"] is True
    assert paths["business_unit"]["role"] == "Marketer"
    assert "'EMEA'" in paths["business_unit"]["detail"]
    assert "is that BU" in paths["business_unit"]["detail"]
    # emma does not own it, and the explanation says so too.
    assert paths["ownership"]["granted"] is False


def test_access_explain_denies_a_record_in_a_sibling_bu_and_says_why(
    cli: CliRun, contacts: dict[str, int]
) -> None:
    result = explain(
        cli,
        "--user",
        "emma",
        "--type",
        "contact",
        "--id",
        str(contacts["france"]),
        "--privilege",
        "write",
    )
    assert result["allowed"] is False
    assert result["privilege"] == "write"
    assert result["summary"].startswith("denied")
    assert result["paths"], "a denial lists the paths that were checked"
    assert not any(p["granted"] for p in result["paths"])
    paths = {p["path"]: p for p in result["paths"]}
    assert "'France'" in paths["business_unit"]["detail"]
    assert "is not that BU" in paths["business_unit"]["detail"]
    assert "owned by another user" in paths["ownership"]["detail"]


def test_roles_assign_parent_child_role_turns_a_denial_into_an_allow(
    cli: CliRun, contacts: dict[str, int]
) -> None:
    args = ("--user", "emma", "--type", "contact", "--id", str(contacts["france"]))
    assert explain(cli, *args)["allowed"] is False
    cli("roles", "assign", "Marketing Manager", "--user", "emma")
    result = explain(cli, *args)
    assert result["allowed"] is True
    granted = [p for p in result["paths"] if p["granted"]]
    assert [p["path"] for p in granted] == ["parent_child"]
    assert granted[0]["role"] == "Marketing Manager"
    assert "is in that BU's subtree" in granted[0]["detail"]


def test_access_explain_denies_a_privilege_no_role_grants(cli: CliRun) -> None:
    cli("users", "create", "sam", "--role", "Marketer")
    result = explain(cli, "--user", "sam", "--type", "business_unit", "--privilege", "write")
    assert result["allowed"] is False
    assert [p["path"] for p in result["paths"]] == ["privilege"]
    assert "no role of 'sam' grants write on business_unit" in result["summary"]


def test_access_explain_allows_the_system_administrator_everything(
    cli: CliRun, contacts: dict[str, int]
) -> None:
    cli("users", "create", "admin", "--role", "System Administrator")
    result = explain(
        cli,
        "--user",
        "admin",
        "--type",
        "contact",
        "--id",
        str(contacts["france"]),
        "--privilege",
        "delete",
    )
    assert result["allowed"] is True
    assert [p["path"] for p in result["paths"]] == ["system_administrator"]


def test_access_explain_text_marks_granted_and_failed_paths(
    cli: CliRun, contacts: dict[str, int]
) -> None:
    text = plain(
        cli(
            "access",
            "explain",
            "--user",
            "emma",
            "--type",
            "contact",
            "--id",
            str(contacts["emea"]),
        ).stdout
    )
    lines = text.splitlines()
    assert lines[0].startswith("allowed")
    assert any(line.strip().startswith("✓ business_unit:") for line in lines)
    assert any(line.strip().startswith("✗ ownership:") for line in lines)


def test_names_with_square_brackets_print_literally_in_every_text_view(
    cli: CliRun, open_db: Callable[[], Session]
) -> None:
    bu_name, username = "R&D [/old]", "[bold]kim"
    assert f"'{bu_name}'" in plain(cli("bu", "create", bu_name).stdout)
    assert f"'{username}'" in plain(cli("users", "create", username, "--bu", bu_name).stdout)
    assert f"{bu_name} (id " in plain(cli("bu", "list").stdout)
    users_table = plain(cli("users", "list").stdout)
    assert username in users_table
    assert bu_name in users_table
    assert f"to user {username}" in plain(
        cli("roles", "assign", "Marketer", "--user", username).stdout
    )

    db = open_db()
    kim = org.get_user_by_username(db=db, username=username)
    record = f.contact(db, kim, email="k@example.com")
    db.commit()
    text = plain(
        cli(
            "access", "explain", "--user", username, "--type", "contact", "--id", str(record.id)
        ).stdout
    )
    assert f"record's BU '{bu_name}'" in " ".join(text.split())  # rich wraps at 80 columns


# ------------------------------------------------------------------ help


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every (sub-)command path under ``group`` with the first line of its help."""
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append((path, (command.help or "").strip().splitlines()[0]))
        if hasattr(command, "commands"):  # a sub-app
            found.extend(_commands(command, path))
    return found


ROOT = typer.main.get_group(app)
COMMANDS = [((), (ROOT.help or "").splitlines()[0]), *_commands(ROOT)]


def test_the_cli_has_every_documented_command() -> None:
    assert {" ".join(path) for path, _help in COMMANDS} >= {
        "db",
        "db upgrade",
        "serve",
        "demo",
        "users",
        "users create",
        "users list",
        "users token",
        "users revoke-token",
        "bu",
        "bu create",
        "bu list",
        "roles",
        "roles list",
        "roles assign",
        "access",
        "access explain",
    }


@pytest.mark.parametrize(
    ("path", "summary"), COMMANDS, ids=[" ".join(p) or "gatherly" for p, _ in COMMANDS]
)
def test_help_works_for_every_command(path: tuple[str, ...], summary: str, db_url: str) -> None:
    result = make_cli(db_url)(*path, "--help")
    text = " ".join(plain(result.stdout).split())  # undo rich's wrapping
    usage = text[text.index("Usage:") : text.index("[OPTIONS]")]
    assert usage.rstrip().endswith(" ".join(path))
    assert summary
    assert summary in text
    assert "--help" in text
