"""Marketing events pages (issue 5): the list with filters, count and paging; one event with
its funnel, per-minute presence chart and people; BU scoping on both; the presence maths."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.event.models import (
    AttendanceInterval,
    EventAttendance,
    EventRecording,
    EventSession,
    EventTranscript,
    MarketingEvent,
    TranscriptCue,
)
from gatherly.event.presence import per_minute
from gatherly.org.models import BusinessUnit, User
from gatherly.segment import service as seg
from gatherly.teams import fetch
from gatherly.web.pages import ZONE_COOKIE
from tests import factories as f
from tests.web.conftest import (
    Live,
    client_sign_in,
    key_column_stays_in_view,
    no_horizontal_scroll,
    shot,
    sign_in,
    text_of,
    with_password,
)

START = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)  # 15:00 in Berlin (UTC+1 in March)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# --- data ------------------------------------------------------------------------------------


@dataclass
class World:
    germany: BusinessUnit
    france: BusinessUnit
    anna: User  # Marketer in Germany
    bert: User  # Marketer in France
    spring: MarketingEvent  # Germany, with one session and people
    paris: MarketingEvent  # France


def _person(db: Session, owner: User, first: str, last: str) -> Contact:
    email = f"{first}.{last}@example.com".lower()
    return f.contact(db, owner, first_name=first, last_name=last, email=email)


def _attended(
    db: Session,
    ev: MarketingEvent,
    person: Contact,
    session: EventSession,
    spans: list[tuple[float, float]],
    **fields: object,
) -> EventAttendance:
    seconds = int(sum((b - a) * 60 for a, b in spans))
    record = f.attendance(
        db,
        ev,
        person,
        seconds,
        first_join_at=at(min(a for a, _ in spans)),
        last_leave_at=at(max(b for _, b in spans)),
        **fields,
    )
    for a, b in spans:
        db.add(
            AttendanceInterval(
                attendance_id=record.id,
                session_id=session.id,
                report_external_id="report-1",
                join_at=at(a),
                leave_at=at(b),
                duration_seconds=int((b - a) * 60),
            )
        )
    db.flush()
    return record


def _world(db: Session) -> World:
    germany, france = f.bu(db, "Germany"), f.bu(db, "France")
    anna = with_password(db, f.user(db, "anna", germany, "Marketer"))
    bert = with_password(db, f.user(db, "bert", france, "Marketer"))
    spring = f.event(
        db,
        anna,
        "Spring Launch Webinar",
        start_at=START,
        end_at=at(60),
        time_zone="Europe/Berlin",
        organizer_name="Olga Organizer",
        organizer_email="olga@gatherly.test",
        description="What is new this spring.",
        registrant_count=3,
        attendee_count=2,
        cancellation_count=1,
    )
    f.event(
        db,
        anna,
        "Autumn Roadmap",
        status="draft",
        start_at=datetime(2025, 9, 10, 9, 0, tzinfo=UTC),
        organizer_name="Paul Planner",
    )
    f.event(
        db,
        anna,
        "Canceled Summit",
        status="canceled",
        start_at=datetime(2025, 6, 1, 8, 0, tzinfo=UTC),
        organizer_name="Olga Organizer",
    )
    paris = f.event(
        db,
        bert,
        "Paris Secret Summit",
        start_at=datetime(2025, 6, 2, 8, 0, tzinfo=UTC),
        organizer_name="Olga Organizer",
        registrant_count=1,
    )
    session = EventSession(
        event_id=spring.id, external_id="s1", subject="Main session", start_at=START, end_at=at(60)
    )
    db.add(session)
    db.flush()
    ann, ben = _person(db, anna, "Ann", "Early"), _person(db, anna, "Ben", "Late")
    cara, dan = _person(db, anna, "Cara", "Cancel"), _person(db, anna, "Dan", "Noshow")
    walt = _person(db, anna, "Walt", "Presenter")
    regs = {
        p.id: f.registration(db, spring, p, first_name=p.first_name, last_name=p.last_name)
        for p in (ann, ben, dan)
    }
    f.registration(db, spring, cara, "canceled", first_name="Cara", last_name="Cancel")
    # Ann: two overlapping devices, then back for the last ten minutes.
    _attended(
        db, spring, ann, session, [(0, 30), (20, 45), (50, 60)], registration_id=regs[ann.id].id
    )
    _attended(db, spring, ben, session, [(10, 40)], registration_id=regs[ben.id].id)
    # A presenter: present (in the chart), not counted as an attendee (T7).
    _attended(
        db,
        spring,
        walt,
        session,
        [(15, 16.5)],
        excluded_reason="presenter",
        display_name="Walt Presenter",
    )
    # Someone on Anna's event whose rows belong to France: Anna may not read them.
    yves = _person(db, bert, "Yves", "Hidden")
    hidden_reg = f.registration(db, spring, yves, first_name="Yves", last_name="Hidden")
    hidden_att = _attended(db, spring, yves, session, [(15, 16)])
    for row in (hidden_reg, hidden_att):
        row.owner_id, row.owning_bu_id = bert.id, france.id
    zoe = _person(db, bert, "Zoe", "Parisienne")
    f.registration(db, paris, zoe, first_name="Zoe", last_name="Parisienne")
    db.commit()
    return World(germany, france, anna, bert, spring, paris)


@pytest.fixture
def world(db: Session) -> World:
    return _world(db)


def _signed_in(client: TestClient, username: str) -> TestClient:
    client_sign_in(client, username)
    return client


def _count(html: str) -> int:
    found = re.search(r"<strong>(\d+)</strong> events?", html)
    assert found, html
    return int(found.group(1))


def _rows(html: str) -> list[str]:
    return re.findall(r'<a href="/events/\d+">([^<]+)</a>', html)


# --- the list ----------------------------------------------------------------------------------


def test_the_list_shows_only_readable_events_and_filters_narrow_it(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "anna", next="/events")
    expect(page.get_by_role("heading", level=1)).to_have_text("Marketing events")
    expect(page.locator("#event-count")).to_have_text("3 events.")
    table = page.get_by_role("table")
    expect(table.locator("tbody tr")).to_have_count(3)
    for name in ("Spring Launch Webinar", "Autumn Roadmap", "Canceled Summit"):
        expect(table.get_by_role("link", name=name)).to_be_visible()
    spring_row = table.locator("tr", has_text="Spring Launch Webinar")
    expect(spring_row).to_contain_text("Tue 4 Mar 2025, 15:00 CET")
    expect(spring_row).to_contain_text("Olga Organizer")
    expect(spring_row.locator("td.num")).to_have_text(["3", "2", "1"])
    assert "Paris Secret Summit" not in page.content()
    shot(page, "events", live)

    page.get_by_label("Name contains").fill("spring")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#event-count")).to_have_text("1 event matches the filters.")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_label("Name contains")).to_have_value("spring")

    # Olga organizes a French event too; Anna's count and rows leave it out.
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Organizer (name or email)").fill("olga")
    page.get_by_label("Start from (UTC)").fill("2025-05-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#event-count")).to_have_text("1 event matches the filters.")
    expect(table.get_by_role("link")).to_have_text(["Canceled Summit"])

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Status").select_option("draft")
    page.get_by_role("button", name="Filter").click()
    expect(table.get_by_role("link")).to_have_text(["Autumn Roadmap"])


def test_the_list_counts_and_pages_through_readable_events_only(
    client: TestClient, world: World, db: Session
) -> None:
    for i in range(26):
        f.event(db, world.anna, f"Weekly {i:02d}", start_at=START + timedelta(days=i))
        f.event(db, world.bert, f"Hebdo {i:02d}", start_at=START + timedelta(days=i))
    db.commit()
    _signed_in(client, "anna")
    first = client.get("/events", params={"q": "weekly"})
    assert _count(first.text) == 26
    assert len(_rows(first.text)) == 25
    assert _rows(first.text)[0] == "Weekly 25"  # newest first
    next_link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert next_link
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert _rows(second.text) == ["Weekly 00"]
    assert 'rel="next"' not in second.text
    assert _count(second.text) == 26
    everything = client.get("/events").text
    assert _count(everything) == 26 + 3
    assert "Hebdo" not in everything
    assert "Paris" not in everything
    client.cookies.clear()
    _signed_in(client, "bert")
    theirs = client.get("/events").text
    assert _count(theirs) == 26 + 1
    assert "Spring Launch" not in theirs
    assert "Weekly" not in theirs


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start_from": "2025-13-01"}, "start_from", "Enter a date as YYYY-MM-DD."),
        ({"start_to": "yesterday"}, "start_to", "Enter a date as YYYY-MM-DD."),
        (
            {"start_from": "2025-06-02", "start_to": "2025-06-01"},
            "start_to",
            "The last day is before the first day.",
        ),
        ({"start_to": "9999-12-31"}, "start_to", "Enter a date before 9999-12-31."),
        ({"status": "bogus"}, "status", "status must be one of draft, published, canceled"),
        ({"q": "x" * 201}, "q", "Use at most 200 characters."),
        ({"organizer": "x" * 321}, "organizer", "Use at most 320 characters."),
    ],
)
def test_bad_filters_are_said_next_to_their_field(
    client: TestClient, world: World, params: dict[str, str], field: str, message: str
) -> None:
    _signed_in(client, "anna")
    response = client.get("/events", params=params)
    assert response.status_code == 422
    assert f'<p class="error" id="{field}-error">{message}' in response.text
    control = re.search(rf'<(?:input|select)[^>]* id="{field}"[^>]*>', response.text)
    assert control, response.text
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in control.group(0)
    assert _rows(response.text) == []


def test_a_forged_cursor_is_an_error_on_the_page_not_a_crash(
    client: TestClient, world: World
) -> None:
    _signed_in(client, "anna")
    response = client.get("/events", params={"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert "cursor is not one this API issued" in response.text
    assert _rows(response.text) == []


# --- one event --------------------------------------------------------------------------------


def test_the_event_page_shows_the_funnel_the_chart_and_the_people(
    page: Page, world: World, live: Live, db: Session
) -> None:
    seg.create_list(db=db, principal=f.principal(db, world.anna), name="Spring follow-up")
    db.commit()
    sign_in(page, "anna", next="/events")
    page.get_by_role("link", name="Spring Launch Webinar").click()
    expect(page).to_have_url(f"{live.url}/events/{world.spring.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Spring Launch Webinar")
    props = page.locator("dl.props")
    expect(props).to_contain_text("Tue 4 Mar 2025, 15:00 CET")
    expect(props).to_contain_text("Olga Organizer (olga@gatherly.test)")
    expect(props).to_contain_text("What is new this spring.")
    # Ann, Ben and Dan registered (Yves too, but Anna may not read him); Ann and Ben came.
    said = "2 of the 3 people registered attended (67 %)."
    expect(page.locator("#funnel-text")).to_have_text(said)
    expect(page.get_by_role("img", name=said)).to_be_visible()
    stats = page.locator(".numbers li")
    expect(stats).to_have_text(
        ["3 registered", "2 attended", "1 no-shows", "1 cancelled", "1 not counted"]
    )

    section = page.locator("section.presence")
    expect(section.get_by_role("heading", level=3)).to_contain_text("Main session")
    # 15:15 Berlin: Ann, Ben and the presenter Walt; Yves (unreadable) is not counted.
    peak = "Peak: 3 people at 15:15, from 15:00 to 16:00 (Europe/Berlin)"
    expect(section.locator(".peak")).to_have_text(peak)
    chart = section.get_by_role("img", name=re.compile("People present per minute"))
    expect(chart).to_have_attribute("aria-label", f"People present per minute. {peak}")
    expect(chart.locator("rect")).to_have_count(55)  # minutes 45–49 nobody was there
    expect(section.locator(".presence-x span")).to_have_text(
        ["15:00", "15:15", "15:30", "15:45", "16:00"]
    )
    section.get_by_text("Minute by minute").click()
    minutes = section.locator("details tbody tr")
    expect(minutes).to_have_count(60)
    expect(minutes.nth(15)).to_have_text(re.compile(r"15:15\s*3"))
    expect(minutes.nth(16)).to_have_text(re.compile(r"15:16\s*3"))  # Walt left at 15:16:30
    expect(minutes.nth(17)).to_have_text(re.compile(r"15:17\s*2"))
    expect(minutes.nth(45)).to_have_text(re.compile(r"15:45\s*0"))
    section.get_by_text("Minute by minute").click()

    people = page.get_by_role("table", name="People").locator("tbody tr")
    expect(people).to_have_count(5)
    day = "2025-03-04"
    cells = [
        [
            "Ann Early",
            "ann.early@example.com",
            "registered",
            "—",
            f"{day} 15:00",
            f"{day} 16:00",
            "1:05",
            "3",
        ],
        [
            "Ben Late",
            "ben.late@example.com",
            "registered",
            "—",
            f"{day} 15:10",
            f"{day} 15:40",
            "0:30",
            "1",
        ],
        ["Cara Cancel", "cara.cancel@example.com", "canceled", "—", "—", "—", "—", "—"],
        ["Dan Noshow", "dan.noshow@example.com", "registered", "—", "—", "—", "—", "—"],
        [
            "Walt Presenter",
            "walt.presenter@example.com",
            "not registered not counted: presenter",
            "—",
            f"{day} 15:15",
            f"{day} 15:16",
            "0:01",
            "1",
        ],
    ]
    for i, row in enumerate(cells):
        expect(people.nth(i).locator("td")).to_have_text(["", *row])  # "": the tick box
    expect(people.nth(0).get_by_role("link", name="Ann Early")).to_have_attribute(
        "href", re.compile(r"^/contacts/\d+$")
    )
    # Each number opens its people; the numbers add up on the tabs.
    page.get_by_role("link", name="1 no-shows").click()
    expect(page.get_by_role("link", name="No-show", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("Dan Noshow")
    page.get_by_role("link", name="Not counted", exact=True).click()
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("not counted: presenter")
    page.get_by_role("link", name="Attended", exact=True).click()
    page.get_by_label("Sort by").select_option("-minutes")
    page.get_by_role("button", name="Sort").click()
    expect(people.locator("td:nth-child(2)")).to_have_text(["Ann Early", "Ben Late"])
    # The attendees go to a follow-up list from here, counted first.
    page.get_by_label("all 2 that match").check()
    page.get_by_label("Marketing list").select_option(label="Spring follow-up")
    page.get_by_role("button", name="Add to list…").click()
    expect(page.locator("#plan")).to_contain_text("2 will be added")
    page.get_by_role("button", name="Add 2 contacts").click()
    expect(page.locator("#done")).to_have_text("2 contacts added.")
    page.go_back()
    page.go_back()
    text = page.locator("main").inner_text()
    assert "Yves" not in text
    assert "Hidden" not in text
    assert "Zoe" not in text
    shot(page, "event-detail", live)


def test_the_event_page_fits_a_phone(phone: Page, world: World, live: Live) -> None:
    sign_in(phone, "anna", next=f"/events/{world.spring.id}")
    expect(phone.locator("#funnel-text")).to_have_text(
        "2 of the 3 people registered attended (67 %)."
    )
    expect(phone.locator("section.presence .peak")).to_contain_text("Peak: 3 people at 15:15")
    no_horizontal_scroll(phone)
    shot(phone, "event-detail-phone", live)
    phone.goto("/events")
    expect(phone.locator("#event-count")).to_have_text("3 events.")
    no_horizontal_scroll(phone)
    # The table scrolls inside its card, the event's name staying in view.
    key_column_stays_in_view(phone, "Spring Launch Webinar")
    wrap = phone.locator(".table-wrap").first
    shot(phone, "events-phone", live)
    # On a 1366 px screen the whole table fits without scrolling.
    phone.set_viewport_size({"width": 1366, "height": 900})
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")


def test_an_event_of_another_bu_is_not_found_like_an_unknown_one(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "anna")
    response = page.goto(f"/events/{world.paris.id}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert "Paris" not in page.content()
    assert "Zoe" not in page.content()
    shot(page, "event-not-found", live)


def test_unreadable_and_unknown_events_answer_the_same_404(
    client: TestClient, world: World, db: Session
) -> None:
    _signed_in(client, "bert")
    hidden = client.get(f"/events/{world.spring.id}")
    unknown = client.get("/events/999999")
    assert hidden.status_code == unknown.status_code == 404
    assert "Spring" not in hidden.text
    assert "Ann Early" not in hidden.text
    same = hidden.text.replace(f"event {world.spring.id} not", "event N not")
    assert same == unknown.text.replace("event 999999 not", "event N not")
    own = client.get(f"/events/{world.paris.id}")
    assert own.status_code == 200
    assert "Zoe Parisienne" in own.text
    # Bert reads the French people on Anna's event's rows, but not the event: still nothing.
    assert "Yves" not in hidden.text
    for odd in ("0", "abc", "2147483648", "99999999999999999999", "-1", "%C2%B2"):
        response = client.get(f"/events/{odd}")
        assert response.status_code == 422  # as the API: the id itself is malformed
        assert "The event id in the address" in response.text
        assert "Input should" not in response.text  # the words of a person, not a validator
        assert "Spring" not in response.text


def test_a_user_level_assistant_sees_no_bu_events_and_counts_none(
    client: TestClient, world: World, db: Session
) -> None:
    with_password(db, f.user(db, "carla", world.germany, "Marketing Assistant"))
    db.commit()
    _signed_in(client, "carla")
    listing = client.get("/events").text
    assert _count(listing) == 0
    assert _rows(listing) == []
    assert client.get(f"/events/{world.spring.id}").status_code == 404
    # Shared with the organisation, the event is readable; its people are still not.
    f.share_with_organization(db, "marketing_event", world.spring.id)
    listing = client.get("/events").text
    assert _count(listing) == 1
    assert _rows(listing) == ["Spring Launch Webinar"]
    detail = client.get(f"/events/{world.spring.id}")
    assert detail.status_code == 200
    assert "Nobody you may read is registered." in detail.text
    assert re.findall(r'<span class="value">(\d+)</span>', detail.text)[:5] == ["0"] * 5
    assert "Ann Early" not in detail.text
    assert "Peak: 0 people" in detail.text
    assert "Nobody you may read registered or attended." in detail.text


# --- presence, minute by minute ------------------------------------------------------------------


def _present(spans: list[tuple[str, float, float]], start: float, end: float) -> list[int]:
    return [
        m.present for m in per_minute([(p, at(a), at(b)) for p, a, b in spans], at(start), at(end))
    ]


def test_presence_counts_a_person_once_per_minute_even_with_overlapping_intervals() -> None:
    # Two devices at once, and a rejoin inside the same minute: still one person.
    assert _present([("ann", 0, 3), ("ann", 1, 2), ("ann", 2.2, 2.8)], 0, 4) == [1, 1, 1, 0]
    assert _present([("ann", 0, 1.3), ("ann", 1.6, 2)], 0, 2) == [1, 1]
    assert _present([("ann", 0, 2), ("ben", 1, 3)], 0, 3) == [1, 2, 1]


def test_presence_edges_and_partly_covered_minutes() -> None:
    # Leaving exactly at 2:00 is not presence in minute 2; joining at 1:00 is in minute 1.
    assert _present([("ann", 1, 2)], 0, 3) == [0, 1, 0]
    # Any part of a minute counts: 0:59 → 1:01 covers minutes 0 and 1.
    assert _present([("ann", 59 / 60, 61 / 60)], 0, 3) == [1, 1, 0]
    # Zero-length and backwards intervals are no presence.
    assert _present([("ann", 1, 1), ("ben", 2, 1)], 0, 3) == [0, 0, 0]
    # Intervals outside the window are clipped to it.
    assert _present([("ann", -5, 1.5), ("ben", 2.5, 10)], 0, 3) == [1, 1, 1]
    # The window runs from its start minute to its end, rounded up.
    assert _present([("ann", 0, 1)], 0.5, 2.1) == [1, 0, 0]
    assert _present([], 0, 0) == []


def test_the_description_is_sanitised_html_never_literal_tags(
    client: TestClient, world: World, db: Session
) -> None:
    world.paris.description = (
        '<p>Agenda: <strong>launch</strong></p><script>alert("x")</script>'
        '<a href="javascript:alert(1)" onclick="steal()">x</a><img src=x onerror="steal()">'
    )
    db.commit()
    _signed_in(client, "bert")
    page = client.get(f"/events/{world.paris.id}").text
    shown = re.search(r'<dd class="description">(.*?)</dd>', page, re.S)
    assert shown is not None
    assert "<p>Agenda: <strong>launch</strong></p>" in shown.group(1)
    assert "&lt;p&gt;" not in shown.group(1)
    for dropped in ("<script", "alert", "javascript:", "onclick", "onerror"):
        assert dropped not in shown.group(1), dropped


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ({"contentType": "html", "content": "<p>Agenda</p>"}, "<p>Agenda</p>"),
        ({"contentType": "text", "content": "A < B\nthen C"}, "A &lt; B<br>\nthen C"),
        ("<p>Bare</p>", "<p>Bare</p>"),
        (None, ""),
    ],
)
def test_a_webinar_description_is_stored_as_html(body: object, stored: str) -> None:
    assert fetch._html(body) == stored


def test_a_tab_exports_as_csv_with_only_the_people_the_viewer_may_read(
    client: TestClient, world: World, db: Session
) -> None:
    _signed_in(client, "anna")
    base = f"/events/{world.spring.id}/people.csv"
    attended = client.get(f"{base}?tab=attended")
    assert attended.status_code == 200
    assert attended.headers["content-type"].startswith("text/csv")
    assert "event-1-attended.csv" in attended.headers["content-disposition"].replace(
        str(world.spring.id), "1"
    )
    rows = list(csv.DictReader(io.StringIO(attended.text)))
    assert [(r["name"], r["minutes"]) for r in rows] == [("Ann Early", "65"), ("Ben Late", "30")]
    everyone = list(csv.DictReader(io.StringIO(client.get(base).text)))
    assert len(everyone) == 5
    assert "Yves" not in client.get(base).text  # his rows belong to France
    assert client.get(f"{base}?tab=everything").status_code == 422
    _signed_in(client, "bert")
    assert client.get(base).status_code == 404
    # Nor may he take the event's attendees in a bulk action.
    mine = seg.create_list(db=db, principal=f.principal(db, world.bert), name="Bert's")
    db.commit()
    csrf = client_sign_in(client, "bert")
    taken = client.post(
        "/bulk",
        data={
            "csrf": csrf,
            "source": "event",
            "event_id": str(world.spring.id),
            "tab": "attended",
            "choose": "all",
            "action": "add",
            "list_id": str(mine.id),
        },
    )
    assert taken.status_code == 404
    assert "Ann Early" not in taken.text


def test_recordings_and_a_searchable_transcript_show_on_the_event(
    client: TestClient, world: World, db: Session
) -> None:
    session = db.scalars(select(EventSession).where(EventSession.event_id == world.spring.id)).one()
    ids = {"event_id": world.spring.id, "session_id": session.id, "meeting_id": "m1"}
    db.add(EventRecording(external_id="r1", recorded_at=START, ended_at=at(62), **ids))
    transcript = EventTranscript(external_id="t1", recorded_at=START, vtt="WEBVTT", **ids)
    db.add(transcript)
    db.flush()
    lines = [
        (0, "Olga Organizer", "Welcome to the spring launch."),
        (65_000, "Ann Early", "What is on the roadmap?"),
        (3_725_000, "Olga Organizer", "The roadmap ships in May."),
    ]
    for seq, (start, speaker, text) in enumerate(lines):
        db.add(
            TranscriptCue(
                transcript_id=transcript.id,
                seq=seq,
                start_ms=start,
                end_ms=start + 4000,
                speaker=speaker,
                text=text,
            )
        )
    db.commit()
    _signed_in(client, "anna")
    page = client.get(f"/events/{world.spring.id}").text
    said = "Recording of Main session: Tue 4 Mar 2025, 14:00 UTC – 15:02 (1:02)"
    assert said in text_of(page)  # no zone chosen and no browser's: UTC, named
    client.cookies.set(ZONE_COOKIE, "Europe/Berlin")  # what gatherly.js writes
    page = client.get(f"/events/{world.spring.id}").text
    said = "Recording of Main session: Tue 4 Mar 2025, 15:00 CET – 16:02 (1:02)"
    assert said in text_of(page)
    rows = re.findall(
        r"<tr><td class=\"num\">([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", page
    )
    assert rows == [
        ("0:00", "Olga Organizer", "Welcome to the spring launch."),
        ("1:05", "Ann Early", "What is on the roadmap?"),
        ("1:02:05", "Olga Organizer", "The roadmap ships in May."),
    ]
    found = client.get(f"/events/{world.spring.id}", params={"said": "ROADMAP"}).text
    assert "2 lines with “ROADMAP”." in found
    assert "Welcome to the spring launch." not in found
    assert (
        "ann early"
        in client.get(f"/events/{world.spring.id}", params={"said": "ann early"}).text.lower()
    )
    nothing = client.get(f"/events/{world.spring.id}", params={"said": "budget"}).text
    assert "Nothing in this transcript matches “budget”." in nothing


def test_the_home_page_shows_upcoming_and_recent_webinars_the_viewer_may_read(
    client: TestClient, world: World, db: Session
) -> None:
    soon = f.event(
        db,
        world.anna,
        "Summer Preview",
        start_at=datetime.now(UTC) + timedelta(days=3),
        registrant_count=4,
        attendee_count=0,
    )
    f.event(db, world.bert, "Paris Future Forum", start_at=datetime.now(UTC) + timedelta(days=2))
    made = seg.create_segment(
        db=db,
        principal=f.principal(db, world.anna),
        name="Spring attendees",
        criteria={"participation": "attended", "event": {"id": world.spring.id}},
    )
    seg.refresh(db=db, segment_id=made.id)
    db.commit()
    _signed_in(client, "anna")
    home = client.get("/").text

    def section(name: str) -> str:
        found = re.search(
            rf'<section class="card[^"]*" aria-labelledby="{name}-h".*?</section>', home, re.S
        )
        assert found, name
        return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split())

    assert f'href="/events/{soon.id}"' in home
    assert "Summer Preview" in section("upcoming")
    assert "Paris" not in home  # bert's events are not anna's to read
    recent = section("recent")
    assert "Spring Launch Webinar" in recent
    assert "2 of 3 (67 % attendees per registrant)" in recent
    assert "Spring attendees : 2 members you can see" in section("segments")
    assert "No sync runs you may see yet." in section("runs")
