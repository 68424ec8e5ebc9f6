"""LinkedIn Lead Gen intake against the bundled emulator over loopback (SPEC B12, B8):
connecting a member, polling, taking each response once, ownership and assignment rules,
and surviving throttling, outages and token expiry."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.models import Contact, Lead
from gatherly.contact.schemas import OwnerRef
from gatherly.core import crypto
from gatherly.core.audit import AuditEntry
from gatherly.core.config import Settings
from gatherly.core.exceptions import ValidationFailed
from gatherly.linkedin import intake, service
from gatherly.linkedin.models import LinkedInLead, LinkedInProfile, LinkedInSource
from gatherly.linkedin_emulator import LinkedInState, create_linkedin_app
from gatherly.org.models import User
from tests import factories as f
from tests.api.helpers import API, assert_error
from tests.loopback import serve_asgi

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "linkedin-sample.json").read_text()
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the sample's reference time
REDIRECT = "http://127.0.0.1:8000/linkedin/callback"
KEIKO, LARS = "AbC123", "Lq7Rz0"


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, LinkedInState]]:
    state = LinkedInState(copy.deepcopy(SAMPLE))
    with serve_asgi(create_linkedin_app(state)) as url:
        yield url, state


@pytest.fixture
def li(emulator: tuple[str, LinkedInState]) -> Iterator[Any]:
    url, state = emulator
    with httpx.Client(base_url=url) as http:
        http.post("/_emulator/reset")
        yield _Li(url, state, http)


class _Li:
    def __init__(self, url: str, state: LinkedInState, http: httpx.Client) -> None:
        self.url, self.state, self.http = url, state, http

    def settings(self, database_url: str) -> Settings:
        return crypto.resolve(
            Settings(
                database_url=database_url,
                linkedin_client_id=SAMPLE["application"]["client_id"],
                linkedin_client_secret=SAMPLE["application"]["client_secret"],
                linkedin_auth_url=self.url,
                linkedin_api_url=self.url,
            )
        )

    def allow(self, authorize_url: str, member: str) -> tuple[str, str]:
        """The member allows the connection on LinkedIn's page: the code and the state."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        page = self.http.get("/oauth/v2/authorization", params=query)
        assert page.status_code == 200
        answer = self.http.post(
            "/oauth/v2/authorization", data={**query, "member": member, "action": "allow"}
        )
        assert answer.status_code == 302
        back = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        return back["code"], back["state"]

    def faults(self, **faults: Any) -> None:
        assert self.http.post("/_emulator/faults", json=faults).status_code == 200


def _connect(db: Session, li: _Li, settings: Settings, user: User, member: str) -> LinkedInProfile:
    principal = f.principal(db, user)
    url = service.connect_url(
        principal=principal, settings=settings, redirect_uri=REDIRECT, nonce="this-browser"
    )
    code, state = li.allow(url, member)
    profile = service.complete_connect(
        db=db,
        principal=principal,
        settings=settings,
        code=code,
        state=state,
        redirect_uri=REDIRECT,
        nonce="this-browser",
    )
    db.commit()
    return profile


def _people(db: Session) -> tuple[int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Contact).where(Contact.origin == "linkedin"))
        or 0,
        db.scalar(select(func.count()).select_from(Lead).where(Lead.origin == "linkedin")) or 0,
    )


def _expected(owners: set[str]) -> tuple[int, int]:
    """Real (not test) responses of these owners in the sample, and their distinct emails."""
    rows = [
        r
        for r in SAMPLE["responses"]
        if next(iter((r.get("owner") or _form_owner(r)).values())) in owners
    ]
    return sum(not r.get("testLead") for r in rows), sum(bool(r.get("testLead")) for r in rows)


def _form_owner(response: dict[str, Any]) -> dict[str, str]:
    return next(f["owner"] for f in SAMPLE["forms"] if f["id"] == response["form"])


@pytest.fixture
def marketer(db: Session) -> User:
    sales = f.bu(db, "Sales")
    user = f.user(db, "marketer", sales, "Marketer")
    db.commit()
    return user


def test_connecting_polling_and_polling_again_takes_each_response_once(
    db: Session, li: _Li, session_factory: sessionmaker[Session], database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    profile = _connect(db, li, settings, marketer, KEIKO)
    assert (profile.owner_id, profile.name, profile.state) == (
        marketer.id,
        "Keiko Tanaka",
        "connected",
    )
    assert profile.access_token_encrypted
    assert "Keiko" not in profile.access_token_encrypted
    sources = db.scalars(
        select(LinkedInSource.owner_urn).where(LinkedInSource.profile_id == profile.id)
    ).all()
    assert sorted(sources) == [
        "urn:li:sponsoredAccount:508123456",
        "urn:li:sponsoredAccount:508777001",
    ]
    first = intake.poll(session_factory, settings, profile.id, now=NOW)
    assert first.error == ""
    real, tests = _expected(set(sources))
    assert (first.taken, first.test) == (real, tests)
    stored = db.scalars(select(LinkedInLead)).all()
    assert len(stored) == real + tests
    # B12: everything belongs to the profile's owner, in their BU.
    assert {(r.owner_id, r.owning_bu_id) for r in stored} == {
        (marketer.id, marketer.business_unit_id)
    }
    contacts = db.scalars(select(Contact).where(Contact.origin == "linkedin")).all()
    assert contacts
    assert {c.owner_id for c in contacts} == {marketer.id}
    assert all(r.contact_id is None for r in stored if r.test_lead)
    assert all(r.outcome == "test lead: kept apart" for r in stored if r.test_lead)
    before = _people(db)
    # Again, and again a day later: nothing new, nothing twice.
    again = intake.poll(session_factory, settings, profile.id, now=NOW)
    assert (again.taken, again.test) == (0, 0)
    assert _people(db) == before
    # A new lead arrives; the next poll takes it (and only it).
    added = li.http.post(
        "/_emulator/responses",
        json={
            "form": 7042,
            "submittedAt": int(NOW.timestamp() * 1000) + 60_000,
            "answers": _answers_for(7042, "New", "Person", "new.person@client.example"),
        },
    )
    assert added.status_code == 201, added.text
    later = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    third = intake.poll(session_factory, settings, profile.id, now=later)
    assert third.taken == 1
    assert db.scalar(select(func.count()).where(Contact.email == "new.person@client.example")) == 1


def _answers_for(form_id: int, first: str, last: str, email: str) -> dict[str, Any]:
    """Answers to a form's latest version by its predefined fields (others left out)."""
    form = next(f for f in SAMPLE["forms"] if f["id"] == form_id)
    version = form["versions"][-1]
    wanted = {"FIRST_NAME": first, "LAST_NAME": last, "EMAIL": email}
    answers: dict[str, Any] = {}
    for q in version["questions"]:
        if q.get("predefinedField") in wanted:
            answers[str(q["questionId"])] = wanted[q["predefinedField"]]
        elif q.get("options"):
            answers[str(q["questionId"])] = [q["options"][0]["id"]]
    return answers


def test_answers_map_through_the_version_they_were_sent_against(
    db: Session, li: _Li, session_factory: sessionmaker[Session], database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    profile = _connect(db, li, settings, marketer, KEIKO)
    intake.poll(session_factory, settings, profile.id, now=NOW)
    versions = {
        r.form_urn
        for r in db.scalars(select(LinkedInLead).where(LinkedInLead.form_urn.like("%7042%")))
    }
    assert versions == {
        "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7042,1)",
        "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7042,2)",
    }
    # Every real response of either version gave its email to the contact.
    for row in db.scalars(select(LinkedInLead).where(~LinkedInLead.test_lead)):
        assert row.data.get("email"), row.answers
        contact = db.get_one(Contact, row.contact_id)
        assert contact.email == row.data["email"]
        assert db.get_one(Lead, row.lead_id).contact_id == contact.id


def test_an_assignment_rule_gives_the_leads_to_another_owner_and_says_so(
    db: Session, li: _Li, session_factory: sessionmaker[Session], database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    events = f.bu(db, "Events")
    lisa = f.user(db, "lisa", events, "Marketer")
    db.commit()
    profile = _connect(db, li, settings, marketer, LARS)
    service.save_rule(
        db=db,
        principal=None,
        rule_in=service.RuleIn(
            name="Company page leads to Events",
            owner=OwnerRef(type="user", id=lisa.id),
            lead_type="COMPANY",
        ),
    )
    db.commit()
    report = intake.poll(session_factory, settings, profile.id, now=NOW)
    assert report.assigned
    db.expire_all()
    company = db.scalars(
        select(LinkedInLead).where(LinkedInLead.lead_type == "COMPANY", ~LinkedInLead.test_lead)
    ).all()
    assert company
    assert {(r.owner_id, r.owning_bu_id) for r in company} == {(lisa.id, events.id)}
    assert {db.get_one(Contact, r.contact_id).owner_id for r in company} == {lisa.id}
    others = db.scalars(select(LinkedInLead).where(LinkedInLead.lead_type != "COMPANY")).all()
    assert {r.owner_id for r in others} == {marketer.id}
    audited = db.scalars(select(AuditEntry).where(AuditEntry.action == "linkedin.assign")).all()
    assert len(audited) == len(company)
    assert audited[0].after["rule"] == "Company page leads to Events"


def test_throttling_outages_and_an_expired_token_are_survived(
    db: Session, li: _Li, session_factory: sessionmaker[Session], database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    profile = _connect(db, li, settings, marketer, KEIKO)
    old_token = profile.access_token_encrypted
    li.faults(throttle_every=3, retry_after=None, fail_every=5, fail_status=503)
    assert li.http.post("/_emulator/tokens/expire").status_code == 200
    report = intake.poll(session_factory, settings, profile.id, now=NOW)
    assert report.error == ""
    real, _tests = _expected(set(SAMPLE["members"][0]["ad_accounts"]))
    assert report.taken == real
    db.expire_all()
    refreshed = db.get_one(LinkedInProfile, profile.id)
    assert refreshed.access_token_encrypted != old_token  # the refreshed token was kept
    log = li.http.get("/_emulator/requests").json()["log"]
    statuses = {entry["status"] for entry in log}
    assert {200, 401, 429, 503} <= statuses, statuses  # every fault was met, and got past


def test_a_revoked_connection_asks_to_connect_again(
    db: Session, li: _Li, session_factory: sessionmaker[Session], database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    profile = _connect(db, li, settings, marketer, KEIKO)
    li.http.post("/_emulator/reset")  # LinkedIn forgets every token
    report = intake.poll(session_factory, settings, profile.id, now=NOW)
    assert "connect again" in report.error
    db.expire_all()
    assert db.get_one(LinkedInProfile, profile.id).state == "needs_reconnect"
    assert db.scalar(select(func.count()).select_from(LinkedInLead)) == 0


def test_profiles_and_leads_through_the_api_follow_ownership(
    client: TestClient,
    db: Session,
    li: _Li,
    session_factory: sessionmaker[Session],
    database_url: str,
) -> None:
    settings = li.settings(database_url)
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    owner = f.user(db, "owner", sales, "Marketer")
    outsider = f.user(db, "outsider", support, "Marketer")
    db.commit()
    profile = _connect(db, li, settings, owner, KEIKO)
    intake.poll(session_factory, settings, profile.id, now=NOW)
    mine, theirs = f.token(db, owner), f.token(db, outsider)
    assert [p["id"] for p in client.get(f"{API}/linkedin/profiles", headers=mine).json()] == [
        profile.id
    ]
    assert (
        "access_token" not in client.get(f"{API}/linkedin/profiles/{profile.id}", headers=mine).text
    )
    assert client.get(f"{API}/linkedin/profiles", headers=theirs).json() == []
    assert_error(
        client.get(f"{API}/linkedin/profiles/{profile.id}", headers=theirs), 404, "profile_id"
    )
    assert client.get(f"{API}/linkedin/leads/count", headers=theirs).json() == {"count": 0}
    counted = client.get(f"{API}/linkedin/leads/count", headers=mine).json()["count"]
    assert counted == db.scalar(select(func.count()).select_from(LinkedInLead))
    assert_error(client.post(f"{API}/linkedin/profiles/{profile.id}/poll", headers=theirs), 404)
    assert_error(
        client.post(
            f"{API}/linkedin/assignment-rules",
            json={
                "name": "Mine",
                "owner": {"type": "user", "id": outsider.id},
                "lead_type": "EVENT",
            },
            headers=theirs,
        ),
        403,
    )
    gone = client.delete(f"{API}/linkedin/profiles/{profile.id}/connection", headers=mine)
    assert gone.json()["state"] == "disconnected"
    db.expire_all()
    assert db.get_one(LinkedInProfile, profile.id).access_token_encrypted is None


def test_an_answer_is_only_taken_in_the_browser_that_asked(
    db: Session, li: _Li, database_url: str, marketer: User
) -> None:
    settings = li.settings(database_url)
    principal = f.principal(db, marketer)
    url = service.connect_url(
        principal=principal, settings=settings, redirect_uri=REDIRECT, nonce="mine"
    )
    code, state = li.allow(url, KEIKO)
    for nonce in ("", "theirs"):
        with pytest.raises(ValidationFailed) as refused:
            service.complete_connect(
                db=db,
                principal=principal,
                settings=settings,
                code=code,
                state=state,
                redirect_uri=REDIRECT,
                nonce=nonce,
            )
        assert refused.value.field == "state"
    assert db.scalar(select(func.count()).select_from(LinkedInProfile)) == 0
