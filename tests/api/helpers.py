"""Helpers for the API suite: error assertions, page walking and lead records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gatherly.contact.models import Lead
from gatherly.org.models import Team, User

API = "/api/v1"
Headers = dict[str, str]


def assert_error(response: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Check the status and the ``{"error": {"code", "message", "field"}}`` body; return it."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert isinstance(error["message"], str)
    assert error["message"]
    if field is not None:
        assert error["field"] == field, error
    return dict(error)


def walk(
    client: TestClient, kind: str, headers: Headers, limit: int = 2, **params: Any
) -> list[dict[str, Any]]:
    """Every item of ``/{kind}`` across all pages, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        response = client.get(f"{API}/{kind}", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next cursor must not be empty"
    raise AssertionError("paging did not end")


def walk_ids(
    client: TestClient, kind: str, headers: Headers, limit: int = 2, **params: Any
) -> list[int]:
    """The ids across all pages, in order (duplicates kept so tests can spot them)."""
    return [item["id"] for item in walk(client, kind, headers, limit, **params)]


def count(client: TestClient, kind: str, headers: Headers, **params: Any) -> int:
    """``/{kind}/count`` for the caller."""
    response = client.get(f"{API}/{kind}/count", params=params, headers=headers)
    assert response.status_code == 200, response.text
    value = response.json()["count"]
    assert isinstance(value, int)
    return value


def visible_ids(
    client: TestClient, kind: str, headers: Headers, limit: int = 50, **params: Any
) -> set[int]:
    """The ids the caller can list, checked to equal ``/count`` and to hold no duplicates."""
    ids = walk_ids(client, kind, headers, limit, **params)
    assert len(ids) == len(set(ids)), f"duplicates across pages: {ids}"
    assert count(client, kind, headers, **params) == len(ids), "count differs from the list"
    return set(ids)


def lead(db: Session, owner: User | Team, *, bu_id: int | None = None, **fields: Any) -> Lead:
    """A lead owned by a user or team, in the owner's BU unless ``bu_id`` says otherwise."""
    record = Lead(
        owner_type="team" if isinstance(owner, Team) else "user",
        owner_id=owner.id,
        owning_bu_id=bu_id if bu_id is not None else owner.business_unit_id,
        **fields,
    )
    db.add(record)
    db.flush()
    return record


@dataclass(frozen=True)
class Executed:
    """One statement the app ran: its SQL, the thread it ran on, and the isolation level its
    connection was asked for (None: the engine's default, in a transaction)."""

    sql: str
    thread: str
    isolation_level: str | None


@contextmanager
def statements(client: TestClient) -> Iterator[list[Executed]]:
    """Every statement the client's app runs meanwhile."""
    seen: list[Executed] = []

    def note(conn: Connection, _cursor: Any, sql: str, *_args: Any) -> None:
        level = conn.get_execution_options().get("isolation_level")
        seen.append(Executed(sql, threading.current_thread().name, level))

    engine = client.app.state.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
