"""Web pages: the contact list and search, and a contact's page with its webinar timeline
(SPEC M, T9, B3).

Every read goes through the services with the viewer's principal, as the REST API does:
contacts through ``contact.service`` (list, count, get), the timeline through
``event.service.timeline`` (only events, registrations and attendance the viewer may read)
and marketing lists through ``segment.service.lists_of_contact``. A contact the viewer
may not read is the same 404 page as one that does not exist.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pycountry
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gatherly.api.params import PathId
from gatherly.contact import service as contact_service
from gatherly.contact.models import PersonMixin
from gatherly.contact.schemas import normalize_country
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.event import service as event_service
from gatherly.org import service as org_service
from gatherly.scoring import service as scoring_service
from gatherly.segment import service as segment_service
from gatherly.web import bulk
from gatherly.web.pages import CurrentViewer, Viewer, WebDb, may, page

router = APIRouter(include_in_schema=False)
CONTACT = contact_service.CONTACT
PAGE_SIZE = 50
MAX_TEXT = 200
SORTS = {
    "last_name": "Name, A to Z",
    "-last_name": "Name, Z to A",
    "-modified_at": "Last modified, newest first",
    "modified_at": "Last modified, oldest first",
}
FIELDS = ("q", "country", "company", "sort")  # the search form's inputs
STATUS_LABELS = {
    "registered": "Registered",
    "canceled": "Cancelled",
    "waitlisted": "Waitlisted",
    "pendingApproval": "Awaiting approval",
    "rejectedByOrganizer": "Rejected by the organizer",
}


# ------------------------------------------------------------------ formatting


def duration(seconds: int) -> str:
    """``1 h 5 min``, ``2 h``, ``12 min 30 s``, ``40 s``."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def full_name(person: PersonMixin) -> str:
    """First and last name, else the email, else a placeholder."""
    name = f"{person.first_name} {person.last_name}".strip()
    return name or person.email or f"Contact {person.id}"


def country_name(code: str | None) -> str:
    """``Germany (DE)`` for a stored ISO code."""
    if not code:
        return ""
    found = pycountry.countries.get(alpha_2=code)
    return f"{found.name} ({code})" if found else code


def owners_of(db: WebDb, viewer: Viewer, records: Sequence[PersonMixin]) -> dict[int, Any]:
    """Per record id: the owner's and owning BU's display names (ids when names are not
    readable by the viewer)."""
    names = org_service.owner_names(db=db, principal=viewer.principal, records=records)
    return {
        r.id: {
            "owner": names.owner(r) or f"{r.owner_type} {r.owner_id}",
            "business_unit": names.business_unit(r) or f"business unit {r.owning_bu_id}",
        }
        for r in records
    }


# ------------------------------------------------------------------ after a merge

# What a merge moves to the master (``capture.merge.Merged.moved``), in words.
MOVED_WORDS = {
    "registrations": ("registration", "registrations"),
    "attendance": ("attendance record", "attendance records"),
    "leads": ("lead", "leads"),
    "list_memberships": ("list membership", "list memberships"),
    "email_deliveries": ("email sent", "emails sent"),
    "email_interactions": ("email open or click", "email opens and clicks"),
    "journey_passes": ("journey pass", "journey passes"),
    "form_submissions": ("form submission", "form submissions"),
    "capture_interactions": ("page visit or form sent", "page visits and forms sent"),
    "linkedin_leads": ("LinkedIn lead", "LinkedIn leads"),
}
FIELD_WORDS = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    "company": "company",
    "job_title": "job title",
    "phone": "phone",
    "country": "country",
    "custom": "custom properties",
}


def merged_query(merged_id: int, moved: dict[str, int], fields: Sequence[str]) -> str:
    """The query a record's page is opened with after a merge, for :func:`merged_notice`."""
    query = {"merged": str(merged_id)}
    if moved:
        query["moved"] = ",".join(f"{k}:{n}" for k, n in moved.items() if k in MOVED_WORDS)
    if fields:
        query["took"] = ",".join(f for f in fields if f in FIELD_WORDS)
    return urlencode(query)


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def merged_notice(noun: str, merged: str, moved: str, took: str) -> str:
    """What a merge did, said on the master's page; only known words and numbers are taken
    from the address, so a link cannot make the page say anything else."""
    if not (merged.isascii() and merged.isdigit() and len(merged) < 20):
        return ""
    text = f"Merged {noun} {int(merged)} into this one."
    counts = []
    for part in moved.split(",")[: len(MOVED_WORDS)]:
        key, _, number = part.partition(":")
        if key in MOVED_WORDS and number.isascii() and number.isdigit() and len(number) < 10:
            one, many = MOVED_WORDS[key]
            counts.append(f"{int(number)} {one if int(number) == 1 else many}")
    if counts:
        text += f" Moved to it: {_and(counts)}."
    elif noun == "contact":
        text += " It had no history to move."
    fields = [FIELD_WORDS[f] for f in took.split(",") if f in FIELD_WORDS]
    if fields:
        text += f" Taken from the merged {noun}: {_and(list(dict.fromkeys(fields)))}."
    return text


# ------------------------------------------------------------------ the list


def _wants_fragment(request: Request) -> bool:
    """An htmx request for the results only (a history restore wants the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


@router.get("/contacts", response_class=HTMLResponse)
def contact_list(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    q: str = "",
    country: str = "",
    company: str = "",
    sort: str = "last_name",
    cursor: str = "",
) -> Response:
    """Search and list the contacts the viewer may read, with their count."""
    form = {"q": q.strip(), "country": country.strip(), "company": company.strip(), "sort": sort}
    errors: dict[str, str] = {}
    for name in ("q", "country", "company"):
        if len(form[name]) > MAX_TEXT:
            errors[name] = f"Use at most {MAX_TEXT} characters."
    country_code = None
    if form["country"] and "country" not in errors:
        try:
            country_code = normalize_country(form["country"])
        except ValueError as exc:
            errors["country"] = str(exc)
    flt = contact_service.ListFilter(
        q=form["q"] or None, country=country_code, company=form["company"] or None
    )
    result, total = None, 0
    if not errors:
        try:
            result = contact_service.list_records(
                db=db,
                principal=viewer.principal,
                kind=CONTACT,
                flt=flt,
                sort=sort,
                cursor=cursor or None,
                limit=PAGE_SIZE,
            )
            total = contact_service.count_records(
                db=db, principal=viewer.principal, kind=CONTACT, flt=flt
            )
        except ValidationFailed as exc:
            errors[exc.field if exc.field in FIELDS else "cursor"] = exc.message
    items = list(result.items) if result else []
    query = {k: v for k, v in form.items() if v and not (k == "sort" and v == "last_name")}
    context: dict[str, Any] = {
        "form": form,
        "errors": errors,
        "sorts": SORTS,
        "items": items,
        "owners": owners_of(db, viewer, items),
        "total": total,
        "first_url": "/contacts" + (f"?{urlencode(query)}" if query else ""),
        "next_url": (
            f"/contacts?{urlencode({**query, 'cursor': result.next_cursor})}"
            if result and result.next_cursor
            else None
        ),
        "paged": bool(cursor),
        "full_name": full_name,
        # The bulk bar: "all that match" means this search, its country as a code.
        "bulk_total": total,
        "bulk_hidden": {
            "source": "contacts",
            "q": form["q"],
            "country": country_code or "",
            "company": form["company"],
        },
        **bulk.bulk_context(db, viewer),
    }
    field_errors = any(k in errors for k in FIELDS)
    if _wants_fragment(request):
        if not field_errors:
            return page(request, "contacts/_results.html", viewer, oob=True, **context)
        # Say which field is wrong next to it: swap the whole form, not only the results.
        # (200, so htmx swaps it; the plain form answers 422.)
        response = page(request, "contacts/_search.html", viewer, **context)
        response.headers["HX-Retarget"] = "#contact-search"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return page(
        request, "contacts/list.html", viewer, status_code=422 if errors else 200, **context
    )


# ------------------------------------------------------------------ one contact


def _timeline(db: WebDb, viewer: Viewer, contact_id: int) -> list[dict[str, Any]]:
    """The T9 timeline, shaped for the page: intervals grouped by session."""
    entries = event_service.timeline(db=db, principal=viewer.principal, contact_id=contact_id)
    now = datetime.now(UTC)
    shaped = []
    for e in entries:
        sessions: list[dict[str, Any]] = []
        if e.intervals:
            listed = event_service.sessions(db=db, principal=viewer.principal, event_id=e.event_id)
            for number, s in enumerate(listed, start=1):
                spans = [i for i in e.intervals if i.session_id == s.id]
                if spans:
                    sessions.append(
                        {
                            "name": s.subject or f"Session {number}",
                            "start": s.start_at,
                            "intervals": spans,
                            "total": duration(sum(i.duration_seconds for i in spans)),
                        }
                    )
        status = e.registration_status
        ended = e.event_end_at is None or e.event_end_at <= now
        shaped.append(
            {
                **dataclasses.asdict(e),
                "intervals": e.intervals,
                "status_label": STATUS_LABELS.get(status, status) if status else None,
                "attendance_label": (
                    "Attended" if e.attended else ("Did not attend" if ended else "Upcoming")
                ),
                "sessions": sessions,
            }
        )
    return shaped


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    contact_id: PathId,
    merged: str = "",
    moved: str = "",
    took: str = "",
) -> Response:
    """A contact's properties, origin, ownership, webinar timeline, marketing lists and the
    scores the viewer may read (its own and its leads')."""
    contact = contact_service.get(
        db=db, principal=viewer.principal, kind=CONTACT, record_id=contact_id
    )
    origin_event = None
    if contact.origin_event_id is not None:
        try:
            origin_event = event_service.get_event(
                db=db, principal=viewer.principal, event_id=contact.origin_event_id
            )
        except NotFound:
            origin_event = None  # an event the viewer may not read is not named
    return page(
        request,
        "contacts/detail.html",
        viewer,
        contact=contact,
        name=full_name(contact),
        country=country_name(contact.country),
        owner=owners_of(db, viewer, [contact])[contact.id],
        origin_event=origin_event,
        timeline=_timeline(db, viewer, contact.id),
        lists=segment_service.lists_of_contact(
            db=db, principal=viewer.principal, contact_id=contact.id
        ),
        scores=scoring_service.scores_of(db=db, principal=viewer.principal, contact_id=contact.id),
        duration=duration,
        status_labels=STATUS_LABELS,
        merged_notice=merged_notice("contact", merged, moved, took),
        **may(db, viewer, CONTACT.record_type, contact),
    )
