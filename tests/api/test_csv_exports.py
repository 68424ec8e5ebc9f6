"""CSV exports over the API (issue 12 F4): every cell a spreadsheet would run as a formula
comes out with a leading ``'``, and an export holds only what the caller may read.

The marketer (Sales) owns the dangerous contacts; a contact of Support's is in the same
segment and list but hidden from the marketer by their role.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gatherly.segment import jobs
from tests import csv_injection as evil
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

EVIL_CRITERIA = {"contact": {"email": {"ends_with": evil.DOMAIN}}}


@pytest.fixture
def people(db: Session, org: Org) -> dict[str, Any]:
    shown = evil.add_people(db, org.users["marketer"])
    hidden = evil.add_hidden(db, org.users["support_assistant"])
    db.commit()
    return {"shown": shown, "hidden": hidden}


def _export(client: TestClient, url: str, headers: dict[str, str]) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return response.text


def test_the_segment_export_neutralises_formulas(
    client: TestClient,
    db: Session,
    org: Org,
    people: dict[str, Any],
    session_factory: sessionmaker[Session],
) -> None:
    marketer = org.headers["marketer"]
    created = client.post(
        f"{API}/segments", json={"name": "Evil", "criteria": EVIL_CRITERIA}, headers=marketer
    )
    assert created.status_code == 201, created.text
    url = f"{API}/segments/{created.json()['id']}/members.csv"
    live = _export(client, url, marketer)  # before any refresh: evaluated now
    evil.check(live, people["shown"])
    jobs.process_changes(session_factory)
    stored = _export(client, url, marketer)  # the materialised membership
    evil.check(stored, people["shown"])
    assert "HIDDEN" not in stored
    # The data is unchanged: only the file is neutralised.
    db.expire_all()
    assert evil.contact_names(db, people["shown"][:1]) == [evil.HYPERLINK]
    # The organisation-level admin reads the hidden contact too, neutralised as well.
    rows = evil.rows(_export(client, url, org.headers["orgadmin"]))
    assert [r["first_name"] for r in rows if r["email"].startswith("hidden")] == ["'=HIDDEN()"]


def test_the_list_export_neutralises_formulas_and_holds_only_readable_members(
    client: TestClient, org: Org, people: dict[str, Any]
) -> None:
    marketer = org.headers["marketer"]
    made = client.post(f"{API}/lists", json={"name": "Evil list"}, headers=marketer)
    assert made.status_code == 201, made.text
    list_id = made.json()["id"]
    # The administrator adds the hidden contact as well; the marketer may not read it.
    added = client.post(
        f"{API}/lists/{list_id}/members",
        json={"contact_ids": [*people["shown"], people["hidden"]]},
        headers=org.headers["admin"],
    )
    assert added.json()["added"] == 5, added.text
    url = f"{API}/lists/{list_id}/members.csv"
    text = _export(client, url, marketer)
    evil.check(text, people["shown"])
    assert "HIDDEN" not in text
    assert "hidden" + evil.DOMAIN not in text
    # The export and the member count agree: the hidden member is neither listed nor counted.
    members = client.get(f"{API}/lists/{list_id}/members", headers=marketer).json()
    assert members["visible"] == len(evil.rows(text)) == 4
    assert (
        f'filename="list-{list_id}.csv"'
        in client.get(url, headers=marketer).headers["content-disposition"]
    )
    # The organisation-level administrator reads all five.
    assert len(evil.rows(_export(client, url, org.headers["orgadmin"]))) == 5
    # Users who may not read the list get the same 404 as for the list itself.
    for who in ("eu_marketer", "support_assistant", "nobody"):
        assert_error(client.get(f"{API}/lists/{list_id}", headers=org.headers[who]), 404, "id")
        assert_error(client.get(url, headers=org.headers[who]), 404, "id")
    assert_error(client.get(url), 401)
    assert_error(client.get(f"{API}/lists/987654/members.csv", headers=marketer), 404, "id")


def test_an_empty_list_exports_its_header(client: TestClient, org: Org) -> None:
    made = client.post(f"{API}/lists", json={"name": "Empty"}, headers=org.headers["marketer"])
    text = _export(client, f"{API}/lists/{made.json()['id']}/members.csv", org.headers["marketer"])
    assert text == "id,email,first_name,last_name,company,country,owning_bu_id\r\n"


def test_a_large_list_streams_in_chunks(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    # More members than one chunk of the writer and of the service's id-ordered reads.
    owner = org.users["marketer"]
    ids = [f.contact(db, owner, first_name=f"=P{i}", last_name="Bulk").id for i in range(1205)]
    db.commit()
    made = client.post(f"{API}/lists", json={"name": "Bulk"}, headers=org.headers["marketer"])
    list_id = made.json()["id"]
    added = client.post(
        f"{API}/lists/{list_id}/members",
        json={"contact_ids": ids},
        headers=org.headers["marketer"],
    )
    assert added.json()["added"] == 1205
    rows = evil.rows(_export(client, f"{API}/lists/{list_id}/members.csv", org.headers["marketer"]))
    assert [int(r["id"]) for r in rows] == sorted(ids)
    assert {r["first_name"][:3] for r in rows} == {"'=P"}
