"""The reports API (issue 18): built-in and saved reports run over HTTP count only what the
caller may read — the same report, different numbers per business unit — with CSV through
the one writer, previews, and dashboards."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import assert_error

API = "/api/v1"
NOV = datetime(2026, 11, 10, 9, tzinfo=UTC)


def test_the_same_report_counts_each_callers_own_view(
    client: TestClient, org: Org, db: Session
) -> None:
    sales = f.event(db, org.users["marketer"], "=Sales launch", start_at=NOV, event_type="webinar")
    support = f.event(
        db, org.users["support_assistant"], "Support clinic", start_at=NOV, event_type="webinar"
    )
    marketer_contact = db.get(Contact, org.contacts["marketer"])
    support_contact = db.get(Contact, org.contacts["support"])
    assert marketer_contact is not None
    assert support_contact is not None
    f.registration(db, sales, marketer_contact)
    f.attendance(db, sales, marketer_contact, seconds=1200)
    f.registration(db, support, support_contact)
    db.commit()

    def run(who: str) -> list[list[object]]:
        body = client.get(
            f"{API}/reports/builtin/webinar-performance-by-event/run", headers=org.headers[who]
        )
        assert body.status_code == 200, body.text
        return [[k["label"] for k in r["keys"]] + r["values"] for r in body.json()["rows"]]

    assert run("marketer") == [["=Sales launch", 1, 1, 1.0, 20.0, 0, 0]]
    assert run("support_assistant") == [["Support clinic", 1, 0, 0.0, None, 0, 1]]
    assert len(run("admin")) == 2
    assert run("nobody") == []

    export = client.get(
        f"{API}/reports/builtin/webinar-performance-by-event/run.csv",
        headers=org.headers["marketer"],
    )
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[1][0] == "'=Sales launch"
    assert_error(
        client.get(f"{API}/reports/builtin/nope/run", headers=org.headers["marketer"]), 404, "key"
    )


def test_saved_reports_previews_and_dashboards(client: TestClient, org: Org) -> None:
    mine = org.headers["marketer"]
    definition = {"source": "contacts", "group_by": ["country"], "measures": ["contacts"]}
    preview = client.post(f"{API}/reports/preview", json={"definition": definition}, headers=mine)
    assert preview.status_code == 200, preview.text
    assert {r["keys"][0]["label"] for r in preview.json()["rows"]} <= {
        "DE",
        "FR",
        "US",
        "JP",
        "GB",
        "—",
    }
    bad = {**definition, "group_by": ["event"]}
    assert_error(
        client.post(f"{API}/reports", json={"name": "X", "definition": bad}, headers=mine),
        422,
        "definition.group_by[0]",
    )
    saved = client.post(
        f"{API}/reports", json={"name": "By country", "definition": definition}, headers=mine
    )
    assert saved.status_code == 201, saved.text
    report_id = saved.json()["id"]
    assert client.get(f"{API}/reports/{report_id}/run", headers=mine).json()["name"] == "By country"
    # Another BU's marketer cannot read it, run it, export it, or pin it.
    theirs = org.headers["support_assistant"]
    for url in (
        f"{API}/reports/{report_id}",
        f"{API}/reports/{report_id}/run",
        f"{API}/reports/{report_id}/run.csv",
    ):
        assert_error(client.get(url, headers=theirs), 404)
    assert_error(
        client.post(
            f"{API}/dashboards",
            json={"name": "Peek", "items": [{"report": report_id}]},
            headers=theirs,
        ),
        404,
        "items[0].report",
    )
    board = client.post(
        f"{API}/dashboards",
        json={"name": "Mine", "items": [{"report": report_id}, {"builtin": "email-performance"}]},
        headers=mine,
    )
    assert board.status_code == 201, board.text
    shown = client.get(f"{API}/dashboards/{board.json()['id']}", headers=mine).json()
    assert [p["run"]["name"] for p in shown["panels"]] == ["By country", "Email performance"]
    assert client.delete(f"{API}/reports/{report_id}", headers=mine).status_code == 204
    shown = client.get(f"{API}/dashboards/{board.json()['id']}", headers=mine).json()
    assert shown["panels"][0]["run"] is None
    assert "deleted" in shown["panels"][0]["problem"]
