"""Web pages for journeys: the list, a new journey, and a journey's page — the designer
(who enters, and the steps as a tree: add, edit, remove), the definition as YAML for
those who prefer it, the check, going live, pausing and stopping, what each step did,
explain for one contact, and a simulation on today's audience (SPEC B6, M).

Every page reads and changes through ``journey.service`` and ``journey.explain`` with the
viewer's principal, as the API and the CLI do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from gatherly.api.params import PathId
from gatherly.core.exceptions import Conflict, Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.email import service as email_service
from gatherly.event import service as event_service
from gatherly.journey import definition as jd
from gatherly.journey import design, explain, service
from gatherly.journey.models import Journey
from gatherly.scoring import service as scoring_service
from gatherly.segment import service as segment_service
from gatherly.web import journey_form as jf
from gatherly.web.email import preview_contact
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    may,
    page,
)

router = APIRouter(include_in_schema=False)
STATES = {
    "draft": "Draft",
    "live": "Live",
    "paused": "Paused",
    "stopped": "Stopped",
    "completed": "Completed",
}
STARTER = """# Who enters: segments and lists (or a trigger: {attended: <event id>})
audience:
  lists: []
start: invite
steps:
  invite: {type: send_email, message_id: 0, next: pause}
  pause: {type: wait, duration: P2D, next: opened}
  opened: {type: condition, test: {opened: invite}, yes: lead, no: reminder}
  lead: {type: create_lead, topic: Follow-up}
  reminder: {type: send_email, message_id: 0}
"""
CHOICES = 200  # records offered in a select (newest first); the ones a journey names too
# Form fields shown at the top of a step's form rather than beside an input.
FORM_LEVEL = ("after", "branch", "type", "name", "action", "wait_kind", "definition", "state")


@dataclass
class Choices:
    """What the designer's selects offer (records the viewer may read) and the names of
    the records the definition names (the others show by number)."""

    messages: list[tuple[int, str]] = field(default_factory=list)
    lists: list[tuple[int, str]] = field(default_factory=list)
    segments: list[tuple[int, str]] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)
    models: list[tuple[int, str]] = field(default_factory=list)
    names: dict[tuple[str, int], str] = field(default_factory=dict)


def _choices(
    db: Session, viewer: Viewer, definition: Mapping[str, Any], *, offer: bool, messages: bool
) -> Choices:
    """Names for what ``definition`` names and, with ``offer``, the records to choose from
    (``messages``: ready ones too)."""
    principal = viewer.principal
    found = Choices()
    if offer:
        found.segments = [
            (s.id, s.name)
            for s in segment_service.list_segments(db=db, principal=principal, limit=CHOICES).items
        ]
        found.lists = [
            (m.id, m.name)
            for m in segment_service.list_lists(db=db, principal=principal, limit=CHOICES).items
        ]
        found.events = [
            (e.id, e.name)
            for e in event_service.list_events(db=db, principal=principal, limit=CHOICES).items
        ]
        found.models = [
            (m.id, m.name)
            for m in scoring_service.list_models(db=db, principal=principal, limit=CHOICES).items
        ]
    if offer and messages:
        for state in ("ready", "in_use"):  # both may be sent; drafts may not
            found.messages += [
                (m.id, m.name)
                for m in email_service.list_messages(
                    db=db, principal=principal, state=state, limit=CHOICES
                ).items
            ]
        found.messages.sort(key=lambda item: item[1].lower())
    for kind, items in (
        ("message", found.messages),
        ("list", found.lists),
        ("segment", found.segments),
        ("event", found.events),
        ("model", found.models),
    ):
        found.names.update(((kind, i), name) for i, name in items)
    wanted = design.references(definition)
    found.names.update(
        (("message", i), name)
        for i, name in email_service.message_names(
            db=db,
            principal=principal,
            ids={i for i in wanted["message"] if ("message", i) not in found.names},
        ).items()
    )
    getters: dict[str, Any] = {
        "list": lambda i: segment_service.get_list(db=db, principal=principal, list_id=i),
        "segment": lambda i: segment_service.get_segment(db=db, principal=principal, segment_id=i),
        "event": lambda i: event_service.get_event(db=db, principal=principal, event_id=i),
        "model": lambda i: scoring_service.get_model(db=db, principal=principal, model_id=i),
    }
    for kind, get in getters.items():
        for record_id in sorted(wanted[kind]):
            if (kind, record_id) not in found.names:
                with contextlib.suppress(NotFound):  # not the viewer's: shown by number
                    found.names[(kind, record_id)] = get(record_id).name
    return found


@router.get("/journeys")
def journeys_page(request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = "") -> Response:
    """The journeys the viewer may read, newest first."""
    error = None
    items: list[Any] = []
    next_cursor = None
    try:
        found = service.list_journeys(db=db, principal=viewer.principal, cursor=cursor or None)
        items, next_cursor = list(found.items), found.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    return page(
        request,
        "journeys/list.html",
        viewer,
        status_code=422 if error else 200,
        items=items,
        next_cursor=next_cursor,
        error=error,
        states=STATES,
    )


def _new_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "journeys/new.html",
        viewer,
        status_code=status_code,
        values=values,
        errors=errors or {},
        choices=_choices(db, viewer, {}, offer=True, messages=False),
        entries=jf.ENTRIES,
        starter=STARTER,
        may_choose_organization=segment_service.may_choose_organization(
            viewer.principal, service.JOURNEY
        ),
    )


@router.get("/journeys/new")
def new_journey(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """A new journey: its name, scope and who enters; the steps come in the designer."""
    values = {"name": "", "scope": "business_unit", "definition": "", **jf.audience_values({})}
    return _new_page(request, db, viewer, values)


def _chosen_twice(
    audience: dict[str, Any], trigger: dict[str, Any] | None, definition: dict[str, Any]
) -> bool:
    """Whether the form chose who enters while the YAML also says it."""
    named = trigger is not None or any(audience.values())
    written = definition.get("trigger") or any((definition.get("audience") or {}).values())
    return bool(named and written)


@router.post("/journeys/new")
def create_journey(
    request: Request, db: WebDb, viewer: CurrentViewer, form: FormFields, _: CsrfChecked
) -> Response:
    values: dict[str, Any] = {k: form_text(form, k) for k in ("name", "scope", "definition")}
    values.update(jf.audience_typed(form))
    try:
        if not values["name"].strip():
            raise ValidationFailed("give the journey a name", field="name")
        definition = jd.from_text(values["definition"], field="definition")
        audience, trigger = jf.audience_from_form(form)
        if _chosen_twice(audience, trigger, definition):
            raise ValidationFailed(
                "who enters is chosen both above and in the YAML: keep one", field="entry"
            )
        if trigger is not None or any(audience.values()):
            definition = design.set_audience(definition, audience=audience, trigger=trigger)
        row = service.create_journey(
            db=db,
            principal=viewer.principal,
            name=values["name"].strip()[:200],
            scope=values["scope"] or "business_unit",
            definition=definition,
        )
    except (ValidationFailed, Forbidden) as exc:
        db.rollback()
        where = jf.FORM_FIELD.get(exc.field or "", exc.field or "form")
        field = where.split(".")[0]
        message = exc.message if field != "definition" else f"{exc.field}: {exc.message}"
        return _new_page(request, db, viewer, values, {field: message}, exc.status_code)
    return RedirectResponse(f"/journeys/{row.id}", status_code=303)


@dataclass
class Open:
    """The designer form a page shows open: a new step's settings (``add``), a step being
    edited (``edit``), or who enters (``audience``); what was typed, and the error."""

    mode: str
    name: str | None = None  # the step edited
    after: str | None = None  # a new step's place
    branch: str = "next"
    type: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _designer(
    db: Session,
    viewer: Viewer,
    journey: Journey,
    *,
    writable: bool,
    at_step: Mapping[str, int],
    opened: Open | None,
) -> dict[str, Any]:
    """What the Who enters and Steps sections show."""
    definition = journey.definition
    editable = writable and journey.state == "draft"
    exclusions_only = writable and journey.state in ("live", "paused")
    choices = _choices(db, viewer, definition, offer=editable or exclusions_only, messages=editable)
    nodes = design.outline(definition, choices.names)
    rows = design.flatten(nodes)
    values = {r.name: jf.values_of(r.step, zone=viewer.time_zone) for r in rows}
    if opened is not None and opened.mode == "edit" and opened.name in values:
        values[opened.name] = opened.values
    audience = jf.audience_values(definition)
    if opened is not None and opened.mode == "audience":
        audience = opened.values
    return {
        "editable": editable,
        "exclusions_only": exclusions_only,
        "nodes": nodes,
        "rows": rows,
        "reached": [n for n in nodes if n.row.reached],
        "unreached": [n for n in nodes if not n.row.reached],
        "keys": {r.name: i for i, r in enumerate(rows)},
        "values": values,
        "open": opened,
        "choices": choices,
        "at_step": at_step,
        "audience": audience,
        "audience_summary": design.audience_summary(definition, choices.names),
        "summaries": {r.name: r.summary for r in rows},
        "field_labels": jf.FIELD_LABELS,
        "step_types": design.STEP_TYPES,
        "test_kinds": design.TEST_KINDS,
        "ops": design.OPS,
        "wait_kinds": design.WAIT_KINDS,
        "entries": jf.ENTRIES,
        "contact_fields": jd.CONTACT_FIELDS,
    }


def _detail(
    request: Request,
    db: Session,
    viewer: Viewer,
    journey: Journey,
    *,
    text: str | None = None,
    error: GatherlyError | None = None,
    notice: str = "",
    simulation: explain.Simulation | None = None,
    explained: explain.Explanation | None = None,
    explain_q: str = "",
    who: dict[str, Any] | None = None,
    opened: Open | None = None,
    status_code: int = 200,
) -> Response:
    problems = (
        service.check(db=db, principal=viewer.principal, journey_id=journey.id)
        if journey.state == "draft"
        else []
    )
    progress = service.progress(db=db, principal=viewer.principal, journey_id=journey.id)
    rights = may(db, viewer, service.JOURNEY, journey)
    return page(
        request,
        "journeys/detail.html",
        viewer,
        status_code=error.status_code if error else status_code,
        journey=journey,
        text=text if text is not None else jd.to_text(journey.definition),
        yaml_open=text is not None,
        error=error,
        notice=notice,
        problems=problems,
        progress=progress,
        steps=list(jd.parse(journey.definition).steps),
        scoping_on=segment_service.scoping_on(db=db),
        simulation=simulation,
        explained=explained,
        explain_q=explain_q,
        who=who,
        states=STATES,
        o=opened,
        d=_designer(
            db,
            viewer,
            journey,
            writable=rights["may_write"],
            at_step=progress.at_step,
            opened=opened,
        ),
        **rights,
    )


def _refused(
    request: Request,
    db: Session,
    viewer: Viewer,
    journey_id: int,
    exc: GatherlyError,
    text: str | None = None,
    opened: Open | None = None,
) -> Response:
    """The journey's page again, saying why the change was refused (nothing changed)."""
    db.rollback()
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    return _detail(request, db, viewer, journey, text=text, error=exc, opened=opened)


def _notice(saved: bool, added: str, removed: str) -> str:
    if added:
        return f"Added the step {added[:40]}."
    if removed:
        gone = removed.split(",")[:200]
        if len(gone) == 1:
            return f"Removed the step {gone[0][:40]}."
        rest = ", ".join(g[:40] for g in gone[1:])
        return (
            f"Removed the step {gone[0][:40]} and the {len(gone) - 1} steps on its branches: "
            f"{rest}."
        )
    return "Saved." if saved else ""


def _adding(journey: Journey, add: str, after: str, branch: str) -> Open:
    """The settings form of a new step (``add``: its type) after ``after``."""
    steps = journey.definition.get("steps") or {}
    if add not in design.STEP_TYPES:
        raise ValidationFailed("choose what the new step does", field="type")
    if after and after not in steps:
        raise ValidationFailed(f"the journey has no step “{after[:40]}”", field="after")
    if after and steps[after].get("type") == "condition":
        branch = branch if branch in ("yes", "no") else "yes"
    else:
        branch = "next"
    return Open("add", after=after or None, branch=branch, type=add, values=jf.defaults(add))


@router.get("/journeys/{journey_id}")
def journey_page(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    saved: bool = False,
    added: str = "",
    removed: str = "",
    add: str = "",
    after: str = "",
    branch: str = "",
    step: str = "",
    outcome: str = "",
    status: str = "",
    cursor: str = "",
) -> Response:
    """A journey: who enters and its steps (``add``: the form of a new step of that type
    after ``after``, on ``branch``), its check, state, progress; ``q``: explain that
    contact; ``step`` (``outcome``) or ``status``: who is there."""
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    explained = None
    error: GatherlyError | None = None
    who = None
    opened = None
    if add:
        try:
            opened = _adding(journey, add[:40], after[:40], branch[:4])
        except ValidationFailed as exc:
            error = exc
    if step or status:
        try:
            found = service.people(
                db=db,
                principal=viewer.principal,
                journey_id=journey.id,
                step=step[:40] or None,
                outcome=outcome[:40] or None,
                status=status[:20] or None,
                cursor=cursor or None,
            )
            who = {
                "items": list(found.items),
                "next_cursor": found.next_cursor,
                "query": {"step": step, "outcome": outcome, "status": status},
            }
        except ValidationFailed as exc:
            error = exc
    if q.strip():
        contact = preview_contact(db, viewer, q)
        if contact is None:
            error = NotFound(f"no contact you may read matches “{q.strip()[:200]}”", field="q")
        else:
            explained = explain.explain(
                db=db, principal=viewer.principal, journey_id=journey.id, contact_id=contact.id
            )
    return _detail(
        request,
        db,
        viewer,
        journey,
        explained=explained,
        explain_q=q,
        error=error,
        who=who,
        opened=opened,
        notice=_notice(saved, added, removed),
    )


@router.post("/journeys/{journey_id}")
def save_journey(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    text = form_text(form, "definition")
    try:
        definition = jd.from_text(text, field="definition")
        service.update_journey(
            db=db,
            principal=viewer.principal,
            journey_id=journey_id,
            changes={"definition": definition},
        )
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _refused(request, db, viewer, journey_id, exc, text=text)
    return RedirectResponse(f"/journeys/{journey_id}?saved=1", status_code=303)


def _on_form(exc: GatherlyError) -> GatherlyError:
    """The error, naming the form field that holds the setting at fault."""
    where = jf.FORM_FIELD.get(exc.field or "", exc.field)
    return type(exc)(exc.message, field=where)


def _save(db: Session, viewer: Viewer, journey_id: int, definition: dict[str, Any]) -> None:
    service.update_journey(
        db=db, principal=viewer.principal, journey_id=journey_id, changes={"definition": definition}
    )


def _design_refused(
    request: Request,
    db: Session,
    viewer: Viewer,
    journey_id: int,
    exc: GatherlyError,
    opened: Open | None,
) -> Response:
    """The page again (422 …), the designer's form open with the error beside its field."""
    error = _on_form(exc)
    if opened is not None:
        at_form = not error.field or error.field in FORM_LEVEL
        opened.errors = {"form" if at_form else str(error.field): error.message}
    return _refused(request, db, viewer, journey_id, error, opened=opened)


@router.post("/journeys/{journey_id}/steps")
def design_steps(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """The designer's changes to the steps: ``action`` add (a ``type`` of step after
    ``after``, on ``branch``), edit (the step ``name``'s settings) or remove (``name``)."""
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    action = jf.text(form, "action")
    name = jf.text(form, "name")[:40]
    kind = jf.text(form, "type")[:40]
    opened: Open | None = None
    query: dict[str, str] = {}
    try:
        if action == "add":
            after = jf.text(form, "after")[:40] or None
            opened = Open(
                "add", after=after, branch=jf.text(form, "branch")[:4] or "next", type=kind,
                values=jf.typed(form),
            )  # fmt: skip
            step = jf.step_from_form(form, kind, zone=viewer.time_zone)
            definition, name = design.add_step(
                journey.definition, after=after, branch=opened.branch, step=step
            )
            query = {"added": name}
        elif action == "edit":
            old = (journey.definition.get("steps") or {}).get(name) or {}
            opened = Open("edit", name=name, type=str(old.get("type", "")), values=jf.typed(form))
            if not old:
                raise ValidationFailed(f"the journey has no step “{name}”", field="name")
            step = jf.step_from_form(form, opened.type, zone=viewer.time_zone)
            definition = design.edit_step(journey.definition, name=name, fields=step)
            query = {"saved": "1"}
        elif action == "remove":
            definition, gone = design.remove_step(journey.definition, name=name)
            query = {"removed": ",".join(gone)}
            name = (journey.definition.get("steps") or {}).get(name, {}).get("next") or ""
        else:
            raise ValidationFailed("the designer adds, edits or removes a step", field="action")
        _save(db, viewer, journey_id, definition)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _design_refused(request, db, viewer, journey_id, exc, opened)
    anchor = f"#step-{quote(name)}" if name else "#steps"
    return RedirectResponse(f"/journeys/{journey_id}?{urlencode(query)}{anchor}", status_code=303)


@router.post("/journeys/{journey_id}/audience")
def design_audience(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Who enters: segments and lists, or a trigger; and the excluded segments (all a
    running journey may change: ``only=exclusions``)."""
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    opened = Open("audience", values=jf.audience_typed(form))
    try:
        if jf.text(form, "only") == "exclusions":
            current = dict(journey.definition.get("audience") or {})
            current["exclude_segments"] = jf.audience_from_form(form)[0]["exclude_segments"]
            opened.values = {
                **jf.audience_values(journey.definition),
                "exclude_segments": opened.values["exclude_segments"],
            }
            audience, trigger = current, journey.definition.get("trigger")
        else:
            audience, trigger = jf.audience_from_form(form)
        definition = design.set_audience(journey.definition, audience=audience, trigger=trigger)
        _save(db, viewer, journey_id, definition)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _design_refused(request, db, viewer, journey_id, exc, opened)
    return RedirectResponse(f"/journeys/{journey_id}?saved=1#who-enters", status_code=303)


@router.post("/journeys/{journey_id}/copy")
def copy_journey(
    journey_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """A draft copy of the journey (how a running journey changes more than it may)."""
    try:
        made = service.copy_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    except Forbidden as exc:
        return _refused(request, db, viewer, journey_id, exc)
    return RedirectResponse(f"/journeys/{made.id}", status_code=303)


@router.post("/journeys/{journey_id}/live")
def go_live(
    journey_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    try:
        service.go_live(db=db, principal=viewer.principal, journey_id=journey_id)
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, journey_id, exc)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/state")
def set_state(
    journey_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    try:
        service.set_state(
            db=db, principal=viewer.principal, journey_id=journey_id, state=form_text(form, "state")
        )
    except (ValidationFailed, Conflict) as exc:
        return _refused(request, db, viewer, journey_id, exc)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/simulate")
def simulate(
    journey_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    journey = service.get_journey(db=db, principal=viewer.principal, journey_id=journey_id)
    try:
        found = explain.simulate(db=db, principal=viewer.principal, journey_id=journey_id)
    except ValidationFailed as exc:
        return _detail(request, db, viewer, journey, error=exc)
    return _detail(request, db, viewer, journey, simulation=found)
