"""Benchmark: a follow-up journey for N contacts, against the floor (issue 16).

The journey: send email → wait 1 day → opened? yes: create a lead; no: a second email.
Three contacts in ten open the first email (interactions written, untimed, before the
clock moves past the wait).

  journey  the engine (``journey.engine.tick``, its clock moved by hand) enters the list's
           contacts and takes their steps; the journey's sends are delivered by the email
           worker's code (``delivery.run_send``: rendered, marked, handed to SMTP, each
           answer committed)
  floor    the same work written as direct SQL — members, deliveries, actions, the
           branch and the leads as ``INSERT … SELECT`` — and a bare smtplib loop
           rendering each message (``delivery.compose``) with no database writes

Both send to the same SMTP sink. Printed: seconds for each, journey / floor (target ≤ 2).

``--advance M`` measures the engine alone: M contacts past a wait (wait 1 day → end, no
sending); the tick after the day is timed (target under 60 s for 1,000,000 on PostgreSQL).

    .venv/bin/python bench/journeys.py                    # 100,000 contacts on SQLite
    .venv/bin/python bench/journeys.py --contacts 2000    # quick smoke run
    .venv/bin/python bench/journeys.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python bench/journeys.py --advance 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data lives in a temporary directory (SQLite) or a fresh schema ``bench_journeys``
(PostgreSQL), made anew for every run.
"""

from __future__ import annotations

import argparse
import smtplib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from mailbench import database, log, seed, sink
from pydantic import SecretStr
from sqlalchemy import case, exists, func, insert, literal, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact, Lead
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.email import delivery
from gatherly.email import service as email_service
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.journey import engine as journey_engine
from gatherly.journey import service as journey_service
from gatherly.journey.models import Journey, JourneyAction, JourneyMember
from gatherly.org.directory import load_principal
from gatherly.segment.models import MarketingListMember

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=1, seconds=1)


def follow_up(list_id: int, first: int, second: int) -> dict[str, Any]:
    return {
        "audience": {"lists": [list_id]},
        "start": "invite",
        "steps": {
            "invite": {"type": "send_email", "message_id": first, "next": "pause"},
            "pause": {"type": "wait", "duration": "P1D", "next": "opened?"},
            "opened?": {
                "type": "condition",
                "test": {"opened": "invite"},
                "yes": "lead",
                "no": "remind",
            },
            "lead": {"type": "create_lead", "topic": "Webinar follow-up"},
            "remind": {"type": "send_email", "message_id": second},
        },
    }


def live_journey(factory: sessionmaker[Session], name: str, definition: dict[str, Any]) -> int:
    with factory() as db:
        user_id = db.scalar(text("SELECT id FROM user_account WHERE username = 'bench'"))
        principal = load_principal(db, int(user_id))
        journey = journey_service.create_journey(
            db=db, principal=principal, name=name, definition=definition
        )
        journey_service.go_live(db=db, principal=principal, journey_id=journey.id, now=T0)
        db.commit()
        return journey.id


def sends_of(factory: sessionmaker[Session], journey_id: int) -> dict[str, int]:
    with factory() as db:
        return {
            s.journey_step or "": s.id
            for s in db.scalars(select(EmailSend).where(EmailSend.journey_id == journey_id))
        }


def open_some(factory: sessionmaker[Session], send_id: int, message_id: int) -> None:
    """Three contacts in ten open the email of ``send_id`` (untimed: the world acting)."""
    with factory() as db:
        rows = select(
            EmailDelivery.id,
            literal(send_id),
            literal(message_id),
            EmailDelivery.contact_id,
            literal("opened"),
            literal(T0 + timedelta(hours=2), type_=EmailInteraction.at.type),
            literal(False),
        ).where(EmailDelivery.send_id == send_id, EmailDelivery.contact_id % 10 < 3)
        db.execute(
            insert(EmailInteraction).from_select(
                ["delivery_id", "send_id", "message_id", "contact_id", "kind", "at", "machine"],
                rows,
            )
        )
        db.commit()


# ---------------------------------------------------------------------- the journey


def through_engine(
    factory: sessionmaker[Session], settings: Settings, list_id: int, messages: list[int]
) -> tuple[float, float, dict[str, int]]:
    """Seconds for the whole journey (ticks and deliveries), seconds of engine ticks alone,
    and what happened."""
    journey_id = live_journey(factory, "Follow-up", follow_up(list_id, *messages))
    sends = sends_of(factory, journey_id)
    ticks = 0.0
    started = time.perf_counter()
    t = time.perf_counter()
    journey_engine.tick(factory, now=T0)
    ticks += time.perf_counter() - t
    delivery.run_send(factory, settings, send_id=sends["invite"])
    total = time.perf_counter() - started
    open_some(factory, sends["invite"], messages[0])
    started = time.perf_counter()
    t = time.perf_counter()
    journey_engine.tick(factory, now=LATER)
    ticks += time.perf_counter() - t
    delivery.run_send(factory, settings, send_id=sends["remind"])
    total += time.perf_counter() - started
    with factory() as db:
        counts = {
            "sent": db.scalar(
                select(func.count())
                .select_from(EmailDelivery)
                .where(EmailDelivery.send_id.in_(sends.values()), EmailDelivery.state == "sent")
            )
            or 0,
            "leads": db.scalar(
                select(func.count()).select_from(Lead).where(Lead.source == "journey")
            )
            or 0,
            "done": db.scalar(
                select(func.count())
                .select_from(JourneyMember)
                .where(JourneyMember.journey_id == journey_id, JourneyMember.status == "done")
            )
            or 0,
        }
    return total, ticks, counts


# ---------------------------------------------------------------------- the floor


def _act(db: Session, journey_id: int, step: str, outcome: Any, *where: Any) -> None:
    db.execute(
        insert(JourneyAction).from_select(
            ["journey_id", "member_id", "contact_id", "entry", "step", "at", "outcome"],
            select(
                JourneyMember.journey_id,
                JourneyMember.id,
                JourneyMember.contact_id,
                JourneyMember.entry,
                literal(step),
                literal(T0, type_=JourneyAction.at.type),
                outcome,
            ).where(JourneyMember.journey_id == journey_id, *where),
        )
    )


def _deliveries(db: Session, journey_id: int, send_id: int, *where: Any) -> None:
    db.execute(
        insert(EmailDelivery).from_select(
            ["send_id", "contact_id", "entry", "email", "state", "detail", "attempts"],
            select(
                literal(send_id),
                Contact.id,
                JourneyMember.entry,
                Contact.email,
                literal("sent"),
                literal(""),
                literal(1),
            )
            .join(Contact, Contact.id == JourneyMember.contact_id)
            .where(JourneyMember.journey_id == journey_id, *where),
        )
    )


def _send_all(db: Session, settings: Settings, send_id: int, message_id: int, port: int) -> None:
    """Render each delivery's message and send it over one smtplib connection."""
    message = db.get(EmailMessage, message_id)
    assert message is not None
    prepared = delivery.prepare(db, settings, message)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        last = 0
        while True:
            rows = db.execute(
                select(EmailDelivery.id, Contact)
                .join(Contact, Contact.id == EmailDelivery.contact_id)
                .where(
                    EmailDelivery.send_id == send_id,
                    EmailDelivery.state == "sent",  # ix_email_delivery_work, in id order
                    EmailDelivery.id > last,
                )
                .order_by(EmailDelivery.id)
                .limit(200)
            ).all()
            if not rows:
                return
            for delivery_id, contact in rows:
                mime = delivery.compose(
                    prepared,
                    contact=email_service.contact_fields(contact),
                    to=contact.email or "",
                    message_id=make_msgid(idstring=f"d{delivery_id}", domain=prepared.domain),
                    delivery_id=delivery_id,
                )
                smtp.sendmail(prepared.setting.sender_email, [contact.email or ""], mime.as_bytes())
            last = rows[-1][0]
            db.expunge_all()


def floor(
    factory: sessionmaker[Session],
    settings: Settings,
    list_id: int,
    messages: list[int],
    port: int,
) -> float:
    """The same journey as direct SQL and smtplib (its own journey record, never ticked)."""
    journey_id = live_journey(factory, "Floor", follow_up(list_id, *messages))
    sends = sends_of(factory, journey_id)
    with factory() as db:
        db.execute(update(Journey).where(Journey.id == journey_id).values(state="paused"))
        db.commit()
    at = JourneyMember.step
    started = time.perf_counter()
    with factory() as db:
        db.execute(
            insert(JourneyMember).from_select(
                ["journey_id", "contact_id", "entry", "status", "step", "entered_at"],
                select(
                    literal(journey_id),
                    MarketingListMember.contact_id,
                    literal(1),
                    literal("active"),
                    literal("invite"),
                    literal(T0, type_=JourneyMember.entered_at.type),
                ).where(MarketingListMember.list_id == list_id),
            )
        )
        _deliveries(db, journey_id, sends["invite"], at == "invite")
        _act(db, journey_id, "invite", literal("queued"), at == "invite")
        db.execute(
            update(JourneyMember)
            .where(JourneyMember.journey_id == journey_id)
            .values(step="pause", next_due_at=T0 + timedelta(days=1))
        )
        db.commit()
        _send_all(db, settings, sends["invite"], messages[0], port)
    seconds = time.perf_counter() - started
    open_some(factory, sends["invite"], messages[0])
    started = time.perf_counter()
    with factory() as db:
        _act(db, journey_id, "pause", literal("waited"))
        opened = exists().where(
            EmailDelivery.send_id == sends["invite"],
            EmailDelivery.contact_id == JourneyMember.contact_id,
            EmailInteraction.delivery_id == EmailDelivery.id,
            EmailInteraction.kind == "opened",
        )
        _act(db, journey_id, "opened?", case((opened, literal("yes")), else_=literal("no")))
        yes = exists().where(  # by the action's unique key
            JourneyAction.journey_id == JourneyMember.journey_id,
            JourneyAction.contact_id == JourneyMember.contact_id,
            JourneyAction.entry == JourneyMember.entry,
            JourneyAction.step == "opened?",
            JourneyAction.outcome == "yes",
        )
        db.execute(
            insert(Lead).from_select(
                [
                    "first_name", "last_name", "email", "company", "job_title", "phone",
                    "country", "custom", "topic", "status", "source", "contact_id",
                    "owner_type", "owner_id", "owning_bu_id", "created_at", "modified_at",
                ],
                select(
                    Contact.first_name, Contact.last_name, Contact.email, Contact.company,
                    Contact.job_title, Contact.phone, Contact.country, literal({}, type_=Lead.custom.type),
                    literal("Webinar follow-up"), literal("new"), literal("floor"), Contact.id,
                    Contact.owner_type, Contact.owner_id, Contact.owning_bu_id,
                    literal(T0, type_=Lead.created_at.type),
                    literal(T0, type_=Lead.modified_at.type),
                )
                .join(JourneyMember, JourneyMember.contact_id == Contact.id)
                .where(JourneyMember.journey_id == journey_id, yes),
            )
        )  # fmt: skip
        _act(db, journey_id, "lead", literal("lead"), yes)
        _deliveries(db, journey_id, sends["remind"], ~yes)
        _act(db, journey_id, "remind", literal("queued"), ~yes)
        db.execute(
            update(JourneyMember)
            .where(JourneyMember.journey_id == journey_id)
            .values(status="done", step=None, next_due_at=None, finished_at=LATER)
        )
        db.commit()
        _send_all(db, settings, sends["remind"], messages[1], port)
    return seconds + time.perf_counter() - started


# ---------------------------------------------------------------------- past a wait


def advance(factory: sessionmaker[Session], list_id: int) -> tuple[float, float, int]:
    """Enter the list into wait 1 day → end, then time the tick after the day."""
    journey_id = live_journey(
        factory,
        "Past a wait",
        {
            "audience": {"lists": [list_id]},
            "start": "pause",
            "steps": {"pause": {"type": "wait", "duration": "P1D", "next": "bye"},
                      "bye": {"type": "end"}},
        },
    )  # fmt: skip
    started = time.perf_counter()
    journey_engine.tick(factory, now=T0)
    entered = time.perf_counter() - started
    started = time.perf_counter()
    journey_engine.tick(factory, now=LATER)
    past = time.perf_counter() - started
    with factory() as db:
        done = db.scalar(
            select(func.count())
            .select_from(JourneyMember)
            .where(JourneyMember.journey_id == journey_id, JourneyMember.status == "done")
        )
    return entered, past, int(done or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="Contacts on the list.")
    parser.add_argument("--advance", type=int, default=0, help="Only: M contacts past a wait.")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default SQLite).")
    args = parser.parse_args()
    backend = "postgresql" if args.database_url else "sqlite"
    with tempfile.TemporaryDirectory(prefix="gatherly-journey-bench-") as tmp_name:
        tmp = Path(tmp_name)
        url = database(args.database_url, tmp, "bench_journeys")
        with sink() as (port, total):
            settings = Settings(
                database_url=url,
                smtp_url=SecretStr(f"smtp://127.0.0.1:{port}?tls=none"),
                smtp_rate_per_second=1_000_000,
                secret_key=SecretStr("bench-secret-key-0123456789abcdef0123456789"),
                public_url="https://mail.bench.example",
                queue_path=str(tmp / "queue.db"),
            )
            size = args.advance or args.contacts
            log(f"seeding {size:,} contacts on {backend} …")
            messages, list_id = seed(url, size, settings, ("Invite", "Reminder"))
            factory = make_session_factory(make_engine(url))
            if args.advance:
                entered, past, done = advance(factory, list_id)
                assert done == size, (done, size)
                print(f"\njourney engine, {size:,} contacts past a wait ({backend})")
                print(f"entering and starting the wait: {entered:.1f} s")
                print(f"past the wait to the end: {past:.1f} s (target < 60 s for 1,000,000)")
                return 0
            log(f"journey: {size:,} contacts …")
            seconds, ticks, counts = through_engine(factory, settings, list_id, messages)
            log(f"floor: {size:,} contacts …")
            floor_seconds = floor(factory, settings, list_id, messages, port)
        opened = sum(1 for i in range(size) if (i + 1) % 10 < 3)  # ids start at 1
        assert counts["done"] == size, counts
        assert counts["sent"] == size + (size - opened), (counts, opened)
        print(f"\njourney benchmark ({backend}), {size:,} contacts; the sink received {total[0]:,}")
        print(f"journey: {seconds:.1f} s (engine ticks {ticks:.1f} s), {counts}")
        print(f"floor (INSERT … SELECT + render + smtplib): {floor_seconds:.1f} s")
        print(f"journey / floor = {seconds / floor_seconds:.2f} (target ≤ 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
