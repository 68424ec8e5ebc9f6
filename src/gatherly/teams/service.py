"""The Teams connection, global and per-user settings, organizers and webinars (SPEC T1–T5).

Who may do what: the connection and global settings take the ``teams_integration``
privilege at organization level (marketing and system administrators); an organizer
mapped to a Gatherly user (same email) manages their own webinars and defaults (T5).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.engine import Principal
from gatherly.access.levels import Level, Privilege
from gatherly.core import audit
from gatherly.core.bounds import parse_id
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import (
    Conflict,
    FatalSyncError,
    Forbidden,
    NotFound,
    SyncError,
    ValidationFailed,
)
from gatherly.event import service as event_service
from gatherly.event.models import MarketingEvent
from gatherly.graph.auth import TokenError, authority_url
from gatherly.graph.client import GRAPH_BASE_URL
from gatherly.graph.errors import GraphError
from gatherly.org.models import BusinessUnit, User
from gatherly.teams import fetch, sync
from gatherly.teams.connection import (
    CONNECTION_ID,
    SecretUnavailable,
    client_factory,
    encrypt_secret,
)
from gatherly.teams.connection import ClientFactory as ClientFactory  # the interfaces' too
from gatherly.teams.connection import get_connection as get_connection
from gatherly.teams.models import (
    ORGANIZER_ERROR,
    ORGANIZER_EXCLUDED,
    ORGANIZER_PERMISSION,
    ORGANIZER_POLICY,
    ORGANIZER_UNCHECKED,
    SyncRun,
    TeamsConnection,
    TeamsOrganizer,
    TeamsSubscription,
    TeamsWebinar,
)

RECORD_TYPE = "teams_integration"
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UNSET: Any = object()


# ------------------------------------------------------------------ who may


def is_admin(principal: Principal, privilege: Privilege = Privilege.WRITE) -> bool:
    """Whether the user manages the Teams integration (organization-level privilege)."""
    return principal.max_level(RECORD_TYPE, privilege) >= Level.ORGANIZATION


def require_admin(principal: Principal, privilege: Privilege = Privilege.WRITE) -> None:
    """Raise Forbidden unless the user manages the Teams integration."""
    if not is_admin(principal, privilege):
        raise Forbidden(
            "managing the Microsoft Teams integration takes an organization-wide marketing "
            "administrator role (such as Marketing Administrator)"
        )


def can_manage_organizer(principal: Principal, organizer: TeamsOrganizer) -> bool:
    """Admins manage every organizer; an organizer manages themself (T5)."""
    if principal.disabled:
        return False
    return is_admin(principal) or organizer.user_id == principal.user_id


# ------------------------------------------------------------------ secrets


@dataclass(frozen=True)
class PermissionCheck:
    """What the token grants against what the sync needs."""

    granted: list[str]
    missing_required: list[str]
    missing_optional: list[str]

    @property
    def status(self) -> str:
        """``connected``, ``limited`` (no recordings/transcripts) or ``missing_permissions``."""
        if self.missing_required:
            return "missing_permissions"
        return "limited" if self.missing_optional else "connected"

    def describe(self, client_id: str) -> str:
        """One paragraph an admin can act on."""
        if not (self.missing_required or self.missing_optional):
            return "All permissions the sync needs are granted."
        missing = self.missing_required + self.missing_optional
        what = (
            "The sync cannot run without"
            if self.missing_required
            else "Limited install: recordings and transcripts cannot be synced without"
        )
        return (
            f"{what} the Microsoft Graph application permission(s) {', '.join(missing)}. "
            f"Grant them in the Microsoft Entra admin center: App registrations › {client_id} "
            "› API permissions › Add a permission › Microsoft Graph › Application permissions, "
            "then 'Grant admin consent'."
        )


def check_permissions(granted: list[str]) -> PermissionCheck:
    """Compare a token's roles with the permissions the sync needs."""
    return PermissionCheck(
        granted=granted,
        missing_required=[p for p in fetch.REQUIRED_PERMISSIONS if p not in granted],
        missing_optional=[p for p in fetch.RECORDING_PERMISSIONS if p not in granted],
    )


def _probe(make_client: ClientFactory, connection: TeamsConnection) -> PermissionCheck:
    """Acquire a token, read its permissions and make one Graph call with it."""
    try:
        client = make_client(connection)
    except SecretUnavailable as exc:
        raise ValidationFailed(str(exc), field="client_secret") from None
    except (SyncError, httpx.InvalidURL) as exc:
        raise ValidationFailed(
            f"cannot use this authority or Graph URL: {exc}", field="authority"
        ) from None
    with client:
        try:
            token = client.access_token()
        except TokenError as exc:
            raise ValidationFailed(str(exc), field="client_secret") from None
        except SyncError as exc:
            raise ValidationFailed(str(exc), field="authority") from None
        roles = fetch.token_permissions(token)
        check = check_permissions(roles if roles is not None else [])
        if "User.Read.All" in check.granted or roles is None:
            try:
                client.get_json("/users", {"$top": "1"})
            except SyncError as exc:
                raise ValidationFailed(
                    f"the token was issued but Graph refused a test call: {exc}", field="graph_url"
                ) from None
    return check


def _user(db: Session, user_id: int, field: str) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise ValidationFailed(f"no user with id {user_id}", field=field)
    return user


def connect(
    *,
    db: Session,
    settings: Settings,
    tenant_id: str,
    client_id: str,
    client_secret: SecretStr | None,
    authority: str | None = None,
    graph_url: str | None = None,
    default_owner_id: int | None = None,
    by_user_id: int | None = None,
    make_client: ClientFactory | None = None,
) -> tuple[TeamsConnection, PermissionCheck]:
    """Check the credentials and permissions, then save the connection (secret encrypted).

    Raises:
        ValidationFailed: The token was refused (field ``client_secret``), the authority or
            Graph unreachable, or a permission the sync cannot run without is missing
            (field ``permissions``, naming each one). Nothing is saved then.
    """
    tenant_id, client_id = tenant_id.strip(), client_id.strip()
    if not (_GUID.match(tenant_id) or _DOMAIN.match(tenant_id.lower())):
        raise ValidationFailed(
            "the tenant id is the directory's GUID or one of its verified domains "
            "(e.g. contoso.onmicrosoft.com)",
            field="tenant_id",
        )
    if not _GUID.match(client_id):
        raise ValidationFailed(
            "the client id is the app registration's Application (client) ID, a GUID",
            field="client_id",
        )
    if client_secret is not None and not client_secret.get_secret_value():
        raise ValidationFailed("the client secret is empty", field="client_secret")
    if client_secret is None and settings.teams_client_secret is None:
        raise ValidationFailed(
            "give the client secret, or set GATHERLY_TEAMS_CLIENT_SECRET", field="client_secret"
        )
    if default_owner_id is not None:
        _user(db, default_owner_id, "default_owner_id")
    candidate = TeamsConnection(
        id=CONNECTION_ID,
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret_encrypted=encrypt_secret(settings, client_secret) if client_secret else None,
        authority=(authority or authority_url(tenant_id)).rstrip("/"),
        graph_url=(graph_url or GRAPH_BASE_URL).rstrip("/"),
    )
    check = _probe(make_client or client_factory(settings), candidate)
    if check.missing_required:
        raise ValidationFailed(check.describe(client_id), field="permissions")
    connection = db.get(TeamsConnection, CONNECTION_ID)
    old = None if connection is None else _connection_state(connection)
    if connection is None:
        connection = TeamsConnection(
            id=CONNECTION_ID,
            sync_enabled=True,
            organizer_exclusion_domains=[],
            contact_exclusion_domains=[],
            default_owner_id=default_owner_id or by_user_id,
        )
        db.add(connection)
    elif default_owner_id is not None:
        connection.default_owner_id = default_owner_id
    for key in ("tenant_id", "client_id", "client_secret_encrypted", "authority", "graph_url"):
        setattr(connection, key, getattr(candidate, key))
    connection.granted_permissions = check.granted
    connection.status = check.status
    connection.status_detail = check.describe(client_id)
    connection.checked_at = connection.modified_at = utcnow()
    connection.modified_by_id = by_user_id
    db.flush()
    new = _connection_state(connection)
    before, after = (None, new) if old is None else audit.diff(old, new)
    _log_connection(
        db,
        by_user_id,
        "teams.connect",
        connection,
        before,
        after,
        # Never the secret itself: only whether this change replaced it.
        details={"client_secret_replaced": client_secret is not None},
    )
    return connection, check


def _connection_state(connection: TeamsConnection) -> dict[str, Any]:
    """What the audit trail records of the connection: no secret, only where it comes from."""
    return {
        "tenant_id": connection.tenant_id,
        "client_id": connection.client_id,
        "authority": connection.authority,
        "graph_url": connection.graph_url,
        "client_secret": "stored" if connection.client_secret_encrypted else "environment",
    }


def _settings_state(connection: TeamsConnection) -> dict[str, Any]:
    return {
        "sync_enabled": connection.sync_enabled,
        "organizer_exclusion_domains": list(connection.organizer_exclusion_domains or []),
        "contact_exclusion_domains": list(connection.contact_exclusion_domains or []),
        "default_owner_id": connection.default_owner_id,
        "sync_interval_minutes": connection.sync_interval_minutes,
        "policy_name": connection.policy_name,
        "notifications_enabled": connection.notifications_enabled,
        "public_base_url": connection.public_base_url,
    }


def _log_connection(
    db: Session,
    actor: audit.Actor,
    action: str,
    connection: TeamsConnection,
    before: Any,
    after: Any,
    details: dict[str, Any] | None = None,
) -> None:
    audit.log(
        db,
        actor=actor,
        action=action,
        target_type="teams_connection",
        target_id=connection.id,
        target_label=f"Microsoft Teams tenant {connection.tenant_id}",
        before=before,
        after=after,
        details=details,
    )


def check_connection(
    *, db: Session, settings: Settings, make_client: ClientFactory | None = None
) -> tuple[TeamsConnection, PermissionCheck]:
    """Re-check the saved connection's token and permissions and record the outcome."""
    connection = get_connection(db)
    try:
        check = _probe(make_client or client_factory(settings), connection)
    except (ValidationFailed, FatalSyncError) as exc:
        connection.status, connection.status_detail = "failed", str(exc)
        connection.checked_at = utcnow()
        db.flush()
        raise
    connection.granted_permissions = check.granted
    connection.status = check.status
    connection.status_detail = check.describe(connection.client_id)
    connection.checked_at = utcnow()
    db.flush()
    return connection, check


def disconnect(*, db: Session, by_user_id: int | None = None) -> None:
    """Forget the connection and its secret; synced events and contacts stay (audited)."""
    connection = get_connection(db)
    before = {**_connection_state(connection), **_settings_state(connection)}
    _log_connection(db, by_user_id, "teams.disconnect", connection, before, None)
    db.delete(connection)
    db.flush()


# ------------------------------------------------------------------ global settings (T3)


def normalize_domain(value: str, *, field: str) -> str:
    """An email domain, lower-cased, with a leading ``@`` or ``*.`` dropped."""
    text = value.strip().lower().removeprefix("@").removeprefix("*.")
    if not _DOMAIN.match(text):
        raise ValidationFailed(f"{value!r} is not an email domain like contoso.com", field=field)
    return text


def _domains(values: list[str], field: str) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        domain = normalize_domain(value, field=f"{field}[{i}]")
        if domain not in out:
            out.append(domain)
    return sorted(out)


@dataclass(frozen=True)
class Landing:
    """Where synced events land: the default owner (for organizers with no Gatherly user of
    the same email) and that owner's business unit; None when no default owner is set."""

    default_owner: str | None
    business_unit: str | None


def where_events_land(*, db: Session, connection: TeamsConnection) -> Landing:
    """The default owner's username and business unit, for the settings page."""
    owner = db.get(User, connection.default_owner_id) if connection.default_owner_id else None
    if owner is None:
        return Landing(None, None)
    bu = db.get(BusinessUnit, owner.business_unit_id)
    return Landing(owner.username, bu.name if bu else None)


def update_settings(
    *,
    db: Session,
    sync_enabled: bool = _UNSET,
    organizer_exclusion_domains: list[str] = _UNSET,
    contact_exclusion_domains: list[str] = _UNSET,
    default_owner_id: int | None = _UNSET,
    sync_interval_minutes: int = _UNSET,
    policy_name: str = _UNSET,
    notifications_enabled: bool = _UNSET,
    public_base_url: str | None = _UNSET,
    by_user_id: int | None = None,
) -> TeamsConnection:
    """Change global settings; everything is validated before anything changes."""
    connection = get_connection(db)
    changes: dict[str, Any] = {}
    if sync_enabled is not _UNSET:
        changes["sync_enabled"] = bool(sync_enabled)
    if organizer_exclusion_domains is not _UNSET:
        changes["organizer_exclusion_domains"] = _domains(
            organizer_exclusion_domains, "organizer_exclusion_domains"
        )
    if contact_exclusion_domains is not _UNSET:
        changes["contact_exclusion_domains"] = _domains(
            contact_exclusion_domains, "contact_exclusion_domains"
        )
    if default_owner_id is not _UNSET:
        if default_owner_id is not None:
            _user(db, default_owner_id, "default_owner_id")
        changes["default_owner_id"] = default_owner_id
    if sync_interval_minutes is not _UNSET:
        if not 5 <= sync_interval_minutes <= 1440:
            raise ValidationFailed(
                "the sync interval must be between 5 and 1440 minutes",
                field="sync_interval_minutes",
            )
        changes["sync_interval_minutes"] = sync_interval_minutes
    if policy_name is not _UNSET:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", policy_name):
            raise ValidationFailed(
                "the policy name takes letters, digits, '-', '_' and '.' (at most 64)",
                field="policy_name",
            )
        changes["policy_name"] = policy_name
    if public_base_url is not _UNSET:
        changes["public_base_url"] = _public_url(public_base_url)
    if notifications_enabled is not _UNSET:
        changes["notifications_enabled"] = bool(notifications_enabled)
    if changes.get("notifications_enabled", connection.notifications_enabled) and not changes.get(
        "public_base_url", connection.public_base_url
    ):
        raise ValidationFailed(
            "change notifications need the public base URL Microsoft Graph can reach this "
            "installation at (https://…)",
            field="public_base_url",
        )
    old = _settings_state(connection)
    for key, value in changes.items():
        setattr(connection, key, value)
    if changes:
        connection.modified_at = utcnow()
        connection.modified_by_id = by_user_id
    db.flush()
    before, after = audit.diff(old, _settings_state(connection))
    if after:
        _log_connection(db, by_user_id, "teams.settings", connection, before, after)
    return connection


def _public_url(value: str | None) -> str | None:
    """The installation's base URL as Microsoft Graph calls it: absolute http(s), no query
    (Graph itself calls only https; http is for a local emulator)."""
    if value is None or not value.strip():
        return None
    text = value.strip().rstrip("/")
    try:
        parsed: httpx.URL | None = httpx.URL(text)
    except httpx.InvalidURL:
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or parsed.query
        or parsed.fragment
        or any(c.isspace() for c in text)
        or len(text) > 400
    ):
        raise ValidationFailed(
            f"{value!r} is not a base URL like https://gatherly.example.com (no query, at "
            "most 400 characters)",
            field="public_base_url",
        )
    return text


def list_subscriptions(*, db: Session, principal: Principal) -> list[SubscriptionView]:
    """The change-notification subscriptions and their health, for admins (with the name of
    the webinar each watches)."""
    require_admin(principal, Privilege.READ)
    rows = db.execute(
        select(TeamsSubscription, TeamsWebinar.display_name)
        .outerjoin(TeamsWebinar, TeamsWebinar.id == TeamsSubscription.webinar_id)
        .order_by(TeamsSubscription.webinar_id.is_not(None), TeamsSubscription.id)
    )
    return [SubscriptionView(row, name) for row, name in rows]


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription with the name of the webinar or town hall it watches."""

    subscription: TeamsSubscription
    webinar_name: str | None


# ------------------------------------------------------------------ organizers (T2, T4)


def remedy(connection: TeamsConnection, organizer: TeamsOrganizer) -> list[str]:
    """What an admin runs or does so the organizer syncs (T2), empty when nothing is needed."""
    if organizer.status == ORGANIZER_POLICY:
        policy, app = connection.policy_name, connection.client_id
        return [
            "# In Teams PowerShell (Install-Module MicrosoftTeams; Connect-MicrosoftTeams):",
            "# 1. Create the policy for this app (once):",
            f'New-CsApplicationAccessPolicy -Identity {policy} -AppIds "{app}" '
            '-Description "Gatherly webinar sync"',
            f"# 2. Grant it to {organizer.display_name or organizer.graph_user_id}:",
            f'Grant-CsApplicationAccessPolicy -PolicyName {policy} -Identity "{organizer.graph_user_id}"',
            "#    or to all current users:",
            f"Get-CsOnlineUser | Grant-CsApplicationAccessPolicy -PolicyName {policy}",
            "#    or to everyone without a policy of their own (global):",
            f"Grant-CsApplicationAccessPolicy -PolicyName {policy} -Global",
            "# A user holds one application access policy at a time: if they already have one,",
            "# add this app id to it instead of granting a new policy:",
            f'Set-CsApplicationAccessPolicy -Identity <existing policy> -AppIds @{{Add="{app}"}}',
            "# Changes can take up to 30 minutes to reach Microsoft Graph.",
        ]
    if organizer.status == ORGANIZER_PERMISSION:
        return [organizer.status_detail]
    return []


BLOCKED = (ORGANIZER_POLICY, ORGANIZER_PERMISSION, ORGANIZER_ERROR)


def _relevant() -> Any:
    """Users who matter on the organizer list: they organize or co-organize a webinar or
    town hall, or they are mapped to a Gatherly user. Other directory users are listed only
    when asked for (``everyone``) — a tenant of 50,000 users does not show 50,000 rows."""
    return or_(TeamsOrganizer.organizes, TeamsOrganizer.user_id.is_not(None))


def list_organizers(
    *,
    db: Session,
    principal: Principal,
    user_id: int | None = None,
    everyone: bool = False,
    query: str | None = None,
    limit: int | None = None,
) -> list[TeamsOrganizer]:
    """The organizers: users who organize (or co-organize) webinars or town halls, and users
    mapped to Gatherly users, with their status. Admins see them all; others only the
    organizer mapped to them.

    ``everyone`` lists every directory user instead (an admin looking someone up, with
    ``query`` matching name or email); ``user_id`` keeps only the organizers mapped to that
    Gatherly user (the web page's "My webinars" for an admin who also organizes).
    """
    stmt = select(TeamsOrganizer).order_by(TeamsOrganizer.display_name, TeamsOrganizer.id)
    if not is_admin(principal, Privilege.READ):
        stmt = stmt.where(TeamsOrganizer.user_id == principal.user_id)
    if user_id is not None:
        stmt = stmt.where(TeamsOrganizer.user_id == user_id)
    if not everyone:
        stmt = stmt.where(_relevant())
    if query and query.strip():
        like = f"%{query.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(TeamsOrganizer.display_name).like(like),
                func.lower(TeamsOrganizer.email).like(like),
            )
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.scalars(stmt))


@dataclass(frozen=True)
class DirectorySummary:
    """The tenant's directory as the sync knows it (the Teams integration page)."""

    users: int
    organizers: int
    blocked: int  # organizers (or mapped users) who cannot sync until an admin acts
    others_blocked: int  # other users Graph refused: they may organize nothing
    unchecked: int
    excluded: int


def directory_summary(*, db: Session, principal: Principal) -> DirectorySummary:
    """Counts of directory users by what the sync knows of them (admins only)."""
    require_admin(principal, Privilege.READ)
    live = TeamsOrganizer.removed_at.is_(None)
    relevant = _relevant()
    blocked = TeamsOrganizer.status.in_(BLOCKED)
    row = db.execute(
        select(
            func.count(),
            func.count().filter(relevant),
            func.count().filter(relevant, blocked),
            func.count().filter(~relevant, blocked),
            func.count().filter(TeamsOrganizer.status == ORGANIZER_UNCHECKED),
            func.count().filter(TeamsOrganizer.status == ORGANIZER_EXCLUDED),
        ).where(live)
    ).one()
    return DirectorySummary(*(int(n or 0) for n in row))


def check_organizer(
    *,
    db: Session,
    principal: Principal,
    organizer_id: int,
    settings: Settings,
    make_client: ClientFactory | None = None,
) -> TeamsOrganizer:
    """Ask Graph about this one user now (does the access policy cover them?) and record the
    answer: what an admin does for a user they are told about, or an organizer for
    themselves. One Graph request; it counts against the day's probes."""
    organizer = get_organizer(db=db, principal=principal, organizer_id=organizer_id)
    if not can_manage_organizer(principal, organizer):
        raise Forbidden("only an administrator or the organizer may check this user")
    if organizer.status == ORGANIZER_EXCLUDED:
        raise Conflict(
            "this user's domain is excluded from sync; remove it from the organizer "
            "exclusions first",
            field="organizer_id",
        )
    connection = get_connection(db)
    try:
        client = (make_client or client_factory(settings))(connection)
    except SecretUnavailable as exc:
        raise ValidationFailed(str(exc), field="client_secret") from None
    with client:
        status, detail, organizes = sync.probe_user(client, organizer.graph_user_id)
    if organizer.status != status or organizer.status_detail != detail:
        organizer.status, organizer.status_detail = status, detail
        organizer.status_changed_at = utcnow()
    organizer.probed_at = utcnow()
    organizer.organizes = organizer.organizes or organizes
    db.flush()
    return organizer


def get_organizer(*, db: Session, principal: Principal, organizer_id: int) -> TeamsOrganizer:
    """One organizer the user may manage (404 otherwise, so ids do not leak)."""
    organizer = db.get(TeamsOrganizer, organizer_id)
    if organizer is None or not (
        is_admin(principal, Privilege.READ) or organizer.user_id == principal.user_id
    ):
        raise NotFound(f"no Teams organizer with id {organizer_id}")
    return organizer


def update_organizer(
    *,
    db: Session,
    principal: Principal,
    organizer_id: int,
    sync_new_by_default: bool | None = None,
    sync_recordings: bool | None = None,
) -> TeamsOrganizer:
    """Per-user settings (T4): sync new webinars by default; recordings and transcripts."""
    organizer = get_organizer(db=db, principal=principal, organizer_id=organizer_id)
    if not can_manage_organizer(principal, organizer):
        raise Forbidden("only an administrator or the organizer may change these settings")
    if organizer.status == ORGANIZER_EXCLUDED and sync_new_by_default:
        raise Conflict(
            "this organizer's domain is excluded from sync; remove it from the organizer "
            "exclusions first",
            field="sync_new_by_default",
        )
    old = {"sync_new_by_default": organizer.sync_new_by_default}
    old["sync_recordings"] = organizer.sync_recordings
    if sync_new_by_default is not None:
        organizer.sync_new_by_default = sync_new_by_default
    if sync_recordings is not None:
        organizer.sync_recordings = sync_recordings
    db.flush()
    before, after = audit.diff(
        old,
        {
            "sync_new_by_default": organizer.sync_new_by_default,
            "sync_recordings": organizer.sync_recordings,
        },
    )
    if after:
        audit.log(
            db,
            actor=principal,
            action="teams.organizer_settings",
            target_type="teams_organizer",
            target_id=organizer.id,
            target_label=organizer.display_name or organizer.email or organizer.graph_user_id,
            before=before,
            after=after,
        )
    return organizer


# ------------------------------------------------------------------ webinars (T4, T5)


def list_webinars(
    *, db: Session, principal: Principal, organizer_id: int | None = None
) -> list[tuple[TeamsWebinar, TeamsOrganizer]]:
    """Webinars and town halls seen in Teams with their organizer, newest first, as the user
    may see them (``TeamsWebinar.kind`` tells them apart)."""
    stmt = (
        select(TeamsWebinar, TeamsOrganizer)
        .join(TeamsOrganizer, TeamsOrganizer.id == TeamsWebinar.organizer_id)
        .order_by(TeamsWebinar.start_at.desc(), TeamsWebinar.id)
    )
    if organizer_id is not None:
        stmt = stmt.where(TeamsWebinar.organizer_id == organizer_id)
    if not is_admin(principal, Privilege.READ):
        stmt = stmt.where(TeamsOrganizer.user_id == principal.user_id)
    return [(w, o) for w, o in db.execute(stmt)]


def get_webinar(*, db: Session, principal: Principal, webinar_id: int) -> TeamsWebinar:
    """One webinar the user may see: by Gatherly id (404 otherwise)."""
    found = db.execute(
        select(TeamsWebinar, TeamsOrganizer)
        .join(TeamsOrganizer, TeamsOrganizer.id == TeamsWebinar.organizer_id)
        .where(TeamsWebinar.id == webinar_id)
    ).first()
    if found is None:
        raise NotFound(f"no Teams webinar with id {webinar_id}")
    webinar, organizer = found
    if not (is_admin(principal, Privilege.READ) or organizer.user_id == principal.user_id):
        raise NotFound(f"no Teams webinar with id {webinar_id}")
    return webinar


def find_organizer(*, db: Session, principal: Principal, ref: str) -> TeamsOrganizer:
    """An organizer by Gatherly id, email or Graph user id (for the CLI's ``organizer``)."""
    organizer_id = parse_id(ref)
    if organizer_id is None:
        organizer_id = db.scalar(
            select(TeamsOrganizer.id).where(
                or_(
                    func.lower(TeamsOrganizer.email) == ref.strip().lower(),
                    TeamsOrganizer.graph_user_id == ref,
                )
            )
        )
    if organizer_id is None:
        raise NotFound(f"no Teams organizer {ref!r}", field="organizer")
    return get_organizer(db=db, principal=principal, organizer_id=organizer_id)


def find_webinar(*, db: Session, principal: Principal, ref: str) -> TeamsWebinar:
    """A webinar by Gatherly id or Graph id (for the CLI's ``--webinar``)."""
    webinar_id = parse_id(ref)
    if webinar_id is not None:
        return get_webinar(db=db, principal=principal, webinar_id=webinar_id)
    webinar_id = db.scalar(select(TeamsWebinar.id).where(TeamsWebinar.graph_id == ref))
    if webinar_id is None:
        raise NotFound(
            f"no Teams webinar or town hall {ref!r}; run a sync to discover them",
            field="webinar",
        )
    return get_webinar(db=db, principal=principal, webinar_id=webinar_id)


def set_webinar_sync(
    *, db: Session, principal: Principal, webinar_id: int, enabled: bool
) -> TeamsWebinar:
    """Tick or untick Sync on a webinar (its future updates then flow in)."""
    webinar = get_webinar(db=db, principal=principal, webinar_id=webinar_id)
    organizer = db.get(TeamsOrganizer, webinar.organizer_id)
    assert organizer is not None
    if not can_manage_organizer(principal, organizer):
        raise Forbidden("only an administrator or the webinar's organizer may change Sync")
    if enabled and organizer.status == ORGANIZER_EXCLUDED:
        raise Conflict(
            "this webinar's organizer is in an excluded domain; it is never synced",
            field="sync_enabled",
        )
    if webinar.sync_enabled != enabled:
        audit.log(
            db,
            actor=principal,
            action="teams.webinar_sync",
            target_type="teams_webinar",
            target_id=webinar.id,
            target_label=webinar.display_name,
            before={"sync_enabled": webinar.sync_enabled},
            after={"sync_enabled": enabled},
        )
    webinar.sync_enabled = enabled
    db.flush()
    return webinar


# ------------------------------------------------------------------ sync runs (T12)


def runs_visible_to(principal: Principal) -> Select[SyncRun]:
    """Sync runs the caller may see: admins all, others those they started."""
    stmt = select(SyncRun)
    if not is_admin(principal, Privilege.READ):
        stmt = stmt.where(SyncRun.triggered_by_id == principal.user_id)
    return stmt


CHUNK = 256 * 1024  # bytes per piece of a streamed recording


@dataclass(frozen=True)
class Content:
    """A recording's bytes as Graph sends them, read as they are iterated (never held in
    memory whole); iterating to the end, or closing, releases the connection."""

    media_type: str
    length: int | None
    chunks: Iterator[bytes]


def recording_content(
    *,
    db: Session,
    principal: Principal,
    settings: Settings,
    event_id: int,
    recording_id: int,
    make_client: ClientFactory | None = None,
) -> Content:
    """Play a recording: its content streamed from Graph, for whoever may read the event."""
    found = event_service.recording(
        db=db, principal=principal, event_id=event_id, recording_id=recording_id
    )
    if not found.content_url:
        raise NotFound("Teams gave no content for this recording", field="recording_id")
    client = (make_client or client_factory(settings))(get_connection(db))
    try:
        response = client.open_content(found.content_url)
    except GraphError as exc:
        client.close()
        if exc.status == 404:
            raise NotFound(
                "Microsoft Teams no longer has this recording's video (deleted or expired "
                f"there): {exc.graph_message}",
                field="recording_id",
            ) from None
        raise
    except BaseException:
        client.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(CHUNK)
        finally:
            response.close()
            client.close()

    length = response.headers.get("content-length")
    return Content(
        media_type=response.headers.get("content-type", "video/mp4"),
        length=int(length) if length and length.isdigit() else None,
        chunks=chunks(),
    )


@dataclass(frozen=True)
class EventSync:
    """The Teams side of a marketing event, for those who may sync it (its organizer and
    Teams administrators): which webinar, whether it is ticked, when it last synced."""

    webinar_id: int
    sync_enabled: bool
    last_synced_at: datetime | None
    last_error: str


def event_sync_state(
    *, db: Session, principal: Principal, event: MarketingEvent
) -> EventSync | None:
    """The event's webinar as *Sync now* needs it; None when the event does not come from
    Teams or the caller may not sync it."""
    found = db.execute(
        select(TeamsWebinar, TeamsOrganizer)
        .join(TeamsOrganizer, TeamsOrganizer.id == TeamsWebinar.organizer_id)
        .where(TeamsWebinar.event_id == event.id)
    ).first()
    if found is None or not can_manage_organizer(principal, found[1]):
        return None
    webinar = found[0]
    return EventSync(webinar.id, webinar.sync_enabled, webinar.last_synced_at, webinar.last_error)


def sync_target(*, db: Session, principal: Principal, webinar_id: int | None) -> str | None:
    """The Graph id of a webinar to *Sync now* (its organizer or an admin may); None for a
    full sync, which only admins may start."""
    if webinar_id is None:
        require_admin(principal)
        return None
    webinar = get_webinar(db=db, principal=principal, webinar_id=webinar_id)
    organizer = get_organizer(db=db, principal=principal, organizer_id=webinar.organizer_id)
    if not can_manage_organizer(principal, organizer):
        raise Forbidden("only an administrator or the webinar's organizer may sync it")
    return webinar.graph_id


class SyncQueue(Protocol):
    """Where runs go to be carried out by a worker (``gatherly.jobs.queue.Jobs``)."""

    def start_sync(
        self, db: Session, *, webinar_graph_id: str | None, by_user_id: int | None
    ) -> SyncRun: ...


def start_sync(
    *, db: Session, principal: Principal, queue: SyncQueue, webinar_id: int | None = None
) -> SyncRun:
    """Start a full sync (admins) or *Sync now* on one webinar (admins and its organizer):
    the run is recorded, committed and queued; the worker carries it out.

    Raises:
        Forbidden: the caller may not sync that.
        NotFound: no such webinar the caller may see, or Teams is not connected.
    """
    graph_id = sync_target(db=db, principal=principal, webinar_id=webinar_id)
    get_connection(db)
    return queue.start_sync(db, webinar_graph_id=graph_id, by_user_id=principal.user_id or None)


def sync_now(
    *,
    db: Session,
    principal: Principal,
    session_factory: sessionmaker[Session],
    settings: Settings,
    webinar_id: int | None = None,
    dry_run: bool = False,
    progress: sync.ProgressCallback | None = None,
    make_client: ClientFactory | None = None,
) -> sync.RunReport:
    """Run a sync in this process, checked like :func:`start_sync` (the CLI's sync; the
    API's dry run, which writes nothing and reports what would change)."""
    graph_id = sync_target(db=db, principal=principal, webinar_id=webinar_id)
    get_connection(db)
    db.commit()  # release the caller's transaction: the sync opens its own
    return sync.run_sync(
        session_factory,
        settings,
        webinar_graph_id=graph_id,
        dry_run=dry_run,
        by_user_id=principal.user_id or None,
        progress=progress,
        make_client=make_client,
    )


def organizers_needing_admin(*, db: Session, principal: Principal) -> list[TeamsOrganizer]:
    """The organizers the caller may see whose webinars cannot sync until an administrator
    acts (no access policy, a missing permission, an error). Users who organize nothing
    (as far as Graph lets the sync see) are not among them."""
    return [o for o in list_organizers(db=db, principal=principal) if o.status in BLOCKED]


def recent_runs(*, db: Session, principal: Principal, limit: int = 10) -> list[SyncRun]:
    """The newest sync runs the caller may see."""
    stmt = runs_visible_to(principal).order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
    return list(db.scalars(stmt.limit(limit)))


def get_run(*, db: Session, principal: Principal, run_id: int) -> SyncRun:
    """One sync run the caller may see (404 otherwise)."""
    run = db.scalar(runs_visible_to(principal).where(SyncRun.id == run_id))
    if run is None:
        raise NotFound(f"no sync run with id {run_id}", field="run_id")
    return run
