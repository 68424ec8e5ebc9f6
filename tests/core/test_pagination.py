"""Keyset paging: a page past a cursor starts where the cursor points."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core.pagination import page_statement


def _plan(db: Session, *, descending: bool) -> str:
    stmt = page_statement(
        select(Contact),
        id_column=Contact.id,
        key=Contact.modified_at,
        descending=descending,
        after=True,
        limit=50,
    )
    compiled = stmt.compile(db.get_bind())
    # The values do not change the plan's shape; a string is what both drivers take as is.
    values = compiled.construct_params({"page_after_key": "2026-01-01", "page_after_id": 1000})
    args: Any = values
    if compiled.positiontup:  # SQLite's "?" parameters
        args = tuple(values[name] for name in compiled.positiontup)
    conn = db.connection()
    if conn.dialect.name == "postgresql":
        # A table this small is cheapest read whole: ask for the plan a big one gets.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", args))
    return "\n".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args))


def test_a_page_past_a_cursor_reads_the_index_from_the_cursor_on(db: Session) -> None:
    # Without a range condition the index was read from its first row on every page and the
    # rows before the cursor filtered out: page 400 of a list took 60 times page 1's time.
    for descending in (True, False):
        plan = _plan(db, descending=descending)
        sign = "<" if descending else ">"
        if db.get_bind().dialect.name == "postgresql":
            assert "Index Cond: (modified_at " + sign + "=" in plan, plan
        else:
            assert "USING INDEX ix_contact_modified (modified_at" + sign in plan, plan
