"""Every web page route, walked: none answers without a session, and none that changes
anything accepts a request without the session's CSRF token (issue 5: security by default).

The walk reads the routes off the app, so a page added later is covered without editing
this file.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.app import create_app
from gatherly.core.config import Settings
from tests import factories as f
from tests.routing import api_route_pairs
from tests.web.conftest import PASSWORD, with_password

OPEN = {("GET", "/signin"), ("POST", "/signin")}  # the sign-in form itself
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def _web_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    found = []
    for route, path in api_route_pairs(app):
        if path.startswith("/api/") or path == "/healthz":
            continue
        for method in sorted(route.methods):
            if (method, path) not in OPEN and method != "HEAD":
                found.append((method, path))
    app.state.engine.dispose()
    return found


ROUTES = _web_routes()


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_walk_sees_the_pages() -> None:
    paths = {path for _method, path in ROUTES}
    assert {"/", "/signout"} <= paths


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_page_answers_without_a_session(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, _url(path), follow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"].startswith("/signin")


@pytest.mark.parametrize(
    ("method", "path"),
    [r for r in ROUTES if r[0] in CHANGES],
    ids=[f"{m} {p}" for m, p in ROUTES if m in CHANGES],
)
def test_no_change_is_accepted_without_the_csrf_token(
    client: TestClient, db: Session, method: str, path: str
) -> None:
    with_password(db, f.user(db, "root_admin", None, "System Administrator"))
    db.commit()
    form = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token
    signed_in = client.post(
        "/signin",
        data={"username": "root_admin", "password": PASSWORD, "csrf": token.group(1)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    for headers, data in (({}, {}), ({"X-CSRF-Token": "forged"}, {"csrf": "forged"})):
        response = client.request(
            method, _url(path), data=data, headers=headers, follow_redirects=False
        )
        assert response.status_code == 403, response.text[:300]
        assert "This form was refused" in response.text
