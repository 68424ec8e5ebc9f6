"""Contacts and leads: create, read, list, update, delete, assign, share (SPEC M, B3, T8).

Both kinds share one implementation, parameterised by ``Kind``; every read goes through
the access engine, and a record the caller may not read is reported as not found.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from gatherly.access import engine as access
from gatherly.access.levels import SHARE_BITS, Level, Privilege, rights_from_mask, rights_mask
from gatherly.access.models import (
    OWNER_USER,
    PRINCIPAL_ORGANIZATION,
    PRINCIPAL_TEAM,
    PRINCIPAL_USER,
    RecordShare,
)
from gatherly.contact import matching
from gatherly.contact.models import Contact, Lead, PersonMixin, Tombstone
from gatherly.contact.schemas import ContactCreate, OwnerRef, PersonFields, ShareIn
from gatherly.core import audit, changes
from gatherly.core.db import LIKE_ESCAPE, contains_pattern, isoformat, utcnow
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, fetch_page, page_request, page_statement
from gatherly.org import directory
from gatherly.org import service as org_service
from gatherly.org.models import RolePrivilege, TeamRole


@dataclass(frozen=True)
class Kind:
    """A person record type: its model and its name in the access registry."""

    model: type[Contact] | type[Lead]
    record_type: str
    label: str


CONTACT = Kind(Contact, "contact", "contact")
LEAD = Kind(Lead, "lead", "lead")


@dataclass(frozen=True)
class ListFilter:
    """Filters of the list and count endpoints; all optional, combined with AND."""

    q: str | None = None
    email: str | None = None
    country: str | None = None
    company: str | None = None
    owning_bu_id: int | None = None
    owner_type: str | None = None
    owner_id: int | None = None
    status: str | None = None


def _name_contains(m: type[PersonMixin]) -> ColumnElement[bool]:
    like: BindParameter[str] = bindparam("f_q")
    full_name = func.coalesce(m.first_name, "") + " " + func.coalesce(m.last_name, "")
    return or_(
        func.lower(full_name).like(like, escape=LIKE_ESCAPE),
        func.lower(m.company).like(like, escape=LIKE_ESCAPE),
        m.email.like(like, escape=LIKE_ESCAPE),
    )


# Each filter: its condition over the model (values are bind parameters named f_<filter>,
# so a list statement is built once per shape) and how a value is normalised.
_FILTERS: dict[str, tuple[Callable[[Any], ColumnElement[bool]], Callable[[Any], Any]]] = {
    "q": (_name_contains, lambda v: contains_pattern(v.strip().lower())),
    "email": (lambda m: m.email == bindparam("f_email"), lambda v: v.strip().casefold()),
    "country": (lambda m: m.country == bindparam("f_country"), lambda v: v.strip().upper()),
    "company": (
        lambda m: func.lower(m.company) == bindparam("f_company"),
        lambda v: v.strip().lower(),
    ),
    "owning_bu_id": (lambda m: m.owning_bu_id == bindparam("f_owning_bu_id"), int),
    "owner_type": (lambda m: m.owner_type == bindparam("f_owner_type"), str),
    "owner_id": (lambda m: m.owner_id == bindparam("f_owner_id"), int),
    "status": (lambda m: m.status == bindparam("f_status"), str),
}


def _filter_values(kind: Kind, flt: ListFilter) -> dict[str, Any]:
    """The bind parameters of the filters ``flt`` sets, by parameter name, in a fixed order."""
    out = {}
    for name, (_, normalise) in _FILTERS.items():
        value = getattr(flt, name)
        if value is None or value == "" or (name == "status" and kind.model is not Lead):
            continue
        out[f"f_{name}"] = normalise(value)
    return out


def _filtered(kind: Kind, params: Iterable[str]) -> Select[Any]:
    """The filters alone, by parameter name; callers add the access predicate."""
    return select(kind.model).where(*(_FILTERS[p[2:]][0](kind.model) for p in params))


@functools.cache
def sortable(kind: Kind) -> dict[str, SQLColumnExpression[Any]]:
    """Public sort keys and their columns."""
    m = kind.model
    return {
        "id": m.id,
        "created_at": m.created_at,
        "modified_at": m.modified_at,
        "last_name": m.last_name,
        "first_name": m.first_name,
        "company": m.company,
        "email": func.coalesce(m.email, ""),
    }


@functools.lru_cache(maxsize=1024)
def _page_statement(
    principal: access.Principal,
    kind: Kind,
    params: tuple[str, ...],
    key: str,
    descending: bool,
    after: bool,
    limit: int,
) -> Select[Any]:
    # Keyed by the page's shape only (values are parameters): built once per viewer and shape.
    return page_statement(
        access.scope(_filtered(kind, params), principal=principal, record_type=kind.record_type),
        id_column=kind.model.id,
        key=sortable(kind)[key],
        descending=descending,
        after=after,
        limit=limit,
    )


def list_records(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    flt: ListFilter,
    sort: str = "-modified_at",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the records the caller may read, filtered and sorted."""
    req = page_request(sortable(kind), sort=sort, cursor=cursor, limit=limit)
    values = _filter_values(kind, flt)
    stmt = _page_statement(
        principal, kind, tuple(values), req.key, req.descending, req.after is not None, req.limit
    )
    return fetch_page(db, stmt, req, values)


def matching_statement(*, kind: Kind, flt: ListFilter) -> Select[Any]:
    """``select(model)`` of the records ``flt`` matches, its values bound, before the access
    predicate (callers scope it: a bulk action on "every contact this search finds")."""
    values = _filter_values(kind, flt)
    return _filtered(kind, values).params(**values)


def readable_ids(
    *, db: Session, principal: access.Principal, kind: Kind, ids: Iterable[int | None]
) -> set[int]:
    """Which of ``ids`` the caller may read (a page links only those)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return set()
    stmt = access.scope(
        select(kind.model.id).where(kind.model.id.in_(wanted)),
        principal=principal,
        record_type=kind.record_type,
    )
    return set(db.scalars(stmt))


def readable_records(
    *, db: Session, principal: access.Principal, kind: Kind, ids: Iterable[int | None]
) -> dict[int, Any]:
    """The records among ``ids`` the caller may read, by id (detail lists name only these)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    stmt = access.scope(
        select(kind.model).where(kind.model.id.in_(wanted)),
        principal=principal,
        record_type=kind.record_type,
    )
    return {r.id: r for r in db.scalars(stmt) if isinstance(r, PersonMixin)}


def count_records(*, db: Session, principal: access.Principal, kind: Kind, flt: ListFilter) -> int:
    """How many records match, among those the caller may read."""
    # The unfiltered count (the common one) reuses a statement built once per principal.
    values = _filter_values(kind, flt)
    stmt = _filtered(kind, values) if values else None
    return access.count(db, stmt, principal=principal, record_type=kind.record_type, params=values)


def get(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record_id: int,
    privilege: Privilege = Privilege.READ,
) -> PersonMixin:
    """One record the caller may read (NotFound otherwise), then checked for ``privilege``."""
    record = cast(
        PersonMixin | None,
        access.get(db, principal=principal, record_type=kind.record_type, record_id=record_id),
    )
    if record is None:
        raise NotFound(f"{kind.label} {record_id} not found", field="id")
    if privilege != Privilege.READ:
        access.require(db, principal, privilege, kind.record_type, record)
    return record


def new_record_columns(
    *, owner: OwnerRef, bu_id: int, principal: access.Principal
) -> dict[str, Any]:
    """The ownership and audit columns of a record the caller creates for ``owner`` (the
    owning BU is the owner's, from :func:`resolve_owner`): contacts, leads, segments, lists."""
    now = utcnow()
    return {
        "owner_type": owner.type,
        "owner_id": owner.id,
        "owning_bu_id": bu_id,
        "created_at": now,
        "modified_at": now,
        "created_by_id": principal.user_id,
        "modified_by_id": principal.user_id,
    }


def resolve_owner(*, db: Session, owner: OwnerRef) -> int:
    """The owning BU an owner implies; NotFound if the owner does not exist."""
    if owner.type == OWNER_USER:
        return org_service.get_user(db=db, user_id=owner.id, field="owner.id").business_unit_id
    return org_service.get_team(db=db, team_id=owner.id, field="owner.id").business_unit_id


def _check_lead_links(
    db: Session, principal: access.Principal, data: dict[str, Any], lead: PersonMixin | None
) -> None:
    """Linking a lead to a contact needs Append on the lead and Append To on the contact."""
    contact_id = data.get("contact_id")
    if contact_id is not None:
        if lead is not None:
            access.require(db, principal, Privilege.APPEND, "lead", lead)
        elif principal.max_level("lead", Privilege.APPEND) == Level.NONE:
            raise Forbidden("linking a lead to a contact needs the append privilege on leads")
        contact = access.get(db, principal=principal, record_type="contact", record_id=contact_id)
        if contact is None:
            raise ValidationFailed(f"contact {contact_id} not found", field="contact_id")
        access.require(db, principal, Privilege.APPEND_TO, "contact", contact)


def _changed(db: Session, kind: Kind, record: PersonMixin) -> None:
    """Contacts feed segments and scores, leads scores: note the change so they follow."""
    if kind.record_type == CONTACT.record_type:
        changes.record(db, changes.CONTACT, contact_ids=[record.id])
    else:
        changes.record(db, changes.LEAD, contact_ids=[record.id])


class DuplicateFound(Conflict):
    """The record would duplicate records the caller may read (SPEC B8): 409, listing them."""

    code = "duplicate"


def _match_out(record: PersonMixin) -> dict[str, Any]:
    return {
        "id": record.id,
        "email": record.email,
        "first_name": record.first_name,
        "last_name": record.last_name,
        "company": record.company,
        "owning_bu_id": record.owning_bu_id,
        "created_at": isoformat(record.created_at),
    }


def readable_duplicates(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    values: dict[str, Any],
    bu_id: int,
    exclude_id: int | None = None,
) -> list[PersonMixin]:
    """The records the published rules say are the same person as ``values`` (in ``bu_id``
    with BU scoping on), among those the caller may read: what a 409 names. Matches the
    caller may not read are not revealed, and do not stop the caller (as in Dataverse)."""
    found = matching.find(
        db, record_type=kind.record_type, values=values, bu_id=bu_id, exclude_id=exclude_id
    )
    return [r for r in found if access.can(db, principal, Privilege.READ, kind.record_type, r)]


def _readable_matches(
    db: Session, principal: access.Principal, kind: Kind, values: dict[str, Any], record: Any
) -> list[PersonMixin]:
    return readable_duplicates(
        db=db,
        principal=principal,
        kind=kind,
        values=values,
        bu_id=record.owning_bu_id,
        exclude_id=record.id,
    )


def _refuse_duplicates(
    db: Session, principal: access.Principal, kind: Kind, values: dict[str, Any], bu_id: int
) -> None:
    found = readable_duplicates(db=db, principal=principal, kind=kind, values=values, bu_id=bu_id)
    if found:
        _refuse(kind, values, found, updating=False)


def _refuse(
    kind: Kind, values: dict[str, Any], found: list[PersonMixin], *, updating: bool
) -> None:
    if found:
        what = "this" if updating else "the new"
        raise DuplicateFound(
            f"{what} {kind.label} would duplicate {len(found)} {kind.label}"
            f"{'s' if len(found) != 1 else ''} you may read ({_label(found[0])}, "
            f"{kind.label} {found[0].id}{', …' if len(found) > 1 else ''}); "
            "open the existing one, or send allow_duplicate=true to create it anyway",
            field="email" if values.get("email") else None,
            extra={"matches": [_match_out(r) for r in found]},
        )


def create(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record_in: ContactCreate,
    allow_duplicate: bool = False,
    origin: str = "manual",
) -> PersonMixin:
    """Create a record owned by ``record_in.owner`` (default: the caller) in the owner's BU.
    Unless ``allow_duplicate``, a record the published duplicate-detection rules find among
    those the caller may read refuses it (DuplicateFound). ``origin`` says how it came
    (``manual``, ``import``; reports count contacts by it)."""
    owner = record_in.owner or OwnerRef(type="user", id=principal.user_id)
    bu_id = resolve_owner(db=db, owner=owner)
    access.can_create_in(
        db,
        principal,
        kind.record_type,
        owner_type=owner.type,
        owner_id=owner.id,
        owning_bu_id=bu_id,
    )
    data = record_in.model_dump(exclude={"owner"})
    if kind.model is Lead:
        _check_lead_links(db, principal, data, None)
    columns = {
        **data,
        **new_record_columns(owner=owner, bu_id=bu_id, principal=principal),
        "origin": origin,
    }
    rules = [] if allow_duplicate else matching.published_rules(db, kind.record_type)
    check = bool(rules)
    if check:
        matching.lock(db, rules=rules, values=data, bu_id=bu_id)
        _refuse_duplicates(db, principal, kind, data, bu_id)
    record, _ = matching.create_claiming(db, model=kind.model, columns=columns, claim=check)
    if record is None:  # made by someone else since we looked
        _refuse_duplicates(db, principal, kind, data, bu_id)
        record, _ = matching.create_claiming(db, model=kind.model, columns=columns, claim=False)
    assert record is not None
    _changed(db, kind, record)
    return record


def update(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record_id: int,
    record_in: PersonFields,
    allow_duplicate: bool = False,
) -> PersonMixin:
    """Change the fields sent (PATCH semantics); needs Write. A change that makes the record
    a duplicate of others the caller may read is refused unless ``allow_duplicate``."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.WRITE
    )
    data = record_in.model_dump(include=record_in.model_fields_set)
    # Re-keying may touch the other records of either email: claim them first, as imports do.
    matching.hold(db, record_type=kind.record_type, emails=[record.email, data.get("email")])
    if kind.model is Lead:
        _check_lead_links(db, principal, data, record)
    person_changed = any(
        name in data and data[name] != getattr(record, name) for name in PERSON_FIELDS
    )
    if person_changed and not allow_duplicate:
        # Refused only when the change makes it match records it did not match before.
        values = {name: getattr(record, name) for name in PERSON_FIELDS}
        before = {r.id for r in _readable_matches(db, principal, kind, values, record)}
        values.update({k: v for k, v in data.items() if k in PERSON_FIELDS})
        found = [r for r in _readable_matches(db, principal, kind, values, record)]
        if {r.id for r in found} - before:
            _refuse(kind, values, [r for r in found if r.id not in before], updating=True)
    old_email = record.email
    for key, value in data.items():
        setattr(record, key, value)
    record.modified_at = utcnow()
    record.modified_by_id = principal.user_id
    db.flush()
    if record.email != old_email:
        matching.rekey(db, record_type=kind.record_type, emails=[old_email, record.email])
    _changed(db, kind, record)
    return record


def delete_record(*, db: Session, principal: access.Principal, kind: Kind, record_id: int) -> None:
    """Delete a record (needs Delete), leaving a tombstone so syncs never re-create it."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.DELETE
    )
    matching.hold(db, record_type=kind.record_type, emails=[record.email])
    db.add(
        Tombstone(
            record_type=kind.record_type,
            record_id=record.id,
            email=record.email,
            owning_bu_id=record.owning_bu_id,
            deleted_by_id=principal.user_id,
        )
    )
    db.execute(
        delete(RecordShare).where(
            RecordShare.record_type == kind.record_type, RecordShare.record_id == record.id
        )
    )
    db.delete(record)
    db.flush()
    matching.rekey(db, record_type=kind.record_type, emails=[record.email])


@dataclass(frozen=True)
class Qualified:
    """A lead qualified into a contact: ``created`` False when it was linked to a contact
    the caller may read that has the lead's email (no duplicate is made)."""

    lead: Lead
    contact: Contact
    created: bool


PERSON_FIELDS = ("email", "first_name", "last_name", "company", "job_title", "phone", "country")


def qualify(*, db: Session, principal: access.Principal, lead_id: int) -> Qualified:
    """Qualify a lead: its contact becomes the one it names, else a readable contact with
    its email, else a new contact (owned by the caller) from its person fields; the lead is
    then ``qualified`` and linked. Needs Write and Append on the lead, Append To on the
    contact, and Create on contacts when one is made."""
    lead = cast(
        Lead,
        get(db=db, principal=principal, kind=LEAD, record_id=lead_id, privilege=Privilege.WRITE),
    )
    if lead.status == "qualified" and lead.contact_id is not None:
        raise Conflict(
            f"this lead is already qualified into contact {lead.contact_id}", field="status"
        )
    contact: Contact | None = None
    if lead.contact_id is not None:
        contact = cast(
            Contact | None,
            access.get(db, principal=principal, record_type="contact", record_id=lead.contact_id),
        )
    if contact is None and lead.email:
        contact = db.scalars(
            access.scope(
                select(Contact).where(Contact.email == lead.email).order_by(Contact.id).limit(1),
                principal=principal,
                record_type="contact",
            )
        ).first()
    created = contact is None
    if contact is None:
        fields = {name: getattr(lead, name) for name in PERSON_FIELDS}
        contact = cast(
            Contact,
            create(
                db=db,
                principal=principal,
                kind=CONTACT,
                record_in=ContactCreate.model_construct(**fields, custom=dict(lead.custom)),
                allow_duplicate=True,  # looked for a readable one above
            ),
        )
    _check_lead_links(db, principal, {"contact_id": contact.id}, lead)
    lead.contact_id, lead.status = contact.id, "qualified"
    lead.modified_at = utcnow()
    lead.modified_by_id = principal.user_id
    db.flush()
    return Qualified(lead=lead, contact=contact, created=created)


def is_tombstoned(
    *, db: Session, record_type: str, email: str, owning_bu_id: int | None = None
) -> bool:
    """True when a record with this email was deleted (in this BU, when one is given)."""
    stmt = select(Tombstone.id).where(
        Tombstone.record_type == record_type, Tombstone.email == email.strip().casefold()
    )
    if owning_bu_id is not None:
        stmt = stmt.where(Tombstone.owning_bu_id == owning_bu_id)
    return db.execute(stmt.limit(1)).first() is not None


def _owner_can_read(db: Session, owner: OwnerRef, record_type: str) -> bool:
    if owner.type == OWNER_USER:
        return (
            directory.load_principal(db, owner.id).max_level(record_type, Privilege.READ)
            > Level.NONE
        )
    # A team can own a record only if one of the team's own roles grants Read on it.
    row = db.execute(
        select(RolePrivilege.level)
        .join(TeamRole, TeamRole.role_id == RolePrivilege.role_id)
        .where(
            TeamRole.team_id == owner.id,
            RolePrivilege.record_type == record_type,
            RolePrivilege.privilege == Privilege.READ.value,
        )
    ).first()
    return row is not None


def assign(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int, owner: OwnerRef
) -> PersonMixin:
    """Give a record to another owner (needs Assign); it moves to the new owner's BU.

    The new owner must hold Read on the type ("read privilege check for owner").
    """
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.ASSIGN
    )
    bu_id = resolve_owner(db=db, owner=owner)
    if not _owner_can_read(db, owner, kind.record_type):
        raise ValidationFailed(
            f"the new owner ({owner.type} {owner.id}) has no read privilege on "
            f"{kind.record_type}, so it cannot own one",
            field="owner",
        )
    before = {"owner": dict(record.owner), "owning_bu_id": record.owning_bu_id}
    record.owner_type, record.owner_id, record.owning_bu_id = owner.type, owner.id, bu_id
    after = {"owner": dict(record.owner), "owning_bu_id": record.owning_bu_id}
    _audit(db, principal, kind, record, "assign", before, after)
    record.modified_at = utcnow()
    record.modified_by_id = principal.user_id
    db.flush()
    if before["owning_bu_id"] != bu_id and matching.scoping(db):
        matching.rekey(db, record_type=kind.record_type, emails=[record.email])
    _changed(db, kind, record)
    return record


def list_shares(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int
) -> list[RecordShare]:
    """The shares on a record (anyone who may read it may see who else has it)."""
    get(db=db, principal=principal, kind=kind, record_id=record_id)
    return list(
        db.execute(
            select(RecordShare)
            .where(RecordShare.record_type == kind.record_type, RecordShare.record_id == record_id)
            .order_by(RecordShare.id)
        ).scalars()
    )


def _rights_text(rights: Iterable[Privilege]) -> str:
    return ", ".join(p.value for p in SHARE_BITS if p in set(rights))


def _label(record: PersonMixin) -> str:
    name = " ".join(n for n in (record.first_name, record.last_name) if n)
    return name or record.email or f"#{record.id}"


def _share_state(row: RecordShare) -> dict[str, Any]:
    return {
        "principal_type": row.principal_type,
        "principal_id": None if row.principal_type == PRINCIPAL_ORGANIZATION else row.principal_id,
        "rights": [p.value for p in rights_from_mask(row.rights)],
    }


def _audit(
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record: PersonMixin,
    verb: str,
    before: Any,
    after: Any,
) -> None:
    audit.log(
        db,
        actor=principal,
        action=f"{kind.record_type}.{verb}",
        target_type=kind.record_type,
        target_id=record.id,
        target_label=_label(record),
        before=before,
        after=after,
    )


def _require_organization_share(principal: access.Principal, kind: Kind, field: str) -> None:
    """Sharing with, or unsharing from, the whole organisation takes organization-level
    Share: it changes every user's access at once."""
    if principal.max_level(kind.record_type, Privilege.SHARE) < Level.ORGANIZATION:
        raise Forbidden(
            f"sharing a {kind.label} with the whole organisation, or revoking such a share, "
            "needs the share privilege at organization level; share with users or teams instead",
            field=field,
        )


def share(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int, share_in: ShareIn
) -> RecordShare:
    """Grant a share, or change an existing one's rights; needs Share on the record.

    Nobody grants more than they hold: every right given must be one the caller holds on
    the record now, and a repeated share changes only the rights the caller holds (the
    others, granted by someone else, stay as they were). A share always includes Read
    (without it no other right can be used), and a share with the whole organisation needs
    the Share privilege at organization level. Rights also never exceed what the
    recipient's own privileges allow (the engine checks both at use).
    """
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.SHARE
    )
    requested = {Privilege(r) for r in share_in.rights}
    if Privilege.READ not in requested:
        raise ValidationFailed(
            "a share must include read: without it the recipient cannot see the record, so "
            "no other right could be used",
            field="rights",
        )
    if share_in.principal_type == PRINCIPAL_ORGANIZATION:
        principal_id = 0
        _require_organization_share(principal, kind, "principal_type")
    elif share_in.principal_id is None:
        raise ValidationFailed("principal_id is required for a user or team", field="principal_id")
    else:
        principal_id = share_in.principal_id
        if share_in.principal_type == PRINCIPAL_USER:
            org_service.get_user(db=db, user_id=principal_id, field="principal_id")
        elif share_in.principal_type == PRINCIPAL_TEAM:
            org_service.get_team(db=db, team_id=principal_id, field="principal_id")
    held = access.held_rights(db, principal, kind.record_type, record)
    beyond = requested - held
    if beyond:
        raise Forbidden(
            f"you may share only rights you hold on this {kind.label}; you do not hold "
            f"{_rights_text(beyond)} (you hold {_rights_text(held)})",
            field="rights",
        )
    existing = db.execute(
        select(RecordShare).where(
            RecordShare.record_type == kind.record_type,
            RecordShare.record_id == record.id,
            RecordShare.principal_type == share_in.principal_type,
            RecordShare.principal_id == principal_id,
        )
    ).scalar()
    mask = rights_mask(requested)
    if existing is not None:
        before = _share_state(existing)
        # Rights the caller does not hold were given by someone who does: keep them.
        existing.rights = (existing.rights & ~rights_mask(held)) | mask
        db.flush()
        _audit(db, principal, kind, record, "share", before, _share_state(existing))
        return existing
    row = RecordShare(
        record_type=kind.record_type,
        record_id=record.id,
        principal_type=share_in.principal_type,
        principal_id=principal_id,
        rights=mask,
        created_by_id=principal.user_id,
    )
    db.add(row)
    db.flush()
    _audit(db, principal, kind, record, "share", None, _share_state(row))
    return row


def unshare(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int, share_id: int
) -> None:
    """Revoke a share; needs Share on the record and every right the share grants (and
    organization-level Share for an organisation-wide one)."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.SHARE
    )
    row = db.get(RecordShare, share_id)
    if row is None or row.record_id != record_id or row.record_type != kind.record_type:
        raise NotFound(f"share {share_id} not found on this {kind.label}", field="share_id")
    if row.principal_type == PRINCIPAL_ORGANIZATION:
        _require_organization_share(principal, kind, "share_id")
    held = access.held_rights(db, principal, kind.record_type, record)
    beyond = set(rights_from_mask(row.rights)) - held
    if beyond:
        raise Forbidden(
            f"this share grants {_rights_text(beyond)}, which you do not hold on this "
            f"{kind.label}: only someone who holds every right a share grants may revoke it",
            field="share_id",
        )
    _audit(db, principal, kind, record, "unshare", _share_state(row), None)
    db.delete(row)
    db.flush()
