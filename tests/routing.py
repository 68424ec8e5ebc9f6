"""The app's routes as a flat list, for the route walks (API and web pages)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_route_pairs(app: FastAPI) -> list[tuple[APIRoute, str]]:
    """(route, full path) of every APIRoute, included routers expanded."""
    try:  # FastAPI >= 0.137 keeps included routers as nodes; this flattens them.
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is already flat
        flat: list[Any] = list(app.routes)
        pairs = [(r, r.path) for r in flat]
    else:
        pairs = [(c.original_route, c.path) for c in iter_route_contexts(app.routes)]
    return [(route, path) for route, path in pairs if isinstance(route, APIRoute)]
