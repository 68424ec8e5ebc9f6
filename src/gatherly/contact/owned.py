"""Owned records of every kind — contacts' siblings: segments, lists, messages, sends,
journeys — read and made through the access engine alike: the columns of a new one, one
read by id, a page of them, and the stamp of a change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.schemas import OwnerRef
from gatherly.core.db import icontains, utcnow
from gatherly.core.exceptions import NotFound
from gatherly.core.pagination import Page, paginate


def new_columns(
    db: Session, principal: access.Principal, record_type: str, owner: OwnerRef | None
) -> dict[str, Any]:
    """The ownership and audit columns of a new record for ``owner`` (default: the
    caller), once the caller is found to be allowed to create it there (Forbidden)."""
    owner = owner or OwnerRef(type="user", id=principal.user_id)
    bu_id = contact_service.resolve_owner(db=db, owner=owner)
    access.can_create_in(
        db, principal, record_type, owner_type=owner.type, owner_id=owner.id, owning_bu_id=bu_id
    )
    return contact_service.new_record_columns(owner=owner, bu_id=bu_id, principal=principal)


def get(
    db: Session,
    principal: access.Principal,
    record_type: str,
    record_id: int,
    *,
    noun: str,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> Any:
    """A record the caller may read (NotFound, naming ``noun`` and ``field``, otherwise),
    checked for ``privilege``."""
    found = access.get(db, principal=principal, record_type=record_type, record_id=record_id)
    if found is None:
        raise NotFound(f"{noun} {record_id} not found", field=field)
    if privilege != Privilege.READ:
        access.require(db, principal, privilege, record_type, found)
    return found


def page(
    db: Session,
    principal: access.Principal,
    model: Any,
    record_type: str,
    *,
    q: str | None,
    cursor: str | None,
    limit: int,
    where: Any = None,
    sortable: dict[str, Any] | None = None,
) -> Page:
    """A page of the records the caller may read, newest first; ``q`` searches names."""
    stmt: Select[Any] = select(model)
    if q:
        stmt = stmt.where(icontains(q, model.name))
    if where is not None:
        stmt = stmt.where(where)
    return paginate(
        db,
        access.scope(stmt, principal=principal, record_type=record_type),
        id_column=model.id,
        sortable=sortable or {"id": model.id, "name": model.name, "modified_at": model.modified_at},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def touch(row: Any, principal: access.Principal) -> None:
    """Stamp a change by the caller."""
    row.modified_at, row.modified_by_id = utcnow(), principal.user_id
