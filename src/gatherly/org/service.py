"""Business units, users, teams, roles and tokens: the organisation's lifecycle (SPEC B1–B3).

Invariants kept here: one root BU; the closure table mirrors the tree; every BU has one
default team whose members are exactly the BU's users; built-in roles are not edited by hand.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import delete, func, insert, literal, select, true, update
from sqlalchemy.orm import Session, aliased

from gatherly.access import registry
from gatherly.access.levels import Level, Privilege
from gatherly.access.models import OWNER_TEAM, OWNER_USER
from gatherly.core import audit, changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, NotFound, Unauthenticated, ValidationFailed
from gatherly.org.models import (
    ApiToken,
    BusinessUnit,
    BusinessUnitClosure,
    FeatureSwitch,
    RolePrivilege,
    SecurityRole,
    Team,
    TeamMember,
    TeamRole,
    User,
    UserRole,
)

# Marks a keyword argument the caller did not give (None is a value: "clear it").
UNSET: Any = object()
TOKEN_USE_RESOLUTION = timedelta(minutes=5)  # how precise last_used_at is
TOKEN_PREFIX = "gly_"  # noqa: S105 - a prefix, not a secret
_hasher = PasswordHasher()

# ------------------------------------------------------------------ business units


def get_root(db: Session) -> BusinessUnit:
    """The organisation (root BU)."""
    root = db.execute(select(BusinessUnit).where(BusinessUnit.parent_id.is_(None))).scalar()
    if root is None:
        raise NotFound("the organisation has no root business unit; run 'gatherly db upgrade'")
    return root


def get_bu(db: Session, *, bu_id: int, field: str = "business_unit_id") -> BusinessUnit:
    """A BU by id, or NotFound naming ``field``."""
    bu = db.get(BusinessUnit, bu_id)
    if bu is None:
        raise NotFound(f"business unit {bu_id} not found", field=field)
    return bu


def _check_name_free(
    db: Session,
    model: type[BusinessUnit] | type[Team] | type[SecurityRole],
    name: str,
    *,
    exclude_id: int | None = None,
) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("name must not be empty", field="name")
    stmt = select(model.id).where(func.lower(model.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.execute(stmt).first():
        kind = {BusinessUnit: "business unit", Team: "team", SecurityRole: "role"}[model]
        raise Conflict(f"a {kind} named {name!r} already exists", field="name")
    return name


def create_bu(
    db: Session, *, name: str, parent_id: int | None, description: str = ""
) -> BusinessUnit:
    """Create a BU under ``parent_id`` (None only for the first, root BU) with its default team."""
    name = _check_name_free(db, BusinessUnit, name)
    _check_name_free(db, Team, name)
    if parent_id is None:
        if db.execute(select(BusinessUnit.id).where(BusinessUnit.parent_id.is_(None))).first():
            raise ValidationFailed("a parent business unit is required", field="parent_id")
    else:
        get_bu(db, bu_id=parent_id, field="parent_id")
    bu = BusinessUnit(name=name, parent_id=parent_id, description=description)
    db.add(bu)
    db.flush()
    db.add(BusinessUnitClosure(ancestor_id=bu.id, descendant_id=bu.id, depth=0))
    if parent_id is not None:
        db.execute(
            insert(BusinessUnitClosure).from_select(
                ["ancestor_id", "descendant_id", "depth"],
                select(
                    BusinessUnitClosure.ancestor_id,
                    literal(bu.id),
                    BusinessUnitClosure.depth + 1,
                ).where(BusinessUnitClosure.descendant_id == parent_id),
            )
        )
    db.add(
        Team(
            name=name,
            business_unit_id=bu.id,
            default_for_bu_id=bu.id,
            description=f"Default team of {name}; its members are the BU's users.",
        )
    )
    db.flush()
    return bu


def subtree_ids(db: Session, bu_id: int) -> list[int]:
    """Ids of ``bu_id`` and every BU below it."""
    return list(
        db.execute(
            select(BusinessUnitClosure.descendant_id).where(
                BusinessUnitClosure.ancestor_id == bu_id
            )
        ).scalars()
    )


def update_bu(
    db: Session,
    *,
    bu_id: int,
    name: str | None = None,
    description: str | None = None,
    parent_id: int | None = None,
) -> BusinessUnit:
    """Rename, describe or re-parent a BU; re-parenting rewrites the closure in SQL."""
    bu = get_bu(db, bu_id=bu_id, field="bu_id")
    if name is not None and name.strip() != bu.name:
        team = default_team(db, bu_id=bu.id)
        bu.name = _check_name_free(db, BusinessUnit, name, exclude_id=bu.id)
        _check_name_free(db, Team, name, exclude_id=team.id)
        team.name = bu.name
    if description is not None:
        bu.description = description
    if parent_id is not None and parent_id != bu.parent_id:
        _reparent(db, bu, parent_id)
    db.flush()
    return bu


def _reparent(db: Session, bu: BusinessUnit, parent_id: int) -> None:
    if bu.parent_id is None:
        raise ValidationFailed("the root business unit cannot be moved", field="parent_id")
    get_bu(db, bu_id=parent_id, field="parent_id")
    moving = subtree_ids(db, bu.id)
    if parent_id in moving:
        raise ValidationFailed(
            "a business unit cannot be moved under itself or one of its descendants",
            field="parent_id",
        )
    # Drop the links from the old ancestors to the moving subtree, then link the new ones.
    db.execute(
        delete(BusinessUnitClosure).where(
            BusinessUnitClosure.descendant_id.in_(moving),
            BusinessUnitClosure.ancestor_id.not_in(moving),
        )
    )
    above = aliased(BusinessUnitClosure)
    below = aliased(BusinessUnitClosure)
    db.execute(
        insert(BusinessUnitClosure).from_select(
            ["ancestor_id", "descendant_id", "depth"],
            # Every ancestor of the new parent times every node of the moving subtree.
            select(above.ancestor_id, below.descendant_id, above.depth + below.depth + 1)
            .select_from(above)
            .join(below, true())
            .where(above.descendant_id == parent_id)
            .where(below.ancestor_id == bu.id),
        )
    )
    bu.parent_id = parent_id


def delete_bu(db: Session, *, bu_id: int) -> None:
    """Delete an empty BU; refused while it has children, users, teams or records."""
    bu = get_bu(db, bu_id=bu_id, field="bu_id")
    if bu.parent_id is None:
        raise Conflict("the root business unit cannot be deleted")
    reasons = []
    if db.execute(select(BusinessUnit.id).where(BusinessUnit.parent_id == bu.id)).first():
        reasons.append("child business units")
    if db.execute(select(User.id).where(User.business_unit_id == bu.id)).first():
        reasons.append("users")
    if db.execute(
        select(Team.id).where(Team.business_unit_id == bu.id, Team.default_for_bu_id.is_(None))
    ).first():
        reasons.append("teams")
    for rtype in registry.owned_types():
        if db.execute(select(rtype.model.id).where(rtype.model.owning_bu_id == bu.id)).first():
            reasons.append(f"{rtype.label.lower()} records")
    if reasons:
        raise Conflict(f"business unit {bu.name!r} still has " + ", ".join(reasons))
    db.execute(delete(Team).where(Team.default_for_bu_id == bu.id))
    db.execute(delete(BusinessUnitClosure).where(BusinessUnitClosure.descendant_id == bu.id))
    db.delete(bu)
    db.flush()


def org_totals(db: Session) -> dict[str, int]:
    """How many BUs, users, teams and roles there are, by record type name."""
    models = {
        "business_unit": BusinessUnit,
        "user": User,
        "team": Team,
        "security_role": SecurityRole,
    }
    return {
        name: db.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in models.items()
    }


def list_bus(db: Session) -> list[BusinessUnit]:
    """Every BU, by name (callers check read on business_unit first, as the API does)."""
    return list(db.execute(select(BusinessUnit).order_by(BusinessUnit.name)).scalars())


def user_counts_by_bu(db: Session) -> dict[int, int]:
    """``{bu_id: number of users}`` for the BUs that have users."""
    rows = db.execute(
        select(User.business_unit_id, func.count()).group_by(User.business_unit_id)
    ).all()
    return {bu_id: n for bu_id, n in rows}


def default_team(db: Session, *, bu_id: int) -> Team:
    """The system-managed default team of a BU."""
    team = db.execute(select(Team).where(Team.default_for_bu_id == bu_id)).scalar_one()
    return team


# ------------------------------------------------------------------ users


def get_user(db: Session, *, user_id: int, field: str = "user_id") -> User:
    """A user by id, or NotFound naming ``field``."""
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", field=field)
    return user


def get_user_by_username(db: Session, *, username: str) -> User:
    """A user by username, or NotFound."""
    user = db.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(f"user {username!r} not found", field="username")
    return user


def create_user(
    db: Session,
    *,
    username: str,
    business_unit_id: int | None = None,
    email: str | None = None,
    full_name: str = "",
    password: str | None = None,
) -> User:
    """Create a user in a BU (the root when none is given) and its default team."""
    username = username.strip()
    if not username:
        raise ValidationFailed("username must not be empty", field="username")
    if db.execute(select(User.id).where(func.lower(User.username) == username.lower())).first():
        raise Conflict(f"a user named {username!r} already exists", field="username")
    bu_id = get_root(db).id if business_unit_id is None else get_bu(db, bu_id=business_unit_id).id
    user = User(
        username=username,
        email=email,
        full_name=full_name,
        business_unit_id=bu_id,
        password_hash=_hasher.hash(password) if password else None,
    )
    db.add(user)
    db.flush()
    db.add(TeamMember(team_id=default_team(db, bu_id=bu_id).id, user_id=user.id))
    db.flush()
    return user


def list_users(db: Session, *, search: str = "", limit: int = 100) -> tuple[list[User], int]:
    """Users whose username, full name or email contains ``search`` (case-insensitive), by
    username, at most ``limit``; with the number that match."""
    stmt = select(User)
    needle = search.strip().lower()
    if needle:
        stmt = stmt.where(
            func.lower(User.username).contains(needle, autoescape=True)
            | func.lower(User.full_name).contains(needle, autoescape=True)
            | func.lower(func.coalesce(User.email, "")).contains(needle, autoescape=True)
        )
    total = db.execute(
        stmt.with_only_columns(func.count(), maintain_column_froms=True)
    ).scalar_one()
    users = db.execute(stmt.order_by(User.username).limit(limit)).scalars()
    return list(users), total


def usernames(db: Session, *, user_ids: set[int]) -> dict[int, str]:
    """``{user_id: username}`` for the ids given."""
    if not user_ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()
    return {uid: name for uid, name in rows}


def set_password(db: Session, *, user_id: int, password: str) -> None:
    """Store an argon2 hash of a new password."""
    if len(password) < 8:
        raise ValidationFailed("password must be at least 8 characters", field="password")
    get_user(db, user_id=user_id).password_hash = _hasher.hash(password)


def update_user(
    db: Session,
    *,
    user_id: int,
    full_name: str = UNSET,
    email: str | None = UNSET,
    disabled: bool = UNSET,
    acting_user_id: int | None = None,
) -> User:
    """Change the fields given (``email=None`` clears it); a disabled user keeps their records.

    Raises:
        Conflict: ``acting_user_id`` (who asks) tries to disable their own account, which
            would lock them out mid-session; another administrator must do it.
    """
    if disabled is True and acting_user_id == user_id:
        raise Conflict(
            "you cannot disable your own account; another administrator must do it",
            field="disabled",
        )
    user = get_user(db, user_id=user_id)
    if full_name is not UNSET:
        user.full_name = full_name
    if email is not UNSET:
        user.email = email
    if disabled is not UNSET:
        user.disabled = disabled
    db.flush()
    return user


def owned_record_count(db: Session, *, owner_type: str, owner_id: int) -> dict[str, int]:
    """How many records of each owned type a user or team owns."""
    counts = {}
    for rtype in registry.owned_types():
        m = rtype.model
        counts[rtype.name] = db.execute(
            select(func.count())
            .select_from(m)
            .where(m.owner_type == owner_type, m.owner_id == owner_id)
        ).scalar_one()
    return counts


def move_user(
    db: Session, *, user_id: int, business_unit_id: int, move_records: bool = True
) -> User:
    """Move a user to another BU.

    The user leaves the old default team and joins the new one; role assignments are kept
    (their BU depths now anchor at the new BU). With ``move_records`` the records they own
    follow them to the new BU (the classic model); without, records keep their owning BU
    and the user keeps owner access to them.
    """
    user = get_user(db, user_id=user_id)
    new_bu = get_bu(db, bu_id=business_unit_id)
    if new_bu.id == user.business_unit_id:
        return user
    old_team = default_team(db, bu_id=user.business_unit_id)
    db.execute(
        delete(TeamMember).where(TeamMember.team_id == old_team.id, TeamMember.user_id == user.id)
    )
    db.add(TeamMember(team_id=default_team(db, bu_id=new_bu.id).id, user_id=user.id))
    user.business_unit_id = new_bu.id
    if move_records:
        for rtype in registry.owned_types():
            m = rtype.model
            db.execute(
                update(m)
                .where(m.owner_type == OWNER_USER, m.owner_id == user.id)
                .values(owning_bu_id=new_bu.id)
            )
        # Segment scopes follow their owner's BU, and so do the contacts that moved.
        changes.record(db, changes.OWNER, ref_id=user.id)
    db.flush()
    return user


# ------------------------------------------------------------------ teams


def get_team(db: Session, *, team_id: int, field: str = "team_id") -> Team:
    """A team by id, or NotFound naming ``field``."""
    team = db.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found", field=field)
    return team


def create_team(db: Session, *, name: str, business_unit_id: int, description: str = "") -> Team:
    """Create an owner team in a BU."""
    name = _check_name_free(db, Team, name)
    get_bu(db, bu_id=business_unit_id)
    team = Team(name=name, business_unit_id=business_unit_id, description=description)
    db.add(team)
    db.flush()
    return team


def _manual_team(db: Session, team_id: int) -> Team:
    team = get_team(db, team_id=team_id)
    if team.is_default:
        raise Conflict(
            f"{team.name!r} is a default team: its members are always the users of its "
            "business unit; move the user to another BU instead",
            field="team_id",
        )
    return team


def update_team(
    db: Session,
    *,
    team_id: int,
    name: str | None = None,
    description: str | None = None,
    business_unit_id: int | None = None,
) -> Team:
    """Rename or describe a team, or move it (and the records it owns) to another BU."""
    team = get_team(db, team_id=team_id)
    if name is not None and name.strip() != team.name:
        if team.is_default:
            raise Conflict("a default team is renamed with its business unit", field="name")
        team.name = _check_name_free(db, Team, name, exclude_id=team.id)
    if description is not None:
        team.description = description
    if business_unit_id is not None and business_unit_id != team.business_unit_id:
        _manual_team(db, team_id)
        get_bu(db, bu_id=business_unit_id)
        team.business_unit_id = business_unit_id
        for rtype in registry.owned_types():
            m = rtype.model
            db.execute(
                update(m)
                .where(m.owner_type == OWNER_TEAM, m.owner_id == team.id)
                .values(owning_bu_id=business_unit_id)
            )
    db.flush()
    return team


def delete_team(db: Session, *, team_id: int) -> None:
    """Delete a team that owns no records (default teams go with their BU)."""
    team = _manual_team(db, team_id)
    owned = {
        k: v
        for k, v in owned_record_count(db, owner_type=OWNER_TEAM, owner_id=team.id).items()
        if v
    }
    if owned:
        listing = ", ".join(f"{n} {k}" for k, n in owned.items())
        raise Conflict(f"team {team.name!r} still owns records ({listing}); reassign them first")
    db.delete(team)
    db.flush()


def add_member(db: Session, *, team_id: int, user_id: int) -> None:
    """Add a user to a (non-default) team; adding twice is a no-op."""
    team = _manual_team(db, team_id)
    get_user(db, user_id=user_id)
    if db.get(TeamMember, (team.id, user_id)) is None:
        db.add(TeamMember(team_id=team.id, user_id=user_id))
        db.flush()


def remove_member(db: Session, *, team_id: int, user_id: int) -> None:
    """Remove a user from a (non-default) team; the team's paths end at once."""
    team = _manual_team(db, team_id)
    member = db.get(TeamMember, (team.id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of team {team.name!r}", field="user_id")
    db.delete(member)
    db.flush()


def team_members(db: Session, *, team_id: int) -> list[User]:
    """The members of a team, by username."""
    return list(
        db.execute(
            select(User)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id == team_id)
            .order_by(User.username)
        ).scalars()
    )


def list_teams(db: Session) -> list[Team]:
    """Every team, by name."""
    return list(db.execute(select(Team).order_by(Team.name)).scalars())


def member_counts(db: Session) -> dict[int, int]:
    """``{team_id: number of members}`` for the teams that have members."""
    rows = db.execute(select(TeamMember.team_id, func.count()).group_by(TeamMember.team_id)).all()
    return {team_id: n for team_id, n in rows}


def teams_of_user(db: Session, *, user_id: int) -> list[Team]:
    """The teams a user belongs to (their BU's default team included), by name."""
    return list(
        db.execute(
            select(Team)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.user_id == user_id)
            .order_by(Team.name)
        ).scalars()
    )


# ------------------------------------------------------------------ roles

PrivilegeMap = dict[str, dict[str, Level]]


def get_role(db: Session, *, role_id: int, field: str = "role_id") -> SecurityRole:
    """A role by id, or NotFound naming ``field``."""
    role = db.get(SecurityRole, role_id)
    if role is None:
        raise NotFound(f"role {role_id} not found", field=field)
    return role


def get_role_by_name(db: Session, *, name: str) -> SecurityRole:
    """A role by name (case-insensitive), or NotFound."""
    role = db.execute(
        select(SecurityRole).where(func.lower(SecurityRole.name) == name.lower())
    ).scalar()
    if role is None:
        raise NotFound(f"role {name!r} not found", field="role")
    return role


def role_privileges(db: Session, *, role_id: int) -> PrivilegeMap:
    """``{record_type: {privilege: level}}`` of a role."""
    out: PrivilegeMap = {}
    rows = db.execute(select(RolePrivilege).where(RolePrivilege.role_id == role_id)).scalars()
    for row in rows:
        out.setdefault(row.record_type, {})[row.privilege] = Level(row.level)
    return out


def validate_privileges(raw: dict[str, dict[str, str | int]]) -> PrivilegeMap:
    """Check record types, privileges and levels; organization-owned types take none/organization."""
    out: PrivilegeMap = {}
    for type_name, privileges in raw.items():
        rtype = registry.get(type_name, field=f"privileges.{type_name}")
        for priv_name, level_value in privileges.items():
            where = f"privileges.{type_name}.{priv_name}"
            try:
                priv = Privilege(priv_name)
            except ValueError:
                names = ", ".join(p.value for p in Privilege)
                raise ValidationFailed(
                    f"unknown privilege {priv_name!r}; use {names}", field=where
                ) from None
            try:
                level = Level.parse(level_value)
            except ValueError as exc:
                raise ValidationFailed(str(exc), field=where) from None
            if rtype.organization_owned and level not in (Level.NONE, Level.ORGANIZATION):
                raise ValidationFailed(
                    f"{type_name} is organization-owned: its levels are none or organization",
                    field=where,
                )
            out.setdefault(type_name, {})[priv.value] = level
    return out


def _write_privileges(db: Session, role_id: int, privileges: PrivilegeMap) -> None:
    db.execute(delete(RolePrivilege).where(RolePrivilege.role_id == role_id))
    rows = [
        {"role_id": role_id, "record_type": t, "privilege": p, "level": int(level)}
        for t, privs in privileges.items()
        for p, level in privs.items()
        if level > Level.NONE
    ]
    if rows:
        db.execute(insert(RolePrivilege), rows)


def create_role(
    db: Session, *, name: str, description: str = "", privileges: PrivilegeMap
) -> SecurityRole:
    """Create a custom role with its privileges."""
    role = SecurityRole(name=_check_name_free(db, SecurityRole, name), description=description)
    db.add(role)
    db.flush()
    _write_privileges(db, role.id, privileges)
    db.flush()
    return role


def _custom_role(db: Session, role_id: int) -> SecurityRole:
    role = get_role(db, role_id=role_id)
    if role.is_builtin:
        raise Conflict(
            f"{role.name!r} is a built-in role and is kept as shipped; copy it to change it"
        )
    return role


def update_role(
    db: Session,
    *,
    role_id: int,
    name: str | None = None,
    description: str | None = None,
    privileges: PrivilegeMap | None = None,
) -> SecurityRole:
    """Change a custom role; ``privileges`` replaces the whole set."""
    role = _custom_role(db, role_id)
    if name is not None:
        role.name = _check_name_free(db, SecurityRole, name, exclude_id=role.id)
    if description is not None:
        role.description = description
    if privileges is not None:
        _write_privileges(db, role.id, privileges)
    db.flush()
    return role


def delete_role(db: Session, *, role_id: int) -> None:
    """Delete a custom role and its assignments."""
    db.delete(_custom_role(db, role_id))
    db.flush()


def assign_role(
    db: Session, *, role_id: int, user_id: int | None = None, team_id: int | None = None
) -> None:
    """Give a role to a user or a team (idempotent)."""
    get_role(db, role_id=role_id)
    if user_id is not None:
        get_user(db, user_id=user_id)
        if db.get(UserRole, (user_id, role_id)) is None:
            db.add(UserRole(user_id=user_id, role_id=role_id))
    elif team_id is not None:
        get_team(db, team_id=team_id)
        if db.get(TeamRole, (team_id, role_id)) is None:
            db.add(TeamRole(team_id=team_id, role_id=role_id))
    else:
        raise ValidationFailed("give a user or a team", field="user_id")
    db.flush()


def unassign_role(
    db: Session, *, role_id: int, user_id: int | None = None, team_id: int | None = None
) -> None:
    """Take a role from a user or a team."""
    link: UserRole | TeamRole | None
    if user_id is not None:
        link = db.get(UserRole, (user_id, role_id))
    else:
        link = db.get(TeamRole, (team_id, role_id))
    if link is None:
        raise NotFound(f"role {role_id} is not assigned there", field="role_id")
    db.delete(link)
    db.flush()


def roles_of_user(db: Session, *, user_id: int) -> list[SecurityRole]:
    """Roles assigned directly to a user."""
    return list(
        db.execute(
            select(SecurityRole)
            .join(UserRole)
            .where(UserRole.user_id == user_id)
            .order_by(SecurityRole.name)
        ).scalars()
    )


def roles_of_team(db: Session, *, team_id: int) -> list[SecurityRole]:
    """Roles assigned to a team."""
    return list(
        db.execute(
            select(SecurityRole)
            .join(TeamRole)
            .where(TeamRole.team_id == team_id)
            .order_by(SecurityRole.name)
        ).scalars()
    )


def list_roles(db: Session) -> list[SecurityRole]:
    """Every role, by name."""
    return list(db.execute(select(SecurityRole).order_by(SecurityRole.name)).scalars())


def role_names_by_user(db: Session, *, user_ids: set[int]) -> dict[int, list[str]]:
    """``{user_id: [role name, …]}`` of the roles assigned directly to these users."""
    if not user_ids:
        return {}
    rows = db.execute(
        select(UserRole.user_id, SecurityRole.name)
        .join(SecurityRole, SecurityRole.id == UserRole.role_id)
        .where(UserRole.user_id.in_(user_ids))
        .order_by(SecurityRole.name)
    ).all()
    out: dict[int, list[str]] = {}
    for uid, name in rows:
        out.setdefault(uid, []).append(name)
    return out


def sync_builtin_role(
    db: Session,
    *,
    name: str,
    description: str,
    privileges: PrivilegeMap,
    system_admin: bool = False,
) -> SecurityRole:
    """Create or refresh a built-in role so it matches the code (run on every upgrade)."""
    role = db.execute(select(SecurityRole).where(SecurityRole.name == name)).scalar()
    if role is None:
        role = SecurityRole(name=name)
        db.add(role)
    role.description = description
    role.is_builtin = True
    role.is_system_admin = system_admin
    db.flush()
    _write_privileges(db, role.id, privileges)
    return role


# ------------------------------------------------------------------ API tokens


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Session, *, user_id: int, name: str = "api") -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret, which is never stored nor shown again."""
    get_user(db, user_id=user_id)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id, name=name.strip() or "api", prefix=secret[:10], token_hash=_digest(secret)
    )
    db.add(token)
    db.flush()
    return token, secret


def list_tokens(db: Session, *, user_id: int) -> list[ApiToken]:
    """A user's tokens (without secrets), newest first."""
    return list(
        db.execute(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        ).scalars()
    )


def revoke_token(db: Session, *, user_id: int, token_id: int) -> ApiToken:
    """Revoke a token at once."""
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"token {token_id} not found", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    db.flush()
    return token


def authenticate_token(db: Session, *, secret: str) -> User:
    """The active user behind a bearer token.

    Raises:
        Unauthenticated: unknown or revoked token, or a disabled user.
    """
    token = db.execute(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).scalar()
    if token is None or token.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API token")
    user = db.get(User, token.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("this user is disabled")
    now = utcnow()
    # Record use at most once per interval: writing on every request would make each read
    # a write transaction (on SQLite, a trip through the single write lock).
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
        token.last_used_at = now
    return user


def verify_password(db: Session, *, username: str, password: str) -> User:
    """The active user with this username and password, or Unauthenticated."""
    user = db.execute(select(User).where(User.username == username)).scalar()
    try:
        ok = (
            user is not None
            and user.password_hash is not None
            and _hasher.verify(user.password_hash, password)
        )
    except Exception:  # argon2 raises several mismatch errors; all mean "no"
        ok = False
    if not ok or user is None:
        raise Unauthenticated("wrong username or password")
    if user.disabled:
        raise Unauthenticated("this user is disabled")
    return user


BU_SCOPING = "bu_scoping"
SEGMENT_TOTALS = "segment_totals"
FEATURES = {
    BU_SCOPING: "Business unit scoping (outbound marketing)",
    SEGMENT_TOTALS: "Show segment totals beside what a viewer may read ('visible to you: X of Y')",
}


def feature_enabled(db: Session, name: str) -> bool:
    """Whether an installation-wide switch is on (absent means off)."""
    switch = db.get(FeatureSwitch, name)
    return bool(switch and switch.enabled)


def set_feature(db: Session, *, name: str, enabled: bool, by_user_id: int | None) -> FeatureSwitch:
    """Turn a switch on or off, audited; data is never touched, only how it is read from now
    on. Flipping BU scoping recomputes every segment's membership (on the worker)."""
    if name not in FEATURES:
        raise ValidationFailed(
            f"unknown feature {name!r}; known: {', '.join(sorted(FEATURES))}", field="name"
        )
    switch = db.get(FeatureSwitch, name)
    before = bool(switch and switch.enabled)
    if switch is None:
        switch = FeatureSwitch(name=name, enabled=enabled, changed_by_id=by_user_id)
        db.add(switch)
    elif switch.enabled != enabled:
        switch.enabled = enabled
        switch.changed_at = utcnow()
        switch.changed_by_id = by_user_id
    db.flush()
    if before != enabled:
        audit.log(
            db,
            actor_id=by_user_id,
            action="feature.set",
            target=name,
            enabled=enabled,
            previous=before,
        )
        if name == BU_SCOPING:
            changes.record(db, changes.ALL)
    return switch


def features(db: Session) -> list[FeatureSwitch]:
    """Every known switch with its state (absent ones shown as off, never changed)."""
    stored = {f.name: f for f in db.execute(select(FeatureSwitch)).scalars()}
    return [stored.get(name) or FeatureSwitch(name=name, enabled=False) for name in FEATURES]
