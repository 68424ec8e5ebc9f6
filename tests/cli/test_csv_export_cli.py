"""CSV exports on the command line (issue 12 F4): ``segments members --csv`` and
``lists members --csv`` write through the one CSV writer, as the acting user may read.

ma (BU A, Marketer) owns the dangerous contacts; mb (BU B, Marketer) owns a hidden one;
orgadmin (Marketing Administrator at the root) reads them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gatherly.segment import service as seg
from tests import csv_injection as evil
from tests import factories as f
from tests.cli.helpers import CliRun, make_cli, run_script


@dataclass
class Setup:
    run: CliRun
    database_url: str
    segment_id: str
    list_id: str
    shown: list[int]


@pytest.fixture
def setup(session_factory: sessionmaker[Session], database_url: str) -> Setup:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        orgadmin = f.user(db, "orgadmin", None, "Marketing Administrator")
        ma = f.user(db, "ma", a, "Marketer")
        mb = f.user(db, "mb", b, "Marketer")
        shown = evil.add_people(db, ma)
        hidden = evil.add_hidden(db, mb)
        segment = seg.create_segment(
            db=db,
            principal=f.principal(db, ma),
            name="Evil",
            criteria={"contact": {"email": {"ends_with": evil.DOMAIN}}},
        )
        mlist = seg.create_list(db=db, principal=f.principal(db, ma), name="Evil list")
        seg.add_to_list(
            db=db,
            principal=f.principal(db, orgadmin),
            list_id=mlist.id,
            contact_ids=[*shown, hidden],
        )
        db.commit()
        return Setup(make_cli(database_url), database_url, str(segment.id), str(mlist.id), shown)


def _stdout(result: object) -> str:
    # The raw bytes: a carriage return inside a quoted cell must reach the file as it is.
    return bytes(getattr(result, "stdout_bytes")).decode("utf-8")  # noqa: B009


def test_segments_members_csv_neutralises_formulas(setup: Setup) -> None:
    text = _stdout(setup.run("segments", "members", setup.segment_id, "--as", "ma", "--csv"))
    evil.check(text, setup.shown)
    assert "HIDDEN" not in text
    assert "\r\n" not in text.replace('"\'\r=cr"', "")  # \n line ends on the terminal


def test_lists_members_csv_neutralises_formulas_and_counts_what_it_writes(setup: Setup) -> None:
    run = setup.run
    text = _stdout(run("lists", "members", setup.list_id, "--as", "ma", "--csv"))
    evil.check(text, setup.shown)
    assert "HIDDEN" not in text
    listed = json.loads(run("lists", "members", setup.list_id, "--as", "ma", "--json").stdout)
    assert listed["visible"] == len(listed["items"]) == len(evil.rows(text)) == 4
    table = run("lists", "members", setup.list_id, "--as", "ma").stdout
    assert "visible to you: 4" in table
    everyone = _stdout(run("lists", "members", setup.list_id, "--as", "orgadmin", "--csv"))
    assert len(evil.rows(everyone)) == 5
    assert "'=HIDDEN()" in everyone


def test_lists_members_refuses_a_list_the_user_may_not_read_and_bad_ids(setup: Setup) -> None:
    hidden = run_script(
        setup.database_url, "lists", "members", setup.list_id, "--as", "mb", "--csv"
    )
    assert hidden.returncode == 1
    assert hidden.stdout == ""  # not even the header
    assert hidden.stderr.strip() == f"error (id): marketing list {setup.list_id} not found"
    both = setup.run("lists", "members", setup.list_id, "--as", "ma", "--csv", "--json", ok=False)
    assert both.exit_code == 1
    for bad in ("99999999999999999999", "0", "2147483648"):
        result = setup.run("lists", "members", bad, "--as", "ma", "--csv", ok=False)
        assert result.exit_code == 2, result.output  # a usage error, not a traceback
        assert "Invalid value for 'list_id'" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
