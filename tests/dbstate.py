"""Database states for tests: take every row once, put them back in a few milliseconds.

A clean organisation (root BU and built-in roles) costs 11 ms to build on SQLite and 25 ms
on PostgreSQL through ``ensure_defaults``; putting its rows back costs a few. A world built
through the services (a synced tenant, a criteria fixture) costs far more, and the tests
that read it share one build per process and backend through :func:`cached`.

A restore leaves the database exactly as it was when the snapshot was taken: the same rows
with the same ids, and on PostgreSQL sequences that continue after the highest id, as
SQLite does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, bindparam, func, select, text, update

import gatherly.models

T = TypeVar("T")
# The security epoch goes last: triggers change it as the other tables are restored.
TABLES: list[Table] = sorted(
    gatherly.models.Base.metadata.sorted_tables, key=lambda t: t.name == "security_epoch"
)
_SERIAL = [t for t in TABLES if "id" in t.c and t.c.id.autoincrement is not False]


@dataclass(frozen=True)
class Snapshot:
    """Every row of every table, in an order that satisfies the foreign keys; on PostgreSQL
    also a fingerprint (md5 of the rows as text) of each table that has rows."""

    rows: dict[str, list[dict[str, Any]]]
    fingerprints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def take(cls, engine: Engine) -> Snapshot:
        with engine.connect() as conn:
            rows = {t.name: [dict(r) for r in conn.execute(select(t)).mappings()] for t in TABLES}
            found = {name: r for name, r in rows.items() if r}
            prints = _fingerprints(conn, list(found))
        return cls(found, prints)

    def _unchanged(self, conn: Connection) -> set[str]:
        """Tables whose rows are still the snapshot's and that reference no table that must
        be restored (the built-in roles' 700 privilege rows are most of a restore's time —
        and on SQLite each fires the security-epoch trigger — and most tests never touch
        them)."""
        if not self.fingerprints:
            return set()
        now = _fingerprints(conn, list(self.fingerprints))
        kept = {name for name, value in self.fingerprints.items() if now.get(name) == value}
        kept.discard("security_epoch")  # restored last, after the triggers
        changed = True
        while changed:
            changed = False
            for table in TABLES:
                if table.name in kept and any(
                    fk.column.table.name not in kept and fk.column.table.name != table.name
                    for fk in table.foreign_keys
                ):
                    kept.discard(table.name)
                    changed = True
        return kept

    def restore(self, engine: Engine) -> None:
        """Empty every table and insert the snapshot's rows (ids included); a table still as
        it was (PostgreSQL, by fingerprint) is left alone."""
        with engine.begin() as conn:
            kept = self._unchanged(conn)
            # The BU tree references itself: cut it before deleting, restore it after.
            # One round trip on PostgreSQL, which takes several statements in one.
            empty = [
                f'DELETE FROM "{t.name}"'  # noqa: S608 - our names
                for t in reversed(TABLES)
                if t.name not in kept and t.name != "security_epoch"
            ]
            cut = [] if "business_unit" in kept else ["UPDATE business_unit SET parent_id = NULL"]
            _script(conn, [*cut, *empty])
            for table in TABLES:
                found = self.rows.get(table.name)
                if table.name == "security_epoch":  # last, whatever the triggers did
                    conn.execute(table.delete())
                if not found or table.name in kept:
                    continue
                if table.name == "business_unit":
                    conn.execute(table.insert(), [{**r, "parent_id": None} for r in found])
                    parents = [r for r in found if r["parent_id"] is not None]
                    if parents:
                        conn.execute(
                            update(table)
                            .where(table.c.id == bindparam("b_id"))
                            .values(parent_id=bindparam("b_parent")),
                            [{"b_id": r["id"], "b_parent": r["parent_id"]} for r in parents],
                        )
                else:
                    conn.execute(table.insert(), found)
            if engine.dialect.name == "postgresql":
                _continue_sequences(conn, self.rows)


def _fingerprints(conn: Connection, names: list[str]) -> dict[str, str]:
    """Each table's rows as one text (PostgreSQL: its md5), in one query."""
    if not names:
        return {}
    if conn.dialect.name == "postgresql":
        parts = [
            f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608
            f'FROM "{name}" t)'
            for name in names
        ]
    else:
        columns = {t.name: [c.name for c in t.columns] for t in TABLES}
        parts = [
            "(SELECT coalesce(group_concat(r, '|'), '') FROM (SELECT "  # noqa: S608
            + " || ',' || ".join(f'quote("{c}")' for c in columns[name])
            + f' AS r FROM "{name}" ORDER BY r))'
            for name in names
        ]
    values = conn.execute(text(f"SELECT {', '.join(parts)}")).one()
    return dict(zip(names, values, strict=True))


def _continue_sequences(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Each serial id continues after the restored rows (at 1 for an empty table)."""
    calls = []
    for t in _SERIAL:
        top = max((r["id"] for r in rows.get(t.name, [])), default=0)
        if top:
            calls.append(f"setval(pg_get_serial_sequence('{t.name}', 'id'), {top}, true)")
        else:
            calls.append(f"setval(pg_get_serial_sequence('{t.name}', 'id'), 1, false)")
    conn.execute(text(f"SELECT {', '.join(calls)}"))


def _script(conn: Connection, statements: list[str]) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("; ".join(statements))
    else:  # sqlite3 runs one statement per execute
        for statement in statements:
            conn.exec_driver_sql(statement)


_cache: dict[tuple[str, str], tuple[Snapshot, Any]] = {}


def cached(engine: Engine, key: str, build: Callable[[], T]) -> T:
    """``build()`` once per process and database, then its rows restored for later callers.

    ``build`` must start from a clean organisation and return plain data (ids, names, token
    strings), not ORM objects: later callers get a deep copy of it with the rows restored.
    ``key`` names everything outside the database the rows depend on (the emulator a stored
    connection points at, for one).
    """
    slot = (engine.url.render_as_string(hide_password=False), key)
    if slot in _cache:
        snapshot, value = _cache[slot]
        snapshot.restore(engine)
        return copy.deepcopy(value)  # type: ignore[no-any-return]
    value = build()
    _cache[slot] = (Snapshot.take(engine), copy.deepcopy(value))
    return value


def count_rows(engine: Engine) -> int:
    """Rows in every table (a cheap check that a restore put everything back)."""
    with engine.connect() as conn:
        return sum(conn.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)
