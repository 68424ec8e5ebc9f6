"""Secrets at rest: the installation's secret key and purpose-bound encryption (docs/operations.md).

The key is ``GATHERLY_SECRET_KEY`` or, when that is unset, a random key the first run
writes to ``GATHERLY_SECRET_KEY_FILE`` (``var/secret.key``, mode 0600 from its first byte)
and later runs read back. There is no default anyone could read in the source: the old
one, ``change-me-in-production``, is refused. Entry points (the app factory, ``serve``,
``demo``, ``gatherly secret-key``) call :func:`resolve` once, which also warns about a
weak key; a :class:`Settings` nobody resolved still works, the key is looked up on use.

Domains register the columns that hold ciphertext (:func:`register_column`), so
:func:`rotate` re-encrypts every stored secret without knowing any domain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import inspect, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from gatherly.core.config import Settings
from gatherly.core.exceptions import GatherlyError

log = logging.getLogger(__name__)

KEY_VARIABLE = "GATHERLY_SECRET_KEY"
KEY_FILE_VARIABLE = "GATHERLY_SECRET_KEY_FILE"
# The default of releases before the generated key file: it is in the source, so it protects nothing.
PUBLIC_DEFAULT = "change-me-in-production"
MIN_LENGTH = 32
_GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class SecretKeyRefused(GatherlyError):
    """The configured secret key, or the key file, cannot be used."""

    code = "secret_key_refused"


class SecretUnreadable(GatherlyError):
    """A stored secret does not decrypt with the key at hand (the key changed since)."""

    status_code = 409
    code = "secret_unreadable"


# ------------------------------------------------------------------ the key


def generate_key() -> SecretStr:
    """A new random key: 48 bytes from ``secrets``, URL-safe base64 (64 characters)."""
    return SecretStr(secrets.token_urlsafe(48))


def check_key(value: str, *, source: str, field: str = KEY_VARIABLE) -> list[str]:
    """Warnings about a key; raises ``SecretKeyRefused`` for one that must not be used.

    Args:
        value: The key as configured.
        source: How to name it in messages (``GATHERLY_SECRET_KEY``, ``the key file …``).
        field: The setting the error names.

    Returns:
        Messages to log (a key shorter than ``MIN_LENGTH``); empty when the key is fine.

    Raises:
        SecretKeyRefused: The key is empty or the old public default.
    """
    if not value.strip():
        raise SecretKeyRefused(
            f"{source} is empty: unset {KEY_VARIABLE} to let Gatherly generate a key into "
            f"its key file, or set at least {MIN_LENGTH} random characters ({_GENERATE_HINT})",
            field=field,
        )
    if value.strip() == PUBLIC_DEFAULT:
        raise SecretKeyRefused(
            f"{source} is {PUBLIC_DEFAULT!r}, the old default printed in Gatherly's source: "
            "anyone could decrypt the stored secrets with it. Unset it to let Gatherly "
            f"generate a key, or set at least {MIN_LENGTH} random characters "
            f"({_GENERATE_HINT}); secrets stored under it move to the new key with "
            "`gatherly secret-key rotate --old-key-file FILE`",
            field=field,
        )
    if len(value) < MIN_LENGTH:
        return [
            f"{source} is only {len(value)} characters: stored secrets are as safe as the key "
            f"is hard to guess. Use at least {MIN_LENGTH} random characters and move the "
            "stored secrets to it with `gatherly secret-key rotate --new-key-file FILE`"
        ]
    return []


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` (which must not exist) with mode 0600 from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text + "\n")
        file.flush()
        os.fsync(file.fileno())


def stage_key_file(path: Path, key: SecretStr) -> Path:
    """Write ``key`` to a new private file beside ``path`` (to link or move into place)."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(staged, key.get_secret_value())
    except OSError as exc:
        raise SecretKeyRefused(
            f"cannot write the secret key file {path}: {exc.strerror}", field=KEY_FILE_VARIABLE
        ) from None
    return staged


def replace_key_file(staged: Path, path: Path) -> None:
    """Move a staged key over ``path`` in one step (``os.replace`` is atomic)."""
    os.replace(staged, path)


def _create_key_file(path: Path) -> bool:
    """Generate a key into ``path`` unless it exists; True when this call created it.

    The key is written and synced to a private temporary file first and then hard-linked
    to ``path``: the link never replaces a file, so of two processes starting at once
    one creates the key and the other reads it, and no reader ever sees a half-written key.
    """
    staged = stage_key_file(path, generate_key())
    try:
        os.link(staged, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise SecretKeyRefused(
            f"cannot create the secret key file {path}: {exc.strerror}; set {KEY_VARIABLE} "
            "or create the file yourself (one line, mode 0600)",
            field=KEY_FILE_VARIABLE,
        ) from None
    finally:
        staged.unlink(missing_ok=True)
    return True


def _file_key(path: Path) -> tuple[str, list[str]]:
    """The key kept in ``path`` (generated on first use) and warnings about it."""
    warnings: list[str] = []
    if not os.path.lexists(path) and _create_key_file(path):
        warnings.append(
            f"{KEY_VARIABLE} is not set: generated a random secret key into {path} (mode "
            "0600). Keep it with the database's backups: stored secrets cannot be read "
            "without it"
        )
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = stat.S_IMODE(path.stat().st_mode)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SecretKeyRefused(
            f"cannot read the secret key file {path}: {reason}", field=KEY_FILE_VARIABLE
        ) from None
    warnings += check_key(text, source=f"the secret key file {path}", field=KEY_FILE_VARIABLE)
    if os.name == "posix" and mode & 0o077:
        warnings.append(
            f"the secret key file {path} can be read by other users (mode {mode:04o}): "
            f"chmod 600 {path}"
        )
    return text, warnings


def _load(settings: Settings) -> SecretStr:
    """Check and log the configured key, or read (first: generate) the key file."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        warnings = check_key(value, source=KEY_VARIABLE)
    else:
        value, warnings = _file_key(settings.secret_key_file)
    for message in warnings:
        log.warning("%s", message)
    return SecretStr(value)


def resolve(settings: Settings) -> Settings:
    """``settings`` with its secret key filled in, checked once (entry points call this).

    Args:
        settings: Settings as built from the environment; ``secret_key`` may be unset.

    Returns:
        A copy whose ``secret_key`` is the configured key or the key file's (generated on
        the first run); the same object when it was resolved before.

    Raises:
        SecretKeyRefused: The key is empty or the old public default, or the key file
            cannot be read or created.

    Example:
        ``settings = crypto.resolve(Settings())`` — a short key is logged as a warning.
    """
    if settings._secret_key_resolved and settings.secret_key is not None:
        return settings
    resolved = settings.model_copy(update={"secret_key": _load(settings)})
    resolved._secret_key_resolved = True
    return resolved


def secret_key(settings: Settings) -> SecretStr:
    """The installation's key, from resolved settings or else looked up now."""
    if settings._secret_key_resolved and settings.secret_key is not None:
        return settings.secret_key
    return _load(settings)


# ------------------------------------------------------------------ encryption


def fernet(key: SecretStr, purpose: str) -> Fernet:
    """The Fernet key for one purpose: SHA-256 of the purpose and the installation's key.

    Each purpose gets its own key, so a ciphertext of one purpose never decrypts as
    another's. The derivation is the one releases before the generated key file used for the Teams
    client secret, so secrets stored under a configured key stay readable.
    """
    material = f"gatherly/{purpose}\0".encode() + key.get_secret_value().encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def encrypt(settings: Settings, plaintext: SecretStr, *, purpose: str) -> str:
    """``plaintext`` encrypted with the installation's key for ``purpose`` (Fernet token)."""
    token = fernet(secret_key(settings), purpose).encrypt(plaintext.get_secret_value().encode())
    return token.decode()


def decrypt(settings: Settings, token: str, *, purpose: str) -> SecretStr:
    """A stored secret decrypted; ``SecretUnreadable`` when the key is not the one it had."""
    try:
        plain = fernet(secret_key(settings), purpose).decrypt(token.encode())
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the installation's secret key",
            field=KEY_VARIABLE,
        ) from None
    return SecretStr(plain.decode())


# ------------------------------------------------------------------ stored secrets, rotation


@dataclass(frozen=True)
class EncryptedColumn:
    """A column whose values are Fernet tokens made by :func:`encrypt` for ``purpose``."""

    attribute: InstrumentedAttribute[str | None]
    purpose: str

    @property
    def label(self) -> str:
        """``table.column``, as messages and reports name it."""
        table: str = self.attribute.class_.__tablename__
        return f"{table}.{self.attribute.key}"


_COLUMNS: dict[str, EncryptedColumn] = {}


def register_column(attribute: InstrumentedAttribute[str | None], *, purpose: str) -> None:
    """Declare that ``attribute`` stores secrets encrypted for ``purpose`` (for rotation)."""
    column = EncryptedColumn(attribute, purpose)
    _COLUMNS[column.label] = column


def encrypted_columns() -> list[EncryptedColumn]:
    """Every registered column holding encrypted secrets."""
    return list(_COLUMNS.values())


def _stored(db: Session, column: EncryptedColumn) -> list[tuple[Any, str]]:
    """The rows holding a secret in ``column`` (locked for update) and their tokens."""
    attribute = column.attribute
    stmt = select(attribute.class_).where(attribute.is_not(None), attribute != "")
    rows = db.scalars(stmt.with_for_update()).all()
    return [(row, getattr(row, attribute.key)) for row in rows]


def _unreadable(db: Session, key: SecretStr) -> tuple[dict[str, int], list[str]]:
    """Stored secrets per column, and those ``key`` does not decrypt (``table.column #id``)."""
    counts: dict[str, int] = {}
    failures: list[str] = []
    for column in encrypted_columns():
        stored = _stored(db, column)
        counts[column.label] = len(stored)
        box = fernet(key, column.purpose)
        for row, token in stored:
            try:
                box.decrypt(token.encode())
            except InvalidToken:
                identity = ", ".join(str(part) for part in inspect(row).identity or ())
                failures.append(f"{column.label} #{identity}")
    return counts, failures


def verify(db: Session, *, key: SecretStr) -> dict[str, int]:
    """How many secrets each column stores; ``SecretUnreadable`` if ``key`` misses any."""
    counts, failures = _unreadable(db, key)
    if failures:
        raise SecretUnreadable(
            f"{len(failures)} stored secret(s) do not decrypt with this key: {', '.join(failures)}",
            field=KEY_VARIABLE,
        )
    return counts


def rotate(db: Session, *, old: SecretStr, new: SecretStr) -> dict[str, int]:
    """Re-encrypt every stored secret from ``old`` to ``new`` in the caller's transaction.

    Every secret is checked against ``old`` first; if any does not decrypt, nothing is
    changed.

    Args:
        db: A session in the transaction that commits the rotation.
        old: The key the secrets are encrypted with now.
        new: The key to encrypt them with.

    Returns:
        How many secrets each registered column held (all of them re-encrypted).

    Raises:
        SecretUnreadable: A stored secret does not decrypt with ``old`` (field ``old_key``).
    """
    counts, failures = _unreadable(db, old)
    if failures:
        raise SecretUnreadable(
            f"{len(failures)} stored secret(s) do not decrypt with the old key "
            f"({', '.join(failures)}): give the key they were saved with "
            "(--old-key-file); nothing was changed",
            field="old_key",
        )
    for column in encrypted_columns():
        # MultiFernet.rotate decrypts with either key and encrypts with the first.
        boxes = MultiFernet([fernet(new, column.purpose), fernet(old, column.purpose)])
        for row, token in _stored(db, column):
            setattr(row, column.attribute.key, boxes.rotate(token.encode()).decode())
    db.flush()
    return counts


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """Whether ``Authorization: Bearer <token>`` presents ``expected`` (compared in constant
    time): the machine endpoints' own credentials (the email webhook, the metrics scrape)."""
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    )
