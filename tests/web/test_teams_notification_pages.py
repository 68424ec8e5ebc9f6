"""Change notifications on Integrations › Microsoft Teams: the switch and the public base URL
in the settings form (checked inline, saved through ``teams.service.update_settings``), and
the subscriptions' health (``teams.service.list_subscriptions``), for Teams admins only.

Against the Graph emulator serving the sample tenant, after one discovery run (``site``).
No worker runs here: the subscriptions the health table shows are written to the database
as the worker's subscription manager would leave them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from gatherly.teams.models import TeamsConnection, TeamsSubscription
from tests.teams import conftest as teams_fixtures
from tests.web import test_teams_pages as teams_pages
from tests.web.conftest import Live, shot, sign_in, text_of
from tests.web.test_teams_pages import SignIn, Site, _connection, _rows

# The Teams pages' fixtures: the emulator and the site after one discovery run.
tenant_server, tenant = teams_fixtures.tenant_server, teams_fixtures.tenant
site, as_user = teams_pages.site, teams_pages.as_user

SETTINGS = "/integrations/teams/settings"
PUBLIC_URL = "https://gatherly.example.com"
EXPIRES = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
NOTIFIED = datetime(2026, 12, 6, 8, 15, tzinfo=UTC)
CAUGHT_UP = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
REFUSED = "Graph refused the subscription: 403 Forbidden (the app lacks VirtualEvent.Read.All)"
WEBINAR = "Autumn Product Launch"


def _form(site: Site, **changes: Any) -> dict[str, Any]:
    """The settings form as the page fills it from the stored settings, with ``changes``
    (a value of None leaves a field, or an unticked checkbox, out of the post)."""
    now = _connection(site.session_factory)
    form: dict[str, Any] = {
        "sync_enabled": "on" if now["sync_enabled"] else None,
        "organizer_exclusion_domains": "\n".join(now["organizer_exclusion_domains"]),
        "contact_exclusion_domains": "\n".join(now["contact_exclusion_domains"]),
        "default_owner_id": str(now["default_owner_id"] or "none"),
        "notifications_enabled": "on" if now["notifications_enabled"] else None,
        "public_base_url": now["public_base_url"] or "",
        **changes,
    }
    return {k: v for k, v in form.items() if v is not None}


def _section(html: str) -> str:
    """The text of the Change notifications card ("" when the page has none)."""
    found = re.search(
        r'<section class="card" aria-labelledby="notifications-title">.*?</section>', html, re.S
    )
    return text_of(found.group(0)) if found else ""


def _rows_of(html: str) -> list[str]:
    """The text of each row of the subscriptions table."""
    table = re.search(
        r"<caption[^>]*>Change-notification subscriptions</caption>.*?</table>", html, re.S
    )
    assert table is not None, _section(html)
    return [text_of(row) for row in re.findall(r"<tr>.*?</tr>", table.group(0), re.S)[1:]]


def _notifications_on(site: Site) -> None:
    with site.session_factory() as db, db.begin():
        connection = db.get(TeamsConnection, 1)
        assert connection is not None
        connection.notifications_enabled, connection.public_base_url = True, PUBLIC_URL


def _subscribe(site: Site) -> None:
    """What the subscription manager leaves: the tenant's subscription active and notified,
    one of a webinar's failing."""
    webinar = site.webinar(WEBINAR)
    with site.session_factory() as db, db.begin():
        db.add_all(
            [
                TeamsSubscription(
                    resource="solutions/virtualEvents/webinars",
                    scope="tenant",
                    graph_id="sub-tenant",
                    status="active",
                    expires_at=EXPIRES,
                    last_notification_at=NOTIFIED,
                ),
                TeamsSubscription(
                    resource=f"solutions/virtualEvents/webinars/{webinar.graph_id}/registrations",
                    scope="registrations",
                    webinar_id=webinar.id,
                    status="failed",
                    last_catch_up_at=CAUGHT_UP,
                    last_error=REFUSED,
                ),
            ]
        )


# ------------------------------------------------------------------ the settings form


def test_an_admin_turns_notifications_on_and_off_from_the_form(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    page = admin.client.get("/integrations/teams").text
    assert re.search(r'name="notifications_enabled" value="on">', page)  # not ticked
    assert re.search(r'id="public_base_url"[^>]*value=""', page)
    assert (
        "Change notifications are off: changes in Teams reach Gatherly with the scheduled "
        "sync, which runs every 15 minutes." in _section(page)
    )
    before = _connection(site.session_factory)
    form = _form(site, notifications_enabled="on", public_base_url=f"  {PUBLIC_URL}/ ")
    # Without the session's CSRF token nothing is saved.
    forged = admin.client.post(SETTINGS, data=form, follow_redirects=False)
    assert forged.status_code == 403
    assert _connection(site.session_factory) == before

    saved = admin.post(SETTINGS, form, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:300]
    assert saved.headers["location"] == "/integrations/teams?saved=settings"
    after = _connection(site.session_factory)
    assert after["notifications_enabled"] is True
    assert after["public_base_url"] == PUBLIC_URL  # trimmed, without the trailing slash
    unchanged = ("sync_enabled", "organizer_exclusion_domains", "contact_exclusion_domains")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}

    page = admin.client.get("/integrations/teams?saved=settings").text
    assert "Settings saved." in page
    assert re.search(r'name="notifications_enabled" value="on" checked>', page)
    assert re.search(rf'id="public_base_url"[^>]*value="{re.escape(PUBLIC_URL)}"', page)
    said = _section(page)
    assert f"at {PUBLIC_URL}/hooks/graph" in said
    assert "every 15 minutes, every 60 while every subscription is active" in said
    assert "No subscriptions yet. The worker subscribes within a minute of saving." in said

    # Unticked: off again; the address stays for next time.
    off = admin.post(SETTINGS, _form(site, notifications_enabled=None), follow_redirects=False)
    assert off.status_code == 303
    after = _connection(site.session_factory)
    assert after["notifications_enabled"] is False
    assert after["public_base_url"] == PUBLIC_URL
    assert "Change notifications are off" in _section(admin.client.get("/integrations/teams").text)


def test_notifications_without_a_public_url_are_refused_inline(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    before = _connection(site.session_factory)
    refused = admin.post(SETTINGS, _form(site, notifications_enabled="on", public_base_url=""))
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert re.search(r'id="public_base_url"[^>]*aria-invalid="true"', refused.text)
    error = re.search(r'<p class="error" id="public_base_url-error">(.*?)</p>', refused.text)
    assert error is not None
    assert "change notifications need the public base URL" in error.group(1)
    # The form comes back as it was filled in: the box still ticked.
    assert re.search(r'name="notifications_enabled" value="on" checked>', refused.text)
    assert not re.search(r'id="contact_exclusion_domains"[^>]*aria-invalid', refused.text)
    assert _connection(site.session_factory) == before


def test_a_bad_public_url_is_refused_inline(as_user: SignIn, site: Site) -> None:
    admin = as_user("admin")
    before = _connection(site.session_factory)
    for bad, ticked in [
        ("gatherly.example.com", "on"),
        ("ftp://gatherly.example.com", "on"),
        ("https://gatherly.example.com/?token=1", "on"),
        ("https://", None),  # checked whenever it is given, switch on or off
    ]:
        refused = admin.post(
            SETTINGS, _form(site, notifications_enabled=ticked, public_base_url=bad)
        )
        assert refused.status_code == 422, bad
        assert re.search(r'id="public_base_url"[^>]*aria-invalid="true"', refused.text), bad
        error = re.search(r'<p class="error" id="public_base_url-error">(.*?)</p>', refused.text)
        assert error is not None, bad
        assert "is not a base URL like https://gatherly.example.com" in text_of(error.group(1))
        # What was typed comes back in the field, to correct.
        shown = re.search(r'id="public_base_url"[^>]*value="([^"]*)"', refused.text)
        assert shown is not None
        assert text_of(shown.group(1)) == bad
        assert _connection(site.session_factory) == before, bad


# ------------------------------------------------------------------ the health


def test_the_health_table_shows_what_each_subscription_watches_and_how_it_stands(
    as_user: SignIn, site: Site
) -> None:
    _notifications_on(site)
    _subscribe(site)
    name = site.webinar(WEBINAR).display_name
    page = as_user("admin").client.get("/integrations/teams").text
    said = _section(page)
    assert "1 active, 1 failing" in said
    assert _rows_of(page) == [
        "New webinars and town halls in the tenant Active Mon 7 Dec 2026, 09:30 UTC "
        "Sun 6 Dec 2026, 08:15 UTC never",
        f"{name}: its registrations Failed {REFUSED} — never Sun 6 Dec 2026, 07:00 UTC",
    ]
    # Times are shown as the page's other times are: <time> in the viewer's zone.
    assert f'<time datetime="{NOTIFIED.isoformat()}" title="UTC">' in page

    # Sync switched off: notifications stop with it, and the card says so.
    with site.session_factory() as db, db.begin():
        connection = db.get(TeamsConnection, 1)
        assert connection is not None
        connection.sync_enabled = False
    said = _section(as_user("admin").client.get("/integrations/teams").text)
    assert "Change notifications are on, but" in said
    assert "nothing syncs until it is ticked" in said


def test_non_admins_neither_see_the_health_nor_save_notifications(
    as_user: SignIn, site: Site
) -> None:
    _notifications_on(site)
    _subscribe(site)
    for name in ("marta", "marketer", "reader"):
        before = _rows(site.session_factory)
        user = as_user(name)
        page = user.client.get("/integrations/teams")
        if name == "reader":  # may read the integration, as GET …/teams/subscriptions
            assert page.status_code == 200
            assert "1 active, 1 failing" in _section(page.text)
        else:
            assert page.status_code == 403
            assert "Change notifications" not in page.text
            assert REFUSED not in page.text
        response = user.post(
            SETTINGS,
            {"notifications_enabled": "on", "public_base_url": "https://attacker.example"},
            follow_redirects=False,
        )
        assert response.status_code == 403, (name, response.text[:300])
        assert _rows(site.session_factory) == before, name
    with site.session_factory() as db:
        assert db.scalar(select(TeamsConnection.public_base_url)) == PUBLIC_URL


# ------------------------------------------------------------------ browser


def test_an_admin_turns_notifications_on_in_the_browser(page: Page, live: Live, site: Site) -> None:
    sign_in(page, "admin", next="/integrations/teams")
    card = page.get_by_role("region", name="Change notifications")
    expect(card).to_contain_text("Change notifications are off")
    expect(card).to_contain_text("every 15 minutes")

    switch = page.get_by_role("checkbox", name="Near-real-time sync from change notifications")
    expect(switch).not_to_be_checked()
    field = page.get_by_label("Public base URL")
    expect(field).to_have_accessible_description(re.compile("Graph posts to …/hooks/graph"))
    switch.check()
    field.fill(PUBLIC_URL + "/")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    expect(
        page.get_by_role("checkbox", name="Near-real-time sync from change notifications")
    ).to_be_checked()
    expect(page.get_by_label("Public base URL")).to_have_value(PUBLIC_URL)
    expect(card).to_contain_text("The worker subscribes within a minute of saving.")
    after = _connection(site.session_factory)
    assert (after["notifications_enabled"], after["public_base_url"]) == (True, PUBLIC_URL)

    # Once the worker has subscribed, the table shows how they stand, in the browser's zone.
    _subscribe(site)
    page.reload()
    table = card.get_by_role("table", name="Change-notification subscriptions")
    tenant_row = table.get_by_role("row").filter(has_text="New webinars and town halls")
    expect(tenant_row).to_contain_text("Active")
    expect(tenant_row).to_contain_text("Sun 6 Dec 2026, 09:15 CET")  # 08:15 UTC in Berlin
    failed = table.get_by_role("row").filter(has_text="its registrations")
    expect(failed).to_contain_text("Failed")
    expect(failed).to_contain_text(REFUSED)
    expect(card).to_contain_text("1 active, 1 failing")
    shot(page, "integrations-teams-notifications", live)
