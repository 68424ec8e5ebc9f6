"""LinkedIn's OAuth 2.0 and the slice of its REST API the Lead Sync intake reads.

httpx for HTTP, tenacity for retries: 429 (waiting ``Retry-After`` when sent), 500, 502,
503, 504 and dropped connections are retried with backoff; an expired access token is
refreshed once (the refresh rotates the stored tokens through ``on_tokens``) and the call
sent again. Every other error answer is final and raised as :class:`LinkedInError` with
LinkedIn's code and message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from gatherly.core.db import utcnow

log = logging.getLogger(__name__)
SCOPE = "r_marketing_leadgen_automation"
RETRIED = {429, 500, 502, 503, 504}
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
PAGE = 100


class LinkedInError(Exception):
    """An answer from LinkedIn that is not a success, with its status and code."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"LinkedIn answered {status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    @property
    def retriable(self) -> bool:
        return self.status in RETRIED


class ReconnectNeeded(LinkedInError):
    """The member's tokens no longer work (revoked, refresh token expired): they must
    connect again."""


@dataclass(frozen=True)
class Tokens:
    """What a token grant gives."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    refresh_expires_at: datetime | None
    scope: str


def _error(response: httpx.Response) -> LinkedInError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code") or body.get("error") or response.reason_phrase or "ERROR")
    message = str(body.get("message") or body.get("error_description") or response.text[:300])
    retry_after = None
    if response.headers.get("Retry-After", "").isdigit():
        retry_after = float(response.headers["Retry-After"])
    return LinkedInError(response.status_code, code, message, retry_after)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, LinkedInError) and exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return random.uniform(0, min(8.0, 0.25 * 2**state.attempt_number))


def _should_retry(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT) or (isinstance(exc, LinkedInError) and exc.retriable)


class OAuth:
    """The authorization code and refresh token grants of one LinkedIn app."""

    def __init__(
        self,
        *,
        auth_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.Client | None = None,
    ) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self._http = http

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        """Where to send the member to allow Gatherly to read their leads."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "scope": f"openid profile email {SCOPE}",
            },
            quote_via=quote,
        )
        return f"{self.auth_url}/oauth/v2/authorization?{query}"

    def _grant(self, data: dict[str, str]) -> Tokens:
        try:
            if self._http is None:
                with httpx.Client(timeout=30) as http:
                    response = self._post(http, data)
            else:
                response = self._post(self._http, data)
        except httpx.HTTPError as exc:
            raise LinkedInError(503, "UNREACHABLE", f"LinkedIn cannot be reached: {exc}") from None
        if response.status_code != 200:
            error = _error(response)
            if response.status_code in (400, 401):
                raise ReconnectNeeded(error.status, error.code, error.message)
            raise error
        body = response.json()
        now = utcnow()
        refresh_in = body.get("refresh_token_expires_in")
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
            refresh_expires_at=now + timedelta(seconds=int(refresh_in)) if refresh_in else None,
            scope=str(body.get("scope", "")),
        )

    def _post(self, http: httpx.Client, data: dict[str, str]) -> httpx.Response:
        return http.post(
            f"{self.auth_url}/oauth/v2/accessToken",
            data={**data, "client_id": self.client_id, "client_secret": self.client_secret},
        )

    def exchange(self, *, code: str, redirect_uri: str) -> Tokens:
        """Tokens for the code LinkedIn sent back to ``redirect_uri``."""
        return self._grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens from a refresh token (the old access token stops working)."""
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})


class LinkedInClient:
    """REST calls as one member: versioned headers, paging, retries and token refresh."""

    def __init__(
        self,
        *,
        api_url: str,
        version: str,
        tokens: Tokens,
        oauth: OAuth,
        on_tokens: Callable[[Tokens], None] = lambda _t: None,
        http: httpx.Client | None = None,
        attempts: int = 5,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.version = version
        self.tokens, self.oauth, self.on_tokens = tokens, oauth, on_tokens
        self.http = http or httpx.Client(timeout=30)
        self.attempts = attempts
        self.requests = 0

    def _refresh(self) -> None:
        if not self.tokens.refresh_token:
            raise ReconnectNeeded(401, "EXPIRED_ACCESS_TOKEN", "no refresh token: connect again")
        self.tokens = self.oauth.refresh(self.tokens.refresh_token)
        self.on_tokens(self.tokens)

    def _send(self, path: str, params: str) -> dict[str, Any]:
        url = f"{self.api_url}{path}" + (f"?{params}" if params else "")
        refreshed = False
        while True:
            self.requests += 1
            response = self.http.get(
                url,
                headers={
                    "Authorization": f"Bearer {self.tokens.access_token}",
                    "LinkedIn-Version": self.version,
                    "X-Restli-Protocol-Version": "2.0.0",
                },
            )
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self._refresh()
                continue
            if response.status_code == 401:
                error = _error(response)
                raise ReconnectNeeded(error.status, error.code, error.message)
            if response.status_code != 200:
                raise _error(response)
            body: dict[str, Any] = response.json()
            return body

    def get(self, path: str, params: str = "") -> dict[str, Any]:
        """One GET, retried on throttling and outages."""
        for attempt in Retrying(
            retry=retry_if_exception(_should_retry),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
            sleep=time.sleep,
        ):
            with attempt:
                try:
                    return self._send(path, params)
                except _TRANSIENT as exc:
                    raise LinkedInError(
                        503, "UNREACHABLE", f"LinkedIn cannot be reached: {exc}"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def elements(self, path: str, params: str) -> Iterator[dict[str, Any]]:
        """Every element of a collection, page by page (``start``/``count``)."""
        start = 0
        while True:
            body = self.get(path, f"{params}&start={start}&count={PAGE}")
            found = body.get("elements") or []
            yield from found
            total = (body.get("paging") or {}).get("total")
            start += len(found)
            if not found or len(found) < PAGE or (total is not None and start >= total):
                return

    # ------------------------------------------------------------------ the calls

    def me(self) -> dict[str, Any]:
        """The member the tokens act for (``sub``, ``name``, ``email``)."""
        return self.get("/v2/userinfo")

    def sources(self) -> list[tuple[str, str, str]]:
        """The ad accounts and company pages the member has a role on: (kind, urn, role)."""
        found = [
            ("sponsoredAccount", e["account"], str(e.get("role", "")))
            for e in self.elements("/rest/adAccountUsers", "q=authenticatedUser")
        ]
        found += [
            ("organization", e["organization"], str(e.get("role", "")))
            for e in self.elements("/rest/organizationAcls", "q=roleAssignee")
            if e.get("state", "APPROVED") == "APPROVED"
        ]
        return found

    def form_version(self, versioned_urn: str) -> dict[str, Any]:
        """A form as it was when a response was sent (its questions and consents)."""
        return self.get(f"/rest/versionedLeadGenForms/{quote(versioned_urn, safe='')}")

    def responses(
        self, *, kind: str, owner_urn: str, lead_type: str, since_ms: int, until_ms: int
    ) -> Iterator[dict[str, Any]]:
        """Lead form responses of an owner submitted in [since, until)."""
        params = (
            f"q=owner&owner=({kind}:{quote(owner_urn, safe='')})"
            f"&leadType=(leadType:{lead_type})"
            f"&submittedAtTimeRange=(start:{since_ms},end:{until_ms})"
        )
        return self.elements("/rest/leadFormResponses", params)
