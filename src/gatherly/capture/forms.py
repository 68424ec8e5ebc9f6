"""Marketing forms and pages, and what people send through them (SPEC B7, B8, B11).

- A **form** (owned) maps fields to contact and lead attributes, carries consent
  checkboxes with their wording, says what a submission does (``on_submit``), which
  duplicate rule matches, and what the person sees after. It takes submissions while live.
- A **page** (owned) is served at ``/p/{slug}`` with its text and one form; a form can also
  be pasted into any website as plain HTML (``embed``), no JavaScript needed.
- **Submitting** is public and CSRF-free by nature, so it is guarded otherwise: a signed
  form token (a page's expires after a day; an embed snippet's lasts until the form's embed
  key is rotated), a honeypot field, a limit per sender address and per form, size limits,
  and a clear error per field. A valid submission is stored, owned by the form's owner, and
  processed on the worker: matched by the form's rule into a contact and/or a lead owned
  by the form's owner (B7). Processing happens once: it checks and marks the submission in
  the transaction that writes the records.
- **Interactions**: a page visited, a form submitted (owned by the page or form, B11).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, cast

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.capture import html as form_html
from gatherly.capture import schemas as s
from gatherly.capture.models import (
    CONTACTS,
    CONTACTS_AND_LEADS,
    DRAFT,
    FORM_SUBMITTED,
    LEADS,
    LIVE,
    NO_UPDATE,
    PAGE_VISITED,
    PENDING,
    PROCESSED,
    SUBMISSION_FAILED,
    CaptureInteraction,
    FormSubmission,
    MarketingForm,
    MarketingPage,
)
from gatherly.contact import matching, owned
from gatherly.contact.models import RULE_FIELDS, Contact, DuplicateRule, Lead
from gatherly.contact.schemas import PHONE, OwnerRef, normalize_country
from gatherly.core import audit, changes, crypto
from gatherly.core.config import Settings
from gatherly.core.db import transaction, utcnow
from gatherly.core.exceptions import Conflict, NotFound, RateLimited, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.core.schemas import normalize_email

FORM, PAGE, SUBMISSION = "marketing_form", "marketing_page", "form_submission"
PAGE_TOKEN_AGE = timedelta(days=1)
MAX_BODY = 64 * 1024  # bytes of a submission, all fields together
PER_ADDRESS = 10  # submissions from one sender address …
PER_ADDRESS_WINDOW = timedelta(minutes=10)  # … in this long
PER_FORM = 300  # submissions to one form …
PER_FORM_WINDOW = timedelta(minutes=1)  # … in this long


class SubmissionQueue(Protocol):
    """Where submissions go to be processed by a worker (``gatherly.jobs.queue.Jobs``)."""

    def enqueue_submission(self, *, submission_id: int) -> None: ...


def _validated(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """The API's input model applied to any caller's values: one error naming its field."""
    try:
        return model.model_validate(dict(data))
    except PydanticError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationFailed(message[:1].lower() + message[1:], field=field) from None


# ------------------------------------------------------------------ forms


def get_form(
    *, db: Session, principal: access.Principal, form_id: int, privilege: Privilege = Privilege.READ
) -> MarketingForm:
    """A form the caller may read (NotFound otherwise), checked for ``privilege``."""
    found: MarketingForm = owned.get(
        db, principal, FORM, form_id, noun="form", privilege=privilege, field="form_id"
    )
    return found


def list_forms(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """The forms the caller may read, newest first."""
    return owned.page(db, principal, MarketingForm, FORM, q=q, cursor=cursor, limit=limit)


def _check_form(db: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Cross-field checks the schema cannot make; returns the values to store."""
    if "fields" in values:
        keys = [f["key"] for f in values["fields"]]
        if len(keys) != len(set(keys)):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise ValidationFailed(f"two fields write {twice}", field="fields")
        for i, f in enumerate(values["fields"]):
            if f["type"] == "select" and not f["options"]:
                raise ValidationFailed("a choice field needs options", field=f"fields.{i}.options")
    if "consents" in values:
        keys = [c["key"] for c in values["consents"]]
        if len(keys) != len(set(keys)):
            raise ValidationFailed("two consents have the same key", field="consents")
    if values.get("rule_id") is not None:
        rule = db.get(DuplicateRule, values["rule_id"])
        if rule is None:
            raise ValidationFailed(
                f"duplicate detection rule {values['rule_id']} not found", field="rule_id"
            )
    return values


def create_form(
    *,
    db: Session,
    principal: access.Principal,
    form_in: Mapping[str, Any],
    owner: OwnerRef | None = None,
) -> MarketingForm:
    """A draft form owned by ``owner`` (default: the caller)."""
    body = _validated(s.FormIn, {**form_in, "owner": None})
    columns = owned.new_columns(db, principal, FORM, owner)
    values = _check_form(db, body.model_dump(exclude={"owner"}, exclude_none=True))
    row = MarketingForm(**values, state=DRAFT, embed_nonce=secrets.token_hex(8), **columns)
    db.add(row)
    db.flush()
    return row


def update_form(
    *, db: Session, principal: access.Principal, form_id: int, changes_in: Mapping[str, Any]
) -> MarketingForm:
    """Change the settings sent (Write). A live form can change too: new submissions are
    checked and processed by what it says now."""
    row = get_form(db=db, principal=principal, form_id=form_id, privilege=Privilege.WRITE)
    body = _validated(s.FormFields, changes_in)
    values = body.model_dump(include=body.model_fields_set)
    for name, value in values.items():
        if value is None and name not in ("rule_id", "redirect_url"):
            raise ValidationFailed(f"{name} cannot be null", field=name)
    values = _check_form(db, values)
    for name, value in values.items():
        setattr(row, name, value)
    owned.touch(row, principal)
    db.flush()
    return row


def set_form_state(
    *, db: Session, principal: access.Principal, form_id: int, state: str
) -> MarketingForm:
    """Take a form live (it takes submissions) or back to draft (it refuses them)."""
    row = get_form(db=db, principal=principal, form_id=form_id, privilege=Privilege.WRITE)
    if state not in (DRAFT, LIVE):
        raise ValidationFailed("state is draft or live", field="state")
    if state == LIVE:
        _check_can_go_live(db, row)
    if row.state != state:
        before = row.state
        row.state = state
        owned.touch(row, principal)
        db.flush()
        audit.log(
            db,
            actor=principal,
            action="form.state",
            target_type=FORM,
            target_id=str(row.id),
            target_label=row.name,
            before={"state": before},
            after={"state": state},
        )
    return row


def _check_can_go_live(db: Session, row: MarketingForm) -> None:
    keys = {f["key"] for f in row.fields}
    rules = _rules(db, row, "lead" if row.on_submit == LEADS else "contact")
    fields_used = {c["field"] for r in rules for c in r.conditions}
    if not rules:
        raise Conflict(
            "no duplicate detection rule applies to this form: choose one, or publish one",
            field="rule_id",
        )
    if not fields_used & keys:
        raise Conflict(
            f"the form has none of the fields its duplicate rule compares "
            f"({', '.join(sorted(fields_used))}): add one so people are matched",
            field="fields",
        )


def delete_form(*, db: Session, principal: access.Principal, form_id: int) -> None:
    """Delete a form with its submissions (Delete); pages that showed it show no form."""
    row = get_form(db=db, principal=principal, form_id=form_id, privilege=Privilege.DELETE)
    db.delete(row)
    db.flush()


def rotate_embed_key(*, db: Session, principal: access.Principal, form_id: int) -> MarketingForm:
    """Invalidate every embed snippet handed out for this form (Write); audited."""
    row = get_form(db=db, principal=principal, form_id=form_id, privilege=Privilege.WRITE)
    row.embed_nonce = secrets.token_hex(8)
    owned.touch(row, principal)
    db.flush()
    audit.log(
        db,
        actor=principal,
        action="form.embed_key",
        target_type=FORM,
        target_id=str(row.id),
        target_label=row.name,
        after={"rotated": True},
    )
    return row


# ------------------------------------------------------------------ tokens


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        crypto.secret_key(settings).get_secret_value(),
        salt="gatherly.capture.form",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def form_token(settings: Settings, form: MarketingForm, *, embed: bool = False) -> str:
    """The signed token a rendering of the form carries: a page's expires after a day, an
    embed snippet's lasts until the form's embed key is rotated."""
    return str(_serializer(settings).dumps([form.id, "e" if embed else "p", form.embed_nonce]))


def _check_token(settings: Settings, form: MarketingForm, token: str) -> None:
    stale = ValidationFailed(
        "this form is out of date: reload the page and send it again", field="form"
    )
    serializer = _serializer(settings)
    try:
        form_id, kind, nonce = serializer.loads(token or "")
    except SignatureExpired:
        raise stale from None
    except (BadSignature, ValueError, TypeError):
        raise ValidationFailed("this form cannot be sent from here", field="form") from None
    if form_id != form.id or kind not in ("e", "p"):
        raise ValidationFailed("this form cannot be sent from here", field="form")
    if kind == "e" and nonce != form.embed_nonce:
        raise stale
    if kind == "p":
        try:
            serializer.loads(token, max_age=int(PAGE_TOKEN_AGE.total_seconds()))
        except SignatureExpired:
            raise stale from None


def action_url(settings: Settings, form_id: int) -> str:
    """Where the form posts."""
    return f"{settings.public_url.rstrip('/')}/f/{form_id}"


def embed(*, db: Session, principal: access.Principal, settings: Settings, form_id: int) -> str:
    """The HTML to paste into any website: the form posting to Gatherly (no JavaScript)."""
    row = get_form(db=db, principal=principal, form_id=form_id)
    return str(
        form_html.render(
            row,
            action=action_url(settings, row.id),
            token=form_token(settings, row, embed=True),
        )
    )


def render_form(
    settings: Settings,
    form: MarketingForm,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    page_id: int | None = None,
) -> Any:
    """The form as a hosted page shows it (a fresh page token)."""
    return form_html.render(
        form,
        action=f"/f/{form.id}",
        token=form_token(settings, form),
        values=values,
        errors=errors,
        page_id=page_id,
    )


# ------------------------------------------------------------------ pages


def get_page(
    *, db: Session, principal: access.Principal, page_id: int, privilege: Privilege = Privilege.READ
) -> MarketingPage:
    """A page the caller may read (NotFound otherwise), checked for ``privilege``."""
    found: MarketingPage = owned.get(
        db, principal, PAGE, page_id, noun="page", privilege=privilege, field="page_id"
    )
    return found


def list_pages(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """The pages the caller may read, newest first."""
    return owned.page(db, principal, MarketingPage, PAGE, q=q, cursor=cursor, limit=limit)


def _check_page(
    db: Session, principal: access.Principal, values: dict[str, Any], page_id: int | None
) -> None:
    if "slug" in values:
        taken = db.scalar(
            select(MarketingPage.id).where(
                MarketingPage.slug == values["slug"], MarketingPage.id != (page_id or 0)
            )
        )
        if taken is not None:
            raise Conflict(f"the address /p/{values['slug']} is taken", field="slug")
    if values.get("form_id") is not None:
        get_form(db=db, principal=principal, form_id=values["form_id"])


def create_page(
    *,
    db: Session,
    principal: access.Principal,
    page_in: Mapping[str, Any],
    owner: OwnerRef | None = None,
) -> MarketingPage:
    """A draft page owned by ``owner`` (default: the caller); its form must be one the
    caller may read."""
    body = _validated(s.PageIn, {**page_in, "owner": None})
    columns = owned.new_columns(db, principal, PAGE, owner)
    values = body.model_dump(exclude={"owner"}, exclude_none=True)
    _check_page(db, principal, values, None)
    row = MarketingPage(**values, state=DRAFT, **columns)
    db.add(row)
    db.flush()
    return row


def update_page(
    *, db: Session, principal: access.Principal, page_id: int, changes_in: Mapping[str, Any]
) -> MarketingPage:
    """Change the page's text, address or form (Write)."""
    row = get_page(db=db, principal=principal, page_id=page_id, privilege=Privilege.WRITE)
    body = _validated(s.PageFields, changes_in)
    values = body.model_dump(include=body.model_fields_set)
    for name, value in values.items():
        if value is None and name != "form_id":
            raise ValidationFailed(f"{name} cannot be null", field=name)
    if "form_id" in values and values["form_id"] == row.form_id:
        values.pop("form_id")  # unchanged: the caller need not be able to read it
    _check_page(db, principal, values, row.id)
    for name, value in values.items():
        setattr(row, name, value)
    owned.touch(row, principal)
    db.flush()
    return row


def set_page_state(
    *, db: Session, principal: access.Principal, page_id: int, state: str
) -> MarketingPage:
    """Publish a page at /p/{slug} (``live``) or take it down (``draft``)."""
    row = get_page(db=db, principal=principal, page_id=page_id, privilege=Privilege.WRITE)
    if state not in (DRAFT, LIVE):
        raise ValidationFailed("state is draft or live", field="state")
    if state == LIVE and row.form_id is not None:
        form = db.get_one(MarketingForm, row.form_id)
        if form.state != LIVE:
            raise Conflict(
                f"its form {form.name!r} is a draft: take the form live first", field="state"
            )
    row.state = state
    owned.touch(row, principal)
    db.flush()
    return row


def delete_page(*, db: Session, principal: access.Principal, page_id: int) -> None:
    """Delete a page (Delete)."""
    row = get_page(db=db, principal=principal, page_id=page_id, privilege=Privilege.DELETE)
    db.delete(row)
    db.flush()


@dataclass(frozen=True)
class PublicPage:
    """A live page as a visitor sees it."""

    page: MarketingPage
    form: MarketingForm | None
    paragraphs: list[str]


def public_page(*, db: Session, slug: str, visitor: str | None) -> PublicPage:
    """The live page at ``/p/{slug}`` (NotFound otherwise), its visit recorded."""
    row = db.scalar(
        select(MarketingPage).where(MarketingPage.slug == slug, MarketingPage.state == LIVE)
    )
    if row is None:
        raise NotFound("there is no page at this address", field="slug")
    form = db.get(MarketingForm, row.form_id) if row.form_id is not None else None
    if form is not None and form.state != LIVE:
        form = None
    db.add(
        CaptureInteraction(
            kind=PAGE_VISITED, page_id=row.id, form_id=form.id if form else None, visitor=visitor
        )
    )
    return PublicPage(page=row, form=form, paragraphs=paragraphs(row.body))


def paragraphs(body: str | None) -> list[str]:
    """A page's text as visitors see it: paragraphs split by blank lines."""
    return [p.strip() for p in re.split(r"\n\s*\n", body or "") if p.strip()]


def public_form(*, db: Session, form_id: int) -> MarketingForm:
    """A live form (NotFound otherwise), for its standalone page."""
    row = db.get(MarketingForm, form_id)
    if row is None or row.state != LIVE:
        raise NotFound("this form is not taking answers", field="form_id")
    return row


# ------------------------------------------------------------------ submitting


class FormInvalid(ValidationFailed):
    """Some fields are wrong: ``errors`` maps each field's key to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors))
        super().__init__(errors[first], field=first, extra={"errors": errors})
        self.errors = errors


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: stored (and queued), or quietly dropped (a bot)."""

    form: MarketingForm
    submission: FormSubmission | None


def address_hash(settings: Settings, address: str) -> str:
    """The sender's address as stored: keyed, so the table holds no IP addresses."""
    key = crypto.secret_key(settings).get_secret_value().encode()
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()


def _field_value(field: Mapping[str, Any], raw: str) -> Any:
    """A field's value checked for its attribute; ValueError says what is wrong."""
    value = raw.strip()
    if field["type"] == "checkbox":
        return bool(value)
    if not value:
        if field.get("required"):
            raise ValueError("this field is required")
        return ""
    if len(value) > field.get("max_length", 200):
        raise ValueError(f"at most {field.get('max_length', 200)} characters")
    key = field["key"]
    if key == "email":
        return normalize_email(value)
    if key == "country":
        return normalize_country(value)
    if key == "phone" and not PHONE.match(value):
        raise ValueError("a phone number has digits, spaces, + ( ) . - /")
    if field["type"] == "select" and value not in field.get("options", []):
        raise ValueError("choose one of the options")
    return value


def check_values(
    form: MarketingForm, raw: Mapping[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The submitted values checked field by field (FormInvalid lists every problem), and
    the consents with the wording shown."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    for field in form.fields:
        try:
            data[field["key"]] = _field_value(field, str(raw.get(field["key"], "")))
        except ValueError as exc:
            errors[field["key"]] = str(exc)
    consents = []
    for c in form.consents:
        given = bool(str(raw.get(f"consent.{c['key']}", "")).strip())
        if c.get("required") and not given:
            errors[f"consent.{c['key']}"] = "this is needed to send the form"
        consents.append({"key": c["key"], "text": c["text"], "given": given})
    if errors:
        raise FormInvalid(errors)
    return data, consents


def submit(
    *,
    db: Session,
    settings: Settings,
    form_id: int,
    raw: Mapping[str, str],
    address: str,
    visitor: str | None = None,
    size: int = 0,
    queue: SubmissionQueue | None = None,
) -> Submitted:
    """Take a public submission: check its token, honeypot, rate and size and every field;
    store it owned by the form's owner; queue it (committed first)."""
    form = public_form(db=db, form_id=form_id)
    if size > MAX_BODY:
        raise ValidationFailed(
            f"the form is too large (at most {MAX_BODY // 1024} KB)", field="form"
        )
    _check_token(settings, form, str(raw.get(form_html.TOKEN, "")))
    if str(raw.get(form_html.HONEYPOT, "")).strip():
        return Submitted(form=form, submission=None)  # a bot: thanked, never stored
    now = utcnow()
    sender = address_hash(settings, address)
    recent = db.scalar(
        select(func.count()).where(
            FormSubmission.ip_hash == sender,
            FormSubmission.submitted_at > now - PER_ADDRESS_WINDOW,
        )
    )
    if (recent or 0) >= PER_ADDRESS:
        raise RateLimited("too many forms sent from here just now: try again in a few minutes")
    busy = db.scalar(
        select(func.count()).where(
            FormSubmission.form_id == form.id, FormSubmission.submitted_at > now - PER_FORM_WINDOW
        )
    )
    if (busy or 0) >= PER_FORM:
        raise RateLimited("this form is taking too many answers just now: try again in a minute")
    data, consents = check_values(form, raw)
    page_id = _page_of(db, form, raw.get("_page"))
    row = FormSubmission(
        form_id=form.id,
        page_id=page_id,
        data=data,
        consents=consents,
        ip_hash=sender,
        visitor=visitor,
        submitted_at=now,
        state=PENDING,
        owner_type=form.owner_type,
        owner_id=form.owner_id,
        owning_bu_id=form.owning_bu_id,
    )
    db.add(row)
    db.flush()
    db.add(
        CaptureInteraction(
            kind=FORM_SUBMITTED,
            form_id=form.id,
            page_id=page_id,
            submission_id=row.id,
            visitor=visitor,
            at=now,
        )
    )
    db.flush()
    if queue is not None:
        db.commit()
        queue.enqueue_submission(submission_id=row.id)
    return Submitted(form=form, submission=row)


def _page_of(db: Session, form: MarketingForm, raw: Any) -> int | None:
    if not raw or not str(raw).isdigit() or len(str(raw)) > 9:
        return None
    page = db.get(MarketingPage, int(str(raw)))
    return page.id if page is not None and page.form_id == form.id else None


# ------------------------------------------------------------------ processing


def _rules(db: Session, form: MarketingForm, record_type: str) -> list[matching.Rule]:
    """The form's rule when it is of this type, else the type's published rules."""
    if form.rule_id is not None:
        rule = db.get(DuplicateRule, form.rule_id)
        if rule is not None and rule.record_type == record_type:
            return [matching.Rule.of(rule)]
    return matching.published_rules(db, record_type)


def process_submission(factory: sessionmaker[Session], submission_id: int) -> FormSubmission | None:
    """Turn a pending submission into its contact and/or lead, once: the submission is
    claimed (pending → processed) in the transaction that writes them, so a worker killed
    half-way leaves it pending and nothing written, and a second run finds it done."""
    try:
        with transaction(factory) as db:
            claimed = db.execute(  # type: ignore[attr-defined]
                update(FormSubmission)
                .where(FormSubmission.id == submission_id, FormSubmission.state == PENDING)
                .values(state=PROCESSED, processed_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if not claimed:
                return db.get(FormSubmission, submission_id)
            row = db.get_one(FormSubmission, submission_id)
            _process(db, row)
            return row
    except Exception as exc:
        with transaction(factory) as db:
            db.execute(
                update(FormSubmission)
                .where(FormSubmission.id == submission_id, FormSubmission.state == PENDING)
                .values(state=SUBMISSION_FAILED, processed_at=utcnow(), error=f"{exc}"[:2000])
            )
        raise


def _process(db: Session, row: FormSubmission) -> None:
    form = db.get_one(MarketingForm, row.form_id)
    values = {k: v for k, v in row.data.items() if k in RULE_FIELDS and v not in (None, "")}
    custom = {k.removeprefix("custom."): v for k, v in row.data.items() if k.startswith("custom.")}
    said: list[str] = []
    contact: Contact | None = None
    if form.on_submit in (CONTACTS_AND_LEADS, CONTACTS, NO_UPDATE):
        got = matching.intake(
            db,
            record_type="contact",
            values={**values, "custom": custom},
            rules=_rules(db, form, "contact"),
            update_fields=() if form.on_submit == NO_UPDATE else tuple(values),
            extra={"origin": "form"},
            owner_type=form.owner_type,
            owner_id=form.owner_id,
            bu_id=form.owning_bu_id,
        )
        contact = cast(Contact, got.record)
        if custom and form.on_submit != NO_UPDATE and not got.created:
            contact.custom = {**contact.custom, **custom}
        row.contact_id = contact.id
        said.append("contact made" if got.created else "contact matched")
        changes.record(db, changes.CONTACT, contact_ids=[contact.id])
    if form.on_submit in (CONTACTS_AND_LEADS, LEADS):
        got = matching.intake(
            db,
            record_type="lead",
            values={**values, "custom": custom},
            rules=_rules(db, form, "lead"),
            update_fields=tuple(values),
            extra={
                "origin": "form",
                "topic": form.lead_topic or form.name,
                "source": "form",
                "contact_id": contact.id if contact else None,
            },
            owner_type=form.owner_type,
            owner_id=form.owner_id,
            bu_id=form.owning_bu_id,
        )
        lead = cast(Lead, got.record)
        if contact is not None and lead.contact_id is None:
            lead.contact_id = contact.id
        row.lead_id = lead.id
        said.append("lead made" if got.created else "lead matched")
    row.outcome = ", ".join(said)
    if row.contact_id is not None:
        # This submission, and the visits from the same browser before it, are theirs.
        db.execute(
            update(CaptureInteraction)
            .where(CaptureInteraction.submission_id == row.id)
            .values(contact_id=row.contact_id)
        )
        if row.visitor:
            db.execute(
                update(CaptureInteraction)
                .where(
                    CaptureInteraction.visitor == row.visitor,
                    CaptureInteraction.contact_id.is_(None),
                )
                .values(contact_id=row.contact_id)
            )
    db.flush()


def pending(factory: sessionmaker[Session], *, limit: int = 500) -> list[int]:
    """Submissions waiting to be processed (a lost wake-up or a killed worker), oldest first."""
    with factory() as db:
        return list(
            db.scalars(
                select(FormSubmission.id)
                .where(FormSubmission.state == PENDING)
                .order_by(FormSubmission.id)
                .limit(limit)
            )
        )


# ------------------------------------------------------------------ reading submissions


def list_submissions(
    *,
    db: Session,
    principal: access.Principal,
    form_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Submissions the caller may read (they belong to the form's owner), newest first."""
    stmt = select(FormSubmission)
    if form_id is not None:
        get_form(db=db, principal=principal, form_id=form_id)
        stmt = stmt.where(FormSubmission.form_id == form_id)
    return paginate(
        db,
        access.scope(stmt, principal=principal, record_type=SUBMISSION),
        id_column=FormSubmission.id,
        sortable={"id": FormSubmission.id},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )


def get_submission(
    *, db: Session, principal: access.Principal, submission_id: int
) -> FormSubmission:
    """One submission the caller may read."""
    found: FormSubmission = owned.get(
        db, principal, SUBMISSION, submission_id, noun="submission", field="submission_id"
    )
    return found


@dataclass(frozen=True)
class FormStats:
    """A form's or page's counts (B11: full to anyone who may read it)."""

    visits: int
    submissions: int
    contacts: int


def stats(
    *,
    db: Session,
    principal: access.Principal,
    form_id: int | None = None,
    page_id: int | None = None,
) -> FormStats:
    """Visits, submissions and distinct contacts of a form or page the caller may read."""
    if form_id is not None:
        get_form(db=db, principal=principal, form_id=form_id)
        where = CaptureInteraction.form_id == form_id
    elif page_id is not None:
        get_page(db=db, principal=principal, page_id=page_id)
        where = CaptureInteraction.page_id == page_id
    else:
        raise ValidationFailed("name a form or a page", field="form_id")
    rows = dict(
        db.execute(
            select(CaptureInteraction.kind, func.count())
            .where(where)
            .group_by(CaptureInteraction.kind)
        ).all()
    )
    people = db.scalar(
        select(func.count(func.distinct(CaptureInteraction.contact_id))).where(
            where, CaptureInteraction.kind == FORM_SUBMITTED
        )
    )
    return FormStats(
        visits=rows.get(PAGE_VISITED, 0),
        submissions=rows.get(FORM_SUBMITTED, 0),
        contacts=people or 0,
    )


@dataclass(frozen=True)
class Interaction:
    """A visit or a submission in a detail list: the contact when the viewer may read it,
    else None (shown as anonymous; the counts include it either way, B11)."""

    id: int
    kind: str
    at: Any
    contact: Contact | None


def interactions(
    *,
    db: Session,
    principal: access.Principal,
    form_id: int | None = None,
    page_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A form's or page's visits and submissions, newest first; a contact the viewer may
    not read is anonymous."""
    if form_id is not None:
        get_form(db=db, principal=principal, form_id=form_id)
        where = CaptureInteraction.form_id == form_id
    elif page_id is not None:
        get_page(db=db, principal=principal, page_id=page_id)
        where = CaptureInteraction.page_id == page_id
    else:
        raise ValidationFailed("name a form or a page", field="form_id")
    page = paginate(
        db,
        select(CaptureInteraction).where(where),
        id_column=CaptureInteraction.id,
        sortable={"id": CaptureInteraction.id},
        sort="-id",
        cursor=cursor,
        limit=limit,
    )
    ids = {i.contact_id for i in page.items if i.contact_id is not None}
    readable = (
        {
            c.id: c
            for c in db.scalars(
                access.scope(
                    select(Contact).where(Contact.id.in_(ids)),
                    principal=principal,
                    record_type="contact",
                )
            )
        }
        if ids
        else {}
    )
    items = [
        Interaction(id=i.id, kind=i.kind, at=i.at, contact=readable.get(i.contact_id))
        for i in page.items
    ]
    return Page(items=items, next_cursor=page.next_cursor)
