"""Validated input and output shapes for email messages and content settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatherly.contact.schemas import OwnerRef
from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel, normalize_email
from gatherly.event.schemas import UtcDateTime

Name = Annotated[str, Field(min_length=1, max_length=200)]
MAX_HTML = 500_000  # characters: far beyond any real email, well below a memory risk


def _https(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("https://", "http://")) or len(value) > 2000:
        raise ValueError("use an http(s) address of at most 2000 characters")
    return value


class ContentSettingFields(StrictModel):
    """The fields of a content setting; on update, only those sent change."""

    name: Name | None = None
    sender_name: Annotated[str, Field(max_length=200)] | None = None
    sender_email: str | None = None
    reply_to: str | None = None
    postal_address: Annotated[str, Field(max_length=1000)] | None = None
    subscription_centre_url: str | None = Field(
        None, description="Where 'manage your subscriptions' leads; empty: Gatherly's own page"
    )

    @field_validator("sender_email")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else normalize_email(value)

    @field_validator("subscription_centre_url")
    @classmethod
    def _centre(cls, value: str | None) -> str | None:
        return _https(value)


class ContentSettingIn(ContentSettingFields):
    """A new content setting; the owner defaults to the caller."""

    name: Name
    sender_email: str
    owner: OwnerRef | None = None


class DefaultIn(StrictModel):
    """Make a content setting the default of its business unit or of the organisation."""

    default_for: Literal["business_unit", "organization"] | None


class ContentSettingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    sender_name: str
    sender_email: str
    reply_to: str | None
    postal_address: str
    subscription_centre_url: str | None
    default_for: str | None
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class MessageFields(StrictModel):
    """The fields of a message; on update, only those sent change."""

    name: Name | None = None
    subject: Annotated[str, Field(max_length=500)] | None = None
    preheader: Annotated[str, Field(max_length=500)] | None = None
    html: Annotated[str, Field(max_length=MAX_HTML)] | None = None
    text: Annotated[str, Field(max_length=MAX_HTML)] | None = Field(
        None, description="The plain-text part; null: made from the HTML when sent"
    )
    content_setting_id: Id | None = None
    event_id: Id | None = None
    topic: Annotated[str, Field(max_length=100)] | None = Field(
        None,
        description='The subscription topic ("Webinars"); empty: marketing email in general',
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        return None if value is None else " ".join(value.split())


class MessageIn(MessageFields):
    """A new message (a draft); the owner defaults to the caller."""

    name: Name
    owner: OwnerRef | None = None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    subject: str
    preheader: str
    html: str
    text: str | None
    content_setting_id: int | None
    event_id: int | None
    topic: str
    state: str
    checked_at: datetime | None
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    modified_at: datetime


class ProblemOut(BaseModel):
    field: str
    message: str


class CheckOut(BaseModel):
    """Whether a message may become ready, and what stands in the way."""

    ready: bool
    content_setting_id: int | None = Field(description="The content setting it would send with")
    problems: list[ProblemOut]


class PreviewOut(BaseModel):
    """A message as one contact would receive it."""

    contact_id: int
    subject: str
    preheader: str
    html: str
    text: str


class AudienceOut(BaseModel):
    """Who a send to these segments and lists would reach, among the contacts you may read."""

    total: int
    receiving: int
    suppressed: dict[str, int] = Field(description="Suppressed contacts by reason")
    reasons: dict[str, str] = Field(description="What each reason means")


class AudiencePersonOut(BaseModel):
    contact_id: int
    name: str
    email: str | None
    reason: str | None = Field(description="Why it does not get the message; null: it does")


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    reason: str
    topic: str
    source: str
    detail: str
    created_at: datetime


class LiftIn(StrictModel):
    """Lift a bounce or complaint suppression."""

    why: Annotated[str, Field(min_length=1, max_length=1000)]


class SendIn(StrictModel):
    """Send a ready message to segments and lists, now or at a time."""

    message_id: Id
    segment_ids: Annotated[list[Id], Field(default_factory=list, max_length=50)]
    list_ids: Annotated[list[Id], Field(default_factory=list, max_length=50)]
    scheduled_at: UtcDateTime | None = Field(
        None, description="When to send (with its zone); empty: now"
    )
    owner: OwnerRef | None = None


class SendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int
    segment_ids: list[int]
    list_ids: list[int]
    scheduled_at: datetime
    state: str
    error: str
    started_at: datetime | None
    finished_at: datetime | None
    wake_at: datetime | None = Field(description="When deferred messages are tried again")
    recipients: int | None = Field(description="Deliveries made when it started")
    owner: OwnerRef
    owning_bu_id: int
    created_at: datetime
    created_by_id: int | None


class SendProgressOut(BaseModel):
    """How far a send is: its deliveries by state, and the reasons of those not sent."""

    send: SendOut
    states: dict[str, int]
    reasons: dict[str, int]


class TestSendIn(StrictModel):
    """Send one copy of a message to an address, as a contact (or the sample) would get it."""

    to: str
    contact_id: Id | None = None

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        return normalize_email(value)


class TestSendOut(BaseModel):
    """What the SMTP server said to the test copy."""

    model_config = ConfigDict(from_attributes=True)

    to: str
    status: Literal["sent", "hard_bounce", "rejected", "deferred", "unavailable"]
    detail: str


class LinkClicksOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    url: str
    clicks: int
    unique: int


class BucketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start: datetime
    opens: int
    clicks: int


class InsightsOut(BaseModel):
    """Every count of a message (all its sends) or of one send, in full for anyone who may
    read it. Opens and clicks count people (``opened``, ``clicked``) and events."""

    model_config = ConfigDict(from_attributes=True)

    message_id: int
    send_id: int | None
    recipients: int
    suppressed: int
    sent: int
    delivered: int
    hard_bounces: int
    soft_bounces: int
    failed: int
    opened: int
    opens: int
    machine_opens: int = Field(description="Opens by mail proxies, scanners and prefetching")
    clicked: int
    clicks: int
    unsubscribed: int
    complaints: int
    open_rate: float | None = Field(description="People who opened, of those delivered")
    click_rate: float | None = Field(description="People who clicked, of those delivered")
    links: list[LinkClicksOut]
    timeline: list[BucketOut]
    bucket: Literal["hour", "day"]


class ActivityOut(BaseModel):
    """A recipient who opened (clicked, …): named only when you may read the contact."""

    anonymous: bool
    contact_id: int | None
    name: str
    email: str | None
    first_at: datetime
    last_at: datetime
    times: int
    machine_only: bool
    urls: list[str]


class BounceEventIn(StrictModel):
    """A bounce or a complaint about one address, as a sending service reports it."""

    type: Literal["bounce", "complaint"]
    email: Annotated[str, Field(max_length=320)]
    bounce_type: Literal["hard", "soft"] = "hard"
    message_id: Annotated[str, Field(max_length=255)] | None = Field(
        None, description="The Message-ID of the message it is about, when known"
    )
    detail: Annotated[str, Field(max_length=1000)] = ""


class WebhookIn(StrictModel):
    """Events for the webhook (or post one raw report as message/rfc822)."""

    events: Annotated[list[BounceEventIn], Field(min_length=1, max_length=1000)]


class AppliedOut(BaseModel):
    """What the events did."""

    recorded: int
    repeated: int = Field(description="Recorded before (a retried post)")
    unmatched: int = Field(description="About an address no message of ours went to")
    suppressed: int = Field(description="Addresses suppressed now")
    unreadable: int = Field(description="Reports that held no bounce or complaint")
    unsubscribed: int = Field(
        0, description="Unsubscribe requests mailed to a message's List-Unsubscribe address"
    )
