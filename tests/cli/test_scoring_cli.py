"""``gatherly scoring`` (issue 18): a model written in YAML, taken live and rescored, its
scores listed and exported as CSV through the one writer, a score explained; and the
one-line errors of a bad model file or another unit's model."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests import factories as f
from tests.cli.helpers import make_cli, run_script
from tests.cli.test_segments_cli import assert_one_line_error

MODEL = """
conditions:
  - {name: In Germany, points: 30, contact: {country: DE}}
  - {name: Attended, points: 20, interaction: attended, frequency: each}
grades:
  - {grade: Hot, min: 40}
  - {grade: Cold, min: null}
sales_ready: 40
"""


def test_a_model_from_a_yaml_file_to_scores_explained_and_exported(
    session_factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        ma = f.user(db, "ma", a, "Marketer")
        f.user(db, "mb", b, "Marketer")
        de = f.contact(db, ma, email="de@a.example", country="DE", first_name="=HYPERLINK(1)")
        fr = f.contact(db, ma, email="fr@a.example", country="FR")
        webinar = f.event(db, ma, "Launch")
        f.attendance(db, webinar, de, seconds=600)
        db.commit()
        de_id, fr_id = de.id, fr.id
    run = make_cli(database_url)
    plan = tmp_path / "model.yaml"
    plan.write_text(MODEL)
    created = json.loads(
        run("scoring", "create", "Fit", "--as", "ma", "--file", str(plan), "--json").stdout
    )
    mid = str(created["id"])
    assert created["state"] == "draft"
    assert "is live" in run("scoring", "live", mid, "--as", "ma").stdout
    said = run("scoring", "rescore", mid, "--as", "ma").stdout
    assert "scored 2 records" in said
    assert "1 became sales-ready" in said
    scores = json.loads(run("scoring", "scores", mid, "--as", "ma", "--json").stdout)
    assert [(s["contact_id"], s["score"], s["grade"]) for s in scores] == [
        (de_id, 50, "Hot"),
        (fr_id, 0, "Cold"),
    ]
    exported = run("scoring", "scores", mid, "--as", "ma", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["name"] for r in rows] == ["'=HYPERLINK(1)", "fr@a.example"]  # no formula
    explained = run("scoring", "explain", str(scores[0]["id"]), "--as", "ma").stdout
    assert "50 points in 'Fit' (grade Hot)" in explained
    assert "+20  Attended: attended any event — each time (1 found)" in explained
    assert "Launch" in explained

    assert_one_line_error(
        run_script(database_url, "scoring", "scores", mid, "--as", "mb"),
        f"scoring model {mid} not found",
    )
    (tmp_path / "bad.yaml").write_text(
        "conditions:\n  - {name: x, points: 1, interaction: waved}\n"
    )
    assert_one_line_error(
        run_script(
            database_url,
            "scoring",
            "create",
            "x",
            "--as",
            "ma",
            "--file",
            str(tmp_path / "bad.yaml"),
        ),
        "conditions[0].interaction",
    )
