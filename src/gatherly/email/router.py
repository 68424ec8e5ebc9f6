"""REST routes for email messages and content settings (SPEC M, B14)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content, public_url
from gatherly.api.params import Paging, PathId
from gatherly.api.responses import CSV_RESPONSE, csv_download
from gatherly.contact.schemas import PageOut
from gatherly.core.ids import MAX_ID
from gatherly.email import audience as audiences
from gatherly.email import bounces, sends, service
from gatherly.email import insights as insights_service
from gatherly.email import schemas as s
from gatherly.jobs.queue import app_jobs

router = APIRouter(prefix="/email", tags=["email"])
Search = Annotated[str | None, Query(max_length=200, description="Part of the name")]


# ------------------------------------------------------------------ content settings


@router.get(
    "/content-settings",
    summary="Content settings you may read",
    response_model=PageOut[s.ContentSettingOut],
)
def list_content_settings(
    db: DbSession, principal: CurrentPrincipal, paging: Paging, q: Search = None
) -> Any:
    page = service.list_content_settings(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/content-settings",
    status_code=201,
    summary="Create a content setting (sender, reply-to, postal address)",
    response_model=s.ContentSettingOut,
)
def create_content_setting(
    body: s.ContentSettingIn, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.create_content_setting(db=db, principal=principal, setting_in=body)


@router.get(
    "/content-settings/{setting_id}",
    summary="Read a content setting",
    response_model=s.ContentSettingOut,
)
def read_content_setting(setting_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_content_setting(db=db, principal=principal, setting_id=setting_id)


@router.patch(
    "/content-settings/{setting_id}",
    summary="Change a content setting",
    response_model=s.ContentSettingOut,
)
def update_content_setting(
    setting_id: PathId, body: s.ContentSettingFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.update_content_setting(
        db=db, principal=principal, setting_id=setting_id, setting_in=body
    )


@router.put(
    "/content-settings/{setting_id}/default",
    summary="Make it the default of its business unit or of the organisation",
    description="`business_unit` is accepted only while business unit scoping is on; "
    "`organization` needs organization-level write on content settings; null unsets it.",
    response_model=s.ContentSettingOut,
)
def set_default(
    setting_id: PathId, body: s.DefaultIn, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.set_default(
        db=db, principal=principal, setting_id=setting_id, default_for=body.default_for
    )


@router.delete(
    "/content-settings/{setting_id}",
    status_code=204,
    summary="Delete a content setting no message uses",
)
def delete_content_setting(
    setting_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.delete_content_setting(db=db, principal=principal, setting_id=setting_id)
    return no_content()


# ------------------------------------------------------------------ messages


@router.get(
    "/messages", summary="Email messages you may read", response_model=PageOut[s.MessageOut]
)
def list_messages(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Search = None,
    state: Literal["draft", "ready", "in_use"] | None = None,
) -> Any:
    page = service.list_messages(
        db=db, principal=principal, q=q, state=state, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/messages", status_code=201, summary="Create a message (a draft)", response_model=s.MessageOut
)
def create_message(body: s.MessageIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.create_message(db=db, principal=principal, message_in=body)


@router.get("/messages/{message_id}", summary="Read a message", response_model=s.MessageOut)
def read_message(message_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_message(db=db, principal=principal, message_id=message_id)


@router.patch(
    "/messages/{message_id}",
    summary="Change a message (a ready one goes back to draft)",
    response_model=s.MessageOut,
)
def update_message(
    message_id: PathId, body: s.MessageFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.update_message(
        db=db, principal=principal, message_id=message_id, message_in=body
    )


@router.delete("/messages/{message_id}", status_code=204, summary="Delete a message not in use")
def delete_message(message_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_message(db=db, principal=principal, message_id=message_id)
    return no_content()


@router.post(
    "/messages/{message_id}/copy",
    status_code=201,
    summary="Copy a message into a new draft you own",
    response_model=s.MessageOut,
)
def copy_message(message_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.copy_message(db=db, principal=principal, message_id=message_id)


@router.get(
    "/messages/{message_id}/check",
    summary="What stands between a message and ready",
)
def check_message(
    message_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> s.CheckOut:
    setting, problems = service.check(
        db=db, principal=principal, message_id=message_id, public_url=public_url(request)
    )
    return s.CheckOut(
        ready=not problems,
        content_setting_id=setting.id if setting is not None else None,
        problems=[s.ProblemOut(field=p.field, message=p.message) for p in problems],
    )


@router.post(
    "/messages/{message_id}/ready",
    summary="Check a message and make it ready to send",
    response_model=s.MessageOut,
)
def make_ready(
    message_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.make_ready(
        db=db, principal=principal, message_id=message_id, public_url=public_url(request)
    )


@router.get(
    "/messages/{message_id}/preview",
    summary="The message as one contact you may read would receive it",
)
def preview(
    message_id: PathId,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    contact_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The contact to preview it for")],
) -> s.PreviewOut:
    rendered = service.preview(
        db=db,
        principal=principal,
        message_id=message_id,
        contact_id=contact_id,
        public_url=public_url(request),
    )
    return s.PreviewOut(
        contact_id=contact_id,
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=rendered.text,
    )


# ------------------------------------------------------------------ audience and suppression

SegmentIds = Annotated[
    list[Annotated[int, Query(ge=1, le=MAX_ID)]],
    Query(alias="segment_id", max_length=50, description="A segment to send to (repeatable)"),
]
ListIds = Annotated[
    list[Annotated[int, Query(ge=1, le=MAX_ID)]],
    Query(alias="list_id", max_length=50, description="A marketing list to send to (repeatable)"),
]


MessageFor = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_ID,
        description="The message to send: who unsubscribed from its topic is suppressed too",
    ),
]


@router.get("/audience", summary="Who a send to these segments and lists would reach")
def audience(
    db: DbSession,
    principal: CurrentPrincipal,
    segment_ids: SegmentIds = [],  # noqa: B006 - FastAPI copies query defaults
    list_ids: ListIds = [],  # noqa: B006
    message_id: MessageFor = None,
) -> s.AudienceOut:
    found = audiences.audience(
        db=db,
        principal=principal,
        segment_ids=segment_ids,
        list_ids=list_ids,
        message_id=message_id,
    )
    return s.AudienceOut(
        total=found.total,
        receiving=found.receiving,
        suppressed=found.suppressed,
        reasons=audiences.REASONS,
    )


@router.get(
    "/audience/people",
    summary="The audience's contacts you may read, with why each does not get it",
    response_model=PageOut[s.AudiencePersonOut],
)
def audience_people(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    segment_ids: SegmentIds = [],  # noqa: B006
    list_ids: ListIds = [],  # noqa: B006
    everyone: Annotated[
        bool, Query(alias="all", description="Everyone, not only the suppressed")
    ] = False,
    message_id: MessageFor = None,
) -> Any:
    page = audiences.audience_people(
        db=db,
        principal=principal,
        segment_ids=segment_ids,
        list_ids=list_ids,
        message_id=message_id,
        suppressed_only=not everyone,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    items = [
        s.AudiencePersonOut(
            contact_id=p.contact.id,
            name=f"{p.contact.first_name} {p.contact.last_name}".strip(),
            email=p.contact.email,
            reason=p.reason,
        )
        for p in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.get(
    "/suppressions",
    summary="Suppressed addresses of contacts you may read",
    response_model=PageOut[s.SuppressionOut],
)
def list_suppressions(
    db: DbSession, principal: CurrentPrincipal, paging: Paging, q: Search = None
) -> Any:
    page = audiences.list_suppressions(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/suppressions/{suppression_id}/lift",
    summary="Lift a bounce or complaint suppression (system administrators; audited)",
    response_model=s.SuppressionOut,
)
def lift_suppression(
    suppression_id: PathId, body: s.LiftIn, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return audiences.lift(db=db, principal=principal, suppression_id=suppression_id, why=body.why)


# ------------------------------------------------------------------ sends


def _progress(found: sends.Progress) -> s.SendProgressOut:
    return s.SendProgressOut(
        send=s.SendOut.model_validate(found.send), states=found.states, reasons=found.reasons
    )


@router.post(
    "/sends",
    status_code=201,
    summary="Send a ready message to segments and lists, now or at a time",
    description="The audience is taken when the send starts, as you may read it then; "
    "suppressed contacts and second contacts with the same address get nothing.",
    response_model=s.SendOut,
)
def create_send(
    body: s.SendIn, request: Request, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return sends.create_send(
        db=db,
        principal=principal,
        message_id=body.message_id,
        segment_ids=body.segment_ids,
        list_ids=body.list_ids,
        scheduled_at=body.scheduled_at,
        owner=body.owner,
        queue=app_jobs(request.app),
    )


@router.get("/sends", summary="Sends you may read", response_model=PageOut[s.SendOut])
def list_sends(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    message_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    page = sends.list_sends(
        db=db, principal=principal, message_id=message_id, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/sends/{send_id}",
    summary="A send and its deliveries by state",
    response_model=s.SendProgressOut,
)
def read_send(send_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return _progress(sends.progress(db=db, principal=principal, send_id=send_id))


@router.post(
    "/sends/{send_id}/cancel",
    summary="Stop a send: what was not sent yet is not sent",
    response_model=s.SendOut,
)
def cancel_send(send_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return sends.cancel_send(db=db, principal=principal, send_id=send_id)


@router.post(
    "/messages/{message_id}/test",
    summary="Send one test copy of a message to an address now",
    description="Personalised for a contact you may read, or for the sample contact; the "
    "subject starts with [Test] and its unsubscribe links lead to a preview. Needs write "
    "access to the message.",
    response_model=s.TestSendOut,
)
def send_test(
    message_id: PathId,
    body: s.TestSendIn,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
) -> Any:
    return sends.send_test(
        db=db,
        principal=principal,
        settings=request.app.state.settings,
        message_id=message_id,
        to=body.to,
        contact_id=body.contact_id,
    )


# ------------------------------------------------------------------ insights

OfMessage = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A message (all its sends)")]
OfSend = Annotated[int | None, Query(ge=1, le=MAX_ID, description="One send")]
Kind = Annotated[
    insights_service.Kind, Query(description="What they did: opened, clicked, unsubscribed …")
]
OPENED: insights_service.Kind = "opened"


@router.get(
    "/insights",
    summary="Insights of a message or a send: every count, in full",
    response_model=s.InsightsOut,
)
def insights(
    db: DbSession,
    principal: CurrentPrincipal,
    message_id: OfMessage = None,
    send_id: OfSend = None,
) -> Any:
    found = insights_service.insights(
        db=db, principal=principal, message_id=message_id, send_id=send_id
    )
    return s.InsightsOut.model_validate(found)


def _activity(p: insights_service.Someone) -> s.ActivityOut:
    c = p.contact
    return s.ActivityOut(
        anonymous=c is None,
        contact_id=c.id if c else None,
        name=f"{c.first_name} {c.last_name}".strip() if c else "Anonymous contact",
        email=c.email if c else None,
        first_at=p.first_at,
        last_at=p.last_at,
        times=p.times,
        machine_only=p.machine_only,
        urls=p.urls,
    )


@router.get(
    "/insights/people",
    summary="Who opened (clicked, …): contacts you may not read are anonymous",
    response_model=PageOut[s.ActivityOut],
)
def insight_people(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    kind: Kind = OPENED,
    message_id: OfMessage = None,
    send_id: OfSend = None,
) -> Any:
    page = insights_service.people(
        db=db,
        principal=principal,
        kind=kind,
        message_id=message_id,
        send_id=send_id,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    return {"items": [_activity(p) for p in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/insights/people.csv",
    summary="Who opened (clicked, …) as CSV (anonymous rows stay anonymous)",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_insight_people(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    kind: Kind = OPENED,
    message_id: OfMessage = None,
    send_id: OfSend = None,
) -> StreamingResponse:
    return csv_download(
        insights_service.export_people(
            db=db,
            principal=principal,
            kind=kind,
            message_id=message_id,
            send_id=send_id,
            session_factory=request.app.state.session_factory,
        )
    )


# ------------------------------------------------------------------ bounces


def webhook_caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """The webhook's own token (``GATHERLY_EMAIL_WEBHOOK_TOKEN``), not a user's."""
    bounces.check_webhook(request.app.state.settings, authorization)


WebhookCaller = Annotated[None, Depends(webhook_caller)]


def _applied(done: bounces.Applied) -> s.AppliedOut:
    return s.AppliedOut(
        recorded=done.recorded,
        repeated=done.repeated,
        unmatched=done.unmatched,
        suppressed=len(done.suppressed),
        unreadable=done.unreadable,
        unsubscribed=done.unsubscribed,
    )


@router.post(
    "/webhook",
    summary="Bounces and complaints from a sending service (webhook token, not a user's)",
    description="Authenticate with `Authorization: Bearer <GATHERLY_EMAIL_WEBHOOK_TOKEN>`. "
    "A hard bounce or a complaint suppresses the address; each event is recorded once.",
    response_model=s.AppliedOut,
)
def webhook(body: s.WebhookIn, db: DbSession, _caller: WebhookCaller) -> s.AppliedOut:
    events = [
        bounces.Event(e.type, e.email, e.bounce_type, e.message_id, e.detail) for e in body.events
    ]
    return _applied(bounces.apply(db=db, events=events, source="webhook"))


@router.post(
    "/webhook/report",
    summary="One raw bounce or feedback report (message/rfc822), as an MTA pipes it",
    response_model=s.AppliedOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string"}}},
        }
    },
)
async def webhook_report(request: Request, db: DbSession, _caller: WebhookCaller) -> s.AppliedOut:
    raw = await request.body()
    return _applied(bounces.receive_report(db=db, settings=request.app.state.settings, raw=raw))
