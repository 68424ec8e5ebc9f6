"""Report and dashboard pages (issue 18, SPEC T6): the built-in and saved reports, a
report's chart and table, the builder with its preview and its errors beside the fields,
CSV downloads through the one writer, dashboards, and what each viewer may see.

The organisation: Sales (selma, Marketer) and Support (sven, Marketer). Selma's webinars:
"Sales launch" in November (three registered, two attended) and "=cmd" in October (one
registered, who attended); Sven's: "Support clinic" in November (one registered, who
attended).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.event.models import MarketingEvent
from gatherly.org.models import User
from gatherly.report import service
from gatherly.report.models import Dashboard, Report
from tests import factories as f
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password

NOV, OCT = datetime(2026, 11, 10, 9, tzinfo=UTC), datetime(2026, 10, 5, 9, tzinfo=UTC)
BY_EVENT = "webinar-performance-by-event"


@dataclass
class Acme:
    db: Session
    selma: User
    sven: User
    launch: MarketingEvent
    cmd: MarketingEvent

    def report(self, who: User, name: str = "Launches", **definition: Any) -> Report:
        made = service.create_report(
            db=self.db,
            principal=f.principal(self.db, who),
            name=name,
            definition={"source": "events", "measures": ["registrants"], **definition},
        )
        self.db.commit()
        return made

    def count(self, model: Any) -> int:
        self.db.expire_all()
        return int(self.db.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def acme(db: Session) -> Acme:
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    selma = with_password(db, f.user(db, "selma", sales, "Marketer"))
    sven = with_password(db, f.user(db, "sven", support, "Marketer"))
    people = [
        f.contact(db, selma, email=f"s{i}@example.com", country="DE", first_name=f"S{i}")
        for i in range(3)
    ]
    helped = f.contact(db, sven, email="h@example.com", country="FR")
    launch = f.event(db, selma, "Sales launch", start_at=NOV, event_type="webinar")
    cmd = f.event(db, selma, "=cmd", start_at=OCT, event_type="webinar")
    clinic = f.event(db, sven, "Support clinic", start_at=NOV, event_type="webinar")
    for p in people:
        f.registration(db, launch, p)
    f.attendance(db, launch, people[0], seconds=40 * 60)
    f.attendance(db, launch, people[1], seconds=20 * 60)
    f.registration(db, cmd, people[2])
    f.attendance(db, cmd, people[2], seconds=60 * 60)
    f.registration(db, clinic, helped)
    f.attendance(db, clinic, helped, seconds=30 * 60)
    db.commit()
    return Acme(db, selma, sven, launch, cmd)


class Signed:
    """A TestClient signed in as one user, with that session's CSRF token."""

    def __init__(self, client: TestClient, username: str) -> None:
        self.client = client
        self.token = client_sign_in(client, username)

    def get(self, url: str) -> Any:
        return self.client.get(url, follow_redirects=False)

    def post(self, url: str, data: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            url, data={"csrf": self.token, **(data or {})}, follow_redirects=False
        )


@pytest.fixture
def as_user(client: TestClient) -> Callable[[str], Signed]:
    return lambda username: Signed(client, username)


def _rows(html: str, table: str = "report-numbers") -> list[str]:
    """The text of each body row of a report's table."""
    part = html.split(f'id="{table}"', 1)[1]
    body = part.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [text_of(row) for row in body.split("</tr>") if text_of(row)]


def _builder(action: str = "save", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": action,
        "name": "Registrations by event",
        "description": "",
        "source": "registrations",
        "group_by_0": "event",
        "group_by_1": "",
        "measures": ["registrants", "distinct_contacts"],
        "chart": "bar",
        "event_type": "webinar",
        "event_name": "",
        "event_days": "",
        "match": "all",
        "row_count": "0",
    }
    data.update(fields)
    return data


# ---------------------------------------------------------------- pages


def test_the_reports_page_lists_builtins_and_the_saved_reports_you_may_read(
    acme: Acme, as_user: Any
) -> None:
    mine = acme.report(acme.selma, "Selma's launches")
    acme.report(acme.sven, "Sven's clinics")
    selma = as_user("selma")
    page = selma.get("/reports")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Webinar performance" in text
    assert "Contact acquisition by source" in text
    assert f'href="/reports/{mine.id}"' in page.text
    assert "Sven's clinics" not in page.text
    assert 'href="/reports" aria-current="page">Reports</a>' in page.text
    assert 'href="/reports/new"' in page.text
    assert 'href="/dashboards"' in page.text


def test_the_same_builtin_shows_each_business_unit_its_own_numbers(
    acme: Acme, as_user: Any
) -> None:
    selma = as_user("selma").get("/reports/builtin/webinar-performance")
    assert selma.status_code == 200
    # month, events, registrants, attendees, rate, average minutes, cancellations, no-shows
    assert _rows(selma.text) == [
        "2026-10 1 1 1 100.0% 60.0 0 0",
        "2026-11 1 3 2 66.7% 30.0 0 1",
    ]
    svg = re.search(r"<svg.*?</svg>", selma.text, re.S)
    assert svg is not None
    assert "<script" not in svg.group(0).lower()
    assert "Save a copy" in selma.text
    sven = as_user("sven").get("/reports/builtin/webinar-performance")
    assert _rows(sven.text) == ["2026-11 1 1 1 100.0% 30.0 0 0"]
    assert "Sales launch" not in sven.text
    by_event = as_user("selma").get(f"/reports/builtin/{BY_EVENT}")
    assert f'<a href="/events/{acme.launch.id}">Sales launch</a>' in by_event.text
    assert "<svg" not in by_event.text  # a table-only report
    selma_again = as_user("selma")
    assert selma_again.get("/reports/builtin/nope").status_code == 404
    copied = selma_again.post("/reports/builtin/webinar-performance/copy")
    assert copied.status_code == 303
    made = acme.db.execute(select(Report)).scalar_one()
    assert copied.headers["location"] == f"/reports/{made.id}/edit"
    edit = selma_again.get(copied.headers["location"]).text
    assert 'id="event_type" name="event_type" value="webinar"' in edit
    assert 'value="month" selected' in edit


def test_the_csv_download_neutralises_formulas(acme: Acme, as_user: Any) -> None:
    selma = as_user("selma")
    export = selma.get(f"/reports/builtin/{BY_EVENT}/report.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:3] == ["Event", "Registrants", "Attendees"]
    assert [r[0] for r in rows[1:]] == ["'=cmd", "Sales launch"]
    saved = acme.report(acme.selma, group_by=["event"], source="events", measures=["events"])
    mine = selma.get(f"/reports/{saved.id}/report.csv")
    assert [r[0] for r in csv.reader(io.StringIO(mine.text))] == ["Event", "'=cmd", "Sales launch"]


def test_the_builder_shows_service_errors_beside_the_fields_then_previews_and_saves(
    acme: Acme, as_user: Any
) -> None:
    selma = as_user("selma")
    assert 'id="source"' in selma.get("/reports/new").text
    bad = selma.post("/reports/new", _builder(group_by_1="type"))
    assert bad.status_code == 422
    error = re.search(r'id="group_by_1-error"[^>]*>([^<]*)<', bad.text)
    assert error is not None
    assert "'type' does not apply to registrations" in text_of(error.group(1))
    assert 'value="Registrations by event"' in bad.text  # what was typed stays
    assert 'value="type" selected' in bad.text
    assert acme.count(Report) == 0
    # A contact condition the criteria refuse shows beside its row.
    row = {
        "row_count": "1",
        "row-0-kind": "contact",
        "row-0-field": "country",
        "row-0-op": "gt",
        "row-0-value": "DE",
    }
    refused = selma.post("/reports/new", _builder("preview", **row))
    assert refused.status_code == 422
    assert 'id="row-0-error"' in refused.text
    # The source's groupings follow it when it changes (no script needed).
    switched = selma.post("/reports/new", _builder("update", source="contacts"))
    assert switched.status_code == 200
    assert 'value="event"' not in switched.text.split('id="definition"', 1)[1]
    assert 'value="contacts" checked' in switched.text
    # A preview runs the unsaved definition; nothing is saved.
    row["row-0-op"] = "equals"
    preview = selma.post("/reports/new", _builder("preview", **row))
    assert preview.status_code == 200
    assert _rows(preview.text, "preview-run") == ["=cmd 1 1", "Sales launch 3 3"]
    assert acme.count(Report) == 0
    saved = selma.post("/reports/new", _builder(**row))
    assert saved.status_code == 303, saved.text[:3000]
    made = acme.db.execute(select(Report)).scalar_one()
    assert saved.headers["location"] == f"/reports/{made.id}"
    assert made.definition == {
        "source": "registrations",
        "filters": {
            "event": {"type": "webinar"},
            "contact": {"all": [{"contact": {"country": {"equals": "DE"}}}]},
        },
        "group_by": ["event"],
        "measures": ["registrants", "distinct_contacts"],
    }
    page = selma.get(f"/reports/{made.id}")
    assert _rows(page.text) == ["=cmd 1 1", "Sales launch 3 3"]
    edit = selma.get(f"/reports/{made.id}/edit")
    assert 'value="webinar"' in edit.text
    assert 'name="row_count" value="1"' in edit.text
    assert selma.get(f"/reports/{made.id}/delete").status_code == 200
    assert selma.post(f"/reports/{made.id}/delete").status_code == 303
    assert acme.count(Report) == 0


def test_a_sales_report_is_not_found_for_support(acme: Acme, as_user: Any) -> None:
    theirs = acme.report(acme.selma, "Sales only")
    sven = as_user("sven")
    for url in (f"/reports/{theirs.id}", f"/reports/{theirs.id}/report.csv"):
        refused = sven.get(url)
        assert refused.status_code == 404, url
        assert "Sales only" not in refused.text
    assert sven.get(f"/reports/{theirs.id}/edit").status_code == 404
    assert sven.post(f"/reports/{theirs.id}/pin", {"dashboard": "new"}).status_code == 404
    assert acme.count(Dashboard) == 0


def test_pin_two_reports_to_a_dashboard(acme: Acme, as_user: Any) -> None:
    saved = acme.report(acme.selma, "Launch registrants", group_by=["event"])
    selma = as_user("selma")
    unnamed = selma.post("/reports/builtin/webinar-performance/pin", {"dashboard": "new"})
    assert unnamed.status_code == 422
    assert 'id="new_name-error"' in unnamed.text
    made = selma.post(
        "/reports/builtin/webinar-performance/pin", {"dashboard": "new", "new_name": "Webinars"}
    )
    assert made.status_code == 303
    board = acme.db.execute(select(Dashboard)).scalar_one()
    assert made.headers["location"] == f"/dashboards/{board.id}"
    page = selma.get(f"/reports/{saved.id}").text
    assert f'<option value="{board.id}">Webinars</option>' in page
    pinned = selma.post(f"/reports/{saved.id}/pin", {"dashboard": str(board.id)})
    assert pinned.status_code == 303
    shown = selma.get(f"/dashboards/{board.id}")
    assert shown.status_code == 200
    assert shown.text.count('class="card dashboard-panel"') == 2
    assert _rows(shown.text, "panel-2") == ["=cmd 1", "Sales launch 3"]
    assert "<svg" in shown.text
    # Reordered on the edit page, the saved report comes first.
    edit = selma.get(f"/dashboards/{board.id}/edit")
    assert "Launch registrants" in edit.text
    moved = selma.post(
        f"/dashboards/{board.id}/edit",
        {
            "name": "Webinars",
            "item": ["builtin:webinar-performance", f"report:{saved.id}"],
            "action": "down_0",
        },
    )
    assert moved.status_code == 303
    acme.db.expire_all()
    assert acme.db.get(Dashboard, board.id).items == [  # type: ignore[union-attr]
        {"report": saved.id},
        {"builtin": "webinar-performance"},
    ]
    # Sven cannot see it; a deleted report's panel says so.
    assert as_user("sven").get(f"/dashboards/{board.id}").status_code == 404
    selma = as_user("selma")
    assert selma.post(f"/reports/{saved.id}/delete").status_code == 303
    gone = selma.get(f"/dashboards/{board.id}")
    assert "This panel shows nothing: a report you may not read, or one deleted since" in (
        text_of(gone.text)
    )
    assert selma.get("/dashboards").status_code == 200
    assert selma.post(f"/dashboards/{board.id}/delete").status_code == 303
    assert acme.count(Dashboard) == 0


# ---------------------------------------------------------------- in the browser


def test_build_preview_save_and_pin_a_report(page: Page, acme: Acme, live: Live) -> None:
    sign_in(page, "selma", next="/reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    page.get_by_role("link", name="New report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New report")
    page.get_by_label("Name", exact=True).fill("Registrants per webinar")
    page.get_by_label("What to count").select_option(label="Event registrations")
    # The groupings follow the source (redrawn by the server).
    group = page.get_by_label("Group by", exact=True)
    expect(group.locator("option", has_text="Country")).to_have_count(1)
    group.select_option(label="Event")
    page.get_by_label("Distinct contacts").check()
    page.get_by_label("Type", exact=True).fill("webinar")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview-run")
    expect(preview.get_by_role("row", name=re.compile("Sales launch"))).to_contain_text("3")
    expect(preview).not_to_contain_text("Support clinic")
    expect(preview.locator("svg")).to_have_count(1)
    shot(page, "report-builder", live)
    page.get_by_role("button", name="Save report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Registrants per webinar")
    numbers = page.locator("#report-numbers")
    expect(numbers.get_by_role("link", name="Sales launch")).to_have_attribute(
        "href", f"/events/{acme.launch.id}"
    )
    shot(page, "report", live)
    page.get_by_label("Name of a new dashboard").fill("My webinars")
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My webinars")
    expect(page.get_by_role("link", name="Registrants per webinar")).to_be_visible()
    expect(
        page.locator("#panel-1").get_by_role("row", name=re.compile("Sales launch"))
    ).to_be_visible()
    shot(page, "dashboard", live)
