"""Marketing forms and pages (SPEC B7, B8, B11): building them through the API, the public
submission and its guards, processing into contacts and leads owned by the form's owner,
and who may see what."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture import forms
from gatherly.capture.models import CaptureInteraction, FormSubmission
from gatherly.contact.models import Contact, Lead
from gatherly.core import crypto
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

FORMS, PAGES = f"{API}/forms", f"{API}/pages"
SPEC: dict[str, Any] = {
    "name": "Autumn webinar sign-up",
    "fields": [
        {"key": "email", "label": "Email", "type": "email", "required": True},
        {"key": "first_name", "label": "First name"},
        {"key": "last_name", "label": "Last name", "required": True},
        {"key": "company", "label": "Company"},
        {
            "key": "custom.interest",
            "label": "Interest",
            "type": "select",
            "options": ["AI", "Data"],
        },
    ],
    "consents": [{"key": "news", "text": "Send me the newsletter", "required": True}],
    "lead_topic": "Autumn webinar",
    "thank_you": "See you there.",
}


def _live_form(
    client: TestClient, org: Org, user: str = "marketer", **extra: Any
) -> dict[str, Any]:
    headers = org.headers[user]
    made = client.post(FORMS, json={**SPEC, **extra}, headers=headers)
    assert made.status_code == 201, made.text
    form = made.json()
    live = client.post(f"{FORMS}/{form['id']}/state", json={"state": "live"}, headers=headers)
    assert live.status_code == 200, live.text
    return form


def _token(client: TestClient, form_id: int) -> str:
    page = client.get(f"/f/{form_id}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _answers(**extra: str) -> dict[str, str]:
    return {
        "email": " Ada@Example.com ",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical",
        "custom.interest": "AI",
        "consent.news": "yes",
        **extra,
    }


def _submissions(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(FormSubmission)) or 0


def _process_all(session_factory: sessionmaker[Session]) -> list[FormSubmission | None]:
    return [forms.process_submission(session_factory, i) for i in forms.pending(session_factory)]


def test_a_submission_becomes_a_contact_and_a_lead_owned_by_the_form_owner(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    form = _live_form(client, org)
    token = _token(client, form["id"])
    sent = client.post(f"/f/{form['id']}", data={**_answers(), "_token": token})
    assert sent.status_code == 200, sent.text
    assert "See you there." in sent.text
    row = db.scalars(select(FormSubmission)).one()
    assert (row.state, row.owner_id, row.owning_bu_id) == (
        "pending",
        org.users["marketer"].id,
        org.sales.id,
    )
    assert row.data["email"] == "ada@example.com"
    assert row.consents == [{"key": "news", "text": "Send me the newsletter", "given": True}]
    done = _process_all(session_factory)
    assert [d.outcome for d in done if d] == ["contact made, lead made"]
    db.expire_all()
    contact = db.scalars(select(Contact).where(Contact.email == "ada@example.com")).one()
    lead = db.scalars(select(Lead).where(Lead.email == "ada@example.com")).one()
    # B7: both owned by the form's owner, in the owner's BU.
    assert (contact.owner_type, contact.owner_id, contact.owning_bu_id) == (
        "user",
        org.users["marketer"].id,
        org.sales.id,
    )
    assert (lead.owner_id, lead.contact_id, lead.topic, lead.source) == (
        org.users["marketer"].id,
        contact.id,
        "Autumn webinar",
        "form",
    )
    assert (contact.origin, contact.custom, contact.match_key) == (
        "form",
        {"interest": "AI"},
        "*|ada@example.com",
    )
    # The same person again: matched and updated, nothing made twice.
    token = _token(client, form["id"])
    again = client.post(
        f"/f/{form['id']}", data={**_answers(company="Engines Ltd"), "_token": token}
    )
    assert again.status_code == 200
    assert [d.outcome for d in _process_all(session_factory) if d] == [
        "contact matched, lead matched"
    ]
    db.expire_all()
    assert db.scalar(select(func.count()).where(Contact.email == "ada@example.com")) == 1
    assert db.get_one(Contact, contact.id).company == "Engines Ltd"
    interactions = db.scalars(select(CaptureInteraction.contact_id)).all()
    assert interactions == [contact.id, contact.id]


def test_processing_twice_or_at_once_makes_one_contact(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    form = _live_form(client, org, on_submit="contacts")
    client.post(f"/f/{form['id']}", data={**_answers(), "_token": _token(client, form["id"])})
    [submission_id] = forms.pending(session_factory)
    results: list[Any] = []

    def run() -> None:
        results.append(forms.process_submission(session_factory, submission_id))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    forms.process_submission(session_factory, submission_id)
    db.expire_all()
    assert db.scalar(select(func.count()).where(Contact.email == "ada@example.com")) == 1
    assert (
        db.scalar(select(func.count()).select_from(Lead).where(Lead.email == "ada@example.com"))
        == 0
    )
    assert db.get_one(FormSubmission, submission_id).outcome == "contact made"
    assert forms.pending(session_factory) == []


def test_the_public_submission_guards_change_nothing(
    client: TestClient, db: Session, org: Org
) -> None:
    form = _live_form(client, org)
    url = f"/f/{form['id']}"
    token = _token(client, form["id"])
    # Every field is checked and each error is said beside its field.
    bad = client.post(
        url,
        data={
            **_answers(email="not-an-email", last_name="", **{"consent.news": ""}),
            "_token": token,
        },
    )
    assert bad.status_code == 422
    assert bad.text.count('class="gatherly-error"') == 3
    assert 'value="Ada"' in bad.text  # what was typed is kept
    # No token, a forged token, another form's token.
    for forged in ("", token[:-4] + "AAAA", "x"):
        refused = client.post(url, data={**_answers(), "_token": forged})
        assert refused.status_code == 422
        assert "cannot be sent from here" in refused.text
    # A page token older than a day is out of date.
    settings = client.app.state.settings  # type: ignore[attr-defined]

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 2 * 24 * 3600

    old = URLSafeTimedSerializer(
        crypto.secret_key(settings).get_secret_value(),
        salt="gatherly.capture.form",
        signer=Yesterday,
        signer_kwargs={"digest_method": hashlib.sha256},
    ).dumps([form["id"], "p", ""])
    stale = client.post(url, data={**_answers(), "_token": old})
    assert stale.status_code == 422
    assert "out of date" in stale.text
    # The honeypot: thanked, never stored.
    bot = client.post(url, data={**_answers(), "_token": token, "website": "http://spam"})
    assert bot.status_code == 200
    # Too large.
    huge = client.post(url, data={**_answers(company="x" * 70_000), "_token": token})
    assert huge.status_code == 413
    assert _submissions(db) == 0
    # A draft form takes nothing.
    client.post(
        f"{FORMS}/{form['id']}/state", json={"state": "draft"}, headers=org.headers["marketer"]
    )
    assert client.post(url, data={**_answers(), "_token": token}).status_code == 404
    assert _submissions(db) == 0


def test_one_sender_is_limited(client: TestClient, db: Session, org: Org) -> None:
    form = _live_form(client, org)
    token = _token(client, form["id"])
    for i in range(forms.PER_ADDRESS):
        ok = client.post(
            f"/f/{form['id']}", data={**_answers(email=f"p{i}@example.com"), "_token": token}
        )
        assert ok.status_code == 200
    limited = client.post(f"/f/{form['id']}", data={**_answers(), "_token": token})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    assert _submissions(db) == forms.PER_ADDRESS


def test_an_embed_snippet_works_until_its_key_is_rotated(
    client: TestClient, db: Session, org: Org
) -> None:
    form = _live_form(client, org)
    headers = org.headers["marketer"]
    snippet = client.get(f"{FORMS}/{form['id']}/embed", headers=headers).json()
    assert snippet["action"].endswith(f"/f/{form['id']}")
    assert "<script" not in snippet["html"]
    assert f'action="{snippet["action"]}"' in snippet["html"]
    token = re.search(r'name="_token" value="([^"]+)"', snippet["html"]).group(1)  # type: ignore[union-attr]
    assert client.post(f"/f/{form['id']}", data={**_answers(), "_token": token}).status_code == 200
    assert client.post(f"{FORMS}/{form['id']}/embed-key", headers=headers).status_code == 200
    stale = client.post(f"/f/{form['id']}", data={**_answers(), "_token": token})
    assert stale.status_code == 422
    assert _submissions(db) == 1


def test_a_page_shows_its_form_and_counts_visits_for_those_who_may_read_it(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    headers = org.headers["marketer"]
    form = client.post(FORMS, json=SPEC, headers=headers).json()
    page = client.post(
        PAGES,
        json={
            "name": "Autumn",
            "slug": "autumn",
            "title": "Autumn webinars",
            "body": "Join us.\n\nIt is free.",
            "form_id": form["id"],
        },
        headers=headers,
    ).json()
    assert_error(
        client.post(f"{PAGES}/{page['id']}/state", json={"state": "live"}, headers=headers),
        409,
        "state",
    )
    client.post(f"{FORMS}/{form['id']}/state", json={"state": "live"}, headers=headers)
    assert (
        client.post(
            f"{PAGES}/{page['id']}/state", json={"state": "live"}, headers=headers
        ).status_code
        == 200
    )
    assert_error(
        client.post(PAGES, json={"name": "Again", "slug": "autumn"}, headers=headers), 409, "slug"
    )
    shown = client.get("/p/autumn")
    assert shown.status_code == 200
    assert "Autumn webinars" in shown.text
    assert "<p>It is free.</p>" in shown.text
    assert shown.cookies.get("gatherly_visitor")
    token = re.search(r'name="_token" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    client.post(f"/f/{form['id']}", data={**_answers(), "_token": token, "_page": str(page["id"])})
    _process_all(session_factory)
    contact_id = db.scalar(select(Contact.id).where(Contact.email == "ada@example.com"))
    # The visit before the submission is now the contact's too (same browser).
    db.expire_all()
    visits = db.scalars(
        select(CaptureInteraction.contact_id).where(CaptureInteraction.kind == "page_visited")
    ).all()
    assert visits == [contact_id]
    stats = client.get(f"{PAGES}/{page['id']}/stats", headers=headers).json()
    assert stats == {"visits": 1, "submissions": 1, "contacts": 1}
    # Someone of another BU sees neither the page, nor its counts, nor the submissions.
    other = org.headers["support_assistant"]
    assert_error(client.get(f"{PAGES}/{page['id']}/stats", headers=other), 404, "page_id")
    assert_error(client.get(f"{FORMS}/{form['id']}", headers=other), 404, "form_id")
    assert client.get(FORMS, headers=other).json()["items"] == []
    assert_error(client.get(f"{FORMS}/{form['id']}/submissions", headers=other), 404, "form_id")
    mine = client.get(f"{FORMS}/{form['id']}/submissions", headers=headers).json()["items"]
    assert [s["outcome"] for s in mine] == ["contact made, lead made"]
    assert_error(client.get(f"{FORMS}/submissions/{mine[0]['id']}", headers=other), 404)
    assert client.get("/p/nothing-here").status_code == 404


def test_what_a_submission_does_follows_the_form(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    existing = org.contacts["marketer"]
    for on_submit, email, want in (
        ("leads", "lead.only@example.com", (0, 1)),
        ("no_update", "marketer@example.com", (1, 0)),
    ):
        form = _live_form(client, org, on_submit=on_submit, name=on_submit)
        client.post(
            f"/f/{form['id']}",
            data={
                **_answers(email=email, last_name="Changed"),
                "_token": _token(client, form["id"]),
            },
        )
        _process_all(session_factory)
        db.expire_all()
        contacts = db.scalar(select(func.count()).where(Contact.email == email)) or 0
        leads = (
            db.scalar(
                select(func.count())
                .select_from(Lead)
                .where(Lead.email == email, Lead.origin == "form")
            )
            or 0
        )
        assert (contacts, leads) == want, on_submit
    # "No update" matched the marketer's contact and left it as it was.
    assert db.get_one(Contact, existing).last_name == "Owner-marketer"


def test_building_forms_is_checked_and_needs_rights(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    assert_error(client.post(FORMS, json=SPEC, headers=org.headers["nobody"]), 403)
    twice = {**SPEC, "fields": [SPEC["fields"][0], SPEC["fields"][0]]}
    assert_error(client.post(FORMS, json=twice, headers=headers), 422, "fields")
    no_options = {**SPEC, "fields": [{"key": "company", "label": "C", "type": "select"}]}
    assert_error(client.post(FORMS, json=no_options, headers=headers), 422, "fields.0.options")
    bad_key = {**SPEC, "fields": [{"key": "password", "label": "P"}]}
    assert_error(client.post(FORMS, json=bad_key, headers=headers), 422)
    nameless = client.post(
        FORMS, json={**SPEC, "fields": [{"key": "company", "label": "C"}]}, headers=headers
    ).json()
    # Nothing to match people by: it cannot go live.
    assert_error(
        client.post(f"{FORMS}/{nameless['id']}/state", json={"state": "live"}, headers=headers),
        409,
        "fields",
    )
    form = client.post(FORMS, json=SPEC, headers=headers).json()
    # The assistant (user level) may not change the marketer's form.
    assert_error(
        client.patch(
            f"{FORMS}/{form['id']}", json={"name": "Mine"}, headers=org.headers["assistant"]
        ),
        404,
    )
    renamed = client.patch(f"{FORMS}/{form['id']}", json={"name": "Renamed"}, headers=headers)
    assert renamed.json()["name"] == "Renamed"


def test_merging_a_contact_moves_its_submissions_and_visits(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    form = _live_form(client, org, on_submit="contacts")
    client.post(f"/f/{form['id']}", data={**_answers(), "_token": _token(client, form["id"])})
    _process_all(session_factory)
    made = db.scalar(select(Contact.id).where(Contact.email == "ada@example.com"))
    master = org.contacts["marketer"]
    done = client.post(
        f"{API}/duplicates/merge",
        json={"record_type": "contact", "master_id": master, "duplicate_id": made},
        headers=org.headers["marketer"],
    )
    assert done.status_code == 200, done.text
    assert done.json()["moved"] == {"form_submissions": 1, "capture_interactions": 1}
    db.expire_all()
    assert db.scalars(select(FormSubmission.contact_id)).all() == [master]
    assert db.scalars(select(CaptureInteraction.contact_id)).all() == [master]


def test_detail_lists_name_only_contacts_the_viewer_may_read(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    form = _live_form(client, org, on_submit="contacts")
    # Scoping is off: the submission matches the Support contact, which the marketer may
    # not read.
    for email in ("support@example.com", "ada@example.com"):
        client.post(
            f"/f/{form['id']}", data={**_answers(email=email), "_token": _token(client, form["id"])}
        )
    _process_all(session_factory)
    url = f"{FORMS}/{form['id']}/interactions"
    mine = client.get(url, headers=org.headers["marketer"]).json()["items"]
    assert [i["contact"]["email"] if i["contact"] else None for i in mine] == [
        "ada@example.com",
        None,
    ]
    stats = client.get(f"{FORMS}/{form['id']}/stats", headers=org.headers["marketer"]).json()
    assert stats["submissions"] == 2  # the full count, to whoever may read the form
    everyone = client.get(url, headers=org.headers["admin"]).json()["items"]
    assert [i["contact"]["email"] for i in everyone] == ["ada@example.com", "support@example.com"]
    assert_error(client.get(url, headers=org.headers["support_assistant"]), 404, "form_id")
