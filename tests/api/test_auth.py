"""API tokens: created through the API, shown once, stored hashed, revocable at once."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.org.models import ApiToken
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_token_is_shown_once_stored_hashed_and_works(
    client: TestClient, db: Session, org: Org
) -> None:
    user = org.users["marketer"]
    response = client.post(
        f"{API}/users/{user.id}/tokens", json={"name": "laptop"}, headers=org.headers["marketer"]
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["token"]
    assert secret.startswith("gly_")
    assert len(secret) > 40
    assert created["name"] == "laptop"
    assert created["prefix"] == secret[:10]
    assert created["revoked_at"] is None

    # Only the SHA-256 is stored; the secret is in no column of the row.
    row = db.execute(select(ApiToken).where(ApiToken.id == created["id"])).scalar_one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in row.__dict__.values()}

    me = client.get(f"{API}/me", headers=_bearer(secret))
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "marketer"
    assert me.json()["system_administrator"] is False

    listing = client.get(f"{API}/users/{user.id}/tokens", headers=_bearer(secret))
    assert listing.status_code == 200
    assert secret not in listing.text
    mine = [t for t in listing.json() if t["id"] == created["id"]]
    assert len(mine) == 1
    assert "token" not in mine[0]
    assert "token_hash" not in mine[0]
    assert mine[0]["last_used_at"] is not None  # it was used for /me


def test_revoked_token_stops_working_at_once_and_others_keep_working(
    client: TestClient, org: Org
) -> None:
    user = org.users["marketer"]
    headers = org.headers["marketer"]
    first = client.post(f"{API}/users/{user.id}/tokens", json={"name": "a"}, headers=headers)
    second = client.post(f"{API}/users/{user.id}/tokens", json={"name": "b"}, headers=headers)
    doomed, kept = first.json(), second.json()
    assert client.get(f"{API}/contacts/count", headers=_bearer(doomed["token"])).json() == {
        "count": 3
    }

    revoke = client.delete(
        f"{API}/users/{user.id}/tokens/{doomed['id']}", headers=_bearer(doomed["token"])
    )
    assert revoke.status_code == 204

    refused = client.get(f"{API}/contacts/count", headers=_bearer(doomed["token"]))
    assert assert_error(refused, 401)["code"] == "unauthenticated"
    assert client.get(f"{API}/me", headers=_bearer(kept["token"])).status_code == 200
    assert client.get(f"{API}/me", headers=headers).status_code == 200

    listing = {
        t["id"]: t for t in client.get(f"{API}/users/{user.id}/tokens", headers=headers).json()
    }
    assert listing[doomed["id"]]["revoked_at"] is not None
    assert listing[kept["id"]]["revoked_at"] is None
    # Revoking again is harmless; an unknown token is 404 naming token_id.
    again = client.delete(f"{API}/users/{user.id}/tokens/{doomed['id']}", headers=headers)
    assert again.status_code == 204
    missing = client.delete(f"{API}/users/{user.id}/tokens/999999", headers=headers)
    assert_error(missing, 404, "token_id")


def test_other_users_tokens_need_admin(client: TestClient, org: Org) -> None:
    victim = org.users["assistant"]
    victim_token = client.post(
        f"{API}/users/{victim.id}/tokens", json={}, headers=org.headers["assistant"]
    ).json()
    for name in ("marketer", "manager", "orgadmin", "nobody"):
        headers = org.headers[name]
        url = f"{API}/users/{victim.id}/tokens"
        assert_error(client.get(url, headers=headers), 403)
        assert_error(client.post(url, json={"name": "stolen"}, headers=headers), 403)
        assert_error(client.delete(f"{url}/{victim_token['id']}", headers=headers), 403)
    assert client.get(f"{API}/me", headers=_bearer(victim_token["token"])).status_code == 200

    # The System Administrator manages anyone's tokens.
    admin = org.headers["admin"]
    minted = client.post(f"{API}/users/{victim.id}/tokens", json={"name": "ops"}, headers=admin)
    assert minted.status_code == 201
    me = client.get(f"{API}/me", headers=_bearer(minted.json()["token"])).json()
    assert me["user"]["username"] == "assistant"
    assert len(client.get(f"{API}/users/{victim.id}/tokens", headers=admin).json()) == 3
    revoke = client.delete(f"{API}/users/{victim.id}/tokens/{victim_token['id']}", headers=admin)
    assert revoke.status_code == 204
    assert_error(client.get(f"{API}/me", headers=_bearer(victim_token["token"])), 401)


def test_a_token_cannot_be_revoked_through_another_users_path(client: TestClient, org: Org) -> None:
    assistant = org.users["assistant"]
    marketer = org.users["marketer"]
    theirs = client.post(
        f"{API}/users/{assistant.id}/tokens", json={}, headers=org.headers["assistant"]
    ).json()
    # The admin names the wrong user: the token is not found there and keeps working.
    wrong = client.delete(
        f"{API}/users/{marketer.id}/tokens/{theirs['id']}", headers=org.headers["admin"]
    )
    assert_error(wrong, 404, "token_id")
    assert client.get(f"{API}/me", headers=_bearer(theirs["token"])).status_code == 200


def test_disabling_a_user_refuses_their_tokens_until_enabled_again(
    client: TestClient, org: Org
) -> None:
    user = org.users["marketer"]
    headers = org.headers["marketer"]
    assert client.get(f"{API}/contacts/count", headers=headers).json()["count"] == 3
    disable = client.patch(
        f"{API}/users/{user.id}", json={"disabled": True}, headers=org.headers["admin"]
    )
    assert disable.status_code == 200
    assert disable.json()["disabled"] is True
    for url in (f"{API}/me", f"{API}/contacts", f"{API}/contacts/count"):
        assert assert_error(client.get(url, headers=headers), 401)["code"] == "unauthenticated"
    enable = client.patch(
        f"{API}/users/{user.id}", json={"disabled": False}, headers=org.headers["admin"]
    )
    assert enable.status_code == 200
    assert client.get(f"{API}/contacts/count", headers=headers).json()["count"] == 3


def test_an_administrator_cannot_disable_their_own_account(client: TestClient, org: Org) -> None:
    admin = org.users["admin"]
    headers = org.headers["admin"]
    refused = client.patch(f"{API}/users/{admin.id}", json={"disabled": True}, headers=headers)
    assert "own account" in assert_error(refused, 409, "disabled")["message"]
    # Nothing changed: the token still works, and other fields can still be edited.
    assert client.get(f"{API}/users/{admin.id}", headers=headers).json()["disabled"] is False
    renamed = client.patch(
        f"{API}/users/{admin.id}", json={"full_name": "Root", "disabled": False}, headers=headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "Root"


def test_token_input_is_validated(client: TestClient, org: Org) -> None:
    user = org.users["marketer"]
    url = f"{API}/users/{user.id}/tokens"
    headers = org.headers["marketer"]
    assert_error(client.post(url, json={"name": ""}, headers=headers), 422, "name")
    assert_error(client.post(url, json={"name": "x" * 121}, headers=headers), 422, "name")
    assert_error(client.post(url, json={"scope": "all"}, headers=headers), 422, "scope")
    assert_error(
        client.post(f"{API}/users/999999/tokens", json={}, headers=org.headers["admin"]),
        404,
        "user_id",
    )
    default = client.post(url, json={}, headers=headers)
    assert default.status_code == 201
    assert default.json()["name"] == "api"


def test_me_shows_the_callers_grants(client: TestClient, org: Org) -> None:
    me = client.get(f"{API}/me", headers=org.headers["manager"]).json()
    assert me["user"]["username"] == "manager"
    assert me["user"]["business_unit_id"] == org.sales.id
    assert me["system_administrator"] is False
    contact_read = [
        g for g in me["grants"] if g["record_type"] == "contact" and g["privilege"] == "read"
    ]
    assert contact_read == [
        {
            "record_type": "contact",
            "privilege": "read",
            "level": "parent_child",
            "anchor_bu_id": org.sales.id,
            "role": "Marketing Manager",
            "team": None,
        }
    ]
    nobody = client.get(f"{API}/me", headers=org.headers["nobody"]).json()
    assert nobody["grants"] == []
    assert client.get(f"{API}/me", headers=org.headers["admin"]).json()["system_administrator"]
