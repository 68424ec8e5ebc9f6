"""A journey's definition: who enters, and a tree of steps (JSON, or YAML through the CLI).

    {"audience": {"segments": [3], "lists": [], "exclude_segments": [7]},
     "start": "invite",
     "steps": {
       "invite":  {"type": "send_email", "message_id": 12, "next": "pause"},
       "pause":   {"type": "wait", "duration": "P2D", "next": "opened?"},
       "opened?": {"type": "condition", "test": {"opened": "invite"},
                   "yes": "lead", "no": "reminder"},
       "lead":    {"type": "create_lead", "topic": "Webinar follow-up"},
       "reminder": {"type": "send_email", "message_id": 13}}}

A step without ``next`` (or a condition branch left empty) ends the path there.
``check`` finds what makes a definition unfit to go live, each problem naming its step.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import yaml
from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator

from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import Id
from gatherly.core.schemas import StrictModel
from gatherly.event.schemas import UtcDateTime
from gatherly.segment import criteria

StepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_?!.-]{1,40}$")]
Duration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=3650))]
CONTACT_FIELDS = ("first_name", "last_name", "company", "job_title", "phone", "country")


def _contact_field(name: str) -> None:
    """A field a journey may test or set: a contact field, or a custom property named as
    segments name them (conditions compare as segments do)."""
    if name.startswith("custom."):
        try:
            criteria.parse({"contact": {name: {"empty": True}}})
        except ValidationFailed:
            raise ValueError(
                "custom.<name>: a name of 1–100 letters, digits, _ - or space"
            ) from None
    elif name not in CONTACT_FIELDS:
        raise ValueError(f"field is one of {', '.join(CONTACT_FIELDS)} or custom.<name>")


class Audience(StrictModel):
    """Who enters: members of these segments and lists, but for the excluded segments'."""

    segments: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    lists: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    exclude_segments: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)


TRIGGER_KINDS = ("registered", "attended", "cancelled", "added_to_list", "sales_ready")


class Trigger(StrictModel):
    """Who enters as it happens: people who register for, attend or cancel an event (as
    the Teams sync records it), who are added to a list, or whose score of a scoring
    model becomes sales-ready, after the journey went live."""

    registered: Id | None = None
    attended: Id | None = None
    cancelled: Id | None = None
    added_to_list: Id | None = None
    sales_ready: Id | None = None  # a scoring model

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        named = [n for n in TRIGGER_KINDS if getattr(self, n) is not None]
        if len(named) != 1:
            raise ValueError(f"a trigger is exactly one of {', '.join(TRIGGER_KINDS)}")
        return self


class SendEmail(StrictModel):
    type: Literal["send_email"]
    message_id: Id
    next: StepId | None = None


class WaitFor(StrictModel):
    """Wait until the contact opens (clicks) the email of an earlier step."""

    step: StepId
    kind: Literal["opened", "clicked"] = "opened"


class Wait(StrictModel):
    """A duration, until a date, or until an interaction (with a timeout)."""

    type: Literal["wait"]
    duration: Duration | None = None
    until: UtcDateTime | None = None
    interaction: WaitFor | None = None
    timeout: Duration | None = None
    next: StepId | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Wait:
        ways = [self.duration is not None, self.until is not None, self.interaction is not None]
        if sum(ways) != 1:
            raise ValueError("a wait has exactly one of duration, until or interaction")
        if self.interaction is not None and self.timeout is None:
            raise ValueError("a wait for an interaction needs a timeout")
        return self


class Test(StrictModel):
    """What a condition asks, one of: opened / clicked (the email of an earlier step),
    registered / attended (an event; attended at least ``min_minutes``), segment (a
    member of it), field (a contact field compared with ``value``)."""

    opened: StepId | None = None
    clicked: StepId | None = None
    registered: Id | None = None
    attended: Id | None = None
    min_minutes: Annotated[int, Field(ge=0, le=100_000)] = 0
    segment: Id | None = None
    field: str | None = None
    op: Literal["equals", "not_equals", "contains", "empty", "not_empty"] = "equals"
    value: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _one_question(self) -> Test:
        asked = [
            name
            for name in ("opened", "clicked", "registered", "attended", "segment", "field")
            if getattr(self, name) is not None
        ]
        if len(asked) != 1:
            raise ValueError(
                "a test asks exactly one of opened, clicked, registered, attended, segment, field"
            )
        if self.field is not None:
            _contact_field(self.field)
        return self


class Condition(StrictModel):
    type: Literal["condition"]
    test: Test
    yes: StepId | None = None
    no: StepId | None = None


class CreateLead(StrictModel):
    """A lead for the contact, owned by the journey's owner (B7)."""

    type: Literal["create_lead"]
    topic: Annotated[str, Field(max_length=300)] = ""
    next: StepId | None = None


class ListChange(StrictModel):
    type: Literal["add_to_list", "remove_from_list"]
    list_id: Id
    next: StepId | None = None


class UpdateField(StrictModel):
    type: Literal["update_field"]
    field: str
    value: Annotated[str, Field(max_length=500)] | None = None
    next: StepId | None = None

    @model_validator(mode="after")
    def _known(self) -> UpdateField:
        _contact_field(self.field)
        return self


class End(StrictModel):
    type: Literal["end"]


TAGS = frozenset(
    {"send_email", "wait", "condition", "create_lead", "add_to_list", "update_field", "end"}
)


def _kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "add_to_list" if kind == "remove_from_list" else kind


# Chosen by "type" (a callable discriminator: the models' text checks run on every field).
Step = Annotated[
    Annotated[SendEmail, Tag("send_email")]
    | Annotated[Wait, Tag("wait")]
    | Annotated[Condition, Tag("condition")]
    | Annotated[CreateLead, Tag("create_lead")]
    | Annotated[ListChange, Tag("add_to_list")]
    | Annotated[UpdateField, Tag("update_field")]
    | Annotated[End, Tag("end")],
    Discriminator(
        _kind,
        custom_error_type="step_type",
        custom_error_message="type is one of send_email, wait, condition, create_lead, "
        "add_to_list, remove_from_list, update_field, end",
    ),
]


class Definition(StrictModel):
    audience: Audience = Field(default_factory=Audience)
    trigger: Trigger | None = None
    start: StepId | None = None
    steps: Annotated[dict[StepId, Step], Field(max_length=200)] = Field(default_factory=dict)


_ADAPTER = TypeAdapter(Definition)


def parse(data: Any) -> Definition:
    """A definition from JSON data; ValidationFailed names the first bad field, under
    ``definition`` (``definition.steps.invite.message_id``)."""
    try:
        return _ADAPTER.validate_python(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if len(loc) > 2 and loc[0] == "steps" and loc[2] in TAGS:
            del loc[2]  # the step type the union chose, not a field
        where = ".".join(["definition", *loc])
        raise ValidationFailed(first["msg"].removeprefix("Value error, "), field=where) from None


def following(step: Any) -> list[str]:
    """The steps a step leads to."""
    if isinstance(step, Condition):
        return [s for s in (step.yes, step.no) if s]
    nxt = getattr(step, "next", None)
    return [nxt] if nxt else []


def structure(definition: Definition) -> list[tuple[str, str]]:
    """(field, message) for every structural problem: a start and steps, every step
    named reachable and reached once (a tree: no loops, no merges), opened/clicked tests
    and waits about an email step that comes earlier on the path."""
    problems: list[tuple[str, str]] = []
    steps = definition.steps
    if not steps:
        return [("definition.steps", "a journey needs at least one step")]
    if definition.start is None or definition.start not in steps:
        return [("definition.start", "start names no step of the journey")]
    for name, step in steps.items():
        for target in following(step):
            if target not in steps:
                problems.append(
                    (f"definition.steps.{name}", f"leads to “{target}”, which is no step")
                )
    if problems:
        return problems
    parents: dict[str, str] = {}
    order: list[str] = []
    emails_before: dict[str, set[str]] = {definition.start: set()}
    stack = [definition.start]
    while stack:
        name = stack.pop()
        order.append(name)
        step = steps[name]
        before = emails_before[name] | ({name} if isinstance(step, SendEmail) else set())
        for target in following(step):
            if target in parents or target == definition.start:
                problems.append(
                    (f"definition.steps.{name}", f"leads back to “{target}”: every path must end")
                )
                continue
            parents[target] = name
            emails_before[target] = before
            stack.append(target)
    for name in steps:
        if name not in emails_before:
            problems.append((f"definition.steps.{name}", "no path from the start reaches it"))
    for name, step in steps.items():
        asked = None
        if isinstance(step, Condition):
            asked = step.test.opened or step.test.clicked
        elif isinstance(step, Wait) and step.interaction is not None:
            asked = step.interaction.step
        if asked is not None and asked not in emails_before.get(name, set()):
            problems.append(
                (
                    f"definition.steps.{name}",
                    f"asks about “{asked}”, which is no email step before it",
                )
            )
    return problems


def due_after(step: Wait, started: datetime) -> datetime:
    """When a wait that started at ``started`` ends (for an interaction: its timeout)."""
    if step.until is not None:
        return step.until
    span = step.duration if step.duration is not None else step.timeout
    assert span is not None
    return started + span


class _Loader(yaml.SafeLoader):
    """YAML whose booleans are ``true`` and ``false`` only (as YAML 1.2 has them): a
    condition's ``yes:`` and ``no:`` branches stay words, not YAML 1.1's booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def from_text(text: str, *, field: str, source: str = "the definition") -> dict[str, Any]:
    """A definition written as JSON or YAML; ValidationFailed (naming ``field``) when it is
    neither, or holds no object."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, _Loader)  # noqa: S506 - a SafeLoader
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        said = " ".join(str(exc).split())  # one line: YAML's messages draw the spot
        raise ValidationFailed(f"{source} is neither JSON nor YAML: {said}", field=field) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed(f"{source} holds no definition (an object)", field=field)
    return data


def to_text(definition: dict[str, Any]) -> str:
    """A definition as YAML, for people to edit."""
    return str(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True))
