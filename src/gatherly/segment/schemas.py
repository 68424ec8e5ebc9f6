"""Input and output shapes of the segment and marketing-list API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import OwnerRef, PersonOut
from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=4000)]
Scope = Literal["organization", "business_unit"]
ContactIds = Annotated[list[Id], Field(min_length=1, max_length=10_000)]
CRITERIA_DOC = (
    "A criteria tree: {'all'|'any': [...]}, {'not': {...}}, {'contact': {field: condition}}, "
    "{'participation': 'registered'|'attended'|'cancelled'|'not_attended', 'event': {...}, "
    "'min_minutes': n}, {'list': id}. See docs/segments.md."
)


class ListIn(StrictModel):
    """A new marketing list; the owner defaults to the caller."""

    name: Name
    description: Description = ""
    owner: OwnerRef | None = None


class ListUpdate(StrictModel):
    """A partial update of a list."""

    name: Name | None = None
    description: Description | None = None


class ListOut(BaseModel):
    """A marketing list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    owner: dict[str, Any]
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class ContactIdsIn(StrictModel):
    """Contacts to add or remove, by id."""

    contact_ids: ContactIds


class CsvIn(StrictModel):
    """A CSV of emails: a header row with an ``email`` column, or one column of emails."""

    csv: Annotated[str, Field(min_length=1, max_length=20_000_000)]


class MembershipOut(BaseModel):
    """What an add, remove or import did."""

    added: int = 0
    removed: int = 0
    already: int = Field(0, description="Already members, left as they were")
    not_members: int = Field(0, description="Asked to remove but not members")
    rows: int = Field(0, description="Data rows read from a CSV")
    unknown_emails: list[str] = Field(
        default_factory=list, description="Emails no contact you may read has"
    )
    invalid_rows: list[dict[str, Any]] = Field(default_factory=list)


class SegmentIn(StrictModel):
    """A new segment: dynamic with criteria, or static (only while scoping is off)."""

    name: Name
    description: Description = ""
    kind: Literal["dynamic", "static"] = "dynamic"
    scope: Scope | None = Field(
        None, description="Default business_unit; organization needs org-level privileges"
    )
    criteria: dict[str, Any] | None = Field(None, description=CRITERIA_DOC)
    owner: OwnerRef | None = None


class SegmentUpdate(StrictModel):
    """A partial update of a segment; new criteria or scope queue a full refresh."""

    name: Name | None = None
    description: Description | None = None
    scope: Scope | None = None
    criteria: dict[str, Any] | None = Field(None, description=CRITERIA_DOC)


class SegmentOut(BaseModel):
    """A segment (its total is not shown here: counts are per viewer, see /members)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    kind: str
    scope: str
    criteria: dict[str, Any] | None
    owner: dict[str, Any]
    owning_bu_id: int
    refresh_state: str
    refresh_error: str | None
    refreshed_at: datetime | None
    created_at: datetime
    modified_at: datetime


class SegmentDetailOut(SegmentOut):
    """A segment with the scope that applies now and what the caller sees of it."""

    applied_scope: str = Field(description="organization whenever BU scoping is off")
    scope_business_unit_id: int | None
    visible_members: int = Field(description="Members you may read")
    total_members: int | None = Field(
        description="All members, when the segment_totals setting allows showing it"
    )


class MembersOut(BaseModel):
    """A page of the members you may read, that count and (if allowed) the total."""

    items: list[PersonOut]
    next_cursor: str | None
    visible: int
    total: int | None
    source: Literal["materialised", "live"]
    refreshed_at: datetime | None


class PreviewIn(StrictModel):
    """An unsaved criteria tree to evaluate."""

    criteria: dict[str, Any] = Field(description=CRITERIA_DOC)
    scope: Scope | None = None
    owner: OwnerRef | None = Field(
        default=None,
        description="Whose segment it would be (default: you); you must be able to create "
        "a segment for this owner. Its BU is the business-unit scope.",
    )
    segment_id: Id | None = Field(
        default=None,
        description="Preview an edit of this saved segment instead (needs write on it): its "
        "owner's BU is the scope. Not with owner.",
    )
    limit: Annotated[int, Field(ge=0, le=100)] = 20


class PreviewOut(BaseModel):
    """How many contacts you may read the tree holds, and the first of them. An unsaved
    tree has no total: only saved segments show one, when the administrator allows it."""

    visible: int
    applied_scope: str
    scope_business_unit_id: int | None
    items: list[PersonOut]


class RefreshOut(BaseModel):
    """A refresh's result, counted as the caller may see it (adds and removes of members
    the caller may not read are not revealed)."""

    segment_id: int
    refreshed_at: datetime | None
    seconds: float | None
    visible_members: int
    total_members: int | None = Field(description="When the segment_totals setting allows it")
