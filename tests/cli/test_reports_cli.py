"""``gatherly reports`` (issue 18): a built-in report run as two users of different business
units shows each their own numbers; ``--csv`` goes through the one writer; a saved report
from a YAML file runs by name; a bad name is one line, no traceback."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests import factories as f
from tests.cli.helpers import make_cli, run_script
from tests.cli.test_segments_cli import assert_one_line_error

NOV = datetime(2026, 11, 10, 9, tzinfo=UTC)


def test_reports_run_as_each_user_and_export_csv(
    session_factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        ma = f.user(db, "ma", a, "Marketer")
        mb = f.user(db, "mb", b, "Marketer")
        for owner, name, people in ((ma, "=Launch", 3), (mb, "Clinic", 1)):
            event = f.event(db, owner, name, start_at=NOV, event_type="webinar")
            for i in range(people):
                person = f.contact(db, owner, email=f"{name[-3:]}{i}@x.example")
                f.registration(db, event, person, registered_at=NOV)
        db.commit()
    run = make_cli(database_url)
    mine = run("reports", "run", "webinar-performance-by-event", "--as", "ma", "--csv").stdout
    rows = list(csv.reader(io.StringIO(mine)))
    assert rows[0][:3] == ["Event", "Registrants", "Attendees"]
    assert rows[1][:3] == ["'=Launch", "3", "0"]
    theirs = run("reports", "run", "webinar-performance-by-event", "--as", "mb", "--csv").stdout
    assert list(csv.reader(io.StringIO(theirs)))[1][:2] == ["Clinic", "1"]

    plan = tmp_path / "report.yaml"
    plan.write_text("source: registrations\ngroup_by: [month]\nmeasures: [registrants]\n")
    saved = json.loads(
        run("reports", "save", "Monthly", "--as", "ma", "--file", str(plan), "--json").stdout
    )
    shown = run("reports", "run", "monthly", "--as", "ma").stdout
    assert "2026-11" in shown
    assert saved["definition"]["source"] == "registrations"
    assert_one_line_error(
        run_script(database_url, "reports", "run", "Monthly", "--as", "mb"),
        "no report 'Monthly' you may read",
    )
