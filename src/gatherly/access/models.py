"""Shares (principal object access) and the ownership columns every business record has."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, column, table
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gatherly.core.db import Base, UTCDateTime, utcnow

OWNER_USER = "user"
OWNER_TEAM = "team"

PRINCIPAL_USER = "user"
PRINCIPAL_TEAM = "team"
PRINCIPAL_ORGANIZATION = "organization"


class OwnedMixin:
    """``owner_type`` + ``owner_id`` (a user or a team) and ``owning_bu_id``, indexed."""

    owner_type: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)

    @declared_attr
    def owning_bu_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(ForeignKey("business_unit.id", ondelete="RESTRICT"))

    @property
    def owner(self) -> dict[str, int | str]:
        """``{"type": "user"|"team", "id": …}``, as the API shows it."""
        return {"type": self.owner_type, "id": self.owner_id}


def owned_indexes(table: str) -> tuple[Index, ...]:
    """The indexes the access engine's predicate needs on an owned table."""
    return (
        Index(f"ix_{table}_owning_bu_id", "owning_bu_id"),
        Index(f"ix_{table}_owner", "owner_id", "owner_type"),
    )


class RecordShare(Base):
    """A record shared with a user, a team or the whole organisation, with a rights mask.

    ``principal_id`` is 0 for the organisation so the uniqueness constraint holds.
    """

    __tablename__ = "record_share"
    __table_args__ = (
        UniqueConstraint("record_type", "record_id", "principal_type", "principal_id"),
        Index(
            "ix_record_share_principal",
            "principal_type",
            "principal_id",
            "record_type",
            "record_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(60))
    record_id: Mapped[int] = mapped_column(Integer)
    principal_type: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[int] = mapped_column(Integer)
    rights: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )


class BusinessUnitClosure(Base):
    """Transitive closure of the BU tree: one row per (ancestor, descendant), self included.

    The access engine answers "is BU x under BU a" with one indexed lookup here.
    """

    __tablename__ = "business_unit_closure"

    ancestor_id: Mapped[int] = mapped_column(
        ForeignKey("business_unit.id", ondelete="CASCADE"), primary_key=True
    )
    descendant_id: Mapped[int] = mapped_column(
        ForeignKey("business_unit.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    depth: Mapped[int] = mapped_column(Integer)


BU_NAMES = table("business_unit", column("id", Integer), column("name", String))
"""Business units' names, read (never written) by the engine to word its explanations; the
table is ``org``'s (``BusinessUnit``)."""
