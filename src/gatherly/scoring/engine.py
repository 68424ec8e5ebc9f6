"""Scores in SQL (SPEC B9): one statement computes a model's score of every record it
scores (or of the contacts an update touched) and writes it with an upsert.

A model scores what its **owner** may read: the contacts (or leads with a contact) in the
owner's view, counting only the registrations, attendance, email interactions of
messages and form and page interactions the owner may read — the same rule a segment's
membership follows, so a score never counts what its owner could not open. Field
conditions compile with the segment criteria compiler; each interaction condition is a
``count(*) … GROUP BY contact`` joined to the records, so the whole score is one pass
over each interaction table (bench/scoring.py measures it against hand-written SQL).
"""

from __future__ import annotations

import time
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.capture.models import (
    FORM_SUBMITTED,
    PAGE_VISITED,
    CaptureInteraction,
    MarketingForm,
    MarketingPage,
)
from gatherly.contact.models import Contact, Lead
from gatherly.core.bounds import shift
from gatherly.email.models import CLICKED, OPENED, EmailInteraction, EmailMessage
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.org import directory
from gatherly.scoring import definition as sd
from gatherly.scoring.models import CONTACT, LeadScore, ScoringModel
from gatherly.segment import criteria

# How the explanation names what the rows are about.
EMAIL_KINDS = {sd.EMAIL_OPENED: OPENED, sd.EMAIL_CLICKED: CLICKED}
CAPTURE_KINDS = {sd.FORM_SUBMITTED: FORM_SUBMITTED, sd.PAGE_VISITED: PAGE_VISITED}


@dataclass(frozen=True)
class Rows:
    """The rows an interaction condition counts: whose they are, when, which row, what
    record they are about (an event, a message, a form or a page), and the filters."""

    contact: Any
    at: Any
    id: Any
    about: Any
    about_type: str
    where: list[ColumnElement[bool]]


def interaction_rows(checked: sd.Checked, ctx: criteria.Context, *, now: datetime) -> Rows:
    """The rows behind one interaction condition, as ``ctx``'s readers may read them, in
    its window (``within_days`` before ``now``)."""
    c = checked.condition
    if c.interaction in (sd.REGISTERED, sd.ATTENDED):
        assert checked.node is not None
        column, where = criteria.participants(checked.node, ctx)
        if c.interaction == sd.ATTENDED:
            a = EventAttendance
            rows = Rows(
                column,
                func.coalesce(a.first_join_at, a.created_at),
                a.id,
                a.event_id,
                "marketing_event",
                where,
            )
        else:
            r = EventRegistration
            rows = Rows(
                column,
                func.coalesce(r.registered_at, r.created_at),
                r.id,
                r.event_id,
                "marketing_event",
                where,
            )
    elif c.interaction in EMAIL_KINDS:
        e = EmailInteraction
        where = [e.contact_id.is_not(None), e.kind == EMAIL_KINDS[c.interaction]]
        where.append(e.machine.is_(False))  # a scanner's open is nobody's interest
        if c.message_id is not None:
            where.append(e.message_id == c.message_id)
        where.extend(_readable(ctx, e.message_id, EmailMessage, "email_message"))
        rows = Rows(e.contact_id, e.at, e.id, e.message_id, "email_message", where)
    else:
        ci = CaptureInteraction
        kind = CAPTURE_KINDS[c.interaction or ""]
        where = [ci.contact_id.is_not(None), ci.kind == kind]
        if kind == FORM_SUBMITTED:
            if c.form_id is not None:
                where.append(ci.form_id == c.form_id)
            where.extend(_readable(ctx, ci.form_id, MarketingForm, "marketing_form"))
            rows = Rows(ci.contact_id, ci.at, ci.id, ci.form_id, "marketing_form", where)
        else:
            if c.page_id is not None:
                where.append(ci.page_id == c.page_id)
            where.extend(_readable(ctx, ci.page_id, MarketingPage, "marketing_page"))
            rows = Rows(ci.contact_id, ci.at, ci.id, ci.page_id, "marketing_page", where)
    if c.within_days is not None:
        rows.where.append(rows.at >= ctx.when(shift(now, -timedelta(days=c.within_days))))
    return rows


def _readable(
    ctx: criteria.Context, column: Any, model: Any, record_type: str
) -> list[ColumnElement[bool]]:
    """``column`` names a record the readers may read (nothing added at organization
    level): an interaction is its generating record's (SPEC B11)."""
    predicates = ctx.may_read(record_type)
    if not predicates:
        return []
    return [column.in_(select(model.id).where(*predicates))]


def context(db: Session, model: ScoringModel, *, now: datetime) -> criteria.Context:
    """How a model's conditions compile: read as its owner reads."""
    owner = directory.load_owner_principal(db, model.owner_type, model.owner_id)
    return criteria.Context(now, readers=(owner,), dialect=db.get_bind().dialect.name)


def records_select(
    model: ScoringModel, owner: access.Principal, contact_ids: Sequence[int] | None = None
) -> Select[Any]:
    """``(record_id, contact_id, lead_id)`` of every record the model scores: the
    contacts (or the leads with a contact) its owner may read; or those of
    ``contact_ids``."""
    stmt: Any
    if model.target == CONTACT:
        stmt = select(
            Contact.id.label("record_id"),
            Contact.id.label("contact_id"),
            cast(null(), Integer).label("lead_id"),
        ).where(access.readable(owner, "contact", shape="count"))
    else:
        stmt = (
            select(
                Lead.id.label("record_id"),
                Lead.contact_id.label("contact_id"),
                Lead.id.label("lead_id"),
            )
            .join(Contact, Contact.id == Lead.contact_id)
            # A lead scores on its contact's fields and history: the owner must be able to
            # read that contact too, or a score would tell of a contact it cannot open.
            .where(
                access.readable(owner, "lead", shape="count"),
                access.readable(owner, "contact", shape="count"),
            )
        )
    if contact_ids is not None:
        stmt = stmt.where(among(Contact.id, contact_ids))
    return typing.cast(Select[Any], stmt)


def among(column: Any, contact_ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN (…)`` the given contacts, their ids written into the SQL when it runs
    rather than bound one parameter each: 20,000 contacts and five interaction conditions
    would bind 120,000 parameters, beyond PostgreSQL's 65,535 (and SQLite's default
    32,766), and binding them cost more than the statement's work; PostgreSQL plans with
    the values. The compiled statement stays cached (bench/scoring.py)."""
    ids = bindparam(None, sorted(contact_ids), type_=Integer, expanding=True, literal_execute=True)
    return typing.cast(ColumnElement[bool], column.in_(ids))


def score_select(
    db: Session,
    model: ScoringModel,
    *,
    now: datetime,
    contact_ids: Sequence[int] | None = None,
) -> Select[Any]:
    """``(record_id, contact_id, lead_id, score)`` of every record the model scores, or
    of those of ``contact_ids`` (a lead: its contact's)."""
    ctx = context(db, model, now=now)
    checked = sd.parse_conditions(model.conditions)
    stmt = records_select(model, ctx.readers[0], contact_ids)
    terms: list[Any] = []
    for chk in checked:
        c = chk.condition
        if c.contact is not None:
            assert chk.node is not None
            holds = criteria.compile_predicate(chk.node, ctx)
            terms.append(case((holds, c.points), else_=0))
            continue
        rows = interaction_rows(chk, ctx, now=now)
        where = list(rows.where)
        if contact_ids is not None:
            where.append(among(rows.contact, contact_ids))
        counted = (
            select(rows.contact.label("contact_id"), func.count().label("n"))
            .where(*where)
            .group_by(rows.contact)
            .subquery(f"c{chk.index}")
        )
        stmt = stmt.outerjoin(counted, counted.c.contact_id == Contact.id)
        terms.append(_points(c, counted.c.n))
    total: Any = literal(0)
    for term in terms:
        total = total + term
    return stmt.add_columns(total.label("score"))


def _points(c: sd.Condition, n: Any) -> Any:
    """What ``n`` matching interactions (NULL: none) are worth under the condition."""
    if c.frequency == sd.EACH:
        return func.coalesce(n, 0) * c.points
    if c.frequency == sd.NEVER:
        return case((n.is_(None), c.points), else_=0)
    return case((n >= c.times, c.points), else_=0)


def points_for(c: sd.Condition, n: int) -> int:
    """The same rule in Python, for an explanation's one person."""
    if c.frequency == sd.EACH:
        return n * c.points
    if c.frequency == sd.NEVER:
        return c.points if n == 0 else 0
    return c.points if n >= c.times else 0


def grade_of(grades: Sequence[dict[str, Any]], score: Any) -> Any:
    """The grade a score earns, as SQL over ``score`` (or NULL when none does)."""
    whens: list[tuple[Any, Any]] = []
    for g in grades:
        if g.get("min") is None:
            return case(*whens, else_=literal(g["grade"])) if whens else literal(g["grade"])
        whens.append((score >= g["min"], literal(g["grade"])))
    return case(*whens, else_=null()) if whens else null()


@dataclass
class Rescored:
    """What one rescore of a model did."""

    model_id: int
    scored: int = 0  # records the model scores (within the restriction)
    changed: int = 0  # scores written because they changed (or were new)
    removed: int = 0  # scores of records the model no longer scores
    became_ready: int = 0
    seconds: float = 0.0
    contact_ids: list[int] | None = field(default=None, repr=False)  # whose score changed


def rescore(
    db: Session,
    model: ScoringModel,
    *,
    now: datetime,
    contact_ids: Sequence[int] | None = None,
    changed_ids_up_to: int = 20_000,
) -> Rescored:
    """Write the model's scores (all of them, or those of ``contact_ids``) in one upsert
    that leaves unchanged scores alone, and remove the scores of records it no longer
    scores. A score that reaches the threshold marks its lead sales-ready.

    ``Rescored.contact_ids`` lists whose score changed when they are at most
    ``changed_ids_up_to`` (None: more, or unknown)."""
    started = time.perf_counter()
    result = Rescored(model_id=model.id)
    scores = score_select(db, model, now=now, contact_ids=contact_ids).subquery("scores")
    threshold = model.sales_ready
    ready: Any = scores.c.score >= threshold if threshold is not None else false()
    source = select(
        literal(model.id).label("model_id"),
        scores.c.record_id,
        scores.c.contact_id,
        scores.c.lead_id,
        scores.c.score,
        grade_of(model.grades, scores.c.score).label("grade"),
        ready.label("sales_ready"),
        case((ready, now), else_=null()).label("sales_ready_at"),
        literal(now, LeadScore.changed_at.type).label("changed_at"),
        literal(model.owner_type).label("owner_type"),
        literal(model.owner_id).label("owner_id"),
        literal(model.owning_bu_id).label("owning_bu_id"),
    ).where(scores.c.record_id.is_not(None))  # a WHERE: SQLite's upsert needs one
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(LeadScore).from_select([c.name for c in source.selected_columns], source)
    new = stmt.excluded
    s = LeadScore.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[s.model_id, s.record_id],
        set_={
            "score": new.score,
            "grade": new.grade,
            "contact_id": new.contact_id,
            "sales_ready": new.sales_ready,
            # When it last rose to the threshold: kept while it stays there.
            "sales_ready_at": case(
                (and_(new.sales_ready, not_(s.sales_ready)), new.sales_ready_at),
                else_=s.sales_ready_at,
            ),
            "changed_at": new.changed_at,
        },
        where=or_(
            s.score != new.score,
            s.contact_id != new.contact_id,
            s.sales_ready != new.sales_ready,
            func.coalesce(s.grade, "") != func.coalesce(new.grade, ""),
        ),
    )
    db.execute(stmt)
    owner = directory.load_owner_principal(db, model.owner_type, model.owner_id)
    # NOT EXISTS, not NOT IN: PostgreSQL hashes a NOT IN list only while it fits in
    # work_mem and otherwise rescans it for every score (a million contacts: hours); a
    # correlated NOT EXISTS is an anti-join on both databases (bench/scoring.py).
    kept = records_select(model, owner, contact_ids).subquery("kept")
    still = select(kept.c.record_id).where(kept.c.record_id == LeadScore.record_id)
    gone = delete(LeadScore).where(LeadScore.model_id == model.id, ~still.exists())
    if contact_ids is not None:
        gone = gone.where(among(LeadScore.contact_id, contact_ids))
    result.removed = db.execute(gone).rowcount or 0  # type: ignore[attr-defined]
    mine = [LeadScore.model_id == model.id]
    if contact_ids is not None:
        mine.append(among(LeadScore.contact_id, contact_ids))
    changed = and_(*mine, LeadScore.changed_at == now)
    result.scored = db.scalar(select(func.count()).where(*mine)) or 0
    result.changed = db.scalar(select(func.count()).where(changed)) or 0
    if result.changed <= changed_ids_up_to and not result.removed:
        result.contact_ids = list(
            db.scalars(select(LeadScore.contact_id).where(changed).distinct())
        )
    result.became_ready = _mark_ready(db, model, now=now, mine=mine)
    result.seconds = time.perf_counter() - started
    return result


def _mark_ready(
    db: Session, model: ScoringModel, *, now: datetime, mine: list[ColumnElement[bool]]
) -> int:
    """Count the scores that rose to the threshold now; mark their leads sales-ready when
    no model did before (the first model to reach its threshold sets the flag)."""
    rose = and_(*mine, LeadScore.sales_ready_at == now)
    count = db.scalar(select(func.count()).where(rose)) or 0
    if count and model.target != CONTACT:
        db.execute(
            update(Lead)
            .where(
                Lead.id.in_(select(LeadScore.lead_id).where(rose)),
                Lead.sales_ready_at.is_(None),
            )
            .values(sales_ready_at=now, sales_ready_model_id=model.id)
            .execution_options(synchronize_session=False)
        )
    return count
