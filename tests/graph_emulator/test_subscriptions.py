"""Change notifications over real HTTP (graph-notifications-townhalls.md §1, §2): the
subscription's validation handshake, limits, renewal, deletion and expiry; notifications
for each kind of change in Graph's exact shape, batched, retried, with injected faults;
lifecycle events. A real webhook endpoint on loopback receives them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from gatherly.graph_emulator import EmulatorState
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import SSL, Emulator, serve
from tests.graph_emulator.receiver import Receiver, serve_receiver

EVENTS = "solutions/virtualEvents/events"
WEBINAR = f"solutions/virtualEvents/webinars/{fx.LAUNCH}"
REGISTRATIONS = f"{WEBINAR}/registrations"
SESSIONS = f"{WEBINAR}/sessions"
TOWNHALL = f"solutions/virtualEvents/townhalls/{fx.TOWNHALL}"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Receiver]:
    """One webhook endpoint for the module."""
    with serve_receiver() as receiver:
        yield receiver


@pytest.fixture
def hook(endpoint: Receiver, emulator: Emulator) -> Receiver:
    """The webhook endpoint, answering well and with nothing received (after the reset)."""
    endpoint.clear()
    return endpoint


@pytest.fixture
def ctl(emulator: Emulator) -> Iterator[httpx.Client]:
    """A client on the control API."""
    with emulator.control() as client:
        yield client


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _subscribe(
    graph: httpx.Client, hook: Receiver, resource: str, change_type: str = "created", **extra: Any
) -> httpx.Response:
    body = {
        "changeType": change_type,
        "notificationUrl": hook.url(),
        "resource": resource,
        "expirationDateTime": _in(60),
        "clientState": "secret-state",
        **extra,
    }
    return graph.post("/subscriptions", json=body)


def _created(graph: httpx.Client, hook: Receiver, resource: str, change: str, **extra: Any) -> str:
    response = _subscribe(graph, hook, resource, change, **extra)
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["id"]
    return sub_id


def _new_webinar(ctl: httpx.Client, organizer: str = fx.MARTA, suffix: str = "01") -> str:
    webinar_id = f"5e0c1b2a-0000-4000-8000-0000000000{suffix}@{fx.TENANT}"
    body = {
        "id": webinar_id,
        "status": "published",
        "displayName": "Fresh webinar",
        "startDateTime": {"dateTime": "2026-01-10T10:00:00", "timeZone": "UTC"},
        "endDateTime": {"dateTime": "2026-01-10T11:00:00", "timeZone": "UTC"},
        "createdBy": {"user": {"id": organizer, "displayName": "Someone"}},
    }
    assert ctl.post("/webinars", json=body).status_code == 201
    return webinar_id


def _register(ctl: httpx.Client, n: int) -> str:
    body = {"email": f"new{n}@fabrikam.example", "firstName": "New", "lastName": f"P{n}"}
    response = ctl.post(f"/webinars/{fx.LAUNCH}/registrations", json=body)
    assert response.status_code == 201
    reg_id: str = response.json()["id"]
    return reg_id


def _log(ctl: httpx.Client, kind: str = "notification", at_least: int = 0) -> list[dict[str, Any]]:
    """The delivery log; with ``at_least``, once it holds that many entries (the emulator
    writes an attempt down after the receiver has answered it)."""
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in ctl.get("/notifications").json()["value"] if e["kind"] == kind]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert field in error["message"]
    message: str = error["message"]
    return message


# ------------------------------------------------------------------ subscriptions


def test_create_validates_the_endpoint_then_answers_201(
    emulator: Emulator, ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    lifecycle = hook.url("lifecycle")
    expires = _in(90)
    response = _subscribe(
        graph,
        hook,
        REGISTRATIONS,
        "created,updated",
        lifecycleNotificationUrl=lifecycle,
        expirationDateTime=expires,
    )
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["@odata.context"] == f"{emulator.base_url}/v1.0/$metadata#subscriptions/$entity"
    assert sub["resource"] == REGISTRATIONS
    assert sub["applicationId"] == fx.APP
    assert sub["changeType"] == "created,updated"
    assert sub["clientState"] == "secret-state"
    assert sub["notificationUrl"] == hook.url()
    assert sub["lifecycleNotificationUrl"] == lifecycle
    assert sub["expirationDateTime"] == expires
    assert sub["latestSupportedTlsVersion"] == "v1_2"
    assert sub["includeResourceData"] is False
    assert sub["notificationQueryOptions"] is None
    assert sub["creatorId"]
    # both URLs got the handshake, the token decoded from the query string
    assert [path for path, _ in hook.validations] == ["/hooks", "/lifecycle"]
    assert hook.validations[0][1].startswith("Validation: ")
    validations = _log(ctl, "validation")
    assert [v["status"] for v in validations] == [200, 200]
    assert graph.get(f"/subscriptions/{sub['id']}").json()["resource"] == REGISTRATIONS


def test_a_failing_handshake_creates_nothing(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    for answer in ("wrong", "error"):
        hook.validation = answer
        message = _error(_subscribe(graph, hook, EVENTS), 400, "ValidationError")
        assert message.startswith("Subscription validation request failed.")
    hook.validation = "echo"
    unreachable = {"lifecycleNotificationUrl": "http://127.0.0.1:9/nobody-listens"}
    _error(_subscribe(graph, hook, EVENTS, **unreachable), 400, "ValidationError")
    assert graph.get("/subscriptions").json()["value"] == []
    assert ctl.get("/subscriptions").json()["value"] == []
    assert [e["status"] for e in _log(ctl, "validation")] == [200, 500, 200, None]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"resource": "solutions/virtualEvents/webinars"}, "InvalidRequest", "resource"),
        ({"resource": f"{TOWNHALL}/registrations"}, "InvalidRequest", "resource"),
        (
            {"resource": f"{EVENTS}/getEventsFromOrganizers(organizerIds=[])"},
            "InvalidRequest",
            "resource",
        ),
        ({"changeType": "updated"}, "InvalidRequest", "changeType"),
        ({"changeType": "created,deleted"}, "InvalidRequest", "changeType"),
        ({"expirationDateTime": None}, "InvalidRequest", "expirationDateTime"),
        ({"expirationDateTime": "tomorrow"}, "InvalidRequest", "expirationDateTime"),
        ({"expirationDateTime": "2020-01-01T00:00:00Z"}, "InvalidRequest", "expirationDateTime"),
        ({"expirationDateTime": 1441}, "InvalidRequest", "1440 minutes"),  # minutes from now
        ({"clientState": "x" * 129}, "ValidationError", "clientState"),
        ({"notificationUrl": "ftp://example.com/hook"}, "InvalidRequest", "notificationUrl"),
        ({"notificationUrl": "not a url"}, "InvalidRequest", "notificationUrl"),
        ({"lifecycleNotificationUrl": "mailto:a@b.c"}, "InvalidRequest", "lifecycle"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    graph: httpx.Client, hook: Receiver, change: dict[str, Any], code: str, field: str
) -> None:
    body = dict(change)
    if isinstance(body.get("expirationDateTime"), int):  # from now, not from collection time
        body["expirationDateTime"] = _in(body["expirationDateTime"])
    _error(_subscribe(graph, hook, body.pop("resource", EVENTS), **body), 400, code, field)
    assert hook.validations == []  # refused before any call to the endpoint


def test_limits(graph: httpx.Client, hook: Receiver, emulator: Emulator) -> None:
    assert _subscribe(graph, hook, EVENTS, clientState="y" * 128).status_code == 201
    assert _subscribe(graph, hook, EVENTS, expirationDateTime=_in(1439)).status_code == 409
    organizers = f"{EVENTS}/getEventsFromOrganizers(organizerIds=['{fx.MARTA}'])"
    _error(_subscribe(graph, hook, organizers), 409, "Conflict", "tenant-level")
    assert _subscribe(graph, hook, REGISTRATIONS).status_code == 201
    _error(_subscribe(graph, hook, f"/{REGISTRATIONS}", "updated"), 409, "Conflict")
    assert _subscribe(graph, hook, SESSIONS, "created,updated").status_code == 201
    assert _subscribe(graph, hook, WEBINAR, "updated").status_code == 201
    # another application holds its own
    with emulator.client(emulator.token(fx.LIMITED_APP, fx.LIMITED_SECRET)) as other:
        assert _subscribe(other, hook, organizers).status_code == 201
        assert len(other.get("/subscriptions").json()["value"]) == 1
    assert len(graph.get("/subscriptions").json()["value"]) == 4
    missing = f"solutions/virtualEvents/webinars/nope@{fx.TENANT}/registrations"
    _error(_subscribe(graph, hook, missing), 404, "NotFound")
    hidden = f"solutions/virtualEvents/webinars/{fx.HIDDEN}"
    _error(_subscribe(graph, hook, hidden, "updated"), 403, "Forbidden")


def test_list_is_paged(graph: httpx.Client, hook: Receiver) -> None:
    for resource in (EVENTS, REGISTRATIONS, SESSIONS, f"{TOWNHALL}/sessions"):
        _created(graph, hook, resource, "created")
    body = graph.get("/subscriptions", params={"$top": "3"}).json()
    assert len(body["value"]) == 3
    rest = graph.get(body["@odata.nextLink"]).json()
    assert len(rest["value"]) == 1


def test_renew_delete_and_expire(ctl: httpx.Client, graph: httpx.Client, hook: Receiver) -> None:
    sub_id = _created(graph, hook, REGISTRATIONS, "created")
    later = _in(1400)
    renewed = graph.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": later})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expirationDateTime"] == later
    too_far = graph.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": _in(1500)})
    _error(too_far, 400, "InvalidRequest", "expirationDateTime")
    assert graph.delete(f"/subscriptions/{sub_id}").status_code == 204
    assert graph.get(f"/subscriptions/{sub_id}").status_code == 404
    assert graph.delete(f"/subscriptions/{sub_id}").status_code == 404
    # expiry by the emulator clock: gone, and no notifications
    short = _created(graph, hook, REGISTRATIONS, "created", expirationDateTime=_in(10))
    assert ctl.post("/clock", json={"advance_seconds": 11 * 60}).is_success
    _register(ctl, 1)
    assert graph.get(f"/subscriptions/{short}").status_code == 404
    patched = graph.patch(f"/subscriptions/{short}", json={"expirationDateTime": _in(60)})
    assert patched.status_code == 404
    assert graph.get("/subscriptions").json()["value"] == []
    listed = ctl.get("/subscriptions").json()["value"]
    assert [(s["id"], s["expired"]) for s in listed] == [(short, True)]
    time.sleep(0.3)
    assert hook.received == []
    # the resource is free again
    assert (
        _subscribe(graph, hook, REGISTRATIONS, expirationDateTime=_in(60 + 11)).status_code == 201
    )


# ------------------------------------------------------------------ notifications


def _item(
    sub_id: str, change: str, resource: str, odata_id: str, odata_type: str, expires: str
) -> dict[str, Any]:
    return {
        "subscriptionId": sub_id,
        "clientState": "secret-state",
        "changeType": change,
        "tenantId": fx.TENANT,
        "resource": resource,
        "subscriptionExpirationDateTime": expires,
        "resourceData": {
            "@odata.id": odata_id,
            "@odata.type": f"#microsoft.graph.{odata_type}",
            "id": odata_id,
        },
    }


def test_each_kind_of_change_in_graphs_shape(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    ctl.post("/notification-settings", json={"batch_window_seconds": 0.5})  # one POST
    expires = _in(120)
    subs = {
        resource: _created(graph, hook, resource, change, expirationDateTime=expires)
        for resource, change in [
            (EVENTS, "created"),
            (REGISTRATIONS, "created,updated"),
            (SESSIONS, "created,updated"),
            (WEBINAR, "updated"),
            (TOWNHALL, "updated"),
            (f"{TOWNHALL}/sessions", "updated"),
        ]
    }
    webinar_id = _new_webinar(ctl)
    townhall = {
        **{k: v for k, v in fx.build()["townhalls"][1].items() if k != "id"},
        "id": f"6f1d2c3b-0000-4000-8000-000000000001@{fx.TENANT}",
    }
    assert ctl.post("/townhalls", json=townhall).status_code == 201
    reg_id = _register(ctl, 1)
    assert ctl.post(f"/webinars/{fx.LAUNCH}/registrations/{reg_id}/cancel").is_success
    assert ctl.post(f"/webinars/{fx.LAUNCH}/status", json={"status": "canceled"}).is_success
    attendance = {
        "reportId": fx.REPORT,
        "emailAddress": "guest3@fabrikam.example",
        "joinDateTime": "2025-09-18T14:10:00Z",
        "leaveDateTime": "2025-09-18T14:20:00Z",
    }
    assert ctl.post(f"/webinars/{fx.LAUNCH}/sessions/{fx.SESSION}/attendance", json=attendance)
    th_attendance = {**attendance, "reportId": fx.TOWNHALL_REPORT}
    path = f"/townhalls/{fx.TOWNHALL}/sessions/{fx.TOWNHALL_SESSION}/attendance"
    assert ctl.post(path, json=th_attendance).is_success
    assert ctl.post(f"/townhalls/{fx.TOWNHALL}/status", json={"status": "canceled"}).is_success
    got = hook.settle()
    assert len(hook.received) == 1  # all within one batch window: one POST
    regs = f"{REGISTRATIONS}/{reg_id}"
    assert got == [
        _item(
            subs[EVENTS],
            "created",
            EVENTS,
            f"solutions/virtualEvents/webinars/{webinar_id}/",
            "virtualEvent",
            expires,
        ),
        _item(
            subs[EVENTS],
            "created",
            EVENTS,
            f"solutions/virtualEvents/townhalls/{townhall['id']}/",
            "virtualEvent",
            expires,
        ),
        _item(
            subs[REGISTRATIONS], "created", REGISTRATIONS, regs, "virtualEventRegistration", expires
        ),
        _item(
            subs[REGISTRATIONS], "updated", REGISTRATIONS, regs, "virtualEventRegistration", expires
        ),
        _item(subs[WEBINAR], "updated", WEBINAR, WEBINAR, "virtualEventWebinar", expires),
        _item(
            subs[SESSIONS],
            "updated",
            SESSIONS,
            f"{SESSIONS}/{fx.SESSION}",
            "virtualEventSession",
            expires,
        ),
        _item(
            subs[f"{TOWNHALL}/sessions"],
            "updated",
            f"{TOWNHALL}/sessions",
            f"{TOWNHALL}/sessions/{fx.TOWNHALL_SESSION}",
            "virtualEventSession",
            expires,
        ),
        _item(subs[TOWNHALL], "updated", TOWNHALL, TOWNHALL, "virtualEventTownhall", expires),
    ]
    _log(ctl, at_least=1)  # written down once the receiver has answered
    stats = {s["id"]: s["stats"] for s in ctl.get("/subscriptions").json()["value"]}
    assert stats[subs[REGISTRATIONS]] == {
        "queued": 2,
        "dropped": 0,
        "duplicated": 0,
        "delivered": 2,
        "failed": 0,
    }
    assert [(e["status"], e["items"]) for e in _log(ctl)] == [(202, 8)]


def test_only_watched_change_types_and_organizers(
    emulator: Emulator, ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _created(graph, hook, REGISTRATIONS, "created")
    organizers = f"{EVENTS}/getEventsFromOrganizers(organizerIds=['{fx.TOMAS}','{fx.OLAF}'])"
    with emulator.client(emulator.token(fx.LIMITED_APP, fx.LIMITED_SECRET)) as other:
        by_organizer = _created(other, hook, organizers, "created")
    _new_webinar(ctl, fx.MARTA, "01")  # neither listed
    _new_webinar(ctl, fx.OLAF, "02")  # listed (no access policy: still told, reading is 403)
    reg_id = _register(ctl, 1)
    ctl.post(f"/webinars/{fx.LAUNCH}/registrations/{reg_id}/cancel")  # "updated": not watched
    got = hook.settle()
    assert [(i["changeType"], i["resourceData"]["id"]) for i in got] == [
        (
            "created",
            f"solutions/virtualEvents/webinars/5e0c1b2a-0000-4000-8000-000000000002@{fx.TENANT}/",
        ),
        ("created", f"{REGISTRATIONS}/{reg_id}"),
    ]
    assert got[0]["subscriptionId"] == by_organizer


def test_batches_are_split_at_the_maximum(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    ctl.post("/notification-settings", json={"max_batch": 2, "batch_window_seconds": 0.4})
    _created(graph, hook, REGISTRATIONS, "created")
    regs = [_register(ctl, n) for n in range(5)]
    posts = hook.wait(3)
    assert [len(p.body["value"]) for p in posts] == [2, 2, 1]
    assert [i["resourceData"]["id"].rsplit("/", 1)[1] for i in hook.items()] == regs


def test_a_failed_delivery_is_retried(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _created(graph, hook, REGISTRATIONS, "created")
    hook.statuses = [500, 503]
    _register(ctl, 1)
    posts = hook.wait(3)
    assert len(posts) == 3
    assert posts[0].body == posts[1].body == posts[2].body
    assert posts[1].at - posts[0].at >= 0.15  # back-off 0.2 s, then 0.4 s
    assert posts[2].at - posts[1].at >= 0.35
    log = _log(ctl, at_least=3)
    assert [(e["attempt"], e["status"]) for e in log] == [(1, 500), (2, 503), (3, 202)]


def test_a_delivery_without_answer_times_out_and_is_retried(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    ctl.post("/notification-settings", json={"attempt_timeout_seconds": 0.2})
    _created(graph, hook, REGISTRATIONS, "created")
    hook.delays = [0.6]
    _register(ctl, 1)
    posts = hook.wait(2)
    assert len(posts) == 2
    log = _log(ctl, at_least=2)
    assert log[0]["status"] is None
    assert "Timeout" in log[0]["error"]
    assert log[1]["status"] == 202


def test_delivery_gives_up_after_the_retry_time(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    settings = {"retry_base_seconds": 0.05, "retry_cap_seconds": 0.1, "retry_max_seconds": 0.3}
    ctl.post("/notification-settings", json=settings)
    sub_id = _created(graph, hook, REGISTRATIONS, "created")
    hook.statuses = [500] * 50
    _register(ctl, 1)
    deadline = time.monotonic() + 5
    while not any(e["gave_up"] for e in _log(ctl)) and time.monotonic() < deadline:
        time.sleep(0.02)
    log = _log(ctl)
    assert log[-1]["gave_up"] is True
    assert all(e["status"] == 500 for e in log)
    assert 3 <= len(log) <= 8
    stats = next(s["stats"] for s in ctl.get("/subscriptions").json()["value"] if s["id"] == sub_id)
    assert (stats["delivered"], stats["failed"]) == (0, 1)


# ------------------------------------------------------------------ faults


def _faults(ctl: httpx.Client, **faults: Any) -> None:
    response = ctl.post("/notification-faults", json=faults)
    assert response.status_code == 200, response.text


def test_duplicates_arrive_in_a_later_post(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _faults(ctl, duplicate=1.0)
    _created(graph, hook, REGISTRATIONS, "created")
    regs = [_register(ctl, n) for n in range(2)]
    posts = hook.wait(2)
    assert len(posts) == 2
    assert posts[0].body == posts[1].body
    assert [i["resourceData"]["id"].rsplit("/", 1)[1] for i in posts[0].body["value"]] == regs


def test_drop_loses_notifications_silently(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _faults(ctl, drop=1.0)
    sub_id = _created(graph, hook, REGISTRATIONS, "created")
    _register(ctl, 1)
    time.sleep(0.3)
    assert hook.received == []
    [listed] = ctl.get("/subscriptions").json()["value"]
    assert listed["id"] == sub_id
    assert (listed["stats"]["dropped"], listed["stats"]["delivered"]) == (1, 0)


def _seeded_run(ctl: httpx.Client, graph: httpx.Client, hook: Receiver, **faults: Any) -> list[int]:
    _faults(ctl, **faults)
    ctl.post("/notification-settings", json={"batch_window_seconds": 0.3})  # one batch
    _created(graph, hook, REGISTRATIONS, "created")
    regs = [_register(ctl, n) for n in range(8)]
    hook.settle(quiet=0.15)
    return [regs.index(i["resourceData"]["id"].rsplit("/", 1)[1]) for i in hook.items()]


def test_reorder_and_probabilities_are_reproducible(
    emulator: Emulator, ctl: httpx.Client, hook: Receiver
) -> None:
    def run(**faults: Any) -> list[int]:
        ctl.post("/reset")
        hook.clear()
        with emulator.client() as graph:
            return _seeded_run(ctl, graph, hook, **faults)

    assert run(reorder="reverse") == list(range(7, -1, -1))
    shuffled = run(reorder="shuffle", seed=3)
    assert sorted(shuffled) == list(range(8))
    assert shuffled != list(range(8))
    assert run(reorder="shuffle", seed=3) == shuffled
    halves = run(drop=0.5, duplicate=0.5, seed=11)
    assert run(drop=0.5, duplicate=0.5, seed=11) == halves
    assert 0 < len(set(halves)) < 8
    assert len(halves) > len(set(halves))  # some arrived twice


def test_slow_first_attempt_delays_the_delivery(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _faults(ctl, slow_first_attempt_seconds=0.6)
    _created(graph, hook, REGISTRATIONS, "created")
    started = time.monotonic()
    _register(ctl, 1)
    assert time.monotonic() - started < 0.5  # the control call does not wait
    posts = hook.wait(1)
    assert posts[0].at - started >= 0.7  # window 0.1 s + 0.6 s


def test_bad_fault_settings_are_422(ctl: httpx.Client) -> None:
    assert ctl.post("/notification-faults", json={"drop": 2}).status_code == 422
    assert ctl.post("/notification-faults", json={"reorder": "sideways"}).status_code == 422
    assert ctl.post("/notification-settings", json={"nope": 1}).status_code == 422
    assert ctl.post("/notification-settings", json={"max_batch": -1}).status_code == 422


# ------------------------------------------------------------------ lifecycle, reset, shutdown


def test_lifecycle_events(ctl: httpx.Client, graph: httpx.Client, hook: Receiver) -> None:
    lifecycle = hook.url("lifecycle")
    with_url = _created(graph, hook, REGISTRATIONS, "created", lifecycleNotificationUrl=lifecycle)
    without = _created(graph, hook, SESSIONS, "updated", clientState=None)
    for event in ("reauthorizationRequired", "missed"):
        response = ctl.post(f"/subscriptions/{with_url}/lifecycle", json={"event": event})
        assert response.status_code == 202
    items = hook.wait_items(2, path="lifecycle")
    sub = graph.get(f"/subscriptions/{with_url}").json()
    assert items == [
        {
            "subscriptionId": with_url,
            "subscriptionExpirationDateTime": sub["expirationDateTime"],
            "tenantId": fx.TENANT,
            "clientState": "secret-state",
            "lifecycleEvent": event,
        }
        for event in ("reauthorizationRequired", "missed")
    ]
    removed = ctl.post(f"/subscriptions/{without}/lifecycle", json={"event": "subscriptionRemoved"})
    assert removed.status_code == 202
    assert graph.get(f"/subscriptions/{without}").status_code == 404
    posts = hook.wait(1, path="hooks")
    assert posts[0].body["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert posts[0].body["value"][0]["clientState"] is None
    bad = ctl.post(f"/subscriptions/{with_url}/lifecycle", json={"event": "gone"})
    assert bad.status_code == 422
    assert (
        ctl.post(f"/subscriptions/{without}/lifecycle", json={"event": "missed"}).status_code == 404
    )


def test_reset_clears_subscriptions_and_pending_deliveries(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _faults(ctl, slow_first_attempt_seconds=0.3)
    _created(graph, hook, REGISTRATIONS, "created")
    _register(ctl, 1)
    assert ctl.post("/reset").is_success
    time.sleep(0.6)
    assert hook.received == []
    assert ctl.get("/subscriptions").json()["value"] == []
    assert ctl.get("/notifications").json()["value"] == []
    with httpx.Client(base_url=graph.base_url, headers=graph.headers, verify=SSL) as stale:
        assert stale.get("/subscriptions").status_code == 401  # tokens are gone too


def test_notification_log_pages_with_since(
    ctl: httpx.Client, graph: httpx.Client, hook: Receiver
) -> None:
    _created(graph, hook, REGISTRATIONS, "created")
    _register(ctl, 1)
    hook.wait(1)
    time.sleep(0.05)
    log = ctl.get("/notifications").json()
    assert log["total"] == 2  # the handshake and the delivery
    entry = ctl.get("/notifications", params={"since": 1}).json()["value"]
    assert len(entry) == 1
    assert entry[0]["url"] == hook.url()
    assert entry[0]["body"]["value"][0]["changeType"] == "created"
    assert entry[0]["time"].endswith("Z")
    assert ctl.get("/notifications", params={"since": "x"}).status_code == 422


def test_pending_deliveries_end_with_the_emulator(hook: Receiver) -> None:
    state = EmulatorState(fx.build())
    with serve(state) as emulator, emulator.client() as graph:
        with emulator.control() as ctl:
            _faults(ctl, slow_first_attempt_seconds=30)
            _created(graph, hook, REGISTRATIONS, "created")
            _register(ctl, 1)
            time.sleep(0.2)
            assert state.notifier.pending() == 1  # a delivery is waiting
        started = time.monotonic()
    assert time.monotonic() - started < 5  # the server did not wait 30 s for it
    assert state.notifier.pending() == 0
    assert hook.received == []


def test_handshake_query_is_url_encoded(graph: httpx.Client, hook: Receiver) -> None:
    hook_url = hook.url("hooks?tenant=a%20b")
    response = _subscribe(graph, hook, EVENTS, notificationUrl=hook_url)
    assert response.status_code == 201, response.text
    assert response.json()["notificationUrl"] == hook_url
    path, token = hook.validations[0]
    assert path == "/hooks"
    assert " " in token
    assert quote(token, safe="") != token
    assert parse_qs(urlsplit(hook_url).query) == {"tenant": ["a b"]}
