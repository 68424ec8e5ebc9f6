"""Property (SPEC B5): for random organisations, contacts, events and criteria, the members a
viewer sees of a segment = the contacts matching the criteria ∩ the segment's scope ∩ the
contacts the viewer may read — with every term computed here in Python from the rules
(docs/segments.md, bu-security §2.6), never by the engine. Live evaluation, the
materialised membership after a refresh and the visible count must all agree with it, on
SQLite and PostgreSQL.

Events belong to random users: participation criteria match only on the events the
segment's owner may read (for membership) or the previewing user may read (for a preview),
and naming an event or list one may not read is refused (issue 12, F2)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege, rights_mask
from gatherly.access.models import RecordShare
from gatherly.contact.models import Contact
from gatherly.core.db import utcnow
from gatherly.event.models import EXCLUDED_ORGANIZER, EventAttendance, EventRegistration
from gatherly.event.models import MarketingEvent as Event
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.segment import service as seg
from gatherly.segment.criteria import CriteriaError
from gatherly.segment.models import MarketingList, MarketingListMember, SegmentMember
from tests.conftest import reset_database
from tests.properties.test_access_property import World as AccessWorld
from tests.properties.test_access_property import oracle as may_read

EXAMPLES = int(os.environ.get("GATHERLY_SEGMENT_PROPERTY_EXAMPLES", "40"))

# The built-in roles a marketer holds, narrowest first; index + 1 is the access level.
ROLES = ("Marketing Assistant", "Marketer", "Marketing Manager", "Marketing Administrator")
ADMIN = 3

COUNTRIES = (None, "JP", "DE", "FR")
COMPANIES = ("Acme", "acme_co", "AcmeXco", "Ac%me", "")
SCORES: tuple[Any, ...] = (None, 0, 3.5, 10, "high", "10", "")
EVENT_NAMES = ("Spring Webinar", "Summit 2026", "spring_break")
EVENT_TYPES = ("webinar", "in_person")
EVENT_DAYS = (date(2026, 1, 1), date(2026, 1, 31), date(2026, 3, 2), date(2026, 4, 1))
SECONDS = (None, None, 0, 300, 1800, 2700, 3600)


# ---------------------------------------------------------------- the random world


@dataclass(frozen=True)
class Person:
    owner: tuple[str, int]  # ("user", user index) or ("team", index of the BU's default team)
    bu: int
    country: str | None
    company: str
    score: Any  # None: no such property
    age_days: int  # created this many days ago, plus 12 hours either side of any boundary


@dataclass(frozen=True)
class Link:
    status: str | None  # registration status, or None
    seconds: int | None  # attendance total, or None
    excluded: bool  # the event keeps both rows but does not count the person (organizer)


@dataclass
class World:
    parents: list[int | None]
    users: list[tuple[int, int]]  # (bu index, role index)
    people: list[Person]
    events: list[tuple[str, str, int]]  # (name, type, index into EVENT_DAYS)
    event_owners: list[int | None]  # user index per event; None: the segment's owner
    links: dict[tuple[int, int], Link]  # (person, event) -> what happened
    listed: frozenset[int]
    scoping: bool
    totals: bool
    owner: int
    scope: str
    tree: Any


CONTACT_CONDITIONS: dict[str, list[Any]] = {
    "country": [
        "jp",
        {"in": ["JP", "de"]},
        {"not_equals": "JP"},
        {"not_in": ["JP", "DE"]},
        {"starts_with": "j"},
        {"empty": True},
        {"empty": False},
    ],
    "company": [
        "ACME",
        {"contains": "_co"},
        {"contains": "c%m"},
        {"starts_with": "ac"},
        {"ends_with": "CO"},
        {"not_equals": "acme"},
        {"in": ["acme", "AC%ME"]},
        {"empty": True},
    ],
    "custom.score": [
        {"gt": 5},
        {"gte": 3.5},
        {"lt": 10},
        {"lte": 0},
        {"between": [3, 10]},
        10,
        "10",
        "HIGH",
        {"in": [10, 3.5]},
        {"in": [3.5, "high"]},
        {"not_equals": 10},
        {"not_in": [0, 10]},
        {"contains": "1"},
        {"empty": True},
        {"empty": False},
    ],
    "created_at": [
        {"in_last_days": 7},
        {"in_last_days": 30},
        {"more_than_days_ago": 7},
        {"more_than_days_ago": 30},
        {"in_next_days": 1},
    ],
}

EVENT_CONDITIONS: dict[str, list[Any]] = {
    "name": [
        {"contains": "spring"},
        "SUMMIT 2026",
        {"starts_with": "spring_"},
        {"not_equals": "spring webinar"},
    ],
    "type": ["WEBINAR", {"not_equals": "webinar"}],
    "start": [
        {"after": "2026-03-01"},
        {"before": "2026-03-02"},
        {"between": ["2026-01-31", "2026-03-02"]},
        {"on": "2026-01-31"},
    ],
}


@st.composite
def contact_nodes(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.lists(st.sampled_from(sorted(CONTACT_CONDITIONS)), min_size=1, max_size=2))
    return {"contact": {name: draw(st.sampled_from(CONTACT_CONDITIONS[name])) for name in fields}}


@st.composite
def participation_nodes(draw: st.DrawFn, n_events: int) -> dict[str, Any]:
    what = draw(st.sampled_from(("registered", "attended", "cancelled", "not_attended")))
    node: dict[str, Any] = {"participation": what}
    choices = ["none", "fields"] + (["id"] if n_events else [])
    how = draw(st.sampled_from(choices))
    if how == "fields":
        names = draw(st.lists(st.sampled_from(sorted(EVENT_CONDITIONS)), min_size=1, max_size=2))
        node["event"] = {n: draw(st.sampled_from(EVENT_CONDITIONS[n])) for n in names}
    elif how == "id":
        ref = st.integers(0, n_events - 1).map(lambda i: f"E{i}")
        node["event"] = {
            "id": draw(
                st.one_of(
                    ref,
                    st.lists(ref, min_size=1, max_size=2).map(lambda xs: {"in": xs}),
                    ref.map(lambda x: {"not_equals": x}),
                )
            )
        }
    if what == "attended":
        low = draw(st.sampled_from((None, 0, 5, 30, 45)))
        high = draw(st.sampled_from((None, 5, 30, 60)))
        if low is not None and high is not None and low > high:
            low, high = high, low
        if low is not None:
            node["min_minutes"] = low
        if high is not None:
            node["max_minutes"] = high
    return node


def trees(depth: int, n_events: int, *, root: bool = True) -> st.SearchStrategy[Any]:
    """Trees at most ``depth`` levels deep; the root is always all, any or not (every
    subtree, leaves included, is checked on its own as well)."""
    leaves = st.one_of(contact_nodes(), participation_nodes(n_events), st.just({"list": "L"}))
    if depth == 0:
        return leaves
    sub = trees(depth - 1, n_events, root=False)
    branches = [
        st.lists(sub, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(sub, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        sub.map(lambda x: {"not": x}),
    ]
    return st.one_of(branches if root else [leaves, *branches])


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n_bu = draw(st.integers(1, 4))
    parents: list[int | None] = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n_bu)]
    bu = st.integers(0, n_bu - 1)
    users = [
        (draw(bu), draw(st.integers(0, len(ROLES) - 1))) for _ in range(draw(st.integers(1, 4)))
    ]
    people = []
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.integers(0, 3)):
            u = draw(st.integers(0, len(users) - 1))
            owner, home = ("user", u), users[u][0]
        else:
            team_bu = draw(bu)
            owner, home = ("team", team_bu), team_bu
        people.append(
            Person(
                owner=owner,
                # Mostly the owner's BU; sometimes another (a record left behind by a move).
                bu=home if draw(st.integers(0, 3)) else draw(bu),
                country=draw(st.sampled_from(COUNTRIES)),
                company=draw(st.sampled_from(COMPANIES)),
                score=draw(st.sampled_from(SCORES)),
                age_days=draw(st.integers(0, 40)),
            )
        )
    events = [
        (
            draw(st.sampled_from(EVENT_NAMES)),
            draw(st.sampled_from(EVENT_TYPES)),
            draw(st.integers(0, len(EVENT_DAYS) - 1)),
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    # Mostly the segment owner's (so criteria match); sometimes another user's.
    event_owners = [
        draw(st.integers(0, len(users) - 1)) if draw(st.integers(0, 2)) == 0 else None
        for _ in events
    ]
    links = {}
    for p in range(len(people)):
        for e in range(len(events)):
            status = draw(st.sampled_from((None, None, "registered", "canceled")))
            seconds = draw(st.sampled_from(SECONDS))
            if status is not None or seconds is not None:
                links[p, e] = Link(status, seconds, draw(st.integers(0, 5)) == 0)
    listed = draw(st.frozensets(st.integers(0, len(people) - 1), max_size=len(people)))
    owner = draw(st.integers(0, len(users) - 1))
    may_choose_org = users[owner][1] == ADMIN
    scope = draw(st.sampled_from(("business_unit", "organization"))) if may_choose_org else None
    return World(
        parents=parents,
        users=users,
        people=people,
        events=events,
        event_owners=event_owners,
        links=links,
        listed=listed,
        scoping=draw(st.booleans()),
        totals=draw(st.booleans()),
        owner=owner,
        scope=scope or "business_unit",
        tree=draw(trees(3, len(events))),
    )


# ---------------------------------------------------------------- the oracle (rules only)


def _day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time(), UTC)


def _text_holds(value: str | None, spec: Any) -> bool:
    """A text condition, case-insensitive; NULL never equals, so negations include it."""
    op, arg = next(iter(spec.items())) if isinstance(spec, dict) else ("equals", spec)
    if op.startswith("not_"):
        return not _text_holds(value, {op[4:]: arg})
    if op == "empty":
        return (value is None or value == "") == arg
    if value is None:
        return False
    v = value.lower()
    if op == "equals":
        return v == arg.lower()
    if op == "in":
        return v in {a.lower() for a in arg}
    if op == "contains":
        return arg.lower() in v
    if op == "starts_with":
        return v.startswith(arg.lower())
    if op == "ends_with":
        return v.endswith(arg.lower())
    raise AssertionError(op)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _custom_holds(value: Any, spec: Any) -> bool:
    """A custom property: numbers compare as numbers (text is then "no value"); text
    conditions compare the property's text, ignoring case."""
    op, arg = next(iter(spec.items())) if isinstance(spec, dict) else ("equals", spec)
    text = None if value is None else str(value)
    if op == "empty":
        return (text is None or text == "") == arg
    args = arg if isinstance(arg, list) else [arg]
    numeric = op in ("gt", "gte", "lt", "lte", "between") or all(_is_number(a) for a in args)
    if not numeric:
        return _text_holds(text, {op: [str(a) for a in arg] if isinstance(arg, list) else str(arg)})
    if op.startswith("not_"):
        return not _custom_holds(value, {op[4:]: arg})
    if not _is_number(value):
        return False
    return {
        "equals": lambda: value == arg,
        "in": lambda: value in arg,
        "gt": lambda: value > arg,
        "gte": lambda: value >= arg,
        "lt": lambda: value < arg,
        "lte": lambda: value <= arg,
        "between": lambda: arg[0] <= value <= arg[1],
    }[op]()


def _created_holds(created: datetime, spec: dict[str, int], now: datetime) -> bool:
    op, days = next(iter(spec.items()))
    span = timedelta(days=days)
    if op == "in_last_days":
        return now - span <= created <= now
    if op == "in_next_days":
        return now <= created <= now + span
    assert op == "more_than_days_ago"
    return created < now - span


def _start_holds(start: datetime, spec: dict[str, Any]) -> bool:
    op, arg = next(iter(spec.items()))
    if op == "after":
        return start >= _day(arg)
    if op == "before":
        return start < _day(arg)
    if op == "on":
        return _day(arg) <= start < _day(arg) + timedelta(days=1)
    assert op == "between"
    return _day(arg[0]) <= start < _day(arg[1]) + timedelta(days=1)  # a bare end: whole day


@dataclass
class Built:
    """The world as stored: ids, and the dates the database holds."""

    world: World
    user_ids: list[int]
    contact_ids: list[int]
    event_ids: list[int]
    list_id: int
    created: list[datetime]
    starts: list[datetime]


def _event_holds(b: Built, e: int, conditions: dict[str, Any]) -> bool:
    name, kind, _day_index = b.world.events[e]
    for field, spec in conditions.items():
        if field == "name":
            ok = _text_holds(name, spec)
        elif field == "type":
            ok = _text_holds(kind, spec)
        elif field == "start":
            ok = _start_holds(b.starts[e], spec)
        else:
            assert field == "id"
            op, arg = next(iter(spec.items())) if isinstance(spec, dict) else ("equals", spec)
            wanted = set(arg) if isinstance(arg, list) else {arg}
            ok = (b.event_ids[e] in wanted) != op.startswith("not_")
        if not ok:
            return False
    return True


def holds(b: Built, node: Any, p: int, now: datetime, sees: frozenset[int]) -> bool:
    """Whether person ``p`` matches ``node`` (a tree with real ids), from the rules, for a
    reader who may read the events in ``sees`` (indexes) and no others."""
    if "all" in node:
        return all(holds(b, n, p, now, sees) for n in node["all"])
    if "any" in node:
        return any(holds(b, n, p, now, sees) for n in node["any"])
    if "not" in node:
        return not holds(b, node["not"], p, now, sees)
    if "list" in node:
        return p in b.world.listed
    person = b.world.people[p]
    if "contact" in node:
        checks = {
            "country": lambda s: _text_holds(person.country, s),
            "company": lambda s: _text_holds(person.company, s),
            "custom.score": lambda s: _custom_holds(person.score, s),
            "created_at": lambda s: _created_holds(b.created[p], s, now),
        }
        return all(checks[f](spec) for f, spec in node["contact"].items())
    what = node["participation"]
    low = node.get("min_minutes")
    high = node.get("max_minutes")
    for e in range(len(b.world.events)):
        link = b.world.links.get((p, e))
        if link is None or link.excluded:
            continue  # kept on the event but not counted: never matches
        if e not in sees:
            continue  # an event (and its registrations, attendance) the reader cannot read
        if not _event_holds(b, e, node.get("event") or {}):
            continue
        attended = bool(link.seconds)  # a row with no time in a session is not attendance
        if what == "registered" and link.status == "registered":
            return True
        if what == "cancelled" and link.status == "canceled":
            return True
        if what == "not_attended" and link.status == "registered" and not attended:
            return True
        if (
            what == "attended"
            and attended
            and (low is None or link.seconds >= low * 60)
            and (high is None or link.seconds <= high * 60)
        ):
            return True
    return False


def subtrees(tree: Any) -> list[Any]:
    """The tree and every node below it."""
    found = [tree]
    for child in (
        tree.get("all", []) + tree.get("any", []) + ([tree["not"]] if "not" in tree else [])
    ):
        found.extend(subtrees(child))
    return found


def access_world(w: World) -> AccessWorld:
    """The same organisation for the access property's oracle: each built-in role grants
    read at its level; every BU's default team holds the users whose home BU it is."""
    return AccessWorld(
        parents=w.parents,
        roles=[{"read": level, "write": level} for level in range(1, len(ROLES) + 1)],
        users=[(b, frozenset({role}), False) for b, role in w.users],
        teams=[
            (b, frozenset(u for u, (home, _r) in enumerate(w.users) if home == b), frozenset())
            for b in range(len(w.parents))
        ],
        records=[(p.owner[0], p.owner[1], p.bu) for p in w.people],
    )


def event_owner(w: World, e: int) -> int:
    """The user index that owns event ``e``."""
    owner = w.event_owners[e]
    return w.owner if owner is None else owner


def readable_refs(w: World, user: int) -> tuple[frozenset[int], bool]:
    """The events (indexes) ``user`` may read, and whether they may read the list (the
    segment owner's): events and the list live in their owner's BU."""
    world = access_world(w)
    world.records = [
        ("user", event_owner(w, e), w.users[event_owner(w, e)][0]) for e in range(len(w.events))
    ] + [("user", w.owner, w.users[w.owner][0])]
    events = frozenset(e for e in range(len(w.events)) if may_read(world, user, "read", e))
    return events, may_read(world, user, "read", len(w.events))


def references(tree: Any) -> tuple[set[int], bool]:
    """The events a tree names by id (equals or in: what must exist and be readable) and
    whether it names the list."""
    events: set[int] = set()
    named_list = False
    for node in subtrees(tree):
        named_list = named_list or "list" in node
        spec = (node.get("event") or {}).get("id") if "participation" in node else None
        if spec is None:
            continue
        op, arg = next(iter(spec.items())) if isinstance(spec, dict) else ("equals", spec)
        if op in ("equals", "in"):
            events |= {int(x[1:]) for x in (arg if isinstance(arg, list) else [arg])}
    return events, named_list


def refused_refs(w: World, user: int) -> bool:
    """Whether the tree names an event or the list ``user`` may not read."""
    events, named_list = references(w.tree)
    sees, sees_list = readable_refs(w, user)
    return bool(events - sees) or (named_list and not sees_list)


# ---------------------------------------------------------------- building it for real


def _with_ids(tree: Any, b: Built) -> Any:
    """The tree with its placeholders ("E0", "L") replaced by stored ids."""
    if isinstance(tree, dict):
        if tree.get("list") == "L":
            return {"list": b.list_id}
        return {k: _with_ids(v, b) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_with_ids(v, b) for v in tree]
    if isinstance(tree, str) and tree[:1] == "E" and tree[1:].isdigit():
        return b.event_ids[int(tree[1:])]
    return tree


def build(db: Session, w: World, now: datetime) -> Built:
    """Create the world through the services where they exist, rows where they do not."""
    root = org.get_root(db=db)
    bu_ids = [root.id]
    for i, parent in enumerate(w.parents[1:], start=1):
        assert parent is not None
        bu_ids.append(org.create_bu(db=db, name=f"BU{i}", parent_id=bu_ids[parent]).id)
    role_ids = [org.get_role_by_name(db=db, name=name).id for name in ROLES]
    user_ids = []
    for i, (b, role) in enumerate(w.users):
        u = org.create_user(db=db, username=f"u{i}", business_unit_id=bu_ids[b])
        org.assign_role(db=db, role_id=role_ids[role], user_id=u.id)
        user_ids.append(u.id)
    team_ids = [org.default_team(db=db, bu_id=b).id for b in bu_ids]
    created = [now - timedelta(days=p.age_days) + timedelta(hours=12) for p in w.people]
    contacts = []
    for i, p in enumerate(w.people):
        kind, who = p.owner
        c = Contact(
            owner_type=kind,
            owner_id=(user_ids if kind == "user" else team_ids)[who],
            owning_bu_id=bu_ids[p.bu],
            email=f"c{i}@x.example",
            last_name=f"c{i}",
            country=p.country,
            company=p.company,
            custom={} if p.score is None else {"score": p.score},
            created_at=created[i],
        )
        db.add(c)
        contacts.append(c)
    db.flush()

    # The list belongs to the segment's owner; each event to its owner, in their BU.
    def owned_by(u: int) -> dict[str, Any]:
        return {
            "owner_type": "user",
            "owner_id": user_ids[u],
            "owning_bu_id": bu_ids[w.users[u][0]],
        }

    owned = owned_by(w.owner)
    starts = [datetime.combine(EVENT_DAYS[d], time(15), UTC) for _n, _t, d in w.events]
    events = [
        Event(name=name, event_type=kind, start_at=starts[i], **owned_by(event_owner(w, i)))
        for i, (name, kind, _d) in enumerate(w.events)
    ]
    db.add_all(events)
    lst = MarketingList(name="L", **owned)
    db.add(lst)
    db.flush()
    for (p, e), link in w.links.items():
        excluded = EXCLUDED_ORGANIZER if link.excluded else None
        common = {
            "event_id": events[e].id,
            "contact_id": contacts[p].id,
            **owned_by(event_owner(w, e)),  # owned like their event (B10)
        }
        if link.status is not None:
            db.add(
                EventRegistration(
                    external_id=f"r{p}-{e}", status=link.status, excluded_reason=excluded, **common
                )
            )
        if link.seconds is not None:
            db.add(
                EventAttendance(
                    person_key=f"c{p}@x.example",
                    total_seconds=link.seconds,
                    excluded_reason=excluded,
                    **common,
                )
            )
    db.add_all(MarketingListMember(list_id=lst.id, contact_id=contacts[p].id) for p in w.listed)
    org.set_feature(db=db, name=org.BU_SCOPING, enabled=w.scoping, by_user_id=None)
    org.set_feature(db=db, name=org.SEGMENT_TOTALS, enabled=w.totals, by_user_id=None)
    db.flush()
    return Built(
        w, user_ids, [c.id for c in contacts], [e.id for e in events], lst.id, created, starts
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(w=worlds())
def _check(engine: Engine, w: World) -> None:
    reset_database(engine)
    with Session(engine) as db:
        b = build(db, w, utcnow())
        tree = _with_ids(w.tree, b)
        owner = load_principal(db, b.user_ids[w.owner])
        if refused_refs(w, w.owner):
            with pytest.raises(CriteriaError):
                seg.create_segment(db=db, principal=owner, name="S", criteria=tree, scope=w.scope)
            return
        segment = seg.create_segment(db=db, principal=owner, name="S", criteria=tree, scope=w.scope)
        db.add(  # every viewer may open the segment; what they see of it is the question
            RecordShare(
                record_type="segment",
                record_id=segment.id,
                principal_type="organization",
                principal_id=0,
                rights=rights_mask({Privilege.READ}),
            )
        )
        db.commit()

        now = utcnow()
        owner_bu = w.users[w.owner][0]
        bu_scoped = w.scoping and w.scope == "business_unit"
        owner_sees, _ = readable_refs(w, w.owner)
        members = {
            b.contact_ids[p]
            for p in range(len(w.people))
            if holds(b, tree, p, now, owner_sees) and (not bu_scoped or w.people[p].bu == owner_bu)
        }
        readers = access_world(w)
        # Every subtree, and its negation, is a criteria tree too: check each against the
        # oracle on its own (unscoped), so a wrong node cannot hide behind the others.
        for sub in subtrees(tree):
            for part in (sub, {"not": sub}):
                stmt = seg.evaluate_statement(db=db, tree=part, readers=(owner,))
                got = {c.id for c in db.execute(stmt).scalars()}
                want = {
                    b.contact_ids[p]
                    for p in range(len(w.people))
                    if holds(b, part, p, now, owner_sees)
                }
                assert got == want, f"criteria {part}"

        # A preview by each user sees the events that user may read, the contacts that user
        # may read, in that user's BU when scoping is on; naming what they cannot read fails.
        viewers = [load_principal(db, user_id) for user_id in b.user_ids]  # loaded once
        for v, viewer in enumerate(viewers):
            if refused_refs(w, v):
                with pytest.raises(CriteriaError):
                    seg.preview(db=db, principal=viewer, criteria=tree, limit=0)
                continue
            v_sees, _ = readable_refs(w, v)
            expected_count = sum(
                1
                for p in range(len(w.people))
                if holds(b, tree, p, now, v_sees)
                and may_read(readers, v, "read", p)
                and (not w.scoping or w.people[p].bu == w.users[v][0])
            )
            shown = seg.preview(db=db, principal=viewer, criteria=tree, limit=0)
            assert shown.visible == expected_count, f"preview for u{v}"

        def check_viewers(source: str) -> None:
            for v, viewer in enumerate(viewers):
                shown = seg.members(
                    db=db,
                    principal=viewer,
                    segment_id=segment.id,
                    live=source == "live",
                    limit=500,
                )
                expected = {
                    b.contact_ids[p]
                    for p in range(len(w.people))
                    if b.contact_ids[p] in members and may_read(readers, v, "read", p)
                }
                assert shown.source == source
                assert {c.id for c in shown.page.items} == expected, f"{source} for u{v}"
                assert shown.visible == len(expected), f"{source} count for u{v}"
                assert shown.total == (len(members) if w.totals else None)

        check_viewers("live")
        result = seg.refresh(db=db, segment_id=segment.id)
        assert result is not None
        assert result.total == len(members)
        stored = set(
            db.execute(
                select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
            ).scalars()
        )
        assert stored == members, "materialised membership"
        check_viewers("materialised")


@pytest.mark.timeout(900)  # a failure shrinks for up to 5 minutes before it reports
def test_members_a_viewer_sees_equal_criteria_and_scope_and_read_access(engine: Engine) -> None:
    _check(engine)
