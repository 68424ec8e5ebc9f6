"""The ``/rest`` Lead Sync surface (ad account users, organization ACLs, lead forms, versioned
forms, lead form responses) and ``/v2/userinfo``, with LinkedIn's headers, errors and
``start``/``count`` paging."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.linkedin_emulator import shapes
from gatherly.linkedin_emulator.errors import (
    LinkedInError,
    access_denied,
    bad_request,
    empty_token,
    expired_token,
    invalid_token,
    not_found,
)
from gatherly.linkedin_emulator.fixture import LEAD_TYPES, ORGANIZATION, SPONSORED_ACCOUNT
from gatherly.linkedin_emulator.state import LEADGEN_SCOPE, AccessToken, LinkedInState

DEFAULT_COUNT = 10
MAX_COUNT = 100
VERSION_WINDOW_MONTHS = 12  # versions are active for a year after release
_VERSION = re.compile(r"(\d{4})(\d{2})(?:\.(\d{2}))?")


def _state(request: Request) -> LinkedInState:
    state: LinkedInState = request.app.state.linkedin
    return state


def authenticate(state: LinkedInState, request: Request) -> AccessToken:
    """The bearer token of the request, or a 401."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise empty_token()
    token = state.tokens.get(value.strip())
    if token is None:
        raise invalid_token()
    if token.expires_at <= state.now():
        raise expired_token()
    return token


def check_version(state: LinkedInState, value: str | None) -> None:
    """``LinkedIn-Version: YYYYMM`` (or ``YYYYMM.NN``), active: not after the emulator's
    current month and at most 12 months before it."""
    if value is None or not value.strip():
        raise LinkedInError(
            400,
            "VERSION_MISSING",
            "A version must be present. Please specify a version by adding the "
            "LinkedIn-Version header.",
        )
    match = _VERSION.fullmatch(value.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise LinkedInError(
            400, "INVALID_VERSION", f"Invalid version {value!r}: LinkedIn-Version is YYYYMM"
        )
    now = state.now()
    current = now.year * 12 + now.month - 1
    asked = int(match[1]) * 12 + int(match[2]) - 1
    if not current - VERSION_WINDOW_MONTHS <= asked <= current:
        raise LinkedInError(426, "NONEXISTENT_VERSION", f"Requested version {value} is not active")


class _Call:
    """One ``/rest`` request: its state, token, member and raw (Rest.li) parameters."""

    def __init__(self, state: LinkedInState, request: Request, token: AccessToken) -> None:
        self.state = state
        self.request = request
        self.token = token
        self.member_id = token.grant.member_id
        self.version = request.headers.get("linkedin-version", "").strip()
        self.raw = shapes.raw_query(request.scope.get("query_string", b"").decode("latin-1"))

    def param(self, name: str) -> str | None:
        """A plain (percent-decoded) parameter."""
        value = self.raw.get(name)
        return None if value is None else unquote(value)

    def restli(self, name: str, *, required: bool = True) -> Any:
        """A Rest.li 2.0 parameter, parsed."""
        value = self.raw.get(name)
        if value is None:
            if required:
                raise bad_request(f"Missing required query parameter '{name}'")
            return None
        try:
            parsed = shapes.parse_restli(value)
        except shapes.RestliSyntaxError as exc:
            raise bad_request(
                f"Invalid Rest.li 2.0 value for query parameter '{name}': {exc}"
            ) from None
        if isinstance(parsed, str) and parsed.startswith(("(", "List(")):
            raise bad_request(
                f"Query parameter '{name}' has its Rest.li 2.0 syntax percent-encoded: send "
                "'(', ')', ',' and ':' as they are and encode only the values, e.g. "
                "owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A123)"
            )
        return parsed

    def finder(self, expected: str) -> None:
        """The ``q`` finder name must be ``expected``."""
        q = self.param("q")
        if q != expected:
            raise bad_request(f"Query parameter 'q' must be '{expected}' (got {q!r})")

    def owner(self) -> str:
        """The ``owner=(sponsoredAccount:…)``/``(organization:…)`` parameter's URN."""
        owner = self.restli("owner")
        shape = "(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A{id}) or (organization:urn%3Ali%3Aorganization%3A{id})"
        if not isinstance(owner, dict) or len(owner) != 1:
            raise bad_request(f"Query parameter 'owner' must be {shape}")
        ((kind, urn),) = owner.items()
        pattern = {"sponsoredAccount": SPONSORED_ACCOUNT, "organization": ORGANIZATION}.get(kind)
        if pattern is None or not isinstance(urn, str) or not pattern.fullmatch(urn):
            raise bad_request(f"Query parameter 'owner' must be {shape}")
        return urn

    def require_role(self, owner_urn: str, resource: str) -> None:
        """403 unless the member holds a role on the owner."""
        if not self.state.has_role(self.member_id, owner_urn):
            raise access_denied(resource, self.version)

    def page(self, items: list[Any], shape: Callable[[Any], dict[str, Any]]) -> Response:
        """``{"elements", "paging"}`` for ``start``/``count`` (default 10, at most 100)."""
        start = self._int("start", 0)
        count = self._int("count", DEFAULT_COUNT)
        if count > MAX_COUNT:
            raise bad_request(f"Query parameter 'count' must be at most {MAX_COUNT}")
        total = len(items)
        links = []
        if start + count < total and count > 0:
            links.append(self._link("next", start + count, count))
        if start > 0 and count > 0:
            links.append(self._link("prev", max(0, start - count), count))
        paging = {"start": start, "count": count, "total": total, "links": links}
        elements = [shape(item) for item in items[start : start + count]]
        return JSONResponse({"paging": paging, "elements": elements})

    def _int(self, name: str, default: int) -> int:
        value = self.param(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()):
            raise bad_request(f"Query parameter '{name}' must be a non-negative integer")
        return int(value)

    def _link(self, rel: str, start: int, count: int) -> dict[str, str]:
        pairs = {**self.raw, "start": str(start), "count": str(count)}
        query = "&".join(f"{k}={v}" for k, v in pairs.items())
        return {"rel": rel, "type": "application/json", "href": f"{self.request.url.path}?{query}"}


def _rest(
    resource: str, handler: Callable[[_Call], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Token, version headers and scope, then the handler; errors in LinkedIn's body."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        try:
            token = authenticate(state, request)
            check_version(state, request.headers.get("linkedin-version"))
            if request.headers.get("x-restli-protocol-version", "").strip() != "2.0.0":
                raise bad_request(
                    "The X-Restli-Protocol-Version header must be 2.0.0: the query parameters "
                    "are read with Rest.li 2.0 syntax"
                )
            call = _Call(state, request, token)
            if LEADGEN_SCOPE not in token.grant.scopes:
                raise access_denied(resource, call.version)
            return await handler(call)
        except LinkedInError as exc:
            return exc.response()

    return endpoint


async def _ad_account_users(call: _Call) -> Response:
    call.finder("authenticatedUser")
    member = call.state.member(call.member_id)
    assert member is not None
    person = f"urn:li:person:{member.id}"
    items = [{"account": a, "user": person, "role": "ACCOUNT_MANAGER"} for a in member.ad_accounts]
    return call.page(items, lambda item: item)


async def _organization_acls(call: _Call) -> Response:
    call.finder("roleAssignee")
    member = call.state.member(call.member_id)
    assert member is not None
    person = f"urn:li:person:{member.id}"
    items = [
        {"organization": o, "roleAssignee": person, "role": "ADMINISTRATOR", "state": "APPROVED"}
        for o in member.organizations
    ]
    for name in ("role", "state"):
        wanted = call.param(name)
        if wanted is not None:
            items = [item for item in items if item[name] == wanted]
    return call.page(items, lambda item: item)


async def _lead_forms(call: _Call) -> Response:
    call.finder("owner")
    owner = call.owner()
    call.require_role(owner, "leadForms.FINDER-owner")
    return call.page(call.state.forms_of(owner), lambda f: shapes.form(call.state, f))


def _form_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise bad_request(f"Invalid form id {raw!r}: a form id is a number")
    return int(raw)


async def _lead_form(call: _Call) -> Response:
    form = call.state.form(_form_id(call.request.path_params["form_id"]))
    if form is None:
        raise not_found(f"Lead form {call.request.path_params['form_id']} not found")
    call.require_role(form.owner.urn, "leadForms.GET")
    return JSONResponse(shapes.form(call.state, form))


async def _versioned_form(call: _Call) -> Response:
    urn = call.request.path_params["urn"]
    ids = shapes.parse_versioned_form_urn(urn)
    if ids is None:
        raise bad_request(
            f"Invalid key {urn!r}: expected urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{{id}},"
            "{version}), URL-encoded"
        )
    form = call.state.form(ids[0])
    version = form.version(ids[1]) if form is not None else None
    if form is None or version is None:
        raise not_found(f"Versioned lead form {urn} not found")
    call.require_role(form.owner.urn, "versionedLeadGenForms.GET")
    return JSONResponse(shapes.form(call.state, form, version))


def _time_range(call: _Call) -> tuple[int | None, int | None]:
    value = call.restli("submittedAtTimeRange", required=False)
    if value is None:
        return None, None
    shape = "(start:{epoch ms},end:{epoch ms})"
    if not isinstance(value, dict) or not set(value) <= {"start", "end"}:
        raise bad_request(f"Query parameter 'submittedAtTimeRange' must be {shape}")
    bounds: list[int | None] = []
    for key in ("start", "end"):
        bound = value.get(key)
        if bound is not None and not (
            isinstance(bound, str) and bound.isascii() and bound.isdigit()
        ):
            raise bad_request(f"submittedAtTimeRange.{key} must be epoch milliseconds")
        bounds.append(None if bound is None else int(bound))
    return bounds[0], bounds[1]


async def _lead_form_responses(call: _Call) -> Response:
    call.finder("owner")
    owner = call.owner()
    call.require_role(owner, "leadFormResponses.FINDER-owner")
    lead_type = call.restli("leadType")
    if not (
        isinstance(lead_type, dict)
        and set(lead_type) == {"leadType"}
        and lead_type["leadType"] in LEAD_TYPES
    ):
        raise bad_request(
            "Query parameter 'leadType' must be (leadType:SPONSORED|EVENT|COMPANY|"
            "ORGANIZATION_PRODUCT)"
        )
    start, end = _time_range(call)
    form_version = None
    versioned = call.restli("versionedLeadGenFormUrn", required=False)
    if versioned is not None:
        form_version = (
            shapes.parse_versioned_form_urn(versioned) if isinstance(versioned, str) else None
        )
        if form_version is None:
            raise bad_request(
                "Query parameter 'versionedLeadGenFormUrn' must be a URL-encoded "
                "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{id},{version})"
            )
    test_only = call.param("limitedToTestLeads")
    if test_only not in (None, "true", "false"):
        raise bad_request("Query parameter 'limitedToTestLeads' must be true or false")
    items = call.state.responses_of(
        owner,
        lead_type["leadType"],
        start=start,
        end=end,
        form_version=form_version,
        test_only=test_only == "true",
    )
    return call.page(items, lambda r: shapes.response(call.state, r))


async def _lead_form_response(call: _Call) -> Response:
    response_id = call.request.path_params["response_id"]
    item = call.state.response(response_id)
    if item is None or item.owner is None:
        raise not_found(f"Lead form response {response_id} not found")
    call.require_role(item.owner.urn, "leadFormResponses.GET")
    return JSONResponse(shapes.response(call.state, item))


async def _unknown(call: _Call) -> Response:
    raise LinkedInError(404, "RESOURCE_NOT_FOUND", "No virtual resource found")


async def _userinfo(request: Request) -> Response:
    """OpenID Connect userinfo of the token's member (no version headers: ``/v2``)."""
    state = _state(request)
    try:
        token = authenticate(state, request)
    except LinkedInError as exc:
        return exc.response()
    member = state.member(token.grant.member_id)
    assert member is not None
    given, _, family = member.name.partition(" ")
    return JSONResponse(
        {
            "sub": member.id,
            "name": member.name,
            "given_name": given,
            "family_name": family,
            "email": member.email,
            "email_verified": True,
            "locale": {"country": "US", "language": "en"},
        }
    )


def routes() -> list[Route]:
    """The ``/rest`` routes and ``/v2/userinfo``."""
    every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v2/userinfo", _userinfo, methods=["GET"]),
        Route(
            "/rest/adAccountUsers",
            _rest("adAccountUsers.FINDER-authenticatedUser", _ad_account_users),
            methods=["GET"],
        ),
        Route(
            "/rest/organizationAcls",
            _rest("organizationAcls.FINDER-roleAssignee", _organization_acls),
            methods=["GET"],
        ),
        Route("/rest/leadForms", _rest("leadForms.FINDER-owner", _lead_forms), methods=["GET"]),
        Route("/rest/leadForms/{form_id}", _rest("leadForms.GET", _lead_form), methods=["GET"]),
        Route(
            "/rest/versionedLeadGenForms/{urn}",
            _rest("versionedLeadGenForms.GET", _versioned_form),
            methods=["GET"],
        ),
        Route(
            "/rest/leadFormResponses",
            _rest("leadFormResponses.FINDER-owner", _lead_form_responses),
            methods=["GET"],
        ),
        Route(
            "/rest/leadFormResponses/{response_id}",
            _rest("leadFormResponses.GET", _lead_form_response),
            methods=["GET"],
        ),
        Route("/rest/{rest:path}", _rest("unknown", _unknown), methods=every),
    ]
