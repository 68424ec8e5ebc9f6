"""Segment criteria: validation errors that point at the bad node, the meaning of every
operator on real rows (SQLite and PostgreSQL), and explain (SPEC B5; docs/segments.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.contact.models import Contact
from gatherly.core.exceptions import Forbidden, NotFound, ValidationFailed
from gatherly.event.models import EXCLUDED_ORGANIZER
from gatherly.segment import criteria as crit
from gatherly.segment import service as seg
from gatherly.segment.models import MarketingList, MarketingListMember
from tests import factories as f
from tests.dbstate import cached
from tests.segment.conftest import Org

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text without an offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def everything(dialect: str) -> Principal:
    """A reader who may read every event, registration and attendance row (an administrator)."""
    return Principal(
        user_id=0,
        username="reader",
        business_unit_id=0,
        disabled=False,
        team_ids=frozenset(),
        grants=(),
        system_admin_role="System Administrator",
        dialect=dialect,
    )


def matching(db: Session, tree: Any, now: datetime = NOW) -> set[int]:
    """Ids of the contacts the compiled tree selects (one SQL statement, no Python filter)."""
    dialect = db.get_bind().dialect.name
    ctx = crit.Context(now=now, readers=(everything(dialect),), dialect=dialect)
    node = tree if isinstance(tree, crit.Node) else crit.parse(tree)
    return set(db.execute(select(Contact.id).where(crit.compile_predicate(node, ctx))).scalars())


# ---------------------------------------------------------------- validation

DEEP: dict[str, Any] = {"contact": {"country": "JP"}}
for _ in range(crit.MAX_DEPTH + 1):
    DEEP = {"not": DEEP}

BAD_DATE_EVENT = {"participation": "attended", "event": {"start": {"after": "31-02-2026"}}}

INVALID = [
    pytest.param(
        {"any": [{"contact": {"country": "JP"}}, {"contact": {"x": 1}}, BAD_DATE_EVENT]},
        "criteria.any[1].contact.x",
        "unknown field",
        id="first-bad-node-in-document-order-wins",
    ),
    pytest.param(
        {"any": [{"contact": {"country": "JP"}}, {"contact": {"custom.x": 1}}, BAD_DATE_EVENT]},
        "criteria.any[2].event.start",
        "'31-02-2026' is not a date",
        id="bad-date-deep-in-an-event",
    ),
    pytest.param(
        {"contact": {"country": {"like": "J%"}}},
        "criteria.contact.country",
        "operator 'like' does not apply",
        id="unknown-operator",
    ),
    pytest.param(
        {"participation": "attended", "event": {"organizer": {"gt": 3}}},
        "criteria.event.organizer",
        "operator 'gt' does not apply",
        id="number-operator-on-text",
    ),
    pytest.param({"contact": {"shoe_size": 42}}, "criteria.contact.shoe_size", "unknown field"),
    pytest.param(
        {"participation": "attended", "event": {"venue": "Tokyo"}},
        "criteria.event.venue",
        "unknown field",
        id="unknown-event-field",
    ),
    pytest.param({"all": []}, "criteria.all", "non-empty list", id="empty-all"),
    pytest.param({"any": []}, "criteria.any", "non-empty list", id="empty-any"),
    pytest.param({"any": {"contact": {}}}, "criteria.any", "non-empty list", id="any-not-list"),
    pytest.param("JP", "criteria", "expected an object", id="root-not-object"),
    pytest.param({}, "criteria", "expected an object", id="root-empty-object"),
    pytest.param(
        {"all": [{"contact": {"country": "JP"}}, 3]},
        "criteria.all[1]",
        "expected an object",
        id="child-not-object",
    ),
    pytest.param({"not": [{"list": 1}]}, "criteria.not", "expected an object", id="not-a-list"),
    pytest.param({"contact": []}, "criteria.contact", "object of field conditions"),
    pytest.param(
        {"participation": "registered", "min_minutes": 30},
        "criteria.min_minutes",
        "applies to 'attended' only",
        id="min-minutes-on-registered",
    ),
    pytest.param(
        {"participation": "not_attended", "max_minutes": 30},
        "criteria.max_minutes",
        "applies to 'attended' only",
        id="max-minutes-on-not-attended",
    ),
    pytest.param(
        {"participation": "attended", "min_minutes": -1},
        "criteria.min_minutes",
        "not a number of minutes",
        id="negative-minutes",
    ),
    pytest.param(
        {"participation": "attended", "min_minutes": 40, "max_minutes": 30},
        "criteria.max_minutes",
        "below min_minutes",
        id="max-below-min",
    ),
    pytest.param(
        {"participation": "maybe"},
        "criteria.participation",
        "'maybe' is not one of",
        id="unknown-participation",
    ),
    pytest.param(
        {"contact": {"country": {"in": "JP"}}},
        "criteria.contact.country",
        "in takes a list",
        id="in-with-a-non-list",
    ),
    pytest.param(
        {"contact": {"country": {"not_in": []}}},
        "criteria.contact.country",
        "not_in takes a list",
        id="not-in-empty",
    ),
    pytest.param(
        DEEP,
        "criteria" + ".not" * (crit.MAX_DEPTH + 1),
        f"at most {crit.MAX_DEPTH} levels",
        id="too-deep",
    ),
    pytest.param(
        {"any": [{"list": 1}] * crit.MAX_NODES},
        f"criteria.any[{crit.MAX_NODES - 1}]",
        f"at most {crit.MAX_NODES} nodes",
        id="too-many-nodes",
    ),
    pytest.param({"list": "seven"}, "criteria.list", "not a marketing list id", id="list-text"),
    pytest.param({"list": 0}, "criteria.list", "not a marketing list id", id="list-zero"),
    pytest.param({"list": True}, "criteria.list", "not a marketing list id", id="list-bool"),
    pytest.param(
        {"list": {"id": 3, "name": "VIP"}},
        "criteria.list.name",
        "unexpected key",
        id="list-object-extra-key",
    ),
    pytest.param(
        {"event": {"name": "Webinar"}},
        "criteria.participation",
        "needs 'participation'",
        id="event-without-participation",
    ),
    pytest.param(
        {"participation": "attended", "event": {"name": "x"}, "when": "now"},
        "criteria.when",
        "unexpected key",
        id="extra-key-beside-participation",
    ),
    pytest.param(
        {"contact": {"country": "JP"}, "list": 3},
        "criteria.list",
        "unexpected key beside contact",
        id="extra-key-beside-contact",
    ),
    pytest.param(
        {"all": [{"list": 1}], "any": [{"list": 2}]},
        "criteria.any",
        "unexpected key beside all",
        id="all-and-any-together",
    ),
    pytest.param(
        {"not": {"list": 1}, "note": "hi"},
        "criteria.note",
        "unexpected key beside not",
        id="extra-key-beside-not",
    ),
    pytest.param({"frobnicate": 1}, "criteria", "unknown criterion 'frobnicate'"),
    pytest.param(
        {"contact": {"country": {"equals": "JP", "in": ["DE"]}}},
        "criteria.contact.country",
        "exactly one operator",
        id="two-operators",
    ),
    pytest.param(
        {"contact": {"custom.score": {"gt": "ten"}}},
        "criteria.contact.custom.score",
        "'ten' is not a number",
        id="custom-gt-text",
    ),
    pytest.param(
        {"contact": {"custom.score": True}},
        "criteria.contact.custom.score",
        "not a text or a number",
        id="custom-bool",
    ),
    pytest.param(
        {"contact": {"custom.bad!": 1}},
        "criteria.contact.custom.bad!",
        "custom property name",
        id="custom-bad-name",
    ),
    pytest.param(
        {"contact": {"created_at": {"in_last_days": 0}}},
        "criteria.contact.created_at",
        "whole number of days",
        id="relative-zero-days",
    ),
    pytest.param(
        {"contact": {"created_at": {"between": ["2026-03-02", "2026-03-01"]}}},
        "criteria.contact.created_at",
        "low value is above the high one",
        id="between-reversed",
    ),
    pytest.param(
        {"contact": {"created_at": {"between": ["2026-03-01"]}}},
        "criteria.contact.created_at",
        "two values",
        id="between-one-value",
    ),
    pytest.param(
        {"contact": {"id": {"gt": 1.5}}},
        "criteria.contact.id",
        "not a whole number",
        id="number-field-float",
    ),
    pytest.param({"contact": {"country": 7}}, "criteria.contact.country", "7 is not a text"),
    pytest.param(
        {"contact": {"country": {"empty": "yes"}}},
        "criteria.contact.country",
        "empty takes true or false",
        id="empty-not-bool",
    ),
    pytest.param(
        {"contact": {"company": {"contains": ""}}},
        "criteria.contact.company",
        "non-empty text",
        id="contains-empty-text",
    ),
    pytest.param(
        {"participation": "attended", "event": {}},
        "criteria.event",
        "object of field conditions",
        id="event-empty-object",
    ),
]


@pytest.mark.parametrize(("tree", "path", "message"), INVALID)
def test_invalid_tree_names_the_path_of_the_bad_node(tree: Any, path: str, message: str) -> None:
    with pytest.raises(crit.CriteriaError) as err:
        crit.parse(tree)
    assert err.value.field == path
    assert message in err.value.message
    assert err.value.message.startswith(f"{path}: ")


def test_criteria_error_is_a_validation_failure() -> None:
    with pytest.raises(ValidationFailed):
        crit.parse({"all": []})


def test_valid_tree_reports_what_it_depends_on() -> None:
    parsed = crit.parse(
        {
            "all": [
                {"list": 7},
                {"list": {"id": 8}},
                {"participation": "attended", "event": {"id": {"in": [3, 4]}}},
                {"not": {"contact": {"created_at": {"in_last_days": 30}}}},
            ]
        }
    )
    assert parsed.list_ids == {7, 8}
    assert parsed.event_ids == {3, 4}
    assert parsed.uses_events
    assert parsed.uses_relative_dates
    assert ("criteria.all[2].event.id", "event", 3) in parsed.references
    plain = crit.parse({"contact": {"created_at": {"after": "2026-01-01"}}})
    assert not plain.uses_events
    assert not plain.uses_relative_dates


def test_unreadable_list_is_not_found_at_its_path(acme: Org) -> None:
    lst = seg.create_list(db=acme.db, principal=acme.p("uOrg"), name="A1 list")  # lives in A1
    tree = {"any": [{"contact": {"country": "JP"}}, {"list": lst.id}]}
    with pytest.raises(crit.CriteriaError) as err:
        seg.parse_criteria(db=acme.db, principal=acme.p("uA"), tree=tree)
    assert err.value.field == "criteria.any[1].list"
    assert f"marketing list {lst.id} not found" in err.value.message
    assert seg.parse_criteria(db=acme.db, principal=acme.p("uOrg"), tree=tree).list_ids == {lst.id}


def test_missing_list_is_not_found(acme: Org) -> None:
    with pytest.raises(crit.CriteriaError) as err:
        seg.parse_criteria(db=acme.db, principal=acme.p("uOrg"), tree={"not": {"list": 999}})
    assert err.value.field == "criteria.not.list"
    assert "not found" in err.value.message


def test_unreadable_event_is_not_found_at_its_path(acme: Org) -> None:
    ev_b = f.event(acme.db, acme.users["uB"], "B only")
    ev_a = f.event(acme.db, acme.users["uA"], "A's")
    tree = {
        "all": [
            {"participation": "attended", "event": {"id": ev_a.id}},
            {"participation": "registered", "event": {"id": {"in": [ev_a.id, ev_b.id]}}},
        ]
    }
    with pytest.raises(crit.CriteriaError) as err:
        seg.parse_criteria(db=acme.db, principal=acme.p("uA"), tree=tree)
    assert err.value.field == "criteria.all[1].event.id"
    assert f"marketing event {ev_b.id} not found" in err.value.message
    with pytest.raises(crit.CriteriaError) as err:
        seg.parse_criteria(
            db=acme.db,
            principal=acme.p("uA"),
            tree={"participation": "attended", "event": {"id": ev_b.id}},
        )
    assert err.value.field == "criteria.event.id"
    seg.parse_criteria(
        db=acme.db, principal=acme.p("uOrg"), tree=tree
    )  # organization-level reads both


def _explained(**kwargs: Any) -> dict[str, Any]:
    """The service's explanation as the API writes it (a dict of its fields)."""
    return dataclasses.asdict(seg.explain(**kwargs))


# ---------------------------------------------------------------- contact fields


@dataclass
class People:
    db: Session
    ids: dict[str, int]

    def __call__(self, *names: str) -> set[int]:
        return {self.ids[n] for n in names}


@pytest.fixture
def people(db: Session, engine: Engine) -> People:
    """Four contacts whose fields exercise every operator; ``NOW`` is 2026-04-10 12:00 UTC."""
    return People(db, cached(engine, "criteria.people", lambda: _make_people(db)))


def _make_people(db: Session) -> dict[str, int]:
    a = f.bu(db, "A")
    owner = f.user(db, "owner", a, "Marketer")
    rows = {
        "jp": f.contact(
            db,
            owner,
            email="ada@acme.example",
            first_name="Ada",
            last_name="Lovelace",
            country="JP",
            company="Acme_Corp",
            custom={"score": 10, "tier": "Gold"},
            created_at=at("2026-03-31T23:59:59"),
        ),
        "de": f.contact(
            db,
            owner,
            email="bob@beta.example",
            first_name="Bob",
            last_name="Builder",
            country="DE",
            company="Acme%Corp",
            custom={"score": "high"},  # text where others store a number
            created_at=at("2026-04-01T00:00:00"),
        ),
        "none": f.contact(
            db,
            owner,
            email=None,
            first_name="",
            last_name="Nobody",
            country=None,
            company="AcmeXCorp",
            custom={"score": 3.5, "tier": 5},
            created_at=at("2026-03-30T12:00:00"),
            origin="teams_sync",
        ),
        "fr": f.contact(
            db,
            owner,
            email="cy@acme.example",
            first_name="Cy",
            last_name="Lovelace",
            country="FR",
            company="",
            custom={},
            created_at=at("2026-04-15T00:00:00"),
        ),
    }
    db.commit()
    return {name: c.id for name, c in rows.items()}


ALL4 = ("jp", "de", "none", "fr")

CONTACT_CASES = [
    # equals / in: names ignore case; country and email are normalised
    ({"first_name": "ada"}, {"jp"}),
    ({"last_name": {"equals": "LOVELACE"}}, {"jp", "fr"}),
    ({"country": "jp"}, {"jp"}),
    ({"country": {"in": ["jp", "De"]}}, {"jp", "de"}),
    ({"email": "ADA@Acme.Example"}, {"jp"}),
    ({"last_name": {"in": ["lovelace", "NOBODY"]}}, {"jp", "fr", "none"}),
    ({"origin": "Teams_Sync"}, {"none"}),
    # patterns: % and _ are literal, and case is ignored on every field
    ({"company": {"contains": "e_C"}}, {"jp"}),
    ({"company": {"contains": "e%C"}}, {"de"}),
    ({"company": {"contains": "EXC"}}, {"none"}),
    ({"company": {"starts_with": "acme"}}, {"jp", "de", "none"}),
    ({"company": {"ends_with": "_corp"}}, {"jp"}),
    ({"email": {"ends_with": "@ACME.example"}}, {"jp", "fr"}),
    ({"email": {"starts_with": "Bob@"}}, {"de"}),
    ({"country": {"starts_with": "d"}}, {"de"}),
    # empty: NULL and '' both count as empty
    ({"company": {"empty": True}}, {"fr"}),
    ({"company": {"empty": False}}, {"jp", "de", "none"}),
    ({"country": {"empty": True}}, {"none"}),
    ({"country": {"empty": False}}, {"jp", "de", "fr"}),
    ({"email": {"empty": True}}, {"none"}),
    ({"first_name": {"empty": True}}, {"none"}),
    # negative operators include NULLs
    ({"country": {"not_equals": "jp"}}, {"de", "none", "fr"}),
    ({"country": {"not_in": ["JP", "DE"]}}, {"none", "fr"}),
    ({"email": {"not_equals": "ada@acme.example"}}, {"de", "none", "fr"}),
    # several fields in one object must all hold
    ({"last_name": "lovelace", "country": "FR"}, {"fr"}),
    # custom properties: numbers compare as numbers, text never matches a number comparison
    ({"custom.score": {"gt": 5}}, {"jp"}),
    ({"custom.score": {"gte": 3.5}}, {"jp", "none"}),
    ({"custom.score": {"lt": 10}}, {"none"}),
    ({"custom.score": {"lte": 10}}, {"jp", "none"}),
    ({"custom.score": {"between": [3, 10]}}, {"jp", "none"}),
    ({"custom.score": {"equals": 10}}, {"jp"}),
    ({"custom.score": {"in": [10, 3.5]}}, {"jp", "none"}),  # mixed int/float list
    ({"custom.score": {"in": [1, 3.5]}}, {"none"}),
    ({"custom.score": {"not_equals": 10}}, {"de", "none", "fr"}),
    ({"custom.score": {"not_in": [10, 3.5]}}, {"de", "fr"}),
    ({"custom.score": "HIGH"}, {"de"}),
    ({"custom.score": {"contains": "ig"}}, {"de"}),
    ({"custom.tier": "gold"}, {"jp"}),
    ({"custom.tier": "5"}, {"none"}),  # a text condition matches a number by its text
    ({"custom.tier": {"in": ["GOLD", 5]}}, {"jp", "none"}),
    ({"custom.tier": {"empty": True}}, {"de", "fr"}),
    ({"custom.tier": {"empty": False}}, {"jp", "none"}),
    ({"custom.missing": {"gt": 0}}, set()),
    # numbers on the contact itself
    ({"id": {"gt": 0}}, set(ALL4)),
    # absolute dates: a bare date is that day's start in UTC
    ({"created_at": {"on": "2026-03-31"}}, {"jp"}),
    ({"created_at": {"on": "2026-04-01T05:00:00+09:00"}}, {"jp"}),  # 2026-03-31 in UTC
    ({"created_at": {"before": "2026-04-01"}}, {"jp", "none"}),
    ({"created_at": {"after": "2026-04-01"}}, {"de", "fr"}),
    ({"created_at": {"after": "2026-03-31T23:59:59Z"}}, {"jp", "de", "fr"}),
    ({"created_at": {"between": ["2026-03-30", "2026-03-31"]}}, {"none", "jp"}),
    ({"created_at": {"between": ["2026-03-31", "2026-03-31T12:00:00"]}}, set()),
    ({"created_at": {"empty": False}}, set(ALL4)),
    # relative dates against NOW (2026-04-10 12:00)
    ({"created_at": {"in_last_days": 10}}, {"jp", "de"}),
    ({"created_at": {"in_last_days": 11}}, {"jp", "de", "none"}),
    ({"created_at": {"in_next_days": 5}}, {"fr"}),
    ({"created_at": {"in_next_days": 4}}, set()),
    ({"created_at": {"more_than_days_ago": 10}}, {"none"}),
]


def stable_id(value: Any) -> str:
    """A test id that is the same in every process (sets print in hash order)."""
    if isinstance(value, (set, frozenset)):
        return repr(sorted(value))
    return repr(value)


@pytest.mark.parametrize(("condition", "expected"), CONTACT_CASES, ids=stable_id)
def test_contact_operator(people: People, condition: dict[str, Any], expected: set[str]) -> None:
    assert matching(people.db, {"contact": condition}) == people(*expected)


@pytest.mark.parametrize(("condition", "expected"), CONTACT_CASES, ids=stable_id)
def test_not_is_the_null_safe_complement(
    people: People, condition: dict[str, Any], expected: set[str]
) -> None:
    assert matching(people.db, {"not": {"contact": condition}}) == people(*ALL4) - people(*expected)


def test_numeric_comparison_over_text_values_does_not_error(people: People) -> None:
    # On PostgreSQL a plain CAST('high' AS FLOAT) would raise; the compiler must not.
    tree = {"any": [{"contact": {"custom.score": {"gt": 0}}}, {"contact": {"custom.score": 1}}]}
    assert matching(people.db, tree) == people("jp", "none")


def test_not_country_includes_contacts_without_a_country(people: People) -> None:
    assert matching(people.db, {"not": {"contact": {"country": "JP"}}}) == people(
        "de", "none", "fr"
    )


def test_business_unit_field_is_the_owning_bu(people: People) -> None:
    contact = people.db.get(Contact, people.ids["jp"])
    assert contact is not None
    bu_id = contact.owning_bu_id
    assert matching(people.db, {"contact": {"business_unit_id": bu_id}}) == people(*ALL4)
    assert matching(people.db, {"contact": {"business_unit_id": {"not_equals": bu_id}}}) == set()


DE_MORGAN = [
    # not of all = any of nots
    (
        {
            "not": {
                "all": [{"contact": {"country": "JP"}}, {"contact": {"custom.score": {"gt": 5}}}]
            }
        },
        {"de", "none", "fr"},
    ),
    (
        {"not": {"contact": {"country": "JP", "company": {"contains": "acme"}}}},
        {"de", "none", "fr"},
    ),
    # not of any = all of nots
    (
        {"not": {"any": [{"contact": {"country": "JP"}}, {"contact": {"country": "DE"}}]}},
        {"none", "fr"},
    ),
    ({"not": {"not": {"contact": {"country": "JP"}}}}, {"jp"}),
    (
        {"not": {"not": {"not": {"contact": {"country": {"in": ["JP", "DE"]}}}}}},
        {"none", "fr"},
    ),
    (
        {
            "not": {
                "any": [
                    {
                        "all": [
                            {"contact": {"last_name": "lovelace"}},
                            {"not": {"contact": {"country": "FR"}}},
                        ]
                    },
                    {"contact": {"custom.score": {"lt": 5}}},
                ]
            }
        },
        {"de", "fr"},
    ),
    (
        {
            "all": [
                {"not": {"contact": {"country": "JP"}}},
                {"not": {"contact": {"company": {"empty": True}}}},
            ]
        },
        {"de", "none"},
    ),
    (
        {"any": [{"contact": {"email": {"empty": True}}}, {"contact": {"country": "FR"}}]},
        {"none", "fr"},
    ),
    (
        {
            "not": {
                "all": [
                    {"contact": {"custom.score": {"gte": 0}}},
                    {"contact": {"created_at": {"in_last_days": 30}}},
                ]
            }
        },
        {"de", "fr"},
    ),
]


@pytest.mark.parametrize(("tree", "expected"), DE_MORGAN, ids=stable_id)
def test_nesting_and_de_morgan(people: People, tree: dict[str, Any], expected: set[str]) -> None:
    assert matching(people.db, tree) == people(*expected)


def test_non_ascii_names_compare_without_case(db: Session) -> None:
    """SQLite's own lower() folds ASCII only; both backends must fold every letter."""
    owner = f.user(db, "owner", f.bu(db, "A"), "Marketer")
    emile = f.contact(db, owner, first_name="Émile")
    f.contact(db, owner, first_name="Emile")
    assert matching(db, {"contact": {"first_name": "ÉMILE"}}) == {emile.id}
    assert matching(db, {"contact": {"first_name": {"contains": "MIL"}}}) == {
        emile.id,
        emile.id + 1,
    }


# ---------------------------------------------------------------- participation


@dataclass
class Events:
    db: Session
    ids: dict[str, int]
    e1: int
    e2: int
    list_id: int

    def __call__(self, *names: str) -> set[int]:
        return {self.ids[n] for n in names}


@pytest.fixture
def events(db: Session, engine: Engine) -> Events:
    """E1 "Spring Webinar" (webinar, 2026-03-10, host@acme) and E2 "Autumn Summit"
    (in_person, 2026-09-01, organizer Ola Other, no email). p1 registered for E1 and attended
    E2 only; p2 registered for and attended E1 (60 min); p3 cancelled E1; p4 walked in to E1
    (10 min); p5 is E1's organizer (kept, excluded); p6 did nothing. The list holds p3, p6."""
    ids, e1, e2, list_id = cached(engine, "criteria.events", lambda: _make_events(db))
    return Events(db, ids, e1, e2, list_id)


def _make_events(db: Session) -> tuple[dict[str, int], int, int, int]:
    a = f.bu(db, "A")
    owner = f.user(db, "owner", a, "Marketing Administrator")
    people = {n: f.contact(db, owner, email=f"{n}@x.example", last_name=n) for n in _P}
    e1 = f.event(
        db,
        owner,
        "Spring Webinar",
        event_type="webinar",
        start_at=at("2026-03-10T15:00:00"),
        organizer_email="host@acme.example",
        organizer_name="Hana Host",
    )
    e2 = f.event(
        db,
        owner,
        "Autumn Summit",
        event_type="in_person",
        start_at=at("2026-09-01T09:00:00"),
        organizer_email=None,
        organizer_name="Ola Other",
    )
    f.registration(db, e1, people["p1"])
    f.attendance(db, e2, people["p1"], seconds=1800)
    f.registration(db, e1, people["p2"])
    f.attendance(db, e1, people["p2"], seconds=3600)
    f.registration(db, e1, people["p3"], status="canceled")
    f.attendance(db, e1, people["p4"], seconds=600)
    f.registration(db, e1, people["p5"], excluded_reason=EXCLUDED_ORGANIZER)
    f.attendance(db, e1, people["p5"], seconds=3000, excluded_reason=EXCLUDED_ORGANIZER)
    lst = MarketingList(
        name="L", owner_type="user", owner_id=owner.id, owning_bu_id=owner.business_unit_id
    )
    db.add(lst)
    db.flush()
    for n in ("p3", "p6"):
        db.add(MarketingListMember(list_id=lst.id, contact_id=people[n].id))
    db.commit()
    return {n: c.id for n, c in people.items()}, e1.id, e2.id, lst.id


_P = ("p1", "p2", "p3", "p4", "p5", "p6")

PARTICIPATION_CASES = [
    ({"participation": "registered"}, {"p1", "p2"}),
    ({"participation": "attended"}, {"p1", "p2", "p4"}),
    ({"participation": "cancelled"}, {"p3"}),
    ({"participation": "not_attended"}, {"p1"}),  # p1 attended E2 but not E1
    ({"participation": "attended", "min_minutes": 30}, {"p1", "p2"}),
    ({"participation": "attended", "min_minutes": 31}, {"p2"}),
    ({"participation": "attended", "max_minutes": 30}, {"p1", "p4"}),
    ({"participation": "attended", "min_minutes": 30, "max_minutes": 30}, {"p1"}),
    ({"participation": "attended", "min_minutes": 0.5, "max_minutes": 10}, {"p4"}),
    ({"participation": "registered", "event": {"name": "SPRING webinar"}}, {"p1", "p2"}),
    ({"participation": "attended", "event": {"name": {"contains": "summit"}}}, {"p1"}),
    ({"participation": "attended", "event": {"type": "In_Person"}}, {"p1"}),
    ({"participation": "attended", "event": {"type": {"not_equals": "webinar"}}}, {"p1"}),
    ({"participation": "attended", "event": {"start": {"after": "2026-06-01"}}}, {"p1"}),
    ({"participation": "attended", "event": {"start": {"before": "2026-06-01"}}}, {"p2", "p4"}),
    ({"participation": "registered", "event": {"start": {"on": "2026-03-10"}}}, {"p1", "p2"}),
    (
        {
            "participation": "registered",
            "event": {"start": {"between": ["2026-03-01", "2026-03-10"]}},
        },
        {"p1", "p2"},
    ),
    ({"participation": "attended", "event": {"start": {"in_last_days": 31}}}, {"p2", "p4"}),
    ({"participation": "attended", "event": {"start": {"in_last_days": 30}}}, set()),
    ({"participation": "attended", "event": {"start": {"in_next_days": 180}}}, {"p1"}),
    ({"participation": "attended", "event": {"organizer": "HOST@acme.example"}}, {"p2", "p4"}),
    ({"participation": "attended", "event": {"organizer": "ola other"}}, {"p1"}),
    (
        {"participation": "attended", "event": {"organizer": {"ends_with": "@ACME.example"}}},
        {"p2", "p4"},
    ),
    ({"participation": "attended", "event": {"organizer": {"not_equals": "hana host"}}}, {"p1"}),
    ({"participation": "attended", "event": {"organizer": {"empty": True}}}, set()),
    ({"participation": "not_attended", "event": {"name": "Autumn Summit"}}, set()),
    (
        {"participation": "attended", "event": {"name": "Spring Webinar", "type": "webinar"}},
        {"p2", "p4"},
    ),
    (
        {"participation": "attended", "event": {"name": "Spring Webinar", "type": "in_person"}},
        set(),
    ),
    ({"not": {"participation": "attended"}}, {"p3", "p5", "p6"}),
    ({"not": {"participation": "registered"}}, {"p3", "p4", "p5", "p6"}),
    ({"list": "L"}, {"p3", "p6"}),
    ({"not": {"list": "L"}}, {"p1", "p2", "p4", "p5"}),
    ({"list": {"id": "L"}}, {"p3", "p6"}),
    ({"all": [{"list": "L"}, {"participation": "cancelled"}]}, {"p3"}),
    ({"any": [{"list": "L"}, {"participation": "not_attended"}]}, {"p1", "p3", "p6"}),
]


def _with_ids(tree: Any, ev: Events) -> Any:
    """Replace the list placeholder "L" with the fixture's list id."""
    if isinstance(tree, dict):
        if tree.get("list") == "L":
            return {**tree, "list": ev.list_id}
        if tree.get("id") == "L":
            return {"id": ev.list_id}
        return {k: _with_ids(v, ev) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_with_ids(v, ev) for v in tree]
    return tree


@pytest.mark.parametrize(("tree", "expected"), PARTICIPATION_CASES, ids=stable_id)
def test_participation_and_lists(events: Events, tree: dict[str, Any], expected: set[str]) -> None:
    assert matching(events.db, _with_ids(tree, events)) == events(*expected)


def test_events_named_by_id(events: Events) -> None:
    e1, e2 = events.e1, events.e2
    attended = {"participation": "attended"}
    assert matching(events.db, {**attended, "event": {"id": e1}}) == events("p2", "p4")
    assert matching(events.db, {**attended, "event": {"id": {"in": [e1, e2]}}}) == events(
        "p1", "p2", "p4"
    )
    assert matching(events.db, {**attended, "event": {"id": e2, "type": "webinar"}}) == set()
    assert matching(events.db, {**attended, "event": {"id": {"not_equals": e1}}}) == events("p1")
    not_attended = {"participation": "not_attended", "event": {"id": e1}}
    assert matching(events.db, not_attended) == events("p1")


def test_excluded_people_never_match_any_participation(events: Events) -> None:
    organizer = events.ids["p5"]
    for what in crit.PARTICIPATIONS:
        for event in (None, {"id": events.e1}, {"name": "Spring Webinar"}):
            tree: dict[str, Any] = {"participation": what}
            if event is not None:
                tree["event"] = event
            assert organizer not in matching(events.db, tree), tree


# ---------------------------------------------------------------- explain


EXPLAINED = {
    "all": [
        {"contact": {"country": "JP"}},
        {"not": {"contact": {"last_name": "three"}}},
        {"any": [{"contact": {"email": {"starts_with": "c1"}}}, {"contact": {"last_name": "two"}}]},
    ]
}


def _node_alone(db: Session, path: str, contact_id: int) -> bool:
    node = next(n for n in crit.parse(EXPLAINED).root.walk() if n.path == path)
    return contact_id in matching(db, node, now=datetime.now(UTC))


@pytest.mark.parametrize("name", ["c1", "c2", "c3"])
def test_explain_node_flags_agree_with_evaluating_each_node_alone(acme: Org, name: str) -> None:
    seg_id = acme.segment("uOrg", EXPLAINED, scope="organization")
    contact_id = acme.contacts[name].id
    out = _explained(db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=contact_id)
    assert [n["path"] for n in out["criteria"]] == [
        "criteria",
        "criteria.all[0]",
        "criteria.all[1]",
        "criteria.all[1].not",
        "criteria.all[2]",
        "criteria.all[2].any[0]",
        "criteria.all[2].any[1]",
    ]
    for node in out["criteria"]:
        assert node["matched"] == _node_alone(acme.db, node["path"], contact_id), node
        assert node["description"]
    assert out["member"] == (name in ("c1", "c2"))
    assert out["member"] == out["criteria"][0]["matched"]
    assert out["materialised_member"] is False  # not refreshed yet
    acme.drain()
    again = _explained(
        db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=contact_id
    )
    assert again["materialised_member"] == again["member"]


def test_explain_scope_block_names_the_bu_when_the_contact_is_outside(acme: Org) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uA")  # business-unit scope: A
    outside = _explained(
        db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=acme.contacts["c2"].id
    )
    assert outside["criteria"][0]["matched"] is True  # the criteria match c2 …
    assert outside["member"] is False  # … but c2 is in A1
    assert outside["scope"] == {
        "setting": "business_unit",
        "applied": "business_unit",
        "scoping_on": True,
        "business_unit_id": acme.bus["A"],
        "contact_business_unit_id": acme.bus["A1"],
        "passes": False,
    }
    assert f"BU {acme.bus['A1']}" in outside["why"]
    assert "business-unit scope" in outside["why"]
    inside = _explained(
        db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=acme.contacts["c1"].id
    )
    assert inside["scope"]["passes"] is True
    assert (inside["member"], inside["why"]) == (True, "member")
    acme.scoping(False)
    off = _explained(
        db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=acme.contacts["c2"].id
    )
    assert off["scope"]["applied"] == "organization"
    assert off["scope"]["passes"] is True
    assert off["member"] is True


def test_explain_says_when_the_criteria_do_not_match(acme: Org) -> None:
    seg_id = acme.segment("uOrg", {"contact": {"country": "DE"}}, scope="organization")
    out = _explained(
        db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id, contact_id=acme.contacts["c1"].id
    )
    assert out["member"] is False
    assert out["why"] == "the criteria do not match"


def test_explain_for_a_viewer_who_cannot_read_the_contact(acme: Org) -> None:
    admin = f.user(acme.db, "root", None, "System Administrator")
    acme.db.commit()
    seg_id = acme.segment("uOrg", scope="organization")
    c1 = acme.contacts["c1"].id  # in A: uB (Marketer in B) may not read it
    as_admin = f.principal(acme.db, admin)
    hidden = _explained(
        db=acme.db,
        principal=as_admin,
        segment_id=seg_id,
        contact_id=c1,
        viewer_id=acme.users["uB"].id,
    )
    assert hidden["member"] is True
    assert hidden["viewer"]["user_id"] == acme.users["uB"].id
    assert hidden["viewer"]["can_read"] is False
    assert hidden["viewer"]["sees_it"] is False
    assert hidden["viewer"]["access"].startswith("denied")
    shown = _explained(
        db=acme.db,
        principal=as_admin,
        segment_id=seg_id,
        contact_id=c1,
        viewer_id=acme.users["uA"].id,
    )
    assert (shown["viewer"]["can_read"], shown["viewer"]["sees_it"]) == (True, True)
    itself = _explained(db=acme.db, principal=as_admin, segment_id=seg_id, contact_id=c1)
    assert itself["viewer"]["user_id"] == admin.id
    assert itself["viewer"]["can_read"] is True


def test_explain_for_another_viewer_needs_a_system_administrator(acme: Org) -> None:
    seg_id = acme.segment("uOrg", scope="organization")
    c1 = acme.contacts["c1"].id
    with pytest.raises(Forbidden) as err:
        _explained(
            db=acme.db,
            principal=acme.p("uOrg"),
            segment_id=seg_id,
            contact_id=c1,
            viewer_id=acme.users["uB"].id,
        )
    assert err.value.field == "viewer_id"
    own = _explained(
        db=acme.db,
        principal=acme.p("uOrg"),
        segment_id=seg_id,
        contact_id=c1,
        viewer_id=acme.users["uOrg"].id,  # oneself is always allowed
    )
    assert own["viewer"]["sees_it"] is True


def test_explain_needs_read_on_the_contact(acme: Org) -> None:
    seg_id = acme.segment("uB", {"contact": {"country": "JP"}})
    with pytest.raises(NotFound):
        _explained(
            db=acme.db, principal=acme.p("uB"), segment_id=seg_id, contact_id=acme.contacts["c1"].id
        )


def test_relative_dates_move_with_the_clock(people: People) -> None:
    tree = {"contact": {"created_at": {"in_last_days": 10}}}
    assert matching(people.db, tree, now=NOW) == people("jp", "de")
    assert matching(people.db, tree, now=NOW + timedelta(days=10)) == people("fr")
    assert matching(people.db, tree, now=NOW - timedelta(days=30)) == set()


def test_descriptions_speak_the_names_given_and_ids_otherwise() -> None:
    tree = {
        "any": [
            {"participation": "attended", "event": {"id": 7}, "min_minutes": 30, "max_minutes": 90},
            {"participation": "attended", "min_minutes": 0.5},
            {"participation": "cancelled"},
            {"participation": "registered", "event": {"name": {"contains": "launch"}}},
            {"participation": "not_attended", "event": {"id": {"in": [7, 8]}}},
            {"list": 3},
        ]
    }
    nodes = crit.parse(tree).root.children
    names = {("event", 7): "Autumn Product Launch", ("event", 8): "Recap", ("list", 3): "Follow-up"}
    assert [n.describe(names) for n in nodes] == [
        "attended “Autumn Product Launch” for 30–90 min",
        "attended any event for at least 0.5 min",
        "cancelled their registration for any event",
        "registered for an event where name contains 'launch'",
        "registered for “Autumn Product Launch” or “Recap” but did not attend",
        "member of the list “Follow-up”",
    ]
    # Without the names (a reader who may not read them), ids and nothing more.
    assert nodes[0].describe() == "attended an event where id equals 7 for 30–90 min"
    assert nodes[4].describe({("event", 7): "Autumn Product Launch"}) == (
        "registered for an event where id in [7, 8] but did not attend"
    )
    assert nodes[5].describe() == "member of list 3"
