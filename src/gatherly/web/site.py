"""Mount the web UI on the app: static files, page error handlers and every page router."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gatherly.web import (
    admin,
    bulk,
    catcher,
    contacts,
    duplicate_rules,
    duplicates,
    email,
    email_sends,
    events,
    imports,
    journeys,
    leads,
    linkedin,
    linkedin_rules,
    marketing_forms,
    marketing_pages,
    pages,
    people,
    public_forms,
    recipients,
    reports,
    scoring,
    segments,
    teams,
    tokens,
)
from gatherly.web.router import router as home


def install(app: FastAPI) -> None:
    """Serve the UI at ``/`` beside the API."""
    pages.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    # people and imports before contacts and leads: /contacts/new and /contacts/import
    # before /contacts/{contact_id}.
    # recipients before email: its /email/u/…, /email/s/… are public pages.
    for module in (
        teams,
        events,
        people,
        imports,
        contacts,
        leads,
        duplicates,
        segments,
        bulk,
        recipients,
        public_forms,
        email_sends,
        email,
        journeys,
        marketing_forms,
        marketing_pages,
        scoring,
        reports,
        admin,
        duplicate_rules,
        linkedin,
        linkedin_rules,
        tokens,
        catcher,
    ):
        app.include_router(module.router)
    app.include_router(home)
