"""Near-real-time Teams sync from Graph's change notifications, with polling as the safety
net (issue 19; docs/teams.md §10; reference graph-notifications-townhalls.md).

- ``receive`` and ``lifecycle`` take what Graph posts to the public webhook: each item is
  checked against its subscription's ``clientState`` (constant time) and turned into a
  ``TeamsNotified`` row per event named — repeats and reordering collapse there — which a
  worker job (``sync_notified``) turns into targeted syncs. The webhook only writes those
  rows and queues the job, so it answers within Graph's few seconds.
- ``manage`` (the worker, every minute) holds the subscriptions Gatherly wants: one for
  every new event of the tenant, and for each ticked webinar or town hall (until a week
  after it ends) its own properties, its sessions and, for webinars, its registrations.
  It renews them before their one-day expiry, creates again what Graph removed, deletes
  what is no longer wanted, and catches up by polling wherever notifications may have been
  missed (a ``missed`` lifecycle event, a removal, a failure, a gap).

The scheduled sync keeps running whatever happens here (less often while every
subscription is healthy: ``teams.jobs.due``), since a self-hosted install may not be
reachable from Microsoft at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import GatherlyError, SyncError
from gatherly.core.timezones import parse_offset
from gatherly.graph.client import GraphClient
from gatherly.graph.errors import GraphError, GraphNotFound
from gatherly.teams import connection as teams_connection
from gatherly.teams import sync
from gatherly.teams.models import (
    KIND_TOWNHALL,
    KIND_WEBINAR,
    ORGANIZER_OK,
    RUN_FAILED,
    SCOPE_EVENT,
    SCOPE_REGISTRATIONS,
    SCOPE_SESSIONS,
    SCOPE_TENANT,
    SUB_ACTIVE,
    SUB_FAILED,
    SUB_REMOVED,
    SyncRun,
    TeamsConnection,
    TeamsNotified,
    TeamsOrganizer,
    TeamsSubscription,
    TeamsWebinar,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/hooks/graph"
LIFECYCLE_PATH = f"{WEBHOOK_PATH}/lifecycle"
TENANT_RESOURCE = "solutions/virtualEvents/events"
LIFETIME = timedelta(days=1) - timedelta(minutes=10)  # Graph allows one day at most
RENEW_BEFORE = timedelta(hours=6)
RETRY_FAILED_AFTER = timedelta(minutes=10)
# The event a notification's resource names: …/webinars/{id}[/…] or …/townhalls/{id}[/…].
_EVENT = re.compile(r"solutions/virtualEvents/(webinars|townhalls)/([^/?]+)")
_KINDS = {"webinars": KIND_WEBINAR, "townhalls": KIND_TOWNHALL}


def _digest(client_state: str) -> str:
    return hashlib.sha256(client_state.encode()).hexdigest()


# ------------------------------------------------------------------ the webhook


@dataclass
class Receipt:
    """What one delivery held: items taken, refused (wrong ``clientState``), for no
    subscription Gatherly holds, and the events queued for a targeted sync."""

    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    queued: list[str] = field(default_factory=list)
    catch_up: bool = False  # a lifecycle event asked the manager to act now


def _subscriptions_named(db: Session, items: list[Any]) -> dict[str, TeamsSubscription]:
    """The subscriptions a delivery's items name, in one query."""
    ids = {
        str(item["subscriptionId"])[:100]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("subscriptionId"), str)
    }
    if not ids:
        return {}
    rows = db.scalars(select(TeamsSubscription).where(TeamsSubscription.graph_id.in_(ids)))
    return {row.graph_id: row for row in rows if row.graph_id}


def _authentic(
    item: Any, held: dict[str, TeamsSubscription], receipt: Receipt
) -> TeamsSubscription | None:
    """The item's subscription, when its ``clientState`` is the one it was created with."""
    if not isinstance(item, dict):
        receipt.rejected += 1
        return None
    graph_id = item.get("subscriptionId")
    row = held.get(graph_id) if isinstance(graph_id, str) else None
    if row is None:
        receipt.unknown += 1
        return None
    given = item.get("clientState")
    expected = row.client_state_hash
    if not isinstance(given, str) or not hmac.compare_digest(_digest(given), expected):
        receipt.rejected += 1
        return None
    receipt.accepted += 1
    return row


def _event_named(item: dict[str, Any]) -> tuple[str, str] | None:
    data = item.get("resourceData")
    for text in (data.get("id") if isinstance(data, dict) else None, item.get("resource")):
        if isinstance(text, str) and (found := _EVENT.search(unquote(text))):
            return found.group(2).strip("'()"), _KINDS[found.group(1)]
    return None


def _queue(db: Session, graph_id: str, kind: str, now: datetime) -> None:
    """One waiting row per event: a repeat bumps its ``version`` (see TeamsNotified)."""
    table: Table = TeamsNotified.__table__  # type: ignore[assignment]
    dialect = db.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = insert.values(graph_id=graph_id[:300], kind=kind, received_at=now, version=1, attempts=0)
    db.execute(
        stmt.on_conflict_do_update(
            index_elements=["graph_id"],
            set_={"received_at": stmt.excluded.received_at, "version": table.c.version + 1},
        )
    )


def _log_refused(receipt: Receipt) -> None:
    if receipt.rejected or receipt.unknown:  # one line per delivery, not per item
        log.warning(
            "graph delivery: %s items refused (wrong clientState or not an object), "
            "%s for no subscription held",
            receipt.rejected,
            receipt.unknown,
        )


def receive(*, db: Session, items: Iterable[Any], now: datetime | None = None) -> Receipt:
    """Change notifications from Graph: queue a targeted sync of each event they name."""
    now = now or utcnow()
    receipt = Receipt()
    batch = list(items)
    held = _subscriptions_named(db, batch)
    for item in batch:
        row = _authentic(item, held, receipt)
        if row is None:
            continue
        row.last_notification_at = now
        named = _event_named(item)
        if named is not None:
            _queue(db, named[0], named[1], now)
            if named[0] not in receipt.queued:
                receipt.queued.append(named[0])
    _log_refused(receipt)
    db.flush()
    return receipt


def lifecycle(*, db: Session, items: Iterable[Any], now: datetime | None = None) -> Receipt:
    """Lifecycle notifications: renew now (``reauthorizationRequired``), create again and
    catch up (``subscriptionRemoved``), catch up (``missed``)."""
    now = now or utcnow()
    receipt = Receipt()
    batch = list(items)
    held = _subscriptions_named(db, batch)
    for item in batch:
        row = _authentic(item, held, receipt)
        if row is None:
            continue
        event = item.get("lifecycleEvent")
        if event == "reauthorizationRequired":
            row.expires_at = now  # the manager renews what is due
        elif event == "subscriptionRemoved":
            row.status, row.graph_id, row.needs_catch_up = SUB_REMOVED, None, True
            row.last_error = f"Microsoft Graph removed the subscription ({now.isoformat()})"
        elif event == "missed":
            row.needs_catch_up = True
        else:
            continue
        receipt.catch_up = True
    _log_refused(receipt)
    db.flush()
    return receipt


# ------------------------------------------------------------------ the subscriptions


@dataclass(frozen=True)
class Wanted:
    """A subscription Gatherly wants."""

    resource: str
    scope: str
    change_type: str
    webinar_id: int | None = None


def wanted(db: Session, *, now: datetime, settings: Settings) -> list[Wanted]:
    """The tenant's new events, and each ticked webinar or town hall of a granted organizer
    until ``teams_watch_days_after_end`` after it ends: its properties, sessions and
    (webinars) registrations."""
    after_end = timedelta(days=settings.teams_watch_days_after_end)
    found = [Wanted(TENANT_RESOURCE, SCOPE_TENANT, "created")]
    rows = db.execute(
        select(TeamsWebinar.id, TeamsWebinar.graph_id, TeamsWebinar.kind)
        .join(TeamsOrganizer, TeamsOrganizer.id == TeamsWebinar.organizer_id)
        .where(TeamsWebinar.sync_enabled, TeamsOrganizer.status == ORGANIZER_OK)
        .where((TeamsWebinar.end_at.is_(None)) | (TeamsWebinar.end_at > now - after_end))
        .order_by(TeamsWebinar.id)
    )
    for webinar_id, graph_id, kind in rows:
        base = f"solutions/virtualEvents/{'townhalls' if kind == KIND_TOWNHALL else 'webinars'}/"
        base += quote(graph_id, safe="@")
        found.append(Wanted(base, SCOPE_EVENT, "updated", webinar_id))
        found.append(Wanted(f"{base}/sessions", SCOPE_SESSIONS, "created,updated", webinar_id))
        if kind != KIND_TOWNHALL:
            found.append(
                Wanted(f"{base}/registrations", SCOPE_REGISTRATIONS, "created,updated", webinar_id)
            )
    return found


@dataclass
class ManageReport:
    """What one pass of the manager did."""

    created: int = 0
    renewed: int = 0
    deleted: int = 0
    failed: int = 0
    caught_up: list[str] = field(default_factory=list)  # resources polled after a gap
    full_catch_up: bool = False  # the tenant-level one: a scheduled sync was due at once
    errors: list[str] = field(default_factory=list)


def _enabled(connection: TeamsConnection | None) -> bool:
    return bool(
        connection is not None
        and connection.sync_enabled
        and connection.notifications_enabled
        and connection.public_base_url
    )


def manage(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    make_client: teams_connection.ClientFactory | None = None,
    now: Callable[[], datetime] = utcnow,
) -> ManageReport:
    """Bring the subscriptions Graph holds in line with ``wanted`` (see the module)."""
    report = ManageReport()
    with session_factory() as db:
        connection = db.get(TeamsConnection, teams_connection.CONNECTION_ID)
        if connection is not None:
            db.expunge(connection)
        held = list(db.scalars(select(TeamsSubscription)))
        want = wanted(db, now=now(), settings=settings) if _enabled(connection) else []
    if connection is None or (not held and not want):
        return report
    by_resource = {w.resource: w for w in want}
    try:
        client = (make_client or teams_connection.client_factory(settings))(connection)
    except GatherlyError as exc:  # no secret to sign in with: said, tried again next minute
        report.errors.append(str(exc))
        return report
    base = (connection.public_base_url or "").rstrip("/")
    with client:
        for row in held:
            if row.resource not in by_resource:
                _delete(session_factory, client, row, report)
        held_resources = {row.resource: row for row in held}
        for item in want:
            _hold(
                session_factory,
                client,
                item,
                held_resources.get(item.resource),
                base,
                now(),
                report,
            )
    _catch_up(session_factory, now(), report)
    return report


def _delete(
    factory: sessionmaker[Session],
    client: GraphClient,
    row: TeamsSubscription,
    report: ManageReport,
) -> None:
    if row.graph_id:
        try:
            client.send_json("DELETE", f"/subscriptions/{quote(row.graph_id)}")
        except GraphNotFound:
            pass  # expired or removed already
        except SyncError as exc:
            report.errors.append(f"{row.resource}: not deleted: {exc}")
            return
    with factory() as db, db.begin():
        db.execute(delete(TeamsSubscription).where(TeamsSubscription.id == row.id))
    report.deleted += 1


def _hold(
    factory: sessionmaker[Session],
    client: GraphClient,
    item: Wanted,
    row: TeamsSubscription | None,
    base: str,
    now: datetime,
    report: ManageReport,
) -> None:
    """Create, renew or leave one subscription; record how it stands. One made for another
    public address (the setting changed) is made again at the new one."""
    url = f"{base}{WEBHOOK_PATH}"
    if row is not None and row.status == SUB_ACTIVE and row.graph_id:
        if row.notification_url != url:
            _forget_on_graph(client, row.graph_id)
        elif row.expires_at is not None and row.expires_at - now > RENEW_BEFORE:
            return
        else:
            try:
                answer = client.send_json(
                    "PATCH",
                    f"/subscriptions/{quote(row.graph_id)}",
                    {"expirationDateTime": _graph_time(now + LIFETIME)},
                )
            except GraphNotFound:
                pass  # gone (lapsed while nobody renewed): made again below, with a catch-up
            except SyncError as exc:
                _record(factory, item, row, report, error=f"not renewed: {exc}")
                return
            else:
                _record(factory, item, row, report, answer=answer, renewed=now)
                return
    elif row is not None and row.status == SUB_FAILED and row.created_at > now - RETRY_FAILED_AFTER:
        return  # Graph refused lately: ask again after a while (polling covers meanwhile)
    client_state = secrets.token_urlsafe(48)
    body = {
        "changeType": item.change_type,
        "notificationUrl": url,
        "lifecycleNotificationUrl": f"{base}{LIFECYCLE_PATH}",
        "resource": item.resource,
        "expirationDateTime": _graph_time(now + LIFETIME),
        "clientState": client_state,
    }
    try:
        try:
            answer = client.send_json("POST", "/subscriptions", body)
        except GraphError as exc:
            # Graph holds one already that Gatherly does not know (a pass killed between
            # Graph's answer and the commit): delete it, then make ours.
            if exc.status != 409 or not _forget_orphan(client, item.resource):
                raise
            answer = client.send_json("POST", "/subscriptions", body)
    except SyncError as exc:
        _record(factory, item, row, report, error=f"not created: {exc}", attempted=now)
        return
    try:
        _record(
            factory,
            item,
            row,
            report,
            answer=answer,
            client_state=client_state,
            created=now,
            url=url,
        )
    except IntegrityError:  # another worker's pass recorded one at once: keep theirs
        _forget_on_graph(client, str(answer.get("id") or ""))


def _forget_on_graph(client: GraphClient, graph_id: str) -> None:
    """Delete a subscription on Graph; one already gone is fine."""
    if not graph_id:
        return
    try:
        client.send_json("DELETE", f"/subscriptions/{quote(graph_id)}")
    except GraphNotFound:
        pass
    except SyncError as exc:
        log.warning("graph subscription %s not deleted: %s", graph_id, exc)


def _forget_orphan(client: GraphClient, resource: str) -> bool:
    """Delete this application's subscriptions to ``resource`` Gatherly holds no row for."""
    found = False
    for held in client.paginate("/subscriptions"):
        same = str(held.get("resource") or "").strip("/") == resource.strip("/")
        if same and held.get("id"):
            _forget_on_graph(client, str(held["id"]))
            found = True
    return found


def _record(
    factory: sessionmaker[Session],
    item: Wanted,
    row: TeamsSubscription | None,
    report: ManageReport,
    *,
    answer: dict[str, Any] | None = None,
    client_state: str | None = None,
    created: datetime | None = None,
    renewed: datetime | None = None,
    attempted: datetime | None = None,
    error: str = "",
    url: str | None = None,
) -> None:
    with factory() as db, db.begin():
        stored = db.get(TeamsSubscription, row.id) if row is not None else None
        if stored is None:
            stored = TeamsSubscription(resource=item.resource, needs_catch_up=False)
            db.add(stored)
        stored.scope, stored.webinar_id = item.scope, item.webinar_id
        if error:
            log.warning("graph subscription %s %s", item.resource, error)
            report.failed += 1
            stored.last_error = error[:2000]
            if attempted is not None:
                stored.status, stored.graph_id, stored.created_at = SUB_FAILED, None, attempted
            return
        assert answer is not None
        if client_state is not None:
            # A new subscription: whatever happened while none was held is polled for.
            stored.needs_catch_up = stored.needs_catch_up or row is not None
            stored.client_state_hash = _digest(client_state)
            stored.graph_id = str(answer.get("id") or "")[:100] or None
            stored.created_at = created or utcnow()
            stored.notification_url = url or ""
            report.created += 1
        if renewed is not None:
            stored.renewed_at = renewed
            report.renewed += 1
        stored.status, stored.last_error = SUB_ACTIVE, ""
        stored.expires_at = parse_offset(answer.get("expirationDateTime")) or stored.expires_at


def _catch_up(factory: sessionmaker[Session], now: datetime, report: ManageReport) -> None:
    """Poll wherever notifications may have been missed: the one webinar, queued now. The
    tenant-level subscription's catch-up is a full sync: it is said in the report and its
    flag stays until the worker has started one (``full_catch_up_started``)."""
    with factory() as db, db.begin():
        rows = list(db.scalars(select(TeamsSubscription).where(TeamsSubscription.needs_catch_up)))
        for row in rows:
            if row.scope == SCOPE_TENANT:
                report.full_catch_up = True
                continue
            if row.webinar_id is not None:
                webinar = db.get(TeamsWebinar, row.webinar_id)
                if webinar is not None:
                    _queue(db, webinar.graph_id, webinar.kind, now)
            row.needs_catch_up, row.last_catch_up_at = False, now
            report.caught_up.append(row.resource)


def full_catch_up_started(factory: sessionmaker[Session], *, now: datetime) -> None:
    """A full sync was started for the tenant-level subscription's catch-up."""
    with factory() as db, db.begin():
        db.execute(
            update(TeamsSubscription)
            .where(TeamsSubscription.scope == SCOPE_TENANT, TeamsSubscription.needs_catch_up)
            .values(needs_catch_up=False, last_catch_up_at=now)
        )


def _graph_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# ------------------------------------------------------------------ targeted syncs


@dataclass
class NotifiedReport:
    """The targeted syncs one drain ran."""

    runs: list[sync.RunReport] = field(default_factory=list)
    more: bool = False  # stopped at its time budget: events still wait


MAX_ATTEMPTS = 5  # a notified event whose sync keeps failing is left to the schedule
DRAIN_SECONDS = 60.0  # one drain's time on the worker; the rest waits for the next


def sync_notified(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    make_client: teams_connection.ClientFactory | None = None,
    budget: float = DRAIN_SECONDS,
) -> NotifiedReport:
    """Sync each event notified, oldest first, each at most once per drain, for at most
    ``budget`` seconds (the worker's other jobs wait meanwhile; the rest is left for the
    next drain, queued again).

    A row goes when a sync has run that read it at its latest version (a notification that
    came during the sync keeps it). A sync that fails keeps it for the next drain, up to
    ``MAX_ATTEMPTS``; then the scheduled sync is left to bring the change. While a full or
    *Sync now* run is going, nothing is drained (two runs would write the same webinar)."""
    report = NotifiedReport()
    started = time.monotonic()
    tried: set[tuple[str, int]] = set()
    while time.monotonic() - started < budget:
        with session_factory() as db:
            if _busy(db):
                return report
            pending = [
                row
                for row in db.execute(
                    select(TeamsNotified.graph_id, TeamsNotified.kind, TeamsNotified.version)
                    .order_by(TeamsNotified.received_at, TeamsNotified.id)
                    .limit(50 + len(tried))
                ).all()
                if (row.graph_id, row.version) not in tried
            ]
        if not pending:
            return report
        for graph_id, kind, version in pending:
            if time.monotonic() - started >= budget:
                report.more = True
                return report
            tried.add((graph_id, version))
            try:
                run = sync.run_sync(
                    session_factory,
                    settings,
                    webinar_graph_id=graph_id,
                    kind=sync.KIND_NOTIFIED,
                    event_kind=kind,
                    make_client=make_client,
                )
            except Exception:  # recorded on the run; the other events still sync
                log.exception("notified sync of %s failed", graph_id)
                failed = True
            else:
                report.runs.append(run)
                failed = run.status == RUN_FAILED
            _settle(session_factory, graph_id, version, failed=failed)
    report.more = True
    return report


def _busy(db: Session) -> bool:
    """A full, scheduled or Sync now run is going (not stale)."""
    return (
        db.scalar(
            select(SyncRun.id).where(sync.alive(utcnow()), SyncRun.kind != sync.KIND_NOTIFIED)
        )
        is not None
    )


def _settle(factory: sessionmaker[Session], graph_id: str, version: int, *, failed: bool) -> None:
    with factory() as db, db.begin():
        row = db.scalar(select(TeamsNotified).where(TeamsNotified.graph_id == graph_id))
        if row is None or row.version != version:
            return  # notified again while it synced: synced again next
        if failed and row.attempts + 1 < MAX_ATTEMPTS:
            row.attempts += 1
            return
        if failed:
            log.warning(
                "notified sync of %s failed %s times; the scheduled sync brings it",
                graph_id,
                MAX_ATTEMPTS,
            )
        db.delete(row)


def healthy(db: Session, *, now: datetime, settings: Settings) -> bool:
    """Whether notifications flow: on, and every wanted subscription active and current
    (then the scheduled sync runs less often)."""
    connection = db.get(TeamsConnection, teams_connection.CONNECTION_ID)
    if not _enabled(connection):
        return False
    held = {row.resource: row for row in db.scalars(select(TeamsSubscription))}
    for item in wanted(db, now=now, settings=settings):
        row = held.get(item.resource)
        if row is None or row.status != SUB_ACTIVE or row.expires_at is None:
            return False
        if row.expires_at <= now:
            return False
    return True
