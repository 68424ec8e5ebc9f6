"""The lead scoring pages (issue 18, SPEC B9): make a scoring model, edit its conditions as
rows (a mistake said beside its row, nothing saved), take it live, have the worker score,
read the scores with their explanation and as CSV, see them on the contact and lead pages,
start a journey when people become sales-ready — and nobody of another unit sees the model,
its scores or their count.

The organisation: Sales has a marketer (Sam) who owns Ada (in Japan, attended Launch for
45 minutes) and Bob (in Germany, registered only); Support has its own marketer (Hal, a
business-unit-level role), who may read none of it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact, Lead
from gatherly.core.db import utcnow
from gatherly.journey.models import Journey
from gatherly.scoring import service
from gatherly.scoring.models import LeadScore, ScoringModel
from gatherly.web import scoring_form as sf
from tests import factories as f
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password


@dataclass
class World:
    sam: Any
    hal: Any
    ada: Contact
    bob: Contact
    launch: int


@pytest.fixture
def world(db: Session) -> World:
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    sam = with_password(db, f.user(db, "sam", sales, "Marketer"))
    hal = with_password(db, f.user(db, "hal", support, "Marketer"))
    ada = f.contact(db, sam, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    ada.country = "JP"
    bob = f.contact(db, sam, email="bob@example.com", first_name="Bob", last_name="Byte")
    bob.country = "DE"
    launch = f.event(db, sam, "Launch")
    f.attendance(db, launch, ada, seconds=45 * 60)
    f.registration(db, launch, bob)
    db.commit()
    return World(sam, hal, ada, bob, launch.id)


def _editor(csrf: str, world: World, **extra: str) -> dict[str, str]:
    """The editor as posted: two conditions (in Japan; attended Launch for 30 minutes,
    each time), the grades A and B, sales-ready at 30."""
    return {
        "csrf": csrf,
        "action": "save",
        "name": "Fit",
        "description": "Who is worth a call",
        "target": "contact",
        "sales_ready": "30",
        "conditions.0.name": "In Japan",
        "conditions.0.points": "10",
        "conditions.0.kind": "contact",
        "conditions.0.field": "country",
        "conditions.0.op": "equals",
        "conditions.0.value": "JP",
        "conditions.1.name": "Attended Launch",
        "conditions.1.points": "20",
        "conditions.1.kind": "attended",
        "conditions.1.event": str(world.launch),
        "conditions.1.min_minutes": "30",
        "conditions.1.frequency": "each",
        "conditions.1.times": "1",
        "conditions.1.within_days": "",
        "grades.0.grade": "A",
        "grades.0.min": "30",
        "grades.1.grade": "B",
        "grades.1.min": "",
        **extra,
    }


def _stored(db: Session, model_id: int) -> ScoringModel:
    db.expire_all()
    return db.get_one(ScoringModel, model_id)


def _scored(db: Session, model_id: int) -> None:
    """What the worker does after Go live or Rescore now: the full rescore."""
    db.expire_all()
    service.run_full(db, db.get_one(ScoringModel, model_id), now=utcnow())
    db.commit()


def _score_of(db: Session, model_id: int, person: Contact) -> LeadScore:
    found = db.scalar(
        select(LeadScore).where(LeadScore.model_id == model_id, LeadScore.contact_id == person.id)
    )
    assert found is not None
    return found


def test_a_model_is_made_and_edited_by_rows_and_a_mistake_saves_nothing(
    client: TestClient, db: Session, world: World
) -> None:
    csrf = client_sign_in(client, "sam")
    assert "No scoring models yet" in text_of(client.get("/scoring").text)
    nameless = client.post("/scoring", data={"csrf": csrf, "name": " ", "target": "contact"})
    assert nameless.status_code == 422
    assert "Name cannot be empty." in text_of(nameless.text)
    made = client.post(
        "/scoring", data={"csrf": csrf, "name": "Fit", "target": "contact"}, follow_redirects=False
    )
    assert made.status_code == 303
    model_id = int(made.headers["location"].split("/")[2])
    url = f"/scoring/{model_id}/edit"
    editor = client.get(made.headers["location"])
    assert "give it its conditions" in text_of(editor.text)
    assert 'name="grades.3.grade" value="D"' in editor.text  # the default grades A–D

    # A row button redraws the editor with what was typed, and stores nothing.
    added = client.post(url, data=_editor(csrf, world, action="add_condition"))
    assert added.status_code == 200
    assert 'id="condition-2"' in added.text
    assert 'value="Attended Launch"' in added.text
    removed = client.post(url, data=_editor(csrf, world, action="remove_condition.0"))
    assert 'id="condition-1"' not in removed.text
    assert 'value="In Japan"' not in removed.text
    assert _stored(db, model_id).conditions == []

    # Mistakes: each said beside its row, what was typed kept, nothing saved.
    bad_date = '{"interaction": "attended", "event": {"start": {"after": "31-02-2026"}}}'
    for extra, place, said in (
        ({"conditions.1.points": "lots"}, "conditions-1-points", "The points must be a whole"),
        (
            {"conditions.1.kind": "json", "conditions.1.raw": bad_date},
            "conditions-1-raw",
            "is not a date",
        ),
        ({"grades.1.min": "40"}, "grades-1-min", "40 is not below 30"),
        ({"conditions.1.event": "999999"}, "conditions-1-event", "not found"),
    ):
        refused = client.post(url, data=_editor(csrf, world, **extra))
        assert refused.status_code == 422, (extra, text_of(refused.text)[:400])
        error = re.search(rf'id="{place}-error">([^<]*)<', refused.text)
        assert error, (extra, text_of(refused.text)[:600])
        assert said in error.group(1), error.group(1)
        assert "Nothing was saved" in refused.text
        assert 'value="Attended Launch"' in refused.text
        assert _stored(db, model_id).conditions == []

    saved = client.post(url, data=_editor(csrf, world), follow_redirects=False)
    assert saved.status_code == 303
    row = _stored(db, model_id)
    assert [c["name"] for c in row.conditions] == ["In Japan", "Attended Launch"]
    assert row.conditions[1]["event"] == {"id": world.launch}
    assert (row.sales_ready, row.grades[-1]) == (30, {"grade": "B", "min": None})
    shown = text_of(client.get(saved.headers["location"]).text)
    assert "Saved." in shown
    assert "the contact's country equals 'JP'" in shown
    assert "attended “Launch” for at least 30 min — each time" in shown
    assert "30 points or more" in shown
    # The editor shows the stored model as rows again; one the rows cannot say, as JSON.
    again = client.get(url).text
    assert 'name="conditions.1.event"' in again
    assert f'<option value="{world.launch}" selected>Launch</option>' in again
    typed = sf.Editor.of(row)
    assert [c.kind for c in typed.conditions] == ["contact", "attended"]
    webinar = {"name": "Any webinar", "points": 5, "interaction": "attended"}
    odd = sf.ConditionRow.of({**webinar, "event": {"type": "webinar"}})
    assert odd.kind == "json"
    assert '"type": "webinar"' in odd.raw
    assert odd.value_of(0) == {**webinar, "event": {"type": "webinar"}}


def test_live_scores_their_explanation_csv_and_the_contact_and_lead_pages(
    client: TestClient, db: Session, world: World
) -> None:
    csrf = client_sign_in(client, "sam")
    made = client.post(
        "/scoring", data={"csrf": csrf, "name": "Fit", "target": "contact"}, follow_redirects=False
    )
    model_id = int(made.headers["location"].split("/")[2])
    page_url = f"/scoring/{model_id}"
    # No conditions yet: going live is refused, in words, and nothing changes.
    refused = client.post(f"{page_url}/state", data={"csrf": csrf, "state": "live"})
    assert refused.status_code == 409
    assert "needs at least one condition" in text_of(refused.text)
    client.post(f"{page_url}/edit", data=_editor(csrf, world))
    assert "Not rescored yet" in text_of(client.get(page_url).text)
    live = client.post(f"{page_url}/state", data={"csrf": csrf, "state": "live"})
    assert "The model is live: the worker scores everyone" in text_of(live.text)
    rescore = client.post(f"{page_url}/rescore", data={"csrf": csrf})
    assert "the worker does it shortly" in text_of(rescore.text)
    assert "A full rescore is waiting for the worker." in text_of(rescore.text)

    _scored(db, model_id)
    shown = client.get(page_url).text
    said = text_of(shown)
    assert "2 scores you may read, 1 sales-ready" in said
    assert "Records scored" not in said  # the rescore's total: every score, readable or not
    ada_score = _score_of(db, model_id, world.ada)
    assert (ada_score.score, ada_score.grade, ada_score.sales_ready) == (30, "A", True)
    assert f'<a href="/contacts/{world.ada.id}">Ada Lovelace</a>' in shown
    assert shown.index("Ada Lovelace") < shown.index("Bob Byte")  # highest first
    assert f'href="/scoring/scores/{ada_score.id}"' in shown

    why = client.get(f"/scoring/scores/{ada_score.id}")
    assert why.status_code == 200
    why_text = text_of(why.text)
    assert "Why Ada Lovelace scores 30" in why_text
    assert "The stored score is current." in why_text
    assert "attended “Launch” for at least 30 min — each time 20 1 20" in why_text
    assert f'<a href="/events/{world.launch}">Launch</a>' in why.text

    exported = client.get(f"{page_url}/scores.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["name"], r["score"], r["grade"]) for r in rows} == {
        ("Ada Lovelace", "30", "A"),
        ("Bob Byte", "0", "B"),
    }

    contact_page = client.get(f"/contacts/{world.ada.id}").text
    assert "Scores" in contact_page
    assert f'href="/scoring/scores/{ada_score.id}"' in contact_page
    assert "Fit 30 A Yes" in text_of(contact_page)

    # A lead model marks the lead sales-ready; its page says since when, and in which.
    lead = Lead(
        email="ada@example.com",
        first_name="Ada",
        contact_id=world.ada.id,
        owner_type="user",
        owner_id=world.sam.id,
        owning_bu_id=world.sam.business_unit_id,
    )
    db.add(lead)
    me = f.principal(db, world.sam)
    conditions = _stored(db, model_id).conditions
    leads = service.create_model(
        db=db, principal=me, name="Leads", target="lead", conditions=conditions, sales_ready=10
    )
    service.set_state(db=db, principal=me, model_id=leads.id, state="live")
    service.rescore_model(db=db, principal=me, model_id=leads.id)
    db.commit()
    lead_page = text_of(client.get(f"/leads/{lead.id}").text)
    assert "Sales-ready since" in lead_page
    assert "in the scoring model Leads" in lead_page
    assert "Leads 30 C Yes"  # the default grades: C from 30 in lead_page

    # Stop: the scores stay; Delete asks first, then goes with its scores.
    stopped = client.post(f"{page_url}/state", data={"csrf": csrf, "state": "draft"})
    assert "The model is stopped" in text_of(stopped.text)
    assert "2 scores you may read" in text_of(stopped.text)
    ask = client.get(f"{page_url}/delete")
    assert "Its scores are deleted with it (2 you may read)" in text_of(ask.text)
    gone = client.post(f"{page_url}/delete", data={"csrf": csrf}, follow_redirects=False)
    assert gone.headers["location"] == "/scoring?deleted=1"
    assert db.scalar(select(LeadScore.id).where(LeadScore.model_id == model_id)) is None


def test_another_units_marketer_sees_neither_the_model_nor_its_scores(
    client: TestClient, db: Session, world: World
) -> None:
    me = f.principal(db, world.sam)
    row = service.create_model(
        db=db,
        principal=me,
        name="Sales fit",
        conditions=[{"name": "In Japan", "points": 10, "contact": {"country": "JP"}}],
    )
    service.set_state(db=db, principal=me, model_id=row.id, state="live")
    service.rescore_model(db=db, principal=me, model_id=row.id)
    db.commit()
    score = _score_of(db, row.id, world.ada)
    # Hal may read Ada (shared with everyone), but not Sam's model nor its scores.
    f.share_with_organization(db, "contact", world.ada.id)
    client_sign_in(client, "hal")
    listed = client.get("/scoring")
    assert "Sales fit" not in listed.text
    assert "No scoring models yet" in text_of(listed.text)
    for url in (
        f"/scoring/{row.id}",
        f"/scoring/{row.id}/edit",
        f"/scoring/{row.id}/scores.csv",
        f"/scoring/{row.id}/delete",
        f"/scoring/scores/{score.id}",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "Sales fit" not in answer.text, url
    ada = client.get(f"/contacts/{world.ada.id}")
    assert ada.status_code == 200
    assert 'id="scores"' not in ada.text
    assert "Sales fit" not in ada.text
    # Nor may a journey start from it: the select does not offer it.
    assert "Sales fit" not in client.get("/journeys/new").text


def test_a_journey_starts_when_people_become_sales_ready(
    client: TestClient, db: Session, world: World
) -> None:
    me = f.principal(db, world.sam)
    row = service.create_model(db=db, principal=me, name="Fit", sales_ready=10)
    db.commit()
    csrf = client_sign_in(client, "sam")
    form = client.get("/journeys/new").text
    assert '<option value="sales_ready">become sales-ready in a scoring model</option>' in form
    assert f'<option value="{row.id}">Fit</option>' in form
    unchosen = client.post(
        "/journeys/new", data={"csrf": csrf, "name": "Call", "entry": "sales_ready"}
    )
    assert unchosen.status_code == 422
    assert "choose the scoring model" in text_of(unchosen.text)
    made = client.post(
        "/journeys/new",
        data={"csrf": csrf, "name": "Call", "entry": "sales_ready", "trigger_model": str(row.id)},
        follow_redirects=False,
    )
    assert made.status_code == 303, text_of(made.text)[:400]
    journey = db.scalars(select(Journey)).one()
    assert journey.definition["trigger"] == {"sales_ready": row.id}
    shown = client.get(made.headers["location"]).text
    assert "People whose score in “Fit” becomes sales-ready after it goes live." in text_of(shown)
    assert f'<option value="{row.id}" selected>Fit</option>' in shown


# ------------------------------------------------------------------ in a browser


def test_a_marketer_builds_a_model_by_rows_takes_it_live_and_reads_a_score(
    page: Page, live: Live, db: Session, world: World, session_factory: sessionmaker[Session]
) -> None:
    sign_in(page, "sam", next="/scoring")
    page.get_by_label("Name", exact=True).fill("Fit")
    page.get_by_role("button", name="Create scoring model").click()
    expect(page.locator("#notice")).to_contain_text("Scoring model created")
    page.get_by_role("button", name="Add a condition").click()
    first = page.locator("#condition-0")
    first.get_by_label("Name").fill("In Japan")
    first.get_by_label("Points", exact=True).fill("10")
    first.get_by_label("Field").select_option(label="Country (ISO code, e.g. DE)")
    first.get_by_label("Value").fill("JP")
    expect(first.get_by_label("Event")).to_be_hidden()  # a field condition names no event
    page.get_by_role("button", name="Add a condition").click()
    second = page.locator("#condition-1")
    expect(first.get_by_label("Value")).to_have_value("JP")  # kept through the redraw
    second.get_by_label("Name").fill("Attended Launch")
    second.get_by_label("Points", exact=True).fill("20")
    second.get_by_label("When the person").select_option(label="Attended an event")
    second.get_by_label("Event").select_option(label="Launch")
    second.get_by_label("For at least (minutes)").fill("30")
    expect(second.get_by_label("Value")).to_be_hidden()
    shot(page, "scoring-editor", live)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#condition-table")).to_contain_text(
        "attended “Launch” for at least 30 min — at least once"
    )
    page.get_by_role("button", name="Go live").click()
    expect(page.locator("#model-state")).to_have_text("Live")
    expect(page.locator("#pending")).to_be_visible()
    model_id = int(page.url.split("/scoring/")[1].split("?")[0])
    with session_factory() as worker:
        _scored(worker, model_id)
    page.reload()
    expect(page.locator("#score-count")).to_contain_text("2 scores you may read")
    shot(page, "scoring-model", live)
    page.get_by_role("link", name="Why? The score of Ada Lovelace explained").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Why Ada Lovelace scores 30")
    expect(page.locator("#part-table")).to_contain_text("Launch")
    shot(page, "scoring-explanation", live)
