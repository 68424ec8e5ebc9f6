"""An outbox of data changes, written in the same transaction as the change itself.

Domains below the segment engine (contacts, events, the Teams sync, org moves) call
``record`` when they change data a segment may depend on; the row commits or rolls back
with the change, so no refresh is ever lost and a dry run leaves nothing behind. After a
commit that recorded changes, the wakers registered with ``install_waker`` run (the web
app and the worker register one that queues the segment job); the worker's periodic task
drains whatever is left, so a lost wake-up only delays a refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from gatherly.core.db import Base, UTCDateTime, utcnow

CONTACT = "contact"  # contact_ids changed (created, edited, assigned, moved BU)
EVENT = "event"  # the event ref_id changed, or its registrations or attendance did
MARKETING_LIST = "marketing_list"  # contact_ids joined or left list ref_id
OWNER = "owner"  # the records of user or team ref_id moved BU (segment scopes follow owners)
SEGMENT = "segment"  # segment ref_id's definition or scope changed: recompute it
ALL = "all"  # everything may have changed (the BU-scoping switch flipped, a BU re-parented)
ACCESS = "access"  # what users may read changed: a role given, taken, edited; a team's members
INTERACTION = "interaction"  # contact_ids opened, clicked, visited or submitted something
LEAD = "lead"  # the leads whose ids are in contact_ids changed (made, edited, linked)
SCORE = "score"  # scoring model ref_id's scores of contact_ids changed
SCORING_MODEL = "scoring_model"  # scoring model ref_id changed: it is due a full rescore
TOPICS = (
    CONTACT,
    EVENT,
    MARKETING_LIST,
    OWNER,
    SEGMENT,
    ALL,
    ACCESS,
    INTERACTION,
    LEAD,
    SCORE,
    SCORING_MODEL,
)

_FLAG = "gatherly.data_changed"


class DataChange(Base):
    """One change someone downstream may need to react to."""

    __tablename__ = "data_change"
    __table_args__ = (Index("ix_data_change_topic", "topic", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(30))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    contact_ids: Mapped[list[int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def record(
    db: Session, topic: str, *, ref_id: int | None = None, contact_ids: Iterable[int] | None = None
) -> None:
    """Note a change in the current transaction (``contact_ids`` None means "not known")."""
    if topic not in TOPICS:
        raise ValueError(f"unknown change topic {topic!r}")
    ids = None if contact_ids is None else sorted(set(contact_ids))
    if ids is not None and not ids:
        return
    db.add(DataChange(topic=topic, ref_id=ref_id, contact_ids=ids))
    db.info[_FLAG] = True


def install_waker(factory: sessionmaker[Session], wake: Callable[[], Any]) -> None:
    """Call ``wake`` after every commit of a session from ``factory`` that recorded changes."""

    def _after_commit(session: Session) -> None:
        if session.info.pop(_FLAG, False):
            wake()

    def _after_rollback(session: Session) -> None:
        session.info.pop(_FLAG, None)

    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_soft_rollback", lambda s, _t: _after_rollback(s))


def oldest_pending_at(factory: sessionmaker[Session]) -> datetime | None:
    """When the oldest change still in the outbox was recorded (None: none is waiting);
    the segment refresh lag an operator alerts on (docs/operations.md, "Metrics")."""
    with factory() as db:
        return db.scalar(select(DataChange.created_at).order_by(DataChange.id).limit(1))
