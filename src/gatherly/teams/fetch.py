"""Reading a tenant's users and webinars from Graph into plain records (reference §2, §6).

Everything Graph-shaped stops here: ids stay opaque strings, Windows zones become IANA,
times become aware UTC datetimes, PascalCase roles and unknown enum values are normalised,
and the quirks of §6 (summary sessions, reports only after a session ends, null
registration ids for organizers and presenters) are handled once.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from gatherly.core.exceptions import SkippableRecordError
from gatherly.core.timezones import parse_date_time_zone, parse_offset
from gatherly.graph.client import GraphClient

# Needed for any sync: webinars and registrations, attendance, and the organizer list.
REQUIRED_PERMISSIONS = ("VirtualEvent.Read.All", "OnlineMeetingArtifact.Read.All", "User.Read.All")
# Needed only for recordings and transcripts (T11); without them the install is "limited".
RECORDING_PERMISSIONS = (
    "OnlineMeetings.Read.All",
    "OnlineMeetingRecording.Read.All",
    "OnlineMeetingTranscript.Read.All",
)
WEBINAR_STATUSES = ("draft", "published", "canceled")
REGISTRATION_STATUSES = (
    "registered",
    "canceled",
    "waitlisted",
    "pendingApproval",
    "rejectedByOrganizer",
)
ROLES = ("Organizer", "Presenter", "Attendee", "None")


def normalize_email(value: Any) -> str | None:
    """Trim and case-fold an email; None when there is none (people are keyed by this)."""
    if not isinstance(value, str):
        return None
    text = value.strip().casefold()
    return text or None


def email_domain(email: str | None) -> str | None:
    """The domain part of a normalised email."""
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1]


def token_permissions(token: str) -> list[str] | None:
    """The application permissions (``roles`` claim) of an app-only token; None if opaque."""
    parts = token.split(".")
    if len(parts) < 2:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    if not isinstance(roles, list):
        return []
    return sorted(str(r) for r in roles)


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="@") for s in segments)


def _text(value: Any) -> str:
    """An itemBody's content (or a bare string, as the list-webinar doc sample shows)."""
    if isinstance(value, dict):
        return str(value.get("content") or "")
    return value if isinstance(value, str) else ""


def _identity_id(identity_set: Any) -> tuple[str | None, str]:
    user = identity_set.get("user") if isinstance(identity_set, dict) else None
    if not isinstance(user, dict):
        return None, ""
    return (str(user["id"]) if user.get("id") else None), str(user.get("displayName") or "")


@dataclass(frozen=True)
class GraphUser:
    """A directory user who may organize webinars."""

    id: str
    display_name: str
    email: str | None


@dataclass(frozen=True)
class Webinar:
    """A webinar as listed (W3) or fetched (W2)."""

    id: str
    display_name: str
    description: str
    status: str
    start_at: datetime | None
    end_at: datetime | None
    time_zone: str
    organizer_id: str | None
    organizer_name: str
    co_organizer_ids: frozenset[str]
    audience: str


@dataclass(frozen=True)
class Interval:
    """One join → leave interval."""

    join_at: datetime
    leave_at: datetime
    seconds: int


@dataclass(frozen=True)
class AttendanceRecord:
    """One person in one attendance report."""

    email: str | None
    display_name: str
    identity_id: str | None
    role: str
    registration_id: str | None
    intervals: tuple[Interval, ...]


@dataclass(frozen=True)
class Report:
    """One attendance report (one run of a session's meeting)."""

    id: str
    records: tuple[AttendanceRecord, ...]


@dataclass(frozen=True)
class Session:
    """A session with its attendance reports (empty until the meeting has ended)."""

    id: str
    subject: str
    start_at: datetime | None
    end_at: datetime | None
    join_url: str | None
    reports: tuple[Report, ...]


@dataclass(frozen=True)
class Registration:
    """A registration with its current status."""

    id: str
    email: str | None
    first_name: str
    last_name: str
    user_id: str | None
    status: str
    registered_at: datetime | None
    canceled_at: datetime | None


@dataclass
class WebinarData:
    """Everything the sync needs about one webinar, fetched before anything is written."""

    webinar: Webinar
    sessions: list[Session] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)


def parse_user(obj: dict[str, Any]) -> GraphUser:
    """A Graph user; the email is ``mail``, or the UPN for accounts without a mailbox."""
    email = normalize_email(obj.get("mail")) or normalize_email(obj.get("userPrincipalName"))
    return GraphUser(id=str(obj["id"]), display_name=str(obj.get("displayName") or ""), email=email)


def parse_webinar(obj: dict[str, Any]) -> Webinar:
    """A virtualEventWebinar; unknown status values become ``other`` (never a crash)."""
    if not obj.get("id"):
        raise SkippableRecordError("webinar without an id")
    start_at, zone = parse_date_time_zone(obj.get("startDateTime"))
    end_at, _ = parse_date_time_zone(obj.get("endDateTime"))
    organizer_id, organizer_name = _identity_id(obj.get("createdBy"))
    status = str(obj.get("status") or "")
    co_organizers = obj.get("coOrganizers") or []
    return Webinar(
        id=str(obj["id"]),
        display_name=str(obj.get("displayName") or ""),
        description=_text(obj.get("description")),
        status=status if status in WEBINAR_STATUSES else "other",
        start_at=start_at,
        end_at=end_at,
        time_zone=zone,
        organizer_id=organizer_id,
        organizer_name=organizer_name,
        co_organizer_ids=frozenset(
            str(c["id"]) for c in co_organizers if isinstance(c, dict) and c.get("id")
        ),
        audience=str(obj.get("audience") or ""),
    )


def parse_registration(obj: dict[str, Any]) -> Registration:
    """A virtualEventRegistration (cancellations are registrations with status canceled)."""
    if not obj.get("id"):
        raise SkippableRecordError("registration without an id")
    status = str(obj.get("status") or "")
    return Registration(
        id=str(obj["id"]),
        email=normalize_email(obj.get("email")),
        first_name=str(obj.get("firstName") or "")[:100],
        last_name=str(obj.get("lastName") or "")[:100],
        user_id=str(obj["userId"]) if obj.get("userId") else None,
        status=status if status in REGISTRATION_STATUSES else "other",
        registered_at=parse_offset(obj.get("registrationDateTime")),
        canceled_at=parse_offset(obj.get("cancelationDateTime")),
    )


def parse_record(obj: dict[str, Any]) -> AttendanceRecord:
    """An attendanceRecord; ``role`` is PascalCase and a free string in Graph."""
    raw_identity = obj.get("identity")
    identity: dict[str, Any] = raw_identity if isinstance(raw_identity, dict) else {}
    role = str(obj.get("role") or "None")
    matched = next((r for r in ROLES if r.lower() == role.lower()), "None")
    intervals = []
    for raw in obj.get("attendanceIntervals") or []:
        join_at = parse_offset(raw.get("joinDateTime"))
        leave_at = parse_offset(raw.get("leaveDateTime"))
        if join_at is None or leave_at is None:
            continue  # still in the meeting: the next report will carry the interval
        seconds = raw.get("durationInSeconds")
        if not isinstance(seconds, int) or seconds < 0:
            seconds = max(0, int((leave_at - join_at).total_seconds()))
        intervals.append(Interval(join_at=join_at, leave_at=leave_at, seconds=seconds))
    return AttendanceRecord(
        email=normalize_email(obj.get("emailAddress")),
        display_name=str(identity.get("displayName") or "")[:300],
        identity_id=str(identity["id"]) if identity.get("id") else None,
        role=matched,
        registration_id=str(obj["registrationId"]) if obj.get("registrationId") else None,
        intervals=tuple(sorted(intervals, key=lambda i: i.join_at)),
    )


def list_users(client: GraphClient) -> list[GraphUser]:
    """Every user of the tenant (``GET /users``, User.Read.All)."""
    return [parse_user(u) for u in client.paginate("/users")]


def organizer_webinars(client: GraphClient, user_id: str) -> list[Webinar]:
    """The webinars a user organizes (W3); 403s with the policy message when not granted."""
    path = _path(
        "solutions",
        "virtualEvents",
        "webinars",
        f"getByUserIdAndRole(userId='{user_id}',role='organizer')",
    )
    return [parse_webinar(w) for w in client.paginate(path)]


def get_webinar(client: GraphClient, webinar_id: str) -> Webinar:
    """One webinar (W2)."""
    return parse_webinar(
        client.get_json(_path("solutions", "virtualEvents", "webinars", webinar_id))
    )


def fetch_webinar(client: GraphClient, webinar: Webinar, *, now: datetime) -> WebinarData:
    """Registrations, full sessions and the attendance of every started session.

    Sessions not yet started are not asked for reports: none can exist (§6.3).
    """
    base = ("solutions", "virtualEvents", "webinars", webinar.id)
    data = WebinarData(webinar=webinar)
    data.registrations = [
        parse_registration(r) for r in client.paginate(_path(*base, "registrations"))
    ]
    for summary in client.paginate(_path(*base, "sessions")):
        if not summary.get("id"):
            continue
        session_id = str(summary["id"])
        full = client.get_json(_path(*base, "sessions", session_id))  # S1 is a summary only
        start_at, _ = parse_date_time_zone(full.get("startDateTime"))
        end_at, _ = parse_date_time_zone(full.get("endDateTime"))
        reports: list[Report] = []
        if start_at is None or start_at <= now:
            report_base = (*base, "sessions", session_id, "attendanceReports")
            seen: set[str] = set()
            for report in client.paginate(_path(*report_base)):
                report_id = str(report.get("id") or "")
                if not report_id or report_id in seen:
                    continue  # §6.4: dedupe reports by id
                seen.add(report_id)
                records = client.paginate(_path(*report_base, report_id, "attendanceRecords"))
                reports.append(
                    Report(id=report_id, records=tuple(parse_record(r) for r in records))
                )
        data.sessions.append(
            Session(
                id=session_id,
                subject=str(full.get("subject") or "")[:500],
                start_at=start_at,
                end_at=end_at,
                join_url=full.get("joinWebUrl") or None,
                reports=tuple(reports),
            )
        )
    return data
