"""Responses the API and the web pages both send."""

from __future__ import annotations

from fastapi.responses import StreamingResponse

from gatherly.core.csvout import CsvExport


def csv_download(export: CsvExport) -> StreamingResponse:
    """Stream an export as a CSV attachment."""
    return StreamingResponse(
        export.chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
