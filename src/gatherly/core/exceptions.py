"""The error tree. Services raise these; the API maps them to JSON problem bodies (status and
``{"error": {"code", "message", "field"}}``), the web UI to an error page, the CLI to one line
on stderr and a non-zero exit::

    GatherlyError                 400 error             anything raised on purpose
    ├── NotFound                  404 not_found         missing, or not the caller's to read
    ├── Unauthenticated           401 unauthenticated   no valid token or session
    ├── Forbidden                 403 forbidden         readable, but not this action
    ├── Conflict                  409 conflict          the state forbids it (a name taken …)
    ├── ValidationFailed          422 validation_failed bad input; ``field`` names it
    ├── RateLimited               429 rate_limited      too many submissions from here: later
    └── SyncError                 502 sync_error        a Teams sync run failed
        ├── RetriableSyncError    503 sync_retriable    throttled or unavailable: retried
        ├── FatalSyncError        502 sync_fatal        wrong credentials or permissions: stop
        └── SkippableRecordError  502 sync_skippable_record  one bad record: skipped, reported
"""

from __future__ import annotations

from typing import Any


class GatherlyError(Exception):
    """Base of every error the product raises on purpose."""

    status_code = 400
    code = "error"

    def __init__(
        self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}  # more of the error body (a 409's matching records)

    def as_dict(self) -> dict[str, Any]:
        """The JSON body shape: ``{"code", "message", "field"}`` and any extra."""
        return {"code": self.code, "message": self.message, "field": self.field, **self.extra}


class NotFound(GatherlyError):
    """The record does not exist, or the caller may not read it (the two look alike)."""

    status_code = 404
    code = "not_found"


class Unauthenticated(GatherlyError):
    """No valid credentials were presented."""

    status_code = 401
    code = "unauthenticated"


class Forbidden(GatherlyError):
    """The caller may read the record (or none is involved) but lacks the privilege."""

    status_code = 403
    code = "forbidden"


class Conflict(GatherlyError):
    """The change would break an invariant (duplicate name, BU still in use, …)."""

    status_code = 409
    code = "conflict"


class Unavailable(GatherlyError):
    """The database (or another part the answer needs) cannot be reached just now; the same
    request a moment later may succeed."""

    status_code = 503
    code = "unavailable"


class RateLimited(GatherlyError):
    """Too many requests of this kind from here in a short time; try again later."""

    status_code = 429
    code = "rate_limited"


class ValidationFailed(GatherlyError):
    """Input is malformed; ``field`` names the offending field."""

    status_code = 422
    code = "validation_failed"


class SyncError(GatherlyError):
    """A sync against an external system (Microsoft Graph) failed."""

    status_code = 502
    code = "sync_error"


class RetriableSyncError(SyncError):
    """The failure is transient (throttling, outage, dropped connection); try again later."""

    status_code = 503
    code = "sync_retriable"


class FatalSyncError(SyncError):
    """Retrying will not help until someone changes configuration or data."""

    code = "sync_fatal"


class SkippableRecordError(SyncError):
    """One record is unusable; the sync skips it, records why and carries on."""

    code = "sync_skippable_record"
