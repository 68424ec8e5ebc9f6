"""REST routes for contacts and leads; both are built by one factory over ``Kind``."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from gatherly.access.levels import rights_from_mask
from gatherly.access.models import RecordShare
from gatherly.api.deps import CurrentPrincipal, DbSession, QuickPrincipal, no_content
from gatherly.api.params import Paging, PathId, QueryId
from gatherly.contact import imports, service
from gatherly.contact.schemas import (
    AssignIn,
    ContactCreate,
    ContactUpdate,
    CountOut,
    ImportOut,
    LeadCreate,
    LeadOut,
    LeadUpdate,
    PageOut,
    PersonOut,
    QualifiedOut,
    ShareIn,
    ShareOut,
    normalize_country,
)
from gatherly.core.exceptions import ValidationFailed

AllowDuplicate = Annotated[
    bool,
    Query(
        description="Create or change the record even when the duplicate-detection rules "
        "find the same person among records you may read (else 409 with code "
        "`duplicate` and the `matches`)."
    ),
]


async def _csv_body(request: Request) -> str:
    """The request's body as text (CSV is not JSON, so FastAPI does not read it for us)."""
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("the file must be UTF-8 text", field="body") from None


def _share_out(row: RecordShare) -> ShareOut:
    return ShareOut(
        id=row.id,
        principal_type=row.principal_type,
        principal_id=None if row.principal_type == "organization" else row.principal_id,
        rights=[r.value for r in rights_from_mask(row.rights)],
        created_at=row.created_at,
    )


def make_router(
    kind: service.Kind,
    create_schema: type[ContactCreate],
    update_schema: type[BaseModel],
    out_schema: type[PersonOut],
) -> APIRouter:
    """CRUD, count, assign and share routes for one person kind."""
    router = APIRouter(prefix=f"/{kind.record_type}s", tags=[f"{kind.record_type}s"])
    label = kind.label

    async def filters(  # async: no I/O, so no trip to a worker thread
        q: Annotated[
            str | None, Query(description="Part of the full name, company or email (any case)")
        ] = None,
        email: str | None = None,
        country: str | None = None,
        company: str | None = None,
        owning_bu_id: QueryId = None,
        owner_type: Literal["user", "team"] | None = None,
        owner_id: QueryId = None,
        status: Literal["new", "contacted", "qualified", "disqualified"] | None = None,
    ) -> service.ListFilter:
        # Filters take what the fields take: a status no lead has, or a status on
        # contacts, or an unknown country is an error, never a silently empty result.
        if status is not None and kind is not service.LEAD:
            raise ValidationFailed(f"{label}s have no status", field="status")
        if country:
            try:
                country = normalize_country(country)
            except ValueError as exc:
                raise ValidationFailed(str(exc), field="country") from None
        return service.ListFilter(
            q=q,
            email=email,
            country=country,
            company=company,
            owning_bu_id=owning_bu_id,
            owner_type=owner_type,
            owner_id=owner_id,
            status=status,
        )

    FilterDep = Annotated[service.ListFilter, Depends(filters)]  # noqa: N806 - a type alias

    @router.get("", summary=f"List {label}s you may read", response_model=PageOut[out_schema])  # type: ignore[valid-type]
    async def list_(  # a quick read (api/deps.py): one page, on the event loop
        db: DbSession,
        principal: QuickPrincipal,
        paging: Paging,
        flt: FilterDep,
        sort: str = "-modified_at",
    ) -> Any:
        page = service.list_records(
            db=db,
            principal=principal,
            kind=kind,
            flt=flt,
            sort=sort,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.get("/count", summary=f"Count {label}s you may read")
    def count(db: DbSession, principal: CurrentPrincipal, flt: FilterDep) -> CountOut:
        return CountOut(count=service.count_records(db=db, principal=principal, kind=kind, flt=flt))

    @router.post("", status_code=201, summary=f"Create a {label}", response_model=out_schema)
    def create(
        body: create_schema,  # type: ignore[valid-type]
        db: DbSession,
        principal: CurrentPrincipal,
        allow_duplicate: AllowDuplicate = False,
    ) -> Any:
        return service.create(
            db=db,
            principal=principal,
            kind=kind,
            record_in=body,
            allow_duplicate=allow_duplicate,
        )

    @router.post(
        "/import",
        summary=f"Import {label}s from CSV, matching each row against those you may read",
        description="The body is CSV (UTF-8) with a header line naming the columns: "
        "email, first_name, last_name, company, job_title, phone, country"
        + (", topic, source" if kind is service.LEAD else "")
        + " and custom.<name>. A row the duplicate-detection rules match to a record you "
        "may read updates it (`on_match=update`) or is skipped (`skip`); other rows are "
        "created, owned by you. Each row's outcome is reported: matched, created, skipped "
        f"or refused with the reason. At most {imports.MAX_ROWS} rows.",
        response_model=ImportOut,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    def import_csv(
        text: Annotated[str, Depends(_csv_body)],
        principal: CurrentPrincipal,
        db: DbSession,
        on_match: Literal["update", "skip"] = "update",
    ) -> Any:
        report = imports.import_csv(
            db=db, principal=principal, kind=kind, text=text, on_match=on_match
        )
        return ImportOut(record_type=report.record_type, totals=report.totals, rows=report.rows)

    @router.get("/{record_id}", summary=f"Read a {label}", response_model=out_schema)
    async def read(record_id: PathId, db: DbSession, principal: QuickPrincipal) -> Any:
        # a quick read (api/deps.py): one record, on the event loop
        return service.get(db=db, principal=principal, kind=kind, record_id=record_id)

    @router.patch("/{record_id}", summary=f"Change a {label}", response_model=out_schema)
    def patch(
        record_id: PathId,
        body: update_schema,  # type: ignore[valid-type]
        db: DbSession,
        principal: CurrentPrincipal,
        allow_duplicate: AllowDuplicate = False,
    ) -> Any:
        return service.update(
            db=db,
            principal=principal,
            kind=kind,
            record_id=record_id,
            record_in=body,
            allow_duplicate=allow_duplicate,
        )

    @router.delete(
        "/{record_id}", status_code=204, summary=f"Delete a {label} (leaves a tombstone)"
    )
    def delete(record_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
        service.delete_record(db=db, principal=principal, kind=kind, record_id=record_id)
        return no_content()

    @router.post(
        "/{record_id}/assign", summary=f"Give a {label} to another owner", response_model=out_schema
    )
    def assign(
        record_id: PathId, body: AssignIn, db: DbSession, principal: CurrentPrincipal
    ) -> Any:
        return service.assign(
            db=db, principal=principal, kind=kind, record_id=record_id, owner=body.owner
        )

    @router.get("/{record_id}/shares", summary=f"Who a {label} is shared with")
    def shares(record_id: PathId, db: DbSession, principal: CurrentPrincipal) -> list[ShareOut]:
        rows = service.list_shares(db=db, principal=principal, kind=kind, record_id=record_id)
        return [_share_out(r) for r in rows]

    @router.post("/{record_id}/shares", status_code=201, summary=f"Share a {label}")
    def add_share(
        record_id: PathId, body: ShareIn, db: DbSession, principal: CurrentPrincipal
    ) -> ShareOut:
        row = service.share(
            db=db, principal=principal, kind=kind, record_id=record_id, share_in=body
        )
        return _share_out(row)

    @router.delete("/{record_id}/shares/{share_id}", status_code=204, summary="Revoke a share")
    def remove_share(
        record_id: PathId, share_id: PathId, db: DbSession, principal: CurrentPrincipal
    ) -> Response:
        service.unshare(
            db=db, principal=principal, kind=kind, record_id=record_id, share_id=share_id
        )
        return no_content()

    return router


contacts = make_router(service.CONTACT, ContactCreate, ContactUpdate, PersonOut)
leads = make_router(service.LEAD, LeadCreate, LeadUpdate, LeadOut)


@leads.post(
    "/{record_id}/qualify",
    summary="Qualify a lead into a contact",
    description=(
        "Links the lead to its contact: the one it already names, else a contact you may "
        "read with the lead's email, else a new contact you own made from the lead's person "
        "fields (`created` says which). The lead's status becomes `qualified`."
    ),
)
def qualify(record_id: PathId, db: DbSession, principal: CurrentPrincipal) -> QualifiedOut:
    done = service.qualify(db=db, principal=principal, lead_id=record_id)
    return QualifiedOut(
        lead=LeadOut.model_validate(done.lead),
        contact=PersonOut.model_validate(done.contact),
        created=done.created,
    )
