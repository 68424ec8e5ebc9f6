"""CSV exports from the web pages (issue 12 F4): the segment and list pages link to an export
that neutralises formulas and holds only the members the viewer may read.

gustav (Germany, Marketer) owns the dangerous contacts; francoise (France, Marketer) owns a
hidden one; mara (Marketing Administrator at the root) reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page
from sqlalchemy.orm import Session

from gatherly.segment import service as seg
from tests import bad_input as bad
from tests import csv_injection as evil
from tests import factories as f
from tests.web.conftest import client_sign_in, sign_in, with_password


@dataclass
class Setup:
    segment_id: int
    list_id: int
    shown: list[int]
    hidden: int


@pytest.fixture
def setup(db: Session) -> Setup:
    germany, france = f.bu(db, "Germany"), f.bu(db, "France")
    gustav = with_password(db, f.user(db, "gustav", germany, "Marketer"))
    francoise = with_password(db, f.user(db, "francoise", france, "Marketer"))
    mara = with_password(db, f.user(db, "mara", None, "Marketing Administrator"))
    shown = evil.add_people(db, gustav)
    hidden = evil.add_hidden(db, francoise)
    segment = seg.create_segment(
        db=db,
        principal=f.principal(db, gustav),
        name="Evil",
        criteria={"contact": {"email": {"ends_with": evil.DOMAIN}}},
    )
    mlist = seg.create_list(db=db, principal=f.principal(db, gustav), name="Evil list")
    seg.add_to_list(
        db=db, principal=f.principal(db, mara), list_id=mlist.id, contact_ids=[*shown, hidden]
    )
    db.commit()
    return Setup(segment.id, mlist.id, shown, hidden)


def _csv(client: TestClient, url: str) -> str:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response.text


def test_the_segment_page_export_neutralises_formulas(client: TestClient, setup: Setup) -> None:
    client_sign_in(client, "gustav")
    page = client.get(f"/segments/{setup.segment_id}").text
    assert f'href="/segments/{setup.segment_id}/members.csv"' in page
    text = _csv(client, f"/segments/{setup.segment_id}/members.csv")
    evil.check(text, setup.shown)
    assert "HIDDEN" not in text


def test_the_list_page_links_an_export_that_neutralises_formulas(
    client: TestClient, setup: Setup
) -> None:
    client_sign_in(client, "gustav")
    page = client.get(f"/lists/{setup.list_id}").text
    assert f'href="/lists/{setup.list_id}/members.csv"' in page
    assert '<span class="value">4</span> members you can see' in page
    text = _csv(client, f"/lists/{setup.list_id}/members.csv")
    evil.check(text, setup.shown)
    assert "HIDDEN" not in text
    assert "hidden" + evil.DOMAIN not in text

    client_sign_in(client, "mara")
    assert len(evil.rows(_csv(client, f"/lists/{setup.list_id}/members.csv"))) == 5

    client_sign_in(client, "francoise")  # may not read gustav's list
    for url in (f"/lists/{setup.list_id}", f"/lists/{setup.list_id}/members.csv"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 404, url
        assert "Evil list" not in response.text
        assert "Anna-Lena" not in response.text
    for url in ("/lists/0/members.csv", "/lists/99999999999999999999/members.csv"):
        assert client.get(url, follow_redirects=False).status_code == 422, url

    client.cookies.clear()
    signed_out = client.get(f"/lists/{setup.list_id}/members.csv", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/signin")


def test_a_person_downloads_the_list_export_from_the_page(page: Page, setup: Setup) -> None:
    sign_in(page, "gustav", next=f"/lists/{setup.list_id}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export members (CSV)").click()
    saved = download.value
    assert saved.suggested_filename == f"list-{setup.list_id}.csv"
    text = saved.path().read_bytes().decode("utf-8")  # bytes: a \r in a cell stays one
    assert text.startswith("id,email,")
    evil.check(text, setup.shown)


# ---------------------------------------------------------------- issue 12 F5 on the pages


def _builder(**rows: str) -> dict[str, str]:
    return {
        "action": "save",
        "name": "Edge",
        "description": "",
        "scope": "business_unit",
        "match": "all",
        "row_count": "1",
        **rows,
    }


BAD_ROWS: list[tuple[dict[str, str], str]] = [
    ({"row-0-kind": "list", "row-0-list": "²"}, "is not a marketing list id"),
    ({"row-0-kind": "list", "row-0-list": "9" * 5000}, "is not a marketing list id"),
    ({"row-0-kind": "list", "row-0-list": "99999999999999999999"}, "not a marketing list"),
    ({"row-0-kind": "participation", "row-0-event": "³"}, "is not a whole number"),
    (
        {"row-0-kind": "contact", "row-0-field": "id", "row-0-value": "99999999999999999999"},
        "out of range",
    ),
    (
        {
            "row-0-kind": "contact",
            "row-0-field": "created_at",
            "row-0-op": "before",
            "row-0-value": "9999-12-31T23:59:59-14:00",
        },
        "out of range once converted to UTC",
    ),
]


def test_the_builder_refuses_odd_digits_and_extreme_values_by_row(
    client: TestClient, setup: Setup
) -> None:
    token = client_sign_in(client, "gustav")
    for row, says in BAD_ROWS:
        _refused(client, token, row, says)


def _refused(client: TestClient, token: str, row: dict[str, str], says: str) -> None:
    data = {"csrf": token, **_builder(**row)}
    count = client.post("/segments/preview", data=data, follow_redirects=False)
    assert count.status_code == 200, count.text[:300]
    assert says in count.text
    saved = client.post("/segments", data=data, follow_redirects=False)
    assert saved.status_code == 422, saved.text[:300]
    assert says in saved.text
    # Odd digits in the form's own numbers (a row to remove, the segment being edited)
    # are ignored, not a 500.
    for extra in ({"action": "remove_²"}, {"segment_id": "²"}, {"row_count": "²"}):
        response = client.post("/segments/preview", data={**data, **extra}, follow_redirects=False)
        assert response.status_code == 200, (extra, response.text[:300])


def test_pages_refuse_forged_cursors(client: TestClient, setup: Setup) -> None:
    client_sign_in(client, "gustav")
    pages = {
        "/contacts": "-modified_at",
        "/events": "-start_at",
        "/segments": "-id",
        "/lists": "-id",
        f"/segments/{setup.segment_id}": "last_name",
        f"/lists/{setup.list_id}": "last_name",
    }
    for url, sort in pages.items():
        for cursor in bad.forged_cursors(sort):
            response = client.get(url, params={"cursor": cursor}, follow_redirects=False)
            assert response.status_code in (200, 422), (url, cursor, response.status_code)
            assert "cursor is not one this API issued" in response.text or (
                "cursor was issued for sort" in response.text
            ), (url, cursor)
