"""Merging two records of the same person (SPEC B8): the master keeps its id and gains the
other's history; the other is deleted, leaving a tombstone that names the master.

A contact's registrations, attendance, list memberships, email deliveries and
interactions, journey passes, leads, form submissions, page visits and LinkedIn leads move
to the master (a lead's form submissions and LinkedIn leads too). Where the master already has the
same thing (a delivery of the same send, a pass of the same journey) the master's is kept
and the other's stays with the tombstone, anonymous, so aggregates do not change. Segment
memberships are recomputed from the master's merged fields. Merging needs Write on both
records and is audited in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import and_, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.access.models import RecordShare
from gatherly.capture.models import CaptureInteraction, FormSubmission
from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import Lead, PersonMixin, Tombstone
from gatherly.core import audit, changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.email.models import EmailDelivery, EmailInteraction
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.journey.models import JourneyAction, JourneyMember
from gatherly.linkedin.models import LinkedInLead
from gatherly.scoring.models import LeadScore
from gatherly.segment.models import MarketingListMember, SegmentMember

FIELDS = contact_service.PERSON_FIELDS


@dataclass(frozen=True)
class Merged:
    """The master after the merge, and what moved to it."""

    master: PersonMixin
    merged_id: int
    fields: list[str]
    moved: dict[str, int] = field(default_factory=dict)


def merge(
    *,
    db: Session,
    principal: access.Principal,
    record_type: str,
    master_id: int,
    duplicate_id: int,
    take: Sequence[str] = (),
) -> Merged:
    """Merge ``duplicate_id`` into ``master_id``. The master keeps its values except the
    fields named in ``take`` (copied from the duplicate) and its blank fields (filled from
    the duplicate); custom properties are united, the master's winning."""
    kind = contact_service.CONTACT if record_type == "contact" else contact_service.LEAD
    if record_type not in matching.MODELS:
        raise ValidationFailed("record type must be contact or lead", field="record_type")
    if master_id == duplicate_id:
        raise ValidationFailed("a record cannot be merged into itself", field="duplicate_id")
    unknown = sorted(set(take) - set(FIELDS) - {"custom"})
    if unknown:
        raise ValidationFailed(
            f"cannot take {unknown[0]!r}; fields are {', '.join(FIELDS)}, custom", field="take"
        )
    master = contact_service.get(
        db=db, principal=principal, kind=kind, record_id=master_id, privilege=Privilege.WRITE
    )
    other = _get(db, principal, kind, duplicate_id)
    before = {name: getattr(master, name) for name in (*FIELDS, "custom")}
    emails = {master.email, other.email}
    matching.hold(db, record_type=record_type, emails=emails)  # first, as imports do
    changed = []
    for name in FIELDS:
        theirs = getattr(other, name)
        if theirs in (None, ""):
            continue
        wanted = name in take or getattr(master, name) in (None, "")
        if wanted and getattr(master, name) != theirs:
            setattr(master, name, theirs)
            changed.append(name)
    custom = {**other.custom, **master.custom}
    if "custom" in take:
        custom = {**master.custom, **other.custom}
    if custom != master.custom:
        master.custom = custom
        changed.append("custom")
    master.modified_at, master.modified_by_id = utcnow(), principal.user_id
    moved = _move_contact(db, master.id, other.id) if record_type == "contact" else {}
    moved.update(_move_captured(db, record_type, master.id, other.id))
    if isinstance(master, Lead) and master.contact_id is None:
        master.contact_id = cast(Lead, other).contact_id
    label = contact_service._label(other)
    db.add(
        Tombstone(
            record_type=record_type,
            record_id=other.id,
            email=other.email,
            owning_bu_id=other.owning_bu_id,
            deleted_by_id=principal.user_id,
            merged_into_id=master.id,
        )
    )
    db.execute(
        delete(RecordShare).where(
            RecordShare.record_type == record_type, RecordShare.record_id == other.id
        )
    )
    db.delete(other)
    db.flush()
    matching.rekey(db, record_type=record_type, emails=list(emails))
    if record_type == "contact":
        changes.record(db, changes.CONTACT, contact_ids=[master.id, duplicate_id])
    else:
        changes.record(db, changes.LEAD, contact_ids=[master.id])
    audit.log(
        db,
        actor=principal,
        action=f"{record_type}.merge",
        target_type=record_type,
        target_id=str(master.id),
        target_label=contact_service._label(master),
        before={name: before[name] for name in changed},
        after={
            **{name: getattr(master, name) for name in changed},
            "merged": {"id": duplicate_id, "label": label},
            "moved": moved,
        },
    )
    return Merged(master=master, merged_id=duplicate_id, fields=changed, moved=moved)


def _get(
    db: Session, principal: access.Principal, kind: contact_service.Kind, record_id: int
) -> PersonMixin:
    """The duplicate, with its errors naming ``duplicate_id``."""
    found = access.get(db, principal=principal, record_type=kind.record_type, record_id=record_id)
    if found is None:
        raise NotFound(f"{kind.label} {record_id} not found", field="duplicate_id")
    access.require(db, principal, Privilege.WRITE, kind.record_type, found)
    return cast(PersonMixin, found)


def _move_captured(db: Session, record_type: str, master: int, other: int) -> dict[str, int]:
    """Form submissions, page visits and LinkedIn leads that name the duplicate."""
    moved: dict[str, int] = {}
    column = "contact_id" if record_type == "contact" else "lead_id"
    models: list[Any] = [FormSubmission, LinkedInLead]
    if record_type == "contact":
        models.append(CaptureInteraction)
    for model in models:
        done = db.execute(
            update(model)
            .where(getattr(model, column) == other)
            .values({column: master})
            .execution_options(synchronize_session=False)
        )
        if done.rowcount:  # type: ignore[attr-defined]
            name = {FormSubmission: "form_submissions", LinkedInLead: "linkedin_leads"}.get(
                model, "capture_interactions"
            )
            moved[name] = done.rowcount  # type: ignore[attr-defined]
    return moved


def _move_contact(db: Session, master: int, other: int) -> dict[str, int]:
    """Give the duplicate's history to the master; returns how many rows moved, by kind."""
    moved: dict[str, int] = {}

    def count(name: str, result: Any) -> None:
        if result.rowcount:
            moved[name] = moved.get(name, 0) + result.rowcount

    for name, model in (("registrations", EventRegistration), ("attendance", EventAttendance)):
        count(
            name,
            db.execute(
                update(model)
                .where(model.contact_id == other)
                .values(contact_id=master)
                .execution_options(synchronize_session=False)
            ),
        )
    count(
        "leads", db.execute(update(Lead).where(Lead.contact_id == other).values(contact_id=master))
    )
    # The leads' scores follow their leads; the duplicate's own scores go with it, and the
    # master is rescored with the history it now holds (the CONTACT change below).
    count(
        "lead_scores",
        db.execute(
            update(LeadScore)
            .where(LeadScore.contact_id == other, LeadScore.lead_id.is_not(None))
            .values(contact_id=master)
            .execution_options(synchronize_session=False)
        ),
    )

    mine = aliased(MarketingListMember)
    lists = select(
        MarketingListMember.list_id,
        literal(master),
        MarketingListMember.added_at,
        MarketingListMember.added_by_id,
    ).where(
        MarketingListMember.contact_id == other,
        ~exists().where(mine.list_id == MarketingListMember.list_id, mine.contact_id == master),
    )
    # INSERT … SELECT reports no row count on psycopg: count what it will copy first.
    copied = db.scalar(select(func.count()).select_from(lists.subquery())) or 0
    if copied:
        moved["list_memberships"] = copied
        db.execute(
            insert(MarketingListMember).from_select(
                ["list_id", "contact_id", "added_at", "added_by_id"], lists
            )
        )
    db.execute(delete(MarketingListMember).where(MarketingListMember.contact_id == other))
    db.execute(delete(SegmentMember).where(SegmentMember.contact_id == other))

    theirs = aliased(EmailDelivery)
    count(
        "email_deliveries",
        db.execute(
            update(EmailDelivery)
            .where(
                EmailDelivery.contact_id == other,
                ~exists().where(
                    theirs.contact_id == master,
                    theirs.send_id == EmailDelivery.send_id,
                    theirs.entry == EmailDelivery.entry,
                ),
            )
            .values(contact_id=master)
            .execution_options(synchronize_session=False)
        ),
    )
    moved_deliveries = select(EmailDelivery.id).where(EmailDelivery.contact_id == master)
    count(
        "email_interactions",
        db.execute(
            update(EmailInteraction)
            .where(
                EmailInteraction.contact_id == other,
                EmailInteraction.delivery_id.in_(moved_deliveries),
            )
            .values(contact_id=master)
            .execution_options(synchronize_session=False)
        ),
    )

    pass_ = aliased(JourneyMember)
    count(
        "journey_passes",
        db.execute(
            update(JourneyMember)
            .where(
                JourneyMember.contact_id == other,
                ~exists().where(
                    and_(
                        pass_.contact_id == master,
                        pass_.journey_id == JourneyMember.journey_id,
                        pass_.entry == JourneyMember.entry,
                    )
                ),
            )
            .values(contact_id=master)
            .execution_options(synchronize_session=False)
        ),
    )
    db.execute(
        update(JourneyAction)
        .where(
            JourneyAction.contact_id == other,
            JourneyAction.member_id.in_(
                select(JourneyMember.id).where(JourneyMember.contact_id == master)
            ),
        )
        .values(contact_id=master)
        .execution_options(synchronize_session=False)
    )
    return moved
