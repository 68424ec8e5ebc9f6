"""Revision 0006 carries the audit entries already written (feature switches) into the new
shape and back, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from gatherly.core import migrate
from gatherly.core.db import make_engine
from tests.conftest import BACKENDS, postgres_schema


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with postgres_schema("gatherly_migr_audit") as url:
        yield url


def _downgrade(url: str, engine: sa.Engine, revision: str) -> None:
    cfg = migrate.alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_old_feature_switch_entries_are_carried_over_and_back(blank_url: str) -> None:
    engine = make_engine(blank_url)
    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO business_unit (id, name, description, created_at) "
                "VALUES (1, 'Org', '', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO user_account (id, username, full_name, business_unit_id, disabled,"
                " created_at) VALUES (7, 'root', '', 1, false, CURRENT_TIMESTAMP)"
            )
        )
        entries = sa.table(
            "audit_entry",
            sa.column("at", sa.DateTime(timezone=True)),
            sa.column("actor_id", sa.Integer()),
            sa.column("action", sa.String()),
            sa.column("target", sa.String()),
            sa.column("details", sa.JSON()),
        )
        conn.execute(
            entries.insert().values(
                at=sa.func.current_timestamp(),
                actor_id=7,
                action="feature.set",
                target="bu_scoping",
                details={"enabled": True, "previous": False},
            )
        )
    migrate.upgrade(engine)

    new = sa.table(
        "audit_entry",
        sa.column("actor_id", sa.Integer()),
        sa.column("actor_name", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("target_label", sa.String()),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
        sa.column("details", sa.JSON()),
    )
    with engine.connect() as conn:
        row = conn.execute(sa.select(new)).one()
    assert row.actor_id == 7
    assert row.actor_name == "root"
    assert (row.action, row.target_type, row.target_id) == ("feature.set", "feature", "bu_scoping")
    assert (row.before, row.after, row.details) == ({"enabled": False}, {"enabled": True}, {})
    assert "expires_at" in {c["name"] for c in sa.inspect(engine).get_columns("api_token")}

    _downgrade(blank_url, engine, "0005")
    old = sa.table(
        "audit_entry",
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("details", sa.JSON()),
    )
    with engine.connect() as conn:
        back = conn.execute(sa.select(old)).one()
    assert (back.action, back.target) == ("feature.set", "bu_scoping")
    assert back.details == {"enabled": True, "previous": False}
    inspector = sa.inspect(engine)
    assert "installation_setting" not in inspector.get_table_names()
    assert "expires_at" not in {c["name"] for c in inspector.get_columns("api_token")}
    engine.dispose()
