"""The identity platform's token endpoint and OpenID configuration, as msal uses them
(reference graph-webinars.md §1.1): app-only tokens carrying the application's roles."""

from __future__ import annotations

import base64
import binascii
import uuid
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.graph_emulator.errors import GRAPH_SCOPE
from gatherly.graph_emulator.state import EmulatorState


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


def routes() -> list[Route]:
    """The identity platform's routes."""
    return [
        Route("/{tenant}/oauth2/v2.0/token", _token, methods=["POST"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            _openid_configuration,
            methods=["GET"],
        ),
    ]
