"""The journey designer's forms: a step's settings and who enters, read from a posted form
into the definition's shape (for ``journey.design``), and a step back into form values.

Only reading and writing form fields lives here; what makes an edit right or wrong is
``journey.design``'s (and the service's) business. Errors name the form field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.journey import design

# Every field a step form may carry (what a re-rendered form keeps of what was typed).
STEP_FIELDS = (
    "message_id",
    "wait_kind",
    "duration",
    "until",
    "wait_step",
    "wait_for",
    "timeout",
    "test_kind",
    "test_step",
    "test_event",
    "min_minutes",
    "test_segment",
    "test_field",
    "op",
    "test_value",
    "topic",
    "list_id",
    "field",
    "value",
)
# A setting of the definition (as journey.design names it) → the form field that holds it.
FORM_FIELD = {
    "interaction": "wait_step",
    "interaction.step": "wait_step",
    "interaction.kind": "wait_for",
    "step": "wait_kind",
    "test": "test_kind",
    "test.opened": "test_step",
    "test.clicked": "test_step",
    "test.registered": "test_event",
    "test.attended": "test_event",
    "test.min_minutes": "min_minutes",
    "test.segment": "test_segment",
    "test.field": "test_field",
    "test.op": "op",
    "test.value": "test_value",
    "audience.segments": "segments",
    "audience.lists": "lists",
    "audience.exclude_segments": "exclude_segments",
    "trigger": "entry",
}

# What a form field is called on the page (an error names it so).
FIELD_LABELS = {
    "message_id": "Message",
    "wait_kind": "Wait",
    "duration": "How long",
    "until": "Until",
    "wait_step": "Email step",
    "wait_for": "Wait for",
    "timeout": "But at most",
    "test_kind": "Ask whether the contact",
    "test_step": "Email step",
    "test_event": "Event",
    "min_minutes": "For at least (minutes)",
    "test_segment": "Segment",
    "test_field": "Field",
    "op": "Comparison",
    "test_value": "Value",
    "topic": "Lead topic",
    "list_id": "List",
    "field": "Field",
    "value": "New value",
    "type": "New step",
    "after": "Step",
    "branch": "On branch",
    "name": "Step",
    "entry": "Who enters",
    "segments": "Segments",
    "lists": "Lists",
    "exclude_segments": "But not members of",
    "trigger_event": "Event",
    "trigger_list": "List",
    "trigger_model": "Scoring model",
}


def text(form: FormData | Mapping[str, Any], name: str) -> str:
    """A form field's text, trimmed ("" when absent)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def record_id(value: str, *, field: str, what: str) -> int:
    """A chosen record's id; ValidationFailed (naming ``field``) when none was chosen."""
    if not value:
        raise ValidationFailed(f"choose {what}", field=field)
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
        raise ValidationFailed(f"{what} must be a whole number between 1 and {MAX_ID}", field=field)
    return int(value)


def _ids(form: FormData, name: str) -> list[int]:
    values = [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]
    return sorted({record_id(v.strip(), field=name, what=f"each of {name}") for v in values})


def _local(value: str, zone: str, field: str) -> str:
    """A ``datetime-local`` value, read in the viewer's zone, as UTC ISO text."""
    if not value:
        raise ValidationFailed("give the date and time to wait until", field=field)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"“{value[:40]}” is not a date and time", field=field) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(zone))
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def step_from_form(
    form: FormData | Mapping[str, Any], kind: str, *, zone: str = "UTC"
) -> dict[str, Any]:
    """The settings of a ``kind`` step from its form (``type`` included, no links).

    Raises:
        ValidationFailed: a field left empty or unreadable (naming the form field).
    """
    if kind not in design.STEP_TYPES:
        raise ValidationFailed("choose what the step does", field="type")
    step: dict[str, Any] = {"type": kind}
    if kind == "send_email":
        step["message_id"] = record_id(
            text(form, "message_id"), field="message_id", what="the message"
        )
    elif kind == "wait":
        how = text(form, "wait_kind") or "duration"
        if how == "duration":
            step["duration"] = design.parse_duration(text(form, "duration"), field="duration")
        elif how == "until":
            step["until"] = _local(text(form, "until"), zone, "until")
        elif how == "interaction":
            asked = text(form, "wait_step")
            if not asked:
                raise ValidationFailed("choose the email to wait for", field="wait_step")
            step["interaction"] = {"step": asked, "kind": text(form, "wait_for") or "opened"}
            step["timeout"] = design.parse_duration(text(form, "timeout"), field="timeout")
        else:
            raise ValidationFailed("choose how long to wait", field="wait_kind")
    elif kind == "condition":
        step["test"] = _test(form)
    elif kind == "create_lead":
        step["topic"] = text(form, "topic")
    elif kind in ("add_to_list", "remove_from_list"):
        step["list_id"] = record_id(text(form, "list_id"), field="list_id", what="the list")
    elif kind == "update_field":
        field = text(form, "field")
        if not field:
            raise ValidationFailed(
                "name the field: first_name, company … or custom.<name>", field="field"
            )
        step["field"] = field
        value = text(form, "value")
        step["value"] = value or None  # empty clears the field
    return step


def _test(form: FormData | Mapping[str, Any]) -> dict[str, Any]:
    asked = text(form, "test_kind")
    if asked in ("opened", "clicked"):
        email = text(form, "test_step")
        if not email:
            raise ValidationFailed("choose the email step the question is about", field="test_step")
        return {asked: email}
    if asked in ("registered", "attended"):
        event = record_id(text(form, "test_event"), field="test_event", what="the event")
        if asked == "registered":
            return {"registered": event}
        minutes = text(form, "min_minutes") or "0"
        if not (minutes.isascii() and minutes.isdigit()) or int(minutes) > 100_000:
            raise ValidationFailed(
                "the minutes are a whole number from 0 to 100000", field="min_minutes"
            )
        return {"attended": event, "min_minutes": int(minutes)}
    if asked == "segment":
        return {
            "segment": record_id(
                text(form, "test_segment"), field="test_segment", what="the segment"
            )
        }
    if asked == "field":
        field = text(form, "test_field")
        if not field:
            raise ValidationFailed(
                "name the field: first_name, company … or custom.<name>", field="test_field"
            )
        return {
            "field": field,
            "op": text(form, "op") or "equals",
            "value": text(form, "test_value"),
        }
    raise ValidationFailed("choose what the question asks", field="test_kind")


def _local_text(value: str, zone: str) -> str:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def values_of(step: Mapping[str, Any], *, zone: str = "UTC") -> dict[str, str]:
    """A stored step as the values of its form."""
    values = dict.fromkeys(STEP_FIELDS, "")
    kind = step.get("type")
    if kind == "send_email":
        values["message_id"] = str(step.get("message_id", ""))
    elif kind == "wait":
        if step.get("until"):
            values["wait_kind"], values["until"] = "until", _local_text(step["until"], zone)
        elif step.get("interaction"):
            values["wait_kind"] = "interaction"
            values["wait_step"] = str(step["interaction"].get("step", ""))
            values["wait_for"] = str(step["interaction"].get("kind", "opened"))
            values["timeout"] = design.duration_words(step.get("timeout"))
        else:
            values["wait_kind"] = "duration"
            values["duration"] = design.duration_words(step.get("duration"))
    elif kind == "condition":
        test = step.get("test") or {}
        for asked in ("opened", "clicked"):
            if test.get(asked):
                values["test_kind"], values["test_step"] = asked, str(test[asked])
        for asked in ("registered", "attended"):
            if test.get(asked):
                values["test_kind"], values["test_event"] = asked, str(test[asked])
        if test.get("segment"):
            values["test_kind"], values["test_segment"] = "segment", str(test["segment"])
        if test.get("field"):
            values["test_kind"], values["test_field"] = "field", str(test["field"])
            values["op"], values["test_value"] = (
                str(test.get("op", "equals")),
                str(test.get("value", "")),
            )
        values["min_minutes"] = str(test.get("min_minutes") or "")
    elif kind == "create_lead":
        values["topic"] = str(step.get("topic", ""))
    elif kind in ("add_to_list", "remove_from_list"):
        values["list_id"] = str(step.get("list_id", ""))
    elif kind == "update_field":
        values["field"] = str(step.get("field", ""))
        values["value"] = "" if step.get("value") is None else str(step["value"])
    return values


def defaults(kind: str) -> dict[str, str]:
    """A new step's form as it first shows."""
    values = dict.fromkeys(STEP_FIELDS, "")
    values.update(wait_kind="duration", duration="2 days", timeout="3 days", wait_for="opened")
    values.update(test_kind="opened", op="equals")
    if kind == "condition":
        values["min_minutes"] = "0"
    return values


def typed(form: FormData | Mapping[str, Any]) -> dict[str, str]:
    """What a step form held, to show it again beside an error."""
    return {name: text(form, name) for name in STEP_FIELDS}


# ------------------------------------------------------------------ who enters

ENTRIES = {"audience": "members of segments and lists", **design.TRIGGERS}


def audience_from_form(form: FormData) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(audience, trigger) from the Who enters form: segments and lists, or a trigger (an
    event and what people did, a list, or a scoring model people become sales-ready in);
    excluded segments either way."""
    entry = text(form, "entry") or "audience"
    exclude = _ids(form, "exclude_segments")
    if entry == "audience":
        return {
            "segments": _ids(form, "segments"),
            "lists": _ids(form, "lists"),
            "exclude_segments": exclude,
        }, None
    if entry in ("registered", "attended", "cancelled"):
        event = record_id(text(form, "trigger_event"), field="trigger_event", what="the event")
        return {"exclude_segments": exclude}, {entry: event}
    if entry == "added_to_list":
        chosen = record_id(text(form, "trigger_list"), field="trigger_list", what="the list")
        return {"exclude_segments": exclude}, {"added_to_list": chosen}
    if entry == "sales_ready":
        model = record_id(
            text(form, "trigger_model"), field="trigger_model", what="the scoring model"
        )
        return {"exclude_segments": exclude}, {"sales_ready": model}
    raise ValidationFailed("choose who enters the journey", field="entry")


def audience_values(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The Who enters form as a definition fills it."""
    audience = definition.get("audience") or {}
    trigger = definition.get("trigger") or {}
    entry = next((k for k in design.TRIGGERS if trigger.get(k)), "audience")
    return {
        "entry": entry,
        "segments": [int(i) for i in audience.get("segments") or []],
        "lists": [int(i) for i in audience.get("lists") or []],
        "exclude_segments": [int(i) for i in audience.get("exclude_segments") or []],
        "trigger_event": next(
            (int(trigger[k]) for k in ("registered", "attended", "cancelled") if trigger.get(k)),
            None,
        ),
        "trigger_list": int(trigger["added_to_list"]) if trigger.get("added_to_list") else None,
        "trigger_model": int(trigger["sales_ready"]) if trigger.get("sales_ready") else None,
    }


def audience_typed(form: FormData) -> dict[str, Any]:
    """What the Who enters form held, to show it again beside an error."""

    def ids(name: str) -> list[int]:
        return [
            int(v) for v in form.getlist(name) if isinstance(v, str) and v.isascii() and v.isdigit()
        ]

    def one(name: str) -> int | None:
        value = text(form, name)
        return int(value) if value.isascii() and value.isdigit() else None

    return {
        "entry": text(form, "entry") or "audience",
        "segments": ids("segments"),
        "lists": ids("lists"),
        "exclude_segments": ids("exclude_segments"),
        "trigger_event": one("trigger_event"),
        "trigger_list": one("trigger_list"),
        "trigger_model": one("trigger_model"),
    }
