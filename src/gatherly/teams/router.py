"""REST routes for the Microsoft Teams connector: connection, settings, organizers, webinars
and sync runs (SPEC T1–T5, T12).

The connection and global settings are admin only (``teams.service.require_admin``);
organizers and webinars are visible to admins and to the organizer mapped to the caller.
*Sync now* and full syncs are recorded as a run, then queued for the worker
(``gatherly worker``, or the one ``gatherly serve`` embeds); a dry run answers at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId, QueryId
from gatherly.api.responses import media_stream
from gatherly.contact.schemas import PageOut
from gatherly.core.config import Settings
from gatherly.core.exceptions import GatherlyError, NotFound
from gatherly.core.pagination import MAX_LIMIT, paginate
from gatherly.jobs.queue import Jobs, app_jobs
from gatherly.teams import notifications, service
from gatherly.teams import schemas as s
from gatherly.teams.models import SyncRun, TeamsConnection, TeamsOrganizer, TeamsWebinar

router = APIRouter(prefix="/integrations/teams", tags=["microsoft teams"])
# Microsoft Graph's change notifications: public (outside the token-guarded API), each item
# authenticated by its subscription's clientState.
hooks = APIRouter(prefix="/hooks", include_in_schema=False)
# What Teams holds for an event, read through the connection: under /events like the rest.
event_content = APIRouter(prefix="/events", tags=["events"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _jobs(request: Request) -> Jobs:
    """The app's job queue, opened on first use."""
    return app_jobs(request.app)


def _client_factory(request: Request) -> service.ClientFactory | None:
    """The Graph client factory tests inject (``app.state.graph_client_factory``), else None."""
    return getattr(request.app.state, "graph_client_factory", None)


def _connection_out(connection: TeamsConnection, settings: Settings) -> s.ConnectionOut:
    check = service.check_permissions(list(connection.granted_permissions or []))
    if connection.client_secret_encrypted:
        source = "stored"
    else:
        source = "environment" if settings.teams_client_secret is not None else "missing"
    return s.ConnectionOut(
        tenant_id=connection.tenant_id,
        client_id=connection.client_id,
        authority=connection.authority,
        graph_url=connection.graph_url,
        status=connection.status,
        status_detail=connection.status_detail,
        granted_permissions=check.granted,
        missing_permissions=check.missing_required + check.missing_optional,
        secret_source=source,
        checked_at=connection.checked_at,
        modified_at=connection.modified_at,
        settings=s.TeamsSettingsOut.model_validate(connection),
    )


def _organizer_out(organizer: TeamsOrganizer, connection: TeamsConnection | None) -> s.OrganizerOut:
    return s.OrganizerOut(
        id=organizer.id,
        graph_user_id=organizer.graph_user_id,
        display_name=organizer.display_name,
        email=organizer.email,
        status=organizer.status,
        status_detail=organizer.status_detail,
        status_changed_at=organizer.status_changed_at,
        remedy=service.remedy(connection, organizer) if connection else [],
        sync_new_by_default=organizer.sync_new_by_default,
        sync_recordings=organizer.sync_recordings,
        user_id=organizer.user_id,
        organizes=organizer.organizes,
        probed_at=organizer.probed_at,
        removed_at=organizer.removed_at,
    )


def _webinar_out(webinar: TeamsWebinar, organizer: TeamsOrganizer) -> s.WebinarOut:
    fields = {k: getattr(webinar, k) for k in s.WebinarOut.model_fields if k != "organizer_name"}
    return s.WebinarOut.model_validate({**fields, "organizer_name": organizer.display_name})


def _run_out(request: Request, run: SyncRun) -> s.SyncRunOut:
    out = s.SyncRunOut.model_validate(run)
    out.links = {"self": request.url_for("get_sync_run", run_id=run.id).path}
    return out


def _optional_connection(db: Session) -> TeamsConnection | None:
    try:
        return service.get_connection(db)
    except NotFound:
        return None


# ------------------------------------------------------------------ connection (T1, T3)


@router.get("/connection", summary="The Teams connection and global settings (admin)")
def get_connection(request: Request, db: DbSession, principal: CurrentPrincipal) -> s.ConnectionOut:
    service.require_admin(principal, Privilege.READ)
    return _connection_out(service.get_connection(db), _settings(request))


@router.put(
    "/connection",
    summary="Connect to a tenant: checks the credentials and permissions, then saves (admin)",
)
def put_connection(
    request: Request, body: s.ConnectionIn, db: DbSession, principal: CurrentPrincipal
) -> s.ConnectionOut:
    service.require_admin(principal)
    connection, _check = service.connect(
        db=db,
        settings=_settings(request),
        tenant_id=body.tenant_id,
        client_id=body.client_id,
        client_secret=body.client_secret,
        authority=body.authority,
        graph_url=body.graph_url,
        default_owner_id=body.default_owner_id,
        by_user_id=principal.user_id,
        make_client=_client_factory(request),
    )
    return _connection_out(connection, _settings(request))


@router.post(
    "/connection/test", summary="Check the saved credentials and permissions again (admin)"
)
def check_connection(
    request: Request, db: DbSession, principal: CurrentPrincipal
) -> s.ConnectionOut:
    service.require_admin(principal)
    try:
        connection, _check = service.check_connection(
            db=db, settings=_settings(request), make_client=_client_factory(request)
        )
    except GatherlyError:
        db.commit()  # keep the failed status the check recorded
        raise
    return _connection_out(connection, _settings(request))


@router.delete(
    "/connection",
    status_code=204,
    summary="Forget the connection and its secret; synced data stays (admin)",
)
def delete_connection(db: DbSession, principal: CurrentPrincipal) -> Response:
    service.require_admin(principal, Privilege.DELETE)
    service.disconnect(db=db, by_user_id=principal.user_id)
    return no_content()


@router.patch("/settings", summary="Change global settings; only the fields sent (admin)")
def patch_settings(
    body: s.SettingsPatch, db: DbSession, principal: CurrentPrincipal
) -> s.TeamsSettingsOut:
    service.require_admin(principal)
    connection = service.update_settings(
        db=db, by_user_id=principal.user_id, **body.model_dump(exclude_unset=True)
    )
    return s.TeamsSettingsOut.model_validate(connection)


# ------------------------------------------------------------------ change notifications


@router.get("/subscriptions", summary="Change-notification subscriptions and their health (admin)")
def list_subscriptions(db: DbSession, principal: CurrentPrincipal) -> list[s.SubscriptionOut]:
    return [
        s.SubscriptionOut.model_validate(
            {
                **{
                    k: getattr(v.subscription, k)
                    for k in s.SubscriptionOut.model_fields
                    if k != "webinar_name"
                },
                "webinar_name": v.webinar_name,
            }
        )
        for v in service.list_subscriptions(db=db, principal=principal)
    ]


ValidationToken = Annotated[
    str | None,
    Query(
        alias="validationToken",
        max_length=4096,
        description="Graph's validation handshake: answered with the token, as text",
    ),
]


MAX_DELIVERY = 1024 * 1024  # bytes of one delivery from Graph (1,000 notifications fit)


def small_delivery(request: Request) -> None:
    """Refuse a body larger than a Graph delivery before it is read (the webhook is public)."""
    length = request.headers.get("content-length")
    if length is None and "validationToken" not in request.query_params:
        raise HTTPException(411, "a Content-Length is required")
    if length is not None and (not length.isdigit() or int(length) > MAX_DELIVERY):
        raise HTTPException(413, f"a delivery is at most {MAX_DELIVERY // 1024} KB")


async def _delivery(request: Request) -> s.NotificationsIn:
    """The body of a delivery, read up to ``MAX_DELIVERY`` bytes whatever the headers say."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_DELIVERY:
            raise HTTPException(413, f"a delivery is at most {MAX_DELIVERY // 1024} KB")
    try:
        return s.NotificationsIn.model_validate_json(bytes(raw) or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


async def _hook(
    request: Request,
    db: Session,
    validation_token: str | None,
    take: Any,
) -> Response:
    """Graph's handshake (the token back, as text), or a delivery: ``take`` checks and
    records its items; what they call for is queued after the commit, and Graph is told
    202 at once."""
    if validation_token is not None:
        return PlainTextResponse(validation_token, headers={"X-Content-Type-Options": "nosniff"})
    body = await _delivery(request)

    def record() -> notifications.Receipt:
        receipt: notifications.Receipt = take(db=db, items=body.value)
        db.commit()
        return receipt

    receipt = await run_in_threadpool(record)  # the database waits off the event loop
    jobs = app_jobs(request.app)
    if receipt.queued:
        jobs.enqueue_notified()
    if receipt.catch_up:
        jobs.enqueue_subscriptions()
    return JSONResponse({"status": "accepted"}, status_code=202)


@hooks.post(
    "/graph",
    status_code=202,
    dependencies=[Depends(small_delivery)],
    summary="Graph's change notifications (public: each item's clientState is checked)",
    description="Microsoft Graph posts here. With `validationToken` it is the subscription "
    "handshake, answered with the token as text/plain. Otherwise each notification whose "
    "clientState matches its subscription queues a sync of the webinar it names; others "
    "are discarded. Answers 202 at once; the work runs on the worker.",
)
async def graph_notifications(
    request: Request, db: DbSession, validation_token: ValidationToken = None
) -> Response:
    return await _hook(request, db, validation_token, notifications.receive)


@hooks.post(
    "/graph/lifecycle",
    status_code=202,
    dependencies=[Depends(small_delivery)],
    summary="Graph's lifecycle notifications (public: each item's clientState is checked)",
    description="Microsoft Graph posts `reauthorizationRequired`, `subscriptionRemoved` and "
    "`missed` here; the subscription manager renews, creates again and catches up by "
    "polling. With `validationToken` it is the handshake, answered as text/plain.",
)
async def graph_lifecycle(
    request: Request, db: DbSession, validation_token: ValidationToken = None
) -> Response:
    return await _hook(request, db, validation_token, notifications.lifecycle)


# ------------------------------------------------------------------ organizers (T2, T4)


@router.get(
    "/organizers",
    summary="Organizers (and users mapped to Gatherly users) with their status and remedy",
)
def list_organizers(
    db: DbSession,
    principal: CurrentPrincipal,
    everyone: Annotated[
        bool, Query(description="Every directory user, not only those who organize")
    ] = False,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of a name or an email")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows at most")] = 500,
) -> list[s.OrganizerOut]:
    connection = _optional_connection(db)
    found = service.list_organizers(
        db=db, principal=principal, everyone=everyone, query=q, limit=limit
    )
    return [_organizer_out(o, connection) for o in found]


@router.get("/directory", summary="The tenant's users by what the sync knows of them (admin)")
def directory_summary(db: DbSession, principal: CurrentPrincipal) -> s.DirectorySummaryOut:
    summary = service.directory_summary(db=db, principal=principal)
    return s.DirectorySummaryOut.model_validate(summary, from_attributes=True)


@router.post(
    "/organizers/{organizer_id}/check",
    summary="Ask Teams now whether the access policy covers this user",
)
def check_organizer(
    request: Request, organizer_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> s.OrganizerOut:
    organizer = service.check_organizer(
        db=db,
        principal=principal,
        organizer_id=organizer_id,
        settings=_settings(request),
        make_client=_client_factory(request),
    )
    return _organizer_out(organizer, _optional_connection(db))


@router.patch("/organizers/{organizer_id}", summary="An organizer's sync defaults")
def patch_organizer(
    organizer_id: PathId, body: s.OrganizerPatch, db: DbSession, principal: CurrentPrincipal
) -> s.OrganizerOut:
    organizer = service.update_organizer(
        db=db,
        principal=principal,
        organizer_id=organizer_id,
        sync_new_by_default=body.sync_new_by_default,
        sync_recordings=body.sync_recordings,
    )
    return _organizer_out(organizer, _optional_connection(db))


# ------------------------------------------------------------------ webinars (T4, T5)


@router.get("/webinars", summary="Webinars and town halls seen in Teams, newest first")
def list_webinars(
    db: DbSession, principal: CurrentPrincipal, organizer_id: QueryId = None
) -> list[s.WebinarOut]:
    rows = service.list_webinars(db=db, principal=principal, organizer_id=organizer_id)
    return [_webinar_out(w, o) for w, o in rows]


@router.patch("/webinars/{webinar_id}", summary="Tick or untick Sync on a webinar or town hall")
def patch_webinar(
    webinar_id: PathId, body: s.WebinarPatch, db: DbSession, principal: CurrentPrincipal
) -> s.WebinarOut:
    webinar = service.set_webinar_sync(
        db=db, principal=principal, webinar_id=webinar_id, enabled=body.sync_enabled
    )
    organizer = service.get_organizer(db=db, principal=principal, organizer_id=webinar.organizer_id)
    return _webinar_out(webinar, organizer)


# ------------------------------------------------------------------ sync runs (T12)


@router.post(
    "/sync",
    status_code=202,
    response_model=s.SyncRunOut,
    summary="Start a sync (admin), or Sync now on one webinar (admin or its organizer)",
    responses={200: {"model": s.SyncReportOut, "description": "Dry run: the plan, no writes"}},
)
def start_sync(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    body: s.SyncIn | None = None,
) -> Any:
    body = body or s.SyncIn()
    if body.dry_run:
        report = service.sync_now(
            db=db,
            principal=principal,
            session_factory=request.app.state.session_factory,
            settings=_settings(request),
            webinar_id=body.webinar_id,
            dry_run=True,
            make_client=_client_factory(request),
        )
        out = s.SyncReportOut.model_validate(report.as_dict())
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    run = service.start_sync(
        db=db, principal=principal, queue=_jobs(request), webinar_id=body.webinar_id
    )
    return _run_out(request, run)


@router.get(
    "/sync-runs",
    summary="Sync runs, newest first (admins: all; others: those they started)",
    response_model=PageOut[s.SyncRunOut],
)
def list_sync_runs(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
) -> Any:
    page = paginate(
        db,
        service.runs_visible_to(principal),
        id_column=SyncRun.id,
        sortable={"started_at": SyncRun.started_at},
        sort="-started_at",
        cursor=paging.cursor,
        limit=paging.limit,
    )
    return {"items": [_run_out(request, r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/sync-runs/{run_id}", summary="One sync run: progress, counts, errors")
def get_sync_run(
    request: Request, run_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> s.SyncRunOut:
    return _run_out(request, service.get_run(db=db, principal=principal, run_id=run_id))


@event_content.get(
    "/{event_id}/recordings/{recording_id}/content",
    summary="Play a recording: its video streamed from Microsoft Teams",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def recording_content(
    event_id: PathId,
    recording_id: PathId,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    content = service.recording_content(
        db=db,
        principal=principal,
        settings=_settings(request),
        event_id=event_id,
        recording_id=recording_id,
        make_client=_client_factory(request),
    )
    return media_stream(content.chunks, content.media_type, content.length)
