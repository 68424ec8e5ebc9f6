"""Benchmark: one message sent to N contacts through the worker, against the floor (issue 15).

  worker  ``gatherly worker`` in its own process runs the send: the audience taken into
          delivery rows, each message rendered (personalised, sanitised, CSS inlined,
          links signed for tracking), marked *sending* and committed, handed to SMTP over
          one reused connection, its answer committed with the next one's mark
  floor   a bare loop in this process rendering the same messages (``delivery.compose``)
          and sending them with smtplib over one connection: no database writes at all

Both send to the same SMTP sink, an aiosmtpd server in a process of its own that counts
and discards. Printed: seconds and messages per second for each, worker / floor (target
≤ 1.5), and the worker's peak resident memory (VmHWM) for each size in ``--sizes``
(target under 300 MB, and no more for the larger send: recipients are read 200 at a
time, never the whole audience at once).

    .venv/bin/python bench/email.py                          # 10,000 and 100,000 on SQLite
    .venv/bin/python bench/email.py --sizes 2000             # quick smoke run
    .venv/bin/python bench/email.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_email``
(PostgreSQL), made anew for every run.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder comes first on sys.path and this file would stand in
# for the standard library's ``email`` package: take the folder off before importing it.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    sys.path.pop(0)

import argparse
import os
import signal
import smtplib
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import make_msgid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core import migrate
from gatherly.core.background import free_port
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.email import delivery, sends, service
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.jobs.queue import Jobs
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


def database(url: str | None, tmp: Path) -> str:
    if url is None:
        return f"sqlite:///{tmp / 'email-bench.db'}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS bench_email CASCADE"))
        conn.execute(text("CREATE SCHEMA bench_email"))
    admin.dispose()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3Dbench_email"


def seed(url: str, contacts: int, settings: Settings) -> tuple[int, int]:
    """An administrator, ``contacts`` contacts on one list, and a ready message."""
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
        message = service.create_message(
            db=db,
            principal=principal,
            message_in=MessageIn(
                name="Recordings", subject="{{ contact.first_name }}, the recordings are online",
                preheader="Slides and recordings", html=HTML, content_setting_id=setting.id,
            ),
        )  # fmt: skip
        service.make_ready(
            db=db, principal=principal, message_id=message.id, public_url=settings.public_url
        )
        db.commit()
        found = message.id, mlist.id
    engine.dispose()
    return found


def floor(url: str, settings: Settings, message_id: int, port: int) -> float:
    """Render every member's message and send it over one smtplib connection."""
    engine = make_engine(url)
    with Session(engine) as db:
        message = db.get(EmailMessage, message_id)
        assert message is not None
        prepared = delivery.prepare(db, settings, message)
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            last = 0
            n = 0
            while True:
                rows = db.scalars(
                    select(Contact).where(Contact.id > last).order_by(Contact.id).limit(200)
                ).all()
                if not rows:
                    break
                for contact in rows:
                    n += 1
                    mime = delivery.compose(
                        prepared,
                        contact=service.contact_fields(contact),
                        to=contact.email or "",
                        message_id=make_msgid(idstring=f"d{n}", domain=prepared.domain),
                        delivery_id=n,
                    )
                    smtp.sendmail(
                        prepared.setting.sender_email, [contact.email or ""], mime.as_bytes()
                    )
                last = rows[-1].id
                db.expunge_all()
        seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def through_worker(
    url: str, settings: Settings, message_id: int, list_id: int, queue: Path
) -> tuple[float, float, int]:
    """Start the worker, queue the send, wait for it to finish; seconds, peak MB, sent."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as db:  # a fresh start for every size
        db.execute(delete(EmailInteraction))
        db.execute(delete(EmailDelivery))
        db.execute(delete(EmailSend))
        db.commit()
    env = {
        **os.environ,
        "GATHERLY_DATABASE_URL": url,
        "GATHERLY_QUEUE_PATH": str(queue),
        "GATHERLY_SMTP_URL": settings.smtp_url.get_secret_value() if settings.smtp_url else "",
        "GATHERLY_SMTP_RATE_PER_SECOND": "1000000",
        "GATHERLY_SECRET_KEY": settings.secret_key.get_secret_value()
        if settings.secret_key
        else "",
        "GATHERLY_PUBLIC_URL": settings.public_url,
        "GATHERLY_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", "from gatherly.cli import main; main()", "worker", "--no-schedule"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)  # the worker's start-up is not the send's time
        with factory() as db:
            user_id = db.scalar(text("SELECT id FROM user_account WHERE username = 'bench'"))
            principal = load_principal(db, int(user_id))
            started = time.perf_counter()
            send = sends.create_send(
                db=db, principal=principal, message_id=message_id, list_ids=[list_id],
                queue=Jobs(settings.model_copy(update={"queue_path": str(queue)})),
            )  # fmt: skip
            send_id = send.id
        state = "scheduled"
        while state not in ("done", "failed", "cancelled"):
            time.sleep(0.2)
            if worker.poll() is not None:
                raise RuntimeError("the worker stopped")
            with factory() as db:
                state = db.scalar(select(EmailSend.state).where(EmailSend.id == send_id)) or ""
        seconds = time.perf_counter() - started
        peak = peak_rss_mb(worker.pid)
        with factory() as db:
            sent = db.scalar(text("SELECT count(*) FROM email_delivery WHERE state = 'sent'"))
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)
        engine.dispose()
    return seconds, peak, int(sent or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="Recipients, comma-separated.")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default SQLite).")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="gatherly-email-bench-") as tmp_name:
        tmp = Path(tmp_name)
        url = database(args.database_url, tmp)
        backend = "postgresql" if args.database_url else "sqlite"
        with sink() as (port, total):
            settings = Settings(
                database_url=url,
                smtp_url=SecretStr(f"smtp://127.0.0.1:{port}?tls=none"),
                secret_key=SecretStr("bench-secret-key-0123456789abcdef0123456789"),
                public_url="https://mail.bench.example",
                queue_path=str(tmp / "queue.db"),
            )
            log(f"seeding {max(sizes):,} contacts on {backend} …")
            message_id, list_id = seed(url, max(sizes), settings)
            rows = []
            engine = make_engine(url)
            for size in sizes:
                # The list holds the first ``size`` contacts for this round.
                with Session(engine) as db:
                    db.execute(delete(MarketingListMember))
                    ids = list(db.scalars(select(Contact.id).order_by(Contact.id).limit(size)))
                    for start in range(0, len(ids), 5000):
                        db.execute(
                            insert(MarketingListMember),
                            [
                                {"list_id": list_id, "contact_id": c}
                                for c in ids[start : start + 5000]
                            ],
                        )
                    db.commit()
                log(f"worker: {size:,} recipients …")
                seconds, peak, sent = through_worker(
                    url, settings, message_id, list_id, tmp / f"q{size}.db"
                )
                assert sent == size, (sent, size)
                rows.append((size, seconds, peak))
            engine.dispose()
            size = sizes[-1]
            log(f"floor: {size:,} recipients …")
            floor_seconds = floor(url, settings, message_id, port)
        expected = sum(sizes) + size
        print(f"\nemail send benchmark ({backend}); the sink received {total[0]:,} of {expected:,}")
        print(f"{'recipients':>11} {'worker s':>9} {'msg/s':>7} {'peak MB':>8}")
        for n, seconds, peak in rows:
            print(f"{n:>11,} {seconds:>9.1f} {n / seconds:>7.0f} {peak:>8.0f}")
        worker_seconds = rows[-1][1]
        print(
            f"floor (render + smtplib, {size:,}): {floor_seconds:.1f} s, {size / floor_seconds:.0f} msg/s"
        )
        print(f"worker / floor = {worker_seconds / floor_seconds:.2f} (target ≤ 1.5)")
        print(
            f"peak worker memory: {max(r[2] for r in rows):.0f} MB (target < 300 MB, flat across sizes)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
