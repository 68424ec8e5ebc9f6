"""The Graph client the connector uses: JSON, paged collections and content bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from gatherly.core.exceptions import FatalSyncError
from gatherly.graph.auth import Credential
from gatherly.graph.transport import GraphStats, GraphTransport

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"


class GraphClient:
    """Microsoft Graph over httpx; pass ``transport`` to run in-process (ASGITransport)."""

    def __init__(self, base_url: str, credential: Credential, **options: Any) -> None:
        """``options`` are GraphTransport's: transport, rate_per_second, timeout, retries…"""
        self._transport = GraphTransport(base_url, credential, **options)

    @property
    def stats(self) -> GraphStats:
        """Requests, retries and throttling met so far."""
        return self._transport.stats

    def access_token(self) -> str:
        """A valid bearer token for this client's app (acquired now if none is cached)."""
        return self._transport.credential.token()

    def close(self) -> None:
        """Release the HTTP connections (the credential's too, when it has any)."""
        self._transport.close()
        close_credential = getattr(self._transport.credential, "close", None)
        if callable(close_credential):
            close_credential()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET one Graph resource (path under the base URL, or absolute URL) as a JSON object."""
        response = self._transport.get(path, params)
        try:
            body = response.json()
        except ValueError:
            raise FatalSyncError(f"Graph answered {path} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise FatalSyncError(f"Graph answered {path} with JSON that is not an object")
        return body

    def send_json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """POST, PATCH or DELETE a Graph resource; its JSON answer ({} for 204 No Content)."""
        response = self._transport.request(method, path, json=body)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            raise FatalSyncError(f"Graph answered {path} with a body that is not JSON") from None
        if not isinstance(answer, dict):
            raise FatalSyncError(f"Graph answered {path} with JSON that is not an object")
        return answer

    def get_bytes(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        """GET raw content (transcript VTT, recording MP4) as bytes."""
        return self._transport.get(path, params).content

    def open_content(self, url: str) -> httpx.Response:
        """GET large content (a recording's MP4) without reading it: iterate the response's
        ``iter_bytes()``, then close it. Only URLs on this client's Graph host: the token
        never goes anywhere else."""
        if "://" in url and not self._transport.same_origin(url):
            raise FatalSyncError(f"{url!r} is not on this installation's Graph host")
        return self._transport.get(url, stream=True)

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield every item of a Graph collection, following ``@odata.nextLink`` to the end.

        Args:
            path: Collection path under the base URL, e.g.
                ``/solutions/virtualEvents/webinars``.
            params: Query options for the first page only; nextLinks already carry them.

        Returns:
            An iterator over the items of ``value`` on every page, in server order.

        Raises:
            FatalSyncError: A page has no ``value`` list, a nextLink repeats (a paging loop)
                or points at another host.
            GraphError: Graph answered with an error after retries (see ``graph.errors``).
            GraphConnectionError: Graph stayed unreachable after retries.

        Example:
            >>> for webinar in client.paginate("/solutions/virtualEvents/webinars"):
            ...     print(webinar["id"])  # doctest: +SKIP
        """
        for page in self.pages(path, params):
            yield from page["value"]

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield each page of a Graph collection (its ``value`` checked to be a list), following
        ``@odata.nextLink``; the last page of a delta round carries ``@odata.deltaLink``."""
        url, query, seen = path, params, set[str]()
        while True:
            page = self.get_json(url, query)
            if not isinstance(page.get("value"), list):
                raise FatalSyncError(f"Graph page of {path} has no 'value' list")
            yield page
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            if not isinstance(next_link, str) or not self._transport.same_origin(next_link):
                raise FatalSyncError(f"Graph nextLink of {path} points elsewhere: {next_link!r}")
            if next_link in seen:
                raise FatalSyncError(
                    f"Graph paging loop on {path}: nextLink repeated after {len(seen)} pages"
                )
            seen.add(next_link)
            url, query = next_link, None
