"""Sign-in sessions and CSRF tokens for the web UI.

The session cookie carries a random secret; the database keeps its SHA-256 (as for API
tokens), so a stolen database cannot sign anyone in, and sign-out ends the row at once.
Every form carries a CSRF token compared in constant time: the session's own once signed
in, and before that (the sign-in form) a double-submit token from its own cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.core.db import utcnow
from gatherly.org.models import User
from gatherly.web.models import WebSession

SESSION_COOKIE = "gatherly_session"
CSRF_COOKIE = "gatherly_signin_csrf"
LIFETIME = timedelta(hours=12)
SEEN_EVERY = timedelta(minutes=5)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    """A random URL-safe token (CSRF values, session secrets)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing side never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def start(db: Session, *, user: User) -> tuple[WebSession, str]:
    """A new session for ``user``; returns it and the cookie secret (shown only here)."""
    secret = new_token()
    now = utcnow()
    row = WebSession(
        token_hash=_digest(secret),
        user_id=user.id,
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIME,
    )
    db.add(row)
    db.flush()
    return row, secret


def current(db: Session, secret: str | None) -> tuple[WebSession, User] | None:
    """The live session behind a cookie secret and its user, or None."""
    if not secret:
        return None
    row = db.execute(select(WebSession).where(WebSession.token_hash == _digest(secret))).scalar()
    now = utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    user = db.get(User, row.user_id)
    if user is None:
        return None
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = now  # not on every request: a page view should not be a write
    return row, user


def end(db: Session, row: WebSession) -> None:
    """Sign out: the cookie's secret stops working at once."""
    row.ended_at = utcnow()
    db.flush()


def end_all(db: Session, *, user_id: int, keep_id: int | None = None) -> int:
    """End every live session of a user but ``keep_id``: after their password changes, a
    browser that knew the old one is signed out. Returns how many ended."""
    stmt = select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    ended = 0
    for row in db.scalars(stmt):
        if row.id != keep_id:
            row.ended_at = utcnow()
            ended += 1
    db.flush()
    return ended
