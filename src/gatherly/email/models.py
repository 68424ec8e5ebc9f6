"""Email messages and the content settings they send with (SPEC M, B14).

A content setting holds what every message of a business unit shares: the sender, the
reply-to address, the postal address the law asks for, the subscription centre. A message
takes its own content setting, else (business unit scoping on) its owning BU's default,
else the organisation's default (``email.service.content_setting_for``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
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


registry.register("email_content_setting", "Email content setting", ContentSetting)
registry.register("email_message", "Email message", EmailMessage)
