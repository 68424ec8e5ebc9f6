"""``gatherly secret-key``: where the installation's key comes from, check it, rotate it
(docs/operations.md). The stored secrets and their encryption live in ``gatherly.core.crypto``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console

import gatherly.models  # every table, for the audit entry
import gatherly.teams.service  # noqa: F401 - registers the Teams client secret's column
from gatherly.clitools import JsonOpt, print_json
from gatherly.core import audit, crypto
from gatherly.core.config import Settings
from gatherly.core.db import session_scope
from gatherly.core.exceptions import GatherlyError, ValidationFailed

app = typer.Typer(
    help="The installation's secret key, which encrypts stored secrets: check and rotate.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)  # paths and keys stay on one line for scripts
STDIN = "-"


def _read_key(ref: str, field: str) -> SecretStr:
    """A key from a file, or from standard input when ``ref`` is ``-`` (one line)."""
    try:
        text = sys.stdin.read() if ref == STDIN else Path(ref).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"cannot read {ref}: {exc.strerror}", field=field) from None
    except UnicodeDecodeError:
        raise ValidationFailed(f"{ref} is not UTF-8 text", field=field) from None
    text = text.strip()
    where = "standard input" if ref == STDIN else ref
    if not text:
        raise ValidationFailed(f"{where} holds no key", field=field)
    if "\n" in text:
        raise ValidationFailed(f"{where} holds more than one line; a key is one line", field=field)
    return SecretStr(text)


def _source(settings: Settings) -> str:
    if settings.secret_key is not None:
        return crypto.KEY_VARIABLE
    return f"the key file {settings.secret_key_file}"


def _summary(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    detail = ", ".join(f"{label}: {n}" for label, n in counts.items())
    return f"{total} stored secret(s)" + (f" ({detail})" if detail else "")


@app.command("check")
def check(as_json: JsonOpt = False) -> None:
    """Say where the key comes from and check that every stored secret decrypts with it."""
    configured = Settings()
    from_file = configured.secret_key is None
    key = crypto.secret_key(crypto.resolve(configured))  # generates the key file on first run
    with session_scope(configured.database_url) as db:
        counts = crypto.verify(db, key=key)
    if as_json:
        print_json(
            {
                "source": "file" if from_file else "environment",
                "key_file": str(configured.secret_key_file) if from_file else None,
                "secrets": counts,
            }
        )
        return
    out.print(f"secret key: from {_source(configured)}", markup=False)
    out.print(f"{_summary(counts)}, all readable with this key", markup=False)


@app.command("rotate")
def rotate(
    new_key_file: Annotated[
        str | None,
        typer.Option(
            help="File holding the new key (one line, at least 32 characters), or - to read it "
            "from standard input; default: a random key is generated."
        ),
    ] = None,
    old_key_file: Annotated[
        str | None,
        typer.Option(
            help="File (or -) holding the key the secrets are encrypted with now, when it is "
            "not the current key (e.g. the old public default after an upgrade)."
        ),
    ] = None,
) -> None:
    """Re-encrypt every stored secret with a new key, in one transaction, then install the key.

    Every secret must decrypt with the old key first, else nothing changes.
    The new key replaces the key file's, or (GATHERLY_SECRET_KEY set) the value to set is printed.
    Restart the server and the workers afterwards.
    """
    if new_key_file == STDIN and old_key_file == STDIN:
        raise ValidationFailed(
            "only one of the keys can come from standard input", field="old_key_file"
        )
    configured = Settings()
    from_file = configured.secret_key is None
    if old_key_file is not None:
        old = _read_key(old_key_file, "old_key_file")
    else:
        old = crypto.secret_key(crypto.resolve(configured))
    new = _read_key(new_key_file, "new_key_file") if new_key_file else crypto.generate_key()
    _check_new(new, old)

    key_file = configured.secret_key_file
    staged = crypto.stage_key_file(key_file, new) if from_file else None
    try:
        with session_scope(configured.database_url) as db:
            counts = crypto.rotate(db, old=old, new=new)
            audit.log(
                db,
                actor=None,
                action="secret_key.rotate",
                target_type="installation",
                target_id="secret_key",
                target_label="the secret key",
                details={"secrets": counts, "key_source": "file" if from_file else "environment"},
            )
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise

    out.print(f"Re-encrypted {_summary(counts)} with the new key.", markup=False)
    if staged is not None:
        try:
            crypto.replace_key_file(staged, key_file)
        except OSError as exc:
            raise GatherlyError(
                f"the stored secrets are re-encrypted, but {key_file} could not be replaced "
                f"({exc.strerror}): the new key is in {staged}; move it there (mv {staged} "
                f"{key_file}) before Gatherly runs again",
                field="GATHERLY_SECRET_KEY_FILE",
            ) from None
        out.print(f"The new key is in {key_file} (mode 0600).", markup=False)
    else:
        out.print(
            "Set this value wherever Gatherly runs (serve, workers, the command line) in place "
            "of the old one: the stored secrets no longer decrypt with it.",
            markup=False,
        )
        typer.echo(f"{crypto.KEY_VARIABLE}={new.get_secret_value()}")
    out.print(
        "Restart `gatherly serve` and every `gatherly worker`: they hold the old key until then.",
        markup=False,
    )


def _check_new(new: SecretStr, old: SecretStr) -> None:
    """Refuse a new key that is the old one, empty, the public default or short."""
    value = new.get_secret_value()
    if value == old.get_secret_value():
        raise ValidationFailed(
            "the new key is the key the secrets are encrypted with now; give another one, or "
            "leave out --new-key-file to generate one",
            field="new_key_file",
        )
    crypto.check_key(value, source="the new key", field="new_key_file")
    if len(value) < crypto.MIN_LENGTH:
        raise ValidationFailed(
            f"the new key is only {len(value)} characters: use at least {crypto.MIN_LENGTH} "
            "random characters, or leave out --new-key-file to generate one",
            field="new_key_file",
        )
