"""``gatherly email`` for sending (issue 15): a test copy, a send to a list, its progress,
bounce and complaint reports imported from an mbox (RFC 3464, RFC 5965), and insights —
as users of two business units, with one-line errors."""

from __future__ import annotations

import json
import mailbox
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.email import delivery
from gatherly.email.models import Suppression
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.cli.helpers import run_script
from tests.cli.test_email_cli import HTML
from tests.cli.test_segments_cli import assert_one_line_error
from tests.smtp_sink import Sink, smtp_sink


def dsn(recipient: str, original_id: str, status: str = "5.1.1") -> bytes:
    """A delivery-status notification (RFC 3464) for one recipient of one message, as
    Postfix writes one."""
    return f"""From: MAILER-DAEMON@mx.example
To: news@org.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

<{recipient}>: host mx.example said: 550 {status} no such user

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Diagnostic-Code: smtp; 550 {status} no such user

--B1
Content-Type: text/rfc822-headers

Message-ID: {original_id}
To: {recipient}

--B1--
""".encode()


def feedback(recipient: str, original_id: str) -> bytes:
    """A spam complaint (RFC 5965) about one message."""
    return f"""From: feedback@isp.example
Subject: Complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B2"

--B2
Content-Type: text/plain

This is an abuse report.

--B2
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {recipient}

--B2
Content-Type: message/rfc822

Message-ID: {original_id}
To: {recipient}

Hi

--B2--
""".encode()


@pytest.fixture
def sink() -> object:
    with smtp_sink() as server:
        yield server


def test_send_from_the_command_line_then_import_bounces_and_read_insights(
    session_factory: sessionmaker[Session], database_url: str, tmp_path: Path, sink: Sink
) -> None:
    with session_factory() as db:
        a, b = f.bu(db, "A"), f.bu(db, "B")
        f.user(db, "orgadmin", None, "System Administrator")
        ma = f.user(db, "ma", a, "Marketer")
        f.user(db, "mb", b, "Marketer")
        ids = [
            f.contact(db, ma, email=f"{n}@x.example", first_name=n.title()).id
            for n in ("ada", "bob", "cat")
        ]
        mlist = segment_service.create_list(db=db, principal=f.principal(db, ma), name="Three")
        segment_service.add_to_list(
            db=db, principal=f.principal(db, ma), list_id=mlist.id, contact_ids=ids
        )
        db.commit()
    env: dict[str, str | None] = {
        "GATHERLY_SMTP_URL": sink.url,
        "GATHERLY_QUEUE_PATH": str(tmp_path / "queue.db"),
    }

    def run(*args: str) -> str:
        done = run_script(database_url, *args, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    setting = json.loads(
        run(
            "email",
            "settings",
            "create",
            "Org",
            "--as",
            "orgadmin",
            "--sender",
            "news@org.example",
            "--postal-address",
            "1 Main St",
            "--json",
        )
    )
    run(
        "email",
        "settings",
        "default",
        str(setting["id"]),
        "--for",
        "organization",
        "--as",
        "orgadmin",
    )
    (tmp_path / "body.html").write_text(HTML, encoding="utf-8")
    message = json.loads(
        run(
            "email",
            "messages",
            "create",
            "Invite",
            "--as",
            "ma",
            "--subject",
            "Hi {{ contact.first_name }}",
            "--html-file",
            str(tmp_path / "body.html"),
            "--json",
        )
    )
    mid = str(message["id"])
    assert "me@x.example: sent (250 accepted)" in run(
        "email",
        "messages",
        "test",
        mid,
        "--as",
        "ma",
        "--to",
        "Me@X.example",
        "--contact",
        str(ids[0]),
    )
    assert sink.caught[0].message["Subject"] == "[Test] Hi Ada"
    assert_one_line_error(
        run_script(database_url, "email", "messages", "test", mid, "--as", "ma", "--to", "nobody"),
        "error (to):",
    )
    assert_one_line_error(
        run_script(
            database_url,
            "email",
            "sends",
            "create",
            "--message",
            mid,
            "--list",
            str(mlist.id),
            "--as",
            "ma",
            env=env,
        ),
        "is a draft",
    )
    run("email", "messages", "ready", mid, "--as", "ma")
    assert_one_line_error(
        run_script(
            database_url,
            "email",
            "sends",
            "create",
            "--message",
            mid,
            "--list",
            str(mlist.id),
            "--as",
            "mb",
            env=env,
        ),
        f"email message {mid} not found",
    )
    assert_one_line_error(
        run_script(
            database_url,
            "email",
            "sends",
            "create",
            "--message",
            mid,
            "--list",
            str(mlist.id),
            "--at",
            "2030-01-01T09:00",
            "--as",
            "ma",
            env=env,
        ),
        "error (scheduled_at):",
    )
    send = json.loads(
        run(
            "email",
            "sends",
            "create",
            "--message",
            mid,
            "--list",
            str(mlist.id),
            "--as",
            "ma",
            "--json",
        )
    )
    assert send["state"] == "scheduled"
    settings = Settings(
        database_url=database_url, smtp_url=sink.url, queue_path=str(tmp_path / "queue.db")
    )
    assert delivery.run_send(session_factory, settings, send_id=send["id"]).sent == 3
    shown = run("email", "sends", "show", str(send["id"]), "--as", "ma")
    assert f"send {send['id']}: done" in shown
    assert "sent: 3" in shown
    assert [s["id"] for s in json.loads(run("email", "sends", "list", "--as", "ma", "--json"))] == [
        send["id"]
    ]
    assert json.loads(run("email", "sends", "list", "--as", "mb", "--json")) == []

    sent = {c.rcpt_tos[0]: c.message["Message-ID"] for c in sink.caught[1:]}
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(dsn("bob@x.example", sent["bob@x.example"]))
    box.add(feedback("cat@x.example", sent["cat@x.example"]))
    box.add(b"From: friend@x.example\nSubject: hello\n\nNot a report.\n")
    # Ada's mail client used the mailto: of List-Unsubscribe.
    ada = next(c.message for c in sink.caught[1:] if c.rcpt_tos == ["ada@x.example"])
    mailto = re.search(r"<mailto:[^?]+\?subject=([^>]+)>", ada["List-Unsubscribe"])
    assert mailto is not None
    subject = unquote(mailto.group(1))
    box.add(f"From: ada@x.example\nTo: news@org.example\nSubject: {subject}\n\n".encode())
    box.add(b"From: eve@x.example\nSubject: unsubscribe forged.token\n\n")
    box.close()
    imported = run("email", "bounces", "import", str(tmp_path / "bounces.mbox"), "--as", "orgadmin")
    assert (
        "2 recorded, 0 already known, 0 about addresses we did not send to, 2 addresses "
        "suppressed, 2 messages that are not reports, 1 unsubscribe requests" in imported
    )
    with session_factory() as db:
        gone = db.scalars(select(Suppression).where(Suppression.email == "ada@x.example")).one()
        assert (gone.reason, gone.source) == ("unsubscribed", "mailto")
    again = run("email", "bounces", "import", str(tmp_path / "bounces.mbox"), "--as", "orgadmin")
    assert "0 recorded, 2 already known" in again
    assert_one_line_error(
        run_script(
            database_url, "email", "bounces", "import", str(tmp_path / "bounces.mbox"), "--as", "ma"
        ),
        "system administrator",
    )
    assert_one_line_error(
        run_script(
            database_url,
            "email",
            "bounces",
            "import",
            str(tmp_path / "missing.mbox"),
            "--as",
            "orgadmin",
        ),
        "error (file): cannot read",
    )

    counts = json.loads(run("email", "insights", "--message", mid, "--as", "ma", "--json"))
    # Bob's address bounced; Cat's message arrived (and Cat complained about it).
    counted = ("sent", "delivered", "hard_bounces", "complaints")
    assert [counts[k] for k in counted] == [3, 2, 1, 1]
    said = run("email", "insights", "--send", str(send["id"]), "--as", "ma")
    assert "3 sent, 2 delivered, 1 hard and 0 soft bounces" in said
    assert "1 unsubscribed, 1 complaints" in said  # Ada, by mail
    who = run("email", "insights", "--message", mid, "--who", "bounced", "--as", "ma")
    assert who.splitlines()[0].startswith("contact_id,email,name")
    assert "bob@x.example" in who
    assert_one_line_error(
        run_script(database_url, "email", "insights", "--message", mid, "--as", "mb"),
        f"email message {mid} not found",
    )
