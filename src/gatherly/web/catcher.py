"""The *Mail catcher* page: what the bundled local mail catcher caught (``make demo``),
for system administrators — the messages went to contacts of every business unit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from gatherly.core.exceptions import NotFound
from gatherly.email import catcher
from gatherly.org import service as org_service
from gatherly.web.pages import CurrentViewer, page

router = APIRouter(include_in_schema=False)


def _directory(request: Request, viewer: CurrentViewer) -> Path:
    org_service.require_admin(
        viewer.principal, "read the mail catcher (it holds mail to every business unit)"
    )
    directory: Path | None = request.app.state.settings.mail_catcher_dir
    if directory is None:
        raise NotFound("the mail catcher is not running here: make demo starts one")
    return directory


@router.get("/mail-catcher")
def caught_page(request: Request, viewer: CurrentViewer) -> Response:
    directory = _directory(request, viewer)
    return page(request, "catcher/list.html", viewer, items=catcher.caught(directory))


@router.get("/mail-catcher/{name}")
def caught_message(
    request: Request, viewer: CurrentViewer, name: Annotated[str, PathParam(max_length=40)]
) -> Response:
    opened = catcher.read(_directory(request, viewer), name)
    html = catcher.quiet(opened.html, request.app.state.settings)
    return page(request, "catcher/message.html", viewer, message=opened, html=html)
