"""The one CSV writer every export goes through (docs/segments.md, "Exports (CSV)").

Cells come from people outside the organisation (a Teams registrant types their own name),
so a text cell that a spreadsheet would read as a formula is neutralised with a leading
``'`` (OWASP's rule for CSV injection: cells starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return). Numbers we hold are written as numbers; ``None`` is an empty cell.

Two ways out, same rows: ``stream`` yields text chunks for a ``StreamingResponse``,
``write`` writes to an open text file (the CLI's stdout).

Example:
    >>> list(stream(["name", "n"], [["=1+1", -5], [None, 2]]))
    ["name,n\\r\\n'=1+1,-5\\r\\n,2\\r\\n"]
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 1000


def cell(value: Any) -> str | int | float | Decimal:
    """One value as the CSV holds it: text neutralised, numbers as they are, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return value  # ours, not typed by anyone: -5 is a number, not a formula
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(values: Iterable[Any]) -> list[str | int | float | Decimal]:
    """A row of values as the CSV holds them."""
    return [cell(v) for v in values]


@dataclass(frozen=True)
class CsvExport:
    """A download: its file name, and its CSV text streamed through this writer (from a
    session of its own when it reads the database, so it outlives the request)."""

    filename: str
    chunks: Iterator[str]


def attributes(columns: Sequence[str], records: Iterable[Any]) -> Iterator[list[Any]]:
    """The rows of ``records`` (ORM objects, dataclasses …): each record's ``columns``."""
    for record in records:
        yield [getattr(record, c) for c in columns]


def _lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header, then each row, as CSV text ending in ``\\r\\n``.

    The line end is RFC 4180's on purpose: the csv module quotes a field holding any
    character of the line end, so a carriage return typed into a name stays inside its cell
    (with ``\\n`` line ends it would be written bare and split the row).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for values in itertools.chain([header], rows):
        writer.writerow(row(values))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def write(out: TextIO, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a header and rows to ``out`` with ``\\n`` line ends (a terminal's, for the
    CLI); returns the number of data rows."""
    lines = 0
    for line in _lines(header, rows):
        out.write(line[:-2] + "\n")
        lines += 1
    return lines - 1  # less the header


def stream(
    header: Sequence[str], rows: Iterable[Iterable[Any]], *, chunk_rows: int = CHUNK_ROWS
) -> Iterator[str]:
    """The CSV as text chunks (the header and ``chunk_rows`` rows, then ``chunk_rows`` rows
    at a time) with ``\\r\\n`` line ends, for a streaming HTTP response."""
    batch: list[str] = []
    for n, line in enumerate(_lines(header, rows)):
        batch.append(line)
        if n and n % chunk_rows == 0:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)
