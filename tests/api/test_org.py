"""Admin routes: business units, users, teams, roles, role assignments and team members."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import gatherly.models
from gatherly.access.levels import Level
from gatherly.org import service as org_service
from tests import factories as f
from tests.api.conftest import EVERYTHING, VISIBLE, Org
from tests.api.helpers import API, assert_error, count, visible_ids


def _snapshot(db: Session) -> dict[str, list[str]]:
    """Every row of every table except tokens (whose last use changes on each request)."""
    db.expire_all()
    return {
        t.name: sorted(repr(tuple(row)) for row in db.execute(select(t)).all())
        for t in gatherly.models.Base.metadata.sorted_tables
        if t.name != "api_token"
    }


def _admin_writes(org: Org, db: Session) -> list[tuple[str, str, dict[str, Any] | None]]:
    custom = f.role(db, "Custom", Level.USER)
    org_service.assign_role(db=db, role_id=custom, user_id=org.users["eu_marketer"].id)
    org_service.assign_role(db=db, role_id=custom, team_id=org.campaign.id)
    admin_role = org_service.get_role_by_name(db=db, name="System Administrator").id
    db.commit()
    me = org.users["marketer"].id
    team = org.campaign.id
    member = org.users["assistant"].id
    return [
        ("POST", "/business-units", {"name": "Rogue", "parent_id": org.root.id}),
        ("PATCH", f"/business-units/{org.sales_eu.id}", {"parent_id": org.support.id}),
        ("PATCH", f"/business-units/{org.sales.id}", {"name": "Mine"}),
        ("DELETE", f"/business-units/{org.sales_eu.id}", None),
        ("POST", "/users", {"username": "rogue"}),
        ("PATCH", f"/users/{org.users['admin'].id}", {"disabled": True}),
        ("PATCH", f"/users/{me}", {"business_unit_id": org.root.id}),
        ("POST", f"/users/{me}/roles", {"role_id": admin_role}),
        ("DELETE", f"/users/{org.users['eu_marketer'].id}/roles/{custom}", None),
        ("POST", "/teams", {"name": "Rogues", "business_unit_id": org.sales.id}),
        ("PATCH", f"/teams/{team}", {"name": "Renamed"}),
        ("DELETE", f"/teams/{team}", None),
        ("POST", f"/teams/{team}/members", {"user_id": me}),
        ("DELETE", f"/teams/{team}/members/{member}", None),
        ("POST", f"/teams/{team}/roles", {"role_id": admin_role}),
        ("DELETE", f"/teams/{team}/roles/{custom}", None),
        ("POST", "/roles", {"name": "Everything", "privileges": {}}),
        ("PATCH", f"/roles/{custom}", {"privileges": {"contact": {"read": "organization"}}}),
        ("DELETE", f"/roles/{custom}", None),
    ]


def test_non_admins_get_403_on_every_admin_change_and_nothing_changes(
    client: TestClient, db: Session, org: Org
) -> None:
    writes = _admin_writes(org, db)
    before = _snapshot(db)
    # Marketer, and Marketing Administrator: organization level on every marketing record.
    for name in ("marketer", "orgadmin"):
        for method, path, body in writes:
            response = client.request(method, f"{API}{path}", json=body, headers=org.headers[name])
            error = assert_error(response, 403)
            assert error["code"] == "forbidden", (name, method, path)
    assert _snapshot(db) == before


def test_the_system_administrator_may_make_every_admin_change(
    client: TestClient, db: Session, org: Org
) -> None:
    writes = _admin_writes(org, db)
    # The BU delete needs an empty BU; send it to a new one instead of Sales EU.
    empty = f.bu(db, "Empty")
    db.commit()
    writes[3] = ("DELETE", f"/business-units/{empty.id}", None)
    # Team delete needs a team without records: delete a fresh one.
    spare = f.team(db, "Spare", org.sales)
    db.commit()
    writes[11] = ("DELETE", f"/teams/{spare.id}", None)
    # Disabling themselves would lock the admin out of the rest: disable someone else.
    writes[5] = ("PATCH", f"/users/{org.users['nobody'].id}", {"disabled": True})
    for method, path, body in writes:
        response = client.request(method, f"{API}{path}", json=body, headers=org.headers["admin"])
        assert response.status_code in (200, 201, 204), (method, path, response.text)
    assert (
        client.get(f"{API}/business-units/{empty.id}", headers=org.headers["admin"]).status_code
        == 404
    )
    bus = client.get(f"{API}/business-units", headers=org.headers["admin"]).json()
    assert {b["name"] for b in bus} == {"Organization", "Mine", "Sales EU", "Support", "Rogue"}
    assert next(b for b in bus if b["name"] == "Sales EU")["parent_id"] == org.support.id
    roles = client.get(
        f"{API}/users/{org.users['marketer'].id}/roles", headers=org.headers["admin"]
    )
    assert {r["name"] for r in roles.json()} == {"Marketer", "System Administrator"}


def test_reads_need_a_role_and_a_user_without_roles_sees_nothing(
    client: TestClient, org: Org
) -> None:
    reads = [
        "/business-units",
        f"/business-units/{org.sales.id}",
        "/users",
        f"/users/{org.users['marketer'].id}",
        f"/users/{org.users['marketer'].id}/roles",
        "/teams",
        f"/teams/{org.campaign.id}",
        f"/teams/{org.campaign.id}/members",
        f"/teams/{org.campaign.id}/roles",
        "/roles",
        f"/roles/{marketer_role_id(client, org)}",
    ]
    for path in reads:
        assert client.get(f"{API}{path}", headers=org.headers["marketer"]).status_code == 200
        error = assert_error(client.get(f"{API}{path}", headers=org.headers["nobody"]), 403)
        assert error["code"] == "forbidden"
    # A user without roles still knows who they are, but reads no records.
    assert client.get(f"{API}/me", headers=org.headers["nobody"]).status_code == 200
    for kind in ("contacts", "leads"):
        assert visible_ids(client, kind, org.headers["nobody"]) == set()
        assert count(client, kind, org.headers["nobody"], q="example") == 0


def marketer_role_id(client: TestClient, org: Org) -> int:
    roles = client.get(f"{API}/roles", headers=org.headers["admin"]).json()
    return int(next(r["id"] for r in roles if r["name"] == "Marketer"))


# ------------------------------------------------------------------ business units


def test_business_unit_lifecycle_and_input_errors(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    url = f"{API}/business-units"
    created = client.post(url, json={"name": " Nordics ", "parent_id": org.sales.id}, headers=admin)
    assert created.status_code == 201, created.text
    bu = created.json()
    assert (bu["name"], bu["parent_id"]) == ("Nordics", org.sales.id)
    assert client.get(f"{url}/{bu['id']}", headers=admin).json() == bu
    teams = client.get(f"{API}/teams", headers=admin).json()
    default = next(t for t in teams if t["business_unit_id"] == bu["id"])
    assert (default["name"], default["is_default"]) == ("Nordics", True)

    renamed = client.patch(f"{url}/{bu['id']}", json={"name": "Nordic"}, headers=admin)
    assert renamed.json()["name"] == "Nordic"
    team = client.get(f"{API}/teams/{default['id']}", headers=admin).json()
    assert team["name"] == "Nordic"

    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "X"}, 422, "parent_id"),
        ({"parent_id": org.root.id}, 422, "name"),
        ({"name": "   ", "parent_id": org.root.id}, 422, "name"),
        ({"name": "x" * 161, "parent_id": org.root.id}, 422, "name"),
        ({"name": "X", "parent_id": 999999}, 404, "parent_id"),
        ({"name": "X", "parent_id": "root"}, 422, "parent_id"),
        ({"name": "sales", "parent_id": org.root.id}, 409, "name"),
        ({"name": "Campaign", "parent_id": org.root.id}, 409, "name"),  # a team's name
        ({"name": "X", "parent_id": org.root.id, "color": "red"}, 422, "color"),
    ]
    for body, status, field in bad:
        assert_error(client.post(url, json=body, headers=admin), status, field)
    assert_error(
        client.patch(f"{url}/{bu['id']}", json={"name": "Support"}, headers=admin), 409, "name"
    )
    # An unknown id is 404 naming the path parameter, on every verb.
    assert_error(client.get(f"{url}/999999", headers=admin), 404, "bu_id")
    assert_error(client.patch(f"{url}/999999", json={"name": "Y"}, headers=admin), 404, "bu_id")
    assert_error(client.delete(f"{url}/999999", headers=admin), 404, "bu_id")
    assert len(client.get(url, headers=admin).json()) == 5

    assert client.delete(f"{url}/{bu['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"{url}/{bu['id']}", headers=admin), 404)
    assert all(
        t["business_unit_id"] != bu["id"] for t in client.get(f"{API}/teams", headers=admin).json()
    )


def test_business_unit_delete_is_refused_while_in_use(
    client: TestClient, db: Session, org: Org
) -> None:
    admin = org.headers["admin"]
    url = f"{API}/business-units"

    def delete(bu_id: int) -> Any:
        return client.delete(f"{url}/{bu_id}", headers=admin)

    assert "root" in assert_error(delete(org.root.id), 409)["message"]
    assert "child business units" in assert_error(delete(org.sales.id), 409)["message"]
    assert "users" in assert_error(delete(org.sales_eu.id), 409)["message"]
    # An empty BU with only a record in it (owned by a user elsewhere) is in use.
    holder = f.bu(db, "Holder")
    f.contact(db, org.users["admin"], bu_id=holder.id)
    with_team = f.bu(db, "With team")
    f.team(db, "Lonely team", with_team)
    parent = f.bu(db, "Parent")
    f.bu(db, "Child", parent)
    db.commit()
    assert "contact records" in assert_error(delete(holder.id), 409)["message"]
    assert "teams" in assert_error(delete(with_team.id), 409)["message"]
    assert "child business units" in assert_error(delete(parent.id), 409)["message"]
    assert len(client.get(url, headers=admin).json()) == 8
    # Emptied, it goes.
    child = next(b for b in client.get(url, headers=admin).json() if b["name"] == "Child")
    assert delete(child["id"]).status_code == 204
    assert delete(parent.id).status_code == 204
    assert len(client.get(url, headers=admin).json()) == 6


def test_reparenting_a_bu_changes_what_a_parent_child_manager_sees(
    client: TestClient, db: Session, org: Org
) -> None:
    admin, manager = org.headers["admin"], org.headers["manager"]
    deep = f.bu(db, "Support Tier 2", org.support)
    deep_contact = f.contact(db, org.users["admin"], bu_id=deep.id).id
    db.commit()
    sales_view = org.ids("contacts", VISIBLE["manager"])
    support_view = org.ids("contacts", {"support", "team"}) | {deep_contact}
    assert visible_ids(client, "contacts", manager) == sales_view

    url = f"{API}/business-units/{org.support.id}"
    moved = client.patch(url, json={"parent_id": org.sales.id}, headers=admin)
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == org.sales.id
    # The whole Support subtree, grandchild included, is now under Sales.
    assert visible_ids(client, "contacts", manager) == sales_view | support_view
    assert client.get(f"{API}/contacts/{deep_contact}", headers=manager).status_code == 200
    # Business-unit level does not reach child BUs: the Sales marketer is unaffected.
    assert visible_ids(client, "contacts", org.headers["marketer"]) == org.ids(
        "contacts", VISIBLE["marketer"]
    )

    back = client.patch(url, json={"parent_id": org.root.id}, headers=admin)
    assert back.status_code == 200
    assert visible_ids(client, "contacts", manager) == sales_view
    assert_error(client.get(f"{API}/contacts/{deep_contact}", headers=manager), 404)


def test_reparenting_refuses_cycles_and_the_root(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    url = f"{API}/business-units"
    cases = [
        (org.sales.id, org.sales_eu.id, 422),  # under its own child
        (org.sales.id, org.sales.id, 422),  # under itself
        (org.root.id, org.support.id, 422),  # the root never moves
        (org.sales.id, 999999, 404),
    ]
    for bu_id, parent_id, status in cases:
        response = client.patch(f"{url}/{bu_id}", json={"parent_id": parent_id}, headers=admin)
        assert_error(response, status, "parent_id")
    tree = {b["id"]: b["parent_id"] for b in client.get(url, headers=admin).json()}
    assert tree == {
        org.root.id: None,
        org.sales.id: org.root.id,
        org.sales_eu.id: org.sales.id,
        org.support.id: org.root.id,
    }
    expected = org.ids("contacts", VISIBLE["manager"])
    assert visible_ids(client, "contacts", org.headers["manager"]) == expected


# ------------------------------------------------------------------ users


def test_moving_a_user_changes_what_they_see(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    marketer = org.users["marketer"]
    own = org.contacts["marketer"]
    moved = client.patch(
        f"{API}/users/{marketer.id}", json={"business_unit_id": org.support.id}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["business_unit_id"] == org.support.id
    # Their role now anchors at Support, and their own contact moved with them.
    assert (
        client.get(f"{API}/contacts/{own}", headers=admin).json()["owning_bu_id"] == org.support.id
    )
    assert visible_ids(client, "contacts", org.headers["marketer"]) == org.ids(
        "contacts", {"support", "team", "marketer"}
    )
    assert_error(
        client.get(f"{API}/contacts/{org.contacts['manager']}", headers=org.headers["marketer"]),
        404,
    )
    # The Sales manager no longer reaches the moved contact.
    assert own not in visible_ids(client, "contacts", org.headers["manager"])
    # Membership of default teams follows the move.
    sales_team = next(
        t for t in client.get(f"{API}/teams", headers=admin).json() if t["name"] == "Sales"
    )
    members = client.get(f"{API}/teams/{sales_team['id']}/members", headers=admin).json()
    assert marketer.id not in {m["id"] for m in members}


def test_moving_a_user_without_their_records_keeps_owner_access(
    client: TestClient, org: Org
) -> None:
    admin = org.headers["admin"]
    user = org.users["eu_marketer"]
    own = org.contacts["eu"]
    moved = client.patch(
        f"{API}/users/{user.id}",
        json={"business_unit_id": org.support.id, "move_records": False},
        headers=admin,
    )
    assert moved.status_code == 200
    assert (
        client.get(f"{API}/contacts/{own}", headers=admin).json()["owning_bu_id"] == org.sales_eu.id
    )
    assert visible_ids(client, "contacts", org.headers["eu_marketer"]) == org.ids(
        "contacts", {"eu", "support", "team"}
    )
    assert own in visible_ids(client, "contacts", org.headers["manager"])


def test_user_admin_and_input_errors(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    url = f"{API}/users"
    created = client.post(
        url,
        json={"username": "new.user", "email": " New.User@Example.COM ", "full_name": "New"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "new.user@example.com"
    assert user["business_unit_id"] == org.root.id
    assert user["disabled"] is False
    assert client.get(f"{url}/{user['id']}", headers=admin).json() == user
    in_support = client.get(url, params={"business_unit_id": org.support.id}, headers=admin).json()
    assert {u["username"] for u in in_support} == {"orgadmin", "support_assistant"}
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({}, 422, "username"),
        ({"username": "has space"}, 422, "username"),
        ({"username": ""}, 422, "username"),
        ({"username": "ok", "email": "nope"}, 422, "email"),
        ({"username": "ok", "password": "short"}, 422, "password"),
        ({"username": "ok", "business_unit_id": 999999}, 404, "business_unit_id"),
        ({"username": "MARKETER"}, 409, "username"),
        ({"username": "ok", "role": "admin"}, 422, "role"),
    ]
    for body, status, field in bad:
        assert_error(client.post(url, json=body, headers=admin), status, field)
    uid = user["id"]
    assert_error(client.patch(f"{url}/{uid}", json={"email": "x@"}, headers=admin), 422, "email")
    assert_error(
        client.patch(f"{url}/{uid}", json={"disabled": "maybe"}, headers=admin), 422, "disabled"
    )
    assert_error(
        client.patch(f"{url}/{uid}", json={"username": "renamed"}, headers=admin), 422, "username"
    )
    assert_error(
        client.patch(f"{url}/{uid}", json={"business_unit_id": 999999}, headers=admin),
        404,
        "business_unit_id",
    )
    assert_error(client.get(f"{url}/999999", headers=admin), 404, "user_id")
    assert client.get(f"{url}/{uid}", headers=admin).json() == user
    assert len(client.get(url, headers=admin).json()) == len(org.users) + 1


# ------------------------------------------------------------------ teams


def test_team_membership_and_team_roles_grant_access(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    created = client.post(
        f"{API}/teams",
        json={"name": "Support helpers", "business_unit_id": org.support.id},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["is_default"] is False
    marketer_role = marketer_role_id(client, org)
    assert (
        client.post(
            f"{API}/teams/{team['id']}/roles", json={"role_id": marketer_role}, headers=admin
        ).status_code
        == 204
    )
    assert [
        r["name"] for r in client.get(f"{API}/teams/{team['id']}/roles", headers=admin).json()
    ] == ["Marketer"]
    helper = org.headers["eu_marketer"]
    assert visible_ids(client, "contacts", helper) == org.ids("contacts", {"eu"})

    added = client.post(
        f"{API}/teams/{team['id']}/members",
        json={"user_id": org.users["eu_marketer"].id},
        headers=admin,
    )
    assert added.status_code == 204
    members = client.get(f"{API}/teams/{team['id']}/members", headers=admin).json()
    assert [m["username"] for m in members] == ["eu_marketer"]
    # The team's Marketer role anchors at the team's BU (Support), not the member's.
    assert visible_ids(client, "contacts", helper) == org.ids("contacts", {"eu", "support", "team"})

    removed = client.delete(
        f"{API}/teams/{team['id']}/members/{org.users['eu_marketer'].id}", headers=admin
    )
    assert removed.status_code == 204
    assert visible_ids(client, "contacts", helper) == org.ids("contacts", {"eu"})
    again = client.delete(
        f"{API}/teams/{team['id']}/members/{org.users['eu_marketer'].id}", headers=admin
    )
    assert_error(again, 404, "user_id")

    # A role given to a BU's default team reaches every user of that BU.
    support_team = next(
        t for t in client.get(f"{API}/teams", headers=admin).json() if t["name"] == "Support"
    )
    client.post(
        f"{API}/teams/{support_team['id']}/roles", json={"role_id": marketer_role}, headers=admin
    )
    assert visible_ids(client, "contacts", org.headers["support_assistant"]) == org.ids(
        "contacts", {"support", "team"}
    )
    unassigned = client.delete(
        f"{API}/teams/{support_team['id']}/roles/{marketer_role}", headers=admin
    )
    assert unassigned.status_code == 204
    assert visible_ids(client, "contacts", org.headers["support_assistant"]) == org.ids(
        "contacts", {"support"}
    )


def test_team_rules_and_input_errors(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    teams = client.get(f"{API}/teams", headers=admin).json()
    default = next(t for t in teams if t["name"] == "Sales")
    assert default["is_default"] is True
    uid = org.users["eu_marketer"].id
    refusals = [
        client.post(f"{API}/teams/{default['id']}/members", json={"user_id": uid}, headers=admin),
        client.delete(
            f"{API}/teams/{default['id']}/members/{org.users['marketer'].id}", headers=admin
        ),
        client.delete(f"{API}/teams/{default['id']}", headers=admin),
        client.patch(
            f"{API}/teams/{default['id']}", json={"business_unit_id": org.support.id}, headers=admin
        ),
    ]
    for response in refusals:
        assert_error(response, 409, "team_id")
    assert_error(
        client.patch(f"{API}/teams/{default['id']}", json={"name": "S"}, headers=admin), 409, "name"
    )
    # A team that owns records cannot be deleted.
    assert (
        "owns records"
        in assert_error(client.delete(f"{API}/teams/{org.campaign.id}", headers=admin), 409)[
            "message"
        ]
    )
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "campaign", "business_unit_id": org.sales.id}, 409, "name"),
        ({"name": "T"}, 422, "business_unit_id"),
        ({"name": "", "business_unit_id": org.sales.id}, 422, "name"),
        ({"name": "T", "business_unit_id": 999999}, 404, "business_unit_id"),
        ({"name": "T", "business_unit_id": org.sales.id, "members": []}, 422, "members"),
    ]
    for body, status, field in bad:
        assert_error(client.post(f"{API}/teams", json=body, headers=admin), status, field)
    members_url = f"{API}/teams/{org.campaign.id}/members"
    assert_error(client.post(members_url, json={"user_id": 999999}, headers=admin), 404, "user_id")
    assert_error(client.post(members_url, json={}, headers=admin), 422, "user_id")
    assert_error(client.get(f"{API}/teams/999999", headers=admin), 404, "team_id")
    roles_url = f"{API}/teams/{org.campaign.id}/roles"
    assert_error(client.post(roles_url, json={"role_id": 999999}, headers=admin), 404, "role_id")
    assert_error(
        client.delete(f"{roles_url}/{marketer_role_id(client, org)}", headers=admin),
        404,
        "role_id",
    )
    # Moving a team takes its records to the new BU.
    moved = client.patch(
        f"{API}/teams/{org.campaign.id}", json={"business_unit_id": org.sales.id}, headers=admin
    )
    assert moved.status_code == 200
    team_contact = client.get(f"{API}/contacts/{org.contacts['team']}", headers=admin).json()
    assert team_contact["owning_bu_id"] == org.sales.id
    assert org.contacts["team"] in visible_ids(client, "contacts", org.headers["marketer"])


# ------------------------------------------------------------------ roles


def test_custom_roles_grant_what_they_say(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    nobody = org.users["nobody"]
    created = client.post(
        f"{API}/roles",
        json={
            "name": "Sales reader",
            "description": "reads Sales contacts",
            "privileges": {"contact": {"read": "business_unit"}, "business_unit": {"read": 4}},
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    role = created.json()
    assert role["privileges"] == {
        "contact": {"read": "business_unit"},
        "business_unit": {"read": "organization"},
    }
    assert role["is_builtin"] is False
    assert client.get(f"{API}/roles/{role['id']}", headers=admin).json() == role

    assign = client.post(
        f"{API}/users/{nobody.id}/roles", json={"role_id": role["id"]}, headers=admin
    )
    assert assign.status_code == 204
    again = client.post(
        f"{API}/users/{nobody.id}/roles", json={"role_id": role["id"]}, headers=admin
    )
    assert again.status_code == 204  # idempotent
    listed = client.get(f"{API}/users/{nobody.id}/roles", headers=admin).json()
    assert [r["name"] for r in listed] == ["Sales reader"]
    headers = org.headers["nobody"]
    assert visible_ids(client, "contacts", headers) == org.ids("contacts", VISIBLE["marketer"])
    assert visible_ids(client, "leads", headers) == set()
    assert client.get(f"{API}/business-units", headers=headers).status_code == 200
    assert_error(client.get(f"{API}/users", headers=headers), 403)
    assert_error(
        client.patch(f"{API}/contacts/{org.contacts['marketer']}", json={}, headers=headers), 403
    )

    widened = client.patch(
        f"{API}/roles/{role['id']}",
        json={"privileges": {"contact": {"read": "parent_child", "write": "user"}}},
        headers=admin,
    )
    assert widened.status_code == 200
    assert widened.json()["privileges"] == {"contact": {"read": "parent_child", "write": "user"}}
    assert visible_ids(client, "contacts", headers) == org.ids("contacts", VISIBLE["manager"])
    assert_error(client.get(f"{API}/business-units", headers=headers), 403)

    removed = client.delete(f"{API}/users/{nobody.id}/roles/{role['id']}", headers=admin)
    assert removed.status_code == 204
    assert count(client, "contacts", headers) == 0
    assert_error(
        client.delete(f"{API}/users/{nobody.id}/roles/{role['id']}", headers=admin), 404, "role_id"
    )

    # Deleting a role takes its grants away from everyone who held it.
    client.post(f"{API}/users/{nobody.id}/roles", json={"role_id": role["id"]}, headers=admin)
    assert count(client, "contacts", headers) == 4
    assert client.delete(f"{API}/roles/{role['id']}", headers=admin).status_code == 204
    assert count(client, "contacts", headers) == 0
    assert_error(client.get(f"{API}/roles/{role['id']}", headers=admin), 404, "role_id")


def test_role_input_errors_and_built_in_roles_are_kept(client: TestClient, org: Org) -> None:
    admin = org.headers["admin"]
    url = f"{API}/roles"
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"privileges": {}}, 422, "name"),
        ({"name": "R", "privileges": {"spaceship": {"read": "user"}}}, 422, "privileges.spaceship"),
        ({"name": "R", "privileges": {"contact": {"fly": "user"}}}, 422, "privileges.contact.fly"),
        (
            {"name": "R", "privileges": {"contact": {"read": "galaxy"}}},
            422,
            "privileges.contact.read",
        ),
        ({"name": "R", "privileges": {"contact": {"read": 9}}}, 422, "privileges.contact.read"),
        (
            {"name": "R", "privileges": {"user": {"write": "business_unit"}}},
            422,
            "privileges.user.write",
        ),
        ({"name": "R", "privileges": {"contact": "all"}}, 422, "privileges.contact"),
        ({"name": "marketer"}, 409, "name"),
        ({"name": "R", "is_system_admin": True}, 422, "is_system_admin"),
    ]
    for body, status, field in bad:
        assert_error(client.post(url, json=body, headers=admin), status, field)
    roles = client.get(url, headers=admin).json()
    assert {r["name"] for r in roles} == {
        "System Administrator",
        "Marketing Administrator",
        "Marketing Manager",
        "Marketer",
        "Marketing Assistant",
    }
    marketer = next(r for r in roles if r["name"] == "Marketer")
    assert marketer["is_builtin"] is True
    assert marketer["privileges"]["contact"]["read"] == "business_unit"
    for response in (
        client.patch(f"{url}/{marketer['id']}", json={"description": "changed"}, headers=admin),
        client.patch(
            f"{url}/{marketer['id']}",
            json={"privileges": {"contact": {"read": "organization"}}},
            headers=admin,
        ),
        client.delete(f"{url}/{marketer['id']}", headers=admin),
    ):
        assert_error(response, 409)
    assert client.get(f"{url}/{marketer['id']}", headers=admin).json() == marketer
    assert visible_ids(client, "contacts", org.headers["marketer"]) == org.ids(
        "contacts", VISIBLE["marketer"]
    )
    assert count(client, "contacts", org.headers["admin"]) == len(EVERYTHING)


def test_patch_user_changes_only_the_fields_sent_and_null_clears_the_email(
    client: TestClient, org: Org
) -> None:
    admin = org.headers["admin"]
    uid = org.users["marketer"].id
    url = f"{API}/users/{uid}"
    set_email = client.patch(url, json={"email": "M@Example.com"}, headers=admin)
    assert set_email.json()["email"] == "m@example.com"
    renamed = client.patch(url, json={"full_name": "Mara Marketer"}, headers=admin).json()
    assert renamed["email"] == "m@example.com"
    assert renamed["full_name"] == "Mara Marketer"
    cleared = client.patch(url, json={"email": None}, headers=admin).json()
    assert cleared["email"] is None
    assert cleared["full_name"] == "Mara Marketer"


def test_patch_user_refuses_null_for_fields_that_cannot_be_empty(
    client: TestClient, org: Org
) -> None:
    url = f"{API}/users/{org.users['marketer'].id}"
    for field in ("full_name", "disabled"):
        assert_error(
            client.patch(url, json={field: None}, headers=org.headers["admin"]), 422, field
        )


def test_you_set_your_own_time_zone_for_the_pages(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    url = f"{API}/me/time-zone"
    done = client.put(url, json={"time_zone": "America/New_York"}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["time_zone"] == "America/New_York"
    for bad in ("Mars/Olympus", "Europe/Berlin; x", "europe/berlin", "x" * 65):
        assert_error(client.put(url, json={"time_zone": bad}, headers=headers), 422, "time_zone")
    me = client.get(f"{API}/me", headers=headers).json()["user"]
    assert me["time_zone"] == "America/New_York"  # the refused ones changed nothing
    cleared = client.put(url, json={"time_zone": None}, headers=headers)
    assert cleared.json()["time_zone"] is None  # back to the browser's
