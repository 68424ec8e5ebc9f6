"""``GET /users/delta`` over real HTTP: a full sync, then only the changes made through the
control API (added, changed, removed; an access-policy change is not a directory change),
paged, ending in a deltaLink; 410 syncStateNotFound for bad or expired tokens. Also the
directory index behind ``/users`` and the access policy, and the large generated tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gatherly.graph_emulator import EmulatorState
from gatherly.graph_emulator.generate import APP, SECRET, large_tenant
from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import GRAPH_SCOPE, SSL, Emulator, serve

DELTA = "/users/delta"
W = "/solutions/virtualEvents/webinars"


@pytest.fixture
def ctl(emulator: Emulator) -> Iterator[httpx.Client]:
    """A client on the control API (one connection for the whole test)."""
    with emulator.control() as client:
        yield client


def _add(ctl: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    body = {"userPrincipalName": f"{name}@{fx.DOMAIN}", "displayName": name.title(), **extra}
    response = ctl.post("/users", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def _round(graph: httpx.Client, url: str) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = graph.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert pages < 100


def test_full_sync_is_paged_and_ends_in_a_delta_link(
    emulator: Emulator, ctl: httpx.Client, graph: httpx.Client
) -> None:
    added = [_add(ctl, f"person{n:02d}") for n in range(25)]
    first = graph.get(DELTA, params={"$top": "10"}).json()
    assert len(first["value"]) == 10
    assert "@odata.deltaLink" not in first
    link = urlsplit(first["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{emulator.base_url}/v1.0{DELTA}"
    assert "$skiptoken" in parse_qs(link.query)
    assert parse_qs(link.query)["$top"] == ["10"]
    items, delta_link, pages = _round(graph, f"{DELTA}?$top=10")
    assert pages == 3
    ids = [u["id"] for u in items]
    assert len(ids) == len(set(ids)) == 28
    assert set(ids) == {fx.MARTA, fx.OLAF, fx.TOMAS} | {u["id"] for u in added}
    assert ids == sorted(ids)
    marta = next(u for u in items if u["id"] == fx.MARTA)
    assert marta["displayName"] == "Marta Lindqvist"
    assert "applicationAccessPolicy" not in marta
    assert "$deltatoken=" in urlsplit(delta_link).query
    # the plain /users list agrees with the full sync
    listed = graph.get("/users", params={"$top": "100"}).json()["value"]
    assert [u["id"] for u in listed] == ids


def test_incremental_delta_shows_adds_changes_and_removals(
    ctl: httpx.Client, graph: httpx.Client
) -> None:
    _, delta_link, _ = _round(graph, DELTA)
    new = _add(ctl, "newcomer")
    assert ctl.patch(f"/users/{fx.MARTA}", json={"displayName": "Marta L."}).is_success
    assert ctl.delete(f"/users/{fx.OLAF}").status_code == 204
    # granting or revoking the Teams access policy is no directory change
    revoke = ctl.patch(f"/users/{fx.TOMAS}", json={"applicationAccessPolicy": None})
    assert revoke.json()["applicationAccessPolicy"] is None
    items, next_delta, pages = _round(graph, delta_link)
    assert pages == 1
    by_id = {u["id"]: u for u in items}
    assert set(by_id) == {new["id"], fx.MARTA, fx.OLAF}
    assert by_id[fx.MARTA]["displayName"] == "Marta L."
    assert by_id[fx.OLAF] == {"id": fx.OLAF, "@removed": {"reason": "changed"}}
    assert by_id[new["id"]]["userPrincipalName"] == f"newcomer@{fx.DOMAIN}"
    # nothing changed since: one page, no items, a fresh deltaLink
    empty = graph.get(next_delta).json()
    assert empty["value"] == []
    assert "@odata.nextLink" not in empty
    assert "$deltatoken=" in empty["@odata.deltaLink"]
    assert graph.get(f"/users/{fx.OLAF}").status_code == 404


def test_incremental_delta_is_paged(ctl: httpx.Client, graph: httpx.Client) -> None:
    _, delta_link, _ = _round(graph, DELTA)
    added = {_add(ctl, f"batch{n:02d}")["id"] for n in range(15)}
    link = delta_link.replace("?", "?$top=6&", 1)
    items, _, pages = _round(graph, link)
    assert pages == 3
    assert {u["id"] for u in items} == added


def test_a_change_during_a_round_arrives_in_the_next_round(
    ctl: httpx.Client, graph: httpx.Client
) -> None:
    first = graph.get(DELTA, params={"$top": "1"}).json()
    assert [u["id"] for u in first["value"]] == [fx.MARTA]  # ids sort Marta, Olaf, Tomas
    ctl.patch(f"/users/{fx.TOMAS}", json={"mail": "tomas.berg@contoso.example"})
    rest, delta_link, _ = _round(graph, first["@odata.nextLink"])
    assert [u["id"] for u in rest] == [fx.OLAF]
    changed, _, _ = _round(graph, delta_link)
    assert [(u["id"], u["mail"]) for u in changed] == [(fx.TOMAS, "tomas.berg@contoso.example")]


def test_select_and_latest(ctl: httpx.Client, graph: httpx.Client) -> None:
    body = graph.get(DELTA, params={"$select": "displayName,mail"}).json()
    assert {tuple(sorted(u)) for u in body["value"]} == {("displayName", "id", "mail")}
    assert "$select=displayName%2Cmail" in body["@odata.deltaLink"]
    latest = graph.get(DELTA, params={"$deltatoken": "latest"}).json()
    assert latest["value"] == []
    _add(ctl, "later")
    items, _, _ = _round(graph, latest["@odata.deltaLink"])
    assert [u["userPrincipalName"] for u in items] == [f"later@{fx.DOMAIN}"]


def _gone(response: httpx.Response) -> None:
    assert response.status_code == 410, response.text
    error = response.json()["error"]
    assert error["code"] == "syncStateNotFound"
    assert "full sync" in error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])


def test_bad_or_expired_tokens_answer_410(
    emulator: Emulator, ctl: httpx.Client, graph: httpx.Client
) -> None:
    _gone(graph.get(DELTA, params={"$deltatoken": "not-a-token"}))
    _gone(graph.get(DELTA, params={"$skiptoken": "%%%"}))
    _, delta_link, _ = _round(graph, DELTA)
    paged = graph.get(DELTA, params={"$top": "1"}).json()["@odata.nextLink"]
    assert graph.get(delta_link).status_code == 200
    assert ctl.post("/users/delta/expire").status_code == 200
    _gone(graph.get(delta_link))
    _gone(graph.get(paged))
    # older than the retention (30 days of emulator clock)
    _, fresh, _ = _round(graph, DELTA)
    assert ctl.post("/clock", json={"advance_seconds": 29 * 86400}).is_success
    with emulator.client() as later:  # a new access token: the old one expired with the clock
        assert later.get(fresh).status_code == 200
    assert ctl.post("/clock", json={"advance_seconds": 2 * 86400}).is_success
    with emulator.client() as later:
        _gone(later.get(fresh))
        assert later.get(DELTA).status_code == 200  # a full sync starts over
    # a reset starts a new sync state too
    ctl.post("/reset")
    with emulator.client() as after_reset:
        _gone(after_reset.get(delta_link))


def test_delta_needs_a_directory_permission(emulator: Emulator) -> None:
    with emulator.client(emulator.token(fx.LIMITED_APP, fx.LIMITED_SECRET)) as limited:
        response = limited.get(DELTA)
    assert response.status_code == 403
    assert "User.Read.All" in response.json()["error"]["message"]


def test_user_control_validates(ctl: httpx.Client) -> None:
    missing = ctl.post("/users", json={"displayName": "No UPN"})
    assert missing.status_code == 422
    assert missing.json()["error"]["message"].startswith("userPrincipalName: ")
    taken = ctl.post("/users", json={"userPrincipalName": "MARTA@contoso.example"})
    assert taken.status_code == 422
    duplicate = ctl.post("/users", json={"id": fx.OLAF, "userPrincipalName": "x@y.z"})
    assert duplicate.json()["error"]["message"].startswith("id: duplicate id")
    bad = ctl.post("/users", json={"userPrincipalName": "a@b.c", "displayName": 5})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("displayName: ")
    assert ctl.patch("/users/nobody", json={"mail": None}).status_code == 404
    assert ctl.delete("/users/nobody").status_code == 404
    assert ctl.patch(f"/users/{fx.OLAF}", json={"id": "x"}).status_code == 422
    upn = ctl.patch(f"/users/{fx.OLAF}", json={"userPrincipalName": "tomas@contoso.example"})
    assert upn.status_code == 422
    added = _add(ctl, "defaults")
    assert added["displayName"] == "Defaults"
    assert added["mail"] is None
    assert added["applicationAccessPolicy"] is None


def test_index_follows_every_change(
    emulator: Emulator, ctl: httpx.Client, graph: httpx.Client
) -> None:
    def listed() -> set[str]:
        return {w["id"] for w in graph.get(W, params={"$top": "50"}).json()["value"]}

    assert fx.HIDDEN not in listed()
    ctl.patch(f"/users/{fx.OLAF}", json={"applicationAccessPolicy": "Webinar-Sync"})
    assert fx.HIDDEN in listed()
    assert graph.get(f"{W}/{fx.HIDDEN}").status_code == 200
    ctl.patch(f"/users/{fx.OLAF}", json={"userPrincipalName": "olaf.h@contoso.example"})
    assert graph.get("/users/OLAF.H@contoso.example").json()["id"] == fx.OLAF
    assert graph.get("/users/olaf@contoso.example").status_code == 404
    ctl.delete(f"/users/{fx.OLAF}")
    assert fx.HIDDEN not in listed()
    readded = _add(ctl, "olaf", id=fx.OLAF, applicationAccessPolicy="Webinar-Sync")
    assert readded["id"] == fx.OLAF
    assert fx.HIDDEN in listed()
    ctl.post("/reset")
    with emulator.client() as fresh:
        assert fresh.get(f"/users/{fx.OLAF}").json()["userPrincipalName"] == "olaf@contoso.example"
        assert fresh.get(f"{W}/{fx.HIDDEN}").status_code == 403


# ------------------------------------------------------------------ the large tenant


def test_large_tenant_is_valid_and_served_quickly() -> None:
    started = time.monotonic()
    data = large_tenant(users=50_000, organizers=400, ungranted=40, webinars=2_000, townhalls=20)
    state = EmulatorState(data, page_size=100)
    built = time.monotonic() - started
    assert len(data["users"]) == 50_000
    organizers = data["users"][:400]
    ungranted = {u["id"] for u in organizers if u["applicationAccessPolicy"] is None}
    assert len(ungranted) == 40
    assert all(u["applicationAccessPolicy"] for u in data["users"][400:])
    assert all(len(w["sessions"]) == 1 and len(w["registrations"]) <= 2 for w in data["webinars"])
    expected = [w["id"] for w in data["webinars"] if state.organizer_id(w) not in ungranted]
    assert len(expected) == 1_800  # 2,000 webinars dealt round-robin: 5 per organizer
    assert large_tenant(users=10, organizers=2, ungranted=1, webinars=3, seed=5) == large_tenant(
        users=10, organizers=2, ungranted=1, webinars=3, seed=5
    )
    with serve(state) as emulator:
        token = httpx.post(
            f"{emulator.base_url}/{state.tenant['id']}/oauth2/v2.0/token",
            verify=SSL,
            data={
                "client_id": APP,
                "client_secret": SECRET,
                "scope": GRAPH_SCOPE,
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        with emulator.client(token) as graph:
            started = time.monotonic()
            listed: list[str] = []
            url: str | None = f"{W}?$top=999"
            while url:
                body = graph.get(url).json()
                listed += [w["id"] for w in body["value"]]
                url = body.get("@odata.nextLink")
            users, _, pages = _round(graph, f"{DELTA}?$top=999&$select=id")
            served = time.monotonic() - started
    assert sorted(listed) == sorted(expected)
    assert len(users) == 50_000
    assert pages == 51
    # generous bounds for a busy two-core machine; a scan per webinar would take minutes
    assert built < 10, built
    assert served < 10, served


def test_large_tenant_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="organizers"):
        large_tenant(users=5, organizers=6, ungranted=0, webinars=1)
    with pytest.raises(ValueError, match="organizer"):
        large_tenant(users=5, organizers=0, ungranted=0, webinars=1)
