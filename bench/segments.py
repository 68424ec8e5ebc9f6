"""Benchmark: the segment engine against hand-written SQL and DuckDB (the segments issue).

Data, deterministic from a seed and built on ``datagen``'s organisation, contacts and
shares (200 BUs, 500 users): 1,000,000 contacts with a country among 19 (US 16 %, DE 11 %,
JP 5 % …, 5 % none), 5,000 webinars starting from two years before ``now`` to three
months after it (~11 % in the last 90 days), 3,000,000 registrations over them (log-normal
event sizes; 90 % registered, 10 % canceled), 1,500,000 attendance rows (each for a
registered, not canceled registration of an event that has started: same event and
contact; 1–7,200 s) and a marketing list of 50,000 contacts. Events are owned by users;
their registrations and attendance by the event's owner (B10). The list and event X (the
largest past event) belong to the BU-level viewer below.
``--contacts`` scales every count (``--contacts 20000``: 100 events, 60,000
registrations, 30,000 attendance rows, a list of 1,000).

Segments, evaluated at a fixed ``now`` (the generator's reference time, 2025-12-31 UTC):

  (a) attended any webinar in the last 90 days and country in (JP, DE, US)
  (b) registered for event X (the largest past event) but did not attend it
  (c) any of [ all of [on list L, not country US],
               all of [attended an event in the last 365 days for ≥ 30 min,
                       any of [company starts with A, country in (FR, IT)]] ]

For each, for a BU-level viewer (Marketer, the non-root BU with the most contacts) and an
organization-level viewer (Marketing Administrator), it times

  engine  ``service.evaluate_statement`` + ``service.count_visible``, built per call, as
          the application runs it
  hand    hand-written SQL on the same database: the viewer's visibility written as in
          ``hand.py`` (one OR, or the BU / rest split), the criteria as ``IN``, ``EXISTS``
          or a join / ``EXCEPT`` / ``UNION``, constants inlined (so PostgreSQL always
          plans with the values); the fastest form is the floor. Participation counts
          only the events, registrations and attendance the viewer may read (F2,
          docs/segments.md): for the BU-level viewer each of those tables gets the same
          owner / team / BU / share terms as contacts (the share path as ``IN``, and on
          PostgreSQL also as ``= ANY(ARRAY(…))``)
  duckdb  the same question in DuckDB, in memory, loaded from Parquet exports of the same
          rows (the ``IN`` form, every visibility as one OR): an external reference of
          what the hardware allows

checks the three counts agree, and prints engine / hand. Targets: engine / hand ≤ 1.3
for every row; on PostgreSQL (a) for the organization-level viewer under 1 s (p95).
A statement still running after --timeout seconds is cancelled and reported as such.
On PostgreSQL the timed runs follow 12 warm-up runs, so the engine's statement, prepared
by psycopg from its 6th run, is timed with the plan the server settles on; its warm-up
runs 2–10 (planned with the values) are printed below the table.

    .venv/bin/python bench/segments.py                        # both backends, 1M contacts
    .venv/bin/python bench/segments.py --contacts 20000       # quick smoke run
    .venv/bin/python bench/segments.py --backend postgresql --explain

Data is cached in bench/data/segments*.db (SQLite), schema ``bench_segments*``
(PostgreSQL, ``GATHERLY_BENCH_POSTGRES_URL`` or --pg-url) and bench/data/segments*-duckdb/
(Parquet), rebuilt when the seed or sizes change or with --rebuild. bench/access.py's
caches are not touched.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
import hand
from access import Timing, data_arguments, timed

from gatherly.access.engine import Principal
from gatherly.core.db import make_engine
from gatherly.org.directory import load_principal
from gatherly.segment import service

DATA_DIR = Path(__file__).resolve().parent / "data"
RATIO_TARGET = 1.3
PG_A_ORG_MS = 1000.0

# Bump when the generated segment data changes shape, so caches are rebuilt.
SEGMENTS_VERSION = 2
FULL = {"events": 5_000, "registrations": 3_000_000, "attendance": 1_500_000, "list": 50_000}
# 19 countries and NULL; repeated values weigh more (US 6/38, DE 4/38, JP 2/38 …).
COUNTRIES: tuple[str | None, ...] = (
    *("US",) * 6,
    *("DE",) * 4,
    *("GB",) * 3,
    *("FR",) * 3,
    *("JP",) * 2,
    *("IT",) * 2,
    *("ES",) * 2,
    *("NL",) * 2,
    *("IN",) * 2,
    "PL",
    "SE",
    "CH",
    "AT",
    "BE",
    "CA",
    "BR",
    "AU",
    "SG",
    "MX",
    None,
    None,
)
NOW = datagen.EPOCH + timedelta(microseconds=datagen.SPAN_US)  # the generator's "now"
DAY_US = 24 * 3600 * 1_000_000
PAST_DAYS, FUTURE_DAYS = 730, 90  # events start in [now - 730 d, now + 90 d)
EVENT_HOURS = 1


def log(msg: str) -> None:
    """Progress goes to stderr so stdout is just the report."""
    print(f"  … {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ sizes, plan


@dataclass(frozen=True)
class SegSizes:
    """What to generate on top of ``datagen.Sizes``; the fingerprint of a cached build."""

    base: datagen.Sizes
    events: int
    registrations: int
    attendance: int
    list_members: int

    def fingerprint(self) -> str:
        """A string that changes whenever the generated data would."""
        return json.dumps(
            {
                "version": SEGMENTS_VERSION,
                "base": json.loads(self.base.fingerprint()),
                "countries": COUNTRIES,
                "now": NOW.isoformat(),
                "days": [PAST_DAYS, FUTURE_DAYS],
                **{k: v for k, v in asdict(self).items() if k != "base"},
            },
            sort_keys=True,
        )


def seg_sizes(contacts: int, seed: int) -> SegSizes:
    """The issue's sizes, scaled by ``contacts`` / 1,000,000."""
    scale = contacts / datagen.Sizes.contacts
    return SegSizes(
        base=datagen.Sizes(seed=seed, contacts=contacts),
        events=max(20, round(FULL["events"] * scale)),
        registrations=round(FULL["registrations"] * scale),
        attendance=round(FULL["attendance"] * scale),
        list_members=max(10, round(FULL["list"] * scale)),
    )


@dataclass
class SegPlan:
    """Events, registrations, attendance and the list, in plan indexes (contact numbers)."""

    ev_start: array[int]  # microseconds after datagen.EPOCH
    ev_owner: array[int]  # user index
    ev_counts: list[tuple[int, int, int]]  # registered, attended, canceled
    reg_event: array[int]  # event index, registrations grouped by event
    reg_contact: array[int]  # contact number (0-based)
    reg_canceled: bytearray
    att_seconds: array[int]  # per registration; 0 = did not attend
    list_owner: int  # user index
    list_members: list[int]  # contact numbers
    big_event: int  # the past event with the most registrations


def _apportion(total: int, weights: list[float], cap: int) -> list[int]:
    """Integers proportional to ``weights``, each in [1, cap], summing to ``total``."""
    scale = total / sum(weights)
    out = [min(cap, max(1, int(w * scale))) for w in weights]
    order = sorted(range(len(weights)), key=weights.__getitem__, reverse=True)
    diff = total - sum(out)
    i = 0
    while diff != 0:
        e = order[i % len(order)]
        if diff > 0 and out[e] < cap:
            out[e] += 1
            diff -= 1
        elif diff < 0 and out[e] > 1:
            out[e] -= 1
            diff += 1
        i += 1
    return out


def make_seg_plan(plan: datagen.Plan, ss: SegSizes) -> SegPlan:
    """Decide the segment data from the seed (pure Python, no database)."""
    rng = random.Random(f"{ss.base.seed}-segments")
    n, users = ss.base.contacts, ss.base.users
    now_us = datagen.SPAN_US
    minute = 60_000_000
    ev_start = array("q")
    for _ in range(ss.events):
        us = now_us - PAST_DAYS * DAY_US + rng.randrange((PAST_DAYS + FUTURE_DAYS) * DAY_US)
        ev_start.append(us - us % (15 * minute))  # webinars start on the quarter hour
    ev_owner = array("i", (rng.randrange(users) for _ in range(ss.events)))
    weights = [rng.lognormvariate(0.0, 1.2) for _ in range(ss.events)]
    sizes = _apportion(ss.registrations, weights, cap=n // 2)

    reg_event, reg_contact = array("i"), array("i")
    for e, k in enumerate(sizes):
        reg_event.extend([e] * k)
        reg_contact.extend(rng.sample(range(n), k))
    reg_canceled = bytearray(1 if rng.random() < 0.1 else 0 for _ in range(ss.registrations))
    # Attendance: registered (not canceled) contacts of events that have started.
    eligible = array(
        "i",
        (
            i
            for i in range(ss.registrations)
            if not reg_canceled[i] and ev_start[reg_event[i]] < now_us
        ),
    )
    chosen = sorted(rng.sample(range(len(eligible)), min(ss.attendance, len(eligible))))
    att_seconds = array("i", bytes(4 * ss.registrations))
    for j in chosen:
        att_seconds[eligible[j]] = rng.randint(1, 7200)

    counts = [[0, 0, 0] for _ in range(ss.events)]
    for i in range(ss.registrations):
        c = counts[reg_event[i]]
        if reg_canceled[i]:
            c[2] += 1
        else:
            c[0] += 1
            if att_seconds[i]:
                c[1] += 1
    past = [e for e in range(ss.events) if ev_start[e] < now_us]
    big_event = max(past, key=lambda e: (sizes[e], -e))
    # The list and event X belong to the BU-level viewer, as a marketer's own list and
    # webinar would: participation criteria see only events the viewer may read, so (b)
    # on someone else's event would count nothing for them.
    list_owner = next(v.user for v in plan.viewers if v.key == "bu")
    ev_owner[big_event] = list_owner
    members = sorted(rng.sample(range(n), min(ss.list_members, n)))
    return SegPlan(
        ev_start=ev_start,
        ev_owner=ev_owner,
        ev_counts=[(r, a, c) for r, a, c in counts],
        reg_event=reg_event,
        reg_contact=reg_contact,
        reg_canceled=reg_canceled,
        att_seconds=att_seconds,
        list_owner=list_owner,
        list_members=members,
        big_event=big_event,
    )


# ------------------------------------------------------------------------------ rows

EVENT_COLUMNS = (
    "id",
    "name",
    "description",
    "event_type",
    "status",
    "start_at",
    "end_at",
    "time_zone",
    "organizer_name",
    "organizer_email",
    "audience",
    "source",
    "external_id",
    "registrant_count",
    "attendee_count",
    "cancellation_count",
    "created_at",
    "modified_at",
    "owner_type",
    "owner_id",
    "owning_bu_id",
)
REGISTRATION_COLUMNS = (
    "id",
    "event_id",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "status",
    "registered_at",
    "canceled_at",
    "contact_id",
    "excluded_reason",
    "created_at",
    "owner_type",
    "owner_id",
    "owning_bu_id",
)
ATTENDANCE_COLUMNS = (
    "id",
    "event_id",
    "person_key",
    "email",
    "display_name",
    "role",
    "registration_id",
    "contact_id",
    "first_join_at",
    "last_leave_at",
    "total_seconds",
    "excluded_reason",
    "created_at",
    "owner_type",
    "owner_id",
    "owning_bu_id",
)
LIST_COLUMNS = (
    "id",
    "name",
    "description",
    "owner_type",
    "owner_id",
    "owning_bu_id",
    "created_at",
    "modified_at",
    "created_by_id",
    "modified_by_id",
)
MEMBER_COLUMNS = ("list_id", "contact_id", "added_at", "added_by_id")
LIST_ID = 1

Owners = list[tuple[int, int]]  # user index -> (user id, BU id)
Table = tuple[str, tuple[str, ...], Callable[[], Iterator[tuple[Any, ...]]]]


def _fmt(us: int, tz: str) -> str:
    return datagen._fmt(us) + tz


@dataclass(frozen=True)
class _EventText:
    start: str
    end: str
    created: str
    registered: str
    canceled: str


def _event_text(sp: SegPlan, tz: str) -> list[_EventText]:
    hour = 3600 * 1_000_000
    return [
        _EventText(
            start=_fmt(s, tz),
            end=_fmt(s + EVENT_HOURS * hour, tz),
            created=_fmt(s - 30 * DAY_US, tz),
            registered=_fmt(s - 7 * DAY_US, tz),
            canceled=_fmt(s - 2 * DAY_US, tz),
        )
        for s in sp.ev_start
    ]


def segment_tables(sp: SegPlan, owners: Owners, tz: str) -> list[Table]:
    """The segment benchmark's tables, in load order, with row generators."""
    texts = _event_text(sp, tz)

    def events() -> Iterator[tuple[Any, ...]]:
        for e, t in enumerate(texts):
            u = sp.ev_owner[e]
            uid, bu = owners[u]
            registered, attended, canceled = sp.ev_counts[e]
            yield (
                e + 1,
                f"Webinar {e + 1:05d}",
                "",
                "webinar",
                "published",
                t.start,
                t.end,
                "UTC",
                f"user{u:03d}",
                f"user{u}@example.com",
                "everyone",
                "teams",
                f"webinar-{e + 1}",
                registered,
                attended,
                canceled,
                t.created,
                t.created,
                "user",
                uid,
                bu,
            )

    def registrations() -> Iterator[tuple[Any, ...]]:
        for i, (e, c) in enumerate(zip(sp.reg_event, sp.reg_contact, strict=True)):
            uid, bu = owners[sp.ev_owner[e]]
            t = texts[e]
            canceled = sp.reg_canceled[i]
            yield (
                i + 1,
                e + 1,
                f"reg-{i + 1}",
                f"contact{c + 1}@example.com",
                "",
                "",
                "canceled" if canceled else "registered",
                t.registered,
                t.canceled if canceled else None,
                c + 1,
                None,
                t.registered,
                "user",
                uid,
                bu,
            )

    def attendance() -> Iterator[tuple[Any, ...]]:
        n = 0
        for i, seconds in enumerate(sp.att_seconds):
            if not seconds:
                continue
            n += 1
            e, c = sp.reg_event[i], sp.reg_contact[i]
            uid, bu = owners[sp.ev_owner[e]]
            t = texts[e]
            email = f"contact{c + 1}@example.com"
            yield (
                n,
                e + 1,
                email,
                email,
                "",
                "Attendee",
                i + 1,
                c + 1,
                t.start,
                t.end,
                seconds,
                None,
                t.end,
                "user",
                uid,
                bu,
            )

    created = _fmt(datagen.SPAN_US - 60 * DAY_US, tz)
    list_uid, list_bu = owners[sp.list_owner]

    def lists() -> Iterator[tuple[Any, ...]]:
        yield (
            LIST_ID,
            "Trade fair leads",
            "",
            "user",
            list_uid,
            list_bu,
            created,
            created,
            None,
            None,
        )

    def members() -> Iterator[tuple[Any, ...]]:
        for c in sp.list_members:
            yield (LIST_ID, c + 1, created, list_uid)

    return [
        ("marketing_event", EVENT_COLUMNS, events),
        ("event_registration", REGISTRATION_COLUMNS, registrations),
        ("event_attendance", ATTENDANCE_COLUMNS, attendance),
        ("marketing_list", LIST_COLUMNS, lists),
        ("marketing_list_member", MEMBER_COLUMNS, members),
    ]


def read_owners(engine: Engine, users: int) -> Owners:
    """User index -> (user id, BU id), from the users ``datagen`` created as ``userNNN``."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, username, business_unit_id FROM user_account"))
        found = {
            int(m.group(1)): (uid, bu)
            for uid, name, bu in rows
            if (m := re.fullmatch(r"user(\d+)", name))
        }
    return [found[u] for u in range(users)]


def load_sqlite(engine: Engine, tables: list[Table], log: Callable[[str], None]) -> None:
    """executemany in one transaction, then ANALYZE."""
    path = engine.url.database
    assert path
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        con.execute("BEGIN")
        for table, cols, rows in tables:
            t0 = time.perf_counter()
            marks = ", ".join("?" * len(cols))
            con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows())
            log(f"{table} loaded ({time.perf_counter() - t0:.1f} s)")
        con.execute("COMMIT")
        log("analyze")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def load_postgresql(engine: Engine, tables: list[Table], log: Callable[[str], None]) -> None:
    """COPY, sequences moved past the ids, then VACUUM (ANALYZE) of the schema's tables."""
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        assert con is not None
        with con.cursor() as cur:
            for table, cols, rows in tables:
                t0 = time.perf_counter()
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
                if "id" in cols:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                log(f"{table} loaded ({time.perf_counter() - t0:.1f} s)")
        con.commit()
        log("vacuum analyze")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            names = ", ".join(f'"{name}"' for (name,) in cur.fetchall())
            cur.execute(f"VACUUM (ANALYZE) {names}")
        con.autocommit = False
    finally:
        raw.close()


# ------------------------------------------------------------------------------ databases


def _tag(contacts: int, seed: int) -> str:
    return (
        ""
        if (contacts, seed) == (datagen.Sizes.contacts, datagen.Sizes.seed)
        else (f"_{contacts}_{seed}")
    )


def pg_schema(ss: SegSizes) -> str:
    """``bench_segments`` for the default sizes, a schema of its own for any other."""
    return f"bench_segments{_tag(ss.base.contacts, ss.base.seed)}"


def sqlite_engine(ss: SegSizes) -> Engine:
    """The SQLite file for these sizes (one per size, so smoke runs keep the 1M cache)."""
    return make_engine(
        f"sqlite:///{DATA_DIR / f'segments{_tag(ss.base.contacts, ss.base.seed)}.db'}"
    )


def postgres_engine(base_url: str, ss: SegSizes) -> Engine | None:
    """An engine on the bench schema, or None (with a message) when no server answers."""
    admin = make_engine(base_url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {pg_schema(ss)}"))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"\npostgresql: skipped, no server reachable at {base_url} ({reason})")
        return None
    finally:
        admin.dispose()
    joiner = "&" if "?" in base_url else "?"
    return make_engine(f"{base_url}{joiner}options=-csearch_path%3D{pg_schema(ss)}")


def reset(engine: Engine, ss: SegSizes) -> None:
    """Empty the database: delete the SQLite file, or drop and recreate the schema."""
    engine.dispose()
    if engine.dialect.name == "sqlite":
        assert engine.url.database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
        return
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {pg_schema(ss)} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {pg_schema(ss)}"))


@dataclass
class Setup:
    """What a finished build knows: the viewers and the ids the criteria name."""

    viewers: list[datagen.Viewer]  # the BU-level and the organization-level viewer
    event_id: int  # event X of (b)
    list_id: int
    counts: dict[str, int]  # rows per table (the report prints them)


@dataclass
class Plans:
    """Plans are pure Python and identical for every backend: made once per run."""

    ss: SegSizes
    base: datagen.Plan | None = None
    seg: SegPlan | None = None
    times: dict[str, float] | None = None

    def get(self) -> tuple[datagen.Plan, SegPlan]:
        """Make the plans on first use (timed)."""
        if self.base is None or self.seg is None:
            t0 = time.perf_counter()
            sizes = self.ss.base
            log(f"generating the data plan (seed {sizes.seed}, {sizes.contacts:,} contacts)")
            self.base = datagen.make_plan(self.ss.base)
            t1 = time.perf_counter()
            self.seg = make_seg_plan(self.base, self.ss)
            t2 = time.perf_counter()
            self.times = {
                "plan: organisation, contacts, shares": t1 - t0,
                "plan: events, registrations, attendance, list": t2 - t1,
            }
        return self.base, self.seg


VIEWER_KEYS = ("bu", "org")


def prepare(engine: Engine, plans: Plans, rebuild: bool) -> tuple[Setup, str, dict[str, float]]:
    """Reuse a finished build with the same fingerprint, or build the data now."""
    ss = plans.ss
    meta = {} if rebuild else datagen.read_meta(engine)
    mine = json.loads(meta.get("segments", "{}"))
    if mine.get("fingerprint") == ss.fingerprint():
        viewers = [v for v in datagen.viewers_from_meta(meta) if v.key in VIEWER_KEYS]
        return Setup(viewers, mine["event_id"], mine["list_id"], mine["counts"]), "cached data", {}
    times: dict[str, float] = {}
    reset(engine, ss)
    fresh = plans.base is None
    base, sp = plans.get()
    if fresh:
        times.update(plans.times or {})
    backend = engine.dialect.name
    log(f"building the {backend} database")
    t0 = time.perf_counter()
    all_viewers = datagen.build(engine, base, log, countries=COUNTRIES)
    times[f"{backend}: migrate, organisation, contacts, shares"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    owners = read_owners(engine, ss.base.users)
    tables = segment_tables(sp, owners, "" if backend == "sqlite" else "+00")
    if backend == "sqlite":
        load_sqlite(engine, tables, log)
    else:
        load_postgresql(engine, tables, log)
    times[f"{backend}: events, registrations, attendance, list (+ analyze)"] = (
        time.perf_counter() - t0
    )
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in (
                "contact",
                "marketing_event",
                "event_registration",
                "event_attendance",
                "marketing_list_member",
            )
        }
    event_id = sp.big_event + 1
    info = {
        "fingerprint": ss.fingerprint(),
        "event_id": event_id,
        "list_id": LIST_ID,
        "counts": counts,
    }
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES ('segments', :v)"),
            {"v": json.dumps(info)},
        )
    viewers = [v for v in all_viewers if v.key in VIEWER_KEYS]
    return Setup(viewers, event_id, LIST_ID, counts), "data built", times


# ------------------------------------------------------------------------------ DuckDB

# The columns the questions read, per table; timestamps as naive UTC text. Events,
# registrations and attendance carry their owner: the BU-level viewer reads only some.
OWNED = (("owner_type", "VARCHAR"), ("owner_id", "INTEGER"), ("owning_bu_id", "INTEGER"))
DUCK_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "contact": (("id", "INTEGER"), ("country", "VARCHAR"), ("company", "VARCHAR"), *OWNED),
    "record_share": (
        ("record_type", "VARCHAR"),
        ("record_id", "INTEGER"),
        ("principal_type", "VARCHAR"),
        ("principal_id", "INTEGER"),
        ("rights", "INTEGER"),
    ),
    "marketing_event": (
        ("id", "INTEGER"),
        ("event_type", "VARCHAR"),
        ("start_at", "TIMESTAMP"),
        *OWNED,
    ),
    "event_registration": (
        ("id", "INTEGER"),
        ("event_id", "INTEGER"),
        ("contact_id", "INTEGER"),
        ("status", "VARCHAR"),
        ("excluded_reason", "VARCHAR"),
        *OWNED,
    ),
    "event_attendance": (
        ("id", "INTEGER"),
        ("event_id", "INTEGER"),
        ("contact_id", "INTEGER"),
        ("total_seconds", "INTEGER"),
        ("excluded_reason", "VARCHAR"),
        *OWNED,
    ),
    "marketing_list_member": (("list_id", "INTEGER"), ("contact_id", "INTEGER")),
}
NULL = r"\N"


def _export_select(table: str, dialect: str) -> str:
    cols = []
    for name, kind in DUCK_TABLES[table]:
        if kind == "TIMESTAMP" and dialect == "postgresql":
            expr = f"to_char({name} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        else:
            expr = name
        # NULL and '' must stay apart in the CSV: NULL is written as \N
        cols.append(expr if name == "id" else f"coalesce(CAST({expr} AS VARCHAR(400)), '{NULL}')")
    order = " ORDER BY id" if table == "contact" else ""
    return f"SELECT {', '.join(cols)} FROM {table}{order}"


def duck_dir(ss: SegSizes) -> Path:
    """Where the Parquet exports of these sizes live."""
    return DATA_DIR / f"segments{_tag(ss.base.contacts, ss.base.seed)}-duckdb"


def export_parquet(source: Engine, ss: SegSizes) -> float:
    """Export the tables DuckDB reads from ``source`` to Parquet; the seconds it took."""
    t0 = time.perf_counter()
    out = duck_dir(ss)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fingerprint").unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        for table, cols in DUCK_TABLES.items():
            path = out / f"{table}.csv"
            with source.connect() as conn, path.open("w", newline="") as fh:
                writer = csv.writer(fh)
                result = conn.execution_options(
                    stream_results=True, yield_per=50_000
                ).exec_driver_sql(_export_select(table, source.dialect.name))
                for part in result.partitions():
                    writer.writerows(part)
            types = ", ".join(f"'{n}': '{k}'" for n, k in cols)
            con.execute(
                f"COPY (SELECT * FROM read_csv('{path}', header=false, nullstr='{NULL}', "
                f"columns={{{types}}})) TO '{out / f'{table}.parquet'}' (FORMAT parquet)"
            )
            path.unlink()
            log(f"duckdb: {table} exported")
    finally:
        con.close()
    (out / "fingerprint").write_text(duck_fingerprint(ss))
    return time.perf_counter() - t0


def duck_connect(ss: SegSizes) -> tuple[duckdb.DuckDBPyConnection, float]:
    """An in-memory DuckDB holding the Parquet tables; the seconds loading took."""
    t0 = time.perf_counter()
    con = duckdb.connect()
    for table in DUCK_TABLES:
        path = duck_dir(ss) / f"{table}.parquet"
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{path}')")
    return con, time.perf_counter() - t0


def duck_ready(ss: SegSizes) -> bool:
    """Whether finished Parquet exports of these sizes exist."""
    path = duck_dir(ss) / "fingerprint"
    return path.exists() and path.read_text() == duck_fingerprint(ss)


def duck_fingerprint(ss: SegSizes) -> str:
    """The data's fingerprint and the exported columns: a new column means a new export."""
    return json.dumps([json.loads(ss.fingerprint()), DUCK_TABLES], sort_keys=True)


# ------------------------------------------------------------------------------ questions


@dataclass(frozen=True)
class Question:
    """A segment: its criteria tree and a label for the report."""

    key: str
    label: str
    tree: dict[str, Any]


def questions(setup: Setup) -> list[Question]:
    """The issue's three segments."""
    return [
        Question(
            "a",
            "(a) webinar ≤90 d ∧ JP/DE/US",
            {
                "all": [
                    {
                        "participation": "attended",
                        "event": {"type": "webinar", "start": {"in_last_days": 90}},
                    },
                    {"contact": {"country": {"in": ["JP", "DE", "US"]}}},
                ]
            },
        ),
        Question(
            "b",
            f"(b) registered ¬attended #{setup.event_id}",
            {"participation": "not_attended", "event": {"id": setup.event_id}},
        ),
        Question(
            "c",
            "(c) 3 levels with a list",
            {
                "any": [
                    {"all": [{"list": setup.list_id}, {"not": {"contact": {"country": "US"}}}]},
                    {
                        "all": [
                            {
                                "participation": "attended",
                                "event": {"start": {"in_last_days": 365}},
                                "min_minutes": 30,
                            },
                            {
                                "any": [
                                    {"contact": {"company": {"starts_with": "A"}}},
                                    {"contact": {"country": {"in": ["FR", "IT"]}}},
                                ]
                            },
                        ]
                    },
                ]
            },
        ),
    ]


def engine_count(db: Session, principal: Principal, tree: dict[str, Any]) -> int:
    """The count as the application runs it: the statement built, then counted for the viewer."""
    stmt = service.evaluate_statement(
        db=db, tree=tree, readers=(principal,), now=NOW, viewer=principal
    )
    return service.count_visible(db=db, principal=principal, stmt=stmt)


# ------------------------------------------------------------------------------ hand-written

# The criteria, written from criteria.py's semantics: attendance and registrations count
# only with a contact and no exclusion; "in the last N days" is [now - N days, now].
# Participation sees only the rows the viewer may read (docs/segments.md, "Participation
# sees only what may be read"): ``see(alias)`` adds the viewer's read access to the events
# (``e``; only where the criterion compares event fields: an event named by id needs
# none), registrations (``r``) and attendance (``a``), written as hand.py writes a
# contact's (owner, team, BU, shares of that record type); nothing at organization level.
# The viewers' built-in roles give them one level on every marketing record type
# (Marketer: business unit), so ``hand.Facts.level`` holds for these tables too.
See = Callable[[str], str]
ROW_TYPES = {"e": "marketing_event", "r": "event_registration", "a": "event_attendance"}


def sees(f: hand.Facts | None, variant: str) -> See:
    """``see`` for this viewer, the share path in hand.py's ``variant`` form."""

    def see(alias: str) -> str:
        if f is None:
            return ""
        terms = "\n        OR ".join(hand._terms(f, variant, alias, ROW_TYPES[alias]))
        return f"\n      AND ({terms})"

    return see


def row_forms(backend: str) -> tuple[str, ...]:
    """The forms of the participation rows' visibility worth trying: the share path as
    ``IN``, and on PostgreSQL as ``= ANY(ARRAY(…))``, which lets a scan driven from the
    rows (a join, ``EXCEPT``, ``UNION``) combine the owner and BU indexes in a BitmapOr."""
    return ("in", "any") if backend == "postgresql" else ("in",)


ATTENDANCE = "event_attendance a JOIN marketing_event e ON e.id = a.event_id"
A_COUNTRY = "c.country IN ('JP', 'DE', 'US')"
C_LIST = (
    "c.id IN (SELECT m.contact_id FROM marketing_list_member m WHERE m.list_id = :list)\n"
    "    AND (c.country <> 'US' OR c.country IS NULL)"
)
C_PEOPLE = "(lower(c.company) LIKE 'a%' OR c.country IN ('FR', 'IT'))"


def attended_90(see: See) -> str:
    """(a)'s participation: attended a webinar that started in the last 90 days."""
    return (
        "a.contact_id IS NOT NULL AND a.excluded_reason IS NULL\n"
        "      AND e.event_type = 'webinar' AND e.start_at >= :since90 AND e.start_at <= :now"
        f"{see('a')}{see('e')}"
    )


def attended_365(see: See) -> str:
    """(c)'s participation: attended an event of the last 365 days for at least 30 min."""
    return (
        "a.contact_id IS NOT NULL AND a.excluded_reason IS NULL AND a.total_seconds >= 1800\n"
        f"      AND e.start_at >= :since365 AND e.start_at <= :now{see('a')}{see('e')}"
    )


def registered_x(see: See) -> str:
    """(b)'s registrations: for event X, registered, not canceled."""
    return (
        "r.event_id = :event AND r.status = 'registered' AND r.excluded_reason IS NULL\n"
        f"      AND r.contact_id IS NOT NULL{see('r')}"
    )


def not_attended(see: See) -> str:
    """(b)'s registrations with no (readable) attendance of the same event."""
    return (
        "NOT EXISTS (SELECT 1 FROM event_attendance a WHERE a.event_id = r.event_id\n"
        f"        AND a.contact_id = r.contact_id AND a.excluded_reason IS NULL{see('a')})"
    )


def criteria_forms(key: str, see: See) -> dict[str, tuple[str, str]]:
    """form -> (FROM clause binding ``c``, predicate on ``c`` or '') for one segment."""
    if key == "a":
        return {
            "in": (
                "contact c",
                f"{A_COUNTRY}\n  AND c.id IN (SELECT a.contact_id FROM {ATTENDANCE}\n"
                f"    WHERE {attended_90(see)})",
            ),
            "exists": (
                "contact c",
                f"{A_COUNTRY}\n  AND EXISTS (SELECT 1 FROM {ATTENDANCE}\n"
                f"    WHERE a.contact_id = c.id AND {attended_90(see)})",
            ),
            "join": (
                f"(SELECT DISTINCT a.contact_id FROM {ATTENDANCE}\n"
                f"    WHERE {attended_90(see)}) p\n"
                "  JOIN contact c ON c.id = p.contact_id",
                A_COUNTRY,
            ),
        }
    if key == "b":
        return {
            "in": (
                "contact c",
                f"c.id IN (SELECT r.contact_id FROM event_registration r\n"
                f"    WHERE {registered_x(see)}\n      AND {not_attended(see)})",
            ),
            "exists": (
                "contact c",
                f"EXISTS (SELECT 1 FROM event_registration r WHERE r.contact_id = c.id\n"
                f"      AND {registered_x(see)}\n      AND {not_attended(see)})",
            ),
            "except": (
                f"(SELECT r.contact_id FROM event_registration r WHERE {registered_x(see)}\n"
                "    EXCEPT SELECT a.contact_id FROM event_attendance a\n"
                f"    WHERE a.event_id = :event AND a.excluded_reason IS NULL{see('a')}) p\n"
                "  JOIN contact c ON c.id = p.contact_id",
                "",
            ),
        }
    return {
        "in": (
            "contact c",
            f"(({C_LIST})\n  OR (c.id IN (SELECT a.contact_id FROM {ATTENDANCE}\n"
            f"    WHERE {attended_365(see)})\n    AND {C_PEOPLE}))",
        ),
        "exists": (
            "contact c",
            "((EXISTS (SELECT 1 FROM marketing_list_member m\n"
            "      WHERE m.list_id = :list AND m.contact_id = c.id)\n"
            "    AND (c.country <> 'US' OR c.country IS NULL))\n"
            f"  OR (EXISTS (SELECT 1 FROM {ATTENDANCE}\n"
            f"      WHERE a.contact_id = c.id AND {attended_365(see)})\n    AND {C_PEOPLE}))",
        ),
    }


def _union_c(vis: str | None, see: See) -> str:
    """(c) as the UNION of its two branches, each driven from its own table."""
    extra = f"\n    AND ({vis})" if vis else ""
    return (
        "SELECT count(*) FROM (\n"
        "  SELECT c.id FROM marketing_list_member m JOIN contact c ON c.id = m.contact_id\n"
        f"  WHERE m.list_id = :list AND (c.country <> 'US' OR c.country IS NULL){extra}\n"
        "  UNION\n"
        f"  SELECT c.id FROM (SELECT DISTINCT a.contact_id FROM {ATTENDANCE}\n"
        f"    WHERE {attended_365(see)}) p\n"
        f"  JOIN contact c ON c.id = p.contact_id\n  WHERE {C_PEOPLE}{extra}\n) u"
    )


def _where(*parts: str) -> str:
    found = [p for p in parts if p]
    return f"\nWHERE {' AND '.join(found)}" if found else ""


def visibility(f: hand.Facts, variant: str) -> tuple[str, str, str]:
    """The BU-level viewer's visibility from ``hand.py``: (one OR, inside the BU, outside)."""
    terms = hand._terms(f, variant)
    personal = "\n     OR ".join(t for t in terms if "owning_bu_id" not in t)
    return (
        "\n     OR ".join(terms),
        "c.owning_bu_id = :bu",
        f"c.owning_bu_id <> :bu AND (\n     {personal})",
    )


def hand_counts(key: str, f: hand.Facts | None, backend: str) -> dict[str, str]:
    """Every hand-written form of one segment's count for one viewer, by name
    (criteria form·contact visibility form·participation rows' visibility form)."""
    out: dict[str, str] = {}
    if f is None:  # organization level: no visibility predicate at all
        see = sees(None, "")
        for name, (source, pred) in criteria_forms(key, see).items():
            out[name] = f"SELECT count(*) FROM {source}{_where(pred)}"
        if key == "c":
            out["union"] = _union_c(None, see)
        return out
    full, _, _ = visibility(f, "in")
    _, inside, outside = visibility(f, "any" if backend == "postgresql" else "in")
    for rows in row_forms(backend):
        see = sees(f, rows)
        for name, (source, pred) in criteria_forms(key, see).items():
            out[f"{name}·or·{rows}"] = f"SELECT count(*) FROM {source}{_where(pred, f'({full})')}"
            out[f"{name}·split·{rows}"] = (
                f"SELECT (SELECT count(*) FROM {source}{_where(pred, inside)})\n"
                f"     + (SELECT count(*) FROM {source}{_where(pred, outside)})"
            )
        if key == "c":
            out[f"union·or·{rows}"] = _union_c(full, see)
    return out


def duck_sql(key: str, f: hand.Facts | None) -> str:
    """The DuckDB query: the plain IN form with one OR for every visibility."""
    source, pred = criteria_forms(key, sees(f, "in"))["in"]
    vis = f"({visibility(f, 'in')[0]})" if f is not None else ""
    return f"SELECT count(*) FROM {source}{_where(pred, vis)}"


def constants(setup: Setup, f: hand.Facts | None) -> dict[str, Any]:
    """The values the hand-written SQL names as ``:name``."""
    out: dict[str, Any] = {
        "now": NOW,
        "since90": NOW - timedelta(days=90),
        "since365": NOW - timedelta(days=365),
        "event": setup.event_id,
        "list": setup.list_id,
    }
    if f is not None:
        out.update(uid=f.uid, bu=f.bu)
    return out


def inline(sql: str, values: dict[str, Any], flavour: str) -> str:
    """``sql`` with every ``:name`` replaced by its literal, for ``flavour`` sqlite |
    postgresql | duckdb (timestamps written as each stores them: naive UTC text on SQLite)."""

    def literal(m: re.Match[str]) -> str:
        value = values[m.group(1)]
        if not isinstance(value, datetime):
            return str(int(value))
        if flavour == "sqlite":  # SQLAlchemy's SQLite storage format
            return f"'{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        if flavour == "duckdb":
            return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        return f"TIMESTAMP WITH TIME ZONE '{value.isoformat()}'"

    return re.sub(r"(?<![:\w]):(\w+)", literal, sql)


# ------------------------------------------------------------------------------ running


class Timeout(Exception):
    """A statement ran past its time limit and was cancelled."""


class Guard:
    """Runs one side of a comparison under a time limit, so a runaway plan cannot stall the run.

    PostgreSQL: ``statement_timeout`` (SET before the call, outside the timing). SQLite: a
    progress handler that interrupts the statement after the deadline.
    """

    def __init__(self, db: Session) -> None:
        self.db = db
        self.pg = db.get_bind().dialect.name == "postgresql"
        self.deadline = 0.0
        self.limit_ms: int | None = None  # the statement_timeout in force on this transaction

    def _interrupt(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0

    def run(self, fn: Callable[[int], Any], i: int, seconds: float) -> tuple[float, Any]:
        """(milliseconds, result) of ``fn(i)``; raises Timeout after ``seconds``."""
        limit_ms = max(1, int(seconds * 1000))
        if self.pg:
            if self.limit_ms != limit_ms:
                self.db.execute(text(f"SET statement_timeout = {limit_ms}"))
                self.limit_ms = limit_ms
        else:
            raw = self.db.connection().connection.driver_connection
            raw.set_progress_handler(self._interrupt, 20_000)
        self.db.expunge_all()  # same ORM work on every side: no identity-map hits
        self.deadline = time.monotonic() + seconds
        try:
            return timed(lambda: fn(i))
        except OperationalError as exc:
            text_ = str(exc)
            if "statement timeout" not in text_ and "interrupted" not in text_:
                raise
            self.db.rollback()  # a new transaction: SET again next time
            self.limit_ms = None
            raise Timeout(text_.splitlines()[0]) from None


@dataclass
class Row:
    """One row of the report (engine None: every engine run timed out)."""

    question: Question
    viewer: datagen.Viewer
    answer: int
    engine: Timing | None
    hand: Timing
    duck: Timing
    floor: str
    tried: dict[str, str]
    note: str = ""
    early: Timing | None = None  # the engine's warm-up runs 2–10 (see compare)

    @property
    def ratio(self) -> float:
        """Engine median over hand-written median (inf when the engine timed out)."""
        return float("inf") if self.engine is None else self.engine.median / self.hand.median

    @property
    def duck_ratio(self) -> float:
        """Engine median over DuckDB median."""
        return float("inf") if self.engine is None else self.engine.median / self.duck.median


def hand_fn(db: Session, sql: str) -> Callable[[int], int]:
    """A hand-written count as a callable (run ``i`` ignored)."""
    stmt = text(sql)
    return lambda _i: int(db.execute(stmt).scalar_one())


def pick_floor(
    guard: Guard,
    forms: dict[str, Callable[[int], Any]],
    expected: int | None,
    args: argparse.Namespace,
    label: str,
) -> tuple[str, dict[str, str], int]:
    """Find the fastest hand-written form: (its name, every form's result, the count).

    A form still running at 5x the best first run so far is cancelled and dropped (it would
    be dropped anyway); the others run ``--pick-warmup`` + ``--trial`` times. ``expected``
    None (the engine timed out): the first form to finish sets the answer the rest must give.
    """
    tried: dict[str, str] = {}
    medians: dict[str, float] = {}
    best_first = float("inf")
    for name, fn in forms.items():
        t = Timing()
        for i in range(max(1, args.pick_warmup + args.trial)):
            limit = args.timeout if i else min(args.timeout, 5 * best_first / 1000)
            try:
                ms, out = guard.run(fn, i, limit)
            except Timeout:
                tried[name] = f">{limit * 1000:.0f}"
                break
            if expected is None:
                expected = out
            if out != expected:
                raise AssertionError(f"{label}: hand-written {name!r} gives {out}, not {expected}")
            if i == 0:
                best_first = min(best_first, ms)
            if i >= args.pick_warmup:
                t.samples.append(ms)
        else:
            medians[name] = t.median if t.samples else best_first
            tried[name] = f"{medians[name]:.1f}"
    if not medians or expected is None:
        raise AssertionError(f"{label}: every hand-written form timed out")
    return min(medians, key=medians.__getitem__), tried, expected


def compare(
    guard: Guard,
    sides: list[Callable[[int], Any] | None],
    *,
    in_db: list[bool],
    args: argparse.Namespace,
    label: str,
) -> tuple[list[Timing | None], list[Timing]]:
    """Time every side, rotating which goes first; every answer must agree.

    A database side that times out is dropped (its Timing becomes None). Also returns each
    side's warm-up runs 2 to 10 ("early"): on PostgreSQL the runs planned with the actual
    values, before psycopg prepares the statement (6th run) and the server may switch to
    a generic plan (11th run).
    """
    timings: list[Timing | None] = [Timing() if s else None for s in sides]
    early = [Timing() for _ in sides]
    for i in range(args.warmup + args.runs):
        got = []
        for k in range(len(sides)):
            j = (i + k) % len(sides)
            fn = sides[j]
            if fn is None or timings[j] is None:
                continue
            if in_db[j]:
                try:
                    ms, out = guard.run(fn, i, args.timeout)
                except Timeout:
                    log(f"{label}: side {j} timed out on run {i + 1}; dropped")
                    timings[j] = None
                    continue
            else:
                ms, out = timed(lambda fn=fn, i=i: fn(i))
            got.append(out)
            if 1 <= i < min(args.warmup, 10):
                early[j].samples.append(ms)
            if i >= args.warmup:
                timing = timings[j]
                assert timing is not None
                timing.samples.append(ms)
        if any(g != got[0] for g in got):
            raise AssertionError(f"{label}: the sides disagree: {got}")
    return timings, early


def bench_backend(
    engine: Engine,
    setup: Setup,
    duck: duckdb.DuckDBPyConnection,
    args: argparse.Namespace,
) -> list[Row]:
    """Every segment × viewer on one backend."""
    backend = engine.dialect.name
    rows: list[Row] = []
    with Session(engine) as db:
        guard = Guard(db)
        for v in setup.viewers:
            principal = load_principal(db, v.user)
            f = hand.facts(db, v) if v.level != "organization" else None
            values = constants(setup, f)
            for q in questions(setup):
                label = f"{backend} · {q.key} · {v.label}"
                log(label)

                def run_engine(_i: int, principal: Principal = principal, q: Question = q) -> int:
                    return engine_count(db, principal, q.tree)

                note = ""
                engine_side: Callable[[int], Any] | None = run_engine
                try:
                    _, answer = guard.run(run_engine, 0, args.timeout)  # the first, cold run
                except Timeout:
                    log(f"{label}: the engine timed out after {args.timeout:.0f} s")
                    note = f"engine cancelled at {args.timeout:.0f} s"
                    engine_side, answer = None, None
                fns = {
                    name: hand_fn(db, inline(sql, values, backend))
                    for name, sql in hand_counts(q.key, f, backend).items()
                }
                floor, tried, answer = pick_floor(guard, fns, answer, args, label)
                dsql = inline(duck_sql(q.key, f), values, "duckdb")

                def run_duck(_i: int, dsql: str = dsql) -> int:
                    found = duck.execute(dsql).fetchone()
                    assert found is not None
                    return int(found[0])

                (e, h, d), (early, _, _) = compare(
                    guard,
                    [engine_side, fns[floor], run_duck],
                    in_db=[True, True, False],
                    args=args,
                    label=label,
                )
                if engine_side is not None and e is None:
                    note = "engine timed out during the timed runs"
                if h is None or d is None:
                    raise AssertionError(f"{label}: the hand-written floor timed out")
                if d.samples and run_duck(0) != answer:
                    raise AssertionError(f"{label}: DuckDB disagrees")
                row = Row(q, v, answer, e, h, d, floor, tried, note)
                row.early = early if early.samples else None
                rows.append(row)
                if args.explain:
                    sides = {f"hand {floor}": fns[floor]}
                    if engine_side is not None:
                        sides = {"engine": engine_side, **sides}
                    explain(guard, label, sides, args.timeout)
            db.rollback()
    return rows


# ------------------------------------------------------------------------------ explain


class _Captured(Exception):
    pass


def driver_sql(db: Session, run: Callable[[int], Any]) -> tuple[str, Any]:
    """The SQL and parameters the driver receives from ``run`` (stopped before it executes)."""
    conn = db.connection()
    seen: list[tuple[str, Any]] = []

    def hook(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if not statement.lstrip().upper().startswith("SET "):
            seen.append((statement, parameters))
            raise _Captured

    event.listen(conn, "before_cursor_execute", hook)
    try:
        run(0)
    except Exception:
        if not seen:
            raise
    finally:
        event.remove(conn, "before_cursor_execute", hook)
    db.rollback()
    return seen[0]


def explain(
    guard: Guard, label: str, runs: dict[str, Callable[[int], Any]], timeout: float
) -> None:
    """Print each side's SQL as the driver gets it and its plan.

    PostgreSQL: EXPLAIN ANALYZE, or plain EXPLAIN when the statement runs past ``timeout``.
    """
    db = guard.db
    guard.limit_ms = None  # the rollbacks below drop the SET
    pg = guard.pg
    for side, run in runs.items():
        sql, params = driver_sql(db, run)
        print(f"\n--- {label} · {side}\n{sql}\n{params}\n")
        if not pg:
            plan = db.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            for row in plan:
                print(f"    {row[1]:>3} {row[0]:>3}  {row[3]}")
            continue
        try:
            db.execute(text(f"SET statement_timeout = {int(timeout * 1000)}"))
            found = db.connection().exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [r[0] for r in found]
        except OperationalError:
            db.rollback()
            print(f"    (EXPLAIN ANALYZE cancelled after {timeout:.0f} s; the plan without it)")
            lines = [r[0] for r in db.connection().exec_driver_sql("EXPLAIN " + sql, params)]
        db.rollback()
        for line in lines:
            print("   ", line)


# ------------------------------------------------------------------------------ report


def fmt_ms(t: Timing | None, timeout: float = 0) -> str:
    """``median / p95`` in ms; ``cancelled > N s`` for a side that timed out."""
    if t is None:
        return f"{f'cancelled >{timeout:g} s':>17}"
    return f"{t.median:8.1f} /{t.p95:8.1f}"


def fmt_ratio(ratio: float) -> str:
    """The ratio, ``inf`` printed as a dash."""
    return f"{ratio:6.2f}" if ratio != float("inf") else f"{'—':>6}"


def engine_p95(r: Row) -> float:
    """The engine's p95 (inf when it timed out)."""
    return float("inf") if r.engine is None else r.engine.p95


def targets(backend: str, r: Row) -> list[str]:
    """Targets this row misses (empty: all met)."""
    missed = []
    if r.ratio > RATIO_TARGET:
        missed.append(f"ratio>{RATIO_TARGET}")
    if (
        backend == "postgresql"
        and r.question.key == "a"
        and r.viewer.level == "organization"
        and engine_p95(r) >= PG_A_ORG_MS
    ):
        missed.append(f"p95≥{PG_A_ORG_MS:.0f}ms")
    return missed


def report(
    backend: str,
    status: str,
    setup: Setup,
    rows: list[Row],
    build_times: dict[str, float],
    args: argparse.Namespace,
) -> list[str]:
    """Print one backend's data build and table; return the missed targets."""
    c = setup.counts
    print(
        f"\n{backend} · {c['contact']:,} contacts, {c['marketing_event']:,} events, "
        f"{c['event_registration']:,} registrations, {c['event_attendance']:,} attendance, "
        f"list of {c['marketing_list_member']:,}, seed {args.seed} ({status})"
    )
    for step, secs in build_times.items():
        print(f"  build: {step:<62} {secs:7.1f} s")
    print(f"{args.runs} runs after {args.warmup} warm-up · ms median / p95")
    head = (
        f"{'segment':<31} {'viewer':<6} {'count':>7}  {'engine':>17}  {'hand-written':>17} "
        f"{'form':<12} {'duckdb':>17}  {'e/hand':>6} {'e/duck':>6}  target"
    )
    print(head)
    print("-" * len(head))
    missed: list[str] = []
    for r in rows:
        miss = targets(backend, r)
        missed += [f"{backend} · {r.question.label} · {r.viewer.key}: {m}" for m in miss]
        print(
            f"{r.question.label:<31} {r.viewer.key:<6} {r.answer:>7,}  "
            f"{fmt_ms(r.engine, args.timeout)}  {fmt_ms(r.hand)} {r.floor:<12} "
            f"{fmt_ms(r.duck)}  {fmt_ratio(r.ratio)} {fmt_ratio(r.duck_ratio)}  "
            f"{'MISS ' + ', '.join(miss) if miss else 'ok'}"
        )
    for r in rows:
        if r.note:
            print(f"  note: {r.question.label}, {r.viewer.key}: {r.note}")
    if backend == "postgresql" and any(r.early for r in rows):
        print(
            "engine in warm-up runs 2–10, planned with the values (psycopg prepares the "
            "statement at its 6th run,\nthe server may switch to a generic plan at the 11th): "
            "ms median / p95, / hand-written"
        )
        for r in rows:
            if r.early is not None:
                print(
                    f"  {r.question.label:<31} {r.viewer.key:<6} {fmt_ms(r.early)}  "
                    f"{r.early.median / r.hand.median:6.2f}"
                )
    print(
        "engine: evaluate_statement + count_visible per call, as the application runs it · "
        "hand-written: the\nfastest form tried (below) · duckdb: in memory, same rows · "
        f"e/hand = engine / hand-written (target ≤ {RATIO_TARGET})"
    )
    print(
        f"\nhand-written forms tried (median of {args.trial} runs after {args.pick_warmup} "
        "warm-up, ms; * = the floor;\n>N = cancelled at N ms: over 5x the best first run, or "
        "the time limit;\ncriteria form·contacts' visibility form·participation rows' "
        "visibility form)"
    )
    for r in rows:
        forms = "  ".join(f"{'*' if k == r.floor else ' '}{k} {ms}" for k, ms in r.tried.items())
        print(f"  {r.question.key} {r.viewer.key:<4} {forms}")
    viewers = ", ".join(f"{v.key}: user {v.user} ({v.role}, BU {v.bu})" for v in setup.viewers)
    print(f"viewers: {viewers}", flush=True)
    return missed


def summarise(backend: str, rows: list[Row]) -> list[str]:
    """One line per target for this backend."""
    ok = [r for r in rows if r.ratio <= RATIO_TARGET]
    worst = max(rows, key=lambda r: r.ratio)
    worst_ratio = "cancelled" if worst.ratio == float("inf") else f"{worst.ratio:.2f}"
    lines = [
        f"{backend}: engine / hand-written ≤ {RATIO_TARGET} in {len(ok)} of {len(rows)} rows "
        f"(worst {worst_ratio}: {worst.question.label}, {worst.viewer.key})"
    ]
    if backend == "postgresql":
        for r in rows:
            if r.question.key == "a" and r.viewer.level == "organization":
                p95 = engine_p95(r)
                verdict = "met" if p95 < PG_A_ORG_MS else "MISSED"
                lines.append(
                    f"{backend}: (a) organization-level p95 {p95:.0f} ms "
                    f"(target < {PG_A_ORG_MS:.0f} ms) {verdict}"
                )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, prepare the data, run, report (exit 1 on a miss only with --check)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    data_arguments(
        ap,
        "contacts to generate; events, registrations, attendance and the list scale "
        "with it (e.g. 20000 for a smoke run; cached per size)",
    )
    ap.add_argument("--runs", type=int, default=10, help="timed runs per question and side")
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed runs first (default 2 on SQLite, 12 on PostgreSQL: past psycopg's "
        "prepare threshold and the server's 5 custom plans, so timings see the steady plan)",
    )
    ap.add_argument(
        "--trial", type=int, default=3, help="timed runs per hand-written form to pick the floor"
    )
    ap.add_argument(
        "--pick-warmup", type=int, default=1, help="untimed runs per form before its trial"
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds after which a statement is cancelled and its side dropped (reported)",
    )
    ap.add_argument("--explain", action="store_true", help="print the engine's and floor's plans")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    warmup = args.warmup

    ss = seg_sizes(args.contacts, args.seed)
    plans = Plans(ss)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    duck: duckdb.DuckDBPyConnection | None = None
    missed: list[str] = []
    summary: list[str] = []
    ran = 0
    for backend in backends:
        engine = sqlite_engine(ss) if backend == "sqlite" else postgres_engine(args.pg_url, ss)
        if engine is None:
            continue
        args.warmup = warmup if warmup is not None else (2 if backend == "sqlite" else 12)
        try:
            setup, status, build_times = prepare(engine, plans, args.rebuild)
            if duck is None:
                if args.rebuild or not duck_ready(ss):
                    log(f"duckdb: exporting the tables from {backend} to Parquet")
                    build_times["duckdb: Parquet export"] = export_parquet(engine, ss)
                duck, secs = duck_connect(ss)
                build_times["duckdb: load the Parquet files into memory"] = secs
            rows = bench_backend(engine, setup, duck, args)
        finally:
            engine.dispose()
        ran += 1
        missed += report(backend, status, setup, rows, build_times, args)
        summary += summarise(backend, rows)
    if not ran:
        print("no backend ran")
        return 1
    print("\ntargets")
    for line in summary:
        print(f"  {line}")
    met = not missed
    print("\nall targets met" if met else f"\n{len(missed)} row(s) miss a target (see MISS above)")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
