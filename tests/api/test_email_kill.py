"""Exactly one message per (send, contact), for real: a worker killed with SIGKILL in the
middle of a send, and a new one started, send nobody twice and nobody zero times — but
for the one message that may have been in flight at the kill, which is marked
*interrupted* and never sent again. And SIGTERM (what systemd sends to stop a service) lets
the worker finish the send at hand before it exits, whichever pool runs its tasks."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.email.models import EmailDelivery, EmailSend
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import Headers
from tests.api.test_email_sends import SENDS, _list_of, _ready_message
from tests.smtp_sink import smtp_sink
from tests.workers import worker_process

PEOPLE = 150


def _wait(what: str, check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _audience(client: TestClient, db: Session, org: Org, people: int) -> tuple[Headers, int, int]:
    """The marketer's headers, a ready message and a list of ``people`` contacts."""
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    owner = org.users["marketer"]
    ids = [f.contact(db, owner, email=f"p{i}@example.com").id for i in range(people)]
    db.commit()
    return headers, message_id, _list_of(db, org, "marketer", ids)


def test_a_worker_killed_mid_send_and_restarted_sends_nobody_twice(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    if database_url.startswith("sqlite") and os.environ.get("GATHERLY_TEST_POSTGRES_URL"):
        pytest.skip("runs on PostgreSQL when there is one (the suite's time budget)")
    headers, message_id, list_id = _audience(client, db, org, PEOPLE)

    def state() -> str | None:
        with session_factory() as s:
            return s.scalar(select(EmailSend.state))

    with smtp_sink() as sink:
        settings = Settings(
            database_url=database_url,
            queue_path=client.app.state.settings.queue_path,  # type: ignore[attr-defined]
            smtp_url=sink.url,
            smtp_rate_per_second=100,  # about 1.5 s for the whole send
            email_lease_seconds=1,
        )
        with worker_process(settings) as first:
            created = client.post(
                SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
            )
            assert created.status_code == 201, created.text
            _wait("the first messages", lambda: sink.count() >= 30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = sink.count()
        assert killed_at < PEOPLE, "the send finished before the kill"
        with session_factory() as s:
            in_flight = s.scalars(select(EmailDelivery).where(EmailDelivery.state == "sending"))
            assert len(in_flight.all()) <= 1
        # A new worker resumes the send once the dead one's lease runs out.
        with worker_process(settings):
            _wait("the send to finish", lambda: state() == "done")
        received = Counter(c.rcpt_tos[0] for c in sink.caught)

    assert max(received.values()) == 1, "someone got the message twice"
    db.expire_all()
    rows = db.scalars(select(EmailDelivery)).all()
    assert len(rows) == PEOPLE
    outcome = Counter((d.state, d.reason) for d in rows)
    interrupted = [d for d in rows if d.reason == "interrupted"]
    assert len(interrupted) <= 1
    assert outcome[("sent", None)] == PEOPLE - len(interrupted)
    # Every address marked sent was received; the interrupted one at most once.
    assert {d.email for d in rows if d.state == "sent"} <= set(received)
    assert len(received) in (PEOPLE - len(interrupted), PEOPLE)


@pytest.mark.sqlite_only  # the worker's signal handling, not the database
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_sigterm_lets_the_send_at_hand_finish_then_stops(
    client: TestClient, db: Session, org: Org, database_url: str, pool: str
) -> None:
    people = 60
    headers, message_id, list_id = _audience(client, db, org, people)
    with smtp_sink() as sink:
        settings = Settings(
            database_url=database_url,
            queue_path=client.app.state.settings.queue_path,  # type: ignore[attr-defined]
            smtp_url=sink.url,
            smtp_rate_per_second=40,  # about 1.5 s for the whole send
        )
        with worker_process(settings, "--concurrency", "2", "--pool", pool) as proc:
            created = client.post(
                SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
            )
            assert created.status_code == 201, created.text
            _wait("the first messages", lambda: sink.count() >= 5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            stopped_at = sink.count()
            output = proc.stdout.read() if proc.stdout else ""
        received = Counter(c.rcpt_tos[0] for c in sink.caught)

    assert stopped_at == people, f"stopped after {stopped_at} messages:\n{output}"
    assert max(received.values()) == 1, "someone got the message twice"
    db.expire_all()
    assert db.scalar(select(EmailSend.state)) == "done"
    outcome = Counter((d.state, d.reason) for d in db.scalars(select(EmailDelivery)))
    assert outcome == {("sent", None): people}
