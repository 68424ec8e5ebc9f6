"""Contacts and leads changed from the web pages (issue 14): create, edit, delete with the
tombstone explained, give to another owner, share; the lead list and page, qualifying a
lead into a contact; and each viewer's time zone.

The organisation: Germany has a marketer (Dana, business-unit level), an assistant (Otto,
user level) and a team that holds the Marketer role; France has its own marketer (Fred).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege, rights_from_mask
from gatherly.access.models import RecordShare
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, Lead, Tombstone
from gatherly.contact.schemas import ShareIn
from gatherly.core.exceptions import ValidationFailed
from gatherly.org.models import Team, User
from gatherly.web.pages import ZONE_COOKIE
from gatherly.web.people import custom_text, parse_custom
from tests import factories as f
from tests.api.helpers import lead as make_lead
from tests.web.conftest import (
    PHONE,
    Live,
    client_sign_in,
    key_column_stays_in_view,
    no_horizontal_scroll,
    shot,
    sign_in,
    text_of,
    with_password,
)


@dataclass
class World:
    dana: User
    otto: User
    fred: User
    team: Team
    greta: Contact  # Germany, Dana's
    francoise: Contact  # France, Fred's
    lena: Lead  # Germany, Dana's
    louis: Lead  # France, Fred's


@pytest.fixture
def world(db: Session) -> World:
    germany = f.bu(db, "Germany")
    france = f.bu(db, "France")
    dana = with_password(db, f.user(db, "dana", germany, "Marketer"))
    dana.full_name = "Dana Deutsch"
    otto = with_password(db, f.user(db, "otto", germany, "Marketing Assistant"))
    otto.full_name = "Otto Assistent"
    fred = with_password(db, f.user(db, "fred", france, "Marketer"))
    team = f.team(db, "DACH Field Team", germany, roles=("Marketer",))
    greta = f.contact(db, dana, first_name="Greta", last_name="Germanicus", email="greta@kunde.de")
    francoise = f.contact(
        db, fred, first_name="Françoise", last_name="Fleur", email="francoise@client.fr"
    )
    lena = make_lead(
        db, dana, first_name="Lena", last_name="Leitner", email="lena@firma.de", topic="Demo"
    )
    louis = make_lead(db, fred, first_name="Louis", last_name="Lumière", topic="Secret")
    db.commit()
    return World(dana, otto, fred, team, greta, francoise, lena, louis)


def _count(db: Session, model: type[Contact] | type[Lead] | type[RecordShare]) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


# ------------------------------------------------------------------ browser


def test_a_contact_from_creation_to_deletion_by_clicking(
    page: Page, world: World, live: Live, db: Session
) -> None:
    sign_in(page, "dana", next="/contacts")
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("First name").fill("Nina")
    page.get_by_label("Last name").fill("Neumann")
    page.get_by_label("Email").fill("nina@")
    page.get_by_label("Country").fill("Germany")
    page.get_by_label("Custom properties").fill("industry = Retail\nemployees = 250")
    page.get_by_role("button", name="Create contact").click()
    # The wrong field says why, next to it; what was typed stays.
    expect(page.locator("#email-error")).to_have_text("There must be something after the @-sign.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("First name")).to_have_value("Nina")
    page.get_by_label("Email").fill("nina@neumann.de")
    page.get_by_role("button", name="Create contact").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Nina Neumann")
    props = page.get_by_role("region", name="Properties")
    expect(props).to_contain_text("Germany (DE)")
    expect(props).to_contain_text("Retail")
    contact_url = page.url

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Custom properties")).to_have_value(
        "employees = 250\nindustry = Retail"
    )
    page.get_by_label("Company").fill("Neumann GmbH")
    page.get_by_label("Country").fill("")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(contact_url)
    expect(props).to_contain_text("Neumann GmbH")
    expect(props.locator("dd").nth(6)).to_have_text("—")  # the country was cleared

    page.get_by_role("link", name="Owner and sharing").click()
    expect(page.locator("#current-owner")).to_contain_text("Dana Deutsch")
    page.get_by_label("Share with").select_option(label="Otto Assistent (otto)")
    page.get_by_label("Change", exact=True).check()
    page.get_by_role("button", name="Share").click()
    expect(page.locator("#shares")).to_contain_text("Otto Assistent (otto): Read, Change")
    page.get_by_label("Give to", exact=True).select_option(label="Team: DACH Field Team")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("#current-owner")).to_contain_text("DACH Field Team")
    shot(page, "contact-sharing", live)

    page.goto(contact_url)
    page.get_by_role("link", name="Delete").click()
    expect(page.locator("#tombstone")).to_contain_text("nina@neumann.de")
    expect(page.locator("#tombstone")).to_contain_text("Microsoft Teams sync")
    page.get_by_role("button", name="Delete contact").click()
    expect(page).to_have_url(f"{live.url}/contacts")
    expect(page.get_by_role("link", name="Nina Neumann")).to_have_count(0)
    assert page.goto(contact_url).status == 404  # type: ignore[union-attr]
    assert contact_service.is_tombstoned(db=db, record_type="contact", email="nina@neumann.de")


def test_a_lead_is_created_and_qualified_into_a_contact_by_clicking(
    page: Page, world: World, live: Live
) -> None:
    sign_in(page, "dana", next="/leads")
    expect(page.locator("#lead-count")).to_have_text("1 lead.")
    expect(page.get_by_role("link", name="Louis Lumière")).to_have_count(0)  # France's
    page.get_by_role("link", name="New lead").click()
    page.get_by_label("First name").fill("Quentin")
    page.get_by_label("Last name").fill("Quell")
    page.get_by_label("Email").fill("quentin@quell.de")
    page.get_by_label("Topic").fill("Security webinar series")
    page.get_by_label("Status").select_option(label="Contacted")
    page.get_by_role("button", name="Create lead").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Quentin Quell")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Contacted")

    page.get_by_role("button", name="Qualify into a contact").click()
    expect(page.locator("#qualified-notice")).to_contain_text("A new contact was made")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Qualified")
    expect(page.get_by_role("button", name="Qualify into a contact")).to_have_count(0)
    page.locator("#qualified-notice").get_by_role("link", name="Quentin Quell").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Quentin Quell")
    expect(page.get_by_role("region", name="Properties")).to_contain_text("quentin@quell.de")

    page.goto("/leads?status=qualified")
    expect(page.locator("#lead-count")).to_have_text("1 lead matches this search.")
    row = page.get_by_role("row", name=re.compile("Quentin Quell"))
    expect(row).to_contain_text("Qualified")
    expect(row).to_contain_text("CET")  # the browser's zone, named (the browser is in Berlin)
    shot(page, "leads", live)
    # The time zone: the browser's by default; another one chosen by hand.
    page.get_by_role("link", name="Times in Europe/Berlin").click()
    expect(page.locator("#zone-now")).to_contain_text("your browser's zone")
    page.get_by_label("Show times in").select_option("America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#done")).to_have_text("Saved. Times now show in America/New_York.")
    page.goto("/leads?status=qualified")
    expect(page.get_by_role("row", name=re.compile("Quentin Quell"))).to_contain_text("EST")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    no_horizontal_scroll(page)
    key_column_stays_in_view(page, "Quentin Quell")
    page.goto("/leads/new")
    no_horizontal_scroll(page)


# ------------------------------------------------------------------ access, by route


def _sign(client: TestClient, who: str) -> str:
    return client_sign_in(client, who)


def test_nobody_reaches_a_record_their_roles_do_not_allow(
    client: TestClient, world: World, db: Session
) -> None:
    """Dana may not read France's records: every page and form is the same 404 as for a
    record that does not exist, and nothing changes."""
    csrf = _sign(client, "dana")
    before = (_count(db, Contact), _count(db, Lead), _count(db, RecordShare))
    for path, record in (("contacts", world.francoise), ("leads", world.louis)):
        base = f"/{path}/{record.id}"
        for url in (base, f"{base}/edit", f"{base}/delete", f"{base}/sharing"):
            assert client.get(url).status_code == 404, url
        for url, data in (
            (f"{base}/edit", {"first_name": "Hacked"}),
            (f"{base}/delete", {}),
            (f"{base}/assign", {"owner": f"user:{world.dana.id}"}),
            (f"{base}/shares", {"principal": "organization", "rights": "read"}),
        ):
            response = client.post(url, data={"csrf": csrf, **data}, follow_redirects=False)
            assert response.status_code == 404, (url, response.status_code)
            assert "Hacked" not in response.text
    assert client.post(f"/leads/{world.louis.id}/qualify", data={"csrf": csrf}).status_code == 404
    assert (_count(db, Contact), _count(db, Lead), _count(db, RecordShare)) == before
    assert db.get(Contact, world.francoise.id).first_name == "Françoise"  # type: ignore[union-attr]
    # The lists and counts leave them out too.
    assert "Louis" not in client.get("/leads").text
    assert "1 lead." in text_of(client.get("/leads").text)


def test_a_reader_gets_no_change_links_and_a_refusal_for_each_change(
    client: TestClient, world: World, db: Session
) -> None:
    """Otto (user level) reads Greta through a read-only share: he sees her but every
    change is refused and leaves her as she was."""
    contact_service.share(
        db=db,
        principal=f.principal(db, world.dana),
        kind=contact_service.CONTACT,
        record_id=world.greta.id,
        share_in=ShareIn(principal_type="user", principal_id=world.otto.id, rights=["read"]),
    )
    db.commit()
    csrf = _sign(client, "otto")
    base = f"/contacts/{world.greta.id}"
    shown = client.get(base)
    assert shown.status_code == 200
    assert f'href="{base}/edit"' not in shown.text
    assert f'href="{base}/delete"' not in shown.text
    sharing = client.get(f"{base}/sharing").text
    assert "You may not give this contact to another owner." in sharing
    assert 'name="rights"' not in sharing  # no share form without the share right
    for url in (f"{base}/edit", f"{base}/delete"):
        assert client.get(url).status_code == 403
    refused = client.post(f"{base}/edit", data={"csrf": csrf, "first_name": "Otto was here"})
    assert refused.status_code == 403
    assert client.post(f"{base}/delete", data={"csrf": csrf}).status_code == 403
    given = client.post(f"{base}/assign", data={"csrf": csrf, "owner": f"user:{world.otto.id}"})
    assert given.status_code == 403
    assert "assign" in text_of(given.text).split("Owner and sharing")[-1]
    db.expire_all()
    greta = db.get(Contact, world.greta.id)
    assert greta is not None
    assert (greta.first_name, greta.owner_id) == ("Greta", world.dana.id)
    assert _count(db, Tombstone) == 0


def test_a_share_offers_and_grants_only_the_rights_held(
    client: TestClient, world: World, db: Session
) -> None:
    contact_service.share(
        db=db,
        principal=f.principal(db, world.dana),
        kind=contact_service.CONTACT,
        record_id=world.greta.id,
        share_in=ShareIn(
            principal_type="user", principal_id=world.otto.id, rights=["read", "write", "share"]
        ),
    )
    db.commit()
    csrf = _sign(client, "otto")
    base = f"/contacts/{world.greta.id}"
    offered = re.findall(r'name="rights" value="([a-z_]+)"', client.get(f"{base}/sharing").text)
    assert offered == ["read", "write", "share"]
    shares = _count(db, RecordShare)
    refused = client.post(
        f"{base}/shares",
        data={"csrf": csrf, "principal": f"user:{world.fred.id}", "rights": ["read", "delete"]},
    )
    assert refused.status_code == 403
    assert "you do not hold delete" in text_of(refused.text)
    no_rights = client.post(
        f"{base}/shares", data={"csrf": csrf, "principal": f"user:{world.fred.id}"}
    )
    assert "tick at least one right" in text_of(no_rights.text).lower()
    everyone = client.post(
        f"{base}/shares", data={"csrf": csrf, "principal": "organization", "rights": "read"}
    )
    assert "organization level" in text_of(everyone.text)
    assert _count(db, RecordShare) == shares
    done = client.post(
        f"{base}/shares",
        data={"csrf": csrf, "principal": f"user:{world.fred.id}", "rights": ["read", "write"]},
    )
    assert done.status_code == 200  # redirected back to the sharing page
    assert _count(db, RecordShare) == shares + 1
    row = db.scalars(select(RecordShare).where(RecordShare.principal_id == world.fred.id)).one()
    assert set(rights_from_mask(row.rights)) == {Privilege.READ, Privilege.WRITE}


BAD_FORMS = [
    ({"email": "nina@"}, "email"),
    ({"country": "Atlantis"}, "country"),
    ({"phone": "call me maybe"}, "phone"),
    ({"first_name": "x" * 101}, "first_name"),
    ({"custom": "Industry = Retail"}, "custom"),
    ({"custom": "just text"}, "custom"),
    ({"owner": "user:abc"}, "owner"),
    ({"owner": "user:999999"}, "owner"),
    ({"owner": "user:99999999999999999999"}, "owner"),
]


def test_bad_input_is_said_next_to_its_field_and_saves_nothing(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = _sign(client, "dana")
    before = _count(db, Contact)
    for data, field in BAD_FORMS:
        response = client.post("/contacts/new", data={"csrf": csrf, "last_name": "Bad", **data})
        assert response.status_code == 422, (data, response.status_code)
        assert f'id="{field}-error"' in response.text, (data, text_of(response.text)[:400])
    bad_status = client.post("/leads/new", data={"csrf": csrf, "status": "hot"})
    assert bad_status.status_code == 422
    assert 'id="status-error"' in bad_status.text
    edited = client.post(f"/contacts/{world.greta.id}/edit", data={"csrf": csrf, "email": "greta@"})
    assert edited.status_code == 422
    assert _count(db, Contact) == before
    assert db.get(Contact, world.greta.id).email == "greta@kunde.de"  # type: ignore[union-attr]


def test_the_lead_list_filters_by_status_and_says_what_is_wrong(
    client: TestClient, world: World
) -> None:
    _sign(client, "dana")
    assert "Lena Leitner" in client.get("/leads?status=new").text
    assert "Lena Leitner" not in client.get("/leads?status=qualified").text
    for query, field in (
        ("status=hot", "status"),
        ("sort=secret", "sort"),
        ("q=" + "x" * 201, "q"),
    ):
        response = client.get(f"/leads?{query}")
        assert response.status_code == 422
        assert f'id="lead-{field}-error"' in response.text
    stale = client.get("/leads?cursor=not-a-cursor")
    assert stale.status_code == 422
    assert "Go to the first page" in stale.text


def test_qualifying_twice_says_why_and_makes_nothing(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = _sign(client, "dana")
    url = f"/leads/{world.lena.id}/qualify"
    first = client.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert first.headers["location"] == f"/leads/{world.lena.id}?qualified=created"
    contacts = _count(db, Contact)
    again = client.post(url, data={"csrf": csrf})
    assert again.status_code == 409
    assert "already qualified" in text_of(again.text)
    assert _count(db, Contact) == contacts


# ------------------------------------------------------------------ time zones


def test_times_show_in_the_zone_chosen_else_the_browsers_else_utc(
    client: TestClient, world: World, db: Session
) -> None:
    world.greta.created_at = world.greta.created_at.replace(
        year=2026, month=7, day=1, hour=12, minute=0, second=0, microsecond=0
    )
    db.commit()
    csrf = _sign(client, "dana")
    page = f"/contacts/{world.greta.id}"
    assert "Wed 1 Jul 2026, 12:00 UTC" in text_of(client.get(page).text)
    assert "Times in UTC" in text_of(client.get(page).text)
    client.cookies.set(ZONE_COOKIE, "America/New_York")
    assert "Wed 1 Jul 2026, 08:00 EDT" in text_of(client.get(page).text)
    client.cookies.set(ZONE_COOKIE, "Not/AZone")  # a cookie is input like any other
    assert "Wed 1 Jul 2026, 12:00 UTC" in text_of(client.get(page).text)

    chosen = client.post("/account/time-zone", data={"csrf": csrf, "time_zone": "Asia/Kolkata"})
    assert "Times now show in Asia/Kolkata" in text_of(chosen.text)
    assert "Wed 1 Jul 2026, 17:30 IST" in text_of(client.get(page).text)
    bad = client.post("/account/time-zone", data={"csrf": csrf, "time_zone": "Mars/Base"})
    assert bad.status_code == 422
    assert "not a time zone name" in text_of(bad.text)
    assert "Times in Asia/Kolkata" in text_of(client.get(page).text)  # unchanged
    client.cookies.set(ZONE_COOKIE, "Europe/Berlin")
    client.post("/account/time-zone", data={"csrf": csrf, "time_zone": ""})  # the browser's
    assert "Wed 1 Jul 2026, 14:00 CEST" in text_of(client.get(page).text)


def test_custom_properties_survive_the_text_box() -> None:
    custom = {
        "industry": "Retail",
        "employees": 250,
        "score": 4.5,
        "partner": True,
        "fax": None,
        "zip": "01067",
        "code": "42",
        "padded": " spaced ",
        "nan": "NaN",
    }
    assert parse_custom(custom_text(custom)) == custom
    assert custom_text(custom).splitlines()[0] == 'code = "42"'
    with pytest.raises(ValidationFailed):
        parse_custom("= no name")
