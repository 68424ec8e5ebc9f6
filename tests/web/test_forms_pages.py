"""The forms and pages screens: build a form in the builder (rows added, moved and removed
without saving, errors beside their row, a preview that cannot send), take it live, paste
its embed snippet, make a page with it and publish it; see each submission and what became
of it — and nobody reaches another unit's form, nor changes one they may only read.

The organisation: Germany has a marketer (Dana) and a reader (Rita: may read forms, pages
and submissions in Germany, but not change them, nor read contacts); France has its own
marketer (Fred).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.levels import Level
from gatherly.capture import forms
from gatherly.capture.models import FormSubmission, MarketingForm, MarketingPage
from gatherly.contact.models import Contact
from gatherly.org import service as org_service
from gatherly.org.models import User
from tests import factories as f
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password

SPEC: dict[str, Any] = {
    "name": "Autumn webinar",
    "fields": [
        {"key": "email", "label": "Email", "type": "email", "required": True},
        {"key": "last_name", "label": "Last name", "required": True},
    ],
    "consents": [{"key": "news", "text": "Send me the newsletter", "required": True}],
    "thank_you": "See you there.",
}


@dataclass
class World:
    dana: User
    rita: User
    fred: User


@pytest.fixture
def world(db: Session) -> World:
    germany = f.bu(db, "Germany")
    france = f.bu(db, "France")
    reader = org_service.create_role(
        db=db,
        name="Form reader",
        privileges={
            t: {"read": Level.BUSINESS_UNIT}
            for t in ("marketing_form", "marketing_page", "form_submission")
        },
    ).id
    world = World(
        dana=with_password(db, f.user(db, "dana", germany, "Marketer")),
        rita=with_password(db, f.user(db, "rita", germany, reader)),
        fred=with_password(db, f.user(db, "fred", france, "Marketer")),
    )
    db.commit()
    return world


def _count(db: Session, model: type[MarketingForm | MarketingPage | FormSubmission]) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


def _preview(html: str) -> str:
    """The preview frame's document, as text."""
    found = re.search(r'<iframe class="form-preview"[^>]*srcdoc="([^"]*)"', html)
    assert found, "no preview"
    return unescape(found.group(1))


def _builder(csrf: str, **extra: str) -> dict[str, str]:
    """The builder as posted: a name, an email field and the settings' defaults."""
    return {
        "csrf": csrf,
        "name": "Autumn webinar",
        "description": "",
        "fields.0.key": "email",
        "fields.0.custom": "",
        "fields.0.label": "Email",
        "fields.0.type": "email",
        "fields.0.required": "yes",
        "fields.0.max_length": "200",
        "on_submit": "contacts_and_leads",
        "rule_id": "",
        "lead_topic": "",
        "submit_label": "Send",
        "after": "message",
        "thank_you": "See you there.",
        "redirect_url": "",
        **extra,
    }


def _processed_submission(
    client: TestClient, db: Session, session_factory: sessionmaker[Session], world: World
) -> tuple[MarketingForm, FormSubmission]:
    """Dana's live form, and one submission through it turned into a contact and a lead."""
    mine = f.principal(db, world.dana)
    form = forms.create_form(db=db, principal=mine, form_in=SPEC)
    forms.set_form_state(db=db, principal=mine, form_id=form.id, state="live")
    db.commit()
    settings = client.app.state.settings  # type: ignore[attr-defined]
    sent = forms.submit(
        db=db,
        settings=settings,
        form_id=form.id,
        raw={
            "email": "Ada@Example.com",
            "last_name": "Lovelace",
            "consent.news": "yes",
            "_token": forms.form_token(settings, form),
        },
        address="192.0.2.1",
    )
    assert sent.submission is not None
    db.commit()
    done = forms.process_submission(session_factory, sent.submission.id)
    assert done is not None
    assert done.outcome == "contact made, lead made"
    db.expire_all()
    return form, db.get_one(FormSubmission, sent.submission.id)


# ------------------------------------------------------------------ the builder


def test_the_builder_edits_rows_without_saving_and_says_each_mistake_beside_its_row(
    client: TestClient, db: Session, world: World
) -> None:
    csrf = client_sign_in(client, "dana")
    listed = client.get("/forms")
    assert listed.status_code == 200
    assert 'href="/forms/new"' in listed.text
    assert 'href="/forms" aria-current="page"' in listed.text  # the main navigation
    blank = client.get("/forms/new")
    assert blank.status_code == 200
    assert 'name="fields.0.key"' in blank.text
    # The preview cannot send: a sandbox without allow-forms, and a form numbered 0.
    frame = re.search(r"<iframe[^>]*form-preview[^>]*>", blank.text)
    assert frame is not None
    assert 'sandbox="allow-same-origin"' in frame.group(0)
    assert 'action="/f/0"' in _preview(blank.text)

    # Rows are added, moved and removed on the page; nothing is stored.
    added = client.post("/forms/new", data=_builder(csrf, action="add_field"))
    assert added.status_code == 200
    assert re.search(r'name="fields.1.key".*?<option value="first_name" selected', added.text, re.S)
    assert 'id="f1-label" name="fields.1.label" value="First name"' in added.text
    assert "autofocus" in added.text
    row = {
        "fields.1.key": "custom",
        "fields.1.custom": "interest",
        "fields.1.label": "Interest",
        "fields.1.type": "select",
        "fields.1.max_length": "200",
        "fields.1.options": "",
    }
    moved = client.post("/forms/new", data=_builder(csrf, action="up_field.1", **row))
    assert moved.status_code == 200
    assert 'name="fields.0.label" value="Interest"' in moved.text
    assert 'name="fields.1.label" value="Email"' in moved.text
    consent = client.post("/forms/new", data=_builder(csrf, action="add_consent", **row))
    assert 'name="consents.0.key" value="consent_1"' in consent.text
    assert "Interest" in _preview(consent.text)  # the preview shows what was typed
    removed = client.post("/forms/new", data=_builder(csrf, action="remove_field.1", **row))
    assert 'name="fields.1.key"' not in removed.text
    assert 'name="fields.0.label" value="Email"' in removed.text
    assert _count(db, MarketingForm) == 0

    # Save: each mistake beside its row, in words; what was typed stays; nothing stored.
    no_options = client.post("/forms/new", data=_builder(csrf, action="save", **row))
    assert no_options.status_code == 422
    said = re.search(r'id="fields-1-options-error">([^<]+)<', no_options.text)
    assert said is not None
    assert said.group(1) == "A choice field needs options."
    assert 'aria-invalid="true" aria-describedby="fields-1-options-error"' in no_options.text
    assert "Nothing was saved" in no_options.text
    assert 'value="interest"' in no_options.text
    bad_name = client.post(
        "/forms/new",
        data=_builder(
            csrf, **{**row, "fields.1.custom": "Your Interest", "fields.1.options": "AI"}
        ),
    )
    assert bad_name.status_code == 422
    key_error = re.search(r'id="fields-1-key-error">([^<]+)<', bad_name.text)
    assert key_error is not None
    assert "lowercase letters, digits and _" in key_error.group(1)
    assert "pattern" not in text_of(bad_name.text)
    long_row = client.post(
        "/forms/new", data=_builder(csrf, **{**row, "fields.1.max_length": "abc"})
    )
    assert long_row.status_code == 422
    assert "The maximum length must be a whole number." in text_of(long_row.text)
    unnamed = client.post("/forms/new", data=_builder(csrf, name=" "))
    assert re.search(r'id="name-error">The name must not be empty.<', unnamed.text)
    nowhere = client.post("/forms/new", data=_builder(csrf, after="redirect"))
    assert nowhere.status_code == 422
    assert 'id="redirect_url-error"' in nowhere.text
    assert _count(db, MarketingForm) == 0

    # Saved: with the field and a consent.
    made = client.post(
        "/forms/new",
        data=_builder(
            csrf,
            **{**row, "fields.1.options": "AI\n\nData\n"},
            **{
                "consents.0.key": "news",
                "consents.0.text": "Send me news",
                "consents.0.required": "yes",
            },
        ),
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text[:2000]
    form_id = int(made.headers["location"].split("/")[2].split("?")[0])
    db.expire_all()
    stored = db.get_one(MarketingForm, form_id)
    assert [f["key"] for f in stored.fields] == ["email", "custom.interest"]
    assert stored.fields[1]["options"] == ["AI", "Data"]
    assert stored.consents == [{"key": "news", "text": "Send me news", "required": True}]
    assert (stored.state, stored.owner_id, stored.submit_label) == ("draft", world.dana.id, "Send")
    shown = client.get(made.headers["location"])
    assert "Form created" in shown.text
    assert "Send me news" in _preview(shown.text)
    assert f"/f/{form_id}" in shown.text  # the embed snippet and its action


def test_a_form_goes_live_and_onto_a_published_page(
    client: TestClient, db: Session, world: World
) -> None:
    csrf = client_sign_in(client, "dana")
    # No field the duplicate rule compares: taking it live is refused beside the fields.
    only_name = {
        "fields.0.key": "last_name",
        "fields.0.label": "Last name",
        "fields.0.type": "text",
        "consents.0.key": "news",
        "consents.0.text": "Send me the newsletter",
        "consents.0.required": "yes",
    }
    made = client.post("/forms/new", data=_builder(csrf, **only_name), follow_redirects=False)
    assert made.status_code == 303
    url = made.headers["location"].split("?")[0]
    form_id = int(url.rsplit("/", 1)[1])
    refused = client.post(url, data=_builder(csrf, action="live", name="Renamed", **only_name))
    assert refused.status_code == 409
    said = re.search(r'id="fields-error">([^<]+)<', refused.text)
    assert said is not None
    assert "none of the fields its duplicate rule compares (email)" in said.group(1)
    assert 'value="Renamed"' in refused.text  # what was typed stays …
    db.expire_all()
    stored = db.get_one(MarketingForm, form_id)
    assert (stored.state, stored.name) == ("draft", "Autumn webinar")  # … and nothing changed

    # With an email field it goes live (the changes saved), and back to draft.
    both = {
        **only_name,
        "fields.1.key": "email",
        "fields.1.label": "Email",
        "fields.1.type": "email",
        "fields.1.required": "yes",
    }
    live = client.post(url, data=_builder(csrf, action="live", **both), follow_redirects=False)
    assert live.status_code == 303
    assert "The form is live" in client.get(live.headers["location"]).text
    db.expire_all()
    assert db.get_one(MarketingForm, form_id).state == "live"
    assert len(db.get_one(MarketingForm, form_id).fields) == 2
    back = client.post(url, data=_builder(csrf, action="draft", **both), follow_redirects=False)
    assert back.status_code == 303
    db.expire_all()
    assert db.get_one(MarketingForm, form_id).state == "draft"

    # The live preview (htmx) renders what was typed and stores nothing.
    preview = client.post("/forms/preview", data=_builder(csrf, **{**both, "name": "Draft name"}))
    assert preview.status_code == 200
    assert "Draft name" in _preview(preview.text)
    assert db.get_one(MarketingForm, form_id).name == "Autumn webinar"

    # A page: its address in words, a form that is a draft refuses to be published.
    assert (
        f'<option value="{form_id}">Autumn webinar (draft)</option>'
        in client.get("/pages/new").text
    )
    page_form = {"csrf": csrf, "name": "Autumn", "title": "Join us", "form_id": str(form_id)}
    bad_slug = client.post("/pages/new", data={**page_form, "slug": "Autumn Webinar"})
    assert bad_slug.status_code == 422
    assert re.search(r'id="slug-error">The address uses lowercase letters', bad_slug.text)
    body = "Our autumn webinar.\n\nBring questions."
    made_page = client.post(
        "/pages/new", data={**page_form, "slug": "autumn", "body": body}, follow_redirects=False
    )
    assert made_page.status_code == 303
    page_url = made_page.headers["location"].split("?")[0]
    editor = client.get(page_url)
    assert '<code id="public-address">http://127.0.0.1:8000/p/autumn</code>' in editor.text
    shown = _preview(editor.text)
    assert "<p>Our autumn webinar.</p>" in shown
    assert "<p>Bring questions.</p>" in shown
    assert 'action="/f/0"' in shown  # its form, unsendable
    taken = client.post("/pages/new", data={**page_form, "slug": "autumn", "name": "Again"})
    assert taken.status_code == 409
    assert re.search(r'id="slug-error">The address /p/autumn is taken.<', taken.text)
    draft_form = client.post(f"{page_url}/state", data={"csrf": csrf, "state": "live"})
    assert draft_form.status_code == 409
    said = re.search(r'id="state-error">([^<]+)<', draft_form.text)
    assert said is not None
    assert unescape(said.group(1)).startswith("Its form 'Autumn webinar' is a draft")
    assert client.get("/p/autumn").status_code == 404

    client.post(url, data=_builder(csrf, action="live", **both))
    published = client.post(
        f"{page_url}/state", data={"csrf": csrf, "state": "live"}, follow_redirects=False
    )
    assert published.status_code == 303
    assert "Published" in client.get(published.headers["location"]).text
    public = client.get("/p/autumn")
    assert public.status_code == 200
    assert "Bring questions." in public.text
    listed = client.get("/pages")
    assert "/p/autumn" in listed.text
    assert f'href="/forms/{form_id}">Autumn webinar</a>' in listed.text

    # Rotating the embed key, deleting the page and the form (each asked first).
    snippet = unescape(re.search(r'id="embed-code"[^>]*>([^<]*)<', client.get(url).text).group(1))  # type: ignore[union-attr]
    rotated = client.post(f"{url}/embed-key", data={"csrf": csrf}, follow_redirects=False)
    assert rotated.status_code == 303
    after = client.get(rotated.headers["location"].split("#")[0])
    assert "no longer work" in after.text
    assert unescape(re.search(r'id="embed-code"[^>]*>([^<]*)<', after.text).group(1)) != snippet  # type: ignore[union-attr]
    assert "stops working" in client.get(f"{page_url}/delete").text
    assert client.post(f"{page_url}/delete", data={"csrf": csrf}).status_code == 200
    assert _count(db, MarketingPage) == 0
    assert "submissions and counts are deleted" in client.get(f"{url}/delete").text
    gone = client.post(f"{url}/delete", data={"csrf": csrf})
    assert "The form was deleted." in gone.text
    assert _count(db, MarketingForm) == 0


# ------------------------------------------------------------------ who may see what


def test_submissions_show_what_became_of_each_to_those_who_may_read_them(
    client: TestClient, db: Session, world: World, session_factory: sessionmaker[Session]
) -> None:
    form, sub = _processed_submission(client, db, session_factory, world)
    dana_page = forms.create_page(
        db=db,
        principal=f.principal(db, world.dana),
        page_in={"name": "Autumn", "slug": "autumn", "form_id": form.id},
    )
    db.commit()
    client_sign_in(client, "dana")
    listed = client.get("/forms")
    assert re.search(
        r'<td class="num">0</td>\s*<td class="num">1</td>\s*<td class="num">1</td>', listed.text
    )
    table = client.get(f"/forms/{form.id}/submissions")
    assert table.status_code == 200
    row = text_of(re.search(r'<tr id="submission-\d+">.*?</tr>', table.text, re.S).group(0))  # type: ignore[union-attr]
    assert "ada@example.com" in row
    assert "Lovelace" in row
    assert "Processed" in row
    assert "contact made, lead made" in row
    assert f'href="/contacts/{sub.contact_id}"' in table.text
    assert f'href="/leads/{sub.lead_id}"' in table.text
    detail = client.get(f"/forms/submissions/{sub.id}")
    assert detail.status_code == 200
    said = text_of(detail.text)
    assert "Given: “Send me the newsletter”" in said
    assert "Last name Lovelace" in said
    assert f'href="/contacts/{sub.contact_id}"' in detail.text

    # Rita may read the form and its submissions, not the contacts, nor change anything.
    csrf = client_sign_in(client, "rita")
    read_only = client.get(f"/forms/{form.id}")
    assert read_only.status_code == 200
    assert "You may read this form but not change it." in read_only.text
    assert 'id="builder"' not in read_only.text
    assert "Rotate embed key" not in read_only.text
    hidden = client.get(f"/forms/{form.id}/submissions")
    assert hidden.status_code == 200
    assert "(not visible to you)" in hidden.text
    assert f"/contacts/{sub.contact_id}" not in hidden.text
    assert f"/leads/{sub.lead_id}" not in hidden.text
    assert "(not visible to you)" in client.get(f"/forms/submissions/{sub.id}").text
    before = (form.name, form.embed_nonce)
    for url, data, allowed in (
        (f"/forms/{form.id}", _builder(csrf, name="Mine now"), (403,)),
        (f"/forms/{form.id}", _builder(csrf, action="add_field"), (403,)),
        (f"/forms/{form.id}/embed-key", {"csrf": csrf}, (403,)),
        (f"/forms/{form.id}/delete", {"csrf": csrf}, (403,)),
    ):
        assert client.post(url, data=data).status_code in allowed, url
    assert client.get(f"/forms/{form.id}/delete").status_code == 403
    assert client.get("/forms/new").status_code == 403
    assert client.post("/forms/new", data=_builder(csrf)).status_code == 403
    assert 'href="/forms/new"' not in client.get("/forms").text
    # Her unit's page: read-only, and unchanged by her posts.
    read_page = client.get(f"/pages/{dana_page.id}")
    assert read_page.status_code == 200
    assert "You may read this page but not change it." in read_page.text
    assert 'id="page-form"' not in read_page.text
    page_post = {
        "csrf": csrf,
        "name": "Hers",
        "slug": "hers",
        "title": "",
        "body": "",
        "form_id": "",
    }
    assert client.post(f"/pages/{dana_page.id}", data=page_post).status_code == 403
    assert (
        client.post(
            f"/pages/{dana_page.id}/state", data={"csrf": csrf, "state": "live"}
        ).status_code
        == 403
    )
    assert client.post(f"/pages/{dana_page.id}/delete", data={"csrf": csrf}).status_code == 403
    db.expire_all()
    kept = db.get_one(MarketingForm, form.id)
    assert (kept.name, kept.embed_nonce, kept.state) == (*before, "live")
    assert _count(db, MarketingForm) == 1

    # Fred, in France, cannot see the form, its submissions or its counts.
    csrf = client_sign_in(client, "fred")
    assert "Autumn webinar" not in client.get("/forms").text
    for url in (
        f"/forms/{form.id}",
        f"/forms/{form.id}/submissions",
        f"/forms/submissions/{sub.id}",
        f"/forms/{form.id}/delete",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "ada@example.com" not in response.text
    assert client.post(f"/forms/{form.id}", data=_builder(csrf, name="X")).status_code == 404
    assert client.post(f"/forms/{form.id}/embed-key", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/forms/{form.id}/delete", data={"csrf": csrf}).status_code == 404
    # A page of Dana's is as invisible, and his own page cannot show her form.
    assert client.get(f"/pages/{dana_page.id}").status_code == 404
    assert "Autumn" not in client.get("/pages").text
    assert f'value="{form.id}"' not in client.get("/pages/new").text
    stolen = client.post(
        "/pages/new",
        data={"csrf": csrf, "name": "Mine", "slug": "mine", "form_id": str(form.id)},
    )
    assert stolen.status_code == 404
    db.expire_all()
    assert db.get_one(MarketingForm, form.id).name == "Autumn webinar"
    assert _count(db, MarketingPage) == 1
    db.expire_all()
    assert (db.get_one(MarketingPage, dana_page.id).name, dana_page.state) == ("Autumn", "draft")


# ------------------------------------------------------------------ in a browser


def test_a_marketer_builds_a_form_puts_it_on_a_page_and_sees_who_sent_it(
    page: Page,
    browser: Browser,
    live: Live,
    db: Session,
    world: World,
    session_factory: sessionmaker[Session],
) -> None:
    sign_in(page, "dana", next="/forms")
    page.get_by_role("link", name="New form").click()
    page.locator("#name").fill("Autumn webinar")
    page.get_by_role("button", name="Add a field").click()
    row = page.locator("#field-1")
    row.get_by_label("Saves to").select_option(label="Last name")
    row.get_by_label("Label").fill("Last name")
    row.get_by_label("Required").check()
    page.get_by_role("button", name="Add a consent").click()
    consent = page.locator("#consent-0")
    consent.get_by_label("Wording").fill("Send me the newsletter")
    consent.get_by_label("Short name").fill("newsletter")
    consent.get_by_label("Needed to send the form").check()
    preview = page.frame_locator("#form-preview")
    expect(preview.get_by_label("Send me the newsletter")).to_be_visible()  # live, unsaved
    expect(preview.get_by_label("Last name *")).to_be_visible()
    # The preview cannot send, even filled in.
    preview.get_by_label("Email *").fill("someone@example.com")
    preview.get_by_label("Last name *").fill("Someone")
    preview.get_by_label("Send me the newsletter").check()
    preview.get_by_role("button", name="Submit").click()
    page.get_by_role("button", name="Create form").click()
    expect(page.locator("#notice")).to_contain_text("Form created")
    shot(page, "form-builder", live)
    page.get_by_role("button", name="Take live").click()
    expect(page.locator("#form-state")).to_have_text("Live")
    form_id = int(page.url.split("/forms/")[1].split("?")[0])

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Forms").click()
    page.get_by_role("link", name="Pages", exact=True).click()
    page.get_by_role("link", name="New page").click()
    page.locator("#name").fill("Autumn")
    page.get_by_label("Address").fill("autumn")
    page.locator("#title").fill("Join our autumn webinar")
    page.get_by_label("Text", exact=True).fill("An hour on what is new.\n\nBring your questions.")
    page.get_by_label("Form", exact=True).select_option(label="Autumn webinar")
    page.get_by_role("button", name="Create page").click()
    expect(page.locator("#notice")).to_contain_text("Page created")
    expect(page.frame_locator("#page-preview").get_by_text("Bring your questions.")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#page-state")).to_have_text("Published")
    shot(page, "page-editor", live)

    visitor = browser.new_context(base_url=live.url)
    try:
        public = visitor.new_page()
        public.goto("/p/autumn")
        expect(public.get_by_role("heading", level=1)).to_have_text("Join our autumn webinar")
        public.get_by_label("Email *").fill("Grace@Example.org")
        public.get_by_label("Last name *").fill("Hopper")
        public.get_by_label("Send me the newsletter").check()
        public.get_by_role("button", name="Submit").click()
        expect(public.locator("#thanks")).to_have_text("Thank you.")
    finally:
        visitor.close()

    # The worker's turn; the preview's click above sent nothing.
    pending = forms.pending(session_factory)
    assert len(pending) == 1
    forms.process_submission(session_factory, pending[0])
    with session_factory() as check:
        contact = check.scalars(select(Contact).where(Contact.email == "grace@example.org")).one()
        assert (contact.owner_type, contact.owner_id) == ("user", world.dana.id)
        assert contact.last_name == "Hopper"

    page.goto(f"/forms/{form_id}")
    page.get_by_role("link", name="Submissions", exact=True).first.click()
    table = page.locator("#submissions")
    expect(table).to_contain_text("grace@example.org")
    expect(table).to_contain_text("contact made, lead made")
    shot(page, "form-submissions", live)
    table.get_by_role("link", name="Hopper").first.click()
    expect(page).to_have_url(f"{live.url}/contacts/{contact.id}")
