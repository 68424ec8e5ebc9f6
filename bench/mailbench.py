"""What the email and journey benchmarks share: the SMTP sink (an aiosmtpd server in a
process of its own that counts and discards), a fresh database, and the seed — an
administrator, contacts on one list, ready messages."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert, select, text

from gatherly.contact.models import Contact
from gatherly.core import migrate
from gatherly.core.background import free_port
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.email import service
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.org import defaults
from gatherly.org import service as org_service
from gatherly.org.directory import load_principal
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingListMember

HTML = """<style>
  .wrap { font-family: Arial, sans-serif; max-width: 560px; margin: 0 auto; }
  .cta { background: #1f3a5f; color: #ffffff; padding: 10px 18px; text-decoration: none; }
  .foot { font-size: 12px; color: #666666; }
</style>
<div class="wrap">
  <p>Hello {{ contact.first_name | default("there") }},</p>
  <p>Thank you for your interest{% if contact.company %}, and greetings to {{ contact.company }}{% endif %}.
  The recordings of our autumn webinars are online, with the slides and the questions you asked.</p>
  <p><a class="cta" href="https://www.example.com/webinars/recordings">Watch the recordings</a></p>
  <p><a href="https://www.example.com/webinars/next">See what comes next</a></p>
  <p class="foot">{{ sender.name }} · {{ postal_address }}<br>
  <a href="{{ subscription_centre_url }}">Choose what you receive</a> ·
  <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</div>
"""

SINK = textwrap.dedent(
    """
    import signal, sys, threading
    from aiosmtpd.controller import Controller

    class Count:
        n = 0
        async def handle_DATA(self, server, session, envelope):
            Count.n += 1
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait()
    controller.stop()
    print(Count.n, flush=True)
    """
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def sink() -> Iterator[tuple[int, list[int]]]:
    """The counting SMTP sink in its own process; yields its port and, after, its count."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", SINK, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    total: list[int] = []
    try:
        yield port, total
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        total.append(int(out.strip() or 0))


def database(url: str | None, tmp: Path, name: str) -> str:
    """A fresh SQLite file in ``tmp``, or a fresh PostgreSQL schema ``name``."""
    if url is None:
        return f"sqlite:///{tmp / (name + '.db')}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {name}"))
    admin.dispose()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{name}"


def seed(
    url: str, contacts: int, settings: Settings, messages: tuple[str, ...] = ("Recordings",)
) -> tuple[list[int], int]:
    """An administrator ``bench``, ``contacts`` contacts on one list, and a ready message
    for each name in ``messages``: (message ids, list id)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db:
        defaults.ensure_defaults(db)
        root = org_service.get_root(db=db)
        user = org_service.create_user(db=db, username="bench", business_unit_id=root.id)
        role = org_service.get_role_by_name(db=db, name="System Administrator")
        org_service.assign_role(db=db, role_id=role.id, user_id=user.id)
        db.commit()
        principal = load_principal(db, user.id)
        owner = {"owner_type": "user", "owner_id": user.id, "owning_bu_id": root.id}
        for start in range(0, contacts, 5000):
            db.execute(
                insert(Contact),
                [
                    {
                        "email": f"person{i}@bench.example",
                        "first_name": f"Person{i}",
                        "last_name": "Bench",
                        "company": f"Company {i % 97}",
                        **owner,
                    }
                    for i in range(start, min(start + 5000, contacts))
                ],
            )
        mlist = segment_service.create_list(db=db, principal=principal, name="Everyone")
        ids = db.scalars(select(Contact.id).order_by(Contact.id))
        batch: list[dict[str, int]] = []
        for contact_id in ids:
            batch.append({"list_id": mlist.id, "contact_id": contact_id})
            if len(batch) == 5000:
                db.execute(insert(MarketingListMember), batch)
                batch.clear()
        if batch:
            db.execute(insert(MarketingListMember), batch)
        setting = service.create_content_setting(
            db=db,
            principal=principal,
            setting_in=ContentSettingIn(
                name="Bench", sender_name="Bench Events", sender_email="events@bench.example",
                postal_address="1 Main St, Springfield",
            ),
        )  # fmt: skip
        made = []
        for name in messages:
            message = service.create_message(
                db=db,
                principal=principal,
                message_in=MessageIn(
                    name=name, subject="{{ contact.first_name }}, the recordings are online",
                    preheader="Slides and recordings", html=HTML, content_setting_id=setting.id,
                ),
            )  # fmt: skip
            service.make_ready(
                db=db, principal=principal, message_id=message.id, public_url=settings.public_url
            )
            made.append(message.id)
        db.commit()
        found = made, mlist.id
    engine.dispose()
    return found


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
