"""Benchmark P4: matching arriving people against the contacts already here (issue 17).

1,000,000 contacts in 10 business units (BU scoping on, so matching is BU-aware), and
100,000 submissions generated with their truth:

  55 %  people already here, in the same BU (some with their email in other case or with
        spaces: the normalised email is what matches) → must match that contact
  10 %  people already here but arriving in another BU → must make a new contact there
  30 %  new people → must make a new contact
   5 %  a new person arriving twice in the batch → one new contact for both

  matching  ``gatherly.contact.matching.intake_many`` (the service every bulk entry point
            uses), 1,000 submissions per transaction, updating names and company when the
            submission has them
  floor     the hand-written SQL upsert over the same match key (``INSERT … ON CONFLICT
            (match_key) DO UPDATE … RETURNING id``), the same batches and the same
            normalised keys, on a copy of the same table

Printed: seconds for each, matching / floor (target ≤ 1.5), and precision and recall of
the matches against the generator's truth (target 1.0 both). Emails are normalised
(trimmed, case-folded) before either side starts, as the forms' and the API's validation
does before matching.

    .venv/bin/python bench/matching.py                      # SQLite, 1M contacts
    .venv/bin/python bench/matching.py --contacts 50000 --submissions 5000   # a smoke run
    .venv/bin/python bench/matching.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_matching``
(PostgreSQL), made anew for every run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbench import database, log
from sqlalchemy import case, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import matching
from gatherly.contact.models import Contact
from gatherly.core import migrate
from gatherly.core.db import Base, make_engine, make_session_factory, utcnow
from gatherly.org import defaults
from gatherly.org import service as org_service

BUS = 10
BATCH = 1000
FIELDS = ("first_name", "last_name", "company")


@dataclass(frozen=True)
class Submission:
    email: str  # as typed
    bu: int  # index of the BU it arrives in
    first_name: str
    truth: int | str  # the contact index it must match, or a name for a new person


def generate(contacts: int, n: int, seed: int = 17) -> list[Submission]:
    rng = random.Random(seed)
    out: list[Submission] = []
    for j in range(n):
        roll = rng.random()
        if roll < 0.55:
            i = rng.randrange(contacts)
            email = f"person{i}@bench.example"
            if j % 7 == 0:
                email = f"  Person{i}@Bench.EXAMPLE "
            out.append(Submission(email, i % BUS, f"Again{i}", i))
        elif roll < 0.65:
            i = rng.randrange(contacts)
            bu = (i % BUS + 1 + rng.randrange(BUS - 1)) % BUS
            out.append(Submission(f"person{i}@bench.example", bu, "Elsewhere", f"x{i}@{bu}"))
        elif roll < 0.95:
            out.append(Submission(f"new{j}@bench.example", rng.randrange(BUS), "New", f"n{j}"))
        else:
            bu = rng.randrange(BUS)
            for _ in range(2):
                out.append(Submission(f"twice{j}@bench.example", bu, "Twice", f"t{j}"))
    return out[:n]


def seed_database(url: str, contacts: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Ten BUs with one owner each, scoping on, and ``contacts`` contacts holding their keys
    (contact i in BU i % 10). Returns the owners (user id, BU id) and the contact ids."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db:
        defaults.ensure_defaults(db)
        root = org_service.get_root(db=db)
        owners = []
        for b in range(BUS):
            bu = org_service.create_bu(db=db, name=f"BU {b}", parent_id=root.id)
            user = org_service.create_user(db=db, username=f"owner{b}", business_unit_id=bu.id)
            owners.append((user.id, bu.id))
        org_service.set_feature(db=db, name=org_service.BU_SCOPING, enabled=True, by_user_id=None)
        db.commit()
        now = utcnow()
        table = Contact.__table__
        for start in range(0, contacts, 20000):
            rows = []
            for i in range(start, min(start + 20000, contacts)):
                user_id, bu_id = owners[i % BUS]
                email = f"person{i}@bench.example"
                rows.append(
                    {
                        "email": email,
                        "first_name": f"Person{i}",
                        "last_name": "Bench",
                        "company": f"Company {i % 97}",
                        "job_title": "",
                        "phone": "",
                        "custom": {},
                        "owner_type": "user",
                        "owner_id": user_id,
                        "owning_bu_id": bu_id,
                        "created_at": now,
                        "modified_at": now,
                        "origin": "manual",
                        "match_key": f"{bu_id}|{email}",
                    }
                )
            db.execute(table.insert(), rows)
            db.commit()
        ids = list(db.scalars(select(Contact.id).order_by(Contact.id)))
    engine.dispose()
    return owners, ids


FLOOR = Contact.__table__.to_metadata(Base.metadata, name="contact_floor")
for _index in FLOOR.indexes:  # the same indexes as contact's, under names of their own
    _index.name = str(_index.name).replace("contact", "contact_floor")
FLOOR.primary_key.name = "pk_contact_floor"


def copy_table(url: str) -> None:
    """``contact_floor``: the contact table's columns, rows and unique key, for the floor to
    write into."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS contact_floor"))
    FLOOR.create(engine)
    with engine.begin() as conn:
        columns = ", ".join(c.name for c in FLOOR.columns)
        conn.execute(text(f"INSERT INTO contact_floor ({columns}) SELECT {columns} FROM contact"))
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('contact_floor', 'id'), "
                    "(SELECT max(id) FROM contact_floor))"
                )
            )
            conn.execute(text("ANALYZE contact_floor"))
            conn.execute(text("ANALYZE contact"))
    engine.dispose()


def normalised(subs: list[Submission]) -> list[str]:
    return [s.email.strip().casefold() for s in subs]


def run_matching(
    factory: sessionmaker[Session], subs: list[Submission], owners: list[tuple[int, int]]
) -> list[int | None]:
    emails = normalised(subs)
    ids: list[int | None] = []
    for start in range(0, len(subs), BATCH):
        rows = [
            matching.Incoming(
                "user",
                owners[s.bu][0],
                owners[s.bu][1],
                {"email": e, "first_name": s.first_name, "last_name": "", "company": ""},
            )
            for s, e in zip(subs[start : start + BATCH], emails[start : start + BATCH], strict=True)
        ]
        with factory() as db:
            result = matching.intake_many(
                db, record_type="contact", rows=rows, update_fields=FIELDS, extra={"origin": "form"}
            )
            db.commit()
        ids += result.ids
    return ids


def run_floor(
    factory: sessionmaker[Session], subs: list[Submission], owners: list[tuple[int, int]]
) -> list[int | None]:
    """The same work as one hand-written upsert per batch, writing the same rows."""
    table = FLOOR
    emails = normalised(subs)
    ids: list[int | None] = []
    with factory() as db:
        dialect = db.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = ins.on_conflict_do_update(
        index_elements=["match_key"],
        set_={
            **{f: case((ins.excluded[f] != "", ins.excluded[f]), else_=table.c[f]) for f in FIELDS},
            "modified_at": ins.excluded.modified_at,
        },
    ).returning(table.c.match_key, table.c.id)
    for start in range(0, len(subs), BATCH):
        now = utcnow()
        batch = subs[start : start + BATCH]
        keys = [
            f"{owners[s.bu][1]}|{e}"
            for s, e in zip(batch, emails[start : start + BATCH], strict=True)
        ]
        rows = {}
        for s, key, e in zip(batch, keys, emails[start : start + BATCH], strict=True):
            rows[key] = {
                "email": e,
                "first_name": s.first_name,
                "last_name": "",
                "company": "",
                "job_title": "",
                "phone": "",
                "country": None,
                "custom": {},
                "owner_type": "user",
                "owner_id": owners[s.bu][0],
                "owning_bu_id": owners[s.bu][1],
                "created_at": now,
                "modified_at": now,
                "origin": "form",
                "match_key": key,
            }
        with factory() as db:
            got = {}
            ordered = [rows[k] for k in sorted(rows)]
            for chunk in range(0, len(ordered), 500):
                got.update(dict(db.execute(stmt, ordered[chunk : chunk + 500]).all()))
            db.commit()
        ids += [got[k] for k in keys]
    return ids


def score(
    subs: list[Submission], ids: list[int | None], contact_ids: list[int]
) -> tuple[float, float]:
    """Precision and recall of "these two are the same person" over the submissions: pairs
    (submission, existing contact) and (submission, submission) the truth says match."""
    existing = set(contact_ids)
    tp = fp = fn = 0
    new_ids: dict[str, int | None] = {}
    for s, got in zip(subs, ids, strict=True):
        if isinstance(s.truth, int):
            want: int | None = contact_ids[s.truth]
        else:
            want = new_ids.setdefault(s.truth, got if got not in existing else None)
        matched_existing = got in existing
        if isinstance(s.truth, int):
            tp += got == want
            fn += got != want
        elif matched_existing:
            fp += 1
        elif got != want:
            fn += 1  # a second arrival of a new person that made another record
        else:
            tp += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def settle(engine: Any) -> None:
    """Start each side alike: SQLite's write-ahead log folded back into the database (so
    neither pays for the other's checkpoint), PostgreSQL's statistics fresh."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            conn.execute(text("ANALYZE contact"))
            conn.execute(text("ANALYZE contact_floor"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = database(args.database_url, Path(tmp), "bench_matching")
        t = time.perf_counter()
        owners, contact_ids = seed_database(url, args.contacts)
        copy_table(url)
        log(f"seeded {args.contacts:,} contacts in {time.perf_counter() - t:.1f} s")
        subs = generate(args.contacts, args.submissions)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        settle(engine)
        t = time.perf_counter()
        floor_ids = run_floor(factory, subs, owners)
        floor = time.perf_counter() - t
        settle(engine)
        t = time.perf_counter()
        ids = run_matching(factory, subs, owners)
        took = time.perf_counter() - t
        precision, recall = score(subs, ids, contact_ids)
        fp_, fr_ = score(subs, floor_ids, contact_ids)
        with factory() as db:
            made = db.scalar(text("SELECT count(*) FROM contact")) - len(contact_ids)
        engine.dispose()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{backend}: {args.submissions:,} submissions against {args.contacts:,} contacts "
        f"({made:,} made)\n"
        f"  matching  {took:7.2f} s   precision {precision:.4f}  recall {recall:.4f}\n"
        f"  floor     {floor:7.2f} s   precision {fp_:.4f}  recall {fr_:.4f}\n"
        f"  matching / floor = {took / floor:.2f}   (target <= 1.5)"
    )


if __name__ == "__main__":
    main()
