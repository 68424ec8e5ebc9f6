"""What every CLI sub-app shares: JSON output, finding a user, acting as one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydantic_core
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal, load_principal
from gatherly.core.bounds import parse_id
from gatherly.core.config import Settings
from gatherly.core.db import session_scope
from gatherly.core.exceptions import NotFound
from gatherly.org import service as org
from gatherly.org.models import User


def print_json(data: Any) -> None:
    """Indented JSON on stdout, written as the API writes it (pydantic's encoder): datetimes in
    ISO 8601 with their zone (``2026-10-20T10:00:00Z``), other unknown objects as text."""
    sys.stdout.write(pydantic_core.to_json(data, indent=2, fallback=str).decode() + "\n")


def find_user(db: Session, ref: str, field: str) -> User:
    """A user by id or username (NotFound naming ``field``)."""
    user_id = parse_id(ref)
    if user_id is not None:
        return org.get_user(db, user_id=user_id, field=field)
    user = db.scalar(select(User).where(User.username == ref))
    if user is None:
        raise NotFound(f"user {ref!r} not found", field=field)
    return user


@contextmanager
def acting(ref: str) -> Iterator[tuple[Session, Principal]]:
    """A committed-on-success session and the ``--as`` user's principal."""
    with session_scope(Settings().database_url) as db:
        yield db, load_principal(db, find_user(db, ref, "as").id)
