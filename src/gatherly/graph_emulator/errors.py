"""What every part of the emulator shares: the permissions it knows, Graph's error envelope
(reference graph-webinars.md §4) and the caller's ids."""

from __future__ import annotations

import uuid
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


READ_EVENTS = "VirtualEvent.Read.All"


READ_ARTIFACTS = "OnlineMeetingArtifact.Read.All"


READ_MEETINGS = "OnlineMeetings.Read.All"


READ_RECORDINGS = "OnlineMeetingRecording.Read.All"


READ_TRANSCRIPTS = "OnlineMeetingTranscript.Read.All"


READ_USERS = "User.Read.All"


MAX_REPORTS = 10  # Graph lists only the 10 most recent attendance reports (reference §6.5)


WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",'
    ' client_id="00000003-0000-0000-c000-000000000000"'
)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S")


class GraphError(Exception):
    """A Graph error answer: status, code, message and optional extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}


def error_response(
    exc: GraphError, *, request_id: str, client_request_id: str, now: datetime
) -> Response:
    """Graph's error envelope with ``innerError`` date and request ids (reference §4)."""
    inner = {
        **exc.inner,
        "date": _stamp(now),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    body = {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}
    headers = {"request-id": request_id, "client-request-id": client_request_id, **exc.headers}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _ids(request: Request) -> tuple[str, str]:
    request_id = str(uuid.uuid4())
    return request_id, request.headers.get("client-request-id", request_id)
