"""Validated input and output shapes for scoring models and lead scores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import OwnerRef
from gatherly.core.schemas import StrictModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
CONDITIONS = (
    "Conditions worth points: on the contact's fields ({'contact': {...}}) or on their "
    "interactions ({'interaction': 'attended', 'event': {...}, 'frequency': 'each', "
    "'within_days': 30}); see docs/scoring.md."
)
GRADES = "Grades from the highest score down: [{'grade': 'A', 'min': 100}, …, {'grade': 'D', 'min': null}]"


class ModelFields(StrictModel):
    """The fields of a scoring model; on update, only those sent change."""

    name: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    target: Literal["contact", "lead"] | None = None
    conditions: Annotated[list[dict[str, Any]], Field(max_length=50)] | None = Field(
        None, description=CONDITIONS
    )
    grades: Annotated[list[dict[str, Any]], Field(max_length=10)] | None = Field(
        None, description=GRADES
    )
    sales_ready: Annotated[int, Field(ge=-(10**9), le=10**9)] | None = Field(
        None, description="The score at which a record becomes sales-ready (null: never)"
    )


class ModelIn(ModelFields):
    """A new scoring model (a draft); the owner defaults to the caller, grades to A–D."""

    name: Name
    owner: OwnerRef | None = None


class StateIn(StrictModel):
    state: Literal["draft", "live"]


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    target: str
    state: str
    conditions: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    sales_ready: int | None
    full_pending: bool = Field(description="A full rescore is due (the worker runs it)")
    scored_at: datetime | None = Field(description="When its last full rescore finished")
    scored_count: int | None = Field(
        description="Scores of this model you may read (null before its first full rescore)"
    )
    score_seconds: float | None
    score_error: str
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class ScoreOut(BaseModel):
    id: int
    model_id: int
    model_name: str
    record_type: Literal["contact", "lead"]
    record_id: int
    contact_id: int
    lead_id: int | None
    name: str | None = Field(description="The person, when you may read them (else null)")
    score: int
    grade: str | None
    sales_ready: bool
    sales_ready_at: datetime | None
    changed_at: datetime | None
    owner: OwnerRef
    owning_bu_id: int


class ItemOut(BaseModel):
    at: datetime | None
    about_type: str
    about_id: int | None
    about: str | None = Field(description="Its name, when you may read it")


class PartOut(BaseModel):
    index: int
    name: str
    description: str
    points: int
    count: int | None = Field(description="Matching interactions (null: a field condition)")
    holds: bool
    earned: int
    items: list[ItemOut]
    hidden: int = Field(description="Counted interactions of records you may not read")


class ExplanationOut(BaseModel):
    score: ScoreOut
    total: int = Field(description="The score the model gives now")
    grade: str | None
    current: bool = Field(description="Whether the stored score is the one it gives now")
    parts: list[PartOut]


class RescoredOut(BaseModel):
    model_id: int
    scored: int
    changed: int
    removed: int
    became_ready: int
    seconds: float
