"""Web pages for sending email: the send dialog (who gets it, when), a test copy, the
sends and their progress, and the insights of a message or a send (SPEC M, B11).

Every page reads and changes through ``email.sends``, ``email.audience`` and
``email.insights`` with the viewer's principal, as the API and the CLI do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from gatherly.api.params import PathId
from gatherly.api.responses import csv_download
from gatherly.core.exceptions import GatherlyError, NotFound, ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.email import audience as audiences
from gatherly.email import insights as insights_service
from gatherly.email import sends, service
from gatherly.email.models import EmailMessage
from gatherly.email.schemas import TestSendIn
from gatherly.jobs.queue import app_jobs
from gatherly.segment import service as segment_service
from gatherly.web.contacts import full_name
from gatherly.web.email import audience_ids
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    may,
    page,
    parse_form,
)

router = APIRouter(include_in_schema=False)
SEND_STATES = {
    "scheduled": "Scheduled",
    "sending": "Sending",
    "done": "Done",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
KIND_LABELS = {
    "opened": "Opened",
    "clicked": "Clicked",
    "unsubscribed": "Unsubscribed",
    "bounced": "Bounced",
    "complained": "Complained",
}


# ------------------------------------------------------------------ the send dialog


def _local_time(value: str, viewer: Viewer) -> datetime | None:
    """A ``datetime-local`` field, read in the viewer's time zone; empty: now."""
    if not value.strip():
        return None
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed("is not a date and time", field="scheduled_at") from None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=ZoneInfo(viewer.time_zone)).astimezone(UTC)


def _dialog(
    request: Request,
    db: Session,
    viewer: Viewer,
    message: EmailMessage,
    segment_ids: list[int],
    list_ids: list[int],
    *,
    at: str = "",
    error: GatherlyError | None = None,
    status_code: int = 200,
) -> Response:
    principal = viewer.principal
    found = None
    if (segment_ids or list_ids) and error is None:
        try:
            found = audiences.audience(
                db=db,
                principal=principal,
                segment_ids=segment_ids,
                list_ids=list_ids,
                message_id=message.id,
            )
        except (NotFound, ValidationFailed) as exc:
            error, status_code = exc, exc.status_code
    who = [("segment_id", str(i)) for i in segment_ids] + [("list_id", str(i)) for i in list_ids]
    return page(
        request,
        "email/send.html",
        viewer,
        status_code=status_code,
        message=message,
        segments=list(segment_service.list_segments(db=db, principal=principal, limit=200).items),
        lists=list(segment_service.list_lists(db=db, principal=principal, limit=200).items),
        segment_ids=segment_ids,
        list_ids=list_ids,
        found=found,
        error=error,
        at=at,
        reasons=audiences.REASONS,
        who_url="/email/audience?" + urlencode([*who, ("message_id", str(message.id))]),
    )


@router.get("/email/messages/{message_id}/send")
def send_dialog(message_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """Choose segments and lists, see how many of them would get the message, and when."""
    message = service.get_message(db=db, principal=viewer.principal, message_id=message_id)
    segment_ids, list_ids = audience_ids(request.query_params)
    return _dialog(
        request, db, viewer, message, segment_ids, list_ids, at=request.query_params.get("at", "")
    )


@router.post("/email/messages/{message_id}/send")
def send_message(
    message_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    message = service.get_message(db=db, principal=viewer.principal, message_id=message_id)
    segment_ids, list_ids = audience_ids(form)
    at = form_text(form, "scheduled_at")
    try:
        row = sends.create_send(
            db=db,
            principal=viewer.principal,
            message_id=message.id,
            segment_ids=segment_ids,
            list_ids=list_ids,
            scheduled_at=_local_time(at, viewer),
            queue=app_jobs(request.app),
        )
    except (ValidationFailed, NotFound) as exc:
        db.rollback()
        return _dialog(
            request, db, viewer, message, segment_ids, list_ids, at=at, error=exc, status_code=422
        )
    return RedirectResponse(f"/email/sends/{row.id}", status_code=303)


@router.post("/email/messages/{message_id}/test")
def send_test_copy(
    message_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Send a test copy (htmx: answers with the outcome, in place)."""
    try:
        body = parse_form(TestSendIn, to=form_text(form, "to"))
        result = sends.send_test(
            db=db,
            principal=viewer.principal,
            settings=request.app.state.settings,
            message_id=message_id,
            to=body.to,
        )
    except (ValidationFailed, NotFound) as exc:
        return page(
            request, "email/_test.html", viewer, status_code=422, error=exc.message, result=None
        )
    return page(request, "email/_test.html", viewer, error=None, result=result)


# ------------------------------------------------------------------ sends


@router.get("/email/sends")
def sends_page(
    request: Request, db: WebDb, viewer: CurrentViewer, cursor: str = "", message_id: str = ""
) -> Response:
    """The sends the viewer may read, newest first."""
    of = int(message_id) if message_id.isascii() and message_id.isdigit() else None
    try:
        found = sends.list_sends(
            db=db, principal=viewer.principal, message_id=of, cursor=cursor or None
        )
    except ValidationFailed as exc:
        return page(
            request,
            "email/sends.html",
            viewer,
            status_code=422,
            items=[],
            error=exc.message,
            next_cursor=None,
            names={},
            states=SEND_STATES,
        )
    names = service.message_names(
        db=db, principal=viewer.principal, ids={s.message_id for s in found.items}
    )
    return page(
        request,
        "email/sends.html",
        viewer,
        items=list(found.items),
        error=None,
        next_cursor=found.next_cursor,
        names=names,
        states=SEND_STATES,
    )


def _progress(request: Request, db: Session, viewer: Viewer, send_id: int) -> dict[str, Any]:
    found = sends.progress(db=db, principal=viewer.principal, send_id=send_id)
    return {
        "send": found.send,
        "counts": found.states,
        "reasons": found.reasons,
        "reason_labels": {**audiences.REASONS, "duplicate": "another contact has its address"},
        "states": SEND_STATES,
        "message_name": service.message_names(
            db=db, principal=viewer.principal, ids={found.send.message_id}
        ).get(found.send.message_id),
        **may(db, viewer, sends.SEND, found.send),
    }


@router.get("/email/sends/{send_id}")
def send_page(send_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """A send's progress (refreshing itself while it runs)."""
    template = (
        "email/_progress.html" if request.headers.get("HX-Request") else "email/send_page.html"
    )
    return page(request, template, viewer, **_progress(request, db, viewer, send_id))


@router.post("/email/sends/{send_id}/cancel")
def cancel_send(
    send_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    sends.cancel_send(db=db, principal=viewer.principal, send_id=send_id)
    return RedirectResponse(f"/email/sends/{send_id}", status_code=303)


# ------------------------------------------------------------------ insights


def _of(request: Request) -> tuple[int | None, int | None]:
    def number(name: str) -> int | None:
        value = request.query_params.get(name, "")
        if not value:
            return None
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
            raise ValidationFailed(
                f"{name} must be a whole number between 1 and {MAX_ID}", field=name
            )
        return int(value)

    return number("message_id"), number("send_id")


def _chart(buckets: list[insights_service.Bucket]) -> dict[str, Any]:
    """Bars of opens and clicks per bucket, scaled to the busiest one."""
    top = max([b.opens for b in buckets] + [b.clicks for b in buckets] + [1])
    width = max(len(buckets), 1)
    return {
        "top": top,
        "width": width,
        "bars": [
            {"x": i, "open": b.opens / top, "click": b.clicks / top, "bucket": b}
            for i, b in enumerate(buckets)
        ],
    }


@router.get("/email/insights")
def insights_page(
    request: Request, db: WebDb, viewer: CurrentViewer, kind: str = "opened", cursor: str = ""
) -> Response:
    """Every count of a message or a send, the chart of opens and clicks, the clicks per
    link, and who did what (named when the viewer may read them)."""
    message_id, send_id = _of(request)
    found = insights_service.insights(
        db=db, principal=viewer.principal, message_id=message_id, send_id=send_id
    )
    kind = kind if kind in KIND_LABELS else "opened"
    error = None
    people: list[Any] = []
    next_cursor = None
    try:
        page_ = insights_service.people(
            db=db,
            principal=viewer.principal,
            kind=kind,
            message_id=message_id,
            send_id=send_id,
            cursor=cursor or None,
        )
        people, next_cursor = list(page_.items), page_.next_cursor
    except ValidationFailed as exc:
        error = exc.message
    of = {"send_id": send_id} if send_id else {"message_id": message_id}
    # A send's readers see its insights even when its message is not theirs to read.
    message_name = service.message_names(
        db=db, principal=viewer.principal, ids={found.message_id}
    ).get(found.message_id)
    return page(
        request,
        "email/insights.html",
        viewer,
        status_code=422 if error else 200,
        found=found,
        message_name=message_name,
        of=of,
        kind=kind,
        kinds=KIND_LABELS,
        people=people,
        next_cursor=next_cursor,
        error=error,
        chart=_chart(found.timeline),
        full_name=full_name,
    )


@router.get("/email/insights/people.csv")
def insights_csv(
    request: Request, db: WebDb, viewer: CurrentViewer, kind: str = "opened"
) -> StreamingResponse:
    """Who did what, as CSV (anonymous rows stay anonymous)."""
    message_id, send_id = _of(request)
    return csv_download(
        insights_service.export_people(
            db=db,
            principal=viewer.principal,
            kind=kind,
            message_id=message_id,
            send_id=send_id,
            session_factory=request.app.state.session_factory,
        )
    )
