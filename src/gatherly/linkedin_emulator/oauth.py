"""LinkedIn's OAuth 2.0 three-legged flow: the member's consent page (a plain HTML page
listing the fixture's members), the redirect with a code, and the token endpoint
(authorization code and refresh token grants)."""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gatherly.linkedin_emulator.state import Grant, LinkedInState

AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "scope")


def _state(request: Request) -> LinkedInState:
    state: LinkedInState = request.app.state.linkedin
    return state


def scopes_of(value: str) -> tuple[str, ...]:
    """Requested scopes: space-separated (as RFC 6749), commas tolerated."""
    return tuple(s for s in re.split(r"[\s,]+", value) if s)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n",
        status_code=status,
    )


def _error_page(message: str) -> HTMLResponse:
    return _page(
        "LinkedIn emulator: authorization failed",
        f'<p id="error">{html.escape(message)}</p>',
        status=400,
    )


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


def _check_client(state: LinkedInState, params: Mapping[str, str]) -> str | None:
    """The problem that forbids redirecting back at all (shown as a 400 page), or None."""
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    if not client_id:
        return 'The parameter "client_id" is missing.'
    if client_id != state.world.application.client_id:
        return f"Unknown client_id {client_id!r}: no application is registered with it."
    if not redirect_uri:
        return 'The parameter "redirect_uri" is missing.'
    if not state.redirect_allowed(redirect_uri):
        return (
            f"The redirect_uri {redirect_uri!r} does not match the application's authorized "
            "redirect URLs."
        )
    return None


def _hidden(params: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if name in params
    )


async def _authorize_page(request: Request) -> Response:
    state = _state(request)
    params = {k: v for k, v in request.query_params.items() if k in AUTHORIZE_PARAMS}
    problem = _check_client(state, params)
    if problem:
        return _error_page(problem)
    if params.get("response_type") != "code":
        return _redirect_error(
            params, "unsupported_response_type", 'The response_type must be "code".'
        )
    hidden = _hidden(params)
    scopes = ", ".join(scopes_of(params.get("scope", ""))) or "(none)"
    members = "\n".join(
        f'<li><form method="post" action="/oauth/v2/authorization">{hidden}'
        f'<input type="hidden" name="member" value="{html.escape(m.id)}">'
        f'<button type="submit" name="action" value="allow">Allow as {html.escape(m.name)}'
        f"</button> <small>{html.escape(m.email)}</small></form></li>"
        for m in state.world.members
    )
    body = (
        f"<p><strong>{html.escape(params['client_id'])}</strong> would like to use your "
        f"LinkedIn account. Permissions requested: <code>{html.escape(scopes)}</code>.</p>\n"
        "<p>Sign in as one of these members (the emulator has no passwords):</p>\n"
        f'<ul id="members">\n{members}\n</ul>\n'
        f'<form method="post" action="/oauth/v2/authorization">{hidden}'
        '<button type="submit" name="action" value="cancel">Cancel</button></form>'
    )
    return _page("LinkedIn emulator: sign in and allow access", body)


def _redirect_error(params: Mapping[str, str], error: str, description: str) -> Response:
    query = {"error": error, "error_description": description}
    if params.get("state"):
        query["state"] = params["state"]
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


async def _authorize_submit(request: Request) -> Response:
    state = _state(request)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    params = {k: v for k, v in form.items() if k in AUTHORIZE_PARAMS}
    problem = _check_client(state, params)
    if problem:
        return _error_page(problem)
    if form.get("action") == "cancel":
        return _redirect_error(
            params, "user_cancelled_authorize", "The user cancelled the authorization"
        )
    if params.get("response_type") != "code":
        return _redirect_error(
            params, "unsupported_response_type", 'The response_type must be "code".'
        )
    member = state.member(form.get("member", ""))
    if member is None:
        return _error_page(f"Unknown member {form.get('member', '')!r}.")
    code = state.issue_code(
        client_id=params["client_id"],
        redirect_uri=params["redirect_uri"],
        member_id=member.id,
        scopes=scopes_of(params.get("scope", "")),
    )
    query = {"code": code}
    if params.get("state"):
        query["state"] = params["state"]
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _token_answer(state: LinkedInState, grant: Grant, now: datetime) -> JSONResponse:
    value, token = state.issue_access_token(grant)
    return JSONResponse(
        {
            "access_token": value,
            "expires_in": int((token.expires_at - now).total_seconds()),
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_in": int((grant.refresh_expires_at - now).total_seconds()),
            "scope": ",".join(grant.scopes),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def _access_token(request: Request) -> Response:
    state = _state(request)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        form.setdefault("client_id", unquote(user))
        form.setdefault("client_secret", unquote(password))
    for name in ("grant_type", "client_id", "client_secret"):
        if not form.get(name):
            return _oauth_error(400, "invalid_request", f'A required parameter "{name}" is missing')
    grant_type = form["grant_type"]
    if grant_type not in ("authorization_code", "refresh_token"):
        return _oauth_error(
            400, "unsupported_grant_type", f"The grant_type {grant_type!r} is not supported"
        )
    app = state.world.application
    if form["client_id"] != app.client_id or form["client_secret"] != app.client_secret:
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    now = state.now()
    if grant_type == "refresh_token":
        if not form.get("refresh_token"):
            return _oauth_error(
                400, "invalid_request", 'A required parameter "refresh_token" is missing'
            )
        grant = state.grants.get(form["refresh_token"])
        if grant is None or grant.client_id != app.client_id or grant.refresh_expires_at <= now:
            return _oauth_error(
                400, "invalid_grant", "The provided refresh token is invalid, expired or revoked"
            )
        return _token_answer(state, grant, now)
    for name in ("code", "redirect_uri"):
        if not form.get(name):
            return _oauth_error(400, "invalid_request", f'A required parameter "{name}" is missing')
    code = state.codes.get(form["code"])
    if (
        code is None
        or code.used
        or code.expires_at <= now
        or code.client_id != form["client_id"]
        or code.redirect_uri != form["redirect_uri"]
    ):
        return _oauth_error(
            400,
            "invalid_grant",
            "Unable to retrieve access token: appid/redirect uri/code verifier does not match "
            "authorization code. Or authorization code expired. Or authorization code was "
            "already used",
        )
    return _token_answer(state, state.open_grant(code), now)


def routes() -> list[Route]:
    """The OAuth routes (``www.linkedin.com/oauth/v2/...`` in real life)."""
    return [
        Route("/oauth/v2/authorization", _authorize_page, methods=["GET"]),
        Route("/oauth/v2/authorization", _authorize_submit, methods=["POST"]),
        Route("/oauth/v2/accessToken", _access_token, methods=["POST"]),
    ]
