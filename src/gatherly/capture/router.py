"""REST routes for duplicate-detection rules, duplicate jobs and merge (SPEC B8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.capture import duplicates, forms, merge
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


# ------------------------------------------------------------------ forms and pages

forms_router = APIRouter(prefix="/forms", tags=["forms"])
pages_router = APIRouter(prefix="/pages", tags=["pages"])


@forms_router.get("", summary="Forms you may read", response_model=PageOut[s.FormOut])
def list_forms(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
) -> Any:
    page = forms.list_forms(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@forms_router.post("", status_code=201, summary="Make a draft form", response_model=s.FormOut)
def create_form(body: s.FormIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.create_form(
        db=db,
        principal=principal,
        form_in=body.model_dump(exclude={"owner"}, exclude_none=True),
        owner=body.owner,
    )


@forms_router.get("/{form_id}", summary="Read a form", response_model=s.FormOut)
def read_form(form_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.get_form(db=db, principal=principal, form_id=form_id)


@forms_router.patch("/{form_id}", summary="Change a form", response_model=s.FormOut)
def update_form(
    form_id: PathId, body: s.FormFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return forms.update_form(
        db=db,
        principal=principal,
        form_id=form_id,
        changes_in=body.model_dump(include=body.model_fields_set),
    )


@forms_router.post(
    "/{form_id}/state",
    summary="Take a form live (it takes submissions) or back to draft",
    response_model=s.FormOut,
)
def form_state(form_id: PathId, body: s.StateIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.set_form_state(db=db, principal=principal, form_id=form_id, state=body.state)


@forms_router.delete("/{form_id}", status_code=204, summary="Delete a form and its submissions")
def delete_form(form_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    forms.delete_form(db=db, principal=principal, form_id=form_id)
    return no_content()


@forms_router.get(
    "/{form_id}/embed",
    summary="The HTML to paste into any website (a plain form, no JavaScript)",
    response_model=s.EmbedOut,
)
def embed_form(
    form_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> Any:
    settings = request.app.state.settings
    html = forms.embed(db=db, principal=principal, settings=settings, form_id=form_id)
    return s.EmbedOut(html=html, action=forms.action_url(settings, form_id))


@forms_router.post(
    "/{form_id}/embed-key",
    summary="Invalidate every embed snippet given out for this form",
    response_model=s.FormOut,
)
def rotate_embed_key(form_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.rotate_embed_key(db=db, principal=principal, form_id=form_id)


@forms_router.get(
    "/{form_id}/submissions",
    summary="A form's submissions you may read",
    response_model=PageOut[s.SubmissionOut],
)
def form_submissions(
    form_id: PathId, db: DbSession, principal: CurrentPrincipal, paging: Paging
) -> Any:
    page = forms.list_submissions(
        db=db, principal=principal, form_id=form_id, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@forms_router.get("/{form_id}/stats", summary="Visits, submissions and people")
def form_stats(form_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.stats(db=db, principal=principal, form_id=form_id)


@forms_router.get(
    "/{form_id}/interactions",
    summary="Visits and submissions, naming only contacts you may read",
    response_model=PageOut[s.InteractionOut],
)
def form_interactions(
    form_id: PathId, db: DbSession, principal: CurrentPrincipal, paging: Paging
) -> Any:
    page = forms.interactions(
        db=db, principal=principal, form_id=form_id, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@forms_router.get(
    "/submissions/{submission_id}",
    summary="One submission",
    response_model=s.SubmissionOut,
)
def read_submission(submission_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.get_submission(db=db, principal=principal, submission_id=submission_id)


@pages_router.get("", summary="Pages you may read", response_model=PageOut[s.PageOut])
def list_pages(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
) -> Any:
    page = forms.list_pages(
        db=db, principal=principal, q=q, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@pages_router.post("", status_code=201, summary="Make a draft page", response_model=s.PageOut)
def create_page(body: s.PageIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.create_page(
        db=db,
        principal=principal,
        page_in=body.model_dump(exclude={"owner"}, exclude_none=True),
        owner=body.owner,
    )


@pages_router.get("/{page_id}", summary="Read a page", response_model=s.PageOut)
def read_page(page_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.get_page(db=db, principal=principal, page_id=page_id)


@pages_router.patch("/{page_id}", summary="Change a page", response_model=s.PageOut)
def update_page(
    page_id: PathId, body: s.PageFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    return forms.update_page(
        db=db,
        principal=principal,
        page_id=page_id,
        changes_in=body.model_dump(include=body.model_fields_set),
    )


@pages_router.post(
    "/{page_id}/state",
    summary="Publish a page at /p/{slug} (live) or take it down (draft)",
    response_model=s.PageOut,
)
def page_state(page_id: PathId, body: s.StateIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.set_page_state(db=db, principal=principal, page_id=page_id, state=body.state)


@pages_router.get("/{page_id}/stats", summary="Visits, submissions and people")
def page_stats(page_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    return forms.stats(db=db, principal=principal, page_id=page_id)


@pages_router.get(
    "/{page_id}/interactions",
    summary="Visits and submissions, naming only contacts you may read",
    response_model=PageOut[s.InteractionOut],
)
def page_interactions(
    page_id: PathId, db: DbSession, principal: CurrentPrincipal, paging: Paging
) -> Any:
    page = forms.interactions(
        db=db, principal=principal, page_id=page_id, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@pages_router.delete("/{page_id}", status_code=204, summary="Delete a page")
def delete_page(page_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    forms.delete_page(db=db, principal=principal, page_id=page_id)
    return no_content()
