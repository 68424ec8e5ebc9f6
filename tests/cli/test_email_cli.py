"""``gatherly email``: a content setting and a message from the command line, checked,
made ready and previewed, as users of two business units (issue 15, first part)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.email import audience as audiences
from gatherly.email.models import EmailMessage
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.cli.helpers import CliRun, make_cli, run_script
from tests.cli.test_segments_cli import assert_one_line_error

HTML = """<style>h1 { font-size: 20px }</style>
<h1>Hello {{ contact.first_name | default("there") }}</h1>
<p>Join us: <a href="https://events.example/autumn">Autumn Product Launch</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ postal_address }}</p>
"""


@pytest.fixture
def people(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        f.user(db, "orgadmin", None, "Marketing Administrator")
        ma = f.user(db, "ma", a, "Marketer")
        f.user(db, "mb", b, "Marketer")
        aiko = f.contact(db, ma, email="aiko@x.example", first_name="Aiko", company="Aiko KK")
        db.commit()
        return {"aiko": aiko.id}


@pytest.fixture
def run(people: dict[str, int], database_url: str) -> CliRun:
    return make_cli(database_url)


def test_a_message_from_the_command_line_to_ready_and_its_preview(
    run: CliRun,
    people: dict[str, int],
    tmp_path: Path,
    database_url: str,
    session_factory: sessionmaker[Session],
) -> None:
    setting = json.loads(
        run(
            "email", "settings", "create", "Organisation", "--as", "orgadmin",
            "--sender", "News@Org.Example", "--sender-name", "Org News",
            "--postal-address", "1 Main St, Springfield", "--json",
        ).stdout
    )  # fmt: skip
    assert setting["sender_email"] == "news@org.example"
    said = run(
        "email", "settings", "default", str(setting["id"]), "--for", "organization",
        "--as", "orgadmin",
    )  # fmt: skip
    assert "is the default for its organization" in said.stdout
    body = tmp_path / "invite.html"
    body.write_text(HTML, encoding="utf-8")
    created = json.loads(
        run(
            "email", "messages", "create", "Autumn invite", "--as", "ma",
            "--subject", "{{ contact.first_name }}, you are invited", "--html-file", str(body),
            "--json",
        ).stdout
    )  # fmt: skip
    message_id = str(created["id"])
    checked = run("email", "messages", "check", message_id, "--as", "ma")
    assert "ready to send" in checked.stdout
    assert "is ready" in run("email", "messages", "ready", message_id, "--as", "ma").stdout
    shown = run(
        "email", "messages", "preview", message_id, "--as", "ma",
        "--contact", str(people["aiko"]),
    ).stdout  # fmt: skip
    assert "Subject: Aiko, you are invited" in shown
    assert "Hello Aiko" in shown
    assert "[Autumn Product Launch](https://events.example/autumn)" in shown
    assert "1 Main St, Springfield" in shown
    html = run(
        "email", "messages", "preview", message_id, "--as", "ma",
        "--contact", str(people["aiko"]), "--part", "html",
    ).stdout  # fmt: skip
    assert '<h1 style="font-size: 20px;">Hello Aiko</h1>' in html
    listed = json.loads(run("email", "messages", "list", "--as", "ma", "--json").stdout)
    assert [(m["name"], m["state"]) for m in listed] == [("Autumn invite", "ready")]
    # Another business unit's marketer neither sees it nor may preview it.
    assert json.loads(run("email", "messages", "list", "--as", "mb", "--json").stdout) == []
    assert_one_line_error(
        run_script(
            database_url, "email", "messages", "preview", message_id, "--as", "mb",
            "--contact", str(people["aiko"]),
        ),
        f"email message {message_id} not found",
    )  # fmt: skip
    with session_factory() as db:
        stored = db.get(EmailMessage, created["id"])
        assert stored is not None
        assert stored.state == "ready"


def test_a_message_that_is_not_ready_says_why_and_exits_1(
    run: CliRun, tmp_path: Path, database_url: str
) -> None:
    created = json.loads(run("email", "messages", "create", "Bare", "--as", "ma", "--json").stdout)
    checked = run("email", "messages", "check", str(created["id"]), "--as", "ma", ok=False)
    assert checked.exit_code == 1
    assert "subject: a message needs a subject" in checked.stdout
    assert "unsubscribe link" in checked.stdout
    assert_one_line_error(
        run_script(database_url, "email", "messages", "ready", str(created["id"]), "--as", "ma"),
        "error (subject): a message needs a subject",
    )
    assert_one_line_error(
        run_script(
            database_url, "email", "messages", "create", "x", "--as", "ma",
            "--html-file", str(tmp_path / "missing.html"),
        ),
        "error (html-file): cannot read",
    )  # fmt: skip
    assert_one_line_error(
        run_script(
            database_url, "email", "settings", "default", "1", "--for", "business_unit",
            "--as", "orgadmin",
        ),
        "content setting 1 not found",
    )  # fmt: skip
    assert_one_line_error(
        run_script(
            database_url, "email", "settings", "create", "X", "--as", "ma", "--sender", "bad",
        ),
        "error (sender_email): ",
    )  # fmt: skip
    assert_one_line_error(
        run_script(database_url, "email", "messages", "create", "", "--as", "ma"),
        "error (name): ",
    )


def test_the_audience_of_a_list_says_who_is_suppressed_and_why(
    run: CliRun, people: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as db:
        ma = db.scalars(select(User).where(User.username == "ma")).one()
        principal = f.principal(db, ma)
        mlist = segment_service.create_list(db=db, principal=principal, name="Invitees")
        bert = f.contact(db, ma, email=None, first_name="Bert")
        segment_service.add_to_list(
            db=db, principal=principal, list_id=mlist.id, contact_ids=[people["aiko"], bert.id]
        )
        audiences.suppress(db=db, email="aiko@x.example", reason="unsubscribed", source="test")
        db.commit()
        list_id, bert_id = mlist.id, bert.id
    said = run("email", "audience", "--list", str(list_id), "--as", "ma", "--who").stdout
    assert "0 of 2 would receive it; 2 suppressed" in said
    assert "1 has no email address (no_email)" in said
    assert f"#{bert_id} (no email): no_email" in said
    data = json.loads(
        run("email", "audience", "--list", str(list_id), "--as", "ma", "--json").stdout
    )
    assert (data["total"], data["receiving"]) == (2, 0)
    assert data["suppressed"] == {"no_email": 1, "unsubscribed": 1}
    # Another business unit's marketer may not read the list.
    assert run("email", "audience", "--list", str(list_id), "--as", "mb", ok=False).exit_code != 0
