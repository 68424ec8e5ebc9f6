"""Assertions shared by the access-engine tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access.engine import can, load_principal, readable
from gatherly.access.levels import Privilege
from gatherly.contact.models import Contact
from gatherly.org.models import User


def visible(db: Session, user: User, privilege: Privilege = Privilege.READ) -> set[int]:
    """Contact ids the SQL predicate selects, after checking count and can() agree with it."""
    principal = load_principal(db, user.id)
    predicate = readable(principal, "contact", privilege)
    ids = set(db.execute(select(Contact.id).where(predicate)).scalars())
    count = db.execute(select(func.count()).select_from(Contact).where(predicate)).scalar_one()
    assert count == len(ids), "count and list disagree"
    by_can = {
        c.id
        for c in db.execute(select(Contact)).scalars()
        if can(db, principal, privilege, "contact", c)
    }
    assert by_can == ids, f"can() {sorted(by_can)} != readable() {sorted(ids)}"
    return ids
