"""Bounces and complaints that arrive after a message left: delivery-status notifications
(RFC 3464, and the many older formats flufl.bounce reads), feedback reports (RFC 5965,
a recipient's "this is spam"), and events a sending service posts to the webhook.

Each is matched to its delivery — by the Message-ID of the original message when the
report carries it, else by the latest message sent to the address — and recorded once:
a hard bounce or a complaint suppresses the address for every later send.
"""

from __future__ import annotations

import logging
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Literal

from flufl.bounce import all_failures
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.core import crypto, metrics
from gatherly.core.config import Settings
from gatherly.core.db import after_commit
from gatherly.core.exceptions import NotFound, Unauthenticated, ValidationFailed
from gatherly.core.schemas import normalize_email
from gatherly.email import audience as audience_service
from gatherly.email import tracking
from gatherly.email.models import (
    BOUNCED,
    COMPLAINED,
    COMPLAINT,
    HARD_BOUNCE,
    SENT,
    EmailDelivery,
    EmailInteraction,
    EmailSend,
    Suppression,
)

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback for any message one of its detectors cannot take, then
# raises: the error is handled here (the message is not a report we can read).
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Event:
    """One bounce or complaint about one address."""

    kind: Literal["bounce", "complaint"]
    email: str
    bounce_type: Literal["hard", "soft"] = "hard"
    message_id: str | None = None  # the original message's Message-ID, when known
    detail: str = ""


def _headers(part: Message) -> Message:
    """The header block a message/* or text/rfc822-headers part holds."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = part.get_payload(decode=True)
    return message_from_bytes(text if isinstance(text, bytes) else b"")


def _original_id(report: Message) -> str | None:
    """The Message-ID of the message a report is about (its returned headers)."""
    for part in report.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            found = _headers(part).get("Message-ID")
            if found:
                return str(found).strip()
    return None


def _feedback(report: Message) -> Iterator[Event]:
    """A feedback report (RFC 5965): the original recipient complained."""
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            block = _headers(part)
            raw = str(block.get("Original-Rcpt-To", "") or block.get("Removal-Recipient", ""))
            kind = str(block.get("Feedback-Type", "abuse"))
            if raw:
                yield Event(
                    kind="complaint",
                    email=raw.strip().strip("<>").removeprefix("rfc822;").strip(),
                    message_id=_original_id(report),
                    detail=f"feedback report: {kind}",
                )


def parse_report(raw: bytes) -> list[Event]:
    """The bounces and complaints one report message holds (none: not a report)."""
    report = message_from_bytes(raw, policy=policy.compat32)
    complaints = list(_feedback(report))
    if complaints:
        return complaints
    try:
        temporary, permanent = all_failures(report)
    except Exception as exc:  # a detector fails on what it was not written for
        log.info("not a bounce report flufl.bounce can read: %s", exc)
        return []
    original = _original_id(report)
    subject = str(report.get("Subject", "")).strip()
    hard = [
        Event("bounce", a.decode(errors="replace"), "hard", original, subject)
        for a in sorted(permanent)
    ]
    soft = [
        Event("bounce", a.decode(errors="replace"), "soft", original, subject)
        for a in sorted(temporary - permanent)
    ]
    return hard + soft


@dataclass
class Applied:
    """What a batch of events did."""

    recorded: int = 0  # matched to a delivery and recorded
    repeated: int = 0  # recorded already (a webhook retried, a report imported twice)
    unmatched: int = 0  # no message of ours went to the address
    suppressed: set[str] = field(default_factory=set)  # addresses suppressed now
    unreadable: int = 0  # reports that held no bounce or complaint
    unsubscribed: int = 0  # unsubscribe requests sent to the mailto: of List-Unsubscribe


def _delivery(db: Session, event: Event) -> EmailDelivery | None:
    if event.message_id:
        found = db.scalars(
            select(EmailDelivery).where(EmailDelivery.message_id_header == event.message_id)
        ).first()
        # Only when it went to the address the event is about: a report naming another
        # person's message is not that person's bounce or complaint.
        if found is not None and found.email == event.email:
            return found
    return db.scalars(
        select(EmailDelivery)
        .where(EmailDelivery.email == event.email, EmailDelivery.state == SENT)
        .order_by(EmailDelivery.sent_at.desc(), EmailDelivery.id.desc())
        .limit(1)
    ).first()


def apply(*, db: Session, events: Iterable[Event], source: str) -> Applied:
    """Record each event against its delivery (once), and suppress the address for a hard
    bounce or a complaint."""
    done = Applied()
    for event in events:
        try:
            email = normalize_email(event.email)
        except ValueError:
            done.unmatched += 1
            continue
        event = Event(event.kind, email, event.bounce_type, event.message_id, event.detail)
        if event.kind == "complaint":
            reason, kind, detail = COMPLAINT, COMPLAINED, {"source": source}
        else:
            reason = HARD_BOUNCE if event.bounce_type == "hard" else ""
            kind, detail = BOUNCED, {"type": event.bounce_type, "source": source}
        if reason:
            known = db.scalar(
                select(Suppression.id).where(
                    Suppression.email == email,
                    Suppression.reason == reason,
                    Suppression.topic == "",
                    Suppression.lifted_at.is_(None),
                )
            )
            if known is None:
                audience_service.suppress(
                    db=db, email=email, reason=reason, source=source, detail=event.detail[:1000]
                )
                done.suppressed.add(email)
        found = _delivery(db, event)
        if found is None:
            done.unmatched += 1
            continue
        earlier = db.scalars(
            select(EmailInteraction).where(
                EmailInteraction.delivery_id == found.id, EmailInteraction.kind == kind
            )
        ).all()
        if any((e.detail or {}).get("type") == detail.get("type") for e in earlier):
            done.repeated += 1
            continue
        send = db.get(EmailSend, found.send_id)
        assert send is not None
        db.add(
            EmailInteraction(
                delivery_id=found.id,
                send_id=send.id,
                message_id=send.message_id,
                contact_id=found.contact_id,
                kind=kind,
                detail={**detail, "answer": event.detail[:1000]},
            )
        )
        db.flush()
        done.recorded += 1
        counted = metrics.EMAIL_BOUNCES.labels(
            "complaint" if event.kind == "complaint" else event.bounce_type, source
        )
        after_commit(db, counted.inc)  # a report rolled back is sent again, then counted
    return done


def read_reports(path: Path) -> Iterator[bytes]:
    """The messages of a file: an mbox (starts with ``From ``) or one message (.eml)."""
    try:
        with path.open("rb") as f:
            start = f.read(5)
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}", field="file") from None
    if start == b"From ":
        box = mailbox.mbox(path, create=False)
        try:
            for message in box:
                yield message.as_bytes()
        finally:
            box.close()
    else:
        yield path.read_bytes()


UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)


def _mailto_unsubscribe(db: Session, settings: Settings, raw: bytes) -> bool | None:
    """An unsubscribe request sent to the ``mailto:`` of List-Unsubscribe (subject
    ``unsubscribe <token>``): True when honoured, False for a token that is not ours,
    None when the message is no such request."""
    subject = str(BytesHeaderParser(policy=policy.default).parsebytes(raw).get("Subject", ""))
    found = UNSUBSCRIBE_SUBJECT.match(" ".join(subject.split()))
    if found is None:
        return None
    try:
        tracking.unsubscribe(
            db=db, settings=settings, token=found.group(1), everything=False, source="mailto"
        )
    except NotFound:
        return False
    return True


def import_reports(
    *, db: Session, settings: Settings, reports: Iterable[bytes], source: str
) -> Applied:
    """Apply every bounce and complaint the report messages hold, and every unsubscribe
    request sent to the ``mailto:`` of a message's List-Unsubscribe."""
    done = Applied()
    for raw in reports:
        request = _mailto_unsubscribe(db, settings, raw)
        if request is not None:
            done.unsubscribed += int(request)
            done.unreadable += int(not request)
            continue
        events = parse_report(raw)
        if not events:
            done.unreadable += 1
            continue
        step = apply(db=db, events=events, source=source)
        done.recorded += step.recorded
        done.repeated += step.repeated
        done.unmatched += step.unmatched
        done.suppressed |= step.suppressed
    return done


MAX_REPORT = 2_000_000  # bytes: a bounce report returns at most the original's headers


def check_webhook(settings: Settings, authorization: str | None) -> None:
    """The webhook's own credential (``email_webhook_token``), not a user's API token.

    Raises:
        Unauthenticated: no webhook token is configured, or the one presented is wrong.
    """
    expected = settings.email_webhook_token
    if expected is None:
        raise Unauthenticated("the webhook is closed: set GATHERLY_EMAIL_WEBHOOK_TOKEN to open it")
    if not crypto.bearer_matches(authorization, expected.get_secret_value()):
        raise Unauthenticated("send the webhook token as 'Authorization: Bearer <token>'")


def receive_report(
    *, db: Session, settings: Settings, raw: bytes, source: str = "webhook"
) -> Applied:
    """One report message posted raw (an MTA piping its bounces)."""
    if not raw.strip():
        raise ValidationFailed("post a bounce or feedback report (message/rfc822)", field="body")
    if len(raw) > MAX_REPORT:
        raise ValidationFailed(f"a report is at most {MAX_REPORT:,} bytes", field="body")
    return import_reports(db=db, settings=settings, reports=[raw], source=source)
