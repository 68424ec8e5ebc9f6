"""Admin › Duplicate detection rules (SPEC B8): the rules that say two contacts or leads are
the same person, made, published, unpublished and deleted through ``contact.matching``.

Everyone may read the rules (a page shows what a search compares); only those the service
lets change them (System Administrators) get the forms, and the POST routes call the same
service, which checks again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.api.errors import plain
from gatherly.api.params import PathId
from gatherly.capture.schemas import RuleIn
from gatherly.contact import matching
from gatherly.contact.models import RULE_FIELDS
from gatherly.core.exceptions import Conflict, ValidationFailed
from gatherly.web.contacts import FIELD_WORDS
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
)

router = APIRouter(prefix="/admin/duplicate-rules", include_in_schema=False)

ROWS = 5  # condition rows the form offers (the API takes up to 10)
RECORD_TYPES = {"contact": "Contacts", "lead": "Leads"}
MATCHES = {
    "exact": "The whole value",
    "first": "The first N characters",
    "last": "The last N characters",
}
PARTS = {"field": "field", "match": "comparison", "length": "length", "ignore_case": "case"}


def _may(db: Session, viewer: Viewer) -> dict[str, bool]:
    return {
        p.value: access.can(db, viewer.principal, p, "duplicate_rule")
        for p in (Privilege.CREATE, Privilege.WRITE, Privilege.DELETE)
    }


def _blank_values() -> dict[str, Any]:
    rows = [{"field": "", "match": "exact", "length": "", "ignore_case": True} for _ in range(ROWS)]
    return {
        "name": "",
        "record_type": "contact",
        "description": "",
        "ignore_blank": True,
        "published": False,
        "rows": rows,
    }


def _page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rules = matching.list_rules(db=db, principal=viewer.principal)
    return page(
        request,
        "admin/duplicate_rules.html",
        viewer,
        status_code=status_code,
        rules=rules,
        describe=lambda r: matching.Rule.of(r).describe(),
        record_types=RECORD_TYPES,
        fields=[(f, FIELD_WORDS[f].capitalize()) for f in RULE_FIELDS],
        matches=MATCHES,
        may=_may(db, viewer),
        values=values or _blank_values(),
        errors=errors or {},
    )


@router.get("")
def rules_page(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """Every rule, what it compares and whether it is in use; the forms for administrators."""
    return _page(request, db, viewer)


def _posted(form: FormData) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """The form as typed (to show again) and as the API's input; with the form row of each
    condition sent (the service's errors name a condition by its place among those)."""
    typed_rows = []
    conditions: list[dict[str, Any]] = []
    rows_sent = []
    for i in range(ROWS):
        row = {
            "field": form_text(form, f"field_{i}"),
            "match": form_text(form, f"match_{i}") or "exact",
            "length": form_text(form, f"length_{i}").strip(),
            "ignore_case": form_text(form, f"ignore_case_{i}") == "true",
        }
        typed_rows.append(row)
        if row["field"]:
            condition = {k: v for k, v in row.items() if not (k == "length" and v == "")}
            if row["match"] == "exact":
                condition.pop("length", None)  # a length only counts for first / last N
            conditions.append(condition)
            rows_sent.append(i)
    typed = {
        "name": form_text(form, "name"),
        "record_type": form_text(form, "record_type"),
        "description": form_text(form, "description"),
        "ignore_blank": form_text(form, "ignore_blank") == "true",
        "published": form_text(form, "published") == "true",
        "rows": typed_rows,
    }
    data = {k: v for k, v in typed.items() if k != "rows"} | {"conditions": conditions}
    return typed, data, rows_sent


def _where(field: str | None, rows_sent: list[int]) -> tuple[str, str]:
    """The form's place for an error of ``field`` (``conditions.1.length`` is the second
    condition sent): the key the template shows it under, and the words that name it."""
    parts = (field or "").split(".")
    if parts[0] == "conditions" and len(parts) > 1 and parts[1].isdigit():
        sent = int(parts[1])
        row = rows_sent[sent] if sent < len(rows_sent) else 0
        what = PARTS.get(parts[2], "condition") if len(parts) > 2 else "condition"
        return f"row_{row}", f"The {what}"
    if parts[0] in ("name", "record_type", "description", "conditions"):
        return parts[0], f"The {parts[0].replace('_', ' ')}"
    return "form", "This rule"


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@router.post("")
def create_rule(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """Make a rule from the form; errors are said beside their fields and nothing is saved."""
    access.require(db, viewer.principal, Privilege.CREATE, "duplicate_rule")
    typed, data, rows_sent = _posted(form)
    try:
        if not data["conditions"]:
            raise ValidationFailed("choose a field for at least one condition", field="conditions")
        try:
            body = RuleIn.model_validate(data)
        except PydanticError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            _key, words = _where(field, rows_sent)
            raise ValidationFailed(f"{words} {plain(first)}", field=field) from None
        matching.save_rule(
            db=db,
            principal=viewer.principal,
            name=body.name,
            record_type=body.record_type,
            description=body.description or "",
            conditions=[c.model_dump() for c in body.conditions],
            ignore_blank=bool(body.ignore_blank),
            published=bool(body.published),
        )
    except (ValidationFailed, Conflict) as exc:
        db.rollback()
        key, _words = _where(exc.field, rows_sent)
        return _page(
            request,
            db,
            viewer,
            values=typed,
            errors={key: _sentence(exc.message)},
            status_code=409 if isinstance(exc, Conflict) else 422,
        )
    return RedirectResponse("/admin/duplicate-rules", status_code=303)


@router.post("/{rule_id}/published")
def publish_rule(
    rule_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Publish (``published=true``) or unpublish a rule."""
    wanted = form_text(form, "published")
    if wanted not in ("true", "false"):
        raise ValidationFailed("Choose publish or unpublish.", field="published")
    matching.save_rule(
        db=db, principal=viewer.principal, rule_id=rule_id, published=wanted == "true"
    )
    return RedirectResponse(f"/admin/duplicate-rules#rule-{rule_id}", status_code=303)


@router.post("/{rule_id}/delete")
def delete_rule(
    rule_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """Delete a rule (not a built-in one: that can only be unpublished)."""
    try:
        matching.delete_rule(db=db, principal=viewer.principal, rule_id=rule_id)
    except Conflict as exc:
        db.rollback()
        return _page(
            request,
            db,
            viewer,
            errors={f"rule_{rule_id}": _sentence(exc.message)},
            status_code=409,
        )
    return RedirectResponse("/admin/duplicate-rules", status_code=303)
