"""Signed tokens in the links of a sent email: they name a delivery (and, for a click, the
address the link led to) and cannot be forged or guessed without the installation's key.

Each purpose signs with its own salt, so an open-pixel token is no unsubscribe token.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from gatherly.core import crypto
from gatherly.core.config import Settings

UNSUBSCRIBE = "unsubscribe"  # the unsubscribe link, one-click POST and subscription centre
OPEN = "open"
CLICK = "click"


def _serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    return _cached(crypto.secret_key(settings).get_secret_value(), purpose)


@functools.lru_cache(maxsize=16)
def _cached(key: str, purpose: str) -> URLSafeSerializer:
    """One serializer per key and purpose (a send signs several links per message)."""
    return URLSafeSerializer(
        key, salt=f"gatherly.email.{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
    )


def make(settings: Settings, purpose: str, value: Any) -> str:
    """A token for ``value`` (JSON: a delivery id, or ``[delivery id, url]``)."""
    return str(_serializer(settings, purpose).dumps(value))


def read(settings: Settings, purpose: str, token: str) -> Any | None:
    """The value a genuine token of ``purpose`` carries, or None for any other string."""
    try:
        return _serializer(settings, purpose).loads(token)
    except BadSignature:
        return None
