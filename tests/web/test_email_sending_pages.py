"""Sending from the web (issue 15): the send dialog with the audience count, the send's
progress refreshing itself while the worker sends, the insights page with its chart and
who opened (anonymous where the viewer may not read the contact), a test copy, and that
nobody reaches another unit's sends or insights."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.schemas import OwnerRef
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.email import delivery, sends
from gatherly.email import service as email_service
from gatherly.email.models import EmailDelivery
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.jobs.queue import Jobs
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.api.test_email_tracking import BROWSER, _links
from tests.smtp_sink import Sink, smtp_sink
from tests.web.conftest import (
    Live,
    client_sign_in,
    no_horizontal_scroll,
    shot,
    sign_in,
    text_of,
    with_password,
)

HTML = (
    '<p>Hello {{ contact.first_name }}</p><p><a href="https://example.com/agenda">Agenda</a></p>'
    '<p>{{ postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
PUBLIC = "https://mail.example.org"


@dataclass
class World:
    message: int
    list_id: int
    contacts: list[int]
    their_contact: int


@pytest.fixture
def world(db: Session) -> World:
    """A ready message of unit A, and a list of three of A's contacts and one of B's
    (whom A's marketer may not read)."""
    a, b = f.bu(db, "A"), f.bu(db, "B")
    ma = with_password(db, f.user(db, "ma", a, "Marketer"))
    with_password(db, f.user(db, "mb", b, "Marketer"))
    admin = with_password(db, f.user(db, "boss", None, "System Administrator"))
    mb = _user(db, "mb")
    people = [
        f.contact(db, ma, first_name=n, last_name="A", email=f"{n.lower()}@a.example").id
        for n in ("Ada", "Bob", "Cat")
    ]
    theirs = f.contact(db, mb, first_name="Zoe", last_name="B", email="zoe@b.example").id
    principal = f.principal(db, ma)
    setting = email_service.create_content_setting(
        db=db,
        principal=principal,
        setting_in=ContentSettingIn(
            name="A news", sender_email="news@a.example", postal_address="1 Main St"
        ),
    )
    message = email_service.create_message(
        db=db,
        principal=principal,
        message_in=MessageIn(
            name="Winter invite", subject="Hi {{ contact.first_name }}", html=HTML,
            content_setting_id=setting.id,
        ),
    )  # fmt: skip
    email_service.make_ready(db=db, principal=principal, message_id=message.id, public_url=PUBLIC)
    boss = f.principal(db, admin)
    mlist = segment_service.create_list(db=db, principal=principal, name="Three of A")
    segment_service.add_to_list(
        db=db, principal=boss, list_id=mlist.id, contact_ids=[*people, theirs]
    )
    db.commit()
    return World(message.id, mlist.id, people, theirs)


def _deliver(factory: sessionmaker[Session], live: Live, sink: Sink, send_id: int) -> None:
    settings = live.settings.model_copy(
        update={"smtp_url": SecretStr(sink.url), "public_url": PUBLIC, "smtp_rate_per_second": 1000}
    )
    assert delivery.run_send(factory, settings, send_id=send_id).status == "done"
    with factory() as db:
        for row in db.scalars(select(EmailDelivery)):
            row.sent_at = utcnow() - timedelta(hours=1)
        db.commit()


def test_a_marketer_sends_to_a_list_watches_it_go_and_reads_the_insights(
    page: Page, world: World, live: Live, session_factory: sessionmaker[Session]
) -> None:
    sign_in(page, "ma", next=f"/email/messages/{world.message}")
    page.get_by_role("link", name="Send…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send “Winter invite”")
    page.get_by_label("Three of A").check()
    page.get_by_role("button", name="Count who gets it").click()
    # Zoe is in the list but not the marketer's to read: she is not counted.
    expect(page.locator("#audience-count")).to_contain_text("3 of 3 will receive it")
    page.get_by_role("button", name="Send to 3").click()
    expect(page.locator("#send-state")).to_have_text(re.compile("Scheduled|Sending"))
    send_id = int(page.url.rsplit("/", 1)[1])
    with smtp_sink() as sink:
        _deliver(session_factory, live, sink, send_id)
    # The page refreshes itself while the send runs: now it is done.
    expect(page.locator("#send-state")).to_have_text("Done")
    expect(page.locator("#send-counts")).to_contain_text("3 sent of 3")
    expect(page.get_by_role("button", name="Cancel the send")).to_have_count(0)

    mail = {c.rcpt_tos[0]: _links(c) for c in sink.caught}
    with httpx.Client(base_url=live.url, headers={"User-Agent": BROWSER}) as recipient:
        for address in ("ada@a.example", "bob@a.example"):
            assert recipient.get(mail[address]["pixel"]).status_code == 200
        assert recipient.get(mail["ada@a.example"]["clicks"][0]).status_code == 302

    page.get_by_role("link", name="Insights").click()
    expect(page.locator("#opened")).to_contain_text("2 people (66.7 %)")
    expect(page.locator("#clicked")).to_contain_text("1 person (33.3 %), 1 click")
    expect(page.locator("#insights-chart rect")).to_have_count(2)
    expect(page.locator("#links")).to_contain_text("https://example.com/agenda")
    rows = page.locator("#people tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Ada A")
    shot(page, "email-insights", live)
    page.get_by_role("link", name="Clicked", exact=True).click()
    expect(page.locator("#people tbody tr")).to_have_count(1)
    expect(page.locator("#people")).to_contain_text("https://example.com/agenda")
    page.set_viewport_size({"width": 390, "height": 844})
    no_horizontal_scroll(page)


def test_send_and_insight_pages_keep_to_what_the_viewer_may_read(
    client: TestClient,
    db: Session,
    world: World,
    session_factory: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
) -> None:
    # The administrator sends to all four (Zoe of B included), owned by A's marketer.
    boss = f.principal(db, _user(db, "boss"))
    queue = Jobs(Settings(database_url=database_url, queue_path=str(tmp_path / "q.db")))
    send = sends.create_send(
        db=db, principal=boss, message_id=world.message, list_ids=[world.list_id], queue=queue
    )
    settings = Settings(
        database_url=database_url, smtp_url=SecretStr("smtp://127.0.0.1:1?tls=none"),
        public_url=PUBLIC, queue_path=str(tmp_path / "q.db"),
    )  # fmt: skip
    with smtp_sink() as sink:
        settings = settings.model_copy(update={"smtp_url": SecretStr(sink.url)})
        assert delivery.run_send(session_factory, settings, send_id=send.id).sent == 4
    for row in db.scalars(select(EmailDelivery)):
        row.sent_at = utcnow() - timedelta(hours=1)
    db.commit()
    for c in sink.caught:
        client.get(_links(c)["pixel"], headers={"User-Agent": BROWSER})

    client_sign_in(client, "ma")
    insights = client.get(f"/email/insights?message_id={world.message}")
    assert insights.status_code == 200
    said = text_of(insights.text)
    assert "4 people (100.0 %)" in said
    assert said.count("Anonymous contact") == 1  # Zoe, of B
    assert "Zoe" not in said
    assert "zoe@b.example" not in said
    csv = client.get(f"/email/insights/people.csv?message_id={world.message}&kind=opened")
    assert csv.status_code == 200
    assert "zoe" not in csv.text.lower()
    assert csv.text.count("Anonymous contact") == 1
    # The send is the administrator's (root unit): the marketer does not see it.
    assert client.get(f"/email/sends/{send.id}").status_code == 404
    assert client.get(f"/email/insights?send_id={send.id}").status_code == 404

    csrf = client_sign_in(client, "mb")
    for url in (
        f"/email/insights?message_id={world.message}",
        f"/email/insights/people.csv?message_id={world.message}",
        f"/email/messages/{world.message}/send",
        f"/email/sends/{send.id}",
    ):
        assert client.get(url).status_code == 404, url
    refused = client.post(
        f"/email/messages/{world.message}/send", data={"csrf": csrf, "list_id": str(world.list_id)}
    )
    assert refused.status_code == 404
    assert client.post(f"/email/sends/{send.id}/cancel", data={"csrf": csrf}).status_code == 404


def _user(db: Session, name: str) -> User:
    found = db.scalar(select(User).where(User.username == name))
    assert found is not None
    return found


def test_the_dialog_says_what_is_wrong_a_test_copy_goes_out_and_a_send_is_cancelled(
    client: TestClient, world: World, sink: Sink
) -> None:
    csrf = client_sign_in(client, "ma")
    url = f"/email/messages/{world.message}/send"
    empty = client.post(url, data={"csrf": csrf})
    assert empty.status_code == 422
    assert "choose at least one segment or list" in text_of(empty.text)
    past = client.post(
        url, data={"csrf": csrf, "list_id": str(world.list_id), "scheduled_at": "2020-01-01T10:00"}
    )
    assert past.status_code == 422
    assert "is in the past" in text_of(past.text)
    bad = client.post(
        url, data={"csrf": csrf, "list_id": str(world.list_id), "scheduled_at": "soon"}
    )
    assert "is not a date and time" in text_of(bad.text)
    later = client.post(
        url,
        data={"csrf": csrf, "list_id": str(world.list_id), "scheduled_at": "2031-01-01T09:00"},
        follow_redirects=False,
    )
    assert later.status_code == 303
    shown = text_of(client.get(later.headers["location"]).text)
    assert "Scheduled for" in shown
    send_id = later.headers["location"].rsplit("/", 1)[1]
    cancelled = client.post(f"/email/sends/{send_id}/cancel", data={"csrf": csrf})
    assert "Cancelled" in text_of(cancelled.text)
    assert "Winter invite" in text_of(client.get("/email/sends").text)

    tested = client.post(
        f"/email/messages/{world.message}/test", data={"csrf": csrf, "to": "me@a.example"}
    )
    assert "Sent to me@a.example." in text_of(tested.text)
    assert sink.caught[-1].message["Subject"].startswith("[Test] Hi ")
    refused = client.post(
        f"/email/messages/{world.message}/test", data={"csrf": csrf, "to": "nope"}
    )
    assert refused.status_code == 422
    assert "must have an @-sign" in text_of(refused.text)


@pytest.fixture
def sink(client: TestClient) -> object:
    """A real SMTP server the test client's app sends its test copies to."""
    with smtp_sink() as server:
        before = client.app.state.settings  # type: ignore[attr-defined]
        client.app.state.settings = before.model_copy(update={"smtp_url": SecretStr(server.url)})  # type: ignore[attr-defined]
        try:
            yield server
        finally:
            client.app.state.settings = before  # type: ignore[attr-defined]


def test_a_sends_readers_see_its_insights_even_when_its_message_is_not_theirs(
    client: TestClient, db: Session, world: World, tmp_path: Path, database_url: str
) -> None:
    boss = f.principal(db, _user(db, "boss"))
    mine = email_service.get_message(db=db, principal=boss, message_id=world.message)
    theirs = email_service.copy_message(db=db, principal=boss, message_id=mine.id)  # the boss's
    email_service.make_ready(db=db, principal=boss, message_id=theirs.id, public_url=PUBLIC)
    queue = Jobs(Settings(database_url=database_url, queue_path=str(tmp_path / "q.db")))
    send = sends.create_send(
        db=db,
        principal=boss,
        message_id=theirs.id,
        list_ids=[world.list_id],
        owner=OwnerRef(type="user", id=_user(db, "ma").id),
        queue=queue,
    )
    client_sign_in(client, "ma")
    shown = client.get(f"/email/insights?send_id={send.id}")
    assert shown.status_code == 200
    assert "a message you may not read" in text_of(shown.text)
    assert client.get(f"/email/insights?message_id={theirs.id}").status_code == 404
