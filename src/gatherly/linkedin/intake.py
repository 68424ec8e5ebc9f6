"""Taking LinkedIn lead form responses in (SPEC B12, B8), on the worker.

Each connected profile's enabled sources are polled for responses submitted since a little
before the last one taken (so two responses with the same ``submittedAt`` never fall
through the gap). A response is taken **once**: its id is unique in ``linkedin_lead``, and
the row, the contact and the lead it becomes are written in one transaction. A test lead
is kept apart and becomes nothing. The answers are mapped through the form version the
response names (questions are renumbered between versions). The records are owned by the
profile's owner, or by the owner of the first assignment rule that matches (audited).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, Lead
from gatherly.contact.schemas import OwnerRef, normalize_country
from gatherly.core import audit, changes
from gatherly.core.config import Settings
from gatherly.core.db import transaction, utcnow
from gatherly.core.schemas import normalize_email
from gatherly.linkedin import service
from gatherly.linkedin.client import LinkedInClient, LinkedInError, ReconnectNeeded, Tokens
from gatherly.linkedin.models import (
    CONNECTED,
    NEEDS_RECONNECT,
    TAKEN,
    TEST,
    LinkedInAssignmentRule,
    LinkedInLead,
    LinkedInProfile,
    LinkedInSource,
)

log = logging.getLogger(__name__)
OVERLAP = timedelta(minutes=5)  # polled again behind the position: late and tied responses
FIRST_POLL = timedelta(days=90)  # how far back a new source is read (LinkedIn keeps 90 days)
LEAD_TYPES = {
    "sponsoredAccount": ("SPONSORED",),
    "organization": ("COMPANY", "EVENT", "ORGANIZATION_PRODUCT"),
}
PREDEFINED = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "COUNTRY": "country",
}


@dataclass
class PollReport:
    """What one poll of a profile did."""

    profile_id: int
    taken: int = 0
    test: int = 0
    seen: int = 0
    requests: int = 0
    error: str = ""
    assigned: list[int] = field(default_factory=list)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _text(localized: Any) -> str:
    """LinkedIn's MultiLocaleString (``{"localized": {"en_US": "…"}}``) or plain text."""
    if isinstance(localized, dict):
        values = (localized.get("localized") or {}).values()
        return str(next(iter(values), ""))
    return str(localized or "")


@dataclass(frozen=True)
class _Question:
    predefined: str | None
    label: str
    options: dict[int, str]


def _questions(form: dict[str, Any]) -> tuple[dict[int, _Question], dict[int, str]]:
    content = form.get("content") or {}
    questions = {}
    for q in content.get("questions") or []:
        details = (q.get("questionDetails") or {}).get("multipleChoiceQuestionDetails") or {}
        questions[int(q["questionId"])] = _Question(
            predefined=q.get("predefinedField"),
            label=_text(q.get("question")) or str(q.get("name", "")),
            options={int(o["id"]): _text(o.get("text")) for o in details.get("options") or []},
        )
    consents = {int(c["consentId"]): _text(c.get("content")) for c in content.get("consents") or []}
    return questions, consents


def _map(
    response: dict[str, Any], form: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The response's answers as contact attributes, every answer with its question, and
    the consents with their wording."""
    questions, consent_texts = _questions(form)
    data: dict[str, Any] = {}
    answers = []
    body = response.get("formResponse") or {}
    for a in body.get("answers") or []:
        q = questions.get(int(a.get("questionId", -1)))
        details = a.get("answerDetails") or {}
        if "multipleChoiceAnswer" in details:
            picked = details["multipleChoiceAnswer"].get("options") or []
            text = ", ".join(q.options.get(int(o), str(o)) for o in picked) if q else str(picked)
        else:
            text = str((details.get("textQuestionAnswer") or {}).get("answer", ""))
        answers.append({"question": q.label if q else str(a.get("questionId")), "answer": text})
        target = PREDEFINED.get(q.predefined or "") if q else None
        if target and text.strip():
            try:
                if target == "email":
                    data[target] = normalize_email(text)
                elif target == "country":
                    data[target] = normalize_country(text)
                else:
                    data[target] = text.strip()[:200]
            except ValueError:
                pass  # kept among the answers, not written on the contact
    consents = [
        {
            "text": consent_texts.get(int(c.get("consentId", -1)), ""),
            "given": bool(c.get("accepted")),
        }
        for c in body.get("consentResponses") or []
    ]
    return data, answers, consents


def _assignment(db: Session, lead: LinkedInLead, rules: list[LinkedInAssignmentRule]) -> Any:
    form_base = lead.form_urn.split(",")[0].removeprefix("urn:li:versionedLeadGenForm:(")
    for rule in rules:
        checks = (
            (rule.form_urn, form_base),
            (rule.campaign_urn, lead.campaign_urn),
            (rule.lead_type, lead.lead_type),
            (rule.country, lead.data.get("country")),
        )
        if all(want is None or want == have for want, have in checks):
            return rule
    return None


def _take(
    db: Session,
    profile: LinkedInProfile,
    source: LinkedInSource,
    response: dict[str, Any],
    form: dict[str, Any],
    rules: list[LinkedInAssignmentRule],
    report: PollReport,
) -> None:
    """Take one response in, once (its id is unique), with the records it becomes."""
    data, answers, consents = _map(response, form)
    submitted = datetime.fromtimestamp(int(response.get("submittedAt", 0)) / 1000, tz=UTC)
    campaign = ((response.get("leadMetadata") or {}).get("sponsoredLeadMetadata") or {}).get(
        "campaign"
    )
    values = {
        "response_id": str(response["id"]),
        "profile_id": profile.id,
        "source_urn": source.owner_urn,
        "form_urn": str(response.get("versionedLeadGenFormUrn", "")),
        "form_name": str(form.get("name", "")),
        "lead_type": str(response.get("leadType", "")),
        "campaign_urn": campaign,
        "test_lead": bool(response.get("testLead")),
        "submitted_at": submitted,
        "taken_at": utcnow(),
        "data": data,
        "answers": answers,
        "consents": consents,
        "state": TEST if response.get("testLead") else TAKEN,
        "owner_type": profile.owner_type,
        "owner_id": profile.owner_id,
        "owning_bu_id": profile.owning_bu_id,
        "outcome": "",
    }
    dialect = db.get_bind().dialect.name
    table: Table = LinkedInLead.__table__  # type: ignore[assignment]
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    made = db.execute(
        ins.values(**values)
        .on_conflict_do_nothing(index_elements=["response_id"])
        .returning(table.c.id)
    ).scalar()
    if made is None:
        return  # taken before
    lead_row = db.get_one(LinkedInLead, made)
    if lead_row.test_lead:
        report.test += 1
        lead_row.outcome = "test lead: kept apart"
        return
    rule = _assignment(db, lead_row, rules)
    owner_type, owner_id, bu_id = profile.owner_type, profile.owner_id, profile.owning_bu_id
    if rule is not None:
        owner_type, owner_id = rule.owner_type, rule.owner_id
        bu_id = contact_service.resolve_owner(
            db=db, owner=OwnerRef.model_validate({"type": owner_type, "id": owner_id})
        )
        lead_row.owner_type, lead_row.owner_id, lead_row.owning_bu_id = owner_type, owner_id, bu_id
        lead_row.assignment_rule_id = rule.id
        report.assigned.append(lead_row.id)
        audit.log(
            db,
            actor=None,
            action="linkedin.assign",
            target_type="linkedin_lead",
            target_id=str(lead_row.id),
            target_label=str(data.get("email") or lead_row.response_id),
            before={"owner": {"type": profile.owner_type, "id": profile.owner_id}},
            after={"owner": {"type": owner_type, "id": owner_id}, "rule": rule.name},
        )
    contact = matching.intake(
        db,
        record_type="contact",
        values=data,
        owner_type=owner_type,
        owner_id=owner_id,
        bu_id=bu_id,
        update_fields=tuple(data),
        extra={"origin": "linkedin"},
    )
    lead = matching.intake(
        db,
        record_type="lead",
        values=data,
        owner_type=owner_type,
        owner_id=owner_id,
        bu_id=bu_id,
        update_fields=tuple(data),
        extra={
            "origin": "linkedin",
            "topic": lead_row.form_name or "LinkedIn lead",
            "source": "linkedin",
            "contact_id": contact.record.id,
        },
    )
    if cast(Lead, lead.record).contact_id is None:
        cast(Lead, lead.record).contact_id = contact.record.id
    lead_row.contact_id, lead_row.lead_id = contact.record.id, lead.record.id
    lead_row.outcome = ", ".join(
        (
            "contact made" if contact.created else "contact matched",
            "lead made" if lead.created else "lead matched",
        )
    )
    changes.record(db, changes.CONTACT, contact_ids=[cast(Contact, contact.record).id])
    report.taken += 1


def poll(
    factory: sessionmaker[Session],
    settings: Settings,
    profile_id: int,
    *,
    now: datetime | None = None,
    http: httpx.Client | None = None,
) -> PollReport:
    """Read every enabled source of a connected profile and take its new responses in.
    Each page of responses commits with the source's position, so a worker killed half-way
    repeats at most one page, and a repeated response changes nothing."""
    if http is None:
        with httpx.Client(timeout=30) as own:
            return poll(factory, settings, profile_id, now=now, http=own)
    report = PollReport(profile_id=profile_id)
    now = now or utcnow()
    with factory() as db:
        profile = db.get(LinkedInProfile, profile_id)
        if profile is None or profile.state != CONNECTED:
            return report
        source_ids = list(
            db.scalars(
                select(LinkedInSource.id).where(
                    LinkedInSource.profile_id == profile_id, LinkedInSource.enabled
                )
            )
        )

        def keep(tokens: Tokens) -> None:
            # A refresh rotates the tokens: keep the new ones at once, whatever happens next.
            with transaction(factory) as tdb:
                service.store_tokens(settings, tdb.get_one(LinkedInProfile, profile_id), tokens)

        client = service.client_for(db, settings, profile, http=http, on_tokens=keep)
    forms: dict[str, dict[str, Any]] = {}
    problems = []
    try:
        for source_id in source_ids:
            try:
                _poll_source(factory, client, source_id, now, forms, report)
            except ReconnectNeeded:
                raise
            except LinkedInError as exc:  # this source fails; the others are still read
                problems.append(exc.message)
    except ReconnectNeeded as exc:
        report.error = f"connect again: {exc.message}"
        _finish(factory, profile_id, now, report, state=NEEDS_RECONNECT)
        return report
    finally:
        report.requests = client.requests
    report.error = "; ".join(problems)
    _finish(factory, profile_id, now, report)
    return report


def _poll_source(
    factory: sessionmaker[Session],
    client: LinkedInClient,
    source_id: int,
    now: datetime,
    forms: dict[str, dict[str, Any]],
    report: PollReport,
) -> None:
    with factory() as db:
        source = db.get_one(LinkedInSource, source_id)
        kind, urn, position = source.kind, source.owner_urn, source.position_ms
    since = (position - int(OVERLAP.total_seconds() * 1000)) if position else _ms(now - FIRST_POLL)
    until = _ms(now) + 1
    newest = position or 0
    for lead_type in LEAD_TYPES.get(kind, ("SPONSORED",)):
        batch: list[dict[str, Any]] = []
        for response in client.responses(
            kind=kind, owner_urn=urn, lead_type=lead_type, since_ms=since, until_ms=until
        ):
            report.seen += 1
            versioned = str(response.get("versionedLeadGenFormUrn", ""))
            if versioned and versioned not in forms:
                forms[versioned] = client.form_version(versioned)
            batch.append(response)
            if len(batch) >= 100:
                newest = _commit(factory, source_id, batch, forms, newest, report)
                batch = []
        newest = _commit(factory, source_id, batch, forms, newest, report)
    with transaction(factory) as db:
        source = db.get_one(LinkedInSource, source_id)
        source.last_polled_at = now


def _commit(
    factory: sessionmaker[Session],
    source_id: int,
    batch: list[dict[str, Any]],
    forms: dict[str, dict[str, Any]],
    newest: int,
    report: PollReport,
) -> int:
    """Take a page of responses in and move the source's position, in one transaction."""
    if not batch:
        return newest
    with transaction(factory) as db:
        source = db.get_one(LinkedInSource, source_id)
        profile = db.get_one(LinkedInProfile, source.profile_id)
        rules = [
            r
            for r in db.scalars(
                select(LinkedInAssignmentRule).order_by(
                    LinkedInAssignmentRule.position, LinkedInAssignmentRule.id
                )
            )
            if r.enabled
        ]
        for response in batch:
            form = forms.get(str(response.get("versionedLeadGenFormUrn", "")), {})
            _take(db, profile, source, response, form, rules, report)
            newest = max(newest, int(response.get("submittedAt", 0)))
        source.position_ms = max(source.position_ms or 0, newest)
    return newest


def _finish(
    factory: sessionmaker[Session],
    profile_id: int,
    now: datetime,
    report: PollReport,
    state: str | None = None,
) -> None:
    with transaction(factory) as db:
        profile = db.get_one(LinkedInProfile, profile_id)
        profile.last_polled_at, profile.last_error = now, report.error
        if state is not None:
            profile.state = state


def due(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> list[int]:
    """Connected profiles not polled for ``linkedin_poll_minutes``."""
    now = now or utcnow()
    cutoff = now - timedelta(minutes=settings.linkedin_poll_minutes)
    with factory() as db:
        return list(
            db.scalars(
                select(LinkedInProfile.id).where(
                    LinkedInProfile.state == CONNECTED,
                    (LinkedInProfile.last_polled_at.is_(None))
                    | (LinkedInProfile.last_polled_at < cutoff),
                )
            )
        )
