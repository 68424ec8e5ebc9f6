"""The ``/v1.0`` virtual-event surface (reference graph-webinars.md §2, and
graph-notifications-townhalls.md §3 for town halls): webinars, town halls, registrations,
sessions, attendance, users (and the directory's ``/users/delta``), online meetings,
recordings and transcripts, with Graph's paging.

Town halls are served like webinars (list, get, ``getByUserIdAndRole``, sessions and their
attendance reports, the same application access policy) but have no registrations."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.graph_emulator import shapes
from gatherly.graph_emulator.errors import (
    MAX_REPORTS,
    READ_ARTIFACTS,
    READ_EVENTS,
    READ_MEETINGS,
    READ_RECORDINGS,
    READ_TRANSCRIPTS,
    READ_USERS,
    WWW_AUTHENTICATE,
    GraphError,
    _ids,
    error_response,
)
from gatherly.graph_emulator.state import DeltaTokenError, EmulatorState, Token


class _Call:
    """One Graph request being answered: the state, the request and helpers."""

    def __init__(self, state: EmulatorState, request: Request) -> None:
        self.state = state
        self.request = request
        raw = request.scope.get("raw_path") or request.url.path.encode()
        self.raw_path = raw.decode().split("?", 1)[0]
        self.segments = [unquote(s) for s in self.raw_path.split("/")[2:] if s != ""]
        self.base = str(request.base_url)
        self.token: Token | None = None

    # auth ---------------------------------------------------------

    def authenticate(self) -> None:
        header = self.request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthenticated("Access token is empty.")
        token = self.state.tokens.get(value.strip())
        if token is None:
            raise _unauthenticated("Access token validation failure. Invalid audience.")
        if token.expires_at <= self.state.now():
            raise _unauthenticated("Lifetime validation failed, the token is expired.")
        self.token = token

    def require(self, *permissions: str) -> None:
        assert self.token is not None
        if not any(p in self.token.roles for p in permissions):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation. Missing application "
                f"permission: {' or '.join(permissions)}.",
            )

    def policy(self, user_id: str) -> None:
        if not self.state.granted(user_id):
            raise GraphError(403, self.state.policy_code, self.state.policy_message)

    # responses ----------------------------------------------------

    def context(self, fragment: str) -> str:
        return f"{self.base}v1.0/$metadata#{fragment}"

    def entity(self, fragment: str, obj: dict[str, Any]) -> Response:
        return JSONResponse({"@odata.context": self.context(fragment), **obj})

    def collection(
        self,
        fragment: str,
        items: list[dict[str, Any]],
        *,
        paged: bool = True,
        shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Response:
        """A collection page; ``shape`` is applied to the page's items only (large lists)."""
        page = self._page(fragment, items, paged=paged)
        if shape is not None:
            page["value"] = [shape(item) for item in page["value"]]
        return JSONResponse(page)

    def page_size(self) -> int:
        """``$top`` when given, else the emulator's page size."""
        top = self.request.query_params.get("$top")
        if top is None:
            return self.state.page_size
        if not (top.isascii() and top.isdigit()) or int(top) < 1:
            raise GraphError(400, "BadRequest", f"Invalid value '{top}' for $top.")
        return int(top)

    def link(self, **changes: str) -> str:
        """This request's URL with the given query parameters replaced (or added), and
        ``$skiptoken`` and ``$deltatoken`` dropped unless given."""
        params = self.request.query_params
        drop = {"$skiptoken", "$deltatoken", *changes}
        query = [(k, v) for k, v in params.multi_items() if k not in drop]
        query += list(changes.items())
        encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query)
        return f"{self.base}{self.raw_path.lstrip('/')}?{encoded}"

    def _page(self, fragment: str, items: list[dict[str, Any]], *, paged: bool) -> dict[str, Any]:
        params = self.request.query_params
        body: dict[str, Any] = {"@odata.context": self.context(fragment)}
        if params.get("$count", "").lower() == "true":
            body["@odata.count"] = len(items)
        if not paged:
            body["value"] = items
            return body
        size = self.page_size()
        offset = 0
        if "$skiptoken" in params:
            try:
                offset = int(base64.urlsafe_b64decode(params["$skiptoken"]).decode())
            except (ValueError, binascii.Error):
                offset = -1
            if offset < 0:
                raise GraphError(400, "BadRequest", "Invalid $skiptoken.")
        body["value"] = items[offset : offset + size]
        if offset + size < len(items):
            token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            body["@odata.nextLink"] = self.link(**{"$skiptoken": token})
        return body

    # lookups ------------------------------------------------------

    def virtual_event(self, kind: _Kind, event_id: str) -> dict[str, Any]:
        found = self.state.virtual_event(kind.collection, event_id)
        if found is None:
            raise _not_found(f"{kind.label} '{event_id}' was not found.")
        self.policy(self.state.organizer_id(found))
        return found


@dataclass(frozen=True)
class _Kind:
    """One collection of virtual events under /solutions/virtualEvents."""

    collection: str  # webinars | townhalls
    label: str  # as Graph's messages name it
    odata_type: str
    shape: Callable[[dict[str, Any]], dict[str, Any]]
    registrations: bool


WEBINARS = _Kind("webinars", "Webinar", "virtualEventWebinar", shapes.webinar, True)
TOWNHALLS = _Kind("townhalls", "Townhall", "virtualEventTownhall", shapes.townhall, False)


def _unauthenticated(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


def _not_found(message: str) -> GraphError:
    return GraphError(404, "NotFound", message)


def _bad_segment(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def _function(segment: str, name: str) -> dict[str, str] | None:
    """The arguments of an OData function segment like ``name(a='x', b='y')``."""
    match = re.fullmatch(rf"{name}\((.*)\)", segment)
    if match is None:
        return None
    return dict(re.findall(r"(\w+)\s*=\s*'([^']*)'", match.group(1)))


def _find(items: list[dict[str, Any]], item_id: str, what: str) -> dict[str, Any]:
    for item in items:
        if item.get("id") == item_id:
            return item
    raise _not_found(f"{what} '{item_id}' was not found.")


def _events(call: _Call, kind: _Kind, rest: list[str]) -> Response:
    state = call.state
    call.require(READ_EVENTS)
    base = f"solutions/virtualEvents/{kind.collection}"
    if not rest:  # W1: ungranted organizers are silently left out
        visible = [
            w
            for w in sorted(state.events(kind.collection), key=lambda w: str(w["id"]))
            if state.granted(state.organizer_id(w))
        ]
        return call.collection(base, visible, shape=kind.shape)
    head = rest[0]
    if (args := _function(head, "getByUserIdAndRole")) is not None and len(rest) == 1:
        return _by_user(call, kind, args.get("userId", ""), args.get("role", ""))
    if _function(head, "getByUserRole") is not None and len(rest) == 1:
        raise GraphError(
            403,
            "Forbidden",
            "getByUserRole requires a signed-in user (delegated permission); "
            "app-only callers must use getByUserIdAndRole.",
        )
    webinar = call.virtual_event(kind, head)
    fragment = f"{base}('{head}')"
    if len(rest) == 1:
        return call.entity(f"{base}/$entity", kind.shape(webinar))
    registrations = rest[1] == "registrations" or rest[1].startswith("registrations(")
    if registrations and kind.registrations:
        return _registrations(call, webinar, rest[1:], fragment)
    if rest[1] == "sessions":
        return _sessions(call, webinar, rest[2:], fragment)
    raise _bad_segment(rest[1])


def _by_user(call: _Call, kind: _Kind, user_id: str, role: str) -> Response:
    state = call.state
    if role not in ("organizer", "coOrganizer"):
        raise GraphError(400, "BadRequest", f"Invalid role '{role}'.")
    if state.user(user_id) is None:
        raise _not_found(f"User '{user_id}' was not found.")
    call.policy(user_id)

    def matches(webinar: dict[str, Any]) -> bool:
        if role == "organizer":
            return state.organizer_id(webinar) == user_id
        co_organizers = {c.get("id") for c in webinar.get("coOrganizers", [])}
        # The policy follows the webinar's organizer, so ungranted organizers are left out.
        return user_id in co_organizers and state.granted(state.organizer_id(webinar))

    ordered = sorted(state.events(kind.collection), key=lambda w: str(w["id"]))
    found = [w for w in ordered if matches(w)]
    return call.collection(
        f"Collection(microsoft.graph.{kind.odata_type})", found, shape=kind.shape
    )


def _registrations(
    call: _Call, webinar: dict[str, Any], rest: list[str], fragment: str
) -> Response:
    items: list[dict[str, Any]] = webinar.get("registrations", [])
    head = rest[0]
    args = _function(head, "registrations")
    if args is not None and len(rest) == 1:  # R3 / R4: registrations(email='...') or (userId='...')
        return call.entity(f"{fragment}/registrations/$entity", _registration_by(items, args))
    if head != "registrations":
        raise _bad_segment(head)
    if len(rest) == 1:
        ordered = sorted(items, key=lambda r: str(r["id"]))
        return call.collection(f"{fragment}/registrations", ordered, shape=shapes.registration)
    if len(rest) == 2:
        reg = _find(items, rest[1], "Registration")
        return call.entity(f"{fragment}/registrations/$entity", shapes.registration(reg))
    raise _bad_segment(rest[2])


def _registration_by(items: list[dict[str, Any]], args: dict[str, str]) -> dict[str, Any]:
    if "email" in args:
        wanted = args["email"].lower()
        found = [r for r in items if str(r.get("email") or "").lower() == wanted]
    elif "userId" in args:
        found = [r for r in items if r.get("userId") == args["userId"]]
    else:
        raise GraphError(
            400, "BadRequest", "Expected registrations(email='...') or (userId='...')."
        )
    if not found:
        raise _not_found(f"Registration {args} was not found.")
    return found[0]


def _ready_reports(call: _Call, session: dict[str, Any]) -> list[dict[str, Any]]:
    """Reports exist only once their meeting has ended, plus the configured lag (§6.3)."""
    lag = timedelta(seconds=call.state.report_lag_seconds)
    now = call.state.now()
    reports: list[dict[str, Any]] = session.get("attendanceReports", [])
    return [r for r in reports if shapes.parse_utc(r["meetingEndDateTime"]) + lag <= now]


def _sessions(call: _Call, webinar: dict[str, Any], rest: list[str], fragment: str) -> Response:
    items: list[dict[str, Any]] = webinar.get("sessions", [])
    if not rest:
        ordered = sorted(items, key=lambda s: str(s["id"]))
        return call.collection(f"{fragment}/sessions", ordered, shape=shapes.session_summary)
    session = _find(items, rest[0], "Session")
    if len(rest) == 1:
        return call.entity(f"{fragment}/sessions/$entity", shapes.session(session))
    if rest[1] != "attendanceReports":
        raise _bad_segment(rest[1])
    call.require(READ_ARTIFACTS)
    base = f"{fragment}/sessions('{rest[0]}')/attendanceReports"
    reports = _ready_reports(call, session)
    if len(rest) == 2:
        recent = sorted(reports, key=lambda r: shapes.parse_utc(r["meetingEndDateTime"]))
        recent = recent[-MAX_REPORTS:]
        ordered = sorted(recent, key=lambda r: str(r["id"]))
        return call.collection(base, [shapes.report(r) for r in ordered], paged=False)
    report = _find(reports, rest[2], "Attendance report")
    if len(rest) == 3:
        expand = call.request.query_params.get("$expand", "") == "attendanceRecords"
        shaped = shapes.report(report, expand_records=expand)
        if expand and call.state.expand_limit is not None:
            # Some Graph expansions stop at a fixed size without a nextLink: let tests
            # check the connector notices (totalParticipantCount) and pages A3 instead.
            shaped["attendanceRecords"] = shaped["attendanceRecords"][: call.state.expand_limit]
        return call.entity(f"{base}/$entity", shaped)
    if rest[3] == "attendanceRecords" and len(rest) == 4:
        records = report.get("attendanceRecords", [])
        return call.collection(
            f"{base}('{rest[2]}')/attendanceRecords", records, shape=shapes.record
        )
    raise _bad_segment(rest[3])


def _users(call: _Call, rest: list[str]) -> Response:
    """GET /users and /users/{id or userPrincipalName} (User.Read.All)."""
    call.require(READ_USERS, "Directory.Read.All")
    if not rest:
        return call.collection("users", call.state.users_sorted(), shape=shapes.user)
    found = call.state.user(rest[0])
    if found is not None:
        return call.entity("users/$entity", shapes.user(found))
    raise GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{rest[0]}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


SYNC_STATE_NOT_FOUND = (
    "The sync state is not found or has expired (delta tokens are kept for a limited time). "
    "Restart the synchronization with a full sync: call delta without a token."
)


def _users_delta(call: _Call) -> Response:
    """GET /users/delta: a full sync, then only the changes, each round ending in a
    deltaLink; removed users as ``@removed``. A bad or expired token answers 410."""
    call.require(READ_USERS, "Directory.Read.All")
    state = call.state
    params = call.request.query_params
    size = call.page_size()
    body: dict[str, Any] = {"@odata.context": call.context("users"), "value": []}
    try:
        if params.get("$deltatoken") == "latest":  # no items: a deltaLink for "now"
            body["@odata.deltaLink"] = call.link(**{"$deltatoken": state.delta_token()})
            return JSONResponse(body)
        if "$skiptoken" in params:
            cursor = state.delta_resume(params["$skiptoken"])
        else:
            cursor = state.delta_start(params.get("$deltatoken"))
    except DeltaTokenError:
        raise GraphError(410, "syncStateNotFound", SYNC_STATE_NOT_FOUND) from None
    page, following = state.delta_page(cursor, size)
    selected = [p.strip() for p in params.get("$select", "").split(",") if p.strip()]
    for user_id, user in page:
        if user is None:
            body["value"].append({"id": user_id, "@removed": {"reason": "changed"}})
            continue
        shaped = shapes.user(user)
        if selected:  # Graph returns the selected properties and always the id
            shaped = {k: v for k, v in shaped.items() if k == "id" or k in selected}
        told = state.changed_properties(user_id, cursor.since)
        if told is not None:  # a changed user: what changed (and the id)
            shaped = {k: v for k, v in shaped.items() if k == "id" or k in told}
        body["value"].append(shaped)
    if following is not None:
        body["@odata.nextLink"] = call.link(**{"$skiptoken": state.skip_token(following)})
    else:
        body["@odata.deltaLink"] = call.link(**{"$deltatoken": state.delta_token(cursor)})
    return JSONResponse(body)


def _meetings(call: _Call, user_id: str, rest: list[str]) -> Response:
    state = call.state
    user = state.user(user_id)
    if rest[0] != "onlineMeetings":
        raise _bad_segment(rest[0])
    if len(rest) == 1:
        call.require(READ_MEETINGS)
    elif len(rest) >= 3 and rest[2] in ("recordings", "transcripts"):
        call.require(READ_RECORDINGS if rest[2] == "recordings" else READ_TRANSCRIPTS)
    else:
        raise _bad_segment(rest[-1])
    if user is None:
        raise _not_found(f"User '{user_id}' was not found.")
    call.policy(user["id"])
    meetings = state.meetings_of(user["id"])
    fragment = f"users('{user_id}')/onlineMeetings"
    if len(rest) == 1:  # M1
        wanted = re.fullmatch(
            r"\s*joinweburl\s+eq\s+'(.*)'\s*",
            call.request.query_params.get("$filter", ""),
            flags=re.IGNORECASE,
        )
        if wanted is None:
            raise GraphError(
                400,
                "BadRequest",
                "Filter expression expected - /onlineMeetings?$filter=JoinWebUrl eq 'joinweburl'.",
            )
        found = [
            shapes.online_meeting(s, meeting_id=m)
            for _, s, m in meetings
            if s.get("joinWebUrl") == wanted.group(1)
        ]
        return call.collection(fragment, found, paged=False)
    match = next(((w, s) for w, s, m in meetings if m == rest[1]), None)
    if match is None:
        raise _not_found(f"Online meeting '{rest[1]}' was not found.")
    _, session = match
    kind = rest[2][:-1]
    items: list[dict[str, Any]] = session.get(rest[2], [])
    base = f"{fragment}('{rest[1]}')/{rest[2]}"
    url_base = f"{call.base}v1.0/users/{quote(user_id)}/onlineMeetings/{quote(rest[1], safe='')}"

    def shaped(item: dict[str, Any]) -> dict[str, Any]:
        return shapes.artifact(
            kind,
            item,
            meeting_id=rest[1],
            organizer=user,
            tenant_id=state.tenant["id"],
            content_url=f"{url_base}/{rest[2]}/{quote(item['id'], safe='')}/content",
        )

    if len(rest) == 3:
        ordered_items = sorted(items, key=lambda i: str(i["id"]))
        return call.collection(base, ordered_items, shape=shaped)
    item = _find(items, rest[3], kind.capitalize())
    if len(rest) == 4:
        return call.entity(f"{base}/$entity", shaped(item))
    if rest[4] != "content" or len(rest) != 5:
        raise _bad_segment(rest[4])
    if kind == "recording":
        if item.get("contentBase64") is None:
            raise _not_found("The recording has no content.")
        return Response(base64.b64decode(item["contentBase64"]), media_type="video/mp4")
    fmt = call.request.query_params.get("$format", "text/vtt")
    if fmt != "text/vtt":
        raise GraphError(400, "BadRequest", f"Unsupported format '{fmt}'; use text/vtt.")
    return Response(item["content"], media_type="text/vtt")


async def answer(request: Request, handler: Callable[[_Call], Awaitable[Response]]) -> Response:
    """Answer a ``/v1.0`` request: check the bearer token, run ``handler``, turn a GraphError
    into Graph's error envelope, and add the request ids."""
    state: EmulatorState = request.app.state.emulator
    call = _Call(state, request)
    request_id, client_request_id = _ids(request)
    try:
        call.authenticate()
        response = await handler(call)
    except GraphError as exc:
        return error_response(
            exc, request_id=request_id, client_request_id=client_request_id, now=state.now()
        )
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id
    return response


async def _dispatch(call: _Call) -> Response:
    seg = call.segments
    if seg[:3] == ["solutions", "virtualEvents", "webinars"]:
        return _events(call, WEBINARS, seg[3:])
    if seg[:3] == ["solutions", "virtualEvents", "townhalls"]:
        return _events(call, TOWNHALLS, seg[3:])
    if seg in (["users", "delta"], ["users", "delta()"]):
        return _users_delta(call)
    if seg and seg[0] == "users" and len(seg) <= 2:
        return _users(call, seg[1:])
    if len(seg) >= 3 and seg[0] == "users":
        return _meetings(call, seg[1], seg[2:])
    raise _bad_segment(seg[0] if seg else "v1.0")


async def _graph(request: Request) -> Response:
    return await answer(request, _dispatch)


def routes() -> list[Route]:
    """Graph's ``/v1.0`` routes."""
    return [Route("/v1.0/{path:path}", _graph, methods=["GET"])]
