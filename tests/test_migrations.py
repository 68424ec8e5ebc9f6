"""Every migration upgrades and downgrades cleanly, and the result matches the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import gatherly.models
from gatherly.core import migrate
from gatherly.core.db import make_engine
from tests.conftest import BACKENDS, postgres_schema


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with postgres_schema("gatherly_migr") as url:
        yield url


def test_upgrade_downgrade_upgrade_and_models_match(blank_url: str) -> None:
    engine = make_engine(blank_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), gatherly.models.Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    cfg = migrate.alembic_config(blank_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert "contact" in inspect(engine).get_table_names()
    engine.dispose()
