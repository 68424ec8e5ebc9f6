"""Every API route authenticates: walked from the app's own route table, not a hand list."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

import gatherly.models
from gatherly.access.levels import Level
from gatherly.access.models import RecordShare
from gatherly.capture import duplicates
from gatherly.capture import forms as capture_forms
from gatherly.contact import matching
from gatherly.contact.schemas import OwnerRef
from gatherly.core.db import utcnow
from gatherly.email import audience as audiences
from gatherly.email import sends
from gatherly.email import service as email_service
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.jobs.queue import app_jobs
from gatherly.journey import service as journey_service
from gatherly.linkedin import service as linkedin_service
from gatherly.linkedin.models import LinkedInLead, LinkedInProfile, LinkedInSource
from gatherly.org import service as org_service
from gatherly.report import service as report_service
from gatherly.scoring import service as scoring_service
from gatherly.scoring.models import LeadScore
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.routing import api_route_pairs
from tests.smtp_sink import Sink, smtp_sink

WEBHOOK = "webhook-secret-for-the-route-walk"
DOC_PATHS = {f"{API}/openapi.json", f"{API}/docs", f"{API}/docs/oauth2-redirect"}
# Routes that need a connected Teams tenant (the Graph emulator) to succeed: their success
# paths are covered by tests/api/test_teams_api.py and test_events_api.py.
CONNECTOR = re.compile(rf"^{API}/(integrations/teams/|events/\{{event_id\}})")


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every APIRoute under /api/v1, included routers expanded."""
    found = set()
    for route, path in api_route_pairs(app):
        if not path.startswith(API) or path in DOC_PATHS:
            continue
        for method in route.methods or ():
            found.add((method, path))
    return sorted(found)


def test_the_route_walk_finds_every_documented_operation(client: TestClient) -> None:
    routes = api_routes(client.app)  # type: ignore[arg-type]
    documented = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
    }
    assert set(routes) == documented
    assert len(routes) >= 40
    for expected in [
        ("GET", f"{API}/me"),
        ("GET", f"{API}/contacts/count"),
        ("DELETE", f"{API}/leads/{{record_id}}/shares/{{share_id}}"),
        ("POST", f"{API}/me/tokens"),
        ("DELETE", f"{API}/admin/tokens/{{token_id}}"),
        ("GET", f"{API}/admin/audit"),
        ("GET", f"{API}/access/explain"),
        # The CSV exports (issue 12 F4): walked like every other route.
        ("GET", f"{API}/segments/{{segment_id}}/members.csv"),
        ("GET", f"{API}/lists/{{list_id}}/members.csv"),
    ]:
        assert expected in routes


def _snapshot(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    db.expire_all()
    return {
        table.name: sorted(tuple(map(repr, row)) for row in db.execute(select(table)).all())
        for table in gatherly.models.Base.metadata.sorted_tables
    }


@pytest.fixture
def sink(client: TestClient) -> Iterator[Sink]:
    """A real SMTP server the app sends to (test sends), and the bounce webhook open."""
    with smtp_sink() as server:
        settings = client.app.state.settings  # type: ignore[attr-defined]
        client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
            update={"smtp_url": SecretStr(server.url), "email_webhook_token": SecretStr(WEBHOOK)}
        )
        try:
            yield server
        finally:
            client.app.state.settings = settings  # type: ignore[attr-defined]


@pytest.fixture
def targets(db: Session, org: Org, client: TestClient, sink: Sink) -> dict[str, Any]:
    """Real ids for every path parameter and a valid body for every write route."""
    role_id = f.role(db, "Custom", Level.USER)
    admin_role = org_service.get_role_by_name(db=db, name="System Administrator").id
    victim = org.users["marketer"]
    token, _secret = org_service.create_token(db=db, user_id=victim.id, name="victim")
    # The admin's own spare token, for the routes that manage the caller's own tokens.
    spare, _secret = org_service.create_token(db=db, user_id=org.users["admin"].id, name="spare")
    org_service.assign_role(db=db, role_id=role_id, user_id=victim.id)
    org_service.assign_role(db=db, role_id=role_id, team_id=org.campaign.id)
    shares = {}
    for kind, rid in (("contact", org.contacts["marketer"]), ("lead", org.leads["marketer"])):
        row = RecordShare(
            record_type=kind, record_id=rid, principal_type="user", principal_id=victim.id, rights=1
        )
        db.add(row)
        db.flush()
        shares[kind] = row.id
    actor = f.principal(db, victim)
    mlist = segment_service.create_list(db=db, principal=actor, name="Targets")
    static = segment_service.create_segment(db=db, principal=actor, name="Picked", kind="static")
    org_service.set_password(db=db, user_id=org.users["admin"].id, password="admin-password")
    setting, message = email_targets(db, f.principal(db, org.users["admin"]))
    ready, send = send_targets(db, f.principal(db, org.users["admin"]), message, mlist.id, client)
    journeys = journey_targets(db, f.principal(db, org.users["admin"]), ready, mlist.id)
    admin_actor = f.principal(db, org.users["admin"])
    rule = matching.save_rule(
        db=db,
        principal=admin_actor,
        name="Walk rule",
        record_type="contact",
        conditions=[{"field": "last_name"}],
    )
    job = duplicates.start_job(db=db, principal=admin_actor, record_type="contact", queue=None)
    twins = [f.contact(db, org.users["admin"], email="twin@example.com").id for _ in range(2)]
    form, page, submission = form_targets(db, admin_actor, client)
    linkedin = linkedin_targets(db, org.users["admin"])
    scoring = scoring_targets(db, admin_actor)
    report = report_service.create_report(
        db=db, principal=admin_actor, name="Walk report", definition=WALK_REPORT
    )
    board = report_service.create_dashboard(
        db=db, principal=admin_actor, name="Walk board", items=[{"report": report.id}]
    )
    bounce = audiences.suppress(
        db=db, email="gone@example.com", reason="hard_bounce", source="smtp"
    )
    db.commit()
    ids = {
        "list_id": mlist.id,
        "segment_id": static.id,
        "name": "segment_totals",
        "bu_id": org.sales_eu.id,
        "user_id": victim.id,
        "team_id": org.campaign.id,
        "role_id": role_id,
        "token_id": token.id,
        "my_token_id": spare.id,
        "contact_id": org.contacts["marketer"],
        "event_id": 1,
        "organizer_id": 1,
        "webinar_id": 1,
        "run_id": 1,
        "recording_id": 1,
        "setting_id": setting,
        "message_id": message,
        "suppression_id": bounce.id,
        "send_id": send,
        "rule_id": rule.id,
        "form_id": form,
        "page_id": page,
        "submission_id": submission,
        **linkedin,
        **scoring,
        "report_id": report.id,
        "dashboard_id": board.id,
        "key": "webinar-performance",
        "job_id": job.id,
        **journeys,
    }
    bodies = {
        "/business-units": {"name": "Intruders", "parent_id": org.root.id},
        "/business-units/{bu_id}": {"parent_id": org.support.id},
        "/users": {"username": "intruder"},
        "/users/{user_id}": {"disabled": True},
        "/users/{user_id}/roles": {"role_id": admin_role},
        "/me/tokens": {"name": "stolen"},
        "/me/password": {"current_password": "admin-password", "new_password": "new-password"},
        "/me/time-zone": {"time_zone": "Europe/Berlin"},
        "/admin/token-policy": {"default_days": 30, "max_days": 365},
        "/teams": {"name": "Intruder team", "business_unit_id": org.root.id},
        "/teams/{team_id}": {"name": "Renamed"},
        "/teams/{team_id}/members": {"user_id": victim.id},
        "/teams/{team_id}/roles": {"role_id": admin_role},
        "/roles": {"name": "Intruder", "privileges": {"contact": {"read": "organization"}}},
        "/roles/{role_id}": {"privileges": {"contact": {"read": "organization"}}},
        "/contacts": {"last_name": "Intruder"},
        "/leads": {"last_name": "Intruder"},
        "/contacts/{record_id}": {"first_name": "Intruder"},
        "/leads/{record_id}": {"first_name": "Intruder"},
        "/contacts/{record_id}/assign": {"owner": {"type": "user", "id": victim.id}},
        "/leads/{record_id}/assign": {"owner": {"type": "user", "id": victim.id}},
        "/contacts/{record_id}/shares": {"principal_type": "organization", "rights": ["read"]},
        "/leads/{record_id}/shares": {"principal_type": "organization", "rights": ["read"]},
        "/lists": {"name": "Intruders"},
        "/lists/{list_id}": {"name": "Renamed"},
        "/lists/{list_id}/members": {"contact_ids": [org.contacts["marketer"]]},
        "/lists/{list_id}/members/remove": {"contact_ids": [org.contacts["marketer"]]},
        "/lists/{list_id}/import": {"csv": "email\nnobody@x.example\n"},
        "/segments": {"name": "Intruders", "criteria": {"contact": {"country": "DE"}}},
        "/segments/preview": {"criteria": {"contact": {"country": "DE"}}},
        "/segments/{segment_id}": {"name": "Renamed"},
        "/segments/{segment_id}/members": {"contact_ids": [org.contacts["marketer"]]},
        "/segments/{segment_id}/members/remove": {"contact_ids": [org.contacts["marketer"]]},
        "/admin/features/{name}": {"enabled": True},
        "/email/content-settings": {"name": "Intruder", "sender_email": "in@truder.example"},
        "/email/content-settings/{setting_id}": {"name": "Renamed"},
        "/email/content-settings/{setting_id}/default": {"default_for": "organization"},
        "/email/messages": {"name": "Intruder"},
        "/email/messages/{message_id}": {"name": "Renamed"},
        "/email/suppressions/{suppression_id}/lift": {"why": "mailbox restored"},
        "/email/sends": {"message_id": ready, "list_ids": [mlist.id]},
        "/email/messages/{message_id}/test": {"to": "in@truder.example"},
        "/email/webhook": {"events": [{"type": "bounce", "email": "gone@example.com"}]},
        "/journeys": {"name": "Intruder"},
        "/journeys/{journey_id}": {"name": "Renamed"},
        "/journeys/{journey_id}/state": {"state": "paused"},
        "/duplicates/rules": {
            "record_type": "lead",
            "name": "Intruder",
            "conditions": [{"field": "email"}],
        },
        "/duplicates/rules/{rule_id}": {"name": "Renamed"},
        "/duplicates/jobs": {"record_type": "contact"},
        "/forms": {"name": "Intruder", "fields": [{"key": "email", "label": "Email"}]},
        "/forms/{form_id}": {"name": "Renamed"},
        "/forms/{form_id}/state": {"state": "live"},
        "/pages": {"name": "Intruder", "slug": "intruder"},
        "/pages/{page_id}": {"title": "Renamed"},
        "/pages/{page_id}/state": {"state": "live"},
        "/linkedin/profiles/{profile_id}/sources/{source_id}": {"enabled": False},
        "/linkedin/assignment-rules": {
            "name": "Intruder",
            "owner": {"type": "user", "id": victim.id},
            "lead_type": "SPONSORED",
        },
        "/linkedin/assignment-rules/{rule_id}": {
            "name": "Renamed",
            "owner": {"type": "user", "id": victim.id},
            "lead_type": "EVENT",
        },
        "/reports": {"name": "Intruder", "definition": WALK_REPORT},
        "/reports/preview": {"definition": WALK_REPORT},
        "/reports/{report_id}": {"name": "Renamed"},
        "/dashboards": {"name": "Intruder"},
        "/dashboards/{dashboard_id}": {"name": "Renamed"},
        "/scoring/models": {"name": "Intruder"},
        "/scoring/models/{model_id}": {"name": "Renamed"},
        "/scoring/models/{model_id}/state": {"state": "live"},
        "/scoring/models/{model_id}/owner": {"type": "user", "id": victim.id},
        "/duplicates/merge": {
            "record_type": "contact",
            "master_id": twins[0],
            "duplicate_id": twins[1],
        },
    }
    return {"ids": ids, "bodies": bodies, "shares": shares, "org": org}


WALK_REPORT = {"source": "events", "group_by": ["month"], "measures": ["events", "attendees"]}


def scoring_targets(db: Session, admin: Any) -> dict[str, int]:
    """A live scoring model with its scores, owned by the administrator."""
    conditions = [{"name": "Any country", "points": 5, "contact": {"country": {"empty": False}}}]
    model = scoring_service.create_model(
        db=db, principal=admin, name="Walk model", conditions=conditions
    )
    scoring_service.set_state(db=db, principal=admin, model_id=model.id, state="live")
    scoring_service.rescore_model(db=db, principal=admin, model_id=model.id)
    score = db.scalar(select(LeadScore.id).where(LeadScore.model_id == model.id))
    assert score is not None
    return {"model_id": model.id, "score_id": score}


def linkedin_targets(db: Session, admin: Any) -> dict[str, int]:
    """A connected LinkedIn profile of the admin's with one source, and an assignment rule."""
    profile = LinkedInProfile(
        member_id="walk",
        name="Walk",
        owner_type="user",
        owner_id=admin.id,
        owning_bu_id=admin.business_unit_id,
        state="connected",
        access_token_encrypted="x",
    )
    db.add(profile)
    db.flush()
    source = LinkedInSource(
        profile_id=profile.id, owner_urn="urn:li:sponsoredAccount:1", kind="sponsoredAccount"
    )
    db.add(source)
    rule = linkedin_service.save_rule(
        db=db,
        principal=None,
        rule_in=linkedin_service.RuleIn(
            name="Walk", owner=OwnerRef(type="user", id=admin.id), lead_type="SPONSORED"
        ),
    )
    lead = LinkedInLead(
        response_id="walk-1",
        profile_id=profile.id,
        submitted_at=utcnow(),
        owner_type="user",
        owner_id=admin.id,
        owning_bu_id=admin.business_unit_id,
    )
    db.add(lead)
    db.flush()
    return {
        "profile_id": profile.id,
        "source_id": source.id,
        "linkedin_rule_id": rule.id,
        "lead_id": lead.id,
    }


def form_targets(db: Session, admin: Any, client: TestClient) -> tuple[int, int, int]:
    """A live form, a page showing it, and a submission sent through it."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    form = capture_forms.create_form(
        db=db,
        principal=admin,
        form_in={"name": "Walk", "fields": [{"key": "email", "label": "Email"}]},
    )
    capture_forms.set_form_state(db=db, principal=admin, form_id=form.id, state="live")
    page = capture_forms.create_page(
        db=db, principal=admin, page_in={"name": "Walk", "slug": "walk", "form_id": form.id}
    )
    sent = capture_forms.submit(
        db=db,
        settings=settings,
        form_id=form.id,
        raw={"email": "walk@example.com", "_token": capture_forms.form_token(settings, form)},
        address="127.0.0.1",
    )
    assert sent.submission is not None
    return form.id, page.id, sent.submission.id


def email_targets(db: Session, admin: Any) -> tuple[int, int]:
    """The organisation's default content setting and a message that may become ready."""
    setting = email_service.create_content_setting(
        db=db,
        principal=admin,
        setting_in=ContentSettingIn(
            name="Org", sender_email="news@org.example", postal_address="1 Main St"
        ),
    )
    email_service.set_default(
        db=db, principal=admin, setting_id=setting.id, default_for="organization"
    )
    message = email_service.create_message(
        db=db,
        principal=admin,
        message_in=MessageIn(
            name="Hello",
            subject="Hello {{ contact.first_name }}",
            html='<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        ),
    )
    return setting.id, message.id


def send_targets(
    db: Session, admin: Any, message_id: int, list_id: int, client: TestClient
) -> tuple[int, int]:
    """A ready copy of the message, and a send of another ready copy due tomorrow."""
    copies = []
    for _ in range(2):
        copy = email_service.copy_message(db=db, principal=admin, message_id=message_id)
        email_service.make_ready(
            db=db, principal=admin, message_id=copy.id, public_url="http://testserver"
        )
        copies.append(copy.id)
    send = sends.create_send(
        db=db,
        principal=admin,
        message_id=copies[1],
        list_ids=[list_id],
        scheduled_at=utcnow() + timedelta(days=1),
        queue=app_jobs(client.app),
    )
    return copies[0], send.id


def journey_targets(db: Session, admin: Any, message_id: int, list_id: int) -> dict[str, int]:
    """A draft journey, one ready to go live, and a live one."""
    plan = {
        "audience": {"lists": [list_id]},
        "start": "mail",
        "steps": {"mail": {"type": "send_email", "message_id": message_id}},
    }
    made = [
        journey_service.create_journey(db=db, principal=admin, name=name, definition=plan).id
        for name in ("Draft", "Ready", "Live")
    ]
    journey_service.go_live(db=db, principal=admin, journey_id=made[2])
    return {"journey_id": made[0], "ready_journey_id": made[1], "live_journey_id": made[2]}


def _url(template: str, targets: dict[str, Any]) -> str:
    org: Org = targets["org"]
    kind = "lead" if template.startswith(f"{API}/leads") else "contact"
    ids = {
        **targets["ids"],
        "record_id": org.leads["marketer"] if kind == "lead" else org.contacts["marketer"],
        "share_id": targets["shares"][kind],
    }
    if template.startswith(f"{API}/linkedin/assignment-rules/"):
        ids["rule_id"] = ids["linkedin_rule_id"]
    if template.startswith(f"{API}/me/tokens/"):
        ids["token_id"] = ids["my_token_id"]  # /me/tokens/{id} knows only the caller's own
    # One journey to take live, one live to pause; the draft takes the other routes.
    if template == f"{API}/journeys/{{journey_id}}/live":
        ids["journey_id"] = ids["ready_journey_id"]
    if template == f"{API}/journeys/{{journey_id}}/state":
        ids["journey_id"] = ids["live_journey_id"]

    def fill(match: re.Match[str]) -> str:
        return str(ids[match.group(1)])

    return re.sub(r"\{(\w+)\}", fill, template)


def _request(
    client: TestClient,
    method: str,
    template: str,
    targets: dict[str, Any],
    headers: dict[str, str],
) -> Any:
    url = _url(template, targets)
    params = {"record_type": "contact", "record_id": targets["org"].contacts["marketer"]}
    kwargs: dict[str, Any] = {"headers": headers}
    if template == f"{API}/access/explain":
        kwargs["params"] = params
    if template == f"{API}/journeys/{{journey_id}}/people":
        kwargs["params"] = {"status": "active"}
    if template == f"{API}/journeys/{{journey_id}}/explain":
        kwargs["params"] = {"contact_id": params["record_id"]}
    if template == f"{API}/segments/{{segment_id}}/explain":
        kwargs["params"] = {"contact_id": params["record_id"]}
    if template.startswith(f"{API}/email/audience"):
        kwargs["params"] = {"list_id": targets["ids"]["list_id"]}
    if template.startswith(f"{API}/email/insights"):
        kwargs["params"] = {"send_id": targets["ids"]["send_id"], "kind": "opened"}
    if template == f"{API}/email/messages/{{message_id}}/preview":
        kwargs["params"] = {"contact_id": params["record_id"]}
    if template in (f"{API}/contacts/import", f"{API}/leads/import"):
        kwargs["content"] = b"email\nwalked@example.com\n"
        kwargs["headers"] = {**headers, "Content-Type": "text/csv"}
    elif method in {"POST", "PATCH", "PUT"}:
        kwargs["json"] = targets["bodies"].get(template.removeprefix(API), {})
    if template.startswith(f"{API}/email/webhook") and headers == targets["org"].headers["admin"]:
        kwargs["headers"] = {"Authorization": f"Bearer {WEBHOOK}"}  # its own token, not a user's
    return client.request(method, url, **kwargs)


def test_the_teams_integration_and_owner_teams_have_paths_of_their_own(
    client: TestClient,
) -> None:
    """The Microsoft Teams connector lives under /integrations/teams; /teams is owner teams
    only, so no connector path depends on team ids being integers to be told apart."""
    paths = {path for _method, path in api_routes(client.app)}  # type: ignore[arg-type]
    connector = {p for p in paths if p.startswith(f"{API}/integrations/teams/")}
    assert {
        f"{API}/integrations/teams/connection",
        f"{API}/integrations/teams/sync",
        f"{API}/integrations/teams/sync-runs/{{run_id}}",
        f"{API}/integrations/teams/webinars",
    } <= connector
    owner_teams = {p for p in paths if p.startswith(f"{API}/teams")}
    assert owner_teams
    assert all(p == f"{API}/teams" or p.startswith(f"{API}/teams/{{team_id}}") for p in owner_teams)


def test_every_route_answers_401_without_a_valid_token(
    client: TestClient, db: Session, targets: dict[str, Any]
) -> None:
    org: Org = targets["org"]
    root = org.root
    # Two system administrators whose tokens would open every route: one token revoked,
    # the other user disabled.
    revoked_admin = f.user(db, "revoked_admin", root, "System Administrator")
    disabled_admin = f.user(db, "disabled_admin", root, "System Administrator")
    db.commit()
    revoked = f.token(db, revoked_admin)
    disabled = f.token(db, disabled_admin)
    for t in org_service.list_tokens(db=db, user_id=revoked_admin.id):
        org_service.revoke_token(db=db, user_id=revoked_admin.id, token_id=t.id)
    disabled_admin.disabled = True
    db.commit()

    routes = api_routes(client.app)  # type: ignore[arg-type]
    before = _snapshot(db)
    credentials = {
        "no token": {},
        "revoked token": revoked,
        "disabled user": disabled,
    }
    for method, template in routes:
        for label, headers in credentials.items():
            response = _request(client, method, template, targets, headers)
            error = assert_error(response, 401)
            assert error["code"] == "unauthenticated", (method, template, label)
            assert response.headers["www-authenticate"] == "Bearer", (method, template, label)
    # Not one of those requests changed anything (not even a token's last use).
    assert _snapshot(db) == before

    # The same requests with a working admin token succeed, so the 401s above were about
    # the token alone: the ids are real and the bodies valid. Reads first, then creates,
    # changes and deletes (deepest paths first); two deletes are refused for their data.
    admin = org.headers["admin"]
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 2, "DELETE": 3}
    in_use = {f"{API}/business-units/{{bu_id}}", f"{API}/teams/{{team_id}}"}
    for method, template in sorted(routes, key=lambda r: (order[r[0]], -len(r[1]), r[1])):
        if CONNECTOR.match(template):
            continue
        response = _request(client, method, template, targets, admin)
        refused = method == "DELETE" and template in in_use
        assert response.status_code == 409 if refused else response.status_code < 300, (
            method,
            template,
            response.text,
        )


def test_malformed_or_unknown_credentials_answer_401(client: TestClient) -> None:
    for authorization in (
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer gly_not-a-token",
        "gly_x",
    ):
        response = client.get(f"{API}/contacts", headers={"Authorization": authorization})
        assert assert_error(response, 401)["code"] == "unauthenticated", authorization
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_secret_with_another_scheme_is_refused(client: TestClient, org: Org) -> None:
    secret = org.headers["admin"]["Authorization"].removeprefix("Bearer ")
    assert client.get(f"{API}/me", headers=org.headers["admin"]).status_code == 200
    for header in (f"Basic {secret}", f"Token {secret}", secret):
        response = client.get(f"{API}/me", headers={"Authorization": header})
        assert_error(response, 401)


def test_the_api_docs_work_offline(client: TestClient) -> None:
    """Swagger UI's page loads its script and style from the app itself, never a CDN."""
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert f"{API}/docs/assets/swagger-ui-bundle.js" in assets
    assert f"{API}/docs/assets/swagger-ui.css" in assets
    assert not [a for a in assets if "//" in a], assets  # nothing from another host
    script = client.get(f"{API}/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000
    assert client.get(f"{API}/docs/assets/swagger-ui.css").status_code == 200
