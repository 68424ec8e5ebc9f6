"""Explain and simulate (issue 16): where a contact is and how it got there, why another
is not in the journey, and what a draft would do with today's audience — writing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.email import audience as audiences
from gatherly.email.models import EmailDelivery
from gatherly.journey import explain, service
from gatherly.journey.models import JourneyAction, JourneyMember
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.journey.conftest import T0, World, scoping
from tests.journey.test_journeys import follow_up


def test_explain_says_how_a_contact_got_where_it_is_and_why_another_is_not_in_it(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    static = segment_service.create_segment(db=db, principal=me, name="Not Bob", kind="static")
    ada, bob = world.sales_people
    segment_service.add_static_members(db=db, principal=me, segment_id=static.id, contact_ids=[bob])
    db.commit()
    scoping(db, True)  # static segments are made with scoping off
    journey = service.create_journey(
        db=db,
        principal=me,
        name="Follow-up",
        definition=follow_up(world, exclude_segments=[static.id]),
    )
    db.commit()
    said = explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=ada)
    assert said.why_not == "the journey is a draft: nobody is in it until it goes live"
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    assert "enters at the journey's next run" in str(
        explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=ada).why_not
    )
    world.tick(T0)
    world.tick(T0 + timedelta(days=2, seconds=1))
    said = explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=ada)
    assert said.why_not is None
    [only] = said.passes
    assert (only.status, only.entered_at) == ("done", T0)
    assert [(s.step, s.outcome) for s in only.steps] == [
        ("invite", "queued"),
        ("pause", "waited"),
        ("opened?", "no"),
        ("remind", "queued"),
        ("tag", "updated"),
    ]
    assert [(s.step, s.because) for s in only.steps if s.because] == [("opened?", "no open")]
    assert said.again == "it went through once: the journey takes a contact once"
    assert explain.explain(db=db, principal=me, journey_id=journey.id, contact_id=bob).why_not == (
        "it is in the excluded segment “Not Bob”"
    )
    stranger = f.contact(db, world.marketer, email="stranger@s.example").id
    db.commit()
    assert explain.explain(
        db=db, principal=me, journey_id=journey.id, contact_id=stranger
    ).why_not == ("it is in none of the journey's segments and lists")
    # A contact the caller may not read is not explained (nor named).
    with pytest.raises(NotFound) as hidden:
        explain.explain(
            db=db, principal=me, journey_id=journey.id, contact_id=world.support_people[0]
        )
    assert hidden.value.field == "contact_id"
    with pytest.raises(NotFound):
        explain.explain(
            db=db, principal=f.principal(db, world.helper), journey_id=journey.id, contact_id=ada
        )


def test_simulate_counts_each_step_and_branch_and_writes_nothing(db: Session, world: World) -> None:
    scoping(db, True)
    me = world.principal(db)
    audiences.suppress(db=db, email="bob@s.example", reason="unsubscribed", source="test")
    plan = follow_up(world)
    plan["steps"]["opened?"]["test"] = {"field": "first_name", "op": "equals", "value": "ada"}  # type: ignore[index]
    plan["steps"]["pause"]["next"] = "clicked?"  # type: ignore[index]
    plan["steps"]["clicked?"] = {
        "type": "condition",
        "test": {"clicked": "invite"},
        "yes": "opened?",
    }  # type: ignore[index]
    journey = service.create_journey(db=db, principal=me, name="Try", definition=plan)
    db.commit()
    found = explain.simulate(db=db, principal=me, journey_id=journey.id)
    # Support's two contacts are out of the journey's scope, and out of the caller's
    # reach: a simulation neither walks nor counts people the caller may not read.
    assert (found.audience, found.out_of_scope, found.excluded) == (2, 0, 0)
    assert found.reached == {"invite": 2, "pause": 2, "clicked?": 2}
    assert found.branches == {"clicked?": {"yes": 0, "no": 2}}
    assert found.assumed == ["clicked?"]
    assert found.suppressed == {"invite": 1}  # Bob unsubscribed
    # Nothing was written, nothing queued.
    assert db.scalar(select(func.count()).select_from(JourneyMember)) == 0
    assert db.scalar(select(func.count()).select_from(JourneyAction)) == 0
    assert db.scalar(select(func.count()).select_from(EmailDelivery)) == 0


def test_counts_are_full_and_who_is_where_names_only_contacts_the_viewer_may_read(
    db: Session, world: World
) -> None:
    """B11 for journeys: the Sales marketer's journey takes all four (scoping off); the
    marketer sees 4 in its counts, 2 named (Sales) and 2 anonymous (Support)."""
    me = world.principal(db)
    journey = service.create_journey(
        db=db, principal=me, name="Follow-up", definition=follow_up(world)
    )
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    world.tick(T0)
    progress = service.progress(db=db, principal=me, journey_id=journey.id)
    assert progress.members == {"active": 4}
    assert progress.steps == {"invite": {"queued": 4}}
    for rows in (
        service.people(db=db, principal=me, journey_id=journey.id, status="active").items,
        service.people(
            db=db, principal=me, journey_id=journey.id, step="invite", outcome="queued"
        ).items,
    ):
        named = sorted(p.contact.id for p in rows if p.contact is not None)
        assert named == sorted(world.sales_people)
        anonymous = [p for p in rows if p.contact is None]
        assert len(anonymous) == 2
        assert all(p.at.second == 0 and p.at.microsecond == 0 for p in anonymous)
    with pytest.raises(ValidationFailed) as refused:
        service.people(db=db, principal=me, journey_id=journey.id)
    assert refused.value.field == "status"
    # Who may not read the journey sees neither counts nor people.
    with pytest.raises(NotFound):
        service.progress(db=db, principal=f.principal(db, world.helper), journey_id=journey.id)
    with pytest.raises(NotFound):
        service.people(
            db=db, principal=f.principal(db, world.helper), journey_id=journey.id, status="active"
        )
