"""Admin › LinkedIn assignment rules (SPEC B12): who gets the leads that match a form, a
campaign, a lead type or a country, instead of the user who connected the profile.

Everyone may read the rules; only those the service lets change them (System
Administrators) get the forms, and the POST routes call the same service, which checks
again. The form is checked with the API's input model first, so the page and the API
accept the same rules, and each mistake is said beside its field.
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
from gatherly.api.params import PathId
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.linkedin import schemas as s
from gatherly.linkedin import service
from gatherly.linkedin.models import LinkedInAssignmentRule
from gatherly.web import people
from gatherly.web.linkedin import LEAD_TYPES
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
)

router = APIRouter(prefix="/admin/linkedin-rules", include_in_schema=False)

FIELDS = ("name", "owner", "form_urn", "campaign_urn", "lead_type", "country", "position")
# What the API's input model says about a field, in words for this form.
FIELD_WORDS = {
    "name": "Give the rule a name (at most 200 characters).",
    "form_urn": "Give the form as urn:li:leadGenForm: and its number, or the number alone.",
    "campaign_urn": "Give the campaign as urn:li:sponsoredCampaign: and its number, or the "
    "number alone.",
    "lead_type": "Pick a lead type from the list.",
    "country": "Give a country as its name or two-letter code (at most 60 characters).",
    "position": "Give a whole number from 0 to 10000.",
}


def _may(db: Session, viewer: Viewer) -> dict[str, bool]:
    return {
        p.value: access.can(db, viewer.principal, p, service.RULE)
        for p in (Privilege.CREATE, Privilege.DELETE)
    }


def _blank() -> dict[str, Any]:
    return {
        "name": "",
        "owner": "",
        "form_urn": "",
        "campaign_urn": "",
        "lead_type": "",
        "country": "",
        "position": "0",
        "enabled": True,
    }


def _owner_names(db: Session, viewer: Viewer, rules: list[LinkedInAssignmentRule]) -> Any:
    choices = dict(people.owner_choices(db, viewer))
    return {r.id: choices.get(f"{r.owner_type}:{r.owner_id}") for r in rules}


def describe(rule: LinkedInAssignmentRule) -> str:
    """The rule's conditions in words: "lead type Company page and country SE"."""
    parts = []
    if rule.form_urn:
        parts.append(f"form {rule.form_urn}")
    if rule.campaign_urn:
        parts.append(f"campaign {rule.campaign_urn}")
    if rule.lead_type:
        parts.append(f"lead type {LEAD_TYPES.get(rule.lead_type, rule.lead_type)}")
    if rule.country:
        parts.append(f"country {rule.country}")
    return " and ".join(parts) or "any lead"


def _page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rules = service.list_rules(db=db, principal=viewer.principal)
    may = _may(db, viewer)
    return page(
        request,
        "admin/linkedin_rules.html",
        viewer,
        status_code=status_code,
        rules=rules,
        owners=_owner_names(db, viewer, rules),
        owner_choices=people.owner_choices(db, viewer) if may["create"] else [],
        describe=describe,
        lead_types=LEAD_TYPES,
        may=may,
        values=values or _blank(),
        errors=errors or {},
    )


@router.get("")
def rules_page(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """The rules in the order they are tried; the form for administrators."""
    return _page(request, db, viewer)


def _urn(value: str, prefix: str) -> str:
    """A URN as typed, or the number alone made into one."""
    value = value.strip()
    return f"{prefix}{value}" if value.isascii() and value.isdigit() else value


def _typed(form: FormData) -> dict[str, Any]:
    """The form as typed, to show again."""
    typed: dict[str, Any] = {f: form_text(form, f).strip() for f in FIELDS}
    typed["enabled"] = form_text(form, "enabled") == "true"
    return typed


def _checked(typed: dict[str, Any]) -> service.RuleIn:
    """The typed form through the API's input model (ValidationFailed names the field)."""
    owner = people.owner_ref(typed["owner"], "owner")
    data: dict[str, Any] = {
        "name": typed["name"],
        "owner": owner.model_dump(),
        "form_urn": _urn(typed["form_urn"], "urn:li:leadGenForm:") or None,
        "campaign_urn": _urn(typed["campaign_urn"], "urn:li:sponsoredCampaign:") or None,
        "lead_type": typed["lead_type"] or None,
        "country": typed["country"] or None,
        "position": typed["position"] or "0",
        "enabled": typed["enabled"],
    }
    if not any(data[k] for k in ("form_urn", "campaign_urn", "lead_type", "country")):
        raise ValidationFailed(
            "Set at least one condition: a form, a campaign, a lead type or a country.",
            field="conditions",
        )
    try:
        body = s.RuleIn.model_validate(data)
    except PydanticError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise ValidationFailed(FIELD_WORDS.get(field, "Check this field."), field=field) from None
    return service.RuleIn(**body.model_dump(exclude={"owner"}), owner=body.owner)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@router.post("")
def create_rule(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    """Make a rule from the form; a mistake is said beside its field and nothing is saved."""
    access.require(db, viewer.principal, Privilege.CREATE, service.RULE)
    typed = _typed(form)
    try:
        rule = service.save_rule(db=db, principal=viewer.principal, rule_in=_checked(typed))
    except (ValidationFailed, NotFound) as exc:
        db.rollback()
        # The owner picked may be gone by now (NotFound names "owner.id").
        field = (exc.field or "").split(".")[0]
        return _page(
            request,
            db,
            viewer,
            values=typed,
            errors={field if field in (*FIELDS, "conditions") else "form": _sentence(exc.message)},
            status_code=422,
        )
    return RedirectResponse(f"/admin/linkedin-rules#rule-{rule.id}", status_code=303)


@router.post("/{rule_id}/delete")
def delete_rule(rule_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    """Delete a rule: leads taken in from now on are no longer given by it."""
    service.delete_rule(db=db, principal=viewer.principal, rule_id=rule_id)
    return RedirectResponse("/admin/linkedin-rules", status_code=303)
