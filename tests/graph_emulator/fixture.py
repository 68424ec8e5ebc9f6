"""A small tenant for the emulator tests, in Graph's own JSON shapes."""

from __future__ import annotations

import base64
import copy
from typing import Any

TENANT = "3c9d7e21-58a4-4b0f-a6d2-91e8c4b5f0aa"
DOMAIN = "contoso.example"
APP = "11111111-2222-4333-8444-555555555555"
SECRET = "app-secret-value"
LIMITED_APP = "66666666-7777-4888-8999-000000000000"
LIMITED_SECRET = "limited-secret"
MARTA = "0b5e1f7c-2d44-4c9a-8f3e-6a1b2c3d4e5f"  # granted the policy
OLAF = "2c6f2a8d-3e55-4dab-9a4f-7b2c3d4e5f60"  # no policy
TOMAS = "9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"  # granted, co-organizer
LAUNCH = f"6f1c2a90-3b7e-4d1a-9c55-0e2d7b8a4f11@{TENANT}"
HIDDEN = f"7a2d3b01-4c8f-4e2b-8d66-1f3e8c9b5a22@{TENANT}"
DRAFT = f"8b3e4c12-5d90-4f3c-9e77-2a4f9d0c6b33@{TENANT}"
SESSION = "a1b2c3d4-0000-4000-8000-000000000001"
SESSION_2 = "a1b2c3d4-0000-4000-8000-000000000002"
REPORT = "e3b0c442-98fc-4c14-9afb-f4c8996fb924"
RECORDING = "VjIjIzEwYjVlMWY3Yy0yZDQ0"
TRANSCRIPT = "MSMjMCMjZDBlZmJhMjE"
JOIN_URL = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_launch%40thread.v2/0"
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:05.320\n<v Marta Lindqvist>Welcome everyone.</v>\n"
VIDEO = b"\x00\x00\x00\x18ftypmp42fake-video"
REGISTRATION_COUNT = 23
TOWNHALL = f"9c4f5d23-6e01-4a4d-af88-3b5a0e1d7c44@{TENANT}"
HIDDEN_TOWNHALL = f"ad5a6e34-7f12-4b5e-8a99-4c6b1f2e8d55@{TENANT}"
TOWNHALL_SESSION = "b2c3d4e5-0000-4000-8000-000000000003"
TOWNHALL_REPORT = "f4c1d553-09ad-4d25-8b0c-05d9aa7e0c35"


def _when(dt: str, tz: str = "W. Europe Standard Time") -> dict[str, str]:
    return {"dateTime": dt, "timeZone": tz}


def _organizer(user_id: str, name: str) -> dict[str, Any]:
    return {
        "application": None,
        "device": None,
        "user": {
            "@odata.type": "#microsoft.graph.communicationsUserIdentity",
            "id": user_id,
            "displayName": name,
            "tenantId": TENANT,
        },
    }


def registration_id(n: int) -> str:
    """The id of the n-th sample registration."""
    return f"127962bb-84e1-7b62-fd98-{n:012d}"


def _registrations() -> list[dict[str, Any]]:
    regs = []
    for n in range(REGISTRATION_COUNT):
        canceled = n == 1
        regs.append(
            {
                "id": registration_id(n),
                "userId": TOMAS if n == 5 else None,
                "firstName": f"Guest{n}",
                "lastName": "Example",
                "email": f"guest{n}@fabrikam.example",
                "status": "canceled" if canceled else "registered",
                "registrationDateTime": "2025-09-01T09:12:44Z",
                "cancelationDateTime": "2025-09-15T18:03:10Z" if canceled else None,
                "preferredTimezone": "Tokyo Standard Time",
                "preferredLanguage": "ja-JP",
                "registrationQuestionAnswers": [],
                "externalRegistrationInformation": None,
            }
        )
    return regs


def _townhalls() -> list[dict[str, Any]]:
    interval = {"joinDateTime": "2025-10-02T16:02:00Z", "leaveDateTime": "2025-10-02T16:50:00Z"}
    return [
        {
            "id": TOWNHALL,
            "status": "published",
            "displayName": "All-hands town hall",
            "description": {"contentType": "text", "content": "Everyone welcome."},
            # Graph's own town-hall example writes this zone name (no zone table knows it).
            "startDateTime": {"dateTime": "2025-10-02T09:00:00", "timeZone": "PacificSt"},
            "endDateTime": {"dateTime": "2025-10-02T10:00:00", "timeZone": "PacificSt"},
            "createdBy": _organizer(MARTA, "Marta Lindqvist"),
            "audience": "everyone",
            "coOrganizers": [{"id": TOMAS, "displayName": "Tomas Berg", "tenantId": TENANT}],
            "invitedAttendees": [
                {
                    "@odata.type": "#microsoft.graph.communicationsUserIdentity",
                    "id": OLAF,
                    "displayName": "Olaf Hansen",
                    "tenantId": TENANT,
                },
                {
                    "@odata.type": "#microsoft.graph.communicationsGuestIdentity",
                    "id": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
                    "displayName": "Guest One",
                    "email": "guest1@fabrikam.example",
                },
            ],
            "isInviteOnly": False,
            "settings": {"isAttendeeEmailNotificationEnabled": False},
            "sessions": [
                {
                    "id": TOWNHALL_SESSION,
                    "subject": "All-hands town hall",
                    "startDateTime": _when("2025-10-02T16:00:00", "UTC"),
                    "endDateTime": _when("2025-10-02T17:00:00", "UTC"),
                    "joinWebUrl": JOIN_URL + "?townhall=1",
                    "attendanceReports": [
                        {
                            "id": TOWNHALL_REPORT,
                            "meetingStartDateTime": "2025-10-02T15:58:00Z",
                            "meetingEndDateTime": "2025-10-02T17:01:00Z",
                            "attendanceRecords": [
                                {
                                    "id": "1d2c3b4a-0000-4000-8000-00000000000a",
                                    "emailAddress": "guest1@fabrikam.example",
                                    "role": "Attendee",
                                    "registrationId": None,
                                    "attendanceIntervals": [interval],
                                },
                                {
                                    "id": "1d2c3b4a-0000-4000-8000-00000000000b",
                                    "emailAddress": None,
                                    "role": "Attendee",
                                    "registrationId": None,
                                    "identity": {
                                        "id": "",
                                        "displayName": "Anonymous",
                                        "tenantId": None,
                                    },
                                    "attendanceIntervals": [interval],
                                },
                            ],
                        }
                    ],
                }
            ],
        },
        {
            "id": HIDDEN_TOWNHALL,
            "status": "published",
            "displayName": "Olaf's town hall (organizer has no policy)",
            "startDateTime": _when("2025-10-03T10:00:00"),
            "endDateTime": _when("2025-10-03T11:00:00"),
            "createdBy": _organizer(OLAF, "Olaf Hansen"),
            "audience": "organization",
            "isInviteOnly": True,
        },
    ]


def build() -> dict[str, Any]:
    """A fresh copy of the sample tenant."""
    return copy.deepcopy(_FIXTURE)


_FIXTURE: dict[str, Any] = {
    "tenant": {"id": TENANT, "domains": [DOMAIN]},
    "applications": [
        {
            "appId": APP,
            "secret": SECRET,
            "permissions": [
                "VirtualEvent.Read.All",
                "OnlineMeetingArtifact.Read.All",
                "OnlineMeetings.Read.All",
                "OnlineMeetingRecording.Read.All",
                "OnlineMeetingTranscript.Read.All",
                "User.Read.All",
            ],
        },
        {"appId": LIMITED_APP, "secret": LIMITED_SECRET, "permissions": ["VirtualEvent.Read.All"]},
    ],
    "users": [
        {
            "id": MARTA,
            "displayName": "Marta Lindqvist",
            "mail": "marta@contoso.example",
            "userPrincipalName": "marta@contoso.example",
            "applicationAccessPolicy": "Webinar-Sync",
        },
        {
            "id": OLAF,
            "displayName": "Olaf Hansen",
            "mail": "olaf@contoso.example",
            "userPrincipalName": "olaf@contoso.example",
            "applicationAccessPolicy": None,
        },
        {
            "id": TOMAS,
            "displayName": "Tomas Berg",
            "mail": "tomas@contoso.example",
            "userPrincipalName": "tomas@contoso.example",
            "applicationAccessPolicy": "Webinar-Sync",
        },
    ],
    "webinars": [
        {
            "id": LAUNCH,
            "status": "published",
            "displayName": "Q3 Product Launch Webinar",
            "description": {"contentType": "html", "content": "<p>See what's new.</p>"},
            "startDateTime": _when("2025-09-18T16:00:00"),
            "endDateTime": _when("2025-09-18T17:30:00"),
            "createdBy": _organizer(MARTA, "Marta Lindqvist"),
            "audience": "everyone",
            "coOrganizers": [],
            "settings": {"isAttendeeEmailNotificationEnabled": True},
            "isRegistrationRequired": True,
            "registrations": _registrations(),
            "sessions": [
                {
                    "id": SESSION,
                    "subject": "Q3 Product Launch Webinar",
                    "startDateTime": _when("2025-09-18T14:00:00.0000000", "UTC"),
                    "endDateTime": _when("2025-09-18T15:30:00.0000000", "UTC"),
                    "joinWebUrl": JOIN_URL,
                    "allowRecording": True,
                    "allowedPresenters": "roleIsPresenter",
                    "attendanceReports": [
                        {
                            "id": REPORT,
                            "meetingStartDateTime": "2025-09-18T13:58:02.113Z",
                            "meetingEndDateTime": "2025-09-18T15:34:40.9Z",
                            "attendanceRecords": [
                                {
                                    "emailAddress": "guest0@fabrikam.example",
                                    "role": "Attendee",
                                    "registrationId": registration_id(0),
                                    "identity": {
                                        "id": "",
                                        "displayName": "Guest0 Example",
                                        "tenantId": None,
                                    },
                                    "attendanceIntervals": [
                                        {
                                            "joinDateTime": "2025-09-18T14:01:05.2281931Z",
                                            "leaveDateTime": "2025-09-18T14:40:11.0042113Z",
                                        }
                                    ],
                                },
                                {
                                    "emailAddress": "marta@contoso.example",
                                    "role": "Organizer",
                                    "registrationId": None,
                                    "attendanceIntervals": [
                                        {
                                            "joinDateTime": "2025-09-18T13:58:02Z",
                                            "leaveDateTime": "2025-09-18T15:34:40Z",
                                        }
                                    ],
                                },
                            ],
                        }
                    ],
                    "recordings": [
                        {
                            "id": RECORDING,
                            "callId": "4d6f2a1e-88b1-4c3a-9e7f-2a5b6c7d8e9f",
                            "contentCorrelationId": "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f-0",
                            "createdDateTime": "2025-09-18T15:36:12.5990966Z",
                            "endDateTime": "2025-09-18T15:33:58.12Z",
                            "contentBase64": base64.b64encode(VIDEO).decode(),
                        }
                    ],
                    "transcripts": [
                        {
                            "id": TRANSCRIPT,
                            "callId": "4d6f2a1e-88b1-4c3a-9e7f-2a5b6c7d8e9f",
                            "contentCorrelationId": "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f-0",
                            "createdDateTime": "2025-09-18T15:36:12.5990966Z",
                            "endDateTime": "2025-09-18T15:33:58.12Z",
                            "content": VTT,
                        }
                    ],
                },
                {
                    "id": SESSION_2,
                    "subject": "Q3 Launch (APAC replay)",
                    "startDateTime": _when("2025-09-19T02:00:00", "UTC"),
                    "endDateTime": _when("2025-09-19T03:00:00", "UTC"),
                    "joinWebUrl": JOIN_URL + "?replay=1",
                },
            ],
        },
        {
            "id": HIDDEN,
            "status": "published",
            "displayName": "Olaf's webinar (organizer has no policy)",
            "startDateTime": _when("2025-10-01T10:00:00"),
            "endDateTime": _when("2025-10-01T11:00:00"),
            "createdBy": _organizer(OLAF, "Olaf Hansen"),
            "audience": "organization",
        },
        {
            "id": DRAFT,
            "status": "draft",
            "displayName": "Winter roadmap",
            "startDateTime": _when("2025-12-01T10:00:00"),
            "endDateTime": _when("2025-12-01T11:00:00"),
            "createdBy": _organizer(MARTA, "Marta Lindqvist"),
            "audience": "everyone",
            "coOrganizers": [{"id": TOMAS, "displayName": "Tomas Berg", "tenantId": TENANT}],
        },
    ],
    "townhalls": _townhalls(),
}
