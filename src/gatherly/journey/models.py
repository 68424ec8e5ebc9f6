"""Journeys, the contacts going through them, and the log of what each step did (SPEC B6).

A journey's steps are a tree held as JSON (``definition``; ``journey.definition`` checks
it). Each contact in a journey has a ``JourneyMember`` row per entry, with its current
step and when it is due next; every step a member takes is a ``JourneyAction`` row, unique
per (journey, contact, entry, step), written in the same transaction as what the step does
(a delivery queued, a lead created …): a step is applied at most once, whatever happens to
the worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base, UTCDateTime, utcnow

DRAFT = "draft"
LIVE = "live"
PAUSED = "paused"
STOPPED = "stopped"
COMPLETED = "completed"  # its end time came
JOURNEY_STATES = (DRAFT, LIVE, PAUSED, STOPPED, COMPLETED)

ONCE = "once"  # a contact goes through once, ever
AFTER_FINISH = "after_finish"  # again, once its previous pass finished

# A member's life: active (due at next_due_at) → done (reached an end), or exited (left:
# deleted, suppressed for an email step, the journey stopped); out_of_scope from the start
# (a business-unit-scoped journey's segment holds a contact of another unit).
ACTIVE = "active"
DONE = "done"
EXITED = "exited"
OUT_OF_SCOPE = "out_of_scope"
MEMBER_STATES = (ACTIVE, DONE, EXITED, OUT_OF_SCOPE)


class Journey(OwnedMixin, AuditedMixin, Base):
    """A follow-up programme: who enters, and the steps they go through."""

    __tablename__ = "journey"
    __table_args__ = (*owned_indexes("journey"), Index("ix_journey_state", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default=DRAFT)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope: Mapped[str] = mapped_column(String(20), default="business_unit")
    re_entry: Mapped[str] = mapped_column(String(20), default=ONCE)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Fixed when it goes live (B6): later changes of owner or of the owner's business
    # unit change nothing about whom it processes.
    live_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    live_scope: Mapped[str | None] = mapped_column(String(20))
    live_scope_bu_id: Mapped[int | None] = mapped_column(Integer)
    live_owner_type: Mapped[str | None] = mapped_column(String(8))
    live_owner_id: Mapped[int | None] = mapped_column(Integer)


class JourneyMember(Base):
    """One contact's pass through a journey."""

    __tablename__ = "journey_member"
    __table_args__ = (
        UniqueConstraint("journey_id", "contact_id", "entry"),
        Index("ix_journey_member_due", "journey_id", "status", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journey.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="SET NULL"), index=True
    )
    entry: Mapped[int] = mapped_column(Integer, default=1)  # the how-many-th pass
    status: Mapped[str] = mapped_column(String(12), default=ACTIVE)
    step: Mapped[str | None] = mapped_column(String(40))  # the step it is at
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(40))  # what its last step came to
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="", server_default="")


class JourneyAction(Base):
    """What one step did for one member: at most one per (journey, contact, entry, step)."""

    __tablename__ = "journey_action"
    # Found by its unique key (a member's actions: journey, contact, entry). No other
    # index and one foreign key: a step taken by a million members writes a million rows.
    __table_args__ = (UniqueConstraint("journey_id", "contact_id", "entry", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(Integer)  # its member's journey
    member_id: Mapped[int] = mapped_column(ForeignKey("journey_member.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    entry: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(40))  # sent, yes, no, waited, lead …
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


registry.register("journey", "Journey", Journey)
