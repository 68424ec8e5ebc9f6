"""``gatherly events`` and ``gatherly contacts timeline`` on a tenant synced over real HTTP (T6, T9)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from gatherly.contact.models import Contact
from tests.cli.helpers import CliRun, make_cli, plain, run_script
from tests.teams import conftest as teams_fixtures
from tests.teams.conftest import INTERNAL_DOMAIN, Connected
from tests.teams.oracle import expected_counts

# The Teams suite's fixtures: the emulator on the sample tenant and a database connected to it.
tenant_server = teams_fixtures.tenant_server
tenant = teams_fixtures.tenant
connected = teams_fixtures.connected

ATTENDEE = "lukas.brennan@tailspin.example"  # joined Autumn Product Launch three times


synced = teams_fixtures.synced  # every webinar ticked and synced


@pytest.fixture
def run(synced: Connected, database_url: str) -> CliRun:
    return make_cli(database_url)


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def autumn(synced: Connected) -> dict[str, Any]:
    return synced.tenant.webinar("Autumn Product Launch")


def test_events_list_shows_the_counts_of_each_synced_webinar(
    run: CliRun, synced: Connected
) -> None:
    rows = {r["name"]: r for r in as_json(run("events", "list", "--as", "admin", "--json"))}
    expected = expected_counts(
        autumn(synced), synced.tenant.data["users"], internal_domains={INTERNAL_DOMAIN}
    )
    row = rows["Autumn Product Launch"]
    assert re.fullmatch(r"2026-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["start_at"]), row  # as the API
    assert row["registrant_count"] == len(expected.registrants)
    assert row["attendee_count"] == len(expected.attendees)
    assert row["cancellation_count"] == len(expected.cancellations)
    assert row["organizer_name"] == "Marta Lindqvist"

    text = plain(run("events", "list", "--as", "admin").stdout)
    assert f"{len(rows)} event(s)" in text
    canceled = as_json(run("events", "list", "--as", "admin", "--status", "canceled", "--json"))
    assert [r["name"] for r in canceled] == ["Winter Roadmap Preview (canceled)"]
    found = as_json(run("events", "list", "--as", "admin", "--q", "summit", "--json"))
    assert [r["name"] for r in found] == ["Data Summit (two-day series)"]


def test_events_show_reconciles_the_counts_with_the_people(run: CliRun, synced: Connected) -> None:
    rows = as_json(run("events", "list", "--as", "admin", "--q", "Autumn", "--json"))
    event_id = str(rows[0]["id"])
    expected = expected_counts(
        autumn(synced), synced.tenant.data["users"], internal_domains={INTERNAL_DOMAIN}
    )
    shown = as_json(run("events", "show", event_id, "--as", "admin", "--json"))
    rec = shown["reconciliation"]
    assert set(rec["registrants"]) == expected.registrants
    assert set(rec["attendees"]) == expected.attendees
    assert rec["counts"]["no_shows"] == len(expected.registrants - expected.attendees)
    assert rec["not_counted"]["organizer"] == ["marta.lindqvist@contoso.example"]
    assert len(shown["sessions"]) == 1

    lines = plain(run("events", "show", event_id, "--as", "admin").stdout).splitlines()
    assert "name: Autumn Product Launch" in lines
    assert f"  registrants: {len(expected.registrants)}" in lines
    assert f"  attendees: {len(expected.attendees)}" in lines
    assert f"  cancellations: {len(expected.cancellations)}" in lines
    assert any(
        line.startswith("not counted, organizer (1): marta.lindqvist@contoso.example")
        for line in lines
    )


def test_contacts_timeline_shows_joined_left_and_total_duration(
    run: CliRun, synced: Connected
) -> None:
    record = next(
        r
        for s in autumn(synced)["sessions"]
        for rep in s["attendanceReports"]
        for r in rep["attendanceRecords"]
        if r["emailAddress"] == ATTENDEE
    )
    intervals = record["attendanceIntervals"]
    assert len(intervals) > 1
    joined = datetime.fromisoformat(intervals[0]["joinDateTime"][:19])
    left = datetime.fromisoformat(intervals[-1]["leaveDateTime"][:19])
    total = sum(i["durationInSeconds"] for i in intervals)
    with synced.session_factory() as db:
        contact_id = db.scalars(select(Contact.id).where(Contact.email == ATTENDEE)).one()

    text = plain(run("contacts", "timeline", str(contact_id), "--as", "admin").stdout)
    hms = f"{total // 3600}:{total % 3600 // 60:02}:{total % 60:02}"
    assert "Autumn Product Launch" in text
    assert f"joined {joined:%Y-%m-%d %H:%M:%S}, left {left:%Y-%m-%d %H:%M:%S}, attended {hms}" in (
        text
    )
    entries = as_json(run("contacts", "timeline", str(contact_id), "--as", "admin", "--json"))
    entry = next(e for e in entries if e["event_name"] == "Autumn Product Launch")
    assert entry["registration_status"] == "registered"
    assert entry["total_seconds"] == total
    assert len(entry["intervals"]) == len(intervals)


def test_reads_need_a_user_and_show_only_what_they_may_read(run: CliRun, database_url: str) -> None:
    missing = run("events", "list", ok=False)
    assert missing.exit_code == 2
    assert "--as" in plain(missing.output)
    run("users", "create", "nobody")
    assert as_json(run("events", "list", "--as", "nobody", "--json")) == []
    event_id = str(as_json(run("events", "list", "--as", "admin", "--json"))[0]["id"])
    result = run_script(database_url, "events", "show", event_id, "--as", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error (event_id): marketing event {event_id} not found"
