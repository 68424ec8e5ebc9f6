"""What the segment modules share: the scope rule, criteria checked against what the author may read, counts as a viewer sees them, paging by name, membership writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core.db import icontains, utcnow
from gatherly.core.exceptions import Forbidden, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.event.models import MarketingEvent
from gatherly.org import directory
from gatherly.org import service as org_service
from gatherly.scoring.models import ScoringModel
from gatherly.segment import criteria as crit
from gatherly.segment.models import (
    SCOPE_BUSINESS_UNIT,
    SCOPE_ORGANIZATION,
    MarketingList,
    Segment,
)

SEGMENT = "segment"


LIST = "marketing_list"


CONTACT = "contact"


CONTACT_KIND = contact_service.CONTACT


MAX_IDS = 10_000  # contact ids per add/remove call; larger partial refreshes go full


STATIC_REFUSED = (
    "static segments are unavailable while business unit scoping is on: create a "
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


def may_choose_organization(principal: access.Principal, record_type: str = SEGMENT) -> bool:
    """Organization scope needs organization-level create *and* write on the record type
    (segments §3.3; journeys follow the same rule, B6)."""
    return (
        principal.max_level(record_type, Privilege.CREATE) == Level.ORGANIZATION
        and principal.max_level(record_type, Privilege.WRITE) == Level.ORGANIZATION
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


def _check_references(db: Session, principal: access.Principal, parsed: crit.Criteria) -> None:
    """Lists and events a tree names must exist and be readable by its author."""
    for path, kind, ref_id in parsed.references:
        record_type = {"list": LIST, "event": "marketing_event"}.get(kind, kind)
        found = access.get(db, principal=principal, record_type=record_type, record_id=ref_id)
        if found is None:
            label = {"list": "marketing list", "event": "marketing event"}.get(
                kind, "scoring model"
            )
            raise crit.CriteriaError(f"{path}: {label} {ref_id} not found", field=path)


def reference_names(
    *, db: Session, principal: access.Principal, criteria: crit.Criteria
) -> crit.Names:
    """The names of the lists and events a tree names, among those ``principal`` may read
    (a description shows the others by id)."""
    names: dict[tuple[str, int], str] = {}
    for kind, model, record_type, ids in (
        ("list", MarketingList, LIST, criteria.list_ids),
        ("event", MarketingEvent, "marketing_event", criteria.event_ids),
        ("scoring_model", ScoringModel, "scoring_model", criteria.model_ids),
    ):
        if not ids:
            continue
        stmt = select(model.id, model.name).where(
            model.id.in_(sorted(ids)), access.readable(principal, record_type, Privilege.READ)
        )
        for row_id, name in db.execute(stmt):
            names[(kind, row_id)] = name
    return names


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
    found = contact_service.readable_ids(db=db, principal=principal, kind=CONTACT_KIND, ids=ids)
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
