"""Explain and simulate (SPEC M): where one contact is in a journey and how it got there,
or why it is not in it; and how many of today's contacts a draft journey would take down
each step and branch, without sending or writing anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.email import audience as audience_service
from gatherly.email.models import (
    CLICKED,
    OPENED,
    EmailDelivery,
    EmailInteraction,
    EmailMessage,
    EmailSend,
)
from gatherly.journey import definition as jd
from gatherly.journey import engine, service
from gatherly.journey.models import (
    ACTIVE,
    AFTER_FINISH,
    DRAFT,
    Journey,
    JourneyAction,
    JourneyMember,
)
from gatherly.segment import service as segment_service
from gatherly.segment.models import (
    SCOPE_BUSINESS_UNIT,
    SCOPE_ORGANIZATION,
    MarketingListMember,
    Segment,
)


@dataclass(frozen=True)
class Step:
    """One step a contact took: when, and what came of it."""

    step: str
    outcome: str
    at: datetime
    detail: dict[str, Any] | None
    # Why it went that way, for a question or a wait about an email of the journey:
    # "opened" / "clicked" at ``because_at``, or "no open" / "no click" by then.
    because: str = ""
    because_at: datetime | None = None


@dataclass(frozen=True)
class Pass:
    """One pass of the contact through the journey."""

    entry: int
    status: str
    step: str | None
    entered_at: datetime
    next_due_at: datetime | None
    finished_at: datetime | None
    reason: str
    steps: list[Step]


@dataclass(frozen=True)
class Explanation:
    """Where a contact is in a journey and how it got there, or why it is not in it."""

    journey_id: int
    contact_id: int
    passes: list[Pass]
    why_not: str | None
    # For a contact whose passes are all over: whether and when it goes again.
    again: str | None = None


def explain(
    *, db: Session, principal: access.Principal, journey_id: int, contact_id: int
) -> Explanation:
    """For a contact the caller may read (NotFound otherwise)."""
    journey = service.get_journey(db=db, principal=principal, journey_id=journey_id)
    try:
        contact_service.get(
            db=db, principal=principal, kind=contact_service.CONTACT, record_id=contact_id
        )
    except NotFound:
        raise NotFound(f"contact {contact_id} not found", field="contact_id") from None
    definition = jd.parse(journey.definition)
    sends = {
        s.journey_step: s.id
        for s in db.scalars(select(EmailSend).where(EmailSend.journey_id == journey.id))
    }
    passes = []
    for member in db.scalars(
        select(JourneyMember)
        .where(JourneyMember.journey_id == journey.id, JourneyMember.contact_id == contact_id)
        .order_by(JourneyMember.entry)
    ):
        steps = [
            _because(db, definition, sends, member.entry, a)
            for a in db.scalars(
                select(JourneyAction)
                .where(
                    JourneyAction.journey_id == member.journey_id,
                    JourneyAction.contact_id == member.contact_id,
                    JourneyAction.entry == member.entry,
                )
                .order_by(JourneyAction.id)
            )
        ]
        passes.append(
            Pass(
                entry=member.entry,
                status=member.status,
                step=member.step,
                entered_at=member.entered_at,
                next_due_at=member.next_due_at,
                finished_at=member.finished_at,
                reason=member.reason,
                steps=steps,
            )
        )
    why = None if passes else _why_not(db, journey, contact_id)
    again = None
    if passes and all(p.status != ACTIVE for p in passes):
        again = (
            "it goes again once it joins the journey's audience again (or the trigger fires "
            "again) after its last pass finished"
            if journey.re_entry == AFTER_FINISH
            else "it went through once: the journey takes a contact once"
        )
    return Explanation(journey.id, contact_id, passes, why, again)


def _because(
    db: Session, definition: jd.Definition, sends: dict[str | None, int], entry: int, a: Any
) -> Step:
    """The step taken, with the open or click (of this pass's email) that decided it."""
    step = definition.steps.get(a.step)
    asked: tuple[str, str] | None = None
    if isinstance(step, jd.Condition) and (step.test.opened or step.test.clicked):
        asked = (
            step.test.opened or step.test.clicked or "",
            OPENED if step.test.opened else CLICKED,
        )
    elif isinstance(step, jd.Wait) and step.interaction is not None:
        asked = (step.interaction.step, step.interaction.kind)
    taken = Step(a.step, a.outcome, a.at, a.detail)
    if asked is None or asked[0] not in sends:
        return taken
    first = db.scalar(
        select(func.min(EmailInteraction.at))
        .join(EmailDelivery, EmailDelivery.id == EmailInteraction.delivery_id)
        .where(
            EmailDelivery.send_id == sends[asked[0]],
            EmailDelivery.contact_id == a.contact_id,
            EmailDelivery.entry == entry,
            EmailInteraction.kind == asked[1],
            EmailInteraction.machine.is_(False),
            EmailInteraction.at <= a.at,
        )
    )
    if first is not None:
        return replace(taken, because=asked[1], because_at=first)
    return replace(taken, because="no open" if asked[1] == OPENED else "no click")


def _members_of(db: Session, stmt: Any, contact_id: int) -> bool:
    return bool(db.scalar(select(stmt.where(Contact.id == contact_id).exists())))


def _why_not(db: Session, journey: Journey, contact_id: int) -> str:
    if journey.state == DRAFT:
        return "the journey is a draft: nobody is in it until it goes live"
    definition = jd.parse(journey.definition)
    audience = definition.audience
    if definition.trigger is not None:
        walker = engine.Walker(db, journey, definition, utcnow())
        fired = _members_of(
            db, select(Contact).where(Contact.id.in_(walker.triggered_ids())), contact_id
        )
        if not fired:
            return f"its trigger has not fired for it ({_trigger_text(definition.trigger)})"
        inside = True
    else:
        inside = False
    for segment_id in audience.segments:
        segment = db.get(Segment, segment_id)
        if segment is not None:
            stmt, _ = segment_service.membership_statement(db=db, segment=segment)
            inside = inside or _members_of(db, stmt, contact_id)
    for list_id in audience.lists:
        stmt = select(Contact).where(
            Contact.id.in_(
                select(MarketingListMember.contact_id).where(MarketingListMember.list_id == list_id)
            )
        )
        inside = inside or _members_of(db, stmt, contact_id)
    if not inside:
        return "it is in none of the journey's segments and lists"
    for segment_id in audience.exclude_segments:
        segment = db.get(Segment, segment_id)
        if segment is not None:
            stmt, _ = segment_service.membership_statement(db=db, segment=segment)
            if _members_of(db, stmt, contact_id):
                return f"it is in the excluded segment “{segment.name}”"
    if journey.state != "live":
        return f"the journey is {journey.state}: nobody enters it now"
    return "it is in the audience and enters at the journey's next run (within a minute)"


def _trigger_text(trigger: jd.Trigger) -> str:
    if trigger.sales_ready is not None:
        return f"became sales-ready in scoring model {trigger.sales_ready}"
    if trigger.added_to_list is not None:
        return f"added to list {trigger.added_to_list} after the journey went live"
    if trigger.attended is not None:
        return f"attended event {trigger.attended}"
    if trigger.registered is not None:
        return f"registered for event {trigger.registered}"
    return f"cancelled event {trigger.cancelled}"


# ------------------------------------------------------------------ simulate


@dataclass
class Simulation:
    """How many of today's audience would reach each step, and take each branch."""

    audience: int = 0
    out_of_scope: int = 0
    excluded: int = 0
    reached: dict[str, int] = field(default_factory=dict)
    branches: dict[str, dict[str, int]] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    assumed: list[str] = field(default_factory=list)  # conditions whose answer is a guess


def simulate(
    *, db: Session, principal: access.Principal, journey_id: int, now: datetime | None = None
) -> Simulation:
    """Walk today's audience through the journey's steps, writing and sending nothing.
    Waits pass at once; a condition about opens or clicks of the journey's own emails
    cannot be known yet and counts as *no* (said in ``assumed``).

    Only the people the caller may read are walked and counted: a simulation of a list
    shared with them must not count, or answer conditions about, contacts they may not
    read. The live journey takes its whole audience (its progress says so)."""
    journey = service.get_journey(db=db, principal=principal, journey_id=journey_id)
    definition = jd.parse(journey.definition)
    result = Simulation()
    problems = jd.structure(definition)
    if problems:
        raise_first(problems)
    scope = journey.scope if segment_service.scoping_on(db=db) else SCOPE_ORGANIZATION
    scope_bu = journey.owning_bu_id if scope == SCOPE_BUSINESS_UNIT else None
    walker = engine.Walker(db, journey, definition, now or utcnow())
    for contact, excluded in _readable(db, principal, walker.audience()):
        result.audience += 1
        if excluded:
            result.excluded += 1
            continue
        if scope_bu is not None and contact.owning_bu_id != scope_bu:
            result.out_of_scope += 1
            continue
        _walk(db, walker, definition, contact, result)
    return result


def _readable(
    db: Session, principal: access.Principal, people: Iterable[tuple[Contact, bool]]
) -> Iterator[tuple[Contact, bool]]:
    """``people`` without those the caller may not read (checked a batch at a time)."""
    people = iter(people)
    while batch := list(itertools.islice(people, 500)):
        readable = contact_service.readable_ids(
            db=db, principal=principal, kind=contact_service.CONTACT, ids=(c.id for c, _ in batch)
        )
        yield from (person for person in batch if person[0].id in readable)


def raise_first(problems: list[tuple[str, str]]) -> None:
    """ValidationFailed for the first problem."""
    field_name, message = problems[0]
    raise ValidationFailed(message, field=field_name)


def _walk(
    db: Session,
    walker: engine.Walker,
    definition: jd.Definition,
    contact: Contact,
    result: Simulation,
) -> None:
    name = definition.start
    for _ in range(len(definition.steps) + 1):
        step = definition.steps.get(name) if name else None
        if step is None:
            return
        assert name is not None
        result.reached[name] = result.reached.get(name, 0) + 1
        if isinstance(step, jd.SendEmail):
            message = db.get(EmailMessage, step.message_id)
            reason = db.scalar(
                select(audience_service.reason_column(message.topic if message else "")).where(
                    Contact.id == contact.id
                )
            )
            if reason:
                result.suppressed[name] = result.suppressed.get(name, 0) + 1
        if isinstance(step, jd.Condition):
            test = step.test
            if test.opened or test.clicked:
                answer = False
                if name not in result.assumed:
                    result.assumed.append(name)
            else:
                answer = walker.test(contact, test)
            branch = "yes" if answer else "no"
            counts = result.branches.setdefault(name, {"yes": 0, "no": 0})
            counts[branch] += 1
            name = step.yes if answer else step.no
            continue
        if isinstance(step, jd.End):
            return
        name = jd.following(step)[0] if jd.following(step) else None
