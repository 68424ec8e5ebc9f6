"""LinkedIn's JSON shapes rendered from the compact fixture (lead forms, versioned forms,
lead form responses), and the Rest.li 2.0 query syntax the finders take."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from gatherly.linkedin_emulator.fixture import Form, Question, Response, Version
from gatherly.linkedin_emulator.state import LinkedInState

TEXT_MAX_LENGTH = 300  # LinkedIn's default maximum length of a free-text answer [inference]


def versioned_form_urn(form_id: int, version_id: int) -> str:
    """``urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{id},{version})``."""
    return f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},{version_id})"


_VERSIONED = re.compile(r"urn:li:versionedLeadGenForm:\(urn:li:leadGenForm:(\d+),(\d+)\)")


def parse_versioned_form_urn(urn: str) -> tuple[int, int] | None:
    """(form id, version id) of a versioned form URN, or None."""
    match = _VERSIONED.fullmatch(urn)
    return (int(match[1]), int(match[2])) if match else None


def _localized(form: Form, text: str) -> dict[str, Any]:
    return {"localized": {form.locale: text}}


def _question(form: Form, question: Question) -> dict[str, Any]:
    out: dict[str, Any] = {"questionId": question.question_id, "name": question.name}
    if question.predefined_field is not None:
        out["predefinedField"] = question.predefined_field
    out["question"] = _localized(form, question.question)
    if question.options is None:
        out["questionDetails"] = {"textQuestionDetails": {"maxResponseLength": TEXT_MAX_LENGTH}}
    else:
        out["questionDetails"] = {
            "multipleChoiceQuestionDetails": {
                "options": [
                    {"id": o.id, "text": _localized(form, o.text)} for o in question.options
                ]
            }
        }
    return out


def form(state: LinkedInState, form: Form, version: Version | None = None) -> dict[str, Any]:
    """A lead form in LinkedIn's shape; the latest version unless ``version`` is given."""
    version = version or form.latest
    language, country = form.locale.split("_")
    created = state.form_created(form)
    return {
        "id": form.id,
        "owner": form.owner.as_json(),
        "versionId": version.version_id,
        "name": form.name,
        "state": form.state,
        "created": created,
        "lastModified": max(created, state.version_created(form, form.latest)),
        "creationLocale": {"country": country, "language": language},
        "content": {
            "questions": [_question(form, q) for q in version.questions],
            "consents": [
                {
                    "consentId": c.consent_id,
                    "content": _localized(form, c.text),
                    "required": c.required,
                }
                for c in version.consents
            ],
        },
        "hiddenFields": [],
    }


def response(state: LinkedInState, item: Response) -> dict[str, Any]:
    """A lead form response in LinkedIn's shape (answers in the version's question order)."""
    assert item.owner is not None
    assert item.version is not None
    parent = state.form(item.form)
    assert parent is not None
    version = parent.version(item.version)
    assert version is not None
    answers = []
    for question in version.questions:
        answer = item.answers.get(str(question.question_id))
        if answer is None:
            continue
        details = (
            {"textQuestionAnswer": {"answer": answer}}
            if question.options is None
            else {"multipleChoiceAnswer": {"options": list(answer)}}
        )
        answers.append({"questionId": question.question_id, "answerDetails": details})
    out: dict[str, Any] = {
        "id": item.id,
        "submittedAt": item.submitted_at,
        "leadType": item.lead_type,
        "testLead": item.test_lead,
        "owner": item.owner.as_json(),
        "submitter": item.submitter,
        "versionedLeadGenFormUrn": versioned_form_urn(item.form, item.version),
    }
    if item.creative is not None:
        out["associatedEntity"] = {"associatedCreative": item.creative}
    if item.campaign is not None:
        out["leadMetadata"] = {"sponsoredLeadMetadata": {"campaign": item.campaign}}
    out["formResponse"] = {
        "answers": answers,
        "consentResponses": [
            {"consentId": c.consent_id, "accepted": item.consents[str(c.consent_id)]}
            for c in version.consents
            if str(c.consent_id) in item.consents
        ],
    }
    return out


# ---------------------------------------------------------------- Rest.li 2.0 query syntax


class RestliSyntaxError(ValueError):
    """A parameter that is not valid Rest.li 2.0."""


_STRUCTURAL = "(),:"


def parse_restli(raw: str) -> Any:
    """Parse one Rest.li 2.0 query parameter value as sent on the wire (not yet
    percent-decoded): ``(key:value,…)`` objects, ``List(…)`` lists and strings. Structural
    characters must be literal and values percent-encoded, as Rest.li 2.0 requires: in
    ``(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A1)`` the URN's colons are encoded."""
    value, end = _value(raw, 0)
    if end != len(raw):
        raise RestliSyntaxError(f"unexpected {raw[end]!r} at position {end}")
    return value


def _value(raw: str, at: int) -> tuple[Any, int]:
    if raw.startswith("List(", at):
        items: list[Any] = []
        at += 5
        if raw.startswith(")", at):
            return items, at + 1
        while True:
            item, at = _value(raw, at)
            items.append(item)
            if raw.startswith(",", at):
                at += 1
            elif raw.startswith(")", at):
                return items, at + 1
            else:
                raise RestliSyntaxError(f"expected ',' or ')' at position {at}")
    if raw.startswith("(", at):
        obj: dict[str, Any] = {}
        at += 1
        if raw.startswith(")", at):
            return obj, at + 1
        while True:
            key, at = _string(raw, at)
            if not raw.startswith(":", at):
                raise RestliSyntaxError(f"expected ':' at position {at}")
            obj[key], at = _value(raw, at + 1)
            if raw.startswith(",", at):
                at += 1
            elif raw.startswith(")", at):
                return obj, at + 1
            else:
                raise RestliSyntaxError(
                    f"expected ',' or ')' at position {at} (encode ':' inside values as %3A)"
                )
    return _string(raw, at)


def _string(raw: str, at: int) -> tuple[str, int]:
    end = at
    while end < len(raw) and raw[end] not in _STRUCTURAL:
        end += 1
    if end == at:
        raise RestliSyntaxError(f"expected a value at position {at}")
    return unquote(raw[at:end]), end


def raw_query(query_string: str) -> dict[str, str]:
    """The query's parameters as sent (values not percent-decoded); the last one wins."""
    out: dict[str, str] = {}
    for pair in query_string.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        out[unquote(name)] = value
    return out
