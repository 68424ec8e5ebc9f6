"""Two imports of the same people at once, in opposite orders: they take their people in
one order (database locks on their emails, sorted), so neither deadlocks the other — both
finish, every person is updated, nobody is created twice (PostgreSQL: SQLite runs one
writer at a time)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import imports, matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from tests import factories as f
from tests.api.conftest import Org

PEOPLE = 150


def _people(company: str, *, new: int = 0) -> list[dict[str, str]]:
    return [
        {"email": f"p{i}@locks.example", "last_name": f"Person {i}", "company": company}
        for i in range(PEOPLE + new)
    ]


def test_imports_of_the_same_people_in_opposite_orders_both_finish(
    org: Org, session_factory: sessionmaker[Session], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: its imports never cross")
    with session_factory() as db:
        principal = f.principal(db, org.users["marketer"])
        imports.import_csv(
            db=db,
            principal=principal,
            kind=contact_service.CONTACT,
            text=f.csv_text(_people("Old")),
        )
        db.commit()
    files = {
        "forward": _people("Forward", new=20),
        "backward": list(reversed(_people("Backward", new=20))),
    }
    start = threading.Barrier(len(files))
    failures: dict[str, BaseException] = {}
    outcomes: dict[str, set[str]] = {}

    def run(name: str) -> None:
        try:
            with session_factory() as db:
                principal = f.principal(db, org.users["marketer"])
                db.commit()
                start.wait(10)
                report = imports.import_csv(
                    db=db,
                    principal=principal,
                    kind=contact_service.CONTACT,
                    text=f.csv_text(files[name]),
                )
                db.commit()
                outcomes[name] = {row.outcome for row in report.rows}
        except BaseException as exc:  # reported below
            failures[name] = exc

    threads = [threading.Thread(target=run, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert all(outcome <= {"matched", "created"} for outcome in outcomes.values()), outcomes
    with session_factory() as db:
        emails = select(Contact.email).where(Contact.email.like("%@locks.example"))
        assert db.scalar(select(func.count()).select_from(emails.subquery())) == PEOPLE + 20
        companies = set(
            db.scalars(select(Contact.company).where(Contact.email.like("%@locks.example")))
        )
        # one import ran after the other: every person has its company, not a mixture
        assert companies in ({"Forward"}, {"Backward"}), companies


def test_claims_are_bounded_however_many_people(
    session_factory: sessionmaker[Session], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    with session_factory() as db:
        emails = [f"p{i}@claims.example" for i in range(5000)]
        matching.hold(db, record_type="contact", emails=emails)
        held = db.scalar(
            text(
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        )
        db.rollback()
        assert 900 < held <= matching.CLAIMS  # 5,000 people share the claims


def test_claims_held_are_not_asked_for_again_in_the_same_transaction(
    session_factory: sessionmaker[Session], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        sent.append(statement)

    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    with session_factory() as db:
        bind = db.get_bind()
        event.listen(bind, "before_cursor_execute", note)
        try:
            matching.hold(db, record_type="contact", emails=["a@claims.example"])
            matching.hold(db, record_type="contact", emails=["A@claims.example "])  # the same
            assert sum("pg_advisory_xact_lock" in s for s in sent) == 1
            matching.hold(db, record_type="contact", emails=["b@claims.example"])
            assert db.scalar(text(held)) == 2
            db.rollback()  # the locks go with the transaction: the next one claims afresh
            matching.hold(db, record_type="contact", emails=["a@claims.example"])
            assert db.scalar(text(held)) == 1
            db.rollback()
        finally:
            event.remove(bind, "before_cursor_execute", note)
