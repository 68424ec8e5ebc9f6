"""Web pages: your account: your own API tokens (create one, its secret shown once; see
when each was last used and when it expires; revoke it) and your password.

Every route calls the same services as ``/api/v1/me/tokens`` with the viewer's principal:
a token that is not the viewer's is not found, whatever its id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session

from gatherly.api.params import PathId
from gatherly.core import timezones
from gatherly.core.exceptions import ValidationFailed
from gatherly.org import schemas as s
from gatherly.org import service
from gatherly.web import auth
from gatherly.web.pages import (
    ZONE_COOKIE,
    CsrfChecked,
    CurrentViewer,
    NewPassword,
    Viewer,
    WebDb,
    page,
    parse_form,
)

router = APIRouter(prefix="/account", include_in_schema=False)

FormText = Annotated[str, Form(max_length=200)]


def _tokens_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    created: tuple[str, str] | None = None,
    error: ValidationFailed | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    policy = service.token_policy(db=db)
    return page(
        request,
        "account/tokens.html",
        viewer,
        status_code=status_code,
        tokens=service.my_tokens(db=db, principal=viewer.principal),
        policy=policy,
        created=created,
        error=error,
        values=values or {"name": "", "expires_in_days": str(policy.default_days or "")},
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _tokens_page(request, db, viewer)


@router.post("/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    name: FormText = "",
    expires_in_days: FormText = "",
    never_expires: FormText = "",
) -> Response:
    """Create a token and show its secret on this response only (never in a URL)."""
    try:
        body = parse_form(
            s.TokenIn,
            name=name,
            expires_in_days=expires_in_days,
            never_expires="true" if never_expires else "",
        )
        if body.never_expires and body.expires_in_days is not None:
            # The box wins over the prefilled number: that is what the person ticked.
            body = body.model_copy(update={"expires_in_days": None})
        token, secret = service.create_my_token(
            db=db,
            principal=viewer.principal,
            name=body.name,
            expires_in_days=body.expires_in_days,
            never_expires=body.never_expires,
        )
    except ValidationFailed as exc:
        db.rollback()
        values = {"name": name, "expires_in_days": expires_in_days}
        return _tokens_page(request, db, viewer, status_code=422, error=exc, values=values)
    response = _tokens_page(request, db, viewer, status_code=201, created=(token.name, secret))
    # The secret is in this page alone: no browser or proxy may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(token_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    service.revoke_my_token(db=db, principal=viewer.principal, token_id=token_id)
    return RedirectResponse("/account/tokens", status_code=303)


# ------------------------------------------------------------------ your password


class PasswordForm(NewPassword):
    """The change-password form: the current password, and the new one twice."""

    current_password: Annotated[str, Field(min_length=1, max_length=1000)]


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, viewer: CurrentViewer) -> Response:
    return page(request, "account/password.html", viewer, error=None, done=False)


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    current_password: Annotated[str, Form(max_length=1000)] = "",
    new_password: Annotated[str, Form(max_length=1000)] = "",
    confirm_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Change your own password; your other browsers are signed out."""
    try:
        body = parse_form(
            PasswordForm,
            current_password=current_password,
            new_password=new_password,
            confirm_password=confirm_password,
        )
        service.change_password(
            db=db, principal=viewer.principal, current=body.current_password, new=body.checked()
        )
        ended = auth.end_all(db, user_id=viewer.user.id, keep_id=viewer.session_id)
    except ValidationFailed as exc:
        db.rollback()
        return page(
            request, "account/password.html", viewer, status_code=422, error=exc, done=False
        )
    return page(request, "account/password.html", viewer, error=None, done=True, ended=ended)


# ------------------------------------------------------------------ your time zone


def _zone_page(
    request: Request, viewer: Viewer, error: ValidationFailed | None = None, done: bool = False
) -> Response:
    return page(
        request,
        "account/time_zone.html",
        viewer,
        status_code=422 if error else 200,
        error=error,
        done=done,
        zones=timezones.zone_groups(),
        browser_zone=request.cookies.get(ZONE_COOKIE, ""),
    )


@router.get("/time-zone", response_class=HTMLResponse)
def time_zone_page(request: Request, viewer: CurrentViewer, saved: bool = False) -> Response:
    return _zone_page(request, viewer, done=saved)


@router.post("/time-zone", response_class=HTMLResponse)
def set_time_zone(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Show times in a zone of your choice, or (empty) in your browser's."""
    try:
        service.set_time_zone(db=db, principal=viewer.principal, time_zone=time_zone)
    except ValidationFailed as exc:
        db.rollback()
        return _zone_page(request, viewer, exc)
    return RedirectResponse("/account/time-zone?saved=1", status_code=303)
