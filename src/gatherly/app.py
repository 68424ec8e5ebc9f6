"""The application factory: ``create_app(settings)`` builds the ASGI app, no import side effects."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline

import gatherly.models  # noqa: F401 - registers every record type with the access engine
from gatherly import __version__
from gatherly.api import errors
from gatherly.capture.router import forms_router, pages_router
from gatherly.capture.router import router as duplicates_router
from gatherly.contact.router import contacts, leads
from gatherly.core import changes, crypto, health, logs, metrics
from gatherly.core.admission import Admission
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.core.exceptions import GatherlyError
from gatherly.email.router import router as email_router
from gatherly.event.router import router as events_router
from gatherly.jobs.queue import app_jobs
from gatherly.journey.router import router as journeys_router
from gatherly.linkedin.router import router as linkedin_router
from gatherly.org.directory import PrincipalCache
from gatherly.org.router import router as org_router
from gatherly.report.router import router as reports_router
from gatherly.scoring.router import router as scoring_router
from gatherly.segment.router import lists as lists_router
from gatherly.segment.router import router as segments_router
from gatherly.teams.router import event_content as teams_event_content
from gatherly.teams.router import hooks as teams_hooks
from gatherly.teams.router import router as teams_router
from gatherly.web import pages, site

API = "/api/v1"
METRICS = "/metrics"  # Prometheus scrapes it (docs/operations.md, "Metrics")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API app on the configured database.

    The secret key is resolved here, once: a weak key is logged as a warning, the old
    public default is refused (``crypto.SecretKeyRefused``), and without one the key file
    is read (or generated on the first run).
    """
    settings = crypto.resolve(settings or Settings())
    # The API docs work offline: Swagger UI's files come from the package, not a CDN.
    app = FastAPIOffline(
        title="Gatherly",
        version=__version__,
        description="Marketing events from Microsoft Teams webinars, with business-unit security.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
        static_url=f"{API}/docs/assets",
        swagger_ui_oauth2_redirect_url=f"{API}/docs/oauth2-redirect",
        dependencies=[Depends(errors.no_nul_in_query)],
    )
    # One connection per request let in (Admission), and a few for the readiness checks'
    # threads and the scrape: no overflow, so no connection is opened and closed per burst.
    engine = make_engine(settings.database_url, connections=settings.api_concurrency + 4)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.principals = PrincipalCache(settings.principal_cache_size)  # see org.directory
    # Commits that change what segments depend on queue their refresh on the worker.
    changes.install_waker(app.state.session_factory, lambda: app_jobs(app).wake_segments())
    errors.install(app, error_page=pages.page_error)
    logs.install(app)  # X-Request-ID, the request id on its lines, one access line each
    app.add_middleware(Admission, limit=settings.api_concurrency)  # see core/admission.py
    app.add_middleware(metrics.RequestMetrics)  # latency by route, waiting included
    # Routes are matched in order, one by one: the most read first. Routers sharing a first
    # path segment keep their order (teams_event_content before events_router: /events).
    for router in (
        teams_event_content,
        contacts,
        leads,
        events_router,
        teams_router,
        org_router,
        segments_router,
        lists_router,
        email_router,
        journeys_router,
        duplicates_router,
        forms_router,
        pages_router,
        linkedin_router,
        scoring_router,
        reports_router,
    ):
        app.include_router(router, prefix=API)

    app.include_router(teams_hooks)
    site.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        # For load balancers and orchestrators: 503 names what is not ready (docs/operations.md).
        state = request.app.state  # the app's engine and queue, as every route finds them
        result = health.readiness(engine=state.engine, jobs=lambda: app_jobs(request.app))
        return JSONResponse(
            result.as_json(),
            status_code=200 if result.ready else 503,
            headers={"Cache-Control": "no-store"},
        )

    @app.get(METRICS, include_in_schema=False)
    def prometheus(request: Request) -> Response:
        # For Prometheus, with its own token; errors in JSON (docs/operations.md, "Metrics").
        state = request.app.state
        try:
            metrics.check_token(state.settings, request.headers.get("Authorization"))
        except GatherlyError as exc:
            return errors.as_json(exc)
        body, media_type = metrics.exposition(
            request.headers.get("Accept"),
            metrics.probes(
                pending_jobs=lambda: app_jobs(request.app).pending(),
                oldest_change=lambda: changes.oldest_pending_at(state.session_factory),
            ),
        )
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    return app
