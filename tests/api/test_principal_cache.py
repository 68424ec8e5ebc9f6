"""The principal cache (issue 20): API and web processes keep each caller's principal while
the security epoch — changed by database triggers in the same transaction as every change
to users, teams, roles, memberships and tokens — is unchanged. A change takes effect on the
very next request in every process; changes that do not touch access leave the cache be."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.levels import Level
from gatherly.app import create_app
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.org import directory
from gatherly.org import service as org_service
from gatherly.org.models import ApiToken, User
from gatherly.web import auth
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import statements

Change = Callable[[Session], object]


def _epoch(session_factory: sessionmaker[Session]) -> int | None:
    with session_factory() as db:
        return directory.security_epoch(db)


def test_the_epoch_moves_with_every_change_to_what_a_principal_is_made_of(
    session_factory: sessionmaker[Session], org: Org
) -> None:
    marketer, campaign = org.users["marketer"], org.campaign.id
    with session_factory() as db, db.begin():
        reader = f.role(db, "Reader", Level.BUSINESS_UNIT)
        token_id = org_service.create_token(db=db, user_id=marketer.id, name="t")[0].id
    s = org_service
    changes: list[tuple[str, Change]] = [
        ("role given", lambda db: s.assign_role(db=db, role_id=reader, user_id=marketer.id)),
        ("role taken", lambda db: s.unassign_role(db=db, role_id=reader, user_id=marketer.id)),
        ("team's role", lambda db: s.assign_role(db=db, role_id=reader, team_id=campaign)),
        ("joins team", lambda db: s.add_member(db=db, team_id=campaign, user_id=marketer.id)),
        ("leaves team", lambda db: s.remove_member(db=db, team_id=campaign, user_id=marketer.id)),
        ("privileges", lambda db: s.update_role(db=db, role_id=reader, privileges={})),
        ("role renamed", lambda db: s.update_role(db=db, role_id=reader, name="Reader 2")),
        ("team renamed", lambda db: s.update_team(db=db, team_id=campaign, name="Campaign 2")),
        (
            "user moved",
            lambda db: s.move_user(db=db, user_id=marketer.id, business_unit_id=org.sales_eu.id),
        ),
        (
            "disabled",
            lambda db: s.update_user(db=db, user_id=org.users["nobody"].id, disabled=True),
        ),
        ("token revoked", lambda db: s.revoke_token(db=db, token_id=token_id)),
    ]
    unrelated: list[tuple[str, Change]] = [
        (
            "name, email",
            lambda db: s.update_user(db=db, user_id=marketer.id, full_name="M. Arketer"),
        ),
        ("time zone", lambda db: db.execute(update(User).values(time_zone="Europe/Berlin"))),
        ("token used", lambda db: db.execute(update(ApiToken).values(last_used_at=utcnow()))),
        ("a contact", lambda db: f.contact(db, marketer, email="new@example.com")),
    ]
    for what, change in changes + unrelated:
        before = _epoch(session_factory)
        assert before is not None
        with session_factory() as db, db.begin():
            change(db)
        moved = _epoch(session_factory) != before
        assert moved == ((what, change) in changes), what


def _two_processes(database_url: str, tmp_path: Any) -> tuple[TestClient, TestClient]:
    """Two apps, as two API processes would be: each with its own principal cache."""
    settings = Settings(database_url=database_url, queue_path=str(tmp_path / "queue.db"))
    return TestClient(create_app(settings)), TestClient(create_app(settings))


def test_a_cached_principal_is_dropped_on_the_next_request_in_every_process(
    org: Org, session_factory: sessionmaker[Session], database_url: str, tmp_path: Any
) -> None:
    first, second = _two_processes(database_url, tmp_path)
    contact = f"/api/v1/contacts/{org.contacts['marketer']}"
    headers = org.headers["marketer"]
    with first, second:
        for client in (first, second):
            assert client.get(contact, headers=headers).status_code == 200
            with statements(client) as seen:  # now from the cache: no role is read
                assert client.get(contact, headers=headers).status_code == 200
            assert not [e.sql for e in seen if "user_role" in e.sql], seen
        # The admin takes the marketer's role away through the first process...
        marketer = org.users["marketer"].id
        with session_factory() as db:
            role = org_service.get_role_by_name(db=db, name="Marketer").id
        taken = first.delete(f"/api/v1/users/{marketer}/roles/{role}", headers=org.headers["admin"])
        assert taken.status_code == 204, taken.text
        # ...and both processes refuse the very next request.
        for client in (first, second):
            assert client.get(contact, headers=headers).status_code == 404
            listed = client.get("/api/v1/contacts", headers=headers)
            assert listed.json()["items"] == [], listed.text


def test_a_revoked_token_and_a_disabled_user_stop_at_once_despite_the_cache(
    org: Org, session_factory: sessionmaker[Session], database_url: str, tmp_path: Any
) -> None:
    first, second = _two_processes(database_url, tmp_path)
    with first, second:
        for name in ("manager", "eu_marketer"):
            for client in (first, second):
                assert client.get("/api/v1/me", headers=org.headers[name]).status_code == 200
        with session_factory() as db, db.begin():
            token = db.query(ApiToken).filter_by(user_id=org.users["manager"].id).one()
            org_service.revoke_token(db=db, token_id=token.id)
            org_service.update_user(db=db, user_id=org.users["eu_marketer"].id, disabled=True)
        for client in (first, second):
            for name in ("manager", "eu_marketer"):
                refused = client.get("/api/v1/me", headers=org.headers[name])
                assert refused.status_code == 401, refused.text


def test_a_signed_in_page_drops_its_cached_principal_too(
    org: Org, session_factory: sessionmaker[Session], database_url: str, tmp_path: Any
) -> None:
    first, second = _two_processes(database_url, tmp_path)
    with session_factory() as db, db.begin():
        user = db.get(User, org.users["marketer"].id)
        assert user is not None
        cookie = auth.start(db, user=user)[1]
        role = org_service.get_role_by_name(db=db, name="Marketer").id
    with first, second:
        for client in (first, second):
            client.cookies.set(auth.SESSION_COOKIE, cookie)
            assert "marketer@example.com" in client.get("/contacts").text
        with session_factory() as db, db.begin():
            org_service.unassign_role(db=db, role_id=role, user_id=org.users["marketer"].id)
        for client in (first, second):
            page = client.get("/contacts")
            assert page.status_code == 200
            assert "marketer@example.com" not in page.text


def test_the_cache_honours_the_epoch_expiry_and_its_size(org: Org, db: Session) -> None:
    principal = f.principal(db, org.users["marketer"])
    now = utcnow()
    cache = directory.PrincipalCache(size=2)
    cache.put("a", principal, epoch=1, fresh_until=now + timedelta(seconds=5))
    assert cache.get("a", epoch=1, now=now) is principal
    assert cache.get("a", epoch=1, now=now + timedelta(seconds=5)) is None  # expired, gone
    cache.put("a", principal, epoch=1)
    assert cache.get("a", epoch=2, now=now) is None  # another epoch: gone
    assert cache.get("a", epoch=1, now=now) is None
    cache.put("a", principal, epoch=None)  # no epoch row: nothing is trusted
    assert cache.get("a", epoch=None, now=now) is None
    assert len(cache) == 0
    for key in ("a", "b", "c"):
        cache.put(key, principal, epoch=1)
    assert len(cache) == 2
    assert cache.get("a", epoch=1, now=now) is None
