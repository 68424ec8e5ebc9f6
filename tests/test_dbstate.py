"""The test databases' restore (tests/dbstate.py) puts back exactly what it took, also when
it leaves unchanged tables alone (PostgreSQL, by fingerprint)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.audit import AuditEntry
from gatherly.org.models import RolePrivilege, SecurityRole
from tests import factories as f
from tests.dbstate import Snapshot


def test_a_restore_puts_back_every_row_whatever_changed(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    before = Snapshot.take(engine)
    with session_factory() as db:
        sales = f.bu(db, "Sales")
        f.contact(db, f.user(db, "u", sales, "Marketer"), email="x@example.com")
        db.execute(insert(AuditEntry).values(action="test.x"))
        db.commit()
    before.restore(engine)
    assert Snapshot.take(engine).rows == before.rows
    # A built-in role renamed and one of its privileges gone: both tables come back, and so
    # do the rows that reference the role.
    with session_factory() as db:
        role_id = db.scalars(
            SecurityRole.__table__.select().with_only_columns(SecurityRole.id)
        ).first()
        db.execute(update(SecurityRole).where(SecurityRole.id == role_id).values(name="Renamed"))
        db.execute(delete(RolePrivilege).where(RolePrivilege.role_id == role_id))
        db.commit()
    before.restore(engine)
    assert Snapshot.take(engine).rows == before.rows
