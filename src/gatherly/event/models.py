"""Marketing events, their sessions, registrations, attendance, recordings and transcripts
(SPEC T6, T7, T9, T11, B10).

A synced Teams webinar is one ``MarketingEvent``. Registrations keep their status history;
attendance is one row per person per event with every join/leave interval under it.
Registration and attendance rows are owned by the event's owner (B10).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import Base, UTCDateTime, utcnow

# Why a person is kept on an event but not counted (docs/teams.md, "What the numbers mean").
EXCLUDED_ORGANIZER = "organizer"
EXCLUDED_PRESENTER = "presenter"
EXCLUDED_INTERNAL = "internal"
EXCLUDED_TOMBSTONED = "tombstoned"
EXCLUDED_NO_EMAIL = "no_email"
EXCLUSION_REASONS = (
    EXCLUDED_ORGANIZER,
    EXCLUDED_PRESENTER,
    EXCLUDED_INTERNAL,
    EXCLUDED_TOMBSTONED,
    EXCLUDED_NO_EMAIL,
)


class MarketingEvent(OwnedMixin, Base):
    """A marketing event; for a Teams webinar ``external_id`` is the Graph webinar id."""

    __tablename__ = "marketing_event"
    __table_args__ = (
        *owned_indexes("marketing_event"),
        Index("ix_marketing_event_start", "start_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    event_type: Mapped[str] = mapped_column(String(20), default="webinar")
    status: Mapped[str] = mapped_column(String(20), default="published")
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    organizer_name: Mapped[str] = mapped_column(String(300), default="")
    organizer_email: Mapped[str | None] = mapped_column(String(320), index=True)
    audience: Mapped[str] = mapped_column(String(30), default="")
    join_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    external_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    registrant_count: Mapped[int] = mapped_column(Integer, default=0)
    attendee_count: Mapped[int] = mapped_column(Integer, default=0)
    cancellation_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_sync_run_id: Mapped[int | None] = mapped_column(Integer)
    modified_by_sync_run_id: Mapped[int | None] = mapped_column(Integer)


class EventSession(Base):
    """One session (Teams meeting) of an event."""

    __tablename__ = "event_session"
    __table_args__ = (UniqueConstraint("event_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("marketing_event.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    join_url: Mapped[str | None] = mapped_column(Text)


class EventRegistration(OwnedMixin, Base):
    """A registration as Teams holds it, keyed by the Graph registration id."""

    __tablename__ = "event_registration"
    __table_args__ = (
        *owned_indexes("event_registration"),
        UniqueConstraint("event_id", "external_id"),
        Index("ix_event_registration_email", "event_id", "email"),
        # Segment criteria look registrations up per contact (docs/segments.md).
        Index("ix_event_registration_contact", "contact_id", "event_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("marketing_event.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(30))
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    excluded_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_sync_run_id: Mapped[int | None] = mapped_column(Integer)


class RegistrationStatusChange(Base):
    """One step of a registration's status history (T10)."""

    __tablename__ = "event_registration_status"
    __table_args__ = (Index("ix_event_registration_status_reg", "registration_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("event_registration.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(30))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sync_run_id: Mapped[int | None] = mapped_column(Integer)


class EventAttendance(OwnedMixin, Base):
    """A person's attendance of an event: totals over every interval in every session (T9).

    ``person_key`` is the normalised email, or ``id:<identity id>`` / ``anon:<name>`` for
    attendance records without one.
    """

    __tablename__ = "event_attendance"
    __table_args__ = (
        *owned_indexes("event_attendance"),
        UniqueConstraint("event_id", "person_key"),
        # Segment criteria: per contact (EXISTS), and per event (attended a set of events),
        # both index-only for "attended, at least N minutes" (bench/segments.py).
        Index("ix_event_attendance_contact", "contact_id", "event_id", "excluded_reason"),
        Index(
            "ix_event_attendance_event_contact",
            "event_id",
            "contact_id",
            "total_seconds",
            "excluded_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("marketing_event.id", ondelete="CASCADE"))
    person_key: Mapped[str] = mapped_column(String(340))
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(20), default="Attendee")
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_registration.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    first_join_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_leave_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_seconds: Mapped[int] = mapped_column(Integer, default=0)
    excluded_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_sync_run_id: Mapped[int | None] = mapped_column(Integer)


class AttendanceInterval(Base):
    """One join → leave interval, from one attendance report of one session."""

    __tablename__ = "event_attendance_interval"
    __table_args__ = (UniqueConstraint("attendance_id", "report_external_id", "join_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attendance_id: Mapped[int] = mapped_column(
        ForeignKey("event_attendance.id", ondelete="CASCADE")
    )
    session_id: Mapped[int] = mapped_column(ForeignKey("event_session.id", ondelete="CASCADE"))
    report_external_id: Mapped[str] = mapped_column(String(300))
    join_at: Mapped[datetime] = mapped_column(UTCDateTime)
    leave_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int] = mapped_column(Integer)


registry.register("marketing_event", "Marketing event", MarketingEvent)
registry.register("event_registration", "Event registration", EventRegistration)
registry.register(
    "event_attendance", "Event attendance", EventAttendance, plural="event attendance records"
)


class _SessionArtifact:
    """What recordings and transcripts share: their session and Graph metadata (T11)."""

    id: Mapped[int] = mapped_column(primary_key=True)

    @declared_attr
    def event_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(ForeignKey("marketing_event.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def session_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(ForeignKey("event_session.id", ondelete="CASCADE"))

    external_id: Mapped[str] = mapped_column(String(500))
    meeting_id: Mapped[str] = mapped_column(String(500))
    content_correlation_id: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_url: Mapped[str | None] = mapped_column(Text)


class EventRecording(_SessionArtifact, Base):
    """A recording of a session: its Graph metadata and where its content lives."""

    __tablename__ = "event_recording"
    __table_args__ = (UniqueConstraint("session_id", "external_id"),)


class EventTranscript(_SessionArtifact, Base):
    """A session transcript with its WebVTT text; cues hold it parsed."""

    __tablename__ = "event_transcript"
    __table_args__ = (UniqueConstraint("session_id", "external_id"),)

    vtt: Mapped[str] = mapped_column(Text, default="")
    recording_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_recording.id", ondelete="SET NULL")
    )


class TranscriptCue(Base):
    """One cue of a transcript: who spoke, when (milliseconds from the start), what."""

    __tablename__ = "event_transcript_cue"
    __table_args__ = (UniqueConstraint("transcript_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(
        ForeignKey("event_transcript.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text, default="")
