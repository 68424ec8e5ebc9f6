"""Request dependencies: a database session per request and the authenticated principal.

Quick reads. FastAPI runs a synchronous dependency or route in a worker thread: the
principal, the route and the answer's validation, then the session's end, each a trip. Under
load those threads and the event loop queue for the interpreter's lock, each waiting up to
its switch interval, and a process works on several requests at once, each slower. The
routes that read one record or one page (bounded by the page limit) take ``QuickPrincipal``
and are ``async def``, calling the same services: all of their work runs on the event loop,
one request after another (measured on 2 cores at 200 requests/s for 10 minutes: p99
146 -> 30 ms, with less CPU per request; docs/decisions.md). While one runs its process does nothing else, so
only short reads may be quick: never writes, files, exports, counts over a whole table, or
calls to another service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.core.exceptions import Unauthenticated
from gatherly.org import service as org_service

bearer = HTTPBearer(auto_error=False, description="A per-user API token: `gly_…`")


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session committed when the route returns, rolled back when it raises.

    Async, so that opening the session (which does no I/O) costs no trip to a worker thread;
    ending it does, but only when it began a transaction."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        await _end(session, commit=False)
        raise
    await _end(session, commit=True)


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def _end(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():
        session.close()  # nothing began: no connection to give back, no I/O
        return
    if session.info.get(QUICK):
        _finish(session, commit)  # a quick read's: autocommit, so nothing left to send
        return
    # Shielded, on a limiter of its own (as FastAPI ends a sync dependency): a cancelled or
    # crowded request still gives its connection back to the pool.
    with CancelScope(shield=True):
        await anyio.to_thread.run_sync(_finish, session, commit, limiter=CapacityLimiter(1))


QUICK = "gatherly.quick"  # in Session.info: the request is a quick read (see the top)
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}

# scope="function": commit before the response is sent, so a 2xx means the data is stored.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def _authenticated(
    request: Request, db: Session, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller behind the bearer token, with the token's use (once a minute) left pending
    in ``db``: the queries that load the principal do not flush it, so its row lock is taken
    only by the commit that records it, never held through the rest of the request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
    with db.no_autoflush:
        return org_service.token_principal(
            db=db, secret=credentials.credentials, cache=request.app.state.principals
        )


def current_principal(
    request: Request,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid token.

    From the process's principal cache while nothing security-relevant changed."""
    principal = _authenticated(request, db, credentials)
    if db.dirty:
        db.commit()  # keep last_used_at even when the route then fails
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def quick_principal(
    request: Request,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """``current_principal`` on the event loop, for a quick read (see the top): from the
    cache, one query of one row.

    Nothing here may wait for a lock on the loop: a request of this process holding it on a
    worker thread needs the loop to commit, so both would wait for ever. Reads take no lock;
    the one write, the token's use, is recorded on a worker thread."""
    db.info[QUICK] = True
    # Each statement on its own: no BEGIN and COMMIT, two round trips fewer. Under
    # PostgreSQL's READ COMMITTED each statement saw its own snapshot anyway. Asked for
    # again after a commit, which gives the connection back.
    db.connection(execution_options=AUTOCOMMIT)
    principal = _authenticated(request, db, credentials)
    if db.dirty:
        await anyio.to_thread.run_sync(db.commit)
        db.connection(execution_options=AUTOCOMMIT)
    return principal


QuickPrincipal = Annotated[Principal, Depends(quick_principal)]


def no_content() -> Response:
    """A fresh 204 response (a shared Response instance would carry state across requests)."""
    return Response(status_code=204)


def public_url(request: Request) -> str:
    """Where recipients reach this installation (links in emails start with it)."""
    return str(request.app.state.settings.public_url)
