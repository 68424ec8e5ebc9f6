"""Business units, users, teams, security roles and API tokens (SPEC B1, B2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.core.db import Base, UTCDateTime, utcnow


class BusinessUnit(Base):
    """A node of the BU tree; the one row without a parent is the organisation (root)."""

    __tablename__ = "business_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_unit.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person who signs in; belongs to exactly one BU."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    business_unit_id: Mapped[int] = mapped_column(
        ForeignKey("business_unit.id", ondelete="RESTRICT"), index=True
    )
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The IANA zone the web pages show times in; None: the browser's.
    time_zone: Mapped[str | None] = mapped_column(String(64))


class Team(Base):
    """An owner team: belongs to one BU, has members from any BU, can own records and hold roles.

    ``default_for_bu_id`` is set on the one default team of each BU, whose membership the
    system keeps equal to that BU's users.
    """

    __tablename__ = "team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    business_unit_id: Mapped[int] = mapped_column(
        ForeignKey("business_unit.id", ondelete="RESTRICT"), index=True
    )
    default_for_bu_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_unit.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_default(self) -> bool:
        """True for a BU's system-managed default team."""
        return self.default_for_bu_id is not None


class TeamMember(Base):
    """Membership of a user in a team."""

    __tablename__ = "team_member"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SecurityRole(Base):
    """A named set of privileges; ``is_system_admin`` grants everything."""

    __tablename__ = "security_role"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    is_system_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class RolePrivilege(Base):
    """One (record type, privilege) granted by a role at an access level (see access.levels)."""

    __tablename__ = "role_privilege"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("security_role.id", ondelete="CASCADE"), primary_key=True
    )
    record_type: Mapped[str] = mapped_column(String(60), primary_key=True)
    privilege: Mapped[str] = mapped_column(String(20), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class UserRole(Base):
    """A role assigned directly to a user; its BU depths anchor at the user's BU."""

    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        ForeignKey("security_role.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TeamRole(Base):
    """A role assigned to a team; its BU depths anchor at the team's BU."""

    __tablename__ = "team_role"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        ForeignKey("security_role.id", ondelete="CASCADE"), primary_key=True, index=True
    )


# A token's status words (not secrets).
TOKEN_ACTIVE = "active"  # noqa: S105
TOKEN_EXPIRED = "expired"  # noqa: S105
TOKEN_REVOKED = "revoked"  # noqa: S105


class ApiToken(Base):
    """A per-user API token; only its SHA-256 is stored, the secret is shown once.

    ``expires_at`` None means the token never expires (only where the administrator's
    token policy allows it, and for tokens made before expiry existed).
    """

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def status_at(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now`` (revoked wins)."""
        if self.revoked_at is not None:
            return TOKEN_REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TOKEN_EXPIRED
        return TOKEN_ACTIVE

    @property
    def status(self) -> str:
        """``active``, ``expired`` or ``revoked`` now."""
        return self.status_at(utcnow())


class InstallationSetting(Base):
    """An installation-wide setting an administrator edits (e.g. ``api_tokens``: the token
    lifetime policy); absent means the built-in default."""

    __tablename__ = "installation_setting"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(Integer)


class FeatureSwitch(Base):
    """An installation-wide switch, e.g. ``bu_scoping`` (SPEC B4); absent means off."""

    __tablename__ = "feature_switch"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(Integer)


class SecurityEpoch(Base):
    """One row whose value changes, by database triggers, in the same transaction as every
    change to what a principal is made of: a user's BU, name or status, team membership,
    a team's BU or name, role assignments, a role's privileges or administrator flag, API
    tokens revoked or expiring, and any of these rows added or deleted (migration 0022).

    API processes cache principals with the value they were loaded under and use them
    while it is unchanged; the value is random, not a counter, so a restored backup can
    never bring back a value a process cached under (docs/operations.md).
    """

    __tablename__ = "security_epoch"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
