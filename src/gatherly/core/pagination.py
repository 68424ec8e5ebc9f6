"""Keyset (cursor) paging with a whitelisted sort, for every list the API serves."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, and_, literal, or_
from sqlalchemy.orm import Session

from gatherly.core.exceptions import ValidationFailed

MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursor of the next page (None on the last)."""

    items: Sequence[Any]
    next_cursor: str | None


def _encode(sort: str, value: Any, row_id: int) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([sort, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, row_id = json.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
        if not isinstance(row_id, int):
            raise TypeError(row_id)
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ValidationFailed("cursor is not one this API issued", field="cursor") from exc
    if cursor_sort != sort:
        raise ValidationFailed(
            f"cursor was issued for sort {cursor_sort!r}, not {sort!r}", field="cursor"
        )
    return value, row_id


def _check_type(value: Any, key: SQLColumnExpression[Any]) -> None:
    """A cursor is opaque, but a forged one must not reach the database with a wrong type."""
    try:
        expected = getattr(key, "type").python_type  # noqa: B009 - typed as a protocol
    except (AttributeError, NotImplementedError):
        return
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ValidationFailed("cursor is not one this API issued", field="cursor")


def paginate(
    db: Session,
    stmt: Select[Any],
    *,
    id_column: SQLColumnExpression[int],
    sortable: Mapping[str, SQLColumnExpression[Any]],
    sort: str,
    cursor: str | None,
    limit: int,
) -> Page:
    """Order ``stmt`` by ``sort`` (a key of ``sortable``, ``-`` for descending) then id.

    Args:
        stmt: a select of ORM entities, already filtered (and access-scoped).
        id_column: the unique tie-breaker.
        sortable: the public sort names and their column expressions.
        sort: e.g. ``-modified_at``.
        cursor: the ``next_cursor`` of the previous page, or None.
        limit: rows per page, 1 … MAX_LIMIT.

    Raises:
        ValidationFailed: unknown sort, bad limit or bad cursor (``field`` says which).
    """
    name = sort.lstrip("-")
    descending = sort.startswith("-")
    if name not in sortable:
        allowed = ", ".join(sorted(sortable))
        raise ValidationFailed(f"cannot sort by {name!r}; use one of {allowed}", field="sort")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    key = sortable[name]
    if cursor:
        value, last_id = _decode(cursor, sort)
        _check_type(value, key)
        bound = literal(value, type_=getattr(key, "type", None))
        if descending:
            stmt = stmt.where(or_(key < bound, and_(key == bound, id_column < last_id)))
        else:
            stmt = stmt.where(or_(key > bound, and_(key == bound, id_column > last_id)))
    order = (key.desc(), id_column.desc()) if descending else (key.asc(), id_column.asc())
    # The sort key is selected with the row, so the cursor holds exactly what SQL compared
    # (sort keys over nullable columns are coalesced by their sortable map).
    rows = list(db.execute(stmt.add_columns(key).order_by(*order).limit(limit + 1)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last, value = rows[-1]
        next_cursor = _encode(sort, value, last.id)
    return Page(items=[row[0] for row in rows], next_cursor=next_cursor)
