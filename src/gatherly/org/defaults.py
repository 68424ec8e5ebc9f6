"""The organisation every installation starts with: the root BU and the built-in roles.

``ensure_defaults`` runs after every ``gatherly db upgrade``; it is idempotent and keeps
the built-in roles equal to this table, including for record types added by later
releases. Documented in docs/access.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access import registry
from gatherly.access.levels import Level, Privilege
from gatherly.org import service
from gatherly.org.models import BusinessUnit, SecurityEpoch

ROOT_BU_NAME = "Organization"


@dataclass(frozen=True)
class BuiltinRole:
    """A shipped role: one level for every privilege on every owned record type."""

    name: str
    description: str
    level: Level
    system_admin: bool = False


BUILTIN_ROLES = (
    BuiltinRole(
        "System Administrator",
        "Every privilege on every record type, including BUs, users, teams and roles.",
        Level.ORGANIZATION,
        system_admin=True,
    ),
    BuiltinRole(
        "Marketing Administrator",
        "Every privilege on every marketing record in the organisation (organization level).",
        Level.ORGANIZATION,
    ),
    BuiltinRole(
        "Marketing Manager",
        "Every privilege on marketing records in the user's BU and all BUs below it "
        "(parent: child business units level).",
        Level.PARENT_CHILD,
    ),
    BuiltinRole(
        "Marketer",
        "Every privilege on marketing records in the user's own BU (business unit level).",
        Level.BUSINESS_UNIT,
    ),
    BuiltinRole(
        "Marketing Assistant",
        "Every privilege on the records the user or their teams own, or that are shared "
        "with them (user level).",
        Level.USER,
    ),
)


def builtin_privileges(role: BuiltinRole) -> service.PrivilegeMap:
    """The privilege map of a built-in role for the record types registered now."""
    privileges: service.PrivilegeMap = {
        t.name: {p.value: role.level for p in Privilege} for t in registry.owned_types()
    }
    for t in registry.all_types():
        if t.setting:
            # Installation settings (integrations): organization-level marketing roles
            # manage them; nobody else reads them.
            if role.level == Level.ORGANIZATION:
                privileges[t.name] = {p.value: Level.ORGANIZATION for p in Privilege}
        elif t.organization_owned:
            # Everyone may look up BUs, users, teams and roles (to pick owners and read
            # the org chart); changing them takes the System Administrator role.
            privileges[t.name] = {Privilege.READ.value: Level.ORGANIZATION}
    return privileges


def ensure_defaults(db: Session, *, org_name: str = ROOT_BU_NAME) -> BusinessUnit:
    """Create the root BU if missing and bring the built-in roles up to date."""
    root = db.execute(select(BusinessUnit).where(BusinessUnit.parent_id.is_(None))).scalar()
    if root is None:
        root = service.create_bu(
            db=db,
            name=org_name,
            parent_id=None,
            description="The organisation: root of the business-unit tree.",
        )
    for role in BUILTIN_ROLES:
        service.sync_builtin_role(
            db=db,
            name=role.name,
            description=role.description,
            privileges=builtin_privileges(role),
            system_admin=role.system_admin,
        )
    if db.get(SecurityEpoch, 1) is None:
        db.add(SecurityEpoch(id=1, value=0))
    db.flush()
    registry.fire(registry.DEFAULTS, db)
    return root
