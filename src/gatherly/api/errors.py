"""One mapping from errors to JSON bodies: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatherly.core.exceptions import (
    Conflict,
    GatherlyError,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)

PageRenderer = Callable[[Request, GatherlyError], Response | None]
"""Renders an error as a web page when the request is a page's, else returns None (the web
UI provides it; the API knows nothing of pages)."""


def _page(request: Request, exc: GatherlyError) -> Response | None:
    render: PageRenderer | None = getattr(request.app.state, "error_page", None)
    return render(request, exc) if render is not None else None


def _body(code: str, message: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


_DATES = {
    "date_parsing",
    "date_from_datetime_parsing",
    "datetime_parsing",
    "datetime_from_date_parsing",
}


def plain(error: Mapping[str, Any]) -> str:
    """What is wrong with a value, as a phrase a person reads on a page ("must be a whole
    number"), instead of the validator's own words ("Input should be a valid integer,
    unable to parse string as an integer"). Messages our own validators wrote pass through."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type", "decimal_parsing", "finite_number"):
        return "must be a number"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be {'at least' if kind.endswith('equal') else 'more than'} {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be {'at most' if kind.endswith('equal') else 'less than'} {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if kind == "string_too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"must be at least {least} characters"
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the choices offered')}"
    if kind in _DATES:
        return "is not a date (write it as 2026-03-31 or 2026-03-31T09:00:00Z)"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "string_pattern_mismatch":
        return "holds characters that are not allowed here"
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


def _page_message(error: Mapping[str, Any]) -> str:
    """A bad value of a page's address or form, said in a sentence."""
    loc = tuple(error.get("loc", ()))
    name = _field(loc).replace("_", " ").replace(".", " ")
    where = " in the address" if loc and loc[0] in ("path", "query") else ""
    value = error.get("input")
    shown = f" (“{value}”)" if isinstance(value, str) and value and len(value) <= 40 else ""
    return f"The {name}{where}{shown} {plain(error)}."


def as_json(exc: GatherlyError) -> JSONResponse:
    """The error's JSON answer, whatever the path (for endpoints outside the API that
    answer machines, never a page: ``/metrics``)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JSONResponse(
        _body(exc.code, exc.message, exc.field, **exc.extra),
        status_code=exc.status_code,
        headers=headers,
    )


async def _gatherly_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatherlyError)
    if (shown := _page(request, exc)) is not None:
        return shown
    return as_json(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field(e.get("loc", ())),
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    raw = exc.errors()
    said = _page_message(raw[0]) if raw else "This request is not valid."
    shown = _page(request, ValidationFailed(said, field=first["field"]))
    if shown is not None:
        return shown
    return JSONResponse(
        _body("validation_failed", message, first["field"], errors=errors), status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    error = GatherlyError(str(exc.detail))
    error.status_code, error.code = exc.status_code, code
    if (shown := _page(request, error)) is not None:
        return shown
    return JSONResponse(
        _body(code, str(exc.detail), None), status_code=exc.status_code, headers=exc.headers
    )


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    # Input validation should catch these first; this is the net for what slips through
    # (a value the database cannot store), so it answers 422 rather than 500.
    return JSONResponse(
        _body("validation_failed", "a value is out of range or cannot be stored", None),
        status_code=422,
    )


# PostgreSQL's answers when two transactions' locks crossed: one of them was rolled back
# whole, so nothing it did stays, and the same request again succeeds.
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure


async def _operational_error(request: Request, exc: Exception) -> Response:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if getattr(exc, "connection_invalidated", False):
        # The server ended the connection (a restart): the pool replaces it and its siblings.
        error: GatherlyError = Unavailable(
            "the connection to the database was lost; nothing was changed: send the request again"
        )
    elif code in _RETRYABLE:
        error = Conflict(
            "another change to the same records was being made at the same moment; "
            "nothing was changed: send the request again"
        )
    else:
        raise exc  # a real failure: the server error it is
    response = await _gatherly_error(request, error)  # a page for the web UI's requests
    response.headers["Retry-After"] = "1"
    return response


async def no_nul_in_query(request: Request) -> None:
    """Refuse a query parameter holding a NUL character, naming it (an app-wide dependency;
    async, as it does no I/O: a sync one would cost each request a trip to a worker thread).

    PostgreSQL cannot compare text that holds one, so a search for it would fail in the
    database instead of being answered; no name, email or filter value contains one.
    """
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise ValidationFailed(f"{name} contains a NUL character", field=name)


def install(app: FastAPI, *, error_page: PageRenderer | None = None) -> None:
    """Register the handlers on ``app``; ``error_page`` shows errors of page requests."""
    app.state.error_page = error_page
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _operational_error)
    app.add_exception_handler(GatherlyError, _gatherly_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
