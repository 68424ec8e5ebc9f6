"""Bulk duplicate detection (SPEC B8): a job that lists the pairs of records the rules say
are the same person, run on the worker as the user who asked for it.

A job compares only records its user may read and only that user sees it; reading its
pairs filters them again through the access engine, so a role taken away since hides the
pairs it no longer allows, and a merged or deleted record's pairs disappear. Pairs are
grouped per rule and key: each record is paired with the oldest record of its group (the
likely master), so a group of n records is n − 1 pairs, not n².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Integer, delete, func, literal, not_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.capture.models import DONE, FAILED, QUEUED, RUNNING, DuplicateJob, DuplicatePair
from gatherly.contact import matching
from gatherly.contact.models import PersonMixin
from gatherly.core.db import transaction, utcnow
from gatherly.core.exceptions import Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.org import directory


class DuplicatesQueue(Protocol):
    """Where jobs go to be run by a worker (``gatherly.jobs.queue.Jobs``)."""

    def enqueue_duplicates(self, *, job_id: int) -> None: ...


def _record_type(principal: access.Principal, record_type: str) -> str:
    if record_type not in matching.MODELS:
        raise ValidationFailed("record type must be contact or lead", field="record_type")
    if principal.max_level(record_type, Privilege.READ) == Level.NONE:
        raise Forbidden(f"you may not read {record_type}s, so you cannot look for duplicates")
    return record_type


def start_job(
    *,
    db: Session,
    principal: access.Principal,
    record_type: str,
    rule_ids: Sequence[int] | None = None,
    queue: DuplicatesQueue | None,
) -> DuplicateJob:
    """Record a job and queue it (committed first, so the worker finds it); without a
    queue the caller runs it (:func:`run_job`)."""
    _record_type(principal, record_type)
    rules = matching.rules_for(db, record_type, rule_ids)
    if not rules:
        raise ValidationFailed(
            f"no {record_type} duplicate detection rule is published; publish one or name it",
            field="rule_ids",
        )
    job = DuplicateJob(
        record_type=record_type,
        rule_ids=",".join(str(r.id) for r in rules) if rule_ids is not None else "",
        state=QUEUED,
        requested_by_id=principal.user_id,
    )
    db.add(job)
    db.flush()
    if queue is not None:
        db.commit()
        queue.enqueue_duplicates(job_id=job.id)
    return job


def run_job(factory: sessionmaker[Session], job_id: int) -> DuplicateJob | None:
    """Find the pairs, in one transaction (a killed worker leaves the job queued or running
    with no pairs, and running it again starts over). Returns the job, or None if gone."""
    with transaction(factory) as db:
        job = db.get(DuplicateJob, job_id)
        if job is None or job.state in (DONE, FAILED):
            return job
        job.state, job.started_at = RUNNING, utcnow()
    try:
        with transaction(factory) as db:
            job = db.get_one(DuplicateJob, job_id)
            db.execute(delete(DuplicatePair).where(DuplicatePair.job_id == job.id))
            principal = directory.load_principal(db, job.requested_by_id)
            ids = [int(i) for i in job.rule_ids.split(",") if i] or None
            rules = matching.rules_for(db, job.record_type, ids)
            for rule in rules:
                _find_pairs(db, principal, job, rule)
            job.pairs = db.scalar(select(func.count()).where(DuplicatePair.job_id == job.id)) or 0
            job.state, job.finished_at = DONE, utcnow()
            # The user's older jobs of the type are superseded.
            db.execute(
                delete(DuplicateJob).where(
                    DuplicateJob.requested_by_id == job.requested_by_id,
                    DuplicateJob.record_type == job.record_type,
                    DuplicateJob.id < job.id,
                    DuplicateJob.state.in_((DONE, FAILED)),
                )
            )
            return job
    except Exception as exc:
        with transaction(factory) as db:
            job = db.get_one(DuplicateJob, job_id)
            job.state, job.finished_at = FAILED, utcnow()
            job.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise


def _find_pairs(
    db: Session, principal: access.Principal, job: DuplicateJob, rule: matching.Rule
) -> None:
    """One statement: each readable record paired with the oldest readable record of its
    group (same code, and same owning BU with scoping on)."""
    model = matching.MODELS[job.record_type]
    dialect = db.get_bind().dialect.name
    codes = rule.sql_code(model, dialect)
    groups = [model.owning_bu_id, *codes] if matching.scoping(db) else codes
    grouped = (
        select(model.id.label("id"), func.min(model.id).over(partition_by=groups).label("first"))
        .where(access.readable(principal, job.record_type), not_(rule.sql_blank(model, dialect)))
        .subquery()
    )
    pairs = select(
        literal(job.id, Integer),
        literal(rule.id, Integer),
        grouped.c.first,
        grouped.c.id,
    ).where(grouped.c.id != grouped.c.first)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DuplicatePair)
    db.execute(
        ins.from_select(
            ["job_id", "rule_id", "record_id", "duplicate_id"], pairs
        ).on_conflict_do_nothing()
    )


# ------------------------------------------------------------------ reading


def get_job(*, db: Session, principal: access.Principal, job_id: int) -> DuplicateJob:
    """One of the caller's jobs (another user's is not found)."""
    job = db.get(DuplicateJob, job_id)
    if job is None or job.requested_by_id != principal.user_id:
        raise NotFound(f"duplicate detection job {job_id} not found", field="job_id")
    return job


def list_jobs(
    *, db: Session, principal: access.Principal, record_type: str | None = None
) -> list[DuplicateJob]:
    """The caller's jobs, newest first."""
    stmt = select(DuplicateJob).where(DuplicateJob.requested_by_id == principal.user_id)
    if record_type is not None:
        stmt = stmt.where(DuplicateJob.record_type == record_type)
    return list(db.scalars(stmt.order_by(DuplicateJob.id.desc()).limit(50)))


def latest_job(
    *, db: Session, principal: access.Principal, record_type: str
) -> DuplicateJob | None:
    """The caller's newest job of a type."""
    found = list_jobs(db=db, principal=principal, record_type=record_type)
    return found[0] if found else None


@dataclass(frozen=True)
class Pair:
    """Two records a rule matched, as the viewer may read them now."""

    id: int
    rule_id: int | None
    rule_name: str
    record: PersonMixin
    duplicate: PersonMixin


def _visible(principal: access.Principal, job: DuplicateJob) -> Any:
    model = matching.MODELS[job.record_type]
    readable = select(model.id).where(access.readable(principal, job.record_type))
    return select(DuplicatePair).where(
        DuplicatePair.job_id == job.id,
        DuplicatePair.record_id.in_(readable),
        DuplicatePair.duplicate_id.in_(readable),
    )


def pairs(
    *,
    db: Session,
    principal: access.Principal,
    job_id: int,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[DuplicateJob, Page]:
    """A page of a job's pairs whose two records the caller may read now (a merged or
    deleted record's pairs are gone); items are :class:`Pair`."""
    job = get_job(db=db, principal=principal, job_id=job_id)
    page = paginate(
        db,
        _visible(principal, job),
        id_column=DuplicatePair.id,
        sortable={"id": DuplicatePair.id},
        sort="id",
        cursor=cursor,
        limit=limit,
    )
    model = matching.MODELS[job.record_type]
    wanted = {p.record_id for p in page.items} | {p.duplicate_id for p in page.items}
    found = db.scalars(select(model).where(model.id.in_(wanted)))
    records = {p.id: p for p in (cast(PersonMixin, r) for r in found)}
    names = {
        r.id: r.name
        for r in matching.list_rules(db=db, principal=None, record_type=job.record_type)
    }
    items = [
        Pair(
            id=p.id,
            rule_id=p.rule_id,
            rule_name=names.get(p.rule_id, "(deleted rule)"),
            record=records[p.record_id],
            duplicate=records[p.duplicate_id],
        )
        for p in page.items
    ]
    return job, Page(items=items, next_cursor=page.next_cursor)


def count_pairs(*, db: Session, principal: access.Principal, job_id: int) -> int:
    """How many of a job's pairs the caller may read now."""
    job = get_job(db=db, principal=principal, job_id=job_id)
    return db.scalar(select(func.count()).select_from(_visible(principal, job).subquery())) or 0
