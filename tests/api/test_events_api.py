"""The events API on a tenant synced over real HTTP from the Graph emulator (SPEC T6, T7, T9, B10).

Marta Lindqvist's webinars are owned by her Gatherly user in the Marketing BU; the other
organizers' webinars by the admin (default owner) in the root BU. A Marketer in Sales, whose
contact registered for Marta's "Autumn Product Launch", must see none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from gatherly.event.models import MarketingEvent
from gatherly.org.models import User
from tests import factories as f
from tests.api.helpers import API, Headers, assert_error
from tests.api.test_teams_api import (  # the same emulator, client and users
    People,
    api,
    connected,
    make_people,
    tenant,
    tenant_server,
)
from tests.dbstate import cached
from tests.teams.conftest import Connected

__all__ = ["api", "connected", "tenant", "tenant_server"]

REGISTRANT = "mateo.oneill@tailspin.example"  # registered for Autumn Product Launch


@dataclass
class World:
    """The synced installation: users, the Sales contact and event ids by name."""

    people: People
    sales: Headers
    sales_contact: int
    events: dict[str, int]
    marta_events: set[int]
    connected: Connected


@pytest.fixture
def world(connected: Connected, engine: Engine) -> World:
    """Built once per process and backend (a full sync over HTTP); later tests get its rows."""
    people, sales, contact_id, events, marta_events = cached(
        engine, f"events_api.world@{connected.tenant.base_url}", lambda: _build_world(connected)
    )
    return World(people, sales, contact_id, events, marta_events, connected)


def _build_world(
    connected: Connected,
) -> tuple[People, Headers, int, dict[str, int], set[int]]:
    people = make_people(connected.session_factory, connected.admin_id)
    with connected.session_factory() as db:
        sales_bu = f.bu(db, "Sales")
        seller = f.user(db, "seller", sales_bu, "Marketer")
        contact = f.contact(db, seller, email=REGISTRANT, first_name="Mateo")
        db.commit()
        sales, contact_id = f.token(db, seller), contact.id
    connected.full_sync()
    with connected.session_factory() as db:
        rows = db.scalars(select(MarketingEvent)).all()
        marta = db.scalar(select(User).where(User.username == "marta"))
        assert marta is not None
        events = {e.name: e.id for e in rows}
        marta_events = {e.id for e in rows if e.owner_id == marta.id}
    assert marta_events
    assert len(marta_events) < len(events)
    return people, sales, contact_id, events, marta_events


def walk(
    api: TestClient, headers: Headers, path: str = "/events", size: int = 2, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list across pages of ``size``, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, "limit": size, **({"cursor": cursor} if cursor else {})}
        response = api.get(f"{API}{path}", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def visible(api: TestClient, headers: Headers, **params: Any) -> set[int]:
    """Event ids the caller lists, checked against /events/count and for duplicates."""
    ids = [e["id"] for e in walk(api, headers, **params)]
    assert len(ids) == len(set(ids)), ids
    response = api.get(f"{API}/events/count", params=params, headers=headers)
    assert response.json()["count"] == len(ids)
    return set(ids)


def get(api: TestClient, path: str, headers: Headers, **params: Any) -> Any:
    response = api.get(f"{API}{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ list, filters, paging (T6)


def test_list_count_filters_and_paging(api: TestClient, world: World) -> None:
    admin = world.people.headers["admin"]
    assert visible(api, admin) == set(world.events.values())
    by_name = sorted(e["name"] for e in walk(api, admin, sort="name"))
    assert by_name == sorted(world.events)
    starts = [e["start_at"] for e in walk(api, admin)]
    assert starts == sorted(starts, reverse=True)

    canceled = world.events["Winter Roadmap Preview (canceled)"]
    assert visible(api, admin, status="canceled") == {canceled}
    assert visible(api, admin, q="summit") == {world.events["Data Summit (two-day series)"]}
    assert visible(api, admin, organizer="MARTA") == world.marta_events
    assert visible(api, admin, organizer="marta.lindqvist@contoso.example") == world.marta_events
    assert visible(api, admin, source="manual") == set()
    november = {"start_from": "2026-11-01T00:00:00Z", "start_to": "2026-12-01T00:00:00+00:00"}
    in_november = visible(api, admin, **november)
    assert world.events["Autumn Product Launch"] in in_november
    assert canceled not in in_november

    item = walk(api, admin, q="Autumn")[0]
    assert item["source"] == "teams"
    assert item["organizer_name"] == "Marta Lindqvist"
    assert item["owner"] == {"type": "user", "id": world.people.ids["marta"]}

    for params, field in [
        ({"status": "bogus"}, "status"),
        ({"sort": "secret_column"}, "sort"),
        ({"start_from": "2026-11-01T00:00:00"}, "start_from"),  # no time zone
        ({"start_to": "0001-01-01T00:00:00+01:00"}, "start_to"),  # before year 1 in UTC
        ({"cursor": "forged"}, "cursor"),
        ({"limit": 0}, "limit"),
    ]:
        assert_error(api.get(f"{API}/events", params=params, headers=admin), 422, field)


# ------------------------------------------------------------------ detail, people, numbers (T6, T7, T9)


def test_detail_registrations_attendance_and_reconciliation(api: TestClient, world: World) -> None:
    admin = world.people.headers["admin"]
    event_id = world.events["Data Summit (two-day series)"]
    event = get(api, f"/events/{event_id}", admin)
    assert event["name"] == "Data Summit (two-day series)"
    assert event["time_zone"]
    assert len(event["sessions"]) == 2
    assert all(s["join_url"] for s in event["sessions"])

    registrations = walk(api, admin, f"/events/{event_id}/registrations", size=500)
    assert len(registrations) == 56
    assert {r["event_id"] for r in registrations} == {event_id}
    # Pages of 7 hold the same rows in the same order (by email), each once.
    assert walk(api, admin, f"/events/{event_id}/registrations", size=7) == registrations
    emails = [r["email"] or "" for r in registrations]
    assert emails == sorted(emails)
    registered = walk(api, admin, f"/events/{event_id}/registrations", status="registered")
    assert registered
    assert {r["status"] for r in registered} == {"registered"}
    first = get(api, f"/events/{event_id}/registrations", admin, limit=10)
    assert len(first["items"]) == 10
    assert first["next_cursor"]

    attendance = walk(api, admin, f"/events/{event_id}/attendance", size=500)
    assert attendance
    assert walk(api, admin, f"/events/{event_id}/attendance", size=3) == attendance
    one = get(api, f"/events/{event_id}/attendance", admin, limit=1)
    assert len(one["items"]) == 1
    assert one["next_cursor"]
    session_ids = {s["id"] for s in event["sessions"]}
    for row in attendance:
        assert row["total_seconds"] == sum(i["duration_seconds"] for i in row["intervals"])
        assert {i["session_id"] for i in row["intervals"]} <= session_ids
        if row["intervals"]:
            assert row["first_join_at"] == min(i["join_at"] for i in row["intervals"])
    # Someone attended both days: two sessions' intervals on one row.
    assert any(len({i["session_id"] for i in row["intervals"]}) == 2 for row in attendance)

    numbers = get(api, f"/events/{event_id}/reconciliation", admin)
    counts = numbers["counts"]
    assert counts["registrants"] == event["registrant_count"] == len(numbers["registrants"])
    assert counts["attendees"] == event["attendee_count"] == len(numbers["attendees"])
    assert counts["cancellations"] == event["cancellation_count"]
    assert numbers["no_shows"] == sorted(set(numbers["registrants"]) - set(numbers["attendees"]))
    assert counts["no_shows"] == len(numbers["no_shows"])
    counted = {r["email"] for r in registrations if r["excluded_reason"] is None}
    assert set(numbers["registrants"]) <= counted
    # Internal people (contoso.example) are kept but not counted.
    assert any(key.endswith("@contoso.example") for key in numbers["not_counted"]["internal"])

    for path in ("", "/registrations", "/attendance", "/recordings", "/reconciliation"):
        assert_error(api.get(f"{API}/events/999999{path}", headers=admin), 404)


def test_a_contacts_timeline(api: TestClient, world: World) -> None:
    admin = world.people.headers["admin"]
    event_id = world.events["Data Summit (two-day series)"]
    attendance = walk(api, admin, f"/events/{event_id}/attendance", size=500)
    row = next(a for a in attendance if a["contact_id"] and len(a["intervals"]) > 1)
    timeline = get(api, f"/contacts/{row['contact_id']}/timeline", admin)
    entry = next(e for e in timeline if e["event_id"] == event_id)
    assert entry["event_name"] == "Data Summit (two-day series)"
    assert entry["attended"] is True
    assert entry["total_seconds"] == row["total_seconds"]
    assert entry["first_join_at"] == row["first_join_at"]
    assert entry["last_leave_at"] == row["last_leave_at"]
    assert len(entry["intervals"]) == len(row["intervals"])
    starts = [e["event_start_at"] for e in timeline]
    assert starts == sorted(starts, reverse=True)

    # The Sales contact registered for Marta's webinar: the admin sees it on the timeline.
    autumn = world.events["Autumn Product Launch"]
    timeline = get(api, f"/contacts/{world.sales_contact}/timeline", admin)
    entry = next(e for e in timeline if e["event_id"] == autumn)
    assert entry["registration_status"] == "registered"
    assert entry["status_history"][0]["status"] == "registered"
    assert_error(api.get(f"{API}/contacts/999999/timeline", headers=admin), 404, "contact_id")


# ------------------------------------------------------------------ security (B10)


def test_a_marketer_in_another_bu_sees_none_of_it(api: TestClient, world: World) -> None:
    sales = world.sales
    autumn = world.events["Autumn Product Launch"]
    # Neither listed nor counted, with or without filters that would match.
    assert visible(api, sales) == set()
    assert visible(api, sales, q="Autumn") == set()
    assert visible(api, sales, organizer="marta") == set()
    for event_id in world.events.values():
        for path in ("", "/registrations", "/attendance", "/recordings", "/reconciliation"):
            error = assert_error(api.get(f"{API}/events/{event_id}{path}", headers=sales), 404)
            assert error["field"] == "event_id"
    # Their own contact registered for Autumn: the event stays off its timeline.
    assert get(api, f"/contacts/{world.sales_contact}/timeline", sales) == []
    # A contact the sync created for Marta's webinar is not theirs to read.
    admin = world.people.headers["admin"]
    registrations = walk(api, admin, f"/events/{autumn}/registrations", size=500)
    theirs = next(r["contact_id"] for r in registrations if r["email"] == REGISTRANT)
    assert theirs == world.sales_contact
    martas = next(r["contact_id"] for r in registrations if r["contact_id"] not in (None, theirs))
    assert_error(api.get(f"{API}/contacts/{martas}/timeline", headers=sales), 404)


def test_each_user_sees_exactly_the_events_of_their_reach(api: TestClient, world: World) -> None:
    headers = world.people.headers
    everything = set(world.events.values())
    assert visible(api, headers["admin"]) == everything
    assert visible(api, headers["orgadmin"]) == everything
    assert visible(api, headers["marta"]) == world.marta_events
    assert visible(api, headers["marketer"]) == everything - world.marta_events  # root BU
    assert visible(api, headers["nobody"]) == set()
    tomas = world.events["APAC Partner Briefing"]
    for path in ("", "/registrations", "/attendance", "/recordings", "/reconciliation"):
        assert_error(api.get(f"{API}/events/{tomas}{path}", headers=headers["marta"]), 404)
        assert_error(api.get(f"{API}/events/{tomas}{path}", headers=headers["nobody"]), 404)
    autumn = world.events["Autumn Product Launch"]
    assert get(api, f"/events/{autumn}/registrations", headers["marta"])["items"]
    # Marta cannot read the Sales contact, so neither can she read its timeline.
    assert_error(
        api.get(f"{API}/contacts/{world.sales_contact}/timeline", headers=headers["marta"]), 404
    )


def test_every_event_route_needs_a_token(api: TestClient, world: World) -> None:
    event_id = world.events["Autumn Product Launch"]
    for path in (
        "/events",
        "/events/count",
        f"/events/{event_id}",
        f"/events/{event_id}/registrations",
        f"/events/{event_id}/attendance",
        f"/events/{event_id}/reconciliation",
        f"/contacts/{world.sales_contact}/timeline",
    ):
        assert assert_error(api.get(f"{API}{path}"), 401)["code"] == "unauthenticated"


def test_recordings_and_transcripts_of_an_event(api: TestClient, world: World) -> None:
    admin = world.people.headers["admin"]
    autumn = world.events["Autumn Product Launch"]
    # The world syncs without the per-user recordings setting: nothing yet.
    assert get(api, f"/events/{autumn}/recordings", admin) == {"recordings": [], "transcripts": []}
    marta = next(
        o
        for o in get(api, "/integrations/teams/organizers", admin)
        if o["display_name"] == "Marta Lindqvist"
    )
    response = api.patch(
        f"{API}/integrations/teams/organizers/{marta['id']}",
        json={"sync_recordings": True},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    world.connected.sync()
    found = get(api, f"/events/{autumn}/recordings", admin)
    assert len(found["recordings"]) == 1
    [transcript] = found["transcripts"]
    assert transcript["recording_id"] == found["recordings"][0]["id"]
    assert transcript["cues"][0]["speaker"] == "Marta Lindqvist"
    assert transcript["vtt"].startswith("WEBVTT")
    assert_error(api.get(f"{API}/events/{autumn}/recordings", headers=world.sales), 404)
