"""``GET /admin/audit`` (issue 12): system administrators read the trail that the API's own
changes write, filtered and paged; everyone else gets 403."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.core.audit import AuditEntry
from gatherly.core.db import utcnow
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

AUDIT = f"{API}/admin/audit"


def _trail(client: TestClient, org: Org, **params: Any) -> list[dict[str, Any]]:
    response = client.get(AUDIT, params=params, headers=org.headers["admin"])
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _iso_with_zone(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    assert value.utcoffset() is not None, text
    return value


def test_only_system_administrators_read_the_trail(client: TestClient, org: Org) -> None:
    for who in ("orgadmin", "manager", "marketer", "nobody"):
        assert_error(client.get(AUDIT, headers=org.headers[who]), 403)
        assert_error(client.get(AUDIT, params={"action": "role"}, headers=org.headers[who]), 403)
    assert_error(client.get(AUDIT), 401)


def test_changes_made_through_the_api_are_audited_with_who_what_before_and_after(
    client: TestClient, org: Org
) -> None:
    admin = org.headers["admin"]
    marketer = org.users["marketer"]
    role = client.post(
        f"{API}/roles",
        json={"name": "Readers", "privileges": {"contact": {"read": "user"}}},
        headers=admin,
    ).json()
    for request in (
        client.patch(
            f"{API}/roles/{role['id']}",
            json={"privileges": {"contact": {"read": "organization"}}},
            headers=admin,
        ),
        client.post(
            f"{API}/users/{marketer.id}/roles", json={"role_id": role["id"]}, headers=admin
        ),
        client.patch(f"{API}/users/{marketer.id}", json={"disabled": True}, headers=admin),
        client.patch(
            f"{API}/users/{marketer.id}", json={"business_unit_id": org.support.id}, headers=admin
        ),
        client.post(
            f"{API}/teams/{org.campaign.id}/members", json={"user_id": marketer.id}, headers=admin
        ),
    ):
        assert request.status_code < 300, request.text

    about = _trail(client, org, target_type="user", target_id=str(marketer.id), actor="admin")
    setup = _trail(client, org, target_type="user", target_id=str(marketer.id))[-2:]
    assert [(e["action"], e["actor_id"]) for e in setup] == [
        ("role.assign", None),  # the fixture's, by the system
        ("user.create", None),
    ]
    assert [(e["action"], e["before"], e["after"]) for e in about] == [
        (
            "user.move",
            {"business_unit_id": org.sales.id, "business_unit": "Sales"},
            {"business_unit_id": org.support.id, "business_unit": "Support"},
        ),
        ("user.disable", {"disabled": False}, {"disabled": True}),
        ("role.assign", None, {"role_id": role["id"], "role": "Readers"}),
    ]
    for entry in about:
        assert (entry["actor_id"], entry["actor_name"]) == (org.users["admin"].id, "admin")
        assert entry["target_label"] == "marketer"
        assert utcnow() - _iso_with_zone(entry["at"]) < timedelta(minutes=1)
    assert about[0]["details"] == {"move_records": True}

    edited = _trail(client, org, action="role.update")
    assert [(e["target_label"], e["before"], e["after"]) for e in edited] == [
        (
            "Readers",
            {"privileges": {"contact": {"read": "user"}}},
            {"privileges": {"contact": {"read": "organization"}}},
        )
    ]
    joined = _trail(
        client, org, action="team.member_add", target_id=str(org.campaign.id), actor="admin"
    )
    assert [(e["target_label"], e["after"]) for e in joined] == [
        ("Campaign", {"user_id": marketer.id, "username": "marketer"})
    ]


def test_a_refused_change_leaves_no_entry(client: TestClient, db: Session, org: Org) -> None:
    def count() -> int:
        db.expire_all()
        return int(db.execute(select(func.count()).select_from(AuditEntry)).scalar_one())

    before = count()
    admin = org.headers["admin"]
    refused = client.delete(f"{API}/business-units/{org.sales.id}", headers=admin)
    assert_error(refused, 409)
    assert_error(client.patch(f"{API}/roles/999999", json={"name": "x"}, headers=admin), 404)
    forbidden = client.post(
        f"{API}/users/{org.users['marketer'].id}/roles",
        json={"role_id": 1},
        headers=org.headers["manager"],
    )
    assert_error(forbidden, 403)
    assert count() == before


def test_filters_paging_and_times_with_their_zone(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    for name in ("Alpha", "Beta", "Gamma"):
        made = client.post(
            f"{API}/business-units", json={"name": name, "parent_id": org.root.id}, headers=admin
        )
        assert made.status_code == 201, made.text
    everything = _trail(client, org, action="business_unit.create", actor="ADMIN")
    assert [e["target_label"] for e in everything] == ["Gamma", "Beta", "Alpha"]
    by_id = _trail(client, org, action="business_unit", actor_id=org.users["admin"].id)
    assert [e["target_label"] for e in by_id] == ["Gamma", "Beta", "Alpha"]

    first = client.get(
        AUDIT, params={"action": "business_unit.create", "limit": 2}, headers=admin
    ).json()
    rest = client.get(
        AUDIT,
        params={"action": "business_unit.create", "limit": 2, "cursor": first["next_cursor"]},
        headers=admin,
    ).json()
    labels = [e["target_label"] for e in first["items"] + rest["items"]]
    # The setup's own BUs (Sales, Sales EU, Support, the root) come after, by the system.
    assert labels[:3] == ["Gamma", "Beta", "Alpha"]
    assert len(labels) == 4
    assert rest["next_cursor"] is not None

    now = utcnow()
    within = _trail(
        client,
        org,
        action="business_unit.create",
        actor="admin",
        since=(now - timedelta(minutes=5)).isoformat(),
        until=(now + timedelta(minutes=5)).isoformat(),
    )
    assert len(within) == 3
    later = _trail(
        client, org, action="business_unit", since=(now + timedelta(hours=1)).isoformat()
    )
    assert later == []
    assert _trail(client, org, action="role.assign", actor="nobody-at-all") == []


BAD_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"since": "2026-12-05T10:00:00"}, "since"),
    ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
    ({"until": "0001-01-01T00:00:00+14:00"}, "until"),
    ({"since": "2026-12-05T10:00:00Z", "until": "2026-12-04T10:00:00Z"}, "until"),
    ({"since": "yesterday"}, "since"),
    ({"cursor": "forged"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"actor_id": 2**40}, "actor_id"),
    ({"action": "x" * 61}, "action"),
]


def test_bad_filters_are_422_naming_the_field(client: TestClient, org: Org) -> None:
    for params, field in BAD_FILTERS:
        response = client.get(AUDIT, params=params, headers=org.headers["admin"])
        assert response.status_code == 422, params
        assert_error(response, 422, field)
