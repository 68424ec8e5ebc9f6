"""Scoring models and the scores they give (SPEC B9).

A scoring model is an owned record: conditions on a contact's fields and interactions,
each worth points, grades by score range and a sales-ready threshold. A live model scores
every contact (or every lead with a contact) its owner may read: one ``LeadScore`` per
(model, record), **owned by the model's owner** — who may see a score follows the viewer's
roles and BU like any record, whatever they may see of the person scored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base, UTCDateTime

DRAFT, LIVE = "draft", "live"  # only live models score
MODEL_STATES = (DRAFT, LIVE)
CONTACT, LEAD = "contact", "lead"  # what a model scores


class ScoringModel(OwnedMixin, AuditedMixin, Base):
    """Conditions worth points, grades and a sales-ready threshold (``scoring.definition``
    checks ``conditions`` and ``grades``)."""

    __tablename__ = "scoring_model"
    __table_args__ = (*owned_indexes("scoring_model"), Index("ix_scoring_model_state", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(String(10), default=CONTACT)
    state: Mapped[str] = mapped_column(String(10), default=DRAFT)
    # [{"name", "points", "field" | "interaction" …}] (scoring.definition.Condition)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"grade": "A", "min": 80}, …], highest first; below the last: no grade.
    grades: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sales_ready: Mapped[int | None] = mapped_column(Integer)  # the threshold; None: never
    # A full rescore is due (the model changed, went live, or its windows moved on).
    full_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last full rescore
    scored_count: Mapped[int | None] = mapped_column(Integer)
    score_seconds: Mapped[float | None] = mapped_column(Float)
    score_error: Mapped[str] = mapped_column(Text, default="")


class LeadScore(OwnedMixin, Base):
    """One model's score of one contact or lead, owned by the model's owner (B9).

    ``record_id`` is the contact's or the lead's id (the model's target); ``contact_id`` is
    the person whose fields and interactions count (a lead's contact). ``sales_ready_at``
    is when the score last rose to the threshold (journeys' "became sales-ready")."""

    __tablename__ = "lead_score"
    __table_args__ = (
        *owned_indexes("lead_score"),
        UniqueConstraint("model_id", "record_id"),
        Index("ix_lead_score_contact", "contact_id", "model_id"),
        Index("ix_lead_score_lead", "lead_id"),
        Index("ix_lead_score_ready", "model_id", "sales_ready_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_model.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(Integer, default=0)
    grade: Mapped[str | None] = mapped_column(String(20))
    sales_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    sales_ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


registry.register("scoring_model", "Scoring model", ScoringModel)
registry.register("lead_score", "Lead score", LeadScore)
