"""Input and output shapes of duplicate detection and merge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatherly.contact.schemas import LeadOut, OwnerRef, PersonOut
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


# ------------------------------------------------------------------ forms and pages

FieldKey = Annotated[
    str,
    Field(
        pattern=r"^(email|first_name|last_name|company|job_title|phone|country|custom\.[a-z][a-z0-9_]{0,62})$"
    ),
]
FieldType = Literal["text", "email", "tel", "textarea", "select", "checkbox", "country"]
OnSubmit = Literal["contacts_and_leads", "contacts", "leads", "no_update"]


class FormFieldIn(StrictModel):
    """One field of a form, mapped to a contact or lead attribute (``custom.<name>`` for
    a custom property)."""

    key: FieldKey
    label: Annotated[str, Field(min_length=1, max_length=200)]
    type: FieldType = "text"
    required: bool = False
    max_length: Annotated[int, Field(ge=1, le=2000)] = 200
    options: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=50)
    ] = Field(default_factory=list)
    placeholder: Annotated[str, Field(max_length=200)] = ""
    help: Annotated[str, Field(max_length=500)] = ""


class ConsentIn(StrictModel):
    """A consent checkbox and its wording (stored with every submission)."""

    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    required: bool = False


class FormFields(StrictModel):
    """A form's settings; every one optional (PATCH)."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    fields: Annotated[list[FormFieldIn], Field(min_length=1, max_length=30)] | None = None
    consents: Annotated[list[ConsentIn], Field(max_length=5)] | None = None
    on_submit: OnSubmit | None = None
    rule_id: Id | None = None
    lead_topic: Annotated[str, Field(max_length=300)] | None = None
    submit_label: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    thank_you: Annotated[str, Field(max_length=2000)] | None = None
    redirect_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")] | None = None


class FormIn(FormFields):
    """A new form (a draft until it goes live)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    fields: Annotated[list[FormFieldIn], Field(min_length=1, max_length=30)]
    owner: OwnerRef | None = None


class FormOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    state: str
    fields: list[FormFieldIn]
    consents: list[ConsentIn]
    on_submit: str
    rule_id: int | None
    lead_topic: str
    submit_label: str
    thank_you: str
    redirect_url: str | None
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class StateIn(StrictModel):
    state: Literal["draft", "live"]


class EmbedOut(BaseModel):
    """The HTML to paste into any website: a plain form posting to Gatherly."""

    html: str
    action: str


Slug = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")]


class PageFields(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    slug: Slug | None = None
    title: Annotated[str, Field(max_length=200)] | None = None
    body: Annotated[str, Field(max_length=20000)] | None = None
    form_id: Id | None = None


class PageIn(PageFields):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    slug: Slug
    owner: OwnerRef | None = None


class PageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    slug: str
    title: str
    body: str
    form_id: int | None
    state: str
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class SubmissionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    form_id: int
    page_id: int | None
    data: dict[str, Any]
    consents: list[dict[str, Any]]
    submitted_at: datetime
    state: str
    processed_at: datetime | None
    contact_id: int | None
    lead_id: int | None
    outcome: str
    error: str


class InteractionContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str
    last_name: str
    email: str | None


class InteractionOut(BaseModel):
    """A page visited or a form sent; ``contact`` is null (anonymous) when you may not
    read it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    at: datetime
    contact: InteractionContactOut | None
