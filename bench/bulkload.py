"""Bulk loading for the benchmarks that build millions of rows (bench/reports.py,
bench/scoring.py): each table as (name, columns, a function giving its rows), loaded the
fastest way each database allows."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mailbench import log
from sqlalchemy import Engine

Table = tuple[str, tuple[str, ...], Callable[[], Iterator[tuple[Any, ...]]]]


def load_tables(
    engine: Engine, tables: list[Table], *, sequenced: Sequence[str] | None = None
) -> dict[str, int]:
    """Load the tables; rows per table. ``sequenced``: the tables whose id sequence is moved
    past the ids loaded (PostgreSQL; default every table loaded)."""
    if engine.dialect.name == "postgresql":
        return load_postgresql(engine, tables, sequenced=sequenced)
    return load_sqlite(engine, tables)


def load_sqlite(engine: Engine, tables: list[Table]) -> dict[str, int]:
    """executemany in one transaction with the tables' indexes dropped (made again after,
    from their own definitions: a sort beats random inserts), then ANALYZE."""
    path = engine.url.database
    assert path
    counts = {}
    names = [table for table, _cols, _rows in tables]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1048576")
        con.execute("BEGIN")
        marks = ", ".join("?" * len(names))
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            names,
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for table, cols, rows in tables:
            t0 = time.perf_counter()
            marks = ", ".join("?" * len(cols))
            cur = con.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows()
            )
            counts[table] = cur.rowcount
            log(f"  {table}: {cur.rowcount:,} rows ({time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        for _name, sql in indexes:
            con.execute(sql)
        con.execute("COMMIT")
        log(f"  {len(indexes)} indexes ({time.perf_counter() - t0:.1f} s)")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return counts


def load_postgresql(
    engine: Engine, tables: list[Table], *, sequenced: Sequence[str] | None = None
) -> dict[str, int]:
    """COPY with the tables' indexes (those no constraint needs) dropped and made again
    after, foreign keys not checked row by row (the rows are consistent by construction);
    the sequences moved past the ids, then VACUUM (ANALYZE)."""
    counts = {}
    names = [table for table, _cols, _rows in tables]
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        assert con is not None
        with con.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace)",
                [names],
            )
            indexes = cur.fetchall()
            for name, _sql in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for table, cols, rows in tables:
                t0 = time.perf_counter()
                n = 0
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
                        n += 1
                counts[table] = n
                log(f"  {table}: {n:,} rows ({time.perf_counter() - t0:.1f} s)")
            t0 = time.perf_counter()
            cur.execute("SET maintenance_work_mem = '256MB'")
            for _name, sql in indexes:
                cur.execute(sql)
            log(f"  {len(indexes)} indexes ({time.perf_counter() - t0:.1f} s)")
            cur.execute("SET session_replication_role = DEFAULT")
            cur.execute("RESET maintenance_work_mem")
            for table in names if sequenced is None else sequenced:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        con.commit()
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            every = ", ".join(f'"{name}"' for (name,) in cur.fetchall())
            cur.execute(f"VACUUM (ANALYZE) {every}")
        con.autocommit = False
    finally:
        raw.close()
    return counts
