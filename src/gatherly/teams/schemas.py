"""Input and output shapes of the Microsoft Teams connector API (SPEC T1–T5).

The client secret is input only (``SecretStr``): no output shape has a field for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
GraphText = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(min_length=1, max_length=500)]


def check_url(value: str, *, needs_path: bool) -> str:
    """An https URL with a host (plain http only on loopback, as the Graph client allows)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        raise ValueError(f"{value!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{value!r} must look like https://host/…")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ValueError("plain http is only allowed on loopback (the Graph emulator)")
    if needs_path and len(parts.path.strip("/")) < 1:
        raise ValueError(f"{value!r} must name the tenant: https://host/{{tenant}}")
    return value


class ConnectionIn(StrictModel):
    """Connect (or reconnect) to a tenant with an app registration's credentials."""

    tenant_id: GraphText
    client_id: GraphText
    client_secret: Annotated[SecretStr, Field(max_length=500)] | None = Field(
        default=None,
        description="Optional when GATHERLY_TEAMS_CLIENT_SECRET is set; never returned.",
    )
    authority: Url | None = Field(
        default=None, description="Default: https://login.microsoftonline.com/{tenant_id}"
    )
    graph_url: Url | None = Field(default=None, description="Default: Microsoft Graph v1.0")
    default_owner_id: Id | None = None

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, needs_path=True)

    @field_validator("graph_url")
    @classmethod
    def _graph_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, needs_path=False)


class SettingsPatch(StrictModel):
    """A partial update of the global settings: only the fields sent change."""

    sync_enabled: bool | None = None
    organizer_exclusion_domains: Annotated[list[str], Field(max_length=1000)] | None = None
    contact_exclusion_domains: Annotated[list[str], Field(max_length=1000)] | None = None
    default_owner_id: Id | None = Field(default=None, description="null clears it")
    sync_interval_minutes: int | None = Field(default=None, description="5 … 1440")
    policy_name: Annotated[str, Field(max_length=200)] | None = None
    notifications_enabled: bool | None = Field(
        default=None, description="Subscribe to Graph's change notifications"
    )
    public_base_url: Annotated[str, Field(max_length=500)] | None = Field(
        default=None,
        description="This installation's base URL as Microsoft Graph reaches it "
        "(https://…); null clears it",
    )

    @field_validator(
        "notifications_enabled",
        "sync_enabled",
        "organizer_exclusion_domains",
        "contact_exclusion_domains",
        "sync_interval_minutes",
        "policy_name",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values sent (defaults are not validated): null is refused here.
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return value


class TeamsSettingsOut(BaseModel):
    """The global settings."""

    model_config = ConfigDict(from_attributes=True)

    sync_enabled: bool
    organizer_exclusion_domains: list[str]
    contact_exclusion_domains: list[str]
    default_owner_id: int | None
    sync_interval_minutes: int
    policy_name: str
    notifications_enabled: bool
    public_base_url: str | None


class NotificationsIn(BaseModel):
    """What Graph posts to the webhook: notifications (or lifecycle notifications) in
    ``value``; each item is read as Graph shapes it and checked against its subscription."""

    value: Annotated[list[Any], Field(max_length=1000)] = []


class SubscriptionOut(BaseModel):
    """A change-notification subscription Gatherly holds, and how it stands."""

    id: int
    resource: str
    scope: str = Field(description="tenant | event | sessions | registrations")
    webinar_id: int | None
    webinar_name: str | None
    status: str = Field(description="active | failed | removed")
    expires_at: datetime | None
    last_notification_at: datetime | None
    last_catch_up_at: datetime | None
    last_error: str


class ConnectionOut(BaseModel):
    """The connection as an admin sees it: never the secret, only where it comes from."""

    tenant_id: str
    client_id: str
    authority: str
    graph_url: str
    status: str
    status_detail: str
    granted_permissions: list[str]
    missing_permissions: list[str]
    secret_source: Literal["stored", "environment", "missing"]
    checked_at: datetime | None
    modified_at: datetime
    settings: TeamsSettingsOut


class OrganizerOut(BaseModel):
    """A Teams user with their status, the remedy for it and their settings."""

    id: int
    graph_user_id: str
    display_name: str
    email: str | None
    status: str
    status_detail: str
    status_changed_at: datetime | None
    remedy: list[str]
    sync_new_by_default: bool
    sync_recordings: bool
    user_id: int | None
    organizes: bool = Field(
        description="Seen organizing or co-organizing a webinar or town hall (Graph lists "
        "only granted organizers' webinars, so a blocked user is known to organize only "
        "from an earlier sync or as a co-organizer)"
    )
    probed_at: datetime | None = Field(
        description="When Graph was last asked about this user alone"
    )
    removed_at: datetime | None = Field(description="When the user left the directory")


class DirectorySummaryOut(BaseModel):
    """The tenant's directory users by what the sync knows of them."""

    users: int = Field(description="Users in the directory")
    organizers: int = Field(description="Who organize webinars or are mapped to Gatherly users")
    blocked: int = Field(description="Of those, who cannot sync until an admin acts")
    others_blocked: int = Field(
        description="Other users Graph refused; they may organize nothing, so they are not "
        "reported as needing an admin"
    )
    unchecked: int = Field(description="Users not asked about yet (the daily budget)")
    excluded: int = Field(description="Users in an excluded domain")


class OrganizerPatch(StrictModel):
    """Per-organizer settings; a field left out (or null) keeps its value."""

    sync_new_by_default: bool | None = None
    sync_recordings: bool | None = None


class WebinarOut(BaseModel):
    """A webinar (or town hall, ``kind`` ``townhall``) seen in Teams and whether it is synced."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    graph_id: str
    kind: Literal["webinar", "townhall"] = Field(
        description="webinar, or townhall (its marketing event's type is 'town hall')"
    )
    organizer_id: int
    organizer_name: str
    display_name: str
    status: str
    start_at: datetime | None
    end_at: datetime | None
    sync_enabled: bool
    event_id: int | None
    discovered_at: datetime
    last_changed_at: datetime | None
    last_error: str


class WebinarPatch(StrictModel):
    """Tick or untick Sync on a webinar."""

    sync_enabled: bool


class SyncIn(StrictModel):
    """Run a sync: the whole tenant, or one webinar (*Sync now*); ``dry_run`` only plans."""

    webinar_id: Id | None = Field(
        default=None, description="A Gatherly Teams webinar (or town hall) id"
    )
    dry_run: bool = False


class SyncErrorOut(BaseModel):
    """One failure of a run, per organizer, webinar or the run itself."""

    scope: str
    id: str
    name: str
    code: str
    message: str


class PlanItemOut(BaseModel):
    """What a dry run would do to one webinar's event."""

    webinar_id: str
    webinar: str
    event: str
    changes: dict[str, int]
    contacts_to_create: list[str]
    excluded: dict[str, list[str]]
    anonymous_attendees: int = Field(
        default=0, description="Town halls: attendees without an email (counted, no contact)"
    )


class SyncReportOut(BaseModel):
    """A dry run's report: what would change; nothing was written."""

    run_id: int | None
    status: str
    dry_run: bool
    fetched: dict[str, int]
    changes: dict[str, int]
    errors: list[SyncErrorOut]
    plan: list[PlanItemOut]
    graph_stats: dict[str, int | float]
    notes: list[str] = Field(default_factory=list)


class SyncRunOut(BaseModel):
    """A sync run: its progress while running, what it fetched and changed when done."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    webinar_graph_id: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    triggered_by_id: int | None
    progress_done: int
    progress_total: int
    progress_label: str
    fetched: dict[str, int]
    changes: dict[str, int]
    graph_stats: dict[str, int | float]
    errors: list[SyncErrorOut]
    notes: list[str] = Field(
        default_factory=list,
        description="What to know beyond the counts (e.g. none ticked, a time zone read as UTC)",
    )
    links: dict[str, str] = Field(default_factory=dict)
