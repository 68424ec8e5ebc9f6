"""Web pages for email: the messages, the editor with a live preview and the ready check,
and the content settings with their defaults (SPEC M, B14).

Every page reads and changes through ``email.service`` with the viewer's principal, as
the API and the CLI do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access.levels import Privilege
from gatherly.api.deps import public_url
from gatherly.api.params import PathId
from gatherly.contact import service as contact_service
from gatherly.core.exceptions import Conflict, Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.email import audience as audiences
from gatherly.email import service
from gatherly.email.models import ContentSetting, EmailMessage
from gatherly.email.schemas import ContentSettingFields, ContentSettingIn, MessageFields, MessageIn
from gatherly.org import service as org_service
from gatherly.segment import service as segment_service
from gatherly.web.contacts import full_name
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    may,
    page,
    parse_fields,
)

router = APIRouter(include_in_schema=False)
MESSAGE_FIELDS = ("name", "subject", "preheader", "html", "text", "content_setting_id", "topic")
SETTING_FIELDS = (
    "name",
    "sender_name",
    "sender_email",
    "reply_to",
    "postal_address",
    "subscription_centre_url",
)
STATE_LABELS = {"draft": "Draft", "ready": "Ready", "in_use": "In use"}
DEFAULT_NAMES = {
    "business_unit": "your business unit's default",
    "organization": "the organisation's default",
}


def may_send(viewer: Viewer, message: EmailMessage) -> bool:
    """Whether to offer the send dialog: a message that is not a draft, to a viewer who
    may create sends."""
    return message.state != "draft" and viewer.principal.max_level("email_send", "create") > 0


DEFAULT_LABELS = {"business_unit": "its business unit", "organization": "the organisation"}


def _message_values(form: FormData) -> dict[str, str]:
    return {name: form_text(form, name) for name in MESSAGE_FIELDS}


def _message_fields(values: dict[str, str]) -> dict[str, Any]:
    """The editor's values as the API takes them: an empty text part is made from the
    HTML, an empty content setting is the default one."""
    data: dict[str, Any] = {k: values[k] for k in ("name", "subject", "preheader", "html", "topic")}
    data["text"] = values["text"] if values["text"].strip() else None
    data["content_setting_id"] = values["content_setting_id"] or None
    return data


def _settings_for(db: Session, viewer: Viewer) -> list[Any]:
    found = service.list_content_settings(db=db, principal=viewer.principal, limit=200)
    return list(found.items)


def preview_contact(db: Session, viewer: Viewer, q: str) -> Any:
    """The first contact the viewer may read whose name, email or company holds ``q``."""
    if not q.strip():
        return None
    found = contact_service.list_records(
        db=db,
        principal=viewer.principal,
        kind=contact_service.CONTACT,
        flt=contact_service.ListFilter(q=q.strip()[:200]),
        sort="last_name",
        limit=1,
    )
    return found.items[0] if found.items else None


def _preview(
    db: Session,
    viewer: Viewer,
    request: Request,
    message_id: int | None,
    values: dict[str, str],
    preview_q: str,
) -> dict[str, Any]:
    """The live preview's context: the rendering, or why it cannot render."""
    contact = preview_contact(db, viewer, preview_q)
    try:
        data = _message_fields(values)
        if not data["name"]:
            del data["name"]  # a preview needs no name (the save asks for one)
        fields = parse_fields(MessageFields, data)
        rendered = service.preview_draft(
            db=db,
            principal=viewer.principal,
            message_id=message_id,
            fields=fields,
            contact_id=contact.id if contact is not None else None,
            public_url=public_url(request),
        )
    except (ValidationFailed, NotFound) as exc:
        return {"preview_error": exc, "rendered": None, "preview_contact": contact}
    return {"preview_error": None, "rendered": rendered, "preview_contact": contact}


def _editor(
    request: Request,
    db: Session,
    viewer: Viewer,
    message: EmailMessage | None,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
    preview_q: str = "",
) -> Response:
    problems: list[Any] = []
    setting = None
    if message is not None:
        setting, problems = service.check(
            db=db,
            principal=viewer.principal,
            message_id=message.id,
            public_url=public_url(request),
        )
    return page(
        request,
        "email/editor.html",
        viewer,
        status_code=status_code,
        message=message,
        values=values,
        errors=errors or {},
        notice=notice,
        problems=problems,
        applied_setting=setting,
        setting_name=_setting_name(db, viewer, setting),
        settings=_settings_for(db, viewer),
        state_labels=STATE_LABELS,
        preview_q=preview_q,
        full_name=full_name,
        **_preview(db, viewer, request, message.id if message else None, values, preview_q),
        **(may(db, viewer, service.MESSAGE, message) if message is not None else {}),
        may_send=message is not None and may_send(viewer, message),
    )


def _setting_name(db: Session, viewer: Viewer, setting: ContentSetting | None) -> str:
    """The content setting a message sends with, as the viewer may know it: its name, or
    for a default the viewer may not read, what it is ("the organisation's default")."""
    if setting is None:
        return ""
    if may(db, viewer, service.SETTING, setting)["may_read"]:
        return setting.name
    return DEFAULT_NAMES.get(setting.default_for or "", "a content setting you may not read")


def _stored_values(message: EmailMessage) -> dict[str, str]:
    return {
        "name": message.name,
        "subject": message.subject,
        "preheader": message.preheader,
        "html": message.html,
        "text": message.text or "",
        "content_setting_id": str(message.content_setting_id or ""),
        "topic": message.topic,
    }


def _field_error(exc: GatherlyError, known: tuple[str, ...]) -> dict[str, str]:
    field = (exc.field or "").split(".")[0]
    return {field if field in known else "form": exc.message}


# ------------------------------------------------------------------ messages


@router.get("/email")
def email_home(viewer: CurrentViewer) -> Response:
    """The email area starts at the messages (for a signed-in viewer, like every page)."""
    return RedirectResponse("/email/messages", status_code=303)


@router.get("/email/messages")
def messages_page(
    request: Request, db: WebDb, viewer: CurrentViewer, q: str = "", cursor: str = ""
) -> Response:
    """The messages the viewer may read, newest first."""
    errors: dict[str, str] = {}
    items: list[Any] = []
    next_cursor = None
    try:
        found = service.list_messages(
            db=db, principal=viewer.principal, q=q.strip()[:200] or None, cursor=cursor or None
        )
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        errors["cursor"] = exc.message
    return page(
        request,
        "email/messages.html",
        viewer,
        status_code=422 if errors else 200,
        items=items,
        q=q,
        errors=errors,
        next_cursor=next_cursor,
        state_labels=STATE_LABELS,
    )


@router.get("/email/messages/new")
def new_message(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    values = dict.fromkeys(MESSAGE_FIELDS, "")
    values["html"] = (
        '<p>Hello {{ contact.first_name | default("there") }},</p>\n<p>…</p>\n'
        '<p style="font-size:12px;color:#666">{{ postal_address }} · '
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    )
    return _editor(request, db, viewer, None, values)


@router.post("/email/messages/new")
def create_message(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    values = _message_values(form)
    try:
        body = parse_fields(MessageIn, _message_fields(values))
        saved = service.create_message(db=db, principal=viewer.principal, message_in=body)
    except (ValidationFailed, Forbidden, NotFound) as exc:
        db.rollback()
        errors = _field_error(exc, MESSAGE_FIELDS)
        return _editor(request, db, viewer, None, values, errors=errors, status_code=422)
    return RedirectResponse(f"/email/messages/{saved.id}?saved=1", status_code=303)


@router.post("/email/messages/preview")
def live_preview(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """The editor's preview pane for its unsaved fields (htmx)."""
    raw_id = form_text(form, "message_id")
    message_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
    if message_id is not None and not 1 <= message_id <= MAX_ID:
        message_id = None  # not an id any message has: preview the fields alone
    preview_q = form_text(form, "preview_q")
    return page(
        request,
        "email/_preview.html",
        viewer,
        preview_q=preview_q,
        full_name=full_name,
        **_preview(db, viewer, request, message_id, _message_values(form), preview_q),
    )


@router.get("/email/messages/{message_id}")
def message_page(
    message_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    saved: bool = False,
    ready: bool = False,
) -> Response:
    """The editor of one message, with its check and a preview."""
    message = service.get_message(db=db, principal=viewer.principal, message_id=message_id)
    notice = "Ready to send." if ready else ("Saved." if saved else "")
    return _editor(request, db, viewer, message, _stored_values(message), notice=notice)


@router.post("/email/messages/{message_id}")
def update_message(
    message_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    message = service.get_message(
        db=db, principal=viewer.principal, message_id=message_id, privilege=Privilege.WRITE
    )
    values = _message_values(form)
    try:
        body = parse_fields(MessageFields, _message_fields(values))
        service.update_message(
            db=db, principal=viewer.principal, message_id=message_id, message_in=body
        )
    except (ValidationFailed, Forbidden, NotFound, Conflict) as exc:
        db.rollback()
        errors = _field_error(exc, MESSAGE_FIELDS)
        return _editor(request, db, viewer, message, values, errors=errors, status_code=422)
    return RedirectResponse(f"/email/messages/{message_id}?saved=1", status_code=303)


@router.post("/email/messages/{message_id}/ready")
def make_ready(
    message_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    try:
        service.make_ready(
            db=db,
            principal=viewer.principal,
            message_id=message_id,
            public_url=public_url(request),
        )
    except ValidationFailed as exc:
        db.rollback()
        message = service.get_message(db=db, principal=viewer.principal, message_id=message_id)
        return _editor(
            request,
            db,
            viewer,
            message,
            _stored_values(message),
            errors={"ready": exc.message},
            status_code=422,
        )
    return RedirectResponse(f"/email/messages/{message_id}?ready=1", status_code=303)


@router.post("/email/messages/{message_id}/copy")
def copy_message(message_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    copied = service.copy_message(db=db, principal=viewer.principal, message_id=message_id)
    return RedirectResponse(f"/email/messages/{copied.id}?saved=1", status_code=303)


@router.get("/email/messages/{message_id}/delete")
def confirm_delete_message(
    message_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    message = service.get_message(
        db=db, principal=viewer.principal, message_id=message_id, privilege=Privilege.DELETE
    )
    return page(
        request,
        "segments/confirm_delete.html",
        viewer,
        what="message",
        name=message.name,
        action=f"/email/messages/{message.id}/delete",
        back=f"/email/messages/{message.id}",
    )


@router.post("/email/messages/{message_id}/delete")
def delete_message(
    message_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    service.delete_message(db=db, principal=viewer.principal, message_id=message_id)
    return RedirectResponse("/email/messages", status_code=303)


# ------------------------------------------------------------------ content settings


def _settings_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = _settings_for(db, viewer)
    return page(
        request,
        "email/settings.html",
        viewer,
        status_code=status_code,
        rows=rows,
        rights={r.id: may(db, viewer, service.SETTING, r) for r in rows},
        values=values or dict.fromkeys(SETTING_FIELDS, ""),
        errors=errors or {},
        scoping_on=org_service.feature_enabled(db=db, name=org_service.BU_SCOPING),
        default_labels=DEFAULT_LABELS,
    )


@router.get("/email/settings")
def settings_page(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """The content settings the viewer may read, and a form for a new one."""
    return _settings_page(request, db, viewer)


@router.post("/email/settings")
def create_setting(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    values = {name: form_text(form, name) for name in SETTING_FIELDS}
    try:
        body = parse_fields(ContentSettingIn, {k: v for k, v in values.items() if v != ""})
        service.create_content_setting(db=db, principal=viewer.principal, setting_in=body)
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        errors = _field_error(exc, SETTING_FIELDS)
        return _settings_page(request, db, viewer, values=values, errors=errors, status_code=422)
    return RedirectResponse("/email/settings", status_code=303)


@router.post("/email/settings/{setting_id}/default")
def set_default(
    setting_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    chosen = form_text(form, "default_for") or None
    try:
        if chosen not in (None, "business_unit", "organization"):
            raise ValidationFailed("pick a default from the list", field="default_for")
        service.set_default(
            db=db, principal=viewer.principal, setting_id=setting_id, default_for=chosen
        )
    except (ValidationFailed, Forbidden, Conflict) as exc:
        db.rollback()
        return _settings_page(
            request,
            db,
            viewer,
            errors={f"default-{setting_id}": exc.message},
            status_code=exc.status_code,
        )
    return RedirectResponse("/email/settings", status_code=303)


@router.post("/email/settings/{setting_id}")
def update_setting(
    setting_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    values = {name: form_text(form, name) for name in SETTING_FIELDS}
    try:
        body = parse_fields(ContentSettingFields, values)
        service.update_content_setting(
            db=db, principal=viewer.principal, setting_id=setting_id, setting_in=body
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        return _settings_page(
            request, db, viewer, errors={f"edit-{setting_id}": exc.message}, status_code=422
        )
    return RedirectResponse("/email/settings", status_code=303)


# ------------------------------------------------------------------ suppressions


def _suppressions_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    q: str,
    cursor: str,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    errors = dict(errors or {})
    items: list[Any] = []
    next_cursor = None
    try:
        found = audiences.list_suppressions(
            db=db, principal=viewer.principal, q=q.strip()[:200] or None, cursor=cursor or None
        )
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        errors["cursor"] = exc.message
        status_code = 422
    return page(
        request,
        "email/suppressions.html",
        viewer,
        status_code=status_code,
        items=items,
        q=q,
        next_cursor=next_cursor,
        errors=errors,
        reasons=SUPPRESSION_LABELS,
    )


SUPPRESSION_LABELS = {
    "unsubscribed": "Unsubscribed",
    "hard_bounce": "Bounced hard",
    "complaint": "Marked as spam",
}


@router.get("/email/suppressions")
def suppressions_page(
    request: Request, db: WebDb, viewer: CurrentViewer, q: str = "", cursor: str = ""
) -> Response:
    """The suppressed addresses of the contacts the viewer may read, and why."""
    return _suppressions_page(request, db, viewer, q, cursor)


@router.post("/email/suppressions/{suppression_id}/lift")
def lift_suppression(
    suppression_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Lift a bounce or complaint (system administrators, with a reason; audited)."""
    try:
        audiences.lift(
            db=db,
            principal=viewer.principal,
            suppression_id=suppression_id,
            why=form_text(form, "why")[:1000],
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        return _suppressions_page(
            request,
            db,
            viewer,
            "",
            "",
            errors={f"lift-{suppression_id}": exc.message},
            status_code=exc.status_code,
        )
    return RedirectResponse("/email/suppressions", status_code=303)


# ------------------------------------------------------------------ audience


def _ids(values: list[str]) -> list[int]:
    """Ticked ids from a form or query (anything else is not an id and is ignored)."""
    return sorted({int(v) for v in values if v.isascii() and v.isdigit() and 1 <= int(v) <= MAX_ID})


def audience_ids(values: Any) -> tuple[list[int], list[int]]:
    """The ticked segment and list ids of a query or a form; ValidationFailed names a
    value that is no id (a hand-edited address)."""
    for name in ("segment_id", "list_id"):
        for value in values.getlist(name):
            if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
                raise ValidationFailed(
                    f"{name} must be a whole number between 1 and {MAX_ID}", field=name
                )
    return _ids(values.getlist("segment_id")), _ids(values.getlist("list_id"))


@router.get("/email/audience")
def audience_page(request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = "") -> Response:
    """Who a send to the ticked segments and lists would reach, among the contacts the
    viewer may read: how many, who is suppressed and why."""
    segment_ids, list_ids = audience_ids(request.query_params)
    raw = request.query_params.get("message_id", "")
    message_id = int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID else None
    principal = viewer.principal
    found = people = None
    error: GatherlyError | None = None
    next_cursor = None
    if segment_ids or list_ids:
        try:
            found = audiences.audience(
                db=db,
                principal=principal,
                segment_ids=segment_ids,
                list_ids=list_ids,
                message_id=message_id,
            )
            page_ = audiences.audience_people(
                db=db,
                principal=principal,
                segment_ids=segment_ids,
                list_ids=list_ids,
                message_id=message_id,
                cursor=cursor or None,
            )
            people, next_cursor = list(page_.items), page_.next_cursor
        except (NotFound, ValidationFailed) as exc:
            error = exc
    query = [("segment_id", str(i)) for i in segment_ids] + [("list_id", str(i)) for i in list_ids]
    if message_id is not None:
        query.append(("message_id", str(message_id)))
    return page(
        request,
        "email/audience.html",
        viewer,
        status_code=error.status_code if error else 200,
        segments=list(segment_service.list_segments(db=db, principal=principal, limit=200).items),
        lists=list(segment_service.list_lists(db=db, principal=principal, limit=200).items),
        segment_ids=segment_ids,
        list_ids=list_ids,
        message_id=message_id,
        found=found,
        people=people,
        error=error,
        reasons=audiences.REASONS,
        next_url=(
            "/email/audience?" + urlencode([*query, ("cursor", next_cursor)])
            if next_cursor
            else None
        ),
        full_name=full_name,
    )
