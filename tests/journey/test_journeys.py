"""Journeys (issue 16, first part): the checks before going live, each naming its step;
a three-step journey advanced by a clock the test moves; the scope fixed at go-live (B6);
safe edits while live; and each step taken at most once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, Lead
from gatherly.core.exceptions import Conflict, Forbidden, ValidationFailed
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.journey import definition as jd
from gatherly.journey import explain, service
from gatherly.journey.models import JourneyAction, JourneyMember
from gatherly.org import service as org_service
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingListMember
from tests import factories as f
from tests.journey.conftest import T0, World, actions, members, scoping


def follow_up(world: World, **audience: object) -> dict[str, object]:
    """Invite → wait 2 days → opened? yes: a lead for sales; no: a reminder and the list."""
    return {
        "audience": {"lists": [world.list_id], **audience},
        "start": "invite",
        "steps": {
            "invite": {"type": "send_email", "message_id": world.message, "next": "pause"},
            "pause": {"type": "wait", "duration": "P2D", "next": "opened?"},
            "opened?": {
                "type": "condition",
                "test": {"opened": "invite"},
                "yes": "lead",
                "no": "remind",
            },
            "lead": {"type": "create_lead", "topic": "Webinar follow-up"},
            "remind": {"type": "send_email", "message_id": world.second, "next": "tag"},
            "tag": {"type": "update_field", "field": "custom.follow_up", "value": "reminded"},
        },
    }


def test_going_live_checks_every_step_and_names_the_one_at_fault(db: Session, world: World) -> None:
    me = world.principal(db)
    broken = {
        "audience": {"lists": []},
        "start": "a",
        "steps": {
            "a": {"type": "condition", "test": {"opened": "b"}, "yes": "b", "no": "c"},
            "b": {"type": "send_email", "message_id": world.message, "next": "a"},
            "c": {"type": "end"},
            "orphan": {"type": "end"},
        },
    }
    journey = service.create_journey(db=db, principal=me, name="Broken", definition=broken)
    said = service.check(db=db, principal=me, journey_id=journey.id)
    assert ("definition.steps.b", "leads back to “a”: every path must end") in said
    assert ("definition.steps.orphan", "no path from the start reaches it") in said
    assert ("definition.steps.a", "asks about “b”, which is no email step before it") in said
    assert ("definition.audience", "choose at least one segment or list, or a trigger") in said
    with pytest.raises(ValidationFailed) as refused:
        service.go_live(db=db, principal=me, journey_id=journey.id)
    assert refused.value.field.startswith("definition")
    assert "more: see the check" in refused.value.message
    # A draft message and a list its owner may not read are named too.
    draft = db.scalar(select(EmailMessage).where(EmailMessage.id == world.second))
    assert draft is not None
    draft.state = "draft"
    theirs = f.principal(db, world.helper)
    other = segment_service.create_list(db=db, principal=theirs, name="Support only")
    plan = follow_up(world)
    plan["steps"]["tag"] = {"type": "add_to_list", "list_id": other.id}  # type: ignore[index]
    service.update_journey(db=db, principal=me, journey_id=journey.id, changes={"definition": plan})
    said = service.check(db=db, principal=me, journey_id=journey.id)
    assert said == [
        ("definition.steps.remind", "the message “Reminder” is a draft: make it ready first"),
        ("definition.steps.tag", f"list {other.id} is not one you may read"),
    ]
    with pytest.raises(ValidationFailed, match="type is one of send_email, wait") as bad:
        service.create_journey(
            db=db, principal=me, name="x", definition={"steps": {"a": {"type": "fly"}}}
        )
    assert bad.value.field.startswith("definition.steps.a")


def test_a_three_step_journey_moves_with_the_clock_and_each_step_happens_once(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    journey = service.create_journey(
        db=db, principal=me, name="Follow-up", definition=follow_up(world)
    )
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    sends = {
        s.journey_step: s.id
        for s in db.scalars(select(EmailSend).where(EmailSend.journey_id == journey.id))
    }
    assert set(sends) == {"invite", "remind"}
    assert db.get(EmailMessage, world.message).state == "in_use"  # type: ignore[union-attr]

    # Scoping is off: the journey processes every member of the list, whoever owns them.
    assert world.tick(T0).entered == 4
    ada, bob = world.sales_people
    states = members(db, journey.id)
    assert {c: s for c, s in states.items() if c in (ada, bob)} == {
        ada: ("active", "pause"),
        bob: ("active", "pause"),
    }
    queued = db.scalars(
        select(EmailDelivery.contact_id).where(EmailDelivery.send_id == sends["invite"])
    ).all()
    assert set(queued) >= {ada, bob}
    assert world.tick(T0 + timedelta(days=1)).actions == 0  # still waiting

    # Ada opens the invite (a person: a machine open would not count).
    delivery = db.scalar(
        select(EmailDelivery).where(
            EmailDelivery.contact_id == ada, EmailDelivery.send_id == sends["invite"]
        )
    )
    assert delivery is not None
    db.add(
        EmailInteraction(
            delivery_id=delivery.id,
            send_id=sends["invite"],
            message_id=world.message,
            contact_id=ada,
            kind="opened",
            at=T0 + timedelta(hours=3),
        )
    )
    db.commit()
    world.tick(T0 + timedelta(days=2, seconds=1))
    states = members(db, journey.id)
    assert states[ada] == ("done", None)
    assert states[bob] == ("done", None)
    lead = db.scalars(select(Lead).where(Lead.contact_id == ada)).one()
    # B7: the lead belongs to the journey's owner.
    assert (lead.owner_type, lead.owner_id, lead.topic, lead.source) == (
        "user",
        world.marketer.id,
        "Webinar follow-up",
        "journey",
    )
    assert not db.scalars(select(Lead).where(Lead.contact_id == bob)).all()
    reminded = db.scalars(
        select(EmailDelivery.contact_id).where(EmailDelivery.send_id == sends["remind"])
    ).all()
    assert bob in reminded
    assert ada not in reminded
    assert db.get(Contact, bob).custom == {"follow_up": "reminded"}  # type: ignore[union-attr]
    assert [a for a in actions(db, journey.id) if a[0] in (ada, bob)] == [
        (ada, "invite", "queued"),
        (ada, "pause", "waited"),
        (ada, "opened?", "yes"),
        (ada, "lead", "lead"),
        (bob, "invite", "queued"),
        (bob, "pause", "waited"),
        (bob, "opened?", "no"),
        (bob, "remind", "queued"),
        (bob, "tag", "updated"),
    ]
    # Again, and again later: nothing happens twice.
    before = len(actions(db, journey.id))
    world.tick(T0 + timedelta(days=5))
    assert len(actions(db, journey.id)) == before
    assert len(db.scalars(select(Lead)).all()) == 1


def test_the_scope_is_fixed_at_go_live_whatever_happens_to_the_owner_later(
    db: Session, world: World
) -> None:
    scoping(db, True)
    me = world.principal(db)
    journey = service.create_journey(
        db=db, principal=me, name="Sales only", definition=follow_up(world)
    )
    assert journey.scope == "business_unit"
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    assert (journey.live_scope, journey.live_scope_bu_id) == ("business_unit", world.sales.id)
    # After going live, the journey changes owner (to Support's marketer), and its first
    # owner moves to Support.
    boss = world.principal(db, world.admin)
    journey.owner_id = world.helper.id
    journey.owning_bu_id = world.support.id
    org_service.move_user(
        db=db,
        user_id=world.marketer.id,
        business_unit_id=world.support.id,
        move_records=False,  # their contacts stay in Sales
        principal=boss,
    )
    db.commit()
    world.tick(T0)
    states = members(db, journey.id)
    for contact_id in world.sales_people:
        assert states[contact_id] == ("active", "pause")
    for contact_id in world.support_people:
        assert states[contact_id] == ("out_of_scope", None)
    # Nothing went to the out-of-scope contacts.
    sent_to = set(db.scalars(select(EmailDelivery.contact_id)))
    assert sent_to == set(world.sales_people)


def test_organization_scope_needs_organization_level_rights(db: Session, world: World) -> None:
    with pytest.raises(Forbidden) as refused:
        service.create_journey(db=db, principal=world.principal(db), name="x", scope="organization")
    assert refused.value.field == "scope"
    boss = world.principal(db, world.admin)
    journey = service.create_journey(
        db=db, principal=boss, name="All", scope="organization", definition=follow_up(world)
    )
    scoping(db, True)
    service.go_live(db=db, principal=boss, journey_id=journey.id, now=T0)
    assert (journey.live_scope, journey.live_scope_bu_id) == ("organization", None)


def test_a_live_journey_takes_only_safe_edits_and_exclusions_apply_at_once(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    journey = service.create_journey(
        db=db, principal=me, name="Follow-up", definition=follow_up(world)
    )
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    world.tick(T0)
    changed = follow_up(world)
    changed["steps"]["pause"]["duration"] = "P1D"  # type: ignore[index]
    with pytest.raises(Conflict) as refused:
        service.update_journey(
            db=db, principal=me, journey_id=journey.id, changes={"definition": changed}
        )
    assert refused.value.field == "definition"
    with pytest.raises(Conflict):
        service.update_journey(
            db=db, principal=me, journey_id=journey.id, changes={"name": "Other"}
        )
    static = segment_service.create_segment(db=db, principal=me, name="Not Bob", kind="static")
    segment_service.add_static_members(
        db=db, principal=me, segment_id=static.id, contact_ids=[world.sales_people[1]]
    )
    service.update_journey(
        db=db, principal=me, journey_id=journey.id,
        changes={"definition": follow_up(world, exclude_segments=[static.id]), "end_at": T0 + timedelta(days=30)},
    )  # fmt: skip
    db.commit()
    with pytest.raises(Conflict, match="takes more exclusions, but cannot take one back"):
        service.update_journey(
            db=db, principal=me, journey_id=journey.id, changes={"definition": follow_up(world)}
        )
    world.tick(T0 + timedelta(days=3))
    states = members(db, journey.id)
    assert states[world.sales_people[1]] == ("exited", None)
    assert states[world.sales_people[0]] == ("done", None)
    # Paused, nothing moves; stopped, everyone still in it leaves.
    service.set_state(db=db, principal=me, journey_id=journey.id, state="paused")
    with pytest.raises(Conflict):
        service.set_state(db=db, principal=me, journey_id=journey.id, state="paused")
    service.set_state(db=db, principal=me, journey_id=journey.id, state="stopped")
    db.commit()
    assert all(s in ("done", "exited") for s, _step in members(db, journey.id).values())
    with pytest.raises(Conflict):
        service.update_journey(db=db, principal=me, journey_id=journey.id, changes={"end_at": None})


def test_a_step_already_taken_is_never_taken_again(db: Session, world: World) -> None:
    """Two workers racing: the action log's unique key lets only one take a step."""
    me = world.principal(db)
    journey = service.create_journey(
        db=db, principal=me, name="Follow-up", definition=follow_up(world)
    )
    service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    world.tick(T0)
    ada = world.sales_people[0]
    member_id = db.scalar(select(JourneyAction.member_id).where(JourneyAction.contact_id == ada))
    # Another worker already took Ada's "pause" (its effect is in its own transaction).
    db.add(
        JourneyAction(
            journey_id=journey.id,
            member_id=member_id,
            contact_id=ada,
            entry=1,
            step="pause",
            at=T0,
            outcome="waited",
        )
    )
    db.commit()
    world.tick(T0 + timedelta(days=2, seconds=1))  # this pass finds it taken: Ada moves on
    pauses = [a for a in actions(db, journey.id) if a[0] == ada and a[1] == "pause"]
    assert len(pauses) == 1
    assert not db.scalars(
        select(MarketingListMember).where(
            MarketingListMember.contact_id == ada, MarketingListMember.list_id != world.list_id
        )
    ).all()


def test_after_finish_a_contact_goes_again_when_it_rejoins_and_each_pass_asks_of_its_own_email(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    plan = {
        "audience": {"lists": [world.list_id]},
        "start": "invite",
        "steps": {
            "invite": {"type": "send_email", "message_id": world.message, "next": "pause"},
            "pause": {"type": "wait", "duration": "P1D", "next": "opened?"},
            "opened?": {"type": "condition", "test": {"opened": "invite"}, "yes": "tag"},
            "tag": {"type": "update_field", "field": "custom.opened", "value": "yes"},
        },
    }
    again = service.create_journey(
        db=db, principal=me, name="Again", definition=plan, re_entry="after_finish"
    )
    once = service.create_journey(db=db, principal=me, name="Once", definition=plan)
    for journey in (again, once):
        service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    ada, bob = world.sales_people
    world.tick(T0)
    first = db.scalars(
        select(EmailDelivery).where(
            EmailDelivery.contact_id == ada,
            EmailDelivery.send_id.in_(
                select(EmailSend.id).where(
                    EmailSend.journey_id == again.id, EmailSend.journey_step == "invite"
                )
            ),
        )
    ).one()
    db.add(
        EmailInteraction(
            delivery_id=first.id,
            send_id=first.send_id,
            message_id=world.message,
            contact_id=ada,
            kind="opened",
            at=T0 + timedelta(hours=1),
        )
    )
    db.commit()
    world.tick(T0 + timedelta(days=1, seconds=1))
    assert members(db, again.id)[ada] == ("done", None)
    # Still in the list since before it finished: no second pass.
    assert world.tick(T0 + timedelta(days=2)).entered == 0
    # Ada leaves the list and joins it again after her pass finished; Bob stays.
    joined = db.get(MarketingListMember, (world.list_id, ada))
    assert joined is not None
    joined.added_at = T0 + timedelta(days=3)
    db.commit()
    assert world.tick(T0 + timedelta(days=3, seconds=1)).entered == 1  # "Again" only
    world.tick(T0 + timedelta(days=4, seconds=2))
    passes = db.scalars(
        select(JourneyAction)
        .where(JourneyAction.journey_id == again.id, JourneyAction.contact_id == ada)
        .order_by(JourneyAction.entry, JourneyAction.id)
    ).all()
    assert [(a.entry, a.step, a.outcome) for a in passes] == [
        (1, "invite", "queued"),
        (1, "pause", "waited"),
        (1, "opened?", "yes"),
        (1, "tag", "updated"),
        (2, "invite", "queued"),
        (2, "pause", "waited"),
        (2, "opened?", "no"),  # the open was of the first pass's email
    ]
    # Explain says which open decided each pass's question.
    said = explain.explain(db=db, principal=me, journey_id=again.id, contact_id=ada)
    assert said.again is not None
    assert said.again.startswith("it goes again once it joins the journey's audience again")
    passes = said.passes
    asked = [(p.entry, s.because, s.because_at) for p in passes for s in p.steps if s.because]
    assert asked == [(1, "opened", T0 + timedelta(hours=1)), (2, "no open", None)]
    delivered = select(EmailDelivery.entry).where(EmailDelivery.send_id == first.send_id)
    assert sorted(db.scalars(delivered.where(EmailDelivery.contact_id == ada))) == [1, 2]
    assert sorted(db.scalars(delivered.where(EmailDelivery.contact_id == bob))) == [1]

    def entries(journey_id: int, contact_id: int) -> list[int]:
        return sorted(
            db.scalars(
                select(JourneyMember.entry).where(
                    JourneyMember.journey_id == journey_id, JourneyMember.contact_id == contact_id
                )
            )
        )

    assert entries(again.id, ada) == [1, 2]
    assert entries(again.id, bob) == [1]  # never left the list
    assert entries(once.id, ada) == [1]


def test_a_deleted_contact_leaves_every_journey_at_once_even_mid_wait(
    db: Session, world: World
) -> None:
    me = world.principal(db)
    journeys = [
        service.create_journey(db=db, principal=me, name=name, definition=follow_up(world))
        for name in ("One", "Two")
    ]
    for journey in journeys:
        service.go_live(db=db, principal=me, journey_id=journey.id, now=T0)
    db.commit()
    world.tick(T0)
    ada, bob = world.sales_people
    contact_service.delete_record(db=db, principal=me, kind=contact_service.CONTACT, record_id=ada)
    db.commit()
    world.tick(T0 + timedelta(hours=1))  # the two-day wait is far from over
    for journey in journeys:
        rows = db.scalars(select(JourneyMember).where(JourneyMember.journey_id == journey.id))
        left = {(m.contact_id, m.status, m.reason) for m in rows if m.status != "active"}
        assert left == {(None, "exited", "the contact was deleted")}
        assert members(db, journey.id)[bob] == ("active", "pause")


def test_yaml_reads_yes_and_no_as_branch_names_not_booleans() -> None:
    text = "opened: {type: condition, test: {opened: invite}, yes: lead, no: remind}"
    data = jd.from_text(f"steps:\n  {text}\n", field="definition")
    assert data["steps"]["opened"] == {
        "type": "condition", "test": {"opened": "invite"}, "yes": "lead", "no": "remind"
    }  # fmt: skip
    assert jd.from_text("a: true\nb: on\n", field="definition") == {"a": True, "b": "on"}
