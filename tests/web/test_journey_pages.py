"""The journey pages (issue 16): build a journey by clicking in the designer (or write it in
YAML), see the check name the step at fault, take it live, watch a real Teams sync move
people through it, follow a contact — and nobody reaches another unit's journey."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Lead
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.email import service as email_service
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.event.models import EventAttendance
from gatherly.journey import engine
from gatherly.journey.models import Journey
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from gatherly.teams.models import TeamsWebinar
from gatherly.teams.sync import run_sync
from tests import factories as f
from tests.journey.conftest import World, build_world
from tests.teams.conftest import Tenant, connect, tenant, tenant_server  # noqa: F401
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password

LAUNCH = "Autumn Product Launch"  # Marta Lindqvist's webinar in the sample tenant
HTML = '<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
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


def _teams_marketer(
    session_factory: sessionmaker[Session], settings: Settings, emulator: Tenant
) -> None:
    """The installation connected to the emulator; ``marketer`` (Marketer, mapped to the
    organizer Marta Lindqvist by email) with a ready message "Invite"; Marta's Autumn
    Product Launch synced (discovery, tick, sync: the real connector over HTTP)."""
    admin_id = connect(session_factory, settings, emulator)
    with session_factory() as db:
        marketer = f.user(db, "marketer", f.bu(db, "Marketing"), "Marketer")
        marketer.email = "marta.lindqvist@contoso.example"
        with_password(db, marketer)
        admin = db.get(User, admin_id)
        assert admin is not None
        boss = f.principal(db, admin)
        setting = email_service.create_content_setting(
            db=db,
            principal=boss,
            setting_in=ContentSettingIn(
                name="Org", sender_email="news@org.example", postal_address="1 Main St"
            ),
        )
        email_service.set_default(
            db=db, principal=boss, setting_id=setting.id, default_for="organization"
        )
        mine = f.principal(db, marketer)
        message = email_service.create_message(
            db=db, principal=mine, message_in=MessageIn(name="Invite", subject="Hi", html=HTML)
        )
        email_service.make_ready(
            db=db, principal=mine, message_id=message.id, public_url="https://x.example"
        )
        db.commit()
    assert run_sync(session_factory, settings).status == "succeeded"  # discovery
    with session_factory() as db, db.begin():
        db.scalars(
            select(TeamsWebinar).where(TeamsWebinar.display_name == LAUNCH)
        ).one().sync_enabled = True
    assert run_sync(session_factory, settings).status == "succeeded"


def test_a_marketer_designs_a_journey_by_clicking_and_a_teams_sync_moves_people_through_it(
    page: Page,
    live: Live,
    tenant: Tenant,  # noqa: F811
    session_factory: sessionmaker[Session],
) -> None:
    settings = Settings(database_url=live.settings.database_url, graph_rate_per_second=500)
    _teams_marketer(session_factory, settings, tenant)
    with session_factory() as db:
        attended = db.scalar(
            select(func.count())
            .select_from(EventAttendance)
            .where(EventAttendance.contact_id.is_not(None))
        )
    assert attended
    sign_in(page, "marketer", next="/journeys")
    page.get_by_role("link", name="New journey").click()
    page.get_by_label("Name").fill("Launch follow-up")
    page.get_by_label("People enter as").select_option(label="attend an event")
    page.get_by_label("Event", exact=True).select_option(label=LAUNCH)
    page.get_by_role("button", name="Create journey").click()
    expect(page.locator("#audience-summary")).to_have_text(
        f"People who attend “{LAUNCH}” (as the Teams sync records it)."
    )
    expect(page.locator("#no-steps")).to_have_text("No steps yet.")

    # Three steps, each added after the one before: send the invite, wait, create a lead.
    page.get_by_label("New step").select_option(label="Send an email")
    page.get_by_role("button", name="Add the first step").click()
    new_step = page.locator("#new-step")
    new_step.get_by_label("Message").select_option(label="Invite")
    new_step.get_by_role("button", name="Add the step").click()
    expect(page.locator("#notice")).to_have_text("Added the step email-1.")
    for after, kind, fill in (
        ("email-1", "Wait", ("How long", "2 days")),
        ("wait-1", "Create a lead", ("Lead topic", "Attended the launch")),
    ):
        step = page.locator(f"#step-{after}")
        step.get_by_label("New step").select_option(label=kind)
        step.get_by_role("button", name="Add step after").click()
        expect(new_step.get_by_role("heading")).to_contain_text(f"after {after}")
        new_step.get_by_label(fill[0]).fill(fill[1])
        new_step.get_by_role("button", name="Add the step").click()
    expect(page.locator("#journey-tree .step-summary")).to_have_text(
        ["Send email “Invite”", "Wait 2 days", "Create a lead: Attended the launch"]
    )
    # A bad edit is said beside its field; nothing changes.
    page.locator("#step-wait-1 summary").click()
    page.locator("#step-wait-1").get_by_label("How long").fill("soon")
    page.locator("#step-wait-1").get_by_role("button", name="Save the step").click()
    expect(page.locator("#step-wait-1 .error")).to_contain_text("“soon” is no duration")
    expect(page.locator("#problems")).to_have_text("Every check passes.")
    shot(page, "journey-designer", live)
    page.get_by_role("button", name="Go live").click()
    expect(page.locator("#journey-state")).to_have_text("Live")
    expect(page.get_by_role("button", name="Add step after")).to_have_count(0)

    now = utcnow()
    engine.tick(session_factory, now=now)
    page.reload()
    expect(page.locator("#members")).to_have_text(f"{attended} active")
    expect(page.locator("#step-wait-1 .badge")).to_have_text(f"{attended} here now")
    # The email step's own insights, from its row of the progress table.
    mail = page.locator("#progress-steps tr", has_text="email-1").locator(".step-email")
    expect(mail).to_contain_text("0 sent, 0 delivered, 0 opened")
    expect(mail.get_by_role("link", name="Insights")).to_have_attribute(
        "href", re.compile(r"^/email/insights\?send_id=\d+$")
    )

    # Someone new attends the launch; the next sync records it and the journey takes them.
    session_id = tenant.webinar(LAUNCH)["sessions"][0]["id"]
    tenant.control(
        f"{tenant.webinar_path(LAUNCH)}/sessions/{session_id}/attendance",
        {
            "reportId": "ffffffff-0000-4000-8000-00000000abcd",
            "emailAddress": "nina.new@example.org",
            "joinDateTime": "2026-11-04T17:05:00Z",
            "leaveDateTime": "2026-11-04T17:35:00Z",
        },
    )
    assert run_sync(session_factory, settings).status == "succeeded"
    engine.tick(session_factory, now=now + timedelta(minutes=1))
    page.reload()
    expect(page.locator("#members")).to_have_text(f"{attended + 1} active")
    page.get_by_label("Name or email").fill("nina.new@example.org")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explained")).to_contain_text("At wait-1 until")
    expect(page.locator("#explained")).to_contain_text("email-1 — queued")
    shot(page, "journey", live)
    engine.tick(session_factory, now=now + timedelta(days=2, minutes=2))
    page.reload()
    expect(page.locator("#members")).to_have_text(f"{attended + 1} done")
    with session_factory() as db:
        leads = db.scalar(select(func.count()).select_from(Lead))
    assert leads == attended + 1


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
    draft = text_of(client.get(url).text)
    assert "business unit scoping is off, so the journey will take its whole audience" in draft
    copied = client.post(f"{url}/copy", data={"csrf": csrf}, follow_redirects=False)
    assert copied.status_code == 303
    assert copied.headers["location"] != url
    assert "Copy of Mine" in text_of(client.get(copied.headers["location"]).text)
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
    assert client.get(f"{url}?add=wait&after=invite").status_code == 404
    for path, data in (
        (url, {"definition": ""}),
        (f"{url}/live", {}),
        (f"{url}/state", {"state": "stopped"}),
        (f"{url}/simulate", {}),
        (f"{url}/copy", {}),
        (f"{url}/steps", {"action": "remove", "name": "invite"}),
        (f"{url}/steps", {"action": "add", "type": "end", "after": "tag"}),
        (f"{url}/audience", {"entry": "audience", "lists": world.list_id}),
    ):
        assert client.post(path, data={"csrf": csrf, **data}).status_code == 404, path
    assert "Mine" not in client.get("/journeys").text


def _definition(db: Session, url: str) -> dict[str, Any]:
    db.expire_all()
    row = db.get(Journey, int(url.rsplit("/", 1)[1]))
    assert row is not None
    return dict(row.definition)


def test_the_designer_adds_edits_and_removes_steps_and_refuses_bad_input_by_name(
    client: TestClient, db: Session, world: World
) -> None:
    _people(db, world)
    me = world.principal(db)
    vips = segment_service.create_segment(db=db, principal=me, name="VIPs", kind="static")
    db.commit()
    csrf = client_sign_in(client, "marketer")
    made = client.post(
        "/journeys/new",
        data={"csrf": csrf, "name": "Clicked", "entry": "audience", "lists": [world.list_id]},
        follow_redirects=False,
    )
    assert made.status_code == 303
    url = made.headers["location"]
    first = text_of(client.get(url).text)
    assert "Members of list “Webinar people”." in first
    assert "No steps yet." in first

    def post(data: dict[str, Any], path: str = "/steps") -> Any:
        return client.post(f"{url}{path}", data={"csrf": csrf, **data}, follow_redirects=False)

    def refused(data: dict[str, Any], said: str, path: str = "/steps", status: int = 422) -> None:
        before = _definition(db, url)
        answer = post(data, path)
        assert answer.status_code == status, (data, text_of(answer.text)[:300])
        assert said in text_of(answer.text), text_of(answer.text)[:600]
        assert _definition(db, url) == before  # nothing changed

    settings = text_of(client.get(f"{url}?add=send_email").text)
    assert "New step: Send an email at the start" in settings
    assert "Invite" in settings
    assert "Reminder" in settings
    email = {"action": "add", "type": "send_email"}
    refused(email, "Message: choose the message")
    refused({**email, "message_id": "x1"}, "the message must be a whole number")
    added = post({**email, "message_id": world.message})
    assert added.headers["location"].endswith("?added=email-1#step-email-1")
    assert "Added the step email-1." in text_of(client.get(added.headers["location"]).text)
    wait = {"action": "add", "type": "wait", "after": "email-1", "wait_kind": "duration"}
    refused({**wait, "duration": "soon"}, "How long: “soon” is no duration")
    refused({**wait, "after": "nowhere", "duration": "2 days"}, "the journey has no step “nowhere”")
    assert post({**wait, "duration": "2 days"}).status_code == 303
    question = {"action": "add", "type": "condition", "after": "wait-1", "test_kind": "opened"}
    refused(question, "choose the email step the question is about")
    assert post({**question, "test_step": "email-1"}).status_code == 303
    lead = {"action": "add", "type": "create_lead", "after": "question-1", "topic": "Follow-up"}
    refused(lead, "choose the branch of “question-1” the step goes on: yes or no")
    assert post({**lead, "branch": "yes"}).status_code == 303
    tag = {"action": "add", "type": "update_field", "after": "question-1", "branch": "no"}
    refused({**tag, "field": "colour", "value": "red"}, "field is one of first_name")
    assert post({**tag, "field": "custom.journey", "value": "reminded"}).status_code == 303
    tree = text_of(client.get(url).text)
    for said in (
        "Send email “Invite”",
        "Wait 2 days",
        "If opened “email-1” — yes / no",
        "Yes Create a lead: Follow-up",
        "No Set custom.journey to reminded",
    ):
        assert said in tree, said
    assert _definition(db, url)["steps"]["question-1"] == {
        "type": "condition",
        "test": {"opened": "email-1", "min_minutes": 0, "op": "equals", "value": ""},
        "yes": "lead-1",
        "no": "update-1",
    }

    # Edit: the settings change, the links stay; a bad value is named.
    assert post({"action": "edit", "name": "wait-1", "duration": "P3D"}).status_code == 303
    assert _definition(db, url)["steps"]["wait-1"] == {
        "type": "wait",
        "duration": "P3D",
        "next": "question-1",
    }
    assert "Wait 3 days" in text_of(client.get(url).text)
    edit = {"action": "edit", "name": "question-1", "test_kind": "attended"}
    refused(edit, "Event: choose the event")
    refused({**edit, "test_event": "1", "min_minutes": "-5"}, "the minutes are a whole number")
    refused({"action": "edit", "name": "ghost"}, "the journey has no step “ghost”")
    refused({"action": "rename"}, "the designer adds, edits or removes a step")

    # Remove: a question about an email keeps the email; a condition goes with its branches.
    refused(
        {"action": "remove", "name": "email-1"},
        "“question-1” asks about the email of “email-1”: change or remove “question-1” first",
    )
    gone = post({"action": "remove", "name": "question-1"})
    assert "removed=question-1%2Clead-1%2Cupdate-1" in gone.headers["location"]
    said = text_of(client.get(gone.headers["location"]).text)
    assert "Removed the step question-1 and the 2 steps on its branches: lead-1, update-1." in said
    assert set(_definition(db, url)["steps"]) == {"email-1", "wait-1"}
    assert "Every check passes." in said

    # Who enters, by form: a trigger needs its event; segment ids are ids.
    refused({"entry": "attended"}, "Event: choose the event", "/audience")
    refused({"entry": "audience", "segments": "abc"}, "must be a whole number", "/audience")
    saved = post({"entry": "audience", "lists": world.list_id}, "/audience")
    assert saved.status_code == 303
    simulated = text_of(post({}, "/simulate").text)
    # The list holds 4 people; the simulation walks the 2 the designer may read.
    assert "2 in the audience; 0 out of scope, 0 excluded." in simulated
    # The YAML below the tree edits the same definition.
    written = _definition(db, url)
    written["steps"]["wait-1"]["duration"] = "P1D"
    yaml_saved = post({"definition": json.dumps(written)}, "")
    assert yaml_saved.headers["location"].endswith("?saved=1")
    assert "Wait 1 day" in text_of(client.get(yaml_saved.headers["location"]).text)

    # Live: the tree is read-only, a forged change is refused; more exclusions are taken.
    assert post({}, "/live").status_code == 303
    live = text_of(client.get(url).text)
    assert "Add step after" not in live
    assert "The steps of a live journey cannot change" in live
    refused(
        {"action": "add", "type": "end", "after": "wait-1"},
        "a live journey changes only its end time, description and exclusions",
        status=409,
    )
    refused({"entry": "audience", "segments": vips.id}, "copy it to change more", "/audience", 409)
    more = post({"only": "exclusions", "exclude_segments": vips.id}, "/audience")
    assert more.status_code == 303
    assert _definition(db, url)["audience"]["exclude_segments"] == [vips.id]
    assert "but not members of segment “VIPs”" in text_of(client.get(url).text)


def test_a_new_journey_says_who_enters_once(client: TestClient, db: Session, world: World) -> None:
    _people(db, world)
    csrf = client_sign_in(client, "marketer")
    twice = client.post(
        "/journeys/new",
        data={
            "csrf": csrf,
            "name": "Twice",
            "entry": "audience",
            "lists": world.list_id,
            "definition": f"audience: {{lists: [{world.list_id}]}}",
        },
    )
    assert twice.status_code == 422
    assert "who enters is chosen both above and in the YAML: keep one" in text_of(twice.text)
    no_event = client.post(
        "/journeys/new", data={"csrf": csrf, "name": "Trigger", "entry": "registered"}
    )
    assert no_event.status_code == 422
    assert "choose the event" in text_of(no_event.text)
