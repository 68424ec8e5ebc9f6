"""Reading a tenant's users, webinars and town halls from Graph into plain records (Graph's
virtual-event API; docs/teams.md says what is read).

Everything Graph-shaped stops here: ids stay opaque strings, Windows zones become IANA,
times become aware UTC datetimes, PascalCase roles and unknown enum values are normalised,
and Graph's quirks (summary sessions, reports only after a session ends, null
registration ids for organizers and presenters, zone names no table knows) are handled once.

A town hall (``/solutions/virtualEvents/townhalls``) reads like a webinar without
registrations: the same records, ``kind`` telling them apart.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import webvtt

from gatherly.core.exceptions import FatalSyncError, SkippableRecordError
from gatherly.core.timezones import parse_offset, read_date_time_zone
from gatherly.graph.client import GraphClient
from gatherly.graph.errors import GraphError, SyncStateGone
from gatherly.teams.models import KIND_LABELS, KIND_TOWNHALL, KIND_WEBINAR

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
# Where each kind of virtual event lives under /solutions/virtualEvents.
COLLECTIONS = {KIND_WEBINAR: "webinars", KIND_TOWNHALL: "townhalls"}


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


def _html(value: Any) -> str:
    """An itemBody as HTML: a ``text`` body is escaped, its line breaks kept. (The pages
    sanitise HTML before they show it.)"""
    content = _text(value)
    if isinstance(value, dict) and str(value.get("contentType", "")).lower() == "text":
        return html.escape(content).replace("\r\n", "\n").replace("\n", "<br>\n")
    return content


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
    """A webinar (or, ``kind`` ``townhall``, a town hall) as listed (W3) or fetched (W2).

    ``unknown_zone`` is the time-zone name Graph sent when no zone table knows it: the
    times were then read as UTC and ``time_zone`` keeps the raw name.
    """

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
    kind: str = KIND_WEBINAR
    unknown_zone: str | None = None

    @property
    def label(self) -> str:
        """``webinar`` or ``town hall``, for messages."""
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True)
class Interval:
    """One join → leave interval."""

    join_at: datetime
    leave_at: datetime
    seconds: int


@dataclass(frozen=True)
class AttendanceRecord:
    """One person in one attendance report (``id``: the record's Graph id, or its position
    in the report when Graph gave none)."""

    email: str | None
    display_name: str
    identity_id: str | None
    role: str
    registration_id: str | None
    intervals: tuple[Interval, ...]
    id: str = ""


@dataclass(frozen=True)
class Report:
    """One attendance report (one run of a session's meeting)."""

    id: str
    records: tuple[AttendanceRecord, ...]


@dataclass(frozen=True)
class Recording:
    """A callRecording's metadata (the bytes stay in Teams; ``content_url`` points at them)."""

    id: str
    meeting_id: str
    correlation_id: str | None
    created_at: datetime | None
    ended_at: datetime | None
    content_url: str | None


@dataclass(frozen=True)
class Cue:
    """One WebVTT cue: milliseconds from the start, the speaker (``<v>`` voice) and text."""

    start_ms: int
    end_ms: int
    speaker: str
    text: str


@dataclass(frozen=True)
class Transcript(Recording):
    """A callTranscript: a recording's metadata plus its VTT content, parsed into cues."""

    vtt: str
    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class Session:
    """A session with its attendance reports (empty until the meeting has ended)."""

    id: str
    subject: str
    start_at: datetime | None
    end_at: datetime | None
    join_url: str | None
    reports: tuple[Report, ...]
    recordings: tuple[Recording, ...] = ()
    transcripts: tuple[Transcript, ...] = ()


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
    # Recordings and transcripts Graph refused (402 metered, 403 policy or permission):
    # the webinar's other data still syncs, the run reports these.
    artifact_errors: list[str] = field(default_factory=list)
    # Time-zone names no table knows, met on the event's sessions (read as UTC; the run
    # says so): session subject -> the raw name.
    unknown_session_zones: dict[str, str] = field(default_factory=dict)


def parse_user(obj: dict[str, Any]) -> GraphUser:
    """A Graph user; the email is ``mail``, or the UPN for accounts without a mailbox."""
    email = normalize_email(obj.get("mail")) or normalize_email(obj.get("userPrincipalName"))
    return GraphUser(id=str(obj["id"]), display_name=str(obj.get("displayName") or ""), email=email)


def parse_webinar(obj: dict[str, Any], kind: str = KIND_WEBINAR) -> Webinar:
    """A virtualEventWebinar (or virtualEventTownhall, ``kind`` ``townhall``); unknown status
    values become ``other`` and unknown zone names are read as UTC (never a crash)."""
    if not obj.get("id"):
        raise SkippableRecordError(f"{KIND_LABELS.get(kind, kind)} without an id")
    start = read_date_time_zone(obj.get("startDateTime"))
    end = read_date_time_zone(obj.get("endDateTime"))
    organizer_id, organizer_name = _identity_id(obj.get("createdBy"))
    status = str(obj.get("status") or "")
    co_organizers = obj.get("coOrganizers") or []
    return Webinar(
        id=str(obj["id"]),
        display_name=str(obj.get("displayName") or ""),
        description=_html(obj.get("description")),
        status=status if status in WEBINAR_STATUSES else "other",
        start_at=start.at,
        end_at=end.at,
        time_zone=start.zone,
        organizer_id=organizer_id,
        organizer_name=organizer_name,
        co_organizer_ids=frozenset(
            str(c["id"]) for c in co_organizers if isinstance(c, dict) and c.get("id")
        ),
        audience=str(obj.get("audience") or ""),
        kind=kind,
        unknown_zone=start.unknown_zone or end.unknown_zone,
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


def parse_record(obj: dict[str, Any], position: int = 0) -> AttendanceRecord:
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
        id=str(obj.get("id") or f"#{position}"),
    )


def list_users(client: GraphClient) -> list[GraphUser]:
    """Every user of the tenant (``GET /users``, User.Read.All)."""
    return [parse_user(u) for u in client.paginate("/users")]


@dataclass
class DirectoryChanges:
    """What ``/users/delta`` said since the stored link: users added or changed (their current
    state), ids removed, and the link to ask from next time. ``restarted``: the stored link
    was refused (410) and the whole directory was read again."""

    users: list[DirectoryEntry]
    removed: list[str]
    delta_link: str
    restarted: bool = False


@dataclass(frozen=True)
class DirectoryEntry:
    """A user as one delta round told it: Graph sends a changed user with the properties
    that changed (and may send more), so ``None`` here means *not told*, never *empty*."""

    id: str
    display_name: str | None
    email: str | None


def directory_entry(obj: dict[str, Any], before: DirectoryEntry | None = None) -> DirectoryEntry:
    """A delta item read onto what the same round said before of the user (Graph may send a
    user twice in one round)."""
    name = str(obj.get("displayName") or "") if "displayName" in obj else None
    email = None
    if "mail" in obj or "userPrincipalName" in obj:
        email = normalize_email(obj.get("mail")) or normalize_email(obj.get("userPrincipalName"))
    return DirectoryEntry(
        id=str(obj["id"]),
        display_name=name if name is not None else (before.display_name if before else None),
        email=email if email is not None else (before.email if before else None),
    )


USER_FIELDS = "id,displayName,mail,userPrincipalName"


def directory_changes(client: GraphClient, delta_link: str | None) -> DirectoryChanges:
    """The directory's changes since ``delta_link`` (Graph's delta query on users), or every
    user when there is none. A link Graph no longer honours (410) starts over in full."""
    restarted = False
    if delta_link:
        try:
            return _read_delta(client, delta_link, None)
        except SyncStateGone:
            restarted = True
    changes = _read_delta(client, "/users/delta", {"$select": USER_FIELDS})
    changes.restarted = restarted
    return changes


def _read_delta(client: GraphClient, url: str, params: dict[str, Any] | None) -> DirectoryChanges:
    """One delta round, each user once in their last state (removed, or what was told)."""
    last: dict[str, DirectoryEntry | None] = {}  # None: removed
    link: Any = None
    for page in client.pages(url, params):
        for obj in page["value"]:
            if not isinstance(obj, dict) or not obj.get("id"):
                continue
            user_id = str(obj["id"])
            if "@removed" in obj:
                last[user_id] = None
            else:
                last[user_id] = directory_entry(obj, last.get(user_id))
        link = page.get("@odata.deltaLink")
    if not isinstance(link, str) or not link:
        raise FatalSyncError("Graph's directory delta ended without an @odata.deltaLink")
    users = [entry for entry in last.values() if entry is not None]
    removed = [user_id for user_id, entry in last.items() if entry is None]
    return DirectoryChanges(users=users, removed=removed, delta_link=link)


def tenant_events(client: GraphClient, kind: str = KIND_WEBINAR) -> list[Webinar]:
    """Every webinar (or town hall) of the tenant whose organizer holds the application access
    policy (W1: Graph leaves the others out without an error)."""
    path = _path("solutions", "virtualEvents", COLLECTIONS[kind])
    found = []
    for obj in client.paginate(path):
        try:
            found.append(parse_webinar(obj, kind))
        except SkippableRecordError:
            continue
    return found


def organizer_webinars(
    client: GraphClient, user_id: str, kind: str = KIND_WEBINAR
) -> list[Webinar]:
    """The webinars (or town halls) a user organizes (W3, ``getByUserIdAndRole``); 403s with
    the policy message when not granted."""
    path = _path(
        "solutions",
        "virtualEvents",
        COLLECTIONS[kind],
        f"getByUserIdAndRole(userId='{user_id}',role='organizer')",
    )
    return [parse_webinar(w, kind) for w in client.paginate(path)]


def get_webinar(client: GraphClient, webinar_id: str, kind: str = KIND_WEBINAR) -> Webinar:
    """One webinar (W2), or one town hall (``kind`` ``townhall``)."""
    return parse_webinar(
        client.get_json(_path("solutions", "virtualEvents", COLLECTIONS[kind], webinar_id)), kind
    )


def parse_vtt(text: str) -> tuple[Cue, ...]:
    """WebVTT (Teams' transcript format) → cues with speaker, times and text."""
    try:
        captions = webvtt.from_string(text)
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as exc:
        raise SkippableRecordError(f"transcript is not valid WebVTT: {exc}") from None
    return tuple(
        Cue(
            start_ms=c.start_time.in_milliseconds(),
            end_ms=c.end_time.in_milliseconds(),
            speaker=str(c.voice or "")[:300],
            text=str(c.text),
        )
        for c in captions.captions
    )


def _artifact_meta(obj: dict[str, Any], url_key: str) -> dict[str, Any]:
    return {
        "id": str(obj["id"]),
        "meeting_id": str(obj.get("meetingId") or ""),
        "correlation_id": obj.get("contentCorrelationId") or None,
        "created_at": parse_offset(obj.get("createdDateTime")),
        "ended_at": parse_offset(obj.get("endDateTime")),
        "content_url": obj.get(url_key) or None,
    }


def report_records(
    client: GraphClient, report_path: str, listed: dict[str, Any]
) -> list[dict[str, Any]]:
    """A report's attendance records: one A2 call with ``$expand=attendanceRecords``
    (following ``attendanceRecords@odata.nextLink`` if Graph pages the expansion).

    Graph does not document a cap on the expansion, so the result is checked against the
    report's ``totalParticipantCount``: if fewer came back, the records endpoint (A3) is
    paged instead — never lose attendance to a silent truncation.
    """
    body = client.get_json(report_path, {"$expand": "attendanceRecords"})
    records = body.get("attendanceRecords")
    if isinstance(records, list):
        records = list(records)
        next_link = body.get("attendanceRecords@odata.nextLink")
        if isinstance(next_link, str) and next_link:
            records.extend(client.paginate(next_link))
        expected = listed.get("totalParticipantCount", body.get("totalParticipantCount"))
        if not isinstance(expected, int) or len(records) >= expected:
            return records
    return list(client.paginate(f"{report_path}/attendanceRecords"))


def fetch_artifacts(
    client: GraphClient, organizer_id: str, join_url: str
) -> tuple[tuple[Recording, ...], tuple[Transcript, ...]]:
    """A session's recordings and transcripts, found through its online meeting."""
    odata_url = join_url.replace("'", "''")
    meetings = list(
        client.paginate(
            _path("users", organizer_id, "onlineMeetings"),
            {"$filter": f"JoinWebUrl eq '{odata_url}'"},
        )
    )
    if not meetings or not meetings[0].get("id"):
        return (), ()
    meeting = _path("users", organizer_id, "onlineMeetings", str(meetings[0]["id"]))
    recordings = tuple(
        Recording(**_artifact_meta(r, "recordingContentUrl"))
        for r in client.paginate(f"{meeting}/recordings")
        if r.get("id")
    )
    transcripts = []
    for t in client.paginate(f"{meeting}/transcripts"):
        if not t.get("id"):
            continue
        content_path = f"{meeting}/transcripts/{quote(str(t['id']), safe='@')}/content"
        vtt = client.get_bytes(content_path, {"$format": "text/vtt"}).decode("utf-8", "replace")
        meta = _artifact_meta(t, "transcriptContentUrl")
        transcripts.append(Transcript(**meta, vtt=vtt, cues=parse_vtt(vtt)))
    return recordings, tuple(transcripts)


def fetch_webinar(
    client: GraphClient, webinar: Webinar, *, now: datetime, artifacts: bool = False
) -> WebinarData:
    """Registrations, full sessions and the attendance of every started session, plus
    recordings and transcripts when ``artifacts`` (the organizer's T11 setting).

    Sessions not yet started are not asked for reports or artifacts: none can exist. A town
    hall has no registrations (people are invited or join openly): none are asked for.
    """
    base = ("solutions", "virtualEvents", COLLECTIONS[webinar.kind], webinar.id)
    data = WebinarData(webinar=webinar)
    if webinar.kind != KIND_TOWNHALL:
        data.registrations = [
            parse_registration(r) for r in client.paginate(_path(*base, "registrations"))
        ]
    for summary in client.paginate(_path(*base, "sessions")):
        if not summary.get("id"):
            continue
        session_id = str(summary["id"])
        full = client.get_json(_path(*base, "sessions", session_id))  # S1 is a summary only
        start = read_date_time_zone(full.get("startDateTime"))
        end = read_date_time_zone(full.get("endDateTime"))
        start_at, end_at = start.at, end.at
        if start.unknown_zone or end.unknown_zone:
            subject = str(full.get("subject") or session_id)
            data.unknown_session_zones[subject] = str(start.unknown_zone or end.unknown_zone)
        reports: list[Report] = []
        if start_at is None or start_at <= now:
            report_base = (*base, "sessions", session_id, "attendanceReports")
            seen: set[str] = set()
            for report in client.paginate(_path(*report_base)):
                report_id = str(report.get("id") or "")
                if not report_id or report_id in seen:
                    continue  # Graph may list a report twice: dedupe by id
                seen.add(report_id)
                records = report_records(client, _path(*report_base, report_id), report)
                reports.append(
                    Report(
                        id=report_id,
                        records=tuple(parse_record(r, n) for n, r in enumerate(records)),
                    )
                )
        join_url = full.get("joinWebUrl") or None
        recordings: tuple[Recording, ...] = ()
        transcripts: tuple[Transcript, ...] = ()
        started = start_at is None or start_at <= now
        if artifacts and started and join_url and webinar.organizer_id:
            try:
                recordings, transcripts = fetch_artifacts(client, webinar.organizer_id, join_url)
            except GraphError as exc:
                data.artifact_errors.append(
                    f"session {summary.get('subject') or session_id}: {exc}"
                )
        data.sessions.append(
            Session(
                id=session_id,
                subject=str(full.get("subject") or "")[:500],
                start_at=start_at,
                end_at=end_at,
                join_url=join_url,
                reports=tuple(reports),
                recordings=recordings,
                transcripts=transcripts,
            )
        )
    return data
