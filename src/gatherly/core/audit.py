"""The audit trail of administrative changes (feature switches, settings): who, when, what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gatherly.core.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """One administrative action."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_action", "action", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def log(
    db: Session, *, actor_id: int | None, action: str, target: str = "", **details: Any
) -> AuditEntry:
    """Append an entry in the current transaction (it commits with the change it records)."""
    entry = AuditEntry(actor_id=actor_id, action=action, target=target, details=details)
    db.add(entry)
    db.flush()
    return entry


def entries(db: Session, *, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The latest entries, newest first, optionally of one action."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.execute(stmt).scalars())
