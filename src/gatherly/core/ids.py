"""Record ids as the API accepts them: positive and within the database's INTEGER range.

Bounding ids at the edge turns ``/contacts/99999999999999999999`` into a clear 422 instead
of an overflow inside the database driver. Path and query parameters bounded the same way
are in :mod:`gatherly.api.params`.
"""

from typing import Annotated

from pydantic import Field

from gatherly.core.bounds import INT_MAX

MAX_ID = INT_MAX  # ids are INTEGER columns: the one bound for ids in paths, queries, bodies

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
