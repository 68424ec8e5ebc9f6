"""The Teams connector API over real HTTP to the Graph emulator (SPEC T1–T5, T12).

Every response of every test here (and of tests/api/test_events_api.py, which uses the same
client) is checked to carry no client secret of the emulator's applications.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import gatherly.models
from gatherly.app import create_app
from gatherly.org.models import User
from gatherly.teams.models import SyncRun
from tests import factories as f
from tests.api.helpers import API, Headers, assert_error
from tests.conftest import shared_app
from tests.teams import conftest as teams_fixtures
from tests.teams.conftest import Connected, Tenant
from tests.workers import worker_process

# The emulator fixtures of tests/teams, used here as they are.
tenant_server = teams_fixtures.tenant_server
tenant = teams_fixtures.tenant
connected = teams_fixtures.connected

# Secrets no response may contain: the fixture's, plus any a test adds to the emulator.
SECRETS: set[str] = set()
RECORDING = ["OnlineMeetingRecording.Read.All", "OnlineMeetingTranscript.Read.All"]


def _no_secret(response: Response) -> None:
    response.read()
    for secret in SECRETS:
        assert secret not in response.text, f"{response.request.url} leaked a client secret"
        assert secret not in str(response.headers)


def api_client(
    connected: Connected, *, own_app: bool = False, **overrides: Any
) -> Iterator[TestClient]:
    """An API client on the connected database and settings, checking every response
    (``own_app``: an app of its own, for settings that differ from another client's)."""
    SECRETS.update(a["secret"] for a in connected.tenant.data["applications"])
    settings = connected.settings.model_copy(update=overrides)
    app = create_app(settings) if own_app else shared_app(settings)
    with TestClient(app) as client:
        client.event_hooks["response"] = [_no_secret]
        yield client
    if own_app:
        app.state.engine.dispose()


@pytest.fixture
def api(connected: Connected, tmp_path: Path) -> Iterator[TestClient]:
    """The API client for the connected installation (its job queue in a temporary file)."""
    yield from api_client(connected, queue_path=str(tmp_path / "queue.db"))


@dataclass
class People:
    """Users of the connected installation and their token headers."""

    ids: dict[str, int] = field(default_factory=dict)
    headers: dict[str, Headers] = field(default_factory=dict)


def make_people(session_factory: sessionmaker[Session], admin_id: int) -> People:
    """admin (System Administrator), orgadmin (Marketing Administrator), marketer (Marketer),
    marta (Marketer, mapped to the organizer Marta Lindqvist by email) and nobody (no roles)."""
    people = People()
    with session_factory() as db:
        marketing = f.bu(db, "Marketing")
        users = {
            "orgadmin": f.user(db, "orgadmin", None, "Marketing Administrator"),
            "marketer": f.user(db, "marketer", None, "Marketer"),
            "marta": f.user(db, "marta", marketing, "Marketer"),
            "nobody": f.user(db, "nobody"),
        }
        users["marta"].email = "marta.lindqvist@contoso.example"
        db.commit()
        people.ids = {"admin": admin_id, **{k: u.id for k, u in users.items()}}
        for name, user_id in people.ids.items():
            user = db.get(User, user_id)
            assert user is not None
            people.headers[name] = f.token(db, user)
    return people


@pytest.fixture
def people(connected: Connected) -> People:
    """The installation's users (created before any sync, so Marta is mapped)."""
    return make_people(connected.session_factory, connected.admin_id)


def connection_body(tenant: Tenant, app: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A PUT /integrations/teams/connection body for one of the emulator's applications."""
    return {
        "tenant_id": tenant.tenant_id,
        "client_id": app["appId"],
        "client_secret": app["secret"],
        "authority": f"{tenant.base_url}/{tenant.tenant_id}",
        "graph_url": f"{tenant.base_url}/v1.0",
        **extra,
    }


def wait_for_run(api: TestClient, run: dict[str, Any], headers: Headers) -> dict[str, Any]:
    """Poll a run's self link until it is no longer running (short timeout)."""
    deadline = time.monotonic() + 30
    while True:
        response = api.get(run["links"]["self"], headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def sync(api: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    """POST /integrations/teams/sync (202), then let a real worker process carry the run out."""
    response = api.post(f"{API}/integrations/teams/sync", json=body, headers=headers)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "running"
    assert run["links"]["self"] == f"{API}/integrations/teams/sync-runs/{run['id']}"
    with worker_process(api.app.state.settings):  # type: ignore[attr-defined]
        return wait_for_run(api, run, headers)


def row_counts(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Rows per table: what a dry run must leave as it found it."""
    with session_factory() as db:
        return {
            t.name: int(db.scalar(select(func.count()).select_from(t)) or 0)
            for t in gatherly.models.Base.metadata.sorted_tables
        }


def by_name(items: list[dict[str, Any]], key: str = "display_name") -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


# ------------------------------------------------------------------ connection (T1)


def test_read_and_reconnect(api: TestClient, tenant: Tenant, people: People) -> None:
    admin = people.headers["admin"]
    body = api.get(f"{API}/integrations/teams/connection", headers=admin).json()
    assert body["client_id"] == tenant.app(0)["appId"]
    assert body["tenant_id"] == tenant.tenant_id
    assert body["status"] == "connected"
    assert body["missing_permissions"] == []
    assert body["secret_source"] == "stored"
    assert body["settings"]["organizer_exclusion_domains"] == ["partner-agency.example"]
    assert body["settings"]["contact_exclusion_domains"] == ["contoso.example"]
    assert body["settings"]["default_owner_id"] == people.ids["admin"]
    assert body["checked_at"] is not None
    # Marketing Administrators manage the integration too.
    assert (
        api.get(
            f"{API}/integrations/teams/connection", headers=people.headers["orgadmin"]
        ).status_code
        == 200
    )

    response = api.put(
        f"{API}/integrations/teams/connection",
        json=connection_body(tenant, tenant.app(0)),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["granted_permissions"]) == set(tenant.app(0)["permissions"])

    check = api.post(f"{API}/integrations/teams/connection/test", headers=admin)
    assert check.status_code == 200, check.text
    assert check.json()["status"] == "connected"


def test_a_refused_secret_is_422_on_client_secret_and_saves_nothing(
    api: TestClient, tenant: Tenant, people: People
) -> None:
    admin = people.headers["admin"]
    before = api.get(f"{API}/integrations/teams/connection", headers=admin).json()
    wrong = "not-the-secret~" + uuid.uuid4().hex
    SECRETS.add(wrong)
    body = connection_body(tenant, tenant.app(1), client_secret=wrong)
    assert_error(
        api.put(f"{API}/integrations/teams/connection", json=body, headers=admin),
        422,
        "client_secret",
    )
    assert api.get(f"{API}/integrations/teams/connection", headers=admin).json() == before


def test_a_limited_install_connects_as_limited_naming_what_is_missing(
    api: TestClient, tenant: Tenant, people: People
) -> None:
    response = api.put(
        f"{API}/integrations/teams/connection",
        json=connection_body(tenant, tenant.app(1)),
        headers=people.headers["admin"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "limited"
    assert body["client_id"] == tenant.app(1)["appId"]
    assert sorted(body["missing_permissions"]) == RECORDING
    for permission in RECORDING:
        assert permission in body["status_detail"]


def test_a_missing_required_permission_is_422_on_permissions(
    api: TestClient, tenant: Tenant, people: People
) -> None:
    admin = people.headers["admin"]
    before = api.get(f"{API}/integrations/teams/connection", headers=admin).json()
    app = {
        "appId": str(uuid.uuid4()),
        "secret": "no-virtual-events~" + uuid.uuid4().hex,
        "permissions": ["OnlineMeetingArtifact.Read.All", "User.Read.All"],
    }
    SECRETS.add(app["secret"])
    tenant.state.data["applications"].append(app)  # the fixture resets the emulator per test
    response = api.put(
        f"{API}/integrations/teams/connection", json=connection_body(tenant, app), headers=admin
    )
    error = assert_error(response, 422, "permissions")
    assert "VirtualEvent.Read.All" in error["message"]
    assert api.get(f"{API}/integrations/teams/connection", headers=admin).json() == before


def test_the_secret_may_come_from_the_environment(
    connected: Connected, api: TestClient, tenant: Tenant, people: People
) -> None:
    admin = people.headers["admin"]
    body = connection_body(tenant, tenant.app(0))
    del body["client_secret"]
    # Without GATHERLY_TEAMS_CLIENT_SECRET the secret is required.
    assert_error(
        api.put(f"{API}/integrations/teams/connection", json=body, headers=admin),
        422,
        "client_secret",
    )
    secret = SecretStr(tenant.app(0)["secret"])
    for env_api in api_client(connected, own_app=True, teams_client_secret=secret):
        response = env_api.put(f"{API}/integrations/teams/connection", json=body, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["secret_source"] == "environment"
        assert (
            env_api.post(f"{API}/integrations/teams/connection/test", headers=admin).status_code
            == 200
        )
    # An app without the variable knows the secret is missing, and says so.
    assert (
        api.get(f"{API}/integrations/teams/connection", headers=admin).json()["secret_source"]
        == "missing"
    )


def test_a_failed_check_is_recorded(api: TestClient, tenant: Tenant, people: People) -> None:
    admin = people.headers["admin"]
    tenant.state.data["applications"][0]["secret"] = "rotated~" + uuid.uuid4().hex
    SECRETS.add(tenant.state.data["applications"][0]["secret"])
    assert_error(
        api.post(f"{API}/integrations/teams/connection/test", headers=admin), 422, "client_secret"
    )
    body = api.get(f"{API}/integrations/teams/connection", headers=admin).json()
    assert body["status"] == "failed"
    assert body["status_detail"]


def test_disconnect(api: TestClient, people: People) -> None:
    admin = people.headers["admin"]
    assert api.delete(f"{API}/integrations/teams/connection", headers=admin).status_code == 204
    trail = api.get(f"{API}/admin/audit", params={"action": "teams.disconnect"}, headers=admin)
    assert [e["actor_name"] for e in trail.json()["items"]] == ["admin"]
    assert_error(api.get(f"{API}/integrations/teams/connection", headers=admin), 404)
    assert_error(api.delete(f"{API}/integrations/teams/connection", headers=admin), 404)
    assert_error(api.post(f"{API}/integrations/teams/connection/test", headers=admin), 404)
    assert_error(api.patch(f"{API}/integrations/teams/settings", json={}, headers=admin), 404)
    assert_error(api.post(f"{API}/integrations/teams/sync", json={}, headers=admin), 404)


# ------------------------------------------------------------------ settings (T3)


def test_settings_are_validated_with_field_paths_and_change_nothing_on_error(
    api: TestClient, people: People
) -> None:
    admin = people.headers["admin"]

    def current() -> dict[str, Any]:
        settings: dict[str, Any] = api.get(
            f"{API}/integrations/teams/connection", headers=admin
        ).json()["settings"]
        return settings

    before = current()
    bad: list[tuple[dict[str, Any], str]] = [
        (
            {"sync_interval_minutes": 30, "organizer_exclusion_domains": ["ok.example", "no way"]},
            "organizer_exclusion_domains[1]",
        ),
        ({"contact_exclusion_domains": ["@fabrikam.example", "x"]}, "contact_exclusion_domains[1]"),
        ({"sync_interval_minutes": 2}, "sync_interval_minutes"),
        ({"policy_name": "has spaces"}, "policy_name"),
        ({"default_owner_id": 999999}, "default_owner_id"),
        ({"sync_enabled": None}, "sync_enabled"),
        ({"sync_enabled": True, "surprise": 1}, "surprise"),
        ({"notifications_enabled": True}, "public_base_url"),  # Graph needs somewhere to post
        ({"public_base_url": "ftp://gatherly.example"}, "public_base_url"),
        ({"public_base_url": "https://gatherly.example/?x=1"}, "public_base_url"),
        ({"notifications_enabled": None}, "notifications_enabled"),
    ]
    for body, field_path in bad:
        response = api.patch(f"{API}/integrations/teams/settings", json=body, headers=admin)
        assert_error(response, 422, field_path)
        assert current() == before, body

    body = {"contact_exclusion_domains": ["@Fabrikam.Example", "contoso.example"]}
    response = api.patch(f"{API}/integrations/teams/settings", json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {
        **before,
        "contact_exclusion_domains": ["contoso.example", "fabrikam.example"],
    }
    body = {"sync_interval_minutes": 60, "default_owner_id": None, "sync_enabled": False}
    response = api.patch(f"{API}/integrations/teams/settings", json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert current()["sync_interval_minutes"] == 60
    assert current()["default_owner_id"] is None
    assert current()["sync_enabled"] is False
    body = {"notifications_enabled": True, "public_base_url": " https://gatherly.example/ "}
    response = api.patch(f"{API}/integrations/teams/settings", json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert (current()["notifications_enabled"], current()["public_base_url"]) == (
        True,
        "https://gatherly.example",
    )
    # Its health: admins only; no subscription yet (the worker subscribes).
    listed = api.get(f"{API}/integrations/teams/subscriptions", headers=admin)
    assert listed.json() == []
    for who in ("marketer", "marta"):
        refused = api.get(f"{API}/integrations/teams/subscriptions", headers=people.headers[who])
        assert refused.status_code == 403, who


# ------------------------------------------------------------------ security


def test_admin_routes_refuse_users_without_the_integration_privilege(
    api: TestClient, tenant: Tenant, people: People, connected: Connected
) -> None:
    before = row_counts(connected.session_factory)
    connection = api.get(
        f"{API}/integrations/teams/connection", headers=people.headers["admin"]
    ).json()
    calls = [
        ("GET", "/integrations/teams/connection", None),
        ("PUT", "/integrations/teams/connection", connection_body(tenant, tenant.app(1))),
        ("POST", "/integrations/teams/connection/test", None),
        ("DELETE", "/integrations/teams/connection", None),
        ("PATCH", "/integrations/teams/settings", {"sync_enabled": False}),
        ("POST", "/integrations/teams/sync", {}),
        ("POST", "/integrations/teams/sync", {"dry_run": True}),
    ]
    for user in ("marketer", "marta", "nobody"):
        for method, path, body in calls:
            response = api.request(method, f"{API}{path}", json=body, headers=people.headers[user])
            assert_error(response, 403)
        # Non-admins see no organizers, webinars or runs but their own.
        for path in ("/integrations/teams/organizers", "/integrations/teams/webinars"):
            response = api.get(f"{API}{path}", headers=people.headers[user])
            assert response.json() == []
        runs = api.get(f"{API}/integrations/teams/sync-runs", headers=people.headers[user]).json()
        assert runs == {"items": [], "next_cursor": None}
    assert row_counts(connected.session_factory) == before
    after = api.get(f"{API}/integrations/teams/connection", headers=people.headers["admin"]).json()
    assert after == connection


def test_every_teams_route_needs_a_token(api: TestClient) -> None:
    for method, path in [
        ("GET", "/integrations/teams/connection"),
        ("PUT", "/integrations/teams/connection"),
        ("POST", "/integrations/teams/connection/test"),
        ("DELETE", "/integrations/teams/connection"),
        ("PATCH", "/integrations/teams/settings"),
        ("GET", "/integrations/teams/organizers"),
        ("PATCH", "/integrations/teams/organizers/1"),
        ("GET", "/integrations/teams/webinars"),
        ("PATCH", "/integrations/teams/webinars/1"),
        ("POST", "/integrations/teams/sync"),
        ("GET", "/integrations/teams/sync-runs"),
        ("GET", "/integrations/teams/sync-runs/1"),
    ]:
        response = api.request(method, f"{API}{path}", json={})
        assert assert_error(response, 401)["code"] == "unauthenticated", (method, path)


# ------------------------------------------------------------------ organizers (T2, T4)


def test_organizers_show_status_and_remedy(api: TestClient, tenant: Tenant, people: People) -> None:
    admin = people.headers["admin"]
    run = sync(api, admin)  # discovery
    assert run["status"] == "succeeded", run["errors"]
    organizers = by_name(api.get(f"{API}/integrations/teams/organizers", headers=admin).json())
    # Who organizes, and users mapped to Gatherly users; others only when asked for.
    assert set(organizers) == {"Marta Lindqvist", "Tomas Berg", "Priya Natarajan"}
    assert organizers["Marta Lindqvist"]["organizes"] is True
    everyone = api.get(
        f"{API}/integrations/teams/organizers", params={"everyone": "true"}, headers=admin
    )
    organizers = by_name(everyone.json())
    assert set(organizers) == {u["displayName"] for u in tenant.data["users"]}
    summary = api.get(f"{API}/integrations/teams/directory", headers=admin).json()
    assert summary == {
        "users": 9,
        "organizers": 3,
        "blocked": 0,
        "others_blocked": 6,
        "unchecked": 0,
        "excluded": 1,
    }
    kenji = organizers["Kenji Sato"]
    assert kenji["status"] == "policy_not_granted"
    assert kenji["graph_user_id"] == tenant.user("Kenji Sato")["id"]
    remedy = "\n".join(kenji["remedy"])
    assert tenant.app(0)["appId"] in remedy
    assert (
        f'Grant-CsApplicationAccessPolicy -PolicyName Gatherly-Webinar-Sync -Identity "{kenji["graph_user_id"]}"'
        in remedy
    )
    marta = organizers["Marta Lindqvist"]
    assert (marta["status"], marta["remedy"], marta["user_id"]) == ("ok", [], people.ids["marta"])
    assert organizers["Priya Natarajan"]["status"] == "excluded"

    # Marta (mapped by email) sees and manages only herself.
    mine = api.get(f"{API}/integrations/teams/organizers", headers=people.headers["marta"]).json()
    assert [o["id"] for o in mine] == [marta["id"]]
    change = {"sync_new_by_default": True, "sync_recordings": True}
    response = api.patch(
        f"{API}/integrations/teams/organizers/{marta['id']}",
        json=change,
        headers=people.headers["marta"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["sync_new_by_default"] is True
    assert response.json()["sync_recordings"] is True
    for other in ("Tomas Berg", "Kenji Sato"):
        url = f"{API}/integrations/teams/organizers/{organizers[other]['id']}"
        assert_error(api.patch(url, json=change, headers=people.headers["marta"]), 404)
        assert_error(api.patch(url, json=change, headers=people.headers["marketer"]), 404)
    # An excluded organizer cannot default to syncing.
    url = f"{API}/integrations/teams/organizers/{organizers['Priya Natarajan']['id']}"
    assert_error(api.patch(url, json={"sync_new_by_default": True}, headers=admin), 409)
    assert_error(
        api.patch(f"{API}/integrations/teams/organizers/999999", json={}, headers=admin), 404
    )


# ------------------------------------------------------------------ webinars and sync (T4, T5, T12)


def test_webinars_tick_and_sync_now(
    api: TestClient, tenant: Tenant, people: People, connected: Connected
) -> None:
    admin, marta_h = people.headers["admin"], people.headers["marta"]
    assert sync(api, admin)["status"] == "succeeded"
    webinars = by_name(api.get(f"{API}/integrations/teams/webinars", headers=admin).json())
    assert "Autumn Product Launch" in webinars
    assert not any(w["sync_enabled"] for w in webinars.values())
    autumn, apac = webinars["Autumn Product Launch"], webinars["APAC Partner Briefing"]
    assert autumn["organizer_name"] == "Marta Lindqvist"

    marta_id = autumn["organizer_id"]
    hers = api.get(f"{API}/integrations/teams/webinars", headers=marta_h).json()
    assert hers
    assert {w["organizer_id"] for w in hers} == {marta_id}
    filtered = api.get(
        f"{API}/integrations/teams/webinars", params={"organizer_id": marta_id}, headers=admin
    )
    assert {w["id"] for w in filtered.json()} == {w["id"] for w in hers}

    # Marta ticks her own webinar; another's is not hers to see.
    url = f"{API}/integrations/teams/webinars/{autumn['id']}"
    response = api.patch(url, json={"sync_enabled": True}, headers=marta_h)
    assert response.status_code == 200, response.text
    assert response.json()["sync_enabled"] is True
    apac_url = f"{API}/integrations/teams/webinars/{apac['id']}"
    assert_error(api.patch(apac_url, json={"sync_enabled": True}, headers=marta_h), 404)
    assert_error(
        api.patch(apac_url, json={"sync_enabled": True}, headers=people.headers["marketer"]), 404
    )
    assert_error(
        api.patch(url, json={"sync_enabled": "maybe"}, headers=marta_h), 422, "sync_enabled"
    )

    # Sync now: the organizer may run her webinar, not another's, and not a full sync.
    run = sync(api, marta_h, webinar_id=autumn["id"])
    assert run["status"] == "succeeded", run["errors"]
    assert run["kind"] == "webinar"
    assert run["webinar_graph_id"] == autumn["graph_id"]
    assert run["changes"]["events_created"] == 1
    assert run["triggered_by_id"] == people.ids["marta"]
    synced = api.get(f"{API}/integrations/teams/webinars", headers=marta_h).json()
    assert by_name(synced)["Autumn Product Launch"]["event_id"] is not None
    assert_error(
        api.post(
            f"{API}/integrations/teams/sync", json={"webinar_id": apac["id"]}, headers=marta_h
        ),
        404,
    )
    assert_error(api.post(f"{API}/integrations/teams/sync", json={}, headers=marta_h), 403)
    assert_error(
        api.post(f"{API}/integrations/teams/sync", json={"webinar_id": 999999}, headers=admin), 404
    )

    # Runs: admins see all, others those they started.
    all_runs = api.get(f"{API}/integrations/teams/sync-runs", headers=admin).json()["items"]
    assert [r["kind"] for r in all_runs] == ["webinar", "full"]
    her_runs = api.get(f"{API}/integrations/teams/sync-runs", headers=marta_h).json()["items"]
    assert [r["id"] for r in her_runs] == [run["id"]]
    assert_error(
        api.get(f"{API}/integrations/teams/sync-runs/{all_runs[1]['id']}", headers=marta_h), 404
    )
    page = api.get(f"{API}/integrations/teams/sync-runs", params={"limit": 1}, headers=admin).json()
    assert [r["id"] for r in page["items"]] == [all_runs[0]["id"]]
    rest = api.get(
        f"{API}/integrations/teams/sync-runs",
        params={"limit": 1, "cursor": page["next_cursor"]},
        headers=admin,
    ).json()
    assert [r["id"] for r in rest["items"]] == [all_runs[1]["id"]]
    assert rest["next_cursor"] is None


def test_a_dry_run_returns_the_plan_and_writes_nothing(
    api: TestClient, people: People, connected: Connected
) -> None:
    admin = people.headers["admin"]
    connected.sync()  # discovery
    connected.tick_all()
    before = row_counts(connected.session_factory)
    response = api.post(f"{API}/integrations/teams/sync", json={"dry_run": True}, headers=admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True
    assert report["run_id"] is None
    assert report["status"] == "succeeded", report["errors"]
    assert report["changes"]["events_created"] > 0
    assert {item["event"] for item in report["plan"]} == {"create"}
    assert report["graph_stats"]["requests"] > 0
    assert row_counts(connected.session_factory) == before


def test_a_sync_returns_202_and_runs_to_success(
    api: TestClient, people: People, connected: Connected
) -> None:
    admin = people.headers["admin"]
    connected.sync()  # discovery
    connected.tick_all()
    run = sync(api, admin)
    assert run["status"] == "succeeded", run["errors"]
    assert run["kind"] == "full"
    assert run["finished_at"] is not None
    assert run["progress_total"] > 0
    assert run["progress_done"] == run["progress_total"]
    assert run["changes"]["events_created"] > 0
    assert run["fetched"]["registrations"] > 0
    assert run["graph_stats"]["requests"] > 0
    assert run["errors"] == []
    with connected.session_factory() as db:
        stored = db.get(SyncRun, run["id"])
        assert stored is not None
        assert stored.status == "succeeded"
    events = api.get(f"{API}/events/count", headers=admin).json()["count"]
    assert events == run["changes"]["events_created"]


def test_no_response_carries_the_secret(
    api: TestClient, tenant: Tenant, people: People, connected: Connected
) -> None:
    admin = people.headers["admin"]
    secret = tenant.app(0)["secret"]
    responses = [
        api.put(
            f"{API}/integrations/teams/connection",
            json=connection_body(tenant, tenant.app(0)),
            headers=admin,
        ),
        api.get(f"{API}/integrations/teams/connection", headers=admin),
        api.post(f"{API}/integrations/teams/connection/test", headers=admin),
        api.patch(
            f"{API}/integrations/teams/settings", json={"sync_interval_minutes": 20}, headers=admin
        ),
        api.put(
            f"{API}/integrations/teams/connection",
            json=connection_body(tenant, tenant.app(0), authority="ftp://nowhere"),
            headers=admin,
        ),
        api.put(
            f"{API}/integrations/teams/connection",
            json=connection_body(tenant, tenant.app(0), tenant_id=""),
            headers=admin,
        ),
        api.post(f"{API}/integrations/teams/sync", json={"dry_run": True}, headers=admin),
        api.post(f"{API}/integrations/teams/sync", json={}, headers=admin),
        api.get(f"{API}/integrations/teams/organizers", headers=admin),
        api.get(f"{API}/integrations/teams/webinars", headers=admin),
        api.get(f"{API}/integrations/teams/sync-runs", headers=admin),
        api.get(f"{API}/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [
        200,
        200,
        200,
        200,
        422,
        422,
        200,
        202,
        200,
        200,
        200,
        200,
    ]
    for response in responses:
        assert secret not in response.text
    # Nor is it stored in the clear.
    with connected.session_factory() as db:
        for table in gatherly.models.Base.metadata.sorted_tables:
            for row in db.execute(select(table)).all():
                assert secret not in repr(row), table.name
