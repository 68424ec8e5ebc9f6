"""What recipients do with a sent email, end to end over the app's public routes (issue
15): the open pixel (human and machine opens told apart), the click redirect (only to a
link the message held), one-click unsubscribe (RFC 8058) from the message's topic, and the
subscription centre, with each consent change recorded."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.db import utcnow
from gatherly.email import audience as audiences
from gatherly.email import delivery, tokens
from gatherly.email.models import EmailDelivery, EmailInteraction, Suppression
from tests import factories as f
from tests.api.conftest import Org
from tests.api.test_email_sends import SENDS, _list_of, _people, _ready_message, _settings
from tests.smtp_sink import Caught, Sink, smtp_sink

BASE = "https://mail.example.org"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _links(caught: Caught) -> dict[str, Any]:
    mail = caught.message
    text, html = (part.get_content() for part in mail.iter_parts())
    hrefs = re.findall(r'href="([^"]+)"', html)
    return {
        "text": text,
        "clicks": [h.removeprefix(BASE) for h in hrefs if h.startswith(f"{BASE}/email/c/")],
        "unsubscribe": next(h.removeprefix(BASE) for h in hrefs if "/email/u/" in h),
        "centre": next((h.removeprefix(BASE) for h in hrefs if "/email/s/" in h), None),
        "pixel": re.search(r'<img src="([^"]+\.gif)"', html).group(1).removeprefix(BASE),  # type: ignore[union-attr]
    }


def _kinds(db: Session, contact_id: int) -> list[tuple[str, bool, str | None]]:
    db.expire_all()
    rows = db.scalars(
        select(EmailInteraction)
        .where(EmailInteraction.contact_id == contact_id)
        .order_by(EmailInteraction.id)
    )
    return [(i.kind, i.machine, i.url) for i in rows]


def test_opens_clicks_and_unsubscribes_are_recorded_through_the_signed_links(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    headers = org.headers["marketer"]
    html = (
        '<p>Hi</p><a href="https://example.com/agenda?x=1&amp;y=2">Agenda</a>'
        '<a href="mailto:desk@example.com">Write to us</a>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        '<a href="{{ subscription_centre_url }}">Preferences</a><p>{{ postal_address }}</p>'
    )
    message_id = _ready_message(client, headers, html=html, topic="Webinars")
    ada, bob = _people(db, org, "ada@example.com", "bob@example.com")
    list_id = _list_of(db, org, "marketer", [ada, bob])
    send_id = client.post(
        SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
    ).json()["id"]
    sink: Sink
    with smtp_sink() as sink:
        settings = _settings(database_url, sink, tmp_path)
        assert delivery.run_send(session_factory, settings, send_id=send_id).status == "done"
    mail = {c.rcpt_tos[0]: _links(c) for c in sink.caught}
    links = mail["ada@example.com"]
    # Only the http(s) link goes through the redirect; the text part keeps it as it is.
    assert len(links["clicks"]) == 1
    assert "https://example.com/agenda?x=1&y=2" in links["text"]
    assert "/email/c/" not in links["text"]

    # Opens: the first, seconds after sending, looks like a fetch on arrival (machine).
    opened = client.get(links["pixel"], headers={"User-Agent": BROWSER})
    assert opened.status_code == 200
    assert opened.headers["content-type"] == "image/gif"
    assert opened.headers["cache-control"] == "no-store"
    for row in db.scalars(select(EmailDelivery)):
        row.sent_at = utcnow() - timedelta(hours=1)
    db.commit()
    client.get(
        links["pixel"], headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}
    )
    # A bogus or wrong-purpose token still gets the image, and counts nothing.
    assert client.get("/email/o/forged.gif").status_code == 200
    assert (
        client.get(links["unsubscribe"].replace("/email/u/", "/email/o/") + ".gif").status_code
        == 200
    )

    # A link checker's HEAD is shown the way, and counts nothing.
    looked = client.head(links["clicks"][0], follow_redirects=False)
    assert looked.status_code == 302
    assert client.head("/email/c/forged", follow_redirects=False).status_code == 404
    assert client.get("/email/o/" + "x" * 5000 + ".gif").headers["content-type"] == "image/gif"
    # A click redirects to the link the message held, and only that.
    clicked = client.get(
        links["clicks"][0], headers={"User-Agent": BROWSER}, follow_redirects=False
    )
    assert clicked.status_code == 302
    assert clicked.headers["location"] == "https://example.com/agenda?x=1&y=2"
    assert clicked.headers["referrer-policy"] == "no-referrer"
    token = links["clicks"][0].removeprefix("/email/c/")
    forged = tokens.make(
        settings.model_copy(update={"secret_key": None, "secret_key_file": tmp_path / "other.key"}),
        tokens.CLICK,
        [1, "https://evil.example"],
    )
    for bad in (
        f"/email/c/{forged}",
        f"/email/c/{token[:-2]}xx",
        links["pixel"].removesuffix(".gif").replace("/o/", "/c/"),
    ):
        refused = client.get(bad, follow_redirects=False)
        assert refused.status_code == 404, bad
        assert "This link is not valid" in refused.text
    # After a click, a person is evidently there: the open that follows is human.
    client.get(links["pixel"], headers={"User-Agent": BROWSER})
    client.get(links["pixel"], headers={"User-Agent": BROWSER})  # a reload: still one open
    assert _kinds(db, ada) == [
        ("delivered", False, None),
        ("opened", True, None),
        ("opened", True, None),
        ("clicked", False, "https://example.com/agenda?x=1&y=2"),
        ("opened", False, None),
    ]

    # One-click unsubscribe (what a mail client POSTs): from the message's topic only.
    page = client.get(links["unsubscribe"])
    assert page.status_code == 200
    assert "ada@example.com" in page.text
    assert "Webinars" in page.text
    assert _kinds(db, ada)[-1][0] == "opened"  # showing the page changes nothing
    done = client.post(links["unsubscribe"], data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "no more email about Webinars" in done.text
    rows = db.scalars(select(Suppression).where(Suppression.email == "ada@example.com")).all()
    assert [(r.reason, r.topic, r.source, r.lifted_at) for r in rows] == [
        ("unsubscribed", "Webinars", "one_click", None)
    ]
    assert _kinds(db, ada)[-1][0] == "unsubscribed"
    # A Webinars message no longer reaches ada; a message of no topic still does.
    marketer = f.principal(db, org.users["marketer"])
    webinars = audiences.audience(
        db=db, principal=marketer, list_ids=[list_id], message_id=message_id
    )
    assert (webinars.receiving, webinars.suppressed) == (1, {"unsubscribed": 1})
    assert audiences.audience(db=db, principal=marketer, list_ids=[list_id]).receiving == 2

    # The subscription centre: subscribe to Webinars again, then leave all marketing email.
    centre = client.get(links["centre"])
    assert re.search(r'value="Webinars"\s*>', centre.text)  # shown, not ticked
    saved = client.post(links["centre"], data={"all": "on", "topic": "Webinars"})
    assert "Saved." in saved.text
    assert re.search(r'value="Webinars" checked', saved.text)
    client.post(links["centre"], data={})
    db.expire_all()
    rows = db.scalars(
        select(Suppression).where(Suppression.email == "ada@example.com").order_by(Suppression.id)
    ).all()
    assert [(r.topic, r.source, r.lifted_at is not None, r.lift_reason) for r in rows] == [
        ("Webinars", "one_click", True, "subscribed again (subscription centre)"),
        ("", "subscription_centre", False, ""),
        ("Webinars", "subscription_centre", False, ""),
    ]
    assert audiences.audience(db=db, principal=marketer, list_ids=[list_id]).receiving == 1
    # Bob's links are his own: nothing of this touched him.
    assert _kinds(db, bob) == [("delivered", False, None)]
    assert client.get("/email/s/not-a-token").status_code == 404
    assert (
        client.post("/email/u/not-a-token", data={"List-Unsubscribe": "One-Click"}).status_code
        == 404
    )
