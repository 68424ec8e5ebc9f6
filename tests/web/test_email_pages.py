"""The email pages (issue 15, first part): writing a message with a live preview, content
settings, the ready check; and that nobody reaches a message or setting their roles do not
allow."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.core import audit
from gatherly.email import audience as audiences
from gatherly.email import service as email_service
from gatherly.email.models import ContentSetting, EmailMessage
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password


@dataclass
class World:
    aiko: int  # a contact of A
    theirs: int  # a message of B
    their_setting: int  # a content setting of B


@pytest.fixture
def world(db: Session) -> World:
    a, b = f.bu(db, "A"), f.bu(db, "B")
    ma = with_password(db, f.user(db, "ma", a, "Marketer"))
    mb = with_password(db, f.user(db, "mb", b, "Marketer"))
    aiko = f.contact(db, ma, first_name="Aiko", last_name="Abe", email="aiko@x.example")
    theirs = email_service.create_message(
        db=db, principal=f.principal(db, mb), message_in=MessageIn(name="B only")
    )
    setting = email_service.create_content_setting(
        db=db,
        principal=f.principal(db, mb),
        setting_in=ContentSettingIn(name="B sender", sender_email="b@b.example"),
    )
    db.commit()
    return World(aiko.id, theirs.id, setting.id)


def test_a_marketer_writes_a_message_and_makes_it_ready_by_clicking(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "ma", next="/email")
    expect(page.get_by_role("heading", level=1)).to_have_text("Email messages")
    page.get_by_role("link", name="New message").click()
    page.get_by_role("textbox", name="Name").fill("Autumn invite")
    page.get_by_label("Subject", exact=True).fill("{{ contact.first_name }}, you are invited")
    page.get_by_label("Preview as").fill("aiko")
    expect(page.locator("#preview-subject")).to_have_text("Aiko, you are invited")
    expect(page.locator("#preview-who")).to_contain_text("As Aiko Abe (aiko@x.example)")
    frame = page.frame_locator("iframe.email-preview")
    expect(frame.locator("body")).to_contain_text("Hello Aiko,")
    page.get_by_role("button", name="Create message").click()
    expect(page.locator("#notice")).to_have_text("Saved.")
    expect(page.locator("#problems")).to_contain_text("no content setting applies")

    page.get_by_role("link", name="Content settings").first.click()
    form = page.locator("form", has=page.get_by_role("button", name="Create content setting"))
    form.get_by_label("Name", exact=True).fill("Team A")
    form.get_by_label("Sender name").fill("A News")
    form.get_by_label("Sender email").fill("news@a.example")
    form.get_by_label("Postal address").fill("1 Main St, Springfield")
    form.get_by_role("button", name="Create content setting").click()
    expect(page.get_by_role("cell", name="A News <news@a.example>")).to_be_visible()
    shot(page, "email-settings", live)

    page.goto("/email/messages")
    page.get_by_role("link", name="Autumn invite").click()
    page.get_by_label("Content setting").select_option(label="Team A — news@a.example")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#problems")).to_contain_text("it sends from news@a.example")
    shot(page, "email-editor", live)
    page.get_by_role("button", name="Make ready").click()
    expect(page.locator("#notice")).to_have_text("Ready to send.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ready")


def _count(db: Session, model: type[EmailMessage] | type[ContentSetting]) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_another_units_message_and_setting_are_not_found_anywhere(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "ma")
    base = f"/email/messages/{world.theirs}"
    for url in (base, f"{base}/delete"):
        assert client.get(url).status_code == 404, url
    for url, data in (
        (base, {"name": "Mine now"}),
        (f"{base}/ready", {}),
        (f"{base}/copy", {}),
        (f"{base}/delete", {}),
        (f"/email/settings/{world.their_setting}", {"name": "Mine", "sender_email": "m@a.example"}),
        (f"/email/settings/{world.their_setting}/default", {"default_for": "organization"}),
    ):
        response = client.post(url, data={"csrf": csrf, **data})
        assert response.status_code == 404, (url, response.status_code)
    before = _count(db, EmailMessage)
    preview = client.post(
        "/email/messages/preview",
        data={"csrf": csrf, "message_id": str(world.theirs), "name": "x"},
    )
    assert "not found" in text_of(preview.text)
    huge = client.post(
        "/email/messages/preview",
        data={"csrf": csrf, "message_id": "9" * 30, "subject": "Hi {{ contact.first_name }}"},
    )
    assert huge.status_code == 200  # not an id any message has: the fields alone
    assert "Hi Alex" in text_of(huge.text)
    assert "B only" not in client.get("/email/messages").text
    assert "B sender" not in client.get("/email/settings").text
    assert _count(db, EmailMessage) == before
    stored = db.get(EmailMessage, world.theirs)
    assert stored is not None
    assert stored.name == "B only"


def test_bad_input_is_said_beside_its_field_and_saves_nothing(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "ma")
    for data, field in (
        ({"name": ""}, "name"),
        ({"name": "x", "html": "<p>{% if %}</p>"}, "html"),
        ({"name": "x", "subject": "{{ contact."}, "subject"),
        ({"name": "x", "content_setting_id": str(world.their_setting)}, "content_setting_id"),
        ({"name": "x", "content_setting_id": "first"}, "content_setting_id"),
    ):
        response = client.post("/email/messages/new", data={"csrf": csrf, **data})
        assert response.status_code == 422, (data, response.status_code)
        assert f'id="{field}-error"' in response.text, (data, text_of(response.text)[:300])
    for data, field in (
        ({"name": "x", "sender_email": "nope"}, "sender_email"),
        (
            {"name": "x", "sender_email": "a@a.example", "subscription_centre_url": "x"},
            "subscription_centre_url",
        ),
    ):
        response = client.post("/email/settings", data={"csrf": csrf, **data})
        assert response.status_code == 422
        assert f'id="new-{field}-error"' in response.text, text_of(response.text)[:300]
    assert _count(db, EmailMessage) == 1
    assert _count(db, ContentSetting) == 1


def test_defaults_follow_the_scoping_switch_and_the_level_of_the_role(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "ma")
    client.post(
        "/email/settings",
        data={"csrf": csrf, "name": "Team A", "sender_email": "a@a.example"},
    )
    mine = db.scalars(select(ContentSetting).where(ContentSetting.name == "Team A")).one()
    url = f"/email/settings/{mine.id}/default"
    page = client.get("/email/settings").text
    assert 'value="business_unit"' not in page  # offered only while scoping is on
    refused = client.post(url, data={"csrf": csrf, "default_for": "business_unit"})
    assert refused.status_code == 422
    assert "only while business unit scoping is on" in text_of(refused.text)
    organisation = client.post(url, data={"csrf": csrf, "default_for": "organization"})
    assert organisation.status_code == 403
    assert "organization-level write" in text_of(organisation.text)
    db.expire_all()
    assert db.get(ContentSetting, mine.id).default_for is None  # type: ignore[union-attr]
    assert re.search(r"Not a default", client.get("/email/settings").text)


def test_the_suppressed_addresses_page_shows_what_the_viewer_may_read_and_lifts_audited(
    client: TestClient, world: World, db: Session
) -> None:
    with_password(db, f.user(db, "root", None, "System Administrator"))
    bounce = audiences.suppress(db=db, email="aiko@x.example", reason="hard_bounce", source="smtp")
    audiences.suppress(db=db, email="aiko@x.example", reason="unsubscribed", source="one_click")
    audiences.suppress(db=db, email="nobody-we-know@y.example", reason="complaint", source="x")
    db.commit()
    client_sign_in(client, "ma")
    shown = text_of(client.get("/email/suppressions").text)
    assert "aiko@x.example" in shown
    assert "Bounced hard" in shown
    assert "nobody-we-know@y.example" not in shown  # no contact ma may read has it
    assert 'name="why"' not in client.get("/email/suppressions").text  # marketers don't lift
    refused = client.post(
        f"/email/suppressions/{bounce.id}/lift",
        data={"csrf": client_sign_in(client, "ma"), "why": "mine"},
    )
    assert refused.status_code == 403
    csrf = client_sign_in(client, "root")
    page = client.get("/email/suppressions").text
    assert page.count('name="why"') == 2  # the bounce and the complaint, not the unsubscribe
    empty = client.post(f"/email/suppressions/{bounce.id}/lift", data={"csrf": csrf, "why": ""})
    assert empty.status_code == 422
    assert f'id="lift-{bounce.id}-error"' in empty.text
    done = client.post(
        f"/email/suppressions/{bounce.id}/lift", data={"csrf": csrf, "why": "mailbox restored"}
    )
    assert done.status_code == 200
    assert "Bounced hard" not in text_of(done.text)
    [entry] = audit.search(db, audit.Filters(action="email_suppression.lift")).items
    assert entry.after["why"] == "mailbox restored"


def test_who_would_get_it_counts_by_reason_by_clicking(
    page: Page, world: World, live: Live, db: Session
) -> None:
    ma = db.scalars(select(User).where(User.username == "ma")).one()
    principal = f.principal(db, ma)
    invitees = segment_service.create_list(db=db, principal=principal, name="Invitees")
    bert = f.contact(db, ma, first_name="Bert", last_name="Bloom", email=None)
    cleo = f.contact(db, ma, first_name="Cleo", last_name="Cruz", email="cleo@x.example")
    segment_service.add_to_list(
        db=db, principal=principal, list_id=invitees.id, contact_ids=[world.aiko, bert.id, cleo.id]
    )
    audiences.suppress(db=db, email="cleo@x.example", reason="unsubscribed", source="one_click")
    db.commit()
    sign_in(page, "ma", next="/email/messages")
    page.get_by_role("link", name="Who would get it").click()
    page.get_by_label("Invitees").check()
    page.get_by_role("button", name="Count").click()
    expect(page.locator("#audience-count")).to_have_text("1 of 3 would receive it; 2 suppressed.")
    expect(page.locator("#audience-reasons li")).to_have_text(
        ["1: has no email address", "1: it unsubscribed from marketing email"]
    )
    rows = page.get_by_role("table", name="Who gets nothing, and why").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Bert Bloom")
    shot(page, "email-audience", live)


def test_the_audience_of_a_list_the_viewer_may_not_read_is_not_found(
    client: TestClient, world: World, db: Session
) -> None:
    mb = db.scalars(select(User).where(User.username == "mb")).one()
    theirs = segment_service.create_list(db=db, principal=f.principal(db, mb), name="B list")
    db.commit()
    client_sign_in(client, "ma")
    response = client.get(f"/email/audience?list_id={theirs.id}")
    assert response.status_code == 404
    assert f"marketing list {theirs.id} not found" in text_of(response.text)
    assert "B list" not in response.text
    # A hand-edited address says what is wrong with it.
    bad = client.get("/email/audience?list_id=abc&segment_id=" + "9" * 30)
    assert bad.status_code == 422
    assert "must be a whole number" in text_of(bad.text)


def test_the_editor_names_a_default_the_viewer_may_not_read_by_what_it_is(
    client: TestClient, world: World, db: Session
) -> None:
    root = f.user(db, "hq", None, "System Administrator")
    secret = email_service.create_content_setting(
        db=db,
        principal=f.principal(db, root),
        setting_in=ContentSettingIn(
            name="Secret HQ setting", sender_email="hq@org.example", postal_address="HQ"
        ),
    )
    email_service.set_default(
        db=db, principal=f.principal(db, root), setting_id=secret.id, default_for="organization"
    )
    db.commit()
    csrf = client_sign_in(client, "ma")
    created = client.post(
        "/email/messages/new", data={"csrf": csrf, "name": "Mine"}, follow_redirects=True
    )
    shown = text_of(created.text)
    assert "The default (now the organisation's default)" in shown
    assert "Secret HQ setting" not in created.text
