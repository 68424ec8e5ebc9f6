"""Event lists page through every event the viewer may read, start date or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gatherly.event import service
from gatherly.event.models import MarketingEvent
from gatherly.org.directory import load_principal
from tests import factories


def _event(db: Session, owner_id: int, bu_id: int, name: str, start: datetime | None) -> int:
    event = MarketingEvent(
        name=name, start_at=start, owner_type="user", owner_id=owner_id, owning_bu_id=bu_id
    )
    db.add(event)
    db.flush()
    return event.id


def test_paging_by_start_date_visits_every_event_once_including_undated(db: Session) -> None:
    emea = factories.bu(db, "EMEA")
    owner = factories.user(db, "owner", emea, "Marketer")
    outsider = factories.user(db, "outsider", factories.bu(db, "Americas"), "Marketer")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    ids = {
        _event(db, owner.id, emea.id, f"e{i}", None if i % 3 == 0 else base + timedelta(days=i % 4))
        for i in range(11)
    }
    db.commit()
    viewer = load_principal(db, owner.id)
    for sort in ("-start_at", "start_at", "name", "-attendee_count"):
        seen: list[int] = []
        cursor = None
        while True:
            page = service.list_events(db=db, principal=viewer, sort=sort, cursor=cursor, limit=2)
            seen += [e.id for e in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids), sort
    assert service.count_events(db=db, principal=viewer) == 11
    stranger = load_principal(db, outsider.id)
    assert service.list_events(db=db, principal=stranger).items == []
    assert service.count_events(db=db, principal=stranger) == 0


def test_name_and_organizer_filters_ignore_case_and_take_wildcards_literally(
    db: Session,
) -> None:
    emea = factories.bu(db, "EMEA")
    owner = factories.user(db, "owner", emea, "Marketer")
    mixed = factories.event(
        db,
        owner,
        "100% Growth_Summit",
        organizer_name="Olga",
        organizer_email="Olga.K@Contoso.Example",
    )
    factories.event(
        db, owner, "1000 Growth Summit", organizer_name="Ben", organizer_email="ben@x.example"
    )
    db.commit()
    viewer = load_principal(db, owner.id)

    def names(**flt: str) -> list[str]:
        found = service.list_events(db=db, principal=viewer, flt=service.EventFilter(**flt))
        return [e.name for e in found.items]

    assert names(organizer="olga.k@contoso") == [mixed.name]  # the stored email has capitals
    assert names(organizer="OLGA") == [mixed.name]
    assert names(q="100%") == [mixed.name]  # not "100 followed by anything"
    assert names(q="growth_summit") == [mixed.name]  # _ is not "any one character"
