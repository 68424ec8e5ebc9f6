"""Input and output shapes of the LinkedIn intake."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import OwnerRef
from gatherly.core.schemas import StrictModel


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    member_id: str
    name: str
    email: str | None
    state: str
    scope: str
    token_expires_at: datetime | None
    last_polled_at: datetime | None
    last_error: str
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_urn: str
    kind: str
    role: str
    enabled: bool
    last_polled_at: datetime | None


class SourceIn(StrictModel):
    enabled: bool


class LeadOut(BaseModel):
    """A lead form response taken in, and what it became."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    response_id: str
    profile_id: int | None
    source_urn: str
    form_urn: str
    form_name: str
    lead_type: str
    campaign_urn: str | None
    test_lead: bool
    submitted_at: datetime
    taken_at: datetime
    data: dict[str, Any]
    answers: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    state: str
    contact_id: int | None
    lead_id: int | None
    assignment_rule_id: int | None
    outcome: str
    owner: OwnerRef


class RuleIn(StrictModel):
    """Leads matching every condition set go to ``owner`` instead of the profile's owner."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    owner: OwnerRef
    form_urn: Annotated[str, Field(pattern=r"^urn:li:leadGenForm:\d+$")] | None = None
    campaign_urn: Annotated[str, Field(pattern=r"^urn:li:sponsoredCampaign:\d+$")] | None = None
    lead_type: Literal["SPONSORED", "EVENT", "COMPANY", "ORGANIZATION_PRODUCT"] | None = None
    country: Annotated[str, Field(max_length=60)] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    enabled: bool = True


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    position: int
    enabled: bool
    form_urn: str | None
    campaign_urn: str | None
    lead_type: str | None
    country: str | None
    owner_type: str
    owner_id: int
