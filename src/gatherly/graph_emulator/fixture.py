"""The emulator's fixture file: Pydantic models in Graph's own JSON shapes, and the loader.

A fixture that does not match is refused with the JSON path of its first problem, e.g.
``webinars[3].sessions[0].startDateTime: missing`` or
``townhalls[0].invitedAttendees[2].@odata.type: …``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Container
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from tzlocal import windows_tz

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.schemas import first_problem
from gatherly.graph_emulator.shapes import parse_utc

WebinarStatus = Literal["draft", "published", "canceled", "unknownFutureValue"]
Audience = Literal["everyone", "organization", "unknownFutureValue"]
RegistrationStatus = Literal[
    "registered",
    "canceled",
    "waitlisted",
    "pendingApproval",
    "rejectedByOrganizer",
    "unknownFutureValue",
]
AttendanceRole = Literal["None", "Attendee", "Presenter", "Organizer"]


def _dto(value: str) -> str:
    try:
        parse_utc(value)
    except ValueError:
        raise ValueError("not an ISO 8601 date-time") from None
    return value


DateTimeOffset = Annotated[str, AfterValidator(_dto)]


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    return value


_M = TypeVar("_M", bound=BaseModel)


class FixtureError(ValidationFailed):
    """The fixture does not match the format; the message starts with the JSON path."""


class _Graph(BaseModel):
    """A Graph object: unknown Graph properties are kept and passed through."""

    model_config = ConfigDict(extra="allow")


def _wall_time(value: str) -> str:
    try:
        parse_utc(value)
    except ValueError:
        raise ValueError("not an ISO 8601 date-time") from None
    return value


def _windows_zone(value: str) -> str:
    # Graph sends Windows zone names (CLDR windowsZones), never IANA names.
    if value not in windows_tz.win_tz:
        raise ValueError(
            f"{value!r} is not a Windows time-zone name (e.g. 'W. Europe Standard Time')"
        )
    return value


class DateTimeTimeZone(_Graph):
    """Graph's dateTimeTimeZone (wall time plus a Windows zone name)."""

    date_time: str = Field(alias="dateTime")
    time_zone: Annotated[str, AfterValidator(_windows_zone)] = Field(alias="timeZone")


class LooseDateTimeTimeZone(_Graph):
    """A town hall's own dateTimeTimeZone: any non-empty zone name, because Graph's own
    town-hall example sends ``"PacificSt"`` (a name no zone table knows) and a connector
    must cope with it; the wall time must still be a date-time."""

    date_time: Annotated[str, AfterValidator(_wall_time)] = Field(alias="dateTime")
    time_zone: str = Field(alias="timeZone", min_length=1)


class Identity(_Graph):
    """An identity with an id (user, application, …)."""

    id: str


class IdentitySet(_Graph):
    """communicationsIdentitySet; the organizer is ``user``."""

    user: Identity


class AttendanceInterval(_Graph):
    """One join/leave pair."""

    join_date_time: DateTimeOffset = Field(alias="joinDateTime")
    leave_date_time: DateTimeOffset = Field(alias="leaveDateTime")


class AttendanceRecord(_Graph):
    """attendanceRecord."""

    email_address: str | None = Field(default=None, alias="emailAddress")
    role: AttendanceRole
    attendance_intervals: list[AttendanceInterval] = Field(alias="attendanceIntervals")


class AttendanceReport(_Graph):
    """meetingAttendanceReport with its records nested."""

    id: str
    meeting_start_date_time: DateTimeOffset = Field(alias="meetingStartDateTime")
    meeting_end_date_time: DateTimeOffset = Field(alias="meetingEndDateTime")
    attendance_records: list[AttendanceRecord] = Field(alias="attendanceRecords")


class Recording(_Graph):
    """callRecording; ``contentBase64`` holds the bytes /content serves."""

    id: str
    content_base64: Annotated[str, AfterValidator(_base64)] | None = Field(
        default=None, alias="contentBase64"
    )


class Transcript(_Graph):
    """callTranscript; ``content`` holds the WebVTT text."""

    id: str
    content: str


class Session(_Graph):
    """virtualEventSession with attendance reports, recordings and transcripts nested."""

    id: str
    subject: str | None = None
    start_date_time: DateTimeTimeZone = Field(alias="startDateTime")
    end_date_time: DateTimeTimeZone = Field(alias="endDateTime")
    join_web_url: str = Field(alias="joinWebUrl")
    attendance_reports: list[AttendanceReport] = Field(default=[], alias="attendanceReports")
    recordings: list[Recording] = []
    transcripts: list[Transcript] = []


class Registration(_Graph):
    """virtualEventRegistration."""

    id: str
    email: str
    status: RegistrationStatus
    registration_date_time: DateTimeOffset = Field(alias="registrationDateTime")


class Webinar(_Graph):
    """virtualEventWebinar with registrations and sessions nested."""

    id: str
    display_name: str = Field(alias="displayName")
    status: WebinarStatus
    audience: Audience | None = None
    start_date_time: DateTimeTimeZone = Field(alias="startDateTime")
    end_date_time: DateTimeTimeZone = Field(alias="endDateTime")
    created_by: IdentitySet = Field(alias="createdBy")
    co_organizers: list[Identity] = Field(default=[], alias="coOrganizers")
    registrations: list[Registration] = []
    sessions: list[Session] = []


class InvitedAttendee(_Graph):
    """One of a town hall's ``invitedAttendees``: a tenant user (communicationsUserIdentity)
    or a guest with an email (communicationsGuestIdentity), typed as Graph types them."""

    odata_type: Literal[
        "#microsoft.graph.communicationsUserIdentity",
        "#microsoft.graph.communicationsGuestIdentity",
    ] = Field(alias="@odata.type")
    id: str


class Townhall(_Graph):
    """virtualEventTownhall with sessions nested; it has no registrations."""

    id: str
    display_name: str = Field(alias="displayName")
    status: WebinarStatus
    audience: Audience | None = None
    start_date_time: LooseDateTimeTimeZone = Field(alias="startDateTime")
    end_date_time: LooseDateTimeTimeZone = Field(alias="endDateTime")
    created_by: IdentitySet = Field(alias="createdBy")
    co_organizers: list[Identity] = Field(default=[], alias="coOrganizers")
    invited_attendees: list[InvitedAttendee] = Field(default=[], alias="invitedAttendees")
    is_invite_only: bool | None = Field(default=None, alias="isInviteOnly")
    sessions: list[Session] = []


class Tenant(BaseModel):
    """The tenant: its GUID and verified domains."""

    model_config = ConfigDict(extra="allow")
    id: str
    domains: list[str]


class Application(BaseModel):
    """An app registration with its secret and granted application permissions."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    app_id: str = Field(alias="appId")
    secret: str
    permissions: list[str]


class User(BaseModel):
    """A directory user; ``applicationAccessPolicy`` is the granted policy name or null."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str
    display_name: str = Field(alias="displayName")
    mail: str | None
    user_principal_name: str = Field(alias="userPrincipalName")
    application_access_policy: str | None = Field(alias="applicationAccessPolicy")


class Fixture(BaseModel):
    """The whole fixture file."""

    model_config = ConfigDict(extra="forbid")
    tenant: Tenant
    applications: list[Application]
    users: list[User]
    webinars: list[Webinar]
    townhalls: list[Townhall] = []


def _validate(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FixtureError(first_problem(exc)) from None


def validate_webinar(data: Any) -> Webinar:
    """Validate one webinar object (as in the fixture), raising FixtureError with its JSON path."""
    return _validate(Webinar, data)


def validate_townhall(data: Any) -> Townhall:
    """Validate one town hall object, raising FixtureError with its JSON path."""
    return _validate(Townhall, data)


def validate_registration(data: Any) -> Registration:
    """Validate one registration object, raising FixtureError with its JSON path."""
    return _validate(Registration, data)


def validate_user(data: Any) -> User:
    """Validate one directory user object, raising FixtureError with its JSON path."""
    return _validate(User, data)


def validate_fixture(data: Any) -> Fixture:
    """Validate a parsed fixture, raising FixtureError naming the first problem's JSON path."""
    fixture = _validate(Fixture, data)
    users: set[str] = set()
    for i, user in enumerate(fixture.users):
        if user.id in users:
            raise FixtureError(f"users[{i}].id: duplicate id {user.id!r}")
        users.add(user.id)
    seen: set[str] = set()
    for i, webinar in enumerate(fixture.webinars):
        where = f"webinars[{i}]"
        if webinar.id in seen:
            raise FixtureError(f"{where}.id: duplicate id {webinar.id!r}")
        seen.add(webinar.id)
        check_webinar_refs(webinar, tenant_id=fixture.tenant.id, users=users, where=where)
    for i, townhall in enumerate(fixture.townhalls):
        where = f"townhalls[{i}]"
        if townhall.id in seen:  # one id space: a virtual event is a webinar or a town hall
            raise FixtureError(f"{where}.id: duplicate id {townhall.id!r}")
        seen.add(townhall.id)
        check_townhall_refs(townhall, tenant_id=fixture.tenant.id, users=users, where=where)
    return fixture


def check_townhall_refs(
    townhall: Townhall, *, tenant_id: str, users: Container[str], where: str
) -> None:
    """Cross-reference checks of one town hall: id suffix, organizers, no registrations."""

    def at(rest: str) -> str:
        return f"{where}.{rest}" if where else rest

    _check_organizers(townhall, tenant_id=tenant_id, users=users, at=at)
    if "registrations" in (townhall.model_extra or {}):
        raise FixtureError(
            f"{at('registrations')}: a town hall has no registrations (people are invited: "
            "invitedAttendees, or join openly)"
        )
    for j, session in enumerate(townhall.sessions):
        for k, report in enumerate(session.attendance_reports):
            for n, record in enumerate(report.attendance_records):
                if (record.model_extra or {}).get("registrationId") is not None:
                    raise FixtureError(
                        f"{at(f'sessions[{j}].attendanceReports[{k}].attendanceRecords[{n}]')}"
                        ".registrationId: must be null, a town hall has no registrations"
                    )


def _check_organizers(
    event: Webinar | Townhall, *, tenant_id: str, users: Container[str], at: Callable[[str], str]
) -> None:
    if not event.id.endswith(f"@{tenant_id}"):
        raise FixtureError(f"{at('id')}: must end with '@{tenant_id}'")
    if event.created_by.user.id not in users:
        raise FixtureError(f"{at('createdBy.user.id')}: unknown user")
    for j, co in enumerate(event.co_organizers):
        if co.id not in users:
            raise FixtureError(f"{at(f'coOrganizers[{j}].id')}: unknown user")


def check_webinar_refs(
    webinar: Webinar, *, tenant_id: str, users: Container[str], where: str
) -> None:
    """Cross-reference checks of one webinar: id suffix, organizers, registration ids."""

    def at(rest: str) -> str:
        return f"{where}.{rest}" if where else rest

    _check_organizers(webinar, tenant_id=tenant_id, users=users, at=at)
    registrations: set[str] = set()
    for j, reg in enumerate(webinar.registrations):
        if reg.id in registrations:
            raise FixtureError(f"{at(f'registrations[{j}].id')}: duplicate id {reg.id!r}")
        registrations.add(reg.id)
    for j, session in enumerate(webinar.sessions):
        for k, report in enumerate(session.attendance_reports):
            for n, record in enumerate(report.attendance_records):
                reg_id = (record.model_extra or {}).get("registrationId")
                if reg_id is not None and reg_id not in registrations:
                    raise FixtureError(
                        f"{at(f'sessions[{j}].attendanceReports[{k}].attendanceRecords[{n}]')}"
                        ".registrationId: not a registration of this webinar"
                    )


def load_fixture(path: Path) -> dict[str, Any]:
    """Read and validate a fixture file; return its JSON data (Graph shapes, kept as given)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"cannot read fixture {str(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise FixtureError(f"fixture {str(path)!r} is not JSON: {exc}") from None
    validate_fixture(data)
    assert isinstance(data, dict)
    return data
