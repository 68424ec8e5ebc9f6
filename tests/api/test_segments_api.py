"""The segment, list and feature-switch routes: what each user may read, as records and as
counts, bad input, and the B4/B5/B13 rules over HTTP."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.changes import DataChange
from gatherly.segment import jobs
from tests import factories as f
from tests.api.conftest import VISIBLE, Org
from tests.api.helpers import API, assert_error, count, visible_ids

EVERY_COUNTRY = {"contact": {"country": {"in": ["JP", "DE", "FR", "US"]}}}


def _create(client: TestClient, who: str, org: Org, **body: Any) -> dict[str, Any]:
    body = {"name": "S", "criteria": EVERY_COUNTRY, **body}
    response = client.post(f"{API}/segments", json=body, headers=org.headers[who])
    assert response.status_code == 201, response.text
    return dict(response.json())


def _drain(session_factory: sessionmaker[Session]) -> None:
    jobs.process_changes(session_factory)


def _set_feature(client: TestClient, org: Org, name: str, enabled: bool) -> None:
    response = client.put(
        f"{API}/admin/features/{name}", json={"enabled": enabled}, headers=org.headers["admin"]
    )
    assert response.status_code == 200, response.text


def test_segments_and_lists_are_listed_counted_and_opened_only_where_readable(
    client: TestClient, org: Org
) -> None:
    mine = _create(client, "marketer", org)
    theirs = _create(client, "orgadmin", org)
    their_segment = theirs["id"]
    for kind in ("segments", "lists"):
        if kind == "lists":
            mine = client.post(
                f"{API}/lists", json={"name": "M"}, headers=org.headers["marketer"]
            ).json()
            theirs = client.post(
                f"{API}/lists", json={"name": "T"}, headers=org.headers["orgadmin"]
            ).json()
        assert visible_ids(client, kind, org.headers["marketer"]) == {mine["id"]}
        assert visible_ids(client, kind, org.headers["manager"]) == {mine["id"]}
        assert visible_ids(client, kind, org.headers["orgadmin"]) == {mine["id"], theirs["id"]}
        assert count(client, kind, org.headers["eu_marketer"]) == 0
        hidden = f"{API}/{kind}/{theirs['id']}"
        for method, extra in (("GET", {}), ("PATCH", {"json": {"name": "x"}}), ("DELETE", {})):
            response = client.request(method, hidden, headers=org.headers["marketer"], **extra)
            assert_error(response, 404, "id")
        members = client.get(f"{hidden}/members", headers=org.headers["marketer"])
        assert_error(members, 404, "id")
    segment_only = f"{API}/segments/{their_segment}"
    for path in ("/members.csv", "/refresh", "/explain?contact_id=1"):
        method = "POST" if path == "/refresh" else "GET"
        response = client.request(method, segment_only + path, headers=org.headers["marketer"])
        assert response.status_code == 404, (path, response.text)


def test_members_and_their_count_are_only_what_the_viewer_may_read(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    segment = _create(client, "orgadmin", org)
    f.share_with_organization(db, "segment", segment["id"])
    _drain(session_factory)
    for viewer, keys in VISIBLE.items():
        if viewer == "nobody":
            continue  # no read privilege on segments at all: 404 below
        response = client.get(
            f"{API}/segments/{segment['id']}/members",
            params={"limit": 50},
            headers=org.headers[viewer],
        )
        assert response.status_code == 200, (viewer, response.text)
        body = response.json()
        expected = org.ids("contacts", keys)
        assert {c["id"] for c in body["items"]} == expected, viewer
        assert body["visible"] == len(expected), viewer
        assert body["total"] is None  # the totals setting is off by default
        assert body["source"] == "materialised"
        detail = client.get(f"{API}/segments/{segment['id']}", headers=org.headers[viewer])
        assert detail.json()["visible_members"] == len(expected)
        assert detail.json()["total_members"] is None
        exported = client.get(
            f"{API}/segments/{segment['id']}/members.csv", headers=org.headers[viewer]
        )
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {int(r["id"]) for r in rows} == expected, viewer
    response = client.get(f"{API}/segments/{segment['id']}/members", headers=org.headers["nobody"])
    assert_error(response, 404)


def test_total_beside_visible_when_the_admin_allows_it(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    segment = _create(client, "orgadmin", org)
    f.share_with_organization(db, "segment", segment["id"])
    _drain(session_factory)
    _set_feature(client, org, "segment_totals", True)
    body = client.get(
        f"{API}/segments/{segment['id']}/members", headers=org.headers["eu_marketer"]
    ).json()
    assert (body["visible"], body["total"]) == (1, len(org.contacts))


def test_preview_counts_what_the_caller_may_read_and_saves_nothing(
    client: TestClient, db: Session, org: Org
) -> None:
    response = client.post(
        f"{API}/segments/preview",
        json={"criteria": {"contact": {"country": "DE"}}, "limit": 1},
        headers=org.headers["manager"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["visible"] == 2  # manager and marketer (Sales); eu is FR
    assert len(body["items"]) == 1
    assert body["applied_scope"] == "organization"  # scoping is off
    assert count(client, "segments", org.headers["manager"]) == 0
    counts_only = client.post(
        f"{API}/segments/preview",
        json={"criteria": {"contact": {"country": "DE"}}, "limit": 0},
        headers=org.headers["manager"],
    )
    assert counts_only.status_code == 200, counts_only.text
    assert (counts_only.json()["visible"], counts_only.json()["items"]) == (2, [])


def test_bad_criteria_answer_422_naming_the_path_and_change_nothing(
    client: TestClient, db: Session, org: Org
) -> None:
    bad = {
        "any": [
            {"contact": {"country": "JP"}},
            {"participation": "attended", "event": {"start": {"after": "31-02-2026"}}},
        ]
    }
    for path in ("/segments", "/segments/preview"):
        body: dict[str, Any] = {"criteria": bad}
        if path == "/segments":
            body["name"] = "Broken"
        response = client.post(f"{API}{path}", json=body, headers=org.headers["marketer"])
        error = assert_error(response, 422, "criteria.any[1].event.start")
        assert "not a date" in error["message"]
    assert count(client, "segments", org.headers["marketer"]) == 0
    response = client.post(
        f"{API}/segments",
        json={"name": "S", "criteria": {"list": 999}},
        headers=org.headers["marketer"],
    )
    assert_error(response, 422, "criteria.list")


def test_scope_rules_over_http(client: TestClient, org: Org) -> None:
    _set_feature(client, org, "bu_scoping", True)
    refused = client.post(
        f"{API}/segments",
        json={"name": "S", "criteria": EVERY_COUNTRY, "scope": "organization"},
        headers=org.headers["marketer"],
    )
    assert "organization-level" in assert_error(refused, 403, "scope")["message"]
    mine = _create(client, "marketer", org)
    assert (mine["scope"], mine["applied_scope"]) == ("business_unit", "business_unit")
    assert mine["scope_business_unit_id"] == org.sales.id
    patch = client.patch(
        f"{API}/segments/{mine['id']}",
        json={"scope": "organization"},
        headers=org.headers["marketer"],
    )
    assert_error(patch, 403, "scope")
    allowed = _create(client, "orgadmin", org, scope="organization")
    assert allowed["applied_scope"] == "organization"


def test_static_segments_refused_while_scoping_is_on(client: TestClient, org: Org) -> None:
    _set_feature(client, org, "bu_scoping", True)
    response = client.post(
        f"{API}/segments", json={"name": "S", "kind": "static"}, headers=org.headers["marketer"]
    )
    assert "marketing list" in assert_error(response, 422, "kind")["message"]


def test_list_membership_checks_each_contact_and_csv_import_reports(
    client: TestClient, org: Org
) -> None:
    lst = client.post(f"{API}/lists", json={"name": "L"}, headers=org.headers["marketer"]).json()
    hidden = org.contacts["support"]
    response = client.post(
        f"{API}/lists/{lst['id']}/members",
        json={"contact_ids": [org.contacts["marketer"], hidden]},
        headers=org.headers["marketer"],
    )
    assert f"contact {hidden} not found" in assert_error(response, 422, "contact_ids")["message"]
    assert (
        client.get(f"{API}/lists/{lst['id']}/members", headers=org.headers["marketer"]).json()[
            "visible"
        ]
        == 0
    )  # nothing was added
    text = "Name,Email\nM,marketer@example.com\nS,support@example.com\nX,not-an-email\n"
    report = client.post(
        f"{API}/lists/{lst['id']}/import", json={"csv": text}, headers=org.headers["marketer"]
    ).json()
    assert report["added"] == 1
    assert report["rows"] == 3
    assert report["unknown_emails"] == ["support@example.com"]  # not readable = unknown
    assert [r["line"] for r in report["invalid_rows"]] == [4]
    again = client.post(
        f"{API}/lists/{lst['id']}/import", json={"csv": text}, headers=org.headers["marketer"]
    ).json()
    assert (again["added"], again["already"]) == (0, 1)


def test_a_list_in_use_cannot_be_deleted(client: TestClient, org: Org) -> None:
    lst = client.post(f"{API}/lists", json={"name": "L"}, headers=org.headers["marketer"]).json()
    _create(client, "marketer", org, criteria={"list": lst["id"]})
    response = client.delete(f"{API}/lists/{lst['id']}", headers=org.headers["marketer"])
    assert "used by 1 segment" in assert_error(response, 409)["message"]


def test_explain_over_http(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    segment = _create(client, "orgadmin", org, criteria={"contact": {"country": "DE"}})
    f.share_with_organization(db, "segment", segment["id"])
    url = f"{API}/segments/{segment['id']}/explain"
    mine = client.get(
        url, params={"contact_id": org.contacts["marketer"]}, headers=org.headers["marketer"]
    ).json()
    assert mine["member"] is True
    assert mine["criteria"][0]["matched"] is True
    assert mine["viewer"]["sees_it"] is True
    # A contact the caller may not read is not explained to them.
    hidden = client.get(
        url, params={"contact_id": org.contacts["support"]}, headers=org.headers["marketer"]
    )
    assert_error(hidden, 404, "id")
    # Explaining for another user is for administrators.
    other = client.get(
        url,
        params={"contact_id": org.contacts["marketer"], "viewer_id": org.users["manager"].id},
        headers=org.headers["marketer"],
    )
    assert_error(other, 403, "viewer_id")
    as_admin = client.get(
        url,
        params={"contact_id": org.contacts["marketer"], "viewer_id": org.users["eu_marketer"].id},
        headers=org.headers["admin"],
    ).json()
    assert as_admin["member"] is True
    assert as_admin["viewer"]["can_read"] is False  # eu_marketer reads Sales EU only
    assert as_admin["viewer"]["sees_it"] is False


def test_editing_a_contact_through_the_api_refreshes_dependent_segments(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    segment = _create(client, "marketer", org, criteria={"contact": {"country": "DE"}})
    _drain(session_factory)
    url = f"{API}/segments/{segment['id']}/members"
    before = client.get(url, headers=org.headers["marketer"]).json()
    assert {c["id"] for c in before["items"]} == org.ids("contacts", {"manager", "marketer"})
    response = client.patch(
        f"{API}/contacts/{org.contacts['marketer']}",
        json={"country": "FR"},
        headers=org.headers["marketer"],
    )
    assert response.status_code == 200, response.text
    db.expire_all()
    assert db.execute(select(DataChange.topic)).scalars().all() == ["contact"]
    _drain(session_factory)
    after = client.get(url, headers=org.headers["marketer"]).json()
    assert {c["id"] for c in after["items"]} == org.ids("contacts", {"manager"})
    assert db.execute(select(DataChange.id)).first() is None


@pytest.mark.parametrize("who", ["marketer", "orgadmin", "manager"])
def test_only_system_administrators_flip_switches_or_read_the_audit(
    client: TestClient, org: Org, who: str
) -> None:
    response = client.put(
        f"{API}/admin/features/bu_scoping", json={"enabled": True}, headers=org.headers[who]
    )
    assert_error(response, 403)
    assert_error(client.get(f"{API}/admin/audit", headers=org.headers[who]), 403)
    features = client.get(f"{API}/admin/features", headers=org.headers[who]).json()
    assert {f["name"]: f["enabled"] for f in features} == {
        "bu_scoping": False,
        "segment_totals": False,
    }


def test_switch_changes_are_audited(client: TestClient, org: Org) -> None:
    response = client.put(
        f"{API}/admin/features/warp", json={"enabled": True}, headers=org.headers["admin"]
    )
    assert_error(response, 422, "name")
    _set_feature(client, org, "bu_scoping", True)
    _set_feature(client, org, "bu_scoping", False)
    entries = client.get(
        f"{API}/admin/audit", params={"action": "feature."}, headers=org.headers["admin"]
    ).json()["items"]
    assert [(e["action"], e["target_id"], e["after"]["enabled"]) for e in entries] == [
        ("feature.set", "bu_scoping", False),
        ("feature.set", "bu_scoping", True),
    ]
    assert {e["actor_id"] for e in entries} == {org.users["admin"].id}


def test_refresh_answers_with_the_callers_counts_only(
    client: TestClient, db: Session, org: Org
) -> None:
    segment = _create(client, "orgadmin", org)
    f.share_with_organization(db, "segment", segment["id"])
    response = client.post(
        f"{API}/segments/{segment['id']}/refresh", headers=org.headers["eu_marketer"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["visible_members"] == 1  # of 7 members: nothing about the other six
    assert body["total_members"] is None
    assert not {"added", "removed"} & set(body)
    assert body["refreshed_at"] is not None
