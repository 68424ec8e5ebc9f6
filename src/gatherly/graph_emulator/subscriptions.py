"""Change-notification subscriptions for virtual events (graph-notifications-townhalls.md §1
and §2): ``/v1.0/subscriptions`` with Graph's validation handshake, limits and lifetime,
and the notifications a change made through the control API sends to each live one.

Resources (application permission ``VirtualEvent.Read.All``) and their change types:

- ``solutions/virtualEvents/events``: created (every new event of the tenant);
- ``solutions/virtualEvents/events/getEventsFromOrganizers(organizerIds=['id1','id2'])``:
  created (new events those users organize or co-organize);
- ``solutions/virtualEvents/webinars/{id}``: updated;
- ``solutions/virtualEvents/webinars/{id}/sessions``: created, updated;
- ``solutions/virtualEvents/webinars/{id}/registrations``: created, updated;
- ``solutions/virtualEvents/townhalls/{id}`` and ``…/townhalls/{id}/sessions``: as for webinars.

The town-hall resources are an *inference*: the reference lists the webinar shapes only,
and a town hall is served like a webinar without registrations, so it gets the same
per-event resources minus ``registrations``. So is sending the tenant-level ``created`` for
a new event whose organizer holds no application access policy: the documentation does not
say the policy filters notifications; reading the event then answers 403, as it would.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.graph_emulator import shapes
from gatherly.graph_emulator.errors import READ_EVENTS, GraphError
from gatherly.graph_emulator.graph_api import _Call, answer
from gatherly.graph_emulator.notifier import LIFECYCLE
from gatherly.graph_emulator.state import EmulatorState

MAX_MINUTES = 1440  # virtual-event subscriptions live at most one day (§1)
MAX_CLIENT_STATE = 128
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)
# What each kind of resource accepts as changeType (§1's table).
CHANGE_TYPES = {
    "events": ("created",),
    "organizers": ("created",),
    "event": ("updated",),
    "sessions": ("created", "updated"),
    "registrations": ("created", "updated"),
}
_ORGANIZERS = re.compile(
    r"solutions/virtualEvents/events/getEventsFromOrganizers\(organizerIds=\[(.*)\]\)"
)
_PER_EVENT = re.compile(
    r"solutions/virtualEvents/(webinars|townhalls)/([^/]+)(?:/(sessions|registrations))?"
)
_ODATA_TYPE = {"webinars": "virtualEventWebinar", "townhalls": "virtualEventTownhall"}


@dataclass
class Subscription:
    """One subscription; ``kind`` says what it watches (a key of CHANGE_TYPES)."""

    id: str
    app_id: str
    resource: str
    kind: str
    collection: str | None  # webinars | townhalls, for the per-event kinds
    event_id: str | None
    organizers: frozenset[str]
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires_at: datetime

    @property
    def tenant_level(self) -> bool:
        """Whether it watches the whole tenant (all events, or events from organizers)."""
        return self.kind in ("events", "organizers")

    def scope(self) -> tuple[str | None, ...]:
        """What one application may watch only once: the tenant, or one event's resource."""
        return ("tenant",) if self.tenant_level else (self.kind, self.collection, self.event_id)

    def shape(self) -> dict[str, Any]:
        """The subscription as Graph returns it."""
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": shapes.timestamp(self.expires_at),
            "creatorId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"servicePrincipal:{self.app_id}")),
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def live(state: EmulatorState, subscription_id: str) -> Subscription | None:
    """The subscription if it exists and has not expired (an expired one is gone)."""
    found = state.subscriptions.get(subscription_id)
    return found if found is not None and found.expires_at > state.now() else None


def _live_all(state: EmulatorState) -> list[Subscription]:
    now = state.now()
    return [s for s in state.subscriptions.values() if s.expires_at > now]


# ------------------------------------------------------------------ validation


def _invalid(field: str, message: str, code: str = "InvalidRequest") -> GraphError:
    return GraphError(400, code, f"{field}: {message}")


def _parse_time(value: Any) -> datetime:
    match = isinstance(value, str) and re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", value.strip()
    )
    if not match:
        raise _invalid("expirationDateTime", f"{value!r} is not an ISO 8601 date-time.")
    head, fraction, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(head + (f".{fraction[:6]:0<6}" if fraction else ""))
    except ValueError:
        raise _invalid("expirationDateTime", f"{value!r} is not a valid date-time.") from None
    if zone in (None, "Z"):
        return parsed.replace(tzinfo=UTC)
    return datetime.fromisoformat(f"{parsed.isoformat()}{zone}").astimezone(UTC)


def _expiry(state: EmulatorState, value: Any) -> datetime:
    if value is None:
        raise _invalid("expirationDateTime", "is required.")
    expires = _parse_time(value)
    now = state.now()
    if expires <= now:
        raise _invalid("expirationDateTime", "Subscription expiration must be in the future.")
    if expires > now + timedelta(minutes=MAX_MINUTES):
        raise _invalid(
            "expirationDateTime",
            f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.",
        )
    return expires


def _url(field: str, value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    # Real Graph calls https URLs only; the emulator also calls http (loopback tests).
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(field, f"{value!r} is not an http or https URL.")
    return str(value)


def _resource(call: _Call, value: Any) -> tuple[str, str | None, str | None, frozenset[str]]:
    """(kind, collection, event id, organizer ids) of a subscription resource."""
    if not isinstance(value, str) or not value.strip("/ "):
        raise _invalid("resource", "is required.")
    resource = value.strip().strip("/")
    if resource == "solutions/virtualEvents/events":
        return "events", None, None, frozenset()
    if match := _ORGANIZERS.fullmatch(resource):
        organizers = frozenset(re.findall(r"'([^']+)'", match.group(1)))
        if not organizers:
            raise _invalid("resource", "getEventsFromOrganizers needs at least one organizer id.")
        return "organizers", None, None, organizers
    match = _PER_EVENT.fullmatch(resource)
    if match is None or (match.group(1) == "townhalls" and match.group(3) == "registrations"):
        raise _invalid(
            "resource", f"'{value}' is not a supported resource for change notifications."
        )
    collection, event_id, child = match.group(1), unquote(match.group(2)), match.group(3)
    event = call.state.virtual_event(collection, event_id)
    if event is None:
        label = "Webinar" if collection == "webinars" else "Townhall"
        raise GraphError(404, "NotFound", f"{label} '{event_id}' was not found.")
    # [inference] the organizer's application access policy guards notifications as it
    # guards reads: an ungranted organizer's event cannot be watched.
    call.policy(call.state.organizer_id(event))
    return child or "event", collection, event_id, frozenset()


def _change_types(kind: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("changeType", "is required.")
    wanted = tuple(dict.fromkeys(v.strip() for v in value.split(",")))
    allowed = CHANGE_TYPES[kind]
    for change in wanted:
        if change not in allowed:
            raise _invalid(
                "changeType",
                f"'{change}' is not supported for this resource; use {', '.join(allowed)}.",
            )
    return wanted


def _conflict(state: EmulatorState, new: Subscription) -> None:
    for sub in _live_all(state):
        if sub.app_id == new.app_id and sub.scope() == new.scope():
            what = "tenant-level subscription" if new.tenant_level else "subscription"
            raise GraphError(
                409,
                "Conflict",
                f"The application already has a {what} for this resource "
                f"(subscription '{sub.id}', resource '{sub.resource}').",
            )


async def _body(call: _Call) -> dict[str, Any]:
    try:
        body = await call.request.json()
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


# ------------------------------------------------------------------ /v1.0/subscriptions


async def _create(call: _Call) -> Response:
    call.require(READ_EVENTS)
    assert call.token is not None
    state = call.state
    body = await _body(call)
    kind, collection, event_id, organizers = _resource(call, body.get("resource"))
    change_types = _change_types(kind, body.get("changeType"))
    notification_url = _url("notificationUrl", body.get("notificationUrl"))
    lifecycle = body.get("lifecycleNotificationUrl")
    lifecycle_url = None if lifecycle is None else _url("lifecycleNotificationUrl", lifecycle)
    expires = _expiry(state, body.get("expirationDateTime"))
    client_state = body.get("clientState")
    if client_state is not None and not isinstance(client_state, str):
        raise _invalid("clientState", "must be a string.")
    if client_state is not None and len(client_state) > MAX_CLIENT_STATE:
        raise _invalid(
            "clientState", f"must be at most {MAX_CLIENT_STATE} characters.", "ValidationError"
        )
    if body.get("includeResourceData"):
        raise _invalid("includeResourceData", "is not supported for virtual events.")
    sub = Subscription(
        id=str(uuid.uuid4()),
        app_id=call.token.app_id,
        resource=str(body["resource"]).strip().strip("/"),
        kind=kind,
        collection=collection,
        event_id=event_id,
        organizers=organizers,
        change_types=change_types,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        client_state=client_state,
        expires_at=expires,
    )
    _conflict(state, sub)
    for url in (notification_url, lifecycle_url):
        if url is not None and not await state.notifier.validate(url):
            raise GraphError(400, "ValidationError", VALIDATION_FAILED)
    _conflict(state, sub)  # another request may have created one during the handshake
    state.subscriptions[sub.id] = sub
    state.notifier.stats_of(sub.id)
    return JSONResponse(
        {"@odata.context": call.context("subscriptions/$entity"), **sub.shape()},
        status_code=201,
    )


def _own(call: _Call, subscription_id: str) -> Subscription:
    assert call.token is not None
    sub = live(call.state, subscription_id)
    if sub is None or sub.app_id != call.token.app_id:
        raise GraphError(
            404, "ResourceNotFound", f"The object was not found. Subscription '{subscription_id}'."
        )
    return sub


async def _collection(call: _Call) -> Response:
    if call.request.method == "POST":
        return await _create(call)
    call.require(READ_EVENTS)
    assert call.token is not None
    mine = [s for s in _live_all(call.state) if s.app_id == call.token.app_id]
    items = [s.shape() for s in sorted(mine, key=lambda s: s.id)]
    return call.collection("subscriptions", items)


async def _item(call: _Call) -> Response:
    call.require(READ_EVENTS)
    sub = _own(call, call.request.path_params["subscription_id"])
    method = call.request.method
    if method == "DELETE":
        del call.state.subscriptions[sub.id]
        return Response(status_code=204)
    if method == "PATCH":  # renewal
        body = await _body(call)
        sub.expires_at = _expiry(call.state, body.get("expirationDateTime"))
    return call.entity("subscriptions/$entity", sub.shape())


async def _subscriptions(request: Request) -> Response:
    return await answer(request, _collection)


async def _subscription(request: Request) -> Response:
    return await answer(request, _item)


def routes() -> list[Route]:
    """The ``/v1.0/subscriptions`` routes (before the catch-all ``/v1.0`` route)."""
    return [
        Route("/v1.0/subscriptions", _subscriptions, methods=["GET", "POST"]),
        Route(
            "/v1.0/subscriptions/{subscription_id}",
            _subscription,
            methods=["GET", "PATCH", "DELETE"],
        ),
    ]


# ------------------------------------------------------------------ notifications


def _notify(
    state: EmulatorState,
    matches: Callable[[Subscription], bool],
    change_type: str,
    path: str,
    odata_type: str,
) -> None:
    """Queue a notification (§2's shape) for every live subscription that watches it."""
    for sub in _live_all(state):
        if change_type not in sub.change_types or not matches(sub):
            continue
        item = {
            "subscriptionId": sub.id,
            "clientState": sub.client_state,
            "changeType": change_type,
            "tenantId": state.tenant["id"],
            "resource": sub.resource,
            "subscriptionExpirationDateTime": shapes.timestamp(sub.expires_at),
            "resourceData": {
                "@odata.id": path,
                "@odata.type": f"#microsoft.graph.{odata_type}",
                "id": path,
            },
        }
        state.notifier.enqueue(sub.notification_url, item, subscription_id=sub.id)


def event_created(state: EmulatorState, collection: str, event: dict[str, Any]) -> None:
    """A new webinar or town hall: tenant-level ``created`` (for getEventsFromOrganizers,
    only when one of its organizers or co-organizers is listed)."""
    people = {state.organizer_id(event), *(c.get("id") for c in event.get("coOrganizers", []))}

    def matches(sub: Subscription) -> bool:
        return sub.kind == "events" or (sub.kind == "organizers" and bool(sub.organizers & people))

    # The trailing slash and the base type are as in the documentation's examples (§2).
    path = f"solutions/virtualEvents/{collection}/{event['id']}/"
    _notify(state, matches, "created", path, "virtualEvent")


def event_updated(state: EmulatorState, collection: str, event_id: str) -> None:
    """A webinar's or town hall's own properties changed: ``updated`` on the event."""
    _notify(
        state,
        lambda s: s.kind == "event" and (s.collection, s.event_id) == (collection, event_id),
        "updated",
        f"solutions/virtualEvents/{collection}/{event_id}",
        _ODATA_TYPE[collection],
    )


def registration_changed(
    state: EmulatorState, webinar_id: str, registration_id: str, change_type: str
) -> None:
    """A registration was added (``created``) or cancelled (``updated``)."""
    _notify(
        state,
        lambda s: s.kind == "registrations" and s.event_id == webinar_id,
        change_type,
        f"solutions/virtualEvents/webinars/{webinar_id}/registrations/{registration_id}",
        "virtualEventRegistration",
    )


def session_updated(state: EmulatorState, collection: str, event_id: str, session_id: str) -> None:
    """A session changed (its attendance report is there): ``updated`` on the session."""
    _notify(
        state,
        lambda s: s.kind == "sessions" and (s.collection, s.event_id) == (collection, event_id),
        "updated",
        f"solutions/virtualEvents/{collection}/{event_id}/sessions/{session_id}",
        "virtualEventSession",
    )


def lifecycle(state: EmulatorState, sub: Subscription, event: str) -> None:
    """Send a lifecycle notification; ``subscriptionRemoved`` also deletes the subscription."""
    item = {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": shapes.timestamp(sub.expires_at),
        "tenantId": state.tenant["id"],
        "clientState": sub.client_state,
        "lifecycleEvent": event,
    }
    url = sub.lifecycle_url or sub.notification_url
    state.notifier.enqueue(url, item, subscription_id=sub.id, channel=LIFECYCLE)
    if event == "subscriptionRemoved":
        del state.subscriptions[sub.id]


def summary(state: EmulatorState) -> list[dict[str, Any]]:
    """Every subscription (expired ones marked) with its delivery statistics."""
    now = state.now()
    return [
        {
            **sub.shape(),
            "expired": sub.expires_at <= now,
            "stats": dict(state.notifier.stats_of(sub.id)),
        }
        for sub in state.subscriptions.values()
    ]
