"""LinkedIn's REST error body (``{"status", "serviceErrorCode", "code", "message"}``) and the
errors the emulator answers with."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response


class LinkedInError(Exception):
    """A REST error answer: status, code, message, serviceErrorCode and extra headers.

    ``serviceErrorCode`` is LinkedIn's where it is known (65600 invalid token, 65601 expired
    token, 65604 empty token, 100 access denied, 101 throttled); otherwise the HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        service_error_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.service_error_code = service_error_code if service_error_code is not None else status
        self.headers = headers or {}

    def response(self) -> Response:
        """The JSON answer."""
        body = {
            "status": self.status,
            "serviceErrorCode": self.service_error_code,
            "code": self.code,
            "message": self.message,
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def empty_token() -> LinkedInError:
    """No bearer token."""
    return LinkedInError(
        401, "EMPTY_ACCESS_TOKEN", "Empty oauth2_access_token", service_error_code=65604
    )


def invalid_token() -> LinkedInError:
    """A token the emulator never issued, or one replaced by a refresh."""
    return LinkedInError(
        401, "INVALID_ACCESS_TOKEN", "Invalid access token", service_error_code=65600
    )


def expired_token() -> LinkedInError:
    """An access token past its lifetime."""
    return LinkedInError(
        401,
        "EXPIRED_ACCESS_TOKEN",
        "The token used in the request has expired",
        service_error_code=65601,
    )


def access_denied(resource: str, version: str) -> LinkedInError:
    """The token lacks the scope, or the member holds no role on the owner."""
    return LinkedInError(
        403,
        "ACCESS_DENIED",
        f"Not enough permissions to access: {resource}.{version}",
        service_error_code=100,
    )


def bad_request(message: str) -> LinkedInError:
    """A malformed request (parameters, Rest.li syntax, paging)."""
    return LinkedInError(400, "ILLEGAL_ARGUMENT", message)


def not_found(message: str) -> LinkedInError:
    """An entity that does not exist (or was deleted)."""
    return LinkedInError(404, "NOT_FOUND", message)


def throttled(retry_after: int | None) -> LinkedInError:
    """The 429 fault, with or without ``Retry-After`` (seconds)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return LinkedInError(
        429,
        "TOO_MANY_REQUESTS",
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        service_error_code=101,
        headers=headers,
    )


def server_error(status: int) -> LinkedInError:
    """The 5xx fault."""
    codes = {
        500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
        502: ("BAD_GATEWAY", "Bad Gateway"),
        503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
        504: ("GATEWAY_TIMEOUT", "Gateway Timeout"),
    }
    code, message = codes[status]
    return LinkedInError(status, code, message)
