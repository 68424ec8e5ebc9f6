"""Sending on the worker: a send's audience taken into one delivery per contact, then each
delivery composed (MIME, headers, personalisation) and handed to the SMTP server.

Exactly one message per (send, contact): the database holds a delivery row per recipient
(unique), and a delivery is marked *sending* — committed — before its SMTP transaction
starts, and its answer is committed together with the next one's *sending* mark (one
commit per message). A worker killed at any point leaves at most one delivery *sending*;
the worker that resumes the send marks it *failed (interrupted)* rather than risk sending
it twice: that one message in flight at the kill is the only one whose fate is unknown.

A send is held by one worker through a lease it renews as it goes; when a worker dies,
the lease runs out and the schedule (``due``) hands the send to another.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any
from urllib.parse import quote

from sqlalchemy import and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from gatherly.contact.models import Contact
from gatherly.core import metrics
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.email import audience as audience_service
from gatherly.email import service, smtp, tokens, tracking
from gatherly.email.models import (
    BOUNCED,
    CANCELLED,
    DELIVERED,
    DONE,
    DUPLICATE,
    FAILED,
    HARD_BOUNCE,
    INTERRUPTED,
    NOT_RENDERED,
    QUEUED,
    REJECTED,
    SCHEDULED,
    SENDING,
    SENT,
    SOFT_BOUNCE,
    SUPPRESSED,
    ContentSetting,
    EmailDelivery,
    EmailInteraction,
    EmailMessage,
    EmailSend,
    Suppression,
)
from gatherly.event.models import MarketingEvent
from gatherly.journey.models import LIVE, PAUSED, Journey
from gatherly.org.directory import load_principal

log = logging.getLogger(__name__)
# Lines up to RFC 5322's limit: a long List-Unsubscribe stays one plain line (folded, the
# policy would turn it into encoded words that mail clients do not read as URLs).
HEADERS = compat32.clone(linesep="\r\n", max_line_length=998)
BATCH = 200  # deliveries read at a time: memory stays flat however large the send
SLEEP_LIMIT = 10.0  # seconds: a retry due sooner is waited for; a later one is scheduled


# ------------------------------------------------------------------ composing


@dataclass(frozen=True)
class Prepared:
    """What every delivery of one message shares."""

    message: EmailMessage
    setting: ContentSetting
    event: MarketingEvent | None
    settings: Settings

    @property
    def domain(self) -> str:
        return self.setting.sender_email.rpartition("@")[2]


def prepare(db: Session, settings: Settings, message: EmailMessage) -> Prepared:
    """The content setting and event of a message, once per send; ValidationFailed when
    no content setting applies."""
    setting = service.content_setting_for(db=db, message=message)
    if setting is None:
        raise ValidationFailed("no content setting applies to the message", field="message_id")
    event = db.get(MarketingEvent, message.event_id) if message.event_id is not None else None
    return Prepared(message=message, setting=setting, event=event, settings=settings)


def compose(
    prepared: Prepared,
    *,
    contact: dict[str, Any],
    to: str,
    message_id: str,
    delivery_id: int | None,
    subject_prefix: str = "",
) -> Message:
    """The MIME message one recipient gets: text and HTML alternatives, its own
    Message-ID, and one-click unsubscribe headers (RFC 8058) with a link signed for the
    delivery (``delivery_id`` None: a test, whose links lead to the preview pages)."""
    base = prepared.settings.public_url
    setting = prepared.setting
    if delivery_id is None:
        token = "preview"  # noqa: S105 - a word in a mailto subject, not a secret
        unsubscribe = f"{base}/email/preview/unsubscribe"
        centre = f"{base}/email/preview/subscriptions"
    else:
        token = tokens.make(prepared.settings, tokens.UNSUBSCRIBE, delivery_id)
        unsubscribe, centre = f"{base}/email/u/{token}", f"{base}/email/s/{token}"
    values = service.context(
        message=prepared.message,
        setting=setting,
        contact=contact,
        event=prepared.event,
        unsubscribe_url=unsubscribe,
        subscription_centre_url=centre,
    )
    track = None
    if delivery_id is not None:
        keep = frozenset({unsubscribe, values["subscription_centre_url"]})

        def track(body: str) -> str:
            return tracking.instrument(
                body, settings=prepared.settings, delivery_id=delivery_id, keep=keep
            )

    rendered = service.render_for(prepared.message, values, track)
    # The classic MIME classes: the same message as EmailMessage's, built in a fraction
    # of the time (no header is parsed back into objects), which a large send feels.
    mime = MIMEMultipart("alternative", policy=HEADERS)
    mime["From"] = formataddr((setting.sender_name, setting.sender_email), charset="utf-8")
    mime["To"] = to
    if setting.reply_to:
        mime["Reply-To"] = setting.reply_to
    mime["Subject"] = _header(subject_prefix + rendered.subject)
    mime["Date"] = format_datetime(utcnow())
    mime["Message-ID"] = message_id
    mailto = f"mailto:{setting.sender_email}?subject={quote(f'unsubscribe {token}')}"
    mime["List-Unsubscribe"] = f"<{mailto}>, <{unsubscribe}>"
    mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.attach(MIMEText(rendered.text, "plain", "utf-8", policy=HEADERS))
    mime.attach(MIMEText(rendered.html, "html", "utf-8", policy=HEADERS))
    return mime


def _header(value: str) -> Any:
    """A header value as it goes on the wire: encoded words only when it is not ASCII."""
    return value if value.isascii() else Header(value, "utf-8")


# ------------------------------------------------------------------ the schedule


def _free(now: datetime) -> Any:
    return or_(EmailSend.lease_until.is_(None), EmailSend.lease_until < now)


def due(factory: sessionmaker[Session], *, now: datetime | None = None) -> list[int]:
    """Sends a worker should take now: scheduled ones whose time has come, and sending
    ones nobody holds (their worker died, or their deferred messages are due again)."""
    now = now or utcnow()
    with factory() as db:
        return list(
            db.scalars(
                select(EmailSend.id)
                .where(
                    _free(now),
                    or_(
                        and_(EmailSend.state == SCHEDULED, EmailSend.scheduled_at <= now),
                        and_(
                            EmailSend.state == SENDING,
                            or_(EmailSend.wake_at.is_(None), EmailSend.wake_at <= now),
                        ),
                    ),
                )
                .order_by(EmailSend.id)
            )
        )


def unfinished(factory: sessionmaker[Session]) -> list[int]:
    """Every send that is scheduled or sending (a worker starting takes them up)."""
    with factory() as db:
        return list(
            db.scalars(
                select(EmailSend.id)
                .where(EmailSend.state.in_((SCHEDULED, SENDING)))
                .order_by(EmailSend.id)
            )
        )


@dataclass
class RunReport:
    """What one worker run of a send did."""

    send_id: int
    status: str  # done, waiting (retries later), busy (held by another), cancelled, failed
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    wake_at: datetime | None = None
    detail: str = ""


def _claim(db: Session, settings: Settings, send_id: int) -> EmailSend | None:
    now = utcnow()
    held = db.execute(
        update(EmailSend)
        .where(
            EmailSend.id == send_id,
            _free(now),
            or_(
                and_(EmailSend.state == SCHEDULED, EmailSend.scheduled_at <= now),
                EmailSend.state == SENDING,
            ),
        )
        .values(lease_until=now + timedelta(seconds=settings.email_lease_seconds))
    )
    db.commit()
    return db.get(EmailSend, send_id) if held.rowcount == 1 else None  # type: ignore[attr-defined]


def _not_now(db: Session, send_id: int) -> RunReport:
    """Why a send cannot be taken now, and when to look again: at its time, or when the
    lease of the worker on it runs out (if that worker died, this one takes over)."""
    send = db.get(EmailSend, send_id)
    db.commit()
    if send is None or send.state not in (SCHEDULED, SENDING):
        return RunReport(send_id, send.state if send else "gone")
    wake = send.lease_until if send.lease_until else send.scheduled_at
    return RunReport(send_id, "busy" if send.lease_until else "waiting", wake_at=wake)


def _fail(db: Session, send: EmailSend, why: str) -> RunReport:
    send.state, send.error, send.finished_at, send.lease_until = FAILED, why, utcnow(), None
    db.commit()
    log.warning("send %s failed: %s", send.id, why)
    return RunReport(send.id, FAILED, detail=why)


def _start(db: Session, settings: Settings, send: EmailSend) -> str | None:
    """Take the audience into deliveries, as the user who made the send may read it (one
    transaction with the state change). Returns why the send cannot start, if it cannot."""
    if send.created_by_id is None:
        return "nobody made this send"
    try:
        principal = load_principal(db, send.created_by_id)
    except NotFound:
        return "the user who made this send no longer exists"
    if principal.disabled:
        return "the user who made this send is disabled"
    try:
        _setting, problems = service.check(
            db=db, principal=principal, message_id=send.message_id, public_url=settings.public_url
        )
        if problems:
            return f"the message is not ready: {problems[0].message}"
        members = audience_service.members(
            db, principal, tuple(send.segment_ids), tuple(send.list_ids)
        )
    except (NotFound, ValidationFailed) as exc:
        return exc.message
    message = db.get(EmailMessage, send.message_id)
    topic = message.topic if message is not None else ""
    rows = members.with_only_columns(
        Contact.id.label("contact_id"),
        Contact.email.label("email"),
        audience_service.reason_column(topic),
    ).subquery()
    rank = func.row_number().over(
        partition_by=(rows.c.email, rows.c.reason), order_by=rows.c.contact_id
    )
    ranked = select(rows.c.contact_id, rows.c.email, rows.c.reason, rank.label("rank")).subquery()
    suppressed = or_(ranked.c.reason.is_not(None), ranked.c.rank > 1)
    db.execute(
        insert(EmailDelivery).from_select(
            ["send_id", "contact_id", "email", "state", "reason", "detail", "attempts"],
            select(
                literal(send.id),
                ranked.c.contact_id,
                ranked.c.email,
                case((suppressed, literal(SUPPRESSED)), else_=literal(QUEUED)),
                case(
                    (ranked.c.reason.is_not(None), ranked.c.reason),
                    (ranked.c.rank > 1, literal(DUPLICATE)),
                    else_=None,
                ),
                literal(""),
                literal(0),
            ),
        )
    )
    send.recipients = db.scalar(
        select(func.count()).select_from(EmailDelivery).where(EmailDelivery.send_id == send.id)
    )
    send.state, send.started_at, send.error = SENDING, utcnow(), ""
    db.commit()
    return None


def run_send(factory: sessionmaker[Session], settings: Settings, *, send_id: int) -> RunReport:
    """Run a send as far as it goes now: start it if it is due, then deliver every queued
    message whose time has come. Safe to call again at any time, from any worker."""
    with factory() as db:
        send = _claim(db, settings, send_id)
        if send is None:
            return _not_now(db, send_id)
        if send.state == SCHEDULED:
            why = _start(db, settings, send)
            if why is not None:
                return _fail(db, send, why)
        # A delivery left *sending* by a worker that died may or may not have gone out:
        # never risk sending it twice.
        db.execute(
            update(EmailDelivery)
            .where(EmailDelivery.send_id == send.id, EmailDelivery.state == SENDING)
            .values(
                state=FAILED,
                reason=INTERRUPTED,
                detail="the worker stopped while sending it: it may or may not have gone out",
            )
        )
        db.commit()
        message = db.get(EmailMessage, send.message_id)
        try:
            if message is None:
                raise ValidationFailed("the message no longer exists", field="message_id")
            prepared = prepare(db, settings, message)
            mailer = smtp.Mailer(settings)
        except ValidationFailed as exc:
            return _fail(db, send, exc.message)
        with mailer:
            return _Run(db, settings, send, prepared, mailer).deliver()


# The statements taken per message, built once (building them costs more than running them).
MARK = (
    update(EmailDelivery)
    .where(EmailDelivery.id == bindparam("delivery"), EmailDelivery.state == QUEUED)
    .values(state=SENDING, attempts=bindparam("attempts"), message_id_header=bindparam("mid"))
)
ANSWER = (
    update(EmailDelivery)
    .where(EmailDelivery.id == bindparam("delivery"))
    .values(
        state=bindparam("state"),
        reason=bindparam("reason"),
        detail=bindparam("detail"),
        sent_at=bindparam("sent_at", type_=EmailDelivery.sent_at.type),
        next_attempt_at=bindparam("next_attempt_at", type_=EmailDelivery.next_attempt_at.type),
        attempts=bindparam("attempts"),
    )
)
INTERACTION = insert(EmailInteraction)


class _Run:
    """One worker's pass over a send's queued deliveries."""

    def __init__(
        self,
        db: Session,
        settings: Settings,
        send: EmailSend,
        prepared: Prepared,
        mailer: smtp.Mailer,
    ) -> None:
        self.db, self.settings, self.send = db, settings, send
        self.prepared, self.mailer = prepared, mailer
        self.report = RunReport(send.id, SENDING)
        self.lease = timedelta(seconds=settings.email_lease_seconds)
        self.renew_at = time.monotonic() + settings.email_lease_seconds / 3
        # The last answer, written with the next delivery's mark (one commit per message):
        # plain statements, not the ORM's unit of work, on this path taken per message.
        self.answer: tuple[int, dict[str, Any]] | None = None
        self.interactions: list[dict[str, Any]] = []

    def _write_answer(self) -> None:
        # On the session's connection: the ORM's bulk path would look for each statement's
        # rows among every object the session holds, per message.
        connection = self.db.connection()
        if self.answer is not None:
            delivery_id, values = self.answer
            connection.execute(ANSWER, {"delivery": delivery_id, **values})
            self.answer = None
        if self.interactions:
            connection.execute(INTERACTION, self.interactions)
            self.interactions = []

    def deliver(self) -> RunReport:
        while True:
            self._write_answer()
            if (
                self.db.scalar(select(EmailSend.state).where(EmailSend.id == self.send.id))
                == CANCELLED
            ):
                self.db.commit()
                self.report.status = CANCELLED
                return self.report
            seen, batch = self._batch()
            if not seen:
                later = self.db.scalar(
                    select(func.min(EmailDelivery.next_attempt_at)).where(
                        EmailDelivery.send_id == self.send.id, EmailDelivery.state == QUEUED
                    )
                )
                if later is None:
                    return self._finish()
                wait = (later - utcnow()).total_seconds()
                if wait > SLEEP_LIMIT:
                    return self._pause(later)
                self.db.commit()
                time.sleep(max(wait, 0.0))
                continue
            for delivery, contact in batch:
                if not self._one(delivery, contact):
                    return self.report

    def _batch(self) -> tuple[int, list[tuple[EmailDelivery, Contact]]]:
        """The next queued deliveries that are due (how many were read, and those to send:
        the others are settled here)."""
        now = utcnow()
        rows = self.db.execute(
            select(EmailDelivery, Contact)
            .outerjoin(Contact, Contact.id == EmailDelivery.contact_id)
            .where(
                EmailDelivery.send_id == self.send.id,
                EmailDelivery.state == QUEUED,
                or_(EmailDelivery.next_attempt_at.is_(None), EmailDelivery.next_attempt_at <= now),
            )
            .order_by(EmailDelivery.id)
            .limit(BATCH)
        ).all()
        batch = [(d, c) for d, c in rows]
        # An address suppressed since the send started (an unsubscribe, a bounce) is not sent.
        addresses = {d.email for d, _c in batch if d.email}
        stopped = (
            set(
                self.db.scalars(
                    select(Suppression.email).where(
                        Suppression.email.in_(addresses),
                        Suppression.topic.in_({"", self.prepared.message.topic}),
                        Suppression.lifted_at.is_(None),
                    )
                )
            )
            if addresses
            else set()
        )
        kept = []
        for delivery, contact in batch:
            if contact is None:
                self._settle(
                    delivery, SUPPRESSED, audience_service.TOMBSTONED, "the contact was deleted"
                )
            elif delivery.email in stopped:
                self._settle(
                    delivery, SUPPRESSED, "suppressed", "suppressed since the send started"
                )
            else:
                kept.append((delivery, contact))
        return len(batch), kept

    def _settle(self, delivery: EmailDelivery, state: str, reason: str | None, detail: str) -> None:
        delivery.state, delivery.reason, delivery.detail = state, reason, detail

    def _one(self, delivery: EmailDelivery, contact: Contact) -> bool:
        """Send one delivery; False when the run must stop (the server is unavailable)."""
        assert delivery.email is not None
        mid = make_msgid(idstring=f"d{delivery.id}", domain=self.prepared.domain)
        try:
            mime = compose(
                self.prepared,
                contact=service.contact_fields(contact),
                to=delivery.email,
                message_id=mid,
                delivery_id=delivery.id,
            )
        except ValidationFailed as exc:
            self._settle(delivery, FAILED, NOT_RENDERED, f"{exc.field}: {exc.message}")
            self.report.failed += 1
            metrics.EMAIL_DELIVERIES.labels("not_rendered").inc()
            return True
        attempts = delivery.attempts + 1
        self._write_answer()
        claimed = self.db.connection().execute(
            MARK, {"delivery": delivery.id, "attempts": attempts, "mid": mid}
        )
        self._renew()
        self.db.commit()  # the mark, and the previous delivery's answer, are durable now
        if claimed.rowcount != 1:
            return True  # another worker took it (or the send was cancelled)
        for key, value in (("state", SENDING), ("attempts", attempts), ("message_id_header", mid)):
            set_committed_value(delivery, key, value)
        outcome = self.mailer.send(
            mime, sender=self.prepared.setting.sender_email, recipient=delivery.email
        )
        return self._record(delivery, outcome)

    def _record(self, delivery: EmailDelivery, outcome: smtp.Outcome) -> bool:
        """Keep the server's answer to write with the next mark; False when the run must
        stop (the server is unavailable)."""
        now = utcnow()
        values: dict[str, Any] = {
            "state": FAILED,
            "reason": None,
            "detail": outcome.detail,
            "sent_at": None,
            "next_attempt_at": None,
            "attempts": delivery.attempts,
        }
        self.answer = (delivery.id, values)
        if outcome.status == smtp.SENT:
            values.update(state=SENT, sent_at=now)
            self._interaction(delivery, DELIVERED, now)
            self.report.sent += 1
            metrics.EMAIL_DELIVERIES.labels("sent").inc()
        elif outcome.status == smtp.HARD_BOUNCE:
            values.update(state=FAILED, reason=HARD_BOUNCE)
            audience_service.suppress(
                db=self.db,
                email=delivery.email or "",
                reason=HARD_BOUNCE,
                source="smtp",
                detail=outcome.detail,
            )
            self._interaction(delivery, BOUNCED, now, {"type": "hard", "answer": outcome.detail})
            self.report.failed += 1
            metrics.EMAIL_DELIVERIES.labels("hard_bounce").inc()
            metrics.EMAIL_BOUNCES.labels("hard", "smtp").inc()
        elif outcome.status == smtp.REJECTED:
            values.update(state=FAILED, reason=REJECTED)
            self.report.failed += 1
            metrics.EMAIL_DELIVERIES.labels("rejected").inc()
        elif (
            outcome.status == smtp.DEFERRED
            and delivery.attempts >= self.settings.email_max_attempts
        ):
            values.update(state=FAILED, reason=SOFT_BOUNCE)
            self._interaction(delivery, BOUNCED, now, {"type": "soft", "answer": outcome.detail})
            self.report.failed += 1
            metrics.EMAIL_DELIVERIES.labels("soft_bounce").inc()
            metrics.EMAIL_BOUNCES.labels("soft", "smtp").inc()
        elif outcome.status == smtp.DEFERRED:
            wait = self.settings.email_retry_seconds * 2 ** (delivery.attempts - 1)
            values.update(state=QUEUED, next_attempt_at=now + timedelta(seconds=wait))
            self.report.deferred += 1
            metrics.EMAIL_DELIVERIES.labels("deferred").inc()
        else:  # unavailable: nothing was tried; the send waits and tries again
            values.update(state=QUEUED, attempts=delivery.attempts - 1)
            wake = now + timedelta(seconds=self.settings.email_retry_seconds)
            self.send.error = outcome.detail
            self._pause(wake)
            return False
        return True

    def _interaction(
        self, delivery: EmailDelivery, kind: str, at: datetime, detail: dict[str, Any] | None = None
    ) -> None:
        self.interactions.append(
            {
                "delivery_id": delivery.id,
                "send_id": self.send.id,
                "message_id": self.send.message_id,
                "contact_id": delivery.contact_id,
                "kind": kind,
                "at": at,
                "url": None,
                "machine": False,
                "detail": detail,
            }
        )

    def _journey_running(self) -> bool:
        state = self.db.scalar(select(Journey.state).where(Journey.id == self.send.journey_id))
        return state in (LIVE, PAUSED)

    def _renew(self) -> None:
        if time.monotonic() >= self.renew_at:
            self.send.lease_until = utcnow() + self.lease
            self.renew_at = time.monotonic() + self.lease.total_seconds() / 3

    def _pause(self, wake: datetime) -> RunReport:
        self._write_answer()
        self.send.wake_at, self.send.lease_until = wake, None
        self.db.commit()
        self.report.status, self.report.wake_at = "waiting", wake
        return self.report

    def _finish(self) -> RunReport:
        self._write_answer()
        send = self.send
        if send.journey_id is not None and self._journey_running():
            # A journey's send stays open while the journey runs: the journey queues the
            # next deliveries and wakes the worker (an hourly look as a safety net).
            send.lease_until, send.wake_at = None, utcnow() + timedelta(hours=1)
            self.db.commit()
            self.report.status = "open"
            return self.report
        send.state, send.finished_at, send.lease_until, send.wake_at = DONE, utcnow(), None, None
        send.error = ""
        self.db.commit()
        self.report.status = DONE
        return self.report
