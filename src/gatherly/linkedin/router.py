"""REST routes for LinkedIn profiles, their sources, the leads taken in and assignment rules
(SPEC B12). Connecting a profile is a browser's job (OAuth): see the LinkedIn page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId, QueryId
from gatherly.contact.schemas import CountOut, PageOut
from gatherly.jobs.queue import app_jobs
from gatherly.linkedin import schemas as s
from gatherly.linkedin import service

router = APIRouter(prefix="/linkedin", tags=["linkedin"])


@router.get(
    "/profiles", summary="LinkedIn profiles you may read", response_model=list[s.ProfileOut]
)
def list_profiles(db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.list_profiles(db=db, principal=principal)


@router.get("/profiles/{profile_id}", summary="A LinkedIn profile", response_model=s.ProfileOut)
def read_profile(profile_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_profile(db=db, principal=principal, profile_id=profile_id)


@router.delete(
    "/profiles/{profile_id}/connection",
    summary="Disconnect: forget the member's tokens and stop reading",
    response_model=s.ProfileOut,
)
def disconnect(profile_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.disconnect(db=db, principal=principal, profile_id=profile_id)


@router.get(
    "/profiles/{profile_id}/sources",
    summary="The ad accounts and company pages the profile reads",
    response_model=list[s.SourceOut],
)
def list_sources(profile_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.sources(db=db, principal=principal, profile_id=profile_id)


@router.patch(
    "/profiles/{profile_id}/sources/{source_id}",
    summary="Read a source's leads, or stop",
    response_model=s.SourceOut,
)
def set_source(
    profile_id: PathId,
    source_id: PathId,
    body: s.SourceIn,
    db: DbSession,
    principal: CurrentPrincipal,
) -> Any:
    return service.set_source(
        db=db, principal=principal, profile_id=profile_id, source_id=source_id, enabled=body.enabled
    )


@router.post(
    "/profiles/{profile_id}/poll",
    status_code=202,
    summary="Read the profile's new leads now (on the worker)",
    response_model=s.ProfileOut,
)
def poll_now(
    profile_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> Any:
    profile = service.request_poll(
        db=db, principal=principal, profile_id=profile_id, queue=app_jobs(request.app)
    )
    return profile


@router.get("/leads", summary="LinkedIn leads you may read", response_model=PageOut[s.LeadOut])
def list_leads(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    profile_id: QueryId = None,
    test: bool | None = None,
) -> Any:
    page = service.list_leads(
        db=db,
        principal=principal,
        profile_id=profile_id,
        test=test,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/leads/count", summary="How many LinkedIn leads you may read")
def count_leads(
    db: DbSession,
    principal: CurrentPrincipal,
    profile_id: QueryId = None,
    test: bool | None = None,
) -> CountOut:
    return CountOut(
        count=service.count_leads(db=db, principal=principal, profile_id=profile_id, test=test)
    )


@router.get("/leads/{lead_id}", summary="One LinkedIn lead", response_model=s.LeadOut)
def read_lead(lead_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.get_lead(db=db, principal=principal, lead_id=lead_id)


@router.get("/assignment-rules", summary="Assignment rules", response_model=list[s.RuleOut])
def list_rules(db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.list_rules(db=db, principal=principal)


@router.post(
    "/assignment-rules",
    status_code=201,
    summary="Make an assignment rule",
    response_model=s.RuleOut,
)
def create_rule(body: s.RuleIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.save_rule(
        db=db,
        principal=principal,
        rule_in=service.RuleIn(**body.model_dump(exclude={"owner"}), owner=body.owner),
    )


@router.put(
    "/assignment-rules/{rule_id}", summary="Change an assignment rule", response_model=s.RuleOut
)
def update_rule(rule_id: PathId, body: s.RuleIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.save_rule(
        db=db,
        principal=principal,
        rule_id=rule_id,
        rule_in=service.RuleIn(**body.model_dump(exclude={"owner"}), owner=body.owner),
    )


@router.delete("/assignment-rules/{rule_id}", status_code=204, summary="Delete an assignment rule")
def delete_rule(rule_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_rule(db=db, principal=principal, rule_id=rule_id)
    return no_content()
