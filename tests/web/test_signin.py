"""Web sign-in: password check, session cookie flags, CSRF on every form, sign-out, and a
clear page for a disabled user (issue 5, first slice; browser tests come with the pages)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.app import create_app
from gatherly.core.config import Settings
from gatherly.org import service as org
from gatherly.web import auth
from gatherly.web.models import WebSession
from tests import factories as f
from tests.web.conftest import csrf_of

PASSWORD = "correct horse battery"


@pytest.fixture
def gustav(db: Session) -> int:
    user = f.user(db, "gustav", f.bu(db, "Germany"), "Marketer")
    org.set_password(db=db, user_id=user.id, password=PASSWORD)
    db.commit()
    return user.id


def _sign_in(client: TestClient, username: str, password: str) -> object:
    form = client.get("/signin")
    assert form.status_code == 200
    return client.post(
        "/signin",
        data={"username": username, "password": password, "csrf": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )


def test_pages_need_a_session_and_sign_in_opens_one(
    client: TestClient, db: Session, gustav: int
) -> None:
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/signin")
    response = _sign_in(client, "gustav", PASSWORD)
    assert response.status_code == 303  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert f"{auth.SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    home = client.get("/")
    assert home.status_code == 200
    assert "Signed in as <strong>gustav</strong>" in home.text
    assert "Germany" in home.text
    stored = db.execute(select(WebSession.token_hash)).scalars().all()
    assert len(stored) == 1
    assert client.cookies[auth.SESSION_COOKIE] not in stored  # only its hash is kept


def test_wrong_password_says_so_inline_and_opens_nothing(
    client: TestClient, db: Session, gustav: int
) -> None:
    response = _sign_in(client, "gustav", "wrong password")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "Wrong username or password." in response.text  # type: ignore[attr-defined]
    assert 'role="alert"' in response.text  # type: ignore[attr-defined]
    assert db.execute(select(WebSession)).first() is None
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_without_the_csrf_token_is_refused(
    client: TestClient, db: Session, gustav: int
) -> None:
    client.get("/signin")  # the cookie half is there, the form half is not
    for token in ("", "forged"):
        response = client.post(
            "/signin",
            data={"username": "gustav", "password": PASSWORD, "csrf": token},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "This form was refused" in response.text
    assert db.execute(select(WebSession)).first() is None


def test_sign_out_needs_the_session_csrf_token_and_ends_the_session(
    client: TestClient, db: Session, gustav: int
) -> None:
    _sign_in(client, "gustav", PASSWORD)
    home = client.get("/")
    stolen_cookie = client.cookies[auth.SESSION_COOKIE]
    refused = client.post("/signout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    done = client.post("/signout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/signin"
    # The old cookie is dead on the server, not only deleted from this browser.
    client.cookies.set(auth.SESSION_COOKIE, stolen_cookie)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_disabled_user_gets_a_clear_page(client: TestClient, db: Session, gustav: int) -> None:
    _sign_in(client, "gustav", PASSWORD)
    assert client.get("/").status_code == 200
    org.update_user(db=db, user_id=gustav, disabled=True)
    db.commit()
    page = client.get("/")
    assert page.status_code == 403
    assert "This account is disabled" in page.text
    again = _sign_in(client, "gustav", PASSWORD)
    assert again.status_code == 403  # type: ignore[attr-defined]
    assert "This account is disabled" in again.text  # type: ignore[attr-defined]


def test_the_session_cookie_is_secure_over_tls(
    database_url: str, db: Session, gustav: int, tmp_path: object
) -> None:
    app = create_app(Settings(database_url=database_url, queue_path=f"{tmp_path}/queue.db"))
    with TestClient(app, base_url="https://testserver") as tls:
        response = _sign_in(tls, "gustav", PASSWORD)
        assert "Secure" in response.headers["set-cookie"]  # type: ignore[attr-defined]
    app.state.engine.dispose()


def test_next_only_follows_local_paths(client: TestClient, gustav: int) -> None:
    form = client.get("/signin", params={"next": "https://evil.example/"})
    assert 'name="next" value="/"' in form.text
    response = client.post(
        "/signin",
        data={
            "username": "gustav",
            "password": PASSWORD,
            "csrf": csrf_of(form.text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"
