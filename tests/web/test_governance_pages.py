"""Account › API tokens, Admin › API tokens, Admin › Audit trail and the token lifetime on
Admin › Settings (issue 12): TestClient for the access cases, Chromium for making a token
and seeing its secret once."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.core import audit
from gatherly.core.audit import AuditEntry
from gatherly.org import service as org
from gatherly.org.models import ApiToken
from tests import factories as f
from tests.web.conftest import Live, client_sign_in, shot, sign_in, with_password

SECRET = re.compile(r"gly_[A-Za-z0-9_-]{20,}")


@dataclass(frozen=True)
class People:
    root: int
    gustav: int
    francois: int
    gustav_token: int
    francois_token: int


@pytest.fixture
def people(db: Session) -> People:
    """root (System Administrator), gustav and francois (Marketers), one token each."""
    germany = f.bu(db, "Germany")
    root = with_password(db, f.user(db, "root", None, "System Administrator"))
    gustav = with_password(db, f.user(db, "gustav", germany, "Marketer"))
    francois = with_password(db, f.user(db, "francois", germany, "Marketer"))
    g_token, _ = org.create_token(db=db, user_id=gustav.id, name="gustav-script")
    f_token, _ = org.create_token(db=db, user_id=francois.id, name="francois-script")
    db.commit()
    return People(root.id, gustav.id, francois.id, g_token.id, f_token.id)


def _token(db: Session, token_id: int) -> ApiToken:
    db.expire_all()
    row = db.get(ApiToken, token_id)
    assert row is not None
    return row


# ---------------------------------------------------------------- your own tokens


def test_a_user_creates_a_token_sees_the_secret_once_and_it_works(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "gustav")
    listing = client.get("/account/tokens")
    assert listing.status_code == 200
    assert "gustav-script" in listing.text
    assert "francois-script" not in listing.text  # only the viewer's own
    assert not SECRET.search(listing.text)

    made = client.post(
        "/account/tokens", data={"name": "reporting", "expires_in_days": "30", "csrf": csrf}
    )
    assert made.status_code == 201, made.text[:500]
    assert made.headers["cache-control"] == "no-store"
    found = SECRET.findall(made.text)
    assert len(set(found)) == 1
    secret = found[0]
    assert "shown this once" in made.text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["user"]["username"] == "gustav"
    # Never again: the list shows the name and prefix, not the secret.
    again = client.get("/account/tokens")
    assert secret not in again.text
    assert "reporting" in again.text
    assert secret[:10] in again.text
    row = db.execute(select(ApiToken).where(ApiToken.name == "reporting")).scalar_one()
    assert row.expires_at is not None


def test_a_refused_token_says_why_next_to_the_field_and_makes_nothing(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "gustav")
    for data, words in (
        ({"name": "long", "expires_in_days": "400"}, "at most 365 days"),
        ({"name": "forever", "never_expires": "true"}, "tokens must expire"),
        ({"name": "typo", "expires_in_days": "ten"}, "this field must be a whole number"),
    ):
        refused = client.post("/account/tokens", data={**data, "csrf": csrf})
        assert refused.status_code == 422, data
        assert words in refused.text, data
        assert 'role="alert"' in refused.text
        assert not SECRET.search(refused.text)
    db.expire_all()
    assert db.execute(select(ApiToken).where(ApiToken.user_id == people.gustav)).all() != []
    names = set(db.execute(select(ApiToken.name)).scalars())
    assert names == {"gustav-script", "francois-script"}


def test_a_user_revokes_their_own_token_but_not_anyone_elses(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "gustav")
    theirs = client.post(
        f"/account/tokens/{people.francois_token}/revoke",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert theirs.status_code == 404  # like a token that does not exist: ids do not leak
    assert _token(db, people.francois_token).revoked_at is None
    missing = client.post(
        "/account/tokens/999999/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert missing.status_code == 404
    assert "francois" not in theirs.text

    mine = client.post(
        f"/account/tokens/{people.gustav_token}/revoke",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert mine.status_code == 303
    assert _token(db, people.gustav_token).revoked_at is not None
    page = client.get("/account/tokens")
    assert "Revoked" in page.text


# ---------------------------------------------------------------- everyone's tokens


def test_the_admin_lists_and_revokes_anyones_token(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "root")
    listing = client.get("/admin/tokens")
    assert listing.status_code == 200
    assert "gustav-script" in listing.text
    assert "francois-script" in listing.text
    only = client.get("/admin/tokens", params={"user": "francois"})
    assert "francois-script" in only.text
    assert "gustav-script" not in only.text
    unknown = client.get("/admin/tokens", params={"user": "ghost"})
    assert unknown.status_code == 422
    assert "no user named" in unknown.text

    revoked = client.post(
        f"/admin/tokens/{people.francois_token}/revoke",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert _token(db, people.francois_token).revoked_at is not None
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "token.revoke")).scalar_one()
    assert (entry.actor_name, entry.target_id) == ("root", str(people.francois_token))
    only_revoked = client.get("/admin/tokens", params={"status": "revoked"})
    assert "francois-script" in only_revoked.text
    assert "gustav-script" not in only_revoked.text


def test_non_administrators_may_not_see_everyones_tokens_or_the_trail(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "gustav")
    for path in ("/admin/tokens", "/admin/audit"):
        refused = client.get(path)
        assert refused.status_code == 403
        assert "francois" not in refused.text
        assert f'href="{path}"' not in client.get("/admin/settings").text  # not in the menu
    post = client.post(
        f"/admin/tokens/{people.francois_token}/revoke",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert post.status_code == 403
    assert _token(db, people.francois_token).revoked_at is None


# ---------------------------------------------------------------- the token policy


def test_the_admin_sets_the_token_lifetime_and_a_bad_one_is_said_inline(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "gustav")
    page = client.get("/admin/settings")
    assert "90 days" in page.text
    assert "365 days" in page.text
    assert 'action="/admin/settings/token-policy"' not in page.text
    forbidden = client.post(
        "/admin/settings/token-policy",
        data={"default_days": "30", "max_days": "", "csrf": csrf},
    )
    assert forbidden.status_code == 403

    csrf = client_sign_in(client, "root")
    bad = client.post(
        "/admin/settings/token-policy",
        data={"default_days": "400", "max_days": "365", "csrf": csrf},
    )
    assert bad.status_code == 422
    assert "longer than the maximum" in bad.text
    assert 'value="400"' in bad.text  # what was typed stays
    assert org.token_policy(db=db).default_days == 90

    saved = client.post(
        "/admin/settings/token-policy",
        data={"default_days": "30", "max_days": "", "csrf": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    db.expire_all()
    policy = org.token_policy(db=db)
    assert (policy.default_days, policy.max_days) == (30, None)
    settings = client.get("/admin/settings")
    assert "settings.api_tokens" in settings.text  # in the recent entries
    # Never expiring is now offered to users.
    csrf = client_sign_in(client, "gustav")
    assert "Never expires" in client.get("/account/tokens").text
    made = client.post(
        "/account/tokens", data={"name": "forever", "never_expires": "true", "csrf": csrf}
    )
    assert made.status_code == 201
    row = db.execute(select(ApiToken).where(ApiToken.name == "forever")).scalar_one()
    assert row.expires_at is None


# ---------------------------------------------------------------- the audit trail page


def test_the_audit_page_filters_pages_and_shows_before_and_after(
    client: TestClient, db: Session, people: People
) -> None:
    csrf = client_sign_in(client, "root")
    marketer = org.get_role_by_name(db=db, name="Marketer").id
    response = client.post(
        f"/admin/users/{people.francois}/roles/{marketer}/delete",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get("/admin/audit", params={"action": "role.un"})
    assert page.status_code == 200
    body = re.search(r"<tbody>(.*?)</tbody>", page.text, flags=re.S)
    assert body
    rows = re.findall(r"<tr>.*?</tr>", body.group(1), flags=re.S)
    assert len(rows) == 1
    assert "role.unassign" in rows[0]
    assert "francois" in rows[0]
    assert "root" in rows[0]
    assert "<del>Marketer</del>" in rows[0]

    everything = client.get("/admin/audit", params={"actor": "root"})
    assert "role.unassign" in everything.text
    assert "user.create" not in everything.text
    about = client.get(
        "/admin/audit", params={"target_type": "user", "target_id": str(people.francois)}
    )
    assert "user.create" in about.text
    assert "role.assign" in about.text
    today = client.get("/admin/audit", params={"since": "2000-01-01", "until": "2000-01-02"})
    assert "No audit entries match." in today.text

    bad = client.get("/admin/audit", params={"since": "05/12/2026"})
    assert bad.status_code == 422
    assert "YYYY-MM-DD" in bad.text
    reversed_range = client.get(
        "/admin/audit", params={"since": "2026-12-05", "until": "2026-12-01"}
    )
    assert reversed_range.status_code == 422
    assert "later than" in reversed_range.text

    for i in range(60):
        audit.log(db, actor=people.root, action="test.filler", target_id=i)
    db.commit()
    first = client.get("/admin/audit", params={"action": "test."})
    link = re.search(r'href="(/admin/audit\?[^"]*cursor=[^"]+)" rel="next"', first.text)
    assert link, first.text
    second = client.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert "First page" in second.text
    assert second.text.count("test.filler") == 10
    forged = client.get("/admin/audit", params={"cursor": "forged"})
    assert forged.status_code == 422


# ---------------------------------------------------------------- in a browser


def test_a_user_makes_a_token_in_the_browser_and_sees_it_once(
    page: Page, db: Session, people: People, live: Live
) -> None:
    sign_in(page, "gustav")
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your API tokens")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Expires after (days)").fill("14")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token")
    expect(shown).to_have_text(SECRET)
    secret = shown.inner_text().strip()
    expect(page.get_by_text("it is shown this once")).to_be_visible()
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_role("button", name=re.compile("Copied|Selected"))).to_be_visible()
    row = page.locator("tr", has=page.get_by_role("cell", name="laptop", exact=True))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text(secret[:10])
    shot(page, "account-tokens", live)

    page.goto("/account/tokens")  # a fresh view: the secret is gone for good
    expect(page.locator("#new-token")).to_have_count(0)
    assert secret not in page.content()
    row = page.locator("tr", has=page.get_by_role("cell", name="laptop", exact=True))
    row.get_by_role("button", name=re.compile("Revoke")).click()
    expect(row).to_contain_text("Revoked")
    db.expire_all()
    revoked = db.execute(select(ApiToken).where(ApiToken.name == "laptop")).scalar_one()
    assert revoked.revoked_at is not None


def test_an_admin_reads_the_audit_trail_in_the_browser(
    page: Page, db: Session, people: People, live: Live
) -> None:
    sign_in(page, "root", next=f"/admin/users/{people.gustav}")
    page.get_by_role("button", name="Disable").click()
    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Audit trail"
    ).click()
    page.get_by_label("Action starts with").fill("user.dis")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table", name="Audit entries").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("root")
    expect(rows.first).to_contain_text("user.disable")
    expect(rows.first).to_contain_text("disabled: no → yes")
    shot(page, "admin-audit", live)
    rows.first.get_by_role("link", name="gustav").click()  # every change to gustav
    expect(page.get_by_label("Target type")).to_have_value("user")
    expect(page.get_by_role("table", name="Audit entries")).to_contain_text("user.create")
