"""The stored Teams connection and the Graph clients it makes: the secret (encrypted with the
installation's key), the client factory, and the mapping of organizers to Gatherly users.

Below :mod:`gatherly.teams.service` and :mod:`gatherly.teams.sync`, which both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.core import crypto
from gatherly.core.config import Settings
from gatherly.core.exceptions import FatalSyncError, NotFound
from gatherly.graph.auth import ClientSecretCredential
from gatherly.graph.client import GraphClient
from gatherly.org.models import User
from gatherly.teams.models import TeamsConnection

CONNECTION_ID = 1

ENCRYPTION_PURPOSE = "teams-client-secret"
crypto.register_column(TeamsConnection.client_secret_encrypted, purpose=ENCRYPTION_PURPOSE)


def encrypt_secret(settings: Settings, secret: SecretStr) -> str:
    """The client secret encrypted with the installation's secret key."""
    return crypto.encrypt(settings, secret, purpose=ENCRYPTION_PURPOSE)


class SecretUnavailable(FatalSyncError):
    """The client secret cannot be had: not stored, or not decryptable with this key."""


def client_secret(settings: Settings, connection: TeamsConnection) -> SecretStr:
    """The stored secret decrypted, else ``GATHERLY_TEAMS_CLIENT_SECRET``."""
    if connection.client_secret_encrypted:
        try:
            return crypto.decrypt(
                settings, connection.client_secret_encrypted, purpose=ENCRYPTION_PURPOSE
            )
        except crypto.SecretUnreadable:
            raise SecretUnavailable(
                "the stored Teams client secret cannot be decrypted with this installation's "
                "secret key (GATHERLY_SECRET_KEY, else the key file): restore the key it was "
                "saved with, re-encrypt it with `gatherly secret-key rotate --old-key-file "
                "FILE`, or run `gatherly teams connect` again"
            ) from None
        except crypto.SecretKeyRefused as exc:
            raise SecretUnavailable(exc.message) from None
    if settings.teams_client_secret is not None:
        return settings.teams_client_secret
    raise SecretUnavailable(
        "no Teams client secret: none is stored and GATHERLY_TEAMS_CLIENT_SECRET is not set"
    )


# ------------------------------------------------------------------ clients

ClientFactory = Callable[[TeamsConnection], GraphClient]


def client_factory(
    settings: Settings, *, transport: httpx.BaseTransport | None = None, **options: Any
) -> ClientFactory:
    """Builds Graph clients for a connection (``transport`` runs the emulator in-process)."""

    def make(connection: TeamsConnection) -> GraphClient:
        credential = ClientSecretCredential(
            connection.authority,
            connection.client_id,
            client_secret(settings, connection),
            transport=transport,
        )
        options.setdefault("rate_per_second", settings.graph_rate_per_second)
        return GraphClient(connection.graph_url, credential, transport=transport, **options)

    return make


def get_connection(db: Session) -> TeamsConnection:
    """The Teams connection, or NotFound telling how to make one."""
    connection = db.get(TeamsConnection, CONNECTION_ID)
    if connection is None:
        raise NotFound(
            "Microsoft Teams is not connected: run `gatherly teams connect` "
            "or POST /api/v1/integrations/teams/connection"
        )
    return connection


def map_organizer_user(db: Session, email: str | None) -> int | None:
    """The Gatherly user with the organizer's email, if there is exactly one."""
    if not email:
        return None
    ids = db.scalars(select(User.id).where(func.lower(User.email) == email).limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def user_emails(db: Session) -> dict[str, int]:
    """Gatherly users by lower-cased email, for emails held by exactly one user (organizers
    are mapped to them)."""
    counts: dict[str, list[int]] = {}
    for user_id, email in db.execute(select(User.id, func.lower(User.email))):
        if email:
            counts.setdefault(email, []).append(user_id)
    return {email: ids[0] for email, ids in counts.items() if len(ids) == 1}
