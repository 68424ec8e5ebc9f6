"""Web pages that import contacts and leads from a CSV file (SPEC B8, M): ``/contacts/import``
and ``/leads/import``.

The page uploads the file and hands its text to ``contact.imports.import_csv`` with the
viewer's principal, as the REST API's import does: each row is matched by the published
duplicate-detection rules among the records the viewer may read, then updated, skipped or
created, and the page shows the totals and every row's outcome.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from gatherly.contact import imports
from gatherly.core.exceptions import ValidationFailed
from gatherly.web.pages import CsrfChecked, CurrentViewer, Viewer, WebDb, page
from gatherly.web.people import CONTACTS, LEADS, PersonKind

router = APIRouter(include_in_schema=False)

SHOWN_ROWS = 1000  # a page of a 20 000-row report would be too long to read or to render
OUTCOMES = {
    imports.MATCHED: "Matched",
    imports.CREATED: "Created",
    imports.SKIPPED: "Skipped",
    imports.REFUSED: "Refused",
}
ON_MATCH = {
    "update": "Update the existing record with the file's values",
    "skip": "Skip the row and leave the existing record as it is",
}


def _columns(pk: PersonKind) -> list[str]:
    extra = imports.LEAD_COLUMNS if pk.kind.record_type == "lead" else ()
    return [*imports.COLUMNS, *extra]


def _page(
    request: Request,
    viewer: Viewer,
    pk: PersonKind,
    *,
    on_match: str = "update",
    report: imports.ImportReport | None = None,
    file_name: str = "",
    errors: dict[str, str] | None = None,
) -> Response:
    rows = report.rows if report is not None else []
    hidden = rows[SHOWN_ROWS:]
    return page(
        request,
        "people/import.html",
        viewer,
        status_code=422 if errors else 200,
        pk=pk,
        columns=_columns(pk),
        on_match=on_match if on_match in ON_MATCH else "update",
        on_match_choices=ON_MATCH,
        report=report,
        rows=rows[:SHOWN_ROWS],
        hidden=len(hidden),
        hidden_refused=sum(1 for r in hidden if r.outcome == imports.REFUSED),
        outcomes=OUTCOMES,
        file_name=file_name,
        errors=errors or {},
        max_mb=imports.MAX_BYTES // (1024 * 1024),
        max_rows=imports.MAX_ROWS,
    )


def _read(file: UploadFile | None) -> str:
    """The upload as text, at most ``imports.MAX_BYTES``; ValidationFailed names the file."""
    data = file.file.read(imports.MAX_BYTES + 1) if file is not None else b""
    if not data:
        raise ValidationFailed("Choose a CSV file to import.", field="file")
    if len(data) > imports.MAX_BYTES:
        raise ValidationFailed(
            f"The file is larger than {imports.MAX_BYTES // (1024 * 1024)} MB; "
            "split it into smaller files.",
            field="file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The file is not UTF-8 text; save it as CSV (UTF-8) and try again.", field="file"
        ) from None


def _routes(pk: PersonKind) -> None:
    @router.get(f"{pk.path}/import")
    def import_form(request: Request, viewer: CurrentViewer) -> Response:
        return _page(request, viewer, pk)

    @router.post(f"{pk.path}/import")
    def import_file(
        request: Request,
        viewer: CurrentViewer,
        _: CsrfChecked,
        db: WebDb,
        file: Annotated[UploadFile | None, File()] = None,
        on_match: Annotated[str, Form(max_length=20)] = "update",
    ) -> Response:
        name = (file.filename or "")[:200] if file is not None else ""
        try:
            if on_match not in ON_MATCH:
                raise ValidationFailed(
                    "Choose what to do with a row that matches.", field="on_match"
                )
            report = imports.import_csv(
                db=db,
                principal=viewer.principal,
                kind=pk.kind,
                text=_read(file),
                on_match="skip" if on_match == "skip" else "update",
            )
        except ValidationFailed as exc:
            db.rollback()
            field = exc.field if exc.field in ("file", "on_match") else "file"
            message = exc.message[:1].upper() + exc.message[1:]
            return _page(
                request, viewer, pk, on_match=on_match, file_name=name, errors={field: message}
            )
        return _page(request, viewer, pk, on_match=on_match, report=report, file_name=name)


_routes(CONTACTS)
_routes(LEADS)
