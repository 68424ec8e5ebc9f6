"""Validated input and output shapes for journeys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import OwnerRef
from gatherly.core.schemas import StrictModel
from gatherly.email.schemas import InsightsOut
from gatherly.event.schemas import UtcDateTime

Name = Annotated[str, Field(min_length=1, max_length=200)]
DEFINITION = (
    "The audience and the steps: see docs/journeys.md. Checked for shape when saved and "
    "for everything else when the journey goes live."
)


class JourneyFields(StrictModel):
    """The fields of a journey; on update, only those sent change."""

    name: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    definition: dict[str, Any] | None = Field(None, description=DEFINITION)
    scope: Literal["organization", "business_unit"] | None = None
    re_entry: Literal["once", "after_finish"] | None = None
    start_at: UtcDateTime | None = None
    end_at: UtcDateTime | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None


class JourneyIn(JourneyFields):
    """A new journey (a draft); the owner defaults to the caller."""

    name: Name
    owner: OwnerRef | None = None


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    state: str
    definition: dict[str, Any]
    scope: str
    re_entry: str
    start_at: datetime | None
    end_at: datetime | None
    time_zone: str
    live_at: datetime | None
    live_scope: str | None = Field(description="The scope fixed when it went live")
    live_scope_bu_id: int | None = Field(description="The business unit it is scoped to, if any")
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class ProblemOut(BaseModel):
    field: str
    message: str


class JourneyCheckOut(BaseModel):
    """Whether the journey may go live, and what stands in the way (each names its step)."""

    ready: bool
    problems: list[ProblemOut]


class StateIn(StrictModel):
    state: Literal["live", "paused", "stopped"]


class StepTakenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    outcome: str = Field(description="queued, suppressed, waited, yes, no, lead, …")
    at: datetime
    detail: dict[str, Any] | None
    because: str = Field(
        description="For a question or wait about an email of the journey: opened or "
        "clicked (at because_at), or no open / no click by then"
    )
    because_at: datetime | None


class PassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entry: int
    status: str
    step: str | None
    entered_at: datetime
    next_due_at: datetime | None
    finished_at: datetime | None
    reason: str
    steps: list[StepTakenOut]


class ExplanationOut(BaseModel):
    """Where the contact is in the journey and how it got there, or why it is not in it."""

    model_config = ConfigDict(from_attributes=True)

    journey_id: int
    contact_id: int
    passes: list[PassOut]
    why_not: str | None
    again: str | None = Field(
        description="For a contact whose passes are over: whether and when it goes again"
    )


class SimulationOut(BaseModel):
    """What the journey would do with today's audience, sending and writing nothing."""

    model_config = ConfigDict(from_attributes=True)

    audience: int
    out_of_scope: int
    excluded: int
    reached: dict[str, int] = Field(description="Contacts reaching each step")
    branches: dict[str, dict[str, int]] = Field(description="Each condition's yes and no")
    suppressed: dict[str, int] = Field(description="Contacts an email step would not mail")
    assumed: list[str] = Field(
        description="Conditions about the journey's own emails: not known yet, counted as no"
    )


class ProgressOut(BaseModel):
    """Members by state, where the active ones are, and what each step did (full counts)."""

    journey: JourneyOut
    members: dict[str, int]
    at_step: dict[str, int]
    steps: dict[str, dict[str, int]]
    ended: dict[str, int] = Field(description="Members done at each end step")
    emails: dict[str, InsightsOut] = Field(
        description="Each email step's send counts, by step (sends you may read); its links "
        "and timeline are at /api/v1/email/insights?send_id="
    )

    @classmethod
    def of(cls, found: Any) -> ProgressOut:
        """From ``journey.service.progress``."""
        return cls(
            journey=JourneyOut.model_validate(found.journey),
            members=found.members,
            at_step=found.at_step,
            steps=found.steps,
            ended=found.ended,
            emails={step: InsightsOut.model_validate(i) for step, i in found.emails.items()},
        )


class JourneyPersonOut(BaseModel):
    """A contact in a journey's detail list: named only when you may read it."""

    anonymous: bool
    contact_id: int | None
    name: str
    email: str | None
    status: str
    step: str | None
    outcome: str | None
    at: datetime
