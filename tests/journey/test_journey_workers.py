"""The journey engine on real workers (issue 16): one killed with SIGKILL mid-way and a new
one started, or two running side by side on Redis, end with every step of every member
taken exactly once — one lead per contact, one list entry, one action per step."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.contact.models import Lead
from gatherly.core.config import Settings
from gatherly.jobs.queue import Jobs
from gatherly.journey import service
from gatherly.journey.models import JourneyAction, JourneyMember
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingListMember
from tests import factories as f
from tests.journey.conftest import World
from tests.workers import worker_process

PEOPLE = 300


def _journey(db: Session, world: World) -> tuple[int, int]:
    """A live journey over PEOPLE contacts: tag them, make a lead, put them on a list."""
    me = world.principal(db)
    people = [f.contact(db, world.marketer, email=f"p{i}@s.example").id for i in range(PEOPLE)]
    crowd = segment_service.create_list(db=db, principal=me, name="Crowd")
    reached = segment_service.create_list(db=db, principal=me, name="Reached")
    segment_service.add_to_list(db=db, principal=me, list_id=crowd.id, contact_ids=people)
    plan = {
        "audience": {"lists": [crowd.id]},
        "start": "tag",
        "steps": {
            "tag": {
                "type": "update_field",
                "field": "custom.journey",
                "value": "yes",
                "next": "lead",
            },
            "lead": {"type": "create_lead", "topic": "Hot", "next": "reached"},
            "reached": {"type": "add_to_list", "list_id": reached.id},
        },
    }
    journey = service.create_journey(db=db, principal=me, name="Crowd", definition=plan)
    service.go_live(db=db, principal=me, journey_id=journey.id)
    db.commit()
    return journey.id, reached.id


def _count(world: World, what: Callable[[Session], int | None]) -> int:
    with world.factory() as db:
        return int(what(db) or 0)


def _wait(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _exactly_once(db: Session, journey_id: int, reached: int) -> None:
    db.expire_all()
    steps = Counter(
        db.execute(
            select(JourneyAction.contact_id, JourneyAction.step).where(
                JourneyAction.journey_id == journey_id
            )
        ).all()
    )
    assert len(steps) == 3 * PEOPLE
    assert set(steps.values()) == {1}
    leads = Counter(db.scalars(select(Lead.contact_id).where(Lead.source == "journey")))
    assert len(leads) == PEOPLE
    assert set(leads.values()) == {1}
    entries = db.scalar(
        select(func.count())
        .select_from(MarketingListMember)
        .where(MarketingListMember.list_id == reached)
    )
    assert entries == PEOPLE
    done = db.scalar(
        select(func.count()).where(
            JourneyMember.journey_id == journey_id, JourneyMember.status == "done"
        )
    )
    assert done == PEOPLE


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


def test_a_killed_worker_then_two_racing_workers_take_every_step_once(
    db: Session, world: World, database_url: str, tmp_path: Path
) -> None:
    """A worker is killed with SIGKILL mid-journey; then two workers on the Redis queue
    (one on the SQLite queue, without Redis) finish it, woken several times at once."""
    if database_url.startswith("sqlite") and os.environ.get("GATHERLY_TEST_POSTGRES_URL"):
        pytest.skip("runs on PostgreSQL when there is one, where two workers write at once")
    journey_id, reached = _journey(db, world)
    settings = Settings(
        database_url=database_url, queue_path=str(tmp_path / "q.db"), journey_batch=5
    )
    racing = 1
    if _redis_up():
        racing = 2
        settings = settings.model_copy(
            update={
                "redis_url": "redis://127.0.0.1:6379/15",
                "queue_name": f"gatherly-journeys-{os.getpid()}",
            }
        )
    jobs = Jobs(settings)
    jobs.huey.flush()

    def actions() -> int:
        return _count(world, lambda s: s.scalar(select(func.count()).select_from(JourneyAction)))

    with worker_process(settings) as first:
        jobs.journeys_tick()
        _wait("the first steps", lambda: actions() >= 60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert actions() < 3 * PEOPLE, "the journey finished before the kill"
    with ExitStack() as workers:
        for _ in range(racing):
            workers.enter_context(worker_process(settings))
        for _ in range(4):  # wake-ups racing each other
            jobs.journeys_tick()
        _wait("every member to finish", lambda: actions() >= 3 * PEOPLE)
        time.sleep(0.3)  # another pass, if one is running, ends
    _exactly_once(db, journey_id, reached)
