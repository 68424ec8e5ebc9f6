"""The matching service (SPEC B8): one record per person however many arrive at once, keys
that follow BU moves and the scoping switch, and rules compared alike in Python and SQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, DuplicateRule
from gatherly.contact.schemas import ContactCreate
from gatherly.core.changes import DataChange
from gatherly.org import service as org_service
from tests import factories as f

THREADS = 12


def _race(factory: sessionmaker[Session], work: Callable[[Session, int], Any]) -> list[Any]:
    """Run ``work`` in THREADS threads released at the same moment, each in its own session
    and transaction; returns each one's result or exception."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(i: int) -> None:
        with factory() as db:
            barrier.wait()
            try:
                results[i] = work(db, i)
                db.commit()
            except Exception as exc:  # collected: the test says which are expected
                db.rollback()
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _count(db: Session, **where: Any) -> int:
    db.expire_all()
    stmt = select(func.count()).select_from(Contact)
    for name, value in where.items():
        stmt = stmt.where(getattr(Contact, name) == value)
    return db.scalar(stmt) or 0


def _owner(db: Session) -> Any:
    sales = f.bu(db, "Sales")
    owner = f.user(db, "owner", sales, "Marketer")
    db.commit()
    return owner


def test_the_same_new_person_arriving_many_times_at_once_is_made_once(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    owner = _owner(db)
    for round_ in range(3):
        email = f"same{round_}@example.com"

        def work(s: Session, i: int, email: str = email) -> bool:
            return matching.intake(
                s,
                record_type="contact",
                values={"email": email, "first_name": f"T{i}"},
                owner_type="user",
                owner_id=owner.id,
                bu_id=owner.business_unit_id,
            ).created

        results = _race(session_factory, work)
        assert sorted(results) == [False] * (THREADS - 1) + [True], results
        assert _count(db, email=email) == 1


def test_users_creating_the_same_contact_at_once_get_one_and_409s(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    owner = _owner(db)
    principal = f.principal(db, owner)

    def work(s: Session, _i: int) -> int:
        body = ContactCreate(email="api@example.com", last_name="Api")
        return contact_service.create(
            db=s, principal=principal, kind=contact_service.CONTACT, record_in=body
        ).id

    results = _race(session_factory, work)
    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, contact_service.DuplicateFound)]
    assert len(made) == 1, results
    assert len(refused) == THREADS - 1, results
    assert all(r.extra["matches"][0]["id"] == made[0] for r in refused)
    assert _count(db, email="api@example.com") == 1


def test_a_rule_without_a_stored_key_locks_its_key_while_it_looks(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    owner = _owner(db)
    builtin = db.scalars(
        select(DuplicateRule).where(DuplicateRule.builtin, DuplicateRule.record_type == "contact")
    ).one()
    matching.save_rule(db=db, principal=None, rule_id=builtin.id, published=False)
    matching.save_rule(
        db=db,
        principal=None,
        name="Name and company",
        record_type="contact",
        conditions=[{"field": "last_name"}, {"field": "company", "match": "first", "length": 4}],
        published=True,
    )
    db.commit()

    def work(s: Session, i: int) -> bool:
        return matching.intake(
            s,
            record_type="contact",
            # No email at all, and the company differs after its first four letters.
            values={"last_name": "Lovelace", "company": f"ACME {i}"},
            owner_type="user",
            owner_id=owner.id,
            bu_id=owner.business_unit_id,
        ).created

    results = _race(session_factory, work)
    assert sorted(results) == [False] * (THREADS - 1) + [True], results
    assert _count(db, last_name="Lovelace") == 1


def test_bulk_intakes_racing_over_the_same_people_make_each_once(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    owner = _owner(db)
    people = [f"p{i}@example.com" for i in range(300)]

    def work(s: Session, i: int) -> list[int | None]:
        mine = people[i * 10 :] + people[: i * 10]  # each thread in its own order
        rows = [
            matching.Incoming("user", owner.id, owner.business_unit_id, {"email": e}) for e in mine
        ]
        got = matching.intake_many(s, record_type="contact", rows=rows)
        return sorted(i for i in got.ids if i is not None)

    results = _race(session_factory, work)
    assert all(not isinstance(r, Exception) for r in results), results
    assert _count(db) == len(people)
    assert all(r == results[0] for r in results)  # everyone got the same records


def test_keys_follow_a_user_moving_bu_with_scoping_on(db: Session) -> None:
    owner = _owner(db)
    support = f.bu(db, "Support")
    other = f.user(db, "other", support, "Marketer")
    org_service.set_feature(db=db, name=org_service.BU_SCOPING, enabled=True, by_user_id=None)
    made = [
        matching.intake(
            db,
            record_type="contact",
            values={"email": "ada@example.com"},
            owner_type="user",
            owner_id=who.id,
            bu_id=who.business_unit_id,
        )
        for who in (owner, other)
    ]
    assert all(m.created for m in made)  # different BUs: two people
    keys = {m.record.id: m.record.match_key for m in made}
    assert keys == {
        made[0].record.id: f"{owner.business_unit_id}|ada@example.com",
        made[1].record.id: f"{support.id}|ada@example.com",
    }
    # The owner moves to Support with their records: the oldest there holds the key.
    org_service.move_user(db=db, user_id=owner.id, business_unit_id=support.id)
    db.expire_all()
    assert db.get_one(Contact, made[0].record.id).match_key == f"{support.id}|ada@example.com"
    assert db.get_one(Contact, made[1].record.id).match_key is None
    # Now the same person in Support matches the oldest.
    again = matching.intake(
        db,
        record_type="contact",
        values={"email": "ada@example.com"},
        owner_type="user",
        owner_id=other.id,
        bu_id=support.id,
    )
    assert (again.created, again.record.id) == (False, made[0].record.id)


@pytest.mark.parametrize(
    ("cond", "a", "b", "same"),
    [
        ({"field": "last_name"}, "Müller", " MÜLLER ", True),
        ({"field": "last_name", "ignore_case": False}, "Müller", "MÜLLER", False),
        ({"field": "first_name", "match": "first", "length": 3}, "Alexander", "alexandra", True),
        ({"field": "phone", "match": "last", "length": 4}, "+49 30 1234", "030-1234", True),
        ({"field": "phone", "match": "last", "length": 4}, "+49 30 1234", "030-1235", False),
        ({"field": "company", "match": "first", "length": 10}, "ACME", "acme", True),
    ],
)
def test_a_rule_matches_in_sql_what_it_says_in_words(
    db: Session, cond: dict[str, Any], a: str, b: str, same: bool
) -> None:
    owner = _owner(db)
    rule = matching.Rule(1, "r", "contact", (cond,), True, False)
    stored = f.contact(db, owner, **{cond["field"]: a})
    found = matching.find(
        db,
        record_type="contact",
        values={cond["field"]: b},
        bu_id=owner.business_unit_id,
        rules=[rule],
    )
    assert [r.id for r in found] == ([stored.id] if same else [])
    assert (rule.code({cond["field"]: a}) == rule.code({cond["field"]: b})) is same
    # A blank value never matches while blanks are ignored.
    assert rule.code({cond["field"]: "  "}) is None
    assert "same" in rule.describe()


def test_a_bulk_intake_matches_updates_and_makes_and_tells_the_segments(db: Session) -> None:
    owner = _owner(db)
    kept = matching.intake(
        db,
        record_type="contact",
        values={"email": "kept@example.com", "first_name": "Kept", "company": "Old"},
        owner_type="user",
        owner_id=owner.id,
        bu_id=owner.business_unit_id,
    ).record
    db.execute(delete(DataChange))
    rows = [
        matching.Incoming(
            "user", owner.id, owner.business_unit_id, {"email": e, "first_name": n, "company": c}
        )
        for e, n, c in (
            ("kept@example.com", "", "New"),  # blank first name: kept
            ("fresh@example.com", "Fresh", ""),
            ("fresh@example.com", "Fresher", ""),  # the same person again in the batch
            (None, "Nobody", ""),  # no email: nothing to match by
        )
    ]
    got = matching.intake_many(
        db,
        record_type="contact",
        rows=rows,
        update_fields=("first_name", "company"),
        extra={"origin": "form"},
    )
    assert got.ids[0] == kept.id
    assert got.ids[1] == got.ids[2] is not None
    assert got.ids[3] is None
    assert got.created == [False, True, False, False]
    db.expire_all()
    assert (db.get_one(Contact, kept.id).first_name, db.get_one(Contact, kept.id).company) == (
        "Kept",
        "New",
    )
    fresh = db.get_one(Contact, got.ids[1])
    assert (fresh.first_name, fresh.origin, fresh.match_key) == (
        "Fresher",
        "form",
        "*|fresh@example.com",
    )
    noted = db.scalars(select(DataChange.contact_ids)).all()
    assert noted == [sorted([kept.id, fresh.id])]
