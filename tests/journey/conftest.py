"""A small organisation for the journey tests: two business units, a ready message, a list
holding contacts of both units, and a clock the tests move by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access.engine import Principal
from gatherly.contact.schemas import OwnerRef
from gatherly.email import service as email_service
from gatherly.email.schemas import ContentSettingIn, MessageIn
from gatherly.journey import engine
from gatherly.journey.models import JourneyAction, JourneyMember
from gatherly.org import service as org_service
from gatherly.org.models import BusinessUnit, User
from gatherly.segment import service as segment_service
from tests import factories as f

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
HTML = '<p>Hi {{ contact.first_name }}</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'


@dataclass
class World:
    sales: BusinessUnit
    support: BusinessUnit
    admin: User
    marketer: User  # Marketer in Sales
    helper: User  # Marketer in Support
    message: int
    second: int
    list_id: int
    sales_people: list[int]
    support_people: list[int]
    factory: sessionmaker[Session]
    extra: dict[str, Any] = field(default_factory=dict)

    def principal(self, db: Session, who: User | None = None) -> Principal:
        return f.principal(db, who or self.marketer)

    def tick(self, at: datetime) -> engine.TickReport:
        return engine.tick(self.factory, now=at)


@pytest.fixture
def world(db: Session, session_factory: sessionmaker[Session]) -> World:
    return build_world(db, session_factory)


def build_world(db: Session, session_factory: sessionmaker[Session]) -> World:
    """The organisation above, committed."""
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    admin = f.user(db, "admin", None, "System Administrator")
    marketer = f.user(db, "marketer", sales, "Marketer")
    helper = f.user(db, "helper", support, "Marketer")
    boss = f.principal(db, admin)
    setting = email_service.create_content_setting(
        db=db,
        principal=boss,
        setting_in=ContentSettingIn(
            name="Org", sender_email="news@org.example", postal_address="1 Main St"
        ),
    )
    email_service.set_default(
        db=db, principal=boss, setting_id=setting.id, default_for="organization"
    )
    mine = f.principal(db, marketer)
    messages = []
    for name in ("Invite", "Reminder"):
        message = email_service.create_message(
            db=db,
            principal=mine,
            message_in=MessageIn(
                name=name, subject=f"{name} {{{{ contact.first_name }}}}", html=HTML
            ),
        )
        email_service.make_ready(
            db=db, principal=mine, message_id=message.id, public_url="https://x.example"
        )
        messages.append(message.id)
    sales_people = [
        f.contact(db, marketer, first_name=n, email=f"{n.lower()}@s.example").id
        for n in ("Ada", "Bob")
    ]
    support_people = [
        f.contact(db, helper, first_name=n, email=f"{n.lower()}@h.example").id
        for n in ("Cyd", "Dee")
    ]
    mlist = segment_service.create_list(
        db=db, principal=boss, name="Webinar people", owner=OwnerRef(type="user", id=marketer.id)
    )
    segment_service.add_to_list(
        db=db, principal=boss, list_id=mlist.id, contact_ids=sales_people + support_people
    )
    db.commit()
    return World(
        sales, support, admin, marketer, helper, messages[0], messages[1], mlist.id,
        sales_people, support_people, session_factory,
    )  # fmt: skip


def members(db: Session, journey_id: int) -> dict[int | None, tuple[str, str | None]]:
    """contact id → (status, step) of a journey's members."""
    db.expire_all()
    rows = db.scalars(select(JourneyMember).where(JourneyMember.journey_id == journey_id))
    return {m.contact_id: (m.status, m.step) for m in rows}


def actions(db: Session, journey_id: int) -> list[tuple[int | None, str, str]]:
    """(contact, step, outcome) of every action, contact by contact, each in order."""
    db.expire_all()
    rows = db.scalars(
        select(JourneyAction)
        .where(JourneyAction.journey_id == journey_id)
        .order_by(JourneyAction.contact_id, JourneyAction.id)
    )
    return [(a.contact_id, a.step, a.outcome) for a in rows]


def scoping(db: Session, on: bool) -> None:
    org_service.set_feature(db=db, name=org_service.BU_SCOPING, enabled=on, by_user_id=None)
    db.commit()
