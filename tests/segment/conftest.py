"""The reference's acceptance organisation (bu-security §7) for segment tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.engine import Principal
from gatherly.contact.models import Contact
from gatherly.core.changes import DataChange
from gatherly.org import service as org
from gatherly.org.models import User
from gatherly.segment import jobs
from gatherly.segment import service as seg
from tests import factories as f


@dataclass
class Org:
    """Root → {A → {A1}, B}; uA Marketer in A, uA_deep Manager in A, uOrg admin; c1 in A,
    c2 in A1, c3 in B (all from Japan)."""

    db: Session
    factory: sessionmaker[Session]
    users: dict[str, User]
    contacts: dict[str, Contact]
    bus: dict[str, int]

    def p(self, name: str) -> Principal:
        return f.principal(self.db, self.users[name])

    def ids(self, *names: str) -> set[int]:
        return {self.contacts[n].id for n in names}

    def scoping(self, on: bool) -> None:
        org.set_feature(db=self.db, name=org.BU_SCOPING, enabled=on, by_user_id=None)
        self.db.commit()

    def segment(self, who: str, tree: Any = None, **kw: Any) -> int:
        s = seg.create_segment(
            db=self.db,
            principal=self.p(who),
            name=kw.pop("name", "S"),
            criteria=tree if tree is not None else {"contact": {"country": "JP"}},
            **kw,
        )
        self.db.commit()
        return s.id

    def share_with_everyone(self, segment_id: int) -> None:
        """Share a segment (read) with the whole organisation, so every viewer opens it."""
        f.share_with_organization(self.db, "segment", segment_id)

    def drain(self) -> jobs.DrainReport:
        self.db.commit()
        report = jobs.process_changes(self.factory)
        self.db.expire_all()
        return report

    def visible(self, who: str, segment_id: int) -> set[int]:
        m = seg.members(db=self.db, principal=self.p(who), segment_id=segment_id, limit=500)
        assert m.visible == len(m.page.items)  # the count is the number of listed members
        return {c.id for c in m.page.items}


@pytest.fixture
def acme(db: Session, session_factory: sessionmaker[Session]) -> Org:
    a = f.bu(db, "A")
    a1 = f.bu(db, "A1", a)
    b = f.bu(db, "B")
    owner_a = f.user(db, "owner_a", a, "Marketing Assistant")
    owner_a1 = f.user(db, "owner_a1", a1, "Marketing Assistant")
    owner_b = f.user(db, "owner_b", b, "Marketing Assistant")
    users = {
        "uA": f.user(db, "uA", a, "Marketer"),
        "uA_deep": f.user(db, "uA_deep", a, "Marketing Manager"),
        "uOrg": f.user(db, "uOrg", a1, "Marketing Administrator"),
        "uB": f.user(db, "uB", b, "Marketer"),
    }
    contacts = {
        "c1": f.contact(db, owner_a, email="c1@x.example", country="JP", last_name="One"),
        "c2": f.contact(db, owner_a1, email="c2@x.example", country="JP", last_name="Two"),
        "c3": f.contact(db, owner_b, email="c3@x.example", country="JP", last_name="Three"),
    }
    # The set-up's changes (roles given) were handled before any segment existed.
    db.execute(delete(DataChange))
    db.commit()
    return Org(
        db,
        session_factory,
        users,
        contacts,
        {"A": a.id, "A1": a1.id, "B": b.id, "root": org.get_root(db=db).id},
    )
