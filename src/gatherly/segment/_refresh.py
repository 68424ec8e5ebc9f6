"""Materialising membership (refresh, full or partial) and explaining why a contact is or is not a member."""

from __future__ import annotations

import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union,
)
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core.db import UTCDateTime, utcnow
from gatherly.core.exceptions import Forbidden
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.org import directory
from gatherly.org import service as org_service
from gatherly.segment import criteria as crit
from gatherly.segment._common import (
    CONTACT,
    CONTACT_KIND,
    _context,
    _counts,
    _member_predicate,
    custom_plans,
    effective_scope,
    owner_principal,
    reference_names,
    scope_bu,
    scoping_on,
)
from gatherly.segment._members import membership_statement
from gatherly.segment._segments import get_segment
from gatherly.segment.models import (
    DYNAMIC,
    STATE_FRESH,
    STATIC,
    Segment,
    SegmentMember,
)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh changed."""

    segment_id: int
    added: int
    removed: int
    total: int
    seconds: float
    partial: bool


def refresh(
    *,
    db: Session,
    segment_id: int,
    restrict: ColumnElement[bool] | None = None,
    now: datetime | None = None,
) -> RefreshResult | None:
    """Bring a segment's materialised membership up to date, in SQL (two statements).

    ``restrict`` (a predicate on ``contact``) limits the work to the contacts a change
    touched: members among them that no longer match leave, matching ones join. Without it
    the whole membership is recomputed. Static segments are left alone (None).
    """
    # One refresh of a segment at a time (a user's refresh beside the worker's): the later
    # waits, then its statements see the earlier one's members. Side by side, both would
    # insert the same members (the later failing on the key), and one working from a
    # snapshot older than the other's could leave a member that no longer matches.
    segment = db.get(Segment, segment_id, with_for_update=True)
    if segment is None or segment.kind != DYNAMIC:
        return None
    started = clock.perf_counter()
    custom_plans(db=db)
    now = now or utcnow()
    bu_id = scope_bu(db=db, segment=segment)
    readers = (owner_principal(db=db, segment=segment),)
    pred = _member_predicate(db, crit.parse(segment.criteria), bu_id, readers, now)
    limit = [restrict] if restrict is not None else []
    members = (
        select(func.count())
        .select_from(SegmentMember)
        .where(SegmentMember.segment_id == segment.id)
    )
    before = int(db.execute(members).scalar_one())
    # NOT EXISTS, not NOT IN: PostgreSQL cannot hash a NOT IN sub-query larger than
    # work_mem and would rescan it for every member.
    still = select(literal(1)).where(Contact.id == SegmentMember.contact_id, pred, *limit)
    gone = delete(SegmentMember).where(SegmentMember.segment_id == segment.id, ~still.exists())
    if restrict is not None:
        gone = gone.where(SegmentMember.contact_id.in_(select(Contact.id).where(restrict)))
    db.execute(gone)
    middle = int(db.execute(members).scalar_one())
    already = exists().where(
        SegmentMember.segment_id == segment.id, SegmentMember.contact_id == Contact.id
    )
    db.execute(
        insert(SegmentMember).from_select(
            ["segment_id", "contact_id", "added_at"],
            select(literal(segment.id), Contact.id, literal(now, UTCDateTime())).where(
                pred, *limit, ~already
            ),
        )
    )
    # Counted, not read from rowcount: drivers do not all report it for INSERT … SELECT.
    total = int(db.execute(members).scalar_one())
    removed, added = before - middle, total - middle
    seconds = clock.perf_counter() - started
    segment.member_total = int(total)
    segment.scope_bu_id = bu_id
    segment.refreshed_at = now
    segment.refresh_seconds = seconds
    segment.refresh_state = STATE_FRESH
    segment.refresh_error = None
    db.flush()
    return RefreshResult(segment.id, added, removed, int(total), seconds, restrict is not None)


def refresh_for(
    *, db: Session, principal: access.Principal, segment_id: int
) -> tuple[Segment, RefreshResult | None]:
    """A full refresh asked for by a user (needs Read on the segment); the segment after it."""
    segment = get_segment(db=db, principal=principal, segment_id=segment_id)
    return segment, refresh(db=db, segment_id=segment.id)


def contacts_of_events(event_ids: Sequence[int]) -> ColumnElement[bool]:
    """Contacts with a registration or attendance at any of these events."""
    ids = list(event_ids)
    linked = union(
        select(EventRegistration.contact_id).where(
            EventRegistration.event_id.in_(ids), EventRegistration.contact_id.is_not(None)
        ),
        select(EventAttendance.contact_id).where(
            EventAttendance.event_id.in_(ids), EventAttendance.contact_id.is_not(None)
        ),
    )
    return Contact.id.in_(linked)


@dataclass(frozen=True)
class NodeVerdict:
    """One criteria node and whether the contact matches it."""

    path: str
    description: str
    matched: bool


@dataclass(frozen=True)
class ScopeVerdict:
    """The segment's scope as it applies, and whether the contact is inside it."""

    setting: str
    applied: str
    scoping_on: bool
    business_unit_id: int | None
    contact_business_unit_id: int
    passes: bool


@dataclass(frozen=True)
class ViewerVerdict:
    """Whether the viewer may read the contact, so sees it among the members."""

    user_id: int
    username: str
    can_read: bool
    access: str
    sees_it: bool


@dataclass(frozen=True)
class SegmentExplanation:
    """Why a contact is in or out of a segment, node by node, and who sees it."""

    segment_id: int
    contact_id: int
    member: bool
    materialised_member: bool
    refreshed_at: datetime | None
    why: str
    criteria: list[NodeVerdict]
    scope: ScopeVerdict
    viewer: ViewerVerdict


def explain(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    contact_id: int,
    viewer_id: int | None = None,
) -> SegmentExplanation:
    """Why a contact is in or out of a segment: each criteria node, the scope, the viewer.

    The caller must read both the segment and the contact. ``viewer_id`` (system
    administrators only) answers "would this user see it?".
    """
    segment = get_segment(db=db, principal=principal, segment_id=segment_id)
    contact = contact_service.get(
        db=db, principal=principal, kind=CONTACT_KIND, record_id=contact_id
    )
    viewer = principal
    if viewer_id is not None and viewer_id != principal.user_id:
        if not principal.is_system_admin:
            raise Forbidden(
                "only a system administrator may explain for another user", field="viewer_id"
            )
        org_service.get_user(db=db, user_id=viewer_id, field="viewer_id")
        viewer = directory.load_principal(db, viewer_id)
    nodes: list[NodeVerdict] = []
    matches = True
    if segment.kind == DYNAMIC:
        parsed = crit.parse(segment.criteria)
        # Each node as the owner's membership sees it, limited to what the caller may
        # read too: explain never shows a match on an event the caller cannot open.
        readers = (owner_principal(db=db, segment=segment), principal)
        columns = crit.node_columns(parsed, _context(db, readers))
        row = db.execute(
            select(*(col for _node, col in columns)).where(Contact.id == contact.id)
        ).one()
        names = reference_names(db=db, principal=principal, criteria=parsed)
        for (node, _col), value in zip(columns, row, strict=True):
            nodes.append(NodeVerdict(node.path, node.describe(names), bool(value)))
        matches = bool(row[0])
    applied = effective_scope(db=db, segment=segment)
    bu_id = scope_bu(db=db, segment=segment)
    in_scope = bu_id is None or contact.owning_bu_id == bu_id
    stored = db.get(SegmentMember, (segment.id, contact.id)) is not None
    member = stored if segment.kind == STATIC else matches and in_scope
    verdict = access.explain(db, viewer, Privilege.READ, CONTACT, contact)
    reasons = []
    if segment.kind == DYNAMIC and not matches:
        reasons.append("the criteria do not match")
    if not in_scope:
        reasons.append(
            f"the contact is in BU {contact.owning_bu_id}, outside the segment's business-unit "
            f"scope (BU {bu_id})"
        )
    return SegmentExplanation(
        segment_id=segment.id,
        contact_id=contact.id,
        member=member,
        materialised_member=stored,
        refreshed_at=segment.refreshed_at,
        why="member" if member else "; ".join(reasons) or "not a member of this static segment",
        criteria=nodes,
        scope=ScopeVerdict(
            setting=segment.scope,
            applied=applied,
            scoping_on=scoping_on(db=db),
            business_unit_id=bu_id,
            contact_business_unit_id=contact.owning_bu_id,
            passes=in_scope,
        ),
        viewer=ViewerVerdict(
            user_id=viewer.user_id,
            username=viewer.username,
            can_read=verdict.allowed,
            access=verdict.summary,
            sees_it=member and verdict.allowed,
        ),
    )


@dataclass(frozen=True)
class SegmentCounts:
    """Members the viewer may see, the total when the administrator allows totals, and
    where the members come from (``materialised`` by the last refresh, or ``live``)."""

    visible: int
    total: int | None
    source: str


def segment_counts(*, db: Session, principal: access.Principal, segment: Segment) -> SegmentCounts:
    """The viewer's count of a segment's members, and the total when the setting allows."""
    stmt, source = membership_statement(db=db, segment=segment, viewer=principal)
    visible, total = _counts(db, principal, stmt)
    return SegmentCounts(visible=visible, total=total, source=source)
