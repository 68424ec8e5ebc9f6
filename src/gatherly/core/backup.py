"""Backups of the database and restores from them (``gatherly db backup`` / ``db restore``,
issue 20).

SQLite goes through its online backup API (a consistent copy while the server writes);
PostgreSQL through ``pg_dump --format=custom`` and ``pg_restore``, run without a shell,
the password in ``PGPASSWORD`` (never on a command line) and a ``search_path`` given in
the URL's ``options`` honoured as the schema to dump. Either way a restore first checks
that the file is a Gatherly backup whose migration revision this code knows.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from gatherly.core import migrate
from gatherly.core.db import make_engine
from gatherly.core.exceptions import Conflict, GatherlyError, ValidationFailed


@dataclass(frozen=True)
class BackupResult:
    """What ``backup`` wrote: the file, its size in bytes and the schema revision in it."""

    path: Path
    size: int
    revision: str
    backend: str


@dataclass(frozen=True)
class RestoreResult:
    """What ``restore`` did: the file read, the revision the database is now at, the code's
    head, and whether the database is behind it (``gatherly db upgrade`` then)."""

    path: Path
    revision: str
    head: str
    behind: bool
    backend: str


def backup(*, database_url: str, path: Path, force: bool = False) -> BackupResult:
    """Write a backup of the database at ``database_url`` to ``path`` (refused when the file
    exists, unless ``force``)."""
    path = Path(path)
    if path.exists() and not force:
        raise Conflict(f"{path} already exists; give --force to overwrite it", field="file")
    if path.is_dir():
        raise ValidationFailed(f"{path} is a directory, not a file", field="file")
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        revision = _sqlite_backup(_sqlite_path(url), path)
    elif backend == "postgresql":
        revision = _pg_backup(url, path)
    else:
        raise GatherlyError(f"backups of {backend} databases are not supported")
    return BackupResult(path=path, size=path.stat().st_size, revision=revision, backend=backend)


def restore(*, database_url: str, path: Path) -> RestoreResult:
    """Replace the database at ``database_url`` with the backup in ``path``, after checking
    that it is a Gatherly backup at a revision this code knows."""
    path = Path(path)
    if not path.is_file():
        raise ValidationFailed(f"{path} does not exist or is not a file", field="file")
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _check_revision(path, _sqlite_backup_revision(path))
        _sqlite_restore(path, _sqlite_path(url))
    elif backend == "postgresql":
        _pg_tool("pg_restore")
        _check_revision(path, _pg_backup_revision(url, path))
        _pg_restore(url, path)
    else:
        raise GatherlyError(f"restores of {backend} databases are not supported")
    revision = _database_revision(database_url)
    head = ", ".join(migrate.head_revisions())
    return RestoreResult(
        path=path, revision=revision, head=head, behind=revision != head, backend=backend
    )


def _check_revision(path: Path, revision: str) -> None:
    if not migrate.is_known_revision(revision):
        raise ValidationFailed(
            f"{path} is at revision {revision}, which this code does not know (a newer "
            f"release wrote it; the code's head is {', '.join(migrate.head_revisions())}): "
            "restore it with that release",
            field="file",
        )


def _database_revision(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return ", ".join(sorted(rows))
    finally:
        engine.dispose()


# ------------------------------------------------------------------ SQLite


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise ValidationFailed("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _revision_of(conn: sqlite3.Connection, what: str) -> str:
    """The ``alembic_version`` of an open SQLite database, or ValidationFailed naming ``what``."""
    try:
        found = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall() if found else []
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"{what} is not a Gatherly backup ({exc})", field="file") from None
    if not rows:
        raise ValidationFailed(
            f"{what} is not a Gatherly backup (it has no schema revision)", field="file"
        )
    return ", ".join(sorted(str(r[0]) for r in rows))


def _sqlite_backup(source: Path, path: Path) -> str:
    if not source.is_file():
        raise ValidationFailed(f"the database {source} does not exist: nothing to back up")
    # Into a temporary file beside the target, renamed when complete: no half-written backup.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with (
            closing(sqlite3.connect(source, timeout=10)) as src,
            closing(sqlite3.connect(tmp)) as dst,
        ):
            src.backup(dst)
            # One self-contained file (no -wal beside it), whatever the source's mode.
            dst.execute("PRAGMA journal_mode=DELETE").fetchall()
            revision = _revision_of(dst, f"the database {source}")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return revision


def _sqlite_backup_revision(path: Path) -> str:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return _revision_of(conn, str(path))


def _sqlite_restore(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target, timeout=10)) as dst,
    ):
        src.backup(dst)


# ------------------------------------------------------------------ PostgreSQL

_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*(\S+)")


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise GatherlyError(
            f"{name} was not found on PATH: install the PostgreSQL client tools (the "
            "server's major version or newer) to back up and restore a PostgreSQL database"
        )
    return found


def _pg_options(url: URL) -> str | None:
    value = url.query.get("options")
    if isinstance(value, tuple):
        value = " ".join(value)
    return value or None


def _pg_schemas(url: URL) -> list[str]:
    """The schemas named by a ``search_path`` in the URL's ``options`` (none: the whole
    database)."""
    match = _SEARCH_PATH.search(_pg_options(url) or "")
    if match is None:
        return []
    names = [n.strip().strip('"') for n in match.group(1).split(",")]
    return [n for n in names if n and n != "$user"]


def _pg_args_env(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments (no password) and the environment carrying the rest."""
    args = [f"--dbname={url.database or ''}"]
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    options = _pg_options(url)
    if options:
        env["PGOPTIONS"] = options
    sslmode = url.query.get("sslmode")
    if isinstance(sslmode, str):
        env["PGSSLMODE"] = sslmode
    return args, env


def _run(tool: str, args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - a PostgreSQL client tool, no shell
        [_pg_tool(tool), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        why = lines[0] if lines else f"exit code {result.returncode}"
        raise GatherlyError(f"{tool} failed: {why}")
    return result.stdout


def _pg_backup(url: URL, path: Path) -> str:
    _pg_tool("pg_dump")
    revision = _database_revision(url.render_as_string(hide_password=False))
    if not revision:
        raise ValidationFailed("the database has no schema revision: nothing to back up")
    args, env = _pg_args_env(url)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        schemas = [f"--schema={name}" for name in _pg_schemas(url)]
        _run("pg_dump", ["--format=custom", f"--file={tmp}", *schemas, *args], env)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return revision


def _pg_backup_revision(url: URL, path: Path) -> str:
    """The revision in a pg_dump archive: its ``alembic_version`` rows, read by pg_restore
    (which also refuses a file that is no archive)."""
    _args, env = _pg_args_env(url)
    try:
        script = _run(
            "pg_restore", ["--data-only", "--table=alembic_version", "--file=-", str(path)], env
        )
    except GatherlyError as exc:
        raise ValidationFailed(
            f"{path} is not a Gatherly backup ({exc.message})", field="file"
        ) from None
    rows: list[str] = []
    copying = False
    for line in script.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            copying = True
        elif copying and line == "\\.":
            break
        elif copying and line:
            rows.append(line.split("\t")[0])
    if not rows:
        raise ValidationFailed(
            f"{path} is not a Gatherly backup (it has no schema revision)", field="file"
        )
    return ", ".join(sorted(rows))


def _pg_restore(url: URL, path: Path) -> None:
    args, env = _pg_args_env(url)
    _run(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *args,
            str(path),
        ],
        env,
    )
