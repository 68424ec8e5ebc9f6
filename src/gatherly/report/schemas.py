"""Validated input and output shapes for reports and dashboards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import OwnerRef
from gatherly.core.schemas import StrictModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
DEFINITION = (
    "What it counts and how: {'source', 'filters': {'event', 'contact'}, 'group_by', "
    "'measures', 'chart'}; see docs/reports.md."
)


class ReportFields(StrictModel):
    """The fields of a report; on update, only those sent change."""

    name: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    definition: dict[str, Any] | None = Field(None, description=DEFINITION)


class ReportIn(ReportFields):
    name: Name
    definition: dict[str, Any] = Field(description=DEFINITION)
    owner: OwnerRef | None = None


class PreviewIn(StrictModel):
    definition: dict[str, Any] = Field(description=DEFINITION)


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    definition: dict[str, Any]
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class BuiltinOut(BaseModel):
    key: str
    name: str
    description: str
    definition: dict[str, Any]


class KeyOut(BaseModel):
    label: str
    record_type: str | None
    record_id: int | None


class RowOut(BaseModel):
    keys: list[KeyOut]
    values: list[float | int | None]


class RunOut(BaseModel):
    name: str
    description: str
    report_id: int | None
    builtin: str | None
    definition: dict[str, Any]
    columns: list[str]
    group_by: list[str]
    measures: list[str]
    rows: list[RowOut]
    at: datetime


class DashboardFields(StrictModel):
    name: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    items: Annotated[list[dict[str, Any]], Field(max_length=12)] | None = Field(
        None, description="Pinned reports: [{'report': 7}, {'builtin': 'webinar-performance'}]"
    )


class DashboardIn(DashboardFields):
    name: Name
    owner: OwnerRef | None = None


class DashboardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    items: list[dict[str, Any]]
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class PanelOut(BaseModel):
    item: dict[str, Any]
    run: RunOut | None
    problem: str | None


class DashboardRunOut(BaseModel):
    dashboard: DashboardOut
    panels: list[PanelOut]
