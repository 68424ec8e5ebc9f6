"""The Teams connection and settings, organizers, webinars and sync runs (SPEC T1–T5, T12)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.core.db import Base, UTCDateTime, utcnow

# Organizer statuses (T2).
ORGANIZER_OK = "ok"
ORGANIZER_POLICY = "policy_not_granted"
ORGANIZER_PERMISSION = "permission_missing"
ORGANIZER_EXCLUDED = "excluded"
ORGANIZER_ERROR = "error"
ORGANIZER_UNCHECKED = "unchecked"

# Sync run statuses.
RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_PARTIAL = "partial"  # some organizers or webinars failed; the rest synced
RUN_FAILED = "failed"
RUN_INTERRUPTED = "interrupted"  # the process died; a re-run converges

# Kinds of Teams virtual events (``TeamsWebinar.kind``) and the marketing event type each
# becomes (``MarketingEvent.event_type``, stored lower-case; docs/teams.md).
KIND_WEBINAR = "webinar"
KIND_TOWNHALL = "townhall"
EVENT_TYPES = {KIND_WEBINAR: "webinar", KIND_TOWNHALL: "town hall"}
KIND_LABELS = {KIND_WEBINAR: "webinar", KIND_TOWNHALL: "town hall"}


class TeamsConnection(Base):
    """The single Teams connection with its global settings (T1, T3).

    The client secret is stored encrypted with the installation's secret key, or left
    empty and read from ``GATHERLY_TEAMS_CLIENT_SECRET``.
    """

    __tablename__ = "teams_connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(String(500))
    graph_url: Mapped[str] = mapped_column(String(500))
    granted_permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="connected")
    status_detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    organizer_exclusion_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    contact_exclusion_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    policy_name: Mapped[str] = mapped_column(String(100), default="Gatherly-Webinar-Sync")
    sync_interval_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # Where the directory was last read up to (Graph's ``/users/delta`` deltaLink): the next
    # run asks only for what changed since. None: read the whole directory.
    users_delta_link: Mapped[str | None] = mapped_column(Text)
    # Change notifications (docs/teams.md §10): whether Gatherly subscribes to them, and the
    # public address Graph posts them to (this installation's base URL, as Microsoft sees it).
    notifications_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    public_base_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_by_id: Mapped[int | None] = mapped_column(Integer)


class TeamsOrganizer(Base):
    """A Teams user of the tenant (the directory, read through ``/users/delta``), with their
    per-user settings (T4) and status (T2).

    ``organizes``: seen organizing or co-organizing a webinar or town hall. ``probed_at``:
    when Graph was last asked about this user alone (the access-policy probe, spread over
    the day's budget). ``removed_at``: gone from the directory (kept for their webinars).
    """

    __tablename__ = "teams_organizer"

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_user_id: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    status: Mapped[str] = mapped_column(String(30), default=ORGANIZER_UNCHECKED)
    status_detail: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_new_by_default: Mapped[bool] = mapped_column(Boolean, default=False)
    sync_recordings: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    organizes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    probed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TeamsWebinar(Base):
    """A webinar or town hall seen in Teams, whether or not it is synced (T4, T5).

    ``kind`` says which Graph collection it lives in (``webinar``: ``…/webinars``,
    ``townhall``: ``…/townhalls``); everything else is handled alike.
    """

    __tablename__ = "teams_webinar"
    __table_args__ = (Index("ix_teams_webinar_organizer", "organizer_id", "start_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_id: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default=KIND_WEBINAR, server_default=KIND_WEBINAR)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("teams_organizer.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_event.id", ondelete="SET NULL"), index=True
    )
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


# Change-notification subscriptions: what each watches, and their states.
SCOPE_TENANT = "tenant"  # every virtual event created in the tenant
SCOPE_EVENT = "event"  # one webinar's (or town hall's) own properties
SCOPE_SESSIONS = "sessions"
SCOPE_REGISTRATIONS = "registrations"
SUB_ACTIVE = "active"
SUB_FAILED = "failed"  # Graph refused to create or renew it: retried, polling covers
SUB_REMOVED = "removed"  # Graph said it removed it: created again, then a catch-up


class TeamsSubscription(Base):
    """One Graph change-notification subscription Gatherly holds (or means to hold).

    Graph sends ``clientState`` back with every notification; only its SHA-256 is kept, so
    a database read does not let anyone forge notifications.
    """

    __tablename__ = "teams_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(String(600), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    webinar_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams_webinar.id", ondelete="CASCADE"), index=True
    )
    graph_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    client_state_hash: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(20), default=SUB_FAILED)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    renewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_notification_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_catch_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    needs_catch_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Where Graph posts this subscription's notifications: a new public base URL means the
    # subscription is made again there.
    notification_url: Mapped[str] = mapped_column(String(600), default="")


class TeamsNotified(Base):
    """A webinar or town hall Graph said changed, waiting for its targeted sync.

    One row per event however many notifications name it (repeats and reordering collapse
    here); ``version`` moves on with each, and the row is deleted only by a sync that read
    it at its latest version, so nothing notified is lost to a killed worker.
    """

    __tablename__ = "teams_notified"

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_id: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default=KIND_WEBINAR)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by every notification naming the event: a sync deletes the row only if no
    # notification came while it ran (no clock is compared across processes).
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # syncs that failed


def run_notes(kind: str, fetched: Mapping[str, int]) -> list[str]:
    """What a person should know about a finished run beyond its counts: a discovery that
    found webinars (or town halls) but synced none because none is ticked."""
    webinars, townhalls = fetched.get("webinars", 0), fetched.get("townhalls", 0)
    ticked = fetched.get("webinars_ticked", 0) + fetched.get("townhalls_ticked", 0)
    found = webinars + townhalls
    if kind not in ("webinar", "notified") and found and not ticked:
        what = [
            f"{n} {label}{'s' if n != 1 else ''}"
            for n, label in ((webinars, "webinar"), (townhalls, "town hall"))
            if n
        ]
        return [
            f"Found {' and '.join(what)}, but none is ticked for sync, so "
            "no marketing event was updated. Tick the webinars to sync on My webinars "
            "(/webinars) or with `gatherly teams tick WEBINAR_ID`; the next sync brings them in."
        ]
    return []


class SyncRun(Base):
    """One sync: when, what it fetched and changed, retries met, errors per organizer/webinar."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_started", "started_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # full | webinar | scheduled
    webinar_graph_id: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=RUN_RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a worker took the queued run; it then beats every few seconds (sync.HEARTBEAT).
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_by: Mapped[str | None] = mapped_column(String(300))  # "host:pid" of that worker
    triggered_by_id: Mapped[int | None] = mapped_column(Integer)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_label: Mapped[str] = mapped_column(String(500), default="")
    fetched: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    graph_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Notes the run wrote as it went (an unknown time-zone name read as UTC, …): not errors,
    # the run still succeeds, but a person should know.
    recorded_notes: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")

    @property
    def notes(self) -> list[str]:
        """What to know about the finished run beyond its counts (see ``run_notes``), then
        what the run recorded as it went."""
        if not self.finished_at:
            return []
        return run_notes(self.kind, self.fetched or {}) + list(self.recorded_notes or [])


registry.register(
    "teams_integration",
    "Microsoft Teams integration",
    setting=True,
    plural="the Microsoft Teams integration",
)
