"""Who a send reaches, and who it must not: the audience of segments and lists as the
sender may read it, each contact with the reason it is suppressed, if any (SPEC M).

Suppression is one place for every sending path (``email_suppression`` plus what the
contact itself says): no email address, a deleted contact's address (its tombstone), a
hard bounce, a complaint, an unsubscribe from all marketing email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.contact.models import Contact, Tombstone
from gatherly.core import audit
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.core.pagination import Page, page_request, paginate
from gatherly.email.models import COMPLAINT, HARD_BOUNCE, UNSUBSCRIBED, Suppression
from gatherly.org import service as org_service
from gatherly.segment import service as segment_service

# Why a contact does not get a message, in the order the reasons are tested.
NO_EMAIL = "no_email"
TOMBSTONED = "tombstoned"
BOUNCED = "bounced"
COMPLAINED = "complained"
REASONS = {
    NO_EMAIL: "has no email address",
    TOMBSTONED: "its address belongs to a deleted contact",
    BOUNCED: "its address bounced hard",
    COMPLAINED: "it marked a message as spam",
    UNSUBSCRIBED: "it unsubscribed from marketing email",
}


def _suppressed(reason: str, topic: str = "") -> ColumnElement[bool]:
    return exists().where(
        Suppression.email == Contact.email,
        Suppression.reason == reason,
        Suppression.topic.in_({"", topic}),
        Suppression.lifted_at.is_(None),
    )


def reason_column(topic: str = "") -> ColumnElement[Any]:
    """Per contact row: why it must not get marketing email (of ``topic``: an unsubscribe
    from the topic counts as one from all), or NULL when it may."""
    tombstoned = exists().where(
        Tombstone.record_type == "contact",
        Tombstone.email == Contact.email,
        Tombstone.owning_bu_id == Contact.owning_bu_id,
    )
    return case(
        (or_(Contact.email.is_(None), Contact.email == ""), literal(NO_EMAIL)),
        (tombstoned, literal(TOMBSTONED)),
        (_suppressed(HARD_BOUNCE), literal(BOUNCED)),
        (_suppressed(COMPLAINT), literal(COMPLAINED)),
        (_suppressed(UNSUBSCRIBED, topic), literal(UNSUBSCRIBED)),
        else_=None,
    ).label("reason")


def _topic(db: Session, principal: access.Principal, message_id: int | None) -> str:
    if message_id is None:
        return ""
    found = access.get(db, principal=principal, record_type="email_message", record_id=message_id)
    if found is None:
        raise NotFound(f"email message {message_id} not found", field="message_id")
    return str(found.topic)


@dataclass(frozen=True)
class Audience:
    """What a send to these segments and lists would do, among the contacts the sender may
    read: how many would receive it and how many are suppressed, by reason."""

    total: int
    receiving: int
    suppressed: dict[str, int]


def members(
    db: Session, principal: access.Principal, segment_ids: Sequence[int], list_ids: Sequence[int]
) -> Select[Any]:
    """``select(Contact)`` of the audience the principal may read (ValidationFailed with no
    segment or list, NotFound for one it may not read)."""
    return segment_service.audience_statement(
        db=db, principal=principal, segment_ids=segment_ids, list_ids=list_ids
    )


def audience(
    *,
    db: Session,
    principal: access.Principal,
    segment_ids: Sequence[int] = (),
    list_ids: Sequence[int] = (),
    message_id: int | None = None,
) -> Audience:
    """Count the audience and its suppressed contacts, by reason (one query), for the
    message (its topic: who unsubscribed from it gets nothing) or any message."""
    topic = _topic(db, principal, message_id)
    rows = members(db, principal, segment_ids, list_ids).with_only_columns(
        Contact.id, reason_column(topic)
    )
    inner = rows.subquery()
    grouped = db.execute(select(inner.c.reason, func.count()).group_by(inner.c.reason))
    counts: dict[str | None, int] = {reason: n for reason, n in grouped}
    receiving = counts.pop(None, 0)
    return Audience(
        total=receiving + sum(counts.values()),
        receiving=receiving,
        suppressed={r: counts[r] for r in REASONS if counts.get(r)},
    )


SORTABLE = {"id": Contact.id}


@dataclass(frozen=True)
class Person:
    """A contact of the audience and why it does not get the message (None: it does)."""

    contact: Contact
    reason: str | None


def audience_people(
    *,
    db: Session,
    principal: access.Principal,
    segment_ids: Sequence[int] = (),
    list_ids: Sequence[int] = (),
    suppressed_only: bool = True,
    message_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the audience's contacts (by default the suppressed ones), each a
    :class:`Person` with its reason, in id order: "see who and why" before a send."""
    page_request(SORTABLE, sort="id", cursor=cursor, limit=limit)  # a bad cursor, named first
    topic = _topic(db, principal, message_id)
    stmt = members(db, principal, segment_ids, list_ids)
    if suppressed_only:
        stmt = stmt.where(reason_column(topic).is_not(None))
    page = paginate(
        db,
        stmt,
        id_column=Contact.id,
        sortable=SORTABLE,
        sort="id",
        cursor=cursor,
        limit=limit,
    )
    contacts: list[Contact] = list(page.items)
    ids = [c.id for c in contacts]
    reasons: dict[int, str | None] = {}
    if ids:
        found = db.execute(select(Contact.id, reason_column(topic)).where(Contact.id.in_(ids)))
        reasons = {contact_id: reason for contact_id, reason in found}
    return Page(
        items=[Person(c, reasons.get(c.id)) for c in contacts], next_cursor=page.next_cursor
    )


# ------------------------------------------------------------------ suppressions


def suppress(
    *, db: Session, email: str, reason: str, source: str, detail: str = "", topic: str = ""
) -> Suppression:
    """Record that an address must not get marketing email (idempotent: an active row for
    the same address, reason and topic is kept as it is)."""
    address = email.strip().casefold()
    found = db.scalars(
        select(Suppression).where(
            Suppression.email == address,
            Suppression.reason == reason,
            Suppression.topic == topic,
            Suppression.lifted_at.is_(None),
        )
    ).first()
    if found is not None:
        return found
    row = Suppression(email=address, reason=reason, topic=topic, source=source, detail=detail)
    db.add(row)
    db.flush()
    return row


def list_suppressions(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Active suppressions of the addresses of contacts the caller may read, newest first.

    An address no readable contact has is not shown: who else is on the list is not the
    caller's to know (system administrators, who may lift a suppression, see them all)."""
    readable = access.scope(
        select(Contact.id).where(Contact.email == Suppression.email),
        principal=principal,
        record_type="contact",
    )
    stmt = select(Suppression).where(Suppression.lifted_at.is_(None))
    if not principal.is_system_admin:  # administrators see every address, to lift one
        stmt = stmt.where(exists(readable))
    if q:
        stmt = stmt.where(Suppression.email.contains(q.strip().casefold(), autoescape=True))
    return paginate(
        db,
        stmt,
        id_column=Suppression.id,
        sortable={"id": Suppression.id},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def lift(*, db: Session, principal: access.Principal, suppression_id: int, why: str) -> Suppression:
    """Lift a bounce or complaint suppression (system administrators, with a reason;
    audited). An unsubscribe is the person's own choice: only they can undo it."""
    org_service.require_admin(principal, "lift a suppression")
    row = db.get(Suppression, suppression_id)
    if row is None or row.lifted_at is not None:
        raise NotFound(f"suppression {suppression_id} not found", field="id")
    if row.reason == UNSUBSCRIBED:
        raise ValidationFailed(
            "an unsubscribe is the person's own choice: only they can subscribe again",
            field="id",
        )
    if not why.strip():
        raise ValidationFailed("say why the suppression is lifted", field="why")
    row.lifted_at, row.lifted_by_id, row.lift_reason = utcnow(), principal.user_id, why.strip()
    db.flush()
    audit.log(
        db,
        actor=principal,
        action="email_suppression.lift",
        target_type="email_suppression",
        target_id=row.id,
        target_label=row.email,
        before={"reason": row.reason, "active": True},
        after={"reason": row.reason, "active": False, "why": row.lift_reason},
    )
    return row
