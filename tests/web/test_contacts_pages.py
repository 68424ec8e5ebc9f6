"""The contacts pages: list and search, one contact with its webinar timeline (issue 5).

The organisation: EMEA (parent) with two sibling BUs, Germany and France. Each BU has a
Marketer (business-unit level); Germany also has a Marketing Assistant (user level). The
German marketer must never see the French or the EMEA contact, by name, in a count, in a
search, on a contact page or in a timeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.event.models import (
    AttendanceInterval,
    EventSession,
    MarketingEvent,
    RegistrationStatusChange,
)
from gatherly.org.models import BusinessUnit, User
from gatherly.segment.models import MarketingList, MarketingListMember
from tests import factories as f
from tests.web.conftest import (
    Live,
    client_sign_in,
    key_column_stays_in_view,
    no_horizontal_scroll,
    shot,
    sign_in,
    with_password,
)

START = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # a Tuesday


@dataclass
class World:
    greta: Contact  # Germany, owned by the German marketer
    gunter: Contact  # Germany, owned by the German assistant
    hanna: Contact  # Germany, owned by the German marketer
    francoise: Contact  # France
    emil: Contact  # EMEA, the parent BU
    webinar: MarketingEvent  # German event with people from every BU
    earlier: MarketingEvent  # German event Greta cancelled
    french_event: MarketingEvent  # France's own event, which Greta attended


def _user(db: Session, name: str, full_name: str, home: BusinessUnit, role: str) -> User:
    u = f.user(db, name, home, role)
    u.full_name = full_name
    return with_password(db, u)


def _session(db: Session, ev: MarketingEvent, subject: str, start: datetime) -> EventSession:
    row = EventSession(
        event_id=ev.id, external_id=f"s-{ev.id}-{subject}", subject=subject, start_at=start
    )
    db.add(row)
    db.flush()
    return row


def _attended(
    db: Session,
    ev: MarketingEvent,
    person: Contact,
    spans: list[tuple[EventSession, datetime, int]],
) -> None:
    """``person`` attended ``ev`` in the given (session, join, seconds) intervals."""
    total = sum(seconds for _s, _j, seconds in spans)
    att = f.attendance(
        db,
        ev,
        person,
        seconds=total,
        first_join_at=min(j for _s, j, _sec in spans),
        last_leave_at=max(j + timedelta(seconds=sec) for _s, j, sec in spans),
    )
    for session, join, seconds in spans:
        db.add(
            AttendanceInterval(
                attendance_id=att.id,
                session_id=session.id,
                report_external_id=f"r-{session.id}",
                join_at=join,
                leave_at=join + timedelta(seconds=seconds),
                duration_seconds=seconds,
            )
        )
    db.flush()


def _registered(
    db: Session, ev: MarketingEvent, person: Contact, *history: tuple[str, datetime]
) -> None:
    reg = f.registration(
        db,
        ev,
        person,
        status=history[-1][0],
        registered_at=history[0][1],
        canceled_at=history[-1][1] if history[-1][0] == "canceled" else None,
    )
    for status, at in history:
        db.add(RegistrationStatusChange(registration_id=reg.id, status=status, changed_at=at))
    db.flush()


@pytest.fixture
def world(db: Session) -> World:
    emea = f.bu(db, "EMEA")
    germany = f.bu(db, "Germany", emea)
    france = f.bu(db, "France", emea)
    dana = _user(db, "dana", "Dana Deutsch", germany, "Marketer")
    otto = _user(db, "otto", "Otto Assistent", germany, "Marketing Assistant")
    fred = _user(db, "fred", "Fred Frankreich", france, "Marketer")
    erin = _user(db, "erin", "Erin Emea", emea, "Marketing Manager")

    webinar = f.event(
        db, dana, "Cloud Security Live", start_at=START, end_at=START + timedelta(hours=2)
    )
    earlier = f.event(
        db,
        dana,
        "Spring Kickoff",
        start_at=START - timedelta(days=30),
        end_at=START - timedelta(days=30, hours=-1),
    )
    french_event = f.event(
        db,
        fred,
        "Soirée Confidentielle",
        start_at=START + timedelta(days=1),
        end_at=START + timedelta(days=1, hours=1),
    )
    greta = f.contact(
        db,
        dana,
        first_name="Greta",
        last_name="Germanicus",
        email="greta@kunde.de",
        company="Kunde GmbH",
        job_title="CISO",
        phone="+49 30 1234",
        country="DE",
        custom={"industry": "Manufacturing", "employees": 250},
        origin="teams_sync",
        origin_event_id=webinar.id,
    )
    gunter = f.contact(
        db,
        otto,
        first_name="Gunter",
        last_name="Gruenwald",
        email="gunter@kunde.de",
        company="Kunde GmbH",
        country="DE",
    )
    hanna = f.contact(
        db,
        dana,
        first_name="Hanna",
        last_name="Hafenstadt",
        email="hanna@hafen.de",
        company="Hafen AG",
        country="AT",
    )
    francoise = f.contact(
        db,
        fred,
        first_name="Françoise",
        last_name="Fleurdelys",
        email="francoise@client.fr",
        company="Client SARL",
        country="FR",
    )
    emil = f.contact(
        db,
        erin,
        first_name="Emil",
        last_name="Emeaparent",
        email="emil@parent.eu",
        company="Parent BV",
        country="NL",
    )
    day1 = _session(db, webinar, "Day 1", START)
    day2 = _session(db, webinar, "Day 2", START + timedelta(days=1))
    for person in (greta, francoise, emil):
        _registered(db, webinar, person, ("registered", START - timedelta(days=3)))
    _attended(
        db,
        webinar,
        greta,
        [
            (day1, START + timedelta(minutes=2), 40 * 60),
            (day1, START + timedelta(minutes=50), 20 * 60),
            (day2, START + timedelta(days=1, minutes=1), 5 * 60),
        ],
    )
    _attended(db, webinar, francoise, [(day1, START, 90 * 60)])
    _registered(
        db,
        earlier,
        greta,
        ("registered", START - timedelta(days=40)),
        ("canceled", START - timedelta(days=31)),
    )
    french_day = _session(db, french_event, "Soirée", START + timedelta(days=1))
    _registered(db, french_event, greta, ("registered", START - timedelta(days=2)))
    _attended(db, french_event, greta, [(french_day, START + timedelta(days=1), 30 * 60)])

    german_list = MarketingList(
        name="DACH Newsletter", owner_type="user", owner_id=dana.id, owning_bu_id=germany.id
    )
    french_list = MarketingList(
        name="Liste Secrète", owner_type="user", owner_id=fred.id, owning_bu_id=france.id
    )
    db.add_all([german_list, french_list])
    db.flush()
    db.add_all(
        [
            MarketingListMember(list_id=german_list.id, contact_id=greta.id),
            MarketingListMember(list_id=french_list.id, contact_id=greta.id),
        ]
    )
    db.commit()
    return World(greta, gunter, hanna, francoise, emil, webinar, earlier, french_event)


OTHERS = ("Françoise", "Fleurdelys", "francoise@client.fr", "Emil", "Emeaparent", "emil@parent")


# ------------------------------------------------------------------ browser


def test_search_narrows_the_list_and_the_count(page: Page, world: World, live: Live) -> None:
    sign_in(page, "dana", next="/contacts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")
    count = page.locator("#contact-count")
    expect(count).to_have_text("3 contacts")
    table = page.get_by_role("table")
    expect(table.get_by_role("row")).to_have_count(4)  # header + 3
    expect(table.get_by_role("link", name="Greta Germanicus")).to_be_visible()
    row = table.get_by_role("row", name=re.compile("Greta Germanicus"))
    for text in ("greta@kunde.de", "Kunde GmbH", "CISO", "DE", "Germany", "Dana Deutsch"):
        expect(row).to_contain_text(text)
    shot(page, "contacts", live)

    page.get_by_label("Search", exact=True).fill("kunde")
    expect(count).to_have_text("2 contacts")
    expect(table.get_by_role("link", name="Hanna Hafenstadt")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/contacts\?q=kunde"))

    page.get_by_label("Search", exact=True).fill("gruenwald")
    expect(count).to_have_text("1 contact")
    expect(table.get_by_role("link")).to_have_text(["Gunter Gruenwald"])

    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Country").fill("Austria")
    page.get_by_role("button", name="Search").click()
    expect(count).to_have_text("1 contact")
    expect(table.get_by_role("link")).to_have_text(["Hanna Hafenstadt"])

    page.get_by_label("Country").fill("Atlantis")
    page.get_by_role("button", name="Search").click()
    country = page.get_by_label("Country")
    expect(country).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#contact-country-error")).to_contain_text("Atlantis")
    expect(page.get_by_role("table")).to_have_count(0)

    page.get_by_label("Country").fill("")
    page.get_by_label("Sort by").select_option(label="Name, Z to A")
    expect(page.get_by_role("table").get_by_role("link")).to_have_text(
        ["Hanna Hafenstadt", "Gunter Gruenwald", "Greta Germanicus"]
    )
    no_horizontal_scroll(page)


def test_the_contact_page_shows_properties_and_the_timeline(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "dana", next="/contacts")
    page.get_by_role("link", name="Greta Germanicus").click()
    expect(page).to_have_url(f"{live.url}/contacts/{world.greta.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Greta Germanicus")
    props = page.get_by_role("region", name="Properties")
    for text in ("greta@kunde.de", "+49 30 1234", "Kunde GmbH", "CISO", "Germany (DE)"):
        expect(props).to_contain_text(text)
    expect(props).to_contain_text("industry")
    expect(props).to_contain_text("Manufacturing")
    expect(props).to_contain_text("250")
    owner = page.get_by_role("region", name="Ownership and origin")
    expect(owner).to_contain_text("Dana Deutsch")
    expect(owner).to_contain_text("Germany")
    expect(owner).to_contain_text("Created by a Microsoft Teams sync from Cloud Security Live")
    expect(owner.get_by_role("link", name="Cloud Security Live")).to_have_attribute(
        "href", f"/events/{world.webinar.id}"
    )

    timeline = page.get_by_role("region", name="Webinar participation")
    entries = timeline.get_by_role("listitem").filter(has=page.get_by_role("heading", level=3))
    # Newest first; France's own event is not readable by a German marketer.
    expect(entries.get_by_role("heading", level=3)).to_have_text(
        ["Cloud Security Live", "Spring Kickoff"]
    )
    live_entry = entries.nth(0)
    expect(live_entry.get_by_role("link", name="Cloud Security Live")).to_have_attribute(
        "href", f"/events/{world.webinar.id}"
    )
    expect(live_entry).to_contain_text("Registered")
    expect(live_entry).to_contain_text("Attended")
    expect(live_entry).to_contain_text("1 h 5 min")  # 40 + 20 + 5 minutes
    # First joined at 14:02 UTC, shown in the browser's zone and named.
    expect(live_entry).to_contain_text("Tue 3 Mar 2026, 15:02 CET")
    sessions = live_entry.get_by_role("table")
    expect(sessions.get_by_role("rowheader")).to_have_count(2)
    expect(sessions).to_contain_text("Day 1")
    expect(sessions).to_contain_text("1 h in this session")
    expect(sessions).to_contain_text("Day 2")
    for text in ("40 min", "20 min", "5 min"):
        expect(sessions.get_by_role("cell", name=text, exact=True)).to_be_visible()
    kickoff = entries.nth(1)
    expect(kickoff).to_contain_text("Cancelled")
    expect(kickoff).to_contain_text("Did not attend")
    expect(kickoff).to_contain_text("Registration history")
    lists = page.get_by_role("region", name="Marketing lists")
    expect(lists.get_by_role("link")).to_have_text(["DACH Newsletter"])
    shot(page, "contact", live)
    body = page.locator("body").inner_text()
    for secret in (*OTHERS, "Soirée Confidentielle", "Liste Secrète", "Fred Frankreich"):
        assert secret not in body


def test_a_bu_level_users_pages_never_show_another_bus_contact(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "dana", next="/contacts")
    count = page.locator("#contact-count")
    expect(count).to_have_text("3 contacts")  # 5 contacts exist; 2 are not Germany's
    text = page.locator("main").inner_text()
    for secret in OTHERS:
        assert secret not in text
    # Searching for them by exact last name or email finds nothing, and counts nothing;
    # the same search finds a German contact, so the search itself works.
    for term in ("Fleurdelys", "francoise@client.fr", "Emeaparent", "emil@parent.eu"):
        page.goto(f"/contacts?q={term}")
        expect(count).to_have_text("0 contacts")
        expect(page.get_by_role("table")).to_have_count(0)
        expect(page.get_by_text("No contacts match this search.")).to_be_visible()
    page.get_by_label("Search", exact=True).fill("Germanicus")
    expect(count).to_have_text("1 contact")
    # Their pages are the not-found page, without their names.
    for other in (world.francoise, world.emil):
        response = page.goto(f"/contacts/{other.id}")
        assert response is not None
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        body = page.locator("body").inner_text()
        for secret in OTHERS:
            assert secret not in body
    # The webinar the French and EMEA contacts also attended shows only Greta's part.
    page.goto(f"/contacts/{world.greta.id}")
    expect(page.get_by_role("heading", level=3, name="Cloud Security Live")).to_be_visible()
    body = page.locator("body").inner_text()
    for secret in (*OTHERS, "1 h 30 min", "Soirée Confidentielle"):
        assert secret not in body


def test_the_pages_fit_a_phone(phone: Page, world: World, live: Live) -> None:
    sign_in(phone, "dana", next="/contacts")
    expect(phone.locator("#contact-count")).to_have_text("3 contacts")
    no_horizontal_scroll(phone)
    key_column_stays_in_view(phone, "Greta Germanicus")  # after its tick box
    shot(phone, "contacts-phone", live)
    phone.goto(f"/contacts/{world.greta.id}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Greta Germanicus")
    no_horizontal_scroll(phone)
    shot(phone, "contact-phone", live)


# ------------------------------------------------------------------ TestClient


def _signed_in(client: TestClient, username: str) -> TestClient:
    client_sign_in(client, username)
    return client


def _names(html: str) -> list[str]:
    return re.findall(r'<a href="/contacts/\d+">([^<]+)</a>', html)


def _count(html: str) -> str:
    found = re.search(r'id="contact-count"[^>]*>\s*(.*?)\s*</p>', html, re.S)
    assert found, html
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_a_user_level_role_sees_only_its_own_contacts(client: TestClient, world: World) -> None:
    otto = _signed_in(client, "otto")
    listed = otto.get("/contacts")
    assert listed.status_code == 200
    assert _names(listed.text) == ["Gunter Gruenwald"]
    assert _count(listed.text) == "1 contact"
    assert _count(otto.get("/contacts", params={"q": "kunde"}).text) == "1 contact"  # not Greta
    assert otto.get(f"/contacts/{world.gunter.id}").status_code == 200
    mate = otto.get(f"/contacts/{world.greta.id}")  # same BU, another owner
    assert mate.status_code == 404
    assert "Greta" not in mate.text


def test_the_sibling_bu_sees_its_own_and_not_germanys(client: TestClient, world: World) -> None:
    fred = _signed_in(client, "fred")
    listed = fred.get("/contacts", params={"q": "Fleurdelys"})
    assert _names(listed.text) == ["Françoise Fleurdelys"]  # the search does find her
    assert _count(fred.get("/contacts").text) == "1 contact"
    assert fred.get(f"/contacts/{world.greta.id}").status_code == 404


def test_the_manager_of_the_parent_bu_sees_the_whole_subtree(
    client: TestClient, world: World
) -> None:
    erin = _signed_in(client, "erin")
    listed = erin.get("/contacts")
    assert _count(listed.text) == "5 contacts"
    assert len(_names(listed.text)) == 5


def test_an_unreadable_contact_is_the_same_404_as_a_missing_one(
    client: TestClient, world: World
) -> None:
    dana = _signed_in(client, "dana")
    hidden = dana.get(f"/contacts/{world.francoise.id}")
    missing = dana.get("/contacts/999999")
    assert hidden.status_code == missing.status_code == 404

    def main(html: str, contact_id: object) -> str:
        found = re.search(r"<main.*</main>", html, re.S)
        assert found
        return found.group(0).replace(f"contact {contact_id} ", "contact N ")

    assert main(hidden.text, world.francoise.id) == main(missing.text, 999999)
    assert "contact N not found" in main(missing.text, 999999)
    for not_an_id in ("abc", "0", "99999999999"):
        malformed = dana.get(f"/contacts/{not_an_id}")
        assert malformed.status_code == 422  # as the API: the id itself is malformed
        assert "The contact id in the address" in malformed.text


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"sort": "password_hash"}, "sort", "cannot sort by"),
        ({"sort": "-owner_id"}, "sort", "cannot sort by"),
        ({"country": "Atlantis"}, "country", "not a country"),
        ({"q": "x" * 201}, "q", "at most 200"),
        ({"company": "y" * 201}, "company", "at most 200"),
    ],
)
def test_bad_input_is_said_next_to_its_field(
    client: TestClient, world: World, params: dict[str, str], field: str, message: str
) -> None:
    dana = _signed_in(client, "dana")
    response = dana.get("/contacts", params=params)
    assert response.status_code == 422
    html = response.text
    field_tag = re.search(rf'<(?:input|select)[^>]*id="contact-{field}"[^>]*>', html)
    assert field_tag
    assert 'aria-invalid="true"' in field_tag.group(0)
    assert f"contact-{field}-error" in field_tag.group(0)  # aria-describedby names it
    assert f'id="contact-{field}-error"' in html
    error = re.search(rf'id="contact-{field}-error">([^<]*)<', html)
    assert error
    assert message in error.group(1)
    assert "<table" not in html  # nothing listed on a bad request
    assert _count(html) == "No results: correct the search above."


def test_a_bad_cursor_says_so_and_offers_the_first_page(client: TestClient, world: World) -> None:
    dana = _signed_in(client, "dana")
    response = dana.get("/contacts", params={"q": "kunde", "cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "cursor is not one this API issued" in response.text
    assert 'href="/contacts?q=kunde">Go to the first page' in response.text


def test_paging_goes_forward_and_back_to_the_first_page(
    client: TestClient, db: Session, world: World
) -> None:
    dana_user = db.query(User).filter_by(username="dana").one()
    for i in range(52):
        f.contact(db, dana_user, first_name="Paged", last_name=f"Person {i:02d}", company="Many")
    db.commit()
    dana = _signed_in(client, "dana")
    first = dana.get("/contacts", params={"company": "many"})
    assert _count(first.text) == "52 contacts"
    assert len(_names(first.text)) == 50
    assert "First page" not in first.text
    next_url = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
    assert next_url
    second = dana.get(next_url.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert _names(second.text) == ["Paged Person 50", "Paged Person 51"]
    assert _count(second.text) == "52 contacts"
    assert 'href="/contacts?company=many">First page' in second.text
    assert "Next page" not in second.text


def test_an_htmx_search_gets_the_results_and_the_count_only(
    client: TestClient, world: World
) -> None:
    dana = _signed_in(client, "dana")
    fragment = dana.get("/contacts", params={"q": "kunde"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'role="search"' not in fragment.text  # the search form is not sent again
    assert 'hx-swap-oob="innerHTML"' in fragment.text
    assert _count(fragment.text) == "2 contacts"
    assert sorted(_names(fragment.text)) == ["Greta Germanicus", "Gunter Gruenwald"]
    hidden = dana.get("/contacts", params={"q": "Fleurdelys"}, headers={"HX-Request": "true"})
    assert _count(hidden.text) == "0 contacts"
    assert "Françoise" not in hidden.text
    # A wrong field swaps the whole form so the message sits next to the field.
    bad = dana.get("/contacts", params={"country": "Atlantis"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200
    assert bad.headers["HX-Retarget"] == "#contact-search"
    assert 'id="contact-country-error"' in bad.text
    # Back-button restores ask for the whole page.
    restore = dana.get(
        "/contacts", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


def test_the_lists_and_timeline_follow_what_the_viewer_may_read(
    client: TestClient, world: World
) -> None:
    erin = _signed_in(client, "erin")  # parent-BU manager: both lists, all three events
    html = erin.get(f"/contacts/{world.greta.id}").text
    for name in ("DACH Newsletter", "Liste Secrète", "Soirée Confidentielle", "Spring Kickoff"):
        assert name in html
    timeline = html[html.index('id="contact-timeline"') :]
    assert timeline.index("Soirée Confidentielle") < timeline.index("Cloud Security Live")
    client.cookies.clear()
    dana = _signed_in(client, "dana")
    html = dana.get(f"/contacts/{world.greta.id}").text
    assert "DACH Newsletter" in html
    for name in ("Liste Secrète", "Soirée Confidentielle"):
        assert name not in html


def test_a_nul_in_the_search_is_a_page_naming_it(client: TestClient, world: World) -> None:
    """PostgreSQL cannot compare text holding NUL: the page says so, as a page."""
    fred = _signed_in(client, "fred")
    for path in ("/contacts", "/events"):
        refused = fred.get(path, params={"q": "Fleur\x00"})
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("text/html")
        assert "q contains a NUL character" in refused.text
