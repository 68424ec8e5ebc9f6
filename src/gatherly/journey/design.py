"""The journey designer: add, change and remove the steps of a definition's tree, choose who
enters, and show the tree as rows a person reads (issue 16).

Pure functions on the JSON shape of ``journey.definition`` (see ``journey.definition``):
each returns a NEW definition with the edit made, and raises ValidationFailed, naming the
field, for an edit that cannot be made. Saving goes through ``service.update_journey`` as
any other change does, so a running journey refuses these edits with its usual reason.

    >>> d, name = add_step({}, after=None, step={"type": "wait", "duration": "P2D"})
    >>> name, d["start"]
    ('wait-1', 'wait-1')
    >>> d, lead = add_step(d, after="wait-1", step={"type": "create_lead", "topic": "Sales"})
    >>> [row.summary for row in tree(d)]
    ['Wait 2 days', 'Create a lead: Sales']
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gatherly.core.exceptions import ValidationFailed
from gatherly.journey import definition as jd

STEP_TYPES = {
    "send_email": "Send an email",
    "wait": "Wait",
    "condition": "Ask a question (yes / no)",
    "create_lead": "Create a lead",
    "add_to_list": "Add to a list",
    "remove_from_list": "Remove from a list",
    "update_field": "Update a field",
    "end": "End the path",
}
BRANCHES = ("next", "yes", "no")
LINKS = BRANCHES
MAX_STEPS = 200
# Names the designer gives new steps: <prefix>-<n>, within jd.StepId's pattern.
PREFIX = {
    "send_email": "email",
    "wait": "wait",
    "condition": "question",
    "create_lead": "lead",
    "add_to_list": "add-to-list",
    "remove_from_list": "remove-from-list",
    "update_field": "update",
    "end": "end",
}
TEST_KINDS = {
    "opened": "opened the email of an earlier step",
    "clicked": "clicked in the email of an earlier step",
    "registered": "registered for an event",
    "attended": "attended an event",
    "segment": "is in a segment",
    "field": "a contact field",
}
OPS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "empty": "is empty",
    "not_empty": "is not empty",
}
WAIT_KINDS = {
    "duration": "for a time",
    "until": "until a date and time",
    "interaction": "until they open or click an earlier email (or a time runs out)",
}
TRIGGERS = {
    "registered": "register for an event",
    "attended": "attend an event",
    "cancelled": "cancel their registration for an event",
    "added_to_list": "are added to a list",
    "sales_ready": "become sales-ready in a scoring model",
}
# What a setting is called in a sentence ("the duration must be …").
LABELS = {
    "message_id": "the message",
    "list_id": "the list",
    "duration": "the duration",
    "until": "the date and time",
    "timeout": "the time to wait at most",
    "interaction": "the email to wait for",
    "interaction.step": "the email to wait for",
    "interaction.kind": "what to wait for",
    "topic": "the topic",
    "field": "the field",
    "value": "the value",
    "test": "the question",
    "test.opened": "the email",
    "test.clicked": "the email",
    "test.registered": "the event",
    "test.attended": "the event",
    "test.segment": "the segment",
    "test.min_minutes": "the minutes",
    "test.field": "the field",
    "test.op": "the comparison",
    "test.value": "the value",
}

Names = Mapping[tuple[str, int], str]
"""Names of the records a definition names, by ("message" | "list" | "segment" | "event",
id): the page fills it with what the viewer may read; the others show by number."""

_STEP: TypeAdapter[Any] = TypeAdapter(jd.Step)
_AUDIENCE = TypeAdapter(jd.Audience)
_TRIGGER = TypeAdapter(jd.Trigger)
_SPAN = TypeAdapter(timedelta)


# ------------------------------------------------------------------ helpers


def _copy(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    new = copy.deepcopy(dict(definition or {}))
    new["steps"] = dict(new.get("steps") or {})
    return new


def _missing(name: str, field: str = "name") -> ValidationFailed:
    return ValidationFailed(f"the journey has no step “{name}”", field=field)


def asks(step: Mapping[str, Any]) -> str | None:
    """The email step a condition (opened / clicked) or a wait for an interaction asks
    about, if any."""
    if step.get("type") == "condition":
        test = step.get("test") or {}
        return test.get("opened") or test.get("clicked")
    if step.get("type") == "wait":
        return (step.get("interaction") or {}).get("step")
    return None


def _said(error: Mapping[str, Any]) -> str:
    """A validator's complaint about a value, in words."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "")
        if isinstance(bound, timedelta) or str(bound).endswith("seconds"):
            return "must be longer than nothing and at most 3650 days"
        words = {
            "greater_than": "more than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }
        return f"must be {words[kind]} {bound}"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the choices offered')}"
    if kind == "extra_forbidden":
        return "is no setting of this kind of step"
    if kind.startswith(("datetime", "timezone")):
        return "is not a date and time with its zone (2026-03-31T09:00:00Z)"
    if kind.startswith(("time_delta", "timedelta")):
        return "is not a duration (2 days, 6 hours, P2D)"
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


_WHOLE = {"condition": "test", "update_field": "field"}  # whose checks name a field


def _checked(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A step's settings, validated as the definition validates them (links aside)."""
    kind = settings.get("type")
    if kind not in STEP_TYPES:
        raise ValidationFailed(
            "choose what the step does: " + ", ".join(STEP_TYPES.values()).lower(), field="type"
        )
    try:
        parsed = _STEP.validate_python(dict(settings))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if loc and loc[0] in jd.TAGS:
            del loc[0]  # the step type the union chose, not a field
        where = ".".join(loc) or _WHOLE.get(str(kind), "step")
        said = _said(first)
        if first["type"] in ("value_error", "assertion_error") or not loc:
            raise ValidationFailed(said, field=where) from None
        raise ValidationFailed(f"{LABELS.get(where, where)} {said}", field=where) from None
    out: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True)
    return out


def _parents(steps: Mapping[str, Any], name: str) -> list[tuple[str, str]]:
    """(step, link) of every link that leads to ``name``."""
    return [
        (other, link) for other, step in steps.items() for link in LINKS if step.get(link) == name
    ]


def _emails_before(definition: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """For each step reached from the start: the email steps before it on its path."""
    steps = definition.get("steps") or {}
    found: dict[str, tuple[str, ...]] = {}
    start = definition.get("start")
    stack: list[tuple[str, tuple[str, ...]]] = (
        [(str(start), ())] if isinstance(start, str) and start in steps else []
    )
    while stack:
        name, before = stack.pop()
        if name in found:
            continue  # a loop or a merge (the check reports it)
        found[name] = before
        step = steps[name]
        after = before + ((name,) if step.get("type") == "send_email" else ())
        stack.extend((step[link], after) for link in LINKS if step.get(link) in steps)
    return found


def _check_asks(definition: Mapping[str, Any], name: str) -> None:
    """A question or wait about an email must name an email step before it."""
    step = definition["steps"][name]
    asked = asks(step)
    if asked is None:
        return
    before = _emails_before(definition)
    if name not in before:
        return  # not reached from the start: the check says so
    if asked not in before[name]:
        where = "test" if step.get("type") == "condition" else "interaction.step"
        raise ValidationFailed(
            f"“{asked}” is no email step before this one: choose an email sent earlier on its path",
            field=where,
        )


def _new_name(steps: Mapping[str, Any], kind: str) -> str:
    prefix = PREFIX[kind]
    n = 1 + sum(1 for other in steps if other.startswith(f"{prefix}-"))
    while f"{prefix}-{n}" in steps:
        n += 1
    return f"{prefix}-{n}"


def _with_step_after(
    steps: Mapping[str, Any], after: str | None, name: str, step: dict[str, Any]
) -> dict[str, Any]:
    """The steps with ``name`` placed right after ``after`` (first when None): the YAML
    reads in the order of the path."""
    out: dict[str, Any] = {name: step} if after is None else {}
    for other, value in steps.items():
        out[other] = value
        if other == after:
            out[name] = step
    return out


# ------------------------------------------------------------------ edits


def add_step(
    definition: Mapping[str, Any] | None,
    *,
    after: str | None,
    branch: str = "next",
    step: Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """A new step after ``after`` (on its ``next``, or a condition's ``yes`` / ``no``
    branch; None: at the start), taking over what followed there: a new condition puts it
    on its ``yes`` branch, any other step on its ``next``. Returns the new definition and
    the name given to the step (``email-2``, ``wait-1`` …).

    Raises:
        ValidationFailed: no such step (``after``), a branch the step does not have
            (``branch``), a step after an end step, an end step where the path goes on,
            a bad setting (named: ``duration``, ``test.min_minutes`` …).
    """
    new = _copy(definition)
    steps = new["steps"]
    if len(steps) >= MAX_STEPS:
        raise ValidationFailed(f"a journey has at most {MAX_STEPS} steps", field="type")
    settings = _checked({k: v for k, v in step.items() if k not in LINKS})
    if after is None:
        if branch != "next":
            raise ValidationFailed("the first step has no yes or no branch", field="branch")
        following = new.get("start")
    else:
        parent = steps.get(after)
        if parent is None:
            raise _missing(after, "after")
        kind = parent.get("type")
        if kind == "end":
            raise ValidationFailed(f"“{after}” ends its path: nothing can follow it", field="after")
        if kind == "condition" and branch not in ("yes", "no"):
            raise ValidationFailed(
                f"choose the branch of “{after}” the step goes on: yes or no", field="branch"
            )
        if kind != "condition" and branch != "next":
            raise ValidationFailed(
                f"“{after}” has no yes or no branch: the step comes next after it",
                field="branch",
            )
        following = parent.get(branch)
    if following and following not in steps:
        following = None  # a dangling link (written by hand) is replaced, not kept
    if following and settings["type"] == "end":
        raise ValidationFailed(
            "an end step goes only where a path ends; here the path goes on",
            field="type",
        )
    name = _new_name(steps, settings["type"])
    if following:
        settings["yes" if settings["type"] == "condition" else "next"] = following
    new["steps"] = _with_step_after(steps, after, name, settings)
    if after is None:
        new["start"] = name
    else:
        new["steps"][after][branch] = name
    _check_asks(new, name)
    return new, name


def edit_step(
    definition: Mapping[str, Any] | None, *, name: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The step ``name`` with new settings (``fields`` replace its settings: a message, a
    duration, a question …); its type and its links stay.

    Raises:
        ValidationFailed: no such step (``name``), another type (``type``), a link
            (``next``, ``yes``, ``no``: the designer links steps by adding and removing),
            a bad setting (named).
    """
    new = _copy(definition)
    steps = new["steps"]
    old = steps.get(name)
    if old is None:
        raise _missing(name)
    kind = fields.get("type", old.get("type"))
    if kind != old.get("type"):
        raise ValidationFailed(
            "a step keeps what it does: remove it and add a step of the other kind",
            field="type",
        )
    for link in LINKS:
        if link in fields:
            raise ValidationFailed(
                "links change by adding and removing steps, not by editing one", field=link
            )
    settings = _checked({**fields, "type": kind})
    steps[name] = {**settings, **{k: old[k] for k in LINKS if old.get(k)}}
    _check_asks(new, name)
    return new


def _below(steps: Mapping[str, Any], name: str) -> list[str]:
    """The steps on the branches of ``name``, in path order (never ``name`` itself, nor a
    step on the way to it, should a hand-written definition loop back)."""
    ancestors: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for parent, _link in _parents(steps, current):
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    found: list[str] = []
    stack = [steps[name].get(link) for link in ("no", "yes", "next")]
    while stack:
        current = stack.pop()
        if not current or current not in steps or current == name:
            continue
        if current in ancestors or current in found:
            continue
        found.append(current)
        stack.extend(steps[current].get(link) for link in ("no", "yes", "next"))
    return found


def remove_step(
    definition: Mapping[str, Any] | None, *, name: str
) -> tuple[dict[str, Any], list[str]]:
    """The definition without ``name``: a step's parent (or the start) now leads to what
    followed it; a condition goes with everything on both its branches. Returns the new
    definition and the names removed (``name`` first).

    Raises:
        ValidationFailed: no such step, or a step that stays asks about an email step
            that goes (change or remove that step first).
    """
    new = _copy(definition)
    steps = new["steps"]
    step = steps.get(name)
    if step is None:
        raise _missing(name)
    if step.get("type") == "condition":
        removed = [name, *_below(steps, name)]
        following = None
    else:
        removed = [name]
        following = step.get("next") if step.get("next") in steps else None
    gone = set(removed)
    for other, value in steps.items():
        asked = asks(value)
        if other not in gone and asked in gone:
            raise ValidationFailed(
                f"“{other}” asks about the email of “{asked}”: change or remove “{other}” first",
                field="name",
            )
    for parent, link in _parents(steps, name):
        if following:
            steps[parent][link] = following
        else:
            del steps[parent][link]
    if new.get("start") == name:
        if following:
            new["start"] = following
        else:
            new.pop("start", None)
    for other in removed:
        del steps[other]
    for value in steps.values():  # what a hand-written merge still pointed at
        for link in LINKS:
            if value.get(link) in gone:
                del value[link]
    if new.get("start") in gone:
        new.pop("start")
    return new, removed


def set_audience(
    definition: Mapping[str, Any] | None,
    *,
    audience: Mapping[str, Any],
    trigger: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Who enters: the members of segments and lists (but for excluded segments'), or, with
    a ``trigger``, people as they register, attend, cancel or are added to a list. The
    steps stay.

    Raises:
        ValidationFailed: a bad audience or trigger (``audience.segments``, ``trigger``).
    """
    new = _copy(definition)
    try:
        checked = _AUDIENCE.validate_python(dict(audience))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["audience", *(str(p) for p in first["loc"][:1])])
        raise ValidationFailed(f"{where.split('.')[-1]} {_said(first)}", field=where) from None
    new["audience"] = checked.model_dump(mode="json")
    if trigger is None:
        new.pop("trigger", None)
        return new
    try:
        fired = _TRIGGER.validate_python(dict(trigger))
    except ValidationError as exc:
        raise ValidationFailed(_said(exc.errors()[0]), field="trigger") from None
    new["trigger"] = fired.model_dump(mode="json", exclude_none=True)
    return new


# ------------------------------------------------------------------ durations


_UNITS = {
    "w": 7 * 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
}
_PART = re.compile(r"(\d{1,6})\s*([a-z]+)")
_WORDS = re.compile(r"\s*\d{1,6}\s*[a-z]+(\s*(,|and)?\s*\d{1,6}\s*[a-z]+)*\s*")


def parse_duration(text: str, *, field: str = "duration") -> str:
    """A duration written in words (``2 days``, ``1 day 6 hours``, ``90 min``, ``3w``) or
    in ISO 8601 (``P2D``, ``PT6H``), as the ISO text a definition stores (``P2D``).

    Raises:
        ValidationFailed: neither, nothing, or more than 3650 days (naming ``field``).
    """
    said = " ".join(text.split()).lower()
    hint = "write it as 2 days, 6 hours, 1 day 12 hours or P2D"
    if not said:
        raise ValidationFailed(f"give a duration: {hint}", field=field)
    span: timedelta | None = None
    if len(said) > 60:
        span = None
    elif _WORDS.fullmatch(said):
        parts = _PART.findall(said)
        if all(unit in _UNITS for _n, unit in parts):
            span = timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in parts))
    elif said.startswith("p"):
        try:
            span = _SPAN.validate_python(said.upper())
        except ValidationError:
            span = None
    if span is None:
        raise ValidationFailed(f"“{text.strip()[:40]}” is no duration: {hint}", field=field)
    if span <= timedelta(0) or span > timedelta(days=3650):
        raise ValidationFailed(
            "a duration is longer than nothing and at most 3650 days", field=field
        )
    return str(_SPAN.dump_python(span, mode="json"))


def duration_words(value: str | timedelta | None) -> str:
    """A stored duration (``P1DT6H``) as people say it: ``1 day 6 hours``."""
    if value is None:
        return ""
    try:
        span = value if isinstance(value, timedelta) else _SPAN.validate_python(value)
    except ValidationError:
        return str(value)
    seconds = int(span.total_seconds())
    if seconds and seconds % (7 * 86400) == 0:
        weeks = seconds // (7 * 86400)
        return f"{weeks} week{'s' if weeks != 1 else ''}"
    words = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            words.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(words) or "0 minutes"


# ------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class Row:
    """One step as the designer shows it."""

    name: str
    type: str
    step: dict[str, Any]
    summary: str
    depth: int  # 0 on the main path, 1 on a condition's branch, …
    branch: str | None  # "yes" / "no": the first step of that branch of the condition above
    after: str | None  # the step it follows (None: the start, or not reached)
    link: str  # how it is reached: "start", "next", "yes", "no" ("unreached": it is not)
    emails_before: tuple[str, ...]  # the email steps before it on its path
    below: int = 0  # a condition: how many steps its branches hold (removed with it)

    @property
    def reached(self) -> bool:
        return self.link != "unreached"


@dataclass
class Node:
    """A row and, for a condition, its two branches (each a path of nodes)."""

    row: Row
    branches: list[tuple[str, list[Node]]] = field(default_factory=list)

    def count(self) -> int:
        """This step and every step on its branches."""
        return 1 + sum(n.count() for _label, path in self.branches for n in path)


def _when(value: Any) -> str:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M UTC") if at.utcoffset() == timedelta(0) else str(value)


def _named(names: Names, kind: str, record_id: Any, fallback: str) -> str:
    found = names.get((kind, int(record_id))) if isinstance(record_id, int) else None
    return f"“{found}”" if found else f"{fallback} #{record_id}"


def summary(step: Mapping[str, Any], names: Names | None = None) -> str:
    """A step in one line: ``Send email “Webinar recording”``, ``Wait 2 days``, ``If opened
    “invite” — yes / no``, ``Create a lead: Follow-up``, ``Add to list #4``, ``Set
    custom.x to done``, ``End``."""
    names = names or {}
    kind = step.get("type")
    if kind == "send_email":
        return f"Send email {_named(names, 'message', step.get('message_id'), 'message')}"
    if kind == "wait":
        if step.get("duration"):
            return f"Wait {duration_words(step['duration'])}"
        if step.get("until"):
            return f"Wait until {_when(step['until'])}"
        interaction = step.get("interaction") or {}
        did = "clicks in" if interaction.get("kind") == "clicked" else "opens"
        limit = duration_words(step.get("timeout"))
        return f"Wait until the contact {did} “{interaction.get('step')}” (at most {limit})"
    if kind == "condition":
        return f"If {_question(step.get('test') or {}, names)} — yes / no"
    if kind == "create_lead":
        topic = str(step.get("topic") or "").strip()
        return f"Create a lead: {topic}" if topic else "Create a lead"
    if kind in ("add_to_list", "remove_from_list"):
        which = _named(names, "list", step.get("list_id"), "list")
        word = "Add to" if kind == "add_to_list" else "Remove from"
        return f"{word} list {which}" if which.startswith("“") else f"{word} {which}"
    if kind == "update_field":
        value = step.get("value")
        if value is None:
            return f"Clear {step.get('field')}"
        return f"Set {step.get('field')} to {value}"
    if kind == "end":
        return "End"
    return str(kind)


def _question(test: Mapping[str, Any], names: Names) -> str:
    if test.get("opened"):
        return f"opened “{test['opened']}”"
    if test.get("clicked"):
        return f"clicked in “{test['clicked']}”"
    if test.get("registered"):
        return f"registered for {_named(names, 'event', test['registered'], 'event')}"
    if test.get("attended"):
        minutes = int(test.get("min_minutes") or 0)
        least = f" for at least {minutes} minutes" if minutes else ""
        return f"attended {_named(names, 'event', test['attended'], 'event')}{least}"
    if test.get("segment"):
        which = _named(names, "segment", test["segment"], "segment")
        return f"in segment {which}" if which.startswith("“") else f"in {which}"
    if test.get("field"):
        op = str(test.get("op") or "equals")
        if op in ("empty", "not_empty"):
            return f"{test['field']} {OPS[op]}"
        return f"{test['field']} {OPS.get(op, op)} “{test.get('value', '')}”"
    return "…"


def outline(definition: Mapping[str, Any] | None, names: Names | None = None) -> list[Node]:
    """The tree as nested nodes: the path from the start, each condition holding its yes
    and no paths; then, as paths of their own, steps no path from the start reaches."""
    steps: Mapping[str, Any] = (definition or {}).get("steps") or {}
    names = names or {}
    seen: set[str] = set()

    def path(
        first: str | None,
        depth: int,
        after: str | None,
        link: str,
        emails: tuple[str, ...],
    ) -> list[Node]:
        nodes: list[Node] = []
        current = first
        while current and current in steps and current not in seen:
            seen.add(current)
            step = steps[current]
            row = Row(
                name=current,
                type=str(step.get("type")),
                step=dict(step),
                summary=summary(step, names),
                depth=depth,
                branch=link if link in ("yes", "no") else None,
                after=after,
                link=link,
                emails_before=emails,
            )
            if step.get("type") == "send_email":
                emails = (*emails, current)
            if step.get("type") == "condition":
                node = Node(row)
                node.branches = [
                    (label, path(step.get(label), depth + 1, current, label, emails))
                    for label in ("yes", "no")
                ]
                node.row = replace(row, below=node.count() - 1)
                nodes.append(node)
                break
            nodes.append(Node(row))
            after, link, current = current, "next", step.get("next")
        return nodes

    found = path((definition or {}).get("start"), 0, None, "start", ())
    for name in steps:
        if name not in seen:
            found += path(name, 0, None, "unreached", ())
    return found


def tree(definition: Mapping[str, Any] | None, names: Names | None = None) -> list[Row]:
    """The steps in path order (each condition's yes branch, then its no branch), each with
    its depth, the branch it hangs on and a one-line summary; steps no path from the start
    reaches come last (``reached`` false)."""
    return flatten(outline(definition, names))


def flatten(nodes: list[Node]) -> list[Row]:
    """The rows of an :func:`outline`, in path order (a condition's yes path, then its no)."""
    rows: list[Row] = []
    for node in nodes:
        rows.append(node.row)
        for _label, path in node.branches:
            rows += flatten(path)
    return rows


def references(definition: Mapping[str, Any] | None) -> dict[str, set[int]]:
    """The records a definition names, by kind (``message``, ``list``, ``segment``,
    ``event``): what a page looks up to name them."""
    found: dict[str, set[int]] = {
        "message": set(),
        "list": set(),
        "segment": set(),
        "event": set(),
        "model": set(),
    }
    definition = definition or {}
    audience = definition.get("audience") or {}
    found["segment"].update(audience.get("segments") or [])
    found["segment"].update(audience.get("exclude_segments") or [])
    found["list"].update(audience.get("lists") or [])
    trigger = definition.get("trigger") or {}
    found["event"].update(
        trigger[k] for k in ("registered", "attended", "cancelled") if trigger.get(k)
    )
    if trigger.get("added_to_list"):
        found["list"].add(trigger["added_to_list"])
    if trigger.get("sales_ready"):
        found["model"].add(trigger["sales_ready"])
    for step in (definition.get("steps") or {}).values():
        if step.get("message_id"):
            found["message"].add(step["message_id"])
        if step.get("list_id"):
            found["list"].add(step["list_id"])
        test = step.get("test") or {}
        found["event"].update(test[k] for k in ("registered", "attended") if test.get(k))
        if test.get("segment"):
            found["segment"].add(test["segment"])
    return {kind: {i for i in ids if isinstance(i, int)} for kind, ids in found.items()}


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def audience_summary(definition: Mapping[str, Any] | None, names: Names | None = None) -> str:
    """Who enters, in a sentence: ``Members of segment “Attendees” and list #4, but not
    of segment “Staff”.``, or ``People who attend “Autumn launch” (as the Teams sync
    records it).``"""
    names = names or {}
    definition = definition or {}
    audience = definition.get("audience") or {}
    trigger = definition.get("trigger") or {}

    def named(kind: str, ids: list[Any]) -> list[str]:
        out = []
        for i in ids:
            shown = _named(names, kind, i, kind)
            out.append(f"{kind} {shown}" if shown.startswith("“") else shown)
        return out

    if any(trigger.get(k) for k in TRIGGERS):
        kind = next(k for k in TRIGGERS if trigger.get(k))
        if kind == "added_to_list":
            said = f"People added to {named('list', [trigger[kind]])[0]} after it goes live"
        elif kind == "sales_ready":
            model = _named(names, "model", trigger[kind], "scoring model")
            said = f"People whose score in {model} becomes sales-ready after it goes live"
        else:
            verb = {"registered": "register for", "attended": "attend", "cancelled": "cancel"}
            event = _named(names, "event", trigger[kind], "event")
            said = f"People who {verb[kind]} {event} (as the Teams sync records it)"
    else:
        members = named("segment", audience.get("segments") or []) + named(
            "list", audience.get("lists") or []
        )
        if not members:
            return "Nobody yet: choose segments or lists, or a trigger."
        said = f"Members of {_and(members)}"
    excluded = named("segment", audience.get("exclude_segments") or [])
    if excluded:
        said += f", but not members of {_and(excluded)}"
    return said + "."
