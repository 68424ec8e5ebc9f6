"""Deterministic data for the access benchmark: an organisation, contacts and shares.

``make_plan`` decides everything from a seed (pure Python, no database): the BU tree, the
users and their BUs, owner teams and members, each contact's owner and owning BU, the
shares, and the viewers the benchmark signs in as. ``build`` then creates the organisation
through ``gatherly.org.service`` (so the closure table and default teams are the
application's own) and bulk-loads contacts and shares: ``executemany`` in one transaction
on SQLite, ``COPY`` on PostgreSQL. Both backends receive identical rows.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import gatherly.models  # noqa: F401 - registers every table and record type
from gatherly.core import migrate
from gatherly.org import defaults, service

# Bump when the generated data changes shape, so cached databases are rebuilt.
GENERATOR_VERSION = 3

# BUs per depth (root at depth 0); every BU above the last level has children, so the
# leaves are exactly the deepest BUs. 1 + 5 + 20 + 60 + 114 = 200, depth 4 (≤ 5).
LEVEL_SIZES = (1, 5, 20, 60, 114)

FIRST = "Anna Ben Chloe David Emma Felix Grace Hugo Ines Jonas Karin Lukas Mia Noah Olga Paul"
LAST = "Meyer Schmidt Dubois Rossi Garcia Novak Jensen Silva Kowalski Smith Brown Martin Weber"
COMPANIES = "Acme Globex Initech Umbrella Stark Wayne Hooli Vandelay Soylent Tyrell Cyberdyne"
TITLES = ("CMO", "Marketing Manager", "Event Lead", "Engineer", "Analyst", "Sales Rep", "CEO")
COUNTRIES = ("DE", "FR", "IT", "ES", "GB", "US", "NL", "PL", "SE", "CH", None)

CONTACT_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone",
    "country",
    "custom",
    "created_at",
    "modified_at",
    "created_by_id",
    "modified_by_id",
    "owner_type",
    "owner_id",
    "owning_bu_id",
)
SHARE_COLUMNS = (
    "id",
    "record_type",
    "record_id",
    "principal_type",
    "principal_id",
    "rights",
    "created_at",
    "created_by_id",
)


@dataclass(frozen=True)
class Sizes:
    """What to generate; the fingerprint of a cached database."""

    seed: int = 42
    contacts: int = 1_000_000
    users: int = 500
    shares: int = 20_000
    team_owned: float = 0.05
    manual_teams: int = 60
    zipf_s: float = 1.0

    @property
    def bus(self) -> int:
        """Number of business units, root included."""
        return sum(LEVEL_SIZES)

    def fingerprint(self) -> str:
        """A string that changes whenever the generated data would."""
        return json.dumps(
            {"version": GENERATOR_VERSION, "levels": LEVEL_SIZES, **asdict(self)}, sort_keys=True
        )


@dataclass
class Viewer:
    """A user the benchmark signs in as (indexes into the plan until ``build`` maps ids)."""

    key: str
    label: str
    role: str
    level: str  # user | business_unit | parent_child | organization
    user: int  # user index in the plan; the database id after build
    bu: int  # BU index / id (the anchor of the role)
    teams: list[int] = field(default_factory=list)  # manual teams joined (index / id)
    readable_hint: int = 0  # readable contacts by the rules in Python (checks the count)


@dataclass
class Plan:
    """Everything decided from the seed, in plan indexes (not database ids)."""

    sizes: Sizes
    bu_parent: list[int]  # -1 for the root
    bu_depth: list[int]
    user_bu: list[int]
    team_bu: list[int]  # teams 0..bus-1 are the BUs' default teams, then the manual teams
    team_members: dict[int, list[int]]  # manual team -> users
    c_team: bytearray  # 1 when the contact is team-owned
    c_owner: array[int]  # user index, or team index when team-owned
    c_bu: array[int]  # owning BU index
    c_mod: array[int]  # modified_at, microseconds after EPOCH
    shares: list[tuple[int, str, int, int]]  # (contact number, principal type, key, rights)
    viewers: list[Viewer]


EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_US = 3 * 365 * 24 * 3600 * 1_000_000


def _tree(rng: random.Random) -> tuple[list[int], list[int]]:
    parent, depth = [-1], [0]
    prev = [0]
    for d, size in enumerate(LEVEL_SIZES[1:], start=1):
        level = list(range(len(parent), len(parent) + size))
        # one child for every BU of the level above first, the rest at random
        parents = [prev[i % len(prev)] for i in range(min(size, len(prev)))]
        parents += [rng.choice(prev) for _ in range(size - len(parents))]
        rng.shuffle(parents)
        parent += parents
        depth += [d] * size
        prev = level
    return parent, depth


def _subtree_totals(parent: list[int], counts: list[int]) -> list[int]:
    total = list(counts)
    for bu in range(len(parent) - 1, 0, -1):  # children always come after their parent
        total[parent[bu]] += total[bu]
    return total


def make_plan(sizes: Sizes) -> Plan:
    """Decide the whole data set from ``sizes.seed``."""
    rng = random.Random(sizes.seed)
    bu_parent, bu_depth = _tree(rng)
    n_bu = len(bu_parent)
    user_bu = [rng.randrange(n_bu) for _ in range(sizes.users)]
    team_bu = list(range(n_bu)) + [rng.randrange(n_bu) for _ in range(sizes.manual_teams)]
    team_members = {
        t: sorted(rng.sample(range(sizes.users), rng.randint(2, 12)))
        for t in range(n_bu, n_bu + sizes.manual_teams)
    }

    # Ownership: Zipf over the users (rank order shuffled), a share of it team-owned.
    ranks = list(range(sizes.users))
    rng.shuffle(ranks)  # ranks[u] = Zipf rank of user u (0 = most records)
    by_rank = sorted(range(sizes.users), key=ranks.__getitem__)
    cum: list[float] = []
    acc = 0.0
    for r in range(sizes.users):
        acc += 1.0 / (r + 1) ** sizes.zipf_s
        cum.append(acc)
    n = sizes.contacts
    c_team = bytearray(1 if rng.random() < sizes.team_owned else 0 for _ in range(n))
    user_draws = iter(rng.choices(by_rank, cum_weights=cum, k=n))
    n_teams = len(team_bu)
    c_owner = array("i", (rng.randrange(n_teams) if t else next(user_draws) for t in c_team))
    c_bu = array(
        "i", (team_bu[o] if t else user_bu[o] for t, o in zip(c_team, c_owner, strict=True))
    )
    c_mod = array("q", (rng.randrange(SPAN_US) for _ in range(n)))

    viewers = _pick_viewers(rng, sizes, bu_parent, bu_depth, user_bu, team_members, ranks, c_bu)
    shares = _shares(rng, sizes, n_bu, viewers)
    plan = Plan(
        sizes=sizes,
        bu_parent=bu_parent,
        bu_depth=bu_depth,
        user_bu=user_bu,
        team_bu=team_bu,
        team_members=team_members,
        c_team=c_team,
        c_owner=c_owner,
        c_bu=c_bu,
        c_mod=c_mod,
        shares=shares,
        viewers=viewers,
    )
    for v in viewers:
        v.readable_hint = len(readable_numbers(plan, v))
    return plan


def _pick_viewers(
    rng: random.Random,
    sizes: Sizes,
    bu_parent: list[int],
    bu_depth: list[int],
    user_bu: list[int],
    team_members: dict[int, list[int]],
    ranks: list[int],
    c_bu: array[int],
) -> list[Viewer]:
    """Viewers are owners too (they own records, as real users do); roles go to them only."""
    per_bu = [0] * len(bu_parent)
    for bu in c_bu:
        per_bu[bu] += 1
    subtree = _subtree_totals(bu_parent, per_bu)
    users_in: dict[int, list[int]] = {}
    for u, bu in enumerate(user_bu):
        users_in.setdefault(bu, []).append(u)
    taken: set[int] = set()

    def someone_in(bu: int) -> int:
        # the BU's smallest owner: they read mostly colleagues' records, as a manager does
        u = max((x for x in users_in[bu] if x not in taken), key=ranks.__getitem__)
        taken.add(u)
        return u

    # user level: the median owner (Zipf rank users/2), a typical user
    assistant = ranks.index(sizes.users // 2)
    taken.add(assistant)

    def free(depth: int | None = None) -> list[int]:
        return [
            b
            for b in range(1, len(bu_parent))
            if (depth is None or bu_depth[b] == depth)
            and len(users_in.get(b, ())) >= 2  # the viewer is not the BU's only owner
            and any(u not in taken for u in users_in[b])
        ]

    # business unit level: the non-root BU holding the most contacts (the hard case)
    bu_big = max(free(), key=per_bu.__getitem__)
    bu_user = someone_in(bu_big)
    near_root = max(free(1), key=subtree.__getitem__)
    near_root_user = someone_in(near_root)
    leaf = max((b for b in free(len(LEVEL_SIZES) - 1) if b != bu_big), key=per_bu.__getitem__)
    leaf_user = someone_in(leaf)
    viewers = [
        Viewer("user", "user level", "Marketing Assistant", "user", assistant, user_bu[assistant]),
        Viewer("bu", "BU level", "Marketer", "business_unit", bu_user, bu_big),
        Viewer(
            "pc_root",
            "parent-child near root",
            "Marketing Manager",
            "parent_child",
            near_root_user,
            near_root,
        ),
        Viewer(
            "pc_leaf",
            "parent-child at a leaf",
            "Marketing Manager",
            "parent_child",
            leaf_user,
            leaf,
        ),
    ]
    org_user = min((u for u in range(sizes.users) if u not in taken), key=ranks.__getitem__)
    viewers.append(
        Viewer("org", "organization", "Marketing Administrator", "organization", org_user, 0)
    )
    # Manual team memberships for everyone but the administrator: team-owned records and
    # team shares then count for them.
    manual = sorted(team_members)
    for v in viewers[:-1]:
        for t in rng.sample(manual, 2):
            if v.user not in team_members[t]:
                team_members[t].append(v.user)
            v.teams.append(t)
    return viewers


def _shares(
    rng: random.Random, sizes: Sizes, n_bu: int, viewers: list[Viewer]
) -> list[tuple[int, str, int, int]]:
    """20,000 shares: a guaranteed slice for the viewers and their teams, the rest random."""
    seen: set[tuple[int, str, int]] = set()
    out: list[tuple[int, str, int, int]] = []
    n_teams = n_bu + sizes.manual_teams

    def rights() -> int:
        if rng.random() < 0.85:
            return 1 | rng.randrange(128)  # read plus anything else
        return rng.choice((2, 4, 2 | 4, 8 | 16, 64))  # no read bit: must not grant read

    def add(principal_type: str, key: int, count: int) -> None:
        while count > 0 and len(out) < sizes.shares:
            record = rng.randrange(sizes.contacts)
            if (record, principal_type, key) in seen:
                continue
            seen.add((record, principal_type, key))
            out.append((record, principal_type, key, rights()))
            count -= 1

    per = max(1, sizes.shares // 80)  # 250 of 20,000
    for v in viewers:
        add("user", v.user, per)
        for t in v.teams:
            add("team", t, per)
    add("organization", 0, per)
    while len(out) < sizes.shares:
        if rng.random() < 0.7:
            add("user", rng.randrange(sizes.users), 1)
        else:
            add("team", rng.randrange(n_teams), 1)
    return out


def readable_numbers(plan: Plan, viewer: Viewer) -> set[int]:
    """Contact numbers (0-based) the viewer may read, by the rules, in Python (a cross-check)."""
    n = plan.sizes.contacts
    if viewer.level == "organization":
        return set(range(n))
    teams = {t for t, members in plan.team_members.items() if viewer.user in members}
    teams.add(plan.user_bu[viewer.user])  # the default team of the viewer's BU
    if viewer.level == "parent_child":
        bus = {viewer.bu}
        for b, p in enumerate(plan.bu_parent):
            if p in bus:  # parents come first, so one pass collects the subtree
                bus.add(b)
    elif viewer.level == "business_unit":
        bus = {viewer.bu}
    else:
        bus = set()
    out = {
        i
        for i in range(n)
        if plan.c_bu[i] in bus
        or (plan.c_owner[i] in teams if plan.c_team[i] else plan.c_owner[i] == viewer.user)
    }
    for record, ptype, key, rights in plan.shares:
        if rights & 1 and (
            ptype == "organization"
            or (ptype == "user" and key == viewer.user)
            or (ptype == "team" and key in teams)
        ):
            out.add(record)
    return out


# ---------------------------------------------------------------------------- the database


@dataclass
class Ids:
    """Plan index -> database id."""

    bu: list[int]
    user: list[int]
    team: list[int]


def _create_org(db: Session, plan: Plan) -> Ids:
    root = defaults.ensure_defaults(db)
    bu_ids = [root.id]
    for i in range(1, len(plan.bu_parent)):
        bu = service.create_bu(db=db, name=f"BU {i:03d}", parent_id=bu_ids[plan.bu_parent[i]])
        bu_ids.append(bu.id)
    user_ids = [
        service.create_user(
            db=db,
            username=f"user{u:03d}",
            business_unit_id=bu_ids[bu],
            email=f"user{u}@example.com",
        ).id
        for u, bu in enumerate(plan.user_bu)
    ]
    team_ids = [service.default_team(db=db, bu_id=b).id for b in bu_ids]
    for t in range(len(bu_ids), len(plan.team_bu)):
        team = service.create_team(
            db=db, name=f"Team {t:03d}", business_unit_id=bu_ids[plan.team_bu[t]]
        )
        team_ids.append(team.id)
        for u in plan.team_members[t]:
            service.add_member(db=db, team_id=team.id, user_id=user_ids[u])
    for v in plan.viewers:
        role = service.get_role_by_name(db=db, name=v.role)
        service.assign_role(db=db, role_id=role.id, user_id=user_ids[v.user])
    db.flush()
    return Ids(bu=bu_ids, user=user_ids, team=team_ids)


def _fmt(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat(sep=" ", timespec="microseconds")[:26]


def contact_rows(
    plan: Plan, ids: Ids, *, tz_suffix: str = "", countries: Sequence[str | None] = COUNTRIES
) -> Iterator[tuple[Any, ...]]:
    """The contact rows in CONTACT_COLUMNS order; ids are 1..N, timestamps as UTC text.

    ``countries`` is what each contact's country is drawn from (uniformly; repeat a value to
    weight it); the default is the access benchmark's.
    """
    rng = random.Random(f"{plan.sizes.seed}-contact-text")
    first, last, companies = FIRST.split(), LAST.split(), COMPANIES.split()
    year_us = 365 * 24 * 3600 * 1_000_000
    for i in range(plan.sizes.contacts):
        is_team = plan.c_team[i]
        owner = plan.c_owner[i]
        f, la = rng.choice(first), rng.choice(last)
        modified = plan.c_mod[i]
        owner_id = ids.team[owner] if is_team else ids.user[owner]
        creator = None if is_team else owner_id
        yield (
            i + 1,
            f"{f}.{la}.{i}@example.com".lower(),
            f,
            la,
            rng.choice(companies),
            rng.choice(TITLES),
            f"+49 30 {i:07d}",
            rng.choice(countries),
            "{}",
            _fmt(modified - rng.randrange(year_us)) + tz_suffix,
            _fmt(modified) + tz_suffix,
            creator,
            creator,
            "team" if is_team else "user",
            owner_id,
            ids.bu[plan.c_bu[i]],
        )


def share_rows(plan: Plan, ids: Ids, *, tz_suffix: str = "") -> Iterator[tuple[Any, ...]]:
    """The record_share rows in SHARE_COLUMNS order."""
    created = _fmt(SPAN_US) + tz_suffix
    for n, (record, ptype, key, rights) in enumerate(plan.shares, start=1):
        pid = {"user": ids.user, "team": ids.team}[ptype][key] if ptype != "organization" else 0
        yield (n, "contact", record + 1, ptype, pid, rights, created, None)


def _load_sqlite(
    engine: Engine,
    plan: Plan,
    ids: Ids,
    log: Callable[[str], None],
    countries: Sequence[str | None] = COUNTRIES,
) -> None:
    path = engine.url.database
    assert path
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        con.execute("BEGIN")
        cols = ", ".join(CONTACT_COLUMNS)
        marks = ", ".join("?" * len(CONTACT_COLUMNS))
        con.executemany(
            f"INSERT INTO contact ({cols}) VALUES ({marks})",
            contact_rows(plan, ids, countries=countries),
        )
        cols = ", ".join(SHARE_COLUMNS)
        marks = ", ".join("?" * len(SHARE_COLUMNS))
        con.executemany(
            f"INSERT INTO record_share ({cols}) VALUES ({marks})", share_rows(plan, ids)
        )
        con.execute("COMMIT")
        log("analyze")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def _load_postgresql(
    engine: Engine,
    plan: Plan,
    ids: Ids,
    log: Callable[[str], None],
    countries: Sequence[str | None] = COUNTRIES,
) -> None:
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        assert con is not None
        with con.cursor() as cur:
            with cur.copy(f"COPY contact ({', '.join(CONTACT_COLUMNS)}) FROM STDIN") as copy:
                for row in contact_rows(plan, ids, tz_suffix="+00", countries=countries):
                    copy.write_row(row)
            with cur.copy(f"COPY record_share ({', '.join(SHARE_COLUMNS)}) FROM STDIN") as copy:
                for row in share_rows(plan, ids, tz_suffix="+00"):
                    copy.write_row(row)
            for table in ("contact", "record_share"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        con.commit()
        log("vacuum analyze")
        con.autocommit = True
        with con.cursor() as cur:  # this schema's tables only, not the whole database
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            tables = ", ".join(f'"{name}"' for (name,) in cur.fetchall())
            cur.execute(f"VACUUM (ANALYZE) {tables}")
        con.autocommit = False
    finally:
        raw.close()


META_DDL = "CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(40) PRIMARY KEY, value TEXT)"


def read_meta(engine: Engine) -> dict[str, str]:
    """The benchmark's own key/value table, or {} when the database holds no finished build."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT key, value FROM bench_meta")).all()
            return {k: v for k, v in rows}
    except Exception:
        return {}


def build(
    engine: Engine,
    plan: Plan,
    log: Callable[[str], None],
    *,
    countries: Sequence[str | None] = COUNTRIES,
) -> list[Viewer]:
    """Migrate an empty database, create the organisation and load the data.

    Returns the viewers with database ids. The fingerprint is written last, so an
    interrupted build is never mistaken for a finished one. ``countries`` goes to
    ``contact_rows`` (bench/segments.py draws from more; bench/access.py keeps the default).
    """
    t0 = time.perf_counter()
    migrate.upgrade(engine)
    with Session(engine) as db, db.begin():
        ids = _create_org(db, plan)
    log(f"organisation created ({time.perf_counter() - t0:.1f} s); loading contacts and shares")
    t1 = time.perf_counter()
    if engine.dialect.name == "sqlite":
        _load_sqlite(engine, plan, ids, log, countries)
    else:
        _load_postgresql(engine, plan, ids, log, countries)
    log(f"contacts and shares loaded ({time.perf_counter() - t1:.1f} s)")
    viewers = [
        Viewer(
            key=v.key,
            label=v.label,
            role=v.role,
            level=v.level,
            user=ids.user[v.user],
            bu=ids.bu[v.bu],
            teams=[ids.team[t] for t in v.teams],
            readable_hint=v.readable_hint,
        )
        for v in plan.viewers
    ]
    with engine.begin() as conn:
        conn.execute(text(META_DDL))
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES (:k, :v)"),
            [
                {"k": "viewers", "v": json.dumps([asdict(v) for v in viewers])},
                {"k": "fingerprint", "v": plan.sizes.fingerprint()},
            ],
        )
    return viewers


def viewers_from_meta(meta: dict[str, str]) -> list[Viewer]:
    """The viewers a previous build stored."""
    return [Viewer(**v) for v in json.loads(meta["viewers"])]
