from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access.engine import can, readable
from gatherly.contact.models import Contact
from tests import factories as f


def test_bu_level_reader_sees_own_bu_only(db: Session) -> None:
    a = f.bu(db, "A")
    b = f.bu(db, "B")
    ua = f.user(db, "ua", a, "Marketer")
    ub = f.user(db, "ub", b, "Marketer")
    c1 = f.contact(db, ua)
    c2 = f.contact(db, ub)
    p = f.principal(db, ua)
    ids = set(db.execute(select(Contact.id).where(readable(p, "contact"))).scalars())
    assert ids == {c1.id}
    assert can(db, p, "read", "contact", c1)
    assert not can(db, p, "read", "contact", c2)
    assert db.execute(select(func.count()).select_from(Contact)).scalar_one() == 2
