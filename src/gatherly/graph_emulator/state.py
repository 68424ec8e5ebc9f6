"""The emulator's mutable world: fixture data, tokens, the clock, faults and the request log;
the directory's index and change sequence (for ``/users/delta``) and the change-notification
subscriptions with their notifier."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import pickle
import random
import secrets
from collections.abc import KeysView
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gatherly.graph_emulator.fixture import FixtureError, validate_fixture
from gatherly.graph_emulator.notifier import DeliverySettings, Notifier

if TYPE_CHECKING:
    from gatherly.graph_emulator.subscriptions import Subscription

TOKEN_LIFETIME = 3599
FAULT_KINDS = ("429", "503", "504", "402", "slow", "drop", "expired_token")
POLICY_CODE = "Forbidden"
POLICY_MESSAGE = "No Application Access Policy found for this app"
DELTA_RETENTION = timedelta(days=30)


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


@dataclass(frozen=True)
class DeltaCursor:
    """Where a ``/users/delta`` round stands: changes after ``since`` (None: a full sync) up
    to ``upto`` (the change sequence when the round began), ids after ``after`` still to come."""

    since: int | None
    upto: int
    after: str
    issued: float  # emulator time (POSIX seconds) the round's token was issued


class DeltaTokenError(Exception):
    """A delta or skip token that is malformed, from before a reset or expiry, or too old."""


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
        delta_retention: timedelta = DELTA_RETENTION,
        delivery: DeliverySettings | None = None,
    ) -> None:
        validate_fixture(fixture)
        # A pickle of our own validated data (never outside input): copies a 50,000-user
        # tenant on every reset several times faster than copy.deepcopy.
        self._original = pickle.dumps(fixture)
        self.page_size = page_size
        # Cut $expand=attendanceRecords at this many records (None: all), as a capped
        # Graph expansion would.
        self.expand_limit: int | None = None
        self.report_lag_seconds = report_lag_seconds
        self.policy_code = policy_code
        self.policy_message = policy_message
        # Delta tokens older than this (emulator clock) answer 410 syncStateNotFound.
        self.delta_retention = delta_retention
        self._delivery = delivery or DeliverySettings()
        self.notifier = Notifier(replace(self._delivery), self.now)
        self.reset()

    def reset(self) -> None:
        """Back to the fixture as loaded: no tokens, no faults, empty log, real time; no
        subscriptions, no pending notifications, a fresh directory change sequence."""
        self.data: dict[str, Any] = pickle.loads(self._original)  # noqa: S301 (our own bytes)
        self.tokens: dict[str, Token] = {}
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self.clock_offset = timedelta()
        self.subscriptions: dict[str, Subscription] = {}
        self.notifier.reset(replace(self._delivery))
        self._index_users()

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

    def _index_users(self) -> None:
        """Index the directory: by id, by lower-cased id and UPN, in id order; no changes yet."""
        users: list[dict[str, Any]] = self.data["users"]
        # The dicts themselves (not copies): a change to one shows in the index at once.
        self._users: dict[str, dict[str, Any]] = {u["id"]: u for u in users}
        self._keys: dict[str, str] = {}
        for u in users:
            self._keys[u["id"].lower()] = u["id"]
            self._keys[u["userPrincipalName"].lower()] = u["id"]
        self._ids: list[str] = sorted(self._users)
        self._sorted: list[dict[str, Any]] | None = None
        self._sequence = 0  # the directory change sequence; fixture users are at 0
        self._stamps: dict[str, int] = {}  # user id -> sequence of its last directory change
        # As Graph does, a delta round sends a user changed (not added) since its token with
        # the properties that changed: user id -> sequence it was added at, and
        # user id -> property -> sequence of its last change.
        self._added: dict[str, int] = {}
        self._property_seqs: dict[str, dict[str, int]] = {}
        self._tombstones: dict[str, int] = {}  # removed user id -> sequence of the removal
        self._change_seqs: list[int] = []  # (sequence, id) of every change, in order
        self._change_ids: list[str] = []
        self._delta_epoch = secrets.token_hex(6)  # tokens of another epoch answer 410

    def _lookup(self, user_id: str) -> dict[str, Any] | None:
        found = self._users.get(user_id)
        if found is None and (key := self._keys.get(user_id.lower())) is not None:
            found = self._users.get(key)
        return found

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user with this object id (or userPrincipalName), in any case; a copy."""
        found = self._lookup(user_id)
        return None if found is None else dict(found)

    def granted(self, user_id: str) -> bool:
        """Whether the user holds an application access policy."""
        u = self._lookup(user_id)
        return u is not None and u.get("applicationAccessPolicy") is not None

    def user_ids(self) -> KeysView[str]:
        """The ids of the directory's users (a live view)."""
        return self._users.keys()

    def users_sorted(self) -> list[dict[str, Any]]:
        """The directory's users in id order (cached until the directory changes)."""
        if self._sorted is None:
            self._sorted = [self._users[i] for i in self._ids]
        return self._sorted

    def _changed(self, user_id: str) -> int:
        """Record a directory change of the user; its sequence number."""
        self._sequence += 1
        self._change_seqs.append(self._sequence)
        self._change_ids.append(user_id)
        return self._sequence

    def add_user(self, user: dict[str, Any]) -> None:
        """Add a validated user: a directory change. Raises FixtureError on a taken id or UPN."""
        if user["id"] in self._users or user["id"].lower() in self._keys:
            raise FixtureError(f"id: duplicate id {user['id']!r}")
        if user["userPrincipalName"].lower() in self._keys:
            raise FixtureError(f"userPrincipalName: {user['userPrincipalName']!r} is taken")
        self.data["users"].append(user)
        self._users[user["id"]] = user
        self._keys[user["id"].lower()] = user["id"]
        self._keys[user["userPrincipalName"].lower()] = user["id"]
        bisect.insort(self._ids, user["id"])
        self._sorted = None
        self._tombstones.pop(user["id"], None)
        self._stamps[user["id"]] = self._added[user["id"]] = self._changed(user["id"])
        self._property_seqs.pop(user["id"], None)

    def update_user(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply validated property changes; any change but the access policy is a directory
        change. Raises LookupError for an unknown id, FixtureError for a taken UPN."""
        user = self._users.get(user_id)
        if user is None:
            raise LookupError(f"no user {user_id!r}")
        upn = changes.get("userPrincipalName", user["userPrincipalName"])
        if upn.lower() != user["userPrincipalName"].lower():
            if upn.lower() in self._keys:
                raise FixtureError(f"userPrincipalName: {upn!r} is taken")
            del self._keys[user["userPrincipalName"].lower()]
            self._keys[upn.lower()] = user_id
        # Granting or revoking a Teams access policy is not a directory (Entra) change.
        directory = any(
            user.get(k) != v for k, v in changes.items() if k != "applicationAccessPolicy"
        )
        changed = [
            k for k, v in changes.items() if k != "applicationAccessPolicy" and user.get(k) != v
        ]
        user.update(changes)
        if directory:
            self._stamps[user_id] = self._changed(user_id)
            seqs = self._property_seqs.setdefault(user_id, {})
            for key in changed:
                seqs[key] = self._stamps[user_id]
        return user

    def changed_properties(self, user_id: str, since: int | None) -> set[str] | None:
        """What a delta round after ``since`` tells of the user: None for everything (a full
        round, or a user added since), else the properties changed since."""
        if since is None or self._added.get(user_id, 0) > since:
            return None
        return {k for k, seq in self._property_seqs.get(user_id, {}).items() if seq > since}

    def remove_user(self, user_id: str) -> None:
        """Remove a user: delta shows it as ``@removed``. Raises LookupError for an unknown id."""
        user = self._users.pop(user_id, None)
        if user is None:
            raise LookupError(f"no user {user_id!r}")
        users: list[dict[str, Any]] = self.data["users"]
        del users[next(i for i, u in enumerate(users) if u is user)]
        del self._keys[user_id.lower()]
        self._keys.pop(user["userPrincipalName"].lower(), None)
        del self._ids[bisect.bisect_left(self._ids, user_id)]
        self._sorted = None
        self._stamps.pop(user_id, None)
        self._tombstones[user_id] = self._changed(user_id)

    # ------------------------------------------------------------ directory delta

    def expire_delta_tokens(self) -> None:
        """Make every delta and skip token issued so far answer 410."""
        self._delta_epoch = secrets.token_hex(6)

    def delta_start(self, token: str | None) -> DeltaCursor:
        """The first page of a round: a full sync (no token) or the changes since a token.

        Raises DeltaTokenError for a malformed, expired or foreign token."""
        now = self.now().timestamp()
        if token is None:
            return DeltaCursor(None, self._sequence, "", now)
        claims = self._claims(token, "d")
        try:
            return DeltaCursor(int(claims["s"]), self._sequence, "", now)
        except (KeyError, TypeError, ValueError):
            raise DeltaTokenError("malformed token") from None

    def delta_resume(self, skiptoken: str) -> DeltaCursor:
        """The cursor a ``$skiptoken`` of a nextLink carries (DeltaTokenError as above)."""
        c = self._claims(skiptoken, "p")
        try:
            since = None if c["s"] is None else int(c["s"])
            return DeltaCursor(since, int(c["u"]), str(c["a"]), float(c["t"]))
        except (KeyError, TypeError, ValueError):
            raise DeltaTokenError("malformed token") from None

    def delta_token(self, cursor: DeltaCursor | None = None) -> str:
        """The ``$deltatoken`` of a deltaLink: changes after ``cursor.upto`` (or after now)."""
        upto = self._sequence if cursor is None else cursor.upto
        return self._encode({"k": "d", "s": upto, "t": self.now().timestamp()})

    def skip_token(self, cursor: DeltaCursor) -> str:
        """The ``$skiptoken`` of a nextLink continuing ``cursor``."""
        c = cursor
        return self._encode({"k": "p", "s": c.since, "u": c.upto, "a": c.after, "t": c.issued})

    def _encode(self, claims: dict[str, Any]) -> str:
        raw = json.dumps({**claims, "e": self._delta_epoch}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _claims(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            ok = isinstance(claims, dict) and claims.get("k") == kind
            issued = float(claims["t"]) if ok else 0.0
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise DeltaTokenError("malformed token") from None
        if not ok or claims.get("e") != self._delta_epoch:
            raise DeltaTokenError("token of another sync state")
        if issued < (self.now() - self.delta_retention).timestamp():
            raise DeltaTokenError("token older than the delta retention")
        return dict(claims)

    def delta_page(
        self, cursor: DeltaCursor, size: int
    ) -> tuple[list[tuple[str, dict[str, Any] | None]], DeltaCursor | None]:
        """One page of a round: (user id, the user or None when removed) in id order, and the
        cursor of the next page (None on the last page)."""
        if cursor.since is None:  # a full sync: every user as of the round's start
            ids: list[str] = self._ids
            start = bisect.bisect_right(ids, cursor.after) if cursor.after else 0
        else:
            lo = bisect.bisect_right(self._change_seqs, cursor.since)
            hi = bisect.bisect_right(self._change_seqs, cursor.upto)
            ids = sorted(set(self._change_ids[lo:hi]))
            start = bisect.bisect_right(ids, cursor.after) if cursor.after else 0
        low = -1 if cursor.since is None else cursor.since
        page: list[tuple[str, dict[str, Any] | None]] = []
        index = start
        while index < len(ids) and len(page) < size:
            user_id = ids[index]
            index += 1
            # Changed again after the round began: the next round carries its latest state.
            if (user := self._users.get(user_id)) is not None:
                if low < self._stamps.get(user_id, 0) <= cursor.upto:
                    page.append((user_id, user))
            elif low < self._tombstones.get(user_id, -1) <= cursor.upto:
                page.append((user_id, None))
        if index >= len(ids):
            return page, None
        return page, replace(cursor, after=ids[index - 1])

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
            "users": len(self._users),
            "subscriptions": len(self.subscriptions),
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
