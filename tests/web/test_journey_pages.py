"""The journey pages (issue 16, first part): write a journey in YAML, see the check name
the step at fault, simulate it, take it live, follow a contact through it — and nobody
reaches another unit's journey."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.db import utcnow
from gatherly.journey import engine
from tests.journey.conftest import World, build_world
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password

PLAN = """audience:
  lists: [{list_id}]
start: invite
steps:
  invite: {{type: send_email, message_id: {message_id}, next: pause}}
  pause: {{type: wait, duration: P2D, next: tag}}
  tag: {{type: update_field, field: custom.journey, value: done{extra}}}
"""


@pytest.fixture
def world(db: Session, session_factory: sessionmaker[Session]) -> World:
    return build_world(db, session_factory)


def _people(db: Session, world: World) -> None:
    for user in (world.marketer, world.helper):
        with_password(db, user)
    db.commit()


def test_a_marketer_writes_simulates_and_takes_a_journey_live_by_clicking(
    page: Page, world: World, live: Live, db: Session, session_factory: sessionmaker[Session]
) -> None:
    _people(db, world)
    sign_in(page, "marketer", next="/journeys")
    page.get_by_role("link", name="New journey").click()
    page.get_by_label("Name").fill("Webinar follow-up")
    definition = PLAN.format(
        list_id=world.list_id, message_id=world.message, extra=", next: nowhere"
    )
    page.get_by_label("Definition").fill(definition)
    page.get_by_role("button", name="Create journey").click()
    expect(page.locator("#problems")).to_contain_text(
        "steps.tag: leads to “nowhere”, which is no step"
    )
    expect(page.get_by_role("button", name="Go live")).to_have_count(0)
    page.locator("#definition").fill(
        PLAN.format(list_id=world.list_id, message_id=world.message, extra="")
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Saved.")
    expect(page.locator("#problems")).to_have_text("Every check passes.")
    page.get_by_role("button", name="Simulate on today's audience").click()
    expect(page.locator("#sim-summary")).to_contain_text("4 in the audience; 0 out of scope")
    page.get_by_role("button", name="Go live").click()
    expect(page.locator("#journey-state")).to_have_text("Live")
    engine.tick(session_factory, now=utcnow())
    page.reload()
    expect(page.locator("#members")).to_have_text("4 active")
    page.get_by_label("Name or email").fill("ada")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explained")).to_contain_text("At pause until")
    expect(page.locator("#explained")).to_contain_text("invite — queued")
    shot(page, "journey", live)
    engine.tick(session_factory, now=utcnow() + timedelta(days=2, minutes=1))
    page.reload()
    expect(page.locator("#members")).to_have_text("4 done")
    page.get_by_role("button", name="Stop for good").click()
    expect(page.locator("#journey-state")).to_have_text("Stopped")


def test_journey_pages_keep_to_what_the_viewer_may_read_and_say_what_is_wrong(
    client: TestClient, db: Session, world: World, session_factory: sessionmaker[Session]
) -> None:
    _people(db, world)
    csrf = client_sign_in(client, "marketer")
    bad = client.post(
        "/journeys/new", data={"csrf": csrf, "name": "x", "definition": "steps: [open"}
    )
    assert bad.status_code == 422
    assert "is neither JSON nor YAML" in text_of(bad.text)
    shape = client.post(
        "/journeys/new",
        data={"csrf": csrf, "name": "x", "definition": "steps: {a: {type: fly}}"},
    )
    assert "definition.steps.a: type is one of send_email" in text_of(shape.text)
    refused = client.post(
        "/journeys/new", data={"csrf": csrf, "name": "x", "scope": "organization", "definition": ""}
    )
    assert refused.status_code == 403
    made = client.post(
        "/journeys/new",
        data={
            "csrf": csrf,
            "name": "Mine",
            "definition": PLAN.format(list_id=world.list_id, message_id=world.message, extra=""),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    url = made.headers["location"]
    assert "Mine" in text_of(client.get("/journeys").text)
    nobody = text_of(client.get(f"{url}?q=nobody-at-all").text)
    assert "no contact you may read matches" in nobody
    assert (
        client.post(f"{url}/live", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    )
    engine.tick(session_factory, now=utcnow())
    # Who is where: Sales' two by name, Support's two anonymous (scoping off: all four).
    active = text_of(client.get(f"{url}?status=active").text)
    assert "Ada" in active
    assert "Bob" in active
    assert active.count("Anonymous contact") == 2
    assert "Cyd" not in active
    queued = text_of(client.get(f"{url}?step=invite&outcome=queued").text)
    assert queued.count("Anonymous contact") == 2
    assert "name a step, or a status" in text_of(client.get(f"{url}?status=sleeping").text)

    csrf = client_sign_in(client, "helper")  # a marketer of another unit
    assert client.get(url).status_code == 404
    for path, data in (
        (url, {"definition": ""}),
        (f"{url}/live", {}),
        (f"{url}/state", {"state": "stopped"}),
        (f"{url}/simulate", {}),
    ):
        assert client.post(path, data={"csrf": csrf, **data}).status_code == 404, path
    assert "Mine" not in client.get("/journeys").text
