"""The emulator's fixture file: a compact description of a LinkedIn world (the application,
members with their roles, lead forms with versions, lead form responses), Pydantic models
for it and the loader.

The compact shape is ours, not LinkedIn's (the emulator renders LinkedIn's shapes from it;
docs/linkedin-emulator.md). A fixture that does not match is refused with the JSON path of
its first problem, e.g. ``responses[3].answers.6: option 9 is not an option of question 6``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.schemas import first_problem

LEAD_TYPES = ("SPONSORED", "EVENT", "COMPANY", "ORGANIZATION_PRODUCT")
LeadType = Literal["SPONSORED", "EVENT", "COMPANY", "ORGANIZATION_PRODUCT"]
FormState = Literal["DRAFT", "PUBLISHED", "ARCHIVED"]

SPONSORED_ACCOUNT = re.compile(r"urn:li:sponsoredAccount:\d+")
ORGANIZATION = re.compile(r"urn:li:organization:\d+")


class FixtureError(ValidationFailed):
    """The fixture does not match the format; the message starts with the JSON path."""


def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"not {what}")
        return value

    return AfterValidator(check)


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[StrictStr, AfterValidator(_non_blank)]
SponsoredAccountUrn = Annotated[
    StrictStr,
    _matching(SPONSORED_ACCOUNT.pattern, "an ad account URN (urn:li:sponsoredAccount:{number})"),
]
OrganizationUrn = Annotated[
    StrictStr, _matching(ORGANIZATION.pattern, "an organization URN (urn:li:organization:{number})")
]
PersonUrn = Annotated[
    StrictStr, _matching(r"urn:li:person:[A-Za-z0-9_-]+", "a member URN (urn:li:person:{id})")
]
CampaignUrn = Annotated[
    StrictStr,
    _matching(
        r"urn:li:sponsoredCampaign:\d+", "a campaign URN (urn:li:sponsoredCampaign:{number})"
    ),
]
CreativeUrn = Annotated[
    StrictStr,
    _matching(
        r"urn:li:sponsoredCreative:\d+", "a creative URN (urn:li:sponsoredCreative:{number})"
    ),
]
MemberId = Annotated[
    StrictStr, _matching(r"[A-Za-z0-9_-]+", "a member id (letters, digits, '-' and '_')")
]
Email = Annotated[StrictStr, _matching(r"[^@\s]+@[^@\s]+", "an e-mail address")]
RedirectPrefix = Annotated[StrictStr, _matching(r"https?://\S+", "an http(s) URL or URL prefix")]
Locale = Annotated[StrictStr, _matching(r"[a-z]{2}_[A-Z]{2}", "a locale such as 'en_US'")]
PredefinedField = Annotated[
    StrictStr, _matching(r"[A-Z][A-Z0-9_]*", "an upper-case field name such as 'FIRST_NAME'")
]
PositiveId = Annotated[StrictInt, Field(ge=1)]
EpochMs = Annotated[StrictInt, Field(ge=0)]


class _Compact(BaseModel):
    """A fixture object: unknown keys are refused (they are most likely misspellings)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Application(_Compact):
    """The integration's registered application (LinkedIn developer portal)."""

    client_id: Text
    client_secret: Text
    redirect_uris: Annotated[list[RedirectPrefix], Field(min_length=1)]


class Member(_Compact):
    """A LinkedIn member who can connect the integration, with the roles they hold."""

    id: MemberId
    name: Text
    email: Email
    ad_accounts: list[SponsoredAccountUrn] = []
    organizations: list[OrganizationUrn] = []


class Owner(_Compact):
    """The owner union: exactly one of an ad account or an organization."""

    sponsored_account: SponsoredAccountUrn | None = Field(default=None, alias="sponsoredAccount")
    organization: OrganizationUrn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Owner:
        if (self.sponsored_account is None) == (self.organization is None):
            raise ValueError("exactly one of 'sponsoredAccount' or 'organization'")
        return self

    @property
    def urn(self) -> str:
        """The owner's URN."""
        return self.sponsored_account or self.organization or ""

    @property
    def kind(self) -> str:
        """``sponsoredAccount`` or ``organization``."""
        return "sponsoredAccount" if self.sponsored_account else "organization"

    def as_json(self) -> dict[str, str]:
        """LinkedIn's owner union: ``{"sponsoredAccount": urn}`` or ``{"organization": urn}``."""
        return {self.kind: self.urn}


class Option(_Compact):
    """An answer option of a multiple-choice question."""

    id: PositiveId
    text: Text


class Question(_Compact):
    """A form question: predefined (``predefinedField``) or custom; with ``options`` it is
    multiple choice, else free text."""

    question_id: PositiveId = Field(alias="questionId")
    name: Text
    predefined_field: PredefinedField | None = Field(default=None, alias="predefinedField")
    question: Text
    options: Annotated[list[Option], Field(min_length=1)] | None = None


class Consent(_Compact):
    """A custom consent checkbox."""

    consent_id: PositiveId = Field(alias="consentId")
    text: Text
    required: StrictBool = False


class Version(_Compact):
    """One version of a form; ``created`` (epoch ms) is optional."""

    version_id: PositiveId = Field(alias="versionId")
    questions: Annotated[list[Question], Field(min_length=1)]
    consents: list[Consent] = []
    created: EpochMs | None = None


class Form(_Compact):
    """A lead form with its versions (the last listed is the latest)."""

    id: PositiveId
    owner: Owner
    name: Text
    state: FormState = "PUBLISHED"
    locale: Locale = "en_US"
    created: EpochMs | None = None
    versions: Annotated[list[Version], Field(min_length=1)]

    def version(self, version_id: int) -> Version | None:
        """The version with this id."""
        return next((v for v in self.versions if v.version_id == version_id), None)

    @property
    def latest(self) -> Version:
        """The latest version (highest ``versionId``)."""
        return max(self.versions, key=lambda v: v.version_id)


class Response(_Compact):
    """A lead form response. ``answers`` maps question ids (as strings) to a text answer or a
    list of option ids; ``consents`` maps consent ids to accepted or not. ``owner`` defaults to
    the form's owner, ``version`` to its latest version."""

    id: Text
    submitted_at: EpochMs = Field(alias="submittedAt")
    lead_type: LeadType = Field(alias="leadType")
    test_lead: StrictBool = Field(default=False, alias="testLead")
    owner: Owner | None = None
    submitter: PersonUrn | None = None
    form: PositiveId
    version: PositiveId | None = None
    campaign: CampaignUrn | None = None
    creative: CreativeUrn | None = None
    answers: dict[str, Any] = {}
    consents: dict[str, StrictBool] = {}


class Fixture(_Compact):
    """The whole fixture file."""

    application: Application
    members: list[Member]
    forms: list[Form] = []
    responses: list[Response] = []


def _validate_model(model: type[Any], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FixtureError(first_problem(exc)) from None


def _duplicates(values: list[Any], where: str, what: str = "id") -> None:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise FixtureError(f"{where}[{i}]{'.' + what if what else ''}: duplicate {value!r}")
        seen.add(value)


def owners_held(members: list[Member]) -> set[str]:
    """Every ad account and organization URN some member holds a role on."""
    return {urn for m in members for urn in (*m.ad_accounts, *m.organizations)}


def check_version(version: Version, where: str) -> None:
    """Ids unique inside one version: questions (and their names), options, consents.

    ``where`` is the version's JSON path (``""`` for a version sent on its own)."""

    def at(rest: str) -> str:
        return f"{where}.{rest}" if where else rest

    _duplicates([q.question_id for q in version.questions], at("questions"), "questionId")
    _duplicates([q.name for q in version.questions], at("questions"), "name")
    for j, question in enumerate(version.questions):
        if question.options is not None:
            _duplicates([o.id for o in question.options], at(f"questions[{j}].options"))
    _duplicates([c.consent_id for c in version.consents], at("consents"), "consentId")


def check_form(form: Form, *, held: set[str], where: str) -> None:
    """A form's owner is held by a member; its versions and their contents are consistent."""
    if form.owner.urn not in held:
        raise FixtureError(
            f"{where}.owner.{form.owner.kind}: no member holds a role on {form.owner.urn}"
        )
    _duplicates([v.version_id for v in form.versions], f"{where}.versions", "versionId")
    for i, version in enumerate(form.versions):
        check_version(version, f"{where}.versions[{i}]")


def check_response(response: Response, forms: dict[int, Form], *, where: str) -> None:
    """Cross-references of one response; fills in its defaults (owner, version).

    ``where`` is the response's JSON path (``""`` for a response sent on its own)."""

    def at(rest: str) -> str:
        return f"{where}.{rest}" if where else rest

    form = forms.get(response.form)
    if form is None:
        raise FixtureError(f"{at('form')}: unknown form {response.form}")
    if response.version is None:
        response.version = form.latest.version_id
    version = form.version(response.version)
    if version is None:
        raise FixtureError(f"{at('version')}: form {form.id} has no version {response.version}")
    if response.owner is None:
        response.owner = Owner.model_validate(form.owner.as_json())
    elif response.owner.urn != form.owner.urn:
        raise FixtureError(f"{at('owner')}: form {form.id} is owned by {form.owner.urn}")
    sponsored = response.owner.kind == "sponsoredAccount"
    if sponsored != (response.lead_type == "SPONSORED"):
        expected = "SPONSORED" if sponsored else "EVENT, COMPANY or ORGANIZATION_PRODUCT"
        raise FixtureError(
            f"{at('leadType')}: a form owned by {response.owner.urn} takes {expected}"
        )
    questions = {q.question_id: q for q in version.questions}
    for key, answer in response.answers.items():
        path = at(f"answers.{key}")
        if not (key.isascii() and key.isdigit()) or int(key) not in questions:
            raise FixtureError(
                f"{path}: not a question of form {form.id} version {version.version_id}"
            )
        question = questions[int(key)]
        if question.options is None:
            if not isinstance(answer, str):
                raise FixtureError(f"{path}: question {key} is free text: the answer is a string")
            continue
        if not isinstance(answer, list) or not answer:
            raise FixtureError(
                f"{path}: question {key} is multiple choice: the answer is a list of option ids"
            )
        option_ids = {o.id for o in question.options}
        for n, option in enumerate(answer):
            if isinstance(option, bool) or not isinstance(option, int):
                raise FixtureError(f"{path}[{n}]: not an option id")
            if option not in option_ids:
                raise FixtureError(
                    f"{path}[{n}]: option {option} is not an option of question {key}"
                )
    consents = {c.consent_id: c for c in version.consents}
    for key in response.consents:
        if not (key.isascii() and key.isdigit()) or int(key) not in consents:
            raise FixtureError(
                f"{at(f'consents.{key}')}: not a consent of form {form.id} version "
                f"{version.version_id}"
            )
    for consent in version.consents:
        if consent.required and response.consents.get(str(consent.consent_id)) is not True:
            raise FixtureError(
                f"{at(f'consents.{consent.consent_id}')}: consent {consent.consent_id} is "
                "required: a response always accepts it"
            )


def validate_response(data: Any) -> Response:
    """Validate one compact response object, raising FixtureError with its JSON path."""
    result: Response = _validate_model(Response, data)
    return result


def validate_questions(data: Any) -> list[Question]:
    """Validate a list of compact questions (control API: a new form version)."""

    class _Questions(_Compact):
        questions: Annotated[list[Question], Field(min_length=1)]

    parsed: _Questions = _validate_model(_Questions, {"questions": data})
    return parsed.questions


def validate_consents(data: Any) -> list[Consent]:
    """Validate a list of compact consents (control API: a new form version)."""

    class _Consents(_Compact):
        consents: list[Consent]

    parsed: _Consents = _validate_model(_Consents, {"consents": data})
    return parsed.consents


def validate_fixture(data: Any) -> Fixture:
    """Validate a parsed fixture, raising FixtureError naming the first problem's JSON path.

    Returns the parsed fixture with defaults filled in (response owners and versions)."""
    fixture: Fixture = _validate_model(Fixture, data)
    _duplicates([m.id for m in fixture.members], "members")
    for i, member in enumerate(fixture.members):
        _duplicates(member.ad_accounts, f"members[{i}].ad_accounts", "")
        _duplicates(member.organizations, f"members[{i}].organizations", "")
    held = owners_held(fixture.members)
    _duplicates([f.id for f in fixture.forms], "forms")
    for i, form in enumerate(fixture.forms):
        check_form(form, held=held, where=f"forms[{i}]")
    forms = {f.id: f for f in fixture.forms}
    _duplicates([r.id for r in fixture.responses], "responses")
    for i, response in enumerate(fixture.responses):
        check_response(response, forms, where=f"responses[{i}]")
    return fixture


def load_fixture(path: Path | str) -> dict[str, Any]:
    """Read and validate a fixture file; return its JSON data (compact shape, kept as given)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"cannot read fixture {str(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise FixtureError(f"fixture {str(path)!r} is not JSON: {exc}") from None
    validate_fixture(data)
    assert isinstance(data, dict)
    return data
