"""The journey engine (on the worker): contacts enter live journeys from their audience,
and each member due at its step takes it — an email queued, a wait, a branch, a lead, a
list or field change — until a wait that is not over, or the end.

Every step a member takes is a ``JourneyAction`` row (unique per journey, contact, entry
and step) written in the same transaction as its effect, so a step happens at most once
however often a worker dies or two workers try. Waits are rows with a due time, never a
sleeping thread; the clock is a parameter (``now``), which the tests move.

Scope (B6) is the one fixed when the journey went live (``live_scope_bu_id``): a member
of its audience in another business unit is recorded as *out of scope* and never
processed, whoever owns the journey now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, union
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
    COMPLETED,
    DONE,
    EXITED,
    LIVE,
    OUT_OF_SCOPE,
    Journey,
    JourneyAction,
    JourneyMember,
)
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingListMember, Segment

log = logging.getLogger(__name__)
BATCH = 500  # members advanced per transaction


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
        _Pass(db, journey, now, report, batch).run()


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
                .where(Contact.id.in_(select(audience.c[0])), Contact.id > last)
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
        return self._triggered(self.definition.trigger)

    def test(self, contact: Contact, test: jd.Test) -> bool:
        """A condition's answer for one contact, now."""
        return self._test(contact, test)

    # -------------------------------------------------------------- audience

    def _audience(self) -> Any:
        """The contact ids of the audience (or of those the trigger has fired for)."""
        if self.definition.trigger is not None:
            return self._triggered(self.definition.trigger).subquery()
        audience = self.definition.audience
        parts: list[Any] = []
        for segment_id in audience.segments:
            segment = self.db.get(Segment, segment_id)
            if segment is not None:
                stmt, _ = segment_service.membership_statement(db=self.db, segment=segment)
                parts.append(stmt.with_only_columns(Contact.id))
        for list_id in audience.lists:
            parts.append(
                select(MarketingListMember.contact_id).where(MarketingListMember.list_id == list_id)
            )
        if not parts:
            return None
        return union(*parts).subquery()

    def _triggered(self, trigger: jd.Trigger) -> Any:
        if trigger.added_to_list is not None:
            since = self.journey.live_at or self.now
            return select(MarketingListMember.contact_id).where(
                MarketingListMember.list_id == trigger.added_to_list,
                MarketingListMember.added_at >= since,
            )
        if trigger.attended is not None:
            return select(EventAttendance.contact_id).where(
                EventAttendance.event_id == trigger.attended,
                EventAttendance.contact_id.is_not(None),
                participation.is_attended(),
            )
        event_id = trigger.registered if trigger.registered is not None else trigger.cancelled
        counted = (
            participation.is_registered()
            if trigger.registered is not None
            else participation.is_cancelled()
        )
        return select(EventRegistration.contact_id).where(
            EventRegistration.event_id == event_id,
            EventRegistration.contact_id.is_not(None),
            counted,
        )

    def _excluded(self) -> Any:
        parts = []
        for segment_id in self.definition.audience.exclude_segments:
            segment = self.db.get(Segment, segment_id)
            if segment is not None:
                stmt, _ = segment_service.membership_statement(db=self.db, segment=segment)
                parts.append(Contact.id.in_(stmt.with_only_columns(Contact.id)))
        return or_(*parts) if parts else None

    def _interacted(self, contact: Contact, step: str, kind: str) -> bool:
        send = self.sends.get(step)
        if send is None:
            return False
        conditions = [
            EmailInteraction.send_id == send.id,
            EmailInteraction.contact_id == contact.id,
            EmailInteraction.kind == kind,
        ]
        if kind == OPENED:
            conditions.append(EmailInteraction.machine.is_(False))  # a person's open
        return bool(self.db.scalar(select(exists().where(*conditions))))

    def _test(self, contact: Contact, test: jd.Test) -> bool:
        db = self.db
        if test.opened or test.clicked:
            asked = test.opened or test.clicked or ""
            return self._interacted(contact, asked, "opened" if test.opened else "clicked")
        if test.registered is not None:
            return bool(
                db.scalar(
                    select(
                        exists().where(
                            EventRegistration.event_id == test.registered,
                            EventRegistration.contact_id == contact.id,
                            participation.is_registered(),
                        )
                    )
                )
            )
        if test.attended is not None:
            seconds = db.scalar(
                select(func.coalesce(func.sum(EventAttendance.total_seconds), 0)).where(
                    EventAttendance.event_id == test.attended,
                    EventAttendance.contact_id == contact.id,
                    participation.is_attended(),
                )
            )
            return bool(seconds) and int(seconds or 0) >= test.min_minutes * 60
        if test.segment is not None:
            segment = db.get(Segment, test.segment)
            if segment is None:
                return False
            stmt, _ = segment_service.membership_statement(db=db, segment=segment)
            return bool(db.scalar(select(exists(stmt.where(Contact.id == contact.id)))))
        assert test.field is not None
        value = _field_value(contact, test.field)
        text = "" if value is None else str(value)
        if test.op == "empty":
            return text == ""
        if test.op == "not_empty":
            return text != ""
        if test.op == "contains":
            return test.value.casefold() in text.casefold()
        same = text.casefold() == test.value.casefold()
        return same if test.op == "equals" else not same


class _Pass(Walker):
    def __init__(
        self, db: Session, journey: Journey, now: datetime, report: TickReport, batch: int
    ) -> None:
        super().__init__(db, journey, jd.parse(journey.definition), now)
        self.report, self.batch = report, batch

    def run(self) -> None:
        self._enter()
        while True:
            members = self._due()
            if not members:
                return
            out = self._excluded_among([c.id for _m, c in members if c is not None])
            try:
                for member, contact in members:
                    self._walk(member, contact, out)
                self.db.commit()
            except IntegrityError:
                # Another worker took one of these steps first (the action log is unique
                # per journey, contact, entry and step): leave the batch to the next pass.
                self.db.rollback()
                log.warning("journey %s: a step was taken by another worker", self.journey.id)
                return

    # -------------------------------------------------------------- entering

    def _enter(self) -> None:
        audience = self._audience()
        if audience is None:
            return
        journey = self.journey
        already = exists().where(
            JourneyMember.journey_id == journey.id, JourneyMember.contact_id == Contact.id
        )
        conditions = [Contact.id.in_(select(audience.c[0])), ~already]
        excluded = self._excluded()
        if excluded is not None:
            conditions.append(~excluded)
        in_scope = (
            Contact.owning_bu_id == journey.live_scope_bu_id
            if journey.live_scope_bu_id is not None
            else literal(True)
        )
        now = literal(self.now, type_=JourneyMember.entered_at.type)
        rows = select(
            literal(journey.id),
            Contact.id,
            literal(1),
            case((in_scope, literal(ACTIVE)), else_=literal(OUT_OF_SCOPE)),
            case((in_scope, literal(self.definition.start)), else_=None),
            case((in_scope, now), else_=None),
            now,
            case((in_scope, None), else_=now),
            case(
                (in_scope, literal("")),
                else_=literal("its business unit is not the one the journey is scoped to"),
            ),
        ).where(*conditions)
        result = self.db.connection().execute(
            insert(JourneyMember)
            .from_select(
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
            .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
        )
        self.report.entered += max(result.rowcount or 0, 0)
        self.db.commit()

    # -------------------------------------------------------------- advancing

    def _due(self) -> list[tuple[JourneyMember, Contact | None]]:
        """The next members due now: their due time has come, or the interaction a wait
        of theirs waits for has happened."""
        journey = self.journey
        waiting_for = [
            and_(
                JourneyMember.step == name,
                exists().where(
                    EmailInteraction.send_id == self.sends[step.interaction.step].id,
                    EmailInteraction.contact_id == JourneyMember.contact_id,
                    EmailInteraction.kind == step.interaction.kind,
                    EmailInteraction.machine.is_(False),
                ),
            )
            for name, step in self.definition.steps.items()
            if isinstance(step, jd.Wait)
            and step.interaction is not None
            and step.interaction.step in self.sends
        ]
        rows = self.db.execute(
            select(JourneyMember, Contact)
            .outerjoin(Contact, Contact.id == JourneyMember.contact_id)
            .where(
                JourneyMember.journey_id == journey.id,
                JourneyMember.status == ACTIVE,
                or_(JourneyMember.next_due_at <= self.now, *waiting_for),
            )
            .order_by(JourneyMember.id)
            .limit(self.batch)
        ).all()
        return [(m, c) for m, c in rows]

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
        self.report.actions += 1

    def _leave(self, member: JourneyMember, status: str, why: str = "") -> None:
        member.status, member.step, member.next_due_at = status, None, None
        member.finished_at, member.reason = self.now, why

    def _excluded_among(self, ids: list[int]) -> set[int]:
        """Which of a batch's contacts are in an excluded segment now (one query)."""
        excluded = self._excluded()
        if excluded is None or not ids:
            return set()
        return set(self.db.scalars(select(Contact.id).where(Contact.id.in_(ids), excluded)))

    def _walk(self, member: JourneyMember, contact: Contact | None, out: set[int]) -> None:
        """Take steps until a wait that is not over, or the end of the path."""
        if contact is None:
            self._leave(member, EXITED, "the contact was deleted")
            return
        if contact.id in out:
            self._leave(member, EXITED, "excluded")
            return
        name = member.step
        for _ in range(len(self.definition.steps) + 1):  # a tree: each step at most once
            step = self.definition.steps.get(name) if name else None
            if step is None or isinstance(step, jd.End):
                if step is not None:
                    self._act(member, name or "", "end")
                self._leave(member, DONE)
                return
            assert name is not None
            moving, name = self._take(member, contact, name, step)
            if not moving:
                return  # waiting
            member.step, member.step_started_at, member.next_due_at = name, None, self.now
        self._leave(member, DONE)

    def _take(
        self, member: JourneyMember, contact: Contact, name: str, step: Any
    ) -> tuple[bool, str | None]:
        """Apply one step: (False, …) while it waits, else (True, the next step or None
        for the end)."""
        if isinstance(step, jd.Wait):
            return self._wait(member, contact, name, step)
        nxt: str | None
        if isinstance(step, jd.SendEmail):
            self._email(member, contact, name, step)
            nxt = step.next
        elif isinstance(step, jd.Condition):
            answer = self._test(contact, step.test)
            self._act(member, name, "yes" if answer else "no")
            nxt = step.yes if answer else step.no
        elif isinstance(step, jd.CreateLead):
            lead = self._lead(contact, step)
            self._act(member, name, "lead", lead_id=lead.id)
            nxt = step.next
        elif isinstance(step, jd.ListChange):
            self._list(contact, step)
            self._act(member, name, step.type)
            nxt = step.next
        elif isinstance(step, jd.UpdateField):
            self._field(contact, step)
            self._act(member, name, "updated", field=step.field)
            nxt = step.next
        else:
            raise AssertionError(f"unknown step {step!r}")
        return True, nxt

    def _wait(
        self, member: JourneyMember, contact: Contact, name: str, step: jd.Wait
    ) -> tuple[bool, str | None]:
        if member.step_started_at is None:
            member.step_started_at = self.now  # the wait starts when the member reaches it
        due = jd.due_after(step, member.step_started_at)
        if step.interaction is not None and self._interacted(
            contact, step.interaction.step, step.interaction.kind
        ):
            self._act(member, name, "interaction", kind=step.interaction.kind)
            return True, step.next
        if due > self.now:
            member.next_due_at = due
            return False, name
        self._act(member, name, "timeout" if step.interaction is not None else "waited")
        return True, step.next

    def _email(
        self, member: JourneyMember, contact: Contact, name: str, step: jd.SendEmail
    ) -> None:
        send = self.sends[name]
        message = self.db.get(EmailMessage, send.message_id)
        topic = message.topic if message is not None else ""
        reason = self.db.scalar(
            select(audience_service.reason_column(topic)).where(Contact.id == contact.id)
        )
        delivery = EmailDelivery(
            send_id=send.id,
            contact_id=contact.id,
            email=contact.email,
            state=SUPPRESSED if reason else QUEUED,
            reason=reason,
            detail="",
            attempts=0,
        )
        self.db.add(delivery)
        self.db.flush()
        send.recipients = (send.recipients or 0) + 1
        self._act(member, name, "suppressed" if reason else "queued", delivery_id=delivery.id)
        if not reason:
            self.report.sends.add(send.id)

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


def _field_value(contact: Contact, name: str) -> Any:
    if name.startswith("custom."):
        return (contact.custom or {}).get(name.removeprefix("custom."))
    return getattr(contact, name)
