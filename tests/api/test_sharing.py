"""Assigning records to new owners and sharing them, through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.org import service as org_service
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error, count, visible_ids

URL = f"{API}/contacts"


def _share(
    client: TestClient,
    headers: dict[str, str],
    rid: int,
    principal_type: str,
    principal_id: int | None,
    *rights: str,
) -> dict[str, object]:
    body = {"principal_type": principal_type, "principal_id": principal_id, "rights": list(rights)}
    response = client.post(f"{URL}/{rid}/shares", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_assign_moves_the_record_to_the_new_owners_bu(client: TestClient, org: Org) -> None:
    manager = org.headers["manager"]
    rid = org.contacts["marketer"]
    to_colleague = client.post(
        f"{URL}/{rid}/assign",
        json={"owner": {"type": "user", "id": org.users["assistant"].id}},
        headers=manager,
    )
    assert to_colleague.status_code == 200, to_colleague.text
    assert to_colleague.json()["owner"] == {"type": "user", "id": org.users["assistant"].id}
    assert to_colleague.json()["owning_bu_id"] == org.sales.id
    assert rid in visible_ids(client, "contacts", org.headers["assistant"])

    away = client.post(
        f"{URL}/{rid}/assign",
        json={"owner": {"type": "user", "id": org.users["support_assistant"].id}},
        headers=manager,
    )
    assert away.status_code == 200
    assert away.json()["owning_bu_id"] == org.support.id
    # Out of Sales: the manager, marketer and previous owner lose it; the new owner has it.
    for viewer in ("manager", "marketer", "assistant"):
        assert_error(client.get(f"{URL}/{rid}", headers=org.headers[viewer]), 404)
        assert rid not in visible_ids(client, "contacts", org.headers[viewer])
    assert rid in visible_ids(client, "contacts", org.headers["support_assistant"])
    assert count(client, "contacts", org.headers["manager"]) == 3


def test_assign_refuses_an_owner_without_read(client: TestClient, db: Session, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["marketer"]
    url = f"{URL}/{rid}/assign"
    no_roles = {"type": "user", "id": org.users["nobody"].id}
    assert_error(client.post(url, json={"owner": no_roles}, headers=headers), 422, "owner")
    # A team owns a record only when one of its own roles grants read.
    team = {"type": "team", "id": org.campaign.id}
    assert_error(client.post(url, json={"owner": team}, headers=headers), 422, "owner")
    # A user whose only role grants read on leads, not contacts.
    lead_reader = f.role(db, "Lead reader", Level.USER, "lead", ("read",))
    leads_only = f.user(db, "leads_only", org.sales, lead_reader)
    db.commit()
    owner = {"type": "user", "id": leads_only.id}
    assert_error(client.post(url, json={"owner": owner}, headers=headers), 422, "owner")
    ghost = {"type": "user", "id": 999999}
    assert_error(client.post(url, json={"owner": ghost}, headers=headers), 404, "owner.id")
    assert_error(client.post(url, json={"owner": {"type": "bu", "id": 1}}, headers=headers), 422)
    assert_error(client.post(url, json={}, headers=headers), 422, "owner")
    record = client.get(f"{URL}/{rid}", headers=headers).json()
    assert record["owner"] == {"type": "user", "id": org.users["marketer"].id}

    # Once the team holds a role with read, it may own the record (in its own BU).
    assistant_role = org_service.get_role_by_name(db=db, name="Marketing Assistant").id
    admin = org.headers["admin"]
    given = client.post(
        f"{API}/teams/{org.campaign.id}/roles", json={"role_id": assistant_role}, headers=admin
    )
    assert given.status_code == 204
    moved = client.post(url, json={"owner": team}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["owning_bu_id"] == org.support.id
    assert rid in visible_ids(client, "contacts", org.headers["assistant"])  # a team member
    assert_error(client.get(f"{URL}/{rid}", headers=headers), 404)


def test_sharing_read_with_an_assistant_in_another_bu_then_revoking(
    client: TestClient, org: Org
) -> None:
    owner, guest = org.headers["marketer"], org.headers["support_assistant"]
    rid = org.contacts["marketer"]
    assert_error(client.get(f"{URL}/{rid}", headers=guest), 404)
    before = visible_ids(client, "contacts", guest)

    share = _share(client, owner, rid, "user", org.users["support_assistant"].id, "read")
    assert share["principal_type"] == "user"
    assert share["rights"] == ["read"]
    assert client.get(f"{URL}/{rid}", headers=guest).status_code == 200
    assert visible_ids(client, "contacts", guest) == before | {rid}
    assert visible_ids(client, "contacts", guest, country="DE") == {rid}
    # Read only: the guest may see who it is shared with, not change or reshare it.
    assert [s["id"] for s in client.get(f"{URL}/{rid}/shares", headers=guest).json()] == [
        share["id"]
    ]
    assert_error(client.patch(f"{URL}/{rid}", json={"last_name": "X"}, headers=guest), 403)
    assert_error(client.delete(f"{URL}/{rid}", headers=guest), 403)
    assert_error(client.delete(f"{URL}/{rid}/shares/{share['id']}", headers=guest), 403)
    # Another Marketing Assistant still does not see it.
    assert rid not in visible_ids(client, "contacts", org.headers["assistant"])

    revoked = client.delete(f"{URL}/{rid}/shares/{share['id']}", headers=owner)
    assert revoked.status_code == 204
    assert_error(client.get(f"{URL}/{rid}", headers=guest), 404)
    assert visible_ids(client, "contacts", guest) == before
    assert client.get(f"{URL}/{rid}/shares", headers=owner).json() == []
    assert_error(client.delete(f"{URL}/{rid}/shares/{share['id']}", headers=owner), 404, "share_id")


def test_sharing_write_grants_write_only_to_holders_of_the_write_privilege(
    client: TestClient, db: Session, org: Org
) -> None:
    reader_role = f.role(db, "Own reader", Level.USER, "contact", ("read",))
    reader = f.user(db, "reader", org.support, reader_role)
    db.commit()
    reader_headers = f.token(db, reader)
    owner = org.headers["marketer"]
    rid = org.contacts["marketer"]

    # Read and write: readable, but the reader holds no write privilege, so 403.
    _share(client, owner, rid, "user", reader.id, "read", "write")
    assert client.get(f"{URL}/{rid}", headers=reader_headers).status_code == 200
    patch = client.patch(f"{URL}/{rid}", json={"last_name": "X"}, headers=reader_headers)
    assert_error(patch, 403)

    # The same share to a Marketing Assistant, who holds write at user level, does write.
    guest = org.headers["support_assistant"]
    share = _share(client, owner, rid, "user", org.users["support_assistant"].id, "read", "write")
    assert share["rights"] == ["read", "write"]
    changed = client.patch(f"{URL}/{rid}", json={"last_name": "Shared"}, headers=guest)
    assert changed.status_code == 200
    assert changed.json()["last_name"] == "Shared"
    # Sharing again replaces the rights: back to read only.
    again = _share(client, owner, rid, "user", org.users["support_assistant"].id, "read")
    assert again["id"] == share["id"]
    assert again["rights"] == ["read"]
    assert_error(client.patch(f"{URL}/{rid}", json={"last_name": "Y"}, headers=guest), 403)
    assert client.get(f"{URL}/{rid}", headers=owner).json()["last_name"] == "Shared"


def test_sharing_with_a_team_follows_membership(client: TestClient, org: Org) -> None:
    owner, member = org.headers["marketer"], org.headers["assistant"]
    rid = org.contacts["marketer"]
    assert rid not in visible_ids(client, "contacts", member)
    _share(client, owner, rid, "team", org.campaign.id, "read")
    assert rid in visible_ids(client, "contacts", member)
    assert rid not in visible_ids(client, "contacts", org.headers["support_assistant"])
    removed = client.delete(
        f"{API}/teams/{org.campaign.id}/members/{org.users['assistant'].id}",
        headers=org.headers["admin"],
    )
    assert removed.status_code == 204
    assert rid not in visible_ids(client, "contacts", member)
    # Leaving the team also ended its ownership path.
    assert_error(client.get(f"{URL}/{org.contacts['team']}", headers=member), 404)


def test_sharing_with_the_organisation_reaches_everyone_with_read(
    client: TestClient, org: Org
) -> None:
    rid = org.contacts["eu"]
    # Only organization-level sharers may share with everyone; a Marketer (BU level) may not.
    body = {"principal_type": "organization", "rights": ["read"]}
    refused = client.post(f"{URL}/{rid}/shares", json=body, headers=org.headers["eu_marketer"])
    assert_error(refused, 403, "principal_type")
    assert rid not in visible_ids(client, "contacts", org.headers["support_assistant"])
    share = _share(client, org.headers["orgadmin"], rid, "organization", None, "read")
    assert share["principal_type"] == "organization"
    assert share["principal_id"] is None
    for viewer in ("support_assistant", "assistant", "marketer", "eu_marketer"):
        assert rid in visible_ids(client, "contacts", org.headers[viewer]), viewer
    # Sharing does not stand in for the privilege: a user without roles still sees nothing.
    assert count(client, "contacts", org.headers["nobody"]) == 0
    assert_error(client.get(f"{URL}/{rid}", headers=org.headers["nobody"]), 404)
    # Nor may the Marketer, who holds every right on it, take it back from everyone.
    revoke = f"{URL}/{rid}/shares/{share['id']}"
    assert_error(client.delete(revoke, headers=org.headers["eu_marketer"]), 403, "share_id")
    assert rid in visible_ids(client, "contacts", org.headers["support_assistant"])
    assert client.delete(revoke, headers=org.headers["orgadmin"]).status_code == 204
    assert rid not in visible_ids(client, "contacts", org.headers["support_assistant"])


def test_bad_share_input_is_rejected_naming_the_field(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["marketer"]
    url = f"{URL}/{rid}/shares"
    uid = org.users["eu_marketer"].id
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"principal_type": "user", "rights": ["read"]}, 422, "principal_id"),
        ({"principal_type": "team", "principal_id": None, "rights": ["read"]}, 422, "principal_id"),
        (
            {"principal_type": "user", "principal_id": 999999, "rights": ["read"]},
            404,
            "principal_id",
        ),
        (
            {"principal_type": "team", "principal_id": 999999, "rights": ["read"]},
            404,
            "principal_id",
        ),
        ({"principal_type": "user", "principal_id": uid, "rights": []}, 422, "rights"),
        ({"principal_type": "user", "principal_id": uid}, 422, "rights"),
        ({"principal_type": "user", "principal_id": uid, "rights": ["create"]}, 422, "rights.0"),
        (
            {"principal_type": "group", "principal_id": uid, "rights": ["read"]},
            422,
            "principal_type",
        ),
        ({"principal_type": "user", "principal_id": uid, "rights": ["read"], "x": 1}, 422, "x"),
    ]
    for body, status, field in cases:
        assert_error(client.post(url, json=body, headers=headers), status, field)
    assert client.get(url, headers=headers).json() == []
    assert rid not in visible_ids(client, "contacts", org.headers["eu_marketer"])
    # A share id from another record is not found on this one.
    other = org.contacts["manager"]
    share = _share(client, headers, other, "user", uid, "read")
    assert_error(client.delete(f"{url}/{share['id']}", headers=headers), 404, "share_id")
    assert len(client.get(f"{URL}/{other}/shares", headers=headers).json()) == 1


def _rights_of(client: TestClient, headers: dict[str, str], rid: int, user_id: int) -> list[str]:
    shares = client.get(f"{URL}/{rid}/shares", headers=headers).json()
    found = [s["rights"] for s in shares if s["principal_id"] == user_id]
    return found[0] if found else []


def test_a_sharer_cannot_grant_more_than_they_hold(
    client: TestClient, db: Session, org: Org
) -> None:
    """F1: read + share on a record does not let anyone hand out write, delete or assign —
    not to others, not to themselves, not by sharing again."""
    owner = org.headers["marketer"]
    rid = org.contacts["marketer"]
    guest_id = org.users["support_assistant"].id
    guest = org.headers["support_assistant"]
    _share(client, owner, rid, "user", guest_id, "read", "share")
    url = f"{URL}/{rid}/shares"
    everything = ["read", "write", "delete", "assign", "share"]
    # To themselves: refused, naming what they do not hold; nothing changes.
    mine = {"principal_type": "user", "principal_id": guest_id, "rights": everything}
    refused = assert_error(client.post(url, json=mine, headers=guest), 403, "rights")
    assert "write, delete, assign" in refused["message"]
    assert _rights_of(client, owner, rid, guest_id) == ["read", "share"]
    assert_error(client.patch(f"{URL}/{rid}", json={"last_name": "X"}, headers=guest), 403)
    to_self_assign = {"owner": {"type": "user", "id": guest_id}}
    assert_error(client.post(f"{URL}/{rid}/assign", json=to_self_assign, headers=guest), 403)
    # To someone else: only what they hold (read, share) passes on.
    other_id = org.users["assistant"].id
    other = {"principal_type": "user", "principal_id": other_id}
    assert_error(client.post(url, json={**other, "rights": ["read", "write"]}, headers=guest), 403)
    assert_error(client.post(url, json={**other, "rights": ["read", "delete"]}, headers=guest), 403)
    assert _rights_of(client, owner, rid, other_id) == []
    passed = _share(client, guest, rid, "user", other_id, "read", "share")
    assert passed["rights"] == ["read", "share"]
    # A repeated share never widens: the owner gave the assistant write; the guest's
    # re-share (read only) leaves the write it does not hold, and cannot add delete.
    _share(client, owner, rid, "user", other_id, "read", "write")
    again = _share(client, guest, rid, "user", other_id, "read")
    assert again["rights"] == ["read", "write"]
    # Nor revoke what it does not hold: the assistant's share carries write.
    assert_error(client.delete(f"{url}/{again['id']}", headers=guest), 403, "share_id")
    assert _rights_of(client, owner, rid, other_id) == ["read", "write"]
    # The owner, who holds everything, narrows and revokes freely.
    assert _share(client, owner, rid, "user", other_id, "read")["rights"] == ["read"]
    assert client.delete(f"{url}/{again['id']}", headers=owner).status_code == 204


def _explain_write(client: TestClient, org: Org, rid: int, user_id: int) -> dict[str, Any]:
    params = {"record_type": "contact", "record_id": rid, "privilege": "write", "user_id": user_id}
    response = client.get(f"{API}/access/explain", params=params, headers=org.headers["admin"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_share_without_read_is_refused(client: TestClient, db: Session, org: Org) -> None:
    """F7: a write-only share would be reported as granted by explain yet refused by the
    routes; it is refused when made, so the two can never disagree."""
    owner = org.headers["marketer"]
    rid = org.contacts["marketer"]
    guest_id = org.users["support_assistant"].id
    body = {"principal_type": "user", "principal_id": guest_id, "rights": ["write"]}
    error = assert_error(
        client.post(f"{URL}/{rid}/shares", json=body, headers=owner), 422, "rights"
    )
    assert "must include read" in error["message"]
    assert client.get(f"{URL}/{rid}/shares", headers=owner).json() == []
    explained = _explain_write(client, org, rid, guest_id)
    assert explained["allowed"] is False
    patch = client.patch(
        f"{URL}/{rid}", json={"last_name": "X"}, headers=org.headers["support_assistant"]
    )
    assert_error(patch, 404)
    # With read, both agree that write is allowed (the assistant holds write at user level).
    _share(client, owner, rid, "user", guest_id, "read", "write")
    explained = _explain_write(client, org, rid, guest_id)
    assert explained["allowed"] is True
    patch = client.patch(
        f"{URL}/{rid}", json={"last_name": "X"}, headers=org.headers["support_assistant"]
    )
    assert patch.status_code == 200


def test_shares_revocations_and_assigns_are_audited(client: TestClient, org: Org) -> None:
    owner = org.headers["marketer"]
    rid = org.contacts["marketer"]
    guest_id = org.users["support_assistant"].id
    made = _share(client, owner, rid, "user", guest_id, "read")
    _share(client, owner, rid, "user", guest_id, "read", "write")
    assert client.delete(f"{URL}/{rid}/shares/{made['id']}", headers=owner).status_code == 204
    new_owner = {"owner": {"type": "user", "id": org.users["assistant"].id}}
    assert client.post(f"{URL}/{rid}/assign", json=new_owner, headers=owner).status_code == 200
    # A refused share leaves no entry.
    everything = {"principal_type": "user", "principal_id": guest_id, "rights": ["read", "x"]}
    assert client.post(f"{URL}/{rid}/shares", json=everything, headers=owner).status_code == 422

    response = client.get(
        f"{API}/admin/audit",
        params={"target_type": "contact", "target_id": str(rid)},
        headers=org.headers["admin"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    entries = body["items"] if isinstance(body, dict) else body
    got = [(e["action"], e["actor_name"], e["before"], e["after"]) for e in reversed(entries)]
    user_share = {"principal_type": "user", "principal_id": guest_id}
    assert got == [
        ("contact.share", "marketer", None, {**user_share, "rights": ["read"]}),
        (
            "contact.share",
            "marketer",
            {**user_share, "rights": ["read"]},
            {**user_share, "rights": ["read", "write"]},
        ),
        ("contact.unshare", "marketer", {**user_share, "rights": ["read", "write"]}, None),
        (
            "contact.assign",
            "marketer",
            {
                "owner": {"type": "user", "id": org.users["marketer"].id},
                "owning_bu_id": org.sales.id,
            },
            {
                "owner": {"type": "user", "id": org.users["assistant"].id},
                "owning_bu_id": org.sales.id,
            },
        ),
    ]
    assert all(e["target_label"] == "Marketer Owner-marketer" for e in entries)
