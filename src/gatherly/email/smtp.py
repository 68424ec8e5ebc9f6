"""Handing messages to an SMTP server (``GATHERLY_SMTP_URL``): one connection reused for a
run, a pace of so many messages a second, DKIM signatures when a key is configured, and
every answer classified — sent, a hard bounce (5xx for the recipient), a message refused
(5xx for the content), deferred (4xx, the connection lost: try this one again later), or
the server unavailable (no connection, TLS or login failed: nothing was tried).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr
from types import TracebackType
from typing import Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from gatherly.core.config import Settings
from gatherly.core.exceptions import ValidationFailed

Tls = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class Server:
    """Where and how to connect, from ``GATHERLY_SMTP_URL``."""

    host: str
    port: int
    tls: Tls
    username: str | None
    password: str | None

    @property
    def label(self) -> str:
        """The server as messages name it (never with its password)."""
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> Server:
    """``smtp://user:pass@host:587`` (STARTTLS), ``smtps://…:465`` or
    ``smtp://host:25?tls=none``; ValidationFailed (field ``smtp_url``) says what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValidationFailed("must start with smtp:// or smtps://", field="smtp_url")
    if not parts.hostname:
        raise ValidationFailed("names no host", field="smtp_url")
    try:
        port = parts.port
    except ValueError:
        raise ValidationFailed("has a port that is not a number", field="smtp_url") from None
    query = parse_qs(parts.query)
    tls: Tls = "ssl" if parts.scheme == "smtps" else "starttls"
    if query.get("tls") == ["none"]:
        if parts.scheme == "smtps":
            raise ValidationFailed("smtps:// always uses TLS: drop ?tls=none", field="smtp_url")
        if parts.username:
            raise ValidationFailed(
                "a password is never sent without TLS: drop ?tls=none or the user",
                field="smtp_url",
            )
        tls = "none"
    elif set(query) - {"tls"} or query.get("tls", ["starttls"]) != ["starttls"]:
        raise ValidationFailed("the only option is ?tls=none", field="smtp_url")
    return Server(
        host=parts.hostname,
        port=port or (465 if tls == "ssl" else 587 if tls == "starttls" else 25),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def server(settings: Settings) -> Server:
    """The configured server; ValidationFailed when none is."""
    if settings.smtp_url is None:
        raise ValidationFailed(
            "no SMTP server is configured: set GATHERLY_SMTP_URL", field="smtp_url"
        )
    return parse_url(settings.smtp_url.get_secret_value())


SENT: Final = "sent"
HARD_BOUNCE: Final = "hard_bounce"  # 5xx for the recipient: the address does not take mail
REJECTED: Final = "rejected"  # 5xx for the sender or the message itself
DEFERRED: Final = "deferred"  # 4xx, or the connection failed: try again later
UNAVAILABLE: Final = "unavailable"  # no connection (refused, TLS, login): nothing was tried


@dataclass(frozen=True)
class Outcome:
    """What the server said to one message."""

    status: Literal["sent", "hard_bounce", "rejected", "deferred", "unavailable"]
    detail: str
    code: int | None = None


def _answer(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(said.split())}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__


class Signer:
    """DKIM signatures (rsa-sha256) with one private key, for the sender's domain or a fixed one."""

    HEADERS = (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"reply-to",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"mime-version",
        b"content-type",
    )

    def __init__(self, key: bytes, selector: str, domain: str | None) -> None:
        self.key, self.selector, self.domain = key, selector, domain

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        """A signer when ``dkim_key_file`` is set (its errors name the setting)."""
        if settings.dkim_key_file is None:
            return None
        try:
            key = settings.dkim_key_file.read_bytes()
        except OSError as exc:
            raise ValidationFailed(
                f"cannot read {settings.dkim_key_file}: {exc.strerror}", field="dkim_key_file"
            ) from None
        return cls(key, settings.dkim_selector, settings.dkim_domain)

    def sign(self, data: bytes, sender: str) -> bytes:
        """``data`` with a DKIM-Signature header in front."""
        import dkim  # loaded only where a key is configured (it pulls in a DNS resolver)

        domain = self.domain or parseaddr(sender)[1].rpartition("@")[2]
        header = dkim.sign(
            data,
            self.selector.encode(),
            domain.encode(),
            self.key,
            include_headers=list(self.HEADERS),
        )
        return bytes(header) + data


class Mailer:
    """One SMTP connection, opened on first use and reused, paced to the configured rate.

    ``send`` never raises for what the server or the network does: it returns an
    :class:`Outcome`. Use as a context manager (the connection is closed at the end)."""

    def __init__(self, settings: Settings) -> None:
        self.server = server(settings)
        self.signer = Signer.from_settings(settings)
        self.timeout = settings.smtp_timeout_seconds
        self.interval = 1.0 / settings.smtp_rate_per_second
        self.ca_file = settings.smtp_ca_file
        self._smtp: smtplib.SMTP | None = None
        self._next = 0.0

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        smtp: smtplib.SMTP
        if s.tls == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        try:
            if s.tls == "starttls":
                smtp.starttls(context=self._tls())  # raises when the server does not offer it
            if s.username:
                smtp.login(s.username, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        """Say goodbye to the server (quietly: it may be gone already)."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _pace(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval

    def send(self, message: Message, *, sender: str, recipient: str) -> Outcome:
        """Hand one message to the server for one recipient (its envelope sender is
        ``sender``, where bounces return)."""
        data = message.as_bytes()
        if self.signer is not None:
            data = self.signer.sign(data, str(message["From"]))
        self._pace()
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                return Outcome(UNAVAILABLE, f"cannot use {self.server.label}: {_reason(exc)}")
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            # An address beyond ASCII (jürgen@bücher.example) needs SMTPUTF8 (RFC 6531).
            try:
                self._smtp.ehlo_or_helo_if_needed()
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                return Outcome(DEFERRED, f"lost {self.server.label}: {_reason(exc)}")
            if not self._smtp.has_extn("smtputf8"):
                return Outcome(
                    REJECTED,
                    f"{self.server.label} does not take addresses beyond ASCII (no SMTPUTF8)",
                )
            options = ["SMTPUTF8"]
        try:
            self._smtp.sendmail(sender, [recipient], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients[recipient]
            return self._refused(code, text, HARD_BOUNCE)
        except smtplib.SMTPResponseException as exc:  # sender or data refused, or 421
            if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
                self._drop()
            return self._refused(exc.smtp_code, exc.smtp_error, REJECTED)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Outcome(DEFERRED, f"lost {self.server.label}: {_reason(exc)}")
        except UnicodeError as exc:  # an address the connection cannot carry
            self._drop()
            return Outcome(REJECTED, f"the address cannot be sent: {exc}")
        return Outcome(SENT, "250 accepted", 250)

    def _refused(
        self, code: int, text: bytes | str, permanent: Literal["hard_bounce", "rejected"]
    ) -> Outcome:
        # (smtplib resets the transaction after a refusal, ready for the next message)
        said = _answer(code, text)
        if code == 421:  # the server is closing the connection
            self._drop()
        if 500 <= code < 600:
            return Outcome(permanent, said, code)
        return Outcome(DEFERRED, said, code)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None
