"""Generate ``examples/sample-tenant.json``: a deterministic Graph-emulator fixture.

Standard library only and seeded, so re-running it reproduces the file byte for byte::

    python examples/make_sample_tenant.py            # writes examples/sample-tenant.json
    python examples/make_sample_tenant.py OUT.json   # writes elsewhere

Every webinar, town hall, session, registration, attendance report/record, recording and
transcript is in Microsoft Graph v1.0's own JSON shape (see docs/graph-emulator.md). The
town halls draw on their own seeded stream (``SEED + 1``), so adding them left every webinar
exactly as it was. The scenario is
built around a fixed reference "now", ``REFERENCE_NOW`` (2026-11-20T12:00:00Z): webinars
before it are past (with attendance), one session is running at that instant, later ones
are future. All dates lie between 2026-11-02 and 2027-03-07, when none of the zones used
observes daylight saving time, so the fixed standard offsets below are exact.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261120
REFERENCE_NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
_WINDOW_START = datetime(2026, 11, 2, tzinfo=UTC)  # US DST ended 2026-11-01
_WINDOW_END = datetime(2027, 3, 7, tzinfo=UTC)  # US DST starts 2027-03-14, EU 2027-03-28

# Windows zone name -> standard UTC offset in hours (valid inside the window above).
ZONE_OFFSETS: dict[str, int] = {
    "Pacific Standard Time": -8,
    "Eastern Standard Time": -5,
    "GMT Standard Time": 0,
    "W. Europe Standard Time": 1,
    "Tokyo Standard Time": 9,
    "UTC": 0,
}

WEBINAR_CANCELED_AT = datetime(2026, 11, 17, 8, 30, tzinfo=UTC)
INTERNAL_DOMAIN = "contoso.example"
AGENCY_DOMAIN = "partner-agency.example"
POLICY_NAME = "Webinar-Sync"

# Application permissions the connector needs (reference §1.2).
FULL_PERMISSIONS = [
    "VirtualEvent.Read.All",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetingRecording.Read.All",
    "OnlineMeetingTranscript.Read.All",
    "OnlineMeetings.Read.All",
    "User.Read.All",
]
LIMITED_PERMISSIONS = [
    p
    for p in FULL_PERMISSIONS
    if p not in ("OnlineMeetingRecording.Read.All", "OnlineMeetingTranscript.Read.All")
]

FIRST_NAMES = [
    "Aiko", "Jordan", "Lena", "Mateo", "Priyanka", "Oliver", "Sofía", "Hiroshi", "Amara",
    "Lukas", "Chloé", "Diego", "Fatima", "Noah", "Ingrid", "Kwame", "Yuki", "Elena",
    "Samuel", "Zoë", "Ravi", "Hannah", "Björn", "Camila", "Tariq", "Mia", "Jonas", "Leila",
    "Patrick", "Nadia", "Emil", "Grace", "Kenta", "Laura", "Omar", "Freya",
]  # fmt: skip
LAST_NAMES = [
    "Tanaka", "Miller", "Schmidt", "García", "Okafor", "Dubois", "Nakamura", "Jensen",
    "Rossi", "Kowalski", "Haddad", "Brennan", "Virtanen", "Costa", "Müller", "Yamamoto",
    "Andersen", "Silva", "O'Neill", "Fischer", "Kaur", "Novak", "Lindgren", "Moreau",
]  # fmt: skip
EXTERNAL_DOMAINS = [
    "fabrikam.example", "northwind.example", "adatum.example", "tailspin.example",
    "woodgrove.example", "litware.example", "wingtip.example", "mailbox.example",
]  # fmt: skip
LANGUAGES = ["en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "es-ES"]
REFERRERS = ["newsletter-nov", "linkedin-ads", "partner-referral", "website-banner"]

# ``MP4`` ftyp box + empty free box: a tiny, recognisable stand-in for a recording.
TINY_MP4 = (
    (24).to_bytes(4, "big")
    + b"ftypisom"
    + (512).to_bytes(4, "big")
    + b"isommp41"
    + (8).to_bytes(4, "big")
    + b"free"
)


class Gen:
    """All randomness flows through one seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def secs(self, lo: float, hi: float) -> timedelta:
        """Random duration with 100 ns resolution (Graph's 7 fractional digits)."""
        ticks = self.rng.randint(int(lo * 10_000_000), int(hi * 10_000_000))
        return timedelta(microseconds=ticks // 10)


# --- formatting -----------------------------------------------------------------------


def dto7(value: datetime) -> str:
    """DateTimeOffset as Graph formats it: UTC, 7 fractional digits, ``Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def dto3(value: datetime) -> str:
    """Attendance-report style: milliseconds, trailing zeros trimmed."""
    value = value.astimezone(UTC)
    frac = f"{value.microsecond // 1000:03d}".rstrip("0")
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def dto0(value: datetime) -> str:
    """Whole-second DateTimeOffset (registrationDateTime / cancelationDateTime)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dttz(value: datetime, zone: str, *, ticks: bool = False) -> dict[str, str]:
    """dateTimeTimeZone: local wall time in a Windows zone, no offset."""
    if not _WINDOW_START <= value <= _WINDOW_END:
        raise ValueError(f"{value} is outside the DST-free window")
    local = value.astimezone(UTC) + timedelta(hours=ZONE_OFFSETS[zone])
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (".0000000" if ticks else "")
    return {"dateTime": text, "timeZone": zone}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b64_bare(text: str) -> str:
    return b64(text).rstrip("=")


# --- builders -------------------------------------------------------------------------


def user_identity(user: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.communicationsUserIdentity",
        "id": user["id"],
        "displayName": user["displayName"],
        "tenantId": tenant_id,
    }


def co_organizer(user: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    return {"id": user["id"], "displayName": user["displayName"], "tenantId": tenant_id}


def make_session(
    g: Gen,
    *,
    tenant_id: str,
    organizer: dict[str, Any],
    subject: str,
    start: datetime,
    end: datetime,
    zone: str,
    allow_recording: bool,
    allow_transcription: bool,
    capacity: int | None,
) -> dict[str, Any]:
    thread = f"19:meeting_{b64_bare(g.guid())}@thread.v2"
    meeting_id = b64(f"1*{organizer['id']}*0**{thread}")
    context = (
        "%7b%22Tid%22%3a%22" + tenant_id + "%22%2c%22Oid%22%3a%22" + organizer["id"] + "%22%7d"
    )
    thread_url = thread.replace(":", "%3a").replace("@", "%40")
    join_url = f"https://teams.microsoft.com/l/meetup-join/{thread_url}/0?context={context}"
    return {
        "@odata.type": "#microsoft.graph.virtualEventSession",
        "id": meeting_id,
        "subject": subject,
        "startDateTime": dttz(start, zone, ticks=True),
        "endDateTime": dttz(end, zone, ticks=True),
        "joinWebUrl": join_url,
        "videoOnDemandWebUrl": None,
        "capacity": capacity,
        "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
        "joinMeetingIdSettings": {
            "joinMeetingId": str(g.rng.randint(200_000_000_000, 499_999_999_999)),
            "passcode": b64_bare(g.guid())[:6],
            "isPasscodeRequired": False,
        },
        "allowAttendeeToEnableCamera": False,
        "allowAttendeeToEnableMic": False,
        "allowRecording": allow_recording,
        "allowTranscription": allow_transcription,
        "recordAutomatically": allow_recording,
        "allowedPresenters": "roleIsPresenter",
        "allowMeetingChat": "enabled",
        "allowedLobbyAdmitters": "organizerAndCoOrganizersAndPresenters",
        "shareMeetingChatHistoryDefault": "none",
        "isEntryExitAnnounced": False,
        "expiryDateTime": None,
        "attendanceReports": [],
        "recordings": [],
        "transcripts": [],
    }


def make_registration(
    g: Gen,
    person: dict[str, Any],
    *,
    status: str,
    registered_at: datetime,
    canceled_at: datetime | None,
    questions: list[dict[str, Any]],
) -> dict[str, Any]:
    answers = []
    for q in questions:
        answer: dict[str, Any] = {
            "questionId": q["id"],
            "displayName": q["displayName"],
            "value": None,
            "booleanValue": None,
            "multiChoiceValues": [],
        }
        if q["kind"] == "text":
            answer["value"] = person["jobTitle"]
        elif q["kind"] == "boolean":
            answer["displayName"] = None
            answer["booleanValue"] = g.rng.random() < 0.7
        else:
            answer["displayName"] = None
            answer["multiChoiceValues"] = sorted(
                g.rng.sample(q["choices"], g.rng.randint(1, len(q["choices"])))
            )
        answers.append(answer)
    external = None
    if g.rng.random() < 0.3:
        external = {
            "referrer": g.rng.choice(REFERRERS),
            "registrationId": f"hs-reg-{g.rng.randint(1, 999_999):06d}",
        }
    return {
        "@odata.type": "#microsoft.graph.virtualEventRegistration",
        "id": g.guid(),
        "userId": person.get("userId"),
        "firstName": person["firstName"],
        "lastName": person["lastName"],
        "email": person["regEmail"],
        "status": status,
        "registrationDateTime": dto0(registered_at),
        "cancelationDateTime": dto0(canceled_at) if canceled_at else None,
        "preferredTimezone": person["zone"],
        "preferredLanguage": person["language"],
        "registrationQuestionAnswers": answers,
        "externalRegistrationInformation": external,
    }


def make_record(
    g: Gen,
    *,
    email: str | None,
    display_name: str,
    identity_id: str,
    identity_tenant: str | None,
    role: str,
    registration: dict[str, Any] | None,
    intervals: list[tuple[datetime, datetime]],
) -> dict[str, Any]:
    rendered = []
    total = 0
    for join, leave in intervals:
        duration = int((leave - join).total_seconds())
        total += duration
        rendered.append(
            {
                "joinDateTime": dto7(join),
                "leaveDateTime": dto7(leave),
                "durationInSeconds": duration,
            }
        )
    return {
        "id": g.guid(),
        "emailAddress": email,
        "totalAttendanceInSeconds": total,
        "role": role,
        "registrantId": None,
        "registrationId": registration["id"] if registration else None,
        "identity": {"id": identity_id, "displayName": display_name, "tenantId": identity_tenant},
        "attendanceIntervals": rendered,
        "externalRegistrationInformation": (
            registration["externalRegistrationInformation"] if registration else None
        ),
    }


def intervals_for(
    g: Gen, start: datetime, end: datetime, pieces: int
) -> list[tuple[datetime, datetime]]:
    """``pieces`` disjoint join/leave intervals inside [start, end], in join order."""
    slot = (end - start) / pieces
    out = []
    for i in range(pieces):
        lo = start + slot * i
        span = slot.total_seconds()
        join = lo + g.secs(0, span * 0.4)
        leave = lo + g.secs(span * 0.55, span * 0.95)
        out.append((join, leave))
    return out


def make_vtt(speakers: list[str], lines: list[str]) -> str:
    cues = ["WEBVTT", ""]
    t = 0.0
    for i, text in enumerate(lines):
        dur = 3.0 + (len(text) % 7) * 0.61
        cues.append(f"{_vtt_time(t)} --> {_vtt_time(t + dur)}")
        cues.append(f"<v {speakers[i % len(speakers)]}>{text}</v>")
        cues.append("")
        t += dur + 0.4
    return "\n".join(cues)


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


TRANSCRIPT_LINES = [
    "Welcome everyone, thanks for joining us today.",
    "Before we start: this session is recorded and the slides will be shared afterwards.",
    "Let me hand over to our speaker for the first part.",
    "Thanks. I want to begin with what changed since the last release.",
    "Most of you asked about reporting, so that is where we will spend most of the time.",
    "There is a question in the chat about pricing; we will come back to it in the Q&A.",
    "Here is the dashboard you get out of the box.",
    "And this is how you filter it by region and by campaign.",
    "We have about ten minutes left, so let's open the floor for questions.",
    "Thank you all for coming, the recording will be in your inbox tomorrow.",
]


def build(seed: int = SEED) -> dict[str, Any]:
    g = Gen(seed)
    tenant_id = g.guid()

    def user(name: str, local: str, domain: str, policy: str | None) -> dict[str, Any]:
        mail = f"{local}@{domain}"
        return {
            "id": g.guid(),
            "displayName": name,
            "mail": mail,
            "userPrincipalName": mail,
            "applicationAccessPolicy": policy,
        }

    marta = user("Marta Lindqvist", "marta.lindqvist", INTERNAL_DOMAIN, POLICY_NAME)
    tomas = user("Tomas Berg", "tomas.berg", INTERNAL_DOMAIN, POLICY_NAME)
    priya = user("Priya Natarajan", "priya.natarajan", AGENCY_DOMAIN, POLICY_NAME)
    kenji = user("Kenji Sato", "kenji.sato", INTERNAL_DOMAIN, None)  # no access policy
    staff = [
        user("Anna Kowalczyk", "anna.kowalczyk", INTERNAL_DOMAIN, None),
        user("Ben Okoro", "ben.okoro", INTERNAL_DOMAIN, None),
        user("Clara Hoffmann", "clara.hoffmann", INTERNAL_DOMAIN, None),
        user("David Chen", "david.chen", INTERNAL_DOMAIN, None),
    ]
    presenter = user("Elif Demir", "elif.demir", INTERNAL_DOMAIN, None)
    users = [marta, tomas, priya, kenji, *staff, presenter]

    applications = [
        {"appId": g.guid(), "secret": "gatherly-sync~" + b64_bare(g.guid()), "permissions": list(FULL_PERMISSIONS)},
        {"appId": g.guid(), "secret": "limited-install~" + b64_bare(g.guid()), "permissions": list(LIMITED_PERMISSIONS)},
    ]  # fmt: skip

    # External people: a pool shared across webinars (same person, several webinars).
    people: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(people) < 230:
        first, last = g.rng.choice(FIRST_NAMES), g.rng.choice(LAST_NAMES)
        domain = g.rng.choice(EXTERNAL_DOMAINS)
        local = _ascii(f"{first}.{last}".lower()).replace("'", "")
        email = f"{local}@{domain}"
        if email in seen:
            continue
        seen.add(email)
        people.append(
            {
                "firstName": first,
                "lastName": last,
                "email": email,
                "regEmail": email,
                "attEmail": email,
                "userId": None,
                "zone": g.rng.choice(list(ZONE_OFFSETS)),
                "language": g.rng.choice(LANGUAGES),
                "jobTitle": g.rng.choice(
                    ["Marketing lead", "CTO", "Data analyst", "Consultant", "Student", "Owner"]
                ),
            }
        )
    # Mixed-case e-mail for the same person: typed one way at registration, another by Teams.
    for i, p in enumerate(people[:40]):
        mixed = _title_email(p["email"])
        if i % 2:
            p["regEmail"] = mixed
        else:
            p["attEmail"] = mixed
    staff_people = [
        {
            "firstName": u["displayName"].split()[0],
            "lastName": u["displayName"].split()[1],
            "email": u["mail"],
            "regEmail": u["mail"],
            "attEmail": u["mail"],
            "userId": u["id"],
            "user": u,
            "zone": "W. Europe Standard Time",
            "language": "en-US",
            "jobTitle": "Employee",
        }
        for u in staff
    ]

    def questions_for(kind: str) -> list[dict[str, Any]]:
        if kind == "none":
            return []
        qs = [
            {"id": g.guid(), "displayName": "Job title", "kind": "text"},
            {"id": g.guid(), "displayName": "Marketing consent", "kind": "boolean"},
        ]
        if kind == "full":
            qs.append(
                {
                    "id": g.guid(),
                    "displayName": "Interests",
                    "kind": "multi",
                    "choices": ["Analytics", "Automation", "Integrations", "Security"],
                }
            )
        return qs

    # (key, organizer, title, zone, session starts (UTC) + minutes, status, audience,
    #  registrants, co-organizers, questions)
    specs: list[dict[str, Any]] = [
        dict(key="w01", org=marta, title="Autumn Product Launch", zone="Pacific Standard Time",
             sessions=[(datetime(2026, 11, 4, 17, 0, tzinfo=UTC), 90)], n=60,
             co=[tomas], staff=[0, 1], questions="full", record=True, transcript=True,
             presenter=True, unregistered=True, anonymous=True),
        dict(key="w02", org=marta, title="Data Summit (two-day series)",
             zone="W. Europe Standard Time",
             sessions=[(datetime(2026, 11, 10, 9, 0, tzinfo=UTC), 120),
                       (datetime(2026, 11, 11, 9, 0, tzinfo=UTC), 120)], n=55,
             co=[], staff=[2], questions="basic", record=True, transcript=False,
             rejoin=True),
        dict(key="w03", org=tomas, title="APAC Partner Briefing", zone="Tokyo Standard Time",
             sessions=[(datetime(2026, 11, 12, 2, 0, tzinfo=UTC), 60)], n=35,
             co=[], staff=[], questions="basic", record=True, transcript=True,
             organizer_registers=True),
        dict(key="w04", org=priya, title="Agency Showcase: Campaign Playbooks",
             zone="Eastern Standard Time",
             sessions=[(datetime(2026, 11, 13, 15, 0, tzinfo=UTC), 60)], n=30,
             co=[marta], staff=[], questions="none"),
        dict(key="w05", org=kenji, title="Customer Roundtable (unlicensed organizer)",
             zone="GMT Standard Time",
             sessions=[(datetime(2026, 11, 16, 14, 0, tzinfo=UTC), 60)], n=25,
             co=[], staff=[3], questions="none", record=True, transcript=True),
        dict(key="w06", org=tomas, title="Internal Enablement: Q4 Messaging",
             zone="W. Europe Standard Time", audience="organization",
             sessions=[(datetime(2026, 11, 18, 10, 0, tzinfo=UTC), 45)], n=0,
             co=[], staff=[0, 1, 2, 3], questions="none"),
        dict(key="w07", org=marta, title="Live Now: Ask the Experts", zone="UTC",
             sessions=[(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), 120)], n=45,
             co=[tomas], staff=[1], questions="basic"),
        dict(key="w08", org=marta, title="Holiday Campaign Masterclass",
             zone="Pacific Standard Time",
             sessions=[(datetime(2026, 12, 3, 18, 0, tzinfo=UTC), 60)], n=50,
             co=[], staff=[], questions="full", waitlist=True),
        dict(key="w09", org=tomas, title="Winter Roadmap Preview (canceled)",
             zone="W. Europe Standard Time", status="canceled",
             sessions=[(datetime(2026, 12, 10, 13, 0, tzinfo=UTC), 60)], n=30,
             co=[], staff=[], questions="basic"),
        dict(key="w10", org=priya, title="2027 Planning Workshop (approval required)",
             zone="Eastern Standard Time",
             sessions=[(datetime(2027, 1, 14, 16, 0, tzinfo=UTC), 90)], n=28,
             co=[], staff=[], questions="basic", approval=True),
        dict(key="w11", org=kenji, title="Tokyo Office Open House", zone="Tokyo Standard Time",
             sessions=[(datetime(2026, 12, 1, 5, 0, tzinfo=UTC), 60)], n=18,
             co=[], staff=[], questions="none"),
        dict(key="w12", org=marta, title="Spring Launch (draft)", zone="Pacific Standard Time",
             status="draft",
             sessions=[(datetime(2027, 2, 24, 17, 0, tzinfo=UTC), 60)], n=0,
             co=[], staff=[], questions="none"),
    ]  # fmt: skip

    webinars = []
    for spec in specs:
        org = spec["org"]
        zone = spec["zone"]
        status = spec.get("status", "published")
        first_start = spec["sessions"][0][0]
        last_start, last_minutes = spec["sessions"][-1]
        webinar_id = f"{g.guid()}@{tenant_id}"
        questions = questions_for(spec["questions"])
        webinar: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.virtualEventWebinar",
            "id": webinar_id,
            "status": status,
            "displayName": spec["title"],
            "description": (
                {"contentType": "html", "content": f"<p>{spec['title']}: agenda and speakers.</p>"}
                if g.rng.random() < 0.5
                else {"contentType": "text", "content": f"{spec['title']}. Agenda to follow."}
            ),
            "startDateTime": dttz(first_start, zone),
            "endDateTime": dttz(last_start + timedelta(minutes=last_minutes), zone),
            "createdBy": {
                "application": None,
                "device": None,
                "user": user_identity(org, tenant_id),
            },
            "audience": spec.get("audience", "everyone"),
            "coOrganizers": [co_organizer(u, tenant_id) for u in spec["co"]],
            "settings": {"isAttendeeEmailNotificationEnabled": True},
            "isRegistrationRequired": spec["n"] > 0 or bool(spec["staff"]),
            "externalEventInformation": (
                [{"applicationId": applications[0]["appId"], "externalEventId": "hs-evt-1001"}]
                if spec["key"] == "w01"
                else []
            ),
            "registrations": [],
            "sessions": [],
        }

        # Registrations.
        chosen = g.rng.sample(people, spec["n"]) if spec["n"] else []
        chosen += [staff_people[i] for i in spec["staff"]]
        regs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        if spec.get("organizer_registers"):
            own = {
                "firstName": "Tomas",
                "lastName": "Berg",
                "email": org["mail"],
                "regEmail": "Tomas.Berg@Contoso.example",
                "attEmail": org["mail"],
                "userId": org["id"],
                "zone": zone,
                "language": "en-US",
                "jobTitle": "Partner manager",
            }
            chosen.append(own)
        for idx, person in enumerate(chosen):
            registered_at = first_start - timedelta(days=g.rng.randint(1, 20), seconds=g.rng.randint(0, 86_399))  # fmt: skip
            if registered_at > REFERENCE_NOW:
                registered_at = REFERENCE_NOW - timedelta(seconds=g.rng.randint(60, 86_400))
            canceled_at = None
            r = g.rng.random()
            reg_status = "registered"
            if status == "canceled":
                # The organizer canceled the webinar; Teams cancels every registration.
                reg_status = "canceled"
                canceled_at = WEBINAR_CANCELED_AT + timedelta(seconds=idx)
                registered_at = min(registered_at, WEBINAR_CANCELED_AT - timedelta(hours=1))
            elif person is chosen[-1] and spec.get("organizer_registers"):
                reg_status = "registered"
            elif spec.get("waitlist") and idx >= 42:
                reg_status = "waitlisted"
            elif spec.get("approval") and r < 0.25:
                reg_status = "pendingApproval"
            elif spec.get("approval") and r < 0.35:
                reg_status = "rejectedByOrganizer"
            elif r < 0.1:
                reg_status = "canceled"
            if reg_status == "canceled" and canceled_at is None:
                canceled_at = registered_at + (min(first_start, REFERENCE_NOW) - registered_at) * g.rng.uniform(0.2, 0.9)  # fmt: skip
            reg = make_registration(
                g,
                person,
                status=reg_status,
                registered_at=registered_at,
                canceled_at=canceled_at,
                questions=questions,
            )
            webinar["registrations"].append(reg)
            regs.append((person, reg))

        # Sessions.
        for s_idx, (start, minutes) in enumerate(spec["sessions"]):
            end = start + timedelta(minutes=minutes)
            subject = spec["title"] if len(spec["sessions"]) == 1 else f"{spec['title']} – Day {s_idx + 1}"  # fmt: skip
            session = make_session(
                g,
                tenant_id=tenant_id,
                organizer=org,
                subject=subject,
                start=start,
                end=end,
                zone="UTC" if s_idx % 2 == 0 else zone,
                allow_recording=spec.get("record", False),
                allow_transcription=spec.get("transcript", False),
                capacity=(45 if spec.get("waitlist") else None),
            )
            webinar["sessions"].append(session)
            if end > REFERENCE_NOW or status != "published":
                continue  # no attendance report before the session ends
            rejoin = bool(spec.get("rejoin")) and s_idx == 0
            _attendance(
                g, spec, session, org, tenant_id, regs, start, end, presenter, people, rejoin
            )
            if spec.get("record"):
                _artifacts(g, session, org, tenant_id, start, end, spec, presenter)
        webinars.append(webinar)

    townhalls = _townhalls(
        Gen(seed + 1),
        tenant_id=tenant_id,
        marta=marta,
        tomas=tomas,
        kenji=kenji,
        staff=staff,
        presenter=presenter,
        people=people,
    )
    return {
        "tenant": {"id": tenant_id, "domains": [INTERNAL_DOMAIN, AGENCY_DOMAIN]},
        "applications": applications,
        "users": users,
        "webinars": webinars,
        "townhalls": townhalls,
    }


# Graph's own town-hall example writes this zone name, which is neither a Windows nor an
# IANA name: the connector must keep the event, read the times as UTC and say so.
GRAPH_EXAMPLE_ZONE = "PacificSt"


def _townhalls(
    g: Gen,
    *,
    tenant_id: str,
    marta: dict[str, Any],
    tomas: dict[str, Any],
    kenji: dict[str, Any],
    staff: list[dict[str, Any]],
    presenter: dict[str, Any],
    people: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Three town halls (virtualEventTownhall, no registrations):

    - t01 *Customer Town Hall*, Marta's, past, public, its own times in Graph's example
      zone ``"PacificSt"``: the organizer, Tomas (co-organizer), a presenter, two staff,
      32 external attendees (some rejoin) and 4 anonymous attendees without an email;
    - t02 *Q4 All-Hands*, Tomas's, future, organization-only and invite-only;
    - t03 *Tokyo Office Town Hall*, Kenji's (no access policy: hidden from the app).
    """

    def user_invite(u: dict[str, Any]) -> dict[str, Any]:
        return {**user_identity(u, tenant_id)}

    def guest_invite(p: dict[str, Any]) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.communicationsGuestIdentity",
            "id": g.guid(),
            "displayName": f"{p['firstName']} {p['lastName']}",
            "email": p["email"],
        }

    def townhall(
        org: dict[str, Any],
        title: str,
        zone: str,
        start: datetime,
        minutes: int,
        *,
        audience: str,
        invite_only: bool,
        co: list[dict[str, Any]],
        invited: list[dict[str, Any]],
    ) -> dict[str, Any]:
        end = start + timedelta(minutes=minutes)
        if zone in ZONE_OFFSETS:
            when = dttz(start, zone), dttz(end, zone)
        else:  # the wall time in the organizer's (Pacific) zone, under Graph's odd name
            when = (
                {**dttz(start, "Pacific Standard Time"), "timeZone": zone},
                {**dttz(end, "Pacific Standard Time"), "timeZone": zone},
            )
        session = make_session(
            g,
            tenant_id=tenant_id,
            organizer=org,
            subject=title,
            start=start,
            end=end,
            zone="UTC",
            allow_recording=False,
            allow_transcription=False,
            capacity=None,
        )
        return {
            "@odata.type": "#microsoft.graph.virtualEventTownhall",
            "id": f"{g.guid()}@{tenant_id}",
            "status": "published",
            "displayName": title,
            "description": {"contentType": "text", "content": f"{title}.\nQuestions welcome."},
            "startDateTime": when[0],
            "endDateTime": when[1],
            "createdBy": {
                "application": None,
                "device": None,
                "user": user_identity(org, tenant_id),
            },
            "audience": audience,
            "coOrganizers": [co_organizer(u, tenant_id) for u in co],
            "invitedAttendees": invited,
            "isInviteOnly": invite_only,
            "settings": {"isAttendeeEmailNotificationEnabled": True},
            "externalEventInformation": [],
            "sessions": [session],
        }

    # t01: past, public, "PacificSt".
    start = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)
    t01 = townhall(
        marta,
        "Customer Town Hall: 2027 Product Vision",
        GRAPH_EXAMPLE_ZONE,
        start,
        60,
        audience="everyone",
        invite_only=False,
        co=[tomas],
        invited=[user_invite(staff[0]), guest_invite(people[3]), guest_invite(people[7])],
    )
    end = start + timedelta(minutes=60)
    meeting_start, meeting_end = start - g.secs(120, 300), end + g.secs(60, 240)

    def record(
        email: str | None,
        name: str,
        identity: dict[str, Any] | None,
        role: str,
        intervals: list[tuple[datetime, datetime]],
    ) -> dict[str, Any]:
        return make_record(
            g,
            email=email,
            display_name=name,
            identity_id=identity["id"] if identity else "",
            identity_tenant=tenant_id if identity else None,
            role=role,
            registration=None,  # a town hall has no registrations
            intervals=intervals,
        )

    records = [
        record(marta["mail"], marta["displayName"], marta, "Organizer", [(meeting_start, meeting_end)]),
        record(tomas["mail"], tomas["displayName"], tomas, "Presenter", [(start, end)]),
        record(presenter["mail"], presenter["displayName"], presenter, "Presenter",
               [(start + g.secs(60, 120), end - g.secs(60, 120))]),
    ]  # fmt: skip
    for u in staff[1:3]:
        records.append(
            record(u["mail"], u["displayName"], u, "Attendee", intervals_for(g, start, end, 1))
        )
    for i, p in enumerate(people[100:132]):
        pieces = 2 if i % 5 == 0 else 1  # some leave and come back
        records.append(
            record(p["attEmail"], f"{p['firstName']} {p['lastName']}", None, "Attendee",
                   intervals_for(g, start, end, pieces))
        )  # fmt: skip
    # Anonymous attendees: joined without signing in, so Teams has no email for them.
    for n, name in enumerate(["Anonymous", "Anonymous", "Guest (unverified)", "Viewer 4417"]):
        records.append(
            record(None if n % 2 else "", name, None, "Attendee" if n < 3 else "None",
                   intervals_for(g, start + timedelta(minutes=5 * n), end, 1))
        )  # fmt: skip
    t01["sessions"][0]["attendanceReports"] = [
        {
            "id": g.guid(),
            "totalParticipantCount": len(records),
            "meetingStartDateTime": dto3(meeting_start),
            "meetingEndDateTime": dto3(meeting_end),
            "externalEventInformation": [],
            "attendanceRecords": records,
        }
    ]

    # t02: future, internal and invite-only: no attendance yet.
    t02 = townhall(
        tomas,
        "Q4 All-Hands (internal)",
        "W. Europe Standard Time",
        datetime(2026, 12, 8, 15, 0, tzinfo=UTC),
        45,
        audience="organization",
        invite_only=True,
        co=[],
        invited=[user_invite(u) for u in [marta, *staff]],
    )

    # t03: Kenji holds no access policy: Graph hides it from the app.
    start = datetime(2026, 11, 17, 4, 0, tzinfo=UTC)
    t03 = townhall(
        kenji,
        "Tokyo Office Town Hall",
        "Tokyo Standard Time",
        start,
        30,
        audience="organization",
        invite_only=False,
        co=[],
        invited=[],
    )
    end = start + timedelta(minutes=30)
    t03["sessions"][0]["attendanceReports"] = [
        {
            "id": g.guid(),
            "totalParticipantCount": 2,
            "meetingStartDateTime": dto3(start),
            "meetingEndDateTime": dto3(end),
            "externalEventInformation": [],
            "attendanceRecords": [
                record(kenji["mail"], kenji["displayName"], kenji, "Organizer", [(start, end)]),
                record(staff[3]["mail"], staff[3]["displayName"], staff[3], "Attendee",
                       intervals_for(g, start, end, 1)),
            ],
        }
    ]  # fmt: skip
    return [t01, t02, t03]


def _attendance(
    g: Gen,
    spec: dict[str, Any],
    session: dict[str, Any],
    org: dict[str, Any],
    tenant_id: str,
    regs: list[tuple[dict[str, Any], dict[str, Any]]],
    start: datetime,
    end: datetime,
    presenter: dict[str, Any],
    people: list[dict[str, Any]],
    rejoin: bool,
) -> None:
    meeting_start = start - g.secs(120, 600)
    meeting_end = end + g.secs(60, 420)
    records = [
        make_record(
            g,
            email=org["mail"],
            display_name=org["displayName"],
            identity_id=org["id"],
            identity_tenant=tenant_id,
            role="Organizer",
            registration=None,  # the organizer's record never carries a registrationId
            intervals=[(meeting_start + g.secs(0, 5), meeting_end - g.secs(0, 5))],
        )
    ]
    for co in spec["co"]:
        records.append(
            make_record(
                g,
                email=co["mail"],
                display_name=co["displayName"],
                identity_id=co["id"],
                identity_tenant=tenant_id,
                role="Presenter",
                registration=None,
                intervals=[(meeting_start + g.secs(10, 90), end + g.secs(0, 50))],
            )
        )
    if spec.get("presenter"):
        records.append(
            make_record(
                g,
                email=presenter["mail"].upper().replace("@CONTOSO.EXAMPLE", "@contoso.example"),
                display_name=presenter["displayName"],
                identity_id=presenter["id"],
                identity_tenant=tenant_id,
                role="Presenter",
                registration=None,
                intervals=[
                    (start + g.secs(0, 60), start + g.secs(1800, 2400)),
                    (start + g.secs(2700, 3000), end - g.secs(0, 120)),
                ],
            )
        )
    for person, reg in regs:
        if reg["status"] != "registered":
            continue
        if person.get("userId") == org["id"]:
            continue  # the organizer registered too; their Organizer record is above
        if g.rng.random() > 0.6 and "user" not in person:
            continue  # no-show
        pieces = g.rng.choices([1, 2, 3, 4], weights=[70, 18, 8, 4])[0]
        records.append(
            make_record(
                g,
                email=person["attEmail"],
                display_name=f"{person['firstName']} {person['lastName']}",
                identity_id=person["userId"] or "",
                identity_tenant=tenant_id if person["userId"] else None,
                role="Attendee",
                registration=reg,
                intervals=intervals_for(g, start - timedelta(minutes=1), end, pieces),
            )
        )
    if spec.get("unregistered"):
        # Joined through a forwarded link without registering.
        registered = {r["email"].lower() for _, r in regs}
        stranger = next(p for p in reversed(people) if p["email"] not in registered)
        records.append(
            make_record(
                g,
                email=stranger["attEmail"],
                display_name=f"{stranger['firstName']} {stranger['lastName']}",
                identity_id="",
                identity_tenant=None,
                role="Attendee",
                registration=None,
                intervals=intervals_for(g, start + timedelta(minutes=10), end, 2),
            )
        )
    if spec.get("anonymous"):
        records.append(
            make_record(
                g,
                email="",
                display_name="+1 425 555 0142",
                identity_id="",
                identity_tenant=None,
                role="None",
                registration=None,
                intervals=intervals_for(g, start, end, 1),
            )
        )
    reports = [
        {
            "id": g.guid(),
            "totalParticipantCount": len(records),
            "meetingStartDateTime": dto3(meeting_start),
            "meetingEndDateTime": dto3(meeting_end),
            "externalEventInformation": [],
            "attendanceRecords": records,
        }
    ]
    if rejoin:
        # The organizer rejoined after the end: a second, small meeting instance.
        again = meeting_end + g.secs(900, 1500)
        late = [
            make_record(
                g,
                email=org["mail"],
                display_name=org["displayName"],
                identity_id=org["id"],
                identity_tenant=tenant_id,
                role="Organizer",
                registration=None,
                intervals=[(again, again + g.secs(600, 900))],
            )
        ]
        for person, reg in [pr for pr in regs if pr[1]["status"] == "registered"][:2]:
            late.append(
                make_record(
                    g,
                    email=person["attEmail"],
                    display_name=f"{person['firstName']} {person['lastName']}",
                    identity_id=person["userId"] or "",
                    identity_tenant=tenant_id if person["userId"] else None,
                    role="Attendee",
                    registration=reg,
                    intervals=[(again + g.secs(30, 90), again + g.secs(300, 500))],
                )
            )
        reports.append(
            {
                "id": g.guid(),
                "totalParticipantCount": len(late),
                "meetingStartDateTime": dto3(again),
                "meetingEndDateTime": dto3(again + g.secs(900, 1000)),
                "externalEventInformation": [],
                "attendanceRecords": late,
            }
        )
    session["attendanceReports"] = reports


def _artifacts(
    g: Gen,
    session: dict[str, Any],
    org: dict[str, Any],
    tenant_id: str,
    start: datetime,
    end: datetime,
    spec: dict[str, Any],
    presenter: dict[str, Any],
) -> None:
    meeting_id = session["id"]
    base = f"https://graph.microsoft.com/v1.0/users/{org['id']}/onlineMeetings/{meeting_id}"
    organizer = {
        "application": None,
        "device": None,
        "user": {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": org["id"],
            "displayName": None,
            "userIdentityType": "aadUser",
            "tenantId": tenant_id,
        },
    }
    call_id = g.guid()
    correlation = g.guid() + "-0"
    recording_id = b64(f"V2##1{org['id']}##{g.guid()}")
    rec_end = end - g.secs(30, 120)
    recording = {
        "id": recording_id,
        "meetingId": meeting_id,
        "callId": call_id,
        "contentCorrelationId": correlation,
        "createdDateTime": dto7(rec_end + g.secs(60, 240)),
        "endDateTime": dto7(rec_end),
        "recordingContentUrl": f"{base}/recordings/{recording_id}/content",
        "meetingOrganizer": organizer,
        "contentBase64": base64.b64encode(TINY_MP4).decode(),
    }
    session["recordings"] = [recording]
    if not spec.get("transcript"):
        return
    transcript_id = b64(f"V2##1{org['id']}##{g.guid()}")
    speakers = [org["displayName"]]
    if spec.get("presenter"):
        speakers.append(presenter["displayName"])
    transcript = {
        "id": transcript_id,
        "meetingId": meeting_id,
        "callId": call_id,
        "contentCorrelationId": correlation,
        "createdDateTime": dto7(rec_end + g.secs(60, 240)),
        "endDateTime": dto7(rec_end),
        "transcriptContentUrl": f"{base}/transcripts/{transcript_id}/content",
        "meetingOrganizer": organizer,
        "content": make_vtt(speakers, TRANSCRIPT_LINES),
    }
    session["transcripts"] = [transcript]


_ASCII = str.maketrans("áéíóúüöäßëç", "aeiouuoasec")


def _ascii(text: str) -> str:
    return text.translate(_ASCII).replace("ß", "ss")


def _title_email(email: str) -> str:
    local, domain = email.split("@")
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("sample-tenant.json")
    out.write_text(render(build()), encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
