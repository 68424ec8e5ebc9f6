"""Benchmark: reports — *Webinar performance* by month against hand-written SQL and DuckDB
(issue 18, SPEC T6, B10).

Data, from a seed and bulk-loaded (executemany on SQLite, COPY on PostgreSQL, indexes made
after): the default organisation (``org.defaults``) with 10 business units under the root
(sizes 20 %, 15 %, 12 % … 6 % of the records), 5 users in each; 22,000 marketing events
(20,000 webinars, 2,000 in person) starting over 24 months (2024-07 to 2026-06, the last
six weeks after ``NOW``), 5 % owned by their BU's default team, the rest by one of its
users; 3,000,000 registrations over them (log-normal event sizes; 12 % cancelled, of
those 15 % registered again — a second row, so a registrant, not a cancellation —, 1 %
excluded, 2 % without a contact); 1,500,000 attendance rows (97 % for registered rows of
events that have started, 3 % people who came without registering; 5 % with no time in a
session, so not attendance) and 500,000 contacts. Registrations and attendance are owned
like their event (B10); emails are stored normalised and ``person_key`` is the email.

The viewer is a Marketer (business-unit level) in the largest BU. They also own 10 events
of another BU (a move without their records) with their registrations and attendance, and
20 events of other BUs are shared with them (the events only: their registrations and
attendance stay unreadable, so those events count with no registrants). 2,000 other shares
go to other users.

Measured, on the same database and in the same run, each side run --warmup times untimed
and then --runs times (rotating which goes first); the best (fastest) run is what is
compared, the median printed beside it:

  engine  ``report.service.run_report(builtin="webinar-performance")`` for the viewer, as
          the application runs it (parse, statement, rows, chart)
  floor   hand-written SQL computing the same sums for the same viewer: their read access
          written out by hand on each table (the BU's rows, the rows they or their teams
          own, the rows shared with them, their teams or everyone), the events filtered
          first and the registrations and attendance of those events only; constants
          inlined; on PostgreSQL under the settings the engine runs its statement with
          (``SET LOCAL jit = off``, custom plans). A few forms are tried (``forms``); the
          fastest is the floor.
  duckdb  the floor's ``join`` form in DuckDB, in memory, over the same rows exported from
          the database (the export and load are not timed)

Every side must give the same rows — month, events, registrants, attendees, attendance
rate, average minutes, cancellations, no-shows (rates and averages worked out from the
sums as the engine does) — or the run exits 1. Printed: seconds for each, engine / floor
(target <= 1.2) and engine / DuckDB.

    .venv/bin/python bench/reports.py                                       # SQLite
    .venv/bin/python bench/reports.py --attendance 15000 --registrations 30000   # smoke
    .venv/bin/python bench/reports.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/reports.py --explain                             # and the plans

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_reports``
(PostgreSQL), made anew for every run; ``--reuse`` keeps it (bench/data/reports*.db, the
schema) and reuses it when the sizes and seed match.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from bulkload import Table, load_tables
from mailbench import log
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.levels import Privilege, rights_mask
from gatherly.core import migrate
from gatherly.core.db import make_engine, make_session_factory
from gatherly.org import defaults
from gatherly.org import service as org_service
from gatherly.org.directory import load_principal
from gatherly.report import service

DATA_DIR = Path(__file__).resolve().parent / "data"
VERSION = 1  # bump when the generated data changes shape (--reuse rebuilds)
RATIO_TARGET = 1.2
BU_WEIGHTS = (20, 15, 12, 10, 9, 8, 7, 7, 6, 6)  # 10 BUs; the viewer's is the first
USERS_PER_BU = 5
ORIGIN = datetime(2024, 7, 1, tzinfo=UTC)  # the first event's month
SPAN = int((datetime(2026, 7, 1, tzinfo=UTC) - ORIGIN).total_seconds())  # 24 months
NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)  # events after it have no attendance yet
NOW_S = int((NOW - ORIGIN).total_seconds())
DAY = 86_400
OWNED_BY_VIEWER = 10  # events of another BU the viewer owns
SHARED_WITH_VIEWER = 20  # events of other BUs shared with the viewer
OTHER_SHARES = 2_000
BUILTIN = "webinar-performance"
COLUMNS = (
    "month",
    "events",
    "registrants",
    "attendees",
    "attendance rate",
    "avg minutes",
    "cancellations",
    "no-shows",
)


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Sizes:
    seed: int
    webinars: int
    others: int
    registrations: int
    attendance: int
    contacts: int

    def fingerprint(self) -> str:
        return json.dumps({"version": VERSION, **asdict(self)}, sort_keys=True)


# Registration kinds, one byte each.
REGISTERED, CANCELED, EXCLUDED, AGAIN = 0, 1, 2, 3  # AGAIN: registered after cancelling


def below(rng: random.Random) -> Callable[[int], int]:
    """A uniform integer in [0, n): ``int(random() * n)``, much cheaper than randrange."""
    draw = rng.random

    def pick(n: int) -> int:
        return int(draw() * n)

    return pick


def weighted(pick: Callable[[int], int], weights: tuple[int, ...]) -> Callable[[], int]:
    """An index drawn with the given integer weights."""
    bounds = [sum(weights[: i + 1]) for i in range(len(weights))]
    total = bounds[-1]
    return lambda: bisect.bisect_right(bounds, pick(total))


def apportion(total: int, weights: list[float], cap: int, pick: Callable[[int], int]) -> list[int]:
    """Integers proportional to ``weights``, each in [1, cap], summing to ``total``."""
    scale = total / sum(weights)
    out = [min(cap, max(1, int(w * scale))) for w in weights]
    diff = total - sum(out)
    while diff:
        e = pick(len(out))
        if diff > 0 and out[e] < cap:
            out[e] += 1
            diff -= 1
        elif diff < 0 and out[e] > 1:
            out[e] -= 1
            diff += 1
    return out


@dataclass
class Plan:
    """Everything the rows are made from, decided from the seed (no database)."""

    sizes: Sizes
    ev_start: list[int]  # seconds after ORIGIN, ascending with the id
    ev_webinar: bytearray
    ev_bu: bytearray  # BU index
    ev_owner: array[int]  # user index within the BU; -1 the BU's team; -2 the viewer
    shared: list[int]  # event indexes shared with the viewer
    contact_bu: bytearray
    reg_event: array[int]
    reg_contact: array[int]  # contact number (1-based), 0 for a guest
    reg_kind: bytearray
    att_reg: array[int]  # registration index of each attendance row; -1 a walk-in
    att_event: array[int]

    @classmethod
    def make(cls, s: Sizes) -> Plan:
        rng = random.Random(f"{s.seed}-reports")
        pick, roll = below(rng), rng.random
        bu_of = weighted(pick, BU_WEIGHTS)
        events = s.webinars + s.others
        quarter = 900
        ev_start = sorted(pick(SPAN // quarter) * quarter for _ in range(events))
        others = set(rng.sample(range(events), s.others))
        ev_webinar = bytearray(0 if e in others else 1 for e in range(events))
        ev_bu = bytearray(bu_of() for _ in range(events))
        ev_owner = array("i", (-1 if roll() < 0.05 else pick(USERS_PER_BU) for _ in ev_bu))
        elsewhere = [e for e in range(events) if ev_bu[e] != 0 and ev_webinar[e]]
        chosen = rng.sample(elsewhere, OWNED_BY_VIEWER + SHARED_WITH_VIEWER)
        for e in chosen[:OWNED_BY_VIEWER]:
            ev_owner[e] = -2
        shared = sorted(chosen[OWNED_BY_VIEWER:])
        contact_bu = bytearray(bu_of() for _ in range(s.contacts))

        weights = [rng.lognormvariate(0.0, 1.0) for _ in range(events)]
        sizes = apportion(s.registrations, weights, min(5_000, s.contacts), pick)
        reg_event, reg_contact, reg_kind = array("i"), array("i"), bytearray()
        for e, k in enumerate(sizes):
            n = 0
            for person in rng.sample(range(1, s.contacts + 1), k):
                if n == k:
                    break
                r = roll()
                contact = 0 if roll() < 0.02 else person
                if r < 0.01:
                    kind = EXCLUDED
                elif r < 0.13:
                    kind = CANCELED
                else:
                    kind = REGISTERED
                reg_event.append(e)
                reg_contact.append(contact)
                reg_kind.append(kind)
                n += 1
                if kind == CANCELED and contact and n < k and roll() < 0.15:
                    reg_event.append(e)
                    reg_contact.append(contact)
                    reg_kind.append(AGAIN)
                    n += 1
        # Attendance: registered rows (excluded ones too: presenters attend) of events that
        # have started, and a few walk-ins; one row per person and event.
        eligible = array(
            "i",
            (
                i
                for i, kind in enumerate(reg_kind)
                if kind != CANCELED and ev_start[reg_event[i]] < NOW_S
            ),
        )
        walk_ins = s.attendance * 3 // 100
        came = sorted(rng.sample(range(len(eligible)), min(s.attendance - walk_ins, len(eligible))))
        past = bisect.bisect_left(ev_start, NOW_S)
        walk_events = sorted(pick(past) for _ in range(s.attendance - len(came)))
        att_reg, att_event = array("i"), array("i")
        w = 0
        for j in came:
            i = eligible[j]
            e = reg_event[i]
            while w < len(walk_events) and walk_events[w] < e:
                att_reg.append(-1)
                att_event.append(walk_events[w])
                w += 1
            att_reg.append(i)
            att_event.append(e)
        for e in walk_events[w:]:
            att_reg.append(-1)
            att_event.append(e)
        return cls(
            s,
            ev_start,
            ev_webinar,
            ev_bu,
            ev_owner,
            shared,
            contact_bu,
            reg_event,
            reg_contact,
            reg_kind,
            att_reg,
            att_event,
        )


# ------------------------------------------------------------------------------ the organisation


@dataclass(frozen=True)
class Org:
    bus: list[int]  # BU ids, by index
    users: list[list[int]]  # user ids per BU
    teams: list[int]  # each BU's default team
    viewer: int  # user id of the BU-level viewer (Marketer, first BU)
    others: list[int]  # every other user id


def seed_organisation(factory: sessionmaker[Session]) -> Org:
    """The default organisation, 10 BUs with 5 Marketers each, and the viewer."""
    with factory() as db:
        defaults.ensure_defaults(db)
        root = org_service.get_root(db=db)
        marketer = org_service.get_role_by_name(db=db, name="Marketer").id
        bus, users, teams = [], [], []
        for b in range(len(BU_WEIGHTS)):
            bu = org_service.create_bu(db=db, name=f"BU {b}", parent_id=root.id)
            bus.append(bu.id)
            teams.append(org_service.default_team(db=db, bu_id=bu.id).id)
            mine = []
            for u in range(USERS_PER_BU):
                user = org_service.create_user(
                    db=db, username=f"owner{b}-{u}", business_unit_id=bu.id
                )
                org_service.assign_role(db=db, role_id=marketer, user_id=user.id)
                mine.append(user.id)
            users.append(mine)
        viewer = org_service.create_user(db=db, username="viewer", business_unit_id=bus[0])
        org_service.assign_role(db=db, role_id=marketer, user_id=viewer.id)
        db.commit()
        return Org(bus, users, teams, viewer.id, [u for us in users for u in us])


# ------------------------------------------------------------------------------ rows

OWNED = ("owner_type", "owner_id", "owning_bu_id")


def stamper(dialect: str) -> Callable[[int], str]:
    """Seconds after ORIGIN as the text a timestamp column is loaded from (SQLite stores
    SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); each minute's text made once."""
    suffix = "+00" if dialect == "postgresql" else ""
    minutes: dict[int, str] = {}
    seconds = [f"{s:02d}.000000{suffix}" for s in range(60)]

    def stamp(at: int) -> str:
        minute, second = divmod(at, 60)
        prefix = minutes.get(minute)
        if prefix is None:
            prefix = (ORIGIN + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:")
            minutes[minute] = prefix
        return prefix + seconds[second]

    return stamp


def tables(plan: Plan, org: Org, dialect: str) -> list[Table]:
    """The bulk-loaded tables, in load order, with their row generators."""
    s = plan.sizes
    stamp = stamper(dialect)
    pick = below(random.Random(f"{s.seed}-rows"))

    def owner(e: int) -> tuple[str, int, int]:
        b, o = plan.ev_bu[e], plan.ev_owner[e]
        if o == -2:
            return "user", org.viewer, org.bus[b]
        if o == -1:
            return "team", org.teams[b], org.bus[b]
        return "user", org.users[b][o], org.bus[b]

    owners = [owner(e) for e in range(len(plan.ev_start))]

    def contacts() -> Iterator[tuple[Any, ...]]:
        created = stamp(0)
        for c in range(1, s.contacts + 1):
            b = plan.contact_bu[c - 1]
            email = f"person{c}@bench.example"
            yield (
                c, email, f"Person{c}", "Bench", f"Company {c % 97}", "", "", None, "{}",
                created, created, "teams_sync", f"{org.bus[b]}|{email}",
                "user", org.users[b][c % USERS_PER_BU], org.bus[b],
            )  # fmt: skip

    def events() -> Iterator[tuple[Any, ...]]:
        for e, start in enumerate(plan.ev_start):
            webinar = plan.ev_webinar[e]
            kind = "webinar" if webinar else "in_person"
            yield (
                e + 1, f"{'Webinar' if webinar else 'Meetup'} {e + 1}", "", kind, "published",
                stamp(start), stamp(start + 3600), "UTC", f"Organizer {e % 50}",
                f"organizer{e % 50}@bench.example", "everyone", "teams" if webinar else "manual",
                f"event-{e + 1}", 0, 0, 0, stamp(start - 30 * DAY), stamp(start - 30 * DAY),
                *owners[e],
            )  # fmt: skip

    def email(i: int) -> str:
        c = plan.reg_contact[i]
        return f"person{c}@bench.example" if c else f"guest{i + 1}@bench.example"

    def registrations() -> Iterator[tuple[Any, ...]]:
        for i, e in enumerate(plan.reg_event):
            kind = plan.reg_kind[i]
            at = plan.ev_start[e] - DAY - pick(30 * DAY)
            if kind == AGAIN:
                at += 12 * 3600
            yield (
                i + 1, e + 1, f"reg-{i + 1}", email(i), "", "",
                "canceled" if kind == CANCELED else "registered", stamp(at),
                stamp(at + 6 * 3600) if kind == CANCELED else None, plan.reg_contact[i] or None,
                ("presenter", "internal")[i % 2] if kind == EXCLUDED else None, stamp(at),
                *owners[e],
            )  # fmt: skip

    def attendance() -> Iterator[tuple[Any, ...]]:
        for n, (i, e) in enumerate(zip(plan.att_reg, plan.att_event, strict=True), 1):
            if i >= 0:
                key, contact, reg = email(i), plan.reg_contact[i] or None, i + 1
                excluded = (
                    ("presenter", "internal")[i % 2] if plan.reg_kind[i] == EXCLUDED else None
                )
            else:
                key, contact, reg, excluded = f"walkin{n}@bench.example", None, None, None
            seconds = 0 if pick(100) < 5 else 60 + pick(5_400)
            joined = plan.ev_start[e] + pick(900)
            yield (
                n, e + 1, key, key, "", "Attendee", reg, contact, stamp(joined),
                stamp(joined + seconds), seconds, excluded, stamp(joined + seconds + 3600),
                *owners[e],
            )  # fmt: skip

    read = rights_mask({Privilege.READ})

    def shares() -> Iterator[tuple[Any, ...]]:
        created = stamp(NOW_S - DAY)
        n = 0
        for e in plan.shared:
            n += 1
            yield n, "marketing_event", e + 1, "user", org.viewer, read, created
        seen = set()
        rng = random.Random(f"{s.seed}-shares")
        while len(seen) < OTHER_SHARES:
            record_type = rng.choice(("marketing_event", "event_registration", "contact"))
            high = {
                "marketing_event": len(plan.ev_start),
                "event_registration": len(plan.reg_event),
                "contact": s.contacts,
            }[record_type]
            key = (record_type, rng.randrange(1, high + 1), rng.choice(org.others))
            if key in seen:
                continue
            seen.add(key)
            n += 1
            yield n, key[0], key[1], "user", key[2], read | rng.choice((0, 2)), created

    return [
        ("contact", (
            "id", "email", "first_name", "last_name", "company", "job_title", "phone",
            "country", "custom", "created_at", "modified_at", "origin", "match_key", *OWNED,
        ), contacts),
        ("marketing_event", (
            "id", "name", "description", "event_type", "status", "start_at", "end_at",
            "time_zone", "organizer_name", "organizer_email", "audience", "source",
            "external_id", "registrant_count", "attendee_count", "cancellation_count",
            "created_at", "modified_at", *OWNED,
        ), events),
        ("event_registration", (
            "id", "event_id", "external_id", "email", "first_name", "last_name", "status",
            "registered_at", "canceled_at", "contact_id", "excluded_reason", "created_at",
            *OWNED,
        ), registrations),
        ("event_attendance", (
            "id", "event_id", "person_key", "email", "display_name", "role",
            "registration_id", "contact_id", "first_join_at", "last_leave_at",
            "total_seconds", "excluded_reason", "created_at", *OWNED,
        ), attendance),
        ("record_share", (
            "id", "record_type", "record_id", "principal_type", "principal_id", "rights",
            "created_at",
        ), shares),
    ]  # fmt: skip


META = "bench_reports_meta"


def pg_schema(url: str, name: str, *, fresh: bool) -> str:
    """The URL of schema ``name`` (made anew when ``fresh``) on the server at ``url``."""
    admin = make_engine(url)
    with admin.begin() as conn:
        if fresh:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {name}"))
    admin.dispose()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{name}"


def build(
    engine: Engine, sizes: Sizes, reuse: bool, reset: Callable[[], None]
) -> tuple[int, dict[str, int], str]:
    """The data, made now (or, with ``reuse``, found from an earlier run of the same sizes
    and seed): (the viewer's id, rows per table, what happened)."""
    if reuse:
        try:
            with engine.connect() as conn:
                found = conn.execute(text(f"SELECT value FROM {META}")).scalar()
        except Exception:
            found = None
        if found:
            meta = json.loads(found)
            if meta["fingerprint"] == sizes.fingerprint():
                return meta["viewer"], meta["counts"], "data reused"
        engine.dispose()
        reset()
    t0 = time.perf_counter()
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    org = seed_organisation(factory)
    log(f"planning {sizes.registrations:,} registrations, {sizes.attendance:,} attendance rows")
    plan = Plan.make(sizes)
    log(f"  planned ({time.perf_counter() - t0:.1f} s); loading")
    loaded = tables(plan, org, engine.dialect.name)
    counts = load_tables(engine, loaded)
    log(f"data built in {time.perf_counter() - t0:.1f} s")
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {META} (value TEXT)"))
        meta = {"fingerprint": sizes.fingerprint(), "viewer": org.viewer, "counts": counts}
        conn.execute(text(f"INSERT INTO {META} (value) VALUES (:v)"), {"v": json.dumps(meta)})
    return org.viewer, counts, "data built"


# ------------------------------------------------------------------------------ the floor


@dataclass(frozen=True)
class Facts:
    """What the hand-written SQL knows of the viewer, read from the directory tables."""

    uid: int
    bu: int
    teams: tuple[int, ...]


def facts(db: Session, uid: int) -> Facts:
    bu = db.execute(
        text("SELECT business_unit_id FROM user_account WHERE id = :u"), {"u": uid}
    ).scalar_one()
    teams = db.execute(
        text("SELECT team_id FROM team_member WHERE user_id = :u ORDER BY team_id"), {"u": uid}
    ).scalars()
    return Facts(uid, bu, tuple(teams))


def visible(f: Facts, x: str, record_type: str, share: str = "in") -> str:
    """The viewer's read access to ``record_type`` rows named ``x`` (Marketer: business-unit
    level on every marketing record type): the BU's rows, rows the viewer or one of their
    teams owns, rows shared (read) with the viewer, one of their teams or everyone.
    ``share``: the share path as ``IN (…)`` or, on PostgreSQL, ``= ANY(ARRAY(…))``."""
    teams = ", ".join(map(str, f.teams))
    recipients = [f"(s.principal_type = 'user' AND s.principal_id = {f.uid})"]
    if f.teams:
        recipients.append(f"(s.principal_type = 'team' AND s.principal_id IN ({teams}))")
    recipients.append("(s.principal_type = 'organization' AND s.principal_id = 0)")
    shared = (
        f"SELECT s.record_id FROM record_share s WHERE s.record_type = '{record_type}'"
        f" AND (s.rights & 1) <> 0 AND ({' OR '.join(recipients)})"
    )
    terms = [
        f"{x}.owning_bu_id = {f.bu}",
        f"({x}.owner_type = 'user' AND {x}.owner_id = {f.uid})",
    ]
    if f.teams:
        terms.append(f"({x}.owner_type = 'team' AND {x}.owner_id IN ({teams}))")
    terms.append(f"{x}.id = ANY(ARRAY({shared}))" if share == "any" else f"{x}.id IN ({shared})")
    return "(" + "\n      OR ".join(terms) + ")"


MONTH = {
    "sqlite": "strftime('%Y-%m', e.start_at)",
    "postgresql": "to_char(e.start_at AT TIME ZONE 'UTC', 'YYYY-MM')",
    "duckdb": "strftime(e.start_at, '%Y-%m')",
}
REGISTERED_SQL = "{r}.excluded_reason IS NULL AND {r}.status = 'registered'"
ATTENDED_SQL = "{a}.excluded_reason IS NULL AND {a}.total_seconds > 0"


def floor_sql(f: Facts, flavour: str, form: str, share: str = "in") -> str:
    """The report by hand: month, events, registrants, attendees, seconds, cancellations,
    no-shows for the readable webinars. ``form``: ``exists`` finds a registrant's
    attendance with a correlated ``NOT EXISTS`` (the engine's shape); ``join`` with a
    ``LEFT JOIN`` on the attendance's (event, person) key."""
    reg = REGISTERED_SQL.format(r="r")
    active = (
        "NOT EXISTS (SELECT 1 FROM event_registration r2 WHERE r2.event_id = r.event_id"
        f" AND r2.email = r.email\n        AND {REGISTERED_SQL.format(r='r2')}"
        f"\n        AND {visible(f, 'r2', 'event_registration', share)})"
    )
    cancelled = f"r.excluded_reason IS NULL AND r.status = 'canceled' AND {active}"
    if form == "exists":
        came = (
            "EXISTS (SELECT 1 FROM event_attendance a WHERE a.event_id = r.event_id"
            f" AND a.person_key = r.email\n        AND {ATTENDED_SQL.format(a='a')}"
            f"\n        AND {visible(f, 'a', 'event_attendance', share)})"
        )
        source = "event_registration r"
        no_show = f"{reg} AND NOT {came}"
    else:
        source = (
            "event_registration r LEFT JOIN event_attendance a ON a.event_id = r.event_id"
            f" AND a.person_key = r.email\n      AND {ATTENDED_SQL.format(a='a')}"
            f"\n      AND {visible(f, 'a', 'event_attendance', share)}"
        )
        no_show = f"{reg} AND a.id IS NULL"
    return f"""
WITH ev AS (
  SELECT e.id, {MONTH[flavour]} AS month FROM marketing_event e
  WHERE e.event_type = 'webinar' AND {visible(f, "e", "marketing_event", share)}
),
regs AS (
  SELECT r.event_id,
    count(DISTINCT CASE WHEN {reg} THEN r.email END) AS registrants,
    count(DISTINCT CASE WHEN {cancelled} THEN r.email END) AS cancellations,
    count(DISTINCT CASE WHEN {no_show} THEN r.email END) AS no_shows
  FROM {source}
  WHERE r.event_id IN (SELECT id FROM ev)
    AND {visible(f, "r", "event_registration", share)}
  GROUP BY r.event_id
),
atts AS (
  SELECT a.event_id, count(*) AS attendees, sum(a.total_seconds) AS seconds
  FROM event_attendance a
  WHERE a.event_id IN (SELECT id FROM ev) AND {ATTENDED_SQL.format(a="a")}
    AND {visible(f, "a", "event_attendance", share)}
  GROUP BY a.event_id
)
SELECT ev.month, count(*) AS events, coalesce(sum(regs.registrants), 0),
  coalesce(sum(atts.attendees), 0), coalesce(sum(atts.seconds), 0),
  coalesce(sum(regs.cancellations), 0), coalesce(sum(regs.no_shows), 0)
FROM ev
LEFT JOIN regs ON regs.event_id = ev.id
LEFT JOIN atts ON atts.event_id = ev.id
GROUP BY ev.month
ORDER BY ev.month
"""


def forms(f: Facts, backend: str) -> dict[str, str]:
    """Every hand-written form worth trying on ``backend``, by name."""
    out = {form: floor_sql(f, backend, form) for form in ("exists", "join")}
    if backend == "postgresql":
        out.update({f"{form}·any": floor_sql(f, backend, form, "any") for form in out})
    return out


Row = tuple[Any, ...]


def from_sums(rows: Any) -> list[Row]:
    """(month, events, registrants, attendees, seconds, cancellations, no-shows) sums as the
    report's rows: the rate and the average worked out as report.engine does."""
    out = []
    for month, events, registrants, attendees, seconds, cancellations, no_shows in rows:
        reg, att, sec = int(registrants), int(attendees), int(seconds)
        rate = round(float(att) / float(reg), 4) if reg else None
        minutes = round(float(sec) / 60 / float(att), 1) if att else None
        out.append(
            (str(month), int(events), reg, att, rate, minutes, int(cancellations), int(no_shows))
        )
    return out


# ------------------------------------------------------------------------------ DuckDB

DUCK: dict[str, tuple[tuple[str, str], ...]] = {
    "marketing_event": (
        ("id", "INTEGER"),
        ("event_type", "VARCHAR"),
        ("start_at", "TIMESTAMP"),
    ),
    "event_registration": (
        ("id", "INTEGER"),
        ("event_id", "INTEGER"),
        ("email", "VARCHAR"),
        ("status", "VARCHAR"),
        ("excluded_reason", "VARCHAR"),
    ),
    "event_attendance": (
        ("id", "INTEGER"),
        ("event_id", "INTEGER"),
        ("person_key", "VARCHAR"),
        ("total_seconds", "INTEGER"),
        ("excluded_reason", "VARCHAR"),
    ),
    "record_share": (
        ("record_type", "VARCHAR"),
        ("record_id", "INTEGER"),
        ("principal_type", "VARCHAR"),
        ("principal_id", "INTEGER"),
        ("rights", "INTEGER"),
    ),
}
OWNED_DUCK = (("owner_type", "VARCHAR"), ("owner_id", "INTEGER"), ("owning_bu_id", "INTEGER"))
NULL = r"\N"


def duck_columns(table: str) -> tuple[tuple[str, str], ...]:
    return DUCK[table] + (OWNED_DUCK if table != "record_share" else ())


def duck_load(engine: Engine, tmp: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the columns the report reads, exported from ``engine``
    through CSV (timestamps as naive UTC text)."""
    con = duckdb.connect()
    pg = engine.dialect.name == "postgresql"
    for table in DUCK:
        cols = duck_columns(table)
        path = tmp / f"{table}.csv"
        exprs = [
            f"to_char({n} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
            if kind == "TIMESTAMP" and pg
            else n
            for n, kind in cols
        ]
        select = f"SELECT {', '.join(exprs)} FROM {table}"
        raw = engine.raw_connection()
        try:
            if pg:
                with raw.cursor() as cur, path.open("wb") as fh:  # type: ignore[attr-defined]
                    copy_sql = f"COPY ({select}) TO STDOUT (FORMAT csv, NULL '{NULL}')"
                    with cur.copy(copy_sql) as copy:
                        for block in copy:
                            fh.write(block)
            else:
                cur = raw.cursor()
                with path.open("w", newline="") as fh:
                    writer = csv.writer(fh)
                    cur.execute(select)
                    while batch := cur.fetchmany(50_000):
                        writer.writerows(
                            tuple(NULL if v is None else v for v in row) for row in batch
                        )
                cur.close()
        finally:
            raw.close()
        types = ", ".join(f"'{n}': '{k}'" for n, k in cols)
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header = false, "
            f"nullstr = '{NULL}', quote = '\"', columns = {{{types}}})"
        )
        path.unlink()
    return con


# ------------------------------------------------------------------------------ running


@dataclass
class Side:
    name: str
    run: Callable[[], list[Row]]
    times: list[float]
    differs: list[Row] | None = None  # rows it gave that the engine's first run did not

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def engine_rows(db: Session, principal: Any) -> list[Row]:
    """The built-in report as the application runs it, as plain rows."""
    found = service.run_report(db=db, principal=principal, builtin=BUILTIN, now=NOW)
    db.rollback()
    return [tuple(row) for row in found.result.table()]


def sql_rows(db: Session, sql: str) -> list[Row]:
    """A hand-written form's rows, run as the engine runs its statement: on PostgreSQL
    planned with the values and without JIT (``segment.service.custom_plans``)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        db.execute(text("SET LOCAL jit = off"))
    found = from_sums(db.execute(text(sql)).all())
    db.rollback()
    return found


def measure(sides: list[Side], warmup: int, runs: int, expected: list[Row]) -> list[str]:
    """Run every side ``warmup`` + ``runs`` times, rotating who goes first; the names of the
    sides whose rows differ from ``expected`` (checked on every run)."""
    wrong: set[str] = set()
    for i in range(warmup + runs):
        for k in range(len(sides)):
            side = sides[(i + k) % len(sides)]
            t0 = time.perf_counter()
            got = side.run()
            took = time.perf_counter() - t0
            if got != expected:
                wrong.add(side.name)
                side.differs = got
            if i >= warmup:
                side.times.append(took)
        if i >= warmup:
            took_s = ", ".join(f"{s.name} {s.times[-1]:.2f} s" for s in sides)
            log(f"  run {i + 1 - warmup}/{runs}: {took_s}")
        else:
            log(f"  warm-up {i + 1}/{warmup}")
    return sorted(wrong)


class _Captured(Exception):
    pass


def engine_statement(db: Session, principal: Any) -> tuple[str, Any]:
    """The report's SQL and parameters as the driver gets them (stopped before it runs)."""
    conn = db.connection()
    seen: list[tuple[str, Any]] = []

    def hook(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if "marketing_event" in statement:
            seen.append((statement, parameters))
            raise _Captured

    event.listen(conn, "before_cursor_execute", hook)
    try:
        engine_rows(db, principal)
    except Exception:
        if not seen:
            raise
    finally:
        event.remove(conn, "before_cursor_execute", hook)
    db.rollback()
    return seen[0]


def explain(db: Session, label: str, sql: str, params: Any) -> None:
    """Print the statement and its plan (PostgreSQL: EXPLAIN (ANALYZE, BUFFERS))."""
    print(f"\n--- {label}\n{sql.strip()}\n{params or ''}\n")
    conn = db.connection()
    if db.get_bind().dialect.name == "sqlite":
        for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params or ()):
            print(f"    {row[1]:>3} {row[0]:>3}  {row[3]}")
    else:  # with the settings the engine's statement runs under (custom plans, no JIT)
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        conn.exec_driver_sql("SET LOCAL jit = off")
        for (line,) in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or {}):
            print("   ", line)
    db.rollback()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrations", type=int, default=3_000_000)
    parser.add_argument("--attendance", type=int, default=1_500_000)
    parser.add_argument(
        "--webinars", type=int, default=None, help="default: registrations / 150 (20,000)"
    )
    parser.add_argument(
        "--contacts", type=int, default=None, help="default: registrations / 6 (500,000)"
    )
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--reuse", action="store_true", help="keep the data and reuse it")
    parser.add_argument("--explain", action="store_true", help="print the plans")
    parser.add_argument("--table", action="store_true", help="print the report's rows")
    args = parser.parse_args()
    webinars = args.webinars or max(20, args.registrations // 150)
    sizes = Sizes(
        seed=args.seed,
        webinars=webinars,
        others=webinars // 10,
        registrations=args.registrations,
        attendance=args.attendance,
        contacts=args.contacts or max(1_000, args.registrations // 6),
    )
    tag = "" if args.registrations == 3_000_000 else f"_{args.registrations}"
    with tempfile.TemporaryDirectory() as tmp:
        pg_url = args.database_url
        if pg_url is not None:
            schema = f"bench_reports{tag}" if args.reuse else "bench_reports"
            url = pg_schema(pg_url, schema, fresh=not args.reuse)

            def reset() -> None:
                pg_schema(pg_url, schema, fresh=True)

        else:
            path = DATA_DIR / f"reports{tag}.db" if args.reuse else Path(tmp) / "reports.db"
            path.parent.mkdir(exist_ok=True)
            url = f"sqlite:///{path}"

            def reset() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

        engine = make_engine(url)
        try:
            viewer, counts, status = build(engine, sizes, args.reuse, reset)
            backend = engine.dialect.name
            log("loading DuckDB")
            t0 = time.perf_counter()
            duck = duck_load(engine, Path(tmp))
            duck_secs = time.perf_counter() - t0
            with Session(engine) as db:
                principal = load_principal(db, viewer)
                f = facts(db, viewer)
                expected = engine_rows(db, principal)
                floors = forms(f, backend)
                dsql = floor_sql(f, "duckdb", "join")

                def run_duck() -> list[Row]:
                    return from_sums(duck.execute(dsql).fetchall())

                sides = [Side("engine", lambda: engine_rows(db, principal), [])]
                sides += [
                    Side(name, lambda sql=sql: sql_rows(db, sql), [])
                    for name, sql in floors.items()
                ]
                sides.append(Side("duckdb", run_duck, []))
                log(f"timing {', '.join(s.name for s in sides)}")
                wrong = measure(sides, args.warmup, args.runs, expected)
                if args.explain:
                    sql, params = engine_statement(db, principal)
                    explain(db, "engine", sql, params)
                    fastest = min(sides[1:-1], key=lambda s: s.best)
                    explain(db, f"floor ({fastest.name})", floors[fastest.name], None)
                readable = db.execute(
                    text(
                        "SELECT count(*) FROM marketing_event e WHERE e.event_type = 'webinar'"
                        f" AND {visible(f, 'e', 'marketing_event')}"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
    eng, duck_side = sides[0], sides[-1]
    floor = min(sides[1:-1], key=lambda s: s.best)
    ratio, duck_ratio = eng.best / floor.best, eng.best / duck_side.best
    name = "PostgreSQL" if backend == "postgresql" else "SQLite"
    print(
        f"{name}: Webinar performance by month for a BU-level viewer (Marketer; "
        f"{readable:,} of {sizes.webinars:,} webinars readable) — {status}\n"
        f"  {counts['marketing_event']:,} events ({sizes.webinars:,} webinars), "
        f"{counts['event_registration']:,} registrations, {counts['event_attendance']:,} "
        f"attendance rows, {counts['contact']:,} contacts, {counts['record_share']:,} shares; "
        f"{len(expected)} months\n"
        f"  best of {args.runs} runs after {args.warmup} warm-up (median beside it); DuckDB "
        f"loaded in {duck_secs:.1f} s (not timed)\n"
        f"  {'':16} {'best s':>9} {'median s':>9}"
    )
    for s in sides:
        mark = " <- floor" if s is floor else ""
        label = s.name if s in (eng, duck_side) else f"floor {s.name}"
        print(f"  {label:16} {s.best:9.3f} {s.median:9.3f}{mark}")
    verdict = "met" if ratio <= RATIO_TARGET else "MISSED"
    print(
        f"  engine / floor = {ratio:.2f} (target <= {RATIO_TARGET}: {verdict})   "
        f"engine / DuckDB = {duck_ratio:.1f}"
    )
    print(f"  rows agree: {'no (' + ', '.join(wrong) + ' differ)' if wrong else 'yes'}")
    shown = [("engine", expected)] if args.table or wrong else []
    shown += [(s.name, s.differs) for s in sides if s.differs is not None]
    for label, rows in shown:
        print(f"  {label}: " + " | ".join(COLUMNS))
        for row in rows:
            print("    " + " | ".join("—" if v is None else str(v) for v in row))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
