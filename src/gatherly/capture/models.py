"""Marketing forms, pages, their submissions and interactions (SPEC B7, B11), and
duplicate-detection jobs with the pairs they found (SPEC B8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base, UTCDateTime, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class DuplicateJob(Base):
    """One bulk duplicate-detection run over a record type, as the user who asked: it only
    compares records that user may read, and only that user sees it."""

    __tablename__ = "duplicate_job"
    __table_args__ = (Index("ix_duplicate_job_user", "requested_by_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(20))
    rule_ids: Mapped[str] = mapped_column(String(400), default="")  # "" = the published rules
    state: Mapped[str] = mapped_column(String(10), default=QUEUED)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class DuplicatePair(Base):
    """Two records a rule says are the same person: ``record_id`` is the older one."""

    __tablename__ = "duplicate_pair"
    __table_args__ = (
        UniqueConstraint("job_id", "record_id", "duplicate_id"),
        Index("ix_duplicate_pair_duplicate", "duplicate_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("duplicate_job.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("duplicate_rule.id", ondelete="SET NULL")
    )
    record_id: Mapped[int] = mapped_column(Integer)
    duplicate_id: Mapped[int] = mapped_column(Integer)


# What a submission does (the form's ``on_submit``).
CONTACTS_AND_LEADS = "contacts_and_leads"  # match or make a contact, and a lead for it
CONTACTS = "contacts"  # match or make a contact (update a match)
LEADS = "leads"  # match or make a lead
NO_UPDATE = "no_update"  # make a contact if none matches; never change one that does
ON_SUBMIT = (CONTACTS_AND_LEADS, CONTACTS, LEADS, NO_UPDATE)

DRAFT, LIVE = "draft", "live"  # a form (and a page) takes submissions only while live
PENDING, PROCESSED, SUBMISSION_FAILED = "pending", "processed", "failed"


class MarketingForm(OwnedMixin, AuditedMixin, Base):
    """A form people fill in: fields mapped to contact and lead attributes, consent
    checkboxes with their wording, what a submission does, which duplicate rule matches,
    and what the person sees after."""

    __tablename__ = "marketing_form"
    __table_args__ = owned_indexes("marketing_form")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default=DRAFT)
    # [{"key": "email" | "first_name" | … | "custom.<name>", "label", "type", "required",
    #   "max_length", "options", "placeholder", "help"}]
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"key", "text", "required"}]: the wording shown is stored with each submission.
    consents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    on_submit: Mapped[str] = mapped_column(String(20), default=CONTACTS_AND_LEADS)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("duplicate_rule.id", ondelete="SET NULL")
    )
    lead_topic: Mapped[str] = mapped_column(String(300), default="")
    submit_label: Mapped[str] = mapped_column(String(60), default="Submit")
    thank_you: Mapped[str] = mapped_column(Text, default="Thank you.")
    redirect_url: Mapped[str | None] = mapped_column(String(2000))
    # Rotating it invalidates every embed snippet handed out so far.
    embed_nonce: Mapped[str] = mapped_column(String(32), default="")


class MarketingPage(OwnedMixin, AuditedMixin, Base):
    """A hosted page at ``/p/{slug}``: a title, text, and one form."""

    __tablename__ = "marketing_page"
    __table_args__ = (*owned_indexes("marketing_page"), UniqueConstraint("slug"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # paragraphs of plain text
    form_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_form.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(10), default=DRAFT)


class FormSubmission(OwnedMixin, Base):
    """What someone sent through a form, owned by the form's owner (B7), and what became of
    it: processed once on the worker into a contact and/or a lead."""

    __tablename__ = "form_submission"
    __table_args__ = (
        *owned_indexes("form_submission"),
        Index("ix_form_submission_form", "form_id", "id"),
        Index("ix_form_submission_state", "state", "id"),
        Index("ix_form_submission_ip", "ip_hash", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("marketing_form.id", ondelete="CASCADE"))
    page_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_page.id", ondelete="SET NULL")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the fields, checked
    consents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # text + given
    ip_hash: Mapped[str] = mapped_column(String(64), default="")
    visitor: Mapped[str | None] = mapped_column(String(40))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(60), default="")  # "contact made, lead made"
    error: Mapped[str] = mapped_column(Text, default="")


PAGE_VISITED, FORM_SUBMITTED = "page_visited", "form_submitted"


class CaptureInteraction(Base):
    """A page visited or a form submitted, owned by the page or form that produced it (B11):
    whoever may read the page or form sees every count; detail lists name only contacts the
    viewer may read. A visit before the visitor submitted anything has no contact until a
    submission from the same browser (``visitor``) names one."""

    __tablename__ = "capture_interaction"
    __table_args__ = (
        Index("ix_capture_interaction_form", "form_id", "kind", "at"),
        Index("ix_capture_interaction_page", "page_id", "kind", "at"),
        Index("ix_capture_interaction_contact", "contact_id", "kind", "at"),
        Index("ix_capture_interaction_visitor", "visitor"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    form_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_form.id", ondelete="CASCADE"))
    # A page's deletion keeps its visits and submissions on the form's counts.
    page_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_page.id", ondelete="SET NULL")
    )
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_submission.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    visitor: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


registry.register("marketing_form", "Marketing form", MarketingForm)
registry.register("marketing_page", "Marketing page", MarketingPage)
registry.register("form_submission", "Form submission", FormSubmission)
