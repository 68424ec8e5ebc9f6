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

    .venv/bin/python bench/email_send.py                          # 10,000 and 100,000 on SQLite
    .venv/bin/python bench/email_send.py --sizes 2000             # quick smoke run
    .venv/bin/python bench/email_send.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_email``
(PostgreSQL), made anew for every run.
"""

from __future__ import annotations

import argparse
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from email.utils import make_msgid
from pathlib import Path

from mailbench import database, log, peak_rss_mb, seed, sink
from pydantic import SecretStr
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.email import delivery, sends, service
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.jobs.queue import Jobs
from gatherly.org.directory import load_principal
from gatherly.segment.models import MarketingListMember


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
        url = database(args.database_url, tmp, "bench_email")
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
            (message_id,), list_id = seed(url, max(sizes), settings)
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
