"""What every web page shares: the signed-in viewer, CSRF checks, rendering and errors.

A page route takes ``viewer: CurrentViewer`` (redirects to ``/signin`` without a live
session, shows the disabled page for a disabled user) and reads only through the
services with ``viewer.principal``, the same access engine the API uses. A route that
changes anything also takes ``_: CsrfChecked``: the session's token must come with the
request, as the ``csrf`` form field or (htmx) the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import nh3
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from gatherly.access import engine as access
from gatherly.access.engine import Principal
from gatherly.access.levels import SHARE_BITS, Level, Privilege
from gatherly.api.deps import get_db
from gatherly.api.errors import plain
from gatherly.core.db import utcnow
from gatherly.core.exceptions import GatherlyError, ValidationFailed
from gatherly.core.timezones import known_zone, zone_label
from gatherly.org.directory import cached_principal
from gatherly.teams import service as teams_service
from gatherly.web import auth

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def safe_html(value: str | None) -> Markup:
    """HTML from outside (a webinar's description) as a page may show it: nh3 keeps the
    formatting tags and drops scripts, styles, event handlers and javascript: links."""
    return Markup(nh3.clean(value or ""))  # noqa: S704 - nh3 has just sanitised it


# The zone of the page being rendered (page() sets it from the viewer), for ``when``.
_ZONE: ContextVar[str] = ContextVar("gatherly_page_zone", default="UTC")
_STYLES = {
    "datetime": lambda at: f"{at:%a} {at.day} {at:%b %Y, %H:%M}",
    "exact": lambda at: f"{at:%Y-%m-%d %H:%M:%S}",
    "short": lambda at: f"{at:%Y-%m-%d %H:%M}",
    "date": lambda at: f"{at.day} {at:%b %Y}",
    "time": lambda at: f"{at:%H:%M}",
}
_ZONELESS = ("date", "time", "short")  # a day, or a time in a table that names the zone


def when(value: datetime | None, style: str = "datetime", empty: str = "—") -> Markup:
    """A stored (UTC) time in the viewer's time zone, the zone named: ``Tue 3 Mar 2026,
    15:05 CET``; ``exact`` to the second (``2026-03-03 15:05:09 CET``); ``date`` and
    ``time`` give the day or the clock alone, ``short`` a table's ``2026-03-03 15:05``."""
    if value is None:
        return escape(empty)
    zone = _ZONE.get()
    at = value.astimezone(ZoneInfo(zone))
    text = _STYLES[style](at) + ("" if style in _ZONELESS else f" {zone_label(at)}")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(value.isoformat(), zone, text)


templates.env.filters["safe_html"] = safe_html
templates.env.globals["when"] = when
WebDb = Annotated[Session, Depends(get_db, scope="function")]
CSRF_HEADER = "X-CSRF-Token"
# The health checks and metrics (app.py): machine endpoints, whose errors are JSON.
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")
ZONE_COOKIE = "gatherly_tz"  # the browser's zone, written by gatherly.js


@dataclass(frozen=True)
class SignedInUser:
    """The facts of the signed-in user a page needs, copied out of the database row so an
    error page can still draw the layout after the request's transaction rolled back."""

    id: int
    username: str
    full_name: str
    email: str | None
    business_unit_id: int


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a page: who they are, their access principal, the CSRF token."""

    user: SignedInUser
    principal: Principal
    csrf: str
    session_id: int = 0  # this browser's session (kept when the user changes the password)
    time_zone: str = "UTC"  # where the pages show times
    zone_source: str = "default"  # "setting" (the user's), "browser", or "default" (UTC)

    @property
    def is_admin(self) -> bool:
        """A system administrator: the installation's admin pages and switches."""
        return self.principal.is_system_admin

    @property
    def manages_teams(self) -> bool:
        """May open Integrations › Microsoft Teams (organization-level marketing admins)."""
        return teams_service.is_admin(self.principal)

    @property
    def reads_linkedin(self) -> bool:
        """May open the LinkedIn page (their roles reach LinkedIn profiles)."""
        return self.principal.max_level("linkedin_profile", Privilege.READ) != Level.NONE


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""


class DisabledUser(Exception):
    def __init__(self, username: str) -> None:
        self.username = username


class CsrfRefused(Exception):
    """A change without this session's token (a forged or stale form)."""


def current_viewer(request: Request, db: WebDb) -> Viewer:
    found = auth.current(db, request.cookies.get(auth.SESSION_COOKIE))
    if found is None:
        raise SignInRequired
    row, user = found
    if user.disabled:
        auth.end(db, row)
        db.commit()
        raise DisabledUser(user.username)
    if db.dirty:
        db.commit()  # last seen: kept even when the page then fails
    browser = request.cookies.get(ZONE_COOKIE)
    if user.time_zone and known_zone(user.time_zone):
        zone, source = user.time_zone, "setting"
    elif known_zone(browser):
        zone, source = str(browser), "browser"
    else:
        zone, source = "UTC", "default"
    viewer = Viewer(
        user=SignedInUser(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            email=user.email,
            business_unit_id=user.business_unit_id,
        ),
        principal=cached_principal(db, user.id, cache=request.app.state.principals, now=utcnow()),
        csrf=row.csrf_token,
        session_id=row.id,
        time_zone=zone,
        zone_source=source,
    )
    request.state.viewer = viewer  # for error pages raised later in the route
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


async def csrf_checked(request: Request, viewer: CurrentViewer) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")
        given = value if isinstance(value, str) else None
    if not auth.tokens_match(viewer.csrf, given):
        raise CsrfRefused


CsrfChecked = Annotated[None, Depends(csrf_checked)]


async def _form_data(request: Request) -> FormData:
    return await request.form()


FormFields = Annotated[FormData, Depends(_form_data)]  # a posted form, read once


def form_text(form: FormData, name: str) -> str:
    """A form field's text ("" when absent, or when a file was sent in its place)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


M = TypeVar("M", bound=BaseModel)


def parse_form(model: type[M], **data: str) -> M:
    """Validate form fields with the API's input model, so a page and the API accept the
    same values (an empty field counts as not given); ValidationFailed names the field."""
    return parse_fields(model, {k: v for k, v in data.items() if v != ""})


def parse_fields(model: type[M], data: dict[str, Any]) -> M:
    """:func:`parse_form` for values taken as they are: an edit form, where an emptied
    field clears the value."""
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        message = {
            "missing": "this field is required",
            "string_pattern_mismatch": "use only letters, digits and . _ @ -",
            "value_error": plain(first),
        }.get(first["type"]) or f"this field {plain(first)}"
        raise ValidationFailed(message, field=field) from None


class NewPassword(BaseModel):
    """A new password typed twice (the account page and an administrator's reset)."""

    new_password: Annotated[str, Field(min_length=1, max_length=1000)]
    confirm_password: Annotated[str, Field(min_length=1, max_length=1000)]

    def checked(self) -> str:
        """The new password, once both fields agree."""
        if self.new_password != self.confirm_password:
            raise ValidationFailed("the two new passwords differ", field="confirm_password")
        return self.new_password


def may(db: Session, viewer: Viewer, record_type: str, record: Any) -> dict[str, bool]:
    """``may_read``, ``may_write``, ``may_delete``, ``may_assign``, ``may_share`` …: which
    links a record's page offers (the services check again when one is used)."""
    rights = access.held_rights(db, viewer.principal, record_type, record)
    return {f"may_{p.value}": p in rights for p in SHARE_BITS}


def page(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template``; with a viewer, the layout shows the navigation and sign-out,
    and times show in the viewer's zone."""
    token = _ZONE.set(viewer.time_zone if viewer is not None else "UTC")
    try:  # the response renders here, in its constructor
        return templates.TemplateResponse(
            request, template, {"viewer": viewer, **context}, status_code=status_code
        )
    finally:
        _ZONE.reset(token)


def is_web(request: Request) -> bool:
    """Web pages are everything outside the API (and the health checks, the static files and
    the webhooks other services post to, which answer JSON)."""
    path = request.url.path
    return not (path.startswith(("/api/", "/static/", "/hooks/")) or path in HEALTH_PATHS)


def page_error(request: Request, exc: GatherlyError) -> HTMLResponse | None:
    """The error as a page for a page's request; None for the API's (it answers JSON)."""
    return error_page(request, exc) if is_web(request) else None


def error_page(request: Request, exc: GatherlyError) -> HTMLResponse:
    """A service error on a page (not found, forbidden, conflict …) as an HTML page."""
    try:
        viewer: Viewer | None = request.state.viewer
    except AttributeError:
        viewer = None
    return page(
        request,
        "error_fragment.html" if request.headers.get("HX-Request") else "error.html",
        viewer,
        status_code=exc.status_code,
        title={404: "Not found", 403: "Not allowed"}.get(exc.status_code, "Cannot do that"),
        message=exc.message,
    )


def _sign_in_redirect(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/signin?next=" + quote(target, safe="")
    if request.headers.get("HX-Request"):
        # htmx follows redirects inside the fragment; send the whole page to sign-in.
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _disabled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DisabledUser)
    response = page(request, "disabled.html", status_code=403, username=exc.username)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


def _csrf(request: Request, _exc: Exception) -> Response:
    return page(request, "csrf.html", status_code=403)


def install(app: FastAPI) -> None:
    """Register the page-level handlers (redirect to sign-in, disabled, CSRF refused)."""
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(DisabledUser, _disabled)
    app.add_exception_handler(CsrfRefused, _csrf)
