"""Town halls (``/solutions/virtualEvents/townhalls``, graph-notifications-townhalls.md §3):
served like webinars, with the same access policy, and without registrations."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gatherly.graph_emulator import FixtureError, shapes, validate_fixture
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

T = "/solutions/virtualEvents/townhalls"
TOWNHALL_KEYS = {"@odata.type", *shapes.TOWNHALL}
POLICY = "No Application Access Policy found for this app"


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_list_leaves_out_organizers_without_the_policy(
    emulator: Emulator, graph: httpx.Client
) -> None:
    body = graph.get(T, params={"$count": "true"}).json()
    assert body["@odata.context"] == f"{emulator.base_url}/v1.0/$metadata#{T.lstrip('/')}"
    assert body["@odata.count"] == 1
    [townhall] = body["value"]
    assert townhall["id"] == fx.TOWNHALL
    assert set(townhall) == TOWNHALL_KEYS
    assert townhall["@odata.type"] == "#microsoft.graph.virtualEventTownhall"
    assert "sessions" not in townhall
    assert "registrations" not in townhall
    # Town halls are not webinars: neither list holds the other's.
    webinars = graph.get("/solutions/virtualEvents/webinars").json()["value"]
    assert fx.TOWNHALL not in {w["id"] for w in webinars}


def test_get_is_the_bare_entity_with_graphs_odd_zone_name(graph: httpx.Client) -> None:
    response = graph.get(f"{T}/{quote(fx.TOWNHALL)}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOWNHALL_KEYS | {"@odata.context"}
    assert body["@odata.context"].endswith(f"{T.lstrip('/')}/$entity")
    assert body["startDateTime"] == {"dateTime": "2025-10-02T09:00:00", "timeZone": "PacificSt"}
    assert body["audience"] == "everyone"
    assert body["isInviteOnly"] is False
    types = [i["@odata.type"] for i in body["invitedAttendees"]]
    assert types == [
        "#microsoft.graph.communicationsUserIdentity",
        "#microsoft.graph.communicationsGuestIdentity",
    ]
    assert body["coOrganizers"][0]["id"] == fx.TOMAS


def test_get_by_user_id_and_role(graph: httpx.Client) -> None:
    def ids(user: str, role: str) -> list[str]:
        body = graph.get(f"{T}/getByUserIdAndRole(userId='{user}',role='{role}')").json()
        assert body["@odata.context"].endswith(
            "$metadata#Collection(microsoft.graph.virtualEventTownhall)"
        )
        return [t["id"] for t in body["value"]]

    assert ids(fx.MARTA, "organizer") == [fx.TOWNHALL]
    assert ids(fx.TOMAS, "coOrganizer") == [fx.TOWNHALL]
    assert ids(fx.TOMAS, "organizer") == []
    bad = graph.get(f"{T}/getByUserIdAndRole(userId='{fx.MARTA}',role='attendee')")
    assert _error(bad, 400)["code"] == "BadRequest"


@pytest.mark.parametrize(
    "path",
    [
        f"{T}/{fx.HIDDEN_TOWNHALL}",
        f"{T}/{fx.HIDDEN_TOWNHALL}/sessions",
        f"{T}/getByUserIdAndRole(userId='{fx.OLAF}',role='organizer')",
    ],
)
def test_policy_missing_is_403_as_for_webinars(graph: httpx.Client, path: str) -> None:
    error = _error(graph.get(path), 403)
    assert (error["code"], error["message"]) == ("Forbidden", POLICY)


def test_sessions_and_attendance_reports(graph: httpx.Client) -> None:
    base = f"{T}/{fx.TOWNHALL}/sessions"
    [summary] = graph.get(base).json()["value"]
    assert summary["id"] == fx.TOWNHALL_SESSION
    assert summary["allowRecording"] is None  # S1 is a summary, as for webinars
    session = graph.get(f"{base}/{fx.TOWNHALL_SESSION}").json()
    assert session["joinWebUrl"].endswith("?townhall=1")
    reports = graph.get(f"{base}/{fx.TOWNHALL_SESSION}/attendanceReports").json()["value"]
    assert [r["id"] for r in reports] == [fx.TOWNHALL_REPORT]
    assert "attendanceRecords" not in reports[0]
    report = graph.get(
        f"{base}/{fx.TOWNHALL_SESSION}/attendanceReports/{fx.TOWNHALL_REPORT}",
        params={"$expand": "attendanceRecords"},
    ).json()
    records = report["attendanceRecords"]
    assert report["totalParticipantCount"] == len(records) == 2
    assert [r["emailAddress"] for r in records] == ["guest1@fabrikam.example", None]
    assert all(r["registrationId"] is None for r in records)
    assert records[1]["totalAttendanceInSeconds"] == 48 * 60


def test_a_town_hall_has_no_registrations(graph: httpx.Client) -> None:
    for path in (f"{T}/{fx.TOWNHALL}/registrations", f"{T}/{fx.TOWNHALL}/registrations/x"):
        assert _error(graph.get(path), 400)["code"] == "BadRequest"
    assert _error(graph.get(f"{T}/nope@{fx.TENANT}"), 404)["code"] == "NotFound"


def test_the_permission_is_the_webinars_one(emulator: Emulator) -> None:
    with emulator.client(emulator.token(fx.LIMITED_APP, fx.LIMITED_SECRET)) as graph:
        assert graph.get(T).status_code == 200  # VirtualEvent.Read.All
        reports = f"{T}/{fx.TOWNHALL}/sessions/{fx.TOWNHALL_SESSION}/attendanceReports"
        error = _error(graph.get(reports), 403)
        assert "OnlineMeetingArtifact.Read.All" in error["message"]


# ------------------------------------------------------------------ the fixture


def _broken(change: Any) -> str:
    data = fx.build()
    change(data)
    with pytest.raises(FixtureError) as caught:
        validate_fixture(data)
    return caught.value.message


def test_fixture_problems_are_named_by_their_path() -> None:
    assert (
        _broken(lambda d: d["townhalls"][0].pop("createdBy")) == "townhalls[0].createdBy: missing"
    )
    message = _broken(lambda d: d["townhalls"][1].update(status="Live"))
    assert message.startswith("townhalls[1].status: input should be 'draft'")

    def bad_invite(d: dict[str, Any]) -> None:
        d["townhalls"][0]["invitedAttendees"][1]["@odata.type"] = "#microsoft.graph.identity"

    assert _broken(bad_invite).startswith("townhalls[0].invitedAttendees[1].@odata.type: ")
    message = _broken(lambda d: d["townhalls"][0]["startDateTime"].update(dateTime="soon"))
    assert message == "townhalls[0].startDateTime.dateTime: not an ISO 8601 date-time"
    message = _broken(lambda d: d["townhalls"][0]["startDateTime"].update(timeZone=""))
    assert message.startswith("townhalls[0].startDateTime.timeZone: ")


def test_fixture_cross_references() -> None:
    def stranger(d: dict[str, Any]) -> None:
        d["townhalls"][0]["coOrganizers"][0]["id"] = "nobody"

    assert _broken(stranger) == "townhalls[0].coOrganizers[0].id: unknown user"
    message = _broken(lambda d: d["townhalls"][1].update(id=fx.LAUNCH))
    assert message.startswith("townhalls[1].id: duplicate id")  # one id space with webinars
    message = _broken(lambda d: d["townhalls"][0].update(registrations=[]))
    assert message.startswith("townhalls[0].registrations: a town hall has no registrations")

    def registered(d: dict[str, Any]) -> None:
        record = d["townhalls"][0]["sessions"][0]["attendanceReports"][0]["attendanceRecords"][0]
        record["registrationId"] = fx.registration_id(0)

    path = "townhalls[0].sessions[0].attendanceReports[0].attendanceRecords[0].registrationId"
    assert _broken(registered).startswith(f"{path}: must be null")
    # Session times keep the webinar rule: Windows zone names only.
    message = _broken(
        lambda d: d["townhalls"][0]["sessions"][0]["startDateTime"].update(timeZone="PacificSt")
    )
    assert message.startswith("townhalls[0].sessions[0].startDateTime.timeZone: 'PacificSt'")


def test_a_fixture_without_town_halls_is_still_valid() -> None:
    data = fx.build()
    data.pop("townhalls")
    validate_fixture(data)


# ------------------------------------------------------------------ control


def test_add_a_town_hall_and_anonymous_attendance(emulator: Emulator, graph: httpx.Client) -> None:
    new_id = f"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b@{fx.TENANT}"
    town_hall = {
        "id": new_id,
        "status": "draft",
        "displayName": "Pop-up town hall",
        "startDateTime": {"dateTime": "2025-11-01T10:00:00", "timeZone": "UTC"},
        "endDateTime": {"dateTime": "2025-11-01T11:00:00", "timeZone": "UTC"},
        "createdBy": {"user": {"id": fx.TOMAS}},
        "sessions": [
            {
                "id": "pop-up-session",
                "startDateTime": {"dateTime": "2025-11-01T10:00:00", "timeZone": "UTC"},
                "endDateTime": {"dateTime": "2025-11-01T11:00:00", "timeZone": "UTC"},
                "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/pop-up",
            }
        ],
    }
    base = f"{emulator.base_url}/_emulator/townhalls"
    created = httpx.post(base, json=town_hall)
    assert created.status_code == 201, created.text
    assert created.json()["@odata.type"] == "#microsoft.graph.virtualEventTownhall"
    assert httpx.post(base, json=town_hall).status_code == 422  # duplicate id
    published = httpx.post(f"{base}/{quote(new_id)}/status", json={"status": "published"})
    assert published.json()["status"] == "published"
    join = {"reportId": "r1", "joinDateTime": "2025-11-01T10:01:00Z"}
    for email in ("", "", "ana@fabrikam.example"):
        body = {**join, "emailAddress": email, "leaveDateTime": "2025-11-01T10:30:00Z"}
        added = httpx.post(f"{base}/{quote(new_id)}/sessions/pop-up-session/attendance", json=body)
        assert added.status_code == 200, added.text
    refused = httpx.post(
        f"{base}/{quote(new_id)}/sessions/pop-up-session/attendance",
        json={**join, "emailAddress": "x@y.example", "leaveDateTime": join["joinDateTime"],
              "registrationId": "r"},
    )  # fmt: skip
    assert refused.status_code == 422
    # Two anonymous joins are two records: nothing ties them together.
    report = graph.get(
        f"{T}/{new_id}/sessions/pop-up-session/attendanceReports/r1",
        params={"$expand": "attendanceRecords"},
    ).json()
    assert [r["emailAddress"] for r in report["attendanceRecords"]] == [
        "",
        "",
        "ana@fabrikam.example",
    ]
    assert (
        graph.get(f"{T}/getByUserIdAndRole(userId='{fx.TOMAS}',role='organizer')").json()["value"][
            0
        ]["id"]
        == new_id
    )
    state = httpx.get(f"{emulator.base_url}/_emulator/state").json()
    assert new_id in {t["id"] for t in state["townhalls"]}
