"""Segment refreshes on the worker: event-driven from the change outbox, and periodic for
criteria with relative dates (SPEC B5; issue: "fresh and explainable").

``process_changes`` reads the pending ``data_change`` rows, decides which segments each
concerns and which contacts it touched, refreshes those (incrementally where the change
names its contacts), then deletes the rows it read. Each segment refreshes in its own
transaction; if the worker dies half way, the rows are still there and the next run
repeats the work, which is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact
from gatherly.core import changes, metrics
from gatherly.core.changes import DataChange
from gatherly.core.db import transaction, utcnow
from gatherly.scoring import jobs as scoring_jobs
from gatherly.segment import criteria as crit
from gatherly.segment import service
from gatherly.segment.models import DYNAMIC, STATE_FAILED, STATE_PENDING, Segment, SegmentListRef

log = logging.getLogger(__name__)
BATCH = 1000  # change rows per pass
MAX_PARTIAL_IDS = 20_000  # beyond this many touched contacts a full refresh is cheaper


@dataclass
class _Work:
    full: bool = False
    contact_ids: set[int] = field(default_factory=set)
    event_ids: set[int] = field(default_factory=set)

    def restriction(self) -> ColumnElement[bool] | None:
        if self.full or len(self.contact_ids) > MAX_PARTIAL_IDS:
            return None
        parts: list[ColumnElement[bool]] = []
        if self.contact_ids:
            parts.append(Contact.id.in_(sorted(self.contact_ids)))
        if self.event_ids:
            parts.append(service.contacts_of_events(sorted(self.event_ids)))
        return or_(*parts)


@dataclass
class DrainReport:
    """What one pass did."""

    changes: int = 0
    refreshed: list[service.RefreshResult] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _plan(db: Session, rows: list[DataChange]) -> dict[int, _Work]:
    segments = list(
        db.execute(select(Segment.id, Segment.uses_events).where(Segment.kind == DYNAMIC))
    )
    scored: dict[int, list[int]] | None = None  # scoring model id -> the segments using it
    work: dict[int, _Work] = {}

    def add(segment_id: int) -> _Work:
        return work.setdefault(segment_id, _Work())

    for row in rows:
        if row.topic in (changes.ALL, changes.OWNER, changes.ACCESS):
            # A flipped scoping switch, or a user's records (segments and contacts alike)
            # moving BU: any segment's scope may now select differently. Access: criteria
            # count the events, messages and scores the segment's owner may read.
            for seg_id, _uses in segments:
                add(seg_id).full = True
        elif row.topic == changes.SEGMENT and row.ref_id is not None:
            add(row.ref_id).full = True
        elif row.topic == changes.CONTACT:
            for seg_id, _uses in segments:
                w = add(seg_id)
                if row.contact_ids is None:
                    w.full = True
                else:
                    w.contact_ids.update(row.contact_ids)
        elif row.topic == changes.EVENT and row.ref_id is not None:
            for seg_id, uses_events in segments:
                if uses_events:
                    w = add(seg_id)
                    w.event_ids.add(row.ref_id)
                    w.contact_ids.update(row.contact_ids or ())
        elif row.topic == changes.SCORE and row.ref_id is not None:
            if scored is None:
                scored = _score_users(db)
            for seg_id in scored.get(row.ref_id, ()):
                w = add(seg_id)
                if row.contact_ids is None:
                    w.full = True
                else:
                    w.contact_ids.update(row.contact_ids)
        elif row.topic == changes.MARKETING_LIST and row.ref_id is not None:
            users = db.execute(
                select(SegmentListRef.segment_id).where(SegmentListRef.list_id == row.ref_id)
            ).scalars()
            for seg_id in users:
                w = add(seg_id)
                if row.contact_ids is None:
                    w.full = True
                else:
                    w.contact_ids.update(row.contact_ids)
    return work


def _score_users(db: Session) -> dict[int, list[int]]:
    """The dynamic segments whose criteria name each scoring model."""
    users: dict[int, list[int]] = {}
    rows = db.execute(
        select(Segment.id, Segment.criteria).where(
            Segment.kind == DYNAMIC, Segment.criteria.is_not(None)
        )
    )
    for seg_id, tree in rows:
        try:
            model_ids = crit.parse(tree).model_ids
        except crit.CriteriaError:  # a tree saved before a rule tightened: refreshed anyway
            continue
        for model_id in model_ids:
            users.setdefault(model_id, []).append(seg_id)
    return users


Handler = Callable[[sessionmaker[Session], list[DataChange], datetime | None], object]


def process_changes(
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    also: Sequence[Handler] = (scoring_jobs.handle_changes,),
) -> DrainReport:
    """Refresh the segments pending changes concern, hand each batch to the outbox's
    other consumers (``also``: lead scoring), then forget those changes."""
    report = DrainReport()
    while True:
        with transaction(factory) as db:
            rows = list(
                db.execute(select(DataChange).order_by(DataChange.id).limit(BATCH)).scalars()
            )
            if not rows:
                return report
            read = [row.id for row in rows]
            recorded = [(row.topic, row.created_at) for row in rows]
            plan = _plan(db, rows)
        for segment_id in sorted(plan):
            _refresh_one(factory, segment_id, plan[segment_id].restriction(), now, report)
        for handle in also:
            handle(factory, rows, now)
        with transaction(factory) as db:
            # Exactly the rows read: on PostgreSQL a transaction holding a lower id can
            # commit after this pass read a higher one; its row stays for the next pass.
            db.execute(delete(DataChange).where(DataChange.id.in_(read)))
        metrics.observe_change_lag(recorded)
        report.changes += len(rows)


def _refresh_one(
    factory: sessionmaker[Session],
    segment_id: int,
    restrict: ColumnElement[bool] | None,
    now: datetime | None,
    report: DrainReport,
) -> None:
    try:
        with transaction(factory) as db:
            result = service.refresh(db=db, segment_id=segment_id, restrict=restrict, now=now)
        if result is not None:
            report.refreshed.append(result)
    except Exception as exc:  # one broken segment must not stop the others
        log.exception("segment %s refresh failed", segment_id)
        report.failed[segment_id] = str(exc)
        with transaction(factory) as db:
            segment = db.get(Segment, segment_id)
            if segment is not None:
                segment.refresh_state = STATE_FAILED
                segment.refresh_error = str(exc)[:2000]


def refresh_due(
    factory: sessionmaker[Session], *, max_age: timedelta, now: datetime | None = None
) -> DrainReport:
    """Fully refresh segments never materialised, or whose relative dates ("in the last 90
    days") have moved on since their last refresh by more than ``max_age``."""
    now = now or utcnow()
    report = DrainReport()
    with transaction(factory) as db:
        due = list(
            db.execute(
                select(Segment.id).where(
                    Segment.kind == DYNAMIC,
                    or_(
                        Segment.refreshed_at.is_(None),
                        Segment.refresh_state == STATE_PENDING,
                        Segment.uses_relative_dates & (Segment.refreshed_at < now - max_age),
                    ),
                )
            ).scalars()
        )
    for segment_id in due:
        _refresh_one(factory, segment_id, None, now, report)
    return report
