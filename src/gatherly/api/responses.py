"""Responses the API and the web pages both send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from gatherly.core.csvout import CsvExport

# How OpenAPI describes a CSV download.
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


def csv_download(export: CsvExport) -> StreamingResponse:
    """Stream an export as a CSV attachment."""
    return StreamingResponse(
        export.chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


def media_stream(chunks: Iterator[bytes], media_type: str, length: int | None) -> StreamingResponse:
    """Stream media (a recording) to be played in the browser, never cached by proxies."""
    headers = {"Content-Disposition": "inline", "Cache-Control": "private, no-store"}
    if length is not None:
        headers["Content-Length"] = str(length)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)
