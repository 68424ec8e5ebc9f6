"""Validated input and output shapes for contacts and leads."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel, normalize_email

CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PHONE = re.compile(r"^\+?[0-9 ().\-/]{3,38}(?:\s*(?:x|ext\.?)\s*[0-9]{1,6})?$")
LEAD_STATUSES = ("new", "contacted", "qualified", "disqualified")

CustomValue = str | int | float | bool | None
T = TypeVar("T")


def normalize_country(value: str) -> str:
    """An ISO 3166 alpha-2 code from a code (``de``, ``DEU``) or an English name."""
    value = value.strip()
    try:
        found = pycountry.countries.lookup(value)
    except LookupError:
        raise ValueError(f"{value!r} is not a country code or name (ISO 3166)") from None
    return str(found.alpha_2)


class OwnerRef(StrictModel):
    """A record's owner: a user or a team."""

    type: Literal["user", "team"]
    id: Id


class PersonFields(StrictModel):
    """Fields shared by create and update; every one optional here."""

    email: str | None = None
    first_name: Annotated[str, Field(max_length=100)] = ""
    last_name: Annotated[str, Field(max_length=100)] = ""
    company: Annotated[str, Field(max_length=200)] = ""
    job_title: Annotated[str, Field(max_length=200)] = ""
    phone: Annotated[str, Field(max_length=40)] = ""
    country: str | None = None
    custom: dict[str, CustomValue] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else normalize_email(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else normalize_country(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if value and not PHONE.match(value):
            raise ValueError("phone may hold digits, spaces, + ( ) . - / and an extension")
        return value

    @field_validator("custom")
    @classmethod
    def _custom(cls, value: dict[str, CustomValue]) -> dict[str, CustomValue]:
        for key, item in value.items():
            if not CUSTOM_KEY.match(key):
                raise ValueError(
                    f"custom property name {key!r} must be lower_snake_case, "
                    "start with a letter, at most 63 characters"
                )
            if isinstance(item, str) and len(item) > 2000:
                raise ValueError(f"custom property {key!r} is longer than 2000 characters")
        return value


class ContactCreate(PersonFields):
    """A new contact; the owner defaults to the caller."""

    owner: OwnerRef | None = None


class ContactUpdate(PersonFields):
    """A partial update: only the fields sent are changed."""


class LeadFields(StrictModel):
    """Lead-only fields."""

    topic: Annotated[str, Field(max_length=300)] = ""
    status: Literal["new", "contacted", "qualified", "disqualified"] = "new"
    source: Annotated[str, Field(max_length=60)] = "manual"
    contact_id: Id | None = None


class LeadCreate(LeadFields, ContactCreate):
    """A new lead."""


class LeadUpdate(LeadFields, ContactUpdate):
    """A partial update of a lead."""


class AssignIn(StrictModel):
    """Give a record to another user or team."""

    owner: OwnerRef


class ShareIn(StrictModel):
    """Share a record with a user, a team or the whole organisation."""

    principal_type: Literal["user", "team", "organization"]
    principal_id: Id | None = None
    rights: list[Literal["read", "write", "delete", "append", "append_to", "assign", "share"]] = (
        Field(min_length=1)
    )


class ShareOut(BaseModel):
    """A share on a record."""

    id: int
    principal_type: str
    principal_id: int | None
    rights: list[str]
    created_at: datetime


class PersonOut(BaseModel):
    """A contact as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None
    first_name: str
    last_name: str
    company: str
    job_title: str
    phone: str
    country: str | None
    custom: dict[str, Any]
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class LeadOut(PersonOut):
    """A lead as the API returns it."""

    topic: str
    status: str
    source: str
    contact_id: int | None


class QualifiedOut(BaseModel):
    """A qualified lead, its contact, and whether that contact was made for it."""

    lead: LeadOut
    contact: PersonOut
    created: bool


class PageOut(BaseModel, Generic[T]):
    """A page of items and the cursor of the next one."""

    items: list[T]
    next_cursor: str | None


class CountOut(BaseModel):
    """How many records match, among those the caller may read."""

    count: int


class ImportRowOut(BaseModel):
    """One row's outcome: matched, created, skipped or refused (``message`` says why)."""

    model_config = ConfigDict(from_attributes=True)

    line: int
    outcome: Literal["matched", "created", "skipped", "refused"]
    record_id: int | None
    message: str
    field: str | None


class ImportOut(BaseModel):
    """What an import did, row by row."""

    record_type: str
    totals: dict[str, int]
    rows: list[ImportRowOut]
