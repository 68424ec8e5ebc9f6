"""Insights of a message or of one send (SPEC M, B11): what was sent, delivered, bounced,
opened, clicked (per link), unsubscribed and complained about, over time.

Interactions belong to the message that generated them, not to the contacts' owners:
whoever may read the message (or the send) sees every count in full. The detail — who
opened, who clicked — names only contacts the viewer may read; every other row is an
anonymous contact, with nothing (no id, address, name or hash) to tell who it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core import csvout
from gatherly.core.csvout import CsvExport
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.pagination import Page, page_request, paginate
from gatherly.email import sends as sends_service
from gatherly.email import service
from gatherly.email.models import (
    BOUNCED,
    CLICKED,
    COMPLAINED,
    FAILED,
    HARD_BOUNCE,
    OPENED,
    SENT,
    SOFT_BOUNCE,
    SUPPRESSED,
    UNSUBSCRIBED,
    EmailDelivery,
    EmailInteraction,
    EmailSend,
)

Kind = Literal["opened", "clicked", "unsubscribed", "bounced", "complained"]
DETAIL_KINDS = (OPENED, CLICKED, UNSUBSCRIBED, BOUNCED, COMPLAINED)


@dataclass(frozen=True)
class Scope:
    """The message, or the one send, insights are about."""

    message_id: int
    send_id: int | None = None

    def deliveries(self) -> ColumnElement[bool]:
        if self.send_id is not None:
            return EmailDelivery.send_id == self.send_id
        return EmailDelivery.send_id.in_(
            select(EmailSend.id).where(EmailSend.message_id == self.message_id)
        )

    def interactions(self) -> ColumnElement[bool]:
        if self.send_id is not None:
            return EmailInteraction.send_id == self.send_id
        return EmailInteraction.message_id == self.message_id


def scope(
    *, db: Session, principal: access.Principal, message_id: int | None, send_id: int | None
) -> Scope:
    """The message or send the caller may read (NotFound otherwise); exactly one is named."""
    if (message_id is None) == (send_id is None):
        raise ValidationFailed("name a message or a send", field="message_id")
    if send_id is not None:
        send = sends_service.get_send(db=db, principal=principal, send_id=send_id)
        return Scope(message_id=send.message_id, send_id=send.id)
    assert message_id is not None
    service.get_message(db=db, principal=principal, message_id=message_id)
    return Scope(message_id=message_id)


@dataclass(frozen=True)
class LinkClicks:
    url: str
    clicks: int
    unique: int


@dataclass(frozen=True)
class Bucket:
    """Opens and clicks in one hour (or day) starting at ``start``."""

    start: datetime
    opens: int
    clicks: int


@dataclass(frozen=True)
class Insights:
    """The full counts of a message or a send."""

    message_id: int
    send_id: int | None
    recipients: int  # deliveries made, suppressed ones included
    suppressed: int
    sent: int  # accepted by the SMTP server
    delivered: int  # sent and not bounced since
    hard_bounces: int
    soft_bounces: int
    failed: int  # refused or not rendered, interrupted: not sent, not a bounce
    opened: int  # contacts with a human open
    opens: int  # human opens
    machine_opens: int  # opens by proxies, scanners and fetch-on-arrival
    clicked: int  # contacts who clicked
    clicks: int
    unsubscribed: int
    complaints: int
    links: list[LinkClicks]
    timeline: list[Bucket]
    bucket: Literal["hour", "day"]

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.delivered if self.delivered else None

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.delivered if self.delivered else None


def _hour(db: Session, column: Any) -> Any:
    if db.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", column), 'YYYY-MM-DD"T"HH24')
    return func.strftime("%Y-%m-%dT%H", column)


def _bounce_type(kind: str) -> ColumnElement[bool]:
    return and_(
        EmailInteraction.kind == BOUNCED,
        EmailInteraction.detail["type"].as_string() == kind,
    )


def insights(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int | None = None,
    send_id: int | None = None,
    detail: bool = True,
) -> Insights:
    """Every count of the message (all its sends) or of one send, in full; without
    ``detail`` the counts alone (no per-link table, no timeline: a summary's cost)."""
    where = scope(db=db, principal=principal, message_id=message_id, send_id=send_id)
    states: dict[str, int] = {}
    failed = 0
    for state, reason, n in db.execute(
        select(EmailDelivery.state, EmailDelivery.reason, func.count())
        .where(where.deliveries())
        .group_by(EmailDelivery.state, EmailDelivery.reason)
    ):
        states[state] = states.get(state, 0) + n
        if state == FAILED and reason not in (HARD_BOUNCE, SOFT_BOUNCE):
            failed += n
    distinct = func.count(EmailInteraction.delivery_id.distinct())
    human = EmailInteraction.machine.is_(False)

    def count_of(condition: ColumnElement[bool], what: Any = None) -> int:
        stmt = select(what if what is not None else func.count()).where(
            where.interactions(), condition
        )
        return int(db.scalar(stmt) or 0)

    bounced_after = exists().where(
        EmailInteraction.delivery_id == EmailDelivery.id, EmailInteraction.kind == BOUNCED
    )
    delivered = db.scalar(
        select(func.count()).where(where.deliveries(), EmailDelivery.state == SENT, ~bounced_after)
    )
    links = _links(db, where) if detail else []
    timeline, bucket = _timeline(db, where) if detail else ([], "hour")
    return Insights(
        message_id=where.message_id,
        send_id=where.send_id,
        recipients=sum(states.values()),
        suppressed=states.get(SUPPRESSED, 0),
        sent=states.get(SENT, 0),
        delivered=int(delivered or 0),
        hard_bounces=count_of(_bounce_type("hard"), distinct),
        soft_bounces=count_of(_bounce_type("soft"), distinct),
        failed=failed,
        opened=count_of(and_(EmailInteraction.kind == OPENED, human), distinct),
        opens=count_of(and_(EmailInteraction.kind == OPENED, human)),
        machine_opens=count_of(and_(EmailInteraction.kind == OPENED, ~human)),
        clicked=count_of(EmailInteraction.kind == CLICKED, distinct),
        clicks=count_of(EmailInteraction.kind == CLICKED),
        unsubscribed=count_of(EmailInteraction.kind == UNSUBSCRIBED, distinct),
        complaints=count_of(EmailInteraction.kind == COMPLAINED, distinct),
        links=links,
        timeline=timeline,
        bucket=bucket,
    )


def link_of(url: str) -> str:
    """A clicked address as the per-link table groups it: without its query and fragment,
    which personalised links fill with the recipient's data."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _links(db: Session, where: Scope) -> list[LinkClicks]:
    clicks: dict[str, int] = {}
    people: dict[str, set[int]] = {}
    for url, delivery_id in db.execute(
        select(EmailInteraction.url, EmailInteraction.delivery_id).where(
            where.interactions(), EmailInteraction.kind == CLICKED
        )
    ):
        link = link_of(url or "")
        clicks[link] = clicks.get(link, 0) + 1
        people.setdefault(link, set()).add(delivery_id)
    ranked = sorted(clicks, key=lambda link: (-clicks[link], link))
    return [LinkClicks(url=link, clicks=clicks[link], unique=len(people[link])) for link in ranked]


def _timeline(db: Session, where: Scope) -> tuple[list[Bucket], Literal["hour", "day"]]:
    """Human opens and clicks per hour; per day when they span more than three days."""
    hour = _hour(db, EmailInteraction.at).label("hour")
    rows = db.execute(
        select(
            hour,
            func.sum(case((EmailInteraction.kind == OPENED, 1), else_=0)),
            func.sum(case((EmailInteraction.kind == CLICKED, 1), else_=0)),
        )
        .where(
            where.interactions(),
            EmailInteraction.kind.in_((OPENED, CLICKED)),
            EmailInteraction.machine.is_(False),
        )
        .group_by(hour)
        .order_by(hour)
    ).all()
    hours = [
        Bucket(datetime.fromisoformat(f"{h}:00:00").replace(tzinfo=UTC), int(o), int(c))
        for h, o, c in rows
    ]
    if not hours or hours[-1].start - hours[0].start <= timedelta(days=3):
        return hours, "hour"
    days: dict[datetime, list[int]] = {}
    for b in hours:
        day = b.start.replace(hour=0)
        total = days.setdefault(day, [0, 0])
        total[0] += b.opens
        total[1] += b.clicks
    return [Bucket(d, o, c) for d, (o, c) in days.items()], "day"


# ------------------------------------------------------------------ who did what


@dataclass(frozen=True)
class Someone:
    """One recipient who did ``kind``: named when the viewer may read the contact, else
    anonymous (``contact`` None, and nothing else that would tell who it is)."""

    contact: Contact | None
    first_at: datetime
    last_at: datetime
    times: int
    machine_only: bool  # opens: every one was a machine's
    urls: list[str]  # clicks: the links clicked


def people(
    *,
    db: Session,
    principal: access.Principal,
    kind: str,
    message_id: int | None = None,
    send_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the recipients who did ``kind`` (opened, clicked, …), in the order they
    first did it, each a :class:`Someone`. The page and its cursor follow the first
    interaction of each, never anything about the contact (its id, address, name or the
    order of the audience), so an anonymous row's place tells nothing about who it is."""
    page_request(FIRST, sort="id", cursor=cursor, limit=limit)  # a bad cursor, named first
    if kind not in DETAIL_KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(DETAIL_KINDS)}", field="kind")
    where = scope(db=db, principal=principal, message_id=message_id, send_id=send_id)
    firsts = (
        select(func.min(EmailInteraction.id))
        .where(where.interactions(), EmailInteraction.kind == kind)
        .group_by(EmailInteraction.delivery_id)
    )
    page = paginate(
        db,
        select(EmailInteraction).where(EmailInteraction.id.in_(firsts)),
        id_column=EmailInteraction.id,
        sortable=FIRST,
        sort="id",
        cursor=cursor,
        limit=limit,
    )
    return Page(items=list(_someone(db, principal, kind, page.items)), next_cursor=page.next_cursor)


FIRST = {"id": EmailInteraction.id}


def _someone(db: Session, principal: access.Principal, kind: str, firsts: Any) -> Iterator[Someone]:
    ids = [f.delivery_id for f in firsts]
    if not ids:
        return
    found: dict[int, list[EmailInteraction]] = {}
    for row in db.scalars(
        select(EmailInteraction)
        .where(EmailInteraction.delivery_id.in_(ids), EmailInteraction.kind == kind)
        .order_by(EmailInteraction.at, EmailInteraction.id)
    ):
        found.setdefault(row.delivery_id, []).append(row)
    named: dict[int, Contact] = contact_service.readable_records(
        db=db,
        principal=principal,
        kind=contact_service.CONTACT,
        ids={f.contact_id for f in firsts if f.contact_id},
    )
    for first in firsts:
        rows = found[first.delivery_id]
        contact = named.get(first.contact_id) if first.contact_id else None
        if contact is None:  # anonymous: nothing personal, not even a personalised link
            minute = timedelta(minutes=1)
            yield Someone(
                contact=None,
                first_at=_floor(rows[0].at, minute),
                last_at=_floor(rows[-1].at, minute),
                times=len(rows),
                machine_only=all(r.machine for r in rows),
                urls=[],
            )
            continue
        yield Someone(
            contact=contact,
            first_at=rows[0].at,
            last_at=rows[-1].at,
            times=len(rows),
            machine_only=all(r.machine for r in rows),
            urls=list(dict.fromkeys(r.url for r in rows if r.url)),
        )


def _floor(at: datetime, step: timedelta) -> datetime:
    return at - (at - datetime.min.replace(tzinfo=at.tzinfo)) % step


EXPORT_COLUMNS = (
    "contact_id",
    "email",
    "name",
    "first_at",
    "last_at",
    "times",
    "machine_only",
    "urls",
)


def export_people(
    *,
    db: Session,
    principal: access.Principal,
    kind: str,
    session_factory: Callable[[], Session],
    message_id: int | None = None,
    send_id: int | None = None,
) -> CsvExport:
    """Who did ``kind``, as CSV through the one writer (from a session of its own, read a
    page at a time): anonymous rows stay anonymous. NotFound now, before the first row."""
    where = scope(db=db, principal=principal, message_id=message_id, send_id=send_id)
    if kind not in DETAIL_KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(DETAIL_KINDS)}", field="kind")

    def rows(own: Session) -> Iterator[list[Any]]:
        cursor: str | None = None
        while True:
            page = people(
                db=own,
                principal=principal,
                kind=kind,
                message_id=where.message_id if where.send_id is None else None,
                send_id=where.send_id,
                cursor=cursor,
                limit=500,
            )
            for p in page.items:
                c = p.contact
                yield [
                    c.id if c else None,
                    c.email if c else None,
                    f"{c.first_name} {c.last_name}".strip() if c else "Anonymous contact",
                    p.first_at,
                    p.last_at,
                    p.times,
                    p.machine_only,
                    " ".join(p.urls),
                ]
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def chunks() -> Iterator[str]:
        with session_factory() as own:
            yield from csvout.stream(EXPORT_COLUMNS, rows(own))

    what = f"send-{where.send_id}" if where.send_id else f"message-{where.message_id}"
    return CsvExport(f"{what}-{kind}.csv", chunks())
