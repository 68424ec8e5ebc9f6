"""Journeys: create, change, check, take live, pause, stop (SPEC B6, B7, M).

A journey is an owned record read and changed through the access engine. Its definition
(``journey.definition``) may change freely while it is a draft; once live, only its end
time and its exclusions may (anything else: copy it). Going live checks every step, fixes
its scope (B6: the scope, and for a business-unit scope the owner's unit at that moment),
and opens a send for each email step; the engine (``journey.engine``) does the rest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core import audit
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, page_request, paginate
from gatherly.core.timezones import known_zone
from gatherly.email import insights as email_insights
from gatherly.email import service as email_service
from gatherly.email.models import DRAFT as MESSAGE_DRAFT
from gatherly.email.models import IN_USE, QUEUED, SENDING, EmailDelivery, EmailSend
from gatherly.event import service as event_service
from gatherly.journey import definition as jd
from gatherly.journey.models import (
    ACTIVE,
    AFTER_FINISH,
    DONE,
    DRAFT,
    EXITED,
    LIVE,
    MEMBER_STATES,
    ONCE,
    PAUSED,
    STOPPED,
    Journey,
    JourneyAction,
    JourneyMember,
)
from gatherly.org.directory import load_principal
from gatherly.scoring import service as scoring_service
from gatherly.segment import service as segment_service
from gatherly.segment.models import SCOPE_BUSINESS_UNIT, SCOPE_ORGANIZATION

JOURNEY = "journey"
SCOPES = (SCOPE_ORGANIZATION, SCOPE_BUSINESS_UNIT)


def get_journey(
    *,
    db: Session,
    principal: access.Principal,
    journey_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> Journey:
    """A journey the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(
        db, principal, JOURNEY, journey_id, noun="journey", privilege=privilege, field=field
    )
    return cast(Journey, found)


def _check_scope(principal: access.Principal, scope: str) -> None:
    if scope not in SCOPES:
        raise ValidationFailed("scope is 'organization' or 'business_unit'", field="scope")
    if scope == SCOPE_ORGANIZATION and not segment_service.may_choose_organization(
        principal, JOURNEY
    ):
        raise Forbidden(
            "only users with organization-level create and write privileges on journeys may "
            "choose organization scope; your journeys process their owner's business unit",
            field="scope",
        )


def _check_times(start_at: datetime | None, end_at: datetime | None, zone: str) -> None:
    if not known_zone(zone):
        raise ValidationFailed(
            f"{zone!r} is not a time zone (e.g. Europe/Berlin)", field="time_zone"
        )
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise ValidationFailed("the end comes before the start", field="end_at")


def create_journey(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    definition: dict[str, Any] | None = None,
    description: str = "",
    scope: str = SCOPE_BUSINESS_UNIT,
    re_entry: str = ONCE,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    time_zone: str = "UTC",
    owner: OwnerRef | None = None,
) -> Journey:
    """A draft journey owned by ``owner`` (default: the caller). Its definition is
    checked for shape now and for everything else when it goes live."""
    columns = owned.new_columns(db, principal, JOURNEY, owner)
    _check_scope(principal, scope)
    _check_times(start_at, end_at, time_zone)
    if re_entry not in (ONCE, AFTER_FINISH):
        raise ValidationFailed("re_entry is 'once' or 'after_finish'", field="re_entry")
    parsed = jd.parse(definition or {})
    row = Journey(
        name=name,
        description=description,
        definition=parsed.model_dump(mode="json", exclude_none=True),
        scope=scope,
        re_entry=re_entry,
        start_at=start_at,
        end_at=end_at,
        time_zone=time_zone,
        state=DRAFT,
        **columns,
    )
    db.add(row)
    db.flush()
    return row


SAFE_WHILE_LIVE = frozenset({"end_at", "description"})


def update_journey(
    *, db: Session, principal: access.Principal, journey_id: int, changes: dict[str, Any]
) -> Journey:
    """Change the fields given (needs Write). A draft takes any change; a live or paused
    journey only its end time, its description and more exclusions (copy it for more)."""
    row = get_journey(db=db, principal=principal, journey_id=journey_id, privilege=Privilege.WRITE)
    changes = dict(changes)
    for key in ("name", "scope", "re_entry", "time_zone"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key.replace('_', ' ')} cannot be empty", field=key)
    if changes.get("description", "") is None:
        changes["description"] = ""
    if "definition" in changes and changes["definition"] is None:
        changes["definition"] = {}
    if row.state in (STOPPED, "completed"):
        raise Conflict(f"this journey is {row.state}: copy it to run it again", field="state")
    if row.state != DRAFT:
        _live_change(row, changes)
    if "scope" in changes:
        _check_scope(principal, changes["scope"])
    if "re_entry" in changes and changes["re_entry"] not in (ONCE, AFTER_FINISH):
        raise ValidationFailed("re_entry is 'once' or 'after_finish'", field="re_entry")
    if "definition" in changes:
        changes["definition"] = jd.parse(changes["definition"]).model_dump(
            mode="json", exclude_none=True
        )
    for key, value in changes.items():
        setattr(row, key, value)
    _check_times(row.start_at, row.end_at, row.time_zone)
    if not row.name.strip():
        raise ValidationFailed("name cannot be empty", field="name")
    owned.touch(row, principal)
    db.flush()
    return row


def _live_change(row: Journey, changes: dict[str, Any]) -> None:
    refused = set(changes) - SAFE_WHILE_LIVE - {"definition"}
    if "definition" in changes:
        before = jd.parse(row.definition)
        after = jd.parse(changes["definition"])
        kept = set(before.audience.exclude_segments) <= set(after.audience.exclude_segments)
        same = (
            before.model_copy(
                update={
                    "audience": before.audience.model_copy(
                        update={"exclude_segments": after.audience.exclude_segments}
                    )
                }
            )
            == after
        )
        if not (kept and same):
            refused.add("definition")
    if refused == {"definition"} and not kept:
        raise Conflict(
            f"a {row.state} journey takes more exclusions, but cannot take one back: "
            "copy it to change more",
            field="definition",
        )
    if refused:
        field = sorted(refused)[0]
        raise Conflict(
            f"a {row.state} journey changes only its end time, description and exclusions "
            f"({field} cannot): copy it to change more",
            field=field,
        )


def list_journeys(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the journeys the caller may read, newest first."""
    where = Journey.state == state if state else None
    return owned.page(db, principal, Journey, JOURNEY, q=q, cursor=cursor, limit=limit, where=where)


def delete_journey(*, db: Session, principal: access.Principal, journey_id: int) -> None:
    """Delete a draft or stopped journey (needs Delete)."""
    row = get_journey(db=db, principal=principal, journey_id=journey_id, privilege=Privilege.DELETE)
    if row.state in (LIVE, PAUSED):
        raise Conflict(f"this journey is {row.state}: stop it before deleting it", field="state")
    db.delete(row)
    db.flush()


def copy_journey(*, db: Session, principal: access.Principal, journey_id: int) -> Journey:
    """A draft copy, owned by the caller."""
    source = get_journey(db=db, principal=principal, journey_id=journey_id)
    return create_journey(
        db=db,
        principal=principal,
        name=f"Copy of {source.name}"[:200],
        description=source.description,
        definition=copy.deepcopy(source.definition),
        scope=source.scope
        if segment_service.may_choose_organization(principal, JOURNEY)
        else SCOPE_BUSINESS_UNIT,
        re_entry=source.re_entry,
        end_at=source.end_at,
        time_zone=source.time_zone,
    )


# ------------------------------------------------------------------ going live


def _owner_principal(db: Session, row: Journey) -> access.Principal | None:
    """The owning user's principal (None for a team owner)."""
    return load_principal(db, row.owner_id) if row.owner_type == "user" else None


def check(*, db: Session, principal: access.Principal, journey_id: int) -> list[tuple[str, str]]:
    """What stands between the journey and going live, each problem naming its step:
    the tree (every path ends, every step reached), the audience (there is one, and the
    owner may read it), each email step's message (ready, its content setting resolves),
    and every list, segment and event a step names (the owner may read it)."""
    row = get_journey(db=db, principal=principal, journey_id=journey_id)
    parsed = jd.parse(row.definition)
    problems = jd.structure(parsed)
    readers = [p for p in (principal, _owner_principal(db, row)) if p is not None]
    audience = parsed.audience
    trigger = parsed.trigger
    if trigger is None and not audience.segments and not audience.lists:
        problems.append(
            ("definition.audience", "choose at least one segment or list, or a trigger")
        )
    if trigger is not None and (audience.segments or audience.lists):
        problems.append(
            (
                "definition.trigger",
                "a journey enters people from segments and lists or by a trigger, not both",
            )
        )

    def readable(kind: str, record_id: int, field: str) -> None:
        for reader in readers:
            try:
                if kind == "segment":
                    segment_service.get_segment(db=db, principal=reader, segment_id=record_id)
                elif kind == "list":
                    segment_service.get_list(db=db, principal=reader, list_id=record_id)
                elif kind == "scoring model":
                    scoring_service.get_model(db=db, principal=reader, model_id=record_id)
                else:
                    event_service.get_event(db=db, principal=reader, event_id=record_id)
            except NotFound:
                who = "you" if reader is principal else "its owner"
                problems.append((field, f"{kind} {record_id} is not one {who} may read"))
                return

    for segment_id in (*audience.segments, *audience.exclude_segments):
        readable("segment", segment_id, "definition.audience")
    for list_id in audience.lists:
        readable("list", list_id, "definition.audience")
    if trigger is not None:
        if trigger.added_to_list is not None:
            readable("list", trigger.added_to_list, "definition.trigger")
        if trigger.sales_ready is not None:
            readable("scoring model", trigger.sales_ready, "definition.trigger")
        for event_id in (trigger.registered, trigger.attended, trigger.cancelled):
            if event_id is not None:
                readable("event", event_id, "definition.trigger")
    for name, step in parsed.steps.items():
        where = f"definition.steps.{name}"
        if isinstance(step, jd.SendEmail):
            problems += _email_problems(db, readers, step.message_id, where)
        elif isinstance(step, jd.ListChange):
            readable("list", step.list_id, where)
        elif isinstance(step, jd.Condition):
            test = step.test
            if test.segment is not None:
                readable("segment", test.segment, where)
            for event_id in (test.registered, test.attended):
                if event_id is not None:
                    readable("event", event_id, where)
    return problems


def _email_problems(
    db: Session, readers: list[access.Principal], message_id: int, where: str
) -> list[tuple[str, str]]:
    for reader in readers:
        try:
            message = email_service.get_message(db=db, principal=reader, message_id=message_id)
        except NotFound:
            return [(where, f"email message {message_id} is not one its owner may read")]
    if message.state == MESSAGE_DRAFT:
        return [(where, f"the message “{message.name}” is a draft: make it ready first")]
    if email_service.content_setting_for(db=db, message=message) is None:
        return [(where, f"no content setting applies to the message “{message.name}”")]
    return []


def go_live(
    *, db: Session, principal: access.Principal, journey_id: int, now: datetime | None = None
) -> Journey:
    """Check the journey and take it live (needs Write; audited). Its scope is fixed now:
    with business unit scoping on, its own scope and, for a business-unit scope, the
    owner's unit at this moment (B6); with scoping off, organization."""
    row = get_journey(db=db, principal=principal, journey_id=journey_id, privilege=Privilege.WRITE)
    if row.state != DRAFT:
        raise Conflict(f"this journey is {row.state}, not a draft", field="state")
    problems = check(db=db, principal=principal, journey_id=journey_id)
    if problems:
        field, message = problems[0]
        more = f" (and {len(problems) - 1} more: see the check)" if len(problems) > 1 else ""
        raise ValidationFailed(f"{message}{more}", field=field)
    scope = row.scope if segment_service.scoping_on(db=db) else SCOPE_ORGANIZATION
    row.live_scope = scope
    row.live_scope_bu_id = row.owning_bu_id if scope == SCOPE_BUSINESS_UNIT else None
    row.live_owner_type, row.live_owner_id = row.owner_type, row.owner_id
    row.state, row.live_at = LIVE, now or utcnow()
    parsed = jd.parse(row.definition)
    for name, step in parsed.steps.items():
        if isinstance(step, jd.SendEmail):
            used = email_service.get_message(db=db, principal=principal, message_id=step.message_id)
            used.state = IN_USE
            db.add(
                EmailSend(
                    message_id=used.id,
                    segment_ids=[],
                    list_ids=[],
                    scheduled_at=row.live_at,
                    started_at=row.live_at,
                    state=SENDING,
                    recipients=0,
                    journey_id=row.id,
                    journey_step=name,
                    owner_type=row.owner_type,
                    owner_id=row.owner_id,
                    owning_bu_id=row.owning_bu_id,
                    created_by_id=principal.user_id,
                    modified_by_id=principal.user_id,
                )
            )
    owned.touch(row, principal)
    db.flush()
    audit.log(
        db,
        actor=principal,
        action="journey.live",
        target_type=JOURNEY,
        target_id=row.id,
        target_label=row.name,
        before={"state": DRAFT},
        after={"state": LIVE, "scope": scope, "scope_bu_id": row.live_scope_bu_id},
    )
    return row


def set_state(*, db: Session, principal: access.Principal, journey_id: int, state: str) -> Journey:
    """Pause a live journey, resume a paused one, or stop either (needs Write). A stopped
    journey's members leave it; what its email steps queued still goes out."""
    row = get_journey(db=db, principal=principal, journey_id=journey_id, privilege=Privilege.WRITE)
    allowed = {PAUSED: (LIVE,), LIVE: (PAUSED,), STOPPED: (LIVE, PAUSED)}
    if state not in allowed:
        raise ValidationFailed("state is 'paused', 'live' or 'stopped'", field="state")
    if row.state not in allowed[state]:
        raise Conflict(f"a {row.state} journey cannot become {state}", field="state")
    if state == STOPPED:
        finish(db, row, STOPPED, "the journey was stopped")
    row.state = state
    owned.touch(row, principal)
    db.flush()
    return row


def finish(db: Session, row: Journey, state: str, why: str) -> None:
    """End a journey (stopped, or completed at its end time): its active members exit."""
    now = utcnow()
    db.execute(
        update(JourneyMember)
        .where(JourneyMember.journey_id == row.id, JourneyMember.status == ACTIVE)
        .values(status=EXITED, finished_at=now, next_due_at=None, reason=why)
        .execution_options(synchronize_session=False)
    )
    for send in db.scalars(select(EmailSend).where(EmailSend.journey_id == row.id)):
        queued = db.scalar(
            select(EmailDelivery.id).where(
                EmailDelivery.send_id == send.id, EmailDelivery.state == QUEUED
            )
        )
        if queued is None and send.state == SENDING:
            send.state, send.finished_at = "done", now
    row.state = state


# ------------------------------------------------------------------ progress


@dataclass(frozen=True)
class Progress:
    """How many members are in each state, where the active ones are, and what each step
    did (outcome → count): the same full counts for whoever may read the journey (B11)."""

    journey: Journey
    members: dict[str, int]
    at_step: dict[str, int]
    steps: dict[str, dict[str, int]]
    ended: dict[str, int]  # members done at each end step
    # Each email step's send counts (those whose send the caller may read); the links and
    # the timeline are on the send's insights.
    emails: dict[str, email_insights.Insights]


def progress(*, db: Session, principal: access.Principal, journey_id: int) -> Progress:
    row = get_journey(db=db, principal=principal, journey_id=journey_id)
    by_status = dict(
        db.execute(
            select(JourneyMember.status, func.count())
            .where(JourneyMember.journey_id == row.id)
            .group_by(JourneyMember.status)
        ).all()
    )
    at_step = {
        step or "": n
        for step, n in db.execute(
            select(JourneyMember.step, func.count())
            .where(JourneyMember.journey_id == row.id, JourneyMember.status == ACTIVE)
            .group_by(JourneyMember.step)
        )
    }
    ended = {
        step or "": n
        for step, n in db.execute(
            select(JourneyMember.step, func.count())
            .where(
                JourneyMember.journey_id == row.id,
                JourneyMember.status == DONE,
                JourneyMember.step.is_not(None),
            )
            .group_by(JourneyMember.step)
        )
    }
    steps: dict[str, dict[str, int]] = {}
    for step, outcome, n in db.execute(
        select(JourneyAction.step, JourneyAction.outcome, func.count())
        .where(JourneyAction.journey_id == row.id)
        .group_by(JourneyAction.step, JourneyAction.outcome)
    ):
        steps.setdefault(step, {})[outcome] = n
    emails = {}
    for send in db.scalars(
        select(EmailSend).where(EmailSend.journey_id == row.id).order_by(EmailSend.id)
    ):
        try:
            found = email_insights.insights(
                db=db, principal=principal, send_id=send.id, detail=False
            )
        except NotFound:
            continue  # the send is not the caller's to read
        emails[send.journey_step or ""] = found
    return Progress(
        journey=row,
        members=by_status,
        at_step=at_step,
        steps=steps,
        ended=ended,
        emails=emails,
    )


@dataclass(frozen=True)
class Someone:
    """A contact in a journey's detail lists: named when the viewer may read it, else
    anonymous (``contact`` None, the time to the minute, nothing that tells who it is)."""

    contact: Contact | None
    status: str
    step: str | None
    outcome: str | None
    at: datetime


def people(
    *,
    db: Session,
    principal: access.Principal,
    journey_id: int,
    step: str | None = None,
    outcome: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Who took a step (``step``, and ``outcome``: a branch, queued, suppressed …), or who
    is in a state (``status``: active, done, exited, out_of_scope), a page at a time in
    the order it happened. Contacts the viewer may not read are anonymous (B11)."""
    page_request(ORDER, sort="id", cursor=cursor, limit=limit)  # a bad cursor, named first
    row = get_journey(db=db, principal=principal, journey_id=journey_id)
    if step is not None:
        stmt: Any = select(JourneyAction).where(
            JourneyAction.journey_id == row.id, JourneyAction.step == step
        )
        if outcome is not None:
            stmt = stmt.where(JourneyAction.outcome == outcome)
        page = paginate(
            db, stmt, id_column=JourneyAction.id, sortable={"id": JourneyAction.id},
            sort="id", cursor=cursor, limit=limit,
        )  # fmt: skip
        named: dict[int, Contact] = contact_service.readable_records(
            db=db,
            principal=principal,
            kind=contact_service.CONTACT,
            ids={a.contact_id for a in page.items if a.contact_id},
        )
        items = [
            _someone(named.get(a.contact_id or 0), "", a.step, a.outcome, a.at) for a in page.items
        ]
        return Page(items=items, next_cursor=page.next_cursor)
    if status not in MEMBER_STATES:
        raise ValidationFailed(
            f"name a step, or a status: {', '.join(MEMBER_STATES)}", field="status"
        )
    page = paginate(
        db,
        select(JourneyMember).where(JourneyMember.journey_id == row.id, JourneyMember.status == status),
        id_column=JourneyMember.id, sortable=ORDER, sort="id", cursor=cursor, limit=limit,
    )  # fmt: skip
    named = contact_service.readable_records(
        db=db,
        principal=principal,
        kind=contact_service.CONTACT,
        ids={m.contact_id for m in page.items if m.contact_id},
    )
    items = [
        _someone(
            named.get(m.contact_id or 0), m.status, m.step, None, m.finished_at or m.entered_at
        )
        for m in page.items
    ]
    return Page(items=items, next_cursor=page.next_cursor)


ORDER = {"id": JourneyMember.id}


def _someone(
    contact: Contact | None, status: str, step: str | None, outcome: str | None, at: datetime
) -> Someone:
    if contact is None:
        at = at.replace(second=0, microsecond=0)
    return Someone(contact=contact, status=status, step=step, outcome=outcome, at=at)
