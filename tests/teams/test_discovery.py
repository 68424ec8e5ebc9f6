"""Discovery that scales (issue 19, part 1): the directory through ``/users/delta``, webinars
from the tenant-wide list, single-user probes within a daily budget, and an organizer list
of who organizes and who is blocked — over real HTTP to the emulator."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, update

from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, NotFound
from gatherly.org import directory
from gatherly.org import service as org
from gatherly.teams import fetch
from gatherly.teams import service as teams
from gatherly.teams.models import TeamsOrganizer, TeamsWebinar
from tests.teams.conftest import Connected, Tenant

NOBODY = ("Anna Kowalczyk", "Ben Okoro", "Clara Hoffmann", "David Chen", "Elif Demir")


def _graph_calls(tenant: Tenant, since: int) -> list[str]:
    return [r["path"] for r in tenant.requests()[since:] if r["path"].startswith("/v1.0/")]


def _organizer(connected: Connected, name: str) -> TeamsOrganizer:
    with connected.session_factory() as db:
        row = db.scalars(select(TeamsOrganizer).where(TeamsOrganizer.display_name == name)).one()
        db.expunge(row)
        return row


def test_a_steady_run_reads_only_directory_changes_and_the_tenant_lists(
    connected: Connected, tenant: Tenant
) -> None:
    first = connected.sync()
    assert first.status == "succeeded", first.errors
    assert first.fetched["users"] == 9
    # A small tenant is probed whole at once, but for the organizers the tenant's list
    # shows granted (Marta, Tomas) and the one in an excluded domain (Priya).
    assert first.fetched["users_probed"] == 6
    mark = len(tenant.requests())
    again = connected.sync()
    assert again.status == "succeeded", again.errors
    assert dict(again.changes) == {}
    calls = _graph_calls(tenant, mark)
    # One delta page, one page per tenant-wide list; no user is asked about again today.
    assert calls == [
        "/v1.0/users/delta",
        "/v1.0/solutions/virtualEvents/webinars",
        "/v1.0/solutions/virtualEvents/townhalls",
    ]
    assert again.fetched["users"] == 0
    assert again.fetched["users_probed"] == 0


def test_directory_changes_arrive_through_the_delta(connected: Connected, tenant: Tenant) -> None:
    connected.sync()
    base = f"{tenant.base_url}/_emulator/users"
    added = tenant.control(
        "users",
        {
            "displayName": "Farah Haddad",
            "userPrincipalName": "farah.haddad@contoso.example",
            "mail": "farah.haddad@contoso.example",
            "applicationAccessPolicy": "Webinar-Sync",
        },
    )
    ben = tenant.user("Ben Okoro")["id"]
    elif_ = tenant.user("Elif Demir")["id"]
    httpx.patch(f"{base}/{ben}", json={"displayName": "Ben Okoro-Smith"}, timeout=10)
    httpx.delete(f"{base}/{elif_}", timeout=10).raise_for_status()
    report = connected.sync()
    assert report.status == "succeeded", report.errors
    assert report.fetched["users"] == 2  # Farah and Ben; Elif comes as removed
    assert report.changes["users_added"] == 1
    assert report.changes["users_updated"] == 1
    assert report.changes["users_removed"] == 1
    assert report.fetched["users_probed"] == 1  # the new user, never asked
    farah = _organizer(connected, "Farah Haddad")
    assert farah.graph_user_id == added.get("id", farah.graph_user_id)
    assert (farah.status, farah.email) == ("ok", "farah.haddad@contoso.example")
    assert _organizer(connected, "Ben Okoro-Smith").graph_user_id == ben
    assert _organizer(connected, "Elif Demir").removed_at is not None


def test_a_delta_link_graph_no_longer_honours_reads_the_directory_again(
    connected: Connected, tenant: Tenant
) -> None:
    connected.sync()
    tenant.control("users/delta/expire")
    mark = len(tenant.requests())
    report = connected.sync()
    assert report.status == "succeeded", report.errors
    assert report.fetched["users"] == 9
    assert any("read again" in note for note in report.notes)
    statuses = [r["status"] for r in tenant.requests()[mark:]]
    assert 410 in statuses
    assert "users_removed" not in report.changes  # everyone is still there


def test_users_who_organize_nothing_are_not_reported_as_needing_an_admin(
    synced: Connected, tenant: Tenant
) -> None:
    with synced.session_factory() as db:
        admin = directory.load_principal(db, synced.admin_id)
        listed = {o.display_name for o in teams.list_organizers(db=db, principal=admin)}
        assert listed == {"Marta Lindqvist", "Tomas Berg", "Priya Natarajan"}
        assert teams.organizers_needing_admin(db=db, principal=admin) == []
        everyone = teams.list_organizers(db=db, principal=admin, everyone=True)
        statuses = {o.display_name: o.status for o in everyone}
        # Graph refused them all (no policy), yet nothing says they organize anything.
        assert {statuses[n] for n in ("Kenji Sato", *NOBODY)} == {"policy_not_granted"}
        summary = teams.directory_summary(db=db, principal=admin)
        assert (summary.users, summary.organizers, summary.blocked) == (9, 3, 0)
        assert summary.others_blocked == 6
        found = teams.list_organizers(db=db, principal=admin, everyone=True, query="KOWAL")
        assert [o.display_name for o in found] == ["Anna Kowalczyk"]
        # Kenji has a Gatherly account: now he matters, and he is blocked.
        kenji = org.create_user(
            db=db,
            username="kenji",
            email="kenji.sato@contoso.example",
            business_unit_id=admin.business_unit_id,
        )
        db.commit()
        del kenji
    synced.sync()
    with synced.session_factory() as db:
        admin = directory.load_principal(db, synced.admin_id)
        needing = teams.organizers_needing_admin(db=db, principal=admin)
        assert [o.display_name for o in needing] == ["Kenji Sato"]


def test_the_daily_budget_spreads_probes_and_asks_who_matters_first(
    connected: Connected, tenant: Tenant
) -> None:
    settings = connected.settings.model_copy(update={"teams_probes_per_day": 192})
    # 192 a day over 96 runs of 15 minutes: 2 a run.
    with connected.session_factory() as db:
        admin = directory.load_principal(db, connected.admin_id)
        org.create_user(
            db=db,
            username="elif",
            email="elif.demir@contoso.example",
            business_unit_id=admin.business_unit_id,
        )
        db.commit()
    budgeted = Connected(connected.session_factory, settings, tenant, connected.admin_id)
    first = budgeted.sync()
    assert first.fetched["users_probed"] == 2
    # The one mapped to a Gatherly user first.
    assert _organizer(connected, "Elif Demir").probed_at is not None
    second = budgeted.sync()
    assert second.fetched["users_probed"] == 2
    with connected.session_factory() as db:
        unchecked = db.scalars(
            select(TeamsOrganizer.display_name).where(TeamsOrganizer.status == "unchecked")
        ).all()
    # 9 users: 3 granted organizers known from the list, 4 probed, 2 left for later.
    assert len(unchecked) == 2
    # The day's budget is a ceiling however many runs there are.
    with connected.session_factory() as db, db.begin():
        db.execute(update(TeamsOrganizer).values(probed_at=utcnow() - timedelta(hours=2)))
    tight = settings.model_copy(update={"teams_probes_per_day": 9})
    capped = Connected(connected.session_factory, tight, tenant, connected.admin_id).sync()
    assert capped.fetched["users_probed"] == 0  # 9 probed in the last 24 hours already


def test_a_revoked_policy_is_found_when_an_organizers_webinars_leave_the_list(
    synced: Connected, tenant: Tenant
) -> None:
    tomas = tenant.user("Tomas Berg")["id"]
    response = httpx.patch(
        f"{tenant.base_url}/_emulator/users/{tomas}",
        json={"applicationAccessPolicy": None},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    with synced.session_factory() as db, db.begin():
        db.execute(update(TeamsOrganizer).values(probed_at=utcnow() - timedelta(hours=2)))
    report = synced.sync()
    assert report.status == "succeeded", report.errors
    row = _organizer(synced, "Tomas Berg")
    assert row.status == "policy_not_granted"
    with synced.session_factory() as db:
        admin = directory.load_principal(db, synced.admin_id)
        needing = teams.organizers_needing_admin(db=db, principal=admin)
        assert [o.display_name for o in needing] == ["Tomas Berg"]
        kept = db.scalars(select(TeamsWebinar).where(TeamsWebinar.organizer_id == row.id)).all()
        assert kept  # his webinars stay known while he is blocked


def test_an_admin_checks_one_user_at_once_and_others_cannot(
    synced: Connected, tenant: Tenant
) -> None:
    anna = tenant.user("Anna Kowalczyk")["id"]
    httpx.patch(
        f"{tenant.base_url}/_emulator/users/{quote(anna)}",
        json={"applicationAccessPolicy": "Webinar-Sync"},
        timeout=10,
    ).raise_for_status()
    row = _organizer(synced, "Anna Kowalczyk")
    with synced.session_factory() as db:
        admin = directory.load_principal(db, synced.admin_id)
        checked = teams.check_organizer(
            db=db, principal=admin, organizer_id=row.id, settings=synced.settings
        )
        assert checked.status == "ok"
        assert checked.probed_at is not None
        db.commit()
        stranger = org.create_user(
            db=db, username="stranger", business_unit_id=admin.business_unit_id
        )
        db.commit()
        outsider = directory.load_principal(db, stranger.id)
        with pytest.raises(NotFound):
            teams.check_organizer(
                db=db, principal=outsider, organizer_id=row.id, settings=synced.settings
            )
        priya = _organizer(synced, "Priya Natarajan")
        with pytest.raises(Conflict) as refused:
            teams.check_organizer(
                db=db, principal=admin, organizer_id=priya.id, settings=synced.settings
            )
        assert refused.value.field == "organizer_id"
        assert _organizer(synced, "Priya Natarajan").probed_at is None


def test_a_changed_user_comes_with_what_changed_and_keeps_the_rest(
    connected: Connected, tenant: Tenant
) -> None:
    """Graph's delta sends a changed user with the changed properties only: a new name
    keeps the email (and so an exclusion), a new email keeps the name."""
    connected.sync()
    base = f"{tenant.base_url}/_emulator/users"
    priya = tenant.user("Priya Natarajan")["id"]
    ben = tenant.user("Ben Okoro")["id"]
    httpx.patch(f"{base}/{priya}", json={"displayName": "Priya N."}, timeout=10)
    httpx.patch(f"{base}/{ben}", json={"mail": "ben.okoro@fabrikam.example"}, timeout=10)
    mark = len(tenant.requests())
    report = connected.sync()
    assert report.status == "succeeded", report.errors
    delta = next(r for r in tenant.requests()[mark:] if r["path"] == "/v1.0/users/delta")
    assert delta["status"] == 200
    priya_row = _organizer(connected, "Priya N.")
    assert priya_row.email == "priya.natarajan@partner-agency.example"
    assert priya_row.status == "excluded"
    ben_row = _organizer(connected, "Ben Okoro")
    assert ben_row.email == "ben.okoro@fabrikam.example"
    with connected.session_factory() as db:
        assert not db.scalars(
            select(TeamsWebinar).where(TeamsWebinar.display_name.startswith("Agency"))
        ).all()


def test_one_round_telling_a_user_twice_keeps_the_last_word() -> None:
    first = fetch.directory_entry({"id": "u1", "displayName": "A", "mail": "a@x.example"})
    renamed = fetch.directory_entry({"id": "u1", "displayName": "B"}, first)
    assert (renamed.display_name, renamed.email) == ("B", "a@x.example")
    bare = fetch.directory_entry({"id": "u2"})
    assert (bare.display_name, bare.email) == (None, None)  # nothing told: nothing changes
