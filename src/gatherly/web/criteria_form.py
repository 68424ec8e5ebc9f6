"""The segment criteria builder of the web UI: rows of conditions read from a plain form,
turned into the criteria tree the segment service takes, and back.

"Match all / any of" and rows (a contact field, an event participation, or a marketing list).
Buttons named ``action`` add or remove rows and re-render the form without saving. A tree the
rows cannot show exactly (nested groups, several fields in one node …) is edited as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.segment import criteria as crit

MAX_ROWS = 50

FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "job_title": "Job title",
    "phone": "Phone",
    "country": "Country (ISO code)",
    "origin": "Origin",
    "created_at": "Created",
    "modified_at": "Modified",
    "business_unit_id": "Business unit id",
    "id": "Contact id",
    "custom": "Custom property…",
}
OP_LABELS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "in": "is one of (comma-separated)",
    "not_in": "is none of (comma-separated)",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "empty": "is empty (true/false)",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between (low, high)",
    "before": "is before",
    "after": "is on or after",
    "on": "is on the day",
    "in_last_days": "in the last N days",
    "in_next_days": "in the next N days",
    "more_than_days_ago": "more than N days ago",
}
PARTICIPATION_LABELS = {
    "registered": "registered for",
    "attended": "attended",
    "cancelled": "cancelled their registration for",
    "not_attended": "registered for but did not attend",
}

# ---------------------------------------------------------------- the criteria builder


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    return "" if value is None else str(value)


def _whole(text: str) -> int | None:
    """``text`` as a whole number when it is ASCII digits, else None: ``"²".isdigit()`` holds
    but ``int`` refuses it, as it does thousands of digits (a number too large for an id is
    left to the service, which refuses it by name)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 30 else None


def _number(text: str) -> Any:
    """A typed number when the text is one; otherwise the text, for the service to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@dataclass
class Row:
    """One condition of the builder, as the form holds it (text in, typed JSON out)."""

    kind: str = "contact"  # contact, participation or list
    field: str = "country"  # a contact field, or "custom" with ``prop``
    prop: str = ""
    op: str = "equals"
    value: str = ""
    participation: str = "attended"
    event_id: str = ""  # "" is any event
    list_id: str = ""

    @property
    def field_kind(self) -> str:
        if self.field == "custom":
            return "custom"
        spec = crit.CONTACT_FIELDS.get(self.field)
        return spec.kind if spec else "string"

    @property
    def ops(self) -> tuple[str, ...]:
        """The operators that apply to this row's field."""
        if self.field == "custom":
            return crit.CUSTOM_OPS
        spec = crit.CONTACT_FIELDS.get(self.field)
        return spec.ops if spec else crit.STRING_OPS

    def _scalar(self, text: str) -> Any:
        return _number(text) if self.field_kind == "number" else text

    def _typed(self) -> Any:
        text = self.value.strip()
        if self.op == "empty":
            return {"": True, "true": True, "yes": True, "false": False, "no": False}.get(
                text.lower(), text
            )
        if self.op in ("in", "not_in", "between"):
            return [self._scalar(part.strip()) for part in text.split(",") if part.strip()]
        if self.op in crit.RELATIVE_OPS:
            return _number(text)
        if self.field_kind == "custom" and self.op in ("gt", "gte", "lt", "lte"):
            return _number(text)
        return self._scalar(text)

    def tree(self) -> dict[str, Any]:
        """This row as a criteria node."""
        if self.kind == "list":
            list_id = _whole(self.list_id)
            return {"list": self.list_id if list_id is None else list_id}
        if self.kind == "participation":
            node: dict[str, Any] = {"participation": self.participation}
            if self.event_id:
                event_id = _whole(self.event_id)
                node["event"] = {"id": self.event_id if event_id is None else event_id}
            return node
        name = f"custom.{self.prop.strip()}" if self.field == "custom" else self.field
        return {"contact": {name: {self.op: self._typed()}}}

    @classmethod
    def from_node(cls, node: Any) -> Row | None:
        """The row showing a criteria node, or None when a row cannot show it."""
        if not isinstance(node, dict):
            return None
        if set(node) == {"list"}:
            return cls(kind="list", list_id=_as_text(node["list"]))
        if "participation" in node and set(node) <= {"participation", "event"}:
            event = node.get("event")
            event_id = event.get("id") if isinstance(event, dict) and set(event) == {"id"} else None
            if event is not None and event_id is None:
                return None
            return cls(
                kind="participation",
                participation=_as_text(node["participation"]),
                event_id=_as_text(event_id),
            )
        fields = node.get("contact")
        if set(node) != {"contact"} or not isinstance(fields, dict) or len(fields) != 1:
            return None
        name, condition = next(iter(fields.items()))
        op, value = (
            next(iter(condition.items()))
            if isinstance(condition, dict) and len(condition) == 1
            else ("equals", condition)
        )
        if str(name).startswith("custom."):
            return cls(field="custom", prop=str(name)[7:], op=str(op), value=_as_text(value))
        return cls(field=str(name), op=str(op), value=_as_text(value))


@dataclass
class Builder:
    """The criteria part of the form: rows under all/any, or a JSON text (``json_only``)."""

    match: str = "all"
    rows: list[Row] = field(default_factory=lambda: [Row()])
    json_only: bool = False
    text: str = ""  # the JSON as the person left it (json_only)

    def tree(self) -> Any:
        """The criteria tree (ValidationFailed when the JSON text does not parse)."""
        if not self.json_only:
            return {self.match: [row.tree() for row in self.rows]}
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise ValidationFailed(f"criteria: not valid JSON ({exc})", field="criteria") from exc

    @property
    def json_text(self) -> str:
        """The tree as the "Advanced (JSON)" box shows it."""
        return self.text if self.json_only else json.dumps(self.tree(), indent=2)

    @classmethod
    def from_tree(cls, tree: Any) -> Builder:
        """Rows when they show ``tree`` exactly (checked by a round trip), else JSON only."""
        top = tree if isinstance(tree, dict) and set(tree) in ({"all"}, {"any"}) else None
        match = next(iter(top)) if top else "all"
        children = top[match] if top else [tree]
        if isinstance(children, list) and children and len(children) <= MAX_ROWS:
            rows = [Row.from_node(child) for child in children]
            if all(rows):
                built = cls(match=match, rows=[r for r in rows if r])
                if built.tree() == normal_tree(tree):
                    return built
        return cls(json_only=True, rows=[], text=json.dumps(tree, indent=2))

    @classmethod
    def from_text(cls, text: str) -> Builder:
        try:
            tree = json.loads(text)
        except ValueError:
            return cls(json_only=True, rows=[], text=text)
        return cls.from_tree(tree)


def normal_tree(tree: Any) -> Any:
    """``tree`` as the rows write it: a top-level all, and explicit ``equals``."""
    top = tree if isinstance(tree, dict) and set(tree) in ({"all"}, {"any"}) else {"all": [tree]}
    match = next(iter(top))
    out = []
    for node in top[match]:
        if (
            isinstance(node, dict)
            and set(node) == {"contact"}
            and isinstance(node["contact"], dict)
        ):
            node = {
                "contact": {
                    k: v if isinstance(v, dict) else {"equals": v}
                    for k, v in node["contact"].items()
                }
            }
        out.append(node)
    return {match: out}


def read_builder(form: FormData) -> Builder:
    if form.get("mode") == "json":
        return Builder(json_only=True, rows=[], text=str(form.get("criteria_json") or ""))
    rows = []
    for i in range(min(as_int(form.get("row_count")) or 0, MAX_ROWS)):
        got = {
            name: str(form.get(f"row-{i}-{name}") or "").strip()
            for name in ("kind", "field", "prop", "op", "value", "participation", "event", "list")
        }
        rows.append(
            Row(
                kind=got["kind"] or "contact",
                field=got["field"] or "country",
                prop=got["prop"],
                op=got["op"] or "equals",
                value=got["value"],
                participation=got["participation"] or "attended",
                event_id=got["event"],
                list_id=got["list"],
            )
        )
    match = "any" if form.get("match") == "any" else "all"
    return Builder(match=match, rows=rows)


def as_int(value: Any) -> int | None:
    number = _whole(str(value or "").strip())
    return number if number is not None and 0 < number <= MAX_ID else None


def apply_action(builder: Builder, action: str) -> Builder:
    """A builder button: add or remove a row, or switch between the rows and the JSON."""
    if action == "apply_json":
        return Builder.from_text(builder.json_text)
    if action == "edit_json":
        return Builder(json_only=True, rows=[], text=builder.json_text)
    if builder.json_only:
        return builder
    if action.startswith("add_") and len(builder.rows) < MAX_ROWS:
        kind = action[4:] if action[4:] in ("participation", "list") else "contact"
        builder.rows.append(Row(kind=kind))
    elif action.startswith("remove_"):
        index = _whole(action[7:])
        if index is not None and index < len(builder.rows):
            builder.rows.pop(index)
    for row in builder.rows:
        if row.op not in row.ops:
            row.op = row.ops[0]
    return builder
