"""What recipients do with a sent email, reached through the signed links in it: opens
(a pixel), clicks (a redirect to a link the message held), unsubscribes (a page, and the
one-click POST of RFC 8058), and the subscription centre (SPEC M).

These are public: a recipient has no account. The signed token in each link names the
delivery and is the only authority; a token that does not verify reaches nothing. Each
interaction is recorded against the delivery and owned by the message that sent it.
"""

from __future__ import annotations

import html as htmlmod
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.core import changes
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound
from gatherly.email import audience as audience_service
from gatherly.email import tokens
from gatherly.email.models import (
    CLICKED,
    IN_USE,
    OPENED,
    SENT,
    UNSUBSCRIBED,
    EmailDelivery,
    EmailInteraction,
    EmailMessage,
    EmailSend,
    Suppression,
)

# An open this soon after the message left is a server or client fetching on arrival.
PREFETCH = timedelta(seconds=10)
REPEAT = timedelta(seconds=10)  # the same client opening again this soon: not counted again
# Known fetchers that load images for a mailbox, not for a person reading it.
MACHINE_AGENTS = re.compile(
    r"GoogleImageProxy|YahooMailProxy|Barracuda|Mimecast|Proofpoint|"
    r"Symantec|Forcepoint|Microsoft Office Existence Discovery|bot\b|crawler|spider|"
    # Apple Mail Privacy Protection: a bare WebKit agent without a browser name.
    r"^Mozilla/5\.0 \([^)]*\) AppleWebKit/605\.1\.15 \(KHTML, like Gecko\)$",
    re.IGNORECASE,
)


# ------------------------------------------------------------------ links in a message


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)


def instrument(
    body: str, *, settings: Settings, delivery_id: int, keep: frozenset[str] = frozenset()
) -> str:
    """The HTML body with every http(s) link going through the click redirect (but those
    in ``keep``: the unsubscribe and subscription centre links) and the open pixel at the
    end. ``body`` is sanitised HTML, whose attributes are double-quoted."""
    base = settings.public_url

    def through(match: re.Match[str]) -> str:
        url = htmlmod.unescape(match.group(2))
        if not url.startswith(("http://", "https://")) or url in keep:
            return match.group(0)
        token = tokens.make(settings, tokens.CLICK, [delivery_id, url])
        return f"{match.group(1)}{base}/email/c/{token}{match.group(3)}"

    pixel = tokens.make(settings, tokens.OPEN, delivery_id)
    return (
        _HREF.sub(through, body)
        + f'<img src="{base}/email/o/{pixel}.gif" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )


def _delivery(db: Session, settings: Settings, purpose: str, token: str) -> EmailDelivery | None:
    value = tokens.read(settings, purpose, token)
    delivery_id = value[0] if purpose == tokens.CLICK and isinstance(value, list) else value
    if not isinstance(delivery_id, int):
        return None
    return db.get(EmailDelivery, delivery_id)


def _record(
    db: Session,
    delivery: EmailDelivery,
    kind: str,
    *,
    url: str | None = None,
    machine: bool = False,
    detail: dict[str, Any] | None = None,
) -> EmailInteraction:
    send = db.get(EmailSend, delivery.send_id)
    assert send is not None
    row = EmailInteraction(
        delivery_id=delivery.id,
        send_id=send.id,
        message_id=send.message_id,
        contact_id=delivery.contact_id,
        kind=kind,
        at=utcnow(),
        url=url,
        machine=machine,
        detail=detail,
    )
    db.add(row)
    db.flush()
    if row.contact_id is not None:
        # Lead scores count opens and clicks: rescore this contact.
        changes.record(db, changes.INTERACTION, contact_ids=[row.contact_id])
    return row


def record_open(*, db: Session, settings: Settings, token: str, user_agent: str) -> bool:
    """Record an open from the pixel; False for a token that does not verify. An open is
    a *machine* open when a known proxy or scanner fetched it, or when it came within
    seconds of the message leaving with no click before it (no sign of a person)."""
    delivery = _delivery(db, settings, tokens.OPEN, token)
    if delivery is None or delivery.state != SENT:
        return False
    now = utcnow()
    previous = db.scalars(
        select(EmailInteraction)
        .where(EmailInteraction.delivery_id == delivery.id, EmailInteraction.kind == OPENED)
        .order_by(EmailInteraction.id.desc())
        .limit(1)
    ).first()
    agent = user_agent[:300]
    if previous is not None and now - previous.at < REPEAT and previous.detail == {"agent": agent}:
        return True  # the same client again at once (a reload): one open
    clicked = db.scalar(
        select(EmailInteraction.id).where(
            EmailInteraction.delivery_id == delivery.id, EmailInteraction.kind == CLICKED
        )
    )
    early = delivery.sent_at is not None and now - delivery.sent_at < PREFETCH
    machine = clicked is None and (bool(MACHINE_AGENTS.search(user_agent.strip())) or early)
    _record(db, delivery, OPENED, machine=machine, detail={"agent": agent})
    return True


def record_click(*, db: Session, settings: Settings, token: str, user_agent: str) -> str:
    """Record a click and return where the link leads: only an address the message held
    (it is inside the signed token), never one a request names. NotFound otherwise."""
    value = tokens.read(settings, tokens.CLICK, token)
    delivery = _delivery(db, settings, tokens.CLICK, token)
    if delivery is None or not isinstance(value, list) or len(value) != 2:
        raise NotFound("this link is not valid (it may have been copied incompletely)")
    url = value[1]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise NotFound("this link is not valid")
    machine = bool(MACHINE_AGENTS.search(user_agent.strip()))
    _record(db, delivery, CLICKED, url=url[:2000], machine=machine)
    return url


# ------------------------------------------------------------------ subscriptions


ALL = ""  # the topic that stands for all marketing email


@dataclass(frozen=True)
class Centre:
    """What the subscription centre shows one recipient."""

    email: str
    message_topic: str  # the topic of the message the link came from ("": none)
    receives_all: bool  # not unsubscribed from all marketing email
    topics: dict[str, bool]  # each topic, and whether the address still receives it


def _recipient(db: Session, settings: Settings, token: str) -> EmailDelivery:
    delivery = _delivery(db, settings, tokens.UNSUBSCRIBE, token)
    if delivery is None or not delivery.email:
        raise NotFound("this link is not valid (it may have been copied incompletely)")
    return delivery


def _unsubscribed(db: Session, email: str) -> set[str]:
    return set(
        db.scalars(
            select(Suppression.topic).where(
                Suppression.email == email,
                Suppression.reason == UNSUBSCRIBED,
                Suppression.lifted_at.is_(None),
            )
        )
    )


def _message_topic(db: Session, delivery: EmailDelivery) -> str:
    send = db.get(EmailSend, delivery.send_id)
    message = db.get(EmailMessage, send.message_id) if send else None
    return message.topic if message else ""


def centre(*, db: Session, settings: Settings, token: str) -> Centre:
    """The subscription centre of the address a link was sent to."""
    delivery = _recipient(db, settings, token)
    email = delivery.email or ""
    off = _unsubscribed(db, email)
    known = set(
        db.scalars(
            select(EmailMessage.topic)
            .where(EmailMessage.topic != "", EmailMessage.state == IN_USE)
            .distinct()
        )
    )
    topic = _message_topic(db, delivery)
    topics = sorted(known | (off - {ALL}) | ({topic} - {ALL}), key=str.casefold)
    return Centre(
        email=email,
        message_topic=topic,
        receives_all=ALL not in off,
        topics={t: t not in off for t in topics},
    )


def unsubscribe(
    *, db: Session, settings: Settings, token: str, everything: bool, source: str
) -> Centre:
    """Unsubscribe the address from the topic of the message the link came from (from
    all marketing email when ``everything``, or when the message has no topic)."""
    delivery = _recipient(db, settings, token)
    topic = ALL if everything else _message_topic(db, delivery)
    _change(db, delivery, {topic: False}, source)
    return centre(db=db, settings=settings, token=token)


def update(
    *, db: Session, settings: Settings, token: str, receives_all: bool, topics: set[str]
) -> Centre:
    """Save the subscription centre's form: all marketing email on or off, and which of
    the shown topics the address receives."""
    now = centre(db=db, settings=settings, token=token)
    wanted = {ALL: receives_all, **{t: t in topics for t in now.topics}}
    _change(db, _recipient(db, settings, token), wanted, "subscription_centre")
    return centre(db=db, settings=settings, token=token)


def _change(db: Session, delivery: EmailDelivery, wanted: dict[str, bool], source: str) -> None:
    """Unsubscribe from or subscribe again to each topic; each change is recorded with its
    time and source (suppressions: created, or lifted for a subscription), and an
    unsubscribe is also an interaction of the delivery."""
    email = delivery.email or ""
    off = _unsubscribed(db, email)
    for topic, receive in wanted.items():
        if not receive and topic not in off:
            audience_service.suppress(
                db=db, email=email, reason=UNSUBSCRIBED, source=source, topic=topic
            )
            _record(db, delivery, UNSUBSCRIBED, detail={"topic": topic, "source": source})
        elif receive and topic in off:
            for row in db.scalars(
                select(Suppression).where(
                    Suppression.email == email,
                    Suppression.reason == UNSUBSCRIBED,
                    Suppression.topic == topic,
                    Suppression.lifted_at.is_(None),
                )
            ):
                row.lifted_at = utcnow()
                row.lift_reason = f"subscribed again ({source.replace('_', ' ')})"
    db.flush()
