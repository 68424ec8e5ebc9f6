"""Web pages for LinkedIn Lead Gen Forms: the LinkedIn page (the viewer's profiles and
*Connect a LinkedIn account*), the OAuth callback, a profile's page (its sources, *Read new
leads now*, *Disconnect*, the leads taken in through it) and one lead's page (SPEC B12).

Every route calls ``gatherly.linkedin.service`` with the viewer's principal, as the REST
routes in ``gatherly.linkedin.router`` do; the service makes the checks (a profile the
viewer may not read is "not found", a change needs Write on it). Connecting is the browser's
part of OAuth 2.0: ``/linkedin/connect`` sends the viewer to LinkedIn with a state signed
for them, and LinkedIn sends them back to ``/linkedin/callback`` with a code (or an error).
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.api.params import PathId
from gatherly.contact import service as contact_service
from gatherly.core.config import Settings
from gatherly.core.exceptions import Conflict, Forbidden, GatherlyError, NotFound, ValidationFailed
from gatherly.jobs.queue import app_jobs
from gatherly.linkedin import service
from gatherly.linkedin.models import (
    CONNECTED,
    DISCONNECTED,
    NEEDS_RECONNECT,
    LinkedInLead,
    LinkedInProfile,
)
from gatherly.org import service as org_service
from gatherly.web.contacts import full_name
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    FormFields,
    Viewer,
    WebDb,
    form_text,
    page,
)

router = APIRouter(include_in_schema=False)

CALLBACK = "/linkedin/callback"
LEADS_PER_PAGE = 25
STATES = {
    CONNECTED: ("Connected", "good"),
    NEEDS_RECONNECT: ("Needs reconnecting", "warn"),
    DISCONNECTED: ("Disconnected", ""),
}
SOURCE_KINDS = {"sponsoredAccount": "Ad account", "organization": "Company page"}
LEAD_TYPES = {
    "SPONSORED": "Ad (sponsored content)",
    "EVENT": "Event",
    "COMPANY": "Company page",
    "ORGANIZATION_PRODUCT": "Product page",
}
LEAD_STATES = {"taken": "Taken in", "test": "Test lead", "failed": "Failed", "deleted": "Deleted"}
# What a page says after a change (``?done=``): known words only, never text from the query.
DONE = {
    "connected": "Connected. Gatherly reads this profile's new leads from now on.",
    "reconnected": "Connected again. Gatherly reads this profile's new leads again.",
    "polling": "Reading new leads now, in the background: reload this page in a minute to "
    "see them.",
    "source-on": "Gatherly reads this source's leads from now on.",
    "source-off": "Gatherly no longer reads this source's leads. Those already taken in stay.",
    "disconnected": "Disconnected. Gatherly no longer reads this profile's leads; those "
    "already taken in stay.",
    "cancelled": "You cancelled on LinkedIn: nothing was connected. Connect whenever you like.",
}
# LinkedIn's own words for a refusal (``?error=``) that is the member's choice, not a fault.
CANCELLED = {"user_cancelled_authorize", "user_cancelled_login"}


def configured(settings: Settings) -> bool:
    """The installation has a LinkedIn app (as ``service.oauth`` requires)."""
    return bool(settings.linkedin_client_id) and settings.linkedin_client_secret is not None


def _may_connect(viewer: Viewer) -> bool:
    return viewer.principal.max_level(service.PROFILE, Privilege.CREATE) != Level.NONE


def _notice(done: str) -> str:
    return DONE.get(done[:20], "")


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def problem(profile: LinkedInProfile) -> str:
    """The profile's last error in words a marketer can act on ("" when there is none)."""
    if profile.state == DISCONNECTED:
        return ""
    said = profile.last_error.strip()
    if profile.state == NEEDS_RECONNECT:
        detail = said.removeprefix("connect again:").strip()
        return (
            "LinkedIn no longer accepts this connection (the member revoked it or it "
            "expired): connect the account again to go on reading its leads."
            + (f" LinkedIn said: “{detail}”" if detail else "")
        )
    if said:
        return (
            f"The last read of new leads failed; Gatherly tries again at the next one. "
            f"LinkedIn said: “{said}”"
        )
    return ""


def _lead_counts(db: Session, viewer: Viewer, profiles: list[LinkedInProfile]) -> dict[int, int]:
    """Per profile, how many of the leads taken in through it the viewer may read."""
    return {
        p.id: service.count_leads(db=db, principal=viewer.principal, profile_id=p.id)
        for p in profiles
    }


def _owners(db: Session, viewer: Viewer, records: list[Any]) -> dict[int, str]:
    """The owner's name of each record (a number when the viewer may not read names)."""
    names = org_service.owner_names(db=db, principal=viewer.principal, records=records)
    return {r.id: names.owner(r) or f"{r.owner_type} {r.owner_id}" for r in records}


def _redirect_uri(settings: Settings) -> str:
    return settings.public_url + CALLBACK


# ------------------------------------------------------------------ the LinkedIn page


def _linkedin_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    settings: Settings = request.app.state.settings
    profiles = service.list_profiles(db=db, principal=viewer.principal)
    return page(
        request,
        "linkedin/page.html",
        viewer,
        status_code=status_code,
        profiles=profiles,
        counts=_lead_counts(db, viewer, profiles),
        owners=_owners(db, viewer, profiles),
        total=service.count_leads(db=db, principal=viewer.principal),
        states=STATES,
        problem=problem,
        configured=configured(settings),
        may_connect=_may_connect(viewer),
        redirect_uri=_redirect_uri(settings),
        poll_minutes=settings.linkedin_poll_minutes,
        notice=notice,
        error=error,
    )


@router.get("/linkedin")
def linkedin_page(request: Request, db: WebDb, viewer: CurrentViewer, done: str = "") -> Response:
    """The viewer's LinkedIn profiles, their state and leads, and *Connect*."""
    return _linkedin_page(request, db, viewer, notice=_notice(done))


NONCE = "gatherly_linkedin_connect"


@router.get("/linkedin/connect")
def connect(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """Send the viewer to LinkedIn to allow Gatherly to read their leads."""
    settings: Settings = request.app.state.settings
    nonce = secrets.token_urlsafe(24)
    try:
        url = service.connect_url(
            principal=viewer.principal,
            settings=settings,
            redirect_uri=_redirect_uri(settings),
            nonce=nonce,
        )
    except ValidationFailed as exc:
        return _linkedin_page(request, db, viewer, status_code=422, error=_sentence(exc.message))
    response = RedirectResponse(url, status_code=303)
    # LinkedIn's answer is taken only in this browser, once (the callback removes it).
    response.set_cookie(
        NONCE,
        nonce,
        max_age=service.STATE_AGE,
        path="/linkedin",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get(CALLBACK)
def callback(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    """Where LinkedIn sends the viewer back: finish connecting, or say why it did not."""
    if error:
        if error in CANCELLED:
            return RedirectResponse("/linkedin?done=cancelled", status_code=303)
        # Only LinkedIn's code (letters and underscores), never its free text: this
        # address can be typed by anyone, and the page must not say what they wrote.
        shown = re.sub(r"[^A-Za-z0-9_]", "", error)[:60] or "unknown"
        return _linkedin_page(
            request,
            db,
            viewer,
            status_code=400,
            error=f"LinkedIn did not connect the account (it answered “{shown}”). "
            "Try again; if it keeps failing, an administrator can check the LinkedIn app.",
        )
    if not code or not state or len(code) > 2000 or len(state) > 2000:
        return _linkedin_page(
            request,
            db,
            viewer,
            status_code=422,
            error="This address does not hold LinkedIn's answer. Use Connect a LinkedIn "
            "account to start again.",
        )
    settings: Settings = request.app.state.settings
    known = {p.id for p in service.list_profiles(db=db, principal=viewer.principal)}
    try:
        profile = service.complete_connect(
            db=db,
            principal=viewer.principal,
            settings=settings,
            code=code,
            state=state,
            redirect_uri=_redirect_uri(settings),
            nonce=request.cookies.get(NONCE, ""),
        )
    except (ValidationFailed, Conflict, Forbidden) as exc:
        db.rollback()
        return _linkedin_page(
            request,
            db,
            viewer,
            status_code=exc.status_code,
            error=f"Not connected: {_sentence(exc.message)}",
        )
    except httpx.HTTPError:
        # The service lets a network failure through (no LinkedInError): say it in words.
        db.rollback()
        return _linkedin_page(
            request,
            db,
            viewer,
            status_code=502,
            error="Not connected: LinkedIn could not be reached. Try again in a moment.",
        )
    done = "reconnected" if profile.id in known else "connected"
    response = RedirectResponse(f"/linkedin/profiles/{profile.id}?done={done}", status_code=303)
    response.delete_cookie(NONCE, path="/linkedin")
    return response


# ------------------------------------------------------------------ a profile


def _profile_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    profile_id: int,
    *,
    cursor: str = "",
    status_code: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    principal = viewer.principal
    profile = service.get_profile(db=db, principal=principal, profile_id=profile_id)
    may_write = access.can(db, principal, Privilege.WRITE, service.PROFILE, profile)
    items: list[LinkedInLead] = []
    next_url = None
    cursor_error = ""
    try:
        found = service.list_leads(
            db=db,
            principal=principal,
            profile_id=profile.id,
            cursor=cursor or None,
            limit=LEADS_PER_PAGE,
        )
    except ValidationFailed as exc:
        cursor_error = exc.message
    else:
        items = list(found.items)
        if found.next_cursor:
            next_url = (
                f"/linkedin/profiles/{profile.id}?{urlencode({'cursor': found.next_cursor})}#leads"
            )
    return page(
        request,
        "linkedin/profile.html",
        viewer,
        status_code=422 if cursor_error and status_code == 200 else status_code,
        profile=profile,
        owner=_owners(db, viewer, [profile])[profile.id],
        sources=service.sources(db=db, principal=principal, profile_id=profile.id),
        count=_lead_counts(db, viewer, [profile])[profile.id],
        items=items,
        next_url=next_url,
        paged=bool(cursor),
        cursor_error=cursor_error,
        may_write=may_write,
        may_connect=_may_connect(viewer) and configured(request.app.state.settings),
        states=STATES,
        problem=problem(profile),
        kinds=SOURCE_KINDS,
        lead_types=LEAD_TYPES,
        notice=notice,
        error=error,
        **_people(db, viewer, items),
    )


def _people(db: Session, viewer: Viewer, items: list[LinkedInLead]) -> dict[str, Any]:
    """The contacts and leads the rows became that the viewer may read (the others are
    neither linked nor named)."""
    principal = viewer.principal
    return {
        "contacts": contact_service.readable_records(
            db=db,
            principal=principal,
            kind=contact_service.CONTACT,
            ids=[i.contact_id for i in items],
        ),
        "leads": contact_service.readable_records(
            db=db, principal=principal, kind=contact_service.LEAD, ids=[i.lead_id for i in items]
        ),
        "full_name": full_name,
        "person": _person,
    }


def _person(data: dict[str, Any]) -> str:
    """A response's name as the member gave it ("" when the form asked for none)."""
    return " ".join(str(data.get(k) or "").strip() for k in ("first_name", "last_name")).strip()


@router.get("/linkedin/profiles/{profile_id}")
def profile_page(
    profile_id: PathId,
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    cursor: str = "",
    done: str = "",
) -> Response:
    """A profile: who it is, its sources, what may be done, and the leads taken in."""
    return _profile_page(request, db, viewer, profile_id, cursor=cursor, notice=_notice(done))


@router.post("/linkedin/profiles/{profile_id}/sources/{source_id}")
def toggle_source(
    profile_id: PathId,
    source_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    form: FormFields,
    _: CsrfChecked,
) -> Response:
    """Read a source's leads (``enabled=true``), or stop (``enabled=false``)."""
    wanted = form_text(form, "enabled")
    if wanted not in ("true", "false"):
        raise ValidationFailed("Choose to read this source's leads or to stop.", field="enabled")
    service.set_source(
        db=db,
        principal=viewer.principal,
        profile_id=profile_id,
        source_id=source_id,
        enabled=wanted == "true",
    )
    done = "source-on" if wanted == "true" else "source-off"
    return RedirectResponse(
        f"/linkedin/profiles/{profile_id}?done={done}#source-{source_id}", status_code=303
    )


@router.post("/linkedin/profiles/{profile_id}/poll")
def poll_now(
    profile_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    """Read the profile's new leads now, on the worker."""
    try:
        service.request_poll(
            db=db, principal=viewer.principal, profile_id=profile_id, queue=app_jobs(request.app)
        )
    except Conflict as exc:
        return _profile_page(
            request, db, viewer, profile_id, status_code=409, error=_sentence(exc.message)
        )
    return RedirectResponse(f"/linkedin/profiles/{profile_id}?done=polling", status_code=303)


@router.get("/linkedin/profiles/{profile_id}/disconnect")
def confirm_disconnect(
    profile_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer
) -> Response:
    """What disconnecting does, before it happens."""
    profile = service.get_profile(
        db=db, principal=viewer.principal, profile_id=profile_id, privilege=Privilege.WRITE
    )
    return page(request, "linkedin/disconnect.html", viewer, profile=profile)


@router.post("/linkedin/profiles/{profile_id}/disconnect")
def disconnect(profile_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked) -> Response:
    """Forget the member's tokens and stop reading; the leads taken in stay."""
    service.disconnect(db=db, principal=viewer.principal, profile_id=profile_id)
    return RedirectResponse(f"/linkedin/profiles/{profile_id}?done=disconnected", status_code=303)


# ------------------------------------------------------------------ one lead


@router.get("/linkedin/leads/{lead_id}")
def lead_page(lead_id: PathId, request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    """One response taken in: the answers with their questions, the consents with their
    wording, what it became, and the assignment rule that chose its owner."""
    principal = viewer.principal
    lead = service.get_lead(db=db, principal=principal, lead_id=lead_id)
    profile = None
    if lead.profile_id is not None:
        try:
            profile = service.get_profile(db=db, principal=principal, profile_id=lead.profile_id)
        except NotFound:
            profile = None
    rule = None
    if lead.assignment_rule_id is not None:
        try:
            rules = service.list_rules(db=db, principal=principal)
        except GatherlyError:
            rules = []
        rule = next((r for r in rules if r.id == lead.assignment_rule_id), None)
    return page(
        request,
        "linkedin/lead.html",
        viewer,
        lead=lead,
        name=_person(lead.data),
        owner=_owners(db, viewer, [lead])[lead.id],
        profile=profile,
        rule=rule,
        lead_types=LEAD_TYPES,
        lead_states=LEAD_STATES,
        **_people(db, viewer, [lead]),
    )
