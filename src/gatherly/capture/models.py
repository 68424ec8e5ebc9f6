"""Duplicate-detection jobs and the pairs they found (SPEC B8)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.core.db import Base, UTCDateTime, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class DuplicateJob(Base):
    """One bulk duplicate-detection run over a record type, as the user who asked: it only
    compares records that user may read, and only that user sees it."""

    __tablename__ = "duplicate_job"
    __table_args__ = (Index("ix_duplicate_job_user", "requested_by_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(20))
    rule_ids: Mapped[str] = mapped_column(String(400), default="")  # "" = the published rules
    state: Mapped[str] = mapped_column(String(10), default=QUEUED)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class DuplicatePair(Base):
    """Two records a rule says are the same person: ``record_id`` is the older one."""

    __tablename__ = "duplicate_pair"
    __table_args__ = (
        UniqueConstraint("job_id", "record_id", "duplicate_id"),
        Index("ix_duplicate_pair_duplicate", "duplicate_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("duplicate_job.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("duplicate_rule.id", ondelete="SET NULL")
    )
    record_id: Mapped[int] = mapped_column(Integer)
    duplicate_id: Mapped[int] = mapped_column(Integer)
