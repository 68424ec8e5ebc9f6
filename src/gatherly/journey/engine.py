"""The journey engine (on the worker): contacts enter live journeys from their audience,
and each member due at its step takes it — an email queued, a wait, a branch, a lead, a
list or field change — until a wait that is not over, or the end.

Every step a member takes is a ``JourneyAction`` row (unique per journey, contact, entry
and step) written in the same transaction as its effect, so a step happens at most once
however often a worker dies or two workers try. Waits are rows with a due time, never a
sleeping thread; the clock is a parameter (``now``), which the tests move.

Most steps are taken by every due member at once, in SQL (``INSERT … SELECT`` of the
actions, then one ``UPDATE`` moving on the members that have one): emails, waits,
conditions and ends. A step with an effect per contact through the ORM — a lead, a list
or field change — is taken member by member. Taken together, the members are moved on
by one ``UPDATE … RETURNING`` whose rows are the ones logged, in the same transaction.

Scope (B6) is the one fixed when the journey went live (``live_scope_bu_id``): a member
of its audience in another business unit is recorded as *out of scope* and never
processed, whoever owns the journey now.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact, Lead
from gatherly.core import changes
from gatherly.core.db import utcnow
from gatherly.email import audience as audience_service
from gatherly.email.models import (
    OPENED,
    QUEUED,
    SUPPRESSED,
    EmailDelivery,
    EmailInteraction,
    EmailMessage,
    EmailSend,
)
from gatherly.event import participation
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.journey import definition as jd
from gatherly.journey import service
from gatherly.journey.models import (
    ACTIVE,
    AFTER_FINISH,
    COMPLETED,
    DONE,
    EXITED,
    LIVE,
    OUT_OF_SCOPE,
    Journey,
    JourneyAction,
    JourneyMember,
)
from gatherly.org import directory
from gatherly.scoring.models import LeadScore
from gatherly.segment import criteria
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingListMember, Segment, SegmentMember

log = logging.getLogger(__name__)
BATCH = 500  # members advanced one by one per transaction
BULK = 50_000  # members taking a step together per transaction
ONE_BY_ONE = (jd.CreateLead, jd.ListChange, jd.UpdateField)


class SendQueue(Protocol):
    def enqueue_send(self, *, send_id: int, at: datetime | None = None) -> None: ...


@dataclass
class TickReport:
    """What one pass over the live journeys did."""

    entered: int = 0
    out_of_scope: int = 0
    actions: int = 0
    completed: list[int] = field(default_factory=list)
    sends: set[int] = field(default_factory=set)  # sends with new deliveries


def tick(
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    queue: SendQueue | None = None,
    batch: int = BATCH,
) -> TickReport:
    """One pass over every live journey: completion at the end time, entry, steps due."""
    now = now or utcnow()
    report = TickReport()
    with factory() as db:
        journeys = list(db.scalars(select(Journey.id).where(Journey.state == LIVE)))
    for journey_id in journeys:
        run_journey(factory, journey_id, now=now, report=report, batch=batch)
    if queue is not None:
        for send_id in sorted(report.sends):
            queue.enqueue_send(send_id=send_id)
    return report


def run_journey(
    factory: sessionmaker[Session],
    journey_id: int,
    *,
    now: datetime,
    report: TickReport,
    batch: int = BATCH,
) -> None:
    """Enter new members and advance the due ones of one journey."""
    with factory() as db:
        journey = db.get(Journey, journey_id)
        if journey is None or journey.state != LIVE:
            return
        if journey.end_at is not None and journey.end_at <= now:
            service.finish(db, journey, COMPLETED, "the journey reached its end time")
            db.commit()
            report.completed.append(journey_id)
            return
        if journey.start_at is not None and journey.start_at > now:
            return
        try:
            _Pass(db, journey, now, report, batch).run()
        except IntegrityError:
            # Another worker took one of these steps first (the action log is unique per
            # journey, contact, entry and step): what is left is for the next pass.
            db.rollback()
            log.warning("journey %s: a step was taken by another worker", journey_id)


class Walker:
    """What reading a journey's audience and answering its conditions needs (the engine's
    pass, and the simulation, which writes nothing)."""

    def __init__(
        self, db: Session, journey: Journey, definition: jd.Definition, now: datetime
    ) -> None:
        self.db, self.journey, self.definition, self.now = db, journey, definition, now
        self.sends = {
            s.journey_step: s
            for s in db.scalars(select(EmailSend).where(EmailSend.journey_id == journey.id))
        }

    def audience(self) -> Iterator[tuple[Contact, bool]]:
        """Today's audience, a page at a time, each contact with whether it is excluded."""
        audience = self._audience()
        if audience is None:
            return
        excluded = self._excluded()
        flag = excluded if excluded is not None else literal(False)
        last = 0
        while True:
            rows = self.db.execute(
                select(Contact, flag)
                .where(Contact.id.in_(select(audience.c.contact_id)), Contact.id > last)
                .order_by(Contact.id)
                .limit(1000)
            ).all()
            for contact, is_excluded in rows:
                yield contact, bool(is_excluded)
            if len(rows) < 1000:
                return
            last = rows[-1][0].id

    def triggered_ids(self) -> Any:
        """The contact ids the trigger has fired for (a select)."""
        assert self.definition.trigger is not None
        fired = self._triggered(self.definition.trigger)
        return fired.with_only_columns(fired.selected_columns[0])

    def test(self, contact: Contact, test: jd.Test) -> bool:
        """A condition's answer for one contact, now (not about the journey's emails)."""
        return bool(
            self.db.scalar(select(exists().where(Contact.id == contact.id, self.predicate(test))))
        )

    def predicate(self, test: jd.Test) -> ColumnElement[bool]:
        """A condition as SQL over ``contact`` (and, for opens and clicks of the journey's
        emails, over ``journey_member``: the email of the member's own pass)."""
        if test.opened or test.clicked:
            asked = test.opened or test.clicked or ""
            return self._interacted(asked, OPENED if test.opened else "clicked")
        if test.segment is not None:
            segment = self.db.get(Segment, test.segment)
            if segment is None:
                return literal(False)
            stmt, _ = segment_service.membership_statement(db=self.db, segment=segment)
            return Contact.id.in_(stmt.with_only_columns(Contact.id))
        # The rest as a segment criterion, so both answer alike: registrations and
        # attendance count only where the journey's owner may read them.
        return criteria.compile_predicate(criteria.parse(_criterion(test)), self.context)

    @functools.cached_property
    def context(self) -> criteria.Context:
        """How criteria compile here: read as the journey's owner reads."""
        owner = directory.load_owner_principal(
            self.db, self.journey.owner_type, self.journey.owner_id
        )
        return criteria.Context(self.now, readers=(owner,), dialect=self.db.get_bind().dialect.name)

    # -------------------------------------------------------------- audience

    def _audience(self) -> Any:
        """(contact_id, since) of the audience, or of those the trigger has fired for:
        since when each belongs (NULL when nobody knows), one row per contact."""
        if self.definition.trigger is not None:
            parts = [self._triggered(self.definition.trigger)]
        else:
            parts = self._members()
        if not parts:
            return None
        rows = union_all(*parts).subquery()
        return (
            select(rows.c[0].label("contact_id"), func.max(rows.c[1]).label("since"))
            .group_by(rows.c[0])
            .subquery()
        )

    def _members(self) -> list[Any]:
        audience = self.definition.audience
        parts: list[Any] = []
        for segment_id in audience.segments:
            segment = self.db.get(Segment, segment_id)
            if segment is not None:
                stmt, _ = segment_service.membership_statement(db=self.db, segment=segment)
                added = (
                    select(SegmentMember.added_at)
                    .where(
                        SegmentMember.segment_id == segment_id,
                        SegmentMember.contact_id == Contact.id,
                    )
                    .scalar_subquery()
                )
                parts.append(stmt.with_only_columns(Contact.id, added))
        for list_id in audience.lists:
            parts.append(
                select(MarketingListMember.contact_id, MarketingListMember.added_at).where(
                    MarketingListMember.list_id == list_id
                )
            )
        return parts

    def _triggered(self, trigger: jd.Trigger) -> Any:
        if trigger.sales_ready is not None:
            # Scores that rose to the threshold since the journey went live, among the
            # scores its owner may read (a score is its model owner's record, B9).
            since = self.journey.live_at or self.now
            return select(LeadScore.contact_id, LeadScore.sales_ready_at).where(
                LeadScore.model_id == trigger.sales_ready,
                LeadScore.sales_ready.is_(True),
                LeadScore.sales_ready_at >= since,
                *self.context.may_read(criteria.SCORE),
            )
        if trigger.added_to_list is not None:
            since = self.journey.live_at or self.now
            return select(MarketingListMember.contact_id, MarketingListMember.added_at).where(
                MarketingListMember.list_id == trigger.added_to_list,
                MarketingListMember.added_at >= since,
            )
        if trigger.attended is not None:
            return select(EventAttendance.contact_id, EventAttendance.created_at).where(
                EventAttendance.event_id == trigger.attended,
                EventAttendance.contact_id.is_not(None),
                participation.is_attended(),
                *self.context.may_read(criteria.ATTENDANCE),
            )
        if trigger.registered is not None:
            return select(
                EventRegistration.contact_id,
                func.coalesce(EventRegistration.registered_at, EventRegistration.created_at),
            ).where(
                EventRegistration.event_id == trigger.registered,
                EventRegistration.contact_id.is_not(None),
                participation.is_registered(),
                *self.context.may_read(criteria.REGISTRATION),
            )
        return select(EventRegistration.contact_id, EventRegistration.canceled_at).where(
            EventRegistration.event_id == trigger.cancelled,
            EventRegistration.contact_id.is_not(None),
            participation.is_cancelled(readable=self.context.may_read(criteria.REGISTRATION)),
            *self.context.may_read(criteria.REGISTRATION),
        )

    def _excluded(self) -> Any:
        parts = []
        for segment_id in self.definition.audience.exclude_segments:
            segment = self.db.get(Segment, segment_id)
            if segment is not None:
                stmt, _ = segment_service.membership_statement(db=self.db, segment=segment)
                parts.append(Contact.id.in_(stmt.with_only_columns(Contact.id)))
        return or_(*parts) if parts else None

    def _interacted(self, step: str, kind: str) -> ColumnElement[bool]:
        """Whether the member opened (clicked) the email its pass got at ``step``: a
        person's open, not a mail scanner's."""
        send = self.sends.get(step)
        if send is None:
            return literal(False)
        return exists().where(
            EmailDelivery.send_id == send.id,
            EmailDelivery.contact_id == JourneyMember.contact_id,
            EmailDelivery.entry == JourneyMember.entry,
            EmailInteraction.delivery_id == EmailDelivery.id,
            EmailInteraction.kind == kind,
            EmailInteraction.machine.is_(False),
        )


def _criterion(test: jd.Test) -> dict[str, Any]:
    """A condition (registered, attended, a contact field) as a segment criterion."""
    if test.registered is not None:
        return {"participation": "registered", "event": {"id": test.registered}}
    if test.attended is not None:
        node: dict[str, Any] = {"participation": "attended", "event": {"id": test.attended}}
        if test.min_minutes:
            node["min_minutes"] = test.min_minutes
        return node
    assert test.field is not None
    if test.op in ("empty", "not_empty"):
        return {"contact": {test.field: {"empty": test.op == "empty"}}}
    return {"contact": {test.field: {test.op: test.value}}}


class _Pass(Walker):
    def __init__(
        self, db: Session, journey: Journey, now: datetime, report: TickReport, batch: int
    ) -> None:
        super().__init__(db, journey, jd.parse(journey.definition), now)
        self.report, self.batch = report, batch
        self.order = _tree_order(self.definition)

    def run(self) -> None:
        self._enter()
        while True:
            moved = self._leave_gone()
            for name in self.order:
                step = self.definition.steps[name]
                if not isinstance(step, ONE_BY_ONE):
                    moved += self._together(name, step)
            moved += self._one_by_one()
            if not moved:
                return

    def _write(self, statement: Any) -> int:
        """Run an INSERT or UPDATE in the pass's transaction: the rows it wrote."""
        result = self.db.connection().execute(
            statement.execution_options(preserve_rowcount=True)  # psycopg says -1 otherwise
        )
        return max(result.rowcount or 0, 0)

    # -------------------------------------------------------------- entering

    def _enter(self) -> None:
        audience = self._audience()
        if audience is None:
            return
        journey = self.journey
        previous = [
            JourneyMember.journey_id == journey.id,
            JourneyMember.contact_id == Contact.id,
        ]
        if journey.re_entry == AFTER_FINISH:
            # Again once the last pass finished and it joined the audience (or the
            # trigger fired) after that.
            previous.append(
                or_(
                    JourneyMember.status.in_((ACTIVE, OUT_OF_SCOPE)),
                    audience.c.since.is_(None),
                    JourneyMember.finished_at >= audience.c.since,
                )
            )
        conditions = [~exists().where(*previous)]
        excluded = self._excluded()
        if excluded is not None:
            conditions.append(~excluded)
        in_scope = (
            Contact.owning_bu_id == journey.live_scope_bu_id
            if journey.live_scope_bu_id is not None
            else literal(True)
        )
        entry = (
            select(func.coalesce(func.max(JourneyMember.entry), 0) + 1)
            .where(JourneyMember.journey_id == journey.id, JourneyMember.contact_id == Contact.id)
            .scalar_subquery()
        )
        now = literal(self.now, type_=JourneyMember.entered_at.type)
        rows = (
            select(
                literal(journey.id),
                Contact.id,
                entry,
                case((in_scope, literal(ACTIVE)), else_=literal(OUT_OF_SCOPE)),
                case((in_scope, literal(self.definition.start)), else_=None),
                case((in_scope, now), else_=None),
                now,
                case((in_scope, None), else_=now),
                case(
                    (in_scope, literal("")),
                    else_=literal("its business unit is not the one the journey is scoped to"),
                ),
            )
            .join(audience, audience.c.contact_id == Contact.id)
            .where(*conditions)
        )
        written = self._write(
            insert(JourneyMember).from_select(
                [
                    "journey_id",
                    "contact_id",
                    "entry",
                    "status",
                    "step",
                    "next_due_at",
                    "entered_at",
                    "finished_at",
                    "reason",
                ],
                rows,
            )
        )
        self.report.entered += written
        self.db.commit()

    # -------------------------------------------------------------- together

    def _at(self, name: str) -> list[ColumnElement[bool]]:
        return [
            JourneyMember.journey_id == self.journey.id,
            JourneyMember.status == ACTIVE,
            JourneyMember.step == name,
        ]

    def _chunk(self, conditions: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
        """``conditions`` narrowed to the first ``BULK`` members they hold (by id)."""
        last = self.db.scalar(
            select(JourneyMember.id)
            .where(*conditions)
            .order_by(JourneyMember.id)
            .offset(BULK - 1)
            .limit(1)
        )
        return conditions if last is None else [*conditions, JourneyMember.id <= last]

    def _leave_gone(self) -> int:
        """Members whose contact was deleted leave at once, wherever they are; due members
        in an excluded segment now leave too."""
        left = self._leave(
            [
                JourneyMember.journey_id == self.journey.id,
                JourneyMember.status == ACTIVE,
                JourneyMember.contact_id.is_(None),  # the contact's row went: SET NULL
            ],
            EXITED,
            "the contact was deleted",
        )
        excluded = self._excluded()
        if excluded is not None:
            gone = select(Contact.id).where(Contact.id == JourneyMember.contact_id, excluded)
            left += self._leave(
                [
                    JourneyMember.journey_id == self.journey.id,
                    JourneyMember.status == ACTIVE,
                    JourneyMember.next_due_at <= self.now,
                    gone.exists(),
                ],
                EXITED,
                "excluded",
            )
        self.db.commit()
        return left

    def _leave(
        self,
        where: list[ColumnElement[bool]],
        status: str,
        why: str = "",
        *,
        at: str | None = None,
    ) -> int:
        """The members ``where`` says leave with ``status`` (done: at the end step ``at``,
        if the path has one)."""
        written = self._write(
            update(JourneyMember)
            .where(*where)
            .values(
                status=status,
                step=at,
                next_due_at=None,
                step_started_at=None,
                finished_at=self.now,
                reason=why,
            )
        )
        return written

    def _together(self, name: str, step: Any) -> int:
        """Every due member at ``name`` takes it, in SQL, a chunk per transaction."""
        moved = 0
        if isinstance(step, jd.Wait):
            self._start_wait(name, step)
        while True:
            due = self._due_at(name, step)
            done = self._take_together(name, step, self._chunk(due))
            self.db.commit()
            moved += done
            if done < BULK:
                return moved

    def _due_at(self, name: str, step: Any) -> list[ColumnElement[bool]]:
        at = self._at(name)
        if not isinstance(step, jd.Wait):
            return [*at, JourneyMember.next_due_at <= self.now]
        over = JourneyMember.next_due_at <= self.now
        if step.interaction is not None:
            over = or_(over, self._interacted(step.interaction.step, step.interaction.kind))
        return [*at, JourneyMember.step_started_at.is_not(None), over]

    def _start_wait(self, name: str, step: jd.Wait) -> None:
        """Members that just reached a wait start it now."""
        self._write(
            update(JourneyMember)
            .where(
                *self._at(name),
                JourneyMember.step_started_at.is_(None),
                JourneyMember.next_due_at <= self.now,
            )
            .values(step_started_at=self.now, next_due_at=jd.due_after(step, self.now))
        )
        self.db.commit()

    def _take_together(self, name: str, step: Any, due: list[ColumnElement[bool]]) -> int:
        if isinstance(step, jd.SendEmail):
            return self._email_together(name, step, due)
        if isinstance(step, jd.Wait):
            outcome: ColumnElement[Any] = literal("waited")
            if step.interaction is not None:
                outcome = case(
                    (
                        self._interacted(step.interaction.step, step.interaction.kind),
                        literal("interaction"),
                    ),
                    else_=literal("timeout"),
                )
            chosen = select(JourneyMember.id, outcome.label("outcome")).where(*due)
            return self._pass_on(name, chosen, lambda _outcome: step.next)
        if isinstance(step, jd.Condition):
            outcome = case((self.predicate(step.test), literal("yes")), else_=literal("no"))
            chosen = (
                select(JourneyMember.id, outcome.label("outcome"))
                .join(Contact, Contact.id == JourneyMember.contact_id)
                .where(*due)
            )
            return self._pass_on(name, chosen, lambda o: step.yes if o == "yes" else step.no)
        assert isinstance(step, jd.End)  # only where a journey starts with its end
        return self._leave(due, DONE, at=name)

    def _pass_on(self, name: str, chosen: Any, target: Any) -> int:
        """Move on the members ``chosen`` selects (member id, outcome) to the step
        ``target(outcome)`` names (done: at its end step, or where the path stops), and log
        the step for exactly those members with their outcome: one UPDATE … RETURNING
        feeding the INSERT, so what moved and what is logged are the same rows."""
        picked = chosen.subquery()
        outcomes = ("waited", "interaction", "timeout", "yes", "no", "queued", "suppressed")
        goes = {o: target(o) for o in outcomes}
        ends = {
            o
            for o, t in goes.items()
            if t is None or isinstance(self.definition.steps.get(t), jd.End)
        }

        def by_outcome(value: Any) -> Any:
            choices = {value(o) for o in outcomes}
            if len(choices) == 1:
                return literal(choices.pop())
            return case(
                *((picked.c.outcome == literal(o), literal(value(o))) for o in outcomes),
                else_=None,
            )

        moved = (
            update(JourneyMember)
            .where(JourneyMember.id == picked.c.id)
            .values(
                outcome=picked.c.outcome,
                step=by_outcome(lambda o: goes[o]),
                status=by_outcome(lambda o: DONE if o in ends else ACTIVE),
                next_due_at=by_outcome(lambda o: None if o in ends else self.now),
                finished_at=by_outcome(lambda o: self.now if o in ends else None),
                step_started_at=None,
            )
            .returning(
                JourneyMember.journey_id,
                JourneyMember.id,
                JourneyMember.contact_id,
                JourneyMember.entry,
                JourneyMember.outcome,
            )
        )
        columns = ["journey_id", "member_id", "contact_id", "entry", "step", "at", "outcome"]
        at = literal(self.now, type_=JourneyAction.at.type)
        if self.db.get_bind().dialect.name == "postgresql":
            # One statement: the UPDATE as a data-modifying CTE.
            done = moved.cte("moved")
            taken = self._write(
                insert(JourneyAction).from_select(
                    columns,
                    select(
                        done.c.journey_id, done.c.id, done.c.contact_id, done.c.entry,
                        literal(name), at, done.c.outcome,
                    ),
                )
            )  # fmt: skip
        else:
            rows = self.db.connection().execute(moved).all()
            if rows:
                self.db.connection().execute(
                    insert(JourneyAction),
                    [
                        dict(zip(columns, (j, m, c, e, name, self.now, o), strict=True))
                        for j, m, c, e, o in rows
                    ],
                )
            taken = len(rows)
        self.report.actions += taken
        return taken

    def _email_together(self, name: str, step: jd.SendEmail, due: list[ColumnElement[bool]]) -> int:
        """A delivery per due member (suppressed ones with their reason), then the members
        with one move on, logged as queued or suppressed."""
        send = self.sends[name]
        message = self.db.get(EmailMessage, send.message_id)
        topic = message.topic if message is not None else ""
        members = (
            select(
                Contact.id.label("contact_id"),
                JourneyMember.entry,
                Contact.email,
                audience_service.reason_column(topic),
            )
            .join(Contact, Contact.id == JourneyMember.contact_id)
            .where(*due)
            .subquery()
        )
        made = self._write(
            insert(EmailDelivery).from_select(
                [
                    "send_id",
                    "contact_id",
                    "entry",
                    "email",
                    "state",
                    "reason",
                    "detail",
                    "attempts",
                ],
                select(
                    literal(send.id),
                    members.c.contact_id,
                    members.c.entry,
                    members.c.email,
                    case((members.c.reason.is_(None), literal(QUEUED)), else_=literal(SUPPRESSED)),
                    members.c.reason,
                    literal(""),
                    literal(0),
                ),
            )
        )
        if not made:
            return 0
        outcome = case(
            (EmailDelivery.state == SUPPRESSED, literal("suppressed")), else_=literal("queued")
        )
        chosen = (
            select(JourneyMember.id, outcome.label("outcome"))
            .join(
                EmailDelivery,
                and_(
                    EmailDelivery.send_id == send.id,
                    EmailDelivery.contact_id == JourneyMember.contact_id,
                    EmailDelivery.entry == JourneyMember.entry,
                ),
            )
            .where(*due)
        )
        taken = self._pass_on(name, chosen, lambda _outcome: step.next)
        self._write(
            update(EmailSend)
            .where(EmailSend.id == send.id)
            .values(recipients=func.coalesce(EmailSend.recipients, 0) + made)
        )
        self.report.sends.add(send.id)
        return taken

    # -------------------------------------------------------------- one by one

    def _one_by_one(self) -> int:
        """Members due at a step taken one at a time, a batch per transaction."""
        names = [n for n, s in self.definition.steps.items() if isinstance(s, ONE_BY_ONE)]
        if not names:
            return 0
        moved = 0
        while True:
            rows = self.db.execute(
                select(JourneyMember, Contact)
                .join(Contact, Contact.id == JourneyMember.contact_id)
                .where(
                    JourneyMember.journey_id == self.journey.id,
                    JourneyMember.status == ACTIVE,
                    JourneyMember.step.in_(names),
                    JourneyMember.next_due_at <= self.now,
                )
                .order_by(JourneyMember.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return moved
            for member, contact in rows:
                self._walk(member, contact)
            self.db.commit()
            moved += len(rows)

    def _act(self, member: JourneyMember, step: str, outcome: str, **detail: Any) -> None:
        self.db.add(
            JourneyAction(
                journey_id=member.journey_id,
                member_id=member.id,
                contact_id=member.contact_id,
                entry=member.entry,
                step=step,
                at=self.now,
                outcome=outcome,
                detail=detail or None,
            )
        )
        member.outcome = outcome
        self.report.actions += 1

    def _walk(self, member: JourneyMember, contact: Contact) -> None:
        """Take steps one at a time until one that is taken together, or the end."""
        name: str | None = member.step
        step: Any = None
        while name is not None:
            step = self.definition.steps.get(name)
            if not isinstance(step, ONE_BY_ONE):
                break
            if isinstance(step, jd.CreateLead):
                lead = self._lead(contact, step)
                self._act(member, name, "lead", lead_id=lead.id)
            elif isinstance(step, jd.ListChange):
                self._list(contact, step)
                self._act(member, name, step.type)
            else:
                self._field(contact, step)
                self._act(member, name, "updated", field=step.field)
            name = step.next
        if name is None or isinstance(step, jd.End):
            member.status, member.step, member.next_due_at = DONE, name, None
            member.finished_at, member.step_started_at = self.now, None
        else:
            member.step, member.step_started_at, member.next_due_at = name, None, self.now

    def _lead(self, contact: Contact, step: jd.CreateLead) -> Lead:
        """A lead owned by the journey's owner (B7), in the owner's business unit."""
        journey = self.journey
        lead = Lead(
            first_name=contact.first_name,
            last_name=contact.last_name,
            email=contact.email,
            company=contact.company,
            job_title=contact.job_title,
            phone=contact.phone,
            country=contact.country,
            custom={},
            topic=step.topic or journey.name,
            status="new",
            source="journey",
            contact_id=contact.id,
            owner_type=journey.owner_type,
            owner_id=journey.owner_id,
            owning_bu_id=journey.owning_bu_id,
        )
        self.db.add(lead)
        self.db.flush()
        changes.record(self.db, changes.LEAD, contact_ids=[lead.id])
        return lead

    def _list(self, contact: Contact, step: jd.ListChange) -> None:
        found = self.db.get(MarketingListMember, (step.list_id, contact.id))
        if step.type == "add_to_list" and found is None:
            self.db.add(MarketingListMember(list_id=step.list_id, contact_id=contact.id))
        elif step.type == "remove_from_list" and found is not None:
            self.db.delete(found)
        else:
            return
        changes.record(
            self.db, changes.MARKETING_LIST, ref_id=step.list_id, contact_ids=[contact.id]
        )

    def _field(self, contact: Contact, step: jd.UpdateField) -> None:
        if step.field.startswith("custom."):
            custom = dict(contact.custom or {})
            key = step.field.removeprefix("custom.")
            if step.value is None:
                custom.pop(key, None)
            else:
                custom[key] = step.value
            contact.custom = custom
        else:
            setattr(contact, step.field, step.value if step.value is not None else "")
        contact.modified_at = self.now
        changes.record(self.db, changes.CONTACT, contact_ids=[contact.id])


def _tree_order(definition: jd.Definition) -> list[str]:
    """The steps from the start, each before the ones it leads to (breadth first)."""
    order: list[str] = []
    queue = [definition.start] if definition.start in definition.steps else []
    while queue:
        name = queue.pop(0)
        if name in order or name not in definition.steps:
            continue
        order.append(name)
        queue.extend(jd.following(definition.steps[name]))
    return order
