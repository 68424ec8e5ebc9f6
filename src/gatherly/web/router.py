"""Web pages: sign-in, sign-out and the signed-in home page.

Pages render server-side with Jinja2; every page reads through the same services and
access engine as the API. A page that needs a user redirects to ``/signin`` without one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatherly.core.db import utcnow
from gatherly.core.exceptions import Unauthenticated
from gatherly.event import service as event_service
from gatherly.org import service as org_service
from gatherly.segment import service as segment_service
from gatherly.teams import service as teams_service
from gatherly.web import auth
from gatherly.web.pages import CsrfRefused, CurrentViewer, WebDb, page

router = APIRouter(include_in_schema=False)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _safe_next(value: str | None) -> str:
    """Only local paths: an open redirect would let a link send users elsewhere."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, db: WebDb, next: str | None = None) -> Response:
    if auth.current(db, request.cookies.get(auth.SESSION_COOKIE)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = auth.new_token()
    response = page(request, "signin.html", csrf=token, next=_safe_next(next), error=None)
    _cookie(response, request, auth.CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    db: WebDb,
    username: Annotated[str, Form(max_length=150)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if not auth.tokens_match(request.cookies.get(auth.CSRF_COOKIE), csrf):
        raise CsrfRefused
    try:
        user = org_service.verify_password(db=db, username=username.strip(), password=password)
    except Unauthenticated as exc:
        if "disabled" in exc.message:
            return page(request, "disabled.html", status_code=403, username=username)
        return page(
            request,
            "signin.html",
            status_code=401,
            csrf=csrf,
            next=_safe_next(next),
            error="Wrong username or password.",
            username=username,
        )
    _row, secret = auth.start(db, user=user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _cookie(response, request, auth.SESSION_COOKIE, secret, int(auth.LIFETIME.total_seconds()))
    response.delete_cookie(auth.CSRF_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(
    request: Request, db: WebDb, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    found = auth.current(db, request.cookies.get(auth.SESSION_COOKIE))
    if found is None:
        return RedirectResponse("/signin", status_code=303)
    row, _user = found
    if not auth.tokens_match(row.csrf_token, csrf):
        raise CsrfRefused
    auth.end(db, row)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


DASHBOARD_ROWS = 5


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """The dashboard: upcoming and recent webinars, the last sync runs and the organizers
    who need an administrator, the segments refreshed last; all as the viewer may see them."""
    user, principal = viewer.user, viewer.principal
    bu = org_service.get_bu(db=db, bu_id=user.business_unit_id)
    roles = org_service.roles_of_user(db=db, user_id=user.id)
    now = utcnow()

    def events(flt: event_service.EventFilter, sort: str) -> list[Any]:
        return list(
            event_service.list_events(
                db=db, principal=principal, flt=flt, sort=sort, limit=DASHBOARD_ROWS
            ).items
        )

    segments = segment_service.recently_refreshed(db=db, principal=principal, limit=DASHBOARD_ROWS)
    return page(
        request,
        "home.html",
        viewer,
        business_unit=bu.name,
        roles=[r.name for r in roles],
        upcoming=events(event_service.EventFilter(start_from=now), "start_at"),
        recent=events(event_service.EventFilter(start_to=now), "-start_at"),
        runs=teams_service.recent_runs(db=db, principal=principal, limit=DASHBOARD_ROWS),
        blocked=teams_service.organizers_needing_admin(db=db, principal=principal),
        teams_admin=teams_service.is_admin(principal),
        segments=[
            (s, segment_service.segment_counts(db=db, principal=principal, segment=s))
            for s in segments
        ],
    )
