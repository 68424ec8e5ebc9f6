"""Fixture objects turned into the exact JSON Graph emits (reference §3 and §7).

Every declared property is present (``null`` when unset, ``[]`` for collections);
navigation properties and emulator-only keys are left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Keys that live in the fixture only (nesting and content), never in a Graph response.
_PRIVATE = {
    "registrations",
    "sessions",
    "attendanceReports",
    "attendanceRecords",
    "recordings",
    "transcripts",
    "content",
    "contentBase64",
    "presenters",
    "registrationConfiguration",
}

WEBINAR: dict[str, Any] = {
    "id": None,
    "displayName": None,
    "description": None,
    "startDateTime": None,
    "endDateTime": None,
    "status": None,
    "createdBy": None,
    "settings": None,
    "isRegistrationRequired": None,
    "externalEventInformation": [],
    "audience": None,
    "coOrganizers": [],
}
# virtualEventTownhall (graph-notifications-townhalls.md §3): a virtualEvent with an
# audience, co-organizers and invited attendees, and no registration properties.
TOWNHALL: dict[str, Any] = {
    "id": None,
    "displayName": None,
    "description": None,
    "startDateTime": None,
    "endDateTime": None,
    "status": None,
    "createdBy": None,
    "settings": None,
    "externalEventInformation": [],
    "audience": None,
    "coOrganizers": [],
    "invitedAttendees": [],
    "isInviteOnly": None,
}
SESSION: dict[str, Any] = {
    "id": None,
    "subject": None,
    "startDateTime": None,
    "endDateTime": None,
    "joinWebUrl": None,
    "videoOnDemandWebUrl": None,
    "capacity": None,
    "joinInformation": None,
    "joinMeetingIdSettings": None,
    "chatInfo": None,
    "audioConferencing": None,
    "videoTeleconferenceId": None,
    "expiryDateTime": None,
    "meetingType": None,
    "meetingOptionsWebUrl": None,
    "meetingSpokenLanguageTag": None,
    "lobbyBypassSettings": None,
    "isEntryExitAnnounced": None,
    "isEndToEndEncryptionEnabled": None,
    "allowedPresenters": None,
    "allowMeetingChat": None,
    "shareMeetingChatHistoryDefault": None,
    "allowedLobbyAdmitters": None,
    "allowLiveShare": None,
    "allowAttendeeToEnableCamera": None,
    "allowAttendeeToEnableMic": None,
    "allowBreakoutRooms": None,
    "allowCopyingAndSharingMeetingContent": None,
    "allowParticipantsToChangeName": None,
    "allowPowerPointSharing": None,
    "allowRecording": None,
    "allowTeamworkReactions": None,
    "allowTranscription": None,
    "allowWhiteboard": None,
    "recordAutomatically": None,
    "anonymizeIdentityForRoles": [],
    "chatRestrictions": None,
    "watermarkProtection": None,
    "sensitivityLabelAssignment": None,
    "cloudVideoInteropInfo": None,
}
SESSION_SUMMARY_FIELDS = ("id", "subject", "startDateTime", "endDateTime", "joinWebUrl")
REGISTRATION: dict[str, Any] = {
    "id": None,
    "email": None,
    "firstName": None,
    "lastName": None,
    "userId": None,
    "status": None,
    "registrationDateTime": None,
    "cancelationDateTime": None,
    "preferredTimezone": None,
    "preferredLanguage": None,
    "registrationQuestionAnswers": [],
    "externalRegistrationInformation": None,
}
REPORT: dict[str, Any] = {
    "id": None,
    "totalParticipantCount": None,
    "meetingStartDateTime": None,
    "meetingEndDateTime": None,
    "externalEventInformation": [],
}
RECORD: dict[str, Any] = {
    "id": None,
    "emailAddress": None,
    "totalAttendanceInSeconds": None,
    "role": None,
    "registrantId": None,
    "registrationId": None,
    "identity": None,
    "attendanceIntervals": [],
    "externalRegistrationInformation": None,
}
ARTIFACT: dict[str, Any] = {
    "id": None,
    "meetingId": None,
    "callId": None,
    "contentCorrelationId": None,
    "createdDateTime": None,
    "endDateTime": None,
    "meetingOrganizer": None,
}


def _shape(odata_type: str, template: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{odata_type}"}
    for key, default in template.items():
        out[key] = obj.get(key, list(default) if isinstance(default, list) else default)
    for key, value in obj.items():
        if key not in out and key not in _PRIVATE:
            out[key] = value
    return out


USER: dict[str, Any] = {
    "id": None,
    "businessPhones": [],
    "displayName": None,
    "givenName": None,
    "jobTitle": None,
    "mail": None,
    "mobilePhone": None,
    "officeLocation": None,
    "preferredLanguage": None,
    "surname": None,
    "userPrincipalName": None,
}


def user(obj: dict[str, Any]) -> dict[str, Any]:
    """A directory user with Graph's default property set (no access-policy field)."""
    return {key: obj.get(key, list(d) if isinstance(d, list) else d) for key, d in USER.items()}


def webinar(obj: dict[str, Any]) -> dict[str, Any]:
    """A virtualEventWebinar."""
    return _shape("virtualEventWebinar", WEBINAR, obj)


def townhall(obj: dict[str, Any]) -> dict[str, Any]:
    """A virtualEventTownhall."""
    return _shape("virtualEventTownhall", TOWNHALL, obj)


def session(obj: dict[str, Any]) -> dict[str, Any]:
    """A full virtualEventSession (S2)."""
    return _shape("virtualEventSession", SESSION, obj)


def session_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """A session as the list (S1) returns it: five fields, explicit nulls elsewhere."""
    out: dict[str, Any] = {"@odata.type": "#microsoft.graph.virtualEventSession"}
    for key, default in SESSION.items():
        out[key] = (
            obj.get(key) if key in SESSION_SUMMARY_FIELDS else (None if default is None else [])
        )
    out["capabilities"] = []
    return out


def registration(obj: dict[str, Any]) -> dict[str, Any]:
    """A virtualEventRegistration."""
    return _shape("virtualEventRegistration", REGISTRATION, obj)


def parse_utc(value: str) -> datetime:
    """A Graph DateTimeOffset (``Z``, up to 7 fraction digits, or naive meaning UTC) as aware UTC."""
    head, _, frac = value.rstrip("Z").partition(".")
    parsed = datetime.fromisoformat(head + ("." + frac[:6] if frac else ""))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def timestamp(value: datetime) -> str:
    """A UTC DateTimeOffset as Graph writes it: seven fraction digits and ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _seconds(start: str, end: str) -> int:
    return max(0, round((parse_utc(end) - parse_utc(start)).total_seconds()))


def record(obj: dict[str, Any]) -> dict[str, Any]:
    """An attendanceRecord; durations are computed from the intervals when not given."""
    out = _shape("attendanceRecord", RECORD, obj)
    intervals = []
    for interval in obj.get("attendanceIntervals", []):
        seconds = interval.get("durationInSeconds")
        if seconds is None:
            seconds = _seconds(interval["joinDateTime"], interval["leaveDateTime"])
        intervals.append({**interval, "durationInSeconds": seconds})
    out["attendanceIntervals"] = intervals
    identity = out["identity"]
    if isinstance(identity, dict) and "tenantId" in identity and "@odata.type" not in identity:
        # ``identity`` is declared as the base type; an identity with a tenantId is the derived
        # communicationsUserIdentity, which Graph announces with @odata.type (§3.6, §3.9).
        out["identity"] = {"@odata.type": "#microsoft.graph.communicationsUserIdentity", **identity}
    if out["totalAttendanceInSeconds"] is None:
        out["totalAttendanceInSeconds"] = sum(i["durationInSeconds"] for i in intervals)
    return out


def report(obj: dict[str, Any], *, expand_records: bool = False) -> dict[str, Any]:
    """A meetingAttendanceReport; records only when ``$expand=attendanceRecords``."""
    out = _shape("meetingAttendanceReport", REPORT, obj)
    records = obj.get("attendanceRecords", [])
    if out["totalParticipantCount"] is None:
        out["totalParticipantCount"] = len(records)
    if expand_records:
        out["attendanceRecords"] = [record(r) for r in records]
    return out


def artifact(
    kind: str,
    obj: dict[str, Any],
    *,
    meeting_id: str,
    organizer: dict[str, Any],
    tenant_id: str,
    content_url: str,
) -> dict[str, Any]:
    """A callRecording (kind "recording") or callTranscript (kind "transcript")."""
    out = _shape("callRecording" if kind == "recording" else "callTranscript", ARTIFACT, obj)
    out["meetingId"] = meeting_id
    if out["meetingOrganizer"] is None:
        out["meetingOrganizer"] = {
            "application": None,
            "device": None,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": organizer["id"],
                "displayName": None,
                "userIdentityType": "aadUser",
                "tenantId": tenant_id,
            },
        }
    out[f"{kind}ContentUrl"] = content_url
    return out


def online_meeting(obj: dict[str, Any], *, meeting_id: str) -> dict[str, Any]:
    """The onlineMeeting behind a session, as M1 returns it (only the fields a sync needs)."""
    return {
        "@odata.type": "#microsoft.graph.onlineMeeting",
        "id": meeting_id,
        "subject": obj.get("subject"),
        "joinWebUrl": obj.get("joinWebUrl"),
        "chatInfo": obj.get("chatInfo"),
        "videoTeleconferenceId": obj.get("videoTeleconferenceId"),
    }
