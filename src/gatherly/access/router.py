"""``GET /access/explain``: why a user can or cannot act on a record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gatherly.access import engine, registry
from gatherly.access.levels import Privilege
from gatherly.api.deps import CurrentPrincipal, DbSession
from gatherly.api.params import QueryId
from gatherly.core.exceptions import NotFound, ValidationFailed

router = APIRouter(tags=["access"])


@router.get(
    "/access/explain",
    summary="Explain which role, level, ownership or share grants or denies a privilege",
)
def explain(
    db: DbSession,
    principal: CurrentPrincipal,
    record_type: str,
    record_id: QueryId = None,
    privilege: Privilege = Privilege.READ,
    user_id: QueryId = None,
) -> dict[str, Any]:
    """Your own access is always yours to explain; another user's needs write on users."""
    if user_id is not None and user_id != principal.user_id:
        engine.require(db, principal, Privilege.WRITE, "user")
        subject = engine.load_principal(db, user_id)
    else:
        subject = principal
    rtype = registry.get(record_type)
    record = None
    if not rtype.organization_owned:
        if record_id is None:
            raise ValidationFailed("record_id is required for this record type", field="record_id")
        # An explainer who may not read the record must not learn that it exists.
        record = engine.get(db, principal=principal, record_type=record_type, record_id=record_id)
        if record is None:
            raise NotFound(f"{record_type} {record_id} not found", field="record_id")
    return engine.explain(db, subject, privilege, record_type, record).as_dict()
