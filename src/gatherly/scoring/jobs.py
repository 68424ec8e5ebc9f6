"""Scores on the worker (SPEC B9): incrementally from the change outbox, and in full when
a model changed or its windows moved on.

``handle_changes`` gets each batch of ``data_change`` rows the outbox drain reads (beside
the segment refresh): the contacts they name are rescored by every live model, each
model in its own transaction. A change that names no contacts (a BU-scoping flip, an
owner's records moving) marks every live model for a full rescore instead. A worker that
dies half way leaves the rows in the outbox; the next pass repeats the work, and the
upsert writes only scores that differ, so nothing is counted twice.

``rescore_due`` runs the full rescores: models marked pending, and models with a window
("in the last 30 days") whose last full rescore is older than the refresh interval, so
points expire as time passes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Lead
from gatherly.core import changes
from gatherly.core.changes import DataChange
from gatherly.core.db import transaction, utcnow
from gatherly.event.models import EventAttendance, EventRegistration
from gatherly.scoring import engine, service
from gatherly.scoring.models import LIVE, ScoringModel

log = logging.getLogger(__name__)
MAX_PARTIAL = 20_000  # beyond this many touched contacts a full rescore is cheaper


@dataclass
class ScoringReport:
    """What one pass did."""

    rescored: list[engine.Rescored] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def became_ready(self) -> int:
        """Scores that rose to their model's threshold in this pass."""
        return sum(r.became_ready for r in self.rescored)


def _touched(db: Session, rows: Sequence[DataChange]) -> set[int] | None:
    """The contacts a batch of changes touched (None: too many, or not known)."""
    found: set[int] = set()
    for row in rows:
        if row.topic in (changes.ALL, changes.OWNER, changes.ACCESS):
            return None  # ACCESS: a model scores what its owner may read
        if row.topic in (changes.CONTACT, changes.INTERACTION):
            if row.contact_ids is None:
                return None
            found.update(row.contact_ids)
        elif row.topic == changes.LEAD and row.contact_ids:
            found.update(
                i
                for i in db.scalars(select(Lead.contact_id).where(Lead.id.in_(row.contact_ids)))
                if i is not None
            )
        elif row.topic == changes.EVENT and row.ref_id is not None:
            if row.contact_ids is not None:
                found.update(row.contact_ids)
            else:  # the event itself changed: everyone who took part in it
                for model in (EventRegistration, EventAttendance):
                    found.update(
                        i
                        for i in db.scalars(
                            select(model.contact_id).where(
                                model.event_id == row.ref_id, model.contact_id.is_not(None)
                            )
                        )
                        if i is not None
                    )
        if len(found) > MAX_PARTIAL:
            return None
    return found


def handle_changes(
    factory: sessionmaker[Session],
    rows: list[DataChange],
    now: datetime | None = None,
    report: ScoringReport | None = None,
) -> ScoringReport:
    """Rescore, for every live model, the contacts a batch of outbox changes touched."""
    report = report or ScoringReport()
    # A model's own change is a wake-up: ``rescore_due`` runs its full rescore.
    ignored = (changes.SCORE, changes.SEGMENT, changes.SCORING_MODEL, changes.MARKETING_LIST)
    relevant = [r for r in rows if r.topic not in ignored]
    if not relevant:
        return report
    with transaction(factory) as db:
        models = list(db.scalars(select(ScoringModel.id).where(ScoringModel.state == LIVE)))
        if not models:
            return report
        touched = _touched(db, relevant)
        if touched is None:
            db.execute(
                update(ScoringModel).where(ScoringModel.state == LIVE).values(full_pending=True)
            )
            return report
    if touched:
        for model_id in models:
            _rescore_one(factory, model_id, sorted(touched), now, report)
    return report


def rescore_due(
    factory: sessionmaker[Session], *, max_age: timedelta, now: datetime | None = None
) -> ScoringReport:
    """Fully rescore the live models pending it, and those with windows whose last full
    rescore is older than ``max_age``."""
    now = now or utcnow()
    report = ScoringReport()
    with transaction(factory) as db:
        live = list(db.scalars(select(ScoringModel).where(ScoringModel.state == LIVE)))
        due = [
            m.id
            for m in live
            if m.full_pending
            or m.scored_at is None
            or (_has_windows(m) and m.scored_at < now - max_age)
        ]
    for model_id in due:
        _rescore_one(factory, model_id, None, now, report)
    return report


def _has_windows(model: ScoringModel) -> bool:
    return any(c.get("within_days") for c in model.conditions)


def _rescore_one(
    factory: sessionmaker[Session],
    model_id: int,
    contact_ids: Sequence[int] | None,
    now: datetime | None,
    report: ScoringReport,
) -> None:
    try:
        with transaction(factory) as db:
            model = db.get(ScoringModel, model_id)
            if model is None or model.state != LIVE:
                return
            when = now or utcnow()
            if contact_ids is None:
                result = service.run_full(db, model, now=when)
            else:
                result = engine.rescore(db, model, now=when, contact_ids=contact_ids)
            if result.changed or result.removed:
                # Segments whose criteria name the model follow its scores.
                changes.record(db, changes.SCORE, ref_id=model_id, contact_ids=result.contact_ids)
        report.rescored.append(result)
    except Exception as exc:  # one broken model must not stop the others
        log.exception("scoring model %s failed", model_id)
        report.failed[model_id] = str(exc)
        with transaction(factory) as db:
            model = db.get(ScoringModel, model_id)
            if model is not None:
                model.score_error = str(exc)[:2000]
