"""Contacts, leads and tombstones of deleted contacts (SPEC M, T8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import Base, UTCDateTime, utcnow


class PersonMixin(OwnedMixin):
    """The person fields contacts and leads share, with audit columns."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    modified_by_id: Mapped[int | None] = mapped_column(Integer)
    # Where the record came from: "manual", "teams_sync", … and, for a sync, which run and
    # which marketing event created it (ids, not foreign keys: contact sits below events).
    origin: Mapped[str] = mapped_column(String(30), default="manual", server_default="manual")
    origin_sync_run_id: Mapped[int | None] = mapped_column(Integer)
    origin_event_id: Mapped[int | None] = mapped_column(Integer)
    # The default duplicate-detection rule's key, "<owning BU id>|<email>" with BU scoping on
    # and "*|<email>" off, held by the oldest record with that key and NULL on the others:
    # its unique index is what makes two simultaneous submissions create one record (B8).
    # Kept by gatherly.contact.matching; never set it by hand.
    match_key: Mapped[str | None] = mapped_column(String(340))


class Contact(PersonMixin, Base):
    """A person marketing talks to."""

    __tablename__ = "contact"
    __table_args__ = (
        *owned_indexes("contact"),
        Index("ix_contact_modified", "modified_at", "id"),
        Index("ix_contact_email", "email"),
        Index("ux_contact_match_key", "match_key", unique=True),
    )


class Lead(PersonMixin, Base):
    """A prospect with a topic and a qualification status, optionally tied to a contact."""

    __tablename__ = "lead"
    __table_args__ = (
        *owned_indexes("lead"),
        Index("ix_lead_modified", "modified_at", "id"),
        Index("ix_lead_email", "email"),
        Index("ux_lead_match_key", "match_key", unique=True),
    )

    topic: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20), default="new")
    source: Mapped[str] = mapped_column(String(60), default="manual")
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="SET NULL"), index=True
    )
    # Set once, by the first scoring model whose threshold its score reached (SPEC B9).
    sales_ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sales_ready_model_id: Mapped[int | None] = mapped_column(Integer)


class Tombstone(Base):
    """What remains of a deleted contact or lead, so syncs do not re-create it (T8)."""

    __tablename__ = "tombstone"
    __table_args__ = (Index("ix_tombstone_email", "email", "owning_bu_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(320))
    owning_bu_id: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_by_id: Mapped[int | None] = mapped_column(Integer)
    merged_into_id: Mapped[int | None] = mapped_column(Integer)  # set when merged away


RULE_FIELDS = ("email", "first_name", "last_name", "company", "job_title", "phone", "country")


class DuplicateRule(Base):
    """A duplicate-detection rule (SPEC B8): records of ``record_type`` whose condition
    values are all equal are duplicates. ``conditions`` is a list of ``{"field", "match":
    "exact"|"first"|"last", "length", "ignore_case"}``; with ``ignore_blank`` a record with a
    blank condition value never matches. The built-in rule (normalised email) can be
    unpublished but not changed; it is the one the ``match_key`` column guards."""

    __tablename__ = "duplicate_rule"
    __table_args__ = (UniqueConstraint("record_type", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ignore_blank: Mapped[bool] = mapped_column(Boolean, default=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_by_id: Mapped[int | None] = mapped_column(Integer)


BUILTIN_NAME = "Same email address"
BUILTIN_CONDITIONS = [{"field": "email", "match": "exact", "length": None, "ignore_case": True}]


def ensure_builtin_rules(db: Any) -> None:
    """The built-in rule of each type (published) exists; it is never rewritten. Runs with
    the organisation's defaults (``org.defaults.ensure_defaults``)."""
    have = set(db.scalars(select(DuplicateRule.record_type).where(DuplicateRule.builtin)))
    for record_type in ("contact", "lead"):
        if record_type not in have:
            db.add(
                DuplicateRule(
                    record_type=record_type,
                    name=BUILTIN_NAME,
                    description="Two records with the same email address (compared "
                    "normalised: trimmed, case-folded) are the same person.",
                    conditions=BUILTIN_CONDITIONS,
                    ignore_blank=True,
                    published=True,
                    builtin=True,
                )
            )
    db.flush()


registry.on(registry.DEFAULTS, ensure_builtin_rules)
registry.register("contact", "Contact", Contact)
registry.register("lead", "Lead", Lead)
# Organization-owned: everyone reads the rules (a form picks one), administrators change them.
registry.register("duplicate_rule", "Duplicate detection rule")
