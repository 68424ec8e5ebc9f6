"""Lead scoring (issue 18, SPEC B9): conditions on fields and interactions with their
frequencies and windows, grades, the sales-ready mark, the explanation, the outbox's
incremental updates, and who may see a score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture.models import FORM_SUBMITTED, CaptureInteraction, MarketingForm
from gatherly.contact.models import Contact, Lead
from gatherly.core import changes
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.email.models import EmailDelivery, EmailInteraction, EmailMessage, EmailSend
from gatherly.scoring import jobs, service
from gatherly.scoring.models import LeadScore
from gatherly.segment import jobs as segment_jobs
from gatherly.segment import service as segment_service
from tests import factories as f

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _message(db: Session, owner: Any) -> EmailMessage:
    row = EmailMessage(
        name="Invite",
        subject="Hi",
        html="<p>Hi</p>",
        owner_type="user",
        owner_id=owner.id,
        owning_bu_id=owner.business_unit_id,
    )
    db.add(row)
    db.flush()
    return row


def _opened(db: Session, message: EmailMessage, person: Contact, at: datetime, n: int = 1) -> None:
    send = EmailSend(
        message_id=message.id,
        owner_type=message.owner_type,
        owner_id=message.owner_id,
        owning_bu_id=message.owning_bu_id,
    )
    db.add(send)
    db.flush()
    delivery = EmailDelivery(send_id=send.id, contact_id=person.id, email=person.email)
    db.add(delivery)
    db.flush()
    for i in range(n):
        db.add(
            EmailInteraction(
                delivery_id=delivery.id,
                send_id=send.id,
                message_id=message.id,
                contact_id=person.id,
                kind="opened",
                at=at + timedelta(minutes=i),
            )
        )
    db.flush()


CONDITIONS: list[dict[str, Any]] = [
    {"name": "In Japan", "points": 10, "contact": {"country": "JP"}},
    {
        "name": "Attended 30 min",
        "points": 20,
        "interaction": "attended",
        "min_minutes": 30,
        "frequency": "each",
    },
    {
        "name": "Opened twice lately",
        "points": 15,
        "interaction": "email_opened",
        "times": 2,
        "within_days": 30,
    },
    {"name": "Never registered", "points": -5, "interaction": "registered", "frequency": "never"},
]


@pytest.fixture
def org(db: Session) -> dict[str, Any]:
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    boss = f.user(db, "boss", None, "Marketing Administrator")
    seller = f.user(db, "seller", sales, "Marketer")
    helper = f.user(db, "helper", support, "Marketer")
    ada = f.contact(db, seller, email="ada@example.com", country="JP")
    bob = f.contact(db, seller, email="bob@example.com", country="DE")
    cy = f.contact(db, helper, email="cy@example.com", country="JP")
    webinar = f.event(db, seller, "Launch")
    other = f.event(db, seller, "Recap")
    f.attendance(db, webinar, ada, seconds=45 * 60)
    f.attendance(db, other, ada, seconds=35 * 60)
    f.attendance(db, webinar, bob, seconds=10 * 60)
    f.registration(db, webinar, bob)
    message = _message(db, seller)
    _opened(db, message, ada, T0 - timedelta(days=3), n=2)
    _opened(db, message, bob, T0 - timedelta(days=40), n=3)
    # The set-up's changes (roles given) were handled before any model existed.
    db.execute(delete(changes.DataChange))
    db.commit()
    return {
        "sales": sales,
        "boss": boss,
        "seller": seller,
        "helper": helper,
        "ada": ada,
        "bob": bob,
        "cy": cy,
        "webinar": webinar,
        "message": message,
    }


def _live(db: Session, who: Any, **fields: Any) -> int:
    me = f.principal(db, who)
    fields.setdefault("conditions", CONDITIONS)
    model = service.create_model(db=db, principal=me, name=fields.pop("name", "Fit"), **fields)
    service.set_state(db=db, principal=me, model_id=model.id, state="live")
    service.rescore_model(db=db, principal=me, model_id=model.id, now=T0)
    db.commit()
    return model.id


def _scores(db: Session, model_id: int) -> dict[int, tuple[int, str | None, bool]]:
    rows = db.scalars(select(LeadScore).where(LeadScore.model_id == model_id))
    return {r.record_id: (r.score, r.grade, r.sales_ready) for r in rows}


def test_a_model_scores_fields_and_interactions_with_frequencies_windows_and_grades(
    db: Session, org: dict[str, Any]
) -> None:
    grades = [{"grade": "A", "min": 50}, {"grade": "B", "min": 20}, {"grade": "C", "min": None}]
    model_id = _live(db, org["seller"], grades=grades, sales_ready=60)
    ada, bob = org["ada"].id, org["bob"].id
    # Ada: in Japan 10 + attended two events for 30+ min 2 × 20 + two opens in 30 days 15
    # + never registered −5 = 60. Bob: his 10 minutes do not count, his opens are too old,
    # and he registered: 0. Cy is in Support, which the seller (a Marketer) cannot read.
    assert _scores(db, model_id) == {ada: (60, "A", True), bob: (0, "C", False)}
    ready = db.scalar(select(LeadScore).where(LeadScore.record_id == ada))
    assert ready is not None
    assert ready.sales_ready_at == T0

    said = service.explain(
        db=db, principal=f.principal(db, org["seller"]), score_id=ready.id, now=T0
    )
    assert said.current
    assert said.total == 60
    assert said.grade == "A"
    by_name = {p.name: p for p in said.parts}
    assert by_name["In Japan"].holds
    assert by_name["In Japan"].earned == 10
    attended = by_name["Attended 30 min"]
    assert (attended.count, attended.earned) == (2, 40)
    assert sorted(i.about for i in attended.items) == ["Launch", "Recap"]
    assert by_name["Opened twice lately"].earned == 15
    assert by_name["Never registered"].earned == -5
    assert "each time" in attended.description

    # Time passes: the opens leave the 30-day window and their points expire.
    later = T0 + timedelta(days=40)
    report = jobs.rescore_due(_factory(db), max_age=timedelta(hours=1), now=later)
    assert [r.model_id for r in report.rescored] == [model_id]
    db.expire_all()
    assert _scores(db, model_id)[ada] == (45, "B", False)


def _factory(db: Session) -> sessionmaker[Session]:
    return sessionmaker(bind=db.get_bind(), expire_on_commit=False)


def test_new_interactions_update_scores_through_the_outbox(
    db: Session, org: dict[str, Any]
) -> None:
    model_id = _live(db, org["seller"], sales_ready=30)
    bob = org["bob"]
    assert _scores(db, model_id)[bob.id][0] == 0
    # Bob opens twice now: the tracking records an interaction, the outbox names him.
    _opened(db, org["message"], bob, datetime.now(UTC) - timedelta(hours=1), n=2)
    changes.record(db, changes.INTERACTION, contact_ids=[bob.id])
    db.commit()
    segment_jobs.process_changes(_factory(db))
    db.expire_all()
    assert _scores(db, model_id)[bob.id] == (15, "D", False)
    assert db.scalar(select(func.count()).select_from(changes.DataChange)) == 0


def test_scores_belong_to_the_model_owner_and_other_units_see_neither_rows_nor_counts(
    db: Session, org: dict[str, Any]
) -> None:
    """B9: a score is its model owner's record. The helper (Marketer in Support, a BU-level
    role) sees none of the scores of the seller's model, owned in Sales, as records or in
    counts; the seller and the organization-level boss see them all."""
    model_id = _live(db, org["seller"])
    helper, seller = f.principal(db, org["helper"]), f.principal(db, org["seller"])
    assert service.list_scores(db=db, principal=helper).items == []
    with pytest.raises(NotFound):
        service.list_scores(db=db, principal=helper, model_id=model_id)
    assert service.count_scores(db=db, principal=helper, model_id=model_id) == 0
    assert service.scores_of(db=db, principal=helper, contact_id=org["ada"].id) == []
    some = db.scalar(select(LeadScore.id).where(LeadScore.model_id == model_id))
    assert some is not None
    with pytest.raises(NotFound):
        service.explain(db=db, principal=helper, score_id=some)
    assert service.count_scores(db=db, principal=seller, model_id=model_id) == 2
    boss = f.principal(db, org["boss"])
    assert len(service.list_scores(db=db, principal=boss, model_id=model_id).items) == 2
    # A segment over scores is no way round it either: the helper's preview finds nobody.
    tree = {"score": {"model": model_id, "score": {"gte": 0}}}
    with pytest.raises(ValidationFailed, match=r"scoring model .* not found"):
        segment_service.preview(db=db, principal=helper, criteria=tree)


def test_segments_select_by_score_grade_and_sales_ready(db: Session, org: dict[str, Any]) -> None:
    model_id = _live(db, org["seller"], sales_ready=60)
    me = f.principal(db, org["seller"])

    def who(tree: dict[str, Any]) -> set[int]:
        result = segment_service.preview(db=db, principal=me, criteria=tree)
        return {c.id for c in result.items}

    ada, bob = org["ada"].id, org["bob"].id
    assert who({"score": {"model": model_id, "score": {"gte": 50}}}) == {ada}
    assert who({"score": {"model": model_id, "grade": {"in": ["d"]}}}) == {bob}
    assert who({"score": {"model": model_id, "sales_ready": True}}) == {ada}
    assert who({"not": {"score": {"model": model_id, "sales_ready": True}}}) == {bob}
    with pytest.raises(
        ValidationFailed, match=r"criteria\.score\.sales_ready: takes true or false"
    ):
        who({"score": {"model": model_id, "sales_ready": "yes"}})


def test_lead_models_score_leads_on_their_contact_and_mark_them_sales_ready(
    db: Session, org: dict[str, Any]
) -> None:
    seller = org["seller"]
    lead = Lead(
        email="ada@example.com",
        contact_id=org["ada"].id,
        owner_type="user",
        owner_id=seller.id,
        owning_bu_id=seller.business_unit_id,
    )
    orphan = Lead(
        email="zed@example.com",
        owner_type="user",
        owner_id=seller.id,
        owning_bu_id=seller.business_unit_id,
    )
    # A lead of the seller's on a contact of Support's, which the seller cannot read.
    elsewhere = Lead(
        email="cy@example.com",
        contact_id=org["cy"].id,
        owner_type="user",
        owner_id=seller.id,
        owning_bu_id=seller.business_unit_id,
    )
    db.add_all([lead, orphan, elsewhere])
    db.commit()
    first = _live(db, seller, target="lead", sales_ready=50, name="First")
    _live(db, seller, target="lead", sales_ready=10, name="Second")
    # A lead without a contact is not scored (nothing to score it on), nor one whose
    # contact the model's owner may not read.
    assert _scores(db, first) == {lead.id: (60, "B", True)}
    db.refresh(lead)
    assert lead.sales_ready_at == T0
    assert lead.sales_ready_model_id == first


def test_bad_models_are_refused_naming_the_field(db: Session, org: dict[str, Any]) -> None:
    me = f.principal(db, org["seller"])

    def refused(**fields: Any) -> str:
        with pytest.raises((ValidationFailed, NotFound)) as caught:
            service.create_model(db=db, principal=me, name="Bad", **fields)
        return str(caught.value.field)

    assert refused(conditions=[{"name": "x", "points": 1}]) == "conditions[0]"
    assert (
        refused(conditions=[{"name": "x", "points": 1, "contact": {"country": {"near": 1}}}])
        == "conditions[0].contact.country"
    )
    event_start = {"start": {"after": "31-02-2026"}}
    bad_event = {"name": "x", "points": 1, "interaction": "attended", "event": event_start}
    assert refused(conditions=[bad_event]) == "conditions[0].event.start"
    assert (
        refused(conditions=[{"name": "x", "points": 1, "interaction": "registered", "form_id": 3}])
        == "conditions[0]"
    )
    unknown_form = {"name": "x", "points": 1, "interaction": "form_submitted", "form_id": 999}
    assert refused(conditions=[unknown_form]) == "conditions[0].form_id"
    assert refused(grades=[{"grade": "A", "min": 10}, {"grade": "B", "min": 20}]) == "grades[1].min"
    assert refused(target="account") == "target"
    assert db.scalar(select(func.count()).select_from(LeadScore)) == 0


def test_form_submissions_count_as_interactions(db: Session, org: dict[str, Any]) -> None:
    seller = org["seller"]
    form = MarketingForm(
        name="Contact us",
        owner_type="user",
        owner_id=seller.id,
        owning_bu_id=seller.business_unit_id,
    )
    db.add(form)
    db.flush()
    db.add(CaptureInteraction(kind=FORM_SUBMITTED, form_id=form.id, contact_id=org["bob"].id))
    db.commit()
    conditions = [
        {"name": "Asked", "points": 25, "interaction": "form_submitted", "form_id": form.id}
    ]
    model_id = _live(db, seller, conditions=conditions)
    assert _scores(db, model_id) == {
        org["ada"].id: (0, "D", False),
        org["bob"].id: (25, "D", False),
    }


def test_a_journey_takes_in_people_as_they_become_sales_ready(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    """The trigger "became sales-ready": people enter when their score reaches the threshold
    after the journey went live — not those who were sales-ready before."""
    from gatherly.journey import engine as journey_engine
    from gatherly.journey import service as journey_service
    from tests.journey.conftest import build_world, members

    world = build_world(db, session_factory)
    db.execute(delete(changes.DataChange))  # the set-up's, handled before any model existed
    me = world.principal(db)
    ada, bob = world.sales_people
    webinar = f.event(db, world.marketer, "Launch")
    f.attendance(db, webinar, db.get_one(Contact, ada), seconds=3600)
    db.commit()
    conditions = [{"name": "Attended", "points": 50, "interaction": "attended"}]
    model_id = _live(db, world.marketer, conditions=conditions, sales_ready=50)
    plan = {
        "trigger": {"sales_ready": model_id},
        "start": "tag",
        "steps": {"tag": {"type": "add_to_list", "list_id": world.list_id}},
    }
    journey = journey_service.create_journey(db=db, principal=me, name="Hot", definition=plan)
    later = T0 + timedelta(hours=1)
    journey_service.go_live(db=db, principal=me, journey_id=journey.id, now=later)
    db.commit()
    journey_engine.tick(session_factory, now=later + timedelta(minutes=1))
    assert members(db, journey.id) == {}  # Ada was sales-ready before it went live
    # Bob attends; the outbox rescores him and he crosses the threshold: he enters.
    f.attendance(db, webinar, db.get_one(Contact, bob), seconds=1800)
    changes.record(db, changes.EVENT, ref_id=webinar.id, contact_ids=[bob])
    db.commit()
    jobs.handle_changes(session_factory, list(db.scalars(select(changes.DataChange))), later)
    journey_engine.tick(session_factory, now=later + timedelta(minutes=2))
    assert members(db, journey.id) == {bob: ("done", None)}


def test_merging_contacts_moves_lead_scores_and_rescores_the_master(
    db: Session, org: dict[str, Any]
) -> None:
    from gatherly.capture import merge

    seller = org["seller"]
    twin = f.contact(db, seller, email="ada.twin@example.com", country="DE")
    f.attendance(db, org["webinar"], twin, seconds=50 * 60)
    lead = Lead(
        email="ada.twin@example.com",
        contact_id=twin.id,
        owner_type="user",
        owner_id=seller.id,
        owning_bu_id=seller.business_unit_id,
    )
    db.add(lead)
    db.commit()
    lead_model = _live(db, seller, target="lead", name="Leads")
    assert _scores(db, lead_model)[lead.id][0] == 20 - 5  # attended once, never registered
    me = f.principal(db, seller)
    merged = merge.merge(
        db=db, principal=me, record_type="contact", master_id=org["ada"].id, duplicate_id=twin.id
    )
    db.commit()
    assert merged.moved["lead_scores"] == 1
    score = db.scalar(select(LeadScore).where(LeadScore.model_id == lead_model))
    assert score is not None
    assert score.contact_id == org["ada"].id
    segment_jobs.process_changes(_factory(db))
    db.expire_all()
    # Ada's history now holds the twin's attendance too: 10 + 3 × 20 + 15 − 5.
    assert _scores(db, lead_model)[lead.id][0] == 80


def test_rescoring_tens_of_thousands_of_touched_contacts_binds_no_parameter_per_id(
    db: Session, org: dict[str, Any]
) -> None:
    """The worker rescores up to 20,000 touched contacts at once; one bound parameter per
    id and interaction condition would pass PostgreSQL's 65,535 limit."""
    from gatherly.scoring import engine
    from gatherly.scoring.models import ScoringModel

    model_id = _live(db, org["seller"])
    model = db.get(ScoringModel, model_id)
    assert model is not None
    touched = [org["ada"].id, *range(10_000_000, 10_030_000)]
    result = engine.rescore(db, model, now=T0 + timedelta(days=40), contact_ids=touched)
    assert (result.scored, result.changed) == (1, 1)  # Ada's opens left the window
