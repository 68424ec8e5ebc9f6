"""What every CLI sub-app shares: JSON output, finding a user, acting as one."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    """Indented JSON on stdout (dates and other objects as text)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


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
