"""Scoring models and lead scores: make, change, take live, read, explain (SPEC B9).

A scoring model is an owned record read and changed through the access engine. A live
model's scores are kept by the worker (``scoring.jobs``): incrementally as interactions
arrive, and in full after the model changes or as its windows move on. Each score is
owned by the model's owner — assigning the model moves its scores with it — so whether a
viewer sees a score follows the viewer's roles and BU, not whether they may read the
person (B9).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.capture.models import MarketingForm, MarketingPage
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, Lead
from gatherly.contact.schemas import OwnerRef
from gatherly.core import audit, changes, csvout
from gatherly.core.csvout import CsvExport
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, NotFound, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.email.models import EmailMessage
from gatherly.event.models import MarketingEvent
from gatherly.scoring import definition as sd
from gatherly.scoring import engine
from gatherly.scoring.models import CONTACT, DRAFT, LEAD, LIVE, LeadScore, ScoringModel
from gatherly.segment import criteria

MODEL, SCORE = "scoring_model", "lead_score"
TARGETS = (CONTACT, LEAD)
FIELDS = ("name", "description", "target", "conditions", "grades", "sales_ready")
# What an interaction condition may name, by its field: (record type, model, noun).
REFERENCES = {
    "message_id": ("email_message", EmailMessage, "email message"),
    "form_id": ("marketing_form", MarketingForm, "marketing form"),
    "page_id": ("marketing_page", MarketingPage, "marketing page"),
}
NOUNS = {"message_id": "the email", "form_id": "the form", "page_id": "the page"}


def get_model(
    *,
    db: Session,
    principal: access.Principal,
    model_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> ScoringModel:
    """A scoring model the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(
        db, principal, MODEL, model_id, noun="scoring model", privilege=privilege, field=field
    )
    return cast(ScoringModel, found)


def list_models(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the scoring models the caller may read, newest first."""
    where = ScoringModel.state == state if state else None
    return owned.page(
        db, principal, ScoringModel, MODEL, q=q, cursor=cursor, limit=limit, where=where
    )


def _check(db: Session, principal: access.Principal, values: dict[str, Any]) -> None:
    """Shape, then the records the conditions name: each must be one the caller may read."""
    if not str(values.get("name") or "").strip():
        raise ValidationFailed("name cannot be empty", field="name")
    if values.get("target") not in TARGETS:
        raise ValidationFailed("target is 'contact' or 'lead'", field="target")
    threshold = values.get("sales_ready")
    if threshold is not None and (
        not isinstance(threshold, int) or isinstance(threshold, bool) or abs(threshold) > 10**9
    ):
        raise ValidationFailed("sales_ready is a whole number of points", field="sales_ready")
    sd.parse_grades(values.get("grades"))
    for chk in sd.parse_conditions(values.get("conditions")):
        c = chk.condition
        for key, (record_type, _model, noun) in REFERENCES.items():
            ref = getattr(c, key)
            if (
                ref is not None
                and access.get(db, principal=principal, record_type=record_type, record_id=ref)
                is None
            ):
                raise NotFound(
                    f"{chk.path}.{key}: {noun} {ref} not found", field=f"{chk.path}.{key}"
                )
        for path, _kind, ref in chk.references:
            found = access.get(
                db, principal=principal, record_type="marketing_event", record_id=ref
            )
            if found is None:
                raise NotFound(f"{path}: marketing event {ref} not found", field=path)


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    """The conditions and grades as stored (checked, defaults left out)."""
    out = dict(values)
    out["conditions"] = [
        chk.condition.model_dump(mode="json", exclude_unset=True)
        for chk in sd.parse_conditions(values.get("conditions"))
    ]
    out["grades"] = [g.model_dump(mode="json") for g in sd.parse_grades(values.get("grades"))]
    out["name"] = str(out["name"]).strip()
    return out


def create_model(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    target: str | None = CONTACT,
    conditions: Sequence[dict[str, Any]] | None = (),
    grades: Sequence[dict[str, Any]] | None = None,
    sales_ready: int | None = None,
    description: str | None = "",
    owner: OwnerRef | None = None,
) -> ScoringModel:
    """A draft model owned by ``owner`` (default: the caller); grades default to A–D, the
    target to contacts (a null given for either means the default)."""
    columns = owned.new_columns(db, principal, MODEL, owner)
    values = {
        "name": name,
        "description": description or "",
        "target": target or CONTACT,
        "conditions": list(conditions or ()),
        "grades": sd.DEFAULT_GRADES if grades is None else list(grades),
        "sales_ready": sales_ready,
    }
    _check(db, principal, values)
    row = ScoringModel(**_normalised(values), state=DRAFT, full_pending=True, **columns)
    db.add(row)
    db.flush()
    _audit(db, principal, row, "create", after=_state(row))
    return row


def _audit(
    db: Session, principal: access.Principal, row: ScoringModel, verb: str, **change: Any
) -> None:
    audit.log(
        db,
        actor=principal,
        action=f"scoring_model.{verb}",
        target_type=MODEL,
        target_id=row.id,
        target_label=row.name,
        **change,
    )


def _state(row: ScoringModel) -> dict[str, Any]:
    return {k: getattr(row, k) for k in (*FIELDS, "state")}


def update_model(
    *, db: Session, principal: access.Principal, model_id: int, changes: dict[str, Any]
) -> ScoringModel:
    """Change the fields given (needs Write). A live model is rescored in full by the
    worker after any change to what it scores."""
    row = get_model(db=db, principal=principal, model_id=model_id, privilege=Privilege.WRITE)
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationFailed(f"{unknown[0]} cannot be changed here", field=unknown[0])
    before = _state(row)
    values = {k: getattr(row, k) for k in FIELDS}
    values.update(changes)
    if values.get("description") is None:
        values["description"] = ""
    _check(db, principal, values)
    for key, value in _normalised(values).items():
        setattr(row, key, value)
    after = _state(row)
    if after == before:
        return row
    if any(before[k] != after[k] for k in ("target", "conditions", "grades", "sales_ready")):
        _pending(db, row)
    owned.touch(row, principal)
    db.flush()
    old, new = audit.diff(before, after)
    _audit(db, principal, row, "update", before=old, after=new)
    return row


def set_state(
    *, db: Session, principal: access.Principal, model_id: int, state: str
) -> ScoringModel:
    """Take a model live (the worker then scores everything it may read) or back to draft
    (its scores stay as they were, no longer kept up to date)."""
    row = get_model(db=db, principal=principal, model_id=model_id, privilege=Privilege.WRITE)
    if state not in (DRAFT, LIVE):
        raise ValidationFailed("state is 'draft' or 'live'", field="state")
    if row.state == state:
        return row
    if state == LIVE and not row.conditions:
        raise Conflict("a model needs at least one condition to go live", field="conditions")
    before = row.state
    row.state = state
    if state == LIVE:
        _pending(db, row)
    owned.touch(row, principal)
    db.flush()
    _audit(
        db,
        principal,
        row,
        f"{'live' if state == LIVE else 'stop'}",
        before={"state": before},
        after={"state": state},
    )
    return row


def delete_model(*, db: Session, principal: access.Principal, model_id: int) -> None:
    """Delete a model and its scores (needs Delete)."""
    row = get_model(db=db, principal=principal, model_id=model_id, privilege=Privilege.DELETE)
    _audit(db, principal, row, "delete", before=_state(row))
    db.delete(row)
    db.flush()


def assign_model(
    *, db: Session, principal: access.Principal, model_id: int, owner: OwnerRef
) -> ScoringModel:
    """Give a model to another owner (needs Assign); its scores follow it (B9), and the
    worker rescores it as the new owner reads."""
    row = get_model(db=db, principal=principal, model_id=model_id, privilege=Privilege.ASSIGN)
    bu_id = contact_service.resolve_owner(db=db, owner=owner)
    if not contact_service._owner_can_read(db, owner, MODEL):
        raise ValidationFailed(
            f"the new owner ({owner.type} {owner.id}) has no read privilege on scoring "
            "models, so it cannot own one",
            field="owner",
        )
    before = {"owner": dict(row.owner), "owning_bu_id": row.owning_bu_id}
    row.owner_type, row.owner_id, row.owning_bu_id = owner.type, owner.id, bu_id
    db.execute(
        update(LeadScore)
        .where(LeadScore.model_id == row.id)
        .values(owner_type=owner.type, owner_id=owner.id, owning_bu_id=bu_id)
        .execution_options(synchronize_session=False)
    )
    _pending(db, row)
    owned.touch(row, principal)
    db.flush()
    _audit(
        db,
        principal,
        row,
        "assign",
        before=before,
        after={"owner": dict(row.owner), "owning_bu_id": bu_id},
    )
    return row


def _pending(db: Session, row: ScoringModel) -> None:
    """Mark a model due a full rescore, and wake the worker when this commits."""
    row.full_pending = True
    changes.record(db, changes.SCORING_MODEL, ref_id=row.id)


def _live(db: Session, principal: access.Principal, model_id: int) -> ScoringModel:
    row = get_model(db=db, principal=principal, model_id=model_id, privilege=Privilege.WRITE)
    if row.state != LIVE:
        raise Conflict("only a live model scores: take it live first", field="state")
    return row


def request_rescore(*, db: Session, principal: access.Principal, model_id: int) -> ScoringModel:
    """Ask the worker for a full rescore of a live model (needs Write on it)."""
    row = _live(db, principal, model_id)
    _pending(db, row)
    db.flush()
    return row


def rescore_model(
    *, db: Session, principal: access.Principal, model_id: int, now: datetime | None = None
) -> engine.Rescored:
    """Rescore a live model in full now, in the caller's transaction (needs Write)."""
    return run_full(db, _live(db, principal, model_id), now=now or utcnow())


def run_full(db: Session, row: ScoringModel, *, now: datetime) -> engine.Rescored:
    """The full rescore of one model, and its record on the model (the worker's too)."""
    result = engine.rescore(db, row, now=now)
    row.full_pending = False
    row.scored_at, row.scored_count = now, result.scored
    row.score_seconds, row.score_error = round(result.seconds, 3), ""
    db.flush()
    return result


# ------------------------------------------------------------------ scores


@dataclass(frozen=True)
class ScoreView:
    """A score as a reader sees it: the row, its model's name and the person's label
    (None when the reader may not read the person)."""

    score: LeadScore
    model_name: str
    label: str | None


def list_scores(
    *,
    db: Session,
    principal: access.Principal,
    model_id: int | None = None,
    contact_id: int | None = None,
    lead_id: int | None = None,
    grade: str | None = None,
    sales_ready: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
    sort: str = "-score",
) -> Page:
    """A page of the scores the caller may read (B9: a score is its model owner's record;
    the person it is about may be one the caller cannot read, and is then not named)."""
    stmt = select(LeadScore)
    if model_id is not None:
        get_model(db=db, principal=principal, model_id=model_id, field="model_id")
        stmt = stmt.where(LeadScore.model_id == model_id)
    if contact_id is not None:
        stmt = stmt.where(LeadScore.contact_id == contact_id)
    if lead_id is not None:
        stmt = stmt.where(LeadScore.lead_id == lead_id)
    if grade is not None:
        stmt = stmt.where(LeadScore.grade == grade)
    if sales_ready is not None:
        stmt = stmt.where(LeadScore.sales_ready.is_(sales_ready))
    page = paginate(
        db,
        access.scope(stmt, principal=principal, record_type=SCORE),
        id_column=LeadScore.id,
        sortable={"id": LeadScore.id, "score": LeadScore.score},
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=views(db, principal, page.items), next_cursor=page.next_cursor)


def count_scores(
    *, db: Session, principal: access.Principal, model_id: int, sales_ready: bool | None = None
) -> int:
    """How many of a model's scores the caller may read."""
    stmt = select(func.count()).select_from(LeadScore).where(LeadScore.model_id == model_id)
    if sales_ready is not None:
        stmt = stmt.where(LeadScore.sales_ready.is_(sales_ready))
    return int(db.scalar(access.scope(stmt, principal=principal, record_type=SCORE)) or 0)


def readable_score_counts(
    *, db: Session, principal: access.Principal, model_ids: Sequence[int]
) -> dict[int, int]:
    """For each model, how many of its scores the caller may read (one statement): what a
    model's output says it scored, never the number of every score it holds."""
    if not model_ids:
        return {}
    stmt = (
        select(LeadScore.model_id, func.count())
        .where(LeadScore.model_id.in_(set(model_ids)))
        .group_by(LeadScore.model_id)
    )
    scoped = access.scope(cast("Select[Any]", stmt), principal=principal, record_type=SCORE)
    found = db.execute(scoped).all()
    return {model_id: int(n) for model_id, n in found}


def views(db: Session, principal: access.Principal, rows: Sequence[LeadScore]) -> list[ScoreView]:
    """Scores with their model's name and the person's label where the reader may read
    the person (two statements, whatever the number of rows)."""
    if not rows:
        return []
    names = dict(
        db.execute(
            select(ScoringModel.id, ScoringModel.name).where(
                ScoringModel.id.in_({r.model_id for r in rows})
            )
        ).all()
    )
    labels: dict[tuple[str, int], str] = {}
    people: tuple[tuple[str, Any, set[Any]], ...] = (
        ("contact", Contact, {r.contact_id for r in rows if r.lead_id is None}),
        ("lead", Lead, {r.lead_id for r in rows if r.lead_id is not None}),
    )
    for record_type, model, ids in people:
        if not ids:
            continue
        found = db.execute(
            access.scope(
                select(model).where(model.id.in_(ids)), principal=principal, record_type=record_type
            )
        ).scalars()
        for person in found:
            labels[(record_type, person.id)] = contact_service._label(person)
    return [
        ScoreView(
            score=r,
            model_name=names.get(r.model_id, ""),
            label=labels.get(("lead", r.lead_id) if r.lead_id else ("contact", r.contact_id)),
        )
        for r in rows
    ]


def scores_of(
    *,
    db: Session,
    principal: access.Principal,
    contact_id: int | None = None,
    lead_id: int | None = None,
) -> list[ScoreView]:
    """Every score of one contact (its own and its leads') or lead the caller may read,
    highest first: what a contact or lead page shows."""
    stmt = select(LeadScore)
    if lead_id is not None:
        stmt = stmt.where(LeadScore.lead_id == lead_id)
    else:
        stmt = stmt.where(LeadScore.contact_id == contact_id)
    stmt = access.scope(
        stmt.order_by(LeadScore.score.desc(), LeadScore.id), principal=principal, record_type=SCORE
    )
    return views(db, principal, list(db.execute(stmt.limit(200)).scalars()))


def get_score(*, db: Session, principal: access.Principal, score_id: int) -> LeadScore:
    """A score the caller may read (NotFound otherwise)."""
    return cast(LeadScore, owned.get(db, principal, SCORE, score_id, noun="score"))


# ------------------------------------------------------------------ explanation


@dataclass(frozen=True)
class Item:
    """One interaction that counted: when, and what it was about (None: a record the
    reader may not open — counted, but not named)."""

    at: datetime | None
    about_type: str
    about_id: int | None
    about: str | None


@dataclass(frozen=True)
class Part:
    """One condition of the model, what it found and the points it gave."""

    index: int
    name: str
    description: str
    points: int
    count: int | None  # matching interactions (None: a field condition)
    holds: bool
    earned: int
    items: list[Item] = field(default_factory=list)
    hidden: int = 0  # counted interactions the reader may not open


@dataclass(frozen=True)
class Explanation:
    """Why a score is what it is: each condition's points, from which interactions."""

    score: LeadScore
    model: ScoringModel
    parts: list[Part]
    total: int  # the score computed now (the stored one may be pending an update)
    grade: str | None
    label: str | None

    @property
    def current(self) -> bool:
        """Whether the stored score is what the model gives now."""
        return self.total == self.score.score


ITEMS = 20  # interactions listed per condition


def explain(
    *, db: Session, principal: access.Principal, score_id: int, now: datetime | None = None
) -> Explanation:
    """Each condition's points for the scored person, now. The counts are what the model
    counts (as its owner reads); the interactions listed are those the reader may read
    too, the others counted as hidden (SPEC B11)."""
    score = get_score(db=db, principal=principal, score_id=score_id)
    model = db.get(ScoringModel, score.model_id)
    assert model is not None
    now = now or utcnow()
    ctx = engine.context(db, model, now=now)
    both = criteria.Context(now, readers=(*ctx.readers, principal), dialect=ctx.dialect)
    parts = []
    checked = sd.parse_conditions(model.conditions)
    words = condition_words(db=db, principal=principal, checked=checked)
    for chk in checked:
        c = chk.condition
        if c.contact is not None:
            assert chk.node is not None
            holds = bool(
                db.scalar(
                    select(func.count()).where(
                        Contact.id == score.contact_id, criteria.compile_predicate(chk.node, ctx)
                    )
                )
            )
            parts.append(
                Part(
                    chk.index,
                    c.name,
                    words[chk.index],
                    c.points,
                    None,
                    holds,
                    c.points if holds else 0,
                )
            )
            continue
        rows = engine.interaction_rows(chk, ctx, now=now)
        n = (
            db.scalar(
                select(func.count())
                .select_from(rows.id.table)
                .where(*rows.where, rows.contact == score.contact_id)
            )
            or 0
        )
        seen = engine.interaction_rows(chk, both, now=now)
        listed = list(
            db.execute(
                select(seen.at, seen.about)
                .where(*seen.where, seen.contact == score.contact_id)
                .order_by(seen.at.desc())
                .limit(ITEMS)
            )
        )
        visible = (
            db.scalar(
                select(func.count())
                .select_from(seen.id.table)
                .where(*seen.where, seen.contact == score.contact_id)
            )
            or 0
        )
        names = _about_names(db, principal, rows.about_type, {a for _t, a in listed if a})
        items = [Item(at, rows.about_type, about, names.get(about)) for at, about in listed]
        holds = {sd.EACH: n > 0, sd.NEVER: n == 0}.get(c.frequency, n >= c.times)
        parts.append(
            Part(
                chk.index,
                c.name,
                words[chk.index],
                c.points,
                n,
                holds,
                engine.points_for(c, n),
                items,
                max(n - visible, 0),
            )
        )
    total = sum(p.earned for p in parts)
    grade = _grade(model.grades, total)
    label = views(db, principal, [score])[0].label
    return Explanation(score, model, parts, total, grade, label)


def _grade(grades: Sequence[dict[str, Any]], score: int) -> str | None:
    for g in grades:
        if g.get("min") is None or score >= g["min"]:
            return str(g["grade"])
    return None


def _about_names(
    db: Session, principal: access.Principal, record_type: str, ids: set[int]
) -> dict[int, str]:
    """The names of the records the reader may read, by id."""
    model: Any = {
        "marketing_event": MarketingEvent,
        "email_message": EmailMessage,
        "marketing_form": MarketingForm,
        "marketing_page": MarketingPage,
    }[record_type]
    if not ids:
        return {}
    stmt = access.scope(
        select(model.id, model.name).where(model.id.in_(ids)),
        principal=principal,
        record_type=record_type,
    )
    return {i: n for i, n in db.execute(stmt)}


INTERACTION_WORDS = {
    sd.REGISTERED: "registered for",
    sd.ATTENDED: "attended",
    sd.EMAIL_OPENED: "opened an email",
    sd.EMAIL_CLICKED: "clicked a link in an email",
    sd.FORM_SUBMITTED: "submitted a form",
    sd.PAGE_VISITED: "visited a page",
}


def condition_words(
    *, db: Session, principal: access.Principal, checked: Sequence[sd.Checked]
) -> dict[int, str]:
    """Each condition in words, by index, naming the events, emails, forms and pages it
    names where the reader may read them (by number otherwise)."""
    wanted: dict[str, set[int]] = {}
    for chk in checked:
        events = {ref for _path, kind, ref in chk.references if kind == "event"}
        wanted.setdefault("marketing_event", set()).update(events)
        for key, (record_type, _model, _noun) in REFERENCES.items():
            ref = getattr(chk.condition, key)
            if ref is not None:
                wanted.setdefault(record_type, set()).add(ref)
    names: dict[tuple[str, int], str] = {}
    for record_type, ids in wanted.items():
        kind = "event" if record_type == "marketing_event" else record_type
        for i, name in _about_names(db, principal, record_type, ids).items():
            names[(kind, i)] = name
    return {chk.index: describe(chk, names) for chk in checked}


def describe(chk: sd.Checked, names: criteria.Names) -> str:
    """A condition in words: "attended an event where type equals 'webinar' for at least
    30 min — each time, in the last 90 days". ``names`` holds the names of the records it
    names that the reader may read, by ``("event" | "email_message" | … , id)``."""
    c = chk.condition
    if c.contact is not None:
        assert chk.node is not None
        return chk.node.describe(names).replace("contact ", "the contact's ", 1)
    if chk.node is not None:
        what = chk.node.describe(names)
    else:
        what = INTERACTION_WORDS[c.interaction or ""]
        for key, (record_type, _m, _noun) in REFERENCES.items():
            ref = getattr(c, key)
            if ref is not None:
                name = names.get((record_type, ref))
                what += f" ({NOUNS[key]} “{name}”)" if name else f" ({NOUNS[key]} #{ref})"
    how = {
        sd.EACH: "each time",
        sd.NEVER: "never",
        sd.AT_LEAST: "at least once" if c.times == 1 else f"at least {c.times} times",
    }[c.frequency]
    window = f", in the last {c.within_days} days" if c.within_days else ""
    return f"{what} — {how}{window}"


# ------------------------------------------------------------------ export

EXPORT_COLUMNS = (
    "score_id",
    "record_id",
    "contact_id",
    "lead_id",
    "name",
    "score",
    "grade",
    "sales_ready",
    "sales_ready_at",
    "changed_at",
)


def export_scores(
    *,
    db: Session,
    principal: access.Principal,
    model_id: int,
    session_factory: Callable[[], Session],
    chunk: int = 1000,
) -> CsvExport:
    """A model's scores the caller may read, as CSV through the one writer (the person's
    name only where the caller may read the person); NotFound now, before rows stream."""
    get_model(db=db, principal=principal, model_id=model_id)

    def chunks() -> Iterator[str]:
        with session_factory() as own:
            yield from csvout.stream(EXPORT_COLUMNS, export_rows(own, principal, model_id, chunk))

    return CsvExport(f"scoring-model-{model_id}-scores.csv", chunks())


def export_rows(
    db: Session, principal: access.Principal, model_id: int, chunk: int = 1000
) -> Iterator[list[Any]]:
    """The CSV rows of a model's scores the caller may read (``EXPORT_COLUMNS``), by id,
    ``chunk`` scores per query."""
    stmt = access.scope(
        select(LeadScore).where(LeadScore.model_id == model_id),
        principal=principal,
        record_type=SCORE,
    ).order_by(LeadScore.id)
    last = 0
    while True:
        rows = list(db.execute(stmt.where(LeadScore.id > last).limit(chunk)).scalars())
        for v in views(db, principal, rows):
            s = v.score
            yield [
                s.id,
                s.record_id,
                s.contact_id,
                s.lead_id,
                v.label,
                s.score,
                s.grade,
                s.sales_ready,
                s.sales_ready_at,
                s.changed_at,
            ]
        if len(rows) < chunk:
            return
        last = rows[-1].id
