"""``gatherly db backup`` and ``gatherly db restore`` (issue 20): a populated database
round-trips (every table compared), on SQLite and, when one is configured, on PostgreSQL;
a file that is not a backup, or one from a newer release, is refused and changes nothing;
an existing file is overwritten only with ``--force``."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core import migrate
from gatherly.core.db import make_engine
from gatherly.org import service as org_service
from tests import factories
from tests.cli.helpers import run_script, sqlite_url

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("GATHERLY_TEST_POSTGRES_URL") else [])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """One migrated PostgreSQL schema for the module (its tests leave it populated, or as
    it was: a restore puts back the populated state)."""
    from tests.conftest import postgres_schema

    with postgres_schema("gatherly_backup") as url:
        upgraded = run_script(url, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        yield url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, upgraded_template: Path, tmp_path: Path) -> str:
    """A migrated database with the defaults (root BU, built-in roles)."""
    if request.param == "sqlite":
        shutil.copyfile(upgraded_template, tmp_path / "gatherly.db")
        return sqlite_url(tmp_path / "gatherly.db")
    return str(request.getfixturevalue("pg_url"))


def table_rows(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the database, ordered by primary key."""
    engine = make_engine(database_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: [
                    tuple(r)
                    for r in conn.execute(select(t).order_by(*(t.primary_key.columns or t.columns)))
                ]
                for name, t in sorted(meta.tables.items())
            }
    finally:
        engine.dispose()


def populate(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as db, db.begin():
            if db.scalar(select(Contact).limit(1)) is not None:
                return  # the module's PostgreSQL schema, populated by an earlier test
            home = factories.bu(db, "Germany")
            ada = factories.user(db, "ada", home, "System Administrator")
            bob = org_service.create_user(db=db, username="bob", email="bob@example.com")
            factories.team(db, "Field", home, ada, bob)
            factories.contact(db, ada, first_name="Grace", last_name="Hopper")
            factories.contact(db, bob, first_name="Alan", last_name="Turing")
    finally:
        engine.dispose()


def change(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as db, db.begin():
            org_service.create_user(db=db, username="carol")
            ada = org_service.get_user_by_username(db=db, username="ada")
            ada.full_name = "Ada Lovelace"
            for contact in db.scalars(select(Contact)):
                db.delete(contact)
    finally:
        engine.dispose()


def test_round_trip_restores_every_table(url: str, tmp_path: Path) -> None:
    populate(url)
    before = table_rows(url)
    assert before["contact"]
    assert before["user_account"]
    file = tmp_path / "gatherly.backup"

    backed_up = run_script(url, "db", "backup", str(file))

    assert backed_up.returncode == 0, backed_up.stderr
    head = migrate.head_revisions()[0]
    assert f"to {file} (" in backed_up.stdout
    assert f"revision {head})" in backed_up.stdout
    assert file.stat().st_size > 0
    change(url)
    assert table_rows(url) != before

    restored = run_script(url, "db", "restore", str(file))

    assert restored.returncode == 0, restored.stderr
    assert f"revision {head} (the code's head)" in restored.stdout
    assert table_rows(url) == before


def test_restore_refuses_a_file_that_is_not_a_backup(url: str, tmp_path: Path) -> None:
    populate(url)
    before = table_rows(url)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a backup\n" * 100, encoding="utf-8")
    other_db = tmp_path / "other.db"  # a database, but not Gatherly's
    with closing(sqlite3.connect(other_db)) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")

    for file in (text_file, other_db, tmp_path / "missing.backup"):
        refused = run_script(url, "db", "restore", str(file))
        assert refused.returncode == 1
        assert refused.stderr.startswith("error (file): "), refused.stderr
        assert "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert "not a Gatherly backup" in run_script(url, "db", "restore", str(other_db)).stderr
    assert table_rows(url) == before


def test_backup_refuses_to_overwrite_without_force(url: str, tmp_path: Path) -> None:
    file = tmp_path / "gatherly.backup"
    file.write_bytes(b"precious")

    refused = run_script(url, "db", "backup", str(file))

    assert refused.returncode == 1
    assert "already exists; give --force" in refused.stderr
    assert file.read_bytes() == b"precious"
    forced = run_script(url, "db", "backup", "--force", str(file))
    assert forced.returncode == 0, forced.stderr
    assert file.read_bytes() != b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _set_revision(backup: Path, revision: str) -> None:
    with closing(sqlite3.connect(backup)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


@pytest.mark.sqlite_only  # edits the SQLite backup file itself
def test_restore_checks_the_backups_revision(upgraded_template: Path, tmp_path: Path) -> None:
    shutil.copyfile(upgraded_template, tmp_path / "gatherly.db")
    url = sqlite_url(tmp_path / "gatherly.db")
    file = tmp_path / "gatherly.backup"
    assert run_script(url, "db", "backup", str(file)).returncode == 0
    before = table_rows(url)

    _set_revision(file, "ffffffffffff")
    newer = run_script(url, "db", "restore", str(file))
    assert newer.returncode == 1
    assert "revision ffffffffffff, which this code does not know" in newer.stderr
    assert table_rows(url) == before

    first = migrate._scripts().get_base()
    assert isinstance(first, str)
    _set_revision(file, first)
    behind = run_script(url, "db", "restore", str(file))
    assert behind.returncode == 0, behind.stderr
    assert f"revision {first}; the code's head is" in behind.stdout
    assert "run `gatherly db upgrade`" in behind.stdout


def test_postgresql_connection_parameters_keep_the_password_off_the_command_line() -> None:
    from sqlalchemy.engine import make_url

    from gatherly.core import backup

    url = make_url(
        "postgresql+psycopg://ops:s3cret@db.example:6543/gdb?options=-csearch_path%3Dtenant"
    )
    args, env = backup._pg_args_env(url)
    assert args == ["--dbname=gdb", "--host=db.example", "--port=6543", "--username=ops"]
    assert env["PGPASSWORD"] == "s3cret"
    assert env["PGOPTIONS"] == "-csearch_path=tenant"
    assert backup._pg_schemas(url) == ["tenant"]
    assert backup._pg_schemas(make_url("postgresql+psycopg://ops@db/gdb")) == []


def test_a_missing_pg_dump_is_named(tmp_path: Path) -> None:
    url = "postgresql+psycopg://ops@127.0.0.1:1/gdb"  # never reached: the tool check is first
    for command in ("backup", "restore"):
        file = tmp_path / "gatherly.backup"
        if command == "restore":
            file.write_bytes(b"x")
        result = run_script(url, "db", command, str(file), env={"PATH": str(tmp_path)})
        assert result.returncode == 1
        tool = "pg_dump" if command == "backup" else "pg_restore"
        assert result.stderr.startswith(f"error: {tool} was not found on PATH"), result.stderr
