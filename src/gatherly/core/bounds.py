"""The values the database can compare, checked before a value reaches SQL.

Values from outside (a cursor, a segment criterion) used to fail inside the driver with a
500: SQLite cannot bind an integer beyond 64 bits, PostgreSQL refuses one beyond an
``INTEGER`` column's 32 bits, and a date-time near year 1 or 9999 overflows once converted
to UTC. Every integer column a request compares is an ``INTEGER`` (ids, counts), so one
range serves them all on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER; SQLite's is wider, so this bounds both


def fits_integer(value: int) -> bool:
    """Whether ``value`` fits an ``INTEGER`` column on every backend."""
    return INT_MIN <= value <= INT_MAX


def to_utc(value: datetime) -> datetime:
    """``value`` converted to UTC.

    Raises:
        ValueError: ``value`` has no time zone, or leaves the range of dates (years 1 to
            9999) once converted, e.g. ``9999-12-31T23:59:59-14:00``.
    """
    if value.utcoffset() is None:
        raise ValueError("has no time zone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None


def shift(value: datetime, delta: timedelta) -> datetime:
    """``value + delta``, held at the first or last representable moment instead of
    overflowing (``in the next 30 days`` from late in year 9999 runs to its end)."""
    try:
        return value + delta
    except OverflowError:
        edge = datetime.max if delta > timedelta(0) else datetime.min
        return edge.replace(tzinfo=value.tzinfo)


def parse_id(text: str) -> int | None:
    """``text`` as a record id (ASCII digits, 1 to ``INT_MAX``), else None.

    For references that are an id or a name (``--as 7`` or ``--as ada``): ``"²".isdigit()``
    holds but ``int`` refuses it, and twenty digits are no id any table holds.
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(INT_MAX)):
        return None
    value = int(text)
    return value if 1 <= value <= INT_MAX else None
