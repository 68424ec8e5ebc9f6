"""Segments, their materialised members, static marketing lists (SPEC B5, B13).

A segment's ``segment_member`` rows are its *membership*: contacts matching the criteria
within the scope, the same for every viewer. What a viewer sees is that membership
filtered by the access engine at read time, never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base, UTCDateTime, utcnow

DYNAMIC = "dynamic"
STATIC = "static"
SCOPE_ORGANIZATION = "organization"
SCOPE_BUSINESS_UNIT = "business_unit"

STATE_PENDING = "pending"  # never materialised, or a full refresh is due
STATE_FRESH = "fresh"
STATE_FAILED = "failed"


class MarketingList(OwnedMixin, AuditedMixin, Base):
    """A static list of contacts, kept by hand or by CSV import."""

    __tablename__ = "marketing_list"
    __table_args__ = (*owned_indexes("marketing_list"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class MarketingListMember(Base):
    """A contact on a list."""

    __tablename__ = "marketing_list_member"
    __table_args__ = (Index("ix_marketing_list_member_contact", "contact_id", "list_id"),)

    list_id: Mapped[int] = mapped_column(
        ForeignKey("marketing_list.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(Integer)


class Segment(OwnedMixin, AuditedMixin, Base):
    """A dynamic segment (criteria) or a static one (hand-picked members)."""

    __tablename__ = "segment"
    __table_args__ = (*owned_indexes("segment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10), default=DYNAMIC)
    scope: Mapped[str] = mapped_column(String(20), default=SCOPE_BUSINESS_UNIT)
    criteria: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the criteria depend on, so a change refreshes only the segments it concerns.
    uses_events: Mapped[bool] = mapped_column(default=False)
    uses_relative_dates: Mapped[bool] = mapped_column(default=False)
    refresh_state: Mapped[str] = mapped_column(String(10), default=STATE_PENDING)
    refresh_error: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_seconds: Mapped[float | None] = mapped_column()
    member_total: Mapped[int] = mapped_column(Integer, default=0)
    # The BU a business-unit scope applied at the last refresh (explain shows it).
    scope_bu_id: Mapped[int | None] = mapped_column(Integer)


class SegmentListRef(Base):
    """A marketing list a dynamic segment's criteria name (a list in use cannot be deleted)."""

    __tablename__ = "segment_list_ref"
    __table_args__ = (Index("ix_segment_list_ref_list", "list_id", "segment_id"),)

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("marketing_list.id", ondelete="RESTRICT"), primary_key=True
    )


class SegmentMember(Base):
    """A contact in a segment's membership (criteria ∩ scope), the same for every viewer."""

    __tablename__ = "segment_member"
    __table_args__ = (Index("ix_segment_member_contact", "contact_id", "segment_id"),)

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


registry.register("segment", "Segment", Segment)
registry.register("marketing_list", "Marketing list", MarketingList)
