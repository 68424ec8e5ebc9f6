"""``gatherly journeys`` (issue 16, first part): a journey written in YAML, checked (each
problem naming its step), taken live, followed with ``show``, paused and stopped; and the
one-line errors of a bad file or another unit's journey."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gatherly.email import service as email_service
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.journey import engine
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.cli.helpers import make_cli, run_script
from tests.cli.test_segments_cli import assert_one_line_error
from tests.journey.conftest import T0

YAML = """
audience:
  lists: [{list_id}]
start: invite
steps:
  invite: {{type: send_email, message_id: {message_id}, next: later}}
  later: {{type: wait, duration: P1D, next: tag}}
  tag: {{type: add_to_list, list_id: {list_id}{extra}}}
"""


def test_a_journey_from_a_yaml_file_to_live_and_stopped(
    session_factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        ma = f.user(db, "ma", a, "Marketer")
        f.user(db, "mb", b, "Marketer")
        me = f.principal(db, ma)
        setting = email_service.create_content_setting(
            db=db, principal=me,
            setting_in=ContentSettingIn(name="A", sender_email="a@a.example", postal_address="1 Main St"),
        )  # fmt: skip
        message = email_service.create_message(
            db=db, principal=me,
            message_in=MessageIn(
                name="Hi", subject="Hi", content_setting_id=setting.id,
                html='<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
            ),
        )  # fmt: skip
        mlist = segment_service.create_list(db=db, principal=me, name="People")
        people = [f.contact(db, ma, email=f"p{i}@a.example").id for i in range(3)]
        segment_service.add_to_list(db=db, principal=me, list_id=mlist.id, contact_ids=people)
        db.commit()
        message_id, list_id = message.id, mlist.id
        people = list(people)
    run = make_cli(database_url)
    plan = tmp_path / "journey.yaml"
    plan.write_text(YAML.format(list_id=list_id, message_id=message_id, extra=", next: nowhere"))
    created = json.loads(
        run("journeys", "create", "Welcome", "--as", "ma", "--file", str(plan), "--json").stdout
    )
    jid = str(created["id"])
    checked = run("journeys", "check", jid, "--as", "ma", ok=False)
    assert checked.exit_code == 1
    assert "definition.steps.tag: leads to “nowhere”, which is no step" in checked.stdout
    assert "the message “Hi” is a draft" in checked.stdout
    plan.write_text(YAML.format(list_id=list_id, message_id=message_id, extra=""))
    assert "saved" in run("journeys", "update", jid, "--as", "ma", "--file", str(plan)).stdout
    run("email", "messages", "ready", str(message_id), "--as", "ma")
    assert "ready to go live" in run("journeys", "check", jid, "--as", "ma").stdout
    assert "is live (organization scope)" in run("journeys", "live", jid, "--as", "ma").stdout

    engine.tick(session_factory, now=T0)
    shown = json.loads(run("journeys", "show", jid, "--as", "ma", "--json").stdout)
    assert shown["members"] == {"active": 3}
    assert shown["at_step"] == {"later": 3}
    assert shown["steps"] == {"invite": {"queued": 3}}
    insights = run("journeys", "insights", jid, "--as", "ma").stdout
    assert "entered 3: active 3" in insights
    assert "  invite: queued 3\n  later: 3 here now\n" in insights
    assert "0 sent, 0 delivered, 0 opened, 0 clicked, 0 bounced, 0 unsubscribed" in insights
    explained = run("journeys", "explain", jid, "--as", "ma", "--contact", str(people[0])).stdout
    assert "pass 1: at later, entered" in explained
    assert "invite: queued" in explained
    assert "is paused" in run("journeys", "pause", jid, "--as", "ma").stdout
    assert "is live" in run("journeys", "resume", jid, "--as", "ma").stdout
    assert "is stopped" in run("journeys", "stop", jid, "--as", "ma").stdout
    said = run("journeys", "show", jid, "--as", "ma").stdout
    assert "exited: 3" in said

    assert_one_line_error(
        run_script(database_url, "journeys", "show", jid, "--as", "mb"), f"journey {jid} not found"
    )
    (tmp_path / "bad.yaml").write_text("steps: [unclosed")
    assert_one_line_error(
        run_script(
            database_url,
            "journeys",
            "create",
            "x",
            "--as",
            "ma",
            "--file",
            str(tmp_path / "bad.yaml"),
        ),
        "error (file):",
    )
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert_one_line_error(
        run_script(
            database_url,
            "journeys",
            "create",
            "x",
            "--as",
            "ma",
            "--file",
            str(tmp_path / "list.yaml"),
        ),
        "holds no definition",
    )
