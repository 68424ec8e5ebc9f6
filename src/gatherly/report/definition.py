"""What a report says (SPEC T6, M): what it counts, how it filters, groups and draws.

    {"source": "events",
     "filters": {"event": {"type": "webinar", "start": {"in_last_days": 365}}},
     "group_by": ["month"],
     "measures": ["registrants", "attendees", "attendance_rate", "avg_minutes"],
     "chart": "bar"}

``filters.event`` takes the segment criteria language's event conditions, applied to the
rows' event; ``filters.contact`` a whole segment criteria tree, applied to the rows'
contact. Each source lists the groupings and measures it offers (``SOURCES``); errors name
the bad field (``definition.group_by[1]: 'country' does not apply to events; …``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.schemas import StrictModel, first_problem
from gatherly.segment import criteria

CHARTS = ("bar", "line", "table")


@dataclass(frozen=True)
class Source:
    """A kind of record a report counts, and what it offers."""

    key: str
    label: str
    dims: tuple[str, ...]
    measures: tuple[str, ...]
    filters: tuple[str, ...]  # "event", "contact"


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source(
            "events",
            "Marketing events",
            ("event", "organizer", "month", "week", "business_unit", "status", "type"),
            (
                "events",
                "registrants",
                "attendees",
                "attendance_rate",
                "avg_minutes",
                "cancellations",
                "no_shows",
                "no_show_rate",
            ),
            ("event",),
        ),
        Source(
            "registrations",
            "Event registrations",
            ("event", "organizer", "month", "week", "business_unit", "status", "country", "source"),
            ("registrations", "registrants", "cancellations", "distinct_contacts"),
            ("event", "contact"),
        ),
        Source(
            "attendance",
            "Event attendance",
            ("event", "organizer", "month", "week", "business_unit", "country", "source"),
            ("attendees", "distinct_contacts", "sum_minutes", "avg_minutes"),
            ("event", "contact"),
        ),
        Source(
            "contacts",
            "Contacts",
            ("month", "week", "business_unit", "country", "source"),
            ("contacts",),
            ("contact",),
        ),
        Source(
            "email_deliveries",
            "Email deliveries",
            ("message", "month", "week", "business_unit", "status"),
            ("deliveries", "sent", "opened", "clicked", "open_rate", "click_rate", "bounced"),
            ("contact",),
        ),
        Source(
            "email_interactions",
            "Email interactions",
            ("message", "kind", "month", "week"),
            ("interactions", "distinct_contacts"),
            ("contact",),
        ),
        Source(
            "journey_states",
            "Journey members",
            ("journey", "status", "step"),
            ("members", "distinct_contacts"),
            ("contact",),
        ),
    )
}

DIM_LABELS = {
    "event": "Event",
    "organizer": "Organizer",
    "month": "Month",
    "week": "Week of",
    "business_unit": "Business unit",
    "status": "Status",
    "type": "Type",
    "country": "Country",
    "source": "Source",
    "message": "Email message",
    "kind": "Interaction",
    "journey": "Journey",
    "step": "Step",
}
MEASURE_LABELS = {
    "events": "Events",
    "registrants": "Registrants",
    "attendees": "Attendees",
    "attendance_rate": "Attendance rate",
    "avg_minutes": "Average minutes attended",
    "cancellations": "Cancellations",
    "no_shows": "No-shows",
    "no_show_rate": "No-show rate",
    "registrations": "Registrations",
    "distinct_contacts": "Distinct contacts",
    "sum_minutes": "Minutes attended",
    "contacts": "Contacts",
    "deliveries": "Deliveries",
    "sent": "Sent",
    "opened": "Opened",
    "clicked": "Clicked",
    "open_rate": "Open rate",
    "click_rate": "Click rate",
    "bounced": "Bounced",
    "interactions": "Interactions",
    "members": "Members",
}
RATES = frozenset({"attendance_rate", "no_show_rate", "open_rate", "click_rate"})


class Filters(StrictModel):
    event: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None


class Definition(StrictModel):
    """A report's definition (see the module's docstring)."""

    source: Literal[
        "events",
        "registrations",
        "attendance",
        "contacts",
        "email_deliveries",
        "email_interactions",
        "journey_states",
    ]
    filters: Filters = Field(default_factory=Filters)
    group_by: Annotated[list[str], Field(max_length=2)] = Field(default_factory=list)
    measures: Annotated[list[str], Field(min_length=1, max_length=8)]
    chart: Literal["bar", "line", "table"] = "bar"


@dataclass(frozen=True)
class Checked:
    """A definition and its filters parsed as criteria."""

    definition: Definition
    event: tuple[criteria.Condition, ...] = ()
    contact: criteria.Criteria | None = None

    @property
    def source(self) -> Source:
        """What the report counts."""
        return SOURCES[self.definition.source]


def parse(data: Any, *, field: str = "definition") -> Checked:
    """A definition from JSON data; ValidationFailed names the first bad field under
    ``field`` (``definition.filters.event.start``)."""
    try:
        d = Definition.model_validate(data if data is not None else {})
    except ValidationError as exc:
        out = field
        for part in exc.errors()[0]["loc"]:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        problem = first_problem(exc).partition(": ")[2]
        raise ValidationFailed(f"{out}: {problem}", field=out) from None
    source = SOURCES[d.source]
    for i, dim in enumerate(d.group_by):
        if dim not in source.dims:
            where = f"{field}.group_by[{i}]"
            raise ValidationFailed(
                f"{where}: {dim!r} does not apply to {d.source}; use one of "
                f"{', '.join(source.dims)}",
                field=where,
            )
    if len(set(d.group_by)) != len(d.group_by):
        raise ValidationFailed(
            f"{field}.group_by: a grouping is named twice", field=f"{field}.group_by"
        )
    for i, measure in enumerate(d.measures):
        if measure not in source.measures:
            where = f"{field}.measures[{i}]"
            raise ValidationFailed(
                f"{where}: {measure!r} does not apply to {d.source}; use one of "
                f"{', '.join(source.measures)}",
                field=where,
            )
    event: tuple[criteria.Condition, ...] = ()
    contact = None
    for name in ("event", "contact"):
        given = getattr(d.filters, name)
        if given is not None and name not in source.filters:
            where = f"{field}.filters.{name}"
            raise ValidationFailed(f"{where}: {d.source} take no {name} filter", field=where)
    if d.filters.event is not None:
        node = criteria.parse(
            {"participation": "registered", "event": d.filters.event}, path=f"{field}.filters"
        ).root
        event = node.conditions
    if d.filters.contact is not None:
        contact = criteria.parse(d.filters.contact, path=f"{field}.filters.contact")
    return Checked(d, event, contact)


@dataclass(frozen=True)
class Builtin:
    """A report every installation has: anyone may run it, and it counts what they may
    read; save a copy to change it."""

    key: str
    name: str
    description: str
    definition: dict[str, Any]


BUILTINS: dict[str, Builtin] = {
    b.key: b
    for b in (
        Builtin(
            "webinar-performance",
            "Webinar performance",
            "Per month of the webinars' start: registrants, attendees, attendance rate, "
            "average minutes attended, cancellations and no-shows.",
            {
                "source": "events",
                "filters": {"event": {"type": "webinar"}},
                "group_by": ["month"],
                "measures": [
                    "events",
                    "registrants",
                    "attendees",
                    "attendance_rate",
                    "avg_minutes",
                    "cancellations",
                    "no_shows",
                ],
                "chart": "bar",
            },
        ),
        Builtin(
            "webinar-performance-by-event",
            "Webinar performance by event",
            "Per webinar: registrants, attendees, attendance rate, average minutes attended, "
            "cancellations and no-shows.",
            {
                "source": "events",
                "filters": {"event": {"type": "webinar"}},
                "group_by": ["event"],
                "measures": [
                    "registrants",
                    "attendees",
                    "attendance_rate",
                    "avg_minutes",
                    "cancellations",
                    "no_shows",
                ],
                "chart": "table",
            },
        ),
        Builtin(
            "contact-acquisition",
            "Contact acquisition by source",
            "New contacts per month, by where they came from: Teams sync, form, LinkedIn, "
            "import or manual.",
            {
                "source": "contacts",
                "group_by": ["month", "source"],
                "measures": ["contacts"],
                "chart": "line",
            },
        ),
        Builtin(
            "email-performance",
            "Email performance",
            "Per message: deliveries sent, opened and clicked (people, not machines), with "
            "open and click rates, and bounces.",
            {
                "source": "email_deliveries",
                "group_by": ["message"],
                "measures": ["sent", "opened", "clicked", "open_rate", "click_rate", "bounced"],
                "chart": "bar",
            },
        ),
    )
}
