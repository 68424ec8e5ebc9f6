"""API tokens: made by their owner (``/me/tokens``), shown once, stored hashed, expiring under
the administrator's policy, revocable at once; administrators list and revoke everyone's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gatherly.core.audit import AuditEntry
from gatherly.core.db import utcnow
from gatherly.org import service as org_service
from gatherly.org.directory import PrincipalCache
from gatherly.org.models import ApiToken
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

MINE = f"{API}/me/tokens"
ALL = f"{API}/admin/tokens"
POLICY = f"{API}/admin/token-policy"


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _create(client: TestClient, org: Org, who: str, **body: object) -> dict[str, object]:
    response = client.post(MINE, json=body, headers=org.headers[who])
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def _instant(text: object) -> datetime:
    assert isinstance(text, str)
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text  # ISO 8601 with its zone
    return value


def test_token_is_shown_once_stored_hashed_and_works(
    client: TestClient, db: Session, org: Org
) -> None:
    created = _create(client, org, "marketer", name="laptop")
    secret = created["token"]
    assert isinstance(secret, str)
    assert secret.startswith("gly_")
    assert len(secret) > 40
    assert created["name"] == "laptop"
    assert created["prefix"] == secret[:10]
    assert created["revoked_at"] is None
    assert created["status"] == "active"

    # Only the SHA-256 is stored; the secret is in no column of the row.
    row = db.execute(select(ApiToken).where(ApiToken.id == created["id"])).scalar_one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in row.__dict__.values()}

    me = client.get(f"{API}/me", headers=_bearer(secret))
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "marketer"

    listing = client.get(MINE, headers=_bearer(secret))
    assert listing.status_code == 200
    assert secret not in listing.text
    mine = [t for t in listing.json() if t["id"] == created["id"]]
    assert len(mine) == 1
    assert "token" not in mine[0]
    assert "token_hash" not in mine[0]
    assert mine[0]["last_used_at"] is not None  # it was used for /me
    _instant(mine[0]["last_used_at"])


def test_a_new_token_expires_after_the_default_lifetime(client: TestClient, org: Org) -> None:
    before = utcnow()
    created = _create(client, org, "marketer")
    expires = _instant(created["expires_at"])
    assert before + timedelta(days=90) <= expires <= utcnow() + timedelta(days=90)
    shorter = _create(client, org, "marketer", expires_in_days=7)
    assert _instant(shorter["expires_at"]) <= utcnow() + timedelta(days=7)
    at = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    exact = _create(client, org, "marketer", expires_at=at.isoformat())
    assert _instant(exact["expires_at"]) == at


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"expires_in_days": 366}, "expires_in_days", "at most 365 days"),
        ({"expires_in_days": 0}, "expires_in_days", ""),
        ({"expires_in_days": 10**9}, "expires_in_days", ""),
        ({"never_expires": True}, "never_expires", "tokens must expire"),
        ({"expires_at": "2099-01-01T00:00:00+00:00"}, "expires_at", "at most 365 days"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at", "in the future"),
        ({"expires_at": "2027-01-01T00:00:00"}, "expires_at", "time zone"),
        ({"expires_at": "9999-12-31T23:59:59-14:00"}, "expires_at", ""),
        ({"expires_in_days": 5, "never_expires": True}, "never_expires", "only one"),
    ],
)
def test_a_request_may_ask_for_less_than_the_maximum_never_more(
    client: TestClient, db: Session, org: Org, body: dict[str, object], field: str, words: str
) -> None:
    response = client.post(MINE, json=body, headers=org.headers["marketer"])
    error = assert_error(response, 422, field)
    assert words in error["message"]
    db.expire_all()
    assert db.execute(select(ApiToken).where(ApiToken.name == "api")).first() is None


def test_the_admin_sets_the_policy_and_never_needs_their_leave(
    client: TestClient, db: Session, org: Org
) -> None:
    policy = client.get(POLICY, headers=org.headers["nobody"]).json()
    assert policy == {"default_days": 90, "max_days": 365, "allows_never": False}
    for who in ("marketer", "orgadmin", "nobody"):
        refused = client.put(
            POLICY, json={"default_days": 30, "max_days": None}, headers=org.headers[who]
        )
        assert_error(refused, 403)
    admin = org.headers["admin"]
    for body, field in (
        ({"default_days": 400, "max_days": 365}, "default_days"),
        ({"default_days": None, "max_days": 365}, "default_days"),
        ({"default_days": 0, "max_days": 365}, "default_days"),
        ({"default_days": 30, "max_days": 4000}, "max_days"),
        ({"default_days": 30}, "max_days"),
    ):
        assert_error(client.put(POLICY, json=body, headers=admin), 422, field)
    assert client.get(POLICY, headers=admin).json()["max_days"] == 365

    changed = client.put(POLICY, json={"default_days": 30, "max_days": None}, headers=admin)
    assert changed.json() == {"default_days": 30, "max_days": None, "allows_never": True}
    forever = _create(client, org, "marketer", never_expires=True)
    assert forever["expires_at"] is None
    long = _create(client, org, "marketer", expires_in_days=3000)
    assert _instant(long["expires_at"]) > utcnow() + timedelta(days=2999)
    default = _create(client, org, "marketer")
    assert _instant(default["expires_at"]) <= utcnow() + timedelta(days=30)

    entries = client.get(
        f"{API}/admin/audit", params={"action": "settings."}, headers=admin
    ).json()["items"]
    assert [(e["action"], e["actor_name"], e["before"], e["after"]) for e in entries] == [
        (
            "settings.api_tokens",
            "admin",
            {"default_days": 90, "max_days": 365},
            {"default_days": 30, "max_days": None},
        )
    ]


def test_an_expired_token_is_refused_saying_so(client: TestClient, db: Session, org: Org) -> None:
    created = _create(client, org, "marketer", expires_in_days=1)
    secret = str(created["token"])
    assert client.get(f"{API}/me", headers=_bearer(secret)).status_code == 200
    # A day passes: the stored expiry is now behind us.
    past = utcnow() - timedelta(seconds=1)
    db.execute(update(ApiToken).where(ApiToken.id == created["id"]).values(expires_at=past))
    db.commit()
    for url in (f"{API}/me", f"{API}/contacts", MINE):
        error = assert_error(client.get(url, headers=_bearer(secret)), 401)
        assert error["code"] == "unauthenticated"
        assert "expired" in error["message"]
    listing = {t["id"]: t for t in client.get(MINE, headers=org.headers["marketer"]).json()}
    assert listing[created["id"]]["status"] == "expired"


def test_revoked_token_stops_working_at_once_and_others_keep_working(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["marketer"]
    doomed = _create(client, org, "marketer", name="a")
    kept = _create(client, org, "marketer", name="b")
    doomed_secret = str(doomed["token"])
    counted = client.get(f"{API}/contacts/count", headers=_bearer(doomed_secret))
    assert counted.json() == {"count": 3}

    revoke = client.delete(f"{MINE}/{doomed['id']}", headers=_bearer(doomed_secret))
    assert revoke.status_code == 204

    refused = client.get(f"{API}/contacts/count", headers=_bearer(doomed_secret))
    error = assert_error(refused, 401)
    assert error["code"] == "unauthenticated"
    assert "revoked" in error["message"]
    assert client.get(f"{API}/me", headers=_bearer(str(kept["token"]))).status_code == 200
    assert client.get(f"{API}/me", headers=headers).status_code == 200

    listing = {t["id"]: t for t in client.get(MINE, headers=headers).json()}
    assert listing[doomed["id"]]["revoked_at"] is not None
    assert listing[doomed["id"]]["status"] == "revoked"
    assert listing[kept["id"]]["revoked_at"] is None
    # Revoking again is harmless; an unknown token is 404 naming token_id.
    assert client.delete(f"{MINE}/{doomed['id']}", headers=headers).status_code == 204
    assert_error(client.delete(f"{MINE}/999999", headers=headers), 404, "token_id")


def test_last_use_is_recorded_at_most_once_a_minute(
    client: TestClient, db: Session, org: Org
) -> None:
    # The principal cache holds a token for the minute its use was recorded in; this test
    # moves that minute back in the database, which the cache cannot know: cache off.
    state = client.app.state  # type: ignore[attr-defined]
    kept, state.principals = state.principals, PrincipalCache(0)
    try:
        _last_use_once_a_minute(client, db, org)
    finally:
        state.principals = kept


def _last_use_once_a_minute(client: TestClient, db: Session, org: Org) -> None:
    created = _create(client, org, "marketer")
    token_id, secret = created["id"], str(created["token"])

    def last_used() -> datetime | None:
        db.expire_all()
        row = db.get(ApiToken, token_id)
        assert row is not None
        return row.last_used_at

    assert last_used() is None
    assert client.get(f"{API}/me", headers=_bearer(secret)).status_code == 200
    first = last_used()
    assert first is not None
    assert client.get(f"{API}/contacts", headers=_bearer(secret)).status_code == 200
    assert last_used() == first  # a second GET within the minute writes nothing
    # A minute later, the next request records its use again.
    earlier = first - timedelta(minutes=1, seconds=1)
    db.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=earlier))
    db.commit()
    assert client.get(f"{API}/me", headers=_bearer(secret)).status_code == 200
    latest = last_used()
    assert latest is not None
    assert latest > first


def test_nobody_lists_or_revokes_another_users_token(client: TestClient, org: Org) -> None:
    theirs = _create(client, org, "assistant", name="theirs")
    mine_before = client.get(MINE, headers=org.headers["marketer"]).json()
    assert theirs["id"] not in {t["id"] for t in mine_before}
    assert {t["name"] for t in mine_before} == {"test"}  # only the marketer's own
    for who in ("marketer", "manager", "orgadmin", "nobody", "admin"):
        # The "mine" route knows only the caller's tokens: 404, like a token that never was.
        gone = client.delete(f"{MINE}/{theirs['id']}", headers=org.headers[who])
        assert_error(gone, 404, "token_id")
    for who in ("marketer", "manager", "orgadmin", "nobody"):
        assert_error(client.get(ALL, headers=org.headers[who]), 403)
        assert_error(client.delete(f"{ALL}/{theirs['id']}", headers=org.headers[who]), 403)
        assert_error(client.delete(f"{ALL}/999999", headers=org.headers[who]), 403)
    assert client.get(f"{API}/me", headers=_bearer(str(theirs["token"]))).status_code == 200


def test_the_administrator_lists_and_revokes_anyones_token(
    client: TestClient, db: Session, org: Org
) -> None:
    admin = org.headers["admin"]
    theirs = _create(client, org, "assistant", name="theirs")
    page = client.get(ALL, headers=admin).json()
    everyone = {t["id"]: t for t in page["items"]}
    assert everyone[theirs["id"]]["username"] == "assistant"
    assert everyone[theirs["id"]]["user_id"] == org.users["assistant"].id
    assert "token" not in everyone[theirs["id"]]
    assert len(everyone) == len(org.users) + 1

    only = client.get(ALL, params={"user_id": org.users["assistant"].id}, headers=admin).json()
    assert {t["name"] for t in only["items"]} == {"test", "theirs"}
    first = client.get(ALL, params={"limit": 3}, headers=admin).json()
    second = client.get(
        ALL, params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    ids = [t["id"] for t in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 6

    assert client.delete(f"{ALL}/{theirs['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"{API}/me", headers=_bearer(str(theirs["token"]))), 401)
    assert_error(client.delete(f"{ALL}/999999", headers=admin), 404, "token_id")
    revoked = client.get(ALL, params={"status": "revoked"}, headers=admin).json()["items"]
    assert [t["id"] for t in revoked] == [theirs["id"]]
    active = client.get(ALL, params={"status": "active"}, headers=admin).json()["items"]
    assert theirs["id"] not in {t["id"] for t in active}
    assert_error(client.get(ALL, params={"status": "lost"}, headers=admin), 422, "status")

    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "token.revoke")).scalar_one()
    assert (entry.actor_name, entry.target_type, entry.target_id) == (
        "admin",
        "api_token",
        str(theirs["id"]),
    )
    assert entry.details["username"] == "assistant"
    assert entry.before == {"revoked_at": None}
    assert _instant(entry.after["revoked_at"]) <= datetime.now(UTC)


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
    headers = org.headers["marketer"]
    assert_error(client.post(MINE, json={"name": ""}, headers=headers), 422, "name")
    assert_error(client.post(MINE, json={"name": "x" * 121}, headers=headers), 422, "name")
    assert_error(client.post(MINE, json={"scope": "all"}, headers=headers), 422, "scope")
    default = client.post(MINE, json={}, headers=headers)
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


def test_you_change_your_own_password_with_the_current_one(
    client: TestClient, org: Org, db: Session
) -> None:
    url = f"{API}/me/password"
    marketer = org.users["marketer"]
    org_service.set_password(db=db, user_id=marketer.id, password="first-password")
    db.commit()
    wrong = client.post(
        url,
        json={"current_password": "not-it", "new_password": "second-password"},
        headers=org.headers["marketer"],
    )
    assert_error(wrong, 422, "current_password")
    short = client.post(
        url,
        json={"current_password": "first-password", "new_password": "short"},
        headers=org.headers["marketer"],
    )
    assert_error(short, 422, "new_password")
    done = client.post(
        url,
        json={"current_password": "first-password", "new_password": "second-password"},
        headers=org.headers["marketer"],
    )
    assert done.status_code == 204, done.text
    db.expire_all()
    assert org_service.verify_password(
        db=db, username=marketer.username, password="second-password"
    )
    # API tokens are credentials of their own: they keep working.
    assert client.get(f"{API}/me", headers=org.headers["marketer"]).status_code == 200
    assert (
        client.post(url, json={"current_password": "x", "new_password": "yyyyyyyy"}).status_code
        == 401
    )
