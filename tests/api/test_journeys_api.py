"""Journeys through the API (issue 16, first part): create, check, take live, pause and
stop; bad definitions named by field; and who may read and change whose journey."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.db import utcnow
from gatherly.journey import engine
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.api.test_email_sends import _list_of, _people, _ready_message

JOURNEYS = f"{API}/journeys"


def test_a_journey_from_draft_to_live_to_stopped_and_who_may_touch_it(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    list_id = _list_of(db, org, "marketer", _people(db, org, "ada@example.com"))
    plan = {
        "audience": {"lists": [list_id]},
        "start": "mail",
        "steps": {
            "mail": {"type": "send_email", "message_id": message_id, "next": "wait"},
            "wait": {"type": "wait", "duration": "P1D", "next": "lead"},
            "lead": {"type": "create_lead", "topic": "Follow-up"},
        },
    }
    bad = {**plan, "steps": {**plan["steps"], "wait": {"type": "wait", "next": "lead"}}}
    refused = assert_error(
        client.post(JOURNEYS, json={"name": "x", "definition": bad}, headers=headers),
        422,
        "definition.steps.wait",
    )
    assert "exactly one of duration, until or interaction" in refused["message"]
    assert_error(
        client.post(JOURNEYS, json={"name": "x", "scope": "organization"}, headers=headers),
        403,
        "scope",
    )
    assert_error(
        client.post(JOURNEYS, json={"name": "x", "time_zone": "Mars/Olympus"}, headers=headers),
        422,
        "time_zone",
    )
    created = client.post(JOURNEYS, json={"name": "Follow-up", "definition": plan}, headers=headers)
    assert created.status_code == 201, created.text
    journey = created.json()
    assert (journey["state"], journey["scope"], journey["live_scope"]) == (
        "draft",
        "business_unit",
        None,
    )
    url = f"{JOURNEYS}/{journey['id']}"
    assert client.get(f"{url}/check", headers=headers).json() == {"ready": True, "problems": []}

    # Another unit's marketer and a user without roles see nothing of it.
    for outsider in ("eu_marketer", "support_assistant", "nobody"):
        h = org.headers[outsider]
        assert_error(client.get(url, headers=h), 404, "id")
        assert_error(client.patch(url, json={"name": "Mine"}, headers=h), 404, "id")
        assert_error(client.post(f"{url}/live", headers=h), 404, "id")
        assert_error(client.put(f"{url}/state", json={"state": "stopped"}, headers=h), 404, "id")
        assert_error(client.delete(url, headers=h), 404, "id")
        assert client.get(JOURNEYS, headers=h).json()["items"] == []
    assert client.get(url, headers=org.headers["manager"]).status_code == 200

    live = client.post(f"{url}/live", headers=headers)
    assert live.status_code == 200, live.text
    assert (live.json()["state"], live.json()["live_scope"]) == (
        "live",
        "organization",
    )  # scoping off
    assert live.json()["live_at"].endswith("Z")
    engine.tick(session_factory, now=utcnow())
    progress = client.get(f"{url}/progress", headers=headers).json()
    assert progress["steps"]["mail"] == {"queued": 1}
    assert progress["at_step"] == {"wait": 1}
    mail = progress["emails"]["mail"]  # the email step's own insights
    assert (mail["recipients"], mail["suppressed"], mail["sent"]) == (1, 0, 0)
    assert set(progress["emails"]) == {"mail"}
    assert_error(client.post(f"{url}/live", headers=headers), 409, "state")
    assert_error(client.patch(url, json={"name": "Renamed"}, headers=headers), 409, "name")
    assert_error(client.delete(url, headers=headers), 409, "state")
    paused = client.put(f"{url}/state", json={"state": "paused"}, headers=headers)
    assert paused.json()["state"] == "paused"
    assert_error(
        client.put(f"{url}/state", json={"state": "sleeping"}, headers=headers), 422, "state"
    )
    stopped = client.put(f"{url}/state", json={"state": "stopped"}, headers=headers)
    assert stopped.json()["state"] == "stopped"
    copy = client.post(f"{url}/copy", headers=headers)
    assert copy.status_code == 201
    assert (copy.json()["name"], copy.json()["state"]) == ("Copy of Follow-up", "draft")
    assert client.delete(url, headers=headers).status_code == 204
    listed = client.get(JOURNEYS, params={"state": "draft"}, headers=headers).json()["items"]
    assert [j["id"] for j in listed] == [copy.json()["id"]]
