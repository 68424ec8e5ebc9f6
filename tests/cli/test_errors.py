"""Expected errors reach the user as one line on stderr and a non-zero exit, never a traceback.

``gatherly.cli.main`` does the conversion, so these run the installed console script.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import make_cli, run_console_script, run_script, sqlite_url

# Longer than the 80 columns rich assumes when stderr is not a terminal.
LONG_BU = "Asia Pacific and Japan Regional Marketing Operations"


@pytest.fixture(scope="module")
def error_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database with BU EMEA and user 'taken' (shared: these tests change nothing)."""
    url = sqlite_url(tmp_path_factory.mktemp("cli-errors") / "gatherly.db")
    cli = make_cli(url)
    cli("db", "upgrade")
    cli("bu", "create", "EMEA")
    cli("users", "create", "taken", "--bu", "EMEA", "--role", "Marketer")
    return url


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit non-zero with a single stderr line containing every fragment; return that line."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    line = lines[0]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def usernames(url: str) -> set[str]:
    return {row["username"] for row in json.loads(make_cli(url)("users", "list", "--json").stdout)}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ("users", "create", "newbie", "--bu", "Nowhere"),
            ("error (bu):", "business unit 'Nowhere' not found"),
            id="unknown-bu",
        ),
        pytest.param(
            ("bu", "create", "Japan", "--parent", LONG_BU),
            ("error (bu):", f"business unit '{LONG_BU}' not found"),
            id="unknown-parent-bu-with-a-long-name",
        ),
        pytest.param(
            ("users", "create", "newbie", "--bu", "[/oops]"),
            ("error (bu):", "business unit '[/oops]' not found"),
            id="unknown-bu-that-looks-like-markup",
        ),
        pytest.param(
            ("users", "create", "Taken"),
            ("error (username):", "a user named 'Taken' already exists"),
            id="duplicate-username",
        ),
        pytest.param(
            ("users", "create", "newbie", "--role", "Marketing Wizard"),
            ("error (role):", "role 'Marketing Wizard' not found"),
            id="unknown-role",
        ),
        pytest.param(
            ("roles", "assign", "Marketing Wizard", "--user", "taken"),
            ("error (role):", "role 'Marketing Wizard' not found"),
            id="assign-unknown-role",
        ),
        pytest.param(
            ("access", "explain", "--user", "ghost", "--type", "contact", "--id", "1"),
            ("error (user):", "user 'ghost' not found"),
            id="explain-unknown-user",
        ),
        pytest.param(
            ("access", "explain", "--user", "taken", "--type", "webinar_attendee_record"),
            ("error (type):", "unknown record type 'webinar_attendee_record'", "contact"),
            id="explain-unknown-record-type",
        ),
        pytest.param(
            ("access", "explain", "--user", "taken", "--type", "contact", "--id", "999"),
            ("error (id):", "contact 999 not found"),
            id="explain-unknown-record",
        ),
        pytest.param(
            ("users", "create", "newbie", "--email", "not-an-email"),
            ("error (email):", "@-sign"),
            id="bad-email",
        ),
        pytest.param(
            ("roles", "assign", "Marketer"),
            ("error (user):", "give exactly one of --user or --team"),
            id="assign-to-nobody",
        ),
        pytest.param(
            ("roles", "assign", "Marketer", "--user", "taken", "--team", "1"),
            ("error (user):", "give exactly one of --user or --team"),
            id="assign-to-user-and-team",
        ),
        pytest.param(
            ("roles", "assign", "Marketer", "--team", "events"),
            ("error (team):", "'events'"),
            id="assign-to-non-numeric-team",
        ),
        pytest.param(
            ("roles", "assign", "Marketer", "--user", "²"),
            ("error (user):", "user '²' not found"),
            id="a-superscript-is-a-name-not-an-id",
        ),
        pytest.param(
            ("roles", "assign", "Marketer", "--team", "99999999999999999999"),
            ("error (team):", "--team takes a team id"),
            id="assign-to-a-team-id-beyond-any-table",
        ),
        pytest.param(
            ("roles", "assign", "99999999999999999999", "--user", "taken"),
            ("error (role):", "role '99999999999999999999' not found"),
            id="a-role-id-beyond-any-table-is-a-name",
        ),
        pytest.param(
            ("users", "revoke-token", "taken", "4242"),
            ("error (token_id):", "token 4242 not found"),
            id="revoke-unknown-token",
        ),
    ],
)
def test_error_is_one_line_on_stderr_with_non_zero_exit_and_changes_nothing(
    error_db: str, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    before = usernames(error_db)
    result = run_script(error_db, *args)
    line = assert_one_line_error(result, *fragments)
    assert line.startswith("error")
    assert result.stdout == ""
    assert usernames(error_db) == before


def test_unknown_role_rolls_back_the_user_created_in_the_same_command(error_db: str) -> None:
    result = run_script(error_db, "users", "create", "half-made", "--role", "Nope")
    assert_one_line_error(result, "role 'Nope' not found")
    assert "half-made" not in usernames(error_db)


def test_database_without_schema_is_a_one_line_database_error(tmp_path: Path) -> None:
    # The installed console script itself, in a process of its own (the other tests run its
    # entry point in this process): one line on stderr, exit 1, no traceback.
    result = run_console_script(sqlite_url(tmp_path / "never-upgraded.db"), "users", "list")
    assert_one_line_error(result, "database error", "no such table")
    unknown = run_console_script(
        sqlite_url(tmp_path / "never-upgraded.db"), "bu", "create", "X", "--parent", "Nowhere"
    )
    assert "Traceback" not in unknown.stderr
    assert unknown.returncode == 1
