"""Near-real-time sync from Graph's change notifications (issue 19, part 2), end to end over
loopback: the emulator creates subscriptions against Gatherly's public webhook (the
handshake), posts notifications when its tenant changes, and Gatherly turns each into a
targeted sync — with repeats, reordering, drops, lifecycle events and forgeries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import delete, func, select

from gatherly.app import create_app
from gatherly.core.db import utcnow
from gatherly.core.exceptions import ValidationFailed
from gatherly.event.models import EventRegistration, MarketingEvent
from gatherly.teams import jobs as teams_jobs
from gatherly.teams import notifications
from gatherly.teams import service as teams
from gatherly.teams.models import (
    SyncRun,
    TeamsNotified,
    TeamsSubscription,
    TeamsWebinar,
)
from tests.loopback import serve_asgi
from tests.teams.conftest import Connected, Tenant
from tests.workers import worker_process

AUTUMN = "Autumn Product Launch"


@dataclass
class Live:
    """Gatherly's app served over loopback (the webhook Graph calls), notifications on."""

    connected: Connected
    tenant: Tenant
    base_url: str

    @property
    def settings(self) -> Any:
        return self.connected.settings

    def manage(self, **options: Any) -> notifications.ManageReport:
        return notifications.manage(self.connected.session_factory, self.settings, **options)

    def drain(self) -> notifications.NotifiedReport:
        return notifications.sync_notified(self.connected.session_factory, self.settings)

    def deliveries(self, since: int = 0) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.tenant.base_url}/_emulator/notifications", params={"since": since}, timeout=10
        )
        items: list[dict[str, Any]] = answer.json()["value"]
        return items

    def settled(self) -> None:
        """Wait until the emulator has nothing left to deliver."""
        deadline = time.monotonic() + 10
        while self.tenant.state.notifier.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.tenant.state.notifier.pending()

    def register(self, name: str, email: str) -> None:
        self.tenant.control(
            f"{self.tenant.webinar_path(name)}/registrations",
            {"email": email, "firstName": "Noor", "lastName": "Rahman"},
        )

    def registered(self, email: str) -> int:
        with self.connected.session_factory() as db:
            return int(
                db.scalar(
                    select(func.count())
                    .select_from(EventRegistration)
                    .where(EventRegistration.email == email)
                )
                or 0
            )


@pytest.fixture
def live(synced: Connected, tenant: Tenant, tmp_path: Path) -> Iterator[Live]:
    # The sample's webinars ended weeks ago: watched however long ago they ended.
    settings = synced.settings.model_copy(
        update={"queue_path": str(tmp_path / "queue.db"), "teams_watch_days_after_end": 100_000}
    )
    synced.settings = settings
    app = create_app(settings)
    with serve_asgi(app) as base_url:
        with synced.session_factory() as db, db.begin():
            teams.update_settings(db=db, notifications_enabled=True, public_base_url=base_url)
        yield Live(synced, tenant, base_url)
    app.state.engine.dispose()


def _wait(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)


def _subscriptions(live: Live) -> dict[str, TeamsSubscription]:
    with live.connected.session_factory() as db:
        rows = db.scalars(select(TeamsSubscription)).all()
        for row in rows:
            db.expunge(row)
    return {row.resource: row for row in rows}


def test_the_manager_subscribes_with_the_handshake_and_a_change_syncs_at_once(
    live: Live,
) -> None:
    report = live.manage()
    assert report.failed == 0, report.errors
    held = _subscriptions(live)
    autumn = live.tenant.webinar(AUTUMN)["id"]
    base = f"solutions/virtualEvents/webinars/{quote(autumn, safe='@')}"
    assert {
        notifications.TENANT_RESOURCE,
        base,
        f"{base}/sessions",
        f"{base}/registrations",
    } <= set(held)
    assert {row.status for row in held.values()} == {"active"}
    # Graph called the webhook to validate each subscription before creating it.
    validations = [d for d in live.deliveries() if d["kind"] == "validation"]
    assert len(validations) >= len(held)
    assert all(d["status"] == 200 for d in validations)
    graph_side = httpx.get(f"{live.tenant.base_url}/_emulator/subscriptions", timeout=10).json()
    assert len(graph_side["value"]) == len(held)

    # A registration in Teams reaches Gatherly through the worker, no scheduled run.
    with worker_process(live.settings) as proc:
        started = time.monotonic()
        live.register(AUTUMN, "noor.rahman@fabrikam.example")
        _wait(lambda: live.registered("noor.rahman@fabrikam.example") == 1)
        seconds = time.monotonic() - started
        assert proc.poll() is None
    assert seconds < 10
    with live.connected.session_factory() as db:
        kinds = db.scalars(select(SyncRun.kind).order_by(SyncRun.id)).all()
        assert kinds[-1] == "notified"
        assert "scheduled" not in kinds
        assert db.scalar(select(func.count()).select_from(TeamsNotified)) == 0
        row = db.scalars(
            select(TeamsSubscription).where(TeamsSubscription.resource == f"{base}/registrations")
        ).one()
        assert row.last_notification_at is not None


def test_repeats_and_reordering_collapse_into_one_sync_and_change_nothing_more(
    live: Live,
) -> None:
    live.manage()
    live.tenant.control("notification-faults", {"duplicate": 1.0, "reorder": "reverse", "seed": 3})
    live.register(AUTUMN, "first@fabrikam.example")
    live.register(AUTUMN, "second@fabrikam.example")
    live.settled()
    delivered = [d for d in live.deliveries() if d["kind"] == "notification"]
    assert sum(d["items"] for d in delivered) >= 4  # each one twice
    with live.connected.session_factory() as db:
        waiting = db.scalars(select(TeamsNotified.graph_id)).all()
    assert waiting == [live.tenant.webinar(AUTUMN)["id"]]
    drained = live.drain()
    assert len(drained.runs) == 1
    assert drained.runs[0].changes["registrations_created"] == 2
    assert live.registered("first@fabrikam.example") == 1
    assert live.registered("second@fabrikam.example") == 1
    assert live.drain().runs == []  # nothing waits any more


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_a_dropped_notification_is_repaired_by_the_catch_up(live: Live) -> None:
    live.manage()
    live.tenant.control("notification-faults", {"drop": 1.0, "seed": 1})
    live.register(AUTUMN, "dropped@fabrikam.example")
    live.settled()
    live.drain()
    assert live.registered("dropped@fabrikam.example") == 0  # nothing came
    # Graph says it missed some: the manager polls that webinar.
    row = _subscriptions(live)
    autumn = quote(live.tenant.webinar(AUTUMN)["id"], safe="@")
    registrations = row[f"solutions/virtualEvents/webinars/{autumn}/registrations"]
    live.tenant.control(f"subscriptions/{registrations.graph_id}/lifecycle", {"event": "missed"})
    live.settled()
    report = live.manage()
    assert registrations.resource in report.caught_up
    live.drain()
    assert live.registered("dropped@fabrikam.example") == 1
    assert _subscriptions(live)[registrations.resource].last_catch_up_at is not None


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_a_forged_client_state_changes_nothing(live: Live) -> None:
    live.manage()
    held = _subscriptions(live)
    target = next(r for r in held.values() if r.resource.endswith("/registrations"))
    forged = {
        "value": [
            {
                "subscriptionId": target.graph_id,
                "clientState": "not-the-secret",
                "changeType": "created",
                "resource": target.resource,
                "resourceData": {"id": f"{target.resource}/x"},
            }
        ]
    }
    answer = httpx.post(f"{live.base_url}/hooks/graph", json=forged, timeout=10)
    assert answer.status_code == 202
    lifecycle = {"value": [{**forged["value"][0], "lifecycleEvent": "subscriptionRemoved"}]}
    answer = httpx.post(f"{live.base_url}/hooks/graph/lifecycle", json=lifecycle, timeout=10)
    assert answer.status_code == 202
    with live.connected.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(TeamsNotified)) == 0
    after = _subscriptions(live)[target.resource]
    assert (after.status, after.last_notification_at) == ("active", None)
    # Not JSON, or not Graph's shape: a 4xx in words, nothing done.
    bad = httpx.post(
        f"{live.base_url}/hooks/graph",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["message"]
    # The handshake echoes the token as text.
    shake = httpx.post(f"{live.base_url}/hooks/graph", params={"validationToken": "a b"})
    assert (shake.status_code, shake.text) == (200, "a b")
    assert shake.headers["content-type"].startswith("text/plain")


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_renewal_removal_and_unticking(live: Live) -> None:
    live.manage()
    held = _subscriptions(live)
    tenant_row = held[notifications.TENANT_RESOURCE]
    # Nineteen hours on: every subscription is renewed before it lapses.
    live.tenant.control("clock", {"advance_seconds": 19 * 3600})
    later = utcnow() + timedelta(hours=19)
    report = live.manage(now=lambda: later)
    assert report.renewed == len(held)
    renewed = _subscriptions(live)[notifications.TENANT_RESOURCE]
    assert renewed.expires_at is not None
    assert tenant_row.expires_at is not None
    assert renewed.expires_at > tenant_row.expires_at
    # Graph removes one: created again, then a full catch-up (it watched the tenant).
    live.tenant.control(
        f"subscriptions/{tenant_row.graph_id}/lifecycle", {"event": "subscriptionRemoved"}
    )
    live.settled()
    assert _subscriptions(live)[notifications.TENANT_RESOURCE].status == "removed"
    report = live.manage(now=lambda: later)
    assert report.created == 1
    assert report.full_catch_up
    again = _subscriptions(live)[notifications.TENANT_RESOURCE]
    assert again.status == "active"
    assert again.graph_id != tenant_row.graph_id
    # Unticking a webinar ends its subscriptions, on Graph too.
    with live.connected.session_factory() as db, db.begin():
        row = db.scalars(select(TeamsWebinar).where(TeamsWebinar.display_name == AUTUMN)).one()
        row.sync_enabled = False
    report = live.manage(now=lambda: later)
    assert report.deleted == 3
    assert not any(AUTUMN in (v.webinar_name or "") for v in _views(live))
    graph_side = httpx.get(f"{live.tenant.base_url}/_emulator/subscriptions", timeout=10).json()
    assert len(graph_side["value"]) == len(_subscriptions(live))


def _views(live: Live) -> list[teams.SubscriptionView]:
    with live.connected.session_factory() as db:
        from gatherly.org import directory

        admin = directory.load_principal(db, live.connected.admin_id)
        return teams.list_subscriptions(db=db, principal=admin)


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_a_new_webinar_is_discovered_from_the_tenant_notification(live: Live) -> None:
    live.manage()
    template = dict(live.tenant.webinar(AUTUMN))
    new = {
        **{k: v for k, v in template.items() if k not in ("registrations", "sessions")},
        "id": f"7d0c9a52-1b4e-4d8a-9f57-2f3c1e9b8a10@{live.tenant.tenant_id}",
        "displayName": "Notified Launch",
        "registrations": [],
        "sessions": [],
    }
    live.tenant.control("webinars", new)
    live.settled()
    drained = live.drain()
    assert [r.kind for r in drained.runs] == ["notified"]
    with live.connected.session_factory() as db:
        row = db.scalars(
            select(TeamsWebinar).where(TeamsWebinar.display_name == "Notified Launch")
        ).one()
        assert not row.sync_enabled  # Marta's default: ticked by hand
        assert (
            db.scalar(
                select(func.count())
                .select_from(MarketingEvent)
                .where(MarketingEvent.name == "Notified Launch")
            )
            == 0
        )


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_polling_slows_while_notifications_flow_and_settings_are_checked(live: Live) -> None:
    with live.connected.session_factory() as db:
        last = db.scalar(select(func.max(SyncRun.started_at)))
        assert last is not None
        in_20 = last + timedelta(minutes=20)
        assert teams_jobs.due(db, now=in_20, settings=live.settings)  # no subscription yet
    live.manage()
    with live.connected.session_factory() as db:
        assert notifications.healthy(db, now=utcnow(), settings=live.settings)
        assert not teams_jobs.due(db, now=in_20, settings=live.settings)
        assert teams_jobs.due(db, now=last + timedelta(minutes=61), settings=live.settings)
    with live.connected.session_factory() as db:
        with pytest.raises(ValidationFailed) as refused:
            teams.update_settings(db=db, public_base_url=None)
        assert refused.value.field == "public_base_url"
        for bad in ("ftp://x.example", "https://x.example/?a=1", "not a url", "https:// x"):
            with pytest.raises(ValidationFailed):
                teams.update_settings(db=db, public_base_url=bad)
        db.rollback()
        teams.update_settings(db=db, notifications_enabled=False)
        db.commit()
    held = len(_subscriptions(live))
    report = live.manage()
    assert report.deleted == held
    assert _subscriptions(live) == {}
    graph_side = httpx.get(f"{live.tenant.base_url}/_emulator/subscriptions", timeout=10).json()
    assert graph_side["value"] == []


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_a_new_public_address_moves_the_subscriptions_and_orphans_are_cleared(
    live: Live,
) -> None:
    live.manage()
    before = _subscriptions(live)
    # The same app under another name for this machine: Graph must post there now.
    moved = live.base_url.replace("127.0.0.1", "localhost")
    with live.connected.session_factory() as db, db.begin():
        teams.update_settings(db=db, public_base_url=moved)
    report = live.manage()
    assert report.created == len(before)
    after = _subscriptions(live)
    assert {r.notification_url for r in after.values()} == {f"{moved}/hooks/graph"}
    assert not {r.graph_id for r in after.values()} & {r.graph_id for r in before.values()}
    graph_side = httpx.get(f"{live.tenant.base_url}/_emulator/subscriptions", timeout=10).json()
    assert len(graph_side["value"]) == len(after)  # the old ones were deleted on Graph
    # A pass killed between Graph's answer and its commit leaves subscriptions Graph holds
    # and Gatherly does not know: the next pass deletes them and makes its own.
    with live.connected.session_factory() as db, db.begin():
        db.execute(delete(TeamsSubscription))
    report = live.manage()
    assert report.failed == 0, report.errors
    assert report.created == len(after)
    graph_side = httpx.get(f"{live.tenant.base_url}/_emulator/subscriptions", timeout=10).json()
    assert len(graph_side["value"]) == len(after)


@pytest.mark.sqlite_only  # the manager's and the webhook's rules; no SQL of their own
def test_the_public_webhook_refuses_what_is_not_a_delivery(live: Live) -> None:
    hook = f"{live.base_url}/hooks/graph"
    huge = httpx.post(
        hook,
        content=b" " * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert huge.status_code == 413
    odd = {"value": [1, "x", None, {"subscriptionId": 5}, {"resourceData": []}]}
    assert httpx.post(hook, json=odd, timeout=10).status_code == 202
    too_many = {"value": [{}] * 1001}
    refused = httpx.post(hook, json=too_many, timeout=10)
    assert refused.status_code == 422
    assert refused.json()["error"]["message"]
    shake = httpx.post(f"{live.base_url}/hooks/graph/lifecycle", params={"validationToken": "t"})
    assert (shake.status_code, shake.text) == (200, "t")
    assert shake.headers["x-content-type-options"] == "nosniff"
    with live.connected.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(TeamsNotified)) == 0


def test_a_failing_targeted_sync_keeps_the_event_for_the_next_drain(live: Live) -> None:
    live.manage()
    live.register(AUTUMN, "kept@fabrikam.example")
    live.settled()
    # Teams refuses every request for a while: the sync fails, the event waits.
    live.tenant.control("faults", {"rate": 1.0, "kinds": ["503"], "retry_after": 0.01})
    failed = live.drain()
    assert [r.status for r in failed.runs] == ["failed"]
    with live.connected.session_factory() as db:
        waiting = db.scalars(select(TeamsNotified)).one()
        assert waiting.attempts == 1
    live.tenant.control("faults", {"rate": 0.0})
    live.drain()
    assert live.registered("kept@fabrikam.example") == 1
    with live.connected.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(TeamsNotified)) == 0
