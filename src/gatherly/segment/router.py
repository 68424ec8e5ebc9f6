"""REST routes for segments and marketing lists (SPEC B5, B13).

Every route reads through ``segment.service``, so through the access engine: a segment or
list the caller may not read answers 404 and is neither listed nor counted, and members
are only ever the contacts the caller may read, counted as such.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.api.responses import CSV_RESPONSE, csv_download
from gatherly.contact.schemas import CountOut, PageOut
from gatherly.core.ids import MAX_ID
from gatherly.segment import schemas as s
from gatherly.segment import service

router = APIRouter(tags=["segments"])
lists = APIRouter(prefix="/lists", tags=["marketing lists"])

# No NUL: PostgreSQL cannot compare text holding one (the query would fail, not the input).
Search = Annotated[
    str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="Search names")
]
MemberSort = Annotated[
    str, Query(description="last_name, first_name, email, company, created_at, modified_at, id")
]


# ---------------------------------------------------------------- marketing lists


@lists.get("", summary="Marketing lists you may read", response_model=PageOut[s.ListOut])
def list_lists(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Search = None,
) -> Any:
    page = service.list_lists(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@lists.get("/count", summary="Count marketing lists you may read")
def count_lists(db: DbSession, principal: CurrentPrincipal, q: Search = None) -> CountOut:
    return CountOut(count=service.count_lists(db=db, principal=principal, q=q))


@lists.post("", status_code=201, summary="Create a marketing list", response_model=s.ListOut)
def create_list(body: s.ListIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.create_list(
        db=db, principal=principal, name=body.name, description=body.description, owner=body.owner
    )


@lists.get("/{list_id}", summary="One marketing list", response_model=s.ListOut)
def get_list(list_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_list(db=db, principal=principal, list_id=list_id)


@lists.patch("/{list_id}", summary="Rename a marketing list", response_model=s.ListOut)
def update_list(
    list_id: PathId, body: s.ListUpdate, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return service.update_list(
        db=db, principal=principal, list_id=list_id, name=body.name, description=body.description
    )


@lists.delete("/{list_id}", status_code=204, summary="Delete a list no segment uses")
def delete_list(list_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_list(db=db, principal=principal, list_id=list_id)
    return no_content()


@lists.get("/{list_id}/members", summary="The list's members you may read, and their count")
def list_members(
    list_id: PathId,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    sort: MemberSort = "last_name",
) -> s.MembersOut:
    page, visible = service.list_members(
        db=db,
        principal=principal,
        list_id=list_id,
        cursor=paging.cursor,
        limit=paging.limit,
        sort=sort,
    )
    return s.MembersOut.model_validate(
        {
            "items": page.items,
            "next_cursor": page.next_cursor,
            "visible": visible,
            "total": None,
            "source": "materialised",
            "refreshed_at": None,
        },
        from_attributes=True,
    )


@lists.get(
    "/{list_id}/members.csv",
    summary="Export the list's members you may read as CSV (formulas neutralised)",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_list_members(
    list_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    factory = request.app.state.session_factory
    return csv_download(
        service.export_members(
            db=db, principal=principal, kind="list", record_id=list_id, session_factory=factory
        )
    )


@lists.post("/{list_id}/members", summary="Add contacts (by id) to a list")
def add_members(
    list_id: PathId, body: s.ContactIdsIn, db: DbSession, principal: CurrentPrincipal
) -> s.MembershipOut:
    done = service.add_to_list(
        db=db, principal=principal, list_id=list_id, contact_ids=body.contact_ids
    )
    return s.MembershipOut.model_validate(done, from_attributes=True)


@lists.post("/{list_id}/members/remove", summary="Remove contacts (by id) from a list")
def remove_members(
    list_id: PathId, body: s.ContactIdsIn, db: DbSession, principal: CurrentPrincipal
) -> s.MembershipOut:
    done = service.remove_from_list(
        db=db, principal=principal, list_id=list_id, contact_ids=body.contact_ids
    )
    return s.MembershipOut.model_validate(done, from_attributes=True)


@lists.post("/{list_id}/import", summary="Add the contacts a CSV of emails names")
def import_csv(
    list_id: PathId, body: s.CsvIn, db: DbSession, principal: CurrentPrincipal
) -> s.MembershipOut:
    done = service.import_csv(db=db, principal=principal, list_id=list_id, text=body.csv)
    return s.MembershipOut.model_validate(done, from_attributes=True)


# ---------------------------------------------------------------- segments


def _detail(db: Session, principal: access.Principal, segment: Any) -> s.SegmentDetailOut:
    counts = service.segment_counts(db=db, principal=principal, segment=segment)
    return s.SegmentDetailOut.model_validate(
        {
            **s.SegmentOut.model_validate(segment).model_dump(),
            "applied_scope": service.effective_scope(db=db, segment=segment),
            "scope_business_unit_id": service.scope_bu(db=db, segment=segment),
            "visible_members": counts.visible,
            "total_members": counts.total,
        }
    )


@router.get("/segments", summary="Segments you may read", response_model=PageOut[s.SegmentOut])
def list_segments(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Search = None,
) -> Any:
    page = service.list_segments(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/segments/count", summary="Count segments you may read")
def count_segments(db: DbSession, principal: CurrentPrincipal, q: Search = None) -> CountOut:
    return CountOut(count=service.count_segments(db=db, principal=principal, q=q))


@router.post("/segments", status_code=201, summary="Create a segment (its refresh is queued)")
def create_segment(
    body: s.SegmentIn, db: DbSession, principal: CurrentPrincipal
) -> s.SegmentDetailOut:
    segment = service.create_segment(
        db=db,
        principal=principal,
        name=body.name,
        kind=body.kind,
        criteria=body.criteria,
        scope=body.scope,
        description=body.description,
        owner=body.owner,
    )
    return _detail(db, principal, segment)


@router.post("/segments/preview", summary="Evaluate criteria without saving: count + first rows")
def preview(body: s.PreviewIn, db: DbSession, principal: CurrentPrincipal) -> s.PreviewOut:
    result = service.preview(
        db=db,
        principal=principal,
        criteria=body.criteria,
        scope=body.scope,
        owner=body.owner,
        segment_id=body.segment_id,
        limit=body.limit,
    )
    return s.PreviewOut.model_validate(
        {
            "visible": result.visible,
            "applied_scope": result.scope,
            "scope_business_unit_id": result.scope_bu_id,
            "items": result.items,
        },
        from_attributes=True,
    )


@router.get("/segments/{segment_id}", summary="One segment with what you see of it")
def get_segment(
    segment_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> s.SegmentDetailOut:
    segment = service.get_segment(db=db, principal=principal, segment_id=segment_id)
    return _detail(db, principal, segment)


@router.patch("/segments/{segment_id}", summary="Change a segment")
def update_segment(
    segment_id: PathId, body: s.SegmentUpdate, db: DbSession, principal: CurrentPrincipal
) -> s.SegmentDetailOut:
    fields = body.model_fields_set
    segment = service.update_segment(
        db=db,
        principal=principal,
        segment_id=segment_id,
        name=body.name,
        description=body.description,
        scope=body.scope,
        criteria=body.criteria if "criteria" in fields else service.UNSET,
    )
    return _detail(db, principal, segment)


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment")
def delete_segment(segment_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_segment(db=db, principal=principal, segment_id=segment_id)
    return no_content()


@router.get("/segments/{segment_id}/members", summary="Members you may read, and their count")
def members(
    segment_id: PathId,
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    live: Annotated[bool, Query(description="Evaluate now instead of the last refresh")] = False,
    sort: MemberSort = "last_name",
) -> s.MembersOut:
    found = service.members(
        db=db,
        principal=principal,
        segment_id=segment_id,
        live=live,
        cursor=paging.cursor,
        limit=paging.limit,
        sort=sort,
    )
    return s.MembersOut.model_validate(
        {
            "items": found.page.items,
            "next_cursor": found.page.next_cursor,
            "visible": found.visible,
            "total": found.total,
            "source": found.source,
            "refreshed_at": found.refreshed_at,
        },
        from_attributes=True,
    )


@router.get(
    "/segments/{segment_id}/members.csv",
    summary="Export the members you may read as CSV (formulas neutralised)",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_members(
    segment_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    factory = request.app.state.session_factory
    return csv_download(
        service.export_members(
            db=db,
            principal=principal,
            kind="segment",
            record_id=segment_id,
            session_factory=factory,
        )
    )


@router.post("/segments/{segment_id}/members", summary="Add contacts to a static segment")
def add_static_members(
    segment_id: PathId, body: s.ContactIdsIn, db: DbSession, principal: CurrentPrincipal
) -> s.MembershipOut:
    done = service.add_static_members(
        db=db, principal=principal, segment_id=segment_id, contact_ids=body.contact_ids
    )
    return s.MembershipOut.model_validate(done, from_attributes=True)


@router.post(
    "/segments/{segment_id}/members/remove", summary="Remove contacts from a static segment"
)
def remove_static_members(
    segment_id: PathId, body: s.ContactIdsIn, db: DbSession, principal: CurrentPrincipal
) -> s.MembershipOut:
    done = service.remove_static_members(
        db=db, principal=principal, segment_id=segment_id, contact_ids=body.contact_ids
    )
    return s.MembershipOut.model_validate(done, from_attributes=True)


@router.post("/segments/{segment_id}/refresh", summary="Recompute the membership now")
def refresh(segment_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.RefreshOut:
    segment, result = service.refresh_for(db=db, principal=principal, segment_id=segment_id)
    counts = service.segment_counts(db=db, principal=principal, segment=segment)
    return s.RefreshOut(
        segment_id=segment_id,
        refreshed_at=segment.refreshed_at,
        seconds=None if result is None else round(result.seconds, 4),
        visible_members=counts.visible,
        total_members=counts.total,
    )


@router.get("/segments/{segment_id}/explain", summary="Why a contact is in or out")
def explain(
    segment_id: PathId,
    contact_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    db: DbSession,
    principal: CurrentPrincipal,
    viewer_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Explain for another user (administrators)"),
    ] = None,
) -> dict[str, Any]:
    explanation = service.explain(
        db=db,
        principal=principal,
        segment_id=segment_id,
        contact_id=contact_id,
        viewer_id=viewer_id,
    )
    return dataclasses.asdict(explanation)
