"""App-only Graph tokens with msal's ConfidentialClientApplication.

The authority is a setting: ``https://login.microsoftonline.com/{tenant}`` for Microsoft,
``http://127.0.0.1:{port}/{tenant}`` for the bundled emulator. msal only accepts https
authorities, so for a plain-http loopback authority msal is shown the https spelling and
the HTTP adapter below translates the scheme both ways; the wire stays plain http.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from gatherly.core import metrics
from gatherly.core.exceptions import FatalSyncError, RetriableSyncError

if TYPE_CHECKING:  # msal (and requests under it) loads on the first token, not on import
    import msal  # type: ignore[import-untyped]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com"
REFRESH_MARGIN_SECONDS = 300.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

log = logging.getLogger(__name__)


class TokenError(FatalSyncError):
    """The identity platform refused the token request (wrong secret, unknown app or tenant)."""

    code = "graph_token_refused"


class TokenUnavailable(RetriableSyncError):
    """The identity platform could not be reached."""

    code = "graph_token_unavailable"


class Credential(Protocol):
    """What the Graph client needs from a credential."""

    def token(self) -> str:
        """A valid bearer token, cached until shortly before it expires."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token (Graph said it expired); the next call fetches a new one."""
        ...


def authority_url(tenant: str, host: str = MICROSOFT_AUTHORITY_HOST) -> str:
    """The authority for a tenant on an identity host (Microsoft's or the emulator's)."""
    return f"{host.rstrip('/')}/{tenant}"


class _MsalHttp:
    """msal's HTTP client on httpx (the transport seam), translating http↔https on loopback."""

    def __init__(
        self, client: httpx.Client, plain_origin: str | None, https_origin: str | None
    ) -> None:
        self._client = client
        self._plain = plain_origin
        self._https = https_origin

    def _out(self, url: str) -> str:
        if self._plain and self._https and url.startswith(self._https):
            return self._plain + url[len(self._https) :]
        return url

    def _in(self, response: httpx.Response) -> httpx.Response:
        if not (self._plain and self._https):
            return response
        text = response.text.replace(self._plain, self._https)
        return httpx.Response(
            response.status_code,
            headers={k: v for k, v in response.headers.items() if k.lower() != "content-length"},
            content=text.encode(),
            request=response.request,
        )

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        """GET for msal (OpenID discovery)."""
        response = self._client.get(
            self._out(url), params=params, headers=headers, timeout=kwargs.get("timeout")
        )
        return self._in(response)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        """POST for msal (the token request)."""
        response = self._client.post(
            self._out(url),
            params=params,
            data=data,
            headers=headers,
            timeout=kwargs.get("timeout"),
        )
        return self._in(response)

    def close(self) -> None:
        """Close the underlying httpx client."""
        self._client.close()


class ClientSecretCredential:
    """Client-credentials tokens for Graph via msal, cached and refreshed before expiry."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        parts = urlsplit(authority)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(parts.path) < 2:
            raise FatalSyncError(
                f"Graph authority {authority!r} must look like https://host/{{tenant}}"
            )
        plain = https = None
        if parts.scheme == "http":
            if transport is None and (parts.hostname or "") not in _LOOPBACK:
                raise FatalSyncError(
                    f"Graph authority {authority!r}: plain http is only allowed on loopback"
                )
            plain = f"http://{parts.netloc}"
            https = f"https://{parts.netloc}"
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._msal_authority = (https + parts.path if https else self.authority).rstrip("/")
        self._http = _MsalHttp(httpx.Client(transport=transport, timeout=timeout), plain, https)
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self.acquired = 0

    def __repr__(self) -> str:
        return f"ClientSecretCredential({self.authority!r}, {self.client_id!r}, secret=***)"

    def _scrub(self, text: str) -> str:
        secret = self._secret.get_secret_value()
        return text.replace(secret, "***") if secret else text

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            import msal

            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._secret.get_secret_value(),
                    authority=self._msal_authority,
                    validate_authority=False,
                    instance_discovery=False,
                    http_client=self._http,
                )
            except httpx.TransportError as exc:
                raise TokenUnavailable(
                    f"Identity platform at {self.authority} unreachable: {type(exc).__name__}"
                ) from None
            except ValueError as exc:
                raise TokenError(
                    f"Graph authority {self.authority} rejected: {self._scrub(str(exc))}"
                ) from None
        return self._app

    def token(self) -> str:
        """A valid bearer token, cached until ``refresh_margin`` seconds before expiry."""
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at - self._margin:
                return self._token
            self._forget()
            return self._acquire()

    def invalidate(self) -> None:
        """Forget the cached token so the next call asks the identity platform again."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self._token = None
        if self._app is not None:
            cache = self._app.token_cache
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(entry)

    def _acquire(self) -> str:
        app = self._application()
        try:
            result: dict[str, Any] = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except httpx.TransportError as exc:
            metrics.GRAPH_TOKENS.labels("unreachable").inc()
            raise TokenUnavailable(
                f"Identity platform at {self.authority} unreachable: {type(exc).__name__}"
            ) from None
        if "access_token" not in result:
            metrics.GRAPH_TOKENS.labels("refused").inc()
            error = str(result.get("error") or "token_error")
            description = str(result.get("error_description") or "").splitlines()
            first = self._scrub(description[0] if description else "")
            raise TokenError(f"Token request for app {self.client_id} refused: {error}: {first}")
        self._token = str(result["access_token"])
        self._expires_at = self._clock() + float(result.get("expires_in") or 0)
        self.acquired += 1
        metrics.GRAPH_TOKENS.labels("acquired").inc()
        log.info(
            "graph token acquired for app %s (expires in %ss)",
            self.client_id,
            result.get("expires_in"),
        )
        return self._token

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()
