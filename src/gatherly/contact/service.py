"""Contacts and leads: create, read, list, update, delete, assign, share (SPEC M, B3, T8).

Both kinds share one implementation, parameterised by ``Kind``; every read goes through
the access engine, and a record the caller may not read is reported as not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, SQLColumnExpression, delete, func, or_, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege, rights_mask
from gatherly.access.models import (
    OWNER_TEAM,
    OWNER_USER,
    PRINCIPAL_ORGANIZATION,
    PRINCIPAL_TEAM,
    PRINCIPAL_USER,
    RecordShare,
)
from gatherly.contact.models import Contact, Lead, PersonMixin, Tombstone
from gatherly.contact.schemas import ContactCreate, OwnerRef, PersonFields, ShareIn
from gatherly.core import changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.org import service as org_service
from gatherly.org.models import BusinessUnit, RolePrivilege, Team, TeamRole, User


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


def _filtered(kind: Kind, flt: ListFilter) -> Select[Any]:
    """The filters alone; callers add the access predicate in the form their query needs."""
    m = kind.model
    stmt = select(m)
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(m.first_name).like(like),
                func.lower(m.last_name).like(like),
                func.lower(m.company).like(like),
                m.email.like(like),
            )
        )
    if flt.email:
        stmt = stmt.where(m.email == flt.email.strip().casefold())
    if flt.country:
        stmt = stmt.where(m.country == flt.country.strip().upper())
    if flt.company:
        stmt = stmt.where(func.lower(m.company) == flt.company.strip().lower())
    if flt.owning_bu_id is not None:
        stmt = stmt.where(m.owning_bu_id == flt.owning_bu_id)
    if flt.owner_type is not None:
        stmt = stmt.where(m.owner_type == flt.owner_type)
    if flt.owner_id is not None:
        stmt = stmt.where(m.owner_id == flt.owner_id)
    if flt.status is not None and kind.model is Lead:
        stmt = stmt.where(Lead.status == flt.status)
    return stmt


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
    return paginate(
        db,
        access.scope(_filtered(kind, flt), principal=principal, record_type=kind.record_type),
        id_column=kind.model.id,
        sortable=sortable(kind),
        sort=sort,
        cursor=cursor,
        limit=limit,
    )


def count_records(*, db: Session, principal: access.Principal, kind: Kind, flt: ListFilter) -> int:
    """How many records match, among those the caller may read."""
    # The unfiltered count (the common one) reuses a statement built once per principal.
    stmt = None if flt == ListFilter() else _filtered(kind, flt)
    return access.count(db, stmt, principal=principal, record_type=kind.record_type)


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


@dataclass(frozen=True)
class OwnerNames:
    """Display names of records' owners and owning BUs; a missing key means "not shown"."""

    owners: dict[tuple[str, int], str]
    business_units: dict[int, str]

    def owner(self, record: PersonMixin) -> str | None:
        """The owner's name, or None when the caller may not read users (or teams)."""
        return self.owners.get((record.owner_type, record.owner_id))

    def business_unit(self, record: PersonMixin) -> str | None:
        """The owning BU's name, or None when the caller may not read BUs."""
        return self.business_units.get(record.owning_bu_id)


def owner_names(
    db: Session, *, principal: access.Principal, records: Sequence[PersonMixin]
) -> OwnerNames:
    """Names of the owners and owning BUs of ``records`` (records the caller already read).

    Users, teams and BUs are organization-owned types: their names are given only when the
    caller holds Read on that type (every built-in role does), in one query per type.
    """

    def may_read(record_type: str) -> bool:
        return principal.max_level(record_type, Privilege.READ) > Level.NONE

    user_ids = {r.owner_id for r in records if r.owner_type == OWNER_USER}
    team_ids = {r.owner_id for r in records if r.owner_type != OWNER_USER}
    bu_ids = {r.owning_bu_id for r in records}
    owners: dict[tuple[str, int], str] = {}
    if user_ids and may_read("user"):
        for uid, username, full_name in db.execute(
            select(User.id, User.username, User.full_name).where(User.id.in_(user_ids))
        ):
            owners[(OWNER_USER, uid)] = full_name or username
    if team_ids and may_read("team"):
        for tid, name in db.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))):
            owners[(OWNER_TEAM, tid)] = name
    bus: dict[int, str] = {}
    if bu_ids and may_read("business_unit"):
        rows = db.execute(
            select(BusinessUnit.id, BusinessUnit.name).where(BusinessUnit.id.in_(bu_ids))
        )
        bus = {bu_id: name for bu_id, name in rows}
    return OwnerNames(owners=owners, business_units=bus)


def resolve_owner(db: Session, owner: OwnerRef) -> int:
    """The owning BU an owner implies; NotFound if the owner does not exist."""
    if owner.type == OWNER_USER:
        return org_service.get_user(db, user_id=owner.id, field="owner.id").business_unit_id
    return org_service.get_team(db, team_id=owner.id, field="owner.id").business_unit_id


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
    """Contacts feed segments: note the change so dependent segments refresh."""
    if kind.record_type == CONTACT.record_type:
        changes.record(db, changes.CONTACT, contact_ids=[record.id])


def create(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record_in: ContactCreate,
) -> PersonMixin:
    """Create a record owned by ``record_in.owner`` (default: the caller) in the owner's BU."""
    owner = record_in.owner or OwnerRef(type="user", id=principal.user_id)
    bu_id = resolve_owner(db, owner)
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
    now = utcnow()
    record = kind.model(
        **data,
        owner_type=owner.type,
        owner_id=owner.id,
        owning_bu_id=bu_id,
        created_at=now,
        modified_at=now,
        created_by_id=principal.user_id,
        modified_by_id=principal.user_id,
    )
    db.add(record)
    db.flush()
    _changed(db, kind, record)
    return record


def update(
    *,
    db: Session,
    principal: access.Principal,
    kind: Kind,
    record_id: int,
    record_in: PersonFields,
) -> PersonMixin:
    """Change the fields sent (PATCH semantics); needs Write."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.WRITE
    )
    data = record_in.model_dump(include=record_in.model_fields_set)
    if kind.model is Lead:
        _check_lead_links(db, principal, data, record)
    for key, value in data.items():
        setattr(record, key, value)
    record.modified_at = utcnow()
    record.modified_by_id = principal.user_id
    db.flush()
    _changed(db, kind, record)
    return record


def delete_record(*, db: Session, principal: access.Principal, kind: Kind, record_id: int) -> None:
    """Delete a record (needs Delete), leaving a tombstone so syncs never re-create it."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.DELETE
    )
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


def is_tombstoned(
    db: Session, *, record_type: str, email: str, owning_bu_id: int | None = None
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
            access.load_principal(db, owner.id).max_level(record_type, Privilege.READ) > Level.NONE
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
    bu_id = resolve_owner(db, owner)
    if not _owner_can_read(db, owner, kind.record_type):
        raise ValidationFailed(
            f"the new owner ({owner.type} {owner.id}) has no read privilege on "
            f"{kind.record_type}, so it cannot own one",
            field="owner",
        )
    record.owner_type, record.owner_id, record.owning_bu_id = owner.type, owner.id, bu_id
    record.modified_at = utcnow()
    record.modified_by_id = principal.user_id
    db.flush()
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


def share(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int, share_in: ShareIn
) -> RecordShare:
    """Grant (or replace) a share; needs Share. Rights never exceed the recipient's privileges."""
    record = get(
        db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.SHARE
    )
    if share_in.principal_type == PRINCIPAL_ORGANIZATION:
        principal_id = 0
    elif share_in.principal_id is None:
        raise ValidationFailed("principal_id is required for a user or team", field="principal_id")
    else:
        principal_id = share_in.principal_id
        if share_in.principal_type == PRINCIPAL_USER:
            org_service.get_user(db, user_id=principal_id, field="principal_id")
        elif share_in.principal_type == PRINCIPAL_TEAM:
            org_service.get_team(db, team_id=principal_id, field="principal_id")
    mask = rights_mask({Privilege(r) for r in share_in.rights})
    existing = db.execute(
        select(RecordShare).where(
            RecordShare.record_type == kind.record_type,
            RecordShare.record_id == record.id,
            RecordShare.principal_type == share_in.principal_type,
            RecordShare.principal_id == principal_id,
        )
    ).scalar()
    if existing is not None:
        existing.rights = mask
        db.flush()
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
    return row


def unshare(
    *, db: Session, principal: access.Principal, kind: Kind, record_id: int, share_id: int
) -> None:
    """Revoke a share; needs Share on the record."""
    get(db=db, principal=principal, kind=kind, record_id=record_id, privilege=Privilege.SHARE)
    row = db.get(RecordShare, share_id)
    if row is None or row.record_id != record_id or row.record_type != kind.record_type:
        raise NotFound(f"share {share_id} not found on this {kind.label}", field="share_id")
    db.delete(row)
    db.flush()
