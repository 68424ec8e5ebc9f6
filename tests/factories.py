"""Helpers that build organisations for tests through the real services."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.access.levels import Level, Privilege, rights_mask
from gatherly.access.models import RecordShare
from gatherly.contact.models import Contact
from gatherly.event.models import EventAttendance, EventRegistration, MarketingEvent
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.org.models import BusinessUnit, Team, User


def bu(db: Session, name: str, parent: BusinessUnit | None = None) -> BusinessUnit:
    """A BU under ``parent`` (the root when None)."""
    return org.create_bu(db=db, name=name, parent_id=(parent or org.get_root(db=db)).id)


def role(
    db: Session,
    name: str,
    level: Level,
    record_type: str = "contact",
    privileges: tuple[str, ...] = ("read",),
) -> int:
    """A custom role granting ``privileges`` on ``record_type`` at ``level``; returns its id."""
    return org.create_role(
        db=db, name=name, privileges={record_type: dict.fromkeys(privileges, level)}
    ).id


def user(db: Session, name: str, home: BusinessUnit | None = None, *roles: int | str) -> User:
    """A user in ``home`` with roles given by id or built-in name."""
    u = org.create_user(db=db, username=name, business_unit_id=None if home is None else home.id)
    for r in roles:
        role_id = r if isinstance(r, int) else org.get_role_by_name(db=db, name=r).id
        org.assign_role(db=db, role_id=role_id, user_id=u.id)
    return u


def team(
    db: Session, name: str, home: BusinessUnit, *members: User, roles: tuple[int | str, ...] = ()
) -> Team:
    """An owner team in ``home`` with members and roles."""
    t = org.create_team(db=db, name=name, business_unit_id=home.id)
    for m in members:
        org.add_member(db=db, team_id=t.id, user_id=m.id)
    for r in roles:
        role_id = r if isinstance(r, int) else org.get_role_by_name(db=db, name=r).id
        org.assign_role(db=db, role_id=role_id, team_id=t.id)
    return t


def contact(db: Session, owner: User | Team, *, bu_id: int | None = None, **fields: Any) -> Contact:
    """A contact owned by a user or team, in the owner's BU unless ``bu_id`` says otherwise."""
    owner_type = "team" if isinstance(owner, Team) else "user"
    record = Contact(
        owner_type=owner_type,
        owner_id=owner.id,
        owning_bu_id=bu_id if bu_id is not None else owner.business_unit_id,
        **fields,
    )
    db.add(record)
    db.flush()
    return record


def principal(db: Session, u: User) -> Principal:
    """The user's principal, loaded fresh."""
    return load_principal(db, u.id)


def token(db: Session, u: User) -> dict[str, str]:
    """Authorization headers with a new API token for ``u`` (committed)."""
    _t, secret = org.create_token(db=db, user_id=u.id, name="test")
    db.commit()
    return {"Authorization": f"Bearer {secret}"}


def event(db: Session, owner: User, name: str = "Webinar", **fields: Any) -> MarketingEvent:
    """A marketing event owned by ``owner`` in the owner's BU."""
    record = MarketingEvent(
        name=name,
        owner_type="user",
        owner_id=owner.id,
        owning_bu_id=owner.business_unit_id,
        **fields,
    )
    db.add(record)
    db.flush()
    return record


def registration(
    db: Session, ev: MarketingEvent, person: Contact, status: str = "registered", **fields: Any
) -> EventRegistration:
    """A registration of ``person`` for ``ev``, owned like the event (B10)."""
    record = EventRegistration(
        event_id=ev.id,
        external_id=f"reg-{ev.id}-{person.id}",
        email=person.email,
        status=status,
        contact_id=person.id,
        owner_type=ev.owner_type,
        owner_id=ev.owner_id,
        owning_bu_id=ev.owning_bu_id,
        **fields,
    )
    db.add(record)
    db.flush()
    return record


def attendance(
    db: Session, ev: MarketingEvent, person: Contact, seconds: int = 1800, **fields: Any
) -> EventAttendance:
    """``person`` attended ``ev`` for ``seconds``, owned like the event (B10)."""
    record = EventAttendance(
        event_id=ev.id,
        person_key=person.email or f"id:{person.id}",
        email=person.email,
        contact_id=person.id,
        total_seconds=seconds,
        owner_type=ev.owner_type,
        owner_id=ev.owner_id,
        owning_bu_id=ev.owning_bu_id,
        **fields,
    )
    db.add(record)
    db.flush()
    return record


def share_with_organization(db: Session, record_type: str, record_id: int) -> None:
    """Share a record (read) with the whole organisation, committed."""
    db.add(
        RecordShare(
            record_type=record_type,
            record_id=record_id,
            principal_type="organization",
            principal_id=0,
            rights=rights_mask({Privilege.READ}),
        )
    )
    db.commit()


def csv_text(rows: list[dict[str, str]]) -> str:
    """A CSV file's text: a header line from the first row's keys, then the rows."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
