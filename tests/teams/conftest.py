"""A connected installation: the sample tenant served by the emulator over real HTTP.

``tenant`` is the emulator (reset per test) with helpers for its control endpoints;
``connected`` is a clean database connected to it the way an admin would (CLI/API call
the same service), with the sample's exclusions: organizer domain partner-agency.example,
contact domain contoso.example.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
from gatherly.org import service as org
from gatherly.teams import service as teams
from gatherly.teams.models import TeamsWebinar
from gatherly.teams.sync import RunReport, run_sync
from tests.dbstate import cached
from tests.loopback import serve_asgi

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-tenant.json"
INTERNAL_DOMAIN = "contoso.example"
EXCLUDED_ORGANIZER_DOMAIN = "partner-agency.example"


@dataclass
class Tenant:
    """The running emulator with the sample tenant, and its original data."""

    base_url: str
    state: EmulatorState
    data: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        return str(self.data["tenant"]["id"])

    def app(self, index: int = 0) -> dict[str, Any]:
        """An application of the fixture (0: full permissions, 1: limited install)."""
        return dict(self.data["applications"][index])

    def user(self, name: str) -> dict[str, Any]:
        """A fixture user by display name."""
        return next(u for u in self.data["users"] if u["displayName"] == name)

    def webinar(self, name: str) -> dict[str, Any]:
        """A fixture webinar (as currently served) by display name prefix."""
        return next(w for w in self.state.data["webinars"] if w["displayName"].startswith(name))

    def townhall(self, name: str) -> dict[str, Any]:
        """A fixture town hall (as currently served) by display name prefix."""
        found = self.state.data.get("townhalls", [])
        return next(t for t in found if t["displayName"].startswith(name))

    def control(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST to an ``/_emulator/`` control endpoint; fails the test on an error."""
        response = httpx.post(f"{self.base_url}/_emulator/{path}", json=body, timeout=10)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    def webinar_path(self, name: str) -> str:
        return f"webinars/{quote(self.webinar(name)['id'], safe='')}"

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/_emulator/requests", timeout=10)
        items: list[dict[str, Any]] = response.json()["value"]
        return items


@pytest.fixture(scope="session")
def tenant_server() -> Iterator[Tenant]:
    """The sample tenant over real HTTP for the whole session (page size 25)."""
    data = load_fixture(SAMPLE)
    state = EmulatorState(copy.deepcopy(data), page_size=25)
    with serve_asgi(create_emulator_app(state)) as base_url:
        yield Tenant(base_url, state, data)


@pytest.fixture
def tenant(tenant_server: Tenant) -> Tenant:
    """The emulator reset to the sample tenant."""
    httpx.post(f"{tenant_server.base_url}/_emulator/reset", timeout=10).raise_for_status()
    return tenant_server


@dataclass
class Connected:
    """A database connected to the emulator, with an admin who owns unmapped webinars."""

    session_factory: sessionmaker[Session]
    settings: Settings
    tenant: Tenant
    admin_id: int
    report: RunReport | None = None  # the full sync behind ``synced``

    def sync(self, **options: Any) -> RunReport:
        """Run a sync over real HTTP to the emulator."""
        return run_sync(self.session_factory, self.settings, **options)

    def tick_all(self) -> None:
        """Tick Sync on every discovered webinar."""
        with self.session_factory() as db, db.begin():
            db.execute(update(TeamsWebinar).values(sync_enabled=True))

    def tick(self, name: str) -> str:
        """Tick Sync on one discovered webinar; returns its Graph id."""
        with self.session_factory() as db, db.begin():
            row = db.scalars(
                select(TeamsWebinar).where(TeamsWebinar.display_name.startswith(name))
            ).one()
            row.sync_enabled = True
            return row.graph_id

    def full_sync(self) -> RunReport:
        """Discover, tick every webinar, sync; asserts the run succeeded."""
        self.sync()
        self.tick_all()
        report = self.sync()
        assert report.status == "succeeded", json.dumps(report.errors, indent=1)
        return report


def connect(
    session_factory: sessionmaker[Session],
    settings: Settings,
    tenant: Tenant,
    app_index: int = 0,
    *,
    admin_id: int | None = None,
) -> int:
    """Create the admin (or take the System Administrator ``admin_id``) and connect with one
    of the fixture's applications; returns the admin's id."""
    app = tenant.app(app_index)
    with session_factory() as db, db.begin():
        if admin_id is not None:
            admin = org.get_user(db=db, user_id=admin_id)
        else:
            root = org.get_root(db=db)
            admin = org.create_user(
                db=db, username="admin", business_unit_id=root.id, email="admin@gatherly.example"
            )
            org.assign_role(
                db=db,
                role_id=org.get_role_by_name(db=db, name="System Administrator").id,
                user_id=admin.id,
            )
        teams.connect(
            db=db,
            settings=settings,
            tenant_id=tenant.tenant_id,
            client_id=app["appId"],
            client_secret=SecretStr(app["secret"]),
            authority=f"{tenant.base_url}/{tenant.tenant_id}",
            graph_url=f"{tenant.base_url}/v1.0",
            by_user_id=admin.id,
        )
        teams.update_settings(
            db=db,
            organizer_exclusion_domains=[EXCLUDED_ORGANIZER_DOMAIN],
            contact_exclusion_domains=[INTERNAL_DOMAIN],
        )
        return admin.id


@pytest.fixture
def connected(
    session_factory: sessionmaker[Session], database_url: str, tenant: Tenant
) -> Connected:
    """A clean database connected to the sample tenant (no sync run yet)."""
    settings = Settings(database_url=database_url, graph_rate_per_second=500)
    admin_id = connect(session_factory, settings, tenant)
    return Connected(session_factory, settings, tenant, admin_id)


@pytest.fixture
def synced(connected: Connected, engine: Engine) -> Connected:
    """``connected`` after a full sync (discover, tick every webinar, sync).

    The first test in a process runs it over HTTP; later ones get its rows back (the
    emulator is reset to the same sample, which a sync only reads) and its report.
    """
    # Keyed by the emulator too: a module that imports these fixtures gets an emulator of its
    # own, and the stored connection points at the one the state was built against.
    key = f"teams.synced@{connected.tenant.base_url}"
    connected.report = cached(engine, key, connected.full_sync)
    return connected
