"""A real SMTP server (aiosmtpd) on a loopback port that keeps every message it accepts,
and answers chosen recipients with chosen codes (a 550 for a hard bounce, 451s for a
server that defers), for the email tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Caught:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    """The server's state: what it caught, and how it answers whom."""

    port: int
    caught: list[Caught] = field(default_factory=list)
    # recipient → answers to give at RCPT, in turn (the last one repeats); "250" accepts
    answers: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def to(self, address: str) -> list[Caught]:
        with self.lock:
            return [c for c in self.caught if address in c.rcpt_tos]

    def count(self) -> int:
        with self.lock:
            return len(self.caught)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            queue = self.answers.get(address)
            answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.caught.append(
                Caught(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_sink(port: int | None = None) -> Iterator[Sink]:
    """An SMTP server on 127.0.0.1 for the duration (plain SMTP, no TLS)."""
    sink = Sink(port or free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
