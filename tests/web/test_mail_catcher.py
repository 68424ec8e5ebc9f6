"""The bundled mail catcher (issue 15): a real SMTP server that keeps what it is sent, and
the page where a system administrator reads it — nobody else, and nothing beyond its files."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.core.background import free_port
from gatherly.email import catcher, tokens
from tests import factories as f
from tests.web.conftest import client_sign_in, text_of, with_password


def test_the_catcher_keeps_each_message_and_shows_it_to_administrators_only(
    client: TestClient, db: Session, tmp_path: Path
) -> None:
    with_password(db, f.user(db, "boss", None, "System Administrator"))
    with_password(db, f.user(db, "mark", f.bu(db, "A"), "Marketing Administrator"))
    db.commit()
    client_sign_in(client, "boss")
    assert client.get("/mail-catcher").status_code == 404  # not running here
    folder = tmp_path / "mail"
    settings = client.app.state.settings  # type: ignore[attr-defined]
    click = tokens.make(settings, tokens.CLICK, [7, "https://example.com/agenda"])
    pixel = tokens.make(settings, tokens.OPEN, 7)
    with catcher.running(folder, port=free_port()) as url:
        port = int(url.rsplit(":", 1)[1].split("?")[0])
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for n in (1, 2):
                mail = EmailMessage()
                mail["From"], mail["To"], mail["Subject"] = (
                    "a@x.example",
                    f"p{n}@x.example",
                    f"Hi {n}",
                )
                mail.set_content(f"Plain {n}")
                mail.add_alternative(
                    f"<p>Rich <b>{n}</b><script>x()</script></p>"
                    f'<a href="https://mail.example/email/c/{click}">Agenda</a>'
                    f'<img src="https://mail.example/email/o/{pixel}.gif" width="1" height="1">',
                    subtype="html",
                )
                smtp.send_message(mail)
    names = sorted(p.name for p in folder.glob("*.eml"))
    assert len(names) == 2
    assert all(catcher.NAME.match(n) for n in names)

    before = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = before.model_copy(update={"mail_catcher_dir": folder})  # type: ignore[attr-defined]
    try:
        listed = client.get("/mail-catcher")
        assert listed.status_code == 200
        said = text_of(listed.text)
        assert said.index("Hi 2") < said.index("Hi 1")  # newest first
        opened = client.get(f"/mail-catcher/{names[0]}")
        assert "Plain 1" in text_of(opened.text)
        # The HTML shows in a sandboxed frame: as text of an attribute, never as markup.
        assert 'sandbox=""' in opened.text
        assert "<script>x()" not in opened.text
        # Reading it here is not the recipient opening or clicking it.
        assert "/email/o/" not in opened.text
        assert "/email/c/" not in opened.text
        assert "https://example.com/agenda" in opened.text
        for bad in ("..%2F..%2Fetc%2Fpasswd", "nope.eml", names[0].replace(".eml", ".txt")):
            assert client.get(f"/mail-catcher/{bad}").status_code == 404, bad
        client_sign_in(client, "mark")
        assert client.get("/mail-catcher").status_code == 403
        assert client.get(f"/mail-catcher/{names[0]}").status_code == 403
    finally:
        client.app.state.settings = before  # type: ignore[attr-defined]
