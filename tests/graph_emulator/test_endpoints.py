"""Every /v1.0 endpoint's JSON shape: key names, enum values, envelopes (reference §2-§4, §7)."""

from __future__ import annotations

import base64

import httpx

from gatherly.graph_emulator import shapes
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

W = "/solutions/virtualEvents/webinars"
S = f"{W}/{fx.LAUNCH}/sessions/{fx.SESSION}"
WEBINAR_KEYS = {"@odata.type", *shapes.WEBINAR}
SESSION_KEYS = {"@odata.type", *shapes.SESSION}


def _meeting_path(graph: httpx.Client, join_url: str = fx.JOIN_URL) -> str:
    found = graph.get(
        f"/users/{fx.MARTA}/onlineMeetings", params={"$filter": f"JoinWebUrl eq '{join_url}'"}
    )
    assert found.status_code == 200, found.text
    meetings = found.json()["value"]
    assert len(meetings) == 1
    return f"/users/{fx.MARTA}/onlineMeetings/{meetings[0]['id']}"


def test_list_webinars_shape(emulator: Emulator, graph: httpx.Client) -> None:
    body = graph.get(W, params={"$count": "true"}).json()
    assert (
        body["@odata.context"]
        == f"{emulator.base_url}/v1.0/$metadata#solutions/virtualEvents/webinars"
    )
    assert body["@odata.count"] == 2
    assert "@odata.nextLink" not in body
    for webinar in body["value"]:
        assert set(webinar) == WEBINAR_KEYS
        assert webinar["@odata.type"] == "#microsoft.graph.virtualEventWebinar"
        assert webinar["status"] in {"draft", "published", "canceled"}
        assert "registrations" not in webinar
        assert "sessions" not in webinar


def test_get_webinar_is_the_bare_entity(graph: httpx.Client) -> None:
    response = graph.get(f"{W}/{fx.LAUNCH}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert "value" not in body
    assert set(body) == WEBINAR_KEYS | {"@odata.context"}
    assert body["startDateTime"] == {
        "dateTime": "2025-09-18T16:00:00",
        "timeZone": "W. Europe Standard Time",
    }
    assert body["createdBy"]["user"]["id"] == fx.MARTA
    assert body["audience"] == "everyone"
    assert body["externalEventInformation"] == []


def test_get_by_user_id_and_role(graph: httpx.Client) -> None:
    for fn in (
        f"getByUserIdAndRole(userId='{fx.MARTA}',role='organizer')",
        f"getByUserIdAndRole(userId='{fx.MARTA}', role='organizer')",
    ):
        body = graph.get(f"{W}/{fn}").json()
        assert body["@odata.context"].endswith(
            "$metadata#Collection(microsoft.graph.virtualEventWebinar)"
        )
        assert sorted(w["id"] for w in body["value"]) == sorted([fx.LAUNCH, fx.DRAFT])
    bad = graph.get(f"{W}/getByUserIdAndRole(userId='{fx.MARTA}',role='attendee')")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BadRequest"


def test_get_by_user_role_needs_a_signed_in_user(graph: httpx.Client) -> None:
    response = graph.get(f"{W}/getByUserRole(role='organizer')")
    assert response.status_code == 403
    assert "getByUserIdAndRole" in response.json()["error"]["message"]


def test_registrations_shape_and_lookups(graph: httpx.Client) -> None:
    page = graph.get(f"{W}/{fx.LAUNCH}/registrations").json()
    assert page["@odata.context"].endswith(
        f"$metadata#solutions/virtualEvents/webinars('{fx.LAUNCH}')/registrations"
    )
    keys = {"@odata.type", *shapes.REGISTRATION}
    for reg in page["value"]:
        assert set(reg) == keys
        assert reg["status"] in {"registered", "canceled"}
    one = graph.get(f"{W}/{fx.LAUNCH}/registrations/{fx.registration_id(1)}").json()
    assert one["status"] == "canceled"
    assert one["cancelationDateTime"] == "2025-09-15T18:03:10Z"
    by_email = graph.get(f"{W}/{fx.LAUNCH}/registrations(email='GUEST2@fabrikam.example')").json()
    assert by_email["id"] == fx.registration_id(2)
    by_user = graph.get(f"{W}/{fx.LAUNCH}/registrations(userId='{fx.TOMAS}')").json()
    assert by_user["id"] == fx.registration_id(5)
    missing = graph.get(f"{W}/{fx.LAUNCH}/registrations(email='nobody@x.example')")
    assert missing.status_code == 404


def test_sessions_list_returns_summaries_and_get_the_full_session(graph: httpx.Client) -> None:
    listed = graph.get(f"{W}/{fx.LAUNCH}/sessions").json()["value"]
    assert [s["id"] for s in listed] == [fx.SESSION, fx.SESSION_2]
    summary = listed[0]
    assert set(summary) == SESSION_KEYS | {"capabilities"}
    assert summary["joinWebUrl"] == fx.JOIN_URL
    assert summary["allowRecording"] is None
    assert summary["allowedPresenters"] is None
    assert summary["capabilities"] == []
    assert summary["anonymizeIdentityForRoles"] == []
    full = graph.get(S).json()
    assert set(full) == SESSION_KEYS | {"@odata.context"}
    assert full["allowRecording"] is True
    assert full["allowedPresenters"] == "roleIsPresenter"
    assert "attendanceReports" not in full
    assert "recordings" not in full


def test_attendance_reports_and_records(graph: httpx.Client) -> None:
    reports = graph.get(f"{S}/attendanceReports").json()
    assert reports["@odata.context"].endswith(
        f"webinars('{fx.LAUNCH}')/sessions('{fx.SESSION}')/attendanceReports"
    )
    [report] = reports["value"]
    assert set(report) == {"@odata.type", *shapes.REPORT}
    assert report["totalParticipantCount"] == 2
    expanded = graph.get(
        f"{S}/attendanceReports/{fx.REPORT}", params={"$expand": "attendanceRecords"}
    ).json()
    assert len(expanded["attendanceRecords"]) == 2
    plain = graph.get(f"{S}/attendanceReports/{fx.REPORT}").json()
    assert "attendanceRecords" not in plain
    records = graph.get(f"{S}/attendanceReports/{fx.REPORT}/attendanceRecords").json()["value"]
    assert {r["role"] for r in records} == {"Attendee", "Organizer"}
    attendee = next(r for r in records if r["role"] == "Attendee")
    assert set(attendee) == {"@odata.type", *shapes.RECORD}
    assert attendee["registrationId"] == fx.registration_id(0)
    assert attendee["registrantId"] is None
    assert attendee["attendanceIntervals"][0]["durationInSeconds"] == 2346
    assert attendee["totalAttendanceInSeconds"] == 2346
    organizer = next(r for r in records if r["role"] == "Organizer")
    assert organizer["registrationId"] is None


def test_online_meeting_lookup_by_join_url(graph: httpx.Client) -> None:
    path = _meeting_path(graph)
    meeting_id = path.rsplit("/", 1)[1]
    assert base64.b64decode(meeting_id).decode().startswith(f"1*{fx.MARTA}*0**19:meeting_")
    empty = graph.get(f"/users/{fx.MARTA}/onlineMeetings", params={"$filter": "JoinWebUrl eq 'x'"})
    assert empty.json()["value"] == []
    no_filter = graph.get(f"/users/{fx.MARTA}/onlineMeetings")
    assert no_filter.status_code == 400


def test_recordings_and_content(graph: httpx.Client) -> None:
    path = _meeting_path(graph)
    body = graph.get(f"{path}/recordings").json()
    [recording] = body["value"]
    assert set(recording) == {"@odata.type", *shapes.ARTIFACT, "recordingContentUrl"}
    assert recording["@odata.type"] == "#microsoft.graph.callRecording"
    assert recording["meetingId"] == path.rsplit("/", 1)[1]
    assert recording["meetingOrganizer"]["user"]["id"] == fx.MARTA
    assert graph.get(f"{path}/recordings/{fx.RECORDING}").json()["id"] == fx.RECORDING
    content = httpx.get(recording["recordingContentUrl"], headers=graph.headers)
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    assert content.content == fx.VIDEO


def test_transcripts_and_vtt_content(graph: httpx.Client) -> None:
    path = _meeting_path(graph)
    [transcript] = graph.get(f"{path}/transcripts").json()["value"]
    assert set(transcript) == {"@odata.type", *shapes.ARTIFACT, "transcriptContentUrl"}
    assert transcript["contentCorrelationId"].endswith("-0")
    content = graph.get(
        f"{path}/transcripts/{fx.TRANSCRIPT}/content", params={"$format": "text/vtt"}
    )
    assert content.headers["content-type"].startswith("text/vtt")
    assert content.text == fx.VTT
    assert httpx.get(transcript["transcriptContentUrl"], headers=graph.headers).text == fx.VTT


def test_unknown_ids_and_segments(graph: httpx.Client) -> None:
    response = graph.get(f"{W}/00000000-0000-0000-0000-000000000000@{fx.TENANT}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NotFound"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert graph.get(f"{S}/attendanceReports/nope").status_code == 404
    bad = graph.get(f"{W}/{fx.LAUNCH}/presentersX")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BadRequest"


def test_client_request_id_is_echoed(graph: httpx.Client) -> None:
    response = graph.get(W, headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"]
