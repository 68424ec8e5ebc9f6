"""Ids in paths and query strings, bounded as :mod:`gatherly.core.ids` bounds them in bodies.

They live with the interfaces because they are FastAPI parameters: ``core`` stays free of
the web framework (the CLI and the worker never import it).
"""

from typing import Annotated

from fastapi import Path, Query

from gatherly.core.ids import MAX_ID

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
