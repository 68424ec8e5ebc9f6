"""Admin pages (issue 5): the BU tree, users, teams, roles, feature switches and "explain
access", in a real browser for the flows and with TestClient for the many access cases.

The admin pages mirror the REST routes' checks: reading needs read on the record type
(every built-in role has it), changing needs the System Administrator role; a page shows
no change form to a viewer whose POST would be refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.core import audit
from gatherly.core.audit import AuditEntry
from gatherly.org import service as org
from tests import factories as f
from tests.web.conftest import (
    PASSWORD,
    Live,
    client_sign_in,
    no_horizontal_scroll,
    post_sign_in,
    shot,
    sign_in,
    with_password,
)


@dataclass(frozen=True)
class Org:
    """Ids of the organisation every test here starts from."""

    root: int
    root_user: int
    germany: int
    france: int
    empty: int
    gustav: int
    francois: int
    team: int
    germany_team: int
    admin_role: int
    marketer_role: int
    assistant_role: int
    contact_de: int
    contact_fr: int


@pytest.fixture
def o(db: Session) -> Org:
    """Root admin ``root``; Marketers gustav (Germany) and francois (France), each owning a
    contact; an owner team Launch crew (gustav, role Marketing Assistant); an empty BU."""
    germany, france = f.bu(db, "Germany"), f.bu(db, "France")
    empty = f.bu(db, "Empty", germany)
    root_user = with_password(db, f.user(db, "root", None, "System Administrator"))
    gustav = with_password(db, f.user(db, "gustav", germany, "Marketer"))
    francois = with_password(db, f.user(db, "francois", france, "Marketer"))
    team = f.team(db, "Launch crew", germany, gustav, roles=("Marketing Assistant",))
    role = {r.name: r.id for r in org.list_roles(db=db)}
    ids = Org(
        root=org.get_root(db=db).id,
        root_user=root_user.id,
        germany=germany.id,
        france=france.id,
        empty=empty.id,
        gustav=gustav.id,
        francois=francois.id,
        team=team.id,
        germany_team=org.default_team(db=db, bu_id=germany.id).id,
        admin_role=role["System Administrator"],
        marketer_role=role["Marketer"],
        assistant_role=role["Marketing Assistant"],
        contact_de=f.contact(db, gustav, email="anna@example.de").id,
        contact_fr=f.contact(db, francois, email="brigitte@example.fr").id,
    )
    db.commit()
    return ids


def _state(db: Session) -> tuple[Any, ...]:
    """Everything an admin page can change, read fresh from the database."""
    db.rollback()
    users, _total = org.list_users(db=db)
    teams = org.list_teams(db=db)
    return (
        sorted((b.name, b.parent_id) for b in org.list_bus(db=db)),
        sorted((u.username, u.business_unit_id, u.disabled) for u in users),
        org.role_names_by_user(db=db, user_ids={u.id for u in users}),
        {t.name: [u.username for u in org.team_members(db=db, team_id=t.id)] for t in teams},
        {t.name: [r.name for r in org.roles_of_team(db=db, team_id=t.id)] for t in teams},
        [(sw.name, sw.enabled) for sw in org.features(db=db)],
    )


def _changes(o: Org) -> list[tuple[str, dict[str, str]]]:
    """One valid request for every POST route, in an order an admin can run them all."""
    return [
        ("/admin/business-units", {"name": "Spain", "parent_id": str(o.root)}),
        ("/admin/business-units/update", {"bu_id": str(o.france), "name": "Gaul"}),
        (f"/admin/business-units/{o.empty}/delete", {}),
        (
            "/admin/users",
            {"username": "newbie", "password": "long enough", "business_unit_id": str(o.france)},
        ),
        (f"/admin/users/{o.gustav}/disabled", {"disabled": "true"}),
        (f"/admin/users/{o.gustav}/move", {"business_unit_id": str(o.france)}),
        (f"/admin/users/{o.gustav}/roles", {"role_id": str(o.admin_role)}),
        (f"/admin/users/{o.gustav}/roles/{o.marketer_role}/delete", {}),
        (f"/admin/teams/{o.team}/members", {"username": "francois"}),
        (f"/admin/teams/{o.team}/members/{o.gustav}/delete", {}),
        (f"/admin/teams/{o.team}/roles", {"role_id": str(o.marketer_role)}),
        (f"/admin/teams/{o.team}/roles/{o.assistant_role}/delete", {}),
        ("/admin/settings/bu_scoping", {"enabled": "true"}),
    ]


CHANGE_BUTTONS = re.compile("Create|Delete|Save|Disable|Enable|Move|Assign|Remove|Add|Turn")
PAGES = [
    "/admin",
    "/admin/business-units",
    "/admin/users",
    "/admin/users/1",
    "/admin/teams",
    "/admin/teams/1",
    "/admin/roles",
    "/admin/roles/1",
    "/admin/settings",
    "/admin/explain",
]


# ---------------------------------------------------------------- sessions and CSRF


def test_every_page_sends_a_visitor_without_a_session_toclient_sign_in(client: TestClient) -> None:
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/signin?next="), path


def test_every_change_sends_a_visitor_without_a_session_toclient_sign_in(
    client: TestClient, db: Session, o: Org
) -> None:
    before = _state(db)
    for url, data in _changes(o):
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/signin"), url
    assert _state(db) == before


def test_an_admin_makes_every_change_and_each_one_shows(
    client: TestClient, db: Session, o: Org
) -> None:
    csrf = client_sign_in(client, "root")
    state = _state(db)
    for url, data in _changes(o):
        response = client.post(url, data={**data, "csrf": csrf}, follow_redirects=False)
        assert response.status_code == 303, (url, response.text[:500])
        changed = _state(db)
        assert changed != state, url
        state = changed
    bus, users, roles, members, team_roles, features = state
    assert ("Gaul", o.root) in bus
    assert ("Spain", o.root) in bus
    assert "Empty" not in {name for name, _ in bus}
    assert ("gustav", o.france, True) in users
    assert ("newbie", o.france, False) in users
    assert roles[o.gustav] == ["System Administrator"]
    assert members["Launch crew"] == ["francois"]
    assert team_roles["Launch crew"] == ["Marketer"]
    assert ("bu_scoping", True) in features


def test_changes_without_the_csrf_token_are_refused_and_change_nothing(
    client: TestClient, db: Session, o: Org
) -> None:
    client_sign_in(client, "root")
    before = _state(db)
    for url, data in _changes(o):
        for forged in ({}, {"csrf": "forged"}):
            response = client.post(url, data={**data, **forged}, follow_redirects=False)
            assert response.status_code == 403, url
            assert "This form was refused" in response.text
    assert _state(db) == before


# ---------------------------------------------------------------- who may read and change


def test_a_marketer_reads_the_admin_pages_without_change_forms_and_may_not_change(
    client: TestClient, db: Session, o: Org
) -> None:
    csrf = client_sign_in(client, "gustav")
    pages = {
        "/admin/business-units": ("Germany", "Empty"),
        "/admin/users": ("gustav", "francois"),
        f"/admin/users/{o.gustav}": ("Marketer", "Launch crew"),
        f"/admin/teams/{o.team}": ("gustav", "Marketing Assistant"),
        "/admin/roles": ("Marketing Manager",),
        "/admin/settings": ("Business unit scoping",),
    }
    for url, shown in pages.items():
        text = client.get(url).text
        for name in shown:
            assert name in text, (url, name)
        assert '<form method="post" action="/admin' not in text, url  # no change form
    before = _state(db)
    for url, data in _changes(o):
        response = client.post(url, data={**data, "csrf": csrf}, follow_redirects=False)
        assert response.status_code == 403, (url, response.text[:300])
        assert "Not allowed" in response.text
    assert _state(db) == before


def test_an_administrator_is_not_offered_to_disable_their_own_account(
    client: TestClient, o: Org
) -> None:
    client_sign_in(client, "root")
    own = client.get(f"/admin/users/{o.root_user}").text
    assert "This is your own account" in own
    assert f'action="/admin/users/{o.root_user}/disabled"' not in own
    other = client.get(f"/admin/users/{o.gustav}").text
    assert f'action="/admin/users/{o.gustav}/disabled"' in other


def test_without_read_privileges_the_pages_are_refused_and_name_nothing(
    client: TestClient, db: Session, o: Org
) -> None:
    reader = f.role(db, "Contact reader", Level.BUSINESS_UNIT)  # contacts only
    with_password(db, f.user(db, "nobody", None, reader))
    db.commit()
    client_sign_in(client, "nobody")
    urls = [
        "/admin",
        "/admin/business-units",
        "/admin/users",
        f"/admin/users/{o.gustav}",
        "/admin/teams",
        f"/admin/teams/{o.team}",
        "/admin/roles",
        f"/admin/roles/{o.marketer_role}",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        for name in ("Germany", "gustav", "Launch crew", "Marketing Manager"):
            assert name not in response.text, (url, name)
    settings = client.get("/admin/settings")
    assert settings.status_code == 200  # which switches are on is for anyone signed in
    assert "Turn on" not in settings.text
    assert "audit" not in settings.text.lower()


def test_a_user_reader_sees_users_but_no_bu_names_roles_or_bu_counts(
    client: TestClient, db: Session, o: Org
) -> None:
    reader = f.role(db, "User reader", Level.ORGANIZATION, record_type="user")
    with_password(db, f.user(db, "ursula", None, reader))
    db.commit()
    client_sign_in(client, "ursula")
    users = client.get("/admin/users")
    assert users.status_code == 200
    assert "gustav" in users.text
    assert "francois" in users.text
    for hidden in ("Germany", "France", "Marketer"):
        assert hidden not in users.text, hidden
    assert f"BU {o.germany}" in users.text
    overview = client.get("/admin")
    assert overview.status_code == 200
    assert re.search(r'class="value">\d+</span> users', overview.text)
    for hidden in ("business units</li>", "teams</li>", "security roles</li>"):
        assert hidden not in overview.text, hidden
    assert client.get("/admin/business-units").status_code == 403
    assert client.get(f"/admin/teams/{o.team}").status_code == 403


def test_the_overview_counts_what_is_there(client: TestClient, db: Session, o: Org) -> None:
    client_sign_in(client, "root")
    text = client.get("/admin").text
    # Organization, Germany, France, Empty; root, gustav, francois; 4 default teams + Launch crew.
    assert '<span class="value">4</span> business units' in text
    assert '<span class="value">3</span> users' in text
    assert '<span class="value">5</span> teams' in text
    assert '<span class="value">5</span> security roles' in text


@pytest.mark.parametrize(
    "url",
    [
        "/admin/users/999999",
        "/admin/teams/999999",
        "/admin/roles/999999",
    ],
)
def test_a_missing_record_is_a_404_page(client: TestClient, db: Session, o: Org, url: str) -> None:
    client_sign_in(client, "root")
    response = client.get(url)
    assert response.status_code == 404
    assert "not found" in response.text


def test_changes_to_a_missing_record_or_feature_are_404(
    client: TestClient, db: Session, o: Org
) -> None:
    csrf = client_sign_in(client, "root")
    before = _state(db)
    for url, data in [
        ("/admin/business-units/999999/delete", {}),
        ("/admin/users/999999/disabled", {"disabled": "true"}),
        ("/admin/teams/999999/members", {"username": "gustav"}),
        ("/admin/settings/no_such_switch", {"enabled": "true"}),
    ]:
        response = client.post(url, data={**data, "csrf": csrf})
        assert response.status_code == 404, url
    assert _state(db) == before


# ---------------------------------------------------------------- bad input, inline


def _bad_inputs(o: Org) -> list[tuple[str, dict[str, str], int, str, str]]:
    """(url, form, status, where the message is, words of the message)."""
    return [
        ("/admin/business-units", {"parent_id": str(o.root)}, 422, "create-name", "required"),
        (
            "/admin/business-units",
            {"name": "france", "parent_id": str(o.root)},
            409,
            "create-name",
            "already exists",
        ),
        (
            "/admin/business-units",
            {"name": "Spain", "parent_id": "999999"},
            422,
            "create-parent_id",
            "business unit 999999 not found",
        ),
        (
            "/admin/business-units/update",
            {"bu_id": str(o.germany), "parent_id": str(o.empty)},
            422,
            "update-parent_id",
            "cannot be moved under itself or one of its descendants",
        ),
        (
            "/admin/business-units/update",
            {"bu_id": str(o.root), "parent_id": str(o.germany)},
            422,
            "update-parent_id",
            "the root business unit cannot be moved",
        ),
        ("/admin/business-units/update", {"bu_id": str(o.france)}, 422, "update-name", "enter"),
        (
            f"/admin/business-units/{o.germany}/delete",
            {},
            409,
            f"delete-{o.germany}",
            "still has child business units, users, teams",
        ),
        (
            "/admin/users",
            {"username": "a b", "password": "long enough"},
            422,
            "create-username",
            "only letters",
        ),
        (
            "/admin/users",
            {"username": "GUSTAV", "password": "long enough"},
            409,
            "create-username",
            "already exists",
        ),
        ("/admin/users", {"username": "neu", "password": "short"}, 422, "create-password", "8"),
        (
            "/admin/users",
            {"username": "neu", "email": "not an address"},
            422,
            "create-email",
            "email",
        ),
        (
            "/admin/users",
            {"username": "neu", "business_unit_id": "999999"},
            422,
            "create-business_unit_id",
            "not found",
        ),
        (
            f"/admin/users/{o.gustav}/move",
            {"business_unit_id": "999999"},
            422,
            "move-business_unit_id",
            "not found",
        ),
        (f"/admin/users/{o.gustav}/disabled", {"disabled": "maybe"}, 422, "disabled", "choose"),
        (f"/admin/users/{o.root_user}/disabled", {"disabled": "true"}, 409, "disabled", "own"),
        (
            f"/admin/users/{o.gustav}/roles",
            {"role_id": "999999"},
            422,
            "assign-role_id",
            "not found",
        ),
        (
            f"/admin/users/{o.gustav}/roles",
            {"role_id": "x"},
            422,
            "assign-role_id",
            "this field must be a whole number",
        ),
        (
            f"/admin/users/{o.gustav}/roles/{o.admin_role}/delete",
            {},
            422,
            "assign-role_id",
            "not assigned",
        ),
        (
            f"/admin/teams/{o.team}/members",
            {"username": "ghost"},
            422,
            "members-username",
            "'ghost' not found",
        ),
        (
            f"/admin/teams/{o.germany_team}/members",
            {"username": "francois"},
            409,
            "members",
            "is a default team",
        ),
        (
            f"/admin/teams/{o.germany_team}/members/{o.gustav}/delete",
            {},
            409,
            "members",
            "is a default team",
        ),
        ("/admin/settings/bu_scoping", {"enabled": "yes"}, 422, "feature-bu_scoping", "choose"),
    ]


def test_bad_input_is_said_next_to_the_field_and_changes_nothing(
    client: TestClient, db: Session, o: Org
) -> None:
    csrf = client_sign_in(client, "root")
    before = _state(db)
    for url, data, status, where, words in _bad_inputs(o):
        response = client.post(url, data={**data, "csrf": csrf})
        assert response.status_code == status, (url, data, response.text[:300])
        message = re.search(rf'id="{where}-error">([^<]*)</p>', response.text)
        assert message, (url, data, where)
        assert words in message.group(1).replace("&#39;", "'"), (url, message.group(1))
        if "-" in where and not where.startswith("delete-") and not where.startswith("feature-"):
            # A field's message is tied to the field for screen readers.
            assert f'aria-invalid="true" aria-describedby="{where}-error"' in response.text
        assert _state(db) == before, (url, data)


def test_a_refused_new_user_keeps_what_was_typed_except_the_password(
    client: TestClient, db: Session, o: Org
) -> None:
    csrf = client_sign_in(client, "root")
    response = client.post(
        "/admin/users",
        data={
            "csrf": csrf,
            "username": "gustav",
            "full_name": "Gustav Zwei",
            "email": "g2@example.de",
            "business_unit_id": str(o.france),
            "password": "long enough",
        },
    )
    assert response.status_code == 409
    assert 'value="Gustav Zwei"' in response.text
    assert 'value="g2@example.de"' in response.text
    assert f'<option value="{o.france}" selected>France</option>' in response.text
    assert "long enough" not in response.text


# ---------------------------------------------------------------- explain access


def _explain(client: TestClient, **params: str) -> Any:
    return client.get("/admin/explain", params=params)


def test_explain_input_errors_are_said_next_to_the_field(
    client: TestClient, db: Session, o: Org
) -> None:
    client_sign_in(client, "root")
    cases = [
        ({"username": "ghost", "record_type": "contact", "record_id": "1"}, "username", 422),
        ({"record_type": "widget"}, "record_type", 422),
        ({"record_type": "contact"}, "record_id", 422),
        ({"record_type": "contact", "record_id": "abc"}, "record_id", 422),
        ({"record_type": "contact", "record_id": "²"}, "record_id", 422),
        ({"record_type": "contact", "record_id": "99999999999999999999"}, "record_id", 422),
        ({"record_type": "contact", "record_id": "999999"}, "record_id", 422),
        ({"record_type": "contact", "record_id": "1", "privilege": "fly"}, "privilege", 422),
    ]
    for params, field, status in cases:
        response = _explain(client, **params)
        assert response.status_code == status, params
        assert f'aria-invalid="true" aria-describedby="explain-{field}-error"' in response.text
        assert 'id="answer"' not in response.text


def test_explain_does_not_reveal_records_or_users_the_explainer_may_not_read(
    client: TestClient, db: Session, o: Org
) -> None:
    client_sign_in(client, "gustav")
    # francois's contact in France is out of gustav's reach: it looks like a missing one.
    hidden = _explain(client, record_type="contact", record_id=str(o.contact_fr))
    missing = _explain(client, record_type="contact", record_id="999999")
    assert hidden.status_code == missing.status_code == 422
    assert f"contact {o.contact_fr} not found" in hidden.text
    assert "France" not in hidden.text
    assert "francois" not in hidden.text
    # Someone else's access needs write on users, checked before the name is looked up.
    for name in ("francois", "ghost"):
        other = _explain(client, username=name, record_type="contact", record_id=str(o.contact_de))
        assert other.status_code == 403
        assert "you may not change users: your security roles do not allow it" in other.text
    own = _explain(client, record_type="contact", record_id=str(o.contact_de), privilege="write")
    assert own.status_code == 200
    assert "Granted" in own.text


# ---------------------------------------------------------------- in the browser


def test_an_admin_creates_a_bu_and_a_user_and_gives_them_the_marketer_role(
    page: Page, db: Session, o: Org, live: Live
) -> None:
    sign_in(page, "root", next="/admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_be_visible()
    shot(page, "admin", live)

    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Business units"
    ).click()
    page.get_by_label("Name", exact=True).fill("Austria")
    page.get_by_label("Parent", exact=True).select_option(label="Germany")
    page.get_by_role("button", name="Create business unit").click()
    austria = page.locator(f"#bu-{o.germany} > ul > li").filter(has_text="Austria")
    expect(austria.locator(".node")).to_contain_text("0 users")
    expect(page.locator(f"#bu-{o.germany} > .node")).to_contain_text("1 user")
    shot(page, "admin-bu-tree", live)

    page.goto("/admin/users")
    page.get_by_label("Username").fill("anton")
    page.get_by_label("Full name").fill("Anton Huber")
    page.get_by_label("Email").fill("anton@example.at")
    page.get_by_label("Business unit").select_option(label="Austria")
    page.get_by_label("Password").fill("anton's password")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("User anton")
    expect(page.locator("dl.props")).to_contain_text("Austria")
    page.get_by_label("Role to assign").select_option(label="Marketer")
    page.get_by_role("button", name="Assign role").click()
    roles = page.get_by_role("region", name="Security roles")
    expect(roles.get_by_role("link", name="Marketer")).to_be_visible()
    expect(page.get_by_role("region", name="Team memberships")).to_contain_text("Austria")
    shot(page, "admin-user", live)

    page.goto("/admin/users?q=anton")
    row = page.get_by_role("row", name=re.compile("anton"))
    expect(row).to_contain_text("Anton Huber")
    expect(row).to_contain_text("Austria")
    expect(row).to_contain_text("Marketer")
    expect(page.get_by_text("1 user match")).to_be_visible()
    page.goto("/admin/users")
    shot(page, "admin-users", live)

    # The new user can sign in and works as a Marketer in Austria.
    db.rollback()
    anton = org.get_user_by_username(db=db, username="anton")
    assert [r.name for r in org.roles_of_user(db=db, user_id=anton.id)] == ["Marketer"]
    assert org.verify_password(db=db, username="anton", password="anton's password").id == anton.id


def test_deleting_a_bu_with_users_is_refused_inline_and_an_empty_one_goes(
    page: Page, db: Session, o: Org
) -> None:
    sign_in(page, "root", next="/admin/business-units")
    page.get_by_role("button", name="Delete France").click()
    alert = page.locator(f"#delete-{o.france}-error")
    expect(alert).to_contain_text("business unit 'France' still has users")
    expect(page.locator("ul.tree")).to_contain_text("France")
    page.get_by_role("button", name="Delete Empty").click()
    expect(page.get_by_role("button", name="Delete Empty")).to_have_count(0)
    expect(page.locator("ul.tree")).not_to_contain_text("Empty")
    # Rename and move, from the same page.
    page.get_by_label("Business unit", exact=True).select_option(label="France")
    page.get_by_label("New parent").select_option(label="Germany")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(f"#bu-{o.germany} > ul > li#bu-{o.france}")).to_contain_text("France")


def test_an_admin_switches_bu_scoping_on_and_sees_the_audit_entry(
    page: Page, db: Session, o: Org, live: Live
) -> None:
    sign_in(page, "root", next="/admin/settings")
    feature = page.locator(
        "li", has=page.get_by_role("heading", name=re.compile("Business unit scoping"))
    )
    expect(feature).to_contain_text("Off")
    expect(page.get_by_text("Nothing has been audited yet.")).to_be_visible()
    feature.get_by_role("button", name="Turn on").click()
    expect(feature).to_contain_text("On")
    expect(feature.get_by_role("button", name="Turn off")).to_be_visible()
    audit_rows = page.get_by_role("region", name="Recent audit entries").get_by_role("row")
    expect(audit_rows).to_have_count(2)  # the header and the one entry
    expect(audit_rows.nth(1)).to_contain_text("root")
    expect(audit_rows.nth(1)).to_contain_text("feature.set")
    expect(audit_rows.nth(1)).to_contain_text("bu_scoping")
    expect(audit_rows.nth(1)).to_contain_text("enabled: no → yes")
    shot(page, "admin-settings", live)
    db.rollback()
    assert org.feature_enabled(db=db, name=org.BU_SCOPING)
    assert [e.target_id for e in audit.entries(db, action="feature.")] == ["bu_scoping"]


def test_explain_access_says_why_a_marketer_is_denied_or_granted(
    page: Page, db: Session, o: Org, live: Live
) -> None:
    sign_in(page, "root", next="/admin/explain")
    page.get_by_label("User (username)").fill("gustav")
    page.get_by_label("Record type").select_option("contact")
    page.get_by_label("Record id").fill(str(o.contact_fr))
    page.get_by_label("Privilege").select_option("read")
    page.get_by_role("button", name="Explain").click()
    answer = page.locator("#answer")
    expect(answer.locator("#answer-heading")).to_contain_text("Denied")
    expect(answer.locator(".summary")).to_contain_text("no path grants it")
    expect(answer.locator(".summary")).to_contain_text("record's BU 'France'")
    expect(answer.locator(".summary")).to_contain_text("is not that BU")
    expect(answer.locator(".summary")).to_contain_text("owned by another user")

    page.get_by_label("Record id").fill(str(o.contact_de))
    page.get_by_role("button", name="Explain").click()
    expect(answer.locator("#answer-heading")).to_contain_text("Granted")
    expect(answer.locator(".summary")).to_contain_text("Granted through business unit level")
    expect(answer.locator(".summary")).to_contain_text("role 'Marketer'")
    expect(answer.locator(".summary")).to_contain_text("record's BU 'Germany'")
    granted = answer.get_by_role("row", name=re.compile("Business unit level"))
    expect(granted).to_contain_text("grants")
    expect(granted).to_contain_text("Marketer")
    shot(page, "admin-explain", live)


def test_teams_show_members_and_roles_and_default_teams_are_system_managed(
    page: Page, db: Session, o: Org, live: Live
) -> None:
    sign_in(page, "root", next="/admin/teams")
    row = page.get_by_role("row", name=re.compile("^Germany"))
    expect(row).to_contain_text("Default (system-managed)")
    expect(row.get_by_role("cell").nth(2)).to_have_text("1")
    shot(page, "admin-teams", live)

    page.get_by_role("link", name="Launch crew").click()
    page.get_by_label("Username to add").fill("francois")
    page.get_by_role("button", name="Add member").click()
    members = page.get_by_role("region", name=re.compile("Members"))
    expect(members.get_by_role("link", name="francois")).to_be_visible()
    page.get_by_role("button", name="Remove gustav").click()
    expect(members.get_by_role("link", name="gustav")).to_have_count(0)
    page.get_by_label("Role to assign").select_option(label="Marketer")
    page.get_by_role("button", name="Assign role").click()
    expect(
        page.get_by_role("region", name="Security roles").get_by_role("link", name="Marketer")
    ).to_be_visible()

    shot(page, "admin-team", live)
    page.goto(f"/admin/teams/{o.germany_team}")
    expect(page.locator("#default-note")).to_contain_text("members are always the users")
    expect(page.get_by_label("Username to add")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Remove "))).to_have_count(0)

    page.goto("/admin/roles")
    page.get_by_role("link", name="Marketer").click()
    contact = page.get_by_role("row", name=re.compile("^Contact"))
    expect(contact.get_by_role("cell")).to_have_count(8)
    expect(contact.get_by_role("cell").first).to_have_text("Business unit")
    users = page.get_by_role("row", name=re.compile("^User "))
    expect(users.get_by_role("cell").nth(1)).to_have_text("Organization")  # read
    expect(users.get_by_role("cell").nth(2)).to_have_text("None")  # write
    shot(page, "admin-role", live)
    page.goto("/admin/roles")
    shot(page, "admin-roles", live)


def test_a_marketer_sees_no_change_buttons_and_a_forged_post_is_refused(
    page: Page, db: Session, o: Org
) -> None:
    sign_in(page, "gustav", next="/admin/users")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_have_count(0)
    expect(page.get_by_role("cell", name="francois")).to_be_visible()
    for url in (
        "/admin/users",
        f"/admin/users/{o.gustav}",
        "/admin/business-units",
        f"/admin/teams/{o.team}",
        "/admin/settings",
    ):
        page.goto(url)
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.get_by_role("button", name=CHANGE_BUTTONS)).to_have_count(0)
    token = page.locator("form.signout input[name=csrf]").get_attribute("value")
    assert token
    refused = page.request.post(
        "/admin/business-units",
        form={"name": "Spain", "parent_id": str(o.root), "csrf": token},
    )
    assert refused.status == 403
    assert (
        "you may not create business units: your security roles do not allow it" in refused.text()
    )
    db.rollback()
    assert "Spain" not in {b.name for b in org.list_bus(db=db)}


def test_a_form_without_the_csrf_token_is_refused_in_the_browser(
    page: Page, db: Session, o: Org
) -> None:
    sign_in(page, "root", next="/admin/business-units")
    page.evaluate(
        "() => document.querySelectorAll('main input[name=csrf]').forEach(e => e.remove())"
    )
    page.get_by_role("button", name="Delete Empty").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form was refused")
    page.goto("/admin/business-units")
    expect(page.get_by_role("button", name="Delete Empty")).to_be_visible()


def test_the_admin_pages_fit_a_phone(phone: Page, db: Session, o: Org, live: Live) -> None:
    sign_in(phone, "root", next="/admin/users")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Users")
    no_horizontal_scroll(phone)
    shot(phone, "admin-users-phone", live)
    for url in [
        "/admin",
        "/admin/business-units",
        f"/admin/users/{o.gustav}",
        "/admin/teams",
        f"/admin/teams/{o.team}",
        "/admin/roles",
        f"/admin/roles/{o.marketer_role}",
        "/admin/settings",
        f"/admin/explain?username=gustav&record_type=contact&record_id={o.contact_de}",
    ]:
        phone.goto(url)
        no_horizontal_scroll(phone)


# ---------------------------------------------------------------- passwords


def _signs_in(client: TestClient, username: str, password: str) -> bool:
    return bool(post_sign_in(client, username, password).status_code == 303)


def test_a_user_changes_their_own_password_and_other_browsers_are_signed_out(
    client: TestClient, db: Session, o: Org
) -> None:
    app = client.app
    other = TestClient(app)
    client_sign_in(other, "gustav")  # a second browser, signed in with the old password
    csrf = client_sign_in(client, "gustav")
    form = {"csrf": csrf, "current_password": PASSWORD}
    refusals = [
        (
            {
                "current_password": "wrong-one",
                "new_password": "n3w-secret!",
                "confirm_password": "n3w-secret!",
            },
            "current_password",
            "That is not your current password.",
        ),
        (
            {"new_password": "n3w-secret!", "confirm_password": "n3w-secret?"},
            "confirm_password",
            "The two new passwords differ.",
        ),
        (
            {"new_password": "short", "confirm_password": "short"},
            "new_password",
            "A password needs at least 8 characters.",
        ),
    ]
    for data, field, said in refusals:
        refused = client.post("/account/password", data={**form, **data})
        assert refused.status_code == 422, data
        assert f'id="{field}-error" role="alert">{said}' in refused.text
    assert other.get("/", follow_redirects=False).status_code == 200  # nothing changed
    done = client.post(
        "/account/password",
        data={**form, "new_password": "n3w-secret!", "confirm_password": "n3w-secret!"},
    )
    assert done.status_code == 200
    assert "Your password is changed. 1 other signed-in browser was signed out." in done.text
    assert client.get("/", follow_redirects=False).status_code == 200  # this browser stays
    assert other.get("/", follow_redirects=False).status_code == 303  # the other does not
    assert not _signs_in(TestClient(app), "gustav", PASSWORD)
    assert _signs_in(TestClient(app), "gustav", "n3w-secret!")
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "user.password", AuditEntry.actor_name == "gustav"
        )
    ).one()
    assert entry.after == {"password_set": True}


def test_an_administrator_resets_a_password_and_a_marketer_may_not(
    client: TestClient, o: Org
) -> None:
    app = client.app
    victim = TestClient(app)
    client_sign_in(victim, "francois")
    reset = {"new_password": "reset-by-admin", "confirm_password": "reset-by-admin"}
    csrf = client_sign_in(client, "gustav")
    refused = client.post(f"/admin/users/{o.francois}/password", data={**reset, "csrf": csrf})
    assert refused.status_code == 403
    assert _signs_in(TestClient(app), "francois", PASSWORD)
    csrf = client_sign_in(client, "root")
    page = client.get(f"/admin/users/{o.francois}").text
    assert "Set a new password" in page
    differ = client.post(
        f"/admin/users/{o.francois}/password",
        data={"new_password": "reset-by-admin", "confirm_password": "other", "csrf": csrf},
    )
    assert differ.status_code == 422
    assert "the two new passwords differ" in differ.text
    done = client.post(
        f"/admin/users/{o.francois}/password", data={**reset, "csrf": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert victim.get("/", follow_redirects=False).status_code == 303  # signed out
    assert _signs_in(TestClient(app), "francois", "reset-by-admin")


def test_check_access_from_a_record_explains_it_with_its_name(client: TestClient, o: Org) -> None:
    client_sign_in(client, "gustav")
    contact_page = client.get(f"/contacts/{o.contact_de}").text
    link = re.search(r'<a href="(/admin/explain\?[^"]+)">Check access…</a>', contact_page)
    assert link is not None
    answer = client.get(link.group(1).replace("&amp;", "&")).text
    heading = re.search(r'<h2 id="answer-heading">(.*?)</h2>', answer, re.S)
    assert heading is not None
    said = " ".join(re.sub(r"<[^>]+>", " ", heading.group(1)).split())
    assert said == "Granted Read on the contact “anna@example.de” for gustav"
    assert f"contact {o.contact_de}" not in said  # named, not numbered
