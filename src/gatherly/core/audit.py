"""The audit trail of security-relevant changes: who, when, what, before and after.

Every service that changes who may do what (roles and their assignments, users, teams,
business units, shares, owners, the Teams connection, API tokens, installation settings)
calls ``log`` in the transaction of the change, so the entry commits or rolls back with it.
An entry keeps the actor's name and the target's label as they were at that moment: the
trail still reads correctly after the user or record is renamed or deleted.

Example (what a contact share records)::

    audit.log(
        db,
        actor=principal,  # a Principal, a User, a user id, or None for the system
        action="contact.share",
        target_type="contact",
        target_id=contact.id,
        target_label=contact.full_name,
        before=None,
        after={"principal_type": "user", "principal_id": 7, "rights": ["read"]},
    )
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gatherly.core.db import Base, UTCDateTime, isoformat, utcnow
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.pagination import Page, paginate

# Longest stored texts: longer labels and names are cut, never refused (an audit entry must
# not make the change it records fail).
ACTION_MAX = 60
TYPE_MAX = 60
ID_MAX = 64
LABEL_MAX = 300
NAME_MAX = 120


class AuditEntry(Base):
    """One audited change. ``target_id`` is text: ids are numbers, settings have names."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_action", "action", "id"),
        Index("ix_audit_entry_actor", "actor_id", "id"),
        Index("ix_audit_entry_target", "target_type", "target_id", "id"),
        Index("ix_audit_entry_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: users go, entries stay
    actor_name: Mapped[str] = mapped_column(String(NAME_MAX), default="")
    action: Mapped[str] = mapped_column(String(ACTION_MAX))
    target_type: Mapped[str] = mapped_column(String(TYPE_MAX), default="")
    target_id: Mapped[str] = mapped_column(String(ID_MAX), default="")
    target_label: Mapped[str] = mapped_column(String(LABEL_MAX), default="")
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        """``(field, before, after)`` for every top-level field of before or after."""
        old = self.before if isinstance(self.before, dict) else {}
        new = self.after if isinstance(self.after, dict) else {}
        if not old and not new:
            return []
        keys = list(old) + [k for k in new if k not in old]
        return [(k, old.get(k), new.get(k)) for k in keys]


class PrincipalLike(Protocol):
    """An access principal: the signed-in user behind a request."""

    @property
    def user_id(self) -> int: ...

    @property
    def username(self) -> str: ...


class UserLike(Protocol):
    """A user row."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...


# Who made a change: a principal, a user row, a user id, or None (the system: migrations,
# the sync, an operator at the command line).
Actor = PrincipalLike | UserLike | int | None


def _actor(db: Session, actor: Actor) -> tuple[int | None, str]:
    if actor is None or isinstance(actor, bool):
        return None, ""
    if isinstance(actor, int):
        if actor <= 0:
            return None, ""
        # core sits below org: read the user table through the metadata, not org.models.
        users = Base.metadata.tables["user_account"]
        name = db.execute(select(users.c.username).where(users.c.id == actor)).scalar()
        return actor, str(name or "")
    user_id = getattr(actor, "user_id", None)
    if user_id is None:
        user_id = getattr(actor, "id", None)
    if not user_id:  # a team's principal (user id 0) acts for nobody in particular
        return None, ""
    return int(user_id), str(getattr(actor, "username", "") or "")


def jsonable(value: Any) -> Any:
    """``value`` as JSON can store it: datetimes as ISO 8601 with their zone, enums by value,
    sets as sorted lists, mappings and sequences converted inside."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields whose values differ: ``(old values, new values)``, both empty if none do."""
    old, new = jsonable(dict(before)), jsonable(dict(after))
    keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}


def log(
    db: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: int | str | None = None,
    target_label: str = "",
    before: Any = None,
    after: Any = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the current transaction (it commits with the change it records).

    Args:
        actor: who did it (a Principal, a User, a user id; None for the system).
        action: ``<target type>.<verb>``, e.g. ``role.assign`` (filters match prefixes).
        target_type, target_id, target_label: what changed (the label as it reads now).
        before, after: the changed state, JSON-like (None for create / delete); never a secret.
        details: context that is neither state nor target (``move_records``, …).
    """
    actor_id, actor_name = _actor(db, actor)
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor_id,
        actor_name=actor_name[:NAME_MAX],
        action=action[:ACTION_MAX],
        target_type=target_type[:TYPE_MAX],
        target_id="" if target_id is None else str(target_id)[:ID_MAX],
        target_label=(target_label or "")[:LABEL_MAX],
        before=jsonable(before),
        after=jsonable(after),
        details=jsonable(dict(details or {})),
    )
    db.add(entry)
    db.flush()
    return entry


@dataclass(frozen=True)
class Filters:
    """What ``search`` narrows the trail to; every field is optional."""

    action: str | None = None  # a prefix: "role" matches role.assign, role.update …
    actor_id: int | None = None
    actor: str | None = None  # the actor's username as recorded (case-insensitive)
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


def _instant(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(
            "give a time zone with the date and time, e.g. 2026-12-05T09:00:00+01:00 or …Z",
            field=field,
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed("this date is outside the supported range", field=field) from None


def check_filters(filters: Filters) -> Filters:
    """The filters with their times in UTC; ValidationFailed names a bad field."""
    since = _instant(filters.since, "since")
    until = _instant(filters.until, "until")
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("'until' must be later than 'since'", field="until")
    for name in ("action", "actor", "target_type", "target_id"):
        text = getattr(filters, name)
        if text is not None and len(text) > LABEL_MAX:
            raise ValidationFailed(f"at most {LABEL_MAX} characters", field=name)
    return Filters(
        action=filters.action or None,
        actor_id=filters.actor_id,
        actor=(filters.actor or "").strip() or None,
        target_type=filters.target_type or None,
        target_id=filters.target_id or None,
        since=since,
        until=until,
    )


def search(db: Session, filters: Filters, *, cursor: str | None = None, limit: int = 50) -> Page:
    """A page of entries, newest first, matching ``filters`` (keyset paging by id).

    Callers check who may read the trail (``org.service.audit_trail``: system administrators).

    Raises:
        ValidationFailed: a time without a zone or out of range, ``until`` not after
            ``since``, a bad cursor or limit (``field`` says which).
    """
    f = check_filters(filters)
    stmt = select(AuditEntry)
    if f.action:
        stmt = stmt.where(AuditEntry.action.startswith(f.action, autoescape=True))
    if f.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == f.actor_id)
    if f.actor:
        stmt = stmt.where(func.lower(AuditEntry.actor_name) == f.actor.lower())
    if f.target_type:
        stmt = stmt.where(AuditEntry.target_type == f.target_type)
    if f.target_id:
        stmt = stmt.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        stmt = stmt.where(AuditEntry.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEntry.at < f.until)
    return paginate(
        db,
        stmt,
        id_column=AuditEntry.id,
        sortable={"id": AuditEntry.id},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def entries(db: Session, *, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The latest entries, newest first, optionally those whose action starts with ``action``."""
    return list(search(db, Filters(action=action), limit=limit).items)


# The action families the filter suggests (an action is "<family>.<verb>").
ACTION_FAMILIES = (
    "business_unit",
    "user",
    "team",
    "role",
    "token",
    "feature",
    "settings",
    "teams",
    "contact",
    "lead",
)
