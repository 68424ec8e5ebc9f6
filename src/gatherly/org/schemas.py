"""Input and output shapes of the organisation API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel, normalize_email

Name = Annotated[str, Field(min_length=1, max_length=160)]


class Strict(StrictModel):
    """Unknown fields are an error, strings are trimmed."""


class BusinessUnitIn(Strict):
    name: Name
    parent_id: Id
    description: str = ""


class BusinessUnitPatch(Strict):
    name: Name | None = None
    parent_id: Id | None = None
    description: str | None = None


class BusinessUnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    parent_id: int | None
    description: str
    created_at: datetime


class UserIn(Strict):
    username: Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.@-]+$")]
    email: str | None = None
    full_name: str = ""
    business_unit_id: Id | None = None
    password: Annotated[str, Field(min_length=8)] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if not value else normalize_email(value)


class UserPatch(Strict):
    """Only the fields sent change; ``email: null`` clears the email."""

    email: str | None = None
    full_name: str = ""
    disabled: bool = False
    business_unit_id: Id | None = None
    move_records: bool = True

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if not value else normalize_email(value)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    email: str | None
    full_name: str
    business_unit_id: Id
    disabled: bool
    created_at: datetime
    time_zone: str | None = Field(
        None, description="The IANA zone the web pages show times in; null: the browser's"
    )


class TimeZoneIn(Strict):
    """Your time zone for the web pages: an IANA name, or null for the browser's."""

    time_zone: str | None = Field(max_length=64, examples=["Europe/Berlin"])


class TeamIn(Strict):
    name: Name
    business_unit_id: Id
    description: str = ""


class TeamPatch(Strict):
    name: Name | None = None
    business_unit_id: Id | None = None
    description: str | None = None


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    business_unit_id: Id
    description: str
    is_default: bool
    created_at: datetime


class MemberIn(Strict):
    user_id: Id


class RoleRef(Strict):
    role_id: Id


PrivilegesIn = dict[str, dict[str, str | int]]


class RoleIn(Strict):
    name: Name
    description: str = ""
    privileges: PrivilegesIn = Field(
        default_factory=dict,
        description='{"contact": {"read": "business_unit", "write": "user"}, …}',
    )


class RolePatch(Strict):
    name: Name | None = None
    description: str | None = None
    privileges: PrivilegesIn | None = None


class RoleOut(BaseModel):
    id: int
    name: str
    description: str
    is_system_admin: bool
    is_builtin: bool
    privileges: dict[str, dict[str, str]]


class TokenIn(Strict):
    """A new token: a label and, optionally, when it expires (one of the three; none asks
    for the administrator's default lifetime)."""

    name: Annotated[str, Field(min_length=1, max_length=120)] = "api"
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None, description="Expire after this many days (at most the admin's maximum)."
    )
    expires_at: datetime | None = Field(
        default=None, description="Expire at this time (ISO 8601 with a zone)."
    )
    never_expires: bool = Field(
        default=False, description="Never expire (only where the administrator allows it)."
    )


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = Field(description="None: never expires.")
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked")


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown this once, never again.")


class AdminTokenOut(TokenOut):
    """A token in the administrators' list: whose it is."""

    user_id: int
    username: str


class TokenPolicyOut(BaseModel):
    """How long API tokens live."""

    default_days: int | None = Field(description="Lifetime when a request names none; None: never.")
    max_days: int | None = Field(description="Longest lifetime; None: no maximum, never allowed.")
    allows_never: bool


class TokenPolicyIn(Strict):
    """The token policy (both fields are required; null means never / no maximum)."""

    default_days: Annotated[int, Field(ge=1, le=3650)] | None
    max_days: Annotated[int, Field(ge=1, le=3650)] | None


class GrantOut(BaseModel):
    record_type: str
    privilege: str
    level: str
    anchor_bu_id: int
    role: str
    team: str | None


class MeOut(BaseModel):
    user: UserOut
    system_administrator: bool
    teams: list[int]
    grants: list[GrantOut]


class FeatureOut(BaseModel):
    """An installation-wide switch."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    label: str
    enabled: bool
    changed_at: datetime | None
    changed_by_id: int | None


class FeatureIn(StrictModel):
    """Turn a switch on or off."""

    enabled: bool


class AuditOut(BaseModel):
    """One audited change: who, when, what, before and after."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None = Field(description="None: the system (migrations, the CLI, syncs).")
    actor_name: str = Field(description="The actor's username when the change was made.")
    action: str
    target_type: str
    target_id: str
    target_label: str = Field(description="The target's name when the change was made.")
    before: Any | None
    after: Any | None
    details: dict[str, Any]


class PasswordChangeIn(Strict):
    """Your current password and the new one (at least 8 characters)."""

    current_password: Annotated[str, Field(min_length=1, max_length=1000)]
    new_password: Annotated[str, Field(min_length=8, max_length=1000)]
