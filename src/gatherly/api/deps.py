"""Request dependencies: a database session per request and the authenticated principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.core.exceptions import Unauthenticated
from gatherly.org import service as org_service

bearer = HTTPBearer(auto_error=False, description="A per-user API token: `gly_…`")


def get_db(request: Request) -> Iterator[Session]:
    """A session committed when the route returns, rolled back when it raises."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a 2xx means the data is stored.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def current_principal(
    request: Request,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid token.

    From the process's principal cache while nothing security-relevant changed."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
    principal = org_service.token_principal(
        db=db, secret=credentials.credentials, cache=request.app.state.principals
    )
    if db.dirty:
        db.commit()  # keep last_used_at even when the route then fails
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def no_content() -> Response:
    """A fresh 204 response (a shared Response instance would carry state across requests)."""
    return Response(status_code=204)


def public_url(request: Request) -> str:
    """Where recipients reach this installation (links in emails start with it)."""
    return str(request.app.state.settings.public_url)
