"""Duplicate-detection rules and the matching of incoming contacts and leads (SPEC B8, T8).

Every way a person enters Gatherly — the API, a CSV import, a form, LinkedIn, the Teams
sync — asks this module whether the person is already here before it creates a record.

- A **rule** names a record type and conditions over fields (exact, the same first or last
  N characters, case-insensitive, blanks ignored). Published rules are the ones used.
  The built-in rule of each type is the normalised email.
- With **BU scoping** on, a match is only a record in the same owning BU as the record
  being created; off, BUs are ignored.
- **No duplicates under concurrency.** The built-in rule's key is stored on the record
  (``match_key``: ``"<BU id>|<email>"`` with scoping on, ``"*|<email>"`` off) under a unique
  index, held by the oldest record with that key: an insert that would create a second one
  conflicts in the database and becomes a match. Other rules take a lock on their key for
  the transaction (an advisory lock on PostgreSQL, the write lock on SQLite) before they
  look. :func:`rekey` keeps the keys right when records change BU, email or scoping.

Matching runs as the system (it must see every record to keep the database free of
duplicates); what a *user* is shown of the matches is filtered by the caller through the
access engine (``contact.service``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access import registry
from gatherly.access.levels import Privilege
from gatherly.contact.models import (
    RULE_FIELDS,
    Contact,
    DuplicateRule,
    Lead,
    PersonMixin,
)
from gatherly.core import audit, changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, NotFound, ValidationFailed
from gatherly.org import service as org_service

MODELS: dict[str, type[Contact] | type[Lead]] = {"contact": Contact, "lead": Lead}
CHUNK = 500


def scoping(db: Session) -> bool:
    """Whether matching considers the owning BU (B8 follows the BU scoping switch)."""
    return org_service.feature_enabled(db=db, name=org_service.BU_SCOPING)


# ------------------------------------------------------------------ rules


@dataclass(frozen=True)
class Rule:
    """A rule ready to compare records: its conditions as Python and SQL transforms."""

    id: int
    name: str
    record_type: str
    conditions: tuple[Mapping[str, Any], ...]
    ignore_blank: bool
    builtin: bool

    @classmethod
    def of(cls, row: DuplicateRule) -> Rule:
        return cls(
            row.id,
            row.name,
            row.record_type,
            tuple(row.conditions),
            row.ignore_blank,
            row.builtin,
        )

    def code(self, values: Mapping[str, Any]) -> tuple[str, ...] | None:
        """What a record with ``values`` is compared by; None when it cannot match."""
        out = []
        for cond in self.conditions:
            value = _transform(values.get(cond["field"]), cond)
            if value == "" and self.ignore_blank:
                return None
            out.append(value)
        return tuple(out)

    def where(
        self, model: type[PersonMixin], values: Mapping[str, Any], dialect: str
    ) -> ColumnElement[bool]:
        """The SQL condition of records the same as ``values`` by this rule. Both sides go
        through the same SQL functions, so the database's idea of case decides alike."""
        parts = []
        for cond in self.conditions:
            column = getattr(model, cond["field"])
            value = values.get(cond["field"])
            if _stored_as_compared(cond):
                # Emails are stored normalised: an indexed equality, not a computed column.
                parts.append(column == value)
            else:
                theirs = _sql_transform(column, cond, dialect)
                parts.append(theirs == _sql_transform(literal(value or "", String), cond, dialect))
        return and_(*parts)

    def sql_code(self, model: type[PersonMixin], dialect: str) -> list[ColumnElement[str]]:
        """The code as SQL expressions (the bulk duplicate job groups by them)."""
        return [
            _sql_transform(getattr(model, cond["field"]), cond, dialect) for cond in self.conditions
        ]

    def sql_blank(self, model: type[PersonMixin], dialect: str) -> ColumnElement[bool]:
        """True for records this rule never matches (a blank value, blanks ignored)."""
        if not self.ignore_blank:
            return false()
        return or_(*(expr == "" for expr in self.sql_code(model, dialect)))

    def describe(self) -> str:
        """The rule in words: "same email (ignoring case)"."""
        return ", ".join(describe_condition(c) for c in self.conditions)


def _stored_as_compared(cond: Mapping[str, Any]) -> bool:
    return bool(cond["field"] == "email" and cond.get("match", "exact") == "exact")


def _transform(value: Any, cond: Mapping[str, Any]) -> str:
    text_value = "" if value is None else str(value).strip(" ")
    if cond.get("ignore_case", True):
        text_value = text_value.lower()
    n = cond.get("length") or 0
    if cond.get("match") == "first":
        return text_value[:n]
    if cond.get("match") == "last":
        return text_value[-n:] if n else ""
    return text_value


def _sql_transform(column: Any, cond: Mapping[str, Any], dialect: str) -> ColumnElement[str]:
    expr: ColumnElement[str] = func.trim(func.coalesce(column, ""))
    if cond.get("ignore_case", True):
        expr = func.unicode_lower(expr) if dialect == "sqlite" else func.lower(expr)
    n = cond.get("length") or 0
    if cond.get("match") == "first":
        return func.substr(expr, 1, n)
    if cond.get("match") == "last":
        return func.substr(expr, -n) if dialect == "sqlite" else func.right(expr, n)
    return expr


FIELD_LABELS = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    "company": "company",
    "job_title": "job title",
    "phone": "phone",
    "country": "country",
}


def describe_condition(cond: Mapping[str, Any]) -> str:
    """One condition in words."""
    label = FIELD_LABELS.get(cond["field"], cond["field"])
    match = cond.get("match", "exact")
    said = (
        f"same {label}"
        if match == "exact"
        else f"same {'first' if match == 'first' else 'last'} {cond.get('length')} "
        f"characters of {label}"
    )
    return said + (" (ignoring case)" if cond.get("ignore_case", True) else "")


def published_rules(db: Session, record_type: str) -> list[Rule]:
    """The published rules of a type, the built-in one first."""
    rows = db.scalars(
        select(DuplicateRule)
        .where(DuplicateRule.record_type == record_type, DuplicateRule.published)
        .order_by(DuplicateRule.builtin.desc(), DuplicateRule.id)
    )
    return [Rule.of(r) for r in rows]


def rules_for(db: Session, record_type: str, rule_ids: Sequence[int] | None) -> list[Rule]:
    """The rules an entry point applies: the ones it names (published or not: a form picks
    its rule), else every published rule of the type."""
    if rule_ids is None:
        return published_rules(db, record_type)
    rows = db.scalars(
        select(DuplicateRule).where(
            DuplicateRule.id.in_(list(rule_ids)), DuplicateRule.record_type == record_type
        )
    ).all()
    missing = set(rule_ids) - {r.id for r in rows}
    if missing:
        raise ValidationFailed(
            f"duplicate detection rule {min(missing)} is not a {record_type} rule",
            field="rule_id",
        )
    return [Rule.of(r) for r in sorted(rows, key=lambda r: (not r.builtin, r.id))]


# ------------------------------------------------------------------ keys


def key_of(email: str | None, bu_id: int, scoped: bool) -> str | None:
    """The built-in rule's key of a record (None without an email)."""
    if not email:
        return None
    return f"{bu_id if scoped else '*'}|{email}"


def rekey(db: Session, *, record_type: str, emails: Any = None) -> None:
    """Give the built-in key to the oldest record of each (BU,) email group among the groups
    of ``emails`` (a list or a select of emails; None: every record), NULL to the others.
    Two statements, whatever the number of records."""
    model = MODELS[record_type]
    scoped = scoping(db)
    email: ColumnElement[str] = model.email  # type: ignore[assignment]
    key = cast(model.owning_bu_id, String) + "|" + email if scoped else literal("*|") + email
    if emails is None:
        chosen: ColumnElement[bool] = model.email.is_not(None)
    elif isinstance(emails, list | set | tuple):
        values = sorted({e for e in emails if e})
        if not values:
            return
        chosen = model.email.in_(values)
    else:
        chosen = model.email.in_(emails)
    db.execute(
        update(model)
        .where(chosen, model.match_key.is_not(None))
        .values(match_key=None)
        .execution_options(synchronize_session=False)
    )
    groups = (model.owning_bu_id, model.email) if scoped else (model.email,)
    holders = select(func.min(model.id)).where(chosen).group_by(*groups)
    db.execute(
        update(model)
        .where(model.id.in_(holders))
        .values(match_key=key)
        .execution_options(synchronize_session=False)
    )
    for record in db.identity_map.values():
        if isinstance(record, model):
            db.expire(record, ["match_key"])


def _owners_moved(db: Session, *, owner_type: str, owner_id: int) -> None:
    if not scoping(db):
        return  # keys without BU do not change when records change BU
    for record_type, model in MODELS.items():
        emails = select(model.email).where(
            model.owner_type == owner_type, model.owner_id == owner_id
        )
        rekey(db, record_type=record_type, emails=emails)


def _scoping_changed(db: Session) -> None:
    for record_type in MODELS:
        rekey(db, record_type=record_type)


def _owners_moving(db: Session, *, owner_type: str, owner_id: int) -> None:
    for record_type, model in MODELS.items():
        emails = db.scalars(
            select(model.email).where(model.owner_type == owner_type, model.owner_id == owner_id)
        )
        hold(db, record_type=record_type, emails=emails)


registry.on(registry.OWNERS_MOVING, _owners_moving)
registry.on(registry.OWNERS_MOVED, _owners_moved)
registry.on(registry.SCOPING_CHANGED, _scoping_changed)


CLAIMS = 1024  # claims a writer can take: people share them when there are more


def hold(db: Session, *, record_type: str, emails: Iterable[str | None]) -> None:
    """Claim these people (by email, in any BU) for the rest of the transaction, all at
    once and in one order, before anything of them is changed. Two writers of many people
    (imports) that claim first never wait on each other in a circle, which PostgreSQL would
    end by rolling one back as a deadlock: the second waits for the first to commit, then
    finds what it made.

    PostgreSQL's transaction-level advisory locks, in ascending order; people share one of
    ``CLAIMS`` claims per record type (by a hash of the email), which bounds the locks a
    transaction holds (the server's lock table is small) — large imports therefore take
    turns. Nothing on SQLite, whose writers take turns anyway."""
    if db.get_bind().dialect.name != "postgresql":
        return
    # The claims this transaction holds already (an import's rows each pass through the
    # edit, which claims again): asked for again, they would cost a round trip each.
    transaction = db.get_transaction()
    held_in, held = db.info.get(_HELD, (None, set()))
    if held_in is not transaction:
        held = set()
    claims = sorted({_claim(record_type, e) for e in emails if e} - held)
    if claims:
        db.execute(
            text("SELECT count(pg_advisory_xact_lock(c)) FROM unnest(CAST(:c AS bigint[])) c"),
            {"c": claims},
        )
        db.info[_HELD] = (db.get_transaction(), held | set(claims))


_HELD = "gatherly.claims_held"


def _claim(record_type: str, email: str) -> int:
    key = email.strip().lower().encode()
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % CLAIMS
    # One range of claims per record type, clear of other users of advisory locks.
    return _CLAIM_BASE + sorted(MODELS).index(record_type) * CLAIMS + bucket


_CLAIM_BASE = 0x6761_7468_0000  # "gath": the application's own range of advisory lock keys


# ------------------------------------------------------------------ finding


def find(
    db: Session,
    *,
    record_type: str,
    values: Mapping[str, Any],
    bu_id: int,
    rules: Sequence[Rule] | None = None,
    exclude_id: int | None = None,
    limit: int = 20,
) -> list[PersonMixin]:
    """Records that are the same person as ``values`` by any of ``rules`` (the published
    ones by default), oldest first; in ``bu_id`` when scoping is on."""
    model = MODELS[record_type]
    rules = published_rules(db, record_type) if rules is None else rules
    dialect = db.get_bind().dialect.name
    matches = [
        rule.where(model, values, dialect) for rule in rules if rule.code(values) is not None
    ]
    if not matches:
        return []
    stmt = select(model).where(or_(*matches))
    if scoping(db):
        stmt = stmt.where(model.owning_bu_id == bu_id)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    return list(db.scalars(stmt.order_by(model.id).limit(limit)))


def lock(db: Session, *, rules: Sequence[Rule], values: Mapping[str, Any], bu_id: int) -> None:
    """Hold the keys of the rules that have no stored key until the transaction ends, so a
    concurrent intake of the same person waits and then finds this one."""
    codes = [
        (rule.id, code)
        for rule in rules
        if not rule.builtin and (code := rule.code(values)) is not None
    ]
    if not codes:
        return
    scope = bu_id if scoping(db) else "*"
    if db.get_bind().dialect.name == "postgresql":
        for rule_id, code in sorted(codes):
            digest = hashlib.blake2b(repr((rule_id, scope, code)).encode(), digest_size=8)
            number = int.from_bytes(digest.digest(), "big", signed=True)
            db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
    else:
        # SQLite has one writer: taking the write lock now serialises every intake after it.
        db.execute(update(DuplicateRule).where(false()).values(name=DuplicateRule.name))


def _builtin(rules: Sequence[Rule]) -> bool:
    return any(r.builtin for r in rules)


def create_claiming(
    db: Session, *, model: type[PersonMixin], columns: dict[str, Any], claim: bool
) -> tuple[PersonMixin | None, bool]:
    """Insert a record holding its built-in key when the key is free. With ``claim`` (the
    built-in rule applies) a held key means the person was made meanwhile: nothing is
    inserted and (None, False) is returned, for the caller to match it. Otherwise the
    record is inserted without the key (a duplicate someone asked for).
    Returns (record, holds_key)."""
    scoped = scoping(db)
    key = key_of(columns.get("email"), columns["owning_bu_id"], scoped)
    if key is not None:
        ids, made = _upsert(db, model, [{**columns, "match_key": key}], (), columns["created_at"])
        if key in made:
            return db.get_one(model, ids[key]), True
        if claim:
            return None, False
    record = model(**{**columns, "match_key": None})
    db.add(record)
    db.flush()
    return record, False


# ------------------------------------------------------------------ one intake


@dataclass(frozen=True)
class Intake:
    """The record a person arriving became: found (``created`` False) or made."""

    record: PersonMixin
    created: bool


def intake(
    db: Session,
    *,
    record_type: str,
    values: Mapping[str, Any],
    owner_type: str,
    owner_id: int,
    bu_id: int,
    rules: Sequence[Rule] | None = None,
    update_fields: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Intake:
    """Match one arriving person (a form submission, a LinkedIn lead) by ``rules`` (the
    published ones by default) as the system, or make the record, owned as given. The same
    person arriving twice at once makes one record: the built-in key is unique, and the
    other rules' keys are locked first. ``update_fields`` are copied onto a match when not
    blank; ``extra`` columns (origin, …) are written on a new record."""
    model = MODELS[record_type]
    rules = published_rules(db, record_type) if rules is None else rules
    lock(db, rules=rules, values=values, bu_id=bu_id)
    for attempt in range(2):
        found = find(db, record_type=record_type, values=values, bu_id=bu_id, rules=rules, limit=1)
        if found:
            record = found[0]
            changed = {
                f: values[f]
                for f in update_fields
                if values.get(f) not in (None, "") and getattr(record, f) != values[f]
            }
            if changed:
                for name, value in changed.items():
                    setattr(record, name, value)
                record.modified_at = utcnow()
                db.flush()
                if "email" in changed:
                    rekey(db, record_type=record_type, emails=[record.email])
            return Intake(record, False)
        if attempt:
            break
        now = utcnow()
        columns = {
            **_BLANK,
            **{f: values[f] for f in RULE_FIELDS if values.get(f) is not None},
            "custom": dict(values.get("custom") or {}),
            "owner_type": owner_type,
            "owner_id": owner_id,
            "owning_bu_id": bu_id,
            "created_at": now,
            "modified_at": now,
            **(extra or {}),
        }
        made, _ = create_claiming(db, model=model, columns=columns, claim=_builtin(rules))
        if made is not None:
            return Intake(made, True)
    raise RuntimeError("a record holds the key but matches nothing")  # rekey keeps them true


# ------------------------------------------------------------------ bulk intake


@dataclass(frozen=True)
class Incoming:
    """One person arriving in bulk: the owner and owning BU a new record would get, and
    its fields."""

    owner_type: str
    owner_id: int
    bu_id: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class BulkResult:
    """Per incoming row, the record id (None without an email) and whether it was made."""

    ids: list[int | None]
    created: list[bool]


def find_by_email(
    db: Session, *, record_type: str, emails: Iterable[str], bu_id: int | None
) -> dict[str, int]:
    """Email → the oldest record with it (in ``bu_id`` when scoping is on): the built-in
    rule, many at once."""
    model = MODELS[record_type]
    scoped = scoping(db) and bu_id is not None
    values = sorted(set(emails))
    out: dict[str, int] = {}
    for start in range(0, len(values), CHUNK):
        stmt = (
            select(model.email, func.min(model.id))
            .where(model.email.in_(values[start : start + CHUNK]))
            .group_by(model.email)
        )
        if scoped:
            stmt = stmt.where(model.owning_bu_id == bu_id)
        out.update({str(e): i for e, i in db.execute(stmt)})
    return out


_BLANK = {f: "" for f in RULE_FIELDS} | {"email": None, "country": None}


def intake_many(
    db: Session,
    *,
    record_type: str,
    rows: Sequence[Incoming],
    update_fields: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> BulkResult:
    """Match many arriving people by the built-in rule and make those not found: one
    ``INSERT … ON CONFLICT (match_key)`` per 500 people, so a person made by a concurrent
    intake meanwhile is matched, never made twice. ``update_fields`` are copied onto matched
    records when not blank; ``extra`` columns are written on the records made (origin, …).
    Contacts made or changed are noted for the segments that depend on them."""
    model = MODELS[record_type]
    scoped = scoping(db)
    now = utcnow()
    keys = [key_of(r.values.get("email"), r.bu_id, scoped) for r in rows]
    wanted: dict[str, dict[str, Any]] = {}
    for row, key in zip(rows, keys, strict=True):
        if key is None:
            continue
        values = {f: row.values[f] for f in RULE_FIELDS if row.values.get(f) is not None}
        if key in wanted:  # the same person twice in one go: the later values win
            wanted[key].update({f: v for f, v in values.items() if v != ""})
            continue
        wanted[key] = {
            **_BLANK,
            **values,
            "custom": {},
            "owner_type": row.owner_type,
            "owner_id": row.owner_id,
            "owning_bu_id": row.bu_id,
            "created_at": now,
            "modified_at": now,
            **(extra or {}),
            "match_key": key,
        }
    ids, made = _upsert(db, model, [wanted[k] for k in sorted(wanted)], update_fields, now)
    if record_type == "contact" and ids:
        changes.record(db, changes.CONTACT, contact_ids=ids.values())
    seen: set[str] = set()
    created = []
    for key in keys:
        created.append(key is not None and key in made and key not in seen)
        if key is not None:
            seen.add(key)
    return BulkResult(ids=[None if k is None else ids[k] for k in keys], created=created)


def cast_table(model: type[PersonMixin]) -> Table:
    """The mapped class's table, for Core statements."""
    return Contact.__table__ if model is Contact else Lead.__table__  # type: ignore[return-value]


def _upsert(
    db: Session,
    model: type[PersonMixin],
    rows: list[dict[str, Any]],
    update_fields: Sequence[str],
    now: Any,
) -> tuple[dict[str, int], set[str]]:
    """Insert rows keyed by ``match_key``; a held key updates its holder's ``update_fields``
    (when the arriving value is not blank). Returns key → id for every row, and the keys of
    the rows inserted."""
    dialect = db.get_bind().dialect.name
    # The table, not the mapped class: a Core statement, without the ORM's bulk machinery.
    table = cast_table(model)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if update_fields:
        stmt = ins.on_conflict_do_update(
            index_elements=["match_key"],
            set_={
                **{
                    f: case((ins.excluded[f] != "", ins.excluded[f]), else_=table.c[f])
                    for f in update_fields
                },
                "modified_at": ins.excluded.modified_at,
            },
        )
    else:
        stmt = ins.on_conflict_do_nothing(index_elements=["match_key"])
    returning = stmt.returning(table.c.match_key, table.c.id, table.c.created_at)
    ids: dict[str, int] = {}
    made: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        for key, record_id, created_at in db.execute(returning, rows[start : start + CHUNK]):
            ids[str(key)] = record_id
            if created_at == now:
                made.add(str(key))
    missing = {str(r["match_key"]) for r in rows} - set(ids)
    if missing:  # held already, and nothing to update: read their holders
        ids.update(_held(db, model, missing))
    return ids, made


def insert_new(db: Session, *, record_type: str, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert people found by no match (full rows, each with an email and an owning BU),
    each holding its built-in key; one made meanwhile by another transaction is matched
    instead. Returns email → record id (the row's, or the one found)."""
    model = MODELS[record_type]
    scoped = scoping(db)
    keyed = {str(key_of(r["email"], r["owning_bu_id"], scoped)): r for r in rows if r["email"]}
    ids, _made = _upsert(
        db, model, [{**r, "match_key": k} for k, r in sorted(keyed.items())], (), utcnow()
    )
    return {r["email"]: ids[k] for k, r in keyed.items()}


def _held(db: Session, model: type[PersonMixin], keys: set[str]) -> dict[str, int]:
    """Key → the record holding it."""
    values = sorted(keys)
    out: dict[str, int] = {}
    for start in range(0, len(values), CHUNK):
        stmt = select(model.match_key, model.id).where(
            model.match_key.in_(values[start : start + CHUNK])
        )
        out.update({str(k): i for k, i in db.execute(stmt)})
    return out


# ------------------------------------------------------------------ rule management


def _check_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not conditions:
        raise ValidationFailed("a rule needs at least one condition", field="conditions")
    out = []
    for i, cond in enumerate(conditions):
        field = f"conditions.{i}"
        if cond.get("field") not in RULE_FIELDS:
            raise ValidationFailed(
                f"field must be one of {', '.join(RULE_FIELDS)}", field=f"{field}.field"
            )
        match = cond.get("match", "exact")
        length = cond.get("length")
        if match in ("first", "last"):
            if not isinstance(length, int) or not 1 <= length <= 100:
                raise ValidationFailed(
                    f"“{match} N characters” needs a length from 1 to 100",
                    field=f"{field}.length",
                )
        else:
            length = None
        out.append(
            {
                "field": cond["field"],
                "match": match,
                "length": length,
                "ignore_case": bool(cond.get("ignore_case", True)),
            }
        )
    return out


RuleAction = Literal["create", "update", "publish", "unpublish", "delete"]


def _rule_state(rule: DuplicateRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "record_type": rule.record_type,
        "conditions": rule.conditions,
        "ignore_blank": rule.ignore_blank,
        "published": rule.published,
    }


def _require_admin(db: Session, principal: access.Principal | None, privilege: Privilege) -> None:
    """None is the operator at the command line (or the product); a user needs the
    privilege (the built-in roles let everyone read and System Administrators change)."""
    if principal is not None:
        access.require(db, principal, privilege, "duplicate_rule")


def list_rules(
    *, db: Session, principal: access.Principal | None, record_type: str | None = None
) -> list[DuplicateRule]:
    """Every rule (everyone may read them), the built-in ones first."""
    _require_admin(db, principal, Privilege.READ)
    stmt = select(DuplicateRule).order_by(
        DuplicateRule.record_type, DuplicateRule.builtin.desc(), DuplicateRule.name
    )
    if record_type is not None:
        stmt = stmt.where(DuplicateRule.record_type == record_type)
    return list(db.scalars(stmt))


def get_rule(*, db: Session, principal: access.Principal | None, rule_id: int) -> DuplicateRule:
    """A rule by id, or NotFound."""
    _require_admin(db, principal, Privilege.READ)
    rule = db.get(DuplicateRule, rule_id)
    if rule is None:
        raise NotFound(f"duplicate detection rule {rule_id} not found", field="rule_id")
    return rule


def _name_free(db: Session, record_type: str, name: str, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("a rule needs a name", field="name")
    stmt = select(DuplicateRule.id).where(
        DuplicateRule.record_type == record_type, func.lower(DuplicateRule.name) == name.lower()
    )
    if exclude_id is not None:
        stmt = stmt.where(DuplicateRule.id != exclude_id)
    if db.execute(stmt).first():
        raise Conflict(f"a {record_type} rule named {name!r} exists", field="name")
    return name


def save_rule(
    *,
    db: Session,
    principal: access.Principal | None,
    rule_id: int | None = None,
    name: str | None = None,
    record_type: str | None = None,
    description: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    ignore_blank: bool | None = None,
    published: bool | None = None,
) -> DuplicateRule:
    """Create a rule (``rule_id`` None) or change one; the built-in rules can only be
    published or unpublished. Audited."""
    _require_admin(db, principal, Privilege.CREATE if rule_id is None else Privilege.WRITE)
    if rule_id is None:
        if record_type not in MODELS:
            raise ValidationFailed("record type must be contact or lead", field="record_type")
        rule = DuplicateRule(
            record_type=record_type,
            name=_name_free(db, record_type, name or ""),
            description=description or "",
            conditions=_check_conditions(conditions or []),
            ignore_blank=True if ignore_blank is None else ignore_blank,
            published=bool(published),
            modified_by_id=getattr(principal, "user_id", None),
        )
        db.add(rule)
        db.flush()
        _audit(db, principal, "create", rule, None, _rule_state(rule))
        return rule
    rule = get_rule(db=db, principal=None, rule_id=rule_id)
    before = _rule_state(rule)
    if rule.builtin and any(v is not None for v in (name, conditions, ignore_blank, record_type)):
        raise Conflict(
            "the built-in rule can be published or unpublished, not changed; "
            "make a new rule instead",
            field="conditions" if conditions is not None else "name",
        )
    if record_type is not None and record_type != rule.record_type:
        raise ValidationFailed("a rule's record type cannot change", field="record_type")
    if name is not None:
        rule.name = _name_free(db, rule.record_type, name, exclude_id=rule.id)
    if description is not None:
        rule.description = description
    if conditions is not None:
        rule.conditions = _check_conditions(conditions)
    if ignore_blank is not None:
        rule.ignore_blank = ignore_blank
    if published is not None:
        rule.published = published
    rule.modified_at = utcnow()
    rule.modified_by_id = getattr(principal, "user_id", None)
    db.flush()
    old, new = audit.diff(before, _rule_state(rule))
    if new:
        _audit(db, principal, "update", rule, old, new)
    return rule


def delete_rule(*, db: Session, principal: access.Principal | None, rule_id: int) -> None:
    """Delete a rule (not a built-in one). Audited."""
    _require_admin(db, principal, Privilege.DELETE)
    rule = get_rule(db=db, principal=None, rule_id=rule_id)
    if rule.builtin:
        raise Conflict("the built-in rule cannot be deleted; unpublish it", field="rule_id")
    _audit(db, principal, "delete", rule, _rule_state(rule), None)
    db.delete(rule)
    db.flush()


def _audit(
    db: Session,
    principal: access.Principal | None,
    verb: str,
    rule: DuplicateRule,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.log(
        db,
        actor=principal,
        action=f"duplicate_rule.{verb}",
        target_type="duplicate_rule",
        target_id=str(rule.id),
        target_label=rule.name,
        before=before,
        after=after,
    )
