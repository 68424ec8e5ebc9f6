"""Segments and marketing lists: CRUD, scope, membership, refresh, explain (SPEC B4, B5, B13).

Two steps, kept apart (reference §3.3):

* **membership** = contacts matching the criteria ∩ the scope. With BU scoping on, a
  business-unit-scoped segment holds only contacts whose owning BU is the segment's
  owning BU; with it off every segment is organization-scoped. Membership is the same for
  everyone; ``refresh`` materialises it in ``segment_member``.
* **what a viewer sees** = membership ∩ the contacts the viewer may read, filtered by the
  access engine at read time; the count a viewer sees is the count of those.
"""

from __future__ import annotations

import csv
import io
import time as clock
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core import changes, csvout
from gatherly.core.db import UTCDateTime, icontains, utcnow
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.org import directory
from gatherly.org import service as org_service
from gatherly.segment import criteria as crit
from gatherly.segment.models import (
    DYNAMIC,
    SCOPE_BUSINESS_UNIT,
    SCOPE_ORGANIZATION,
    STATE_FRESH,
    STATE_PENDING,
    STATIC,
    MarketingList,
    MarketingListMember,
    Segment,
    SegmentListRef,
    SegmentMember,
)

SEGMENT = "segment"
LIST = "marketing_list"
CONTACT = "contact"
CONTACT_KIND = contact_service.CONTACT
MAX_IDS = 10_000  # contact ids per add/remove call; larger partial refreshes go full

STATIC_REFUSED = (
    "static segments are unavailable while business unit scoping is on (SPEC B13): create a "
    "marketing list, add the contacts to it, and use it in a dynamic segment as "
    "{\"list\": <list id>}; the segment's scope then applies to the list's members"
)


def scoping_on(*, db: Session) -> bool:
    """Whether business unit scoping (outbound marketing) is on (B4)."""
    return org_service.feature_enabled(db=db, name=org_service.BU_SCOPING)


def totals_visible(*, db: Session) -> bool:
    """Whether viewers may see a segment's total beside what they may read."""
    return org_service.feature_enabled(db=db, name=org_service.SEGMENT_TOTALS)


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _context(
    db: Session,
    readers: Sequence[access.Principal],
    now: datetime | None = None,
    viewer: access.Principal | None = None,
) -> crit.Context:
    # A viewer below organization level reaches contacts through a BU index first, where
    # correlated sub-queries beat scanning them whole (see crit.Context).
    narrowed = viewer is not None and viewer.max_level(CONTACT, Privilege.READ) < Level.ORGANIZATION
    return crit.Context(
        now=now or utcnow(), readers=tuple(readers), dialect=_dialect(db), correlated=narrowed
    )


def owner_principal(*, db: Session, segment: Segment) -> access.Principal:
    """The segment's owner (a user or a team): membership sees the events it may read."""
    return directory.load_owner_principal(db, segment.owner_type, segment.owner_id)


def _owner(
    db: Session, principal: access.Principal, owner: OwnerRef | None
) -> tuple[OwnerRef, int]:
    """The owner (default: the caller) and the owning BU it implies."""
    owner = owner or OwnerRef(type="user", id=principal.user_id)
    return owner, contact_service.resolve_owner(db=db, owner=owner)


# ---------------------------------------------------------------- scope (B5)


def may_choose_organization(principal: access.Principal) -> bool:
    """Organization scope needs organization-level create *and* write on segments (§3.3)."""
    return (
        principal.max_level(SEGMENT, Privilege.CREATE) == Level.ORGANIZATION
        and principal.max_level(SEGMENT, Privilege.WRITE) == Level.ORGANIZATION
    )


def _check_scope(principal: access.Principal, scope: str) -> None:
    if scope not in (SCOPE_ORGANIZATION, SCOPE_BUSINESS_UNIT):
        raise ValidationFailed("scope is 'organization' or 'business_unit'", field="scope")
    if scope == SCOPE_ORGANIZATION and not may_choose_organization(principal):
        raise Forbidden(
            "only users with organization-level create and write privileges on segments may "
            "choose organization scope; your segments are scoped to their owner's business unit",
            field="scope",
        )


def effective_scope(*, db: Session, segment: Segment) -> str:
    """The scope that applies now: the segment's own with scoping on, organization with it off."""
    return segment.scope if scoping_on(db=db) else SCOPE_ORGANIZATION


def _scope_filter(scope_bu_id: int | None) -> list[ColumnElement[bool]]:
    return [] if scope_bu_id is None else [Contact.owning_bu_id == scope_bu_id]


def scope_bu(*, db: Session, segment: Segment) -> int | None:
    """The BU a business-unit scope limits membership to (None: organization scope)."""
    if effective_scope(db=db, segment=segment) == SCOPE_BUSINESS_UNIT:
        return segment.owning_bu_id
    return None


# ---------------------------------------------------------------- criteria references


def _check_references(db: Session, principal: access.Principal, parsed: crit.Criteria) -> None:
    """Lists and events a tree names must exist and be readable by its author."""
    for path, kind, ref_id in parsed.references:
        record_type = LIST if kind == "list" else "marketing_event"
        found = access.get(db, principal=principal, record_type=record_type, record_id=ref_id)
        if found is None:
            label = "marketing list" if kind == "list" else "marketing event"
            raise crit.CriteriaError(f"{path}: {label} {ref_id} not found", field=path)


def parse_criteria(*, db: Session, principal: access.Principal, tree: Any) -> crit.Criteria:
    """Validate a tree and its references for ``principal``."""
    parsed = crit.parse(tree)
    _check_references(db, principal, parsed)
    return parsed


def _member_predicate(
    db: Session,
    parsed: crit.Criteria,
    scope_bu_id: int | None,
    readers: Sequence[access.Principal],
    now: datetime | None = None,
    viewer: access.Principal | None = None,
) -> ColumnElement[bool]:
    ctx = _context(db, readers, now, viewer)
    return and_(crit.compile_predicate(parsed, ctx), *_scope_filter(scope_bu_id))


def evaluate_statement(
    *,
    db: Session,
    tree: Any,
    readers: Sequence[access.Principal],
    scope_bu_id: int | None = None,
    now: datetime | None = None,
    viewer: access.Principal | None = None,
) -> Select[Any]:
    """``select(Contact)`` of the contacts a tree matches within a scope (no viewer filter).

    This is the one statement evaluation, previews, refresh and the benchmark all use; add
    the viewer with ``access.scope`` or ``access.count``, and pass the same ``viewer`` here
    so the SQL takes the form that suits how the viewer's access narrows the contacts.
    Participation criteria see only the events, registrations and attendance that every
    one of ``readers`` may read (the viewer for a preview, the owner for a segment).
    """
    parsed = tree if isinstance(tree, crit.Criteria) else crit.parse(tree)
    return select(Contact).where(_member_predicate(db, parsed, scope_bu_id, readers, now, viewer))


def custom_plans(*, db: Session) -> None:
    """On PostgreSQL, plan this transaction's statements with their values, without JIT.

    psycopg prepares a statement from its sixth run, and the server may then switch to a
    generic plan that cannot see which BU, countries or lists a segment names; for these
    queries that costs up to 7x (bench/segments.py). The planner costs an EXISTS under an
    OR as if probed per contact even when it runs hashed, so a BU-level count can pass the
    JIT thresholds and spend 0.8-2.5 s compiling a 150 ms query. Local to the transaction.
    """
    if _dialect(db) == "postgresql":
        db.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))
        db.execute(sql_text("SET LOCAL jit = off"))


def count_visible(*, db: Session, principal: access.Principal, stmt: Select[Any]) -> int:
    """How many contacts of ``stmt`` the viewer may read."""
    custom_plans(db=db)
    return access.count(db, stmt, principal=principal, record_type=CONTACT)


def _counts(db: Session, principal: access.Principal, stmt: Select[Any]) -> tuple[int, int | None]:
    """What the viewer may read of ``stmt``, and the total when the setting allows it."""
    total = _count_all(db, stmt) if totals_visible(db=db) else None
    return count_visible(db=db, principal=principal, stmt=stmt), total


def _count_all(db: Session, stmt: Select[Any]) -> int:
    counted = stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    return int(db.execute(counted).scalar_one())


# ---------------------------------------------------------------- marketing lists


def get_list(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> MarketingList:
    """A list the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = access.get(db, principal=principal, record_type=LIST, record_id=list_id)
    if found is None:
        raise NotFound(f"marketing list {list_id} not found", field=field)
    if privilege != Privilege.READ:
        access.require(db, principal, privilege, LIST, found)
    assert isinstance(found, MarketingList)
    return found


def create_list(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    description: str = "",
    owner: OwnerRef | None = None,
) -> MarketingList:
    """A new, empty list owned by ``owner`` (default: the caller)."""
    owner, bu_id = _owner(db, principal, owner)
    access.can_create_in(
        db, principal, LIST, owner_type=owner.type, owner_id=owner.id, owning_bu_id=bu_id
    )
    now = utcnow()
    row = MarketingList(
        name=name,
        description=description,
        owner_type=owner.type,
        owner_id=owner.id,
        owning_bu_id=bu_id,
        created_at=now,
        modified_at=now,
        created_by_id=principal.user_id,
        modified_by_id=principal.user_id,
    )
    db.add(row)
    db.flush()
    return row


def update_list(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    name: str | None = None,
    description: str | None = None,
) -> MarketingList:
    """Rename or re-describe a list (needs Write)."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    if name is not None:
        row.name = name
    if description is not None:
        row.description = description
    row.modified_at, row.modified_by_id = utcnow(), principal.user_id
    db.flush()
    return row


def delete_list(*, db: Session, principal: access.Principal, list_id: int) -> None:
    """Delete a list (needs Delete); refused while a segment's criteria use it."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.DELETE)
    used = db.execute(
        select(func.count()).select_from(SegmentListRef).where(SegmentListRef.list_id == row.id)
    ).scalar_one()
    if used:
        raise Conflict(
            f"marketing list {row.id} is used by {used} segment(s); remove it from their "
            "criteria first",
            field="id",
        )
    db.delete(row)
    db.flush()


def list_lists(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the lists the caller may read, newest first."""
    return _named_page(db, principal, MarketingList, LIST, q=q, cursor=cursor, limit=limit)


def count_lists(*, db: Session, principal: access.Principal, q: str | None = None) -> int:
    """How many lists the caller may read."""
    return access.count(db, _named(MarketingList, q), principal=principal, record_type=LIST)


def lists_of_contact(
    *, db: Session, principal: access.Principal, contact_id: int
) -> list[MarketingList]:
    """The lists the caller may read that hold a contact the caller may read, by name."""
    contact_service.get(db=db, principal=principal, kind=CONTACT_KIND, record_id=contact_id)
    stmt = select(MarketingList).where(
        MarketingList.id.in_(
            select(MarketingListMember.list_id).where(MarketingListMember.contact_id == contact_id)
        )
    )
    scoped = access.scope(stmt, principal=principal, record_type=LIST)
    return list(db.scalars(scoped.order_by(MarketingList.name, MarketingList.id)))


def _named_page(
    db: Session,
    principal: access.Principal,
    model: Any,
    record_type: str,
    *,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    return paginate(
        db,
        access.scope(_named(model, q), principal=principal, record_type=record_type),
        id_column=model.id,
        sortable={"id": model.id, "name": model.name},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def _named(model: Any, q: str | None) -> Select[Any]:
    stmt = select(model)
    if q:
        stmt = stmt.where(icontains(q, model.name))
    return stmt


@dataclass
class MembershipChange:
    """What an add, remove or import did."""

    added: int = 0
    removed: int = 0
    already: int = 0
    not_members: int = 0
    rows: int = 0
    unknown_emails: list[str] = field(default_factory=list)
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)


def _readable_contact_ids(
    db: Session, principal: access.Principal, contact_ids: Sequence[int], *, field: str
) -> list[int]:
    """The ids, all of which the caller must be able to read (NotFound naming the first)."""
    ids = sorted(set(contact_ids))
    if not ids:
        raise ValidationFailed("give at least one contact id", field=field)
    if len(ids) > MAX_IDS:
        raise ValidationFailed(f"at most {MAX_IDS} contact ids per call", field=field)
    stmt = access.scope(
        select(Contact.id).where(Contact.id.in_(ids)), principal=principal, record_type=CONTACT
    )
    found = set(db.execute(stmt).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(
            f"contact {missing[0]} not found"
            + (f" (and {len(missing) - 1} more)" if missing[1:] else ""),
            field=field,
        )
    return ids


def _insert_members(
    db: Session, table: Any, key: str, owner_id: int, ids: list[int], **extra: Any
) -> int:
    key_col = getattr(table, key)
    present = set(
        db.execute(
            select(table.contact_id).where(key_col == owner_id, table.contact_id.in_(ids))
        ).scalars()
    )
    new = [i for i in ids if i not in present]
    if new:
        now = utcnow()
        db.execute(
            insert(table), [{key: owner_id, "contact_id": i, "added_at": now, **extra} for i in new]
        )
    return len(new)


def _delete_members(db: Session, table: Any, key: str, owner_id: int, ids: list[int]) -> int:
    key_col = getattr(table, key)
    result = db.execute(delete(table).where(key_col == owner_id, table.contact_id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def add_to_list(
    *, db: Session, principal: access.Principal, list_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Add contacts the caller may read to a list the caller may write."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    added = _insert_members(
        db, MarketingListMember, "list_id", row.id, ids, added_by_id=principal.user_id
    )
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return MembershipChange(added=added, already=len(ids) - added)


def remove_from_list(
    *, db: Session, principal: access.Principal, list_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Remove contacts (the caller may read) from a list the caller may write."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    removed = _delete_members(db, MarketingListMember, "list_id", row.id, ids)
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return MembershipChange(removed=removed, not_members=len(ids) - removed)


MAX_IMPORT_ROWS = 100_000


def import_csv(
    *, db: Session, principal: access.Principal, list_id: int, text: str
) -> MembershipChange:
    """Add the contacts a CSV names by email (column ``email``, or the only column).

    Every readable contact with a listed email is added (with BU scoping on, the same
    person may be a contact in several BUs). Emails no readable contact has are reported,
    as are rows without a valid email; nothing else changes.
    """
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    emails, report = _csv_emails(text)
    found: dict[str, list[int]] = {}
    chunk = 900
    unique = sorted(set(emails))
    for start in range(0, len(unique), chunk):
        part = unique[start : start + chunk]
        query = cast(Select[Any], select(Contact.id, Contact.email).where(Contact.email.in_(part)))
        stmt = access.scope(query, principal=principal, record_type=CONTACT)
        for contact_id, email in db.execute(stmt):
            if email is not None:
                found.setdefault(email, []).append(contact_id)
    report.unknown_emails = [e for e in unique if e not in found]
    ids = sorted({i for matches in found.values() for i in matches})
    for start in range(0, len(ids), MAX_IDS):
        batch = ids[start : start + MAX_IDS]
        added = _insert_members(
            db, MarketingListMember, "list_id", row.id, batch, added_by_id=principal.user_id
        )
        report.added += added
        report.already += len(batch) - added
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return report


def _csv_emails(text: str) -> tuple[list[str], MembershipChange]:
    from email_validator import EmailNotValidError, validate_email

    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise ValidationFailed("the CSV is empty", field="csv")
    header = [cell.strip().lower() for cell in rows[0]]
    if "email" in header:
        column, body, first_line = header.index("email"), rows[1:], 2
    elif len(header) == 1:
        column, body, first_line = 0, rows, 1
    else:
        raise ValidationFailed(
            "the CSV needs a header row with an 'email' column (or a single column of emails)",
            field="csv",
        )
    if len(body) > MAX_IMPORT_ROWS:
        raise ValidationFailed(f"at most {MAX_IMPORT_ROWS} rows per import", field="csv")
    report = MembershipChange(rows=len(body))
    emails = []
    for offset, r in enumerate(body):
        raw = r[column].strip() if column < len(r) else ""
        try:
            emails.append(validate_email(raw, check_deliverability=False).normalized.casefold())
        except EmailNotValidError as exc:
            report.invalid_rows.append(
                {"line": first_line + offset, "value": raw, "error": str(exc)}
            )
    return emails, report


def list_members(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    cursor: str | None = None,
    limit: int = 50,
    sort: str = "last_name",
) -> tuple[Page, int]:
    """The list's members the caller may read (a page) and how many there are."""
    row = get_list(db=db, principal=principal, list_id=list_id)
    stmt = _list_statement(row.id)
    return _page(db, principal, stmt, cursor=cursor, limit=limit, sort=sort), count_visible(
        db=db, principal=principal, stmt=stmt
    )


def _list_statement(list_id: int) -> Select[Any]:
    """``select(Contact)`` of a list's members (no viewer filter)."""
    members = select(MarketingListMember.contact_id).where(MarketingListMember.list_id == list_id)
    return select(Contact).where(Contact.id.in_(members))


def _page(
    db: Session,
    principal: access.Principal,
    stmt: Select[Any],
    *,
    cursor: str | None,
    limit: int,
    sort: str,
) -> Page:
    custom_plans(db=db)
    return paginate(
        db,
        access.scope(stmt, principal=principal, record_type=CONTACT),
        id_column=Contact.id,
        sortable=contact_service.sortable(CONTACT_KIND),
        sort=sort,
        cursor=cursor,
        limit=limit,
    )


# ---------------------------------------------------------------- segments


def get_segment(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    privilege: Privilege = Privilege.READ,
) -> Segment:
    """A segment the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = access.get(db, principal=principal, record_type=SEGMENT, record_id=segment_id)
    if found is None:
        raise NotFound(f"segment {segment_id} not found", field="id")
    if privilege != Privilege.READ:
        access.require(db, principal, privilege, SEGMENT, found)
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
    now = utcnow()
    segment = Segment(
        name=name,
        description=description,
        kind=kind,
        scope=scope,
        criteria=criteria,
        owner_type=owner.type,
        owner_id=owner.id,
        owning_bu_id=bu_id,
        created_at=now,
        modified_at=now,
        created_by_id=principal.user_id,
        modified_by_id=principal.user_id,
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


# ---------------------------------------------------------------- membership and viewers


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


@dataclass(frozen=True)
class CsvExport:
    """A members download: its file name, and its CSV text streamed (through the one CSV
    writer) from a session of its own, so it outlives the request that asked for it."""

    filename: str
    chunks: Iterator[str]


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


# ---------------------------------------------------------------- refresh


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
    segment = db.get(Segment, segment_id)
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


# ---------------------------------------------------------------- explain


def explain(
    *,
    db: Session,
    principal: access.Principal,
    segment_id: int,
    contact_id: int,
    viewer_id: int | None = None,
) -> dict[str, Any]:
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
    nodes: list[dict[str, Any]] = []
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
        for (node, _col), value in zip(columns, row, strict=True):
            nodes.append(
                {"path": node.path, "description": node.describe(), "matched": bool(value)}
            )
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
    return {
        "segment_id": segment.id,
        "contact_id": contact.id,
        "member": member,
        "materialised_member": stored,
        "refreshed_at": segment.refreshed_at,
        "why": "member" if member else "; ".join(reasons) or "not a member of this static segment",
        "criteria": nodes,
        "scope": {
            "setting": segment.scope,
            "applied": applied,
            "scoping_on": scoping_on(db=db),
            "business_unit_id": bu_id,
            "contact_business_unit_id": contact.owning_bu_id,
            "passes": in_scope,
        },
        "viewer": {
            "user_id": viewer.user_id,
            "username": viewer.username,
            "can_read": verdict.allowed,
            "access": verdict.summary,
            "sees_it": member and verdict.allowed,
        },
    }


def segment_counts(*, db: Session, principal: access.Principal, segment: Segment) -> dict[str, Any]:
    """The viewer's count of a segment's members, and the total when the setting allows."""
    stmt, source = membership_statement(db=db, segment=segment, viewer=principal)
    visible, total = _counts(db, principal, stmt)
    return {"visible": visible, "total": total, "source": source}
