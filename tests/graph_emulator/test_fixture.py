"""Fixture validation: a fixture that does not match is refused with the JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatherly.graph_emulator import EmulatorState, FixtureError, load_fixture, validate_fixture
from tests.graph_emulator import fixture as fx


def test_sample_fixture_loads(tmp_path: Path) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(fx.build()))
    data = load_fixture(path)
    assert EmulatorState(data).webinar(fx.LAUNCH) is not None


def _broken(change: Any) -> str:
    data = fx.build()
    change(data)
    with pytest.raises(FixtureError) as caught:
        validate_fixture(data)
    return caught.value.message


def test_missing_session_start() -> None:
    message = _broken(lambda d: d["webinars"][0]["sessions"][1].pop("startDateTime"))
    assert message == "webinars[0].sessions[1].startDateTime: missing"


def test_bad_enum_values() -> None:
    message = _broken(lambda d: d["webinars"][2].update(status="Published"))
    assert message.startswith("webinars[2].status: input should be 'draft'")
    message = _broken(lambda d: d["webinars"][0]["registrations"][4].update(status="cancelled"))
    assert message.startswith("webinars[0].registrations[4].status: ")
    path = "webinars[0].sessions[0].attendanceReports[0].attendanceRecords[1].role"

    def lower_role(d: dict[str, Any]) -> None:
        d["webinars"][0]["sessions"][0]["attendanceReports"][0]["attendanceRecords"][1]["role"] = (
            "organizer"
        )

    assert _broken(lower_role).startswith(f"{path}: ")


def test_top_level_problems() -> None:
    assert _broken(lambda d: d.pop("tenant")) == "tenant: missing"
    assert _broken(lambda d: d.update(extra=1)) == "extra: unknown property"
    assert (
        _broken(lambda d: d["applications"][1].pop("secret")) == "applications[1].secret: missing"
    )
    message = _broken(lambda d: d["users"][0].update(applicationAccessPolicy=5))
    assert message.startswith("users[0].applicationAccessPolicy: ")


def test_transcript_needs_content() -> None:
    message = _broken(lambda d: d["webinars"][0]["sessions"][0]["transcripts"][0].pop("content"))
    assert message == "webinars[0].sessions[0].transcripts[0].content: missing"


def test_cross_references() -> None:
    def stranger(d: dict[str, Any]) -> None:
        d["webinars"][1]["createdBy"]["user"]["id"] = "nobody"

    assert _broken(stranger) == "webinars[1].createdBy.user.id: unknown user"
    message = _broken(lambda d: d["webinars"][2].update(id=fx.LAUNCH))
    assert message.startswith("webinars[2].id: duplicate id")
    message = _broken(lambda d: d["webinars"][2].update(id="8b3e4c12-5d90-4f3c-9e77-2a4f9d0c6b33"))
    assert message == f"webinars[2].id: must end with '@{fx.TENANT}'"

    def unknown_co_organizer(d: dict[str, Any]) -> None:
        d["webinars"][2]["coOrganizers"][0]["id"] = "nobody"

    assert _broken(unknown_co_organizer) == "webinars[2].coOrganizers[0].id: unknown user"

    def dangling_registration(d: dict[str, Any]) -> None:
        report = d["webinars"][0]["sessions"][0]["attendanceReports"][0]
        report["attendanceRecords"][0]["registrationId"] = "not-a-registration"

    path = "webinars[0].sessions[0].attendanceReports[0].attendanceRecords[0].registrationId"
    assert _broken(dangling_registration) == f"{path}: not a registration of this webinar"


def test_the_shipped_sample_tenant_loads() -> None:
    sample = Path(__file__).parents[2] / "examples" / "sample-tenant.json"
    if not sample.exists():
        pytest.skip("examples/sample-tenant.json is not there")
    state = EmulatorState(load_fixture(sample))
    for webinar in state.data["webinars"]:
        for session in webinar.get("sessions", []):
            for recording in session.get("recordings", []):
                assert recording.get("meetingId", session["id"]) == state.meeting_id(
                    webinar, session
                )


def test_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FixtureError, match="is not JSON"):
        load_fixture(bad)
    with pytest.raises(FixtureError, match="cannot read fixture"):
        load_fixture(tmp_path / "missing.json")


def test_bad_date_time() -> None:
    def bad(d: dict[str, Any]) -> None:
        d["webinars"][0]["sessions"][0]["attendanceReports"][0]["meetingEndDateTime"] = "soon"

    message = _broken(bad)
    path = "webinars[0].sessions[0].attendanceReports[0].meetingEndDateTime"
    assert message == f"{path}: not an ISO 8601 date-time"


def test_recording_content_must_be_base64() -> None:
    def bad(d: dict[str, Any]) -> None:
        d["webinars"][0]["sessions"][0]["recordings"][0]["contentBase64"] = "not base64!"

    assert _broken(bad) == "webinars[0].sessions[0].recordings[0].contentBase64: not base64"


def test_enum_errors_list_the_values_as_graph_spells_them() -> None:
    message = _broken(lambda d: d["webinars"][0]["registrations"][4].update(status="cancelled"))
    assert "'pendingApproval'" in message
    assert "'rejectedByOrganizer'" in message


def test_time_zones_must_be_windows_names() -> None:
    message = _broken(lambda d: d["webinars"][0]["startDateTime"].update(timeZone="Europe/Berlin"))
    assert message.startswith(
        "webinars[0].startDateTime.timeZone: 'Europe/Berlin' is not a Windows"
    )
