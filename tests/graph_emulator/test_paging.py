"""$top and @odata.nextLink over real HTTP (reference §2.6)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.graph_emulator import fixture as fx
from tests.graph_emulator.conftest import Emulator

REGISTRATIONS = f"/solutions/virtualEvents/webinars/{fx.LAUNCH}/registrations"


def _walk(graph: httpx.Client, url: str) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = graph.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
        assert pages < 50
    return items, pages


@pytest.mark.parametrize(("top", "pages"), [(4, 6), (23, 1), (100, 1)])
def test_walk_all_pages_with_top(graph: httpx.Client, top: int, pages: int) -> None:
    items, walked = _walk(graph, f"{REGISTRATIONS}?$top={top}")
    ids = [r["id"] for r in items]
    assert len(ids) == len(set(ids)) == fx.REGISTRATION_COUNT
    assert walked == pages


def test_default_page_size_and_absolute_next_link(emulator: Emulator, graph: httpx.Client) -> None:
    first = graph.get(REGISTRATIONS).json()
    assert len(first["value"]) == 10
    link = urlsplit(first["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == emulator.base_url
    assert link.path == f"/v1.0{REGISTRATIONS}"
    assert "$skiptoken=" in link.query
    items, pages = _walk(graph, REGISTRATIONS)
    assert pages == 3
    assert len({r["id"] for r in items}) == fx.REGISTRATION_COUNT


def test_next_link_keeps_other_options(graph: httpx.Client) -> None:
    body = graph.get(REGISTRATIONS, params={"$top": "5", "$count": "true"}).json()
    assert body["@odata.count"] == fx.REGISTRATION_COUNT
    second = graph.get(body["@odata.nextLink"]).json()
    assert len(second["value"]) == 5
    assert second["@odata.count"] == fx.REGISTRATION_COUNT


def test_bad_top_and_skiptoken_are_400(graph: httpx.Client) -> None:
    assert graph.get(f"{REGISTRATIONS}?$top=0").status_code == 400
    assert graph.get(f"{REGISTRATIONS}?$skiptoken=%%%").status_code == 400
    negative = base64.urlsafe_b64encode(b"-5").decode()
    assert graph.get(f"{REGISTRATIONS}?$skiptoken={negative}").status_code == 400
