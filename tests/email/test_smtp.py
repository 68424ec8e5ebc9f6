"""The SMTP connection (issue 15) against real servers on loopback: STARTTLS required by
smtp://, TLS from the start with smtps://, login only over TLS, the server's certificate
checked, and each failure said in words — never a message sent in the clear by mistake."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from gatherly.core.config import Settings
from gatherly.core.exceptions import ValidationFailed
from gatherly.email import smtp
from tests.smtp_sink import Sink, free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"news", b"p@ss")
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def _serve(sink: Sink, **options: Any) -> Iterator[Sink]:
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def starttls(certificate: tuple[Path, Path]) -> Iterator[Sink]:
    """STARTTLS required, and a login (only over TLS)."""
    yield from _serve(
        Sink(free_port()),
        tls_context=_server_tls(certificate),
        require_starttls=True,
        authenticator=_login,
        auth_require_tls=True,
        auth_required=True,
    )


def _mail() -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "news@a.example", "ada@x.example", "Hi"
    mail.set_content("Hello")
    return mail


def _send(url: str, ca: Path | None) -> smtp.Outcome:
    settings = Settings(smtp_url=SecretStr(url), smtp_ca_file=ca, smtp_timeout_seconds=5)
    with smtp.Mailer(settings) as mailer:
        return mailer.send(_mail(), sender="news@a.example", recipient="ada@x.example")


def test_starttls_with_a_login_sends_and_every_failure_is_said(
    starttls: Sink, certificate: tuple[Path, Path]
) -> None:
    cert, _key = certificate
    url = f"smtp://news:p%40ss@127.0.0.1:{starttls.port}"
    assert _send(url, cert).status == "sent"
    assert [c.rcpt_tos for c in starttls.caught] == [["ada@x.example"]]
    wrong = _send(f"smtp://news:nope@127.0.0.1:{starttls.port}", cert)
    assert wrong.status == "unavailable"
    assert wrong.detail.startswith(f"cannot use 127.0.0.1:{starttls.port}: 535")
    untrusted = _send(url, None)  # a self-signed certificate nobody vouched for
    assert untrusted.status == "unavailable"
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert len(starttls.caught) == 1


def test_smtps_sends_over_tls_from_the_start(certificate: tuple[Path, Path]) -> None:
    cert, _key = certificate
    for sink in _serve(
        Sink(free_port()),
        ssl_context=_server_tls(certificate),
        authenticator=_login,
        auth_require_tls=False,  # the whole connection is TLS (aiosmtpd does not see it)
    ):
        assert _send(f"smtps://news:p%40ss@127.0.0.1:{sink.port}", cert).status == "sent"
        assert len(sink.caught) == 1


def test_smtp_without_tls_is_refused_unless_asked_for_and_never_with_a_password() -> None:
    for sink in _serve(Sink(free_port())):  # a plain server offering no STARTTLS
        refused = _send(f"smtp://127.0.0.1:{sink.port}", None)
        assert refused.status == "unavailable"
        assert "STARTTLS" in refused.detail
        assert _send(f"smtp://127.0.0.1:{sink.port}?tls=none", None).status == "sent"
        assert len(sink.caught) == 1


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://mail.example", "must start with smtp:// or smtps://"),
        ("smtp://", "names no host"),
        ("smtp://mail.example:port", "has a port that is not a number"),
        ("smtp://u:p@mail.example?tls=none", "a password is never sent without TLS"),
        ("smtps://mail.example?tls=none", "smtps:// always uses TLS"),
        ("smtp://mail.example?verify=no", "the only option is ?tls=none"),
    ],
)
def test_a_bad_smtp_url_says_what_is_wrong(url: str, said: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        smtp.parse_url(url)
    assert caught.value.field == "smtp_url"
    assert said in caught.value.message


def test_default_ports_follow_the_scheme() -> None:
    assert smtp.parse_url("smtp://mail.example").port == 587
    assert smtp.parse_url("smtps://mail.example").port == 465
    assert smtp.parse_url("smtp://mail.example?tls=none").port == 25
    with pytest.raises(ValidationFailed, match="no SMTP server is configured"):
        smtp.Mailer(Settings())


def test_an_address_beyond_ascii_goes_only_to_a_server_that_takes_smtputf8() -> None:
    for sink in _serve(Sink(free_port()), enable_SMTPUTF8=False):
        refused = _send_to(f"smtp://127.0.0.1:{sink.port}?tls=none", "jürgen@bücher.example")
        assert refused.status == "rejected"
        assert "no SMTPUTF8" in refused.detail
        assert _send_to(f"smtp://127.0.0.1:{sink.port}?tls=none", "ada@x.example").status == "sent"
    for sink in _serve(Sink(free_port()), enable_SMTPUTF8=True):
        assert (
            _send_to(f"smtp://127.0.0.1:{sink.port}?tls=none", "jürgen@bücher.example").status
            == "sent"
        )
        assert sink.caught[0].rcpt_tos == ["jürgen@bücher.example"]


def _send_to(url: str, recipient: str) -> smtp.Outcome:
    with smtp.Mailer(Settings(smtp_url=SecretStr(url), smtp_timeout_seconds=5)) as mailer:
        return mailer.send(_mail(), sender="news@a.example", recipient=recipient)
