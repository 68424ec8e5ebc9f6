"""REST routes for scoring models and lead scores (SPEC B9)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId
from gatherly.api.responses import CSV_RESPONSE, csv_download
from gatherly.contact.schemas import OwnerRef, PageOut
from gatherly.core.ids import MAX_ID
from gatherly.scoring import schemas as s
from gatherly.scoring import service
from gatherly.scoring.models import ScoringModel

router = APIRouter(prefix="/scoring", tags=["scoring"])
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/models", summary="Scoring models you may read", response_model=PageOut[s.ModelOut])
def list_models(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
    state: Annotated[str | None, Query(pattern="^(draft|live)$")] = None,
) -> Any:
    page = service.list_models(
        db=db, principal=principal, q=q, state=state, cursor=paging.cursor, limit=paging.limit
    )
    return {"items": _out(db, principal, *page.items), "next_cursor": page.next_cursor}


@router.post(
    "/models", status_code=201, summary="Create a draft scoring model", response_model=s.ModelOut
)
def create_model(body: s.ModelIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    data = body.model_dump(exclude={"owner"}, exclude_unset=True)
    (out,) = _out(
        db, principal, service.create_model(db=db, principal=principal, owner=body.owner, **data)
    )
    return out


@router.get("/models/{model_id}", summary="Read a scoring model", response_model=s.ModelOut)
def read_model(model_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    (out,) = _out(db, principal, service.get_model(db=db, principal=principal, model_id=model_id))
    return out


@router.patch(
    "/models/{model_id}",
    summary="Change a scoring model (a live one is rescored in full)",
    response_model=s.ModelOut,
)
def update_model(
    model_id: PathId, body: s.ModelFields, db: DbSession, principal: CurrentPrincipal
) -> Any:
    changes = body.model_dump(include=body.model_fields_set)
    (out,) = _out(
        db,
        principal,
        service.update_model(db=db, principal=principal, model_id=model_id, changes=changes),
    )
    return out


@router.delete("/models/{model_id}", status_code=204, summary="Delete a model and its scores")
def delete_model(model_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_model(db=db, principal=principal, model_id=model_id)
    return no_content()


@router.put(
    "/models/{model_id}/state",
    summary="Take a model live, or back to draft",
    response_model=s.ModelOut,
)
def set_state(model_id: PathId, body: s.StateIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    (out,) = _out(
        db,
        principal,
        service.set_state(db=db, principal=principal, model_id=model_id, state=body.state),
    )
    return out


@router.put(
    "/models/{model_id}/owner",
    summary="Give a model (and its scores) to another owner",
    response_model=s.ModelOut,
)
def assign_model(
    model_id: PathId, body: OwnerRef, db: DbSession, principal: CurrentPrincipal
) -> Any:
    (out,) = _out(
        db,
        principal,
        service.assign_model(db=db, principal=principal, model_id=model_id, owner=body),
    )
    return out


@router.post(
    "/models/{model_id}/rescore",
    status_code=202,
    summary="Ask the worker to rescore a live model in full",
    response_model=s.ModelOut,
)
def rescore(model_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    (out,) = _out(
        db, principal, service.request_rescore(db=db, principal=principal, model_id=model_id)
    )
    return out


@router.get(
    "/models/{model_id}/scores.csv",
    summary="A model's scores you may read, as CSV",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
def export_scores(
    model_id: PathId, request: Request, db: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    return csv_download(
        service.export_scores(
            db=db,
            principal=principal,
            model_id=model_id,
            session_factory=request.app.state.session_factory,
        )
    )


@router.get("/scores", summary="Lead scores you may read", response_model=PageOut[s.ScoreOut])
def list_scores(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    model_id: OptionalId = None,
    contact_id: OptionalId = None,
    lead_id: OptionalId = None,
    grade: Annotated[str | None, Query(max_length=20)] = None,
    sales_ready: bool | None = None,
    sort: Annotated[str, Query(pattern="^-?(score|id)$")] = "-score",
) -> Any:
    page = service.list_scores(
        db=db,
        principal=principal,
        model_id=model_id,
        contact_id=contact_id,
        lead_id=lead_id,
        grade=grade,
        sales_ready=sales_ready,
        cursor=paging.cursor,
        limit=paging.limit,
        sort=sort,
    )
    return {"items": [score_out(v) for v in page.items], "next_cursor": page.next_cursor}


@router.get("/scores/{score_id}", summary="Read a lead score", response_model=s.ScoreOut)
def read_score(score_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    row = service.get_score(db=db, principal=principal, score_id=score_id)
    return score_out(service.views(db, principal, [row])[0])


@router.get(
    "/scores/{score_id}/explanation",
    summary="Why a score is what it is: each condition's points, from which interactions",
    response_model=s.ExplanationOut,
)
def explain_score(score_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Any:
    said = service.explain(db=db, principal=principal, score_id=score_id)
    view = service.ScoreView(said.score, said.model.name, said.label)
    return {
        "score": score_out(view),
        "total": said.total,
        "grade": said.grade,
        "current": said.current,
        "parts": said.parts,
    }


def score_out(view: service.ScoreView) -> dict[str, Any]:
    """A score as the API shows it."""
    row = view.score
    return {
        "id": row.id,
        "model_id": row.model_id,
        "model_name": view.model_name,
        "record_type": "lead" if row.lead_id is not None else "contact",
        "record_id": row.record_id,
        "contact_id": row.contact_id,
        "lead_id": row.lead_id,
        "name": view.label,
        "score": row.score,
        "grade": row.grade,
        "sales_ready": row.sales_ready,
        "sales_ready_at": row.sales_ready_at,
        "changed_at": row.changed_at,
        "owner": row.owner,
        "owning_bu_id": row.owning_bu_id,
    }


def _out(db: DbSession, principal: CurrentPrincipal, *rows: ScoringModel) -> list[s.ModelOut]:
    """Models as the caller sees them: ``scored_count`` counts the scores they may read."""
    counts = service.readable_score_counts(
        db=db, principal=principal, model_ids=[row.id for row in rows]
    )
    return [
        s.ModelOut.model_validate(row).model_copy(
            update={"scored_count": None if row.scored_at is None else counts.get(row.id, 0)}
        )
        for row in rows
    ]
