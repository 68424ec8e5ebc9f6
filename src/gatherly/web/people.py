"""Web pages that change contacts and leads: create, edit, delete (a tombstone stays), give
to another owner, share and unshare (SPEC M, B3, T8).

Both kinds get the same routes under their own path (``/contacts/…``, ``/leads/…``), and
every change goes through ``contact.service`` with the viewer's principal, as the REST API
does: the forms offer only what the viewer holds (the rights to share, the owners to pick),
and the service checks again. A save the duplicate-detection rules refuse (SPEC B8) shows
the form again (409) with the matching records the viewer may read, and a button that
sends it again with ``allow_duplicate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access import engine as access
from gatherly.access.levels import SHARE_BITS, Privilege
from gatherly.access.models import PRINCIPAL_ORGANIZATION, PRINCIPAL_TEAM, PRINCIPAL_USER
from gatherly.api.params import PathId
from gatherly.contact import service
from gatherly.contact.models import PersonMixin
from gatherly.contact.schemas import (
    ContactCreate,
    ContactUpdate,
    LeadCreate,
    LeadUpdate,
    OwnerRef,
    ShareIn,
)
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    GatherlyError,
    NotFound,
    ValidationFailed,
)
from gatherly.core.ids import MAX_ID
from gatherly.event import service as event_service
from gatherly.org import service as org_service
from gatherly.segment import service as segment_service
from gatherly.web.contacts import full_name, owners_of
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
    parse_fields,
)

router = APIRouter(include_in_schema=False)

PERSON = ("first_name", "last_name", "email", "phone", "company", "job_title", "country")
LEAD_ONLY = ("topic", "status", "source")
RIGHT_LABELS = {
    Privilege.READ: "Read",
    Privilege.WRITE: "Change",
    Privilege.DELETE: "Delete",
    Privilege.APPEND: "Append (link other records to it)",
    Privilege.APPEND_TO: "Append to (be linked from other records)",
    Privilege.ASSIGN: "Assign (give to another owner)",
    Privilege.SHARE: "Share",
}
STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "qualified": "Qualified",
    "disqualified": "Disqualified",
}


@dataclass(frozen=True)
class PersonKind:
    """What the pages of one kind need: the service's kind, its path, its forms' models."""

    kind: service.Kind
    path: str  # "/contacts"
    noun: str  # "contact"
    create: type[ContactCreate]
    update: type[ContactUpdate]
    fields: tuple[str, ...]


CONTACTS = PersonKind(service.CONTACT, "/contacts", "contact", ContactCreate, ContactUpdate, PERSON)
LEADS = PersonKind(service.LEAD, "/leads", "lead", LeadCreate, LeadUpdate, PERSON + LEAD_ONLY)


def _text(form: FormData, name: str) -> str:
    return form_text(form, name).strip()


# --------------------------------------------------------------------- what a viewer may do


def owner_choices(db: Session, viewer: Viewer) -> list[tuple[str, str]]:
    """The users and teams a record may be given to (``user:<id>``, ``team:<id>``), among
    those the viewer may look up; enabled users first, by username."""
    choices: list[tuple[str, str]] = []
    try:
        users, _total = org_service.list_users(db=db, principal=viewer.principal, limit=500)
        choices += [
            (f"user:{u.id}", f"{u.full_name} ({u.username})" if u.full_name else u.username)
            for u in users
            if not u.disabled
        ]
    except Forbidden:
        pass
    try:
        teams = org_service.list_teams(db=db, principal=viewer.principal)
        choices += [(f"team:{t.id}", f"Team: {t.name}") for t in teams]
    except Forbidden:
        pass
    return choices


def owner_ref(value: str, field: str) -> OwnerRef:
    """An owner picked from :func:`owner_choices` (``user:<id>``, ``team:<id>``)."""
    kind, _, raw = value.partition(":")
    number = int(raw) if raw.isascii() and raw.isdigit() else 0
    if kind not in (PRINCIPAL_USER, PRINCIPAL_TEAM) or not 1 <= number <= MAX_ID:
        raise ValidationFailed("pick a user or a team from the list", field=field)
    return OwnerRef(type=kind, id=number)


# --------------------------------------------------------------------- custom properties


def custom_text(custom: dict[str, Any]) -> str:
    """Custom properties as ``name = value`` lines: numbers, true/false and null as JSON,
    text as it is (quoted when it would otherwise read as one of those)."""
    lines = []
    for key, value in sorted(custom.items()):
        if isinstance(value, str):
            text = json.dumps(value) if value != value.strip() or _scalar(value) else value
        else:
            text = json.dumps(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines)


def _scalar(text: str) -> bool:
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return False
    return not isinstance(parsed, list | dict)


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are text here: JSON columns refuse them


def parse_custom(text: str) -> dict[str, Any]:
    """The inverse of :func:`custom_text`; ValidationFailed names the line that is wrong."""
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        if not sep or not name.strip():
            raise ValidationFailed(
                f"line {number} should read name = value (for example: industry = Retail)",
                field="custom",
            )
        raw = raw.strip()
        out[name.strip()] = json.loads(raw) if _scalar(raw) else raw
    return out


# --------------------------------------------------------------------- create and edit


def _values(pk: PersonKind, record: PersonMixin | None) -> dict[str, str]:
    """A form's starting values: the record's, or a new record's defaults."""
    if record is None:
        return {name: "" for name in pk.fields} | {"status": "new", "source": "manual"}
    values = {name: getattr(record, name) or "" for name in pk.fields}
    return values | {"custom": custom_text(record.custom)}


def _form_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    pk: PersonKind,
    record: PersonMixin | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    duplicates: list[dict[str, Any]] | None = None,
) -> Response:
    status = 409 if duplicates else 422 if errors else 200
    return page(
        request,
        "people/form.html",
        viewer,
        status_code=status,
        pk=pk,
        duplicates=duplicates or [],
        record=record,
        name=full_name(record) if record is not None else None,
        values=values,
        errors=errors or {},
        owners=owner_choices(db, viewer) if record is None else [],
        me=f"user:{viewer.user.id}",
        statuses=STATUS_LABELS,
    )


def _matches(exc: service.DuplicateFound) -> list[dict[str, Any]]:
    """The records a refused save would duplicate (those the viewer may read), for the form."""
    out = []
    for match in exc.extra.get("matches", []):
        created = match.get("created_at")
        name = f"{match.get('first_name') or ''} {match.get('last_name') or ''}".strip()
        out.append(
            {
                **match,
                "name": name or match.get("email") or f"Record {match['id']}",
                "created_at": datetime.fromisoformat(created) if created else None,
            }
        )
    return out


def _save(
    request: Request,
    db: Session,
    viewer: Viewer,
    pk: PersonKind,
    form: FormData,
    record: PersonMixin | None,
) -> Response:
    values = {name: _text(form, name) for name in (*pk.fields, "custom", "owner")}
    data: dict[str, Any] = {name: values[name] for name in pk.fields}
    # Sent by the "Create anyway" / "Save anyway" button the duplicate warning offers.
    allow_duplicate = _text(form, "allow_duplicate") == "true"
    try:
        data["custom"] = parse_custom(values["custom"])
        if record is None:
            if values["owner"]:
                data["owner"] = owner_ref(values["owner"], "owner")
            body = parse_fields(pk.create, data)
            saved = service.create(
                db=db,
                principal=viewer.principal,
                kind=pk.kind,
                record_in=body,
                allow_duplicate=allow_duplicate,
            )
        else:
            saved = service.update(
                db=db,
                principal=viewer.principal,
                kind=pk.kind,
                record_id=record.id,
                record_in=parse_fields(pk.update, data),
                allow_duplicate=allow_duplicate,
            )
    except service.DuplicateFound as exc:
        db.rollback()  # nothing was written; the viewer decides
        return _form_page(request, db, viewer, pk, record, values, duplicates=_matches(exc))
    except (ValidationFailed, Forbidden, NotFound) as exc:
        db.rollback()  # NotFound here is the owner picked (owner.id): the record was read
        field = (exc.field or "").split(".")[0]
        field = field if field in (*pk.fields, "custom", "owner") else "form"
        return _form_page(request, db, viewer, pk, record, values, {field: exc.message})
    return RedirectResponse(f"{pk.path}/{saved.id}", status_code=303)


# --------------------------------------------------------------------- delete


def _delete_impact(db: Session, viewer: Viewer, pk: PersonKind, record_id: int) -> dict[str, int]:
    """What a contact's deletion touches, among what the viewer may see."""
    if pk.kind is not service.CONTACT:
        return {}
    return {
        "lists": len(
            segment_service.lists_of_contact(
                db=db, principal=viewer.principal, contact_id=record_id
            )
        ),
        "events": len(
            event_service.timeline(db=db, principal=viewer.principal, contact_id=record_id)
        ),
    }


# --------------------------------------------------------------------- owner and sharing


def _share_rows(
    db: Session, viewer: Viewer, pk: PersonKind, record_id: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    rows = service.list_shares(db=db, principal=viewer.principal, kind=pk.kind, record_id=record_id)
    out = []
    for row in rows:
        if row.principal_type == PRINCIPAL_ORGANIZATION:
            who = "Everyone in the organisation"
        else:
            key = f"{row.principal_type}:{row.principal_id}"
            who = names.get(key) or f"{row.principal_type} {row.principal_id}"
        rights = [RIGHT_LABELS[p].split(" (")[0] for p in SHARE_BITS if row.rights & SHARE_BITS[p]]
        out.append({"id": row.id, "who": who, "rights": rights})
    return out


def _sharing_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    pk: PersonKind,
    record_id: int,
    refused: GatherlyError | None = None,
    form: str = "",
) -> Response:
    record = service.get(db=db, principal=viewer.principal, kind=pk.kind, record_id=record_id)
    choices = owner_choices(db, viewer)
    names = dict(choices)
    rights = access.held_rights(db, viewer.principal, pk.kind.record_type, record)
    return page(
        request,
        "people/sharing.html",
        viewer,
        status_code=refused.status_code if refused else 200,
        pk=pk,
        record=record,
        name=full_name(record),
        owner=owners_of(db, viewer, [record])[record.id]["owner"],
        owners=[c for c in choices if c[0] != f"{record.owner_type}:{record.owner_id}"],
        shares=_share_rows(db, viewer, pk, record.id, names),
        rights=[(p.value, RIGHT_LABELS[p]) for p in SHARE_BITS if p in rights],
        may_assign=Privilege.ASSIGN in rights,
        may_share=Privilege.SHARE in rights,
        error={"form": form, "field": refused.field or "", "message": refused.message}
        if refused
        else None,
    )


# --------------------------------------------------------------------- routes, per kind


def _routes(pk: PersonKind) -> None:
    path, kind = pk.path, pk.kind

    @router.get(f"{path}/new")
    def new_record(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
        return _form_page(request, db, viewer, pk, None, _values(pk, None))

    @router.post(f"{path}/new")
    def create_record(
        request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
    ) -> Response:
        return _save(request, db, viewer, pk, form, None)

    @router.get(f"{path}/{{record_id}}/edit")
    def edit_record(
        record_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
    ) -> Response:
        record = service.get(
            db=db,
            principal=viewer.principal,
            kind=kind,
            record_id=record_id,
            privilege=Privilege.WRITE,
        )
        return _form_page(request, db, viewer, pk, record, _values(pk, record))

    @router.post(f"{path}/{{record_id}}/edit")
    def update_record(
        record_id: PathId,
        request: Request,
        db: WebDb,
        viewer: CurrentViewer,
        form: FormFields,
        _: CsrfChecked,
    ) -> Response:
        record = service.get(
            db=db,
            principal=viewer.principal,
            kind=kind,
            record_id=record_id,
            privilege=Privilege.WRITE,
        )
        return _save(request, db, viewer, pk, form, record)

    @router.get(f"{path}/{{record_id}}/delete")
    def confirm_delete(
        record_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
    ) -> Response:
        record = service.get(
            db=db,
            principal=viewer.principal,
            kind=kind,
            record_id=record_id,
            privilege=Privilege.DELETE,
        )
        return page(
            request,
            "people/delete.html",
            viewer,
            pk=pk,
            record=record,
            name=full_name(record),
            impact=_delete_impact(db, viewer, pk, record.id),
        )

    @router.post(f"{path}/{{record_id}}/delete")
    def delete(record_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
        service.delete_record(db=db, principal=viewer.principal, kind=kind, record_id=record_id)
        return RedirectResponse(path, status_code=303)

    @router.get(f"{path}/{{record_id}}/sharing")
    def sharing(record_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
        return _sharing_page(request, db, viewer, pk, record_id)

    @router.post(f"{path}/{{record_id}}/assign")
    def assign(
        record_id: PathId,
        request: Request,
        db: WebDb,
        viewer: CurrentViewer,
        form: FormFields,
        _: CsrfChecked,
    ) -> Response:
        try:
            owner = owner_ref(_text(form, "owner"), "owner")
            service.assign(
                db=db, principal=viewer.principal, kind=kind, record_id=record_id, owner=owner
            )
        except (ValidationFailed, Forbidden) as exc:
            db.rollback()
            return _sharing_page(request, db, viewer, pk, record_id, exc, "assign")
        return RedirectResponse(f"{path}/{record_id}/sharing", status_code=303)

    @router.post(f"{path}/{{record_id}}/shares")
    def share(
        record_id: PathId,
        request: Request,
        db: WebDb,
        viewer: CurrentViewer,
        form: FormFields,
        _: CsrfChecked,
    ) -> Response:
        who = _text(form, "principal")
        try:
            if who == PRINCIPAL_ORGANIZATION:
                target: dict[str, Any] = {"principal_type": PRINCIPAL_ORGANIZATION}
            else:
                ref = owner_ref(who, "principal")
                target = {"principal_type": ref.type, "principal_id": ref.id}
            rights = [r for r in form.getlist("rights") if isinstance(r, str)]
            if not rights:
                raise ValidationFailed("tick at least one right to share", field="rights")
            body = parse_fields(ShareIn, {**target, "rights": rights})
            service.share(
                db=db, principal=viewer.principal, kind=kind, record_id=record_id, share_in=body
            )
        except (ValidationFailed, Forbidden, Conflict) as exc:
            db.rollback()
            return _sharing_page(request, db, viewer, pk, record_id, exc, "share")
        return RedirectResponse(f"{path}/{record_id}/sharing", status_code=303)

    @router.post(f"{path}/{{record_id}}/shares/{{share_id}}/delete")
    def unshare(
        record_id: PathId,
        share_id: PathId,
        request: Request,
        db: WebDb,
        viewer: CurrentViewer,
        _: CsrfChecked,
    ) -> Response:
        try:
            service.unshare(
                db=db,
                principal=viewer.principal,
                kind=kind,
                record_id=record_id,
                share_id=share_id,
            )
        except Forbidden as exc:
            db.rollback()
            return _sharing_page(request, db, viewer, pk, record_id, exc, "unshare")
        return RedirectResponse(f"{path}/{record_id}/sharing", status_code=303)


_routes(CONTACTS)
_routes(LEADS)
