"""Control endpoints make time pass: what they change shows up in /v1.0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

W = "/solutions/virtualEvents/webinars"


def _control(emulator: Emulator, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{emulator.base_url}/_emulator{path}", json=body)


def test_add_and_cancel_registration(emulator: Emulator, graph: httpx.Client) -> None:
    added = _control(
        emulator,
        f"/webinars/{fx.LAUNCH}/registrations",
        {"email": "new@fabrikam.example", "firstName": "New", "lastName": "Person"},
    )
    assert added.status_code == 201
    reg = added.json()
    assert reg["status"] == "registered"
    assert reg["cancelationDateTime"] is None
    fetched = graph.get(f"{W}/{fx.LAUNCH}/registrations/{reg['id']}").json()
    assert fetched["email"] == "new@fabrikam.example"
    canceled = _control(emulator, f"/webinars/{fx.LAUNCH}/registrations/{reg['id']}/cancel", {})
    assert canceled.status_code == 200
    fetched = graph.get(f"{W}/{fx.LAUNCH}/registrations/{reg['id']}").json()
    assert fetched["status"] == "canceled"
    assert fetched["cancelationDateTime"].endswith("Z")
    listed = graph.get(f"{W}/{fx.LAUNCH}/registrations", params={"$top": "100"}).json()["value"]
    assert len(listed) == fx.REGISTRATION_COUNT + 1


def test_bad_registration_is_refused_with_path(emulator: Emulator) -> None:
    response = _control(
        emulator, f"/webinars/{fx.LAUNCH}/registrations", {"status": "maybe", "email": "a@b.c"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("status: ")
    assert _control(emulator, "/webinars/nope/registrations", {"email": "a@b.c"}).status_code == 404


def test_add_attendance_intervals(emulator: Emulator, graph: httpx.Client) -> None:
    s = f"{W}/{fx.LAUNCH}/sessions/{fx.SESSION}/attendanceReports"
    body = {
        "reportId": fx.REPORT,
        "emailAddress": "guest3@fabrikam.example",
        "registrationId": fx.registration_id(3),
        "joinDateTime": "2025-09-18T14:10:00Z",
        "leaveDateTime": "2025-09-18T14:20:00Z",
    }
    assert (
        _control(
            emulator, f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION}/attendance", body
        ).status_code
        == 200
    )
    later = {
        **body,
        "joinDateTime": "2025-09-18T14:30:00Z",
        "leaveDateTime": "2025-09-18T14:35:00Z",
    }
    _control(emulator, f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION}/attendance", later)
    records = graph.get(f"{s}/{fx.REPORT}/attendanceRecords").json()["value"]
    guest = next(r for r in records if r["emailAddress"] == "guest3@fabrikam.example")
    assert [i["durationInSeconds"] for i in guest["attendanceIntervals"]] == [600, 300]
    assert guest["totalAttendanceInSeconds"] == 900
    assert guest["role"] == "Attendee"
    report = graph.get(f"{s}/{fx.REPORT}").json()
    assert report["totalParticipantCount"] == 3
    # a new report id on a session that had none: the report appears
    fresh = {**body, "reportId": "f00dfeed-0000-4000-8000-000000000001"}
    _control(emulator, f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION_2}/attendance", fresh)
    reports = graph.get(f"{W}/{fx.LAUNCH}/sessions/{fx.SESSION_2}/attendanceReports").json()
    assert [r["id"] for r in reports["value"]] == [fresh["reportId"]]


def test_publish_cancel_and_add_webinar(emulator: Emulator, graph: httpx.Client) -> None:
    assert (
        _control(emulator, f"/webinars/{fx.DRAFT}/status", {"status": "published"}).status_code
        == 200
    )
    assert graph.get(f"{W}/{fx.DRAFT}").json()["status"] == "published"
    _control(emulator, f"/webinars/{fx.LAUNCH}/status", {"status": "canceled"})
    assert graph.get(f"{W}/{fx.LAUNCH}").json()["status"] == "canceled"
    assert (
        _control(emulator, f"/webinars/{fx.LAUNCH}/status", {"status": "gone"}).status_code == 422
    )
    new = fx.build()["webinars"][2]
    new["id"] = f"99999999-0000-4000-8000-000000000000@{fx.TENANT}"
    assert _control(emulator, "/webinars", new).status_code == 201
    ids = {w["id"] for w in graph.get(W).json()["value"]}
    assert new["id"] in ids
    assert _control(emulator, "/webinars", new).status_code == 422  # duplicate id
    broken = {k: v for k, v in new.items() if k != "startDateTime"}
    response = _control(emulator, "/webinars", broken)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "startDateTime: missing"


def test_state_and_reset(emulator: Emulator, graph: httpx.Client) -> None:
    _control(emulator, f"/webinars/{fx.LAUNCH}/status", {"status": "canceled"})
    state = httpx.get(f"{emulator.base_url}/_emulator/state").json()
    assert state["tenant"] == fx.TENANT
    launch = next(w for w in state["webinars"] if w["id"] == fx.LAUNCH)
    assert launch["status"] == "canceled"
    assert launch["registrations"][fx.registration_id(1)] == "canceled"
    assert state["tokens"] == 1
    reset = _control(emulator, "/reset", {})
    assert reset.json()["tokens"] == 0
    token = emulator.token()
    with emulator.client(token) as fresh:
        assert fresh.get(f"{W}/{fx.LAUNCH}").json()["status"] == "published"
    assert graph.get(W).status_code == 401  # tokens issued before the reset are gone


def test_report_appears_only_after_the_meeting_ends(
    emulator: Emulator, graph: httpx.Client
) -> None:
    reports = f"{W}/{fx.LAUNCH}/sessions/{fx.SESSION_2}/attendanceReports"
    now = datetime.now(UTC)
    body = {
        "reportId": "f00dfeed-0000-4000-8000-000000000002",
        "emailAddress": "guest4@fabrikam.example",
        "joinDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "leaveDateTime": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (
        _control(
            emulator, f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION_2}/attendance", body
        ).status_code
        == 200
    )
    assert graph.get(reports).json()["value"] == []
    assert graph.get(f"{reports}/{body['reportId']}").status_code == 404
    _control(emulator, "/clock", {"advance_seconds": 2 * 3600})
    with emulator.client() as fresh:  # the old token expired meanwhile
        assert [r["id"] for r in fresh.get(reports).json()["value"]] == [body["reportId"]]


def test_bad_interval_dates_are_refused(emulator: Emulator) -> None:
    body = {
        "reportId": "r",
        "emailAddress": "a@b.c",
        "joinDateTime": "yesterday",
        "leaveDateTime": "now",
    }
    response = _control(emulator, f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION}/attendance", body)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "joinDateTime: not an ISO 8601 date-time"


def test_request_log_since(emulator: Emulator, graph: httpx.Client) -> None:
    graph.get(W)
    graph.get(W)
    log = httpx.get(f"{emulator.base_url}/_emulator/requests", params={"since": 2}).json()
    assert log["total"] == 3
    assert [e["path"] for e in log["value"]] == [f"/v1.0{W}"]
