"""``gatherly segments``, ``gatherly lists`` and ``gatherly features`` as users of a small
organisation (SPEC B4, B5, B13).

Root → {A, B}; ``ma`` is a Marketer in A, ``mb`` one in B, ``orgadmin`` a Marketing
Administrator and ``admin`` a System Administrator at the root. A holds Aiko (JP) and
Anna (DE), B holds Bert (JP) and Bob (US).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.cli import app
from gatherly.core import audit
from gatherly.core.changes import DataChange
from gatherly.segment.models import MarketingListMember, Segment
from tests import factories as f
from tests.cli.helpers import CliRun, make_cli, plain, run_script

JP = json.dumps({"contact": {"country": "JP"}})
BAD = json.dumps({"any": [{"contact": {"country": "JP"}}, {"contact": {"country": {"gt": "X"}}}]})


@dataclass(frozen=True)
class Acme:
    """Contact ids by first name, BU ids by name."""

    contacts: dict[str, int]
    bus: dict[str, int]
    factory: sessionmaker[Session]

    def id(self, name: str) -> str:
        return str(self.contacts[name])


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> Acme:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        f.user(db, "admin", None, "System Administrator")
        f.user(db, "orgadmin", None, "Marketing Administrator")
        ma = f.user(db, "ma", a, "Marketer")
        mb = f.user(db, "mb", b, "Marketer")
        people = [
            (ma, "Aiko", "Abe", "JP"),
            (ma, "Anna", "Schmidt", "DE"),
            (mb, "Bert", "Baker", "JP"),
            (mb, "Bob", "Brown", "US"),
        ]
        contacts = {
            first: f.contact(
                db,
                owner,
                email=f"{first.lower()}@x.example",
                first_name=first,
                last_name=last,
                company=f"{first} GmbH",
                country=country,
            ).id
            for owner, first, last, country in people
        }
        # The set-up's changes (roles given) were handled before any segment existed.
        db.execute(delete(DataChange))
        db.commit()
        return Acme(contacts, {"A": a.id, "B": b.id}, session_factory)


@pytest.fixture
def run(acme: Acme, database_url: str) -> CliRun:
    return make_cli(database_url)


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def text(result: Any) -> str:
    return plain(result.stdout)


def create(run: CliRun, name: str, user: str, *args: str) -> int:
    data = as_json(run("segments", "create", name, "--as", user, *args, "--json"))
    segment_id: int = data["id"]
    return segment_id


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit non-zero, nothing on stdout, one stderr line holding every fragment, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def segment_count(acme: Acme) -> int:
    with acme.factory() as db:
        return int(db.scalar(select(func.count()).select_from(Segment)) or 0)


# ------------------------------------------------------------------ segments


def test_a_dynamic_segment_created_on_the_cli_lists_its_members(run: CliRun, acme: Acme) -> None:
    created = text(run("segments", "create", "Japan", "--as", "orgadmin", "--criteria", JP))
    assert "created dynamic segment 'Japan' (id " in created
    segment_id = str(as_json(run("segments", "list", "--as", "orgadmin", "--json"))[0]["id"])

    live = as_json(run("segments", "members", segment_id, "--as", "orgadmin", "--json"))
    assert live["source"] == "live"  # never refreshed yet: evaluated now
    assert {c["first_name"] for c in live["items"]} == {"Aiko", "Bert"}
    assert live["visible"] == 2
    assert live["total"] is None  # totals are off

    refreshed = text(run("segments", "refresh", segment_id, "--as", "orgadmin"))
    assert f"refreshed segment {segment_id} in " in refreshed
    assert "visible to you: 2" in refreshed
    stored = as_json(run("segments", "members", segment_id, "--as", "orgadmin", "--json"))
    assert stored["source"] == "materialised"
    assert [c["last_name"] for c in stored["items"]] == ["Abe", "Baker"]  # sorted by last name

    shown = as_json(run("segments", "show", segment_id, "--as", "orgadmin", "--json"))
    assert shown["criteria"] == json.loads(JP)
    assert shown["refresh_state"] == "fresh"
    assert shown["members"] == {"visible": 2, "total": None, "source": "materialised"}
    shown_text = text(run("segments", "show", segment_id, "--as", "orgadmin"))
    assert "members visible to you: 2 (materialised)" in shown_text
    assert '"country": "JP"' in shown_text  # criteria pretty-printed

    # The operator drains the outbox the create wrote, as the worker would.
    drained = as_json(run("segments", "refresh", "--pending", "--json"))
    assert drained["changes"] == 1
    assert [r["segment_id"] for r in drained["refreshed"]] == [int(segment_id)]
    assert drained["failed"] == {}
    again = text(run("segments", "refresh", "--pending"))
    assert "processed 0 change(s); refreshed 0 segment(s)" in again


def test_a_criteria_error_names_the_node_in_one_line_and_creates_nothing(
    acme: Acme, database_url: str
) -> None:
    result = run_script(database_url, "segments", "create", "Bad", "--as", "ma", "--criteria", BAD)
    line = assert_one_line_error(result, "criteria.any[1].contact.country: operator 'gt'")
    assert line.startswith("error (criteria): ")
    not_json = run_script(
        database_url, "segments", "create", "Bad", "--as", "ma", "--criteria", "{oops"
    )
    assert_one_line_error(not_json, "error (criteria): criteria is not valid JSON")
    preview = run_script(database_url, "segments", "preview", "--as", "ma", "--criteria", BAD)
    assert_one_line_error(preview, "criteria.any[1].contact.country:")
    assert segment_count(acme) == 0


def test_criteria_come_from_a_file_too(run: CliRun, acme: Acme, tmp_path: Path) -> None:
    path = tmp_path / "criteria.json"
    path.write_text(json.dumps({"not": {"contact": {"country": "JP"}}}), encoding="utf-8")
    segment_id = create(run, "Not Japan", "orgadmin", "--criteria-file", str(path))
    found = as_json(run("segments", "members", str(segment_id), "--as", "orgadmin", "--json"))
    assert {c["first_name"] for c in found["items"]} == {"Anna", "Bob"}


def test_a_bu_level_user_sees_only_their_bu_while_an_org_level_admin_sees_all(
    run: CliRun, acme: Acme
) -> None:
    # BU scoping is off, so ma's segment holds every JP contact; ma reads only BU A's.
    segment_id = str(create(run, "Japan", "ma", "--criteria", JP))
    run("segments", "refresh", segment_id, "--as", "ma")

    def names(user: str) -> set[str]:
        found = as_json(run("segments", "members", segment_id, "--as", user, "--json"))
        assert found["visible"] == len(found["items"])
        return {c["first_name"] for c in found["items"]}

    def csv_names(user: str) -> list[str]:
        rows = list(
            csv.reader(
                io.StringIO(run("segments", "members", segment_id, "--as", user, "--csv").stdout)
            )
        )
        assert rows[0] == [
            "id",
            "email",
            "first_name",
            "last_name",
            "company",
            "country",
            "owning_bu_id",
        ]
        return [r[2] for r in rows[1:]]

    assert names("ma") == {"Aiko"}
    assert names("orgadmin") == names("admin") == {"Aiko", "Bert"}
    assert csv_names("ma") == ["Aiko"]
    assert csv_names("orgadmin") == ["Aiko", "Bert"]  # in id order
    rows = list(
        csv.DictReader(
            io.StringIO(run("segments", "members", segment_id, "--as", "ma", "--csv").stdout)
        )
    )
    assert rows == [
        {
            "id": acme.id("Aiko"),
            "email": "aiko@x.example",
            "first_name": "Aiko",
            "last_name": "Abe",
            "company": "Aiko GmbH",
            "country": "JP",
            "owning_bu_id": str(acme.bus["A"]),
        }
    ]
    assert "visible to you: 1 (as of " in text(run("segments", "members", segment_id, "--as", "ma"))

    # With totals on, the viewer also learns how many members there are in all.
    run("features", "set", "segment_totals", "on", "--as", "admin")
    assert "visible to you: 1 of 2" in text(run("segments", "members", segment_id, "--as", "ma"))
    assert "members visible to you: 1 of 2" in text(
        run("segments", "show", segment_id, "--as", "ma")
    )
    preview = as_json(run("segments", "preview", "--as", "ma", "--criteria", JP, "--json"))
    assert preview["visible"] == 1
    assert "total" not in preview  # an unsaved tree has no total, even with totals on
    assert [c["first_name"] for c in preview["items"]] == ["Aiko"]

    # mb cannot read ma's segment at all.
    assert as_json(run("segments", "list", "--as", "mb", "--json")) == []


def test_a_marketer_may_not_choose_organization_scope(
    run: CliRun, acme: Acme, database_url: str
) -> None:
    result = run_script(
        database_url,
        "segments",
        "create",
        "Everyone",
        "--as",
        "ma",
        "--scope",
        "organization",
        "--criteria",
        JP,
    )
    assert_one_line_error(
        result, "error (scope):", "only users with organization-level create and write privileges"
    )
    assert segment_count(acme) == 0
    segment_id = create(run, "Everyone", "orgadmin", "--scope", "organization", "--criteria", JP)
    shown = as_json(run("segments", "show", str(segment_id), "--as", "orgadmin", "--json"))
    assert shown["scope"] == "organization"


def test_static_segments_are_refused_once_an_administrator_turns_bu_scoping_on(
    run: CliRun, acme: Acme, database_url: str
) -> None:
    assert create(run, "Hand-picked", "ma", "--static") > 0  # fine while scoping is off

    refused = run_script(database_url, "features", "set", "bu_scoping", "on", "--as", "ma")
    assert_one_line_error(refused, "forbidden", "system administrator")
    switches = {s["name"]: s for s in as_json(run("features", "list", "--json"))}
    assert switches["bu_scoping"]["enabled"] is False

    changed = text(run("features", "set", "bu_scoping", "on", "--as", "admin"))
    assert "bu_scoping: off -> on (by admin, audited)" in changed
    assert "already on; nothing changed" in text(
        run("features", "set", "bu_scoping", "on", "--as", "admin")
    )
    switches = {s["name"]: s for s in as_json(run("features", "list", "--json"))}
    assert switches["bu_scoping"]["enabled"] is True
    assert switches["bu_scoping"]["changed_by"] == "admin"
    assert switches["segment_totals"]["enabled"] is False
    assert "bu_scoping" in text(run("features", "list"))
    with acme.factory() as db:
        entries = audit.entries(db, action="feature.set")
    assert [(e.target_id, e.actor_name, e.before, e.after) for e in entries] == [
        ("bu_scoping", "admin", {"enabled": False}, {"enabled": True})
    ]

    result = run_script(
        database_url, "segments", "create", "Hand-picked 2", "--as", "ma", "--static"
    )
    assert_one_line_error(result, "error (kind):", "static segments are unavailable")
    assert segment_count(acme) == 1

    unknown = run_script(database_url, "features", "set", "warp_drive", "on", "--as", "admin")
    assert_one_line_error(unknown, "unknown feature 'warp_drive'")


# ------------------------------------------------------------------ explain


def test_explain_marks_the_matched_and_failed_criteria_nodes(run: CliRun, acme: Acme) -> None:
    tree = {
        "all": [{"contact": {"country": "JP"}}, {"contact": {"first_name": {"starts_with": "A"}}}]
    }
    segment_id = str(create(run, "Japanese A", "ma", "--criteria", json.dumps(tree)))

    out = text(run("segments", "explain", segment_id, "--contact", acme.id("Anna"), "--as", "ma"))
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == f"contact {acme.id('Anna')} is not a member of segment {segment_id}"
    assert "why: the criteria do not match" in lines
    assert "✗ criteria: all of 2" in lines
    assert "✗ criteria.all[0]: contact country equals 'JP'" in lines
    assert "✓ criteria.all[1]: contact first_name starts with 'A'" in lines
    assert any(
        line.startswith("scope: ✓ setting business_unit, applied organization") for line in lines
    )
    ma_id = next(u["id"] for u in as_json(run("users", "list", "--json")) if u["username"] == "ma")
    assert f"viewer ma (id {ma_id}): ✓ may read the contact, ✗ sees it in the segment" in lines

    found = as_json(
        run("segments", "explain", segment_id, "--contact", acme.id("Aiko"), "--as", "ma", "--json")
    )
    assert found["member"] is True
    assert [n["matched"] for n in found["criteria"]] == [True, True, True]
    assert found["viewer"]["sees_it"] is True

    # A system administrator asks whether mb would see Aiko in it: mb may not read her.
    other = as_json(
        run(
            "segments",
            "explain",
            segment_id,
            "--contact",
            acme.id("Aiko"),
            "--as",
            "admin",
            "--viewer",
            "mb",
            "--json",
        )
    )
    assert other["viewer"]["username"] == "mb"
    assert other["viewer"]["sees_it"] is False


def test_explain_for_another_viewer_needs_a_system_administrator(
    run: CliRun, acme: Acme, database_url: str
) -> None:
    segment_id = str(create(run, "Japan", "ma", "--criteria", JP))
    result = run_script(
        database_url,
        "segments",
        "explain",
        segment_id,
        "--contact",
        acme.id("Aiko"),
        "--as",
        "ma",
        "--viewer",
        "mb",
    )
    assert_one_line_error(result, "only a system administrator may explain for another user")
    unseen = run_script(database_url, "segments", "show", segment_id, "--as", "mb")
    assert_one_line_error(unseen, f"error (id): segment {segment_id} not found")


# ------------------------------------------------------------------ marketing lists


def test_lists_import_reports_unknown_emails_and_invalid_rows_and_adds_the_rest(
    run: CliRun, acme: Acme, tmp_path: Path
) -> None:
    list_id = str(as_json(run("lists", "create", "Expo", "--as", "ma", "--json"))["id"])
    path = tmp_path / "people.csv"
    path.write_text(
        "name,email\n"  # line 1
        "Aiko,aiko@x.example\n"  # 2: added
        "Nobody,nobody@unknown.example\n"  # 3: no such contact
        "Broken,not-an-email\n"  # 4: invalid
        "Bert,bert@x.example\n"  # 5: in B, which ma may not read: unknown to ma
        "Blank,\n"  # 6: invalid (no email)
        "Aiko again,AIKO@x.example\n",  # 7: the same contact
        encoding="utf-8",
    )
    out = text(run("lists", "import", list_id, str(path), "--as", "ma"))
    assert "read 6 row(s): added 1, already members 0, unknown emails 2, invalid rows 2" in out
    assert "  bert@x.example" in out.splitlines()
    assert "  nobody@unknown.example" in out.splitlines()
    assert any(line.startswith("  line 4: 'not-an-email': ") for line in out.splitlines())
    assert any(line.startswith("  line 6: '': ") for line in out.splitlines())

    again = as_json(run("lists", "import", list_id, str(path), "--as", "ma", "--json"))
    assert again["added"] == 0
    assert again["already"] == 1
    assert again["unknown_emails"] == ["bert@x.example", "nobody@unknown.example"]
    assert [r["line"] for r in again["invalid_rows"]] == [4, 6]

    shown = as_json(run("lists", "show", list_id, "--as", "ma", "--json"))
    assert shown["visible_members"] == 1
    assert [c["first_name"] for c in shown["members"]] == ["Aiko"]
    assert "members visible to you: 1" in text(run("lists", "show", list_id, "--as", "ma"))


def test_lists_add_remove_and_a_segment_built_on_the_list(
    run: CliRun, acme: Acme, database_url: str
) -> None:
    list_id = str(as_json(run("lists", "create", "VIP", "--as", "ma", "--json"))["id"])
    assert "created marketing list 'Dept' (id " in text(
        run("lists", "create", "Dept", "--as", "ma")
    )
    names = {r["name"] for r in as_json(run("lists", "list", "--as", "ma", "--json"))}
    assert names == {"VIP", "Dept"}
    assert as_json(run("lists", "list", "--as", "mb", "--json")) == []

    added = text(run("lists", "add", list_id, acme.id("Aiko"), acme.id("Anna"), "--as", "ma"))
    assert "added 2 contact(s); 0 already on the list" in added
    hidden = run_script(database_url, "lists", "add", list_id, acme.id("Bert"), "--as", "ma")
    assert_one_line_error(hidden, f"contact {acme.id('Bert')} not found")

    on_list = json.dumps({"list": int(list_id)})
    segment_id = str(create(run, "VIP segment", "ma", "--criteria", on_list))
    members = as_json(run("segments", "members", segment_id, "--as", "ma", "--json"))
    assert {c["first_name"] for c in members["items"]} == {"Aiko", "Anna"}

    removed = as_json(run("lists", "remove", list_id, acme.id("Anna"), "--as", "ma", "--json"))
    assert removed == {"list_id": int(list_id), "removed": 1, "not_members": 0}
    with acme.factory() as db:
        left = db.scalars(
            select(MarketingListMember.contact_id).where(
                MarketingListMember.list_id == int(list_id)
            )
        ).all()
    assert left == [acme.contacts["Aiko"]]
    drained = as_json(run("segments", "refresh", "--pending", "--json"))
    assert int(segment_id) in [r["segment_id"] for r in drained["refreshed"]]
    members = as_json(run("segments", "members", segment_id, "--as", "ma", "--json"))
    assert [c["first_name"] for c in members["items"]] == ["Aiko"]


# ------------------------------------------------------------------ help


def _paths(group: Any, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [(*prefix, name) for name in sorted(group.commands)]


ROOT = typer.main.get_group(app)
NEW_COMMANDS = [
    path
    for name in ("segments", "lists", "features")
    for path in [(name,), *_paths(ROOT.commands[name], (name,))]
]


def test_every_new_command_is_there() -> None:
    assert {" ".join(p) for p in NEW_COMMANDS} == {
        "segments",
        "segments create",
        "segments list",
        "segments show",
        "segments members",
        "segments refresh",
        "segments explain",
        "segments preview",
        "lists",
        "lists create",
        "lists list",
        "lists show",
        "lists members",
        "lists add",
        "lists remove",
        "lists import",
        "features",
        "features list",
        "features set",
    }


@pytest.mark.parametrize("path", NEW_COMMANDS, ids=[" ".join(p) for p in NEW_COMMANDS])
def test_help_works_for_each_new_command(path: tuple[str, ...], db_url: str) -> None:
    result = make_cli(db_url)(*path, "--help")
    help_text = " ".join(plain(result.stdout).split())
    usage = help_text[help_text.index("Usage:") : help_text.index("[OPTIONS]")]
    assert usage.rstrip().endswith(" ".join(path))
    assert "--help" in help_text
    if len(path) == 2 and path != ("features", "list"):
        assert "--as" in help_text
