"""The emulator's mutable world: fixture data, tokens, the clock, faults and the request log."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gatherly.graph_emulator.fixture import validate_fixture

TOKEN_LIFETIME = 3599
FAULT_KINDS = ("429", "503", "504", "402", "slow", "drop", "expired_token")
POLICY_CODE = "Forbidden"
POLICY_MESSAGE = "No Application Access Policy found for this app"


@dataclass
class Faults:
    """Fault injection settings and their seeded random stream."""

    rate: float = 0.0
    seed: int = 0
    kinds: list[str] = field(default_factory=lambda: ["429"])
    retry_after: float = 1.0
    slow_seconds: float = 0.5
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def pick(self) -> tuple[str, bool] | None:
        """The fault for the next request (kind, send Retry-After) or None."""
        if self.rate <= 0 or not self.kinds:
            return None
        if self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        # Graph sometimes throttles without Retry-After (reference §4): one in three here.
        return kind, self.rng.random() >= 1 / 3

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {
            "rate": self.rate,
            "seed": self.seed,
            "kinds": self.kinds,
            "retry_after": self.retry_after,
            "slow_seconds": self.slow_seconds,
        }


@dataclass
class Token:
    """An issued access token."""

    app_id: str
    roles: list[str]
    expires_at: datetime


class EmulatorState:
    """Everything the emulator knows; one instance per running emulator."""

    def __init__(
        self,
        fixture: dict[str, Any],
        *,
        page_size: int = 10,
        report_lag_seconds: float = 0.0,
        policy_code: str = POLICY_CODE,
        policy_message: str = POLICY_MESSAGE,
    ) -> None:
        validate_fixture(fixture)
        self._original = copy.deepcopy(fixture)
        self.page_size = page_size
        # Cut $expand=attendanceRecords at this many records (None: all), as a capped
        # Graph expansion would.
        self.expand_limit: int | None = None
        self.report_lag_seconds = report_lag_seconds
        self.policy_code = policy_code
        self.policy_message = policy_message
        self.reset()

    def reset(self) -> None:
        """Back to the fixture as loaded: no tokens, no faults, empty log, real time."""
        self.data: dict[str, Any] = copy.deepcopy(self._original)
        self.tokens: dict[str, Token] = {}
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self.clock_offset = timedelta()

    def now(self) -> datetime:
        """The emulator's current time (real UTC time plus the advanced offset)."""
        return datetime.now(UTC) + self.clock_offset

    # ------------------------------------------------------------ directory

    @property
    def tenant(self) -> dict[str, Any]:
        """The tenant object."""
        tenant: dict[str, Any] = self.data["tenant"]
        return tenant

    def application(self, app_id: str) -> dict[str, Any] | None:
        """The application with this appId."""
        return next((a for a in self.data["applications"] if a["appId"] == app_id), None)

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user with this object id (or userPrincipalName)."""
        for u in self.data["users"]:
            if user_id in (u["id"], u["userPrincipalName"]):
                return dict(u)
        return None

    def granted(self, user_id: str) -> bool:
        """Whether the user holds an application access policy."""
        u = self.user(user_id)
        return u is not None and u.get("applicationAccessPolicy") is not None

    # ------------------------------------------------------------ tokens

    def issue_token(self, app_id: str) -> tuple[str, Token]:
        """A new JWT-like opaque bearer token for the application."""
        app = self.application(app_id)
        assert app is not None
        token = Token(
            app_id=app_id,
            roles=list(app["permissions"]),
            expires_at=self.now() + timedelta(seconds=TOKEN_LIFETIME),
        )
        claims = {
            "aud": "https://graph.microsoft.com",
            "tid": self.tenant["id"],
            "appid": app_id,
            "roles": token.roles,
            "exp": int(token.expires_at.timestamp()),
        }
        parts = [
            base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
            for p in ({"typ": "JWT", "alg": "none"}, claims)
        ]
        value = ".".join([*parts, secrets.token_urlsafe(24)])
        self.tokens[value] = token
        return value, token

    # ------------------------------------------------------------ webinars and town halls

    def webinar(self, webinar_id: str) -> dict[str, Any] | None:
        """The webinar with this id."""
        return next((w for w in self.data["webinars"] if w["id"] == webinar_id), None)

    @property
    def townhalls(self) -> list[dict[str, Any]]:
        """The town halls (a fixture without the optional key has none)."""
        items: list[dict[str, Any]] = self.data.get("townhalls", [])
        return items

    def townhall(self, townhall_id: str) -> dict[str, Any] | None:
        """The town hall with this id."""
        return next((t for t in self.townhalls if t["id"] == townhall_id), None)

    def events(self, collection: str) -> list[dict[str, Any]]:
        """The virtual events of one collection: ``webinars`` or ``townhalls``."""
        return self.townhalls if collection == "townhalls" else list(self.data["webinars"])

    def virtual_event(self, collection: str, event_id: str) -> dict[str, Any] | None:
        """A webinar or town hall by collection and id."""
        return self.townhall(event_id) if collection == "townhalls" else self.webinar(event_id)

    @staticmethod
    def organizer_id(webinar: dict[str, Any]) -> str:
        """The webinar organizer's object id."""
        return str(webinar["createdBy"]["user"]["id"])

    def meeting_id(self, webinar: dict[str, Any], session: dict[str, Any]) -> str:
        """The onlineMeeting id of a session: base64 of ``1*{organizer}*0**{threadId}``.

        A session whose id already is a meeting id (as in real tenants) keeps it.
        """
        try:
            if base64.b64decode(session["id"], validate=True).startswith(b"1*"):
                return str(session["id"])
        except (binascii.Error, ValueError):
            pass
        thread = (session.get("chatInfo") or {}).get("threadId")
        if not thread:
            tag = base64.b64encode(session["id"].encode()).decode().rstrip("=")
            thread = f"19:meeting_{tag}@thread.v2"
        raw = f"1*{self.organizer_id(webinar)}*0**{thread}"
        return base64.b64encode(raw.encode()).decode()

    def meetings_of(self, user_id: str) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
        """(webinar or town hall, session, meeting id) for every session the user organizes."""
        return [
            (w, s, self.meeting_id(w, s))
            for w in [*self.data["webinars"], *self.townhalls]
            if self.organizer_id(w) == user_id
            for s in w.get("sessions", [])
        ]

    def summary(self) -> dict[str, Any]:
        """A compact view of the state for ``GET /_emulator/state``."""
        return {
            "tenant": self.tenant["id"],
            "now": self.now().isoformat().replace("+00:00", "Z"),
            "tokens": len(self.tokens),
            "faults": self.faults.as_dict(),
            "requests": len(self.requests),
            "webinars": [
                {
                    "id": w["id"],
                    "status": w["status"],
                    "organizer": self.organizer_id(w),
                    "registrations": {r["id"]: r["status"] for r in w.get("registrations", [])},
                    "sessions": [s["id"] for s in w.get("sessions", [])],
                }
                for w in self.data["webinars"]
            ],
            "townhalls": [
                {
                    "id": t["id"],
                    "status": t["status"],
                    "organizer": self.organizer_id(t),
                    "sessions": [s["id"] for s in t.get("sessions", [])],
                }
                for t in self.townhalls
            ],
        }
