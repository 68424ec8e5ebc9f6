"""Email messages and content settings: create, change, check, preview (SPEC M, B14).

Both are owned records read and changed through the access engine, like contacts. A
message is a *draft* until its checks pass and it is made *ready*; a ready message that a
send uses is *in use* and no longer editable (copy it to change it). Personalisation runs
in a sandbox (``email.render``) over the fields of the contact and, for event messages,
of the event.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core import audit
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page
from gatherly.email import render
from gatherly.email.models import (
    DEFAULT_BUSINESS_UNIT,
    DEFAULT_ORGANIZATION,
    DRAFT,
    IN_USE,
    READY,
    ContentSetting,
    EmailMessage,
)
from gatherly.email.render import Problem
from gatherly.email.schemas import (
    ContentSettingFields,
    ContentSettingIn,
    MessageFields,
    MessageIn,
)
from gatherly.event import service as event_service
from gatherly.event.models import MarketingEvent
from gatherly.org import service as org_service

SETTING = "email_content_setting"
MESSAGE = "email_message"
SEND = "email_send"
NOUNS = {SETTING: "content setting", MESSAGE: "email message", SEND: "send"}
TEMPLATE_FIELDS = ("subject", "preheader", "html", "text")


# ------------------------------------------------------------------ content settings


def get_content_setting(
    *,
    db: Session,
    principal: access.Principal,
    setting_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> ContentSetting:
    """A content setting the caller may read (NotFound otherwise), checked for ``privilege``."""
    return cast(
        ContentSetting,
        owned.get(
            db,
            principal,
            SETTING,
            setting_id,
            noun=NOUNS[SETTING],
            privilege=privilege,
            field=field,
        ),
    )


def create_content_setting(
    *, db: Session, principal: access.Principal, setting_in: ContentSettingIn
) -> ContentSetting:
    """A new content setting owned by ``setting_in.owner`` (default: the caller)."""
    columns = owned.new_columns(db, principal, SETTING, setting_in.owner)
    data = setting_in.model_dump(exclude={"owner"}, exclude_none=True)
    row = ContentSetting(**data, **columns)
    db.add(row)
    db.flush()
    return row


def update_content_setting(
    *,
    db: Session,
    principal: access.Principal,
    setting_id: int,
    setting_in: ContentSettingFields,
) -> ContentSetting:
    """Change the fields sent (needs Write); messages that use it send with the change."""
    row = get_content_setting(
        db=db, principal=principal, setting_id=setting_id, privilege=Privilege.WRITE
    )
    for key in setting_in.model_fields_set:
        value = getattr(setting_in, key)
        if value is None and key in ("name", "sender_email"):
            raise ValidationFailed(f"{key} cannot be empty", field=key)
        setattr(
            row, key, "" if value is None and key in ("sender_name", "postal_address") else value
        )
    owned.touch(row, principal)
    db.flush()
    return row


def _may_change_default(principal: access.Principal, default_for: str | None, field: str) -> None:
    """A default decides the sender of other people's messages: the organisation's needs
    organization-level write on content settings, a business unit's at least business-unit
    level (a user-level role may not set the sender for everyone in its unit)."""
    needed = {DEFAULT_ORGANIZATION: Level.ORGANIZATION, DEFAULT_BUSINESS_UNIT: Level.BUSINESS_UNIT}
    level = needed.get(default_for or "")
    if level is not None and principal.max_level(SETTING, Privilege.WRITE) < level:
        whose = "the organisation's" if default_for == DEFAULT_ORGANIZATION else "a business unit's"
        raise Forbidden(
            f"setting, moving or removing {whose} default content setting needs "
            f"{level.label.replace('_', ' ')}-level write on content settings",
            field=field,
        )


def delete_content_setting(*, db: Session, principal: access.Principal, setting_id: int) -> None:
    """Delete a content setting (needs Delete, and the right to change the default it is);
    refused while a message names it."""
    row = get_content_setting(
        db=db, principal=principal, setting_id=setting_id, privilege=Privilege.DELETE
    )
    _may_change_default(principal, row.default_for, "id")
    users = select(EmailMessage).where(EmailMessage.content_setting_id == row.id)
    if db.scalar(select(users.exists())):
        # Only the messages the caller may read are counted: of the others, the caller
        # learns no more than that some exist.
        seen = access.count(db, users, principal=principal, record_type=MESSAGE)
        raise Conflict(
            f"messages use this content setting ({seen} of them you can see); give them "
            "another one first",
            field="id",
        )
    db.delete(row)
    db.flush()


def list_content_settings(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the content settings the caller may read, newest first."""
    return owned.page(db, principal, ContentSetting, SETTING, q=q, cursor=cursor, limit=limit)


def set_default(
    *,
    db: Session,
    principal: access.Principal,
    setting_id: int,
    default_for: str | None,
) -> ContentSetting:
    """Make a content setting the default of its owning BU (only while business unit
    scoping is on) or of the organisation (organization-level Write on content settings),
    or neither. The previous default, if any, stops being one: the caller must be allowed
    to change it too. Audited."""
    row = get_content_setting(
        db=db, principal=principal, setting_id=setting_id, privilege=Privilege.WRITE
    )
    if default_for == DEFAULT_BUSINESS_UNIT and not org_service.feature_enabled(
        db=db, name=org_service.BU_SCOPING
    ):
        raise ValidationFailed(
            "a content setting can be the default of its business unit only while business "
            "unit scoping is on; make it the organisation's default instead",
            field="default_for",
        )
    before = row.default_for
    _may_change_default(principal, before, "default_for")
    _may_change_default(principal, default_for, "default_for")
    if default_for is not None and before != default_for:
        previous = db.scalars(
            select(ContentSetting).where(
                ContentSetting.default_for == default_for,
                ContentSetting.id != row.id,
                *(
                    [ContentSetting.owning_bu_id == row.owning_bu_id]
                    if default_for == DEFAULT_BUSINESS_UNIT
                    else []
                ),
            )
        ).first()
        if previous is not None:
            if not access.can(db, principal, Privilege.WRITE, SETTING, previous):
                raise Conflict(
                    "another content setting, which you may not change, is already that "
                    "default; ask its owner to unset it",
                    field="default_for",
                )
            previous.default_for = None
            owned.touch(previous, principal)
            db.flush()
            audit.log(
                db,
                actor=principal,
                action="email_content_setting.default",
                target_type=SETTING,
                target_id=previous.id,
                target_label=previous.name,
                before={"default_for": default_for},
                after={"default_for": None},
            )
    row.default_for = default_for
    owned.touch(row, principal)
    db.flush()
    audit.log(
        db,
        actor=principal,
        action="email_content_setting.default",
        target_type=SETTING,
        target_id=row.id,
        target_label=row.name,
        before={"default_for": before},
        after={"default_for": default_for},
    )
    return row


def content_setting_for(*, db: Session, message: EmailMessage) -> ContentSetting | None:
    """The content setting a message sends with: its own, else (business unit scoping on)
    its owning BU's default, else the organisation's default (B14)."""
    if message.content_setting_id is not None:
        return db.get(ContentSetting, message.content_setting_id)
    if org_service.feature_enabled(db=db, name=org_service.BU_SCOPING):
        found = db.scalars(
            select(ContentSetting).where(
                ContentSetting.default_for == DEFAULT_BUSINESS_UNIT,
                ContentSetting.owning_bu_id == message.owning_bu_id,
            )
        ).first()
        if found is not None:
            return found
    return db.scalars(
        select(ContentSetting).where(ContentSetting.default_for == DEFAULT_ORGANIZATION)
    ).first()


# ------------------------------------------------------------------ messages


def get_message(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> EmailMessage:
    """A message the caller may read (NotFound otherwise), checked for ``privilege``."""
    return cast(
        EmailMessage,
        owned.get(
            db,
            principal,
            MESSAGE,
            message_id,
            noun=NOUNS[MESSAGE],
            privilege=privilege,
            field=field,
        ),
    )


def _checked_fields(
    db: Session, principal: access.Principal, data: dict[str, Any]
) -> dict[str, Any]:
    """The fields sent, their templates parsed, the HTML sanitised, and the content setting
    and event they name readable by the caller."""
    for field in TEMPLATE_FIELDS:
        if data.get(field) is not None:
            render.check_template(data[field], field)
    if data.get("html") is not None:
        data["html"] = render.sanitize_html(data["html"])
    if data.get("content_setting_id") is not None:
        get_content_setting(
            db=db,
            principal=principal,
            setting_id=data["content_setting_id"],
            field="content_setting_id",
        )
    if data.get("event_id") is not None:
        try:
            event_service.get_event(db=db, principal=principal, event_id=data["event_id"])
        except NotFound:
            raise NotFound(f"event {data['event_id']} not found", field="event_id") from None
    return data


def create_message(
    *, db: Session, principal: access.Principal, message_in: MessageIn
) -> EmailMessage:
    """A new draft message owned by ``message_in.owner`` (default: the caller)."""
    columns = owned.new_columns(db, principal, MESSAGE, message_in.owner)
    data = _checked_fields(db, principal, message_in.model_dump(exclude={"owner"}))
    row = EmailMessage(**{k: v for k, v in data.items() if v is not None or k == "text"})
    for key, value in columns.items():
        setattr(row, key, value)
    db.add(row)
    db.flush()
    return row


def update_message(
    *, db: Session, principal: access.Principal, message_id: int, message_in: MessageFields
) -> EmailMessage:
    """Change the fields sent (needs Write). A ready message goes back to draft; a message
    in use is refused (copy it to change it)."""
    row = get_message(db=db, principal=principal, message_id=message_id, privilege=Privilege.WRITE)
    if row.state == IN_USE:
        raise Conflict(
            "this message is in use by a send and can no longer change; copy it to change it",
            field="state",
        )
    data = _checked_fields(
        db, principal, message_in.model_dump(include=message_in.model_fields_set)
    )
    changed = False
    for key, value in data.items():
        if value is None and key in ("name", "subject", "preheader", "html", "topic"):
            if key == "name":
                raise ValidationFailed("name cannot be empty", field="name")
            value = ""
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    if changed:
        row.state, row.checked_at = DRAFT, None
    owned.touch(row, principal)
    db.flush()
    return row


def delete_message(*, db: Session, principal: access.Principal, message_id: int) -> None:
    """Delete a message (needs Delete); refused while a send uses it."""
    row = get_message(db=db, principal=principal, message_id=message_id, privilege=Privilege.DELETE)
    if row.state == IN_USE:
        raise Conflict("this message is in use by a send and cannot be deleted", field="id")
    db.delete(row)
    db.flush()


def copy_message(*, db: Session, principal: access.Principal, message_id: int) -> EmailMessage:
    """A draft copy of a message, owned by the caller (in the caller's business unit)."""
    source = get_message(db=db, principal=principal, message_id=message_id)
    fields = {
        name: getattr(source, name)
        for name in (
            "subject",
            "preheader",
            "html",
            "text",
            "content_setting_id",
            "event_id",
            "topic",
        )
    }
    name = f"Copy of {source.name}"[:200]
    return create_message(
        db=db, principal=principal, message_in=MessageIn.model_construct(name=name, **fields)
    )


def message_names(*, db: Session, principal: access.Principal, ids: set[int]) -> dict[int, str]:
    """The names of the messages among ``ids`` the caller may read, by id (one query)."""
    if not ids:
        return {}
    stmt = cast(
        Select[Any],
        select(EmailMessage.id, EmailMessage.name).where(EmailMessage.id.in_(sorted(ids))),
    )
    readable = access.scope(stmt, principal=principal, record_type=MESSAGE)
    return {message_id: name for message_id, name in db.execute(readable)}


def list_messages(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the messages the caller may read, newest first."""
    where = EmailMessage.state == state if state else None
    return owned.page(
        db, principal, EmailMessage, MESSAGE, q=q, cursor=cursor, limit=limit, where=where
    )


# ------------------------------------------------------------------ personalisation


SAMPLE = {
    "id": 0,
    "first_name": "Alex",
    "last_name": "Sample",
    "full_name": "Alex Sample",
    "email": "alex.sample@example.com",
    "company": "Example Ltd",
    "job_title": "Marketing Manager",
    "phone": "+49 30 1234567",
    "country": "DE",
    "custom": {},
}


def contact_fields(contact: Contact) -> dict[str, Any]:
    """What ``{{ contact.… }}`` offers in a message."""
    full = f"{contact.first_name} {contact.last_name}".strip()
    return {
        "id": contact.id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": full,
        "email": contact.email or "",
        "company": contact.company,
        "job_title": contact.job_title,
        "phone": contact.phone,
        "country": contact.country or "",
        "custom": dict(contact.custom or {}),
    }


def event_fields(event: MarketingEvent | None) -> dict[str, Any]:
    """What ``{{ event.… }}`` offers in an event message (empty otherwise)."""
    if event is None:
        return {}
    return {
        "name": event.name,
        "start_at": _iso(event.start_at),
        "end_at": _iso(event.end_at),
        "time_zone": event.time_zone,
    }


def _iso(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat() if at is not None else ""


def context(
    *,
    message: EmailMessage,
    setting: ContentSetting | None,
    contact: dict[str, Any],
    event: MarketingEvent | None,
    unsubscribe_url: str,
    subscription_centre_url: str,
) -> dict[str, Any]:
    """Everything a message's templates may use for one recipient."""
    return {
        "contact": contact,
        "event": event_fields(event),
        "sender": {
            "name": setting.sender_name if setting else "",
            "email": setting.sender_email if setting else "",
        },
        "postal_address": setting.postal_address if setting else "",
        "unsubscribe_url": unsubscribe_url,
        "subscription_centre_url": (
            setting.subscription_centre_url
            if setting and setting.subscription_centre_url
            else subscription_centre_url
        ),
        "message": {"name": message.name},
    }


@dataclass(frozen=True)
class Rendered:
    """A message as one recipient receives it."""

    subject: str
    preheader: str
    html: str  # the whole document, CSS inlined
    text: str


def render_for(
    message: EmailMessage, values: dict[str, Any], track: Callable[[str], str] | None = None
) -> Rendered:
    """Render every part of ``message`` for one recipient's ``values`` (``context``);
    ``track`` rewrites the HTML body's links for tracking (the text part keeps them)."""
    body = render.sanitize_html(render.render(message.html, values, field="html"))
    subject = " ".join(render.render(message.subject, values, field="subject").split())
    preheader = " ".join(render.render(message.preheader, values, field="preheader").split())
    text = (
        render.render(message.text, values, field="text")
        if message.text is not None
        else render.text_from_html(body)
    )
    return Rendered(
        subject=subject,
        preheader=preheader,
        html=render.document(track(body) if track else body, preheader=preheader, title=subject),
        text=text,
    )


def _event_of(db: Session, message: EmailMessage) -> MarketingEvent | None:
    return db.get(MarketingEvent, message.event_id) if message.event_id is not None else None


def readable_contact(db: Session, principal: access.Principal, contact_id: int) -> Contact:
    try:
        found = contact_service.get(
            db=db, principal=principal, kind=contact_service.CONTACT, record_id=contact_id
        )
    except NotFound:
        raise NotFound(f"contact {contact_id} not found", field="contact_id") from None
    return cast(Contact, found)


def preview(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int,
    contact_id: int,
    public_url: str,
) -> Rendered:
    """The message as a contact the caller may read would receive it (its links point at
    a preview, not at the contact's real unsubscribe page)."""
    message = get_message(db=db, principal=principal, message_id=message_id)
    contact = readable_contact(db, principal, contact_id)
    values = context(
        message=message,
        setting=content_setting_for(db=db, message=message),
        contact=contact_fields(contact),
        event=_event_of(db, message),
        unsubscribe_url=f"{public_url}/email/preview/unsubscribe",
        subscription_centre_url=f"{public_url}/email/preview/subscriptions",
    )
    return render_for(message, values)


def preview_draft(
    *,
    db: Session,
    principal: access.Principal,
    message_id: int | None,
    fields: MessageFields,
    contact_id: int | None,
    public_url: str,
) -> Rendered:
    """What an editor's unsaved fields would send: over the stored message (if any), for a
    contact the caller may read, else for the sample contact. Nothing is saved."""
    stored = (
        get_message(db=db, principal=principal, message_id=message_id)
        if message_id is not None
        else None
    )
    data = _checked_fields(db, principal, fields.model_dump(include=fields.model_fields_set))
    draft = EmailMessage(
        name=stored.name if stored else "",
        subject=stored.subject if stored else "",
        preheader=stored.preheader if stored else "",
        html=stored.html if stored else "",
        text=stored.text if stored else None,
        content_setting_id=stored.content_setting_id if stored else None,
        event_id=stored.event_id if stored else None,
        owning_bu_id=stored.owning_bu_id if stored else principal.business_unit_id,
    )
    for key, value in data.items():
        blank = value is None and key in ("name", "subject", "preheader", "html", "topic")
        setattr(draft, key, "" if blank else value)
    person = copy.deepcopy(SAMPLE)
    if contact_id is not None:
        person = contact_fields(readable_contact(db, principal, contact_id))
    values = context(
        message=draft,
        setting=content_setting_for(db=db, message=draft),
        contact=person,
        event=_event_of(db, draft),
        unsubscribe_url=f"{public_url}/email/preview/unsubscribe",
        subscription_centre_url=f"{public_url}/email/preview/subscriptions",
    )
    return render_for(draft, values)


# ------------------------------------------------------------------ ready


def check(
    *, db: Session, principal: access.Principal, message_id: int, public_url: str
) -> tuple[ContentSetting | None, list[Problem]]:
    """What stands between a message and *ready*: a subject, a sender and a postal address
    (from its content setting), an unsubscribe link, links that are http(s) addresses, and
    templates that render for a sample contact."""
    message = get_message(db=db, principal=principal, message_id=message_id)
    setting = content_setting_for(db=db, message=message)
    problems: list[Problem] = []
    if not message.subject.strip():
        problems.append(Problem("subject", "a message needs a subject"))
    if not message.html.strip():
        problems.append(Problem("html", "a message needs a body"))
    if setting is None:
        problems.append(
            Problem(
                "content_setting_id",
                "no content setting applies: choose one, or ask an administrator for a "
                "default one for your business unit or the organisation",
            )
        )
    elif not setting.postal_address.strip():
        problems.append(
            Problem(
                "content_setting_id",
                f"the content setting “{setting.name}” has no postal address, which marketing "
                "email must show",
            )
        )
    sample_unsubscribe = f"{public_url}/email/u/sample"
    values = context(
        message=message,
        setting=setting,
        contact=copy.deepcopy(SAMPLE),
        event=_event_of(db, message),
        unsubscribe_url=sample_unsubscribe,
        subscription_centre_url=f"{public_url}/email/s/sample",
    )
    rendering = [
        found
        for field in TEMPLATE_FIELDS
        if getattr(message, field) is not None
        and (found := render.render_problem(getattr(message, field), values, field))
    ]
    problems += rendering
    if not rendering:
        body = render.sanitize_html(render.render(message.html, values, field="html"))
        targets = render.links(body)
        if sample_unsubscribe not in targets:
            problems.append(
                Problem(
                    "html",
                    "a message needs an unsubscribe link that every recipient sees: "
                    '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
                )
            )
        for url in dict.fromkeys(targets):
            why = render.bad_link(url)
            if why:
                problems.append(Problem("html", f"a link cannot be followed: {why}"))
    return setting, problems


def make_ready(
    *, db: Session, principal: access.Principal, message_id: int, public_url: str
) -> EmailMessage:
    """Check the message and make it ready (needs Write); ValidationFailed names the first
    problem and counts the others."""
    message = get_message(
        db=db, principal=principal, message_id=message_id, privilege=Privilege.WRITE
    )
    if message.state == IN_USE:
        return message
    _setting, problems = check(
        db=db, principal=principal, message_id=message_id, public_url=public_url
    )
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more: see the check)" if len(problems) > 1 else ""
        raise ValidationFailed(f"{first.message}{more}", field=first.field)
    message.state, message.checked_at = READY, utcnow()
    owned.touch(message, principal)
    db.flush()
    return message
