"""The Teams connection and its settings are audited (issue 12): connect, global settings,
per-organizer settings, a webinar's Sync tick and disconnect, each with who, before and
after, and never a client secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.core.audit import AuditEntry
from gatherly.org.directory import load_principal
from gatherly.teams import service as teams
from gatherly.teams.models import ORGANIZER_OK, TeamsOrganizer, TeamsWebinar
from tests.api.helpers import API
from tests.api.test_teams_api import api_client, make_people
from tests.teams.conftest import EXCLUDED_ORGANIZER_DOMAIN, INTERNAL_DOMAIN, Connected


def _entries(db: Session, prefix: str = "teams.") -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action.startswith(prefix))
    return list(db.execute(stmt.order_by(AuditEntry.id)).scalars())


def _no_secret_anywhere(db: Session, connected: Connected) -> None:
    secrets = [a["secret"] for a in connected.tenant.data["applications"]]
    for entry in db.execute(select(AuditEntry)).scalars():
        text = json.dumps(
            [entry.before, entry.after, entry.details, entry.target_label], default=str
        )
        for secret in secrets:
            assert secret not in text, entry.action


def test_connect_settings_organizer_webinar_and_disconnect_are_audited(
    connected: Connected,
) -> None:
    connected.sync()  # discovers the organizers and their webinars
    with connected.session_factory() as db, db.begin():
        admin = load_principal(db, connected.admin_id)
        connect = _entries(db, "teams.connect")
        assert len(connect) == 1
        entry = connect[0]
        assert (entry.actor_id, entry.actor_name, entry.action) == (
            connected.admin_id,
            "admin",
            "teams.connect",
        )
        assert (entry.target_type, entry.target_id) == ("teams_connection", "1")
        assert entry.before is None
        assert entry.after is not None
        assert entry.after["tenant_id"] == connected.tenant.tenant_id
        assert entry.after["client_secret"] == "stored"
        assert entry.details == {"client_secret_replaced": True}

        teams.update_settings(
            db=db,
            sync_enabled=False,
            contact_exclusion_domains=[INTERNAL_DOMAIN, "example.org"],
            sync_interval_minutes=30,
            by_user_id=connected.admin_id,
        )
        teams.update_settings(db=db, sync_enabled=False, by_user_id=connected.admin_id)  # no-op
        settings = _entries(db, "teams.settings")
        mine = [e for e in settings if e.actor_id == connected.admin_id]
        assert [(e.before, e.after) for e in mine] == [
            (
                {
                    "sync_enabled": True,
                    "contact_exclusion_domains": [INTERNAL_DOMAIN],
                    "sync_interval_minutes": 15,
                },
                {
                    "sync_enabled": False,
                    "contact_exclusion_domains": [INTERNAL_DOMAIN, "example.org"],
                    "sync_interval_minutes": 30,
                },
            )
        ]
        # The fixture's own exclusions were set without an actor: by the system.
        assert settings[0].actor_id is None
        assert settings[0].after == {
            "organizer_exclusion_domains": [EXCLUDED_ORGANIZER_DOMAIN],
            "contact_exclusion_domains": [INTERNAL_DOMAIN],
        }

        organizer = db.scalars(
            select(TeamsOrganizer)
            .join(TeamsWebinar, TeamsWebinar.organizer_id == TeamsOrganizer.id)
            .where(TeamsOrganizer.status == ORGANIZER_OK)
            .order_by(TeamsOrganizer.id)
            .limit(1)
        ).one()
        teams.update_organizer(
            db=db,
            principal=admin,
            organizer_id=organizer.id,
            sync_new_by_default=not organizer.sync_new_by_default,
        )
        (changed,) = _entries(db, "teams.organizer_settings")
        assert (changed.target_type, changed.target_id, changed.actor_name) == (
            "teams_organizer",
            str(organizer.id),
            "admin",
        )
        assert changed.target_label == organizer.display_name
        assert changed.before == {"sync_new_by_default": not organizer.sync_new_by_default}
        assert changed.after == {"sync_new_by_default": organizer.sync_new_by_default}

        webinar = db.scalars(
            select(TeamsWebinar).where(TeamsWebinar.organizer_id == organizer.id).limit(1)
        ).one()
        teams.set_webinar_sync(
            db=db, principal=admin, webinar_id=webinar.id, enabled=not webinar.sync_enabled
        )
        (ticked,) = _entries(db, "teams.webinar_sync")
        assert (ticked.target_type, ticked.target_id, ticked.target_label) == (
            "teams_webinar",
            str(webinar.id),
            webinar.display_name,
        )
        assert ticked.after == {"sync_enabled": webinar.sync_enabled}

        teams.disconnect(db=db, by_user_id=connected.admin_id)
        (gone,) = _entries(db, "teams.disconnect")
        assert gone.after is None
        assert gone.before is not None
        assert gone.before["client_secret"] == "stored"
        assert gone.before["sync_enabled"] is False
        _no_secret_anywhere(db, connected)


@pytest.fixture
def api(connected: Connected, tmp_path: Path) -> Iterator[TestClient]:
    yield from api_client(connected, queue_path=str(tmp_path / "queue.db"))


def test_settings_changed_through_the_api_are_audited_as_the_caller(
    api: TestClient, connected: Connected
) -> None:
    people = make_people(connected.session_factory, connected.admin_id)
    response = api.patch(
        f"{API}/integrations/teams/settings",
        json={"organizer_exclusion_domains": ["partner-agency.example", "@Other.example"]},
        headers=people.headers["orgadmin"],
    )
    assert response.status_code == 200, response.text
    trail = api.get(
        f"{API}/admin/audit", params={"action": "teams.settings"}, headers=people.headers["admin"]
    ).json()["items"]
    assert [(e["actor_name"], e["before"], e["after"]) for e in trail[:1]] == [
        (
            "orgadmin",
            {"organizer_exclusion_domains": ["partner-agency.example"]},
            {"organizer_exclusion_domains": ["other.example", "partner-agency.example"]},
        )
    ]
    with connected.session_factory() as db:
        _no_secret_anywhere(db, connected)
