"""Who is in a segment or list as a viewer sees them: members, counts, the preview of an unsaved tree, CSV exports."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Select,
    or_,
    select,
)
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core import csvout
from gatherly.core.csvout import CsvExport
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.pagination import Page
from gatherly.segment import criteria as crit
from gatherly.segment._common import (
    CONTACT,
    SEGMENT,
    _check_scope,
    _counts,
    _owner,
    _page,
    count_visible,
    evaluate_statement,
    owner_principal,
    parse_criteria,
    scope_bu,
    scoping_on,
)
from gatherly.segment._lists import _list_statement, get_list
from gatherly.segment._segments import get_segment
from gatherly.segment.models import (
    SCOPE_BUSINESS_UNIT,
    SCOPE_ORGANIZATION,
    STATIC,
    Segment,
    SegmentMember,
)


@dataclass(frozen=True)
class Members:
    """What a viewer sees of a segment: a page, the visible count and (if allowed) the total."""

    page: Page
    visible: int
    total: int | None
    source: str  # "materialised" or "live"
    refreshed_at: datetime | None


def membership_statement(
    *, db: Session, segment: Segment, live: bool = False, viewer: access.Principal | None = None
) -> tuple[Select[Any], str]:
    """``select(Contact)`` of a segment's membership: materialised, or evaluated now."""
    if segment.kind == STATIC or (segment.refreshed_at is not None and not live):
        members = select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
        return select(Contact).where(Contact.id.in_(members)), "materialised"
    parsed = crit.parse(segment.criteria)
    stmt = evaluate_statement(
        db=db,
        tree=parsed,
        readers=(owner_principal(db=db, segment=segment),),
        scope_bu_id=scope_bu(db=db, segment=segment),
        viewer=viewer,
    )
    return stmt, "live"


def members(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    live: bool = False,
    cursor: str | None = None,
    limit: int = 50,
    sort: str = "last_name",
) -> Members:
    """The segment's members the viewer may read, with that count (B5)."""
    segment = get_segment(db=db, principal=principal, segment_id=segment_id)
    stmt, source = membership_statement(db=db, segment=segment, live=live, viewer=principal)
    page = _page(db, principal, stmt, cursor=cursor, limit=limit, sort=sort)
    visible, total = _counts(db, principal, stmt)
    return Members(page, visible, total, source, segment.refreshed_at)


def audience_statement(
    *,
    db: Session,
    principal: access.Principal,
    segment_ids: Sequence[int] = (),
    list_ids: Sequence[int] = (),
) -> Select[Any]:
    """``select(Contact)`` of the contacts in any of these segments and lists that the caller
    may read (a send's audience). Each segment and list must be readable: NotFound names the
    first that is not."""
    if not segment_ids and not list_ids:
        raise ValidationFailed("choose at least one segment or list", field="segment_id")
    parts = []
    for segment_id in segment_ids:
        segment = get_segment(db=db, principal=principal, segment_id=segment_id, field="segment_id")
        stmt, _source = membership_statement(db=db, segment=segment, viewer=principal)
        parts.append(Contact.id.in_(stmt.with_only_columns(Contact.id)))
    for list_id in list_ids:
        get_list(db=db, principal=principal, list_id=list_id, field="list_id")
        parts.append(Contact.id.in_(_list_statement(list_id).with_only_columns(Contact.id)))
    return access.scope(
        select(Contact).where(or_(*parts)), principal=principal, record_type=CONTACT
    )


EXPORT_COLUMNS = ("id", "email", "first_name", "last_name", "company", "country", "owning_bu_id")


"""The columns of every member export: segments and lists, through the API, web and CLI."""


def iter_visible_members(
    *, db: Session, principal: access.Principal, segment_id: int, chunk: int = 1000
) -> Iterator[Contact]:
    """Every member the viewer may read, in id order, a chunk at a time (CSV export).

    The segment is checked at the call (NotFound), before the first row is asked for.
    """
    segment = get_segment(db=db, principal=principal, segment_id=segment_id)
    stmt, _source = membership_statement(db=db, segment=segment, viewer=principal)
    return _iter_readable(db, principal, stmt, chunk)


def iter_visible_list_members(
    *, db: Session, principal: access.Principal, list_id: int, chunk: int = 1000
) -> Iterator[Contact]:
    """Every member of a list the viewer may read, in id order, a chunk at a time (CSV
    export): NotFound at the call for a list the viewer may not read."""
    row = get_list(db=db, principal=principal, list_id=list_id)
    return _iter_readable(db, principal, _list_statement(row.id), chunk)


def export_members(
    *,
    db: Session,
    principal: access.Principal,
    kind: Literal["segment", "list"],
    record_id: int,
    session_factory: Callable[[], Session],
) -> CsvExport:
    """The members of a segment or a list (``kind``) the caller may read, as CSV; NotFound
    now, before the first row streams, for one the caller may not read."""
    rows: Callable[[Session], Iterator[Contact]]
    if kind == "segment":
        get_segment(db=db, principal=principal, segment_id=record_id)

        def rows(own: Session) -> Iterator[Contact]:
            return iter_visible_members(db=own, principal=principal, segment_id=record_id)
    else:
        get_list(db=db, principal=principal, list_id=record_id)

        def rows(own: Session) -> Iterator[Contact]:
            return iter_visible_list_members(db=own, principal=principal, list_id=record_id)

    return CsvExport(f"{kind}-{record_id}.csv", _csv_chunks(session_factory, rows))


def _csv_chunks(
    session_factory: Callable[[], Session], members: Callable[[Session], Iterator[Contact]]
) -> Iterator[str]:
    with session_factory() as own:
        rows = csvout.attributes(EXPORT_COLUMNS, members(own))
        yield from csvout.stream(EXPORT_COLUMNS, rows)


def _iter_readable(
    db: Session, principal: access.Principal, stmt: Select[Any], chunk: int
) -> Iterator[Contact]:
    """The contacts of ``stmt`` the viewer may read, by id, ``chunk`` rows per query."""
    scoped = access.scope(stmt, principal=principal, record_type=CONTACT).order_by(Contact.id)
    last = 0
    while True:
        rows = list(db.execute(scoped.where(Contact.id > last).limit(chunk)).scalars())
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1].id


@dataclass(frozen=True)
class Preview:
    """An unsaved tree evaluated for the caller (no total: see ``preview``)."""

    visible: int
    items: Sequence[Contact]
    scope: str
    scope_bu_id: int | None


def preview(
    *,
    db: Session,
    principal: access.Principal,
    criteria: Any,
    scope: str | None = None,
    owner: OwnerRef | None = None,
    segment_id: int | None = None,
    limit: int = 20,
) -> Preview:
    """Count and first page of what a tree would hold, as the caller would see it.

    Only what the caller may read counts: the contacts, and the events, registrations and
    attendance participation criteria look at. The owner must be one the caller may create
    a segment for; or, with ``segment_id``, the tree is an edit of that segment (the caller
    needs Write on it) and its owner's BU applies, as its refreshes will. There is no total
    of an unsaved tree (ad-hoc totals would let anyone count what they cannot see, a value
    at a time); saved segments show theirs when the administrator allows it.
    """
    parsed = parse_criteria(db=db, principal=principal, tree=criteria)
    scope = scope or SCOPE_BUSINESS_UNIT
    if segment_id is not None:
        if owner is not None:
            raise ValidationFailed(
                "give the owner or the segment being edited, not both", field="owner"
            )
        segment = get_segment(
            db=db, principal=principal, segment_id=segment_id, privilege=Privilege.WRITE
        )
        if scope != segment.scope:
            _check_scope(principal, scope)
        bu_id = segment.owning_bu_id
    else:
        _check_scope(principal, scope)
        owner_ref, bu_id = _owner(db, principal, owner)
        access.can_create_in(
            db,
            principal,
            SEGMENT,
            owner_type=owner_ref.type,
            owner_id=owner_ref.id,
            owning_bu_id=bu_id,
        )
    applied = scope if scoping_on(db=db) else SCOPE_ORGANIZATION
    scope_bu_id = bu_id if applied == SCOPE_BUSINESS_UNIT else None
    stmt = evaluate_statement(
        db=db, tree=parsed, readers=(principal,), scope_bu_id=scope_bu_id, viewer=principal
    )
    rows = (
        _page(db, principal, stmt, cursor=None, limit=limit, sort="last_name").items
        if limit
        else []
    )
    visible = count_visible(db=db, principal=principal, stmt=stmt)  # limit 0: the count alone
    return Preview(visible, rows, applied, scope_bu_id)
