"""Sends: a ready message to segments and lists, now or at a time (SPEC M). A send is an
owned record; the worker (``email.delivery``) takes its audience when it starts, as its
maker may read it, and delivers it. A test send goes to one address at once.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import owned
from gatherly.contact.schemas import OwnerRef
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, ValidationFailed
from gatherly.core.pagination import Page
from gatherly.email import audience as audience_service
from gatherly.email import delivery, service, smtp
from gatherly.email.models import (
    CANCELLED,
    DRAFT,
    IN_USE,
    QUEUED,
    SCHEDULED,
    SENDING,
    EmailDelivery,
    EmailSend,
)

SEND = service.SEND
PAST = timedelta(minutes=5)  # a time this far back is a mistake, not "now"


class SendQueue(Protocol):
    """Where sends go to be carried out by a worker (``gatherly.jobs.queue.Jobs``)."""

    def enqueue_send(self, *, send_id: int, at: datetime | None = None) -> None: ...


def get_send(
    *,
    db: Session,
    principal: access.Principal,
    send_id: int,
    privilege: Privilege = Privilege.READ,
) -> EmailSend:
    """A send the caller may read (NotFound otherwise), checked for ``privilege``."""
    found: EmailSend = owned.get(db, principal, SEND, send_id, noun="send", privilege=privilege)
    return found


def create_send(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int,
    segment_ids: Sequence[int] = (),
    list_ids: Sequence[int] = (),
    queue: SendQueue,
    scheduled_at: datetime | None = None,
    owner: OwnerRef | None = None,
) -> EmailSend:
    """Schedule a ready message for the segments and lists (each readable by the caller),
    at ``scheduled_at`` or now: the send is committed and queued for the worker. The
    message becomes *in use*: no longer editable."""
    columns = owned.new_columns(db, principal, SEND, owner)
    message = service.get_message(
        db=db, principal=principal, message_id=message_id, field="message_id"
    )
    if message.state == DRAFT:
        raise ValidationFailed(
            f"“{message.name}” is a draft: check it and make it ready before sending it",
            field="message_id",
        )
    segments, lists = sorted(set(segment_ids)), sorted(set(list_ids))
    audience_service.members(db, principal, segments, lists)  # each one readable
    now = utcnow()
    if scheduled_at is not None and scheduled_at < now - PAST:
        raise ValidationFailed("is in the past: leave it empty to send now", field="scheduled_at")
    message.state = IN_USE
    row = EmailSend(
        message_id=message.id,
        segment_ids=segments,
        list_ids=lists,
        scheduled_at=max(scheduled_at or now, now),
        state=SCHEDULED,
        **columns,
    )
    db.add(row)
    db.commit()  # the worker must find it
    queue.enqueue_send(send_id=row.id, at=row.scheduled_at)
    return row


def list_sends(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the sends the caller may read, newest first (of one message, if given)."""
    where = EmailSend.message_id == message_id if message_id is not None else None
    return owned.page(
        db,
        principal,
        EmailSend,
        SEND,
        q=None,
        cursor=cursor,
        limit=limit,
        where=where,
        sortable={"id": EmailSend.id, "scheduled_at": EmailSend.scheduled_at},
    )


def cancel_send(*, db: Session, principal: access.Principal, send_id: int) -> EmailSend:
    """Stop a send that is not done (needs Write): what was not sent yet is not sent."""
    row = get_send(db=db, principal=principal, send_id=send_id, privilege=Privilege.WRITE)
    if row.state not in (SCHEDULED, SENDING):
        raise Conflict(f"this send is {row.state} and can no longer be cancelled", field="state")
    db.execute(
        update(EmailDelivery)
        .where(EmailDelivery.send_id == row.id, EmailDelivery.state == QUEUED)
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    row.state, row.finished_at, row.wake_at = CANCELLED, utcnow(), None
    owned.touch(row, principal)
    db.flush()
    return row


@dataclass(frozen=True)
class Progress:
    """A send and its deliveries by state, and by reason for those not sent."""

    send: EmailSend
    states: dict[str, int]
    reasons: dict[str, int]


def progress(*, db: Session, principal: access.Principal, send_id: int) -> Progress:
    """How far a send has got (counts: the same for anyone who may read the send)."""
    row = get_send(db=db, principal=principal, send_id=send_id)
    counts = db.execute(
        select(EmailDelivery.state, EmailDelivery.reason, func.count())
        .where(EmailDelivery.send_id == row.id)
        .group_by(EmailDelivery.state, EmailDelivery.reason)
    ).all()
    states: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for state, reason, n in counts:
        states[state] = states.get(state, 0) + n
        if reason:
            reasons[reason] = reasons.get(reason, 0) + n
    return Progress(send=row, states=states, reasons=reasons)


@dataclass(frozen=True)
class TestResult:
    """What the SMTP server said to a test send."""

    to: str
    status: str
    detail: str


def send_test(
    *,
    db: Session,
    principal: access.Principal,
    settings: Settings,
    message_id: int,
    to: str,
    contact_id: int | None = None,
) -> TestResult:
    """Send one copy of a message (draft or ready) to ``to`` now, personalised for a
    contact the caller may read or for the sample contact; its subject says it is a test.
    Needs Write on the message: a test send is part of writing it."""
    message = service.get_message(
        db=db, principal=principal, message_id=message_id, privilege=Privilege.WRITE
    )
    person: dict[str, Any] = copy.deepcopy(service.SAMPLE)
    if contact_id is not None:
        person = service.contact_fields(service.readable_contact(db, principal, contact_id))
    prepared = delivery.prepare(db, settings, message)
    mime = delivery.compose(
        prepared,
        contact=person,
        to=to,
        message_id=make_msgid(idstring="test", domain=prepared.domain),
        delivery_id=None,
        subject_prefix="[Test] ",
    )
    with smtp.Mailer(settings) as mailer:
        outcome = mailer.send(mime, sender=prepared.setting.sender_email, recipient=to)
    return TestResult(to=to, status=outcome.status, detail=outcome.detail)
