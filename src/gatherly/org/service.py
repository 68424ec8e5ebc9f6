"""Business units, users, teams, roles and tokens: the organisation's lifecycle (SPEC B1–B3).

Invariants kept here: one root BU; the closure table mirrors the tree; every BU has one
default team whose members are exactly the BU's users; built-in roles are not edited by hand.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from sqlalchemy import delete, func, insert, literal, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from gatherly.access import engine as access_engine
from gatherly.access import registry
from gatherly.access.engine import Explanation, Principal
from gatherly.access.levels import Level, Privilege
from gatherly.access.models import OWNER_TEAM, OWNER_USER, BusinessUnitClosure, OwnedMixin
from gatherly.core import audit, changes, timezones
from gatherly.core.audit import Actor
from gatherly.core.bounds import parse_id
from gatherly.core.db import folded, icontains, utcnow
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from gatherly.core.pagination import Page, paginate
from gatherly.org import directory
from gatherly.org.models import (
    TOKEN_ACTIVE,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,
    ApiToken,
    BusinessUnit,
    FeatureSwitch,
    InstallationSetting,
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
TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # how precise last_used_at is
TOKEN_PREFIX = "gly_"  # noqa: S105 - a prefix, not a secret
_hasher = PasswordHasher()

# ------------------------------------------------------------------ business units


def _check(
    db: Session, principal: Principal | None, privilege: Privilege, record_type: str
) -> None:
    """A caller acting for a user passes their principal and is checked here; None is the
    operator at the command line (or the product itself), who holds the database."""
    if principal is not None:
        access_engine.require(db, principal, privilege, record_type)


_Directory = TypeVar("_Directory", BusinessUnit, User, Team, SecurityRole)

# What each directory record is audited as: its action prefix, its type and its label.
_AUDITED: dict[type, tuple[str, str, str]] = {
    BusinessUnit: ("business_unit", "business_unit", "name"),
    User: ("user", "user", "username"),
    Team: ("team", "team", "name"),
    SecurityRole: ("role", "security_role", "name"),
}


def _log(
    db: Session,
    actor: Actor,
    action: str,
    record: BusinessUnit | User | Team | SecurityRole,
    before: Any,
    after: Any,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit a change to a BU, user, team or role (``business_unit.rename``, ``user.create`` …)."""
    prefix, target_type, label = _AUDITED[type(record)]
    audit.log(
        db,
        actor=actor,
        action=f"{prefix}.{action}",
        target_type=target_type,
        target_id=record.id,
        target_label=getattr(record, label),
        before=before,
        after=after,
        details=details,
    )


_NAMES = {BusinessUnit: "business unit", User: "user", Team: "team", SecurityRole: "role"}


def _get(
    db: Session,
    model: type[_Directory],
    record_id: int,
    *,
    record_type: str,
    field: str,
    principal: Principal | None,
) -> _Directory:
    """A BU, user, team or role by id for a caller who may read that type; NotFound naming
    ``field`` otherwise."""
    _check(db, principal, Privilege.READ, record_type)
    found = db.get(model, record_id)
    if found is None:
        raise NotFound(f"{_NAMES[model]} {record_id} not found", field=field)
    return found


def get_root(*, db: Session) -> BusinessUnit:
    """The organisation (root BU)."""
    root = db.execute(select(BusinessUnit).where(BusinessUnit.parent_id.is_(None))).scalar()
    if root is None:
        raise NotFound("the organisation has no root business unit; run 'gatherly db upgrade'")
    return root


def get_bu(
    *, db: Session, bu_id: int, field: str = "business_unit_id", principal: Principal | None = None
) -> BusinessUnit:
    """A BU by id, or NotFound naming ``field``."""
    return _get(
        db, BusinessUnit, bu_id, record_type="business_unit", field=field, principal=principal
    )


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
    # The exact name is what the unique constraint holds; any case of it is refused too.
    stmt = select(model.id).where(or_(model.name == name, folded(db, model.name) == name.lower()))
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.execute(stmt).first():
        kind = {BusinessUnit: "business unit", Team: "team", SecurityRole: "role"}[model]
        raise Conflict(f"a {kind} named {name!r} already exists", field="name")
    return name


def _bu_state(db: Session, bu: BusinessUnit) -> dict[str, Any]:
    """What the audit trail records of a BU."""
    parent = db.get(BusinessUnit, bu.parent_id) if bu.parent_id is not None else None
    return {
        "name": bu.name,
        "description": bu.description,
        "parent_id": bu.parent_id,
        "parent": parent.name if parent else None,
    }


def create_bu(
    *,
    db: Session,
    name: str,
    parent_id: int | None,
    description: str = "",
    principal: Principal | None = None,
) -> BusinessUnit:
    """Create a BU under ``parent_id`` (None only for the first, root BU) with its default team."""
    _check(db, principal, Privilege.CREATE, "business_unit")
    name = _check_name_free(db, BusinessUnit, name)
    _check_name_free(db, Team, name)
    if parent_id is None:
        if db.execute(select(BusinessUnit.id).where(BusinessUnit.parent_id.is_(None))).first():
            raise ValidationFailed("a parent business unit is required", field="parent_id")
    else:
        get_bu(db=db, bu_id=parent_id, field="parent_id")
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
    _log(db, principal, "create", bu, None, _bu_state(db, bu))
    return bu


def subtree_ids(*, db: Session, bu_id: int) -> list[int]:
    """Ids of ``bu_id`` and every BU below it."""
    return list(
        db.execute(
            select(BusinessUnitClosure.descendant_id).where(
                BusinessUnitClosure.ancestor_id == bu_id
            )
        ).scalars()
    )


def update_bu(
    *,
    db: Session,
    bu_id: int,
    name: str | None = None,
    description: str | None = None,
    parent_id: int | None = None,
    principal: Principal | None = None,
) -> BusinessUnit:
    """Rename, describe or re-parent a BU; re-parenting rewrites the closure in SQL.

    Audited as ``business_unit.rename``, ``.move`` and ``.update`` (description), one
    entry for each that changed.
    """
    _check(db, principal, Privilege.WRITE, "business_unit")
    bu = get_bu(db=db, bu_id=bu_id, field="bu_id")
    old = _bu_state(db, bu)
    if name is not None and name.strip() != bu.name:
        team = default_team(db=db, bu_id=bu.id)
        bu.name = _check_name_free(db, BusinessUnit, name, exclude_id=bu.id)
        _check_name_free(db, Team, name, exclude_id=team.id)
        team.name = bu.name
    if description is not None:
        bu.description = description
    if parent_id is not None and parent_id != bu.parent_id:
        _reparent(db, bu, parent_id)
        # Parent: child business units levels read along the tree, and a segment's
        # participation criteria see what its owner may read: every segment may change.
        changes.record(db, changes.ALL)
    db.flush()
    new = _bu_state(db, bu)
    for action, keys in (
        ("rename", ("name",)),
        ("move", ("parent_id", "parent")),
        ("update", ("description",)),
    ):
        before, after = audit.diff({k: old[k] for k in keys}, {k: new[k] for k in keys})
        if after:
            _log(db, principal, action, bu, before, after)
    return bu


def _reparent(db: Session, bu: BusinessUnit, parent_id: int) -> None:
    if bu.parent_id is None:
        raise ValidationFailed("the root business unit cannot be moved", field="parent_id")
    get_bu(db=db, bu_id=parent_id, field="parent_id")
    moving = subtree_ids(db=db, bu_id=bu.id)
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


def delete_bu(*, db: Session, bu_id: int, principal: Principal | None = None) -> None:
    """Delete an empty BU; refused while it has children, users, teams or records."""
    _check(db, principal, Privilege.DELETE, "business_unit")
    bu = get_bu(db=db, bu_id=bu_id, field="bu_id")
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
    _log(db, principal, "delete", bu, _bu_state(db, bu), None)
    db.execute(delete(Team).where(Team.default_for_bu_id == bu.id))
    db.execute(delete(BusinessUnitClosure).where(BusinessUnitClosure.descendant_id == bu.id))
    db.delete(bu)
    db.flush()


def org_totals(*, db: Session) -> dict[str, int]:
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


def list_bus(*, db: Session, principal: Principal | None = None) -> list[BusinessUnit]:
    """Every BU, by name."""
    _check(db, principal, Privilege.READ, "business_unit")
    return list(db.execute(select(BusinessUnit).order_by(BusinessUnit.name)).scalars())


def user_counts_by_bu(*, db: Session) -> dict[int, int]:
    """``{bu_id: number of users}`` for the BUs that have users."""
    rows = db.execute(
        select(User.business_unit_id, func.count()).group_by(User.business_unit_id)
    ).all()
    return {bu_id: n for bu_id, n in rows}


def default_team(*, db: Session, bu_id: int) -> Team:
    """The system-managed default team of a BU."""
    team = db.execute(select(Team).where(Team.default_for_bu_id == bu_id)).scalar_one()
    return team


# ------------------------------------------------------------------ users


def get_user(
    *, db: Session, user_id: int, field: str = "user_id", principal: Principal | None = None
) -> User:
    """A user by id, or NotFound naming ``field``."""
    return _get(db, User, user_id, record_type="user", field=field, principal=principal)


def get_user_by_username(*, db: Session, username: str, field: str = "username") -> User:
    """A user by username, or NotFound naming ``field``."""
    user = db.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(f"user {username!r} not found", field=field)
    return user


def find_user(*, db: Session, ref: str, field: str = "user") -> User:
    """A user by id or username (``--as 7`` or ``--as marta``), or NotFound naming ``field``."""
    user_id = parse_id(ref)
    if user_id is not None:
        return get_user(db=db, user_id=user_id, field=field)
    return get_user_by_username(db=db, username=ref, field=field)


def find_bu(*, db: Session, ref: str | None, field: str = "bu") -> BusinessUnit:
    """A business unit by id or name; the root BU when ``ref`` is None."""
    if ref is None:
        return get_root(db=db)
    bu_id = parse_id(ref)
    if bu_id is not None:
        return get_bu(db=db, bu_id=bu_id, field=field)
    bu = db.scalar(select(BusinessUnit).where(BusinessUnit.name == ref))
    if bu is None:
        raise NotFound(f"business unit {ref!r} not found", field=field)
    return bu


def create_user(
    *,
    db: Session,
    username: str,
    business_unit_id: int | None = None,
    email: str | None = None,
    full_name: str = "",
    password: str | None = None,
    principal: Principal | None = None,
) -> User:
    """Create a user in a BU (the root when none is given) and its default team."""
    _check(db, principal, Privilege.CREATE, "user")
    username = username.strip()
    if not username:
        raise ValidationFailed("username must not be empty", field="username")
    if db.execute(select(User.id).where(func.lower(User.username) == username.lower())).first():
        raise Conflict(f"a user named {username!r} already exists", field="username")
    bu_id = (
        get_root(db=db).id if business_unit_id is None else get_bu(db=db, bu_id=business_unit_id).id
    )
    user = User(
        username=username,
        email=email,
        full_name=full_name,
        business_unit_id=bu_id,
        password_hash=_hasher.hash(password) if password else None,
    )
    db.add(user)
    db.flush()
    db.add(TeamMember(team_id=default_team(db=db, bu_id=bu_id).id, user_id=user.id))
    db.flush()
    _log(db, principal, "create", user, None, _user_state(db, user))
    return user


def _user_state(db: Session, user: User) -> dict[str, Any]:
    """What the audit trail records of a user (never the password hash)."""
    bu = db.get(BusinessUnit, user.business_unit_id)
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "business_unit_id": user.business_unit_id,
        "business_unit": bu.name if bu else None,
        "disabled": user.disabled,
        "password_set": user.password_hash is not None,
    }


def list_users(
    *,
    db: Session,
    search: str = "",
    business_unit_id: int | None = None,
    limit: int | None = 100,
    principal: Principal | None = None,
) -> tuple[list[User], int]:
    """Users whose username, full name or email contains ``search`` (case-insensitive),
    optionally of one BU, by username, at most ``limit`` (None: all); with how many match."""
    _check(db, principal, Privilege.READ, "user")
    stmt = select(User)
    if business_unit_id is not None:
        stmt = stmt.where(User.business_unit_id == business_unit_id)
    if search.strip():
        stmt = stmt.where(icontains(search, User.username, User.full_name, User.email))
    total = db.execute(
        stmt.with_only_columns(func.count(), maintain_column_froms=True)
    ).scalar_one()
    users = db.execute(stmt.order_by(User.username).limit(limit)).scalars()  # None: no limit
    return list(users), total


def usernames(*, db: Session, user_ids: set[int]) -> dict[int, str]:
    """``{user_id: username}`` for the ids given."""
    if not user_ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()
    return {uid: name for uid, name in rows}


def set_password(
    *, db: Session, user_id: int, password: str, principal: Principal | None = None
) -> None:
    """Store an argon2 hash of a new password (audited, without either password)."""
    _check(db, principal, Privilege.WRITE, "user")
    user = get_user(db=db, user_id=user_id)
    _store_password(db, principal, user, password, field="new_password")


def change_password(*, db: Session, principal: Principal, current: str, new: str) -> None:
    """Change the caller's own password, which needs the current one (not write on users)."""
    user = get_user(db=db, user_id=principal.user_id)
    if not _password_matches(user, current):
        raise ValidationFailed("that is not your current password", field="current_password")
    if new == current:
        raise ValidationFailed("choose a password other than the current one", field="new_password")
    _store_password(db, principal, user, new, field="new_password")


def set_time_zone(*, db: Session, principal: Principal, time_zone: str | None) -> User:
    """Set the caller's own time zone for the web pages (None: the browser's)."""
    user = get_user(db=db, user_id=principal.user_id)
    name = (time_zone or "").strip() or None
    if name is not None and not timezones.known_zone(name):
        raise ValidationFailed(
            f"{name!r} is not a time zone name; use an IANA name such as Europe/Berlin",
            field="time_zone",
        )
    user.time_zone = name
    db.flush()
    return user


def _password_matches(user: User, password: str) -> bool:
    try:
        return user.password_hash is not None and _hasher.verify(user.password_hash, password)
    except Exception:  # argon2 raises several mismatch errors; all mean "no"
        return False


def _store_password(
    db: Session, principal: Principal | None, user: User, password: str, *, field: str
) -> None:
    """Store an argon2 hash (audited as ``user.password``, without either password)."""
    if len(password) < 8:
        raise ValidationFailed("a password needs at least 8 characters", field=field)
    had = user.password_hash is not None
    user.password_hash = _hasher.hash(password)
    _log(db, principal, "password", user, {"password_set": had}, {"password_set": True})


def update_user(
    *,
    db: Session,
    user_id: int,
    full_name: str = UNSET,
    email: str | None = UNSET,
    disabled: bool = UNSET,
    principal: Principal | None = None,
) -> User:
    """Change the fields given (``email=None`` clears it); a disabled user keeps their records.

    Audited as ``user.disable`` / ``user.enable`` and ``user.update`` (name, email).

    Raises:
        Conflict: the caller tries to disable their own account, which
            would lock them out mid-session; another administrator must do it.
    """
    _check(db, principal, Privilege.WRITE, "user")
    if disabled is True and principal is not None and principal.user_id == user_id:
        raise Conflict(
            "you cannot disable your own account; another administrator must do it",
            field="disabled",
        )
    user = get_user(db=db, user_id=user_id)
    old = _user_state(db, user)
    if full_name is not UNSET:
        user.full_name = full_name
    if email is not UNSET:
        user.email = email
    if disabled is not UNSET:
        user.disabled = disabled
    db.flush()
    new = _user_state(db, user)
    if old["disabled"] != new["disabled"]:
        action = "disable" if new["disabled"] else "enable"
        _log(
            db,
            principal,
            action,
            user,
            {"disabled": old["disabled"]},
            {"disabled": new["disabled"]},
        )
    before, after = audit.diff(
        {k: old[k] for k in ("full_name", "email")}, {k: new[k] for k in ("full_name", "email")}
    )
    if after:
        _log(db, principal, "update", user, before, after)
    return user


def owned_record_count(*, db: Session, owner_type: str, owner_id: int) -> dict[str, int]:
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
    *,
    db: Session,
    user_id: int,
    business_unit_id: int,
    move_records: bool = True,
    principal: Principal | None = None,
) -> User:
    """Move a user to another BU.

    The user leaves the old default team and joins the new one; role assignments are kept
    (their BU depths now anchor at the new BU). With ``move_records`` the records they own
    follow them to the new BU (the classic model); without, records keep their owning BU
    and the user keeps owner access to them.
    """
    _check(db, principal, Privilege.WRITE, "user")
    user = get_user(db=db, user_id=user_id)
    new_bu = get_bu(db=db, bu_id=business_unit_id)
    if new_bu.id == user.business_unit_id:
        return user
    old_bu = get_bu(db=db, bu_id=user.business_unit_id)
    old_team = default_team(db=db, bu_id=user.business_unit_id)
    db.execute(
        delete(TeamMember).where(TeamMember.team_id == old_team.id, TeamMember.user_id == user.id)
    )
    db.add(TeamMember(team_id=default_team(db=db, bu_id=new_bu.id).id, user_id=user.id))
    user.business_unit_id = new_bu.id
    if move_records:
        _move_owned(db, owner_type=OWNER_USER, owner_id=user.id, bu_id=new_bu.id)
    db.flush()
    _log(
        db,
        principal,
        "move",
        user,
        {"business_unit_id": old_bu.id, "business_unit": old_bu.name},
        {"business_unit_id": new_bu.id, "business_unit": new_bu.name},
        {"move_records": move_records},
    )
    return user


# ------------------------------------------------------------------ teams


def get_team(
    *, db: Session, team_id: int, field: str = "team_id", principal: Principal | None = None
) -> Team:
    """A team by id, or NotFound naming ``field``."""
    return _get(db, Team, team_id, record_type="team", field=field, principal=principal)


def _team_state(db: Session, team: Team) -> dict[str, Any]:
    """What the audit trail records of a team."""
    bu = db.get(BusinessUnit, team.business_unit_id)
    return {
        "name": team.name,
        "description": team.description,
        "business_unit_id": team.business_unit_id,
        "business_unit": bu.name if bu else None,
    }


def create_team(
    *,
    db: Session,
    name: str,
    business_unit_id: int,
    description: str = "",
    principal: Principal | None = None,
) -> Team:
    """Create an owner team in a BU."""
    _check(db, principal, Privilege.CREATE, "team")
    name = _check_name_free(db, Team, name)
    get_bu(db=db, bu_id=business_unit_id)
    team = Team(name=name, business_unit_id=business_unit_id, description=description)
    db.add(team)
    db.flush()
    _log(db, principal, "create", team, None, _team_state(db, team))
    return team


def _manual_team(db: Session, team_id: int) -> Team:
    team = get_team(db=db, team_id=team_id)
    if team.is_default:
        raise Conflict(
            f"{team.name!r} is a default team: its members are always the users of its "
            "business unit; move the user to another BU instead",
            field="team_id",
        )
    return team


def _move_owned(db: Session, *, owner_type: str, owner_id: int, bu_id: int) -> None:
    """The records of a user or team follow it to the BU ``bu_id``: claimed first (in the
    order every writer of many people claims them), moved, then re-keyed."""
    registry.fire(registry.OWNERS_MOVING, db, owner_type=owner_type, owner_id=owner_id)
    for rtype in registry.owned_types():
        m = rtype.model
        db.execute(
            update(m)
            .where(m.owner_type == owner_type, m.owner_id == owner_id)
            .values(owning_bu_id=bu_id)
        )
    # Segment scopes follow their owner's BU, and so do the contacts that moved.
    changes.record(db, changes.OWNER, ref_id=owner_id)
    registry.fire(registry.OWNERS_MOVED, db, owner_type=owner_type, owner_id=owner_id)


def update_team(
    *,
    db: Session,
    team_id: int,
    name: str | None = None,
    description: str | None = None,
    business_unit_id: int | None = None,
    principal: Principal | None = None,
) -> Team:
    """Rename or describe a team, or move it (and the records it owns) to another BU."""
    _check(db, principal, Privilege.WRITE, "team")
    team = get_team(db=db, team_id=team_id)
    old = _team_state(db, team)
    if name is not None and name.strip() != team.name:
        if team.is_default:
            raise Conflict("a default team is renamed with its business unit", field="name")
        team.name = _check_name_free(db, Team, name, exclude_id=team.id)
    if description is not None:
        team.description = description
    if business_unit_id is not None and business_unit_id != team.business_unit_id:
        _manual_team(db, team_id)
        get_bu(db=db, bu_id=business_unit_id)
        team.business_unit_id = business_unit_id
        _move_owned(db, owner_type=OWNER_TEAM, owner_id=team.id, bu_id=business_unit_id)
    db.flush()
    before, after = audit.diff(old, _team_state(db, team))
    if after:
        _log(db, principal, "update", team, before, after)
    return team


def delete_team(*, db: Session, team_id: int, principal: Principal | None = None) -> None:
    """Delete a team that owns no records (default teams go with their BU)."""
    _check(db, principal, Privilege.DELETE, "team")
    team = _manual_team(db, team_id)
    owned = {
        k: v
        for k, v in owned_record_count(db=db, owner_type=OWNER_TEAM, owner_id=team.id).items()
        if v
    }
    if owned:
        listing = ", ".join(f"{n} {k}" for k, n in owned.items())
        raise Conflict(f"team {team.name!r} still owns records ({listing}); reassign them first")
    before = {
        **_team_state(db, team),
        "members": [u.username for u in team_members(db=db, team_id=team.id)],
        "roles": [r.name for r in roles_of_team(db=db, team_id=team.id)],
    }
    _log(db, principal, "delete", team, before, None)
    db.delete(team)
    db.flush()


def add_member(
    *, db: Session, team_id: int, user_id: int, principal: Principal | None = None
) -> None:
    """Add a user to a (non-default) team; adding twice is a no-op (and not audited)."""
    _check(db, principal, Privilege.WRITE, "team")
    team = _manual_team(db, team_id)
    user = get_user(db=db, user_id=user_id)
    if db.get(TeamMember, (team.id, user_id)) is None:
        db.add(TeamMember(team_id=team.id, user_id=user_id))
        changes.record(db, changes.ACCESS)  # segments and scores read as their owners do
        db.flush()
        member = {"user_id": user.id, "username": user.username}
        _log(db, principal, "member_add", team, None, member)


def remove_member(
    *, db: Session, team_id: int, user_id: int, principal: Principal | None = None
) -> None:
    """Remove a user from a (non-default) team; the team's paths end at once."""
    _check(db, principal, Privilege.WRITE, "team")
    team = _manual_team(db, team_id)
    member = db.get(TeamMember, (team.id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of team {team.name!r}", field="user_id")
    user = get_user(db=db, user_id=user_id)
    db.delete(member)
    changes.record(db, changes.ACCESS)
    db.flush()
    _log(
        db, principal, "member_remove", team, {"user_id": user.id, "username": user.username}, None
    )


def team_members(*, db: Session, team_id: int, principal: Principal | None = None) -> list[User]:
    """The members of a team, by username."""
    _check(db, principal, Privilege.READ, "team")
    return list(
        db.execute(
            select(User)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id == team_id)
            .order_by(User.username)
        ).scalars()
    )


def list_teams(*, db: Session, principal: Principal | None = None) -> list[Team]:
    """Every team, by name."""
    _check(db, principal, Privilege.READ, "team")
    return list(db.execute(select(Team).order_by(Team.name)).scalars())


def member_counts(*, db: Session) -> dict[int, int]:
    """``{team_id: number of members}`` for the teams that have members."""
    rows = db.execute(select(TeamMember.team_id, func.count()).group_by(TeamMember.team_id)).all()
    return {team_id: n for team_id, n in rows}


def teams_of_user(*, db: Session, user_id: int) -> list[Team]:
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
# Privileges as a client sends them: levels by name or number (validated by the service).
RawPrivileges = Mapping[str, Mapping[str, str | int]]


def get_role(
    *, db: Session, role_id: int, field: str = "role_id", principal: Principal | None = None
) -> SecurityRole:
    """A role by id, or NotFound naming ``field``."""
    return _get(
        db, SecurityRole, role_id, record_type="security_role", field=field, principal=principal
    )


def get_role_by_name(*, db: Session, name: str) -> SecurityRole:
    """A role by name (case-insensitive), or NotFound."""
    role = db.execute(
        select(SecurityRole).where(func.lower(SecurityRole.name) == name.lower())
    ).scalar()
    if role is None:
        raise NotFound(f"role {name!r} not found", field="role")
    return role


def role_privileges(*, db: Session, role_id: int) -> PrivilegeMap:
    """``{record_type: {privilege: level}}`` of a role."""
    out: PrivilegeMap = {}
    rows = db.execute(select(RolePrivilege).where(RolePrivilege.role_id == role_id)).scalars()
    for row in rows:
        out.setdefault(row.record_type, {})[row.privilege] = Level(row.level)
    return out


def validate_privileges(raw: RawPrivileges) -> PrivilegeMap:
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


def privilege_labels(privileges: PrivilegeMap) -> dict[str, dict[str, str]]:
    """``{record_type: {privilege: level name}}`` without the levels that grant nothing."""
    return {
        t: {p: level.label for p, level in sorted(privs.items()) if level > Level.NONE}
        for t, privs in sorted(privileges.items())
        if any(level > Level.NONE for level in privs.values())
    }


def _role_state(db: Session, role: SecurityRole) -> dict[str, Any]:
    """What the audit trail records of a role: its name, description and privilege map."""
    return {
        "name": role.name,
        "description": role.description,
        "privileges": privilege_labels(role_privileges(db=db, role_id=role.id)),
    }


def create_role(
    *,
    db: Session,
    name: str,
    description: str = "",
    privileges: RawPrivileges,
    principal: Principal | None = None,
) -> SecurityRole:
    """Create a custom role with its privileges."""
    _check(db, principal, Privilege.CREATE, "security_role")
    checked = validate_privileges(privileges)
    role = SecurityRole(name=_check_name_free(db, SecurityRole, name), description=description)
    db.add(role)
    db.flush()
    _write_privileges(db, role.id, checked)
    db.flush()
    _log(db, principal, "create", role, None, _role_state(db, role))
    return role


def _custom_role(db: Session, role_id: int) -> SecurityRole:
    role = get_role(db=db, role_id=role_id)
    if role.is_builtin:
        raise Conflict(
            f"{role.name!r} is a built-in role and is kept as shipped; copy it to change it"
        )
    return role


def update_role(
    *,
    db: Session,
    role_id: int,
    name: str | None = None,
    description: str | None = None,
    privileges: RawPrivileges | None = None,
    principal: Principal | None = None,
) -> SecurityRole:
    """Change a custom role; ``privileges`` replaces the whole set (audited: the fields that
    changed, the privilege map before and after as a whole)."""
    _check(db, principal, Privilege.WRITE, "security_role")
    checked = None if privileges is None else validate_privileges(privileges)
    role = _custom_role(db, role_id)
    old = _role_state(db, role)
    if name is not None:
        role.name = _check_name_free(db, SecurityRole, name, exclude_id=role.id)
    if description is not None:
        role.description = description
    if checked is not None:
        _write_privileges(db, role.id, checked)
    db.flush()
    before, after = audit.diff(old, _role_state(db, role))
    if after:
        _log(db, principal, "update", role, before, after)
    if "privileges" in after:
        changes.record(db, changes.ACCESS)  # segments and scores read as their owners do
    return role


def delete_role(*, db: Session, role_id: int, principal: Principal | None = None) -> None:
    """Delete a custom role and its assignments (the trail keeps who held it)."""
    _check(db, principal, Privilege.DELETE, "security_role")
    role = _custom_role(db, role_id)
    users = db.execute(
        select(User.username)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id == role.id)
        .order_by(User.username)
    ).scalars()
    teams = db.execute(
        select(Team.name)
        .join(TeamRole, TeamRole.team_id == Team.id)
        .where(TeamRole.role_id == role.id)
        .order_by(Team.name)
    ).scalars()
    before = {**_role_state(db, role), "users": list(users), "teams": list(teams)}
    _log(db, principal, "delete", role, before, None)
    db.delete(role)
    changes.record(db, changes.ACCESS)
    db.flush()


def _log_assignment(
    db: Session,
    actor: Actor,
    action: str,
    role: SecurityRole,
    *,
    user_id: int | None,
    team_id: int | None,
) -> None:
    holder: User | Team = (
        get_user(db=db, user_id=user_id)
        if user_id is not None
        else get_team(db=db, team_id=team_id or 0)
    )
    state = {"role_id": role.id, "role": role.name}
    audit.log(
        db,
        actor=actor,
        action=f"role.{action}",
        target_type="user" if isinstance(holder, User) else "team",
        target_id=holder.id,
        target_label=holder.username if isinstance(holder, User) else holder.name,
        before=None if action == "assign" else state,
        after=state if action == "assign" else None,
    )


def assign_role(
    *,
    db: Session,
    role_id: int,
    user_id: int | None = None,
    team_id: int | None = None,
    principal: Principal | None = None,
) -> None:
    """Give a role to a user or a team (idempotent: a repeat is neither stored nor audited)."""
    _check(db, principal, Privilege.ASSIGN, "security_role")
    role = get_role(db=db, role_id=role_id)
    added = False
    if user_id is not None:
        get_user(db=db, user_id=user_id)
        if db.get(UserRole, (user_id, role_id)) is None:
            db.add(UserRole(user_id=user_id, role_id=role_id))
            added = True
    elif team_id is not None:
        get_team(db=db, team_id=team_id)
        if db.get(TeamRole, (team_id, role_id)) is None:
            db.add(TeamRole(team_id=team_id, role_id=role_id))
            added = True
    else:
        raise ValidationFailed("give a user or a team", field="user_id")
    db.flush()
    if added:
        changes.record(db, changes.ACCESS)  # segments and scores read as their owners do
        _log_assignment(db, principal, "assign", role, user_id=user_id, team_id=team_id)


def unassign_role(
    *,
    db: Session,
    role_id: int,
    user_id: int | None = None,
    team_id: int | None = None,
    principal: Principal | None = None,
) -> None:
    """Take a role from a user or a team."""
    _check(db, principal, Privilege.ASSIGN, "security_role")
    link: UserRole | TeamRole | None
    if user_id is not None:
        link = db.get(UserRole, (user_id, role_id))
    else:
        link = db.get(TeamRole, (team_id, role_id))
    if link is None:
        raise NotFound(f"role {role_id} is not assigned there", field="role_id")
    role = get_role(db=db, role_id=role_id)
    db.delete(link)
    changes.record(db, changes.ACCESS)
    db.flush()
    _log_assignment(db, principal, "unassign", role, user_id=user_id, team_id=team_id)


def roles_of_user(
    *, db: Session, user_id: int, principal: Principal | None = None
) -> list[SecurityRole]:
    """Roles assigned directly to a user."""
    _check(db, principal, Privilege.READ, "security_role")
    return list(
        db.execute(
            select(SecurityRole)
            .join(UserRole)
            .where(UserRole.user_id == user_id)
            .order_by(SecurityRole.name)
        ).scalars()
    )


def roles_of_team(
    *, db: Session, team_id: int, principal: Principal | None = None
) -> list[SecurityRole]:
    """Roles assigned to a team."""
    _check(db, principal, Privilege.READ, "security_role")
    return list(
        db.execute(
            select(SecurityRole)
            .join(TeamRole)
            .where(TeamRole.team_id == team_id)
            .order_by(SecurityRole.name)
        ).scalars()
    )


def list_roles(*, db: Session, principal: Principal | None = None) -> list[SecurityRole]:
    """Every role, by name."""
    _check(db, principal, Privilege.READ, "security_role")
    return list(db.execute(select(SecurityRole).order_by(SecurityRole.name)).scalars())


def role_names_by_user(*, db: Session, user_ids: set[int]) -> dict[int, list[str]]:
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
    *,
    db: Session,
    name: str,
    description: str,
    privileges: PrivilegeMap,
    system_admin: bool = False,
) -> SecurityRole:
    """Create or refresh a built-in role so it matches the code (run on every upgrade)."""
    role = db.execute(select(SecurityRole).where(SecurityRole.name == name)).scalar()
    old: dict[str, Any] | None = None
    if role is None:
        role = SecurityRole(name=name)
        db.add(role)
    else:
        old = {**_role_state(db, role), "system_administrator": role.is_system_admin}
    role.description = description
    role.is_builtin = True
    role.is_system_admin = system_admin
    db.flush()
    _write_privileges(db, role.id, privileges)
    new = {**_role_state(db, role), "system_administrator": role.is_system_admin}
    # A release that changes a built-in role changes what its holders may do: audited.
    if old is None:
        _log(db, None, "builtin_create", role, None, new)
    else:
        before, after = audit.diff(old, new)
        if after:
            _log(db, None, "builtin_update", role, before, after)
    return role


# ------------------------------------------------------------------ API tokens

TOKEN_POLICY = "api_tokens"  # noqa: S105 - the setting's name
MAX_TOKEN_DAYS = 3650  # the longest lifetime an administrator may allow: ten years


@dataclass(frozen=True)
class TokenPolicy:
    """How long API tokens live: ``default_days`` when a request names no expiry (None:
    never), at most ``max_days`` (None: no maximum, and tokens that never expire are allowed)."""

    default_days: int | None = 90
    max_days: int | None = 365

    @property
    def allows_never(self) -> bool:
        """Whether a token may be made that never expires."""
        return self.max_days is None

    def as_dict(self) -> dict[str, int | None]:
        """The stored and audited form."""
        return {"default_days": self.default_days, "max_days": self.max_days}


def token_policy(*, db: Session) -> TokenPolicy:
    """The administrator's token policy, or the built-in one (90 days, at most 365)."""
    row = db.get(InstallationSetting, TOKEN_POLICY)
    if row is None:
        return TokenPolicy()
    value = row.value or {}
    return TokenPolicy(default_days=value.get("default_days"), max_days=value.get("max_days"))


def _days(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not 1 <= value <= MAX_TOKEN_DAYS:
        raise ValidationFailed(
            f"give a number of days from 1 to {MAX_TOKEN_DAYS}, or none", field=field
        )
    return value


def require_admin(
    principal: Principal, what: str = "change or audit installation settings"
) -> None:
    """Forbidden unless the caller is a system administrator (``what``: what they may do)."""
    if not principal.is_system_admin:
        raise Forbidden(f"only a system administrator may {what}")


def set_token_policy(
    *, db: Session, principal: Principal, default_days: int | None, max_days: int | None
) -> TokenPolicy:
    """Change the token policy (system administrators; audited). Tokens already made keep
    their expiry.

    Raises:
        ValidationFailed: a lifetime outside 1 … MAX_TOKEN_DAYS days, a default longer than
            the maximum, or a default of never while a maximum is set (``field`` says which).
    """
    require_admin(principal)
    policy = TokenPolicy(_days(default_days, "default_days"), _days(max_days, "max_days"))
    if policy.max_days is not None:
        if policy.default_days is None:
            raise ValidationFailed(
                "tokens cannot default to never expiring while a maximum lifetime is set",
                field="default_days",
            )
        if policy.default_days > policy.max_days:
            raise ValidationFailed(
                f"the default lifetime ({policy.default_days} days) is longer than the "
                f"maximum ({policy.max_days} days)",
                field="default_days",
            )
    old = token_policy(db=db)
    row = db.get(InstallationSetting, TOKEN_POLICY)
    if row is None:
        row = InstallationSetting(name=TOKEN_POLICY)
        db.add(row)
    row.value = policy.as_dict()
    row.changed_at = utcnow()
    row.changed_by_id = principal.user_id
    db.flush()
    before, after = audit.diff(old.as_dict(), policy.as_dict())
    if after:
        audit.log(
            db,
            actor=principal,
            action="settings.api_tokens",
            target_type="setting",
            target_id=TOKEN_POLICY,
            target_label="API token lifetime",
            before=before,
            after=after,
        )
    return policy


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_expiry(
    policy: TokenPolicy,
    *,
    now: datetime,
    expires_in_days: int | None = None,
    expires_at: datetime | None = None,
    never_expires: bool = False,
) -> datetime | None:
    """When a new token expires under ``policy`` (None: never); the request may ask for
    less than the maximum, never more.

    Raises:
        ValidationFailed: more than one way asked, a lifetime beyond the maximum, a time
            in the past or without a zone, or never while the policy sets a maximum.
    """
    asked = [
        k
        for k, v in (
            ("expires_in_days", expires_in_days),
            ("expires_at", expires_at),
            ("never_expires", never_expires or None),
        )
        if v is not None
    ]
    if len(asked) > 1:
        raise ValidationFailed(f"give only one of {', '.join(asked)}", field=asked[1])
    limit = None if policy.max_days is None else now + timedelta(days=policy.max_days)
    most = f"at most {policy.max_days} days (the administrator's maximum)"
    if never_expires:
        if not policy.allows_never:
            raise ValidationFailed(
                f"tokens must expire: the administrator allows {most.removeprefix('at ')}",
                field="never_expires",
            )
        return None
    if expires_in_days is not None:
        if isinstance(expires_in_days, bool) or not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise ValidationFailed(
                f"give a number of days from 1 to {policy.max_days or MAX_TOKEN_DAYS}",
                field="expires_in_days",
            )
        if policy.max_days is not None and expires_in_days > policy.max_days:
            raise ValidationFailed(f"a token may live {most}", field="expires_in_days")
        return now + timedelta(days=expires_in_days)
    if expires_at is not None:
        if expires_at.tzinfo is None or expires_at.utcoffset() is None:
            raise ValidationFailed(
                "give a time zone with the expiry, e.g. 2027-03-01T00:00:00Z", field="expires_at"
            )
        try:
            when = expires_at.astimezone(now.tzinfo)
        except OverflowError:
            raise ValidationFailed(
                "this date is outside the supported range", field="expires_at"
            ) from None
        if when <= now:
            raise ValidationFailed("the expiry must be in the future", field="expires_at")
        if (limit is not None and when > limit) or when > now + timedelta(days=MAX_TOKEN_DAYS):
            raise ValidationFailed(f"a token may live {most}", field="expires_at")
        return when
    return None if policy.default_days is None else now + timedelta(days=policy.default_days)


def _token_label(token: ApiToken, username: str) -> str:
    return f"{token.name} ({token.prefix}…) of {username}"


def create_token(
    *,
    db: Session,
    user_id: int,
    name: str = "api",
    expires_in_days: int | None = None,
    expires_at: datetime | None = None,
    never_expires: bool = False,
    actor: Actor = None,
) -> tuple[ApiToken, str]:
    """Create a token under the token policy (audited); returns the row and the secret,
    which is never stored nor shown again."""
    user = get_user(db=db, user_id=user_id)
    now = utcnow()
    expiry = token_expiry(
        token_policy(db=db),
        now=now,
        expires_in_days=expires_in_days,
        expires_at=expires_at,
        never_expires=never_expires,
    )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name.strip() or "api",
        prefix=secret[:10],
        token_hash=_digest(secret),
        created_at=now,
        expires_at=expiry,
    )
    db.add(token)
    db.flush()
    audit.log(
        db,
        actor=actor,
        action="token.create",
        target_type="api_token",
        target_id=token.id,
        target_label=_token_label(token, user.username),
        after={
            "user_id": user.id,
            "username": user.username,
            "name": token.name,
            "prefix": token.prefix,
            "expires_at": token.expires_at,
        },
    )
    return token, secret


def list_tokens(*, db: Session, user_id: int) -> list[ApiToken]:
    """A user's tokens (without secrets), newest first."""
    return list(
        db.execute(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        ).scalars()
    )


def revoke_token(
    *, db: Session, token_id: int, user_id: int | None = None, actor: Actor = None
) -> ApiToken:
    """Revoke a token at once (audited; revoking again changes nothing). With ``user_id``
    the token must be that user's: another user's token is NotFound, like a missing one."""
    token = db.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFound(f"token {token_id} not found", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.flush()
        owner = get_user(db=db, user_id=token.user_id)
        audit.log(
            db,
            actor=actor,
            action="token.revoke",
            target_type="api_token",
            target_id=token.id,
            target_label=_token_label(token, owner.username),
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at},
            details={"user_id": owner.id, "username": owner.username},
        )
    return token


def my_tokens(*, db: Session, principal: Principal) -> list[ApiToken]:
    """The caller's own tokens, newest first."""
    return list_tokens(db=db, user_id=principal.user_id)


def create_my_token(
    *,
    db: Session,
    principal: Principal,
    name: str = "api",
    expires_in_days: int | None = None,
    expires_at: datetime | None = None,
    never_expires: bool = False,
) -> tuple[ApiToken, str]:
    """A new token for the caller, under the token policy; the secret is returned once."""
    return create_token(
        db=db,
        user_id=principal.user_id,
        name=name,
        expires_in_days=expires_in_days,
        expires_at=expires_at,
        never_expires=never_expires,
        actor=principal,
    )


def revoke_my_token(*, db: Session, principal: Principal, token_id: int) -> ApiToken:
    """Revoke one of the caller's tokens; anyone else's is NotFound (ids do not leak)."""
    return revoke_token(db=db, token_id=token_id, user_id=principal.user_id, actor=principal)


TOKEN_STATUSES = (TOKEN_ACTIVE, TOKEN_EXPIRED, TOKEN_REVOKED)


def all_tokens(
    *,
    db: Session,
    principal: Principal | None,
    user_id: int | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Everyone's tokens, newest first, a page at a time (system administrators; None is the
    operator at the command line).

    Raises:
        Forbidden: the caller is not a system administrator.
        ValidationFailed: an unknown ``status``, a bad cursor or limit.
    """
    if principal is not None:
        require_admin(principal)
    stmt = select(ApiToken)
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    if status:
        now = utcnow()
        live = ApiToken.revoked_at.is_(None)
        if status == TOKEN_REVOKED:
            stmt = stmt.where(ApiToken.revoked_at.is_not(None))
        elif status == TOKEN_EXPIRED:
            stmt = stmt.where(live, ApiToken.expires_at <= now)
        elif status == TOKEN_ACTIVE:
            stmt = stmt.where(live, (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        else:
            raise ValidationFailed(
                f"unknown status {status!r}; use {', '.join(TOKEN_STATUSES)}", field="status"
            )
    return paginate(
        db,
        stmt,
        id_column=ApiToken.id,
        sortable={"id": ApiToken.id},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def revoke_any_token(*, db: Session, principal: Principal, token_id: int) -> ApiToken:
    """Revoke anyone's token (system administrators; audited)."""
    require_admin(principal)
    return revoke_token(db=db, token_id=token_id, actor=principal)


def authenticate_token(*, db: Session, secret: str) -> User:
    """The active user behind a bearer token; records its use at most once a minute.

    Raises:
        Unauthenticated: an unknown, revoked or expired token (the message says which), or
            a disabled user.
    """
    return _check_token(db, secret, utcnow())[1]


def token_principal(*, db: Session, secret: str, cache: directory.PrincipalCache) -> Principal:
    """The principal behind a bearer token, from the process's ``cache`` while the security
    epoch is unchanged — no change to roles, teams, the user or the token since it was
    loaded — and for at most a minute (so that the token's use is still recorded), never
    past the token's expiry.

    Raises:
        Unauthenticated: as ``authenticate_token``.
    """
    now = utcnow()
    key = ("token", _digest(secret))
    epoch = directory.security_epoch(db)  # first: see PrincipalCache
    found = cache.get(key, epoch=epoch, now=now)
    if found is not None:
        return found
    token, user = _check_token(db, secret, now)
    found = directory.load_principal(db, user.id)
    fresh_until = (token.last_used_at or now) + TOKEN_USE_RESOLUTION
    if token.expires_at is not None:
        fresh_until = min(fresh_until, token.expires_at)
    cache.put(key, found, epoch=epoch, fresh_until=fresh_until)
    return found


def _check_token(db: Session, secret: str, now: datetime) -> tuple[ApiToken, User]:
    token = db.execute(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).scalar()
    if token is None:
        raise Unauthenticated("invalid API token")
    if token.revoked_at is not None:
        raise Unauthenticated(
            f"this API token was revoked at {token.revoked_at.isoformat(timespec='seconds')}"
        )
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated(
            f"this API token expired at {token.expires_at.isoformat(timespec='seconds')}; "
            "create a new one"
        )
    user = db.get(User, token.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("this user is disabled")
    # Record use at most once per interval: writing on every request would make each read
    # a write transaction (on SQLite, a trip through the single write lock).
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
        token.last_used_at = now
    return token, user


# ------------------------------------------------------------------ audit trail


def audit_trail(
    *,
    db: Session,
    principal: Principal | None,
    filters: audit.Filters,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the audit trail, newest first (system administrators; None is the
    operator at the command line, who holds the database anyway).

    Raises:
        Forbidden: the caller is not a system administrator.
        ValidationFailed: a bad filter, cursor or limit (``field`` says which).
    """
    if principal is not None:
        require_admin(principal)
    return audit.search(db, filters, cursor=cursor, limit=limit)


def verify_password(*, db: Session, username: str, password: str) -> User:
    """The active user with this username and password, or Unauthenticated."""
    user = db.execute(select(User).where(User.username == username)).scalar()
    if user is None or not _password_matches(user, password):
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


def feature_enabled(*, db: Session, name: str) -> bool:
    """Whether an installation-wide switch is on (absent means off)."""
    switch = db.get(FeatureSwitch, name)
    return bool(switch and switch.enabled)


def set_feature(*, db: Session, name: str, enabled: bool, by_user_id: int | None) -> FeatureSwitch:
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
            actor=by_user_id,
            action="feature.set",
            target_type="feature",
            target_id=name,
            target_label=FEATURES[name],
            before={"enabled": before},
            after={"enabled": enabled},
        )
        if name == BU_SCOPING:
            changes.record(db, changes.ALL)
            registry.fire(registry.SCOPING_CHANGED, db)
    return switch


def features(*, db: Session) -> list[FeatureSwitch]:
    """Every known switch with its state (absent ones shown as off, never changed)."""
    stored = {f.name: f for f in db.execute(select(FeatureSwitch)).scalars()}
    return [stored.get(name) or FeatureSwitch(name=name, enabled=False) for name in FEATURES]


def explain_access(
    *,
    db: Session,
    principal: Principal | None,
    record_type: str,
    privilege: Privilege,
    record_id: int | None = None,
    user: int | str | None = None,
) -> Explanation:
    """Which role, level, ownership or share grants or denies ``privilege`` on a record to
    ``user`` (an id or a username; the caller when None or themself).

    Explaining someone else's access needs write on users, checked before the user is
    looked up so nobody can probe usernames through it. The caller must be able to read the
    record: one they may not read is NotFound, as if it did not exist. The operator
    (``principal`` None, the command line) names the user and reads any record.
    """
    if principal is not None and (user is None or user in (principal.user_id, principal.username)):
        subject = principal
    else:
        if user is None:
            raise ValidationFailed("name the user whose access to explain", field="user")
        _check(db, principal, Privilege.WRITE, "user")
        found = (
            get_user(db=db, user_id=user)
            if isinstance(user, int)
            else get_user_by_username(db=db, username=str(user))
        )
        subject = directory.load_principal(db, found.id)
    rtype = registry.get(record_type, field="record_type")
    record = None
    if not rtype.organization_owned:
        if record_id is None:
            raise ValidationFailed("record_id is required for this record type", field="record_id")
        record = (
            db.get(rtype.model, record_id)
            if principal is None
            else access_engine.get(
                db, principal=principal, record_type=record_type, record_id=record_id
            )
        )
        if record is None:
            raise NotFound(f"{record_type} {record_id} not found", field="record_id")
    return access_engine.explain(db, subject, privilege, record_type, record)


# ------------------------------------------------------------------ names shown beside records


@dataclass(frozen=True)
class OwnerNames:
    """Display names of records' owners and owning BUs; a missing key means "not shown"."""

    owners: dict[tuple[str, int], str]
    business_units: dict[int, str]

    def owner(self, record: OwnedMixin) -> str | None:
        """The owner's name, or None when the caller may not read users (or teams)."""
        return self.owners.get((record.owner_type, record.owner_id))

    def business_unit(self, record: OwnedMixin) -> str | None:
        """The owning BU's name, or None when the caller may not read BUs."""
        return self.business_units.get(record.owning_bu_id)


def owner_names(*, db: Session, principal: Principal, records: Sequence[OwnedMixin]) -> OwnerNames:
    """Names of the owners and owning BUs of ``records`` (any owned records the caller has
    already read: contacts, events, segments, lists …), for every page and export that shows
    them.

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
