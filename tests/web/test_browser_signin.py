"""Sign-in, sign-out, CSRF and the layout in a real browser (Chromium over loopback)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect
from sqlalchemy.orm import Session

from gatherly.org import service as org
from tests import factories as f
from tests.web.conftest import Live, no_horizontal_scroll, shot, sign_in, with_password


def _gustav(db: Session, role: str = "Marketer") -> None:
    with_password(db, f.user(db, "gustav", f.bu(db, "Germany"), role))
    db.commit()


def test_sign_in_shows_the_home_page_and_sign_out_ends_the_session(
    page: Page, db: Session, live: Live
) -> None:
    _gustav(db)
    page.goto("/")
    expect(page).to_have_url(f"{live.url}/signin?next=%2F")
    shot(page, "signin", live)
    sign_in(page, "gustav", next="/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, gustav")
    expect(page.get_by_text("Business unit: Germany")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Events")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)  # not an administrator
    shot(page, "home", live)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live.url}/signin")
    page.goto("/")
    expect(page).to_have_url(f"{live.url}/signin?next=%2F")


def test_wrong_password_is_said_inline_and_focus_stays_usable(page: Page, db: Session) -> None:
    _gustav(db)
    page.goto("/signin")
    page.get_by_label("Username").fill("gustav")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value("gustav")


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    page: Page, db: Session, live: Live
) -> None:
    _gustav(db)
    sign_in(page, "gustav")
    # A forged sign-out: the same form without the session's token.
    page.evaluate("() => document.querySelector('form.signout input[name=csrf]').remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form was refused")
    shot(page, "csrf-refused", live)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, gustav")  # still in


def test_a_disabled_user_gets_a_clear_page(page: Page, db: Session) -> None:
    _gustav(db)
    sign_in(page, "gustav")
    user = org.get_user_by_username(db=db, username="gustav")
    org.update_user(db=db, user_id=user.id, disabled=True)
    db.commit()
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("disabled")


def test_the_layout_fits_a_phone(phone: Page, db: Session, live: Live) -> None:
    _gustav(db, role="System Administrator")
    sign_in(phone, "gustav")
    expect(
        phone.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_be_visible()
    no_horizontal_scroll(phone)
    shot(phone, "home-phone", live)


def test_the_api_docs_render_with_no_network_but_the_app(page: Page, live: Live) -> None:
    """Swagger UI draws the operations from the app's own files: any other host is cut off."""
    elsewhere: list[str] = []

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_app)
    page.goto("/api/v1/docs")
    # Building and drawing the document (~330 KB, 200+ operations) takes seconds on a busy
    # two-core machine: this test is about the network, not speed.
    heading = page.get_by_role("heading", name=re.compile("^Gatherly"))
    expect(heading).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/api/v1/segments/{segment_id}/members.csv").first).to_be_visible()
    assert elsewhere == []
    shot(page, "api-docs", live)
