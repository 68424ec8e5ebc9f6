"""The segment criteria builder of the web UI: rows of conditions read from a plain form,
turned into the criteria tree the segment service takes, and back.

"Match all / any of" and rows (a contact field, an event participation, a marketing list, or a
lead score of a scoring model).
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
SCORE_TEST_LABELS = {  # "The contact …" (a score row's test of the model's score)
    "gte": "scores at least",
    "lte": "scores at most",
    "between": "scores between",
    "grade": "has a grade among (comma-separated)",
    "sales_ready": "is sales-ready",
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


class CannotShow(Exception):
    """A criteria tree the rows cannot show exactly; the message says why."""


@dataclass
class Row:
    """One condition of the builder, as the form holds it (text in, typed JSON out)."""

    kind: str = "contact"  # contact, participation, list or score
    field: str = "country"  # a contact field, or "custom" with ``prop``
    prop: str = ""
    op: str = "equals"
    value: str = ""
    participation: str = "attended"
    event_id: str = ""  # "" is any event
    event_q: str = ""  # what the person typed to find the event (not part of the tree)
    min_minutes: str = ""  # attended for at least / at most, "" for no bound
    max_minutes: str = ""
    list_id: str = ""
    model_id: str = ""  # a scoring model (score rows)
    score_test: str = "gte"  # a key of SCORE_TEST_LABELS
    score_value: str = ""  # the score (at least / at most / between's low), or the grades
    score_high: str = ""  # between's high
    sales_ready: str = "true"  # "true" or "false"

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
        if self.kind == "score":
            return {"score": self._score_tree()}
        if self.kind == "list":
            list_id = _whole(self.list_id)
            return {"list": self.list_id if list_id is None else list_id}
        if self.kind == "participation":
            node: dict[str, Any] = {"participation": self.participation}
            if self.event_id:
                event_id = _whole(self.event_id)
                node["event"] = {"id": self.event_id if event_id is None else event_id}
            if self.participation == "attended":  # the only participation with a duration
                for key in ("min_minutes", "max_minutes"):
                    if text := getattr(self, key).strip():
                        node[key] = _number(text)
            return node
        name = f"custom.{self.prop.strip()}" if self.field == "custom" else self.field
        return {"contact": {name: {self.op: self._typed()}}}

    def _score_tree(self) -> dict[str, Any]:
        model_id = _whole(self.model_id)
        node: dict[str, Any] = {"model": self.model_id if model_id is None else model_id}
        low, high = _number(self.score_value.strip()), _number(self.score_high.strip())
        if self.score_test == "sales_ready":
            node["sales_ready"] = self.sales_ready != "false"
        elif self.score_test == "grade":
            grades = [part.strip() for part in self.score_value.split(",") if part.strip()]
            node["grade"] = {"in": grades}
        elif self.score_test == "between":
            node["score"] = {"between": [low, high]}
        else:
            node["score"] = {"lte" if self.score_test == "lte" else "gte": low}
        return node

    @classmethod
    def from_node(cls, node: Any) -> Row:
        """The row showing a criteria node (CannotShow says why there is none)."""
        if not isinstance(node, dict):
            raise CannotShow("a condition is not a JSON object")
        if set(node) & {"all", "any"}:
            raise CannotShow("rows cannot hold a group (all / any) inside another")
        if "not" in node:
            raise CannotShow("rows cannot say “not”")
        if set(node) == {"list"}:
            return cls(kind="list", list_id=_as_text(node["list"]))
        if set(node) == {"score"}:
            return cls._score(node["score"])
        if "participation" in node:
            return cls._participation(node)
        fields = node.get("contact")
        if set(node) != {"contact"} or not isinstance(fields, dict) or len(fields) != 1:
            raise CannotShow("a condition mixes contact fields with other tests")
        name, condition = next(iter(fields.items()))
        if isinstance(condition, dict) and len(condition) != 1:
            raise CannotShow(f"the {name} condition has {len(condition)} operators")
        op, value = (
            next(iter(condition.items())) if isinstance(condition, dict) else ("equals", condition)
        )
        if str(name).startswith("custom."):
            return cls(field="custom", prop=str(name)[7:], op=str(op), value=_as_text(value))
        return cls(field=str(name), op=str(op), value=_as_text(value))

    @classmethod
    def _score(cls, score: Any) -> Row:
        """A score node of one test: score at least / at most / between, grade is one of,
        or sales-ready (the round trip in ``Builder.from_tree`` checks the rest)."""
        if not isinstance(score, dict) or "model" not in score:
            raise CannotShow("a score condition names no scoring model")
        tests = sorted(set(score) - {"model"})
        if not tests:
            raise CannotShow(
                "a score condition names only its model; a row tests the score, the grade "
                "or sales-readiness"
            )
        if len(tests) > 1:
            raise CannotShow(f"a score condition tests {' and '.join(tests)}; a row tests one")
        row = cls(kind="score", model_id=_as_text(score["model"]))
        name, condition = tests[0], score[tests[0]]
        if name == "sales_ready" and isinstance(condition, bool):
            row.score_test, row.sales_ready = "sales_ready", _as_text(condition)
            return row
        if not isinstance(condition, dict) or len(condition) != 1:
            raise CannotShow(f"the score condition's {name} test is not one a row shows")
        op, value = next(iter(condition.items()))
        if name == "grade" and op == "in" and isinstance(value, list):
            row.score_test, row.score_value = "grade", _as_text(value)
        elif name == "score" and op in ("gte", "lte"):
            row.score_test, row.score_value = str(op), _as_text(value)
        elif name == "score" and op == "between" and isinstance(value, list) and len(value) == 2:
            row.score_test = "between"
            row.score_value, row.score_high = _as_text(value[0]), _as_text(value[1])
        else:
            raise CannotShow(f"the score condition's {name} test is not one a row shows")
        return row

    @classmethod
    def _participation(cls, node: dict[str, Any]) -> Row:
        extra = set(node) - {"participation", "event", "min_minutes", "max_minutes"}
        if extra:
            raise CannotShow(f"an event condition has {', '.join(sorted(extra))}")
        event = node.get("event")
        event_id: Any = None
        if event is not None:
            if not isinstance(event, dict) or set(event) != {"id"}:
                tested = ", ".join(sorted(event)) if isinstance(event, dict) else "its value"
                raise CannotShow(
                    f"an event condition tests the event's {tested}; rows pick one event"
                )
            event_id = event["id"]
            if isinstance(event_id, dict):
                if set(event_id) != {"equals"}:
                    raise CannotShow("an event condition names several events")
                event_id = event_id["equals"]
        return cls(
            kind="participation",
            participation=_as_text(node["participation"]),
            event_id=_as_text(event_id),
            min_minutes=_as_text(node.get("min_minutes")),
            max_minutes=_as_text(node.get("max_minutes")),
        )


@dataclass
class Builder:
    """The criteria part of the form: rows under all/any, or a JSON text (``json_only``,
    with ``reason`` saying why rows cannot show it)."""

    match: str = "all"
    rows: list[Row] = field(default_factory=list)
    json_only: bool = False
    text: str = ""  # the JSON as the person left it (json_only)
    reason: str = ""

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
        """Rows when they show ``tree`` exactly (checked by a round trip), else JSON only
        with the reason."""
        try:
            normal = normal_tree(tree)
            match = next(iter(normal))
            if len(normal[match]) > MAX_ROWS:
                raise CannotShow(f"the rows hold at most {MAX_ROWS} conditions")
            built = cls(match=match, rows=[Row.from_node(child) for child in normal[match]])
            if built.tree() != normal:
                raise CannotShow("the rows would change what these criteria mean")
        except CannotShow as exc:
            return cls(json_only=True, text=json.dumps(tree, indent=2), reason=str(exc))
        return built

    @classmethod
    def from_text(cls, text: str) -> Builder:
        try:
            tree = json.loads(text)
        except ValueError as exc:
            return cls(json_only=True, text=text, reason=f"this is not valid JSON ({exc})")
        return cls.from_tree(tree)


def normal_tree(tree: Any) -> Any:
    """``tree`` as the rows write it: one top-level all or any of single tests, with explicit
    ``equals`` (a contact node testing several fields is one row per field under all)."""
    if isinstance(tree, dict) and set(tree) in ({"all"}, {"any"}):
        match = next(iter(tree))
        nodes = tree[match]
        if not isinstance(nodes, list):
            raise CannotShow(f"“{match}” needs a list of conditions")
    else:
        match, nodes = "all", [tree]
    out: list[Any] = []
    for node in nodes:
        fields = node.get("contact") if isinstance(node, dict) else None
        if isinstance(fields, dict) and fields and set(node) == {"contact"}:
            if len(fields) > 1 and match == "any":
                raise CannotShow("a condition inside “any” tests several contact fields at once")
            for name, condition in fields.items():
                test = condition if isinstance(condition, dict) else {"equals": condition}
                out.append({"contact": {name: test}})
        elif isinstance(node, dict) and set(node) == {"score"} and isinstance(node["score"], dict):
            score = dict(node["score"])
            ready = score.get("sales_ready")
            if isinstance(ready, dict) and set(ready) == {"equals"}:
                score["sales_ready"] = ready["equals"]
            out.append({"score": score})
        elif isinstance(node, dict) and isinstance(node.get("event"), dict):
            event = dict(node["event"])
            if isinstance(event.get("id"), dict) and set(event["id"]) == {"equals"}:
                event["id"] = event["id"]["equals"]
            out.append({**node, "event": event})
        else:
            out.append(node)
    return {match: out}


def read_builder(form: FormData) -> Builder:
    if form.get("mode") == "json":
        return Builder(json_only=True, text=str(form.get("criteria_json") or ""))
    names = ("kind", "field", "prop", "op", "value", "participation", "event", "event_q")
    rows = []
    for i in range(min(as_int(form.get("row_count")) or 0, MAX_ROWS)):
        got = {name: str(form.get(f"row-{i}-{name}") or "").strip() for name in names}
        bounds = {k: str(form.get(f"row-{i}-{k}") or "").strip() for k in ("min", "max")}
        rows.append(
            Row(
                kind=got["kind"] or "contact",
                field=got["field"] or "country",
                prop=got["prop"],
                op=got["op"] or "equals",
                value=got["value"],
                participation=got["participation"] or "attended",
                event_id=got["event"],
                event_q=got["event_q"][:200],
                min_minutes=bounds["min"],
                max_minutes=bounds["max"],
                list_id=str(form.get(f"row-{i}-list") or "").strip(),
                model_id=str(form.get(f"row-{i}-model") or "").strip(),
                score_test=str(form.get(f"row-{i}-score_test") or "gte"),
                score_value=str(form.get(f"row-{i}-score_value") or "").strip(),
                score_high=str(form.get(f"row-{i}-score_high") or "").strip(),
                sales_ready="false" if form.get(f"row-{i}-sales_ready") == "false" else "true",
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
        return Builder(json_only=True, text=builder.json_text)
    if builder.json_only:
        return builder
    if action.startswith("add_") and len(builder.rows) < MAX_ROWS:
        kind = action[4:] if action[4:] in ("participation", "list", "score") else "contact"
        builder.rows.append(Row(kind=kind))
    elif action.startswith("remove_"):
        index = _whole(action[7:])
        if index is not None and index < len(builder.rows):
            builder.rows.pop(index)
    for row in builder.rows:
        if row.op not in row.ops:
            row.op = row.ops[0]
        if row.score_test not in SCORE_TEST_LABELS:
            row.score_test = "gte"
    return builder
