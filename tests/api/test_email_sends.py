"""Sending (issue 15): a ready message to a list through a real SMTP server on loopback —
one personalised multipart message per recipient with its own Message-ID and one-click
unsubscribe headers, suppressed and duplicate addresses skipped, hard and soft bounces,
a server that is down, test sends with DKIM, and who may send, read and cancel what."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.schemas import OwnerRef
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.email import audience as audiences
from gatherly.email import delivery, tokens
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailSend, Suppression
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.api.test_email_api import GOOD_HTML, MESSAGES, SETTINGS
from tests.smtp_sink import Sink, free_port, smtp_sink

SENDS = f"{API}/email/sends"


@pytest.fixture
def sink() -> Any:
    with smtp_sink() as server:
        yield server


def _settings(database_url: str, sink: Sink | None, tmp_path: Path, **more: Any) -> Settings:
    return Settings(
        database_url=database_url,
        queue_path=str(tmp_path / "queue.db"),
        smtp_url=sink.url if sink else f"smtp://127.0.0.1:{free_port()}?tls=none",
        smtp_rate_per_second=1000,
        public_url="https://mail.example.org",
        **more,
    )


def _ready_message(client: TestClient, headers: dict[str, str], **fields: Any) -> int:
    setting = client.post(
        SETTINGS,
        json={
            "name": "Sales",
            "sender_name": "Sales Team",
            "sender_email": "news@sales.example",
            "reply_to": "answers@sales.example",
            "postal_address": "Hauptstr. 1, Berlin",
        },
        headers=headers,
    ).json()
    body = {
        "name": "Autumn invite",
        "subject": "Hi {{ contact.first_name }}",
        "html": GOOD_HTML,
        "content_setting_id": setting["id"],
        **fields,
    }
    message = client.post(MESSAGES, json=body, headers=headers).json()
    ready = client.post(f"{MESSAGES}/{message['id']}/ready", headers=headers)
    assert ready.status_code == 200, ready.text
    return int(message["id"])


def _list_of(db: Session, org: Org, owner: str, contact_ids: list[int]) -> int:
    admin = f.principal(db, org.users["admin"])
    mlist = segment_service.create_list(
        db=db,
        principal=admin,
        name=f"List {owner}",
        owner=OwnerRef(type="user", id=org.users[owner].id),
    )
    segment_service.add_to_list(db=db, principal=admin, list_id=mlist.id, contact_ids=contact_ids)
    db.commit()
    return mlist.id


def _people(db: Session, org: Org, *addresses: str) -> list[int]:
    """Contacts owned by the Sales marketer with these addresses (first names from them)."""
    owner = org.users["marketer"]
    ids = [
        f.contact(db, owner, email=a, first_name=a.split("@")[0].capitalize()).id for a in addresses
    ]
    db.commit()
    return ids


def _deliveries(db: Session, send_id: int) -> list[tuple[str | None, str, str | None, int]]:
    """(address, state, reason, attempts) of each delivery, in contact order."""
    db.expire_all()
    rows = db.scalars(
        select(EmailDelivery)
        .where(EmailDelivery.send_id == send_id)
        .order_by(EmailDelivery.contact_id)
    )
    return [(d.email, d.state, d.reason, d.attempts) for d in rows]


def test_a_send_delivers_one_personalised_message_per_address_and_skips_the_suppressed(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    sink: Sink,
    database_url: str,
    tmp_path: Path,
) -> None:
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    ids = _people(db, org, "ada@example.com", "bob@example.com", "ada@example.com")
    # The marketer's list also holds a contact they may not read (the EU marketer's).
    list_id = _list_of(db, org, "marketer", [*ids, org.contacts["marketer"], org.contacts["eu"]])
    audiences.suppress(db=db, email="marketer@example.com", reason="unsubscribed", source="test")
    db.commit()

    created = client.post(
        SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
    )
    assert created.status_code == 201, created.text
    send = created.json()
    assert (send["state"], send["list_ids"], send["recipients"]) == ("scheduled", [list_id], None)
    assert send["scheduled_at"].endswith("Z")
    # The message is in use now: it cannot change any more.
    assert_error(
        client.patch(f"{MESSAGES}/{message_id}", json={"subject": "x"}, headers=headers),
        409,
        "state",
    )

    settings = _settings(database_url, sink, tmp_path)
    report = delivery.run_send(session_factory, settings, send_id=send["id"])
    assert (report.status, report.sent, report.failed) == ("done", 2, 0)
    assert _deliveries(db, send["id"]) == [
        ("marketer@example.com", "suppressed", "unsubscribed", 0),
        ("ada@example.com", "sent", None, 1),
        ("bob@example.com", "sent", None, 1),
        ("ada@example.com", "suppressed", "duplicate", 0),  # a second contact, same address
    ]
    states = client.get(f"{SENDS}/{send['id']}", headers=headers).json()
    assert states["send"]["state"] == "done"
    assert states["send"]["recipients"] == 4  # the EU contact is not the marketer's to read
    assert states["states"] == {"sent": 2, "suppressed": 2}
    assert states["reasons"] == {"unsubscribed": 1, "duplicate": 1}

    assert sorted(c.rcpt_tos[0] for c in sink.caught) == ["ada@example.com", "bob@example.com"]
    stored = {
        d.email: d for d in db.scalars(select(EmailDelivery).where(EmailDelivery.state == "sent"))
    }
    seen_ids = set()
    for caught in sink.caught:
        mail = caught.message
        to = caught.rcpt_tos[0]
        assert caught.mail_from == "news@sales.example"
        assert mail["To"] == to
        assert mail["From"] == "Sales Team <news@sales.example>"
        assert mail["Reply-To"] == "answers@sales.example"
        assert mail["Subject"] == f"Hi {to.split('@')[0].capitalize()}"
        assert mail["Message-ID"] == stored[to].message_id_header
        seen_ids.add(mail["Message-ID"])
        assert mail.get_content_type() == "multipart/alternative"
        text, html = (part.get_content() for part in mail.iter_parts())
        assert f"Hello {to.split('@')[0].capitalize()}," in text
        assert "color: #123456" in html
        assert "<style>" not in html
        # One-click unsubscribe (RFC 8058): a mailto and an https link signed for this
        # delivery, the same link the body carries.
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # One plain line, as mail clients read it (not folded into encoded words).
        assert re.search(rb"\r\nList-Unsubscribe: <mailto:[^\r\n]+>\r\n", caught.data)
        mailto, https = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        assert mailto.startswith("mailto:news@sales.example?subject=unsubscribe%20")
        token = https.removeprefix("https://mail.example.org/email/u/")
        assert tokens.read(settings, tokens.UNSUBSCRIBE, token) == stored[to].id
        assert tokens.read(settings, tokens.OPEN, token) is None  # one purpose per token
        assert f'href="{https}"' in html
    assert len(seen_ids) == 2
    delivered = db.scalars(
        select(EmailInteraction.kind).where(EmailInteraction.send_id == send["id"])
    )
    assert sorted(delivered) == ["delivered", "delivered"]

    # Run again (a second worker, a restart): nobody gets it twice.
    again = delivery.run_send(session_factory, settings, send_id=send["id"])
    assert again.status == "done"
    assert again.sent == 0
    assert sink.count() == 2


def test_a_550_is_a_hard_bounce_a_451_is_retried_and_then_a_soft_bounce(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    sink: Sink,
    database_url: str,
    tmp_path: Path,
) -> None:
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    ids = _people(db, org, "gone@example.com", "later@example.com", "never@example.com")
    list_id = _list_of(db, org, "marketer", ids)
    sink.answers = {
        "gone@example.com": ["550 5.1.1 <gone@example.com>: no such user"],
        "later@example.com": ["451 4.7.1 greylisted", "451 4.7.1 greylisted", "250 OK"],
        "never@example.com": ["452 4.2.2 mailbox full"],
    }
    send = client.post(
        SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
    )
    settings = _settings(
        database_url, sink, tmp_path, email_retry_seconds=0.05, email_max_attempts=3
    )
    report = delivery.run_send(session_factory, settings, send_id=send.json()["id"])
    assert (report.status, report.sent, report.failed) == ("done", 1, 2)
    assert _deliveries(db, send.json()["id"]) == [
        ("gone@example.com", "failed", "hard_bounce", 1),
        ("later@example.com", "sent", None, 3),
        ("never@example.com", "failed", "soft_bounce", 3),
    ]
    assert [c.rcpt_tos for c in sink.caught] == [["later@example.com"]]
    # The hard bounce suppresses the address for every later send; the soft one does not.
    suppressed = db.scalars(select(Suppression).where(Suppression.lifted_at.is_(None))).all()
    assert [(s.email, s.reason, s.source) for s in suppressed] == [
        ("gone@example.com", "hard_bounce", "smtp")
    ]
    assert "550 5.1.1" in suppressed[0].detail
    bounces = db.execute(
        select(EmailInteraction.contact_id, EmailInteraction.detail).where(
            EmailInteraction.kind == "bounced"
        )
    ).all()
    assert sorted((c, d["type"]) for c, d in bounces) == [(ids[0], "hard"), (ids[2], "soft")]


def test_a_server_that_cannot_be_reached_pauses_the_send_without_using_up_attempts(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    list_id = _list_of(db, org, "marketer", _people(db, org, "ada@example.com"))
    send_id = client.post(
        SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
    ).json()["id"]
    down = _settings(database_url, None, tmp_path)
    report = delivery.run_send(session_factory, down, send_id=send_id)
    assert report.status == "waiting"
    assert report.wake_at is not None
    assert _deliveries(db, send_id) == [("ada@example.com", "queued", None, 0)]
    row = db.get(EmailSend, send_id)
    assert row is not None
    assert row.state == "sending"
    assert "cannot use 127.0.0.1" in row.error
    assert delivery.due(session_factory) == []  # not before its wake-up time
    assert delivery.due(session_factory, now=report.wake_at + timedelta(seconds=1)) == [send_id]
    with smtp_sink() as sink:
        report = delivery.run_send(
            session_factory, _settings(database_url, sink, tmp_path), send_id=send_id
        )
        assert (report.status, report.sent) == ("done", 1)
    assert _deliveries(db, send_id) == [("ada@example.com", "sent", None, 1)]


def test_who_may_send_read_and_cancel_a_send(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    marketer = org.headers["marketer"]
    message_id = _ready_message(client, marketer)
    list_id = _list_of(db, org, "marketer", _people(db, org, "ada@example.com", "bob@example.com"))
    draft = client.post(MESSAGES, json={"name": "Draft"}, headers=marketer).json()
    body = {"message_id": message_id, "list_ids": [list_id]}

    assert_error(
        client.post(SENDS, json={**body, "message_id": draft["id"]}, headers=marketer),
        422,
        "message_id",
    )
    assert_error(
        client.post(SENDS, json={"message_id": message_id}, headers=marketer), 422, "segment_id"
    )
    past = (utcnow() - timedelta(hours=1)).isoformat()
    assert_error(
        client.post(SENDS, json={**body, "scheduled_at": past}, headers=marketer),
        422,
        "scheduled_at",
    )
    naive = assert_error(
        client.post(SENDS, json={**body, "scheduled_at": "2030-01-01T10:00:00"}, headers=marketer),
        422,
        "scheduled_at",
    )
    assert "timezone" in naive["message"]
    # The EU marketer may read neither the message nor the list.
    eu = org.headers["eu_marketer"]
    assert_error(client.post(SENDS, json=body, headers=eu), 404, "message_id")
    assert_error(client.post(SENDS, json=body, headers=org.headers["nobody"]), 403)
    assert client.get(SENDS, headers=marketer).json()["items"] == []

    later = (utcnow() + timedelta(days=1)).isoformat()
    send = client.post(SENDS, json={**body, "scheduled_at": later}, headers=marketer).json()
    assert send["state"] == "scheduled"
    url = f"{SENDS}/{send['id']}"
    for outsider in ("eu_marketer", "support_assistant", "nobody"):
        h = org.headers[outsider]
        assert_error(client.get(url, headers=h), 404, "id")
        assert_error(client.post(f"{url}/cancel", headers=h), 404, "id")
        assert client.get(SENDS, headers=h).json()["items"] == []
    # A manager above the marketer's BU reads it; the scheduled run finds nothing due yet.
    assert client.get(url, headers=org.headers["manager"]).json()["send"]["id"] == send["id"]
    assert delivery.due(session_factory) == []
    settings = _settings(database_url, None, tmp_path)
    assert delivery.run_send(session_factory, settings, send_id=send["id"]).status == "waiting"

    cancelled = client.post(f"{url}/cancel", headers=marketer)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert_error(client.post(f"{url}/cancel", headers=marketer), 409, "state")
    assert delivery.run_send(session_factory, settings, send_id=send["id"]).status == "cancelled"
    listed = client.get(SENDS, params={"message_id": message_id}, headers=marketer).json()
    assert [s["id"] for s in listed["items"]] == [send["id"]]


def test_a_test_send_goes_to_one_address_now_dkim_signed(
    client: TestClient, db: Session, org: Org, sink: Sink, database_url: str, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = client.app
    before = app.state.settings  # type: ignore[attr-defined]
    app.state.settings = _settings(  # type: ignore[attr-defined]
        database_url, sink, tmp_path, dkim_key_file=tmp_path / "dkim.pem", dkim_selector="s1"
    )
    try:
        headers = org.headers["marketer"]
        message_id = _ready_message(client, headers)
        url = f"{MESSAGES}/{message_id}/test"
        sent = client.post(
            url,
            json={"to": "Me@Example.com", "contact_id": org.contacts["marketer"]},
            headers=headers,
        )
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"to": "me@example.com", "status": "sent", "detail": "250 accepted"}
        assert_error(client.post(url, json={"to": "not an address"}, headers=headers), 422, "to")
        assert_error(
            client.post(
                url, json={"to": "a@example.com", "contact_id": org.contacts["eu"]}, headers=headers
            ),
            404,
            "contact_id",
        )
        assert_error(
            client.post(url, json={"to": "a@example.com"}, headers=org.headers["eu_marketer"]),
            404,
            "id",
        )
        # A Marketing Assistant reads only their own messages.
        assert_error(
            client.post(url, json={"to": "a@example.com"}, headers=org.headers["assistant"]),
            404,
            "id",
        )
    finally:
        app.state.settings = before  # type: ignore[attr-defined]
    [caught] = sink.caught
    mail = caught.message
    assert mail["Subject"] == "[Test] Hi Marketer"
    assert caught.rcpt_tos == ["me@example.com"]
    assert "/email/preview/unsubscribe" in mail["List-Unsubscribe"]
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signature = mail["DKIM-Signature"]
    assert "d=sales.example" in signature
    assert "s=s1" in signature
    assert dkim.verify(caught.data, dnsfunc=lambda name, timeout=5: record)
    tampered = caught.data.replace(b"Hi Marketer", b"Hi Mallory")
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)
