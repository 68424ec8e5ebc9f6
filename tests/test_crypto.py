"""The installation's secret key and the encryption of stored secrets (issue 12, F6): real key
files under ``tmp_path``, never ``./var``."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from gatherly.app import create_app
from gatherly.core import crypto
from gatherly.core.config import Settings
from gatherly.core.exceptions import FatalSyncError
from gatherly.teams import connection as teams
from gatherly.teams.models import TeamsConnection

LONG_KEY = "k" * 40


def legacy_fernet(key: str) -> Fernet:
    """The Teams secret's key as releases before issue 12 derived it (written out here)."""
    digest = hashlib.sha256(b"gatherly/teams-client-secret\0" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GATHERLY_SECRET_KEY`` unset (the suite sets one for every other test)."""
    monkeypatch.delenv("GATHERLY_SECRET_KEY", raising=False)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0: a file mode can only come from the code that creates the file."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("no_key", "open_umask")
def test_the_first_run_generates_a_private_key_file_and_later_runs_reuse_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "data" / "secret.key"  # the folder does not exist yet
    settings = Settings(secret_key_file=key_file)
    assert settings.secret_key is None  # nothing is read or written when Settings is built
    assert not key_file.exists()

    with caplog.at_level(logging.WARNING, logger="gatherly.core.crypto"):
        first = crypto.resolve(settings)
    assert first.secret_key is not None
    key = first.secret_key.get_secret_value()
    assert len(key) >= crypto.MIN_LENGTH
    assert key_file.read_text() == key + "\n"
    assert mode(key_file) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]  # no temporary left
    assert any(f"generated a random secret key into {key_file}" in m for m in caplog.messages)

    caplog.clear()
    again = crypto.resolve(Settings(secret_key_file=key_file))
    assert again.secret_key is not None
    assert again.secret_key.get_secret_value() == key
    assert caplog.messages == []  # reusing a good key says nothing
    assert crypto.resolve(again) is again  # resolved settings are not checked twice


@pytest.mark.usefixtures("no_key")
def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    barrier = threading.Barrier(8)
    keys: list[str] = []

    def start() -> None:
        barrier.wait()
        keys.append(crypto.secret_key(Settings(secret_key_file=key_file)).get_secret_value())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8
    assert set(keys) == {key_file.read_text().strip()}
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


@pytest.mark.usefixtures("no_key")
def test_a_key_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text(LONG_KEY + "\n")
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gatherly.core.crypto"):
        settings = crypto.resolve(Settings(secret_key_file=key_file))
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == LONG_KEY
    assert any("can be read by other users (mode 0644)" in m for m in caplog.messages)


@pytest.mark.usefixtures("no_key")
def test_an_empty_or_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text("\n")
    with pytest.raises(crypto.SecretKeyRefused, match="is empty") as refused:
        crypto.resolve(Settings(secret_key_file=key_file))
    assert refused.value.field == "GATHERLY_SECRET_KEY_FILE"
    assert key_file.read_text() == "\n"  # never overwritten: it may be a damaged real key

    folder = tmp_path / "folder.key"
    folder.mkdir()
    with pytest.raises(crypto.SecretKeyRefused, match="cannot read the secret key file"):
        crypto.resolve(Settings(secret_key_file=folder))


def test_the_old_public_default_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    settings = Settings(
        secret_key=SecretStr(crypto.PUBLIC_DEFAULT), database_url=f"sqlite:///{tmp_path}/g.db"
    )
    with pytest.raises(crypto.SecretKeyRefused) as refused:
        crypto.resolve(settings)
    assert refused.value.field == "GATHERLY_SECRET_KEY"
    assert "'change-me-in-production', the old default" in refused.value.message
    assert "gatherly secret-key rotate --old-key-file" in refused.value.message
    with pytest.raises(crypto.SecretKeyRefused):
        create_app(settings)
    # Code that was handed unresolved settings cannot use it either.
    with pytest.raises(crypto.SecretKeyRefused):
        teams.encrypt_secret(settings, SecretStr("s3cret"))
    with pytest.raises(crypto.SecretKeyRefused, match="is empty"):
        crypto.resolve(Settings(secret_key=SecretStr("  ")))


def test_a_short_key_is_warned_about_when_the_app_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        secret_key=SecretStr("too-short"), database_url=f"sqlite:///{tmp_path}/g.db"
    )
    with caplog.at_level(logging.WARNING, logger="gatherly.core.crypto"):
        app = create_app(settings)
    app.state.engine.dispose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "GATHERLY_SECRET_KEY is only 9 characters" in warnings[0].getMessage()
    assert app.state.settings.secret_key.get_secret_value() == "too-short"

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gatherly.core.crypto"):
        app = create_app(
            Settings(secret_key=SecretStr(LONG_KEY), database_url=settings.database_url)
        )
    app.state.engine.dispose()
    assert caplog.messages == []


@pytest.mark.usefixtures("no_key")
def test_a_stored_secret_is_useless_with_the_public_default(tmp_path: Path) -> None:
    settings = crypto.resolve(Settings(secret_key_file=tmp_path / "secret.key"))
    token = teams.encrypt_secret(settings, SecretStr("the-teams-client-secret"))
    assert "the-teams-client-secret" not in token
    with pytest.raises(InvalidToken):
        legacy_fernet(crypto.PUBLIC_DEFAULT).decrypt(token.encode())
    connection = TeamsConnection(client_secret_encrypted=token)
    assert teams.client_secret(settings, connection).get_secret_value() == (
        "the-teams-client-secret"
    )


def test_secrets_stored_under_a_configured_key_before_stay_readable() -> None:
    token = legacy_fernet(LONG_KEY).encrypt(b"saved-by-an-older-release").decode()
    settings = Settings(secret_key=SecretStr(LONG_KEY))
    connection = TeamsConnection(client_secret_encrypted=token)
    assert teams.client_secret(settings, connection).get_secret_value() == (
        "saved-by-an-older-release"
    )


def test_each_purpose_has_its_own_key_and_a_wrong_key_is_named() -> None:
    settings = Settings(secret_key=SecretStr(LONG_KEY))
    token = crypto.encrypt(settings, SecretStr("x"), purpose="one")
    assert crypto.decrypt(settings, token, purpose="one").get_secret_value() == "x"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(settings, token, purpose="two")
    other = Settings(secret_key=SecretStr("z" * 40))
    with pytest.raises(FatalSyncError, match="gatherly secret-key rotate --old-key-file"):
        teams.client_secret(other, TeamsConnection(client_secret_encrypted=token))


def test_the_teams_client_secret_is_a_registered_encrypted_column() -> None:
    labels = {c.label: c.purpose for c in crypto.encrypted_columns()}
    assert labels["teams_connection.client_secret_encrypted"] == teams.ENCRYPTION_PURPOSE


@pytest.mark.usefixtures("no_key")
def test_a_key_file_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    key_file = tmp_path / "not-a-folder" / "secret.key"
    with pytest.raises(crypto.SecretKeyRefused, match="cannot write the secret key file") as e:
        crypto.resolve(Settings(secret_key_file=key_file))
    assert e.value.field == "GATHERLY_SECRET_KEY_FILE"
