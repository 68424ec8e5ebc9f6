"""The directory side of access: a user's (or a team's) security facts loaded from the
organisation's tables into the engine's ``Principal`` (SPEC B1–B3).

``access`` is the policy engine and reads no directory table; ``org`` owns BUs, users,
teams and roles, so loading who someone is lives here (docs/decisions.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, null, select, union_all
from sqlalchemy.orm import Session

from gatherly.access.engine import Grant, Principal
from gatherly.access.levels import Level
from gatherly.access.models import OWNER_TEAM
from gatherly.core.exceptions import NotFound
from gatherly.org.models import (
    RolePrivilege,
    SecurityRole,
    Team,
    TeamMember,
    TeamRole,
    User,
    UserRole,
)

# A role's privileges, one row each (a role with none gives one row of NULLs).
_ROLE_COLUMNS = (
    SecurityRole.id,
    SecurityRole.name,
    SecurityRole.is_system_admin,
    RolePrivilege.record_type,
    RolePrivilege.privilege,
    RolePrivilege.level,
)


def _grants(
    rows: Sequence[Any], anchors: Mapping[int | None, int], team_names: Mapping[int, str]
) -> tuple[tuple[Grant, ...], str | None]:
    """Grants from role rows (``team_id`` None for a role of one's own), anchored at
    ``anchors[team_id]``, broadest first per type; and the first administrator role."""
    grants: set[Grant] = set()
    admin_role: str | None = None
    for row in rows:
        if row.is_system_admin and admin_role is None:
            admin_role = row.name
        if row.record_type is None or row.level <= Level.NONE:
            continue
        grants.add(
            Grant(
                record_type=row.record_type,
                privilege=row.privilege,
                level=Level(row.level),
                anchor_bu_id=anchors[row.team_id],
                role_id=row.id,
                role_name=row.name,
                team_id=row.team_id,
                team_name=None if row.team_id is None else team_names[row.team_id],
            )
        )
    ordered = tuple(sorted(grants, key=lambda g: (g.record_type, g.privilege, -g.level)))
    return ordered, admin_role


def load_principal(db: Session, user_id: int) -> Principal:
    """Load a user's BU, teams and grants (direct roles and their teams' roles).

    Raises:
        NotFound: no such user.
    """
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", field="user_id")
    teams = db.execute(
        select(Team.id, Team.name, Team.business_unit_id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user_id)
    ).all()
    team_bu = {t.id: t.business_unit_id for t in teams}
    # Direct roles (team_id NULL) and the roles of the user's teams, in one round trip.
    direct = (
        select(null().cast(Integer).label("team_id"), *_ROLE_COLUMNS)
        .join(UserRole, UserRole.role_id == SecurityRole.id)
        .outerjoin(RolePrivilege, RolePrivilege.role_id == SecurityRole.id)
        .where(UserRole.user_id == user_id)
    )
    via_team = (
        select(TeamRole.team_id, *_ROLE_COLUMNS)
        .join(SecurityRole, SecurityRole.id == TeamRole.role_id)
        .join(TeamMember, TeamMember.team_id == TeamRole.team_id)
        .outerjoin(RolePrivilege, RolePrivilege.role_id == SecurityRole.id)
        .where(TeamMember.user_id == user_id)
    )
    team_names = {t.id: t.name for t in teams}
    anchors: dict[int | None, int] = {None: user.business_unit_id, **team_bu}
    grants, admin_role = _grants(db.execute(union_all(direct, via_team)).all(), anchors, team_names)
    return Principal(
        user_id=user.id,
        username=user.username,
        business_unit_id=user.business_unit_id,
        disabled=user.disabled,
        team_ids=frozenset(team_bu),
        grants=grants,
        system_admin_role=admin_role,
        dialect=db.get_bind().dialect.name,
        team_names=team_names,
    )


def load_team_principal(db: Session, team_id: int) -> Principal:
    """A team's own security facts, as if it were a user: its roles anchored at its BU.

    Used where a team owns something that reads on its behalf (a segment's membership).
    ``user_id`` is 0, so no user-ownership path matches; the team's records and shares do.

    Raises:
        NotFound: no such team.
    """
    team = db.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found", field="team_id")
    rows = db.execute(
        select(TeamRole.team_id, *_ROLE_COLUMNS)
        .join(SecurityRole, SecurityRole.id == TeamRole.role_id)
        .outerjoin(RolePrivilege, RolePrivilege.role_id == SecurityRole.id)
        .where(TeamRole.team_id == team_id)
    ).all()
    grants, admin_role = _grants(rows, {team.id: team.business_unit_id}, {team.id: team.name})
    return Principal(
        user_id=0,
        username=f"team {team.name}",
        business_unit_id=team.business_unit_id,
        disabled=False,
        team_ids=frozenset({team.id}),
        grants=grants,
        system_admin_role=admin_role,
        dialect=db.get_bind().dialect.name,
        team_names={team.id: team.name},
    )


def load_owner_principal(db: Session, owner_type: str, owner_id: int) -> Principal:
    """The facts of a record's owner (a user or a team), for work done on its behalf."""
    if owner_type == OWNER_TEAM:
        return load_team_principal(db, owner_id)
    return load_principal(db, owner_id)


# ------------------------------------------------------------------ the principal cache


def security_epoch(db: Session) -> int | None:
    """The security epoch's value (``org.models.SecurityEpoch``); None when its row is
    missing, which turns caching off rather than trusting anything.

    Read on every authenticated request, so as plain SQL on the session's connection: the
    ORM's statement machinery would double its CPU. Pending changes are flushed first, as a
    query through the ORM would (their triggers may change the value)."""
    if db.new or db.dirty or db.deleted:
        db.flush()
    return db.connection().exec_driver_sql(_EPOCH_SQL).scalar()


_EPOCH_SQL = "SELECT value FROM security_epoch WHERE id = 1"  # SecurityEpoch


@dataclass(frozen=True)
class _Cached:
    epoch: int
    principal: Principal
    fresh_until: datetime | None


class PrincipalCache:
    """A process's principals, each valid while the security epoch keeps the value it was
    loaded under (and, for a token, until ``fresh_until``). Bounded, least recently used
    first out; safe across the server's threads.

    Read the epoch *before* loading what it covers: a change committed in between then
    leaves an entry under the older value, dropped on the next request, never a stale
    principal under the newer one.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, *, epoch: int | None, now: datetime) -> Principal | None:
        """The principal cached under ``key`` if still valid, else None."""
        if epoch is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.epoch != epoch or (entry.fresh_until is not None and now >= entry.fresh_until):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.principal

    def put(
        self,
        key: Hashable,
        principal: Principal,
        *,
        epoch: int | None,
        fresh_until: datetime | None = None,
    ) -> None:
        """Remember ``principal`` as loaded under ``epoch`` (read before loading it)."""
        if epoch is None or self._size == 0:
            return
        with self._lock:
            self._entries[key] = _Cached(epoch, principal, fresh_until)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def cached_principal(
    db: Session, user_id: int, *, cache: PrincipalCache, now: datetime
) -> Principal:
    """``load_principal``, from ``cache`` while the security epoch is unchanged."""
    epoch = security_epoch(db)
    key = ("user", user_id)
    found = cache.get(key, epoch=epoch, now=now)
    if found is None:
        found = load_principal(db, user_id)
        cache.put(key, found, epoch=epoch)
    return found
