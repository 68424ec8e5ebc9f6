"""LinkedIn user profiles, the lead sources they read, the responses taken in, and the rules
that assign them (SPEC B12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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
from gatherly.core.db import AuditedMixin, Base, UTCDateTime, utcnow

CONNECTED, NEEDS_RECONNECT, DISCONNECTED = "connected", "needs_reconnect", "disconnected"
TAKEN, TEST, FAILED, DELETED = "taken", "test", "failed", "deleted"


class LinkedInProfile(OwnedMixin, AuditedMixin, Base):
    """A LinkedIn member connected to Gatherly, owned by the user who connected it: the
    leads read through it are that user's (B12) unless an assignment rule says otherwise."""

    __tablename__ = "linkedin_profile"
    __table_args__ = (*owned_indexes("linkedin_profile"), UniqueConstraint("member_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(20), default=CONNECTED)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class LinkedInSource(Base):
    """An ad account or a company page a profile reads leads of, and how far it has read."""

    __tablename__ = "linkedin_source"
    __table_args__ = (UniqueConstraint("profile_id", "owner_urn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("linkedin_profile.id", ondelete="CASCADE"))
    owner_urn: Mapped[str] = mapped_column(String(200))  # urn:li:sponsoredAccount:… / organization
    kind: Mapped[str] = mapped_column(String(20))  # sponsoredAccount | organization
    role: Mapped[str] = mapped_column(String(60), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The newest submittedAt (epoch ms) taken in; the next poll starts a little before it.
    position_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkedInLead(OwnedMixin, Base):
    """One lead form response, taken in once (unique response id), owned like the records
    it became: by the profile's owner, or the owner an assignment rule named."""

    __tablename__ = "linkedin_lead"
    __table_args__ = (
        *owned_indexes("linkedin_lead"),
        UniqueConstraint("response_id"),
        Index("ix_linkedin_lead_profile", "profile_id", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[str] = mapped_column(String(100))
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("linkedin_profile.id", ondelete="SET NULL")
    )
    source_urn: Mapped[str] = mapped_column(String(200), default="")
    form_urn: Mapped[str] = mapped_column(String(200), default="")
    form_name: Mapped[str] = mapped_column(String(300), default="")
    lead_type: Mapped[str] = mapped_column(String(30), default="")
    campaign_urn: Mapped[str | None] = mapped_column(String(200))
    test_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # mapped attributes
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # question, answer
    consents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(10), default=TAKEN)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    assignment_rule_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(100), default="")


class LinkedInAssignmentRule(AuditedMixin, Base):
    """Who gets the leads that match (a form, a campaign, a lead type, a country), instead
    of the profile's owner. First matching rule by position wins; every assignment it makes
    is in the audit trail."""

    __tablename__ = "linkedin_assignment_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    form_urn: Mapped[str | None] = mapped_column(String(200))  # urn:li:leadGenForm:7042
    campaign_urn: Mapped[str | None] = mapped_column(String(200))
    lead_type: Mapped[str | None] = mapped_column(String(30))
    country: Mapped[str | None] = mapped_column(String(2))
    owner_type: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)


registry.register("linkedin_profile", "LinkedIn user profile", LinkedInProfile)
registry.register("linkedin_lead", "LinkedIn lead", LinkedInLead)
# Organization-owned: everyone reads them, administrators change them.
registry.register("linkedin_assignment_rule", "LinkedIn assignment rule")
