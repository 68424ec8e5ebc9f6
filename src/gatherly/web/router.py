"""Web pages: sign-in, sign-out and the signed-in home page (issue 5, first slice).

Pages render server-side with Jinja2; every page reads through the same services and
access engine as the API. A page that needs a user redirects to ``/signin`` without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from gatherly.api.deps import get_db
from gatherly.core.exceptions import Unauthenticated
from gatherly.org import service as org_service
from gatherly.web import auth

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
WebDb = Annotated[Session, Depends(get_db, scope="function")]


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


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _safe_next(value: str | None) -> str:
    """Only local paths: an open redirect would let a link send users elsewhere."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


def _csrf_refused(request: Request) -> HTMLResponse:
    return _page(request, "csrf.html", status_code=403)


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, db: WebDb, next: str | None = None) -> Response:
    if auth.current(db, request.cookies.get(auth.SESSION_COOKIE)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = auth.new_token()
    response = _page(request, "signin.html", csrf=token, next=_safe_next(next), error=None)
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
        return _csrf_refused(request)
    try:
        user = org_service.verify_password(db, username=username.strip(), password=password)
    except Unauthenticated as exc:
        if "disabled" in exc.message:
            return _page(request, "disabled.html", status_code=403, username=username)
        return _page(
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
        return _csrf_refused(request)
    auth.end(db, row)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: WebDb) -> Response:
    found = auth.current(db, request.cookies.get(auth.SESSION_COOKIE))
    if found is None:
        return RedirectResponse("/signin?next=" + quote("/"), status_code=303)
    row, user = found
    if user.disabled:
        auth.end(db, row)
        response = _page(request, "disabled.html", status_code=403, username=user.username)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response
    bu = org_service.get_bu(db, bu_id=user.business_unit_id)
    roles = org_service.roles_of_user(db, user_id=user.id)
    return _page(
        request,
        "home.html",
        user=user,
        business_unit=bu.name,
        roles=[r.name for r in roles],
        csrf=row.csrf_token,
    )
