"""What a scoring model says: conditions worth points, grades, a sales-ready threshold
(SPEC B9). Checked here, with errors naming the bad field
(``conditions[2].event.start: '31-02-2026' is not a date``).

A condition is about the person's fields or about their interactions::

    {"name": "Works in Japan", "points": 10, "contact": {"country": "JP"}}
    {"name": "Attended a webinar for 30 min", "points": 20, "interaction": "attended",
     "event": {"type": "webinar"}, "min_minutes": 30, "frequency": "each",
     "within_days": 90}
    {"name": "Never opened an email", "points": -5, "interaction": "email_opened",
     "frequency": "never"}

``contact`` and ``event`` take the segment criteria language's field conditions. An
interaction condition counts the person's matching interactions (in the last
``within_days`` days when given) and scores: ``each`` — points for every one; ``at_least``
— points once when there are at least ``times``; ``never`` — points when there are none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel, first_problem
from gatherly.segment import criteria

REGISTERED, ATTENDED = "registered", "attended"
EMAIL_OPENED, EMAIL_CLICKED = "email_opened", "email_clicked"
FORM_SUBMITTED, PAGE_VISITED = "form_submitted", "page_visited"
INTERACTIONS = (REGISTERED, ATTENDED, EMAIL_OPENED, EMAIL_CLICKED, FORM_SUBMITTED, PAGE_VISITED)
EACH, AT_LEAST, NEVER = "each", "at_least", "never"
MAX_CONDITIONS = 50
MAX_GRADES = 10
POINTS = 100_000  # points of one condition lie within ±POINTS

Interaction = Literal[
    "registered", "attended", "email_opened", "email_clicked", "form_submitted", "page_visited"
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Condition(StrictModel):
    """One condition and the points it is worth (see the module's docstring)."""

    name: Name
    points: Annotated[int, Field(ge=-POINTS, le=POINTS)]
    contact: dict[str, Any] | None = None
    interaction: Interaction | None = None
    event: dict[str, Any] | None = None
    min_minutes: Annotated[float, Field(ge=0, le=100_000)] | None = None
    message_id: Id | None = None
    form_id: Id | None = None
    page_id: Id | None = None
    frequency: Literal["each", "at_least", "never"] = "at_least"
    times: Annotated[int, Field(ge=1, le=100_000)] = 1
    within_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if (self.contact is None) == (self.interaction is None):
            raise ValueError("a condition has exactly one of contact or interaction")
        given = self.model_fields_set
        if self.contact is not None:
            extra = sorted(given - {"name", "points", "contact"})  # fields hold or not: no counting
            if extra:
                raise ValueError(f"{extra[0]} applies to interaction conditions only")
            return self
        allowed = {
            REGISTERED: {"event"},
            ATTENDED: {"event", "min_minutes"},
            EMAIL_OPENED: {"message_id"},
            EMAIL_CLICKED: {"message_id"},
            FORM_SUBMITTED: {"form_id"},
            PAGE_VISITED: {"page_id"},
        }[self.interaction or ""]
        for key in ("event", "min_minutes", "message_id", "form_id", "page_id"):
            if key in given and key not in allowed:
                raise ValueError(f"{key} does not apply to {self.interaction}")
        if "times" in given and self.frequency != AT_LEAST:
            raise ValueError("times applies to frequency at_least only")
        return self


class Grade(StrictModel):
    """A grade and the lowest score that earns it (None: any score, the last grade only)."""

    grade: Annotated[str, Field(min_length=1, max_length=20)]
    min: Annotated[int, Field(ge=-(10**9), le=10**9)] | None


Conditions = Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)]
Grades = Annotated[list[Grade], Field(max_length=MAX_GRADES)]
_CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(Conditions)
_GRADES: TypeAdapter[list[Grade]] = TypeAdapter(Grades)
DEFAULT_GRADES = [
    {"grade": "A", "min": 100},
    {"grade": "B", "min": 60},
    {"grade": "C", "min": 30},
    {"grade": "D", "min": None},
]


@dataclass(frozen=True)
class Checked:
    """A condition as the engine uses it: the parsed criteria node of its fields or of
    its events (None: any event), and its interaction's filters."""

    index: int
    condition: Condition
    node: criteria.Node | None
    references: tuple[tuple[str, str, int], ...] = ()  # the events its criteria name

    @property
    def path(self) -> str:
        """Where the condition sits in the model (``conditions[2]``)."""
        return f"conditions[{self.index}]"


def parse_conditions(data: Any) -> list[Checked]:
    """Conditions from JSON data; ValidationFailed names the first bad field under
    ``conditions`` (``conditions[1].event.start``)."""
    try:
        conditions = _CONDITIONS.validate_python(data if data is not None else [])
    except ValidationError as exc:
        raise _invalid(exc, "conditions") from None
    checked = []
    for i, c in enumerate(conditions):
        path = f"conditions[{i}]"
        parsed: criteria.Criteria | None = None
        if c.contact is not None:
            parsed = criteria.parse({"contact": c.contact}, path=path)
        elif c.interaction in (REGISTERED, ATTENDED):
            tree: dict[str, Any] = {"participation": c.interaction}
            if c.event is not None:
                tree["event"] = c.event
            if c.min_minutes is not None:
                tree["min_minutes"] = c.min_minutes
            parsed = criteria.parse(tree, path=path)
        if parsed is None:
            checked.append(Checked(i, c, None))
        else:
            checked.append(Checked(i, c, parsed.root, parsed.references))
    return checked


def parse_grades(data: Any) -> list[Grade]:
    """Grades from JSON data, highest first and strictly decreasing, names unique; only
    the last may have no minimum."""
    try:
        grades = _GRADES.validate_python(data if data is not None else [])
    except ValidationError as exc:
        raise _invalid(exc, "grades") from None
    seen: set[str] = set()
    for i, g in enumerate(grades):
        where = f"grades[{i}]"
        if g.grade.casefold() in seen:
            raise ValidationFailed(f"{where}.grade: {g.grade!r} is used twice", field=where)
        seen.add(g.grade.casefold())
        if g.min is None and i != len(grades) - 1:
            raise ValidationFailed(
                f"{where}.min: only the last grade may take any score", field=f"{where}.min"
            )
        above = grades[i - 1].min if i else None
        if g.min is not None and above is not None and g.min >= above:
            raise ValidationFailed(
                f"{where}.min: grades go from the highest score down; {g.min} is not "
                f"below {grades[i - 1].min}",
                field=f"{where}.min",
            )
    return grades


def _invalid(exc: ValidationError, top: str) -> ValidationFailed:
    """pydantic's first problem as ``conditions[0].points: what``, naming that field."""
    out = top
    for part in exc.errors()[0]["loc"]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return ValidationFailed(f"{out}: {first_problem(exc).partition(': ')[2]}", field=out)
