"""Browser tests: Debian's Chromium driven by Playwright against a live server on loopback.

``live`` serves the real app (uvicorn in a thread) on the test database for the whole
session; each test still starts from a clean organisation (``session_factory``). ``browser``
is one headless Chromium per test module; ``page`` is a fresh context (no cookies) at
desktop width, ``phone`` one at phone width. ``shot(page, name)`` saves a screenshot under
``var/screenshots/`` for people to look at after the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from gatherly.app import create_app
from gatherly.core.config import Settings
from gatherly.org import service as org
from gatherly.org.models import User
from tests.loopback import serve_asgi

CHROMIUM = os.environ.get("GATHERLY_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct horse battery"
BROWSER_ZONE = "Europe/Berlin"
DESKTOP = {"width": 1366, "height": 900}  # the laptop screen the pages are checked at
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Live:
    """The app served over HTTP on loopback, and the settings it runs with."""

    url: str
    settings: Settings
    backend: str
    app: Any = None  # the served app (a test may swap its ``state.settings`` and restore them)


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = Settings(
        database_url=database_url,
        queue_path=str(tmp_path_factory.mktemp("queue") / "queue.db"),
        graph_rate_per_second=500,
    )
    app = create_app(settings)
    with serve_asgi(app) as url:
        yield Live(url, settings, database_url.split(":", 1)[0].split("+", 1)[0], app)
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while Playwright's sync API is open it keeps an event
    # loop running on this thread, and other tests' asyncio.run() would then fail.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so a browser fixture knows it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _page(
    request: pytest.FixtureRequest, browser: Browser, live: Live, viewport: dict[str, int]
) -> Iterator[Page]:
    # A browser in Berlin: pages show times in the zone the browser reports.
    context = browser.new_context(
        base_url=live.url,
        viewport=viewport,  # type: ignore[arg-type]
        timezone_id=BROWSER_ZONE,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        # What the browser showed when the test failed, for whoever reads the CI log.
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
        path = SCREENSHOTS / f"failed-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failed test: {path}")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    live: Live,
    session_factory: sessionmaker[Session],
) -> Iterator[Page]:
    """A fresh desktop-width browser tab on the live app (clean organisation); a failing
    test leaves a screenshot in var/screenshots/failed-<test>.png."""
    yield from _page(request, browser, live, DESKTOP)


@pytest.fixture
def phone(
    request: pytest.FixtureRequest,
    browser: Browser,
    live: Live,
    session_factory: sessionmaker[Session],
) -> Iterator[Page]:
    """A fresh phone-width browser tab on the live app (clean organisation)."""
    yield from _page(request, browser, live, PHONE)


def with_password(db: Session, user: User) -> User:
    """Give a test user the shared test password so a browser can sign in as them."""
    org.set_password(db=db, user_id=user.id, password=PASSWORD)
    return user


def sign_in(page: Page, username: str, password: str = PASSWORD, next: str = "/") -> None:
    """Sign in through the form, as a person would; fails the test if it does not work."""
    page.goto(f"/signin?next={next}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/signin)"))


def text_of(html: str) -> str:
    """A page's text as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def post_sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    """Post the sign-in form (after clearing whoever was signed in); returns the response."""
    client.cookies.clear()
    form = client.get("/signin")
    return client.post(
        "/signin",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )


def client_sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign a TestClient in through the form (ending whoever was signed in); returns the
    new session's CSRF token."""
    response = post_sign_in(client, username, password)
    assert response.status_code == 303, response.text[:300]
    return csrf_of(client.get("/").text)


def shot(page: Page, name: str, live: Live) -> Path:
    """Save a full-page screenshot as var/screenshots/<name>-<backend>.png, when
    ``GATHERLY_SCREENSHOTS`` is set (they cost the suite's time)."""
    path = SCREENSHOTS / f"{name}-{live.backend}.png"
    if os.environ.get("GATHERLY_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    return path


def key_column_stays_in_view(page: Page, link: str) -> None:
    """The table holding the link ``link`` is wider than its card and scrolls inside it,
    and the cell of that link (the row's key) stays on screen when scrolled to the end."""
    name = page.get_by_role("link", name=link, exact=True)
    wrap = name.locator("xpath=ancestor::div[contains(@class, 'table-wrap')]")
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth"), "the table fits: nothing to test"
    wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
    assert name.evaluate("a => getComputedStyle(a.closest('td, th')).position") == "sticky"
    box, frame = name.bounding_box(), wrap.bounding_box()
    assert box is not None
    assert frame is not None
    assert frame["x"] <= box["x"] < frame["x"] + frame["width"], (box, frame)  # on screen
    ticks = name.evaluate(
        "a => [...a.closest('tr').querySelectorAll('input[type=checkbox]')]"
        ".map(b => b.getBoundingClientRect().right)"
    )
    assert all(right <= box["x"] for right in ticks), "the key column covers a tick box"


def no_horizontal_scroll(page: Page) -> None:
    """The page fits its width (tables scroll inside their own box, the page does not)."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the page is {overflow}px wider than the screen"
