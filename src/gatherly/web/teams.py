"""Web pages for the Microsoft Teams connector: Integrations › Microsoft Teams (admins) and
My webinars (organizers) (SPEC T1–T5, T12).

Every route reads and writes through ``gatherly.teams.service`` with the viewer's
principal and makes the same permission checks as the REST routes in
``gatherly.teams.router``: the connection, global settings and full syncs are for
Teams admins (``service.require_admin``); an organizer mapped to the viewer (same email)
manages their own webinars and defaults. Fragments (htmx) answer errors with a small
fragment and the error's status; pages render the error page themselves while the
request's database session is still open (the layout reads the viewer's session row).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.api.params import PathId, QueryId
from gatherly.core.bounds import parse_id
from gatherly.core.exceptions import Conflict, GatherlyError, NotFound, ValidationFailed
from gatherly.event import service as event_service
from gatherly.jobs.queue import app_jobs
from gatherly.org import service as org_service
from gatherly.teams import schemas as s
from gatherly.teams import service
from gatherly.teams.jobs import NOTIFIED_SLOWDOWN
from gatherly.teams.models import RUN_RUNNING, SyncRun, TeamsConnection, TeamsOrganizer
from gatherly.web.pages import CsrfChecked, CurrentViewer, Viewer, WebDb, page

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=500)]
Domains = Annotated[str, Form(max_length=100_000)]
Flag = Annotated[str | None, Form(max_length=10)]
Url = Annotated[str | None, Form(max_length=500)]
Who = Annotated[str | None, Query(max_length=200)]
LOOKUP_LIMIT = 50  # directory users a look-up lists at most
ORGANIZER_FIELDS = {
    "sync_new_by_default": "Sync newly scheduled webinars by default",
    "sync_recordings": "Sync recordings and transcripts",
}


def _fragment_error(request: Request, viewer: Viewer, exc: GatherlyError) -> HTMLResponse:
    return page(
        request, "teams/_error.html", viewer, status_code=exc.status_code, message=exc.message
    )


def _optional_connection(db: Session) -> TeamsConnection | None:
    try:
        return service.get_connection(db)
    except NotFound:
        return None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ Integrations › Teams


def _integrations(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    who: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """The Integrations › Microsoft Teams page (``context`` carries form input and errors);
    ``who`` looks a directory user up among all of them, not only the organizers."""
    request_settings = request.app.state.settings
    connection = _optional_connection(db)
    check = source = None
    if connection is not None:
        check = service.check_permissions(list(connection.granted_permissions or []))
        if connection.client_secret_encrypted:
            source = "stored"
        elif request_settings.teams_client_secret is not None:
            source = "environment"
        else:
            source = "missing"
    organizers = service.list_organizers(db=db, principal=viewer.principal)
    remedies = {o.id: service.remedy(connection, o) if connection else [] for o in organizers}
    who = (who or "").strip() or None
    found = (
        service.list_organizers(
            db=db, principal=viewer.principal, everyone=True, query=who, limit=LOOKUP_LIMIT
        )
        if who
        else []
    )
    users: list[Any] = []
    if access.can(db, viewer.principal, Privilege.READ, "user"):
        users, _total = org_service.list_users(db=db, principal=viewer.principal, limit=500)
    return page(
        request,
        "teams/integrations.html",
        viewer,
        status_code=status_code,
        connection=connection,
        check=check,
        secret_source=source,
        organizers=organizers,
        remedies=remedies,
        summary=service.directory_summary(db=db, principal=viewer.principal),
        who=who,
        found=found,
        lookup_limit=LOOKUP_LIMIT,
        runs=service.recent_runs(db=db, principal=viewer.principal),
        users=users,
        landing=service.where_events_land(db=db, connection=connection) if connection else None,
        subscriptions=(
            service.list_subscriptions(db=db, principal=viewer.principal) if connection else []
        ),
        slowdown=NOTIFIED_SLOWDOWN,
        **context,
    )


@router.get("/integrations/teams", response_class=HTMLResponse)
def integrations_page(
    request: Request, db: WebDb, viewer: CurrentViewer, saved: str | None = None, who: Who = None
) -> Response:
    service.require_admin(viewer.principal, Privilege.READ)
    return _integrations(request, db, viewer, saved=saved, who=who)


@router.post("/integrations/teams/connection", response_class=HTMLResponse)
def connect(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    tenant_id: Text = "",
    client_id: Text = "",
    client_secret: Text = "",
    authority: Text = "",
    graph_url: Text = "",
) -> Response:
    service.require_admin(viewer.principal)
    given = {"tenant_id": tenant_id, "client_id": client_id, "authority": authority}
    given["graph_url"] = graph_url
    try:
        body = s.ConnectionIn.model_validate(
            {k: v.strip() for k, v in {**given, "client_secret": client_secret}.items() if v}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        error = ValidationFailed(message, field=str(first["loc"][0]))
    else:
        try:
            service.connect(
                db=db,
                settings=request.app.state.settings,
                tenant_id=body.tenant_id,
                client_id=body.client_id,
                client_secret=body.client_secret,
                authority=body.authority,
                graph_url=body.graph_url,
                by_user_id=viewer.user.id,
                make_client=getattr(request.app.state, "graph_client_factory", None),
            )
        except ValidationFailed as failed:
            error = failed
        else:
            return RedirectResponse("/integrations/teams?saved=connection", status_code=303)
    return _integrations(
        request, db, viewer, status_code=422, connect_form=given, connect_error=error
    )


@router.post("/integrations/teams/connection/test", response_class=HTMLResponse)
def check_connection(
    request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    try:
        service.require_admin(viewer.principal)
        connection, check = service.check_connection(
            db=db,
            settings=request.app.state.settings,
            make_client=getattr(request.app.state, "graph_client_factory", None),
        )
    except GatherlyError as exc:
        # The failed status the check recorded is kept (the session commits on return).
        return page(
            request, "teams/_check.html", viewer, status_code=exc.status_code, error=exc.message
        )
    return page(request, "teams/_check.html", viewer, connection=connection, check=check)


@router.post("/integrations/teams/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    sync_enabled: Flag = None,
    organizer_exclusion_domains: Domains = "",
    contact_exclusion_domains: Domains = "",
    default_owner_id: Annotated[str | None, Form(max_length=20)] = None,
    notifications_enabled: Flag = None,
    public_base_url: Url = None,
) -> Response:
    service.require_admin(viewer.principal)
    try:
        # The owner and the public URL change only when the form holds their fields ("none":
        # no default owner; the service checks the URL, and an empty one clears it).
        given: dict[str, Any] = {}
        if public_base_url is not None:
            given["public_base_url"] = public_base_url
        if default_owner_id == "none":
            given["default_owner_id"] = None
        elif default_owner_id:
            given["default_owner_id"] = parse_id(default_owner_id)
            if given["default_owner_id"] is None:
                raise ValidationFailed("choose a user from the list", field="default_owner_id")
        service.update_settings(
            db=db,
            sync_enabled=sync_enabled is not None,
            organizer_exclusion_domains=_lines(organizer_exclusion_domains),
            contact_exclusion_domains=_lines(contact_exclusion_domains),
            notifications_enabled=notifications_enabled is not None,
            by_user_id=viewer.user.id,
            **given,
        )
    except ValidationFailed as exc:
        return _integrations(
            request,
            db,
            viewer,
            status_code=422,
            settings_form={
                "sync_enabled": sync_enabled is not None,
                "organizer_exclusion_domains": organizer_exclusion_domains,
                "contact_exclusion_domains": contact_exclusion_domains,
                "default_owner_id": default_owner_id or "",
                "notifications_enabled": notifications_enabled is not None,
                "public_base_url": public_base_url,
            },
            settings_error=exc,
            settings_field=(exc.field or "").split("[", 1)[0],
        )
    return RedirectResponse("/integrations/teams?saved=settings", status_code=303)


def _panel(
    request: Request,
    db: Session,
    viewer: Viewer,
    organizer: TeamsOrganizer,
    *,
    status_code: int = 200,
    checked: bool = False,
    error: GatherlyError | None = None,
) -> HTMLResponse:
    """The side panel of one directory user: status, what to do, their settings, Check now."""
    connection = _optional_connection(db)
    return page(
        request,
        "teams/_organizer_panel.html",
        viewer,
        status_code=status_code,
        organizer=organizer,
        remedy=service.remedy(connection, organizer) if connection else [],
        manageable=service.can_manage_organizer(viewer.principal, organizer),
        checked=checked,
        check_error=error,
        fields=list(ORGANIZER_FIELDS),
        labels=ORGANIZER_FIELDS,
    )


@router.get("/integrations/teams/organizers/{organizer_id}", response_class=HTMLResponse)
def organizer_panel(
    request: Request, organizer_id: PathId, db: WebDb, viewer: CurrentViewer
) -> Response:
    try:
        service.require_admin(viewer.principal, Privilege.READ)
        organizer = service.get_organizer(
            db=db, principal=viewer.principal, organizer_id=organizer_id
        )
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    return _panel(request, db, viewer, organizer)


@router.post("/integrations/teams/organizers/{organizer_id}/check", response_class=HTMLResponse)
def check_organizer_panel(
    request: Request, organizer_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """*Check now* in the panel: ask Teams about this user now; the panel again, saying so."""
    try:
        service.require_admin(viewer.principal, Privilege.READ)
        organizer = service.get_organizer(
            db=db, principal=viewer.principal, organizer_id=organizer_id
        )
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    try:
        organizer = _check(request, db, viewer, organizer_id)
    except GatherlyError as exc:  # excluded, not allowed to, not connected: said in the panel
        return _panel(request, db, viewer, organizer, status_code=exc.status_code, error=exc)
    return _panel(request, db, viewer, organizer, checked=True)


def _check(request: Request, db: Session, viewer: Viewer, organizer_id: int) -> TeamsOrganizer:
    """Ask Graph about one user now, as POST /api/v1/integrations/teams/organizers/{id}/check."""
    return service.check_organizer(
        db=db,
        principal=viewer.principal,
        organizer_id=organizer_id,
        settings=request.app.state.settings,
        make_client=getattr(request.app.state, "graph_client_factory", None),
    )


@router.post("/integrations/teams/sync", response_class=HTMLResponse)
def sync_all(request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    return _start_run(request, db, viewer, webinar_id=None)


# ------------------------------------------------------------------ My webinars


@router.get("/webinars", response_class=HTMLResponse)
def webinars_page(
    request: Request, db: WebDb, viewer: CurrentViewer, organizer: QueryId = None
) -> Response:
    principal = viewer.principal
    if organizer is not None:
        shown = [service.get_organizer(db=db, principal=principal, organizer_id=organizer)]
    else:
        shown = service.list_organizers(db=db, principal=principal, user_id=viewer.user.id)
    admin = service.is_admin(principal, Privilege.READ)
    sections = [
        (o, [w for w, _o in service.list_webinars(db=db, principal=principal, organizer_id=o.id)])
        for o in shown
    ]
    return page(
        request,
        "teams/webinars.html",
        viewer,
        sections=sections,
        chosen=organizer,
        admin=admin,
        all_organizers=service.list_organizers(db=db, principal=principal) if admin else [],
        connected=_optional_connection(db) is not None,
        can_manage={o.id: service.can_manage_organizer(principal, o) for o in shown},
        labels=ORGANIZER_FIELDS,
    )


@router.post("/webinars/{webinar_id}/sync-enabled", response_class=HTMLResponse)
def tick_webinar(
    request: Request,
    webinar_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    sync_enabled: Flag = None,
) -> Response:
    try:
        webinar = service.set_webinar_sync(
            db=db,
            principal=viewer.principal,
            webinar_id=webinar_id,
            enabled=sync_enabled is not None,
        )
    except Conflict as exc:
        webinar = service.get_webinar(db=db, principal=viewer.principal, webinar_id=webinar_id)
        return page(
            request,
            "teams/_tick.html",
            viewer,
            status_code=exc.status_code,
            w=webinar,
            manageable=True,
            error=exc.message,
        )
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    return page(request, "teams/_tick.html", viewer, w=webinar, manageable=True, saved=True)


@router.post("/webinars/organizers/{organizer_id}", response_class=HTMLResponse)
def save_organizer(
    request: Request,
    organizer_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    fields: Annotated[list[str] | None, Form(max_length=2)] = None,
    sync_new_by_default: Flag = None,
    sync_recordings: Flag = None,
) -> Response:
    """Per-user settings (T4) from a form holding some of the checkboxes (``fields``)."""
    shown = [f for f in ORGANIZER_FIELDS if f in (fields or [])]
    given = {"sync_new_by_default": sync_new_by_default, "sync_recordings": sync_recordings}
    values = {f: given[f] is not None if f in shown else None for f in ORGANIZER_FIELDS}
    error: GatherlyError | None = None
    try:
        organizer = service.update_organizer(
            db=db, principal=viewer.principal, organizer_id=organizer_id, **values
        )
    except Conflict as exc:
        error = exc
        organizer = service.get_organizer(
            db=db, principal=viewer.principal, organizer_id=organizer_id
        )
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    return page(
        request,
        "teams/_organizer_form.html",
        viewer,
        status_code=error.status_code if error else 200,
        organizer=organizer,
        fields=shown,
        labels=ORGANIZER_FIELDS,
        saved=error is None,
        error=error,
    )


@router.post("/webinars/organizers/{organizer_id}/check")
def check_organizer_again(
    request: Request,
    organizer_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    organizer: QueryId = None,
) -> Response:
    """*Check again* on My webinars: has the administrator's grant reached Teams? Back to the
    page (the organizer shown, ``organizer``), which shows the status just recorded."""
    _check(request, db, viewer, organizer_id)  # errors: the error page
    back = "/webinars" if organizer is None else f"/webinars?organizer={organizer}"
    return RedirectResponse(back, status_code=303)


@router.post("/webinars/{webinar_id}/sync", response_class=HTMLResponse)
def sync_now(
    request: Request, webinar_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    return _start_run(request, db, viewer, webinar_id=webinar_id)


@router.get("/webinars/runs/{run_id}", response_class=HTMLResponse)
def run_progress(request: Request, run_id: PathId, db: WebDb, viewer: CurrentViewer) -> Response:
    try:
        run = service.get_run(db=db, principal=viewer.principal, run_id=run_id)
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    return _run_fragment(request, db, viewer, run)


# ------------------------------------------------------------------ sync runs (T12)


def _start_run(
    request: Request, db: Session, viewer: Viewer, *, webinar_id: int | None
) -> Response:
    """Record a run and queue it, as POST /api/v1/integrations/teams/sync does; answer its progress."""
    try:
        run = service.start_sync(
            db=db, principal=viewer.principal, queue=app_jobs(request.app), webinar_id=webinar_id
        )
    except GatherlyError as exc:
        return _fragment_error(request, viewer, exc)
    return _run_fragment(request, db, viewer, run, status_code=202)


def _run_fragment(
    request: Request, db: Session, viewer: Viewer, run: SyncRun, *, status_code: int = 200
) -> HTMLResponse:
    """A run's progress (polling while it runs) and, once done, its counts and errors."""
    webinar = event = None
    if run.webinar_graph_id:
        try:
            webinar = service.find_webinar(
                db=db, principal=viewer.principal, ref=run.webinar_graph_id
            )
            if webinar.event_id is not None and run.status != RUN_RUNNING:
                event = event_service.get_event(
                    db=db, principal=viewer.principal, event_id=webinar.event_id
                )
        except NotFound:
            pass  # not the viewer's to see: the run's own counts still show
    return page(
        request,
        "teams/_run.html",
        viewer,
        status_code=status_code,
        run=run,
        running=run.status == RUN_RUNNING,
        webinar=webinar,
        event=event,
    )
