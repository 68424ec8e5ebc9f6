"""Every web page route, walked: none answers without a session, and none that changes
anything accepts a request without the session's CSRF token (issue 5: security by default).

The walk reads the routes off the app, so a page added later is covered without editing
this file.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.app import create_app
from gatherly.core.config import Settings
from tests import factories as f
from tests.routing import api_route_pairs
from tests.web.conftest import client_sign_in, with_password

OPEN = {
    ("GET", "/signin"),  # the sign-in form itself
    ("POST", "/signin"),
    # A recipient's pages, reached from an email by its signed token (web/recipients.py;
    # tests/api/test_email_tracking.py): no account, and RFC 8058's one-click POST
    # carries no CSRF token.
    ("GET", "/email/u/{token}"),
    ("POST", "/email/u/{token}"),
    ("GET", "/email/s/{token}"),
    ("POST", "/email/s/{token}"),
    ("GET", "/email/o/{token}.gif"),
    ("GET", "/email/c/{token}"),
    ("GET", "/email/preview/{kind}"),
    # Marketing pages and forms for anyone (web/public_forms.py; tests/api/test_forms.py):
    # the signed form token, the honeypot and the rate limits stand in for CSRF.
    ("GET", "/p/{slug}"),
    ("GET", "/f/{form_id}"),
    ("POST", "/f/{form_id}"),
    # Microsoft Graph's change notifications (teams/notifications.py;
    # tests/teams/test_notifications.py): each item's clientState authenticates it.
    ("POST", "/hooks/graph"),
    ("POST", "/hooks/graph/lifecycle"),
}
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
# Liveness and readiness (tests/test_readyz.py): for probes, JSON, no session. Prometheus's
# /metrics likewise, behind its own token (tests/test_metrics.py).
HEALTH = {"/healthz", "/readyz", "/metrics"}


def _web_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    found = []
    for route, path in api_route_pairs(app):
        if path.startswith("/api/") or path in HEALTH:
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
    # The CSV exports (issue 12 F4) are pages like the others: no session, no file.
    assert {"/segments/{segment_id}/members.csv", "/lists/{list_id}/members.csv"} <= paths
    # The journey designer's forms (issue 16) are changes like the others.
    assert {"/journeys/{journey_id}/steps", "/journeys/{journey_id}/audience"} <= paths
    # Duplicates (issue B8): the search, the merge, the import and the rules are changes too.
    changes = {path for method, path in ROUTES if method == "POST"}
    assert {
        "/duplicates",
        "/duplicates/merge",
        "/contacts/new",
        "/contacts/import",
        "/leads/import",
        "/admin/duplicate-rules",
        "/admin/duplicate-rules/{rule_id}/published",
        "/admin/duplicate-rules/{rule_id}/delete",
    } <= changes
    assert "/duplicates/jobs/{job_id}" in paths
    # Forms and pages: the builder, its preview, the embed key, publishing, deleting.
    assert {
        "/forms/new",
        "/forms/preview",
        "/forms/{form_id}",
        "/forms/{form_id}/embed-key",
        "/forms/{form_id}/delete",
        "/pages/new",
        "/pages/{page_id}",
        "/pages/{page_id}/state",
        "/pages/{page_id}/delete",
    } <= changes
    assert {
        "/forms",
        "/pages",
        "/forms/{form_id}/submissions",
        "/forms/submissions/{submission_id}",
    } <= paths
    # LinkedIn (issue B12): a profile's sources, reading now, disconnecting, the rules.
    assert {
        "/linkedin/profiles/{profile_id}/sources/{source_id}",
        "/linkedin/profiles/{profile_id}/poll",
        "/linkedin/profiles/{profile_id}/disconnect",
        "/admin/linkedin-rules",
        "/admin/linkedin-rules/{rule_id}/delete",
    } <= changes
    assert {
        "/linkedin",
        "/linkedin/connect",
        "/linkedin/callback",
        "/linkedin/profiles/{profile_id}",
        "/linkedin/leads/{lead_id}",
    } <= paths
    # Lead scoring (issue 18): a model's editor, state, rescore, owner and deletion.
    assert {
        "/scoring",
        "/scoring/{model_id}/edit",
        "/scoring/{model_id}/state",
        "/scoring/{model_id}/rescore",
        "/scoring/{model_id}/owner",
        "/scoring/{model_id}/delete",
    } <= changes
    assert {
        "/scoring/{model_id}",
        "/scoring/{model_id}/scores.csv",
        "/scoring/scores/{score_id}",
    } <= paths
    # Microsoft Teams: Check now (the panel) and Check again (My webinars) ask Graph now.
    assert {
        "/integrations/teams/organizers/{organizer_id}/check",
        "/webinars/organizers/{organizer_id}/check",
    } <= changes
    # Reports and dashboards (issue 18): the builder, copies, pins, edits and deletions.
    assert {
        "/reports/new",
        "/reports/{report_id}/edit",
        "/reports/{report_id}/pin",
        "/reports/{report_id}/delete",
        "/reports/builtin/{key}/copy",
        "/reports/builtin/{key}/pin",
        "/dashboards",
        "/dashboards/{dashboard_id}/edit",
        "/dashboards/{dashboard_id}/delete",
    } <= changes
    assert {
        "/reports",
        "/reports/{report_id}",
        "/reports/{report_id}/report.csv",
        "/reports/builtin/{key}",
        "/reports/builtin/{key}/report.csv",
        "/dashboards/{dashboard_id}",
    } <= paths


def test_no_page_answers_without_a_session(client: TestClient) -> None:
    wrong = {}
    for method, path in ROUTES:
        response = client.request(method, _url(path), follow_redirects=False)
        if response.status_code != 303 or not response.headers["location"].startswith("/signin"):
            wrong[f"{method} {path}"] = response.status_code
    assert not wrong, f"answered without a session: {wrong}"


def test_no_change_is_accepted_without_the_csrf_token(client: TestClient, db: Session) -> None:
    with_password(db, f.user(db, "root_admin", None, "System Administrator"))
    db.commit()
    client_sign_in(client, "root_admin")
    changes = [(m, p) for m, p in ROUTES if m in CHANGES]
    assert len(changes) >= 30  # the walk sees the forms of every area
    wrong = {}
    for method, path in changes:
        for headers, data in (({}, {}), ({"X-CSRF-Token": "forged"}, {"csrf": "forged"})):
            response = client.request(
                method, _url(path), data=data, headers=headers, follow_redirects=False
            )
            if response.status_code != 403 or "This form was refused" not in response.text:
                wrong[f"{method} {path} {headers}"] = response.status_code
    assert not wrong, f"accepted without the session's CSRF token: {wrong}"


def test_every_page_says_a_malformed_address_in_plain_words(
    client: TestClient, db: Session
) -> None:
    """No validator jargon on a page: each route with an id in its path, given "abc"."""
    with_password(db, f.user(db, "gustav", f.bu(db, "Germany"), "Marketer"))
    db.commit()
    client_sign_in(client, "gustav")
    jargon = {}
    walked = []
    for method, path in ROUTES:
        if method != "GET" or not re.search(r"\{\w*id\}", path) or path.startswith("/admin/"):
            continue
        walked.append(path)
        response = client.get(
            re.sub(r"\{[^}]+\}", "abc", path, count=1).replace("{", "").replace("}", "")
        )
        said = re.search(r"<main.*</main>", response.text, re.S)
        text = said.group(0) if said else response.text
        if (
            response.status_code != 422
            or "Input should" in text
            or "must be a whole number" not in text
        ):
            jargon[path] = (response.status_code, re.sub(r"<[^>]+>|\s+", " ", text)[:300])
    assert not jargon, jargon
    assert {"/events/{event_id}", "/contacts/{contact_id}", "/segments/{segment_id}"} <= set(walked)


def test_a_refusal_names_what_in_words_not_codes(client: TestClient, db: Session) -> None:
    with_password(db, f.user(db, "gustav", f.bu(db, "Germany"), "Marketer"))
    db.commit()
    client_sign_in(client, "gustav")
    refused = client.get("/integrations/teams")
    assert refused.status_code == 403
    assert "Microsoft Teams integration" in refused.text
    for code in ("teams_integration", "privilege", "organization level"):
        assert code not in refused.text, code
