"""The ``/_emulator`` control API: state, request log, reset, faults, clock, and changes a test
or a demo makes to the tenant (new webinars and town halls, registrations, attendance,
directory users), which send change notifications to matching subscriptions; plus the
subscriptions, lifecycle events, the notification log and the delivery faults."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.graph_emulator import shapes, subscriptions
from gatherly.graph_emulator.fixture import (
    FixtureError,
    check_townhall_refs,
    check_webinar_refs,
    validate_registration,
    validate_townhall,
    validate_user,
    validate_webinar,
)
from gatherly.graph_emulator.notifier import REORDER_KINDS, DeliveryFaults, DeliverySettings
from gatherly.graph_emulator.state import FAULT_KINDS, EmulatorState


def _control_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "invalidRequest", "message": message}}, status_code=status
    )


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise FixtureError("request body is not JSON") from None


def _control(
    handler: Callable[[EmulatorState, Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request.app.state.emulator, request)
        except FixtureError as exc:
            return _control_error(422, exc.message)
        except LookupError as exc:
            return _control_error(404, str(exc.args[0]))

    return endpoint


def _webinar_of(state: EmulatorState, request: Request) -> dict[str, Any]:
    """The webinar (or, on a ``/_emulator/townhalls/…`` route, town hall) the path names."""
    townhall = request.url.path.startswith("/_emulator/townhalls/")
    event_id = request.path_params["webinar_id"]
    found = state.townhall(event_id) if townhall else state.webinar(event_id)
    if found is None:
        raise LookupError(f"no {'town hall' if townhall else 'webinar'} {event_id!r}")
    return found


def _iso(now: datetime) -> str:
    return shapes.timestamp(now)


CONTROL_ROUTES = {
    "GET /_emulator/": "this index",
    "GET /{tenant}/v2.0/.well-known/openid-configuration": "OpenID configuration msal reads"
    " (token_endpoint, authorization_endpoint, issuer)",
    "GET /_emulator/state": "tenant, clock, faults, webinars with registration statuses",
    "GET /_emulator/requests?since=N": "request log: method, path, query, status, time, fault",
    "POST /_emulator/reset": "back to the fixture: no tokens, no faults, empty log, real time",
    "POST /_emulator/faults": '{"rate", "seed", "kinds": ' + json.dumps(list(FAULT_KINDS)) + ","
    ' "retry_after", "slow_seconds"}',
    "POST /_emulator/clock": '{"advance_seconds"}: tokens expire, reports become available',
    "POST /_emulator/webinars": "add a webinar (fixture shape)",
    "POST /_emulator/webinars/{id}/status": '{"status": "draft"|"published"|"canceled"}',
    "POST /_emulator/webinars/{id}/registrations": "add a registration (fixture shape)",
    "POST /_emulator/webinars/{id}/registrations/{rid}/cancel": "cancel a registration",
    "POST /_emulator/webinars/{id}/sessions/{sid}/attendance": '{"reportId", "emailAddress",'
    ' "joinDateTime", "leaveDateTime", "registrationId"?, "role"?, "displayName"?}',
    "POST /_emulator/townhalls": "add a town hall (fixture shape)",
    "POST /_emulator/townhalls/{id}/status": '{"status": "draft"|"published"|"canceled"}',
    "POST /_emulator/townhalls/{id}/sessions/{sid}/attendance": "as for webinars, without"
    ' "registrationId"; "emailAddress": "" adds an anonymous attendee',
    "POST /_emulator/users": '{"userPrincipalName", "id"?, "displayName"?, "mail"?,'
    ' "applicationAccessPolicy"?}: add a directory user (shows in /users/delta)',
    "PATCH /_emulator/users/{id}": '{"displayName"?, "mail"?, "userPrincipalName"?,'
    ' "applicationAccessPolicy"?}: a policy change alone is not a directory change',
    "DELETE /_emulator/users/{id}": "remove a user (in /users/delta as @removed)",
    "POST /_emulator/users/delta/expire": "every delta token issued so far answers 410",
    "GET /_emulator/subscriptions": "every subscription (expired ones marked) with delivery stats",
    "POST /_emulator/subscriptions/{id}/lifecycle": '{"event": '
    + json.dumps(list(subscriptions.LIFECYCLE_EVENTS))
    + "}",
    "GET /_emulator/notifications?since=N": "delivery log: time, url, kind, attempt, status,"
    " error, items, body, gave_up",
    "POST /_emulator/notification-faults": '{"duplicate", "drop" (probabilities), "reorder": '
    + json.dumps([*REORDER_KINDS, None])
    + ', "slow_first_attempt_seconds", "seed"}',
    "POST /_emulator/notification-settings": "change some of "
    + json.dumps([f.name for f in fields(DeliverySettings)]),
}


async def _index(state: EmulatorState, request: Request) -> Response:
    return JSONResponse({"routes": CONTROL_ROUTES})


async def _state(state: EmulatorState, request: Request) -> Response:
    return JSONResponse(state.summary())


async def _requests(state: EmulatorState, request: Request) -> Response:
    since = request.query_params.get("since", "0")
    if not (since.isascii() and since.isdigit()):
        raise FixtureError("since: must be a non-negative integer")
    return JSONResponse({"total": len(state.requests), "value": state.requests[int(since) :]})


async def _reset(state: EmulatorState, request: Request) -> Response:
    state.reset()
    return JSONResponse(state.summary())


async def _faults(state: EmulatorState, request: Request) -> Response:
    body = await _json(request)
    if not isinstance(body, dict):
        raise FixtureError("$: expected an object")
    faults = state.faults
    try:
        faults.rate = float(body.get("rate", 0.0))
        faults.seed = int(body.get("seed", 0))
        faults.kinds = [str(k) for k in body.get("kinds", ["429"])]
        faults.retry_after = float(body.get("retry_after", 1.0))
        faults.slow_seconds = float(body.get("slow_seconds", 0.5))
    except (TypeError, ValueError) as exc:
        raise FixtureError(f"$: {exc}") from None
    for i, kind in enumerate(faults.kinds):
        if kind not in FAULT_KINDS:
            raise FixtureError(f"kinds[{i}]: unknown fault kind {kind!r}")
    if not 0.0 <= faults.rate <= 1.0:
        raise FixtureError("rate: must be between 0 and 1")
    faults.rng.seed(faults.seed)
    return JSONResponse(faults.as_dict())


async def _clock(state: EmulatorState, request: Request) -> Response:
    body = await _json(request)
    seconds = body.get("advance_seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or seconds < 0:
        raise FixtureError("advance_seconds: must be a non-negative number")
    state.clock_offset += timedelta(seconds=seconds)
    return JSONResponse({"now": _iso(state.now())})


async def _add_webinar(state: EmulatorState, request: Request) -> Response:
    body = await _json(request)
    webinar = validate_webinar(body)
    if state.webinar(webinar.id) is not None or state.townhall(webinar.id) is not None:
        raise FixtureError(f"id: duplicate id {webinar.id!r}")
    check_webinar_refs(webinar, tenant_id=state.tenant["id"], users=state.user_ids(), where="")
    state.data["webinars"].append(body)
    subscriptions.event_created(state, "webinars", body)
    return JSONResponse(shapes.webinar(body), status_code=201)


async def _add_townhall(state: EmulatorState, request: Request) -> Response:
    body = await _json(request)
    townhall = validate_townhall(body)
    if state.townhall(townhall.id) is not None or state.webinar(townhall.id) is not None:
        raise FixtureError(f"id: duplicate id {townhall.id!r}")
    check_townhall_refs(townhall, tenant_id=state.tenant["id"], users=state.user_ids(), where="")
    state.data.setdefault("townhalls", []).append(body)
    subscriptions.event_created(state, "townhalls", body)
    return JSONResponse(shapes.townhall(body), status_code=201)


async def _webinar_status(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    body = await _json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("draft", "published", "canceled"):
        raise FixtureError("status: must be draft, published or canceled")
    webinar["status"] = status
    townhall = request.url.path.startswith("/_emulator/townhalls/")
    subscriptions.event_updated(state, "townhalls" if townhall else "webinars", webinar["id"])
    return JSONResponse((shapes.townhall if townhall else shapes.webinar)(webinar))


async def _add_registration(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    body = await _json(request)
    if isinstance(body, dict):
        body = {"id": str(uuid.uuid4()), "registrationDateTime": _iso(state.now()), **body}
        body.setdefault("status", "registered")
    validate_registration(body)
    webinar.setdefault("registrations", []).append(body)
    subscriptions.registration_changed(state, webinar["id"], body["id"], "created")
    return JSONResponse(shapes.registration(body), status_code=201)


async def _cancel_registration(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    reg_id = request.path_params["registration_id"]
    reg = next((r for r in webinar.get("registrations", []) if r["id"] == reg_id), None)
    if reg is None:
        raise LookupError(f"no registration {reg_id!r}")
    reg["status"] = "canceled"
    reg["cancelationDateTime"] = _iso(state.now())
    subscriptions.registration_changed(state, webinar["id"], reg_id, "updated")
    return JSONResponse(shapes.registration(reg))


async def _add_attendance(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    session_id = request.path_params["session_id"]
    session = next((s for s in webinar.get("sessions", []) if s["id"] == session_id), None)
    if session is None:
        raise LookupError(f"no session {session_id!r}")
    body = await _json(request)
    if not isinstance(body, dict):
        raise FixtureError("$: expected an object")
    for key in ("reportId", "emailAddress", "joinDateTime", "leaveDateTime"):
        if not isinstance(body.get(key), str):
            raise FixtureError(f"{key}: missing")
    if request.url.path.startswith("/_emulator/townhalls/") and body.get("registrationId"):
        raise FixtureError("registrationId: a town hall has no registrations")
    for key in ("joinDateTime", "leaveDateTime"):
        try:
            shapes.parse_utc(body[key])
        except ValueError:
            raise FixtureError(f"{key}: not an ISO 8601 date-time") from None
    reports = session.setdefault("attendanceReports", [])
    report = next((r for r in reports if r["id"] == body["reportId"]), None)
    if report is None:
        report = {
            "id": body["reportId"],
            "meetingStartDateTime": body["joinDateTime"],
            "meetingEndDateTime": body["leaveDateTime"],
            "attendanceRecords": [],
        }
        reports.append(report)
    report.pop("totalParticipantCount", None)
    if shapes.parse_utc(body["leaveDateTime"]) > shapes.parse_utc(report["meetingEndDateTime"]):
        report["meetingEndDateTime"] = body["leaveDateTime"]
    records = report["attendanceRecords"]
    email = body["emailAddress"].lower()
    # Without an email (anonymous, dial-in) nothing ties two joins together: a new record.
    rec = (
        next((r for r in records if (r.get("emailAddress") or "").lower() == email), None)
        if email
        else None
    )
    if rec is None:
        rec = {
            "id": str(uuid.uuid4()),
            "emailAddress": body["emailAddress"],
            "role": body.get("role", "Attendee"),
            "registrationId": body.get("registrationId"),
            "identity": {"id": "", "displayName": body.get("displayName"), "tenantId": None},
            "attendanceIntervals": [],
        }
        records.append(rec)
    rec.pop("totalAttendanceInSeconds", None)
    rec["attendanceIntervals"].append(
        {"joinDateTime": body["joinDateTime"], "leaveDateTime": body["leaveDateTime"]}
    )
    collection = "townhalls" if request.url.path.startswith("/_emulator/townhalls/") else "webinars"
    subscriptions.session_updated(state, collection, webinar["id"], session_id)
    return JSONResponse(shapes.report(report, expand_records=True))


async def _object(request: Request) -> dict[str, Any]:
    body = await _json(request)
    if not isinstance(body, dict):
        raise FixtureError("$: expected an object")
    return body


_USER_KEYS = ("displayName", "mail", "userPrincipalName", "applicationAccessPolicy")


async def _add_user(state: EmulatorState, request: Request) -> Response:
    body = await _object(request)
    upn = body.get("userPrincipalName")
    if not isinstance(upn, str) or not upn:
        raise FixtureError("userPrincipalName: missing")
    user = {
        "id": str(uuid.uuid4()),
        "displayName": upn.split("@", 1)[0],
        "mail": None,
        "applicationAccessPolicy": None,
        **body,
    }
    validate_user(user)
    state.add_user(user)
    return JSONResponse(user, status_code=201)


async def _update_user(state: EmulatorState, request: Request) -> Response:
    user_id = request.path_params["user_id"]
    body = await _object(request)
    for key in body:
        if key not in _USER_KEYS:
            raise FixtureError(f"{key}: cannot be changed (only {', '.join(_USER_KEYS)})")
    current = state.user(user_id)
    if current is None or current["id"] != user_id:
        raise LookupError(f"no user {user_id!r}")
    validate_user({**current, **body})
    return JSONResponse(dict(state.update_user(user_id, body)))


async def _remove_user(state: EmulatorState, request: Request) -> Response:
    state.remove_user(request.path_params["user_id"])
    return Response(status_code=204)


async def _expire_delta(state: EmulatorState, request: Request) -> Response:
    state.expire_delta_tokens()
    return JSONResponse({"expired_before": _iso(state.now())})


async def _subscriptions(state: EmulatorState, request: Request) -> Response:
    return JSONResponse({"value": subscriptions.summary(state)})


async def _lifecycle(state: EmulatorState, request: Request) -> Response:
    sub = subscriptions.live(state, request.path_params["subscription_id"])
    if sub is None:
        raise LookupError(f"no live subscription {request.path_params['subscription_id']!r}")
    event = (await _object(request)).get("event")
    if event not in subscriptions.LIFECYCLE_EVENTS:
        raise FixtureError(f"event: must be one of {', '.join(subscriptions.LIFECYCLE_EVENTS)}")
    subscriptions.lifecycle(state, sub, event)
    return JSONResponse({"subscriptionId": sub.id, "lifecycleEvent": event}, status_code=202)


async def _notifications(state: EmulatorState, request: Request) -> Response:
    since = request.query_params.get("since", "0")
    if not (since.isascii() and since.isdigit()):
        raise FixtureError("since: must be a non-negative integer")
    log = state.notifier.log
    return JSONResponse({"total": len(log), "value": log[int(since) :]})


def _number(body: dict[str, Any], key: str, default: float, *, most: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FixtureError(f"{key}: must be a non-negative number")
    if most is not None and value > most:
        raise FixtureError(f"{key}: must be at most {most:g}")
    return float(value)


async def _notification_faults(state: EmulatorState, request: Request) -> Response:
    body = await _object(request)
    reorder = body.get("reorder")
    if reorder not in (*REORDER_KINDS, None):
        raise FixtureError(f"reorder: must be one of {', '.join(REORDER_KINDS)} or null")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise FixtureError("seed: must be an integer")
    faults = DeliveryFaults(
        duplicate=_number(body, "duplicate", 0.0, most=1.0),
        drop=_number(body, "drop", 0.0, most=1.0),
        reorder=reorder,
        slow_first_attempt_seconds=_number(body, "slow_first_attempt_seconds", 0.0),
        seed=seed,
    )
    faults.rng.seed(seed)
    state.notifier.faults = faults
    return JSONResponse(faults.as_dict())


async def _notification_settings(state: EmulatorState, request: Request) -> Response:
    body = await _object(request)
    settings = state.notifier.settings
    names = [f.name for f in fields(settings)]
    for key in body:
        if key not in names:
            raise FixtureError(f"{key}: unknown setting (one of {', '.join(names)})")
    for key in body:
        value = _number(body, key, 0.0)
        setattr(settings, key, max(1, int(value)) if key == "max_batch" else value)
    return JSONResponse({name: getattr(settings, name) for name in names})


def routes() -> list[Route]:
    """The ``/_emulator`` control routes."""
    webinar = "/_emulator/webinars/{webinar_id}"
    townhall = "/_emulator/townhalls/{webinar_id}"
    return [
        Route("/_emulator/", _control(_index), methods=["GET"]),
        Route("/_emulator/state", _control(_state), methods=["GET"]),
        Route("/_emulator/requests", _control(_requests), methods=["GET"]),
        Route("/_emulator/reset", _control(_reset), methods=["POST"]),
        Route("/_emulator/faults", _control(_faults), methods=["POST"]),
        Route("/_emulator/clock", _control(_clock), methods=["POST"]),
        Route("/_emulator/webinars", _control(_add_webinar), methods=["POST"]),
        Route(f"{webinar}/status", _control(_webinar_status), methods=["POST"]),
        Route(f"{webinar}/registrations", _control(_add_registration), methods=["POST"]),
        Route(
            f"{webinar}/registrations/{{registration_id}}/cancel",
            _control(_cancel_registration),
            methods=["POST"],
        ),
        Route(
            f"{webinar}/sessions/{{session_id}}/attendance",
            _control(_add_attendance),
            methods=["POST"],
        ),
        Route("/_emulator/users", _control(_add_user), methods=["POST"]),
        Route("/_emulator/users/delta/expire", _control(_expire_delta), methods=["POST"]),
        Route("/_emulator/users/{user_id}", _control(_update_user), methods=["PATCH"]),
        Route("/_emulator/users/{user_id}", _control(_remove_user), methods=["DELETE"]),
        Route("/_emulator/subscriptions", _control(_subscriptions), methods=["GET"]),
        Route(
            "/_emulator/subscriptions/{subscription_id}/lifecycle",
            _control(_lifecycle),
            methods=["POST"],
        ),
        Route("/_emulator/notifications", _control(_notifications), methods=["GET"]),
        Route("/_emulator/notification-faults", _control(_notification_faults), methods=["POST"]),
        Route(
            "/_emulator/notification-settings",
            _control(_notification_settings),
            methods=["POST"],
        ),
        Route("/_emulator/townhalls", _control(_add_townhall), methods=["POST"]),
        Route(f"{townhall}/status", _control(_webinar_status), methods=["POST"]),
        Route(
            f"{townhall}/sessions/{{session_id}}/attendance",
            _control(_add_attendance),
            methods=["POST"],
        ),
    ]
