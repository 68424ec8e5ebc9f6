"""Apply one fetched webinar to events, registrations, attendance, recordings and contacts,
writing only what differs (SPEC T6–T11, B8, B10); one webinar per transaction, called by the
run in :mod:`gatherly.teams.sync`.

Who is kept but not counted (the organizer, co-organizers and presenters, contact-exclusion
domains, tombstoned contacts, records without an email): docs/teams.md; what the counts
mean: :mod:`gatherly.event.participation`.

A town hall applies the same way, with two differences: it has no registrations, and an
attendance record without an email is an *anonymous attendee* (town halls are open to
people who join without signing in): counted as an attendee, never made a contact, one per
record (nothing ties two anonymous records to one person).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from gatherly.access.models import OWNER_USER
from gatherly.contact import matching
from gatherly.contact.models import Tombstone
from gatherly.core import changes as data_changes
from gatherly.core.exceptions import FatalSyncError
from gatherly.event import participation
from gatherly.event.models import (
    EXCLUDED_INTERNAL,
    EXCLUDED_NO_EMAIL,
    EXCLUDED_ORGANIZER,
    EXCLUDED_PRESENTER,
    EXCLUDED_TOMBSTONED,
    AttendanceInterval,
    EventAttendance,
    EventRecording,
    EventRegistration,
    EventSession,
    EventTranscript,
    MarketingEvent,
    RegistrationStatusChange,
    TranscriptCue,
)
from gatherly.org import service as org_service
from gatherly.org.models import User
from gatherly.teams import fetch
from gatherly.teams.models import (
    EVENT_TYPES,
    KIND_TOWNHALL,
    TeamsConnection,
    TeamsOrganizer,
    TeamsWebinar,
)

if TYPE_CHECKING:
    from gatherly.teams.sync import Syncer, Target

_ROLE_RANK = {"None": 0, "Attendee": 1, "Presenter": 2, "Organizer": 3}
_CHUNK = 500
_NOT_EMAIL = ("id:", "anon:")  # attendance keys of people without an email


def is_email_key(key: str) -> bool:
    """Whether an attendance key is an email (else ``id:…`` / ``anon:…``)."""
    return not key.startswith(_NOT_EMAIL)


def assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set only the attributes whose value differs; True when anything changed."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _split_name(display_name: str) -> tuple[str, str]:
    first, _, last = display_name.strip().partition(" ")
    return first[:100], last.strip()[:100]


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


@dataclass
class _Person:
    """One person on the event, merged from their registrations and attendance records."""

    key: str
    email: str | None
    display_name: str = ""
    identity_id: str | None = None
    role: str = "None"
    registration_external_id: str | None = None
    intervals: dict[tuple[str, datetime], tuple[str, fetch.Interval]] = field(default_factory=dict)


@dataclass
class _EventRows:
    """One kind of an event's rows (registrations, attendance, recordings) keyed as Graph keys
    them (one column, or several: a recording's id is unique within its session): those
    stored, and new ones collected to be inserted in one batch."""

    model: Any
    key: tuple[str, ...]
    stamped: bool  # the rows record when and by which run they were created
    stored: dict[Any, Any]
    new: dict[Any, dict[str, Any]] = field(default_factory=dict)

    def key_of(self, values: tuple[Any, ...]) -> Any:
        """A key as the dicts hold it: the value for one column, a tuple for several."""
        return values[0] if len(self.key) == 1 else tuple(values)


class Applier:
    """Applies one fetched webinar to the database, writing only differences."""

    def __init__(
        self,
        db: Session,
        syncer: Syncer,
        connection: TeamsConnection,
        target: Target,
        data: fetch.WebinarData,
    ) -> None:
        self.db = db
        self.syncer = syncer
        self.connection = connection
        self.target = target
        self.data = data
        self.run_id = syncer.report.run_id
        self.changes: Counter[str] = Counter()
        self.excluded: dict[str, list[str]] = {}
        self.new_contacts: list[str] = []
        self.event_action = "unchanged"
        self.scoping = org_service.feature_enabled(db=db, name=org_service.BU_SCOPING)
        self.event: MarketingEvent | None = None
        self.new_intervals: list[dict[str, Any]] = []
        self.created_contact_ids: set[int] = set()
        self.unlinked_contacts: set[int] = set()  # whose attendance rows were removed
        # Town halls count attendance records without an email as anonymous attendees.
        self.townhall = data.webinar.kind == KIND_TOWNHALL
        self.anonymous = 0

    # -------------------------------------------------------------- owner (B10)

    def _owner(self) -> User:
        organizer = self.db.get(TeamsOrganizer, self.target.organizer_id)
        assert organizer is not None
        for user_id in (organizer.user_id, self.connection.default_owner_id):
            if user_id is not None and (user := self.db.get(User, user_id)) is not None:
                return user
        raise FatalSyncError(
            f"no owner for webinars of {organizer.display_name}: map the organizer to a "
            "Gatherly user (same email) or set a default owner in the Teams settings"
        )

    # -------------------------------------------------------------- apply

    def apply(self) -> None:
        webinar = self.data.webinar
        owner = self._owner()
        event = self.event = self._event(owner)
        sessions = self._sessions(event)
        people = self._people()
        reasons = self._reasons(people)
        contacts = self._contacts(event, people, reasons)
        registrations = self._registrations(event, reasons, contacts)
        self._attendance(event, people, reasons, contacts, registrations, sessions)
        self._recordings(event, sessions)
        self.db.flush()
        self._counts(event)
        if self.changes:
            # Segments depending on this event, or on these people, refresh after commit.
            linked = set(contacts.values()) | self.unlinked_contacts
            data_changes.record(self.db, data_changes.EVENT, ref_id=event.id, contact_ids=linked)
            if self.created_contact_ids:
                data_changes.record(
                    self.db, data_changes.CONTACT, contact_ids=self.created_contact_ids
                )
        row = self.db.scalar(select(TeamsWebinar).where(TeamsWebinar.graph_id == webinar.id))
        if row is not None:
            changed = bool(self.changes) or row.event_id != event.id or row.last_error != ""
            assign(row, {"event_id": event.id, "last_error": ""})
            row.last_synced_at = self.syncer.now()
            if changed:
                row.last_changed_at = self.syncer.now()
        self.db.flush()

    def _event(self, owner: User) -> MarketingEvent:
        webinar = self.data.webinar
        first = min(
            self.data.sessions, key=lambda s: (s.start_at is None, s.start_at), default=None
        )
        values = {
            "name": webinar.display_name[:500],
            "description": webinar.description,
            "event_type": EVENT_TYPES[webinar.kind],
            "status": webinar.status,
            "start_at": webinar.start_at,
            "end_at": webinar.end_at,
            "time_zone": webinar.time_zone[:64],
            "organizer_name": webinar.organizer_name[:300],
            "organizer_email": self._organizer_email(),
            "audience": webinar.audience[:30],
            "join_url": first.join_url if first else None,
            "source": "teams",
        }
        event = self.db.scalar(
            select(MarketingEvent).where(MarketingEvent.external_id == webinar.id)
        )
        if event is None:
            event = MarketingEvent(
                external_id=webinar.id,
                owner_type=OWNER_USER,
                owner_id=owner.id,
                owning_bu_id=owner.business_unit_id,
                created_by_sync_run_id=self.run_id,
                modified_by_sync_run_id=self.run_id,
                created_at=self.syncer.now(),
                modified_at=self.syncer.now(),
                **values,
            )
            self.db.add(event)
            self.db.flush()
            self.changes["events_created"] += 1
            self.event_action = "create"
        elif assign(event, values):
            event.modified_at = self.syncer.now()
            event.modified_by_sync_run_id = self.run_id
            self.changes["events_updated"] += 1
            self.event_action = "update"
        return event

    def _organizer_email(self) -> str | None:
        organizer = self.db.get(TeamsOrganizer, self.target.organizer_id)
        return organizer.email if organizer else None

    def _sessions(self, event: MarketingEvent) -> dict[str, EventSession]:
        existing = {
            s.external_id: s
            for s in self.db.scalars(select(EventSession).where(EventSession.event_id == event.id))
        }
        for session in self.data.sessions:
            values = {
                "subject": session.subject,
                "start_at": session.start_at,
                "end_at": session.end_at,
                "join_url": session.join_url,
            }
            row = existing.get(session.id)
            if row is None:
                row = EventSession(event_id=event.id, external_id=session.id, **values)
                self.db.add(row)
                existing[session.id] = row
                self.changes["sessions_created"] += 1
            elif assign(row, values):
                self.changes["sessions_updated"] += 1
        self.db.flush()
        return existing

    # -------------------------------------------------------------- people and reasons

    def _people(self) -> dict[str, _Person]:
        """Everyone in the attendance reports, keyed by normalised email (docs/teams.md)."""
        people: dict[str, _Person] = {}
        for session in self.data.sessions:
            for report in session.reports:
                for record in report.records:
                    key = record.email or (
                        f"id:{record.identity_id}"
                        if record.identity_id
                        else self._anonymous_key(report, record)
                    )
                    person = people.setdefault(key, _Person(key=key, email=record.email))
                    person.display_name = person.display_name or record.display_name
                    person.identity_id = person.identity_id or record.identity_id
                    if _ROLE_RANK[record.role] > _ROLE_RANK[person.role]:
                        person.role = record.role
                    person.registration_external_id = (
                        person.registration_external_id or record.registration_id
                    )
                    for interval in record.intervals:
                        person.intervals[(report.id, interval.join_at)] = (session.id, interval)
        return people

    def _anonymous_key(self, report: fetch.Report, record: fetch.AttendanceRecord) -> str:
        """The key of a record with neither email nor identity: by name on a webinar (kept,
        not counted), one per record on a town hall (each is an anonymous attendee; the
        record's report and id keep the key the same on every sync)."""
        if not self.townhall:
            return f"anon:{record.display_name.casefold()}"
        digest = hashlib.sha256(f"{report.id}\x00{record.id}".encode()).hexdigest()[:32]
        return f"anon:{digest}"

    def _reasons(self, people: dict[str, _Person]) -> dict[str, str | None]:
        """Why each email (or attendance key) is not counted; None when it is counted."""
        webinar = self.data.webinar
        organizer_ids = {webinar.organizer_id} - {None}
        organizer_emails = {self._organizer_email()} - {None}
        presenter_ids = set(webinar.co_organizer_ids)
        presenter_emails: set[str] = set()
        for person in people.values():
            if person.role in ("Organizer", "Presenter") and person.email:
                (organizer_emails if person.role == "Organizer" else presenter_emails).add(
                    person.email
                )
            if person.role == "Presenter" and person.identity_id:
                presenter_ids.add(person.identity_id)
        user_ids: dict[str, str | None] = {
            r.email: r.user_id for r in self.data.registrations if r.email
        }
        for person in people.values():
            if person.email and person.identity_id:
                user_ids.setdefault(person.email, person.identity_id)
        internal = set(self.connection.contact_exclusion_domains)
        keys = {r.email for r in self.data.registrations if r.email} | set(people)
        tombstoned = self._tombstoned([k for k in keys if "@" in k and is_email_key(k)])
        reasons: dict[str, str | None] = {}
        for key in keys:
            email = key if is_email_key(key) else None
            known = people.get(key)
            uid = user_ids.get(key) if email else (known.identity_id if known else None)
            role = known.role if known else "None"
            if (email in organizer_emails) or (uid in organizer_ids) or role == "Organizer":
                reasons[key] = EXCLUDED_ORGANIZER
            elif email in presenter_emails or uid in presenter_ids or role == "Presenter":
                reasons[key] = EXCLUDED_PRESENTER
            elif email is None and self.townhall:
                reasons[key] = None  # an anonymous attendee: counted, never a contact
                self.anonymous += 1
            elif email is None:
                reasons[key] = EXCLUDED_NO_EMAIL
            elif fetch.email_domain(email) in internal:
                reasons[key] = EXCLUDED_INTERNAL
            elif email in tombstoned:
                reasons[key] = EXCLUDED_TOMBSTONED
            else:
                reasons[key] = None
            if reasons[key]:
                self.excluded.setdefault(str(reasons[key]), []).append(email or key)
        for values in self.excluded.values():
            values.sort()
        return reasons

    def _tombstoned(self, emails: list[str]) -> set[str]:
        """Emails of deleted contacts with no live contact now (T8); BU-aware when scoping is on."""
        found: set[str] = set()
        bu = self._owning_bu()
        for chunk in _chunks(sorted(emails)):
            stmt = select(Tombstone.email).where(
                Tombstone.record_type == "contact", Tombstone.email.in_(chunk)
            )
            if self.scoping:
                stmt = stmt.where(Tombstone.owning_bu_id == bu)
            found.update(e for e in self.db.scalars(stmt) if e)
        if not found:
            return found
        live = self._existing_contacts(sorted(found))
        return found - set(live)

    def _owning_bu(self) -> int:
        assert self.event is not None
        return self.event.owning_bu_id

    def _existing_contacts(self, emails: list[str]) -> dict[str, int]:
        """Email → contact id, matched per B8 by the matching service (the built-in email
        rule): in the event's BU when scoping is on, the oldest record when several."""
        return matching.find_by_email(
            self.db, record_type="contact", emails=emails, bu_id=self._owning_bu()
        )

    # -------------------------------------------------------------- contacts (T8, B8)

    def _contacts(
        self, event: MarketingEvent, people: dict[str, _Person], reasons: dict[str, str | None]
    ) -> dict[str, int]:
        counted = sorted(k for k, r in reasons.items() if r is None and is_email_key(k))
        contacts = self._existing_contacts(counted)
        names: dict[str, tuple[str, str]] = {}
        for reg in self.data.registrations:
            if reg.email and (reg.first_name or reg.last_name):
                names.setdefault(reg.email, (reg.first_name, reg.last_name))
        now = self.syncer.now()
        created: list[dict[str, Any]] = []
        for key in counted:
            if key in contacts:
                continue
            first, last = names.get(key) or _split_name(
                people[key].display_name if key in people else ""
            )
            plan_key = (key, event.owning_bu_id if self.scoping else None)
            if plan_key not in self.syncer.planned_contacts:
                self.new_contacts.append(key)
                self.changes["contacts_created"] += 1
            if self.syncer.dry_run:
                self.syncer.planned_contacts.add(plan_key)
            created.append(
                {
                    "email": key,
                    "first_name": first,
                    "last_name": last,
                    "owner_type": event.owner_type,
                    "owner_id": event.owner_id,
                    "owning_bu_id": event.owning_bu_id,
                    "origin": "teams_sync",
                    "origin_sync_run_id": self.run_id,
                    "origin_event_id": event.id,
                    "created_at": now,
                    "modified_at": now,
                    "custom": {},
                }
            )
        if created:
            # Each new contact holds its match key: one a form or another sync made since
            # we looked is matched, never made twice.
            new_ids = matching.insert_new(self.db, record_type="contact", rows=created)
            contacts.update(new_ids)
            self.created_contact_ids.update(new_ids.values())
        return contacts

    def _event_rows(
        self, model: Any, key: str | tuple[str, ...], event: MarketingEvent, *, stamped: bool = True
    ) -> _EventRows:
        """The event's stored rows of ``model``, by their ``key`` column(s)."""
        columns = (key,) if isinstance(key, str) else key
        rows = _EventRows(model, columns, stamped, {})
        for row in self.db.scalars(select(model).where(model.event_id == event.id)):
            rows.stored[rows.key_of(tuple(getattr(row, c) for c in columns))] = row
        return rows

    def _add_new(
        self, rows: _EventRows, event: MarketingEvent, key: Any, values: dict[str, Any]
    ) -> None:
        """Collect a row Graph has and the database has not (stamped with this run when the
        rows record it); Graph listing it twice keeps the last."""
        keys = (key,) if len(rows.key) == 1 else key
        stamp = (
            {"created_at": self.syncer.now(), "created_by_sync_run_id": self.run_id}
            if rows.stamped
            else {}
        )
        columns = dict(zip(rows.key, keys, strict=True))
        rows.new[key] = {"event_id": event.id, **columns, **stamp, **values}

    def _insert_new(self, rows: _EventRows, event: MarketingEvent, counter: str) -> dict[Any, int]:
        """Insert the collected rows in one batch (executemany: far faster than ORM objects or
        RETURNING on large batches), count them, and read every key's id back."""
        model = rows.model
        if rows.new:
            # NULLs rendered, not left out: the ORM would otherwise split the batch wherever
            # one row's None differs from the next's (a town hall's anonymous attendees among
            # its contacts made 4,000 statements of 20,000 rows).
            self.db.execute(
                insert(model).execution_options(render_nulls=True), list(rows.new.values())
            )
            self.changes[counter] += len(rows.new)
        found = select(*(getattr(model, c) for c in rows.key), model.id).where(
            model.event_id == event.id
        )
        return {rows.key_of(tuple(r[:-1])): r[-1] for r in self.db.execute(found)}

    def _insert(self, model: Any, rows: list[dict[str, Any]], found: Any) -> dict[Any, int]:
        """Insert new rows in one executemany, then read their ids back with ``found``
        (a select of key, id): far faster than ORM objects or RETURNING on large batches."""
        if not rows:
            return {}
        self.db.execute(insert(model), rows)
        return {key: row_id for key, row_id in self.db.execute(found)}

    # -------------------------------------------------------------- registrations (T10)

    def _registrations(
        self, event: MarketingEvent, reasons: dict[str, str | None], contacts: dict[str, int]
    ) -> dict[str, tuple[int, str | None]]:
        """Upsert registrations; returns Graph registration id → (row id, email)."""
        rows = self._event_rows(EventRegistration, "external_id", event)
        existing = rows.stored
        now = self.syncer.now()
        history: list[tuple[str, str, datetime]] = []  # (Graph id, status, when)
        for reg in self.data.registrations:
            reason = reasons.get(reg.email) if reg.email else EXCLUDED_NO_EMAIL
            values = {
                "email": reg.email,
                "first_name": reg.first_name,
                "last_name": reg.last_name,
                "status": reg.status,
                "registered_at": reg.registered_at,
                "canceled_at": reg.canceled_at,
                "contact_id": contacts.get(reg.email) if reg.email and reason is None else None,
                "excluded_reason": reason,
                "owner_type": event.owner_type,
                "owner_id": event.owner_id,
                "owning_bu_id": event.owning_bu_id,
            }
            row = existing.get(reg.id)
            if row is None:
                self._add_new(rows, event, reg.id, values)
                if reg.status == "canceled" and reg.registered_at is not None:
                    history.append((reg.id, "registered", reg.registered_at))
                history.append((reg.id, reg.status, _status_time(reg, reg.registered_at or now)))
            else:
                previous = row.status
                if assign(row, values):
                    self.changes["registrations_updated"] += 1
                    if previous != reg.status:
                        self.changes["registration_status_changes"] += 1
                        history.append((reg.id, reg.status, _status_time(reg, now)))
        ids = {r.external_id: r.id for r in existing.values()}
        ids.update(self._insert_new(rows, event, "registrations_created"))
        if history:
            self.db.execute(
                insert(RegistrationStatusChange),
                [
                    {
                        "registration_id": ids[graph_id],
                        "status": status,
                        "changed_at": at,
                        "observed_at": now,
                        "sync_run_id": self.run_id,
                    }
                    for graph_id, status, at in history
                ],
            )
        emails = {r.id: r.email for r in self.data.registrations}
        emails.update({r.external_id: r.email for r in existing.values()})
        return {graph_id: (row_id, emails.get(graph_id)) for graph_id, row_id in ids.items()}

    # -------------------------------------------------------------- attendance (T9)

    def _attendance(
        self,
        event: MarketingEvent,
        people: dict[str, _Person],
        reasons: dict[str, str | None],
        contacts: dict[str, int],
        registrations: dict[str, tuple[int, str | None]],
        sessions: dict[str, EventSession],
    ) -> None:
        fetched_reports = {r.id for s in self.data.sessions for r in s.reports}
        rows = self._event_rows(EventAttendance, "person_key", event)
        existing = dict(rows.stored)
        stored: dict[int, dict[tuple[str, datetime], AttendanceInterval]] = {}
        if existing:
            for interval in self.db.scalars(
                select(AttendanceInterval)
                .join(EventAttendance, EventAttendance.id == AttendanceInterval.attendance_id)
                .where(EventAttendance.event_id == event.id)
            ):
                stored.setdefault(interval.attendance_id, {})[
                    (interval.report_external_id, interval.join_at)
                ] = interval
        by_email = {email: row_id for row_id, email in registrations.values() if email}
        for key, person in people.items():
            reason = reasons.get(key)
            found = registrations.get(person.registration_external_id or "")
            registration_id = found[0] if found else by_email.get(person.email or "")
            values: dict[str, Any] = {
                "email": person.email,
                "display_name": person.display_name,
                "role": person.role,
                "registration_id": registration_id,
                "contact_id": contacts.get(key) if reason is None else None,
                "excluded_reason": reason,
                "owner_type": event.owner_type,
                "owner_id": event.owner_id,
                "owning_bu_id": event.owning_bu_id,
            }
            row = existing.pop(key, None)
            if row is None:
                spans = [i for _, i in person.intervals.values()]
                totals = {
                    "first_join_at": min((i.join_at for i in spans), default=None),
                    "last_leave_at": max((i.leave_at for i in spans), default=None),
                    "total_seconds": sum(i.seconds for i in spans),
                }
                self._add_new(rows, event, key, {**totals, **values})
                continue
            changed = assign(row, values)
            kept = self._intervals(
                row.id, person, stored.get(row.id, {}), fetched_reports, sessions
            )
            totals = {
                "first_join_at": min((i[0] for i in kept), default=None),
                "last_leave_at": max((i[1] for i in kept), default=None),
                "total_seconds": sum(i[2] for i in kept),
            }
            if assign(row, totals) or changed:
                self.changes["attendance_updated"] += 1
        new_ids = self._insert_new(rows, event, "attendance_created")
        for row_values in rows.new.values():
            key = row_values["person_key"]
            self._intervals(new_ids[key], people[key], {}, fetched_reports, sessions)
        if self.new_intervals:
            self.db.execute(insert(AttendanceInterval), self.new_intervals)
            self.changes["intervals_created"] += len(self.new_intervals)
            self.new_intervals = []
        # People no longer in any fetched report keep only intervals of reports Graph no
        # longer lists (it shows the 10 most recent): never drop data Graph has aged out.
        for row in existing.values():
            kept = self._intervals(
                row.id,
                _Person(key=row.person_key, email=row.email),
                stored.get(row.id, {}),
                fetched_reports,
                sessions,
            )
            if not kept:
                if row.contact_id is not None:
                    self.unlinked_contacts.add(row.contact_id)
                self.db.delete(row)
                self.changes["attendance_deleted"] += 1

    def _intervals(
        self,
        attendance_id: int,
        person: _Person,
        stored: dict[tuple[str, datetime], AttendanceInterval],
        fetched_reports: set[str],
        sessions: dict[str, EventSession],
    ) -> list[tuple[datetime, datetime, int]]:
        """Bring one person's intervals in line with the fetched reports; returns every kept
        interval as (join, leave, seconds), including those of reports Graph aged out."""
        new: list[dict[str, Any]] = []
        for key, (session_id, fetched) in person.intervals.items():
            values = {
                "session_id": sessions[session_id].id,
                "leave_at": fetched.leave_at,
                "duration_seconds": fetched.seconds,
            }
            existing = stored.get(key)
            if existing is None:
                new.append(
                    {
                        "attendance_id": attendance_id,
                        "report_external_id": key[0],
                        "join_at": key[1],
                        **values,
                    }
                )
            elif assign(existing, values):
                self.changes["intervals_updated"] += 1
        kept: list[tuple[datetime, datetime, int]] = []
        for key, interval in stored.items():
            if key[0] in fetched_reports and key not in person.intervals:
                self.db.delete(interval)
                self.changes["intervals_deleted"] += 1
            else:
                kept.append((interval.join_at, interval.leave_at, interval.duration_seconds))
        self.new_intervals += new  # inserted in one batch by _attendance
        kept += [(n["join_at"], n["leave_at"], n["duration_seconds"]) for n in new]
        return kept

    # -------------------------------------------------------------- recordings (T11)

    def _recordings(self, event: MarketingEvent, sessions: dict[str, EventSession]) -> None:
        """Upsert recordings and transcripts by Graph id; never delete what Graph stops
        listing (artifacts of expired meetings disappear from Graph, not from history)."""
        recordings = self._event_rows(
            EventRecording, ("session_id", "external_id"), event, stamped=False
        )
        transcripts = {
            (t.session_id, t.external_id): t
            for t in self.db.scalars(
                select(EventTranscript).where(EventTranscript.event_id == event.id)
            )
        }
        for session in self.data.sessions:
            session_id = sessions[session.id].id
            for rec in session.recordings:
                values = _artifact_values(rec)
                row = recordings.stored.get((session_id, rec.id))
                if row is None:
                    self._add_new(recordings, event, (session_id, rec.id), values)
                elif assign(row, values):
                    self.changes["recordings_updated"] += 1
        self.db.flush()
        ids = self._insert_new(recordings, event, "recordings_created")
        # Transcripts point at the recording of the same session and correlation id.
        by_correlation = {
            (r.session_id, r.content_correlation_id): r.id
            for r in recordings.stored.values()
            if r.content_correlation_id
        }
        by_correlation.update(
            {
                (n["session_id"], n["content_correlation_id"]): ids[key]
                for key, n in recordings.new.items()
                if n["content_correlation_id"]
            }
        )
        for session in self.data.sessions:
            session_id = sessions[session.id].id
            for tr in session.transcripts:
                values = {
                    **_artifact_values(tr),
                    "vtt": tr.vtt,
                    "recording_id": by_correlation.get((session_id, tr.correlation_id or "")),
                }
                row_t = transcripts.get((session_id, tr.id))
                if row_t is None:
                    row_t = EventTranscript(
                        event_id=event.id, session_id=session_id, external_id=tr.id, **values
                    )
                    self.db.add(row_t)
                    self.db.flush()
                    self.changes["transcripts_created"] += 1
                    self._cues(row_t, tr.cues)
                else:
                    vtt_changed = row_t.vtt != tr.vtt
                    if assign(row_t, values):
                        self.changes["transcripts_updated"] += 1
                    if vtt_changed:
                        self.db.execute(
                            delete(TranscriptCue).where(TranscriptCue.transcript_id == row_t.id)
                        )
                        self._cues(row_t, tr.cues)

    def _cues(self, transcript: EventTranscript, cues: tuple[fetch.Cue, ...]) -> None:
        self.db.add_all(
            TranscriptCue(
                transcript_id=transcript.id,
                seq=seq,
                start_ms=cue.start_ms,
                end_ms=cue.end_ms,
                speaker=cue.speaker,
                text=cue.text,
            )
            for seq, cue in enumerate(cues)
        )
        self.changes["transcript_cues_created"] += len(cues)

    # -------------------------------------------------------------- counts (T6, T7)

    def _counts(self, event: MarketingEvent) -> None:
        counts = participation.event_counts(self.db, event_id=event.id)
        values = {
            "registrant_count": counts.registrants,
            "cancellation_count": counts.cancellations,
            "attendee_count": counts.attendees,
        }
        if assign(event, values):
            self.changes["event_counts_changed"] += 1

    def plan(self) -> dict[str, Any]:
        """What this webinar's apply did (dry run: would do)."""
        return {
            "webinar_id": self.data.webinar.id,
            "webinar": self.data.webinar.display_name,
            "event": self.event_action,
            "changes": dict(sorted(self.changes.items())),
            "contacts_to_create": self.new_contacts,
            "excluded": self.excluded,
            "anonymous_attendees": self.anonymous,
        }


def _artifact_values(item: fetch.Recording | fetch.Transcript) -> dict[str, Any]:
    return {
        "meeting_id": item.meeting_id,
        "content_correlation_id": item.correlation_id,
        "recorded_at": item.created_at,
        "ended_at": item.ended_at,
        "content_url": item.content_url,
    }


def _status_time(reg: fetch.Registration, now: datetime) -> datetime:
    if reg.status == "canceled" and reg.canceled_at is not None:
        return reg.canceled_at
    return now
