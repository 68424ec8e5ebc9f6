"""Triggered journeys (issue 16): people enter as it happens — attending an event (as the
Teams sync records it), being added to a list after go-live — and a condition on the
minutes they attended sends them down one branch or the other."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.core.db import utcnow
from gatherly.core.exceptions import ValidationFailed
from gatherly.journey import explain, service
from gatherly.journey.models import JourneyAction
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.journey.conftest import T0, World, members


def test_attendees_enter_as_the_sync_records_them_and_branch_on_their_minutes(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    webinar = f.event(db, world.marketer, "Autumn launch")
    ada, bob = (db.get(Contact, i) for i in world.sales_people)
    assert ada is not None
    assert bob is not None
    f.attendance(db, webinar, ada, seconds=45 * 60)
    plan = {
        "trigger": {"attended": webinar.id},
        "start": "long?",
        "steps": {
            "long?": {
                "type": "condition",
                "test": {"attended": webinar.id, "min_minutes": 30},
                "yes": "lead",
                "no": "thanks",
            },
            "lead": {"type": "create_lead", "topic": "Attended 30+ minutes"},
            "thanks": {"type": "send_email", "message_id": world.message},
        },
    }
    journey = service.create_journey(db=db, principal=me, name="Attendees", definition=plan)
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    world.tick(T0)
    assert members(db, journey.id) == {ada.id: ("done", None)}
    said = explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=bob.id)
    assert said.why_not == f"its trigger has not fired for it (attended event {webinar.id})"
    # The next sync records Bob's ten minutes: he enters at the next pass, down "no".
    f.attendance(db, webinar, bob, seconds=10 * 60)
    db.commit()
    world.tick(T0 + timedelta(minutes=1))
    assert members(db, journey.id) == {ada.id: ("done", None), bob.id: ("done", None)}
    steps = [
        (s.step, s.outcome)
        for s in explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=bob.id)
        .passes[0]
        .steps
    ]
    assert steps == [("long?", "no"), ("thanks", "queued")]


def test_a_list_trigger_fires_for_additions_after_go_live_only(db: Session, world: World) -> None:
    me = world.principal(db)
    newcomers = segment_service.create_list(db=db, principal=me, name="Newcomers")
    ada, bob = world.sales_people
    segment_service.add_to_list(db=db, principal=me, list_id=newcomers.id, contact_ids=[ada])
    plan = {
        "trigger": {"added_to_list": newcomers.id},
        "start": "hello",
        "steps": {"hello": {"type": "send_email", "message_id": world.message}},
    }
    journey = service.create_journey(db=db, principal=me, name="Welcome", definition=plan)
    db.commit()
    service.go_live(db=db, principal=me, journey_id=journey.id)  # now: after Ada was added
    db.commit()
    segment_service.add_to_list(db=db, principal=me, list_id=newcomers.id, contact_ids=[bob])
    db.commit()
    world.tick(utcnow())
    assert set(members(db, journey.id)) == {bob}
    # A journey enters by a trigger or from segments and lists, not both.
    both = {**plan, "audience": {"lists": [world.list_id]}}
    other = service.create_journey(db=db, principal=me, name="Both", definition=both)
    assert (
        "definition.trigger",
        "a journey enters people from segments and lists or by a trigger, not both",
    ) in service.check(db=db, principal=me, journey_id=other.id)
    with pytest.raises(ValidationFailed, match="exactly one of registered"):
        service.create_journey(db=db, principal=me, name="x", definition={"trigger": {}})


def test_attendance_the_owner_may_not_read_neither_triggers_nor_answers_a_condition(
    db: Session, world: World
) -> None:
    """Attendance rows count as a segment counts them: only those the journey's owner may
    read (here, one row kept by the other unit)."""
    me = world.principal(db)
    webinar = f.event(db, world.marketer, "Autumn launch")
    ada = db.get(Contact, world.sales_people[0])
    cyd = db.get(Contact, world.support_people[0])
    assert ada is not None
    assert cyd is not None
    f.attendance(db, webinar, ada, seconds=45 * 60)
    kept = f.attendance(db, webinar, cyd, seconds=45 * 60)
    kept.owner_id, kept.owning_bu_id = world.helper.id, world.support.id
    trigger = {
        "trigger": {"attended": webinar.id},
        "start": "end",
        "steps": {"end": {"type": "end"}},
    }
    asked = {
        "audience": {"lists": [world.list_id]},
        "start": "long?",
        "steps": {"long?": {"type": "condition", "test": {"attended": webinar.id}}},
    }
    ids = []
    for name, plan in (("Trigger", trigger), ("Asked", asked)):
        journey = service.create_journey(db=db, principal=me, name=name, definition=plan)
        service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
        ids.append(journey.id)
    db.commit()
    world.tick(T0)
    assert set(members(db, ids[0])) == {ada.id}
    outcomes = {
        (a.contact_id, a.outcome)
        for a in db.scalars(select(JourneyAction).where(JourneyAction.journey_id == ids[1]))
    }
    assert (ada.id, "yes") in outcomes
    assert (cyd.id, "no") in outcomes
