"""A local mail catcher for trying Gatherly without a mail server: an SMTP server
(aiosmtpd) on loopback that keeps every message it receives as an ``.eml`` file, and the
functions the *Mail catcher* page reads them with. ``make demo`` starts one; ``gatherly
mail-catcher`` runs one on its own. Never a way to deliver mail: nothing leaves it.
"""

from __future__ import annotations

import html as htmlmod
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from gatherly.core.config import Settings
from gatherly.core.exceptions import NotFound
from gatherly.email import tokens

NAME = re.compile(r"^\d{19}-[0-9a-f]{8}\.eml$")  # what the catcher names its files
KEEP = 5000  # files kept: the oldest go beyond this


class _Keeper:
    """aiosmtpd's handler: each message to a file of its own, written then renamed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.time_ns():019d}-{secrets.token_hex(4)}.eml"
        envelope_to = ", ".join(envelope.rcpt_tos)
        data = f"X-Caught-For: {envelope_to}\r\n".encode() + bytes(envelope.content)
        partial = self.directory / f".{name}.part"
        partial.write_bytes(data)
        partial.rename(self.directory / name)
        for old in sorted(self.directory.glob("*.eml"))[:-KEEP]:
            old.unlink(missing_ok=True)
        return "250 Message caught (it goes no further)"


@contextmanager
def running(directory: Path, *, host: str = "127.0.0.1", port: int = 8025) -> Iterator[str]:
    """A catcher on ``host:port`` keeping mail in ``directory``; yields the SMTP URL to
    send to (``smtp://host:port?tls=none``)."""
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keeper(directory), hostname=host, port=port)
    controller.start()
    try:
        yield f"smtp://{host}:{port}?tls=none"
    finally:
        controller.stop()


@dataclass(frozen=True)
class Caught:
    """One caught message, as the list shows it."""

    name: str
    to: str
    sender: str
    subject: str
    date: datetime | None


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _date(message: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        return None


def caught(directory: Path, *, limit: int = 200) -> list[Caught]:
    """The newest caught messages first (their headers only)."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.eml"), reverse=True)[:limit]:
        with path.open("rb") as f:
            message = BytesHeaderParser(policy=policy.default).parse(f)  # the headers only
        found.append(
            Caught(
                name=path.name,
                to=str(message["X-Caught-For"] or message["To"] or ""),
                sender=str(message["From"] or ""),
                subject=str(message["Subject"] or ""),
                date=_date(message),
            )
        )
    return found


@dataclass(frozen=True)
class Opened:
    """One caught message, whole."""

    caught: Caught
    headers: list[tuple[str, str]]
    text: str
    html: str


def read(directory: Path, name: str) -> Opened:
    """A caught message by its file name (NotFound for any other name)."""
    path = directory / name
    if not NAME.match(name) or not path.is_file():
        raise NotFound(f"no caught message {name!r}", field="name")
    message = _parse(path.read_bytes())
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return Opened(
        caught=Caught(
            name=name,
            to=str(message["X-Caught-For"] or ""),
            sender=str(message["From"] or ""),
            subject=str(message["Subject"] or ""),
            date=_date(message),
        ),
        headers=[(k, str(v)) for k, v in message.items() if k != "X-Caught-For"],
        text=str(text.get_content()) if text is not None else "",
        html=str(html.get_content()) if html is not None else "",
    )


_PIXEL = re.compile(r'<img\b[^>]*\bsrc="[^"]*/email/o/[^"]*"[^>]*>', re.IGNORECASE)
_CLICK = re.compile(r'href="[^"]*/email/c/([^"/]+)"', re.IGNORECASE)


def quiet(html: str, settings: Settings) -> str:
    """A caught message's HTML made safe to look at: without its open pixel, and its
    links leading straight where they lead (reading it here is not the recipient
    opening or clicking it)."""

    def straight(match: re.Match[str]) -> str:
        value = tokens.read(settings, tokens.CLICK, match.group(1))
        url = value[1] if isinstance(value, list) and len(value) == 2 else "#"
        return f'href="{htmlmod.escape(str(url), quote=True)}"'

    return _CLICK.sub(straight, _PIXEL.sub("", html))
