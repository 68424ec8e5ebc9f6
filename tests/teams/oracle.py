"""Independent oracles for the sync tests: the expected numbers straight from the fixture
JSON (counting rules §4b written again, plainly), and a snapshot of the synced tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact
from gatherly.event.models import (
    AttendanceInterval,
    EventAttendance,
    EventRegistration,
    EventSession,
    MarketingEvent,
    RegistrationStatusChange,
)


@dataclass(frozen=True)
class Expected:
    """What a webinar's (or town hall's) event should say; ``anonymous``: a town hall's
    attendance records without an email, each an attendee of its own."""

    registrants: set[str]
    cancellations: set[str]
    attendees: set[str]
    excluded: dict[str, str]
    anonymous: int = 0


def expected_counts(
    webinar: dict[str, Any],
    users: Iterable[dict[str, Any]],
    *,
    internal_domains: set[str],
    tombstoned: set[str] = frozenset(),  # type: ignore[assignment]
    townhall: bool = False,
) -> Expected:
    """The counted people of one webinar (or ``townhall``) by the issue's rules, from Graph
    JSON alone."""
    mail = {u["id"]: (u.get("mail") or u["userPrincipalName"]).lower() for u in users}
    organizer_id = webinar["createdBy"]["user"]["id"]
    organizer_emails = {mail.get(organizer_id, "")}
    presenter_ids = {c["id"] for c in webinar.get("coOrganizers", [])}
    presenter_emails = {mail[i] for i in presenter_ids if i in mail}
    records = [
        r
        for s in webinar.get("sessions", [])
        for rep in s.get("attendanceReports", [])
        for r in rep.get("attendanceRecords", [])
    ]
    for r in records:
        email = (r.get("emailAddress") or "").strip().lower()
        if r.get("role") == "Organizer" and email:
            organizer_emails.add(email)
        if r.get("role") == "Presenter" and email:
            presenter_emails.add(email)

    def reason(email: str, user_id: str | None = None) -> str | None:
        if email in organizer_emails or user_id == organizer_id:
            return "organizer"
        if email in presenter_emails or (user_id and user_id in presenter_ids):
            return "presenter"
        if email.rsplit("@", 1)[1] in internal_domains:
            return "internal"
        if email in tombstoned:
            return "tombstoned"
        return None

    excluded: dict[str, str] = {}
    status: dict[str, set[str]] = {}
    for reg in webinar.get("registrations", []):
        email = reg["email"].strip().lower()
        why = reason(email, reg.get("userId"))
        if why:
            excluded[email] = why
            continue
        status.setdefault(email, set()).add(reg["status"])
    attendees = set()
    anonymous = 0
    for r in records:
        email = (r.get("emailAddress") or "").strip().lower()
        if townhall and not email and r.get("attendanceIntervals"):
            anonymous += 1  # no email, so nobody to tie it to: one attendee per record
        if not email or not r.get("attendanceIntervals"):
            continue
        why = reason(email)
        if why:
            excluded[email] = why
        else:
            attendees.add(email)
    registrants = {e for e, s in status.items() if "registered" in s}
    cancellations = {e for e, s in status.items() if "canceled" in s} - registrants
    return Expected(registrants, cancellations, attendees, excluded, anonymous)


def snapshot(session_factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """The synced tables by natural keys, without ids or run bookkeeping, for equality."""
    with session_factory() as db:
        events = {e.id: e.external_id for e in db.scalars(select(MarketingEvent))}
        sessions = {s.id: s.external_id for s in db.scalars(select(EventSession))}
        contacts = {c.id: (c.email, c.owning_bu_id) for c in db.scalars(select(Contact))}
        attendance = {
            a.id: (events[a.event_id], a.person_key) for a in db.scalars(select(EventAttendance))
        }
        return {
            "events": sorted(
                (
                    e.external_id,
                    e.name,
                    e.status,
                    e.start_at,
                    e.end_at,
                    e.registrant_count,
                    e.attendee_count,
                    e.cancellation_count,
                    e.owner_id,
                    e.owning_bu_id,
                )
                for e in db.scalars(select(MarketingEvent))
            ),
            "sessions": sorted(
                (events[s.event_id], s.external_id, s.start_at, s.end_at)
                for s in db.scalars(select(EventSession))
            ),
            "registrations": sorted(
                (
                    events[r.event_id],
                    r.external_id,
                    r.email,
                    r.status,
                    r.canceled_at,
                    r.excluded_reason,
                    contacts.get(r.contact_id) if r.contact_id else None,
                )
                for r in db.scalars(select(EventRegistration))
            ),
            "attendance": sorted(
                (
                    events[a.event_id],
                    a.person_key,
                    a.role,
                    a.total_seconds,
                    a.first_join_at,
                    a.last_leave_at,
                    a.excluded_reason,
                    contacts.get(a.contact_id) if a.contact_id else None,
                )
                for a in db.scalars(select(EventAttendance))
            ),
            "intervals": sorted(
                (
                    attendance[i.attendance_id],
                    sessions[i.session_id],
                    i.report_external_id,
                    i.join_at,
                    i.leave_at,
                    i.duration_seconds,
                )
                for i in db.scalars(select(AttendanceInterval))
            ),
            "contacts": sorted(
                (c.email, c.first_name, c.last_name, c.owning_bu_id)
                for c in db.scalars(select(Contact))
            ),
        }


def wipe_synced(session_factory: sessionmaker[Session]) -> None:
    """Delete what syncs wrote (events and everything under them, and contacts), keeping the
    connection, organizers and ticked webinars: the next sync starts from scratch."""
    with session_factory() as db, db.begin():
        for model in (
            AttendanceInterval,
            EventAttendance,
            RegistrationStatusChange,
            EventRegistration,
            MarketingEvent,
            Contact,
        ):
            db.execute(delete(model))
