"""Run Alembic migrations from code (``gatherly db upgrade``) without an alembic.ini."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

if TYPE_CHECKING:  # Alembic loads when a migration command runs, not with every CLI command
    from alembic.config import Config
    from alembic.script import ScriptDirectory


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "gatherly:migrations")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` on ``engine``."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


@functools.cache
def _scripts() -> ScriptDirectory:
    """The packaged migrations, read once per process (the code's revisions do not change
    while it runs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(""))


def current_matches_head(engine: Engine) -> tuple[bool, str]:
    """Whether the database's revision is the code's head: ``(True, "ok")``, or ``False``
    and what is wrong in words, with what to do (revisions only: nothing secret)."""
    from alembic.migration import MigrationContext
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    scripts = _scripts()
    heads = set(scripts.get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return True, "ok"
    need = ", ".join(sorted(heads))
    upgrade = "run `gatherly db upgrade`"
    if not current:
        return False, f"no schema: the database has no revision, the code needs {need}; {upgrade}"
    at = ", ".join(sorted(current))
    try:
        for revision in current:
            scripts.get_revision(revision)
    except (CommandError, RevisionError):
        return False, (
            f"unknown revision: the database is at {at}, which this code does not know "
            f"(a newer release migrated it); the code needs {need}"
        )
    return False, f"behind: the database is at {at}, the code needs {need}; {upgrade}"


def head_revisions() -> list[str]:
    """The code's head revision(s), sorted."""
    return sorted(_scripts().get_heads())


def is_known_revision(revision: str) -> bool:
    """Whether this code's migrations contain ``revision`` (so it is the head or behind it)."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False
