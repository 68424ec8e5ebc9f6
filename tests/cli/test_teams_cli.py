"""``gatherly teams`` end to end over real HTTP to the Graph emulator (SPEC T1–T5, T12)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gatherly.cli import app
from gatherly.contact.models import Contact
from gatherly.event.models import MarketingEvent
from gatherly.teams.models import TeamsConnection
from tests.cli.helpers import CliRun, make_cli, plain, run_script
from tests.teams import conftest as teams_fixtures
from tests.teams.conftest import Connected, Tenant

# The Teams suite's fixtures: the emulator on the sample tenant and a database connected to it.
tenant_server = teams_fixtures.tenant_server
tenant = teams_fixtures.tenant
connected = teams_fixtures.connected

KENJI_ID = "e500bddf-37b0-4307-8f0f-4c3c2052e52b"


@pytest.fixture(autouse=True)
def _fast_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """No client secret from the environment, and no rate limit worth waiting for."""
    monkeypatch.delenv("GATHERLY_TEAMS_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("GATHERLY_GRAPH_RATE_PER_SECOND", "500")


def connect_args(tenant: Tenant, index: int = 0) -> list[str]:
    """``teams connect`` options for a fixture application (without its secret)."""
    return [
        "teams",
        "connect",
        "--tenant-id",
        tenant.tenant_id,
        "--client-id",
        tenant.app(index)["appId"],
        "--authority",
        f"{tenant.base_url}/{tenant.tenant_id}",
        "--graph-url",
        f"{tenant.base_url}/v1.0",
    ]


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, a single stderr line with every fragment, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def run(connected: Connected, database_url: str) -> CliRun:
    """The CLI on the connected database."""
    return make_cli(database_url)


# ------------------------------------------------------------------ connect (T1)


def test_connect_checks_the_app_and_stores_the_secret_encrypted_never_printing_it(
    cli: CliRun, tenant: Tenant, open_db: Callable[[], Session]
) -> None:
    secret = tenant.app(0)["secret"]
    result = cli(*connect_args(tenant), "--client-secret", secret)
    assert plain(result.stdout).startswith("connected: tenant ")
    shown = as_json(cli("teams", "settings", "--json"))
    assert shown["status"] == "connected"
    assert shown["client_secret_source"] == "stored (encrypted)"
    stored = open_db().scalars(select(TeamsConnection)).one()
    assert stored.client_secret_encrypted
    assert secret not in stored.client_secret_encrypted
    assert secret not in result.output + json.dumps(shown)


def test_connect_prompts_for_a_hidden_secret_with_dash(
    cli: CliRun, tenant: Tenant, db_url: str
) -> None:
    secret = tenant.app(0)["secret"]
    result = CliRunner().invoke(
        app,
        [*connect_args(tenant), "--client-secret", "-", "--json"],
        input=secret + "\n",
        env={"GATHERLY_DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    assert "client secret" in result.output
    assert secret not in result.output


def test_connect_without_a_secret_uses_the_environment_and_stores_none(
    cli: CliRun, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, open_db: Callable[[], Session]
) -> None:
    monkeypatch.setenv("GATHERLY_TEAMS_CLIENT_SECRET", tenant.app(0)["secret"])
    shown = as_json(cli(*connect_args(tenant), "--json"))
    assert shown["client_secret_source"] == "from GATHERLY_TEAMS_CLIENT_SECRET"
    assert open_db().scalars(select(TeamsConnection)).one().client_secret_encrypted is None
    cli("teams", "disconnect")
    assert "not connected" in cli("teams", "settings", ok=False).exception.message


def test_test_rechecks_the_connection_and_records_a_failure(
    run: CliRun, tenant: Tenant, database_url: str
) -> None:
    assert as_json(run("teams", "test", "--json"))["status"] == "connected"
    tenant.state.data["applications"][0]["secret"] = "rotated-in-entra"
    one_line_error(run_script(database_url, "teams", "test"), "error (client_secret):")
    shown = as_json(run("teams", "settings", "--json"))
    assert shown["status"] == "failed"
    assert "Invalid client secret" in shown["status_detail"]


def test_limited_install_names_the_missing_permissions(cli: CliRun, tenant: Tenant) -> None:
    result = cli(*connect_args(tenant, 1), "--client-secret", tenant.app(1)["secret"])
    text = plain(result.stdout)
    assert text.startswith("limited: ")
    assert "OnlineMeetingRecording.Read.All" in text
    assert "OnlineMeetingTranscript.Read.All" in text
    assert tenant.app(1)["secret"] not in result.output


def test_wrong_secret_is_one_line_exit_1_and_nothing_is_saved(
    cli: CliRun, tenant: Tenant, db_url: str
) -> None:
    result = run_script(db_url, *connect_args(tenant), "--client-secret", "not-the-secret")
    line = one_line_error(result, "error (client_secret):", tenant.app(0)["appId"])
    assert "not-the-secret" not in line + result.stdout
    one_line_error(run_script(db_url, "teams", "settings"), "not connected")


def test_missing_required_permission_is_one_line_naming_it(
    cli: CliRun, tenant: Tenant, db_url: str
) -> None:
    tenant.state.data["applications"][1]["permissions"].remove("VirtualEvent.Read.All")
    args = [*connect_args(tenant, 1), "--client-secret", tenant.app(1)["secret"]]
    one_line_error(run_script(db_url, *args), "error (permissions):", "VirtualEvent.Read.All")


# ------------------------------------------------------------------ settings (T3)


def test_settings_change_and_a_bad_domain_changes_nothing(run: CliRun, database_url: str) -> None:
    changed = as_json(
        run(
            "teams",
            "settings",
            "--no-sync",
            "--organizer-exclusion",
            "@Agency.example",
            "--organizer-exclusion",
            "other.example",
            "--clear-contact-exclusions",
            "--interval",
            "30",
            "--default-owner",
            "admin",
            "--json",
        )
    )
    assert changed["sync_enabled"] is False
    assert changed["organizer_exclusion_domains"] == ["agency.example", "other.example"]
    assert changed["contact_exclusion_domains"] == []
    assert changed["sync_interval_minutes"] == 30
    assert changed["default_owner"] == "admin"

    bad = ("--contact-exclusion", "ok.example", "--contact-exclusion", "not a domain")
    result = run_script(database_url, "teams", "settings", *bad, "--interval", "60", "--sync")
    one_line_error(result, "contact_exclusion_domains[1]", "'not a domain'")
    assert as_json(run("teams", "settings", "--json")) == changed

    result = run_script(database_url, "teams", "settings", "--notifications")
    one_line_error(result, "public_base_url", "public base URL")
    on = as_json(
        run(
            "teams",
            "settings",
            "--notifications",
            "--public-url",
            "https://gatherly.example",
            "--json",
        )
    )
    assert (on["notifications_enabled"], on["public_base_url"]) == (
        True,
        "https://gatherly.example",
    )
    assert "no subscriptions" in plain(run("teams", "subscriptions").stdout)
    assert as_json(run("teams", "subscriptions", "--json")) == []


# ------------------------------------------------------------------ organizers (T2, T4)


def test_organizers_print_the_policy_commands_with_the_client_id_and_object_id(
    run: CliRun, tenant: Tenant
) -> None:
    run("teams", "sync")
    client_id = tenant.app(0)["appId"]
    rows = {o["display_name"]: o for o in as_json(run("teams", "organizers", "--json"))}
    # Only who organizes: Kenji's webinars are hidden from the app, and so is he by default.
    assert set(rows) == {"Marta Lindqvist", "Tomas Berg", "Priya Natarajan"}
    assert rows["Marta Lindqvist"]["status"] == "ok"
    assert rows["Priya Natarajan"]["status"] == "excluded"
    summary = plain(run("teams", "organizers").stdout)
    assert "6 other directory users have no access policy" in summary
    rows = {o["display_name"]: o for o in as_json(run("teams", "organizers", "--all", "--json"))}
    assert rows["Kenji Sato"]["status"] == "policy_not_granted"
    found = as_json(run("teams", "organizers", "--search", "kenji", "--json"))
    assert [o["display_name"] for o in found] == ["Kenji Sato"]

    lines = [
        line.strip() for line in plain(run("teams", "organizers", "--all").stdout).splitlines()
    ]
    assert (
        f'New-CsApplicationAccessPolicy -Identity Gatherly-Webinar-Sync -AppIds "{client_id}" -Description "Gatherly webinar sync"'
        in lines
    )
    assert (
        f'Grant-CsApplicationAccessPolicy -PolicyName Gatherly-Webinar-Sync -Identity "{KENJI_ID}"'
        in lines
    )
    assert (
        "Get-CsOnlineUser | Grant-CsApplicationAccessPolicy -PolicyName Gatherly-Webinar-Sync"
        in lines
    )
    assert "Grant-CsApplicationAccessPolicy -PolicyName Gatherly-Webinar-Sync -Global" in lines
    one = plain(run("teams", "organizer", "kenji.sato@contoso.example").stdout)
    assert f'-Identity "{KENJI_ID}"' in one


def test_organizer_settings_change_per_user(run: CliRun) -> None:
    run("teams", "sync")
    marta = "Marta.Lindqvist@contoso.example"
    shown = as_json(run("teams", "organizer", marta, "--sync-new", "--recordings", "--json"))
    assert (shown["sync_new_by_default"], shown["sync_recordings"]) == (True, True)
    shown = as_json(run("teams", "organizer", str(shown["id"]), "--no-recordings", "--json"))
    assert (shown["sync_new_by_default"], shown["sync_recordings"]) == (True, False)


# ------------------------------------------------------------------ webinars (T4, T5)


def test_webinars_tick_and_untick(run: CliRun) -> None:
    found = plain(run("teams", "sync").stdout)
    rows = as_json(run("teams", "webinars", "--json"))
    assert rows
    assert not any(r["sync_enabled"] for r in rows)
    # A sync that finds webinars but syncs none says why, and what to do.
    webinars = sum(1 for r in rows if r["kind"] == "webinar")
    townhalls = len(rows) - webinars
    assert townhalls  # the sample tenant's town halls are listed where its webinars are
    assert (
        f"note: Found {webinars} webinars and {townhalls} town halls, but none is ticked for sync"
        in found
    )
    assert "gatherly teams tick WEBINAR_ID" in found
    assert {r["kind"] for r in rows} == {"webinar", "townhall"}
    table = plain(run("teams", "webinars").stdout)
    assert "town hall" in table  # the type column
    tomas = as_json(run("teams", "webinars", "--organizer", "tomas.berg@contoso.example", "--json"))
    assert {r["organizer"] for r in tomas} == {"Tomas Berg"}

    first, second = rows[0], rows[1]
    assert "ticked" in run("teams", "tick", str(first["id"]), second["graph_id"]).stdout
    ticked = {r["id"] for r in as_json(run("teams", "webinars", "--json")) if r["sync_enabled"]}
    assert ticked == {first["id"], second["id"]}
    run("teams", "tick", str(first["id"]), "--off")
    ticked = {r["id"] for r in as_json(run("teams", "webinars", "--json")) if r["sync_enabled"]}
    assert ticked == {second["id"]}
    report = as_json(run("teams", "sync", "--json"))
    assert report["fetched"]["webinars_ticked"] == 1
    assert report["notes"] == []


# ------------------------------------------------------------------ sync (T12)


def tick_all(run: CliRun) -> None:
    run("teams", "sync")
    run("teams", "tick", *[str(r["id"]) for r in as_json(run("teams", "webinars", "--json"))])


def test_sync_reports_changes_then_a_second_sync_reports_none(run: CliRun) -> None:
    tick_all(run)
    first = as_json(run("teams", "sync", "--json"))
    assert first["status"] == "succeeded"
    assert first["changes"]["events_created"] > 0
    assert first["changes"]["contacts_created"] > 0
    assert first["errors"] == []
    second = as_json(run("teams", "sync", "--all", "--json"))  # --all: the same full sync
    assert second["status"] == "succeeded"
    assert not any(second["changes"].values()), second["changes"]
    assert "changes: no changes" in plain(run("teams", "sync").stdout)
    linked = [r["event_id"] for r in as_json(run("teams", "webinars", "--json"))]
    assert all(linked)


def test_sync_one_webinar(run: CliRun) -> None:
    run("teams", "sync")
    webinar = next(
        r for r in as_json(run("teams", "webinars", "--json")) if r["name"].startswith("Autumn")
    )
    report = as_json(run("teams", "sync", "--webinar", str(webinar["id"]), "--json"))
    assert report["changes"]["events_created"] == 1
    assert report["fetched"]["webinars"] == 1
    both = run("teams", "sync", "--webinar", str(webinar["id"]), "--all", ok=False)
    assert both.exit_code == 1  # in-process the error surfaces as the exception main() prints
    assert "--webinar ID or --all, not both" in str(both.exception)


def test_dry_run_prints_the_plan_and_writes_nothing(run: CliRun, connected: Connected) -> None:
    connected.sync()
    connected.tick_all()
    report = as_json(run("teams", "sync", "--dry-run", "--json"))
    assert report["dry_run"] is True
    assert report["run_id"] is None
    plans = {p["webinar"]: p for p in report["plan"]}
    autumn = plans["Autumn Product Launch"]
    assert autumn["event"] == "create"
    # Each new person is planned once, under the first webinar (in Graph's order) they are in.
    planned = [c for p in report["plan"] for c in p["contacts_to_create"]]
    assert "lukas.brennan@tailspin.example" in planned
    assert len(planned) == len(set(planned))
    assert autumn["excluded"]["organizer"] == ["marta.lindqvist@contoso.example"]

    text = plain(run("teams", "sync", "--dry-run").stdout)
    assert "Autumn Product Launch: event create" in text
    assert "not counted (organizer): marta.lindqvist@contoso.example" in text
    assert "lukas.brennan@tailspin.example" in text
    with connected.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(MarketingEvent)) == 0
        assert db.scalar(select(func.count()).select_from(Contact)) == 0


def test_partial_sync_prints_errors_per_webinar_and_exits_2(
    run: CliRun, connected: Connected, database_url: str
) -> None:
    connected.sync()
    connected.tick("Autumn Product Launch")
    with connected.session_factory() as db, db.begin():
        db.execute(update(TeamsConnection).values(default_owner_id=None))
    result = run_script(database_url, "teams", "sync")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sync partial" in result.stdout
    assert "webinar Autumn Product Launch: no owner for webinars of Marta Lindqvist" in (
        result.stdout
    )


def test_failed_sync_exits_1_and_never_prints_the_secret(
    run: CliRun, tenant: Tenant, database_url: str
) -> None:
    secret = tenant.app(0)["secret"]
    tenant.state.data["applications"][0]["secret"] = "rotated-in-entra"
    result = run_script(database_url, "teams", "sync")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sync failed" in result.stdout
    assert "Invalid client secret" in result.stdout
    assert "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr
