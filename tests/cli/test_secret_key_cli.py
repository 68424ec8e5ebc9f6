"""The installation's secret key end to end (issue 12, F6): the key file a first run generates,
warnings and refusals, ``gatherly secret-key check`` and ``rotate``, against the Graph emulator
over real HTTP. Key files live under ``tmp_path``; no test reaches ``./var``."""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from gatherly.cli import app
from gatherly.core import crypto
from gatherly.core.audit import AuditEntry
from gatherly.core.config import Settings
from gatherly.core.exceptions import FatalSyncError, ValidationFailed
from gatherly.teams import connection as teams_connection
from gatherly.teams import service as teams
from gatherly.teams.models import TeamsConnection
from tests.cli.helpers import run_console_script, run_script, session_on, sqlite_url
from tests.teams import conftest as teams_fixtures
from tests.teams.conftest import Tenant

tenant_server = teams_fixtures.tenant_server
tenant = teams_fixtures.tenant

COLUMN = "teams_connection.client_secret_encrypted"
# Every column that holds secrets (the CLI's process imports every domain; so does this one).
ALL_COLUMNS = sorted(c.label for c in crypto.encrypted_columns())


def counts(teams: int) -> dict[str, int]:
    """What verify and rotate report: the Teams secret, and none in the other columns."""
    return {c: 0 for c in ALL_COLUMNS} | {COLUMN: teams}


def said(teams: int) -> str:
    """The same, as the CLI prints it."""
    return ", ".join(f"{c}: {n}" for c, n in sorted(counts(teams).items()))


KEY_A = "key-a-" + "a" * 40
KEY_B = "key-b-" + "b" * 40
# What checking a connection whose secret does not decrypt raises (the sync: FatalSyncError;
# `teams test` reports it as a ValidationFailed on the connection).
UNREADABLE = (FatalSyncError, ValidationFailed)


@pytest.fixture(autouse=True)
def _graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """No client secret from the environment, and no rate limit worth waiting for."""
    monkeypatch.delenv("GATHERLY_TEAMS_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("GATHERLY_GRAPH_RATE_PER_SECOND", "500")


def script(
    database_url: str,
    *args: str,
    key: str | None = None,
    key_file: Path | None = None,
    stdin: str | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``gatherly ARGS`` through the console script's entry point, with exactly this key (or
    key file) and nothing else; ``process`` runs the installed script in a process of its
    own (its warnings then reach stderr through logging's last-resort handler, as a user
    sees them)."""
    assert key is not None or key_file is not None  # never the default ./var/secret.key
    env: dict[str, str | None] = {"GATHERLY_SECRET_KEY": key}
    if key_file is not None:
        env["GATHERLY_SECRET_KEY_FILE"] = str(key_file)
    if process:
        assert stdin is None
        return run_console_script(database_url, *args, env=env)
    return run_script(database_url, *args, env=env, stdin=stdin)


def invoke(
    database_url: str,
    *args: str,
    key: str | None = None,
    key_file: Path | None = None,
    stdin: str | None = None,
) -> Result:
    """``gatherly ARGS`` in-process with exactly this key (or key file)."""
    assert key is not None or key_file is not None
    env: dict[str, str | None] = {
        "GATHERLY_DATABASE_URL": database_url,
        "GATHERLY_SECRET_KEY": key,
        "GATHERLY_SECRET_KEY_FILE": str(key_file) if key_file else None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, a single stderr line with every fragment, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def private_key_file(path: Path, key: str) -> Path:
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def connect_args(tenant: Tenant) -> list[str]:
    return [
        "teams",
        "connect",
        "--tenant-id",
        tenant.tenant_id,
        "--client-id",
        tenant.app(0)["appId"],
        "--authority",
        f"{tenant.base_url}/{tenant.tenant_id}",
        "--graph-url",
        f"{tenant.base_url}/v1.0",
    ]


def connect(
    session_factory: sessionmaker[Session], tenant: Tenant, database_url: str, **key: Any
) -> Settings:
    """Connect the emulator's full-permission app with this key; returns the settings used."""
    settings = crypto.resolve(Settings(database_url=database_url, graph_rate_per_second=500, **key))
    teams_fixtures.connect(session_factory, settings, tenant)
    return settings


def stored_token(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as db:
        token = db.scalars(select(TeamsConnection.client_secret_encrypted)).one()
    assert token
    return token


def readable_with(session_factory: sessionmaker[Session], key: str) -> dict[str, int] | None:
    """What ``key`` decrypts of the stored secrets, or None when it misses any."""
    with session_factory() as db:
        try:
            return crypto.verify(db, key=SecretStr(key))
        except crypto.SecretUnreadable:
            return None


def assert_connection_works(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """A token from the emulator with the stored secret, and a Graph call with it."""
    with session_factory() as db, db.begin():
        connection, _ = teams.check_connection(db=db, settings=settings)
        assert connection.status == "connected", connection.status_detail


# ------------------------------------------------------------------ the key file


def test_the_first_run_generates_the_key_file_and_the_next_run_reuses_it(
    cli: Callable[..., Result], db_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    key_file = tmp_path / "data" / "secret.key"
    secret = tenant.app(0)["secret"]
    first = script(
        db_url, *connect_args(tenant), "--client-secret", secret, key_file=key_file, process=True
    )
    assert first.returncode == 0, first.stderr
    assert f"generated a random secret key into {key_file}" in first.stderr
    assert mode(key_file) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= crypto.MIN_LENGTH
    assert key not in first.stdout + first.stderr
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]

    with session_on(db_url) as db:
        token = db.scalars(select(TeamsConnection.client_secret_encrypted)).one()
        assert token
        assert secret not in token
        # The public default of earlier releases opens nothing; the generated key does.
        assert crypto.verify(db, key=SecretStr(key)) == counts(1)
        with pytest.raises(crypto.SecretUnreadable):
            crypto.verify(db, key=SecretStr(crypto.PUBLIC_DEFAULT))

    before = key_file.stat()
    second = script(db_url, "teams", "test", "--json", key_file=key_file)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["status"] == "connected", (second.stdout, second.stderr)
    assert second.stderr == ""
    after = key_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert key_file.read_text().strip() == key


def test_a_short_key_warns_on_stderr(cli: Callable[..., Result], db_url: str) -> None:
    result = script(db_url, "secret-key", "check", key="too-short", process=True)
    assert result.returncode == 0, result.stderr
    assert "GATHERLY_SECRET_KEY is only 9 characters" in result.stderr
    assert "secret key: from GATHERLY_SECRET_KEY" in result.stdout
    assert f"0 stored secret(s) ({said(0)}), all readable with this key" in result.stdout


def test_serve_refuses_the_old_public_default_before_touching_anything(tmp_path: Path) -> None:
    database = tmp_path / "never-created.db"
    result = script(sqlite_url(database), "serve", key=crypto.PUBLIC_DEFAULT)
    one_line_error(
        result,
        "error (GATHERLY_SECRET_KEY):",
        "'change-me-in-production', the old default",
        "gatherly secret-key rotate --old-key-file",
    )
    assert not database.exists()


# ------------------------------------------------------------------ rotation


def test_rotate_with_the_key_file_re_encrypts_every_secret_and_replaces_the_key(
    session_factory: sessionmaker[Session],
    database_url: str,
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GATHERLY_SECRET_KEY")
    key_file = tmp_path / "secret.key"
    connect(session_factory, tenant, database_url, secret_key_file=key_file)
    old_key, old_token = key_file.read_text().strip(), stored_token(session_factory)

    result = script(database_url, "secret-key", "rotate", key_file=key_file)
    assert result.returncode == 0, result.stderr
    assert f"Re-encrypted 1 stored secret(s) ({said(1)}) with the new key." in result.stdout
    assert f"The new key is in {key_file} (mode 0600)." in result.stdout
    new_key = key_file.read_text().strip()
    assert new_key != old_key
    assert len(new_key) >= crypto.MIN_LENGTH
    assert new_key not in result.stdout + result.stderr
    assert mode(key_file) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]

    assert stored_token(session_factory) != old_token
    assert readable_with(session_factory, old_key) is None
    assert readable_with(session_factory, new_key) == counts(1)
    # A process started now reads the new key from the file, and the connection still works.
    assert_connection_works(
        session_factory,
        crypto.resolve(Settings(database_url=database_url, secret_key_file=key_file)),
    )
    with session_factory() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "secret_key.rotate")).one()
        assert entry.actor_id is None
        assert entry.details == {"secrets": counts(1), "key_source": "file"}
        assert old_key not in json.dumps(entry.details) + new_key


def test_rotate_with_an_environment_key_prints_the_value_to_set(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant
) -> None:
    connect(session_factory, tenant, database_url, secret_key=SecretStr(KEY_A))
    new_key = secrets.token_urlsafe(40)
    result = invoke(
        database_url,
        "secret-key",
        "rotate",
        "--new-key-file",
        "-",
        key=KEY_A,
        stdin=new_key + "\n",
    )
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert f"GATHERLY_SECRET_KEY={new_key}\n" in result.stdout
    assert "Restart `gatherly serve` and every `gatherly worker`" in result.stdout
    assert readable_with(session_factory, KEY_A) is None
    assert readable_with(session_factory, new_key) == counts(1)
    assert_connection_works(
        session_factory, Settings(database_url=database_url, secret_key=SecretStr(new_key))
    )
    with pytest.raises(UNREADABLE, match="cannot be decrypted"):
        assert_connection_works(
            session_factory, Settings(database_url=database_url, secret_key=SecretStr(KEY_A))
        )


def test_a_wrong_old_key_changes_nothing(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    connect(session_factory, tenant, database_url, secret_key=SecretStr(KEY_A))
    token = stored_token(session_factory)
    key_file = private_key_file(tmp_path / "secret.key", KEY_B)

    result = script(database_url, "secret-key", "rotate", key_file=key_file)
    one_line_error(
        result,
        "error (old_key):",
        f"1 stored secret(s) do not decrypt with the old key ({COLUMN} #1)",
        "nothing was changed",
    )
    assert stored_token(session_factory) == token
    assert key_file.read_text() == KEY_B + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # the staged key is gone

    wrong = invoke(database_url, "secret-key", "rotate", key="c" * 40)
    assert isinstance(wrong.exception, crypto.SecretUnreadable)
    assert stored_token(session_factory) == token
    with session_factory() as db:
        assert (
            db.scalars(select(AuditEntry).where(AuditEntry.action == "secret_key.rotate")).all()
            == []
        )
    assert_connection_works(
        session_factory, Settings(database_url=database_url, secret_key=SecretStr(KEY_A))
    )


def test_secrets_kept_under_the_old_public_default_move_to_a_new_key_file(
    session_factory: sessionmaker[Session],
    database_url: str,
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An installation upgraded from a release that used the public default."""
    monkeypatch.delenv("GATHERLY_SECRET_KEY")
    connect(session_factory, tenant, database_url, secret_key=SecretStr(KEY_A))
    public = crypto.fernet(SecretStr(crypto.PUBLIC_DEFAULT), teams_connection.ENCRYPTION_PURPOSE)
    with session_factory() as db, db.begin():
        connection = db.scalars(select(TeamsConnection)).one()
        connection.client_secret_encrypted = public.encrypt(
            tenant.app(0)["secret"].encode()
        ).decode()
    key_file = tmp_path / "var" / "secret.key"
    settings = Settings(database_url=database_url, secret_key_file=key_file)
    with pytest.raises(UNREADABLE, match="gatherly secret-key rotate --old-key-file"):
        assert_connection_works(session_factory, settings)

    old_file = tmp_path / "old.key"
    old_file.write_text(crypto.PUBLIC_DEFAULT + "\n")
    result = invoke(
        database_url, "secret-key", "rotate", "--old-key-file", str(old_file), key_file=key_file
    )
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert mode(key_file) == 0o600
    assert readable_with(session_factory, crypto.PUBLIC_DEFAULT) is None
    assert readable_with(session_factory, key_file.read_text().strip()) == counts(1)
    assert_connection_works(session_factory, settings)


@pytest.mark.parametrize(
    ("content", "options", "field", "message"),
    [
        (None, ["--new-key-file", "{missing}"], "new_key_file", "cannot read"),
        ("", ["--new-key-file", "{file}"], "new_key_file", "holds no key"),
        ("short-key", ["--new-key-file", "{file}"], "new_key_file", "only 9 characters"),
        (KEY_A, ["--new-key-file", "{file}"], "new_key_file", "is the key the secrets are"),
        (crypto.PUBLIC_DEFAULT, ["--new-key-file", "{file}"], "new_key_file", "the old default"),
        (KEY_B + "\n" + KEY_B, ["--new-key-file", "{file}"], "new_key_file", "more than one"),
        (None, ["--new-key-file", "-", "--old-key-file", "-"], "old_key_file", "only one of"),
        (None, ["--old-key-file", "{missing}"], "old_key_file", "cannot read"),
    ],
)
def test_bad_input_is_refused_by_name_and_changes_nothing(
    session_factory: sessionmaker[Session],
    database_url: str,
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | None,
    options: list[str],
    field: str,
    message: str,
) -> None:
    monkeypatch.delenv("GATHERLY_SECRET_KEY")
    keys = tmp_path / "keys"
    keys.mkdir()
    key_file = private_key_file(keys / "secret.key", KEY_A)
    connect(session_factory, tenant, database_url, secret_key_file=key_file)
    token = stored_token(session_factory)
    given = tmp_path / "new.key"
    if content is not None:
        given.write_text(content + "\n")
    args = [o.format(missing=tmp_path / "missing.key", file=given) for o in options]

    result = invoke(database_url, "secret-key", "rotate", *args, key_file=key_file)
    assert isinstance(result.exception, ValidationFailed | crypto.SecretKeyRefused)
    assert result.exception.field == field
    assert message in result.exception.message
    assert stored_token(session_factory) == token
    assert key_file.read_text() == KEY_A + "\n"
    assert [p.name for p in keys.iterdir()] == ["secret.key"]


def test_bad_input_prints_one_line_without_a_traceback(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.key"
    result = script(db_url, "secret-key", "rotate", "--new-key-file", str(missing), key=KEY_A)
    one_line_error(result, "error (new_key_file): cannot read", str(missing))


def test_check_names_the_source_and_refuses_a_key_that_misses_a_secret(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant
) -> None:
    connect(session_factory, tenant, database_url, secret_key=SecretStr(KEY_A))
    result = invoke(database_url, "secret-key", "check", "--json", key=KEY_A)
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert json.loads(result.stdout) == {
        "source": "environment",
        "key_file": None,
        "secrets": counts(1),
    }
    wrong = invoke(database_url, "secret-key", "check", key=KEY_B)
    assert isinstance(wrong.exception, crypto.SecretUnreadable)
    assert f"{COLUMN} #1" in wrong.exception.message


def test_a_secret_the_key_cannot_decrypt_is_reported_on_client_secret(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant
) -> None:
    """Testing the connection under another key names the client secret and the way out,
    not the authority or Graph URL."""
    connect(session_factory, tenant, database_url, secret_key=SecretStr(KEY_A))
    other = Settings(database_url=database_url, secret_key=SecretStr(secrets.token_urlsafe(40)))
    with session_factory() as db, pytest.raises(ValidationFailed) as raised:
        teams.check_connection(db=db, settings=other)
    assert raised.value.field == "client_secret"
    assert "cannot be decrypted" in raised.value.message
    assert "secret-key rotate" in raised.value.message
