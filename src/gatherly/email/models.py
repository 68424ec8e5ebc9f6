"""Email messages and the content settings they send with (SPEC M, B14).

A content setting holds what every message of a business unit shares: the sender, the
reply-to address, the postal address the law asks for, the subscription centre. A message
takes its own content setting, else (business unit scoping on) its owning BU's default,
else the organisation's default (``email.service.content_setting_for``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base, UTCDateTime, utcnow

DEFAULT_BUSINESS_UNIT = "business_unit"  # the default of its owning BU (scoping on)
DEFAULT_ORGANIZATION = "organization"  # the default of the whole organisation

DRAFT = "draft"
READY = "ready"  # checked: may be sent
IN_USE = "in_use"  # a send uses it: no longer editable (copy it to change it)
MESSAGE_STATES = (DRAFT, READY, IN_USE)


class ContentSetting(OwnedMixin, AuditedMixin, Base):
    """Sender, reply-to, postal address and subscription centre for messages (B14)."""

    __tablename__ = "email_content_setting"
    __table_args__ = (
        *owned_indexes("email_content_setting"),
        # At most one default per business unit, and one for the organisation.
        Index(
            "uq_email_content_setting_bu_default",
            "owning_bu_id",
            unique=True,
            sqlite_where=text("default_for = 'business_unit'"),
            postgresql_where=text("default_for = 'business_unit'"),
        ),
        Index(
            "uq_email_content_setting_org_default",
            "default_for",
            unique=True,
            sqlite_where=text("default_for = 'organization'"),
            postgresql_where=text("default_for = 'organization'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    sender_email: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    postal_address: Mapped[str] = mapped_column(Text, default="")
    # Where "manage your subscriptions" leads; None: Gatherly's own subscription centre.
    subscription_centre_url: Mapped[str | None] = mapped_column(String(2000))
    default_for: Mapped[str | None] = mapped_column(String(20))


class EmailMessage(OwnedMixin, AuditedMixin, Base):
    """A marketing email: subject, preheader, HTML and text, personalised per contact."""

    __tablename__ = "email_message"
    __table_args__ = (*owned_indexes("email_message"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500), default="")
    preheader: Mapped[str] = mapped_column(String(500), default="")
    html: Mapped[str] = mapped_column(Text, default="")
    # The plain-text part written by hand; None: made from the HTML at send time.
    text: Mapped[str | None] = mapped_column(Text)
    content_setting_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_content_setting.id", ondelete="RESTRICT")
    )
    # An event message may use the event's fields ({{ event.name }}, {{ event.start }}).
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_event.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(10), default=DRAFT, server_default=DRAFT)
    # The subscription topic it belongs to ("Webinars"); "": marketing email in general.
    # Who unsubscribed from the topic, or from all marketing email, does not get it.
    topic: Mapped[str] = mapped_column(String(100), default="", server_default="")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


UNSUBSCRIBED = "unsubscribed"
HARD_BOUNCE = "hard_bounce"
COMPLAINT = "complaint"
SUPPRESSION_REASONS = (UNSUBSCRIBED, HARD_BOUNCE, COMPLAINT)


class Suppression(Base):
    """An address that must not get marketing email, and why: it unsubscribed (from all, or
    from one topic), bounced hard, or complained. One place for every sending path; an
    administrator may lift a bounce (audited), and a lifted row stays as history."""

    __tablename__ = "email_suppression"
    __table_args__ = (
        Index(
            "uq_email_suppression_active",
            "email",
            "reason",
            "topic",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(100), default="", server_default="")  # "": all
    source: Mapped[str] = mapped_column(String(30))  # smtp, one_click, subscription_centre, …
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by_id: Mapped[int | None] = mapped_column(Integer)
    lift_reason: Mapped[str] = mapped_column(Text, default="")


# A send's life: scheduled (waits for its time) → sending (the worker is on it; when only
# deliveries waiting to be retried are left, the worker comes back at their time) → done;
# or cancelled before it is done, or failed (nothing could be sent: the reason says why).
SCHEDULED = "scheduled"
SENDING = "sending"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"
SEND_STATES = (SCHEDULED, SENDING, DONE, CANCELLED, FAILED)


class EmailSend(OwnedMixin, AuditedMixin, Base):
    """A ready message sent to segments and lists, now or at a time. Its audience is taken
    when it starts, as the user who made it may read it, into one delivery per contact."""

    __tablename__ = "email_send"
    __table_args__ = (
        *owned_indexes("email_send"),
        Index("ix_email_send_state", "state", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("email_message.id", ondelete="RESTRICT"))
    segment_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    list_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default=SCHEDULED)
    error: Mapped[str] = mapped_column(Text, default="", server_default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker on it holds it until then (and renews it as it goes); a worker that died
    # leaves it to expire, and the next one resumes the send.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the worker should look at it again (deliveries waiting to be retried).
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int | None] = mapped_column(Integer)  # deliveries made at the start
    # A journey's email step sends through a send of its own, open while the journey runs:
    # the journey queues a delivery for each contact reaching the step.
    journey_id: Mapped[int | None] = mapped_column(
        ForeignKey("journey.id", ondelete="SET NULL"), index=True
    )
    journey_step: Mapped[str | None] = mapped_column(String(40))


# A delivery's life: queued → sending (committed before the SMTP transaction starts) →
# sent | failed(reason) ; or suppressed(reason) from the start. A 4xx answer puts it back
# to queued with a later attempt time; after the last attempt it fails as a soft bounce.
QUEUED = "queued"
SENT = "sent"
SUPPRESSED = "suppressed"
DELIVERY_STATES = (QUEUED, SENDING, SENT, FAILED, SUPPRESSED, CANCELLED)
DUPLICATE = "duplicate"  # another contact of the send has the same address
SOFT_BOUNCE = "soft_bounce"
REJECTED = "rejected"  # the server refused the message itself (5xx after DATA)
INTERRUPTED = "interrupted"  # the worker stopped while this one was in flight
NOT_RENDERED = "not_rendered"  # the template failed for this contact


class EmailDelivery(Base):
    """One message to one contact of a send: exactly one per (send, contact, entry). A
    send to segments and lists has entry 1; a journey's email step sends once per pass of
    the contact through the journey (``JourneyMember.entry``)."""

    __tablename__ = "email_delivery"
    __table_args__ = (
        UniqueConstraint("send_id", "contact_id", "entry"),
        Index("ix_email_delivery_work", "send_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("email_send.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="SET NULL"), index=True
    )
    entry: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    email: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10), default=QUEUED)
    reason: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")  # SMTP's answer
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


DELIVERED = "delivered"
OPENED = "opened"
CLICKED = "clicked"
BOUNCED = "bounced"
COMPLAINED = "complained"
INTERACTION_KINDS = (DELIVERED, OPENED, CLICKED, UNSUBSCRIBED, BOUNCED, COMPLAINED)


class EmailInteraction(Base):
    """Something a delivery led to, with its time: owned by the message that generated it
    (insights show full counts to whoever may read the message), not by the contact."""

    __tablename__ = "email_interaction"
    __table_args__ = (
        Index("ix_email_interaction_message", "message_id", "kind", "at"),
        Index("ix_email_interaction_send", "send_id", "kind", "at"),
        Index("ix_email_interaction_delivery", "delivery_id", "kind"),
        # Lead scores count a contact's opens and clicks (scoring.engine, per contact).
        Index("ix_email_interaction_contact", "contact_id", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("email_delivery.id", ondelete="CASCADE"), index=True
    )
    send_id: Mapped[int] = mapped_column(ForeignKey("email_send.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("email_message.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    url: Mapped[str | None] = mapped_column(String(2000))
    machine: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


registry.register("email_content_setting", "Email content setting", ContentSetting)
registry.register("email_message", "Email message", EmailMessage)
registry.register("email_send", "Email send", EmailSend)
