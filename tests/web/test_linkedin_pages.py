"""The LinkedIn pages (SPEC B12): connecting an account through the pages against the bundled
emulator over real loopback HTTP, a profile's sources and *Read new leads now*, the leads
taken in and one lead's answers, who sees what, and Admin › LinkedIn assignment rules."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core.config import Settings
from gatherly.linkedin import intake, service
from gatherly.linkedin.models import (
    LinkedInAssignmentRule,
    LinkedInLead,
    LinkedInProfile,
    LinkedInSource,
)
from gatherly.linkedin_emulator import LinkedInState, create_linkedin_app
from gatherly.org.models import User
from tests import factories as f
from tests.loopback import serve_asgi
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "linkedin-sample.json").read_text()
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the sample's reference time
KEIKO = "AbC123"
KEIKO_SOURCES = ["urn:li:sponsoredAccount:508123456", "urn:li:sponsoredAccount:508777001"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with serve_asgi(create_linkedin_app(LinkedInState(copy.deepcopy(SAMPLE)))) as url:
        yield url


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Li:
    """The emulator, and the app's settings pointing at it."""

    url: str
    http: httpx.Client
    settings: Settings

    def answer(self, authorize_url: str, member: str, action: str = "allow") -> dict[str, str]:
        """The member allows (or cancels) on LinkedIn's page: where LinkedIn sends them back,
        as the callback's query."""
        query = _query(authorize_url)
        assert self.http.get("/oauth/v2/authorization", params=query).status_code == 200
        answer = self.http.post(
            "/oauth/v2/authorization", data={**query, "member": member, "action": action}
        )
        assert answer.status_code == 302, answer.text
        back = answer.headers["location"]
        assert back.startswith("http://127.0.0.1:8000/linkedin/callback?"), back
        return _query(back)


def _configure(app: Any, emulator: str, **more: Any) -> Settings:
    """Give the app the sample's LinkedIn app on the emulator; returns the old settings."""
    before: Settings = app.state.settings
    app.state.settings = before.model_copy(
        update={
            "linkedin_client_id": SAMPLE["application"]["client_id"],
            "linkedin_client_secret": SecretStr(SAMPLE["application"]["client_secret"]),
            "linkedin_auth_url": emulator,
            "linkedin_api_url": emulator,
            **more,
        }
    )
    return before


@pytest.fixture
def li(client: TestClient, emulator: str) -> Iterator[Li]:
    """The web app configured with the sample's LinkedIn app, on the emulator (reset)."""
    app: Any = client.app
    before = _configure(app, emulator)
    try:
        with httpx.Client(base_url=emulator) as http:
            http.post("/_emulator/reset")
            yield Li(emulator, http, app.state.settings)
    finally:
        app.state.settings = before


@dataclass
class People:
    mia: User  # marketer in Sales: connects
    lena: User  # marketer in Sales: an assignment rule's owner
    otto: User  # marketer in Support: sees none of Sales' LinkedIn


@pytest.fixture
def people(db: Session) -> People:
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    found = People(
        mia=with_password(db, f.user(db, "mia", sales, "Marketer")),
        lena=with_password(db, f.user(db, "lena", sales, "Marketer")),
        otto=with_password(db, f.user(db, "otto", support, "Marketer")),
    )
    with_password(db, f.user(db, "root_admin", None, "System Administrator"))
    db.commit()
    return found


def _connect(client: TestClient, li: Li, member: str = KEIKO) -> int:
    """Connect through the pages: Connect, allow on LinkedIn, back to the callback."""
    sent = client.get("/linkedin/connect", follow_redirects=False)
    assert sent.status_code == 303, sent.text[:300]
    location = sent.headers["location"]
    assert location.startswith(f"{li.url}/oauth/v2/authorization?")
    assert _query(location)["redirect_uri"] == "http://127.0.0.1:8000/linkedin/callback"
    back = client.get(
        "/linkedin/callback", params=li.answer(location, member), follow_redirects=False
    )
    assert back.status_code == 303, text_of(back.text)[:500]
    found = re.fullmatch(r"/linkedin/profiles/(\d+)\?done=(re)?connected", back.headers["location"])
    assert found, back.headers["location"]
    return int(found.group(1))


def test_without_a_linkedin_app_the_page_says_what_an_administrator_sets(
    client: TestClient, people: People
) -> None:
    client_sign_in(client, "mia")
    shown = client.get("/linkedin")
    assert shown.status_code == 200
    said = text_of(shown.text)
    assert "LinkedIn is not set up on this installation yet" in said
    assert "GATHERLY_LINKEDIN_CLIENT_ID" in said
    assert "http://127.0.0.1:8000/linkedin/callback" in said
    assert 'href="/linkedin/connect"' not in shown.text
    assert 'href="/linkedin"' in client.get("/").text  # in the main navigation
    refused = client.get("/linkedin/connect", follow_redirects=False)
    assert refused.status_code == 422
    assert "GATHERLY_LINKEDIN_CLIENT_SECRET" in text_of(refused.text)


def test_a_marketer_connects_toggles_a_source_and_asks_for_a_read(
    client: TestClient, li: Li, people: People, db: Session
) -> None:
    csrf = client_sign_in(client, "mia")
    start = client.get("/linkedin")
    assert 'href="/linkedin/connect"' in start.text
    assert "belong to the user who connected it" in text_of(start.text)
    assert 'id="no-profiles"' in start.text

    profile_id = _connect(client, li)
    shown = client.get(f"/linkedin/profiles/{profile_id}?done=connected")
    said = text_of(shown.text)
    assert "Keiko Tanaka" in said
    assert "Connected. Gatherly reads this profile's new leads from now on." in said
    for urn in KEIKO_SOURCES:
        assert urn in said
    assert "Turn off" in said
    listed = text_of(client.get("/linkedin").text)
    assert "Keiko Tanaka" in listed
    assert "Connected" in listed

    # A source off, and on again.
    source = db.scalars(
        select(LinkedInSource).where(LinkedInSource.owner_urn == KEIKO_SOURCES[0])
    ).one()
    off = client.post(
        f"/linkedin/profiles/{profile_id}/sources/{source.id}",
        data={"csrf": csrf, "enabled": "false"},
        follow_redirects=False,
    )
    assert off.status_code == 303
    db.expire_all()
    assert not db.get_one(LinkedInSource, source.id).enabled
    after = client.get(off.headers["location"])
    assert "no longer reads this source's leads" in text_of(after.text)
    assert "Turn on" in text_of(after.text)
    client.post(
        f"/linkedin/profiles/{profile_id}/sources/{source.id}",
        data={"csrf": csrf, "enabled": "true"},
    )
    db.expire_all()
    assert db.get_one(LinkedInSource, source.id).enabled

    # Read new leads now: queued for the worker (none runs here).
    polled = client.post(
        f"/linkedin/profiles/{profile_id}/poll", data={"csrf": csrf}, follow_redirects=False
    )
    assert polled.status_code == 303
    assert "in the background" in text_of(client.get(polled.headers["location"]).text)

    # LinkedIn stopped accepting it (as a read finds out): said in words, Connect again.
    revoked = db.get_one(LinkedInProfile, profile_id)
    revoked.state, revoked.last_error = "needs_reconnect", "connect again: token revoked"
    db.commit()
    listed = text_of(client.get("/linkedin").text)
    assert "Needs reconnecting" in listed
    assert "LinkedIn no longer accepts this connection" in listed
    assert "“token revoked”" in listed
    assert 'id="reconnect"' in client.get(f"/linkedin/profiles/{profile_id}").text

    # Connecting again; then the same answer twice: refused, the browser's one-time
    # connection cookie is gone (and LinkedIn would refuse the used code too).
    location = client.get("/linkedin/connect", follow_redirects=False).headers["location"]
    answer = li.answer(location, KEIKO)
    again = client.get("/linkedin/callback", params=answer, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].endswith("?done=reconnected")
    used = client.get("/linkedin/callback", params=answer)
    assert used.status_code == 422
    assert "was used already" in text_of(used.text)
    forged = client.get("/linkedin/callback", params={"code": "x", "state": "forged"})
    assert forged.status_code == 422
    assert "out of date or not for you" in text_of(forged.text)

    # Cancelled on LinkedIn: a calm word, nothing connected; LinkedIn's text is not echoed.
    location = client.get("/linkedin/connect", follow_redirects=False).headers["location"]
    cancelled = client.get("/linkedin/callback", params=li.answer(location, KEIKO, "cancel"))
    assert cancelled.status_code == 200
    assert "You cancelled on LinkedIn: nothing was connected." in text_of(cancelled.text)
    odd = client.get(
        "/linkedin/callback",
        params={"error": "access_denied<b>", "error_description": "<b>call 555</b>"},
    )
    assert odd.status_code == 400
    assert "access_denied" in odd.text
    assert "call 555" not in odd.text

    # Disconnect: a confirmation first, then the tokens are gone and the leads would stay.
    confirm = client.get(f"/linkedin/profiles/{profile_id}/disconnect")
    assert "The leads already taken in stay" in text_of(confirm.text)
    gone = client.post(
        f"/linkedin/profiles/{profile_id}/disconnect", data={"csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    db.expire_all()
    profile = db.get_one(LinkedInProfile, profile_id)
    assert (profile.state, profile.access_token_encrypted) == ("disconnected", None)
    said = text_of(client.get(gone.headers["location"]).text)
    assert "Disconnected" in said
    assert "Connect again" in said
    refused = client.post(f"/linkedin/profiles/{profile_id}/poll", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "not connected" in text_of(refused.text)


def test_the_leads_taken_in_show_on_the_profile_to_those_who_may_read_them(
    client: TestClient,
    li: Li,
    people: People,
    db: Session,
    session_factory: sessionmaker[Session],
) -> None:
    client_sign_in(client, "mia")
    profile_id = _connect(client, li)
    rule = service.save_rule(
        db=db,
        principal=None,
        rule_in=service.RuleIn(
            name="Data guide to Lena",
            owner=OwnerRef(type="user", id=people.lena.id),
            form_urn="urn:li:leadGenForm:7043",
        ),
    )
    db.commit()
    report = intake.poll(session_factory, li.settings, profile_id, now=NOW)
    assert report.error == ""
    assert report.taken > 25  # more than a page
    db.expire_all()
    rows = db.scalars(select(LinkedInLead).order_by(LinkedInLead.submitted_at.desc())).all()

    # A contact that has since gone to another business unit is not named.
    hidden = next(r for r in rows if not r.test_lead)
    contact = db.get_one(Contact, hidden.contact_id)
    contact.owner_id, contact.owning_bu_id = people.otto.id, people.otto.business_unit_id
    db.commit()

    shown = client.get(f"/linkedin/profiles/{profile_id}")
    assert shown.status_code == 200
    said = text_of(shown.text)
    assert said.count("Test lead") >= 1
    assert "(not visible to you)" in said
    first = rows[0] if not rows[0].test_lead else rows[1]
    assert first.data["email"] in said
    assert f'href="/linkedin/leads/{first.id}"' in shown.text
    row_html = re.search(rf'<tr id="lead-{hidden.id}">.*?</tr>', shown.text, re.S)
    assert row_html
    assert "/contacts/" not in row_html.group(0)
    assert f'href="/leads/{hidden.lead_id}"' in row_html.group(0)
    second = re.search(r'href="(/linkedin/profiles/\d+\?cursor=[^"]+)"', shown.text)
    assert second, "a second page"
    rest = client.get(second.group(1).replace("&amp;", "&"))
    assert rest.status_code == 200
    assert "First page" in text_of(rest.text)
    bad = client.get(f"/linkedin/profiles/{profile_id}?cursor=nonsense")
    assert bad.status_code == 422
    assert "This page link no longer works" in text_of(bad.text)
    total = db.scalar(select(func.count()).select_from(LinkedInLead))
    assert f"You may see {total} LinkedIn leads in all." in text_of(client.get("/linkedin").text)

    # One lead: the answers with their questions, the consents with their wording, the rule.
    given = next(
        r for r in rows if r.assignment_rule_id == rule.id and r.contact_id != hidden.contact_id
    )
    detail = client.get(f"/linkedin/leads/{given.id}")
    assert detail.status_code == 200
    said = text_of(detail.text)
    for answer in given.answers:
        assert answer["question"] in said
    for consent in given.consents:
        assert consent["text"] in said
    assert "Data guide to Lena gave it this owner" in said
    assert f'href="/contacts/{given.contact_id}"' in detail.text
    assert "Lena" in said or "lena" in said

    # Another business unit: no profile, no lead, no count, no change.
    otto_csrf = client_sign_in(client, "otto")
    assert client.get(f"/linkedin/profiles/{profile_id}").status_code == 404
    assert client.get(f"/linkedin/leads/{given.id}").status_code == 404
    page = text_of(client.get("/linkedin").text)
    assert "Keiko" not in page
    assert "You may see 0 LinkedIn leads in all." in page
    source = db.scalars(select(LinkedInSource)).first()
    assert source is not None
    for url, data in (
        (f"/linkedin/profiles/{profile_id}/poll", {}),
        (f"/linkedin/profiles/{profile_id}/sources/{source.id}", {"enabled": "false"}),
        (f"/linkedin/profiles/{profile_id}/disconnect", {}),
    ):
        assert client.post(url, data={**data, "csrf": otto_csrf}).status_code == 404, url
    db.expire_all()
    assert db.get_one(LinkedInProfile, profile_id).state == "connected"


def test_administrators_make_and_delete_assignment_rules_and_others_only_read_them(
    client: TestClient, people: People, db: Session
) -> None:
    mia_csrf = client_sign_in(client, "mia")
    read = client.get("/admin/linkedin-rules")
    assert read.status_code == 200
    assert 'id="new-rule"' not in read.text
    assert "Only administrators may change the rules." in text_of(read.text)
    rule = {
        "name": "Company page to Lena",
        "owner": f"user:{people.lena.id}",
        "lead_type": "COMPANY",
        "form_urn": "7044",
        "country": "",
        "position": "2",
        "enabled": "true",
    }
    assert client.post("/admin/linkedin-rules", data={**rule, "csrf": mia_csrf}).status_code == 403

    csrf = client_sign_in(client, "root_admin")
    shown = client.get("/admin/linkedin-rules")
    assert 'id="new-rule"' in shown.text
    assert 'href="/admin/linkedin-rules"' in client.get("/admin").text
    none = client.post(
        "/admin/linkedin-rules",
        data={"csrf": csrf, "name": "Nothing", "owner": f"user:{people.lena.id}"},
    )
    assert none.status_code == 422
    assert 'id="conditions-error"' in none.text
    assert 'value="Nothing"' in none.text
    bad = client.post("/admin/linkedin-rules", data={**rule, "csrf": csrf, "form_urn": "form 7"})
    assert bad.status_code == 422
    assert 'id="form_urn-error"' in bad.text
    nobody = client.post("/admin/linkedin-rules", data={**rule, "csrf": csrf, "owner": "x"})
    assert 'id="owner-error"' in nobody.text
    land = client.post("/admin/linkedin-rules", data={**rule, "csrf": csrf, "country": "Atlantis"})
    assert 'id="country-error"' in land.text
    assert db.scalar(select(func.count()).select_from(LinkedInAssignmentRule)) == 0

    made = client.post("/admin/linkedin-rules", data={**rule, "csrf": csrf}, follow_redirects=False)
    assert made.status_code == 303
    stored = db.scalars(select(LinkedInAssignmentRule)).one()
    assert (stored.form_urn, stored.lead_type, stored.owner_id, stored.position) == (
        "urn:li:leadGenForm:7044",
        "COMPANY",
        people.lena.id,
        2,
    )
    listed = text_of(client.get("/admin/linkedin-rules").text)
    assert "form urn:li:leadGenForm:7044 and lead type Company page" in listed

    mia_csrf = client_sign_in(client, "mia")
    refused = client.post(f"/admin/linkedin-rules/{stored.id}/delete", data={"csrf": mia_csrf})
    assert refused.status_code == 403
    assert "Company page to Lena" in text_of(client.get("/admin/linkedin-rules").text)

    csrf = client_sign_in(client, "root_admin")
    gone = client.post(
        f"/admin/linkedin-rules/{stored.id}/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LinkedInAssignmentRule)) == 0


# ------------------------------------------------------------------ browser


def test_a_marketer_connects_in_the_browser_and_lands_on_the_profile(
    page: Page, live: Live, emulator: str, people: People
) -> None:
    # LinkedIn sends the browser back to this server: its address is the public URL.
    before = _configure(live.app, emulator, public_url=live.url)
    try:
        httpx.post(f"{emulator}/_emulator/reset")
        sign_in(page, "mia")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="LinkedIn").click()
        page.get_by_role("link", name="Connect a LinkedIn account").click()
        page.get_by_role("button", name="Allow as Keiko Tanaka").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Keiko Tanaka")
        shot(page, "linkedin-profile", live)
        expect(page.get_by_role("status")).to_contain_text("Connected.")
        sources = page.locator("#sources")
        for urn in KEIKO_SOURCES:
            expect(sources).to_contain_text(urn)
        sources.get_by_role("button", name=f"Stop reading {KEIKO_SOURCES[0]}").click()
        expect(page.get_by_role("button", name=f"Read {KEIKO_SOURCES[0]}")).to_be_visible()
    finally:
        live.app.state.settings = before
