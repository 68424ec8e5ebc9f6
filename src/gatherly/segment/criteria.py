"""Segment criteria: a JSON tree, validated with errors that point at the bad node, and
compiled to one SQL predicate on ``contact`` (SPEC B5, T6).

The language (docs/segments.md has the full reference)::

    {"all": [node, …]}  {"any": [node, …]}  {"not": node}
    {"contact": {"country": {"in": ["JP", "DE"]}, "custom.tier": "gold"}}
    {"participation": "attended", "event": {"start": {"in_last_days": 90}}, "min_minutes": 30}
    {"list": 7}
    {"score": {"model": 3, "score": {"gte": 50}, "grade": {"in": ["A", "B"]}}}

A field condition is ``{"<operator>": value}`` or a bare value (meaning ``equals``); several
fields in one ``contact`` or ``event`` object must all hold. Participation is one of
``registered``, ``attended``, ``cancelled``, ``not_attended`` (registered for a matching
event and did not attend that same event); without ``event`` it means any event. People an
event keeps but does not count (organizers, presenters, internal staff) never match.

Negation is NULL-safe: ``{"not": {"contact": {"country": "JP"}}}`` includes contacts with no
country, as a marketer expects, where SQL's ``NOT (country = 'JP')`` would drop them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import True_

from gatherly.access import engine as access
from gatherly.contact.models import Contact
from gatherly.core.bounds import INT_MAX, INT_MIN, fits_integer, shift, to_utc
from gatherly.core.db import UTCDateTime
from gatherly.core.exceptions import ValidationFailed
from gatherly.event.models import EventAttendance, EventRegistration, MarketingEvent
from gatherly.event.participation import is_attended, is_cancelled, is_registered
from gatherly.scoring.models import LeadScore
from gatherly.segment.models import MarketingListMember

MAX_NODES = 200
MAX_DEPTH = 12
MAX_VALUES = 1000
PARTICIPATIONS = ("registered", "attended", "cancelled", "not_attended")
EVENT, REGISTRATION, ATTENDANCE = "marketing_event", "event_registration", "event_attendance"
SCORE = "lead_score"

STRING_OPS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "empty",
)
NUMBER_OPS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between", "empty")
DATE_OPS = (
    "before",
    "after",
    "on",
    "between",
    "in_last_days",
    "in_next_days",
    "more_than_days_ago",
    "empty",
)
CUSTOM_OPS = tuple(dict.fromkeys((*STRING_OPS, *NUMBER_OPS)))
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_\- ]{1,100}$")


class CriteriaError(ValidationFailed):
    """A criteria tree is malformed; ``field`` is the path of the bad node."""


def _fail(path: str, message: str) -> CriteriaError:
    return CriteriaError(f"{path}: {message}", field=path)


# ---------------------------------------------------------------- the parsed tree


# The names of the events and lists a reader may read, by ("event" | "list", id).
Names = Mapping[tuple[str, int], str]


@dataclass(frozen=True)
class Condition:
    """One field compared with one operator and value (already checked and normalised)."""

    path: str
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Node:
    """A parsed node: ``kind`` is all, any, not, contact, participation, list or score
    (``list_id`` then holds the scoring model's id)."""

    path: str
    kind: str
    children: tuple[Node, ...] = ()
    conditions: tuple[Condition, ...] = ()  # contact fields, or the event's for participation
    participation: str | None = None
    min_seconds: int | None = None
    max_seconds: int | None = None
    list_id: int | None = None

    def walk(self) -> list[Node]:
        """This node and every node below it, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def describe(self, names: Names | None = None) -> str:
        """A one-line description in words (the segment page and explain show it).

        ``names`` holds the names of the events and lists the reader may read, by
        ``("event" | "list", id)``; a record not in it is shown by its id."""
        names = names or {}
        if self.kind in ("all", "any"):
            return f"{self.kind} of {len(self.children)}"
        if self.kind == "not":
            return "not"
        if self.kind == "list":
            name = names.get(("list", self.list_id or 0))
            return f"member of the list “{name}”" if name else f"member of list {self.list_id}"
        parts = [_describe(c) for c in self.conditions]
        if self.kind == "score":
            name = names.get(("scoring_model", self.list_id or 0))
            model = f"“{name}”" if name else f"scoring model {self.list_id}"
            return f"scored by {model}" + (" with " + " and ".join(parts) if parts else "")
        if self.kind == "contact":
            return "contact " + " and ".join(parts)
        ids = _event_ids_only(self.conditions)
        if ids is not None and all(("event", i) in names for i in ids):
            event = " or ".join(f"“{names[('event', i)]}”" for i in ids)
        elif parts:
            event = "an event where " + " and ".join(parts)
        else:
            event = "any event"
        text = {
            "registered": f"registered for {event}",
            "attended": f"attended {event}",
            "cancelled": f"cancelled their registration for {event}",
            "not_attended": f"registered for {event} but did not attend",
        }.get(self.participation or "", f"{self.participation} {event}")
        low, high = self.min_seconds, self.max_seconds
        if low is not None and high is not None:
            text += f" for {_minutes(low)}–{_minutes(high)} min"
        elif low is not None:
            text += f" for at least {_minutes(low)} min"
        elif high is not None:
            text += f" for at most {_minutes(high)} min"
        return text


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:g}"


def _describe(c: Condition) -> str:
    value = c.value
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, (list, tuple)):
        value = [v.isoformat() if isinstance(v, datetime) else v for v in value]
    return f"{c.field} {c.op.replace('_', ' ')} {value!r}"


@dataclass(frozen=True)
class Criteria:
    """A validated tree and what it depends on."""

    root: Node
    list_ids: frozenset[int] = field(default_factory=frozenset)
    event_ids: frozenset[int] = field(default_factory=frozenset)
    model_ids: frozenset[int] = field(default_factory=frozenset)
    uses_events: bool = False
    uses_relative_dates: bool = False
    # (path, "list" | "event" | "scoring_model", id)
    references: tuple[tuple[str, str, int], ...] = ()


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class _FieldSpec:
    kind: str  # string, number, date
    ops: tuple[str, ...]


CONTACT_FIELDS: dict[str, _FieldSpec] = {
    **{
        name: _FieldSpec("string", STRING_OPS)
        for name in (
            "email",
            "first_name",
            "last_name",
            "company",
            "job_title",
            "phone",
            "country",
            "origin",
        )
    },
    "created_at": _FieldSpec("date", DATE_OPS),
    "modified_at": _FieldSpec("date", DATE_OPS),
    "business_unit_id": _FieldSpec("number", NUMBER_OPS),
    "id": _FieldSpec("number", NUMBER_OPS),
}
EVENT_FIELDS: dict[str, _FieldSpec] = {
    "id": _FieldSpec("number", NUMBER_OPS),
    "name": _FieldSpec("string", STRING_OPS),
    "type": _FieldSpec("string", STRING_OPS),
    "status": _FieldSpec("string", STRING_OPS),
    "organizer": _FieldSpec("string", STRING_OPS),
    "start": _FieldSpec("date", DATE_OPS),
    "end": _FieldSpec("date", DATE_OPS),
    "registrants": _FieldSpec("number", NUMBER_OPS),
    "attendees": _FieldSpec("number", NUMBER_OPS),
    "cancellations": _FieldSpec("number", NUMBER_OPS),
}
# Event types are stored lower-case: "webinar", "town hall" (Teams), or what a user typed.
EVENT_TYPE_ALIASES = {"townhall": "town hall", "town-hall": "town hall", "town_hall": "town hall"}
SCORE_FIELDS: dict[str, _FieldSpec] = {
    "score": _FieldSpec("number", NUMBER_OPS),
    "grade": _FieldSpec("string", STRING_OPS),
    "sales_ready": _FieldSpec("bool", ("equals",)),
}
RELATIVE_OPS = ("in_last_days", "in_next_days", "more_than_days_ago")


def parse(tree: Any, path: str = "criteria") -> Criteria:
    """Validate a criteria tree.

    Args:
        tree: the decoded JSON.
        path: the name of the tree in error messages.

    Returns:
        The parsed tree and its dependencies (lists, events, relative dates).

    Raises:
        CriteriaError: naming the path of the first bad node, e.g.
            ``criteria.any[2].event.start: "31-02-2026" is not a date``.
    """
    counter = [0]
    root = _node(tree, path, 0, counter)
    nodes = root.walk()
    refs: list[tuple[str, str, int]] = []
    for n in nodes:
        if n.kind == "list" and n.list_id is not None:
            refs.append((f"{n.path}.list", "list", n.list_id))
        if n.kind == "score" and n.list_id is not None:
            refs.append((f"{n.path}.score.model", "scoring_model", n.list_id))
        for c in n.conditions:
            if n.kind == "participation" and c.field == "id" and c.op in ("equals", "in"):
                ids = c.value if isinstance(c.value, (list, tuple)) else [c.value]
                refs.extend((c.path, "event", int(i)) for i in ids)
    return Criteria(
        root=root,
        list_ids=frozenset(n.list_id for n in nodes if n.kind == "list" and n.list_id),
        event_ids=frozenset(i for _p, kind, i in refs if kind == "event"),
        model_ids=frozenset(i for _p, kind, i in refs if kind == "scoring_model"),
        uses_events=any(n.kind == "participation" for n in nodes),
        uses_relative_dates=any(c.op in RELATIVE_OPS for n in nodes for c in n.conditions),
        references=tuple(refs),
    )


def _node(raw: Any, path: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _fail(path, f"a tree may hold at most {MAX_NODES} nodes")
    if depth > MAX_DEPTH:
        raise _fail(path, f"a tree may nest at most {MAX_DEPTH} levels")
    if not isinstance(raw, dict) or not raw:
        raise _fail(
            path, "expected an object such as {'all': [...]}, {'contact': {...}} or {'list': 7}"
        )
    keys = set(raw)
    if keys & {"all", "any"}:
        _only(raw, path, {sorted(keys & {"all", "any"})[0]})  # sorted: a stable error path
        kind = "all" if "all" in raw else "any"
        items = raw[kind]
        if not isinstance(items, list) or not items:
            raise _fail(f"{path}.{kind}", "expected a non-empty list of criteria")
        children = tuple(
            _node(item, f"{path}.{kind}[{i}]", depth + 1, counter) for i, item in enumerate(items)
        )
        return Node(path=path, kind=kind, children=children)
    if "not" in keys:
        _only(raw, path, {"not"})
        return Node(
            path=path, kind="not", children=(_node(raw["not"], f"{path}.not", depth + 1, counter),)
        )
    if "contact" in keys:
        _only(raw, path, {"contact"})
        conditions = _conditions(raw["contact"], f"{path}.contact", CONTACT_FIELDS, custom=True)
        return Node(path=path, kind="contact", conditions=conditions)
    if "participation" in keys:
        return _participation(raw, path)
    if "list" in keys:
        _only(raw, path, {"list"})
        value = raw["list"]
        if isinstance(value, dict):
            _only(value, f"{path}.list", {"id"})
            value = value.get("id")
        if not _is_int(value) or not 1 <= value <= INT_MAX:
            raise _fail(f"{path}.list", f"{_show(value)} is not a marketing list id")
        return Node(path=path, kind="list", list_id=int(value))
    if "score" in keys:
        _only(raw, path, {"score"})
        return _score(raw["score"], path)
    if "event" in keys:
        raise _fail(
            f"{path}.participation",
            f"an event criterion needs 'participation': one of {', '.join(PARTICIPATIONS)}",
        )
    raise _fail(
        path,
        f"unknown criterion {sorted(keys)[0]!r}; use all, any, not, contact, participation "
        "(with event), list or score",
    )


def _only(raw: dict[str, Any], path: str, allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _fail(f"{path}.{extra[0]}", f"unexpected key beside {', '.join(sorted(allowed))}")


def _participation(raw: dict[str, Any], path: str) -> Node:
    _only(raw, path, {"participation", "event", "min_minutes", "max_minutes"})
    what = raw["participation"]
    if what not in PARTICIPATIONS:
        raise _fail(f"{path}.participation", f"{what!r} is not one of {', '.join(PARTICIPATIONS)}")
    conditions: tuple[Condition, ...] = ()
    if raw.get("event") is not None:
        conditions = _conditions(raw["event"], f"{path}.event", EVENT_FIELDS, custom=False)
    bounds: dict[str, int | None] = {}
    for key in ("min_minutes", "max_minutes"):
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        if what != "attended":
            raise _fail(f"{path}.{key}", "attendance duration applies to 'attended' only")
        if not _is_number(value) or value < 0 or value > 100_000:
            raise _fail(f"{path}.{key}", f"{value!r} is not a number of minutes (0–100000)")
        bounds[key] = round(float(value) * 60)
    low, high = bounds["min_minutes"], bounds["max_minutes"]
    if low is not None and high is not None and low > high:
        raise _fail(f"{path}.max_minutes", "max_minutes is below min_minutes")
    return Node(
        path=path,
        kind="participation",
        conditions=conditions,
        participation=what,
        min_seconds=low,
        max_seconds=high,
    )


def _score(raw: Any, node_path: str) -> Node:
    """``{"model": id, "score": …, "grade": …, "sales_ready": …}``: the contact holds a
    score of that model (through a lead too) meeting every condition given."""
    path = f"{node_path}.score"
    if not isinstance(raw, dict) or "model" not in raw:
        raise _fail(path, "expected {'model': <scoring model id>, 'score': {'gte': 50}, …}")
    model = raw["model"]
    if not _is_int(model) or not 1 <= model <= INT_MAX:
        raise _fail(f"{path}.model", f"{_show(model)} is not a scoring model id")
    rest = {k: v for k, v in raw.items() if k != "model"}
    conditions = _conditions(rest, path, SCORE_FIELDS, custom=False) if rest else ()
    return Node(path=node_path, kind="score", conditions=conditions, list_id=model)


def _conditions(
    raw: Any, path: str, fields: dict[str, _FieldSpec], *, custom: bool
) -> tuple[Condition, ...]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "expected an object of field conditions, e.g. {'country': 'JP'}")
    found = []
    for name, spec_raw in raw.items():
        fpath = f"{path}.{name}"
        if custom and name.startswith("custom."):
            key = name[len("custom.") :]
            if not _CUSTOM_KEY.match(key):
                raise _fail(fpath, "a custom property name is 1–100 letters, digits, _ - or space")
            spec = _FieldSpec("custom", CUSTOM_OPS)
        elif name in fields:
            spec = fields[name]
        else:
            extra = ", or custom.<property>" if custom else ""
            raise _fail(fpath, f"unknown field; known: {', '.join(sorted(fields))}{extra}")
        if isinstance(spec_raw, dict):
            if len(spec_raw) != 1:
                raise _fail(fpath, "give exactly one operator, e.g. {'equals': 'JP'}")
            op, value = next(iter(spec_raw.items()))
        else:
            op, value = "equals", spec_raw
        if op not in spec.ops:
            raise _fail(
                fpath, f"operator {op!r} does not apply here; use one of {', '.join(spec.ops)}"
            )
        found.append(Condition(fpath, name, op, _value(spec, name, op, value, fpath)))
    return tuple(found)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number SQL can compare as a float: not NaN, not infinite, not beyond a float
    (Python's JSON reader takes ``NaN``, ``Infinity`` and integers of any size)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _show(value: Any) -> str:
    """A value as an error message quotes it, cut short (a forged one may be huge)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}…"


def _value(spec: _FieldSpec, name: str, op: str, value: Any, path: str) -> Any:
    if op == "empty":
        if not isinstance(value, bool):
            raise _fail(path, "empty takes true or false")
        return value
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
            raise _fail(path, f"{op} takes a list of 1–{MAX_VALUES} values")
        return tuple(_scalar(spec, name, v, path) for v in value)
    if op in RELATIVE_OPS:
        if not _is_int(value) or not 0 < value <= 36_500:
            raise _fail(path, f"{op} takes a whole number of days (1–36500)")
        return value
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(path, "between takes a list of two values [low, high]")
        if spec.kind == "custom" and not all(_is_number(v) for v in value):
            raise _fail(path, "between on a custom property takes two numbers [low, high]")
        low = _scalar(spec, name, value[0], path)
        high = _scalar(spec, name, value[1], path)
        if spec.kind == "date" and isinstance(value[1], str) and len(value[1].strip()) == 10:
            high += timedelta(days=1) - timedelta(microseconds=1)  # a bare end date: whole day
        if low > high:
            raise _fail(path, "between: the low value is above the high one")
        return (low, high)
    if op in ("gt", "gte", "lt", "lte") and spec.kind == "custom":
        if not _is_number(value):
            raise _fail(path, f"{_show(value)} is not a number")
        return value
    if op in ("contains", "starts_with", "ends_with"):
        if not isinstance(value, str) or not value:
            raise _fail(path, f"{op} takes a non-empty text")
        return value
    scalar = _scalar(spec, name, value, path)
    if op == "on":
        scalar = datetime.combine(scalar.date(), time(), UTC)
    return scalar


def _scalar(spec: _FieldSpec, name: str, value: Any, path: str) -> Any:
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise _fail(path, "takes true or false")
        return value
    if spec.kind == "date":
        return _date(value, path)
    if spec.kind == "number":
        if not _is_int(value):
            raise _fail(path, f"{_show(value)} is not a whole number")
        if not fits_integer(value):
            raise _fail(
                path,
                f"{_show(value)} is out of range: use a whole number from {INT_MIN} to {INT_MAX}",
            )
        return value
    if spec.kind == "custom":
        if _is_number(value) or isinstance(value, str):
            return value
        raise _fail(path, f"{_show(value)} is not a text or a number")
    if not isinstance(value, str):
        raise _fail(path, f"{_show(value)} is not a text")
    if len(value) > 500:
        raise _fail(path, "text values are at most 500 characters")
    if name == "country":
        return value.strip().upper()
    if name == "email":
        return value.strip().casefold()
    if name == "type":  # stored lower-case, compared exactly; Graph's spelling of a town hall
        text = value.strip().lower()  # ("townhall") names the stored type "town hall"
        return EVENT_TYPE_ALIASES.get(text, text)
    if name in ("origin", "status"):  # stored lower-case, compared exactly
        return value.strip().lower()
    return value


def _date(value: Any, path: str) -> datetime:
    """An ISO date or date-time in UTC; a bare date is that day's start in UTC (naive means
    UTC). One that leaves years 1 to 9999 once in UTC is refused, not left to overflow."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            try:
                return to_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
            except ValueError as exc:
                raise _fail(path, f"{_show(value)} {exc}") from None
    raise _fail(path, f"{_show(value)} is not a date (use 2026-03-31 or 2026-03-31T09:00:00Z)")


# ---------------------------------------------------------------- compilation


@dataclass(frozen=True)
class Context:
    """What a compilation depends on besides the tree: the clock, the database dialect and
    the SQL form of sub-queries.

    ``readers`` are the principals whose read access bounds what participation nodes see:
    only events, registrations and attendance rows every one of them may read count, so
    criteria never reveal an event its author could not open (the viewer, for a preview;
    the segment's owner, for its membership; both, for explain).

    ``correlated`` picks ``EXISTS (… = contact.id)`` over ``contact.id IN (…)`` for list and
    participation nodes. PostgreSQL always gets EXISTS: inside an OR it cannot turn an IN
    into a semi-join and, when the sub-query's rows outgrow ``work_mem``, rescans them for
    every contact. SQLite materialises an IN sub-query once, which is best when the whole
    table is scanned (an organization-level viewer, a refresh), while EXISTS is best when
    the access predicate already narrows the contacts to a BU; the caller says which
    (``None``: IN), and a participation node whose rows the readers narrow too takes IN
    on SQLite. Measured with bench/segments.py (docs/segments.md).
    """

    now: datetime
    readers: tuple[access.Principal, ...]
    dialect: str = "sqlite"
    correlated: bool | None = None

    def __post_init__(self) -> None:
        if not self.readers:
            raise ValueError("a criteria context needs the principals whose access it reads by")

    def may_read(self, record_type: str) -> list[ColumnElement[bool]]:
        """The access predicates every reader's view of ``record_type`` adds (none at
        organization level): participation nodes see only rows all readers may read.

        In the count form: on PostgreSQL every path is then an index condition (shares as
        ``= ANY(ARRAY(…))``), so a BU's few events are found by a BitmapOr and estimated
        as few, not scanned with a hashed sub-plan guessed to keep half the rows; on SQLite
        the shares are one IN list, not a probe per row (bench/segments.py)."""
        found = [access.readable(p, record_type, shape="count") for p in self.readers]
        return [p for p in found if not isinstance(p, True_)]

    @property
    def exists_form(self) -> bool:
        """Whether list and participation nodes compile to correlated EXISTS."""
        return self.dialect == "postgresql" or bool(self.correlated)

    def when(self, value: datetime) -> Any:
        """A timestamp bound: inline on PostgreSQL so a prepared statement's generic plan
        never hides the dates from the planner (the value is a datetime we formatted)."""
        if self.dialect == "postgresql":
            return literal_column(f"TIMESTAMPTZ '{value.isoformat()}'", UTCDateTime())
        return value


def compile_predicate(criteria: Criteria | Node, ctx: Context) -> ColumnElement[bool]:
    """The tree as one boolean SQL expression over ``contact`` (no Python filtering).

    Example:
        >>> ctx = Context(now, readers=(principal,))
        >>> pred = compile_predicate(parse({"contact": {"country": "JP"}}), ctx)
        >>> db.execute(select(func.count()).select_from(Contact).where(pred))
    """
    node = criteria.root if isinstance(criteria, Criteria) else criteria
    return _compile(node, ctx, negated=False)


def _compile(node: Node, ctx: Context, *, negated: bool) -> ColumnElement[bool]:
    if node.kind in ("all", "any"):
        parts = [_compile(c, ctx, negated=negated) for c in node.children]
        # De Morgan: a negated all is an any of negated children, and the reverse.
        conjunctive = (node.kind == "all") != negated
        if conjunctive:
            # Cheap column tests first: SQLite evaluates the terms it does not index in
            # the order written, so a sub-query then runs only for contacts that pass.
            order = sorted(range(len(parts)), key=lambda i: _has_subqueries(node.children[i]))
            return and_(*(parts[i] for i in order))
        if ctx.dialect == "postgresql" and not ctx.correlated and _has_subqueries(node):
            # Scanning every contact (organization level, refresh), an OR over sub-queries
            # is one index-driven branch per child on PostgreSQL, where a plain OR would
            # test every sub-query against every contact. A BU-level viewer's contacts
            # come from the BU index first: there the plain OR of EXISTS is faster.
            branches = [select(Contact.id).where(part) for part in parts]
            return Contact.id.in_(union_all(*branches))
        return or_(*parts)
    if node.kind == "not":
        return _compile(node.children[0], ctx, negated=not negated)
    if node.kind == "contact":
        leaves = [_contact_condition(c, ctx) for c in node.conditions]
        if not negated:
            return and_(*(expr for expr, _nulls in leaves))
        return or_(*(_negate(expr, nulls) for expr, nulls in leaves))
    if node.kind == "list":
        assert node.list_id is not None
        m = MarketingListMember
        column: Any = m.contact_id
        where: list[ColumnElement[bool]] = [m.list_id == node.list_id]
    else:
        rows = {"attended": ATTENDANCE, None: SCORE}.get(node.participation, REGISTRATION)
        if ctx.correlated and ctx.dialect == "sqlite" and ctx.may_read(rows):
            # The readers see only some events' rows (a BU's): on SQLite those, listed
            # once, beat a probe per contact of the BU (bench/segments.py).
            ctx = replace(ctx, correlated=False)
        column, where = participants(node, ctx) if node.kind != "score" else _scores(node, ctx)
    # On SQLite a node naming its events by id selects few rows: materialised once as an
    # IN list it beats a probe per contact whoever the viewer is.
    named = node.kind == "participation" and _event_ids_only(node.conditions) is not None
    expr: ColumnElement[bool]
    if ctx.exists_form and not (named and ctx.dialect == "sqlite"):
        expr = select(literal(1)).where(column == Contact.id, *where).exists()
    else:
        expr = Contact.id.in_(select(column).where(*where))
    return not_(expr) if negated else expr


def _has_subqueries(node: Node) -> bool:
    return any(n.kind in ("list", "participation", "score") for n in node.walk())


def _scores(node: Node, ctx: Context) -> tuple[Any, list[ColumnElement[bool]]]:
    """The contacts holding a score of the node's model that meets its conditions, among
    the scores every reader may read (a score is its model owner's record, SPEC B9)."""
    s = LeadScore
    where = [s.model_id == node.list_id, *ctx.may_read(SCORE)]
    for c in node.conditions:
        if c.field == "sales_ready":
            where.append(s.sales_ready.is_(bool(c.value)))
            continue
        column = s.score if c.field == "score" else s.grade
        spec = SCORE_FIELDS[c.field]
        expr, _ = _compare(column, spec.kind, c.op, c.value, ctx)
        where.append(expr)
    return s.contact_id, where


def _negate(expr: ColumnElement[bool], nullable: Sequence[Any]) -> ColumnElement[bool]:
    """NOT expr, counting rows whose compared value is NULL as "not matching"."""
    return or_(not_(expr), *(col.is_(None) for col in nullable))


Leaf = tuple[ColumnElement[bool], list[Any]]


def _contact_condition(c: Condition, ctx: Context) -> Leaf:
    if c.field.startswith("custom."):
        return _custom_condition(c, ctx)
    column: Any = (
        Contact.owning_bu_id if c.field == "business_unit_id" else getattr(Contact, c.field)
    )
    spec = CONTACT_FIELDS[c.field]
    case_exact = c.field in ("email", "country", "origin")
    return _compare(column, spec.kind, c.op, c.value, ctx, case_exact=case_exact)


def _compare(
    column: Any, kind: str, op: str, value: Any, ctx: Context, *, case_exact: bool = False
) -> Leaf:
    """One comparison and the columns whose NULL makes it unknown (for negation)."""
    if op in ("not_equals", "not_in"):
        positive, nulls = _compare(column, kind, op[4:], value, ctx, case_exact=case_exact)
        return _negate(positive, nulls), []
    if op == "empty":
        blank = column.is_(None) if kind != "string" else or_(column.is_(None), column == "")
        return (blank if value else not_(blank)), []
    if kind == "date":
        return _date_compare(column, op, value, ctx), [column]
    # Patterns ignore case on every field: SQLite's LIKE does anyway, PostgreSQL's does not.
    if kind == "string" and (not case_exact or op in ("contains", "starts_with", "ends_with")):
        values = value if isinstance(value, tuple) else (value,)
        if ctx.dialect == "sqlite" and not all(v.isascii() for v in values):
            # SQLite's lower() folds ASCII only; Python's, registered per connection
            # (core/db.py), folds every letter. ASCII values keep the fast built-in.
            column = func.unicode_lower(column)
        else:
            column = func.lower(column)
        value = tuple(v.lower() for v in value) if isinstance(value, tuple) else value.lower()
    ops: dict[str, Callable[[], ColumnElement[bool]]] = {
        "equals": lambda: column == value,
        "in": lambda: column.in_(value),
        "contains": lambda: column.contains(value, autoescape=True),
        "starts_with": lambda: column.startswith(value, autoescape=True),
        "ends_with": lambda: column.endswith(value, autoescape=True),
        "gt": lambda: column > value,
        "gte": lambda: column >= value,
        "lt": lambda: column < value,
        "lte": lambda: column <= value,
        "between": lambda: column.between(value[0], value[1]),
    }
    return ops[op](), [column]


def _date_compare(column: Any, op: str, value: Any, ctx: Context) -> ColumnElement[bool]:
    day = timedelta(days=1)
    when = ctx.when
    if op == "before":
        return and_(column < when(value))
    if op == "after":
        return and_(column >= when(value))
    if op == "on":
        return and_(column >= when(value), column < when(shift(value, day)))
    if op == "between":
        return and_(column >= when(value[0]), column <= when(value[1]))
    delta = timedelta(days=value)
    # Clamped at the ends of time: a clock late in year 9999 must not overflow.
    if op == "in_last_days":
        return and_(column >= when(shift(ctx.now, -delta)), column <= when(ctx.now))
    if op == "in_next_days":
        return and_(column >= when(ctx.now), column <= when(shift(ctx.now, delta)))
    return and_(column < when(shift(ctx.now, -delta)))  # more_than_days_ago


def _custom_condition(c: Condition, ctx: Context) -> Leaf:
    key = c.field[len("custom.") :]
    element = Contact.custom[key]
    text = element.as_string()
    numeric = c.op in ("gt", "gte", "lt", "lte", "between") or (
        c.op in ("equals", "not_equals", "in", "not_in")
        and all(_is_number(v) for v in (c.value if isinstance(c.value, tuple) else (c.value,)))
    )
    if c.op == "empty":
        blank = or_(text.is_(None), text == "")
        return (blank if c.value else not_(blank)), []
    if not numeric:
        values = c.value
        if isinstance(values, tuple):
            values = tuple(str(v) for v in values)
        elif c.op in ("equals", "not_equals"):
            values = str(values)
        return _compare(text, "string", c.op, values, ctx)
    # Only JSON numbers compare as numbers; text in a numeric comparison is "no value"
    # rather than an error (PostgreSQL) or a silent text-vs-number comparison (SQLite).
    if ctx.dialect == "postgresql":
        is_number = func.json_typeof(Contact.custom.op("->")(literal(key))) == "number"
    else:
        is_number = func.json_type(Contact.custom, f'$."{key}"').in_(("integer", "real"))
    number = case((is_number, cast(text, Float)), else_=None)
    # Floats, not ints: PostgreSQL would otherwise bind an IN list as its first value's
    # type, and ``IN (10::INTEGER, 3.5::INTEGER)`` matches 4, not 3.5.
    value = tuple(map(float, c.value)) if isinstance(c.value, tuple) else float(c.value)
    return _compare(number, "number", c.op, value, ctx)


def _event_column(name: str) -> Any:
    return {
        "id": MarketingEvent.id,
        "name": MarketingEvent.name,
        "type": MarketingEvent.event_type,
        "status": MarketingEvent.status,
        "start": MarketingEvent.start_at,
        "end": MarketingEvent.end_at,
        "registrants": MarketingEvent.registrant_count,
        "attendees": MarketingEvent.attendee_count,
        "cancellations": MarketingEvent.cancellation_count,
    }[name]


def event_predicate(conditions: Sequence[Condition], ctx: Context) -> list[ColumnElement[bool]]:
    """Event field conditions as predicates over ``marketing_event`` (reports filter their
    events with them too)."""
    found = []
    for c in conditions:
        if c.field == "organizer":
            email, _ = _compare(MarketingEvent.organizer_email, "string", c.op, c.value, ctx)
            name, _ = _compare(MarketingEvent.organizer_name, "string", c.op, c.value, ctx)
            positive_op = c.op.removeprefix("not_")
            if c.op in ("not_equals", "not_in"):
                found.append(and_(email, name))
            elif positive_op == "empty":
                found.append(and_(email, name) if c.value else or_(email, name))
            else:
                found.append(or_(email, name))
            continue
        kind = EVENT_FIELDS[c.field].kind
        # Types and statuses are stored lower-case and compared exactly (values are
        # lower-cased when parsed): lower(column) would hide the planner's statistics.
        exact = c.field in ("type", "status")
        expr, _ = _compare(_event_column(c.field), kind, c.op, c.value, ctx, case_exact=exact)
        found.append(expr)
    return found


def _event_ids_only(conditions: Sequence[Condition]) -> Any:
    """The ids when the event is named by id alone (no join with marketing_event needed)."""
    if len(conditions) == 1 and conditions[0].field == "id":
        c = conditions[0]
        if c.op == "equals":
            return (c.value,)
        if c.op == "in":
            return c.value
    return None


def participants(node: Node, ctx: Context) -> tuple[Any, list[ColumnElement[bool]]]:
    """The contact column and conditions of the registration or attendance rows behind a
    participation node (``EventRegistration`` or ``EventAttendance``, by its kind): what
    the node counts, among the rows ``ctx``'s readers may read. Lead scoring counts them."""
    ids = _event_ids_only(node.conditions)
    event_filter = [] if ids is not None else event_predicate(node.conditions, ctx)
    if event_filter:
        # Comparing an event's fields reads the event: only events the readers may open.
        event_filter.extend(ctx.may_read(EVENT))

    def on_events(table: Any) -> list[ColumnElement[bool]]:
        if ids is not None:
            return [table.event_id.in_(ids)] if len(ids) > 1 else [table.event_id == ids[0]]
        if not event_filter:
            return []
        if ctx.exists_form:
            # Per contact, join its few rows to their events; an IN list of matching
            # events would make SQLite probe the index once per event for every contact.
            return [table.event_id == MarketingEvent.id, *event_filter]
        matching = select(MarketingEvent.id).where(*event_filter)
        return [table.event_id.in_(matching)]

    if node.participation == "attended":
        a = EventAttendance
        where = [
            a.contact_id.is_not(None),
            is_attended(a),
            *on_events(a),
            *ctx.may_read(ATTENDANCE),
        ]
        if node.min_seconds is not None:
            where.append(a.total_seconds >= node.min_seconds)
        if node.max_seconds is not None:
            where.append(a.total_seconds <= node.max_seconds)
        return a.contact_id, where
    r = EventRegistration
    if node.participation == "cancelled":
        counted = is_cancelled(r, readable=ctx.may_read(REGISTRATION))
    else:
        counted = is_registered(r)
    where = [r.contact_id.is_not(None), counted, *on_events(r), *ctx.may_read(REGISTRATION)]
    if node.participation == "not_attended":
        a = EventAttendance
        if ids is not None and len(ids) == 1 and ctx.dialect == "sqlite":
            # One event: its attendees, materialised once by SQLite, instead of a probe per
            # registration (PostgreSQL plans the correlated form as an anti-join anyway,
            # and could not hash a NOT IN larger than work_mem).
            attendees = select(a.contact_id).where(
                a.event_id == ids[0],
                a.contact_id.is_not(None),
                is_attended(a),
                *ctx.may_read(ATTENDANCE),
            )
            where.append(r.contact_id.not_in(attendees))
            return r.contact_id, where
        attended = (
            select(literal(1))
            .where(
                a.event_id == r.event_id,
                a.contact_id == r.contact_id,
                is_attended(a),
                *ctx.may_read(ATTENDANCE),
            )
            .exists()
        )
        where.append(not_(attended))
    return r.contact_id, where


def node_columns(criteria: Criteria, ctx: Context) -> list[tuple[Node, ColumnElement[Any]]]:
    """Every node with a 0/1 column saying whether a contact matches it (for explain)."""
    return [
        (node, case((_compile(node, ctx, negated=False), 1), else_=0))
        for node in criteria.root.walk()
    ]
