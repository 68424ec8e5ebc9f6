"""``core.db.after_commit``: what counts only stored work runs on commit, never on rollback."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.db import after_commit


def test_runs_once_on_commit_and_never_after_a_rollback(
    session_factory: sessionmaker[Session],
) -> None:
    calls: list[str] = []
    with session_factory() as db:
        db.execute(text("SELECT 1"))
        after_commit(db, lambda: calls.append("rolled back"))
        db.rollback()
        db.execute(text("SELECT 1"))
        after_commit(db, lambda: calls.append("committed"))
        assert calls == []  # not before the commit
        db.commit()
        db.execute(text("SELECT 1"))
        db.commit()  # a later commit does not run it again
    assert calls == ["committed"]
