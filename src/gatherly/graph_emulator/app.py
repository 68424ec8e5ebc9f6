"""The Graph emulator's ASGI app: token endpoint, ``/v1.0`` webinar surface, ``/_emulator`` control.

Serves what the connector needs to prove SPEC T1 (token, permissions named on 403),
T2 (application access policy 403s and silent omission) and T12 (paging, 429/503/504,
dropped connections, expired tokens).

Also serves the tenant's OpenID configuration document
(``GET /{tenant}/v2.0/.well-known/openid-configuration``), which msal reads before it asks
for a token.

Follows ../shared/reference/graph-webinars.md: identity-platform token errors (§1.1),
permissions and the application access policy (§1.2, §1.3), endpoints W1-W4, R1-R4, S1-S2,
A1-A3, M1, C1-C3, T1-T3 (§2), paging (§2.6), the error envelope and throttling (§4).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatherly.graph_emulator import shapes
from gatherly.graph_emulator.fixture import (
    FixtureError,
    check_webinar_refs,
    validate_registration,
    validate_webinar,
)
from gatherly.graph_emulator.state import FAULT_KINDS, EmulatorState, Token

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
READ_EVENTS = "VirtualEvent.Read.All"
READ_ARTIFACTS = "OnlineMeetingArtifact.Read.All"
READ_MEETINGS = "OnlineMeetings.Read.All"
READ_RECORDINGS = "OnlineMeetingRecording.Read.All"
READ_TRANSCRIPTS = "OnlineMeetingTranscript.Read.All"
READ_USERS = "User.Read.All"
MAX_REPORTS = 10  # Graph lists only the 10 most recent attendance reports (reference §6.5)
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",'
    ' client_id="00000003-0000-0000-c000-000000000000"'
)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S")


class GraphError(Exception):
    """A Graph error answer: status, code, message and optional extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}


def error_response(
    exc: GraphError, *, request_id: str, client_request_id: str, now: datetime
) -> Response:
    """Graph's error envelope with ``innerError`` date and request ids (reference §4)."""
    inner = {
        **exc.inner,
        "date": _stamp(now),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    body = {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}
    headers = {"request-id": request_id, "client-request-id": client_request_id, **exc.headers}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _ids(request: Request) -> tuple[str, str]:
    request_id = str(uuid.uuid4())
    return request_id, request.headers.get("client-request-id", request_id)


# ---------------------------------------------------------------- token endpoint (§1.1)


def _aad_error(
    state: EmulatorState, status: int, error: str, number: int, text: str
) -> JSONResponse:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = state.now().strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{number}: {text}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [number],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={number}",
        },
        status_code=status,
    )


async def _token(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    tenant = request.path_params["tenant"]
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        form.setdefault("client_id", unquote(user))
        form.setdefault("client_secret", unquote(password))
    known = {state.tenant["id"].lower(), *(d.lower() for d in state.tenant["domains"])}
    if tenant.lower() not in known:
        return _aad_error(
            state,
            400,
            "invalid_request",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    if form.get("grant_type") != "client_credentials":
        return _aad_error(
            state,
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )
    client_id = form.get("client_id")
    if not client_id:
        return _aad_error(
            state,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    app = state.application(client_id)
    if app is None:
        return _aad_error(
            state,
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
        )
    if form.get("scope") != GRAPH_SCOPE:
        return _aad_error(
            state,
            400,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid. The scope "
            f"{form.get('scope') or ''} is not valid.",
        )
    secret = form.get("client_secret")
    if not secret:
        return _aad_error(
            state,
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the "
            "'client_credentials' grant type.",
        )
    if secret != app["secret"]:
        return _aad_error(
            state,
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
        )
    value, _ = state.issue_token(client_id)
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": value}
    )


async def _openid_configuration(request: Request) -> Response:
    """The tenant's OpenID Connect discovery document, shaped like login.microsoftonline.com's."""
    state: EmulatorState = request.app.state.emulator
    tenant = request.path_params["tenant"]
    known = {state.tenant["id"].lower(), *(d.lower() for d in state.tenant["domains"])}
    if tenant.lower() not in known:
        return _aad_error(
            state,
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    base = f"{str(request.base_url).rstrip('/')}/{state.tenant['id']}"
    return JSONResponse(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }
    )


# ---------------------------------------------------------------- /v1.0 (§2)


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

    def _page(self, fragment: str, items: list[dict[str, Any]], *, paged: bool) -> dict[str, Any]:
        params = self.request.query_params
        body: dict[str, Any] = {"@odata.context": self.context(fragment)}
        if params.get("$count", "").lower() == "true":
            body["@odata.count"] = len(items)
        if not paged:
            body["value"] = items
            return body
        size = self.state.page_size
        if "$top" in params:
            top = params["$top"]
            if not (top.isascii() and top.isdigit()) or int(top) < 1:
                raise GraphError(400, "BadRequest", f"Invalid value '{top}' for $top.")
            size = int(top)
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
            query = [(k, v) for k, v in params.multi_items() if k != "$skiptoken"]
            query.append(("$skiptoken", token))
            encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query)
            body["@odata.nextLink"] = f"{self.base}{self.raw_path.lstrip('/')}?{encoded}"
        return body

    # lookups ------------------------------------------------------

    def webinar(self, webinar_id: str) -> dict[str, Any]:
        webinar = self.state.webinar(webinar_id)
        if webinar is None:
            raise _not_found(f"Webinar '{webinar_id}' was not found.")
        self.policy(self.state.organizer_id(webinar))
        return webinar


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


def _webinars(call: _Call, rest: list[str]) -> Response:
    state = call.state
    call.require(READ_EVENTS)
    if not rest:  # W1: ungranted organizers are silently left out
        visible = [
            w
            for w in sorted(state.data["webinars"], key=lambda w: str(w["id"]))
            if state.granted(state.organizer_id(w))
        ]
        return call.collection("solutions/virtualEvents/webinars", visible, shape=shapes.webinar)
    head = rest[0]
    if (args := _function(head, "getByUserIdAndRole")) is not None and len(rest) == 1:
        return _by_user(call, args.get("userId", ""), args.get("role", ""))
    if _function(head, "getByUserRole") is not None and len(rest) == 1:
        raise GraphError(
            403,
            "Forbidden",
            "getByUserRole requires a signed-in user (delegated permission); "
            "app-only callers must use getByUserIdAndRole.",
        )
    webinar = call.webinar(head)
    fragment = f"solutions/virtualEvents/webinars('{head}')"
    if len(rest) == 1:
        return call.entity("solutions/virtualEvents/webinars/$entity", shapes.webinar(webinar))
    if rest[1] == "registrations" or rest[1].startswith("registrations("):
        return _registrations(call, webinar, rest[1:], fragment)
    if rest[1] == "sessions":
        return _sessions(call, webinar, rest[2:], fragment)
    raise _bad_segment(rest[1])


def _by_user(call: _Call, user_id: str, role: str) -> Response:
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

    ordered = sorted(state.data["webinars"], key=lambda w: str(w["id"]))
    found = [w for w in ordered if matches(w)]
    return call.collection(
        "Collection(microsoft.graph.virtualEventWebinar)", found, shape=shapes.webinar
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
    users = sorted(call.state.data["users"], key=lambda u: str(u["id"]))
    if not rest:
        return call.collection("users", users, shape=shapes.user)
    wanted = rest[0].lower()
    for u in users:
        if wanted in (str(u["id"]).lower(), str(u.get("userPrincipalName") or "").lower()):
            return call.entity("users/$entity", shapes.user(u))
    raise GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{rest[0]}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def _meetings(call: _Call, user_id: str, rest: list[str]) -> Response:
    state = call.state
    user = next((u for u in state.data["users"] if u["id"] == user_id), None)
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
    call.policy(user_id)
    meetings = state.meetings_of(user_id)
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


async def _graph(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = _Call(state, request)
    request_id, client_request_id = _ids(request)
    try:
        call.authenticate()
        seg = call.segments
        if seg[:3] == ["solutions", "virtualEvents", "webinars"]:
            response = _webinars(call, seg[3:])
        elif seg and seg[0] == "users" and len(seg) <= 2:
            response = _users(call, seg[1:])
        elif len(seg) >= 3 and seg[0] == "users":
            response = _meetings(call, seg[1], seg[2:])
        else:
            raise _bad_segment(seg[0] if seg else "v1.0")
    except GraphError as exc:
        return error_response(
            exc, request_id=request_id, client_request_id=client_request_id, now=state.now()
        )
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id
    return response


# ---------------------------------------------------------------- /_emulator control


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
    webinar = state.webinar(request.path_params["webinar_id"])
    if webinar is None:
        raise LookupError(f"no webinar {request.path_params['webinar_id']!r}")
    return webinar


def _iso(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


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
    if state.webinar(webinar.id) is not None:
        raise FixtureError(f"id: duplicate id {webinar.id!r}")
    users = {u["id"] for u in state.data["users"]}
    check_webinar_refs(webinar, tenant_id=state.tenant["id"], users=users, where="")
    state.data["webinars"].append(body)
    return JSONResponse(shapes.webinar(body), status_code=201)


async def _webinar_status(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    body = await _json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("draft", "published", "canceled"):
        raise FixtureError("status: must be draft, published or canceled")
    webinar["status"] = status
    return JSONResponse(shapes.webinar(webinar))


async def _add_registration(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    body = await _json(request)
    if isinstance(body, dict):
        body = {"id": str(uuid.uuid4()), "registrationDateTime": _iso(state.now()), **body}
        body.setdefault("status", "registered")
    validate_registration(body)
    webinar.setdefault("registrations", []).append(body)
    return JSONResponse(shapes.registration(body), status_code=201)


async def _cancel_registration(state: EmulatorState, request: Request) -> Response:
    webinar = _webinar_of(state, request)
    reg_id = request.path_params["registration_id"]
    reg = next((r for r in webinar.get("registrations", []) if r["id"] == reg_id), None)
    if reg is None:
        raise LookupError(f"no registration {reg_id!r}")
    reg["status"] = "canceled"
    reg["cancelationDateTime"] = _iso(state.now())
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
    rec = next((r for r in records if (r.get("emailAddress") or "").lower() == email), None)
    if rec is None:
        rec = {
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
    return JSONResponse(shapes.report(report, expand_records=True))


# ---------------------------------------------------------------- front door: log and faults


_METERED = re.compile(r"/onlineMeetings/[^/]+/(recordings|transcripts)")


class _FrontDoor:
    """Logs every request and injects the configured faults on ``/v1.0`` calls."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        state = self.state
        started, at = time.monotonic(), state.now()
        seen: dict[str, Any] = {"status": None}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            await send(message)

        picked = state.faults.pick() if scope["path"].startswith("/v1.0/") else None
        kind = picked[0] if picked else None
        if kind == "402" and not _METERED.search(scope["path"]):
            kind = None  # only recordings and transcripts are metered APIs
        try:
            if kind == "drop":
                # Headers promise a body that never comes: the client sees a broken connection.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"100")],
                    }
                )
            elif kind in ("429", "503", "504", "402", "expired_token"):
                assert picked is not None
                request = Request(scope, receive)
                request_id, client_request_id = _ids(request)
                exc = _fault_error(
                    kind,
                    with_retry_after=picked[1],
                    retry_after=state.faults.retry_after,
                    now=state.now(),
                )
                await error_response(
                    exc, request_id=request_id, client_request_id=client_request_id, now=state.now()
                )(scope, receive, logged_send)
            else:
                if kind == "slow":
                    await asyncio.sleep(state.faults.slow_seconds)
                await self.app(scope, receive, logged_send)
        finally:
            state.requests.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode(),
                    "status": seen["status"],
                    "time": _iso(at),
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "fault": kind,
                    # The Retry-After this answer carried (seconds), so tests and benchmarks
                    # can check the client waited: 429/503/504 send it unless told not to.
                    "retry_after": (
                        state.faults.retry_after
                        if picked and picked[1] and kind in ("429", "503", "504")
                        else None
                    ),
                }
            )


def _fault_error(
    kind: str, *, with_retry_after: bool, retry_after: float, now: datetime
) -> GraphError:
    seconds = f"{retry_after:g}"
    headers = {"Retry-After": seconds} if with_retry_after else {}
    if kind == "429":
        inner = {"code": "429", "message": "Please retry after", "status": "429"}
        return GraphError(
            429, "TooManyRequests", "Please retry again later.", headers=headers, inner=inner
        )
    if kind == "503":
        return GraphError(
            503, "serviceNotAvailable", "Service unavailable. Please retry later.", headers=headers
        )
    if kind == "402":
        return GraphError(
            402,
            "PaymentRequired",
            "Payment Required. Ensure that your application is able to call this premium API.",
        )
    if kind == "504":
        return GraphError(504, "UnknownError", "Gateway timeout.", headers=headers)
    return _unauthenticated("Lifetime validation failed, the token is expired.")


def create_emulator_app(state: EmulatorState) -> ASGIApp:
    """Build the emulator's ASGI app around ``state`` (no side effects until served)."""
    routes = [
        Route("/{tenant}/oauth2/v2.0/token", _token, methods=["POST"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            _openid_configuration,
            methods=["GET"],
        ),
        Route("/v1.0/{path:path}", _graph, methods=["GET"]),
        Route("/_emulator/", _control(_index), methods=["GET"]),
        Route("/_emulator/state", _control(_state), methods=["GET"]),
        Route("/_emulator/requests", _control(_requests), methods=["GET"]),
        Route("/_emulator/reset", _control(_reset), methods=["POST"]),
        Route("/_emulator/faults", _control(_faults), methods=["POST"]),
        Route("/_emulator/clock", _control(_clock), methods=["POST"]),
        Route("/_emulator/webinars", _control(_add_webinar), methods=["POST"]),
        Route(
            "/_emulator/webinars/{webinar_id}/status", _control(_webinar_status), methods=["POST"]
        ),
        Route(
            "/_emulator/webinars/{webinar_id}/registrations",
            _control(_add_registration),
            methods=["POST"],
        ),
        Route(
            "/_emulator/webinars/{webinar_id}/registrations/{registration_id}/cancel",
            _control(_cancel_registration),
            methods=["POST"],
        ),
        Route(
            "/_emulator/webinars/{webinar_id}/sessions/{session_id}/attendance",
            _control(_add_attendance),
            methods=["POST"],
        ),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return _FrontDoor(app, state)
