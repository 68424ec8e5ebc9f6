"""Microsoft Graph client: msal auth, httpx transport, paging, retries and rate limiting.

Imports nothing from ``gatherly.graph_emulator``; the two only meet over HTTP.
"""

from __future__ import annotations

from gatherly.graph.auth import ClientSecretCredential, Credential, TokenError
from gatherly.graph.client import GraphClient
from gatherly.graph.errors import (
    AccessPolicyMissing,
    GraphConnectionError,
    GraphError,
    GraphNotFound,
    GraphUnauthorized,
    PermissionMissing,
    ServiceUnavailable,
    Throttled,
)
from gatherly.graph.transport import GraphStats, RateLimiter, SyncASGITransport

__all__ = [
    "AccessPolicyMissing",
    "ClientSecretCredential",
    "Credential",
    "GraphClient",
    "GraphConnectionError",
    "GraphError",
    "GraphNotFound",
    "GraphStats",
    "GraphUnauthorized",
    "PermissionMissing",
    "RateLimiter",
    "ServiceUnavailable",
    "SyncASGITransport",
    "Throttled",
    "TokenError",
]
