"""The form builder's form: a marketing form's settings with its rows of fields and
consents, read from a posted form (the row buttons applied: add, remove, move up and down),
turned into the service's input, and filled back from a stored form.

Only reading and writing form fields lives here; what makes a form right or wrong is the
API's input model's and ``capture.forms``'s business. A row button re-renders the builder
with what was typed and stores nothing, so a half-edited form is never saved; errors name
the form field at fault (``fields.2.options`` is the third row's options).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.datastructures import FormData

from gatherly.api.errors import plain
from gatherly.capture.models import CONTACTS_AND_LEADS, MarketingForm
from gatherly.core.exceptions import ValidationFailed

# The contact and lead attributes a field may write, and how each is asked by default.
ATTRIBUTES = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "job_title": "Job title",
    "phone": "Phone",
    "country": "Country",
}
CUSTOM = "custom"  # the key select's choice for a custom property (its name in a box)
DEFAULT_TYPE = {"email": "email", "phone": "tel", "country": "country"}
TYPES = {
    "text": "Short text",
    "email": "Email address",
    "tel": "Phone number",
    "textarea": "Long text",
    "select": "Choice from a list",
    "checkbox": "Tick box",
    "country": "Country",
}
# What a submission does: a short name and what it means.
ON_SUBMIT = {
    "contacts_and_leads": (
        "A contact and a lead",
        "Finds the person among the contacts by the duplicate rule and updates them with "
        "what they sent, or makes a new contact; then does the same for a lead linked to "
        "that contact, for sales to follow up.",
    ),
    "contacts": (
        "A contact only",
        "Finds the person among the contacts and updates them with what they sent, or "
        "makes a new contact. No lead is made.",
    ),
    "leads": (
        "A lead only",
        "Finds the person among the leads and updates the lead, or makes a new one. No "
        "contact is made.",
    ),
    "no_update": (
        "New contacts only",
        "Makes a contact when nobody matches; a contact who matches is left as it is. What "
        "they sent is still kept with the submission.",
    ),
}
MAX_FIELDS = 30
MAX_CONSENTS = 5
FIELD_PARTS = ("key", "label", "type", "required", "max_length", "options", "placeholder", "help")
CONSENT_PARTS = ("key", "text", "required")
SETTINGS = (
    "name",
    "description",
    "on_submit",
    "rule_id",
    "lead_topic",
    "submit_label",
    "thank_you",
    "redirect_url",
)
# What a setting is called in a sentence about it.
WORDS = {
    "name": "the name",
    "description": "the description",
    "key": "the attribute",
    "label": "the label",
    "type": "the type",
    "required": "required",
    "max_length": "the maximum length",
    "options": "each option",
    "placeholder": "the placeholder",
    "help": "the help text",
    "text": "the wording",
    "on_submit": "what a submission does",
    "rule_id": "the duplicate rule",
    "lead_topic": "the lead topic",
    "submit_label": "the button's label",
    "thank_you": "the thank-you message",
    "redirect_url": "the address",
    "fields": "the fields",
    "consents": "the consents",
}
PATTERNS = {
    "fields": "a custom property's name starts with a lowercase letter and has only "
    "lowercase letters, digits and _ (at most 63)",
    "consents": "a consent's name starts with a lowercase letter and has only lowercase "
    "letters, digits and _ (at most 40)",
    "redirect_url": "the address starts with http:// or https:// and has no spaces",
}


def _text(form: FormData | Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@dataclass
class FieldRow:
    """One field as the builder shows it: ``key`` is an attribute or ``custom`` (then
    ``custom`` holds the property's name); ``options`` one per line."""

    key: str = "email"
    custom: str = ""
    label: str = ""
    type: str = "text"
    required: bool = False
    max_length: str = "200"
    options: str = ""
    placeholder: str = ""
    help: str = ""

    @classmethod
    def new(cls, taken: set[str]) -> FieldRow:
        """A new row for the first attribute no row writes yet (else a custom property)."""
        key = next((k for k in ATTRIBUTES if k not in taken), CUSTOM)
        return cls(key=key, label=ATTRIBUTES.get(key, ""), type=DEFAULT_TYPE.get(key, "text"))

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> FieldRow:
        key = str(stored.get("key", ""))
        custom = key.removeprefix("custom.") if key.startswith("custom.") else ""
        return cls(
            key=CUSTOM if custom else key,
            custom=custom,
            label=str(stored.get("label", "")),
            type=str(stored.get("type", "text")),
            required=bool(stored.get("required")),
            max_length=str(stored.get("max_length", 200)),
            options="\n".join(str(o) for o in stored.get("options") or []),
            placeholder=str(stored.get("placeholder", "")),
            help=str(stored.get("help", "")),
        )

    @classmethod
    def read(cls, form: FormData, i: int) -> FieldRow:
        def part(name: str) -> str:
            return _text(form, f"fields.{i}.{name}")

        return cls(
            key=part("key").strip(),
            custom=part("custom").strip(),
            label=part("label"),
            type=part("type").strip() or "text",
            required=part("required") == "yes",
            max_length=part("max_length").strip(),
            options=part("options"),
            placeholder=part("placeholder"),
            help=part("help"),
        )

    @property
    def attribute(self) -> str:
        """The key the service stores: ``email`` … or ``custom.<name>``."""
        return f"custom.{self.custom.strip()}" if self.key == CUSTOM else self.key

    def option_list(self) -> list[str]:
        return [line.strip() for line in self.options.splitlines() if line.strip()]

    def value(self) -> dict[str, Any]:
        """The row as the API's input (values it cannot read are passed as typed, for the
        input model to name)."""
        length = self.max_length.strip()
        return {
            "key": self.attribute,
            "label": self.label,
            "type": self.type,
            "required": self.required,
            "max_length": int(length) if length.isascii() and length.isdigit() else length or 200,
            "options": self.option_list() if self.type == "select" else [],
            "placeholder": self.placeholder,
            "help": self.help,
        }

    def shown(self) -> dict[str, Any]:
        """The row for a preview: whatever was typed, made something the form can show."""
        length = self.max_length.strip()
        return {
            "key": self.attribute if self.key else "field",
            "label": self.label.strip() or ATTRIBUTES.get(self.key, "") or self.custom,
            "type": self.type if self.type in TYPES else "text",
            "required": self.required,
            "max_length": int(length) if length.isascii() and length.isdigit() else 200,
            "options": self.option_list(),
            "placeholder": self.placeholder.strip(),
            "help": self.help.strip(),
        }


@dataclass
class ConsentRow:
    """One consent checkbox: its short name (stored with each answer), wording, required."""

    key: str = ""
    text: str = ""
    required: bool = False

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> ConsentRow:
        return cls(
            key=str(stored.get("key", "")),
            text=str(stored.get("text", "")),
            required=bool(stored.get("required")),
        )

    @classmethod
    def read(cls, form: FormData, i: int) -> ConsentRow:
        return cls(
            key=_text(form, f"consents.{i}.key").strip(),
            text=_text(form, f"consents.{i}.text"),
            required=_text(form, f"consents.{i}.required") == "yes",
        )

    def value(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "required": self.required}


def _free_consent_key(taken: set[str]) -> str:
    n = 1
    while f"consent_{n}" in taken:
        n += 1
    return f"consent_{n}"


@dataclass
class Builder:
    """What the builder holds: the settings as typed, the rows, and the button pressed."""

    name: str = ""
    description: str = ""
    fields: list[FieldRow] = field(default_factory=list)
    consents: list[ConsentRow] = field(default_factory=list)
    on_submit: str = CONTACTS_AND_LEADS
    rule_id: str = ""
    lead_topic: str = ""
    submit_label: str = "Submit"
    after: str = "message"  # after sending: show ``thank_you`` or go to ``redirect_url``
    thank_you: str = "Thank you."
    redirect_url: str = ""
    action: str = "save"

    @classmethod
    def blank(cls) -> Builder:
        """A new form: an email field to start from."""
        return cls(fields=[FieldRow(key="email", label="Email", type="email", required=True)])

    @classmethod
    def of(cls, form: MarketingForm) -> Builder:
        """A stored form as the builder shows it."""
        return cls(
            name=form.name,
            description=form.description or "",
            fields=[FieldRow.of(f) for f in form.fields],
            consents=[ConsentRow.of(c) for c in form.consents],
            on_submit=form.on_submit,
            rule_id=str(form.rule_id or ""),
            lead_topic=form.lead_topic or "",
            submit_label=form.submit_label or "",
            after="redirect" if form.redirect_url else "message",
            thank_you=form.thank_you or "",
            redirect_url=form.redirect_url or "",
        )

    @classmethod
    def read(cls, form: FormData) -> Builder:
        """The builder as posted (at most as many rows as a form may have)."""
        fields = [FieldRow.read(form, i) for i in range(MAX_FIELDS) if f"fields.{i}.key" in form]
        consents = [
            ConsentRow.read(form, i) for i in range(MAX_CONSENTS) if f"consents.{i}.text" in form
        ]
        return cls(
            name=_text(form, "name"),
            description=_text(form, "description"),
            fields=fields,
            consents=consents,
            on_submit=_text(form, "on_submit").strip() or CONTACTS_AND_LEADS,
            rule_id=_text(form, "rule_id").strip(),
            lead_topic=_text(form, "lead_topic"),
            submit_label=_text(form, "submit_label"),
            after="redirect" if _text(form, "after") == "redirect" else "message",
            thank_you=_text(form, "thank_you"),
            redirect_url=_text(form, "redirect_url").strip(),
            action=_text(form, "action").strip() or "save",
        )

    # ------------------------------------------------------------ the row buttons

    def apply(self) -> str:
        """Carry out a row button (``add_field``, ``remove_field.2``, ``up_field.2``,
        ``down_field.2``, ``add_consent``, ``remove_consent.0``); returns the anchor of the
        row to show. Nothing is stored."""
        what, _, at = self.action.partition(".")
        index = int(at) if at.isascii() and at.isdigit() and len(at) < 4 else -1
        rows: list[Any] = self.consents if what.endswith("_consent") else self.fields
        if what == "add_field" and len(self.fields) < MAX_FIELDS:
            self.fields.append(FieldRow.new({r.key for r in self.fields}))
            return f"field-{len(self.fields) - 1}"
        if what == "add_consent" and len(self.consents) < MAX_CONSENTS:
            self.consents.append(ConsentRow(key=_free_consent_key({c.key for c in self.consents})))
            return f"consent-{len(self.consents) - 1}"
        if not 0 <= index < len(rows):
            return "fields"
        if what in ("remove_field", "remove_consent"):
            rows.pop(index)
            return "fields" if what == "remove_field" else "consents"
        if what == "up_field" and index > 0:
            rows[index - 1], rows[index] = rows[index], rows[index - 1]
            return f"field-{index - 1}"
        if what == "down_field" and index < len(rows) - 1:
            rows[index + 1], rows[index] = rows[index], rows[index + 1]
            return f"field-{index + 1}"
        return f"field-{index}"

    # ------------------------------------------------------------ to the service

    def values(self) -> dict[str, Any]:
        """The form's settings as the API's input (``FormIn`` / ``FormFields``)."""
        rule = self.rule_id
        return {
            "name": self.name,
            "description": self.description,
            "fields": [r.value() for r in self.fields],
            "consents": [c.value() for c in self.consents],
            "on_submit": self.on_submit,
            "rule_id": (int(rule) if rule.isascii() and rule.isdigit() else rule) or None,
            "lead_topic": self.lead_topic,
            "submit_label": self.submit_label,
            "thank_you": self.thank_you,
            "redirect_url": self.redirect_url if self.after == "redirect" else None,
        }

    def checked(self, model: type[BaseModel]) -> dict[str, Any]:
        """:meth:`values`, checked by the API's input ``model`` first, so each mistake is
        said in words beside its field.

        Raises:
            ValidationFailed: the first mistake, ``field`` naming its form field.
        """
        if not self.fields:
            raise ValidationFailed("add at least one field: what people fill in", field="fields")
        if self.after == "redirect" and not self.redirect_url:
            raise ValidationFailed(
                "give the address to send people to, or show a thank-you message instead",
                field="redirect_url",
            )
        values = self.values()
        try:
            model.model_validate(values)
        except PydanticError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationFailed(_said(first), field=where) from None
        return values

    def preview(self) -> MarketingForm:
        """The form as typed, for a preview only: never added to a session, numbered 0 so
        its signed token is no form's."""
        return MarketingForm(
            id=0,
            name=self.name,
            fields=[r.shown() for r in self.fields],
            consents=[
                {"key": c.key or f"consent_{i}", "text": c.text, "required": c.required}
                for i, c in enumerate(self.consents)
            ],
            submit_label=self.submit_label.strip() or "Submit",
            embed_nonce="",
        )

    # ------------------------------------------------------------ errors

    def places(self) -> set[str]:
        """Every place the builder shows an error."""
        found = {"form", "fields", "consents", "after", *SETTINGS}
        for i in range(len(self.fields)):
            found.add(f"fields.{i}")
            found.update(f"fields.{i}.{p}" for p in FIELD_PARTS)
        for i in range(len(self.consents)):
            found.add(f"consents.{i}")
            found.update(f"consents.{i}.{p}" for p in CONSENT_PARTS)
        return found

    def place(self, where: str | None) -> str:
        """Where an error about ``where`` shows: the field itself, else the nearest part
        that holds it (``fields.2.options.0`` → the third row's options), else the top."""
        parts = (where or "").split(".")
        places = self.places()
        while parts:
            key = ".".join(parts)
            if key in places:
                return key
            parts.pop()
        return "form"


def _said(error: Mapping[str, Any]) -> str:
    """A schema's complaint about one value, in a sentence naming it."""
    loc = [str(p) for p in error.get("loc", ())]
    names = [p for p in loc if not p.isdigit()]
    last = names[-1] if names else ""
    words = WORDS.get(last, last.replace("_", " "))
    kind = error.get("type")
    if kind == "string_pattern_mismatch":
        pattern = PATTERNS.get("redirect_url" if last == "redirect_url" else loc[0] if loc else "")
        if pattern:
            return pattern
    ctx = error.get("ctx") or {}
    if kind == "too_long":
        return f"{words}: at most {ctx.get('max_length')}"
    if kind == "too_short":
        return f"{words}: at least {ctx.get('min_length')}"
    return f"{words} {plain(error)}"
