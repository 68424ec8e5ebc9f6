"""The ``/_emulator`` control API (JSON, no authentication): state, request statistics,
reset, faults, token expiry, the clock, and what members do between polls (submit a lead,
delete one, edit a form). Control requests are never logged nor counted for faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatherly.linkedin_emulator import shapes
from gatherly.linkedin_emulator.fixture import (
    FixtureError,
    validate_consents,
    validate_questions,
)
from gatherly.linkedin_emulator.state import FAIL_STATUSES, Faults, LinkedInState, epoch_ms

CONTROL_ROUTES = {
    "GET /_emulator/": "this index",
    "GET /_emulator/state": "clock, token lifetime, faults, members, forms, response count",
    "GET /_emulator/requests?since=N": "counts per route and status, and the request log"
    " (method, path, query, status, time, fault) from entry N on",
    "POST /_emulator/reset": "back to the fixture: no codes or tokens, no faults, empty log,"
    " real time",
    "POST /_emulator/faults": '{"throttle_every": N, "retry_after": seconds|null,'
    ' "fail_every": N, "fail_status": 500|502|503|504, "token_lifetime": seconds}: keys given'
    " are changed, the others kept; the /rest request counter restarts",
    "DELETE /_emulator/faults": "no faults; token lifetime back to its default",
    "POST /_emulator/tokens/expire": "every access token expires now (refresh tokens still work)",
    "POST /_emulator/clock": '{"advance_seconds": N}: move the emulator clock forward',
    "POST /_emulator/responses": "add a response (compact fixture shape; id generated,"
    " submittedAt now, version the latest, leadType from the owner when absent)",
    "DELETE /_emulator/responses/{id}": "the member deleted the lead: gone from every listing",
    "POST /_emulator/forms/{id}/versions": '{"questions"?: [...], "consents"?: [...]}: a new'
    " version with its questions renumbered (default: the latest version's, renumbered)",
}


def _control_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "invalidRequest", "message": message}}, status_code=status
    )


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        return await request.json()
    except ValueError:
        raise FixtureError("request body is not JSON") from None


def _control(
    handler: Callable[[LinkedInState, Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request.app.state.linkedin, request)
        except FixtureError as exc:
            return _control_error(422, exc.message)
        except LookupError as exc:
            return _control_error(404, str(exc.args[0]))

    return endpoint


async def _index(state: LinkedInState, request: Request) -> Response:
    return JSONResponse({"routes": CONTROL_ROUTES})


async def _state(state: LinkedInState, request: Request) -> Response:
    return JSONResponse(state.summary())


async def _requests(state: LinkedInState, request: Request) -> Response:
    since = request.query_params.get("since", "0")
    if not (since.isascii() and since.isdigit()):
        raise FixtureError("since: must be a non-negative integer")
    return JSONResponse(
        {
            "total": len(state.requests),
            "routes": {route: dict(counts) for route, counts in sorted(state.stats.items())},
            "log": state.requests[int(since) :],
        }
    )


async def _reset(state: LinkedInState, request: Request) -> Response:
    state.reset()
    return JSONResponse(state.summary())


def _count(body: dict[str, Any], key: str) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FixtureError(f"{key}: must be a non-negative integer (0: off)")
    return value


async def _set_faults(state: LinkedInState, request: Request) -> Response:
    body = await _json(request)
    if not isinstance(body, dict):
        raise FixtureError("$: expected an object")
    known = {"throttle_every", "retry_after", "fail_every", "fail_status", "token_lifetime"}
    for key in body:
        if key not in known:
            raise FixtureError(f"{key}: unknown setting (one of {', '.join(sorted(known))})")
    faults = state.faults
    updated = Faults(
        throttle_every=faults.throttle_every,
        retry_after=faults.retry_after,
        fail_every=faults.fail_every,
        fail_status=faults.fail_status,
    )
    if "throttle_every" in body:
        updated.throttle_every = _count(body, "throttle_every")
    if "fail_every" in body:
        updated.fail_every = _count(body, "fail_every")
    if "retry_after" in body:
        updated.retry_after = None if body["retry_after"] is None else _count(body, "retry_after")
    if "fail_status" in body:
        if body["fail_status"] not in FAIL_STATUSES or isinstance(body["fail_status"], bool):
            raise FixtureError("fail_status: must be 500, 502, 503 or 504")
        updated.fail_status = body["fail_status"]
    if "token_lifetime" in body:
        lifetime = _count(body, "token_lifetime")
        if lifetime < 1:
            raise FixtureError("token_lifetime: must be at least 1 second")
        state.token_lifetime = lifetime
    state.faults = updated
    return JSONResponse({**updated.as_dict(), "token_lifetime": state.token_lifetime})


async def _clear_faults(state: LinkedInState, request: Request) -> Response:
    state.clear_faults()
    return JSONResponse({**state.faults.as_dict(), "token_lifetime": state.token_lifetime})


async def _expire_tokens(state: LinkedInState, request: Request) -> Response:
    return JSONResponse({"expired": state.expire_access_tokens()})


async def _clock(state: LinkedInState, request: Request) -> Response:
    body = await _json(request)
    seconds = body.get("advance_seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise FixtureError("advance_seconds: must be a non-negative number")
    state.clock_offset += timedelta(seconds=seconds)
    return JSONResponse(
        {"now": state.now().isoformat().replace("+00:00", "Z"), "now_ms": epoch_ms(state.now())}
    )


async def _add_response(state: LinkedInState, request: Request) -> Response:
    response = state.add_response(await _json(request))
    return JSONResponse(shapes.response(state, response), status_code=201)


async def _delete_response(state: LinkedInState, request: Request) -> Response:
    response_id = request.path_params["response_id"]
    if not state.delete_response(response_id):
        raise LookupError(f"no response {response_id!r}")
    return JSONResponse({"deleted": response_id})


async def _add_version(state: LinkedInState, request: Request) -> Response:
    raw_id = request.path_params["form_id"]
    form = state.form(int(raw_id)) if raw_id.isascii() and raw_id.isdigit() else None
    if form is None:
        raise LookupError(f"no form {raw_id!r}")
    body = await _json(request)
    if not isinstance(body, dict):
        raise FixtureError("$: expected an object")
    for key in body:
        if key not in ("questions", "consents"):
            raise FixtureError(f"{key}: unknown property")
    questions = (
        validate_questions(body["questions"]) if "questions" in body else form.latest.questions
    )
    consents = validate_consents(body["consents"]) if "consents" in body else None
    version = state.add_version(form, questions, consents)
    return JSONResponse(shapes.form(state, form, version), status_code=201)


def routes() -> list[Route]:
    """The ``/_emulator`` control routes."""
    return [
        Route("/_emulator/", _control(_index), methods=["GET"]),
        Route("/_emulator/state", _control(_state), methods=["GET"]),
        Route("/_emulator/requests", _control(_requests), methods=["GET"]),
        Route("/_emulator/reset", _control(_reset), methods=["POST"]),
        Route("/_emulator/faults", _control(_set_faults), methods=["POST"]),
        Route("/_emulator/faults", _control(_clear_faults), methods=["DELETE"]),
        Route("/_emulator/tokens/expire", _control(_expire_tokens), methods=["POST"]),
        Route("/_emulator/clock", _control(_clock), methods=["POST"]),
        Route("/_emulator/responses", _control(_add_response), methods=["POST"]),
        Route("/_emulator/responses/{response_id}", _control(_delete_response), methods=["DELETE"]),
        Route("/_emulator/forms/{form_id}/versions", _control(_add_version), methods=["POST"]),
    ]
