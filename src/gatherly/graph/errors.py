"""Graph's error answers, classified as retriable or fatal for the sync."""

from __future__ import annotations

import re
from typing import Any

import httpx

from gatherly.core.exceptions import FatalSyncError, RetriableSyncError, SyncError

_PERMISSION = re.compile(r"\b[A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]*)+\b")
_POLICY = "application access policy"


class GraphError(SyncError):
    """An error answer from Graph: HTTP status, Graph error code, message and request id."""

    code = "graph_error"

    def __init__(
        self, status: int, graph_code: str, graph_message: str, request_id: str | None
    ) -> None:
        self.status = status
        self.graph_code = graph_code
        self.graph_message = graph_message
        self.request_id = request_id
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for logs and the sync run record."""
        rid = f", request-id {self.request_id}" if self.request_id else ""
        return f"Graph answered {self.status} {self.graph_code}: {self.graph_message}{rid}"


class GraphFatalError(GraphError, FatalSyncError):
    """A Graph error that retrying will not fix (other 4xx, 5xx outside the retried set)."""

    code = "graph_fatal"


class GraphRetriableError(GraphError, RetriableSyncError):
    """A Graph error worth retrying later (429, 503, 504)."""

    code = "graph_retriable"


class Throttled(GraphRetriableError):
    """429 Too Many Requests; ``retry_after`` is Graph's hint in seconds, if it sent one."""

    code = "graph_throttled"

    def __init__(
        self,
        status: int,
        graph_code: str,
        graph_message: str,
        request_id: str | None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, graph_code, graph_message, request_id)


class ServiceUnavailable(Throttled):
    """503 or 504: Graph is busy or a gateway timed out; may also carry Retry-After."""

    code = "graph_unavailable"


class GraphUnauthorized(GraphFatalError):
    """401 even with a freshly acquired token."""

    code = "graph_unauthorized"


class PermissionMissing(GraphFatalError):
    """403: the app lacks an application permission; ``permissions`` names it when Graph does."""

    code = "graph_permission_missing"

    def __init__(
        self, status: int, graph_code: str, graph_message: str, request_id: str | None
    ) -> None:
        self.permissions = _PERMISSION.findall(graph_message)
        super().__init__(status, graph_code, graph_message, request_id)

    def describe(self) -> str:
        """One line naming the missing permission(s) when known."""
        base = super().describe()
        if not self.permissions:
            return base
        return f"Missing Graph application permission {' or '.join(self.permissions)} ({base})"


class AccessPolicyMissing(GraphFatalError):
    """403 'No Application Access Policy found for this app': a Teams admin must grant one."""

    code = "graph_access_policy_missing"

    def describe(self) -> str:
        """One line telling the admin what to do."""
        return (
            "No Teams application access policy grants this app access to the organizer "
            f"(Grant-CsApplicationAccessPolicy) ({super().describe()})"
        )


class GraphNotFound(GraphFatalError):
    """404: the id is unknown to Graph (deleted, or never existed)."""

    code = "graph_not_found"


class SyncStateGone(GraphFatalError):
    """410: a delta link Graph no longer honours (too old, or reset): read in full again."""

    code = "graph_sync_state_gone"


class GraphConnectionError(RetriableSyncError):
    """Graph could not be reached or dropped the connection, even after retries."""

    code = "graph_connection"


RETRIABLE_STATUSES = frozenset({429, 503, 504})


def _envelope(response: httpx.Response) -> tuple[str, str, str | None]:
    code, message, request_id = "", "", response.headers.get("request-id")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError")
        if isinstance(inner, dict) and inner.get("request-id"):
            request_id = str(inner["request-id"])
    return code or response.reason_phrase or "Error", message, request_id


def classify(response: httpx.Response, retry_after: float | None = None) -> GraphError:
    """The error for a non-2xx Graph response (policy 403s matched on the message)."""
    status = response.status_code
    code, message, request_id = _envelope(response)
    if status == 429:
        return Throttled(status, code, message, request_id, retry_after)
    if status in (503, 504):
        return ServiceUnavailable(status, code, message, request_id, retry_after)
    if status == 401:
        return GraphUnauthorized(status, code, message, request_id)
    if status == 403:
        if _POLICY in message.lower():
            return AccessPolicyMissing(status, code, message, request_id)
        return PermissionMissing(status, code, message, request_id)
    if status == 404:
        return GraphNotFound(status, code, message, request_id)
    if status == 410:
        return SyncStateGone(status, code, message, request_id)
    return GraphFatalError(status, code, message, request_id)
