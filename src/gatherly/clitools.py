"""What every CLI sub-app shares: JSON output, finding a user, acting as one."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic_core
import typer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.core.config import Settings
from gatherly.core.db import session_scope
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.pagination import Page
from gatherly.org import service as org
from gatherly.org.directory import load_principal

M = TypeVar("M", bound=BaseModel)


def read_input(path: Path, *, field: str = "file") -> str:
    """A file's text (``-``: standard input) as UTF-8; a ValidationFailed naming the option
    when it cannot be read, so the CLI says so in one line."""
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"cannot read {path}: {exc}", field=field) from None


def validated(model: type[M], **data: Any) -> M:
    """Options checked with the API's input model, so a bad value is the CLI's one-line
    error naming the option (as ``--sender-email``), never a traceback."""
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationFailed(message[:1].lower() + message[1:], field=field) from None


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AsOpt = Annotated[
    str,
    typer.Option(
        "--as",
        help="Act as this user (username or id): only what their security roles allow is "
        "read or changed.",
    ),
]


def every_page(fetch: Callable[[str | None], Page]) -> list[Any]:
    """Every item of a paged service list, following its cursors (``fetch(cursor)``)."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def print_json(data: Any) -> None:
    """Indented JSON on stdout, written as the API writes it (pydantic's encoder): datetimes in
    ISO 8601 with their zone (``2026-10-20T10:00:00Z``), other unknown objects as text."""
    sys.stdout.write(pydantic_core.to_json(data, indent=2, fallback=str).decode() + "\n")


@contextmanager
def acting(ref: str) -> Iterator[tuple[Session, Principal]]:
    """A committed-on-success session and the ``--as`` user's principal."""
    with session_scope(Settings().database_url) as db:
        yield db, load_principal(db, org.find_user(db=db, ref=ref, field="as").id)
