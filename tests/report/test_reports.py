"""Reports (issue 18, SPEC T6): the built-in reports, groupings, measures and filters, the
same report counting differently for viewers of different business units, charts drawn
without script, CSV through the one writer, and dashboards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gatherly.contact import imports
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core.exceptions import NotFound, ValidationFailed
from gatherly.report import service
from tests import factories as f

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NOV, OCT = datetime(2026, 11, 10, 9, tzinfo=UTC), datetime(2026, 10, 5, 9, tzinfo=UTC)


@pytest.fixture
def org(db: Session) -> dict[str, Any]:
    sales, support = f.bu(db, "Sales"), f.bu(db, "Support")
    boss = f.user(db, "boss", None, "Marketing Administrator")
    seller = f.user(db, "seller", sales, "Marketer")
    helper = f.user(db, "helper", support, "Marketer")
    people = [
        f.contact(db, seller, email=f"s{i}@example.com", country="DE", origin="teams_sync")
        for i in range(4)
    ]
    people.append(f.contact(db, helper, email="h0@example.com", country="FR", origin="form"))
    nov = f.event(db, seller, "November launch", start_at=NOV, event_type="webinar")
    octo = f.event(db, seller, "October recap", start_at=OCT, event_type="webinar")
    theirs = f.event(db, helper, "Support clinic", start_at=NOV, event_type="webinar")
    for p in people[:4]:
        f.registration(db, nov, p)
    f.attendance(db, nov, people[0], seconds=40 * 60)
    f.attendance(db, nov, people[1], seconds=20 * 60)
    f.registration(db, octo, people[2])
    f.registration(db, octo, people[3], status="canceled")
    f.attendance(db, octo, people[2], seconds=60 * 60)
    f.registration(db, theirs, people[4])
    f.attendance(db, theirs, people[4], seconds=30 * 60)
    db.commit()
    return {"boss": boss, "seller": seller, "helper": helper, "nov": nov, "people": people}


def _rows(run: service.Run) -> list[list[Any]]:
    return run.result.table()


def test_webinar_performance_counts_what_each_viewer_may_read(
    db: Session, org: dict[str, Any]
) -> None:
    """The same built-in report shows the seller (Sales) Sales's webinars, the helper
    (Support) Support's, and the organization-level administrator both."""

    def run(who: str) -> list[list[Any]]:
        principal = f.principal(db, org[who])
        return _rows(
            service.run_report(db=db, principal=principal, builtin="webinar-performance", now=T0)
        )

    # month, events, registrants, attendees, rate, avg minutes, cancellations, no-shows
    assert run("seller") == [
        ["2026-10", 1, 1, 1, 1.0, 60.0, 1, 0],
        ["2026-11", 1, 4, 2, 0.5, 30.0, 0, 2],
    ]
    assert run("helper") == [["2026-11", 1, 1, 1, 1.0, 30.0, 0, 0]]
    assert run("boss") == [
        ["2026-10", 1, 1, 1, 1.0, 60.0, 1, 0],
        ["2026-11", 2, 5, 3, 0.6, 30.0, 0, 2],
    ]
    by_event = service.run_report(
        db=db,
        principal=f.principal(db, org["seller"]),
        builtin="webinar-performance-by-event",
        now=T0,
    )
    keys = [row[0][0] for row in by_event.result.rows]
    assert [k.label for k in keys] == ["November launch", "October recap"]
    assert keys[0].record_type == "marketing_event"
    assert keys[0].record_id == org["nov"].id


def test_groupings_filters_and_the_contact_acquisition_report(
    db: Session, org: dict[str, Any]
) -> None:
    boss = f.principal(db, org["boss"])
    acquisition = service.run_report(db=db, principal=boss, builtin="contact-acquisition", now=T0)
    month = datetime.now(UTC).strftime("%Y-%m")
    assert _rows(acquisition) == [[month, "form", 1], [month, "teams_sync", 4]]
    assert acquisition.svg is not None
    assert "<script" not in acquisition.svg
    assert "teams_sync" in acquisition.svg

    # Attendance of German contacts who attended at least 30 minutes, by event.
    definition = {
        "source": "attendance",
        "filters": {"contact": {"contact": {"country": "DE"}}, "event": {"type": "webinar"}},
        "group_by": ["event"],
        "measures": ["attendees", "sum_minutes", "avg_minutes"],
        "chart": "table",
    }
    run = service.run_report(db=db, principal=boss, definition=definition, now=T0)
    assert _rows(run) == [["November launch", 2, 60.0, 30.0], ["October recap", 1, 60.0, 60.0]]
    assert run.svg is None
    by_country = service.run_report(
        db=db,
        principal=boss,
        definition={
            "source": "registrations",
            "group_by": ["country"],
            "measures": ["registrants"],
        },
        now=T0,
    )
    assert _rows(by_country) == [["DE", 4], ["FR", 1]]


def test_bad_definitions_name_the_field(db: Session, org: dict[str, Any]) -> None:
    boss = f.principal(db, org["boss"])

    def refused(definition: dict[str, Any]) -> str:
        with pytest.raises(ValidationFailed) as caught:
            service.create_report(db=db, principal=boss, name="Bad", definition=definition)
        return str(caught.value.field)

    assert refused({"source": "webinars", "measures": ["events"]}) == "definition.source"
    assert refused({"source": "events", "measures": ["opened"]}) == "definition.measures[0]"
    assert (
        refused({"source": "events", "group_by": ["country"], "measures": ["events"]})
        == "definition.group_by[0]"
    )
    assert (
        refused(
            {"source": "contacts", "filters": {"event": {"type": "x"}}, "measures": ["contacts"]}
        )
        == "definition.filters.event"
    )
    assert (
        refused(
            {
                "source": "events",
                "filters": {"event": {"start": {"after": "31-02-2026"}}},
                "measures": ["events"],
            }
        )
        == "definition.filters.event.start"
    )
    assert refused({"source": "events", "measures": []}) == "definition.measures"


def test_saved_reports_exports_and_dashboards_follow_access(
    db: Session, org: dict[str, Any]
) -> None:
    seller, helper = f.principal(db, org["seller"]), f.principal(db, org["helper"])
    mine = service.copy_builtin(db=db, principal=seller, key="webinar-performance-by-event")
    service.update_report(db=db, principal=seller, report_id=mine.id, changes={"name": "=Launches"})
    db.commit()
    run = service.run_report(db=db, principal=seller, report_id=mine.id, now=T0)
    export = service.export_csv(run)
    text = "".join(export.chunks)
    assert text.splitlines()[0].startswith("Event,Registrants,Attendees,Attendance rate")
    assert "November launch,4,2,0.5,30.0,0,2" in text
    with pytest.raises(NotFound):
        service.run_report(db=db, principal=helper, report_id=mine.id)
    board = service.create_dashboard(
        db=db,
        principal=seller,
        name="Webinars",
        items=[{"report": mine.id}, {"builtin": "email-performance"}],
    )
    db.commit()
    _row, panels = service.run_dashboard(db=db, principal=seller, dashboard_id=board.id, now=T0)
    assert [p.run.name if p.run else p.problem for p in panels] == [
        "=Launches",
        "Email performance",
    ]
    with pytest.raises(NotFound, match=r"report \d+ not found"):
        service.create_dashboard(db=db, principal=helper, name="Peek", items=[{"report": mine.id}])
    assert service.find(db=db, principal=seller, name="=launches") == {"report_id": mine.id}
    assert service.find(db=db, principal=seller, name="email-performance") == {
        "builtin": "email-performance"
    }


def test_contacts_made_by_import_count_as_imported(db: Session, org: dict[str, Any]) -> None:
    seller = f.principal(db, org["seller"])
    report = imports.import_csv(
        db=db, principal=seller, kind=contact_service.CONTACT, text="email\nnew@example.com\n"
    )
    assert report.count("created") == 1
    made = db.query(Contact).filter(Contact.email == "new@example.com").one()
    assert made.origin == "import"
    assert made.created_at > T0 - timedelta(days=3650)
