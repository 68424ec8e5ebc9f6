"""Running a report: one SQL statement over what the viewer may read (SPEC T6, B10, B11).

Every source counts only rows the access engine lets its viewer read: events,
registrations and attendance as records (B10: a registration is its event owner's), and
only those of events the viewer may read; contacts as records, and a contact filter or a
grouping by a contact's country or source only over contacts the viewer may read; email
deliveries and interactions, and journey members, as parts of the send, message or
journey that produced them — full numbers for whoever may read that record (B11).

Sums and counts come from the database; rates and averages are worked out from them here
(attendance rate = attendees / registrants), so every dialect agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    inspect,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session, aliased, outerjoin
from sqlalchemy.sql.elements import True_
from sqlalchemy.sql.util import ClauseAdapter

from gatherly.access import engine as access
from gatherly.contact.models import Contact
from gatherly.email.models import (
    BOUNCED,
    CLICKED,
    OPENED,
    SENT,
    EmailDelivery,
    EmailInteraction,
    EmailMessage,
    EmailSend,
)
from gatherly.event.models import EventAttendance, EventRegistration, MarketingEvent
from gatherly.event.participation import is_attended, is_cancelled, is_registered
from gatherly.journey.models import Journey, JourneyMember
from gatherly.org.models import BusinessUnit
from gatherly.report import definition as rd
from gatherly.segment import criteria
from gatherly.segment.service import custom_plans


@dataclass(frozen=True)
class Key:
    """One grouping value as shown, and the record it names (events, messages, journeys)."""

    label: str
    record_type: str | None = None
    record_id: int | None = None


@dataclass(frozen=True)
class Result:
    """A report's numbers: a row per group (the grouping values, then the measures)."""

    dims: tuple[str, ...]
    measures: tuple[str, ...]
    rows: list[tuple[tuple[Key, ...], tuple[float | int | None, ...]]]

    @property
    def columns(self) -> list[str]:
        """The column headings, in words."""
        return [rd.DIM_LABELS[d] for d in self.dims] + [rd.MEASURE_LABELS[m] for m in self.measures]

    def table(self) -> list[list[Any]]:
        """The rows as plain values (rates as fractions, averages rounded)."""
        return [[k.label for k in keys] + list(values) for keys, values in self.rows]


def _readable(viewer: access.Principal, record_type: str) -> list[ColumnElement[bool]]:
    found = access.readable(viewer, record_type, shape="count")
    return [] if isinstance(found, True_) else [found]


def _period(column: Any, unit: str, dialect: str) -> Any:
    """A timestamp's month (``2026-12``) or week (the Monday it starts, ``2026-11-30``), UTC."""
    if dialect == "postgresql":
        utc = column.op("AT TIME ZONE")(literal_column("'UTC'"))
        if unit == "month":
            return func.to_char(utc, "YYYY-MM")
        return func.to_char(func.date_trunc("week", utc), "YYYY-MM-DD")
    if unit == "month":
        return func.strftime("%Y-%m", column)
    return func.date(column, "-6 days", "weekday 1")


@dataclass
class _Query:
    """What a source contributes: the statement's FROM and WHERE, and its columns."""

    stmt: Select[Any]
    dims: dict[str, list[Any]]  # dim -> the columns selected for it (label, then id)
    sums: dict[str, Any]  # measure part -> aggregate expression


def run(db: Session, viewer: access.Principal, checked: rd.Checked, *, now: datetime) -> Result:
    """The report's numbers as ``viewer`` may see them.

    Example:
        >>> run(db, principal, rd.parse(rd.BUILTINS["webinar-performance"].definition), now=now)
    """
    d = checked.definition
    dialect = db.get_bind().dialect.name
    ctx = criteria.Context(now, readers=(viewer,), dialect=dialect)
    build = {
        "events": _events,
        "registrations": _registrations,
        "attendance": _attendance,
        "contacts": _contacts,
        "email_deliveries": _deliveries,
        "email_interactions": _interactions,
        "journey_states": _journeys,
    }[d.source]
    q = build(viewer, checked, ctx, set(d.measures))
    if "business_unit" in d.group_by:
        q.stmt = q.stmt.join(BusinessUnit, BusinessUnit.id == q.dims["business_unit"][1])
    selected: list[Any] = []
    group: list[Any] = []
    for dim in d.group_by:
        columns = q.dims[dim]
        selected.extend(columns)
        group.extend(columns)
    parts = sorted(q.sums)
    selected.extend(q.sums[p].label(p) for p in parts)
    stmt = q.stmt.with_only_columns(*selected)
    if group:
        stmt = stmt.group_by(*group).order_by(*group)
    # On PostgreSQL, planned with the values and not JIT-compiled, like segment counts:
    # compiling the report's statement took longer than running it (bench/reports.py).
    custom_plans(db=db)
    rows = []
    for row in db.execute(stmt):
        keys: list[Key] = []
        i = 0
        for dim in d.group_by:
            width = len(q.dims[dim])
            label, *rest = row[i : i + width]
            i += width
            keys.append(_key(dim, label, rest[0] if rest else None))
        sums = dict(zip(parts, row[i:], strict=True))
        rows.append((tuple(keys), tuple(_measure(m, sums) for m in d.measures)))
    return Result(tuple(d.group_by), tuple(d.measures), rows)


LINKS = {"event": "marketing_event", "message": "email_message", "journey": "journey"}


def _key(dim: str, label: Any, record_id: Any) -> Key:
    text = "—" if label in (None, "") else str(label)
    return Key(text, LINKS.get(dim), int(record_id) if record_id is not None else None)


def _ratio(top: Any, bottom: Any) -> float | None:
    return round(float(top or 0) / float(bottom), 4) if bottom else None


def _measure(name: str, sums: dict[str, Any]) -> float | int | None:
    """A measure from the sums the statement returned."""
    if name == "attendance_rate":
        return _ratio(sums["attendees"], sums["registrants"])
    if name == "no_show_rate":
        return _ratio(sums["no_shows"], sums["registrants"])
    if name == "open_rate":
        return _ratio(sums["opened"], sums["sent"])
    if name == "click_rate":
        return _ratio(sums["clicked"], sums["sent"])
    if name == "avg_minutes":
        seconds, attendees = float(sums["seconds"] or 0), float(sums["attendees"] or 0)
        return round(seconds / 60 / attendees, 1) if attendees else None
    if name == "sum_minutes":
        return round(float(sums["seconds"] or 0) / 60, 1)
    return int(sums[name] or 0)


def _needs(measures: set[str]) -> set[str]:
    """The sums the measures are worked out from."""
    needs = set(measures)
    derived = {
        "attendance_rate": {"attendees", "registrants"},
        "no_show_rate": {"no_shows", "registrants"},
        "open_rate": {"opened", "sent"},
        "click_rate": {"clicked", "sent"},
        "avg_minutes": {"seconds", "attendees"},
        "sum_minutes": {"seconds"},
    }
    for m in measures:
        needs |= derived.get(m, set())
    return needs - set(derived)


def _event_dims(ctx: criteria.Context, when: Any) -> dict[str, list[Any]]:
    e = MarketingEvent
    return {
        "event": [e.name, e.id],
        "organizer": [func.coalesce(func.nullif(e.organizer_name, ""), e.organizer_email)],
        "month": [_period(when, "month", ctx.dialect)],
        "week": [_period(when, "week", ctx.dialect)],
        "status": [e.status],
        "type": [e.event_type],
    }


def _bu(column: Any) -> list[Any]:
    """A business unit's name and id, by the owning BU column (joined when grouped by)."""
    return [BusinessUnit.name, column]


def _contact_dims(ctx: criteria.Context) -> dict[str, list[Any]]:
    return {"country": [Contact.country], "source": [Contact.origin]}


def _events_where(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context
) -> list[ColumnElement[bool]]:
    """The events the viewer may read that the event filter keeps."""
    where = _readable(viewer, "marketing_event")
    if checked.event:
        where.extend(criteria.event_predicate(checked.event, ctx))
    return where


def _contacts_where(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context
) -> list[ColumnElement[bool]]:
    where = _readable(viewer, "contact")
    if checked.contact is not None:
        where.append(criteria.compile_predicate(checked.contact, ctx))
    return where


def _uses_contact(checked: rd.Checked) -> bool:
    d = checked.definition
    return checked.contact is not None or bool({"country", "source"} & set(d.group_by))


def _events(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    e, r, a = MarketingEvent, EventRegistration, EventAttendance
    needs = _needs(measures)
    events_where = _events_where(viewer, checked, ctx)
    stmt = select(e.id).where(*events_where)
    # The registrations and attendance of the events counted, and no others: grouping
    # every readable row and leaving the other events' groups to the outer join reads
    # whole tables (bench/reports.py: 2.6x the hand-written SQL on SQLite).
    of_counted = _event_ids(events_where)
    sums: dict[str, Any] = {}
    if "events" in needs:
        sums["events"] = func.count(e.id)
    reg_parts: dict[str, Any] = {}
    reg_readable = _readable(viewer, "event_registration")
    if "registrants" in needs:
        reg_parts["registrants"] = func.count(func.distinct(case((is_registered(), r.email))))
    if "cancellations" in needs:
        cancelled = is_cancelled(readable=reg_readable)
        reg_parts["cancellations"] = func.count(func.distinct(case((cancelled, r.email))))
    registrations: Any = r
    if "no_shows" in needs:
        # Each registration outer-joined to its person's attendance of the event, where
        # that counts and may be read: a join the database can hash or merge, where a
        # NOT EXISTS in the CASE is probed once per row (bench/reports.py). The counts
        # are of distinct emails, and an email's rows all find the same attendance, so
        # the join changes no count; (event_id, person_key) is unique anyway.
        att = aliased(EventAttendance)
        came = and_(
            att.event_id == r.event_id,
            att.person_key == r.email,
            is_attended(att),
            *_on(att, _readable(viewer, "event_attendance")),
        )
        registrations = outerjoin(r, att, came)
        reg_parts["no_shows"] = func.count(
            func.distinct(case((and_(is_registered(), att.id.is_(None)), r.email)))
        )
    if reg_parts:
        regs = (
            select(r.event_id, *(v.label(k) for k, v in reg_parts.items()))
            .select_from(registrations)
            .where(*reg_readable, *of_counted(r.event_id))
            .group_by(r.event_id)
            .subquery("regs")
        )
        stmt = stmt.outerjoin(regs, regs.c.event_id == e.id)
        sums.update({k: func.coalesce(func.sum(regs.c[k]), 0) for k in reg_parts})
    if {"attendees", "seconds"} & needs:
        atts = (
            select(
                a.event_id,
                func.count().label("attendees"),
                func.sum(a.total_seconds).label("seconds"),
            )
            .where(is_attended(), *_readable(viewer, "event_attendance"), *of_counted(a.event_id))
            .group_by(a.event_id)
            .subquery("atts")
        )
        stmt = stmt.outerjoin(atts, atts.c.event_id == e.id)
        for k in ("attendees", "seconds"):
            if k in needs:
                sums[k] = func.coalesce(func.sum(atts.c[k]), 0)
    dims = {**_event_dims(ctx, e.start_at), "business_unit": _bu(e.owning_bu_id)}
    return _Query(stmt, dims, sums)


def _event_ids(
    where: Sequence[ColumnElement[bool]],
) -> Callable[[Any], list[ColumnElement[bool]]]:
    """``column IN`` the ids of the events ``where`` keeps (nothing when it keeps them all),
    on an alias of ``marketing_event`` so the statement's own stays the outer one."""
    if not where:
        return lambda column: []
    ev = aliased(MarketingEvent)
    ids = select(ev.id).where(*_on(ev, where))
    return lambda column: [column.in_(ids)]


def _on(alias: Any, predicates: Sequence[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """Predicates written on a table, rewritten onto an alias of it."""
    adapt = ClauseAdapter(inspect(alias).selectable).traverse
    return [adapt(p) for p in predicates]


def _registrations(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    e, r = MarketingEvent, EventRegistration
    readable = _readable(viewer, "event_registration")
    stmt = (
        select(r.id)
        .join(e, e.id == r.event_id)
        .where(*readable, *_events_where(viewer, checked, ctx))
    )
    if _uses_contact(checked):
        stmt = stmt.join(Contact, Contact.id == r.contact_id).where(
            *_contacts_where(viewer, checked, ctx)
        )
    when = func.coalesce(r.registered_at, r.created_at)
    sums: dict[str, Any] = {}
    if "registrations" in measures:
        sums["registrations"] = func.count(r.id)
    if "registrants" in measures:
        sums["registrants"] = func.count(func.distinct(case((is_registered(), r.email))))
    if "cancellations" in measures:
        cancelled = is_cancelled(readable=readable)
        sums["cancellations"] = func.count(func.distinct(case((cancelled, r.email))))
    if "distinct_contacts" in measures:
        sums["distinct_contacts"] = func.count(func.distinct(r.contact_id))
    dims = {
        **_event_dims(ctx, when),
        **_contact_dims(ctx),
        "status": [r.status],
        "business_unit": _bu(r.owning_bu_id),
    }
    return _Query(stmt, dims, sums)


def _attendance(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    e, a = MarketingEvent, EventAttendance
    stmt = (
        select(a.id)
        .join(e, e.id == a.event_id)
        .where(
            is_attended(),
            *_readable(viewer, "event_attendance"),
            *_events_where(viewer, checked, ctx),
        )
    )
    if _uses_contact(checked):
        stmt = stmt.join(Contact, Contact.id == a.contact_id).where(
            *_contacts_where(viewer, checked, ctx)
        )
    needs = _needs(measures)
    sums: dict[str, Any] = {}
    if "attendees" in needs:
        sums["attendees"] = func.count(a.id)
    if "seconds" in needs:
        sums["seconds"] = func.coalesce(func.sum(a.total_seconds), 0)
    if "distinct_contacts" in needs:
        sums["distinct_contacts"] = func.count(func.distinct(a.contact_id))
    when = func.coalesce(a.first_join_at, a.created_at)
    dims = {
        **_event_dims(ctx, when),
        **_contact_dims(ctx),
        "business_unit": _bu(a.owning_bu_id),
    }
    return _Query(stmt, dims, sums)


def _contacts(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    c = Contact
    stmt = select(c.id).where(*_contacts_where(viewer, checked, ctx))
    dims = {
        **_contact_dims(ctx),
        "month": [_period(c.created_at, "month", ctx.dialect)],
        "week": [_period(c.created_at, "week", ctx.dialect)],
        "business_unit": _bu(c.owning_bu_id),
    }
    return _Query(stmt, dims, {"contacts": func.count(c.id)})


def _with_contact(
    stmt: Select[Any],
    column: Any,
    viewer: access.Principal,
    checked: rd.Checked,
    ctx: criteria.Context,
) -> Select[Any]:
    """Only rows whose contact the viewer may read and the contact filter keeps."""
    if checked.contact is None:
        return stmt
    return stmt.join(Contact, Contact.id == column).where(*_contacts_where(viewer, checked, ctx))


def _deliveries(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    d, s, m = EmailDelivery, EmailSend, EmailMessage
    stmt = (
        select(d.id)
        .join(s, s.id == d.send_id)
        .join(m, m.id == s.message_id)
        .where(*_readable(viewer, "email_send"))
    )
    stmt = _with_contact(stmt, d.contact_id, viewer, checked, ctx)
    needs = _needs(measures)

    def had(kind: str) -> Any:
        i = EmailInteraction
        return (
            select(literal(1))
            .where(i.delivery_id == d.id, i.kind == kind, i.machine.is_(False))
            .exists()
        )

    sums: dict[str, Any] = {}
    if "deliveries" in needs:
        sums["deliveries"] = func.count(d.id)
    if "sent" in needs:
        sums["sent"] = func.count(case((d.state == SENT, d.id)))
    for name, kind in (("opened", OPENED), ("clicked", CLICKED), ("bounced", BOUNCED)):
        if name in needs:
            sums[name] = func.count(case((had(kind), d.id)))
    when = func.coalesce(d.sent_at, s.started_at, s.scheduled_at)
    dims = {
        "message": [m.name, m.id],
        "month": [_period(when, "month", ctx.dialect)],
        "week": [_period(when, "week", ctx.dialect)],
        "business_unit": _bu(s.owning_bu_id),
        "status": [d.state],
    }
    return _Query(stmt, dims, sums)


def _interactions(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    i, m = EmailInteraction, EmailMessage
    stmt = (
        select(i.id)
        .join(m, m.id == i.message_id)
        .where(i.machine.is_(False), *_readable(viewer, "email_message"))
    )
    stmt = _with_contact(stmt, i.contact_id, viewer, checked, ctx)
    sums: dict[str, Any] = {}
    if "interactions" in measures:
        sums["interactions"] = func.count(i.id)
    if "distinct_contacts" in measures:
        sums["distinct_contacts"] = func.count(func.distinct(i.contact_id))
    dims: dict[str, list[Any]] = {
        "message": [m.name, m.id],
        "kind": [i.kind],
        "month": [_period(i.at, "month", ctx.dialect)],
        "week": [_period(i.at, "week", ctx.dialect)],
    }
    return _Query(stmt, dims, sums)


def _journeys(
    viewer: access.Principal, checked: rd.Checked, ctx: criteria.Context, measures: set[str]
) -> _Query:
    j, jm = Journey, JourneyMember
    stmt = select(jm.id).join(j, j.id == jm.journey_id).where(*_readable(viewer, "journey"))
    stmt = _with_contact(stmt, jm.contact_id, viewer, checked, ctx)
    sums: dict[str, Any] = {}
    if "members" in measures:
        sums["members"] = func.count(jm.id)
    if "distinct_contacts" in measures:
        sums["distinct_contacts"] = func.count(func.distinct(jm.contact_id))
    dims: dict[str, list[Any]] = {
        "journey": [j.name, j.id],
        "status": [jm.status],
        "step": [jm.step],
    }
    return _Query(stmt, dims, sums)
