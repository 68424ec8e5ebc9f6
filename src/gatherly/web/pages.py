"""What every web page shares: the signed-in viewer, CSRF checks, rendering and errors.

A page route takes ``viewer: CurrentViewer`` (redirects to ``/signin`` without a live
session, shows the disabled page for a disabled user) and reads only through the
services with ``viewer.principal``, the same access engine the API uses. A route that
changes anything also takes ``_: CsrfChecked``: the session's token must come with the
request, as the ``csrf`` form field or (htmx) the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import nh3
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.api.deps import get_db
from gatherly.api.errors import plain
from gatherly.core.exceptions import GatherlyError, ValidationFailed
from gatherly.org.directory import load_principal
from gatherly.teams import service as teams_service
from gatherly.web import auth

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def safe_html(value: str | None) -> Markup:
    """HTML from outside (a webinar's description) as a page may show it: nh3 keeps the
    formatting tags and drops scripts, styles, event handlers and javascript: links."""
    return Markup(nh3.clean(value or ""))  # noqa: S704 - nh3 has just sanitised it


templates.env.filters["safe_html"] = safe_html
WebDb = Annotated[Session, Depends(get_db, scope="function")]
CSRF_HEADER = "X-CSRF-Token"


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

    @property
    def is_admin(self) -> bool:
        """A system administrator: the installation's admin pages and switches."""
        return self.principal.is_system_admin

    @property
    def manages_teams(self) -> bool:
        """May open Integrations › Microsoft Teams (organization-level marketing admins)."""
        return teams_service.is_admin(self.principal)


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
    viewer = Viewer(
        user=SignedInUser(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            email=user.email,
            business_unit_id=user.business_unit_id,
        ),
        principal=load_principal(db, user.id),
        csrf=row.csrf_token,
        session_id=row.id,
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


M = TypeVar("M", bound=BaseModel)


def parse_form(model: type[M], **data: str) -> M:
    """Validate form fields with the API's input model, so a page and the API accept the
    same values (an empty field counts as not given); ValidationFailed names the field."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v != ""})
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


def page(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template``; with a viewer, the layout shows the navigation and sign-out."""
    return templates.TemplateResponse(
        request, template, {"viewer": viewer, **context}, status_code=status_code
    )


def is_web(request: Request) -> bool:
    """Web pages are everything outside the API (and the health check)."""
    path = request.url.path
    return not (path.startswith("/api/") or path == "/healthz" or path.startswith("/static/"))


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
