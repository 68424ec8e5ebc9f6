"""Assertions shared by the access-engine tests."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal, can, count, get, scope
from gatherly.access.levels import Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.org.directory import load_principal
from gatherly.org.models import User


def selected(db: Session, principal: Principal, privilege: Privilege | str) -> set[int]:
    """Contact ids the engine's SQL selects, checked to agree across every query shape.

    The list predicate, a lookup of each record by id, and the split count are three SQL
    forms of one rule; any disagreement among them fails here.
    """
    listed = set(
        db.execute(
            scope(
                select(Contact.id), principal=principal, record_type="contact", privilege=privilege
            )
        ).scalars()
    )
    looked_up = set()
    for contact_id in db.execute(select(Contact.id)).scalars():
        found = get(
            db,
            principal=principal,
            record_type="contact",
            record_id=contact_id,
            privilege=privilege,
        )
        if found is not None:
            looked_up.add(contact_id)
    assert looked_up == listed, f"lookup {sorted(looked_up)} != list {sorted(listed)}"
    counted = count(
        db, select(Contact), principal=principal, record_type="contact", privilege=privilege
    )
    assert counted == len(listed), f"count {counted} != {len(listed)} listed"
    counted_all = count(db, principal=principal, record_type="contact", privilege=privilege)
    assert counted_all == len(listed), f"unfiltered count {counted_all} != {len(listed)} listed"
    if Privilege(privilege) == Privilege.READ:
        paged = paged_ids(db, principal)
        assert paged == listed, f"the API's pages {sorted(paged)} != {sorted(listed)} listed"
    return listed


def paged_ids(db: Session, principal: Principal) -> set[int]:
    """Contact ids the API's list returns, page by page (its statement is cached per
    viewer and page shape, so this also checks a cached statement follows role changes)."""
    out: list[int] = []
    cursor = None
    while True:
        page = contact_service.list_records(
            db=db,
            principal=principal,
            kind=contact_service.CONTACT,
            flt=contact_service.ListFilter(),
            sort="-id",
            cursor=cursor,
            limit=3,
        )
        out += [c.id for c in page.items]
        if page.next_cursor is None:
            assert len(out) == len(set(out)), f"a page repeated a contact: {out}"
            return set(out)
        cursor = page.next_cursor


def visible(db: Session, user: User, privilege: Privilege = Privilege.READ) -> set[int]:
    """Contact ids the SQL selects, after checking every shape and can() agree with it."""
    principal = load_principal(db, user.id)
    ids = selected(db, principal, privilege)
    by_can = {
        c.id
        for c in db.execute(select(Contact)).scalars()
        if can(db, principal, privilege, "contact", c)
    }
    assert by_can == ids, f"can() {sorted(by_can)} != readable() {sorted(ids)}"
    return ids
