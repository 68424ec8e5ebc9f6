"""REST routes for duplicate-detection rules, duplicate jobs and merge (SPEC B8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.capture import duplicates, merge
from gatherly.capture import schemas as s
from gatherly.contact import matching
from gatherly.contact.schemas import CountOut, PageOut
from gatherly.jobs.queue import app_jobs

router = APIRouter(prefix="/duplicates", tags=["duplicates"])


@router.get("/rules", summary="Duplicate detection rules", response_model=list[s.RuleOut])
def list_rules(
    db: DbSession,
    principal: CurrentPrincipal,
    record_type: Annotated[s.RecordType | None, Query()] = None,
) -> Any:
    return matching.list_rules(db=db, principal=principal, record_type=record_type)


@router.post("/rules", status_code=201, summary="Make a rule", response_model=s.RuleOut)
def create_rule(body: s.RuleIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return matching.save_rule(db=db, principal=principal, **_rule_values(body))


@router.get("/rules/{rule_id}", summary="Read a rule", response_model=s.RuleOut)
def read_rule(rule_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return matching.get_rule(db=db, principal=principal, rule_id=rule_id)


@router.patch(
    "/rules/{rule_id}",
    summary="Change, publish or unpublish a rule (the built-in one: only publish)",
    response_model=s.RuleOut,
)
def update_rule(
    rule_id: PathId, body: s.RuleFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return matching.save_rule(db=db, principal=principal, rule_id=rule_id, **_rule_values(body))


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete a rule")
def delete_rule(rule_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    matching.delete_rule(db=db, principal=principal, rule_id=rule_id)
    return no_content()


def _rule_values(body: s.RuleFields) -> dict[str, Any]:
    values = body.model_dump(include=body.model_fields_set)
    if body.conditions is not None:
        values["conditions"] = [c.model_dump() for c in body.conditions]
    return values


@router.post(
    "/jobs",
    status_code=202,
    summary="Look for duplicates among the records you may read (runs on the worker)",
    response_model=s.JobOut,
)
def start_job(body: s.JobIn, request: Request, db: DbSession, principal: CurrentPrincipal) -> Any:
    return duplicates.start_job(
        db=db,
        principal=principal,
        record_type=body.record_type,
        rule_ids=body.rule_ids,
        queue=app_jobs(request.app),
    )


@router.get("/jobs", summary="Your duplicate detection jobs", response_model=list[s.JobOut])
def list_jobs(db: DbSession, principal: CurrentPrincipal) -> Any:
    return duplicates.list_jobs(db=db, principal=principal)


@router.get("/jobs/{job_id}", summary="One of your jobs", response_model=s.JobOut)
def read_job(job_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return duplicates.get_job(db=db, principal=principal, job_id=job_id)


@router.get(
    "/jobs/{job_id}/pairs",
    summary="The pairs a job found whose two records you may read now",
    response_model=PageOut[s.PairOut],
)
def job_pairs(job_id: PathId, db: DbSession, principal: CurrentPrincipal, paging: Paging) -> Any:
    _job, page = duplicates.pairs(
        db=db, principal=principal, job_id=job_id, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/jobs/{job_id}/pairs/count", summary="How many pairs you may read")
def count_pairs(job_id: PathId, db: DbSession, principal: CurrentPrincipal) -> CountOut:
    return CountOut(count=duplicates.count_pairs(db=db, principal=principal, job_id=job_id))


@router.post(
    "/merge",
    summary="Merge a duplicate into a master record (Write on both)",
    response_model=s.MergedOut,
)
def merge_records(body: s.MergeIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return merge.merge(
        db=db,
        principal=principal,
        record_type=body.record_type,
        master_id=body.master_id,
        duplicate_id=body.duplicate_id,
        take=body.take,
    )
