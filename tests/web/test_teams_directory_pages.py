"""The directory on the Teams pages: Integrations › Microsoft Teams sums up every directory
user but lists only the organizers (seen organizing, or mapped to a Gatherly user), looks
anyone else up, and *Check now* asks Teams about one user at once; *Check again* on My
webinars lets a blocked organizer see whether the administrator's grant has arrived.

Against the Graph emulator serving the sample tenant over real HTTP, after one discovery
run (``site``): Marta Lindqvist and Tomas Berg organize and hold the access policy, Priya
Natarajan organizes in an excluded domain; Kenji Sato has no policy, so Graph lists none
of his webinars; Anna, Ben, Clara, David and Elif have none and organize nothing.
"""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gatherly.teams.models import TeamsOrganizer
from tests import factories as f
from tests.teams import conftest as teams_fixtures
from tests.web import test_teams_pages as teams_pages
from tests.web.conftest import Live, no_horizontal_scroll, shot, sign_in, text_of, with_password
from tests.web.test_teams_pages import SignIn, Site, _rows

# The Teams pages' fixtures: the emulator and the site after one discovery run.
tenant_server, tenant = teams_fixtures.tenant_server, teams_fixtures.tenant
site, as_user = teams_pages.site, teams_pages.as_user

NOBODY = ["Anna Kowalczyk", "Ben Okoro", "Clara Hoffmann", "David Chen", "Elif Demir"]
POLICY = "Webinar-Sync"  # the policy the sample tenant grants


def _grant(site: Site, name: str, policy: str | None) -> None:
    """Grant (or, with None, revoke) a user's access policy in Teams (the emulator)."""
    graph_id = site.tenant.user(name)["id"]
    response = httpx.patch(
        f"{site.tenant.base_url}/_emulator/users/{graph_id}",
        json={"applicationAccessPolicy": policy},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _graph_calls(site: Site) -> int:
    """How many Graph requests the emulator has answered so far."""
    return len([r for r in site.tenant.requests() if r["path"].startswith("/v1.0/")])


def _summary(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-summary="(\w+)">(\d+)<', html)}


def _table(html: str, caption: str) -> str:
    """The table with this caption (its rows), or "" when the page has none."""
    found = re.search(rf"<caption[^>]*>{re.escape(caption)}</caption>.*?</table>", html, re.S)
    return found.group(0) if found else ""


def _set(site: Site, name: str, **values: object) -> None:
    with site.session_factory() as db, db.begin():
        row = db.scalars(select(TeamsOrganizer).where(TeamsOrganizer.display_name == name)).one()
        for key, value in values.items():
            setattr(row, key, value)


# ------------------------------------------------------------------ the summary and the list


def test_the_page_sums_up_the_directory_and_lists_only_organizers(
    as_user: SignIn, site: Site
) -> None:
    html = as_user("admin").client.get("/integrations/teams").text
    assert _summary(html) == {"users": 9, "organizers": 3, "syncing": 2, "blocked": 0}
    said = text_of(html)
    assert (
        "6 other directory users have no access policy; they organize nothing Gatherly can "
        "see, so they need nothing." in said
    )
    assert "not checked yet" not in said  # the discovery asked about everyone
    listed = text_of(_table(html, "Organizers and their sync status"))
    for name in ("Marta Lindqvist", "Tomas Berg", "Priya Natarajan"):
        assert name in listed
    for name in ["Kenji Sato", *NOBODY]:
        assert name not in listed
        assert name not in html  # neither in the list nor as needing an admin
    assert "Access policy needed" not in html

    # Kenji gets a Gatherly account with his email: mapped, he counts, and needs an admin.
    with site.session_factory() as db:
        kenji = f.user(db, "kenji", None, "Marketer")
        kenji.email = "kenji.sato@contoso.example"
        db.commit()
        kenji_id = kenji.id
    _set(site, "Kenji Sato", user_id=kenji_id)
    _set(site, "Anna Kowalczyk", status="unchecked", status_detail="", probed_at=None)
    html = as_user("admin").client.get("/integrations/teams").text
    assert _summary(html) == {"users": 9, "organizers": 4, "syncing": 2, "blocked": 1}
    said = text_of(html)
    assert "4 other directory users have no access policy" in said
    assert "1 not checked yet (checked a few per run within the day's budget)." in said
    assert "Kenji Sato" in text_of(_table(html, "Organizers and their sync status"))
    needed = html[html.index("Access policy needed") :]
    assert "Kenji Sato: grant the access policy" in text_of(needed)
    assert site.tenant.user("Kenji Sato")["id"] in needed  # the commands name him
    # The admin's organizer picker on My webinars is the same list.
    picker = as_user("admin").client.get("/webinars").text
    options = re.findall(r'<option value="\d+"[^>]*>([^<(]+)', picker)
    assert sorted(o.strip() for o in options) == [
        "Kenji Sato",
        "Marta Lindqvist",
        "Priya Natarajan",
        "Tomas Berg",
    ]


def test_a_look_up_finds_any_directory_user(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin").client
    kenji = site.organizer("Kenji Sato")
    for who in ("kenji", "KENJI.SATO@contoso", "  Sato "):
        html = admin.get("/integrations/teams", params={"who": who}).text
        found = _table(html, f"Directory users matching “{who.strip()}”")
        assert "Kenji Sato" in found, who
        assert "Policy not granted" in found
        assert "Not seen organizing" in found
        assert f'hx-get="/integrations/teams/organizers/{kenji.id}"' in found  # Settings
        assert "1 directory user matches" in text_of(html)
        assert f'value="{who.strip()}"' in html  # the field keeps what was looked up
    # A part of an email matches everyone there, organizers or not.
    html = admin.get("/integrations/teams?who=contoso.example").text
    found = text_of(_table(html, "Directory users matching “contoso.example”"))
    for name in ["Kenji Sato", "Marta Lindqvist", *NOBODY]:
        assert name in found
    assert "Priya Natarajan" not in found
    assert "8 directory users match" in text_of(html)
    # Nothing matches: said in words, no empty table.
    html = admin.get("/integrations/teams?who=nobody-here").text
    assert "No directory user matches “nobody-here”." in text_of(html)
    assert "Directory users matching" not in html
    # From his panel to his webinars: the picker names him though he is not on its list.
    webinars = admin.get(f"/webinars?organizer={kenji.id}").text
    assert f'<option value="{kenji.id}" selected>Kenji Sato' in webinars
    # Someone who may read the integration may look people up too.
    html = as_user("reader").client.get("/integrations/teams?who=kenji").text
    assert "Kenji Sato" in _table(html, "Directory users matching “kenji”")


def test_the_panel_says_what_the_sync_knows_of_a_user(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    kenji = site.organizer("Kenji Sato")
    said = text_of(admin.client.get(f"/integrations/teams/organizers/{kenji.id}").text)
    assert "Organizes webinars not seen" in said
    assert re.search(r"Last checked (?!never)\S", said)
    assert "Left the directory" not in said
    html = admin.client.get(f"/integrations/teams/organizers/{kenji.id}").text
    assert f'hx-post="/integrations/teams/organizers/{kenji.id}/check"' in html
    assert 'name="csrf"' in html
    _set(site, "Kenji Sato", probed_at=None, removed_at=datetime(2026, 12, 1, 9, 0).astimezone())
    said = text_of(admin.client.get(f"/integrations/teams/organizers/{kenji.id}").text)
    assert "Last checked never" in said
    assert "Left the directory" in said
    marta = text_of(
        admin.client.get(
            f"/integrations/teams/organizers/{site.organizer('Marta Lindqvist').id}"
        ).text
    )
    assert "Organizes webinars yes" in marta
    # An excluded user is not asked about: no Check now.
    priya = site.organizer("Priya Natarajan")
    html = admin.client.get(f"/integrations/teams/organizers/{priya.id}").text
    assert "/check" not in html
    assert "excluded from sync" in html
    # A reader sees the panel but cannot check anyone.
    reader = as_user("reader").client.get(f"/integrations/teams/organizers/{kenji.id}").text
    assert "Check now" not in reader


# ------------------------------------------------------------------ Check now


def test_check_now_records_what_teams_says(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    before = site.organizer("Kenji Sato")
    assert (before.status, before.organizes) == ("policy_not_granted", False)
    _grant(site, "Kenji Sato", POLICY)
    calls = _graph_calls(site)
    checked = admin.post(f"/integrations/teams/organizers/{before.id}/check")
    assert checked.status_code == 200, checked.text
    said = text_of(checked.text)
    assert "Checked just now: Teams lets Gatherly read this user's webinars" in said
    assert "they organize webinars or town halls" in said
    assert "Syncing" in said
    assert "Organizes webinars yes" in said
    assert "What to do" not in said  # nothing left to do
    assert _graph_calls(site) > calls
    after = site.organizer("Kenji Sato")
    assert (after.status, after.status_detail, after.organizes) == ("ok", "", True)
    assert after.probed_at is not None
    assert before.probed_at is not None
    assert after.probed_at > before.probed_at
    # Seen organizing, he is on the organizer list now.
    page = admin.client.get("/integrations/teams").text
    assert "Kenji Sato" in _table(page, "Organizers and their sync status")
    assert _summary(page)["syncing"] == 3

    # Revoked: the next check says Teams refuses again, and what to do.
    _grant(site, "Kenji Sato", None)
    again = admin.post(f"/integrations/teams/organizers/{before.id}/check")
    assert again.status_code == 200
    said = text_of(again.text)
    assert "Checked just now: Teams still refuses." in said
    assert "Policy not granted" in said
    assert "What to do" in said
    assert site.organizer("Kenji Sato").status == "policy_not_granted"
    assert site.organizer("Kenji Sato").organizes  # what he organizes is not forgotten


def test_check_now_for_an_excluded_user_says_why_and_asks_nothing(
    as_user: SignIn, site: Site
) -> None:
    priya = site.organizer("Priya Natarajan")
    admin = as_user("admin")
    before, calls = _rows(site.session_factory), _graph_calls(site)
    refused = admin.post(f"/integrations/teams/organizers/{priya.id}/check")
    assert refused.status_code == 409
    said = text_of(refused.text)
    assert "Not checked: this user's domain is excluded from sync" in said
    assert "remove it from the organizer exclusions first" in said
    assert "Priya Natarajan" in said  # the panel stays, with the message in it
    refused = admin.post(f"/webinars/organizers/{priya.id}/check", follow_redirects=False)
    assert refused.status_code == 409
    assert "excluded from sync" in refused.text
    assert _rows(site.session_factory) == before
    assert _graph_calls(site) == calls


def test_only_an_admin_or_the_organizer_may_check_them(as_user: SignIn, site: Site) -> None:
    kenji = site.organizer("Kenji Sato")
    tomas = site.organizer("Tomas Berg")
    _grant(site, "Kenji Sato", POLICY)  # a check would change his status
    before, calls = _rows(site.session_factory), _graph_calls(site)
    for name, organizer, url, status in [
        ("marta", kenji, "/integrations/teams/organizers/{}/check", 403),  # not an admin
        ("marta", kenji, "/webinars/organizers/{}/check", 404),  # not hers: not found
        ("marta", tomas, "/webinars/organizers/{}/check", 404),
        ("marketer", kenji, "/integrations/teams/organizers/{}/check", 403),
        ("marketer", kenji, "/webinars/organizers/{}/check", 404),
        ("reader", kenji, "/integrations/teams/organizers/{}/check", 403),  # reads, no more
        ("reader", kenji, "/webinars/organizers/{}/check", 403),
    ]:
        user = as_user(name)
        response = user.post(url.format(organizer.id), follow_redirects=False)
        assert response.status_code == status, (name, url, response.text[:300])
        if status == 404:
            assert organizer.display_name not in response.text
    for url in ("/integrations/teams/organizers/999999/check", "/webinars/organizers/999999/check"):
        assert as_user("admin").post(url, follow_redirects=False).status_code == 404
    assert _rows(site.session_factory) == before
    assert _graph_calls(site) == calls  # nobody asked Teams


# ------------------------------------------------------------------ Check again (My webinars)


def test_a_blocked_organizer_checks_again_on_my_webinars(as_user: SignIn, site: Site) -> None:
    with site.session_factory() as db:
        user = with_password(db, f.user(db, "kenji", None, "Marketer"))
        user.email = "kenji.sato@contoso.example"
        db.commit()
        kenji_user = user.id
    _set(site, "Kenji Sato", user_id=kenji_user)
    kenji = site.organizer("Kenji Sato")
    me = as_user("kenji")
    html = me.client.get("/webinars").text
    said = text_of(html)
    assert "Policy not granted" in said
    assert "Last checked with Teams:" in said
    assert f'action="/webinars/organizers/{kenji.id}/check"' in html
    assert "Check again" in said
    # Not granted yet: checked, and still refused.
    back = me.post(f"/webinars/organizers/{kenji.id}/check", follow_redirects=False)
    assert (back.status_code, back.headers["location"]) == (303, "/webinars")
    assert site.organizer("Kenji Sato").status == "policy_not_granted"
    # The administrator grants it; checking again shows it has reached Teams.
    _grant(site, "Kenji Sato", POLICY)
    back = me.post(f"/webinars/organizers/{kenji.id}/check", follow_redirects=False)
    assert back.status_code == 303
    assert site.organizer("Kenji Sato").status == "ok"
    html = me.client.get("/webinars").text
    assert "Policy not granted" not in html
    assert "Check again" not in html  # nothing to check any more
    assert "appear here after the next sync" in html
    # An admin checks from someone's page and lands back on it.
    _grant(site, "Kenji Sato", None)
    admin = as_user("admin")
    back = admin.post(
        f"/webinars/organizers/{kenji.id}/check?organizer={kenji.id}", follow_redirects=False
    )
    assert (back.status_code, back.headers["location"]) == (303, f"/webinars?organizer={kenji.id}")
    assert site.organizer("Kenji Sato").status == "policy_not_granted"
    # A syncing organizer has nothing to check.
    assert "Check again" not in as_user("marta").client.get("/webinars").text


# ------------------------------------------------------------------ browser


def test_an_admin_looks_a_user_up_and_checks_them_now(page: Page, live: Live, site: Site) -> None:
    sign_in(page, "admin", next="/integrations/teams")
    organizers = page.get_by_role("table", name="Organizers and their sync status")
    expect(organizers.get_by_role("button", name="Settings for Marta Lindqvist")).to_be_visible()
    expect(page.get_by_text("Kenji Sato")).to_have_count(0)
    page.get_by_role("search", name="Look up a directory user").get_by_label("Name or email").fill(
        "kenji"
    )
    page.get_by_role("button", name="Look up", exact=True).click()
    found = page.get_by_role("table", name="Directory users matching “kenji”")
    expect(found.get_by_role("row").filter(has_text="Kenji Sato")).to_contain_text(
        "Policy not granted"
    )
    found.get_by_role("button", name="Settings for Kenji Sato").click()
    panel = page.locator("#organizer-panel")
    expect(panel.get_by_role("heading", name="Kenji Sato")).to_be_visible()
    expect(panel.get_by_text("Policy not granted")).to_be_visible()
    expect(panel.locator("dd").filter(has_text="not seen")).to_be_visible()

    _grant(site, "Kenji Sato", POLICY)  # the administrator ran the commands
    panel.get_by_role("button", name="Check now").click()
    expect(panel.get_by_role("status").filter(has_text="Checked just now")).to_contain_text(
        "Teams lets Gatherly read this user's webinars"
    )
    expect(panel.get_by_text("Syncing", exact=True)).to_be_visible()
    expect(panel.locator("dd").filter(has_text=re.compile("^yes$"))).to_be_visible()
    expect(panel.get_by_role("heading", name="What to do")).to_have_count(0)
    shot(page, "integrations-teams-check-now", live)
    assert site.organizer("Kenji Sato").status == "ok"


def test_the_look_up_fits_a_phone(phone: Page, live: Live, site: Site) -> None:
    sign_in(phone, "admin", next="/integrations/teams?who=contoso")
    found = phone.get_by_role("table", name="Directory users matching “contoso”")
    expect(found.get_by_role("button", name="Settings for Kenji Sato")).to_be_attached()
    no_horizontal_scroll(phone)
