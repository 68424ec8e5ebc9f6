"""The emulator's mutable world: the fixture (parsed), authorization codes, grants and tokens,
the clock, faults and the request statistics."""

from __future__ import annotations

import copy
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gatherly.linkedin_emulator.fixture import (
    Consent,
    Fixture,
    FixtureError,
    Form,
    Member,
    Question,
    Response,
    Version,
    check_response,
    check_version,
    validate_fixture,
    validate_response,
)

LEADGEN_SCOPE = "r_marketing_leadgen_automation"
TOKEN_LIFETIME = 3600  # seconds (real LinkedIn: 60 days); settable through the control API
CODE_LIFETIME = 600  # an authorization code lives 10 minutes
REFRESH_LIFETIME = 365 * 24 * 3600  # a refresh token lives a year from the authorization
FAIL_STATUSES = (500, 502, 503, 504)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (LinkedIn's ``Time``)."""
    return int(moment.timestamp() * 1000)


@dataclass
class Faults:
    """Deterministic fault injection on ``/rest`` requests: every Nth throttled or failed.

    ``counter`` counts ``/rest`` requests since the settings last changed; request number
    ``k`` is throttled when ``k % throttle_every == 0``, else failed when
    ``k % fail_every == 0``."""

    throttle_every: int = 0
    retry_after: int | None = 1
    fail_every: int = 0
    fail_status: int = 503
    counter: int = 0

    def pick(self) -> str | None:
        """Count one ``/rest`` request; the fault it gets (``"429"``, ``"500"``, …) or None."""
        self.counter += 1
        if self.throttle_every and self.counter % self.throttle_every == 0:
            return "429"
        if self.fail_every and self.counter % self.fail_every == 0:
            return str(self.fail_status)
        return None

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {
            "throttle_every": self.throttle_every,
            "retry_after": self.retry_after,
            "fail_every": self.fail_every,
            "fail_status": self.fail_status,
            "rest_requests_counted": self.counter,
        }


@dataclass
class AuthCode:
    """An authorization code: single use, ten minutes."""

    client_id: str
    redirect_uri: str
    member_id: str
    scopes: tuple[str, ...]
    expires_at: datetime
    used: bool = False


@dataclass
class Grant:
    """What a member authorized: the refresh token and its fixed end of life."""

    client_id: str
    member_id: str
    scopes: tuple[str, ...]
    refresh_token: str
    refresh_expires_at: datetime
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class AccessToken:
    """An issued access token."""

    grant: Grant
    expires_at: datetime


def _token(prefix: str) -> str:
    # LinkedIn's tokens are long opaque strings starting "AQ…".
    return prefix + secrets.token_urlsafe(48)


class LinkedInState:
    """Everything the emulator knows; one instance per running emulator."""

    def __init__(self, fixture: dict[str, Any], *, token_lifetime: int = TOKEN_LIFETIME) -> None:
        validate_fixture(fixture)
        self._original = copy.deepcopy(fixture)
        self._default_token_lifetime = token_lifetime
        self.reset()

    def reset(self) -> None:
        """Back to the fixture as loaded: no codes or tokens, no faults, empty log, real time."""
        self.world: Fixture = validate_fixture(copy.deepcopy(self._original))
        self.deleted: set[str] = set()
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}  # by refresh token
        self.tokens: dict[str, AccessToken] = {}
        self.clear_faults()
        self.clock_offset = timedelta()
        self.requests: list[dict[str, Any]] = []
        self.stats: dict[str, Counter[str]] = {}
        self._loaded_at = self.now()

    def clear_faults(self) -> None:
        """No faults; the token lifetime back to its default."""
        self.faults = Faults()
        self.token_lifetime = self._default_token_lifetime

    def now(self) -> datetime:
        """The emulator's current time (real UTC time plus the advanced offset)."""
        return datetime.now(UTC) + self.clock_offset

    # ------------------------------------------------------------ directory

    def redirect_allowed(self, redirect_uri: str) -> bool:
        """Whether ``redirect_uri`` starts with one of the application's registered prefixes."""
        return any(redirect_uri.startswith(p) for p in self.world.application.redirect_uris)

    def member(self, member_id: str) -> Member | None:
        """The member with this id."""
        return next((m for m in self.world.members if m.id == member_id), None)

    def has_role(self, member_id: str, owner_urn: str) -> bool:
        """Whether the member holds a role on the ad account or organization."""
        member = self.member(member_id)
        return member is not None and owner_urn in (*member.ad_accounts, *member.organizations)

    # ------------------------------------------------------------ OAuth

    def issue_code(
        self, *, client_id: str, redirect_uri: str, member_id: str, scopes: tuple[str, ...]
    ) -> str:
        """A new authorization code for the member's consent."""
        code = _token("AQT")
        self.codes[code] = AuthCode(
            client_id=client_id,
            redirect_uri=redirect_uri,
            member_id=member_id,
            scopes=scopes,
            expires_at=self.now() + timedelta(seconds=CODE_LIFETIME),
        )
        return code

    def open_grant(self, code: AuthCode) -> Grant:
        """Mark the code used and open a grant (refresh token) for it."""
        code.used = True
        grant = Grant(
            client_id=code.client_id,
            member_id=code.member_id,
            scopes=code.scopes,
            refresh_token=_token("AQX"),
            refresh_expires_at=self.now() + timedelta(seconds=REFRESH_LIFETIME),
        )
        self.grants[grant.refresh_token] = grant
        return grant

    def issue_access_token(self, grant: Grant) -> tuple[str, AccessToken]:
        """A new access token for the grant; the grant's earlier access tokens stop working."""
        for old in grant.access_tokens:
            self.tokens.pop(old, None)
        value = _token("AQV")
        token = AccessToken(
            grant=grant, expires_at=self.now() + timedelta(seconds=self.token_lifetime)
        )
        self.tokens[value] = token
        grant.access_tokens = {value}
        return value, token

    def expire_access_tokens(self) -> int:
        """Expire every access token now (refresh tokens keep working); how many."""
        now = self.now()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)
        return len(self.tokens)

    # ------------------------------------------------------------ forms and responses

    def form(self, form_id: int) -> Form | None:
        """The form with this id."""
        return next((f for f in self.world.forms if f.id == form_id), None)

    def forms_of(self, owner_urn: str) -> list[Form]:
        """The forms of an owner, by id."""
        return sorted((f for f in self.world.forms if f.owner.urn == owner_urn), key=lambda f: f.id)

    def response(self, response_id: str) -> Response | None:
        """The (not deleted) response with this id."""
        if response_id in self.deleted:
            return None
        return next((r for r in self.world.responses if r.id == response_id), None)

    def responses_of(
        self,
        owner_urn: str,
        lead_type: str,
        *,
        start: int | None = None,
        end: int | None = None,
        form_version: tuple[int, int] | None = None,
        test_only: bool = False,
    ) -> list[Response]:
        """Responses of an owner and lead type, deleted ones left out, ascending by
        (submittedAt, id); ``start`` inclusive, ``end`` exclusive (epoch ms)."""
        found = [
            r
            for r in self.world.responses
            if r.id not in self.deleted
            and r.owner is not None
            and r.owner.urn == owner_urn
            and r.lead_type == lead_type
            and (start is None or r.submitted_at >= start)
            and (end is None or r.submitted_at < end)
            and (form_version is None or (r.form, r.version) == form_version)
            and (not test_only or r.test_lead)
        ]
        return sorted(found, key=lambda r: (r.submitted_at, r.id))

    def form_created(self, form: Form) -> int:
        """The form's ``created`` (epoch ms): as given, else a day before its first version
        or response, else when the fixture was loaded."""
        if form.created is not None:
            return form.created
        known = [v.created for v in form.versions if v.created is not None]
        known += [r.submitted_at for r in self.world.responses if r.form == form.id]
        if known:
            return min(known) - 24 * 3600 * 1000
        return epoch_ms(self._loaded_at)

    def version_created(self, form: Form, version: Version) -> int:
        """When a version was made (epoch ms): as given, else the form's creation."""
        return version.created if version.created is not None else self.form_created(form)

    def add_response(self, data: Any) -> Response:
        """Add a response (compact shape; ``id`` generated and ``submittedAt`` set to now when
        absent, ``leadType`` from the form's owner when absent)."""
        if not isinstance(data, dict):
            raise FixtureError("$: expected an object")
        body = dict(data)
        body.setdefault("id", str(uuid.uuid4()))
        body.setdefault("submittedAt", epoch_ms(self.now()))
        form = self.form(body["form"]) if isinstance(body.get("form"), int) else None
        body.setdefault(
            "leadType", "COMPANY" if form is not None and form.owner.organization else "SPONSORED"
        )
        response = validate_response(body)
        if any(r.id == response.id for r in self.world.responses):
            raise FixtureError(f"id: duplicate {response.id!r}")
        check_response(response, {f.id: f for f in self.world.forms}, where="")
        if response.submitter is None:
            response.submitter = f"urn:li:person:{secrets.token_hex(5)}"
        self.world.responses.append(response)
        return response

    def delete_response(self, response_id: str) -> bool:
        """The member deleted their lead: it leaves every listing and answers 404."""
        if self.response(response_id) is None:
            return False
        self.deleted.add(response_id)
        return True

    def add_version(
        self, form: Form, questions: list[Question], consents: list[Consent] | None
    ) -> Version:
        """A new version of ``form``: its questions renumbered after every question id the
        form used so far (as LinkedIn does when a form is edited); consents as given (or
        the latest version's)."""
        next_id = 1 + max(q.question_id for v in form.versions for q in v.questions)
        renumbered = [
            q.model_copy(update={"question_id": next_id + i}) for i, q in enumerate(questions)
        ]
        version = Version.model_validate(
            {
                "versionId": form.latest.version_id + 1,
                "questions": [q.model_dump(by_alias=True, exclude_none=True) for q in renumbered],
                "consents": [
                    c.model_dump(by_alias=True)
                    for c in (consents if consents is not None else form.latest.consents)
                ],
                "created": epoch_ms(self.now()),
            }
        )
        check_version(version, "")
        form.versions.append(version)
        return version

    # ------------------------------------------------------------ log

    def record(self, entry: dict[str, Any], route: str) -> None:
        """Log one request and count it under its route and status."""
        self.requests.append(entry)
        self.stats.setdefault(route, Counter())[str(entry["status"])] += 1

    def summary(self) -> dict[str, Any]:
        """A compact view of the state for ``GET /_emulator/state``."""
        return {
            "now": self.now().isoformat().replace("+00:00", "Z"),
            "now_ms": epoch_ms(self.now()),
            "token_lifetime": self.token_lifetime,
            "access_tokens": len(self.tokens),
            "grants": len(self.grants),
            "faults": self.faults.as_dict(),
            "requests": len(self.requests),
            "members": [
                {
                    "id": m.id,
                    "name": m.name,
                    "ad_accounts": m.ad_accounts,
                    "organizations": m.organizations,
                }
                for m in self.world.members
            ],
            "forms": [
                {
                    "id": f.id,
                    "owner": f.owner.urn,
                    "name": f.name,
                    "versions": [v.version_id for v in f.versions],
                }
                for f in self.world.forms
            ],
            "responses": sum(1 for r in self.world.responses if r.id not in self.deleted),
            "deleted": sorted(self.deleted),
        }
