"""Benchmark: lead scoring against hand-written SQL (issue 18, SPEC B9).

Data, from a seed and bulk-loaded (executemany on SQLite, COPY on PostgreSQL): N contacts
(default 1,000,000) in 3 business units, each BU's contacts owned by its user, with a
country among 11 (1 in 15 none); N / 200 marketing events (70 % webinars) starting over
the last 120 days; ~1.5 registrations per contact (10 % cancelled, 1 % excluded, 1 %
without a contact) and attendance for ~55 % of the active ones (total_seconds 0–5,400,
first_join_at in the event's first 15 minutes); 20 messages each sent once over the last
120 days, ~2 deliveries per contact and their email interactions (~1.5 opens per contact,
10 % of them by a machine, ~0.36 clicks, 5 % by a machine); ~1 form submission per
contact over 10 forms, over the last 120 days. The organisation comes from
``org.defaults``; a Marketing Administrator (organization level) owns 5 live scoring
models (MODELS): field conditions (``country in``, ``not_in``, ``starts_with``), attended
with ``min_minutes`` each time, attended a webinar in the last 90 days, registered at
least twice, opened in the last 30 days, never clicked, clicked each time, opened one
message, form submitted (at least twice lately, one form, each time), never opened lately.

Measured, each model in its own transaction, engine and floor alternating which goes
first:

  full         ``scoring.service.run_full`` of each model: the first scoring (no score of
               the model yet), then again a moment later, when nothing changed
  incremental  10,000 random contacts each get an email open; ``scoring.engine.rescore``
               of each model for those contacts
  floor        the same work as hand-written SQL (FLOOR): per model one ``INSERT …
               SELECT`` with LEFT JOINs to ``count(*) … GROUP BY contact_id`` aggregates,
               CASE for points and grade, ``ON CONFLICT (model_id, record_id) DO UPDATE …
               WHERE`` the score changed, then the DELETE of scores of records the model
               no longer scores; into ``lead_score_floor`` (lead_score's columns, keys and
               indexes). The incremental form restricts every aggregate and the contacts
               to the touched ones (an ``IN`` list of literals).

Printed: seconds of engine and floor and engine / floor (target ≤ 1.5) for each phase and
model, where the engine's time went (the upsert, the DELETE, the counts it reports), and
whether both tables hold the same scores — (model, record, score, grade, sales_ready,
sales_ready_at, changed_at), compared after the first full rescore and at the end; the
exit status is 1 if they differ.

    .venv/bin/python bench/scoring.py                      # SQLite, 1M contacts
    .venv/bin/python bench/scoring.py --contacts 20000     # a smoke run
    .venv/bin/python bench/scoring.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_scoring``
(PostgreSQL), made anew for every run.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bulkload import Table, load_tables
from mailbench import database, log
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture.models import MarketingForm
from gatherly.core import migrate
from gatherly.core.db import Base, make_engine, make_session_factory
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.event.models import MarketingEvent
from gatherly.org import defaults
from gatherly.org import service as org_service
from gatherly.org.directory import load_principal
from gatherly.scoring import engine as scoring
from gatherly.scoring import service
from gatherly.scoring.models import LeadScore, ScoringModel

BUS = 3
MESSAGES = 20  # one send each
FORMS = 10
DAY = 86_400
SPAN = 120 * DAY  # interactions lie in the last 120 days
# Data lies on whole seconds before BASE; the runs' clocks on half seconds after it, so no
# window's edge moves past a row between the first and the second full rescore.
BASE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NOW = BASE + timedelta(milliseconds=500)  # the first full rescore
AGAIN = NOW + timedelta(milliseconds=1)  # the second: nothing changed
LATER = NOW + timedelta(milliseconds=2)  # the incremental one, after the new opens
COUNTRIES = ("US", "US", "US", "DE", "DE", "GB", "FR", "JP", "JP", "IN", "BR", "CA", "NL", "ES")
COUNTRIES += (None,)
REGISTRATIONS_PER_CONTACT = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3)  # 1.5
DELIVERIES_PER_CONTACT = (1, 1, 1, 2, 2, 2, 2, 3, 3, 3)  # 2.0
SUBMISSIONS_PER_CONTACT = (0, 0, 0, 1, 1, 1, 1, 2, 2, 2)  # 1.0


# Tables whose id sequence is moved past the ids loaded (PostgreSQL).
SEQUENCED = (
    "marketing_event", "email_message", "email_send", "marketing_form", "contact",
    "event_registration", "event_attendance", "email_delivery", "email_interaction",
    "capture_interaction",
)  # fmt: skip


# ------------------------------------------------------------------------------ the models

GRADES_ABCD = [
    {"grade": "A", "min": 100},
    {"grade": "B", "min": 60},
    {"grade": "C", "min": 30},
    {"grade": "D", "min": None},
]


@dataclass(frozen=True)
class Model:
    name: str
    conditions: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    sales_ready: int | None
    floor: str  # the SELECT of its hand-written upsert (INSERT, UPSERT, DELETE: shared)


# The floor's placeholders: {model} {owner} {bu} the model and its owner; {now} {sinceN}
# timestamps (N days before now); {false} the dialect's false; {ids} "IS NOT NULL" for a
# full rescore, "IN (…)" the touched contacts for an incremental one.
INSERT = """
INSERT INTO lead_score_floor (model_id, record_id, contact_id, lead_id, score, grade,
    sales_ready, sales_ready_at, changed_at, owner_type, owner_id, owning_bu_id)
"""
UPSERT = """
ON CONFLICT (model_id, record_id) DO UPDATE SET
    score = excluded.score,
    grade = excluded.grade,
    contact_id = excluded.contact_id,
    sales_ready = excluded.sales_ready,
    sales_ready_at = CASE WHEN excluded.sales_ready AND NOT lead_score_floor.sales_ready
                          THEN excluded.sales_ready_at ELSE lead_score_floor.sales_ready_at END,
    changed_at = excluded.changed_at
WHERE lead_score_floor.score <> excluded.score
   OR lead_score_floor.contact_id <> excluded.contact_id
   OR lead_score_floor.sales_ready <> excluded.sales_ready
   OR coalesce(lead_score_floor.grade, '') <> coalesce(excluded.grade, '')
"""
DELETE = """
DELETE FROM lead_score_floor
WHERE model_id = {model} AND contact_id {ids}
  AND NOT EXISTS (SELECT 1 FROM contact c WHERE c.id = lead_score_floor.record_id)
"""

MODELS: list[Model] = [
    Model(
        "Fit and engagement",
        [
            {"name": "In JP, DE or US", "points": 10, "contact": {"country": {"in": ["JP", "DE", "US"]}}},
            {"name": "Attended 30 min", "points": 20, "interaction": "attended", "min_minutes": 30, "frequency": "each"},
            {"name": "Registered twice", "points": 15, "interaction": "registered", "times": 2},
            {"name": "Opened lately", "points": 5, "interaction": "email_opened", "within_days": 30},
            {"name": "Never clicked", "points": -5, "interaction": "email_clicked", "frequency": "never"},
            {"name": "Submitted a form", "points": 25, "interaction": "form_submitted"},
        ],
        GRADES_ABCD,
        80,
        """
SELECT {model}, s.id, s.id, NULL, s.score,
    CASE WHEN s.score >= 100 THEN 'A' WHEN s.score >= 60 THEN 'B'
         WHEN s.score >= 30 THEN 'C' ELSE 'D' END,
    s.score >= 80, CASE WHEN s.score >= 80 THEN {now} END, {now}, 'user', {owner}, {bu}
FROM (
    SELECT c.id,
        CASE WHEN c.country IN ('JP', 'DE', 'US') THEN 10 ELSE 0 END
        + coalesce(att.n, 0) * 20
        + CASE WHEN reg.n >= 2 THEN 15 ELSE 0 END
        + CASE WHEN opn.n >= 1 THEN 5 ELSE 0 END
        + CASE WHEN clk.n IS NULL THEN -5 ELSE 0 END
        + CASE WHEN frm.n >= 1 THEN 25 ELSE 0 END AS score
    FROM contact c
    LEFT JOIN (SELECT a.contact_id, count(*) AS n FROM event_attendance a
               WHERE a.contact_id {ids} AND a.excluded_reason IS NULL
                 AND a.total_seconds > 0 AND a.total_seconds >= 1800
               GROUP BY a.contact_id) att ON att.contact_id = c.id
    LEFT JOIN (SELECT r.contact_id, count(*) AS n FROM event_registration r
               WHERE r.contact_id {ids} AND r.excluded_reason IS NULL
                 AND r.status = 'registered'
               GROUP BY r.contact_id) reg ON reg.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'opened' AND e.machine = {false}
                 AND e.at >= {since30}
               GROUP BY e.contact_id) opn ON opn.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'clicked' AND e.machine = {false}
               GROUP BY e.contact_id) clk ON clk.contact_id = c.id
    LEFT JOIN (SELECT f.contact_id, count(*) AS n FROM capture_interaction f
               WHERE f.contact_id {ids} AND f.kind = 'form_submitted'
               GROUP BY f.contact_id) frm ON frm.contact_id = c.id
    WHERE c.id {ids}
) s
WHERE true
""",
    ),
    Model(
        "Webinar fans",
        [
            {"name": "Webinars lately", "points": 10, "interaction": "attended", "event": {"type": "webinar"}, "frequency": "each", "within_days": 90},
            {"name": "Never registered", "points": -10, "interaction": "registered", "frequency": "never"},
            {"name": "Clicks", "points": 3, "interaction": "email_clicked", "frequency": "each"},
        ],
        [{"grade": "A", "min": 50}, {"grade": "B", "min": 20}],
        50,
        """
SELECT {model}, s.id, s.id, NULL, s.score,
    CASE WHEN s.score >= 50 THEN 'A' WHEN s.score >= 20 THEN 'B' END,
    s.score >= 50, CASE WHEN s.score >= 50 THEN {now} END, {now}, 'user', {owner}, {bu}
FROM (
    SELECT c.id,
        coalesce(web.n, 0) * 10
        + CASE WHEN reg.n IS NULL THEN -10 ELSE 0 END
        + coalesce(clk.n, 0) * 3 AS score
    FROM contact c
    LEFT JOIN (SELECT a.contact_id, count(*) AS n FROM event_attendance a
               WHERE a.contact_id {ids} AND a.excluded_reason IS NULL AND a.total_seconds > 0
                 AND a.event_id IN (SELECT id FROM marketing_event WHERE event_type = 'webinar')
                 AND coalesce(a.first_join_at, a.created_at) >= {since90}
               GROUP BY a.contact_id) web ON web.contact_id = c.id
    LEFT JOIN (SELECT r.contact_id, count(*) AS n FROM event_registration r
               WHERE r.contact_id {ids} AND r.excluded_reason IS NULL
                 AND r.status = 'registered'
               GROUP BY r.contact_id) reg ON reg.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'clicked' AND e.machine = {false}
               GROUP BY e.contact_id) clk ON clk.contact_id = c.id
    WHERE c.id {ids}
) s
WHERE true
""",
    ),
    Model(
        "Email engaged",
        [
            {"name": "Opens lately", "points": 2, "interaction": "email_opened", "frequency": "each", "within_days": 30},
            {"name": "Clicked twice", "points": 20, "interaction": "email_clicked", "times": 2},
            {"name": "Opened the first message", "points": 5, "interaction": "email_opened", "message_id": 1},
            {"name": "Not in the US", "points": 5, "contact": {"country": {"not_in": ["US"]}}},
        ],
        GRADES_ABCD,
        None,
        """
SELECT {model}, s.id, s.id, NULL, s.score,
    CASE WHEN s.score >= 100 THEN 'A' WHEN s.score >= 60 THEN 'B'
         WHEN s.score >= 30 THEN 'C' ELSE 'D' END,
    {false}, NULL, {now}, 'user', {owner}, {bu}
FROM (
    SELECT c.id,
        coalesce(opn.n, 0) * 2
        + CASE WHEN clk.n >= 2 THEN 20 ELSE 0 END
        + CASE WHEN one.n >= 1 THEN 5 ELSE 0 END
        + CASE WHEN c.country IS NULL OR c.country <> 'US' THEN 5 ELSE 0 END AS score
    FROM contact c
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'opened' AND e.machine = {false}
                 AND e.at >= {since30}
               GROUP BY e.contact_id) opn ON opn.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'clicked' AND e.machine = {false}
               GROUP BY e.contact_id) clk ON clk.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'opened' AND e.machine = {false}
                 AND e.message_id = 1
               GROUP BY e.contact_id) one ON one.contact_id = c.id
    WHERE c.id {ids}
) s
WHERE true
""",
    ),
    Model(
        "Forms and fit",
        [
            {"name": "Two forms lately", "points": 30, "interaction": "form_submitted", "times": 2, "within_days": 60},
            {"name": "The first form", "points": 10, "interaction": "form_submitted", "form_id": 1},
            {"name": "Company 1…", "points": 5, "contact": {"company": {"starts_with": "Company 1"}}},
            {"name": "Registered lately", "points": 10, "interaction": "registered", "within_days": 30},
        ],
        [{"grade": "Hot", "min": 50}, {"grade": "Warm", "min": 25}, {"grade": "Cold", "min": None}],
        50,
        """
SELECT {model}, s.id, s.id, NULL, s.score,
    CASE WHEN s.score >= 50 THEN 'Hot' WHEN s.score >= 25 THEN 'Warm' ELSE 'Cold' END,
    s.score >= 50, CASE WHEN s.score >= 50 THEN {now} END, {now}, 'user', {owner}, {bu}
FROM (
    SELECT c.id,
        CASE WHEN two.n >= 2 THEN 30 ELSE 0 END
        + CASE WHEN one.n >= 1 THEN 10 ELSE 0 END
        + CASE WHEN lower(c.company) LIKE 'company 1%' THEN 5 ELSE 0 END
        + CASE WHEN reg.n >= 1 THEN 10 ELSE 0 END AS score
    FROM contact c
    LEFT JOIN (SELECT f.contact_id, count(*) AS n FROM capture_interaction f
               WHERE f.contact_id {ids} AND f.kind = 'form_submitted' AND f.at >= {since60}
               GROUP BY f.contact_id) two ON two.contact_id = c.id
    LEFT JOIN (SELECT f.contact_id, count(*) AS n FROM capture_interaction f
               WHERE f.contact_id {ids} AND f.kind = 'form_submitted' AND f.form_id = 1
               GROUP BY f.contact_id) one ON one.contact_id = c.id
    LEFT JOIN (SELECT r.contact_id, count(*) AS n FROM event_registration r
               WHERE r.contact_id {ids} AND r.excluded_reason IS NULL
                 AND r.status = 'registered'
                 AND coalesce(r.registered_at, r.created_at) >= {since30}
               GROUP BY r.contact_id) reg ON reg.contact_id = c.id
    WHERE c.id {ids}
) s
WHERE true
""",
    ),
    Model(
        "Recent activity",
        [
            {"name": "Attended lately", "points": 30, "interaction": "attended", "min_minutes": 10, "within_days": 14},
            {"name": "Registered twice lately", "points": 15, "interaction": "registered", "times": 2, "within_days": 60},
            {"name": "Silent lately", "points": -5, "interaction": "email_opened", "frequency": "never", "within_days": 7},
            {"name": "Forms", "points": 5, "interaction": "form_submitted", "frequency": "each"},
            {"name": "In Japan", "points": 10, "contact": {"country": "JP"}},
        ],
        GRADES_ABCD,
        40,
        """
SELECT {model}, s.id, s.id, NULL, s.score,
    CASE WHEN s.score >= 100 THEN 'A' WHEN s.score >= 60 THEN 'B'
         WHEN s.score >= 30 THEN 'C' ELSE 'D' END,
    s.score >= 40, CASE WHEN s.score >= 40 THEN {now} END, {now}, 'user', {owner}, {bu}
FROM (
    SELECT c.id,
        CASE WHEN att.n >= 1 THEN 30 ELSE 0 END
        + CASE WHEN reg.n >= 2 THEN 15 ELSE 0 END
        + CASE WHEN opn.n IS NULL THEN -5 ELSE 0 END
        + coalesce(frm.n, 0) * 5
        + CASE WHEN c.country = 'JP' THEN 10 ELSE 0 END AS score
    FROM contact c
    LEFT JOIN (SELECT a.contact_id, count(*) AS n FROM event_attendance a
               WHERE a.contact_id {ids} AND a.excluded_reason IS NULL
                 AND a.total_seconds > 0 AND a.total_seconds >= 600
                 AND coalesce(a.first_join_at, a.created_at) >= {since14}
               GROUP BY a.contact_id) att ON att.contact_id = c.id
    LEFT JOIN (SELECT r.contact_id, count(*) AS n FROM event_registration r
               WHERE r.contact_id {ids} AND r.excluded_reason IS NULL
                 AND r.status = 'registered'
                 AND coalesce(r.registered_at, r.created_at) >= {since60}
               GROUP BY r.contact_id) reg ON reg.contact_id = c.id
    LEFT JOIN (SELECT e.contact_id, count(*) AS n FROM email_interaction e
               WHERE e.contact_id {ids} AND e.kind = 'opened' AND e.machine = {false}
                 AND e.at >= {since7}
               GROUP BY e.contact_id) opn ON opn.contact_id = c.id
    LEFT JOIN (SELECT f.contact_id, count(*) AS n FROM capture_interaction f
               WHERE f.contact_id {ids} AND f.kind = 'form_submitted'
               GROUP BY f.contact_id) frm ON frm.contact_id = c.id
    WHERE c.id {ids}
) s
WHERE true
""",
    ),
]  # fmt: skip


def floor_statements(
    model: Model, model_id: int, owner: tuple[int, int], dialect: str, now: datetime,
    ids: Sequence[int] | None,
) -> list[str]:  # fmt: skip
    """The floor's two statements for one model, with its constants written in."""

    def stamp(value: datetime) -> str:
        if dialect == "postgresql":
            return f"TIMESTAMPTZ '{value.isoformat()}'"
        return f"'{value.isoformat(sep=' ', timespec='microseconds')[:26]}'"

    values = {
        "model": str(model_id),
        "owner": str(owner[0]),
        "bu": str(owner[1]),
        "now": stamp(now),
        "false": "false" if dialect == "postgresql" else "0",
        "ids": "IS NOT NULL" if ids is None else f"IN ({', '.join(map(str, ids))})",
        **{f"since{d}": stamp(now - timedelta(days=d)) for d in (7, 14, 30, 60, 90)},
    }
    return [(INSERT + model.floor + UPSERT).format(**values), DELETE.format(**values)]


# ------------------------------------------------------------------------------ the data


@dataclass
class Setup:
    owners: list[tuple[int, int]]  # per BU: (user id, BU id) owning its records
    admin: tuple[int, int]  # the Marketing Administrator: (user id, BU id)


def seed_organisation(factory: sessionmaker[Session]) -> Setup:
    """The default organisation, 3 BUs with a user each, and the Marketing Administrator
    (in the root BU) who owns the models."""
    with factory() as db:
        defaults.ensure_defaults(db)
        root = org_service.get_root(db=db)
        owners = []
        for b in range(BUS):
            bu = org_service.create_bu(db=db, name=f"BU {b}", parent_id=root.id)
            user = org_service.create_user(db=db, username=f"owner{b}", business_unit_id=bu.id)
            owners.append((user.id, bu.id))
        admin = org_service.create_user(db=db, username="scorer", business_unit_id=root.id)
        role = org_service.get_role_by_name(db=db, name="Marketing Administrator")
        org_service.assign_role(db=db, role_id=role.id, user_id=admin.id)
        db.commit()
        return Setup(owners, (admin.id, root.id))


def stamper(dialect: str) -> Callable[[int], str]:
    """Seconds before BASE as the text a timestamp column is loaded from (SQLite stores
    SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); each minute's text made once."""
    suffix = "+00" if dialect == "postgresql" else ""
    origin = BASE - timedelta(days=400)  # on a whole minute, before any row
    offset = 400 * DAY
    minutes: dict[int, str] = {}
    seconds = [f"{s:02d}.000000{suffix}" for s in range(60)]

    def stamp(before: int) -> str:
        minute, second = divmod(offset - before, 60)
        prefix = minutes.get(minute)
        if prefix is None:
            prefix = (origin + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:")
            minutes[minute] = prefix
        return prefix + seconds[second]

    return stamp


def below(rng: random.Random) -> Callable[[int], int]:
    """A uniform integer in [0, n): ``int(random() * n)``, much cheaper than randrange."""
    draw = rng.random

    def pick(n: int) -> int:
        return int(draw() * n)

    return pick


def distinct(pick: Callable[[int], int], n: int, k: int) -> list[int]:
    """``k`` distinct integers in [0, n) (k is small)."""
    found: list[int] = []
    while len(found) < k:
        i = pick(n)
        if i not in found:
            found.append(i)
    return found


@dataclass(frozen=True)
class Plan:
    seed: int
    contacts: int
    events: int
    event_before: list[int]  # start of each event, seconds before BASE
    webinar: list[bool]
    send_before: list[int]  # each send's time, seconds before BASE

    @classmethod
    def make(cls, seed: int, contacts: int) -> Plan:
        rng = random.Random(f"{seed}-plan")
        events = max(20, contacts // 200)
        return cls(
            seed,
            contacts,
            events,
            [rng.randrange(3600, SPAN) for _ in range(events)],
            [rng.random() < 0.7 for _ in range(events)],
            [(MESSAGES - s) * SPAN // MESSAGES - 3 * DAY for s in range(MESSAGES)],
        )

    def registrations(self) -> Iterator[tuple[int, int | None, int, bool, bool, int]]:
        """(id, contact id or None, event index, cancelled, excluded, seconds before BASE)."""
        rng = random.Random(f"{self.seed}-registrations")
        roll, pick = rng.random, below(rng)
        rid = 0
        for c in range(1, self.contacts + 1):
            for e in distinct(pick, self.events, REGISTRATIONS_PER_CONTACT[pick(10)]):
                rid += 1
                cancelled = roll() < 0.1
                excluded = roll() < 0.01
                contact = None if roll() < 0.01 else c
                before = self.event_before[e] + 3600 + pick(14 * DAY - 3600)
                yield rid, contact, e, cancelled, excluded, before

    def deliveries(self) -> Iterator[tuple[int, int, int]]:
        """(id, contact id, send index)."""
        pick = below(random.Random(f"{self.seed}-deliveries"))
        did = 0
        for c in range(1, self.contacts + 1):
            for s in distinct(pick, MESSAGES, DELIVERIES_PER_CONTACT[pick(10)]):
                did += 1
                yield did, c, s


OWNED = ("owner_type", "owner_id", "owning_bu_id")


def big_tables(plan: Plan, setup: Setup, dialect: str) -> list[Table]:
    """The bulk-loaded tables, in load order, with their row generators."""
    stamp = stamper(dialect)
    owners = setup.owners
    created = stamp(SPAN + 30 * DAY)

    def contacts() -> Iterator[tuple[Any, ...]]:
        pick = below(random.Random(f"{plan.seed}-contacts"))
        for i in range(1, plan.contacts + 1):
            uid, bu = owners[i % BUS]
            email = f"person{i}@bench.example"
            yield (
                i, email, f"Person{i}", "Bench", f"Company {i % 97}", "", "",
                COUNTRIES[pick(len(COUNTRIES))], "{}", created, created, "manual", f"{bu}|{email}",
                "user", uid, bu,
            )  # fmt: skip

    def registrations() -> Iterator[tuple[Any, ...]]:
        for rid, c, e, cancelled, excluded, before in plan.registrations():
            uid, bu = owners[e % BUS]
            email = f"person{c}@bench.example" if c else f"guest{rid}@bench.example"
            yield (
                rid, e + 1, f"reg-{rid}", email, "", "",
                "canceled" if cancelled else "registered", stamp(before),
                stamp(before - 3600) if cancelled else None, c,
                "organizer" if excluded else None, stamp(before), "user", uid, bu,
            )  # fmt: skip

    def attendance() -> Iterator[tuple[Any, ...]]:
        rng = random.Random(f"{plan.seed}-attendance")
        roll, pick = rng.random, below(rng)
        aid = 0
        for rid, c, e, cancelled, excluded, _before in plan.registrations():
            if cancelled or roll() >= 0.55:
                continue
            aid += 1
            uid, bu = owners[e % BUS]
            seconds = 0 if roll() < 0.05 else 60 + pick(5341)
            joined = plan.event_before[e] - pick(901)
            email = f"person{c}@bench.example" if c else f"guest{rid}@bench.example"
            yield (
                aid, e + 1, email, email, "", "Attendee", rid, c, stamp(joined),
                stamp(joined - seconds), seconds, "organizer" if excluded else None,
                stamp(joined - seconds), "user", uid, bu,
            )  # fmt: skip

    def deliveries() -> Iterator[tuple[Any, ...]]:
        for did, c, s in plan.deliveries():
            yield (
                did, s + 1, c, 1, f"person{c}@bench.example", "sent", "", 1,
                stamp(plan.send_before[s]),
            )  # fmt: skip

    def interactions() -> Iterator[tuple[Any, ...]]:
        rng = random.Random(f"{plan.seed}-interactions")
        roll, pick = rng.random, below(rng)
        iid = 0
        for did, c, s in plan.deliveries():
            if roll() >= 0.6:
                continue
            sent = plan.send_before[s]
            for _ in range(2 if roll() < 0.25 else 1):
                at = sent - 60 - pick(3 * DAY - 60)
                iid += 1
                yield iid, did, s + 1, s + 1, c, "opened", stamp(at), None, roll() < 0.1
                if roll() < 0.24:
                    iid += 1
                    url = "https://www.example.com/webinars/recordings"
                    yield (
                        iid, did, s + 1, s + 1, c, "clicked", stamp(at - 30), url,
                        roll() < 0.05,
                    )  # fmt: skip

    def submissions() -> Iterator[tuple[Any, ...]]:
        pick = below(random.Random(f"{plan.seed}-submissions"))
        sid = 0
        for c in range(1, plan.contacts + 1):
            for _ in range(SUBMISSIONS_PER_CONTACT[pick(10)]):
                sid += 1
                at = 60 + pick(SPAN - 60)
                yield sid, "form_submitted", pick(FORMS) + 1, c, stamp(at)

    return [
        ("contact", (
            "id", "email", "first_name", "last_name", "company", "job_title", "phone",
            "country", "custom", "created_at", "modified_at", "origin", "match_key", *OWNED,
        ), contacts),
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
        ("email_delivery", (
            "id", "send_id", "contact_id", "entry", "email", "state", "detail", "attempts",
            "sent_at",
        ), deliveries),
        ("email_interaction", (
            "id", "delivery_id", "send_id", "message_id", "contact_id", "kind", "at", "url",
            "machine",
        ), interactions),
        ("capture_interaction", ("id", "kind", "form_id", "contact_id", "at"), submissions),
    ]  # fmt: skip


def small_tables(factory: sessionmaker[Session], plan: Plan, setup: Setup) -> None:
    """Events, messages and their sends, forms: few rows, through SQLAlchemy."""
    owner = [dict(zip(OWNED, ("user", uid, bu), strict=True)) for uid, bu in setup.owners]
    at = [BASE - timedelta(seconds=b) for b in plan.event_before]
    with factory() as db:
        db.execute(
            insert(MarketingEvent),
            [
                {
                    "id": e + 1,
                    "name": f"{'Webinar' if plan.webinar[e] else 'Meetup'} {e + 1}",
                    "event_type": "webinar" if plan.webinar[e] else "in_person",
                    "status": "published",
                    "start_at": at[e],
                    "end_at": at[e] + timedelta(hours=1),
                    "time_zone": "UTC",
                    "organizer_name": "",
                    "audience": "",
                    "source": "manual",
                    "registrant_count": 0,
                    "attendee_count": 0,
                    "cancellation_count": 0,
                    "created_at": at[e] - timedelta(days=30),
                    "modified_at": at[e] - timedelta(days=30),
                    **owner[e % BUS],
                }
                for e in range(plan.events)
            ],
        )
        sent = [BASE - timedelta(seconds=b) for b in plan.send_before]
        db.execute(
            insert(EmailMessage),
            [
                {"id": m + 1, "name": f"Message {m + 1}", "subject": "News", "html": "<p>News</p>",
                 "state": "in_use", **owner[m % BUS]}
                for m in range(MESSAGES)
            ],
        )  # fmt: skip
        db.execute(
            insert(EmailSend),
            [
                {"id": m + 1, "message_id": m + 1, "scheduled_at": sent[m], "state": "done",
                 "started_at": sent[m], "finished_at": sent[m], **owner[m % BUS]}
                for m in range(MESSAGES)
            ],
        )  # fmt: skip
        db.execute(
            insert(MarketingForm),
            [{"id": f + 1, "name": f"Form {f + 1}", "state": "live", **owner[f % BUS]}
             for f in range(FORMS)],
        )  # fmt: skip
        db.commit()


def make_models(factory: sessionmaker[Session], setup: Setup) -> list[int]:
    """The 5 models, made and taken live through the service, as their owner."""
    ids = []
    with factory() as db:
        me = load_principal(db, setup.admin[0])
        for m in MODELS:
            row = service.create_model(
                db=db, principal=me, name=m.name, conditions=m.conditions, grades=m.grades,
                sales_ready=m.sales_ready,
            )  # fmt: skip
            service.set_state(db=db, principal=me, model_id=row.id, state="live")
            ids.append(row.id)
        db.commit()
    return ids


FLOOR = LeadScore.__table__.to_metadata(Base.metadata, name="lead_score_floor")
for _index in FLOOR.indexes:  # the same indexes as lead_score's, under names of their own
    _index.name = str(_index.name).replace("lead_score", "lead_score_floor")
for _constraint in FLOOR.constraints:
    if _constraint.name:
        _constraint.name = str(_constraint.name).replace("lead_score", "lead_score_floor")


def new_opens(factory: sessionmaker[Session], plan: Plan, n: int) -> list[int]:
    """``n`` random contacts open the first message of a new send an hour before BASE;
    their ids, sorted."""
    rng = random.Random(f"{plan.seed}-incremental")
    ids = sorted(rng.sample(range(1, plan.contacts + 1), n))
    at = BASE - timedelta(hours=1)
    with factory() as db:
        message = db.get(EmailMessage, 1)
        assert message is not None
        send = EmailSend(
            message_id=1, scheduled_at=at, state="done", owner_type=message.owner_type,
            owner_id=message.owner_id, owning_bu_id=message.owning_bu_id,
        )  # fmt: skip
        db.add(send)
        db.flush()
        for start in range(0, n, 5000):
            chunk = ids[start : start + 5000]
            delivered = db.scalars(
                insert(EmailDelivery).returning(EmailDelivery.id, sort_by_parameter_order=True),
                [
                    {"send_id": send.id, "contact_id": c, "email": f"person{c}@bench.example",
                     "state": "sent", "sent_at": at}
                    for c in chunk
                ],
            ).all()  # fmt: skip
            db.execute(
                insert(EmailInteraction),
                [
                    {"delivery_id": d, "send_id": send.id, "message_id": 1, "contact_id": c,
                     "kind": "opened", "at": at, "machine": False}
                    for d, c in zip(delivered, chunk, strict=True)
                ],
            )  # fmt: skip
        db.commit()
    return ids


# ------------------------------------------------------------------------------ the runs


class Statements:
    """Seconds spent in each kind of statement while ``on`` (the first word and table)."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        took = time.perf_counter() - self._started.pop()
        if self.on:
            self.seconds[kind(statement)] += took

    def take(self) -> dict[str, float]:
        found, self.seconds = dict(self.seconds), defaultdict(float)
        return found


def kind(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper()
    if verb == "INSERT":
        return "upsert"
    if verb == "DELETE":
        return "delete"
    if verb == "UPDATE":
        return "update"
    if verb == "SELECT" and "count(" in statement.lower():
        return "counts"
    return "other"


@dataclass
class Phase:
    name: str
    engine: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    statements: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return sum(self.engine) / sum(self.floor)


def settle(engine: Engine) -> None:
    """Start each side alike: SQLite's write-ahead log folded back into the database (so
    neither pays for the other's checkpoint), PostgreSQL's statistics fresh."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            conn.execute(text("ANALYZE lead_score"))
            conn.execute(text("ANALYZE lead_score_floor"))


def run_phase(
    name: str,
    engine: Engine,
    statements: Statements,
    model_ids: list[int],
    setup: Setup,
    now: datetime,
    ids: list[int] | None = None,
) -> Phase:
    """Each model rescored by the engine and by the floor, in turn, each in its own
    transaction; every other model the floor goes first."""
    factory = make_session_factory(engine)
    phase = Phase(name)
    for i, (model, model_id) in enumerate(zip(MODELS, model_ids, strict=True)):
        sql = floor_statements(model, model_id, setup.admin, engine.dialect.name, now, ids)

        def run_engine(model_id: int = model_id) -> float:
            started = time.perf_counter()
            statements.on = True
            with factory() as db:
                row = db.get(ScoringModel, model_id)
                assert row is not None
                if ids is None:
                    result = service.run_full(db, row, now=now)
                else:
                    result = scoring.rescore(db, row, now=now, contact_ids=ids)
                db.commit()
            statements.on = False
            phase.changed.append(result.changed)
            return time.perf_counter() - started

        def run_floor(sql: list[str] = sql) -> float:
            started = time.perf_counter()
            with engine.begin() as conn:
                for stmt in sql:
                    conn.execute(text(stmt))
            return time.perf_counter() - started

        for side in ("floor", "engine") if i % 2 == 0 else ("engine", "floor"):
            settle(engine)
            took = run_floor() if side == "floor" else run_engine()
            getattr(phase, side).append(took)
        log(
            f"  {name}: {model.name}: engine {phase.engine[-1]:.2f} s, "
            f"floor {phase.floor[-1]:.2f} s, {phase.changed[-1]:,} changed"
        )
    phase.statements = statements.take()
    return phase


def disagreements(engine: Engine) -> int:
    """Scores one table holds and the other does not (both ways)."""
    columns = (
        "model_id, record_id, contact_id, score, grade, sales_ready, sales_ready_at, changed_at"
    )
    with engine.connect() as conn:
        return sum(
            conn.execute(
                text(f"SELECT count(*) FROM (SELECT {columns} FROM {a} EXCEPT "
                     f"SELECT {columns} FROM {b}) AS d")
            ).scalar_one()
            for a, b in (("lead_score", "lead_score_floor"), ("lead_score_floor", "lead_score"))
        )  # fmt: skip


def report(backend: str, contacts: int, counts: dict[str, int], phases: list[Phase]) -> None:
    sizes = ", ".join(f"{n:,} {t}" for t, n in counts.items() if t != "contact")
    print(f"{backend}: {contacts:,} contacts; {sizes}; {len(MODELS)} live models")
    print(f"  {'':40} {'engine s':>9} {'floor s':>9} {'engine/floor':>13} {'changed':>10}")
    for p in phases:
        print(
            f"  {p.name:40} {sum(p.engine):9.2f} {sum(p.floor):9.2f} {p.ratio:13.2f} "
            f"{sum(p.changed):10,}"
        )
        for m, e, f, c in zip(MODELS, p.engine, p.floor, p.changed, strict=True):
            print(f"    {m.name:38} {e:9.2f} {f:9.2f} {e / f:13.2f} {c:10,}")
        spent = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(p.statements.items()))
        print(f"    engine's statements: {spent}")
    ratios = ", ".join(f"{p.name.split(' (')[0]} {p.ratio:.2f}" for p in phases)
    print(f"  engine / floor: {ratios}   (target <= 1.5)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--incremental", type=int, default=10_000, help="contacts touched")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    touched = min(args.incremental, args.contacts)
    with tempfile.TemporaryDirectory() as tmp:
        url = database(args.database_url, Path(tmp), "bench_scoring")
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        t = time.perf_counter()
        setup = seed_organisation(factory)
        plan = Plan.make(args.seed, args.contacts)
        small_tables(factory, plan, setup)
        tables = big_tables(plan, setup, engine.dialect.name)
        counts = load_tables(engine, tables, sequenced=SEQUENCED)
        model_ids = make_models(factory, setup)
        FLOOR.create(engine)
        log(f"seeded {args.contacts:,} contacts in {time.perf_counter() - t:.1f} s")
        statements = Statements(engine)
        phases = [
            run_phase("full rescore (first scoring)", engine, statements, model_ids, setup, NOW)
        ]
        wrong = disagreements(engine)
        phases.append(
            run_phase("full rescore again (nothing changed)", engine, statements, model_ids,
                      setup, AGAIN)
        )  # fmt: skip
        ids = new_opens(factory, plan, touched)
        phases.append(
            run_phase(f"incremental ({touched:,} contacts, 1 open each)", engine, statements,
                      model_ids, setup, LATER, ids)
        )  # fmt: skip
        wrong += disagreements(engine)
        engine.dispose()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    report(backend, args.contacts, counts, phases)
    print(f"  scores agree: {'no' if wrong else 'yes'}" + (f" ({wrong:,} differ)" if wrong else ""))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
