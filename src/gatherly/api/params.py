"""Ids in paths and query strings, bounded as :mod:`gatherly.core.ids` bounds them in bodies.

They live with the interfaces because they are FastAPI parameters: ``core`` stays free of
the web framework (the CLI and the worker never import it).
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query

from gatherly.core.ids import MAX_ID
from gatherly.core.pagination import MAX_LIMIT

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@dataclass(frozen=True)
class PageParams:
    """Where a paged list starts (the previous page's ``next_cursor``) and how many rows
    it returns."""

    cursor: str | None
    limit: int


async def page_params(  # async: no I/O, so no trip to a worker thread
    # A cursor holds the last row's sort value, so a long name makes a long cursor.
    cursor: Annotated[
        str | None, Query(max_length=4096, description="The next_cursor of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows on the page")] = 50,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


Paging = Annotated[PageParams, Depends(page_params)]
