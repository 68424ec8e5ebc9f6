"""The access engine: who may do what with which record (SPEC B1–B3; reference §2.6–2.7).

One module, generic over record types (see ``access.registry``):

- a ``Principal`` holds a user's facts, gathered once per request by
  ``gatherly.org.directory.load_principal``: BU, teams, and every grant of their own roles
  and their teams' roles (a handful of rows, never record ids). The engine reads no
  directory table itself: it sits below ``org`` (docs/decisions.md).
- ``readable`` / ``scope`` turn those facts into one SQL predicate over the record table:
  ownership, team ownership, BU depth through the closure table, and shares — all
  evaluated by the database, so lists, counts and exports stay one statement.
- ``explain`` walks the same rules in Python for one record and reports every path that
  grants or fails; ``can`` is its verdict. The two implementations check each other in
  the property tests.

Rules decided here (see docs/access.md): access is purely additive; a disabled user has no
access; a system administrator has all; a privilege must be held at some level before
any path (ownership, share) can grant it; a team's roles are anchored at the team's BU
and their privileges also apply to records the member owns ("direct user level and team
privileges", the default for new Dataverse roles).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import True_

from gatherly.access import registry
from gatherly.access.levels import SHARE_BITS, Level, Privilege, rights_from_mask
from gatherly.access.models import (
    BU_NAMES,
    OWNER_TEAM,
    OWNER_USER,
    PRINCIPAL_ORGANIZATION,
    PRINCIPAL_TEAM,
    PRINCIPAL_USER,
    BusinessUnitClosure,
    RecordShare,
)
from gatherly.core.exceptions import Forbidden

S = TypeVar("S", bound=Select[Any])


class OwnedRecord(Protocol):
    """What the engine needs to know about one record."""

    @property
    def id(self) -> int: ...
    @property
    def owner_type(self) -> str: ...
    @property
    def owner_id(self) -> int: ...
    @property
    def owning_bu_id(self) -> int: ...


@dataclass(frozen=True)
class Grant:
    """One privilege on one record type at a level, from a role, anchored at a BU."""

    record_type: str
    privilege: str
    level: Level
    anchor_bu_id: int
    role_id: int
    role_name: str
    team_id: int | None = None
    team_name: str | None = None

    def describe(self, anchor: str | None = None) -> str:
        """Human wording, e.g. ``role 'Marketer' via team 'EMEA' (business_unit at BU
        'EMEA' (id 3))``; ``anchor`` names the anchor BU (its id otherwise)."""
        via = f" via team {self.team_name!r}" if self.team_name else ""
        where = anchor or f"id {self.anchor_bu_id}"
        return f"role {self.role_name!r}{via} ({self.level.label} at BU {where})"


@dataclass(frozen=True)
class Principal:
    """A user's security facts, loaded once per request (``org.directory.load_principal``)."""

    user_id: int
    username: str
    business_unit_id: int
    disabled: bool
    team_ids: frozenset[int]
    grants: tuple[Grant, ...]
    system_admin_role: str | None = None
    dialect: str = "sqlite"  # the database it was loaded from decides the SQL forms
    team_names: dict[int, str] = field(default_factory=dict, compare=False, hash=False)

    def __hash__(self) -> int:
        # The engine's statement caches are keyed by the principal: hash its facts once.
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            facts = (self.user_id, self.business_unit_id, self.disabled, self.team_ids)
            h = hash((*facts, self.grants, self.system_admin_role, self.dialect))
            object.__setattr__(self, "_hash", h)
            return h

    @property
    def is_system_admin(self) -> bool:
        """True when one of the user's roles (direct or via a team) is System Administrator."""
        return self.system_admin_role is not None and not self.disabled

    def grants_for(self, record_type: str, privilege: Privilege | str) -> list[Grant]:
        """The grants of ``privilege`` on ``record_type``, broadest first."""
        found = [
            g
            for g in self.grants
            if g.record_type == record_type and g.privilege == Privilege(privilege)
        ]
        return sorted(found, key=lambda g: -g.level)

    def max_level(self, record_type: str, privilege: Privilege | str) -> Level:
        """The broadest level at which the user holds ``privilege`` (NONE if not held)."""
        if self.disabled:
            return Level.NONE
        if self.is_system_admin:
            return Level.ORGANIZATION
        grants = self.grants_for(record_type, privilege)
        return grants[0].level if grants else Level.NONE


Shape = Literal["list", "lookup", "count"]


def readable(
    principal: Principal,
    record_type: str,
    privilege: Privilege | str = Privilege.READ,
    *,
    shape: Shape = "list",
) -> ColumnElement[bool]:
    """The SQL predicate selecting the records of ``record_type`` the principal may act on.

    Args:
        principal: from ``load_principal`` (it knows the database dialect).
        record_type: a registered record type (``"contact"``).
        privilege: read by default; write/delete/… give the rows those apply to.
        shape: the query it goes into, which decides the SQL form (the rows are the same):
            ``"list"`` for filtered, sorted pages; ``"lookup"`` for one record by id;
            ``"count"`` for a count (prefer ``count()``, which splits the work).

    Returns:
        A boolean SQLAlchemy expression over the type's model; ``false()`` when nothing
        is allowed, ``true()`` at organization level. Built once per principal and shape.

    Example:
        >>> stmt = select(Contact).where(readable(principal, "contact"))
    """
    return _predicate(principal, record_type, Privilege(privilege), shape)


@dataclass(frozen=True)
class _Reach:
    """What a principal's grants of one privilege reach, before any SQL is written."""

    level: Level
    local: tuple[int, ...] = ()
    deep: tuple[int, ...] = ()

    @property
    def has_bu(self) -> bool:
        return bool(self.local or self.deep)


def _reach(principal: Principal, record_type: str, privilege: Privilege) -> _Reach:
    level = principal.max_level(record_type, privilege)
    if level in (Level.NONE, Level.ORGANIZATION):
        return _Reach(level)
    grants = principal.grants_for(record_type, privilege)
    return _Reach(
        level,
        local=tuple(sorted({g.anchor_bu_id for g in grants if g.level == Level.BUSINESS_UNIT})),
        deep=tuple(sorted({g.anchor_bu_id for g in grants if g.level == Level.PARENT_CHILD})),
    )


def _member(column: Any, subquery: Select[Any], form: Literal["in", "any"]) -> ColumnElement[bool]:
    """``column IN (subquery)``, or on PostgreSQL ``column = ANY(ARRAY(subquery))``.

    The ANY form is an index condition, so an OR of such branches becomes a BitmapOr;
    the IN form is a hashed subplan, cheap to test row by row while walking another index.
    """
    if form == "any":
        return cast(ColumnElement[bool], column == any_(func.array(subquery.scalar_subquery())))
    return cast(ColumnElement[bool], column.in_(subquery))


def _const(value: str | int) -> ColumnElement[Any]:
    """A constant of the schema (an owner or recipient type, a record type, a rights mask)
    written into the SQL rather than bound: PostgreSQL's generic plan for a statement that
    binds them cannot use the columns' statistics (bench/access.py: a page took 2.4 ms
    against 1.5 ms). Only identifiers and integers of this module reach it."""
    if isinstance(value, int):
        return literal_column(str(int(value)), Integer)
    if not value.isidentifier():
        raise ValueError(f"not a schema constant: {value!r}")
    return literal_column(f"'{value}'", String)


def _one_of(column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column = :a`` or ``column IN (:a, :b, …)`` with one parameter per id.

    ``in_(list)`` would be an "expanding" parameter, whose SQL is rewritten at every
    execution; a statement built once per principal should not pay that (bench/access.py).
    """
    if len(ids) == 1:
        return cast(ColumnElement[bool], column == ids[0])
    return cast(ColumnElement[bool], column.in_([literal(i, Integer) for i in ids]))


@functools.lru_cache(maxsize=4096)
def _bu_part(model: Any, reach: _Reach, form: Literal["in", "any"]) -> ColumnElement[bool]:
    terms: list[ColumnElement[bool]] = []
    if reach.local:
        terms.append(_one_of(model.owning_bu_id, reach.local))
    if reach.deep:
        subtree = select(BusinessUnitClosure.descendant_id).where(
            _one_of(BusinessUnitClosure.ancestor_id, reach.deep)
        )
        terms.append(_member(model.owning_bu_id, subtree, form))
    return or_(*terms)


@functools.lru_cache(maxsize=4096)
def _personal_part(
    principal: Principal,
    model: Any,
    record_type: str,
    privilege: Privilege,
    share_form: Literal["in", "any", "exists"],
) -> ColumnElement[bool]:
    """Ownership, team ownership and shares: the paths that do not depend on BU depth."""
    terms: list[ColumnElement[bool]] = [
        and_(model.owner_type == _const(OWNER_USER), model.owner_id == principal.user_id)
    ]
    if principal.team_ids:
        terms.append(
            and_(
                model.owner_type == _const(OWNER_TEAM),
                _one_of(model.owner_id, sorted(principal.team_ids)),
            )
        )
    if privilege in SHARE_BITS:
        conditions = (
            RecordShare.record_type == _const(record_type),
            _share_recipients(principal),
            RecordShare.rights.op("&")(_const(SHARE_BITS[privilege])) != _const(0),
        )
        if share_form == "exists":
            terms.append(exists().where(RecordShare.record_id == model.id, *conditions))
        else:
            terms.append(
                _member(model.id, select(RecordShare.record_id).where(*conditions), share_form)
            )
    return or_(*terms)


@functools.lru_cache(maxsize=4096)
def _predicate(
    principal: Principal, record_type: str, privilege: Privilege, shape: Shape
) -> ColumnElement[bool]:
    rtype = registry.get(record_type)
    reach = _reach(principal, record_type, privilege)
    if reach.level == Level.NONE:
        return false()
    if reach.level == Level.ORGANIZATION:
        return true()
    if rtype.organization_owned:
        return false()
    model = rtype.model
    postgres = principal.dialect == "postgresql"
    # Forms measured in bench/access.py: ANY lets PostgreSQL build a BitmapOr when the
    # readable set is small or being counted; with a BU part in a sorted list, walking the
    # sort index and testing each row (IN on PostgreSQL, EXISTS on SQLite) stops sooner.
    share_form: Literal["in", "any", "exists"]
    if shape == "lookup":
        share_form = "exists"
    elif shape == "count" or not reach.has_bu:
        share_form = "any" if postgres else "in"
    else:
        share_form = "in" if postgres else "exists"
    bu_form: Literal["in", "any"] = "any" if postgres and shape == "count" else "in"
    personal = _personal_part(principal, model, record_type, privilege, share_form)
    if not reach.has_bu:
        return personal
    return or_(_bu_part(model, reach, bu_form), personal)


def _share_recipients(principal: Principal) -> ColumnElement[bool]:
    team_ids = sorted(principal.team_ids)
    recipients = [
        and_(
            RecordShare.principal_type == _const(PRINCIPAL_USER),
            RecordShare.principal_id == principal.user_id,
        ),
        and_(
            RecordShare.principal_type == _const(PRINCIPAL_ORGANIZATION),
            RecordShare.principal_id == _const(0),
        ),
    ]
    if team_ids:
        recipients.append(
            and_(
                RecordShare.principal_type == _const(PRINCIPAL_TEAM),
                _one_of(RecordShare.principal_id, team_ids),
            )
        )
    return or_(*recipients)


def scope(
    stmt: S,
    *,
    principal: Principal,
    record_type: str,
    privilege: Privilege | str = Privilege.READ,
    shape: Shape = "list",
) -> S:
    """Add the access predicate for ``record_type`` to ``stmt`` (see ``readable``).

    At organization level nothing is added: a constant ``WHERE 1 = 1`` keeps SQLite from
    answering ``count(*)`` from its fast path.
    """
    predicate = readable(principal, record_type, privilege, shape=shape)
    if isinstance(predicate, True_):
        return stmt
    return stmt.where(predicate)


@functools.lru_cache(maxsize=4096)
def _lookup_statement(principal: Principal, record_type: str, privilege: Privilege) -> Select[Any]:
    model = registry.get(record_type).model
    stmt = select(model).where(model.id == bindparam("record_id"))
    return scope(
        stmt, principal=principal, record_type=record_type, privilege=privilege, shape="lookup"
    )


def get(
    db: Session,
    *,
    principal: Principal,
    record_type: str,
    record_id: int,
    privilege: Privilege | str = Privilege.READ,
) -> Any:
    """The record with this id if the principal may exercise ``privilege`` on it, else None.

    The statement is built once per principal and reused with a new id, so a lookup costs
    the database round trip and little else.
    """
    stmt = _lookup_statement(principal, record_type, Privilege(privilege))
    return db.execute(stmt, {"record_id": record_id}).scalar()


def count(
    db: Session,
    stmt: Select[Any] | None = None,
    *,
    principal: Principal,
    record_type: str,
    privilege: Privilege | str = Privilege.READ,
    params: Mapping[str, Any] | None = None,
) -> int:
    """How many rows of ``stmt`` (a filtered select of the type's model, with its bind
    ``params``; None for all of them) the principal may reach.

    With a BU part, the count is split in two disjoint halves — the rows in the reached BUs
    (answered from the owning-BU index alone) plus the rows elsewhere that ownership, a team
    or a share grants — which keeps large BU-level counts index-only on PostgreSQL. The
    unfiltered count's statement is built once per principal.

    Example:
        >>> count(db, select(Contact).where(Contact.country == "DE"), principal=p,
        ...       record_type="contact")
    """
    privilege = Privilege(privilege)
    if principal.max_level(record_type, privilege) == Level.NONE:
        return 0
    if stmt is None:
        query = _count_all_statement(principal, record_type, privilege)
    elif principal.dialect == "sqlite":
        # A filtered count on SQLite is one OR: the split would evaluate the filter (a
        # segment's sub-queries, say) once per half (bench/segments.py).
        base = stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
        query = scope(
            base, principal=principal, record_type=record_type, privilege=privilege, shape="count"
        )
    else:
        query = _count_statement(principal, record_type, privilege, stmt)
    return int(db.execute(query, params).scalar_one())


@functools.lru_cache(maxsize=4096)
def _count_all_statement(
    principal: Principal, record_type: str, privilege: Privilege
) -> Select[Any]:
    model = registry.get(record_type).model
    return _count_statement(principal, record_type, privilege, select(model))


def _count_statement(
    principal: Principal, record_type: str, privilege: Privilege, source: Select[Any]
) -> Select[Any]:
    rtype = registry.get(record_type)
    base = source.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    reach = _reach(principal, record_type, privilege)
    if rtype.organization_owned or reach.level == Level.ORGANIZATION or not reach.has_bu:
        return scope(
            base, principal=principal, record_type=record_type, privilege=privilege, shape="count"
        )
    postgres = principal.dialect == "postgresql"
    share_form: Literal["any", "in"] = "any" if postgres else "in"
    inside = _bu_part(rtype.model, reach, share_form)
    personal = _personal_part(principal, rtype.model, record_type, privilege, share_form)
    return select(
        base.where(inside).scalar_subquery() + base.where(not_(inside), personal).scalar_subquery()
    )


# ---------------------------------------------------------------- one record, in Python


@dataclass(frozen=True)
class AccessPath:
    """One way to the record that the engine checked, and whether it grants."""

    path: str
    granted: bool
    detail: str
    role: str | None = None
    level: str | None = None
    team: str | None = None


@dataclass
class Explanation:
    """Why a principal may or may not exercise a privilege on a record."""

    allowed: bool
    user_id: int
    username: str
    privilege: str
    record_type: str
    record_id: int | None
    summary: str
    paths: list[AccessPath] = field(default_factory=list)
    record_name: str = ""  # what the record is called (a name, a person, an email)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API and CLI."""
        return {
            "allowed": self.allowed,
            "user_id": self.user_id,
            "username": self.username,
            "privilege": self.privilege,
            "record_type": self.record_type,
            "record_id": self.record_id,
            "summary": self.summary,
            "paths": [p.__dict__ for p in self.paths],
            "record_name": self.record_name,
        }


def _in_subtree(db: Session, anchor_bu_id: int, bu_id: int) -> bool:
    row = db.execute(
        select(BusinessUnitClosure.depth).where(
            BusinessUnitClosure.ancestor_id == anchor_bu_id,
            BusinessUnitClosure.descendant_id == bu_id,
        )
    ).first()
    return row is not None


def _bu_name(db: Session, bu_id: int) -> str:
    name = db.scalar(select(BU_NAMES.c.name).where(BU_NAMES.c.id == bu_id))
    return f"{name!r} (id {bu_id})" if name is not None else f"id {bu_id}"


def explain(
    db: Session,
    principal: Principal,
    privilege: Privilege | str,
    record_type: str,
    record: OwnedRecord | None = None,
    *,
    named: bool = True,
) -> Explanation:
    """Every path that grants or fails ``privilege`` on ``record`` for ``principal``.

    ``record`` may be None for organization-owned types (the privilege alone decides).
    ``named=False`` words the paths with BU ids instead of reading BU names (for ``can``,
    which keeps only the verdict).
    """

    def bu_name(bu_id: int) -> str:
        return _bu_name(db, bu_id) if named else f"id {bu_id}"

    privilege = Privilege(privilege)
    rtype = registry.get(record_type)
    out = Explanation(
        allowed=False,
        user_id=principal.user_id,
        username=principal.username,
        privilege=privilege.value,
        record_type=record_type,
        record_id=None if record is None else record.id,
        summary="",
        record_name="" if record is None else registry.display_name(record),
    )

    def grant(path: AccessPath) -> None:
        out.paths.append(path)
        out.allowed = out.allowed or path.granted

    if principal.disabled:
        out.summary = f"denied: user {principal.username!r} is disabled"
        out.paths.append(AccessPath("disabled", False, out.summary))
        return out
    if principal.is_system_admin:
        grant(
            AccessPath(
                "system_administrator",
                True,
                f"role {principal.system_admin_role!r} grants every privilege",
                role=principal.system_admin_role,
            )
        )
        out.summary = "allowed: system administrator"
        return out
    grants = principal.grants_for(record_type, privilege)
    if not grants:
        out.summary = (
            f"denied: no role of {principal.username!r} grants {privilege.value} "
            f"on {record_type} at any level (the privilege check fails before any path)"
        )
        out.paths.append(AccessPath("privilege", False, out.summary))
        return out
    for g in grants:
        if g.level == Level.ORGANIZATION:
            grant(
                AccessPath(
                    "organization",
                    True,
                    g.describe(bu_name(g.anchor_bu_id)) + ": every record",
                    role=g.role_name,
                    level=g.level.label,
                    team=g.team_name,
                )
            )
    if rtype.organization_owned or record is None:
        if not out.allowed:
            grant(
                AccessPath(
                    "organization",
                    False,
                    f"{record_type} is organization-owned: needs the organization level",
                )
            )
        out.summary = (
            "allowed" if out.allowed else "denied"
        ) + f": {privilege.value} on {record_type}"
        return out

    where = bu_name(record.owning_bu_id)
    for g in grants:
        if g.level not in (Level.PARENT_CHILD, Level.BUSINESS_UNIT):
            continue
        said = g.describe(bu_name(g.anchor_bu_id))
        if g.level == Level.PARENT_CHILD:
            ok = _in_subtree(db, g.anchor_bu_id, record.owning_bu_id)
            verb = "is" if ok else "is not"
            grant(
                AccessPath(
                    "parent_child",
                    ok,
                    f"{said}: record's BU {where} {verb} in that BU's subtree",
                    role=g.role_name,
                    level=g.level.label,
                    team=g.team_name,
                )
            )
        else:
            ok = g.anchor_bu_id == record.owning_bu_id
            verb = "is" if ok else "is not"
            grant(
                AccessPath(
                    "business_unit",
                    ok,
                    f"{said}: record's BU {where} {verb} that BU",
                    role=g.role_name,
                    level=g.level.label,
                    team=g.team_name,
                )
            )
    best = grants[0]
    if record.owner_type == OWNER_USER:
        ok = record.owner_id == principal.user_id
        grant(
            AccessPath(
                "ownership",
                ok,
                "the user owns the record"
                if ok
                else f"owned by another user (id {record.owner_id})",
                role=best.role_name,
                level=best.level.label,
            )
        )
    else:
        ok = record.owner_id in principal.team_ids
        team = principal.team_names.get(record.owner_id)
        grant(
            AccessPath(
                "team_ownership",
                ok,
                f"owned by team {team!r}, of which the user is a member"
                if ok
                else f"owned by team id {record.owner_id}, the user is not a member",
                role=best.role_name,
                level=best.level.label,
                team=team,
            )
        )
    if privilege in SHARE_BITS:
        shares = db.execute(
            select(RecordShare).where(
                RecordShare.record_type == record_type,
                RecordShare.record_id == record.id,
                _share_recipients(principal),
            )
        ).scalars()
        for share in shares:
            ok = bool(share.rights & SHARE_BITS[privilege])
            rights = ",".join(r.value for r in rights_from_mask(share.rights))
            to = {PRINCIPAL_USER: "the user", PRINCIPAL_ORGANIZATION: "the organization"}.get(
                share.principal_type,
                f"team {principal.team_names.get(share.principal_id)!r}",
            )
            grant(
                AccessPath(
                    "share",
                    ok,
                    f"shared with {to} with rights [{rights}]",
                    team=principal.team_names.get(share.principal_id)
                    if share.principal_type == PRINCIPAL_TEAM
                    else None,
                )
            )
    out.summary = (
        f"{'allowed' if out.allowed else 'denied'}: {privilege.value} on {record_type} "
        f"{record.id} for {principal.username!r}"
    )
    return out


def can(
    db: Session,
    principal: Principal,
    privilege: Privilege | str,
    record_type: str,
    record: OwnedRecord | None = None,
) -> bool:
    """True when ``principal`` may exercise ``privilege`` on ``record`` (see ``explain``)."""
    return explain(db, principal, privilege, record_type, record, named=False).allowed


def held_rights(
    db: Session, principal: Principal, record_type: str, record: OwnedRecord
) -> set[Privilege]:
    """The shareable rights the principal holds on ``record`` now, by any path.

    What a user may pass on by sharing: nobody grants more than they hold. One lookup per
    right with the statements ``get`` caches (``can`` gives the same verdicts, the property
    tests check it, but walks every path in Python with a query per grant).
    """
    return {
        p
        for p in SHARE_BITS
        if get(db, principal=principal, record_type=record_type, record_id=record.id, privilege=p)
        is not None
    }


def require(
    db: Session,
    principal: Principal,
    privilege: Privilege | str,
    record_type: str,
    record: OwnedRecord | None = None,
) -> None:
    """Raise Forbidden unless ``can``; the message says in words what the user may not do
    (``explain`` gives an administrator the paths behind it)."""
    if not can(db, principal, privilege, record_type, record):
        raise Forbidden(refusal(principal, privilege, record_type, record))


# How a refusal names each privilege ("you may not change this contact").
VERBS = {
    Privilege.CREATE: "create",
    Privilege.READ: "read",
    Privilege.WRITE: "change",
    Privilege.DELETE: "delete",
    Privilege.APPEND: "attach records to",
    Privilege.APPEND_TO: "attach",
    Privilege.ASSIGN: "assign",
    Privilege.SHARE: "share",
}


def refusal(
    principal: Principal,
    privilege: Privilege | str,
    record_type: str,
    record: OwnedRecord | None = None,
) -> str:
    """Why ``principal`` may not do this, in the words a person reads on a page."""
    if principal.disabled:
        return "your user is disabled"
    rtype = registry.get(record_type)
    verb = VERBS[Privilege(privilege)]
    if record is None or rtype.organization_owned:
        return f"you may not {verb} {rtype.nouns}: your security roles do not allow it"
    return f"you may not {verb} {rtype.noun}: your security roles do not reach it"


def can_create_in(
    db: Session,
    principal: Principal,
    record_type: str,
    *,
    owner_type: str,
    owner_id: int,
    owning_bu_id: int,
) -> None:
    """Check that the principal may create a record with this owner and owning BU.

    Basic: owner is the user or one of their teams; Local/Deep: the owning BU is within
    reach of a Create grant's anchor; Global: anything (reference §2.6, Create).

    Raises:
        Forbidden: with the reason.
    """
    if principal.disabled:
        raise Forbidden("disabled users cannot create records")
    if principal.is_system_admin:
        return
    grants = principal.grants_for(record_type, Privilege.CREATE)
    if not grants:
        raise Forbidden(refusal(principal, Privilege.CREATE, record_type))
    for g in grants:
        if g.level == Level.ORGANIZATION:
            return
        if g.level == Level.PARENT_CHILD and _in_subtree(db, g.anchor_bu_id, owning_bu_id):
            return
        if g.level == Level.BUSINESS_UNIT and g.anchor_bu_id == owning_bu_id:
            return
    if (owner_type == OWNER_USER and owner_id == principal.user_id) or (
        owner_type == OWNER_TEAM and owner_id in principal.team_ids
    ):
        return
    raise Forbidden(
        f"you may not create {registry.get(record_type).nouns} for that owner: your security "
        "roles do not reach its business unit",
        field="owner",
    )
