"""Integrations › Microsoft Teams and My webinars (issue 5; SPEC T1–T5, T12), against the
Graph emulator serving the sample tenant over real HTTP.

Browser tests follow what people do (tick, Sync now, exclusion domains, the 403 page);
route tests with TestClient cover who may see and change what, CSRF and bad input.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import gatherly.models
from gatherly.access.levels import Level
from gatherly.contact.models import Contact
from gatherly.core.config import Settings
from gatherly.event import service as event_service
from gatherly.event.models import EventRegistration, MarketingEvent
from gatherly.org.directory import load_principal
from gatherly.org.models import User
from gatherly.teams import service as teams
from gatherly.teams.models import SyncRun, TeamsConnection, TeamsOrganizer, TeamsWebinar
from gatherly.teams.sync import run_sync
from tests import factories as f
from tests.dbstate import cached
from tests.teams.conftest import Tenant, connect, tenant, tenant_server  # noqa: F401
from tests.teams.oracle import expected_counts
from tests.web.conftest import (
    Live,
    client_sign_in,
    no_horizontal_scroll,
    shot,
    sign_in,
    with_password,
)
from tests.workers import worker_process

INTERNAL = "contoso.example"
MARTA_EMAIL = "marta.lindqvist@contoso.example"
MARTAS = [  # Marta Lindqvist's webinars in the sample tenant
    "Autumn Product Launch",
    "Data Summit (two-day series)",
    "Live Now: Ask the Experts",
    "Holiday Campaign Masterclass",
    "Spring Launch (draft)",
]
OTHERS = ["APAC Partner Briefing", "Internal Enablement: Q4 Messaging", "Tokyo Office Open House"]


@dataclass
class Site:
    """A database connected to the emulator after one discovery run, with its users."""

    session_factory: sessionmaker[Session]
    settings: Settings
    tenant: Tenant
    ids: dict[str, int]

    def webinar(self, name: str) -> TeamsWebinar:
        with self.session_factory() as db:
            return db.scalars(
                select(TeamsWebinar).where(TeamsWebinar.display_name.startswith(name))
            ).one()

    def organizer(self, name: str) -> TeamsOrganizer:
        with self.session_factory() as db:
            return db.scalars(
                select(TeamsOrganizer).where(TeamsOrganizer.display_name == name)
            ).one()

    def tick(self, name: str) -> None:
        with self.session_factory() as db, db.begin():
            db.scalars(
                select(TeamsWebinar).where(TeamsWebinar.display_name.startswith(name))
            ).one().sync_enabled = True

    def seen_organizing(self, name: str) -> None:
        """Mark a directory user as seen organizing (an earlier sync listed their webinars,
        or they co-organize one): a blocked user then counts among the organizers."""
        with self.session_factory() as db, db.begin():
            db.scalars(
                select(TeamsOrganizer).where(TeamsOrganizer.display_name == name)
            ).one().organizes = True


@pytest.fixture
def site(
    session_factory: sessionmaker[Session],
    database_url: str,
    engine: Engine,
    tenant: Tenant,  # noqa: F811
) -> Site:
    """admin (System Administrator), orgadmin (Marketing Administrator), marta (Marketer,
    mapped to the organizer Marta Lindqvist by email), marketer (Marketer, not mapped),
    reader (may read the Teams integration, not change it); then a discovery run (once per
    process and backend: later tests get its rows back)."""
    settings = Settings(database_url=database_url, graph_rate_per_second=500)
    key = f"teams_pages.site@{tenant.base_url}"  # the connection points at this emulator
    ids = cached(engine, key, lambda: _build_site(session_factory, settings, tenant))
    return Site(session_factory, settings, tenant, ids)


def _build_site(
    session_factory: sessionmaker[Session], settings: Settings, emulator: Tenant
) -> dict[str, int]:
    admin_id = connect(session_factory, settings, emulator)
    with session_factory() as db:
        reader_role = f.role(db, "Teams reader", Level.ORGANIZATION, "teams_integration")
        users = {
            "orgadmin": f.user(db, "orgadmin", None, "Marketing Administrator"),
            "marta": f.user(db, "marta", f.bu(db, "Marketing"), "Marketer"),
            "marketer": f.user(db, "marketer", None, "Marketer"),
            "reader": f.user(db, "reader", None, "Marketer", reader_role),
        }
        users["marta"].email = MARTA_EMAIL
        admin = db.get(User, admin_id)
        assert admin is not None
        for user in [admin, *users.values()]:
            with_password(db, user)
        db.commit()
        ids = {"admin": admin_id, **{k: u.id for k, u in users.items()}}
    report = run_sync(session_factory, settings)  # discovery: organizers and webinars
    assert report.status == "succeeded", report.errors
    return ids


@dataclass
class Browser:
    """A TestClient signed in as one user, with that session's CSRF token."""

    client: TestClient
    csrf: str

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})}, **kw)


SignIn = Callable[[str], Browser]


@pytest.fixture
def as_user(client: TestClient) -> SignIn:
    """``as_user(name)``: the client signed in as that user (one at a time)."""

    return lambda username: Browser(client, client_sign_in(client, username))


def _rows(session_factory: sessionmaker[Session]) -> dict[str, list[Any]]:
    """Every row of every table (what a refused request must leave as it was)."""
    with session_factory() as db:
        return {
            t.name: sorted(map(repr, db.execute(select(t)).all()))
            for t in gatherly.models.Base.metadata.sorted_tables
            if t.name not in ("web_session",)
        }


def _connection(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    with session_factory() as db:
        row = db.get(TeamsConnection, 1)
        assert row is not None
        return {c.name: getattr(row, c.name) for c in TeamsConnection.__table__.columns}


# ------------------------------------------------------------------ browser: My webinars


def test_an_organizer_ticks_a_webinar_and_sync_now_shows_the_counts(
    page: Page, live: Live, site: Site
) -> None:
    sign_in(page, "marta", next="/webinars")
    expect(page.get_by_role("heading", level=1)).to_have_text("My webinars")
    for name in MARTAS:
        expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    for name in OTHERS:
        expect(page.get_by_text(name)).to_have_count(0)
    expect(page.locator("[data-count=webinars]")).to_have_text(str(len(MARTAS)))
    shot(page, "webinars", live)

    tick = page.get_by_role("checkbox", name="Sync Autumn Product Launch")
    expect(tick).not_to_be_checked()
    tick.check()
    row = page.get_by_role("row").filter(has_text="Autumn Product Launch")
    expect(row.get_by_role("status")).to_have_text("Saved")
    assert site.webinar("Autumn Product Launch").sync_enabled
    assert not site.webinar("Data Summit").sync_enabled

    default = page.get_by_role("checkbox", name="Sync my new webinars by default")
    default.check()
    expect(page.locator("form.organizer-settings").get_by_role("status")).to_have_text("Saved")
    assert site.organizer("Marta Lindqvist").sync_new_by_default

    with site.session_factory() as db, db.begin():  # an administrator syncs her recordings
        teams.update_organizer(
            db=db,
            principal=load_principal(db, site.ids["admin"]),
            organizer_id=site.organizer("Marta Lindqvist").id,
            sync_recordings=True,
        )
    with worker_process(live.settings):
        page.get_by_role("button", name="Sync now Autumn Product Launch").click()
        progress = page.locator("#sync-progress")
        expect(progress.get_by_role("heading", level=2)).to_contain_text(
            "Sync now: Autumn Product Launch"
        )
        expect(progress.get_by_text("Finished", exact=True)).to_be_visible(timeout=60_000)

    graph = site.tenant.webinar("Autumn Product Launch")
    want = expected_counts(graph, site.tenant.data["users"], internal_domains={INTERNAL})
    with site.session_factory() as db:
        event = db.scalars(select(MarketingEvent)).one()
        contacts = db.scalar(select(func.count()).select_from(Contact))
        run = db.scalars(select(SyncRun).where(SyncRun.kind == "webinar")).one()
    assert run.triggered_by_id == site.ids["marta"]
    assert event.registrant_count == len(want.registrants) > 0
    expect(progress.locator("[data-count=registrants]")).to_have_text(str(len(want.registrants)))
    expect(progress.locator("[data-count=attendees]")).to_have_text(str(len(want.attendees)))
    expect(progress.locator("[data-count=cancellations]")).to_have_text(
        str(len(want.cancellations))
    )
    expect(progress.locator("[data-fetched=registrations]")).to_have_text(
        str(len(graph["registrations"]))
    )
    expect(progress.locator("[data-change=contacts_created]")).to_have_text(str(contacts))
    expect(progress.locator("progress")).to_have_count(0)  # done: no more polling
    shot(page, "webinars-sync-done", live)
    # The event page: when it last synced, Sync now, and numbers that add up to the event's.
    page.goto(f"/events/{event.id}")
    on_event = page.locator("#event-sync")
    expect(on_event).to_contain_text("Microsoft Teams: last synced")
    expect(on_event.get_by_role("button", name="Sync now")).to_be_visible()
    expect(page.locator(".numbers li").first).to_have_text(f"{len(want.registrants)} registered")
    expect(page.locator(".numbers li").nth(1)).to_contain_text(f"{len(want.attendees)} attended")
    expect(page.locator(".numbers li").nth(3)).to_have_text(f"{len(want.cancellations)} cancelled")
    shot(page, "event-synced", live)
    # Play: the recording's video, streamed from Teams for this browser's session.
    play = page.get_by_role("link", name=re.compile("^Play the recording"))
    expect(play).to_have_count(1)
    video = page.request.get(str(play.get_attribute("href")))
    assert (video.status, video.headers["content-type"]) == (200, "video/mp4")
    served = graph["sessions"][0]["recordings"][0]["contentBase64"]
    assert video.body() == base64.b64decode(served)


def test_my_webinars_fits_a_phone(phone: Page, live: Live, site: Site) -> None:
    sign_in(phone, "marta", next="/webinars")
    expect(phone.get_by_role("checkbox", name="Sync Autumn Product Launch")).to_be_visible()
    no_horizontal_scroll(phone)
    shot(phone, "webinars-phone", live)


def test_a_user_mapped_to_no_organizer_sees_why(page: Page, site: Site) -> None:
    sign_in(page, "marketer", next="/webinars")
    expect(page.get_by_role("heading", name="No webinars to show")).to_be_visible()
    expect(page.get_by_text("not mapped to a Teams organizer")).to_be_visible()
    for name in MARTAS + OTHERS:
        expect(page.get_by_text(name)).to_have_count(0)


# ------------------------------------------------------------------ browser: Integrations


def test_an_admin_adds_a_contact_exclusion_and_a_full_sync_honours_it(
    page: Page, live: Live, site: Site
) -> None:
    site.tick("Autumn Product Launch")
    excluded = "northwind.example"
    graph = site.tenant.webinar("Autumn Product Launch")
    northwind = {
        r["email"].lower() for r in graph["registrations"] if r["email"].lower().endswith(excluded)
    }
    assert northwind  # the sample has registrants in that domain

    sign_in(page, "admin", next="/integrations/teams")
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations › Microsoft Teams")
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    expect(page.get_by_text(site.tenant.app(0)["secret"])).to_have_count(0)
    shot(page, "integrations-teams", live)

    field = page.get_by_label("Contact exclusions")
    expect(field).to_have_value(INTERNAL)
    field.fill(f"{INTERNAL}\n@Northwind.Example\n")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    expect(page.get_by_label("Contact exclusions")).to_have_value(f"{INTERNAL}\n{excluded}")
    assert _connection(site.session_factory)["contact_exclusion_domains"] == [INTERNAL, excluded]

    with worker_process(live.settings):
        page.get_by_role("button", name="Sync all now").click()
        progress = page.locator("#sync-progress")
        expect(progress.get_by_role("heading", level=2)).to_contain_text("Full sync")
        expect(progress.get_by_text("Finished", exact=True)).to_be_visible(timeout=60_000)

    want = expected_counts(graph, site.tenant.data["users"], internal_domains={INTERNAL, excluded})
    with site.session_factory() as db:
        emails = [e.lower() for e in db.scalars(select(Contact.email)) if e]
        assert emails
        assert not [e for e in emails if e.endswith("@" + excluded)]
        event = db.scalars(select(MarketingEvent)).one()
        assert event.registrant_count == len(want.registrants)
        admin = load_principal(db, site.ids["admin"])
        shown = event_service.reconciliation(db=db, principal=admin, event_id=event.id)
        assert northwind <= set(shown.not_counted["internal"])
        assert not northwind & set(shown.registrants)
        reasons = set(
            db.scalars(
                select(EventRegistration.excluded_reason).where(
                    func.lower(EventRegistration.email).like(f"%@{excluded}")
                )
            )
        )
        assert reasons == {"internal"}
    # The run shows in the list of recent runs.
    page.reload()
    runs = page.get_by_role("table", name="Recent sync runs, newest first")
    expect(runs.get_by_role("row").nth(1)).to_contain_text("Full")
    expect(runs.get_by_role("row").nth(1)).to_contain_text("Finished")


def test_an_invalid_domain_is_named_inline_and_nothing_is_saved(
    page: Page, live: Live, site: Site
) -> None:
    before = _connection(site.session_factory)
    sign_in(page, "admin", next="/integrations/teams")
    field = page.get_by_label("Organizer exclusions")
    field.fill("partner-agency.example\nfabrikam.example\nnot a domain")
    page.get_by_role("button", name="Save settings").click()
    field = page.get_by_label("Organizer exclusions")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("'not a domain' is not an email"))
    expect(field).to_have_value("partner-agency.example\nfabrikam.example\nnot a domain")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    assert _connection(site.session_factory) == before


def test_the_organizers_panel_shows_the_remedy_and_saves_settings(
    page: Page, live: Live, site: Site
) -> None:
    # Kenji organizes webinars, but without the access policy Graph lists none of them:
    # an earlier sync saw him organizing, so he is on the list as needing an admin.
    site.seen_organizing("Kenji Sato")
    kenji = site.organizer("Kenji Sato")
    client_id = site.tenant.app(0)["appId"]
    sign_in(page, "admin", next="/integrations/teams")
    # The remedy is on the page for organizers who need it, with their own object id.
    commands = page.get_by_label("Commands for Kenji Sato").first
    expect(commands).to_contain_text(
        f'Grant-CsApplicationAccessPolicy -PolicyName Gatherly-Webinar-Sync -Identity "{kenji.graph_user_id}"'
    )
    expect(commands).to_contain_text(f'-AppIds "{client_id}"')
    page.get_by_role("button", name="Settings for Kenji Sato").click()
    panel = page.locator("#organizer-panel")
    expect(panel.get_by_role("heading", name="Kenji Sato")).to_be_visible()
    expect(panel.get_by_text("Policy not granted")).to_be_visible()
    expect(panel.get_by_role("button", name="Copy commands for Kenji Sato")).to_be_visible()
    panel.get_by_role("checkbox", name="Sync recordings and transcripts").check()
    expect(panel.get_by_role("status")).to_have_text("Saved")
    assert site.organizer("Kenji Sato").sync_recordings
    assert not site.organizer("Kenji Sato").sync_new_by_default
    link = panel.get_by_role("link", name="Manage this user's webinars")
    expect(link).to_have_attribute("href", f"/webinars?organizer={kenji.id}")
    shot(page, "integrations-teams-panel", live)
    link.click()
    expect(page.get_by_role("heading", name=re.compile("^Kenji Sato"))).to_be_visible()
    # Teams refuses his webinars until the policy is granted: the page says so.
    expect(page.get_by_text("Gatherly may not read this organizer's webinars")).to_be_visible()
    expect(page.locator("[data-count=webinars]")).to_have_text("0")


def test_the_integrations_page_fits_a_phone(phone: Page, live: Live, site: Site) -> None:
    sign_in(phone, "admin", next="/integrations/teams")
    expect(phone.get_by_role("button", name="Sync all now")).to_be_visible()
    no_horizontal_scroll(phone)


def test_a_non_admin_gets_the_403_page_and_no_integrations_link(
    page: Page, live: Live, site: Site
) -> None:
    sign_in(page, "marta")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="My webinars")).to_be_visible()
    expect(nav.get_by_role("link", name="Integrations")).to_have_count(0)
    response = page.goto("/integrations/teams")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text(site.tenant.app(0)["appId"])).to_have_count(0)


# ------------------------------------------------------------------ routes: who may


def test_only_teams_admins_reach_the_integration_routes(as_user: SignIn, site: Site) -> None:
    kenji = site.organizer("Kenji Sato")
    for name in ("marta", "marketer", "reader"):
        before = _rows(site.session_factory)
        user = as_user(name)
        page = user.client.get("/integrations/teams")
        if name == "reader":  # may read the integration: sees the page, changes nothing
            assert page.status_code == 200
        else:
            assert page.status_code == 403
            assert "Not allowed" in page.text
            assert site.tenant.app(0)["appId"] not in page.text
            assert "Kenji Sato" not in page.text
            panel = user.client.get(f"/integrations/teams/organizers/{kenji.id}")
            assert panel.status_code == 403
            assert "Kenji Sato" not in panel.text
        for url, data in [
            ("/integrations/teams/settings", {"contact_exclusion_domains": "x.example"}),
            ("/integrations/teams/connection/test", {}),
            ("/integrations/teams/sync", {}),
            (
                "/integrations/teams/connection",
                {"tenant_id": site.tenant.tenant_id, "client_id": str(uuid.uuid4())},
            ),
            (f"/integrations/teams/organizers/{kenji.id}/check", {}),
        ]:
            response = user.post(url, data, follow_redirects=False)
            assert response.status_code == 403, (name, url, response.text[:300])
        assert _rows(site.session_factory) == before, name
    # Marketing Administrators manage the integration as system administrators do.
    assert as_user("orgadmin").client.get("/integrations/teams").status_code == 200


def test_an_organizer_sees_and_counts_only_their_own_webinars(as_user: SignIn, site: Site) -> None:
    marta = as_user("marta")
    page = marta.client.get("/webinars")
    assert page.status_code == 200
    for name in MARTAS:
        assert name in page.text
    for name in OTHERS:
        assert name not in page.text
    assert 'data-count="webinars">5<' in page.text
    assert "Manage the webinars of" not in page.text  # no organizer picker for her
    tomas = site.organizer("Tomas Berg")
    other = marta.client.get(f"/webinars?organizer={tomas.id}")
    assert other.status_code == 404
    assert "APAC Partner Briefing" not in other.text
    # An admin manages anyone's: Tomas's page counts his webinars only.
    admin = as_user("admin")
    his = admin.client.get(f"/webinars?organizer={tomas.id}")
    assert his.status_code == 200
    assert "APAC Partner Briefing" in his.text
    assert "Autumn Product Launch" not in his.text
    tomas_count = sum(
        1
        for w in site.tenant.data["webinars"]
        if w["createdBy"]["user"]["displayName"] == "Tomas Berg"
    )
    assert f'data-count="webinars">{tomas_count}<' in his.text
    # Not mapped: an explanation, nothing counted.
    empty = as_user("marketer").client.get("/webinars")
    assert "not mapped to a Teams organizer" in empty.text
    assert "data-count" not in empty.text


def test_another_organizers_webinar_cannot_be_ticked_or_synced(as_user: SignIn, site: Site) -> None:
    apac = site.webinar("APAC Partner Briefing")
    autumn = site.webinar("Autumn Product Launch")
    before = _rows(site.session_factory)
    marta = as_user("marta")
    for url in (f"/webinars/{apac.id}/sync-enabled", f"/webinars/{apac.id}/sync"):
        response = marta.post(url, {"sync_enabled": "on"})
        assert response.status_code == 404, response.text
        assert "no Teams webinar" in response.text
        assert "APAC" not in response.text
    # A user who may read the integration sees the webinar but may not change it.
    reader = as_user("reader")
    assert (
        "APAC Partner Briefing"
        in reader.client.get(f"/webinars?organizer={apac.organizer_id}").text
    )
    for url in (f"/webinars/{apac.id}/sync-enabled", f"/webinars/{apac.id}/sync"):
        response = reader.post(url, {"sync_enabled": "on"})
        assert response.status_code == 403, response.text
        assert 'role="alert"' in response.text
    assert _rows(site.session_factory) == before
    # Her own: saved at once, and unticked again.
    marta = as_user("marta")
    ticked = marta.post(f"/webinars/{autumn.id}/sync-enabled", {"sync_enabled": "on"})
    assert ticked.status_code == 200
    assert "Saved" in ticked.text
    assert site.webinar("Autumn Product Launch").sync_enabled
    unticked = marta.post(f"/webinars/{autumn.id}/sync-enabled")
    assert unticked.status_code == 200
    assert not site.webinar("Autumn Product Launch").sync_enabled


def test_an_excluded_organizers_webinar_cannot_be_ticked(as_user: SignIn, site: Site) -> None:
    # Priya's webinars are known from before her domain was excluded.
    for domains in ([], ["partner-agency.example"]):
        with site.session_factory() as db, db.begin():
            teams.update_settings(db=db, organizer_exclusion_domains=domains)
        assert run_sync(site.session_factory, site.settings).status == "succeeded"
    agency = site.webinar("Agency Showcase")
    priya = site.organizer("Priya Natarajan")
    before = _rows(site.session_factory)
    admin = as_user("admin")
    response = admin.post(f"/webinars/{agency.id}/sync-enabled", {"sync_enabled": "on"})
    assert response.status_code == 409
    assert 'aria-invalid="true"' in response.text
    assert "excluded domain" in response.text
    response = admin.post(
        f"/webinars/organizers/{priya.id}",
        {"fields": "sync_new_by_default", "sync_new_by_default": "on"},
    )
    assert response.status_code == 409
    assert "remove it from the organizer exclusions" in response.text
    assert _rows(site.session_factory) == before


def test_organizer_settings_are_the_organizers_own(as_user: SignIn, site: Site) -> None:
    marta_org, tomas = site.organizer("Marta Lindqvist"), site.organizer("Tomas Berg")
    before = _rows(site.session_factory)
    marta = as_user("marta")
    refused = marta.post(
        f"/webinars/organizers/{tomas.id}",
        {"fields": "sync_new_by_default", "sync_new_by_default": "on"},
    )
    assert refused.status_code == 404
    assert "Tomas" not in refused.text
    assert _rows(site.session_factory) == before
    # Only the fields the form holds change.
    saved = marta.post(
        f"/webinars/organizers/{marta_org.id}",
        {"fields": "sync_new_by_default", "sync_new_by_default": "on"},
    )
    assert saved.status_code == 200
    assert "Saved" in saved.text
    assert site.organizer("Marta Lindqvist").sync_new_by_default
    assert not site.organizer("Marta Lindqvist").sync_recordings
    marta.post(f"/webinars/organizers/{marta_org.id}", {"fields": "sync_new_by_default"})
    assert not site.organizer("Marta Lindqvist").sync_new_by_default


def test_sync_runs_are_seen_by_admins_and_whoever_started_them(as_user: SignIn, site: Site) -> None:
    autumn = site.webinar("Autumn Product Launch")
    marta = as_user("marta")
    started = marta.post(f"/webinars/{autumn.id}/sync")
    assert started.status_code == 202, started.text
    assert 'hx-trigger="every 1s"' in started.text  # queued (no worker here): still polling
    with site.session_factory() as db:
        her_run = db.scalars(select(SyncRun).where(SyncRun.kind == "webinar")).one()
        discovery = db.scalars(select(SyncRun).where(SyncRun.kind == "full")).one()
    assert her_run.triggered_by_id == site.ids["marta"]
    assert marta.client.get(f"/webinars/runs/{her_run.id}").status_code == 200
    hidden = marta.client.get(f"/webinars/runs/{discovery.id}")
    assert hidden.status_code == 404
    assert "Full sync" not in hidden.text
    # Marta may not start a full sync; an admin may, and sees every run listed.
    assert marta.post("/integrations/teams/sync").status_code == 403
    admin = as_user("admin")
    assert admin.client.get(f"/webinars/runs/{her_run.id}").status_code == 200
    # The discovery found webinars but none was ticked: the run says so, and what to do.
    shown = admin.client.get(f"/webinars/runs/{discovery.id}").text
    assert "but none is ticked for sync" in shown
    assert "My webinars (/webinars)" in shown
    full = admin.post("/integrations/teams/sync")
    assert full.status_code == 202
    assert "Full sync" in full.text
    with site.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(SyncRun)) == 3


# ------------------------------------------------------------------ routes: CSRF and input


def test_every_save_route_refuses_a_request_without_the_csrf_token(
    as_user: SignIn, site: Site
) -> None:
    autumn = site.webinar("Autumn Product Launch")
    marta_org = site.organizer("Marta Lindqvist")
    admin = as_user("admin")
    before = _rows(site.session_factory)
    for url, data in [
        ("/integrations/teams/settings", {"contact_exclusion_domains": "x.example"}),
        ("/integrations/teams/connection/test", {}),
        ("/integrations/teams/sync", {}),
        (
            "/integrations/teams/connection",
            {
                "tenant_id": site.tenant.tenant_id,
                "client_id": site.tenant.app(1)["appId"],
                "client_secret": site.tenant.app(1)["secret"],
            },
        ),
        (f"/webinars/{autumn.id}/sync-enabled", {"sync_enabled": "on"}),
        (f"/webinars/{autumn.id}/sync", {}),
        (
            f"/webinars/organizers/{marta_org.id}",
            {"fields": "sync_recordings", "sync_recordings": "on"},
        ),
        (f"/integrations/teams/organizers/{marta_org.id}/check", {}),
        (f"/webinars/organizers/{marta_org.id}/check", {}),
    ]:
        for token in (None, "forged"):
            sent = data if token is None else {**data, "csrf": token}
            response = admin.client.post(url, data=sent, follow_redirects=False)
            assert response.status_code == 403, (url, response.text[:300])
            assert "This form was refused" in response.text
    assert _rows(site.session_factory) == before


def test_the_connect_form_names_the_bad_field_and_saves_nothing(
    as_user: SignIn, site: Site
) -> None:
    admin = as_user("admin")
    app = site.tenant.app(1)
    good = {
        "tenant_id": site.tenant.tenant_id,
        "client_id": app["appId"],
        "client_secret": app["secret"],
        "authority": f"{site.tenant.base_url}/{site.tenant.tenant_id}",
        "graph_url": f"{site.tenant.base_url}/v1.0",
    }
    before = _connection(site.session_factory)
    for change, field in [
        ({"client_id": "not-a-guid"}, "client_id"),
        ({"tenant_id": "no spaces here"}, "tenant_id"),
        ({"client_secret": "wrong~" + uuid.uuid4().hex}, "client_secret"),
        ({"authority": "ftp://nowhere"}, "authority"),
    ]:
        response = admin.post("/integrations/teams/connection", {**good, **change})
        assert response.status_code == 422, (change, response.text[:500])
        assert f'id="connect-{field}"' in response.text
        assert re.search(
            rf'id="connect-{field}"[^>]*aria-invalid="true" aria-describedby="connect-{field}-error"',
            response.text,
        ), change
        assert f'id="connect-{field}-error"' in response.text
        assert app["secret"] not in response.text
        assert _connection(site.session_factory) == before
    # The limited install connects, saying what is missing; the secret is never shown.
    done = admin.post("/integrations/teams/connection", good, follow_redirects=False)
    assert done.status_code == 303
    page = admin.client.get(done.headers["location"])
    assert "Limited install" in page.text
    assert "OnlineMeetingRecording.Read.All" in page.text
    assert app["appId"] in page.text
    assert app["secret"] not in page.text
    for secret in (a["secret"] for a in site.tenant.data["applications"]):
        assert secret not in page.text


def test_test_connection_says_ok_or_why_not(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    ok = admin.post("/integrations/teams/connection/test")
    assert ok.status_code == 200
    assert "every permission the sync needs is granted" in ok.text
    site.tenant.state.data["applications"][0]["secret"] = "rotated~" + uuid.uuid4().hex
    failed = admin.post("/integrations/teams/connection/test")
    assert failed.status_code == 422
    assert "The check failed" in failed.text
    assert _connection(site.session_factory)["status"] == "failed"  # the outcome is recorded


def test_contact_exclusions_are_validated_and_normalised(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    before = _connection(site.session_factory)
    bad = admin.post(
        "/integrations/teams/settings",
        {
            "sync_enabled": "on",
            "organizer_exclusion_domains": "partner-agency.example",
            "contact_exclusion_domains": "contoso.example\nx",
        },
    )
    assert bad.status_code == 422
    assert "&#39;x&#39; is not an email domain" in bad.text
    assert re.search(r'id="contact_exclusion_domains"[^>]*aria-invalid="true"', bad.text)
    assert not re.search(r'id="organizer_exclusion_domains"[^>]*aria-invalid', bad.text)
    assert _connection(site.session_factory) == before
    good = admin.post(
        "/integrations/teams/settings",
        {
            "organizer_exclusion_domains": "",
            "contact_exclusion_domains": "*.Fabrikam.example\n\ncontoso.example",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    after = _connection(site.session_factory)
    assert after["contact_exclusion_domains"] == ["contoso.example", "fabrikam.example"]
    assert after["organizer_exclusion_domains"] == []
    assert after["sync_enabled"] is False  # the switch was unticked in this form


def test_the_home_page_lists_organizers_who_need_an_administrator(
    as_user: SignIn, site: Site
) -> None:
    # Kenji has no access policy, but Graph shows nothing he organizes: he needs nothing,
    # and neither do the other directory users without one.
    home = as_user("admin").client.get("/").text
    assert 'id="blocked"' not in home
    for name in ("Kenji Sato", "Anna Kowalczyk", "Elif Demir"):
        assert name not in home
    # Once seen organizing (an earlier sync, a co-organized webinar), he is listed.
    site.seen_organizing("Kenji Sato")
    home = as_user("admin").client.get("/").text
    blocked = re.search(
        r'<section class="card panel" aria-labelledby="blocked-h".*?</section>', home, re.S
    )
    assert blocked is not None
    assert "Kenji Sato" in blocked.group(0)
    assert "policy not granted" in blocked.group(0)
    assert "Marta Lindqvist" not in blocked.group(0)  # her webinars sync
    # The discovery run is listed, with what to do about nothing being ticked.
    assert "but none is ticked for sync" in home
    # Someone who organizes nothing and manages nothing sees no such list.
    assert 'id="blocked"' not in as_user("marketer").client.get("/").text


def test_an_admin_sets_the_default_owner_and_sees_where_events_land(
    as_user: SignIn, site: Site
) -> None:
    admin = as_user("admin")
    form = {
        "sync_enabled": "on",
        "organizer_exclusion_domains": "",
        "contact_exclusion_domains": "",
    }
    before = _connection(site.session_factory)
    for bad, said in (("abc", "choose a user from the list"), ("999999", "no user with id 999999")):
        refused = admin.post("/integrations/teams/settings", {**form, "default_owner_id": bad})
        assert refused.status_code == 422
        assert said in refused.text
        assert re.search(r'id="default_owner_id"[^>]*aria-invalid="true"', refused.text)
    assert _connection(site.session_factory) == before
    saved = admin.post(
        "/integrations/teams/settings",
        {**form, "default_owner_id": str(site.ids["marta"])},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert _connection(site.session_factory)["default_owner_id"] == site.ids["marta"]
    page = " ".join(admin.client.get("/integrations/teams").text.split())
    assert "Now: <strong>marta</strong>, so those records land in the business unit" in page
    cleared = admin.post("/integrations/teams/settings", {**form, "default_owner_id": "none"})
    assert cleared.status_code in (200, 303)
    assert _connection(site.session_factory)["default_owner_id"] is None
    assert "None is set: such webinars cannot sync" in admin.client.get("/integrations/teams").text


def test_town_halls_are_listed_with_the_webinars(as_user: SignIn, site: Site) -> None:
    marta = as_user("marta").client.get("/webinars")
    assert marta.status_code == 200
    row = re.search(r"<tr>\s*<td>Customer Town Hall: 2027 Product Vision.*?</tr>", marta.text, re.S)
    assert row is not None
    assert '<td data-kind="townhall">Town hall</td>' in row.group(0)
    assert 'name="sync_enabled"' in row.group(0)  # its tick
    assert f'hx-post="/webinars/{site.webinar("Customer Town Hall").id}/sync"' in row.group(0)
    assert 'data-count="webinars">5<' in marta.text  # the webinars are still counted alone
    assert 'data-count="townhalls">1<' in marta.text
    assert '<td data-kind="webinar">Webinar</td>' in marta.text
    # Tomas's internal all-hands is his, not hers; Kenji's is hidden from the app.
    assert "Q4 All-Hands (internal)" not in marta.text
    admin = as_user("admin").client.get(
        "/webinars?organizer=" + str(site.organizer("Tomas Berg").id)
    )
    assert "Q4 All-Hands (internal)" in admin.text
    assert "Tokyo Office Town Hall" not in admin.text
