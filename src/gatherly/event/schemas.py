"""Output shapes for marketing events, their people and the contact timeline (SPEC T6, T7, T9, B10)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from gatherly.contact.schemas import OwnerRef


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date is out of range once converted to UTC") from None


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_utc)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EventOut(_Out):
    """An event in a list: its T6 properties and counts."""

    id: int
    name: str
    event_type: str
    status: str
    start_at: datetime | None
    end_at: datetime | None
    time_zone: str
    organizer_name: str
    organizer_email: str | None
    audience: str
    source: str
    external_id: str | None
    registrant_count: int
    attendee_count: int
    cancellation_count: int
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class SessionOut(_Out):
    """One session (Teams meeting) of an event."""

    id: int
    external_id: str
    subject: str
    start_at: datetime | None
    end_at: datetime | None
    join_url: str | None


class EventDetailOut(EventOut):
    """One event: its properties, counts and sessions."""

    description: str
    join_url: str | None
    sessions: list[SessionOut]


class RegistrationOut(_Out):
    """A registration as Teams holds it; ``excluded_reason`` says why it is not counted."""

    id: int
    event_id: int
    external_id: str
    email: str | None
    first_name: str
    last_name: str
    status: str
    registered_at: datetime | None
    canceled_at: datetime | None
    contact_id: int | None
    excluded_reason: str | None


class IntervalOut(_Out):
    """One join → leave interval in one session."""

    session_id: int
    join_at: datetime
    leave_at: datetime
    duration_seconds: int


class AttendanceOut(_Out):
    """A person's attendance of the event: totals over every interval."""

    id: int
    event_id: int
    person_key: str
    email: str | None
    display_name: str
    role: str
    registration_id: int | None
    contact_id: int | None
    first_join_at: datetime | None
    last_leave_at: datetime | None
    total_seconds: int
    excluded_reason: str | None
    intervals: list[IntervalOut]


class ReconciliationCounts(BaseModel):
    """The event's numbers."""

    registrants: int
    attendees: int
    cancellations: int
    no_shows: int


class ReconciliationOut(BaseModel):
    """Every number on the event with the people behind it, and who is kept but not counted."""

    event_id: int
    counts: ReconciliationCounts
    registrants: list[str]
    cancellations: list[str]
    attendees: list[str]
    no_shows: list[str]
    other_statuses: dict[str, list[str]]
    not_counted: dict[str, list[str]]


class StatusChangeOut(BaseModel):
    """One step of a registration's status history."""

    status: str
    at: datetime


class TimelineIntervalOut(BaseModel):
    """One interval on the timeline."""

    join_at: datetime
    leave_at: datetime
    duration_seconds: int


class TimelineEntryOut(BaseModel):
    """A contact's participation in one event."""

    event_id: int
    event_name: str
    event_start_at: datetime | None
    event_end_at: datetime | None
    registration_status: str | None
    registered_at: datetime | None
    canceled_at: datetime | None
    status_history: list[StatusChangeOut]
    attended: bool
    first_join_at: datetime | None
    last_leave_at: datetime | None
    total_seconds: int
    intervals: list[TimelineIntervalOut]


class RecordingOut(_Out):
    """A session recording's metadata; the video stays in Teams at ``content_url``."""

    id: int
    session_id: int
    external_id: str
    meeting_id: str
    content_correlation_id: str | None
    recorded_at: datetime | None
    ended_at: datetime | None
    content_url: str | None


class CueOut(_Out):
    """One transcript cue: milliseconds from the start, speaker and text."""

    start_ms: int
    end_ms: int
    speaker: str
    text: str


class TranscriptOut(RecordingOut):
    """A transcript with its WebVTT text and parsed cues; ``recording_id`` is its recording."""

    recording_id: int | None
    vtt: str
    cues: list[CueOut]


class RecordingsOut(BaseModel):
    """An event's recordings and transcripts."""

    recordings: list[RecordingOut]
    transcripts: list[TranscriptOut]
