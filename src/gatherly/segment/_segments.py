"""Segments: create, update (criteria, scope, owner), delete, static members (SPEC B4, B5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.schemas import OwnerRef
from gatherly.core import changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.pagination import Page
from gatherly.segment import criteria as crit
from gatherly.segment._common import (
    SEGMENT,
    STATIC_REFUSED,
    MembershipChange,
    _check_scope,
    _delete_members,
    _insert_members,
    _named,
    _named_page,
    _owner,
    _readable_contact_ids,
    parse_criteria,
    scoping_on,
)
from gatherly.segment.models import (
    DYNAMIC,
    SCOPE_BUSINESS_UNIT,
    STATE_FRESH,
    STATE_PENDING,
    STATIC,
    Segment,
    SegmentListRef,
    SegmentMember,
)


def get_segment(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> Segment:
    """A segment the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(
        db, principal, SEGMENT, segment_id, noun="segment", privilege=privilege, field=field
    )
    assert isinstance(found, Segment)
    return found


def _apply_criteria(db: Session, segment: Segment, parsed: crit.Criteria | None) -> None:
    segment.uses_events = bool(parsed and parsed.uses_events)
    segment.uses_relative_dates = bool(parsed and parsed.uses_relative_dates)
    db.execute(delete(SegmentListRef).where(SegmentListRef.segment_id == segment.id))
    if parsed and parsed.list_ids:
        db.execute(
            insert(SegmentListRef),
            [{"segment_id": segment.id, "list_id": i} for i in sorted(parsed.list_ids)],
        )


def _needs_refresh(db: Session, segment: Segment) -> None:
    segment.refresh_state = STATE_PENDING
    changes.record(db, changes.SEGMENT, ref_id=segment.id)


def create_segment(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    kind: str = DYNAMIC,
    criteria: Any = None,
    scope: str | None = None,
    description: str = "",
    owner: OwnerRef | None = None,
) -> Segment:
    """Create a segment (B5 scope rules, B13 static segments) and queue its first refresh."""
    owner, bu_id = _owner(db, principal, owner)
    access.can_create_in(
        db, principal, SEGMENT, owner_type=owner.type, owner_id=owner.id, owning_bu_id=bu_id
    )
    if kind not in (DYNAMIC, STATIC):
        raise ValidationFailed("kind is 'dynamic' or 'static'", field="kind")
    if kind == STATIC and scoping_on(db=db):
        raise ValidationFailed(STATIC_REFUSED, field="kind")
    scope = scope or SCOPE_BUSINESS_UNIT
    _check_scope(principal, scope)
    parsed = None
    if kind == DYNAMIC:
        if criteria is None:
            raise ValidationFailed("a dynamic segment needs criteria", field="criteria")
        parsed = parse_criteria(db=db, principal=principal, tree=criteria)
    elif criteria is not None:
        raise ValidationFailed(
            "a static segment has members, not criteria; add contacts to it", field="criteria"
        )
    segment = Segment(
        name=name,
        description=description,
        kind=kind,
        scope=scope,
        criteria=criteria,
        **contact_service.new_record_columns(owner=owner, bu_id=bu_id, principal=principal),
        refresh_state=STATE_PENDING if kind == DYNAMIC else STATE_FRESH,
    )
    db.add(segment)
    db.flush()
    _apply_criteria(db, segment, parsed)
    if kind == DYNAMIC:
        _needs_refresh(db, segment)
    db.flush()
    return segment


UNSET: Any = object()


def update_segment(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    name: str | None = None,
    description: str | None = None,
    criteria: Any = UNSET,
    scope: str | None = None,
) -> Segment:
    """Change a segment (needs Write); new criteria or scope queue a full refresh."""
    segment = get_segment(
        db=db, principal=principal, segment_id=segment_id, privilege=Privilege.WRITE
    )
    refresh = False
    if scope is not None and scope != segment.scope:
        _check_scope(principal, scope)
        segment.scope, refresh = scope, True
    if criteria is not UNSET:
        if segment.kind == STATIC:
            raise ValidationFailed("a static segment has no criteria", field="criteria")
        if criteria is None:
            raise ValidationFailed("a dynamic segment needs criteria", field="criteria")
        parsed = parse_criteria(db=db, principal=principal, tree=criteria)
        segment.criteria = criteria
        _apply_criteria(db, segment, parsed)
        refresh = True
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    segment.modified_at, segment.modified_by_id = utcnow(), principal.user_id
    if refresh and segment.kind == DYNAMIC:
        _needs_refresh(db, segment)
    db.flush()
    return segment


def delete_segment(*, db: Session, principal: access.Principal, segment_id: int) -> None:
    """Delete a segment and its membership (needs Delete)."""
    segment = get_segment(
        db=db, principal=principal, segment_id=segment_id, privilege=Privilege.DELETE
    )
    db.delete(segment)
    db.flush()


def list_segments(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the segments the caller may read, newest first."""
    return _named_page(db, principal, Segment, SEGMENT, q=q, cursor=cursor, limit=limit)


def count_segments(*, db: Session, principal: access.Principal, q: str | None = None) -> int:
    """How many segments the caller may read."""
    return access.count(db, _named(Segment, q), principal=principal, record_type=SEGMENT)


def _static_writable(db: Session, principal: access.Principal, segment_id: int) -> Segment:
    segment = get_segment(
        db=db, principal=principal, segment_id=segment_id, privilege=Privilege.WRITE
    )
    if segment.kind != STATIC:
        raise ValidationFailed(
            "a dynamic segment's members come from its criteria; add contacts to a marketing "
            "list and use the list in the criteria",
            field="id",
        )
    if scoping_on(db=db):
        raise ValidationFailed(STATIC_REFUSED, field="kind")
    return segment


def add_static_members(
    *, db: Session, principal: access.Principal, segment_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Add readable contacts to a static segment (only while scoping is off, B13)."""
    segment = _static_writable(db, principal, segment_id)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    added = _insert_members(db, SegmentMember, "segment_id", segment.id, ids)
    segment.member_total += added
    return MembershipChange(added=added, already=len(ids) - added)


def remove_static_members(
    *, db: Session, principal: access.Principal, segment_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Remove readable contacts from a static segment (only while scoping is off, B13)."""
    segment = _static_writable(db, principal, segment_id)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    removed = _delete_members(db, SegmentMember, "segment_id", segment.id, ids)
    segment.member_total -= removed
    return MembershipChange(removed=removed, not_members=len(ids) - removed)


def recently_refreshed(
    *, db: Session, principal: access.Principal, limit: int = 5
) -> list[Segment]:
    """The segments the caller may read whose membership was refreshed most recently (the
    home page's "segments that changed")."""
    stmt = access.scope(
        select(Segment).where(Segment.refreshed_at.is_not(None)),
        principal=principal,
        record_type=SEGMENT,
    )
    return list(
        db.scalars(stmt.order_by(Segment.refreshed_at.desc(), Segment.id.desc()).limit(limit))
    )
