"""Input and output shapes of duplicate detection and merge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import LeadOut, PersonOut
from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel

RuleField = Literal["email", "first_name", "last_name", "company", "job_title", "phone", "country"]
RecordType = Literal["contact", "lead"]


class ConditionIn(StrictModel):
    """Records match when this field's values are the same (all of them, the first or the
    last ``length`` characters), ignoring case unless told not to."""

    field: RuleField
    match: Literal["exact", "first", "last"] = "exact"
    length: Annotated[int, Field(ge=1, le=100)] | None = None
    ignore_case: bool = True


class RuleFields(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    conditions: Annotated[list[ConditionIn], Field(min_length=1, max_length=10)] | None = None
    ignore_blank: bool | None = None
    published: bool | None = None


class RuleIn(RuleFields):
    """A new rule (unpublished unless ``published``)."""

    record_type: RecordType
    name: Annotated[str, Field(min_length=1, max_length=200)]
    conditions: Annotated[list[ConditionIn], Field(min_length=1, max_length=10)]


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    record_type: str
    name: str
    description: str
    conditions: list[ConditionIn]
    ignore_blank: bool
    published: bool
    builtin: bool
    modified_at: datetime


class JobIn(StrictModel):
    """Look for duplicates among the records you may read, by the published rules or the
    ones named."""

    record_type: RecordType
    rule_ids: Annotated[list[Id], Field(min_length=1, max_length=20)] | None = None


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    record_type: str
    state: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str


class PairOut(BaseModel):
    """Two records a rule matched: ``record`` is the older one."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int | None
    rule_name: str
    record: LeadOut | PersonOut
    duplicate: LeadOut | PersonOut


class MergeIn(StrictModel):
    """Merge ``duplicate_id`` into ``master_id`` (Write on both); ``take`` names fields to
    copy from the duplicate (blank fields of the master are filled anyway)."""

    record_type: RecordType
    master_id: Id
    duplicate_id: Id
    take: Annotated[list[RuleField | Literal["custom"]], Field(max_length=8, default_factory=list)]


class MergedOut(BaseModel):
    master: LeadOut | PersonOut
    merged_id: int
    fields: list[str]
    moved: dict[str, int]
