"""The pages people reach without an account: a marketing page at ``/p/{slug}``, a form on
its own at ``/f/{form_id}``, and the form's submission (``POST /f/{form_id}``), which an
embed snippet on any website posts to as well. The signed form token, the honeypot and the
rate limits in ``capture.forms`` stand in for the CSRF token these public routes cannot
have."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from gatherly.capture import forms
from gatherly.capture.models import MarketingForm
from gatherly.core.exceptions import NotFound, RateLimited, ValidationFailed
from gatherly.jobs.queue import app_jobs
from gatherly.web.pages import WebDb, page

router = APIRouter(include_in_schema=False)
VISITOR = "gatherly_visitor"  # a random id per browser: links its visits to its submission
FormId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Slug = Annotated[str, Path(max_length=100)]
PRIVATE = {"Cache-Control": "no-store"}


def _visitor(request: Request) -> tuple[str, bool]:
    found = request.cookies.get(VISITOR, "")
    if len(found) == 32 and found.isalnum():
        return found, False
    return secrets.token_hex(16), True


def _respond(request: Request, status_code: int = 200, **context: Any) -> Response:
    response = page(request, "capture/public.html", status_code=status_code, **context)
    response.headers.update(PRIVATE)
    return response


def _with_visitor(request: Request, response: Response, visitor: str, new: bool) -> Response:
    if new:
        response.set_cookie(
            VISITOR,
            visitor,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/p/{slug}")
def public_page(request: Request, db: WebDb, slug: Slug) -> Response:
    visitor, new = _visitor(request)
    try:
        shown = forms.public_page(db=db, slug=slug, visitor=visitor)
    except NotFound as exc:
        return _respond(request, 404, title="Page not found", problem=exc.message.capitalize())
    settings = request.app.state.settings
    form_html = (
        forms.render_form(settings, shown.form, page_id=shown.page.id) if shown.form else None
    )
    response = _respond(
        request,
        title=shown.page.title or shown.page.name,
        paragraphs=shown.paragraphs,
        form_html=form_html,
    )
    return _with_visitor(request, response, visitor, new)


def _form_page(
    request: Request,
    form: MarketingForm,
    *,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    page_id: int | None = None,
) -> Response:
    settings = request.app.state.settings
    return _respond(
        request,
        status_code,
        title=form.name,
        problem=problem,
        errors=errors,
        form_html=forms.render_form(settings, form, values=values, errors=errors, page_id=page_id),
    )


@router.get("/f/{form_id}")
def public_form(request: Request, db: WebDb, form_id: FormId) -> Response:
    try:
        form = forms.public_form(db=db, form_id=form_id)
    except NotFound as exc:
        return _respond(request, 404, title="Form not found", problem=exc.message.capitalize())
    return _form_page(request, form)


@router.post("/f/{form_id}")
async def submit(request: Request, db: WebDb, form_id: FormId) -> Response:
    body = await request.body()
    if len(body) > forms.MAX_BODY:
        return _respond(
            request, 413, title="Too large", problem="The form sent is too large to take."
        )
    raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    visitor = request.cookies.get(VISITOR)
    address = request.client.host if request.client else ""
    try:
        done = forms.submit(
            db=db,
            settings=request.app.state.settings,
            form_id=form_id,
            raw=raw,
            address=address,
            visitor=visitor if visitor and len(visitor) == 32 and visitor.isalnum() else None,
            size=len(body),
            queue=app_jobs(request.app),
        )
    except NotFound as exc:
        return _respond(request, 404, title="Form not found", problem=exc.message.capitalize())
    except RateLimited as exc:
        response = _respond(request, 429, title="Please wait", problem=exc.message.capitalize())
        response.headers["Retry-After"] = "60"
        return response
    except forms.FormInvalid as exc:
        form = forms.public_form(db=db, form_id=form_id)
        return _form_page(
            request, form, status_code=422, values=raw, errors=exc.errors, page_id=_page(raw)
        )
    except ValidationFailed as exc:  # the token: out of date, or not from us
        form = forms.public_form(db=db, form_id=form_id)
        return _form_page(
            request,
            form,
            status_code=422,
            values=raw,
            problem=exc.message.capitalize() + ".",
            page_id=_page(raw),
        )
    if done.form.redirect_url:
        return RedirectResponse(done.form.redirect_url, status_code=303)
    return _respond(request, title=done.form.name, thanks=done.form.thank_you or "Thank you.")


def _page(raw: dict[str, str]) -> int | None:
    value = raw.get("_page", "")
    return int(value) if value.isdigit() and len(value) < 10 else None
