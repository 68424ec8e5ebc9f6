"""The scoring model editor's form: name, description, target, sales-ready threshold, the
grades as rows and the conditions as rows (a contact field compared with a value, or an
interaction counted: each, at least N times, or never), read from a posted form with the
row buttons applied (add, remove), turned into the definition's shape for
``scoring.service``, and filled back from a stored model.

Only reading and writing form fields lives here; what makes a model right or wrong is
``scoring.definition``'s and the service's business. A row button re-renders the editor
with what was typed and stores nothing, so a half-made model is never saved; errors name
the form field at fault (``conditions.2.event`` is the third row's event).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticError
from starlette.datastructures import FormData

from gatherly.api.errors import plain
from gatherly.core.exceptions import ValidationFailed
from gatherly.scoring import definition as sd
from gatherly.scoring.models import CONTACT, ScoringModel

CONTACT_KIND, JSON_KIND = "contact", "json"
# What a condition row is about: a contact field, an interaction, or a condition written
# as JSON (one the rows cannot show: several fields, an event chosen by its type …).
KINDS = {
    CONTACT_KIND: "A contact field",
    sd.REGISTERED: "Registered for an event",
    sd.ATTENDED: "Attended an event",
    sd.EMAIL_OPENED: "Opened an email",
    sd.EMAIL_CLICKED: "Clicked a link in an email",
    sd.FORM_SUBMITTED: "Submitted a form",
    sd.PAGE_VISITED: "Visited a page",
    JSON_KIND: "Written as JSON…",
}
FIELDS = {
    "country": "Country (ISO code, e.g. DE)",
    "company": "Company",
    "job_title": "Job title",
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "origin": "Origin (e.g. teams_sync, form)",
}
OPS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "empty": "is empty",
    "not_empty": "is not empty",
}
TEXT_OPS = ("equals", "not_equals", "contains", "starts_with", "ends_with")
FREQUENCIES = {
    sd.EACH: "for each one",
    sd.AT_LEAST: "once, when there are at least",
    sd.NEVER: "when there is none",
}
# The record an interaction row names (the form field that holds it), "" for none.
REFERENCE = {
    sd.REGISTERED: "event",
    sd.ATTENDED: "event",
    sd.EMAIL_OPENED: "message_id",
    sd.EMAIL_CLICKED: "message_id",
    sd.FORM_SUBMITTED: "form_id",
    sd.PAGE_VISITED: "page_id",
}
TARGETS = {CONTACT: "Contacts", "lead": "Leads (those with a contact)"}
CONDITION_PARTS = (
    "name",
    "points",
    "kind",
    "field",
    "op",
    "value",
    "frequency",
    "times",
    "within_days",
    "min_minutes",
    "event",
    "message_id",
    "form_id",
    "page_id",
    "raw",
)
GRADE_PARTS = ("grade", "min")
SETTINGS = ("name", "description", "target", "sales_ready")
# A setting of the definition (as the service names it) → the row's form field.
ALIASES = {"contact": "value", "interaction": "kind"}
# What a setting is called in a sentence about it.
WORDS = {
    "name": "the name",
    "points": "the points",
    "times": "the number of times",
    "within_days": "the days",
    "min_minutes": "the minutes",
    "message_id": "the email",
    "form_id": "the form",
    "page_id": "the page",
    "frequency": "how often",
    "interaction": "the kind",
    "grade": "the grade",
    "min": "the lowest score",
}


def _text(form: FormData | Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _whole(text: str, *, where: str, what: str, blank: Any = None) -> Any:
    """A typed whole number (``blank`` when nothing was typed); ValidationFailed naming
    ``where`` otherwise."""
    text = text.strip()
    if not text:
        return blank
    if re.fullmatch(r"[+-]?[0-9]{1,12}", text):
        return int(text)
    raise ValidationFailed(f"{what} must be a whole number", field=where)


def _id(text: str, *, where: str) -> int | None:
    """A record picked from a select (None: any)."""
    number: int | None = _whole(text, where=where, what="the choice")
    if number is not None and number < 1:
        raise ValidationFailed("pick one from the list", field=where)
    return number


@dataclass
class ConditionRow:
    """One condition as the editor shows it (text in, the definition's JSON out)."""

    name: str = ""
    points: str = "10"
    kind: str = CONTACT_KIND
    field: str = "country"
    op: str = "equals"
    value: str = ""
    frequency: str = sd.AT_LEAST
    times: str = "1"
    within_days: str = ""
    min_minutes: str = ""
    event: str = ""
    message_id: str = ""
    form_id: str = ""
    page_id: str = ""
    raw: str = ""

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> ConditionRow:
        """A stored condition as a row; one the row cannot show exactly is a JSON row."""
        row = cls(name=str(stored.get("name", "")), points=str(stored.get("points", "")))
        rest = {k: v for k, v in stored.items() if k not in ("name", "points")}
        if _fill(row, rest):
            return row
        row.kind = JSON_KIND
        row.raw = json.dumps(rest, indent=2, ensure_ascii=False)
        return row

    @classmethod
    def read(cls, form: FormData, i: int) -> ConditionRow:
        values = {p: _text(form, f"conditions.{i}.{p}") for p in CONDITION_PARTS}
        for p in CONDITION_PARTS:
            if p not in ("name", "value", "raw"):
                values[p] = values[p].strip()
        return cls(**values)

    def value_of(self, i: int) -> dict[str, Any]:
        """The row as the definition's condition.

        Raises:
            ValidationFailed: a number or a JSON text that cannot be read, naming its field.
        """
        at = f"conditions.{i}"
        out: dict[str, Any] = {
            "name": self.name.strip(),
            "points": _whole(self.points, where=f"{at}.points", what="the points", blank=""),
        }
        if self.kind == JSON_KIND:
            try:
                parsed = json.loads(self.raw or "{}")
            except json.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"this is not JSON ({exc.msg} at line {exc.lineno})", field=f"{at}.raw"
                ) from None
            if not isinstance(parsed, dict):
                raise ValidationFailed("write a JSON object: {…}", field=f"{at}.raw")
            return {**parsed, **out}
        if self.kind == CONTACT_KIND:
            if self.op == "empty":
                compared: dict[str, Any] = {"empty": True}
            elif self.op == "not_empty":
                compared = {"empty": False}
            else:
                compared = {self.op: self.value.strip()}
            out["contact"] = {self.field: compared}
            return out
        out["interaction"] = self.kind
        out["frequency"] = self.frequency
        if self.frequency == sd.AT_LEAST:
            out["times"] = _whole(self.times, where=f"{at}.times", what="the times", blank=1)
        days = _whole(self.within_days, where=f"{at}.within_days", what="the days")
        if days is not None:
            out["within_days"] = days
        if self.kind == sd.ATTENDED and self.min_minutes:
            try:
                out["min_minutes"] = float(self.min_minutes)
            except ValueError:
                raise ValidationFailed(
                    "the minutes must be a number", field=f"{at}.min_minutes"
                ) from None
        ref = REFERENCE.get(self.kind, "")
        chosen = _id(getattr(self, ref), where=f"{at}.{ref}") if ref else None
        if chosen is not None:
            out[ref] = {"id": chosen} if ref == "event" else chosen
        return out

    @property
    def chosen(self) -> dict[str, int]:
        """The records the row names, by form field (for names the selects lack)."""
        found = {}
        for ref in ("event", "message_id", "form_id", "page_id"):
            text = getattr(self, ref)
            if text.isascii() and text.isdigit() and len(text) < 12:
                found[ref] = int(text)
        return found


def _fill(row: ConditionRow, rest: Mapping[str, Any]) -> bool:
    """Fill ``row`` from a stored condition's fields; False when the row cannot show them."""
    contact, interaction = rest.get("contact"), rest.get("interaction")
    if isinstance(contact, dict) and set(rest) == {"contact"} and len(contact) == 1:
        ((name, compared),) = contact.items()
        if name not in FIELDS:
            return False
        if isinstance(compared, str):
            compared = {"equals": compared}
        if not isinstance(compared, dict) or len(compared) != 1:
            return False
        ((op, value),) = compared.items()
        if op == "empty" and isinstance(value, bool):
            row.kind, row.field, row.op = CONTACT_KIND, name, "empty" if value else "not_empty"
            return True
        if op in TEXT_OPS and isinstance(value, str):
            row.kind, row.field, row.op, row.value = CONTACT_KIND, name, op, value
            return True
        return False
    if interaction not in REFERENCE:
        return False
    ref = REFERENCE[str(interaction)]
    known = {"interaction", "frequency", "times", "within_days", ref}
    if interaction == sd.ATTENDED:
        known.add("min_minutes")
    if set(rest) - known:
        return False
    if ref == "event" and "event" in rest:
        event = rest["event"]
        if not (isinstance(event, dict) and set(event) == {"id"} and _is_id(event["id"])):
            return False
        row.event = str(event["id"])
    elif ref in rest:
        if not _is_id(rest[ref]):
            return False
        setattr(row, ref, str(rest[ref]))
    row.kind = str(interaction)
    row.frequency = str(rest.get("frequency", sd.AT_LEAST))
    row.times = str(rest.get("times", 1))
    row.within_days = "" if rest.get("within_days") is None else str(rest["within_days"])
    minutes = rest.get("min_minutes")
    row.min_minutes = "" if minutes is None else f"{minutes:g}"
    return True


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class GradeRow:
    """A grade and the lowest score that earns it (blank: any score, the last only)."""

    grade: str = ""
    min: str = ""

    def value_of(self, i: int) -> dict[str, Any]:
        lowest = _whole(self.min, where=f"grades.{i}.min", what="the lowest score")
        return {"grade": self.grade.strip(), "min": lowest}


@dataclass
class Editor:
    """What the editor holds: the settings as typed, the rows, and the button pressed."""

    name: str = ""
    description: str = ""
    target: str = CONTACT
    sales_ready: str = ""
    conditions: list[ConditionRow] = field(default_factory=list)
    grades: list[GradeRow] = field(default_factory=list)
    action: str = "save"

    @classmethod
    def of(cls, model: ScoringModel) -> Editor:
        """A stored model as the editor shows it."""
        return cls(
            name=model.name,
            description=model.description or "",
            target=model.target,
            sales_ready="" if model.sales_ready is None else str(model.sales_ready),
            conditions=[ConditionRow.of(c) for c in model.conditions or []],
            grades=[
                GradeRow(str(g.get("grade", "")), "" if g.get("min") is None else str(g["min"]))
                for g in model.grades or []
            ],
        )

    @classmethod
    def read(cls, form: FormData) -> Editor:
        """The editor as posted (at most as many rows as a model may have)."""
        return cls(
            name=_text(form, "name"),
            description=_text(form, "description"),
            target=_text(form, "target").strip() or CONTACT,
            sales_ready=_text(form, "sales_ready").strip(),
            conditions=[
                ConditionRow.read(form, i)
                for i in range(sd.MAX_CONDITIONS)
                if f"conditions.{i}.kind" in form
            ],
            grades=[
                GradeRow(_text(form, f"grades.{i}.grade"), _text(form, f"grades.{i}.min").strip())
                for i in range(sd.MAX_GRADES)
                if f"grades.{i}.grade" in form
            ],
            action=_text(form, "action").strip() or "save",
        )

    # ------------------------------------------------------------ the row buttons

    def apply(self) -> str:
        """Carry out a row button (``add_condition``, ``remove_condition.2``,
        ``add_grade``, ``remove_grade.0``); returns the anchor of the row to show. Nothing
        is stored."""
        what, _, at = self.action.partition(".")
        index = int(at) if at.isascii() and at.isdigit() and len(at) < 4 else -1
        if what == "add_condition" and len(self.conditions) < sd.MAX_CONDITIONS:
            self.conditions.append(ConditionRow())
            return f"condition-{len(self.conditions) - 1}"
        if what == "add_grade" and len(self.grades) < sd.MAX_GRADES:
            self.grades.append(GradeRow())
            return f"grade-{len(self.grades) - 1}"
        rows: list[Any] = self.grades if what == "remove_grade" else self.conditions
        if what in ("remove_condition", "remove_grade") and 0 <= index < len(rows):
            rows.pop(index)
        return "grades" if what.endswith("_grade") else "conditions"

    # ------------------------------------------------------------ to the service

    def values(self) -> dict[str, Any]:
        """The model's fields as ``scoring.service`` takes them, each condition first
        checked by the definition's own model so a mistake is said in words.

        Raises:
            ValidationFailed: the first mistake, ``field`` naming its form field.
        """
        conditions = []
        for i, row in enumerate(self.conditions):
            value = row.value_of(i)
            _said(sd.Condition, value, f"conditions.{i}")
            conditions.append(value)
        grades = []
        for i, g in enumerate(self.grades):
            value = g.value_of(i)
            _said(sd.Grade, value, f"grades.{i}")
            grades.append(value)
        return {
            "name": self.name.strip(),
            "description": self.description,
            "target": self.target,
            "sales_ready": _whole(self.sales_ready, where="sales_ready", what="the threshold"),
            "conditions": conditions,
            "grades": grades,
        }

    # ------------------------------------------------------------ errors

    def places(self) -> set[str]:
        """Every place the editor shows an error."""
        found = {"form", "conditions", "grades", *SETTINGS}
        for i in range(len(self.conditions)):
            found.add(f"conditions.{i}")
            found.update(f"conditions.{i}.{p}" for p in CONDITION_PARTS)
        for i in range(len(self.grades)):
            found.add(f"grades.{i}")
            found.update(f"grades.{i}.{p}" for p in GRADE_PARTS)
        return found

    def place(self, where: str | None) -> str:
        """Where an error about ``where`` shows: ``conditions[2].event.start`` → the third
        row's event; a JSON row's errors beside its JSON; else the nearest part that holds
        it, else the top."""
        parts = re.sub(r"\[(\d+)\]", r".\1", where or "").split(".")
        if len(parts) > 2 and parts[0] == "conditions" and parts[1].isdigit():
            i = int(parts[1])
            json_row = i < len(self.conditions) and self.conditions[i].kind == JSON_KIND
            if json_row and parts[2] not in ("name", "points"):
                return f"conditions.{i}.raw"
            parts[2] = ALIASES.get(parts[2], parts[2])
        places = self.places()
        while parts:
            key = ".".join(parts)
            if key in places:
                return key
            parts.pop()
        return "form"


def _said(model: Any, value: dict[str, Any], at: str) -> None:
    """Check ``value`` with the definition's ``model``; its first complaint in words."""
    try:
        model.model_validate(value)
    except PydanticError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
        if not loc or first["type"] == "value_error":
            raise ValidationFailed(plain(first), field=at) from None
        if first["type"] == "extra_forbidden":
            raise ValidationFailed(f"a condition has no setting “{loc[0]}”", field=at) from None
        words = WORDS.get(loc[0], loc[0].replace("_", " "))
        raise ValidationFailed(f"{words} {plain(first)}", field=f"{at}.{loc[0]}") from None
