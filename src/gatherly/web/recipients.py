"""The pages a recipient of an email reaches from it, without an account: unsubscribe (a
page, and RFC 8058's one-click POST that mail clients send), the subscription centre,
the open pixel and the click redirect. The signed token in the link is the authority
(``email.tracking``); these routes are public by design and take no CSRF token.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from gatherly.core.exceptions import NotFound
from gatherly.email import tokens, tracking
from gatherly.web.pages import WebDb, page

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Path(max_length=4000)]
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not travel to the sites linked
    "X-Robots-Tag": "noindex",
}


def _page(request: Request, title: str, status_code: int = 200, **context: Any) -> Response:
    response = page(request, "email/public.html", status_code=status_code, title=title, **context)
    response.headers.update(PRIVATE)
    return response


def _invalid(request: Request, exc: NotFound) -> Response:
    return _page(
        request,
        "Link not valid",
        status_code=404,
        invalid=exc.message[:1].upper() + exc.message[1:] + ".",
    )


@router.get("/email/u/{token}")
def unsubscribe_page(request: Request, db: WebDb, token: Token) -> Response:
    settings = request.app.state.settings
    try:
        found = tracking.centre(db=db, settings=settings, token=token)
    except NotFound as exc:
        return _invalid(request, exc)
    return _page(request, "Unsubscribe", confirm=True, centre=found, centre_url=f"/email/s/{token}")


@router.post("/email/u/{token}")
async def unsubscribe(request: Request, db: WebDb, token: Token) -> Response:
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    try:
        found = tracking.unsubscribe(
            db=db,
            settings=request.app.state.settings,
            token=token,
            everything=form.get("everything") == "1",
            source="one_click" if one_click else "unsubscribe_page",
        )
    except NotFound as exc:
        return _invalid(request, exc)
    what = found.message_topic if found.message_topic and form.get("everything") != "1" else ""
    notice = (
        f"You will get no more email about {what}."
        if what
        else "You will get no more marketing email."
    )
    return _page(
        request, "Unsubscribed", centre=found, centre_url=f"/email/s/{token}", notice=notice
    )


@router.get("/email/s/{token}")
def subscriptions_page(request: Request, db: WebDb, token: Token) -> Response:
    try:
        found = tracking.centre(db=db, settings=request.app.state.settings, token=token)
    except NotFound as exc:
        return _invalid(request, exc)
    return _page(request, "Your subscriptions", centre=found, centre_url=f"/email/s/{token}")


@router.post("/email/s/{token}")
async def save_subscriptions(request: Request, db: WebDb, token: Token) -> Response:
    form = await request.form()
    try:
        found = tracking.update(
            db=db,
            settings=request.app.state.settings,
            token=token,
            receives_all=form.get("all") == "on",
            topics={str(t) for t in form.getlist("topic")},
        )
    except NotFound as exc:
        return _invalid(request, exc)
    return _page(
        request, "Your subscriptions", centre=found, centre_url=f"/email/s/{token}", notice="Saved."
    )


@router.get("/email/o/{token}.gif")
def open_pixel(request: Request, db: WebDb, token: str) -> Response:
    """Always the image (a token of any length, valid or not: nothing to learn here)."""
    tracking.record_open(
        db=db,
        settings=request.app.state.settings,
        token=token,
        user_agent=request.headers.get("user-agent", ""),
    )
    return Response(PIXEL, media_type="image/gif", headers=PRIVATE)


@router.api_route("/email/c/{token}", methods=["GET", "HEAD"])
def click(request: Request, db: WebDb, token: Token) -> Response:
    if request.method == "HEAD":  # link checkers look without following: no click
        value = tokens.read(request.app.state.settings, tokens.CLICK, token)
        url = value[1] if isinstance(value, list) and len(value) == 2 else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return RedirectResponse(url, status_code=302, headers=PRIVATE)
        return Response(status_code=404, headers=PRIVATE)
    try:
        url = tracking.record_click(
            db=db,
            settings=request.app.state.settings,
            token=token,
            user_agent=request.headers.get("user-agent", ""),
        )
    except NotFound as exc:
        return _invalid(request, exc)
    return RedirectResponse(url, status_code=302, headers=PRIVATE)


@router.get("/email/preview/{kind}")
def preview_link(
    request: Request, kind: Annotated[str, Path(pattern="^(unsubscribe|subscriptions)$")]
) -> Response:
    title = "Unsubscribe" if kind == "unsubscribe" else "Your subscriptions"
    return _page(request, title, preview=kind)
