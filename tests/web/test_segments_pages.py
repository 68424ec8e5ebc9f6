"""Segment and marketing-list pages (issue 5): the criteria builder with its live count,
segment and list pages, refresh, CSV export and import, and what a viewer may see (SPEC B5).

The organisation: Germany (gustav, Marketer) and France (francoise, Marketer) with mara, a
Marketing Administrator at the root. Anna and Bernd are German contacts; Claire is a French
contact whose country is DE (so criteria alone would put her in a DE segment) and Zoé a
French one from FR. Anna attended gustav's Berlin webinar; Claire francoise's Paris launch.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.contact.models import Contact
from gatherly.event.models import MarketingEvent
from gatherly.org import service as org
from gatherly.org.models import User
from gatherly.segment import service as seg
from gatherly.segment.models import MarketingList, MarketingListMember, Segment
from tests import factories as f
from tests.web.conftest import (
    Live,
    client_sign_in,
    no_horizontal_scroll,
    shot,
    sign_in,
    with_password,
)

DE = {"contact": {"country": {"equals": "DE"}}}


@dataclass
class Acme:
    """The organisation of this file's tests."""

    db: Session
    gustav: User
    francoise: User
    mara: User
    anna: Contact
    bernd: Contact
    claire: Contact
    zoe: Contact
    berlin: MarketingEvent
    paris: MarketingEvent

    def segment(self, who: User, tree: Any = DE, **kw: Any) -> Segment:
        made = seg.create_segment(
            db=self.db,
            principal=f.principal(self.db, who),
            name=kw.pop("name", "German contacts"),
            criteria=tree,
            **kw,
        )
        self.db.commit()
        return made

    def mlist(self, who: User, name: str = "VIPs", *members: Contact) -> MarketingList:
        made = seg.create_list(db=self.db, principal=f.principal(self.db, who), name=name)
        if members:
            seg.add_to_list(
                db=self.db,
                principal=f.principal(self.db, who),
                list_id=made.id,
                contact_ids=[c.id for c in members],
            )
        self.db.commit()
        return made

    def count(self, model: Any) -> int:
        self.db.expire_all()
        return int(self.db.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def acme(db: Session) -> Acme:
    germany, france = f.bu(db, "Germany"), f.bu(db, "France")
    gustav = with_password(db, f.user(db, "gustav", germany, "Marketer"))
    francoise = with_password(db, f.user(db, "francoise", france, "Marketer"))
    mara = with_password(db, f.user(db, "mara", None, "Marketing Administrator"))
    anna = f.contact(
        db,
        gustav,
        first_name="Anna",
        last_name="Schmidt",
        email="anna@example.de",
        country="DE",
        company="Kraftwerk GmbH",
    )
    bernd = f.contact(
        db, gustav, first_name="Bernd", last_name="Weber", email="bernd@example.de", country="DE"
    )
    claire = f.contact(
        db,
        francoise,
        first_name="Claire",
        last_name="Martin",
        email="claire@example.fr",
        country="DE",
    )
    zoe = f.contact(
        db, francoise, first_name="Zoé", last_name="Laurent", email="zoe@example.fr", country="FR"
    )
    berlin = f.event(db, gustav, "Berlin webinar")
    paris = f.event(db, francoise, "Paris launch")
    f.attendance(db, berlin, anna)
    f.attendance(db, paris, claire)
    db.commit()
    return Acme(db, gustav, francoise, mara, anna, bernd, claire, zoe, berlin, paris)


# ---------------------------------------------------------------- TestClient helpers


class Signed:
    """A TestClient signed in as one user, with that session's CSRF token."""

    def __init__(self, client: TestClient, username: str) -> None:
        self.client = client
        self.token = client_sign_in(client, username)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, follow_redirects=False, **kw)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(
            url, data={"csrf": self.token, **(data or {})}, follow_redirects=False, **kw
        )


@pytest.fixture
def as_user(client: TestClient) -> Callable[[str], Signed]:
    """Sign the test client in as a user (signing out whoever was signed in)."""

    return lambda username: Signed(client, username)


def _form(name: str = "DE attendees", **rows: Any) -> dict[str, Any]:
    """A builder form: country = DE, plus ``extra`` fields."""
    data: dict[str, Any] = {
        "action": "save",
        "name": name,
        "description": "",
        "scope": "business_unit",
        "match": "all",
        "row_count": "1",
        "row-0-kind": "contact",
        "row-0-field": "country",
        "row-0-op": "equals",
        "row-0-value": "DE",
    }
    data.update(rows)
    return data


# ---------------------------------------------------------------- builder and forms


def test_the_builder_saves_what_the_rows_say(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    form = _form(
        row_count="2",
        match="all",
        **{"row-1-kind": "participation", "row-1-participation": "attended", "row-1-event": ""},
    )
    response = gustav.post("/segments", form)
    assert response.status_code == 303, response.text[:2000]
    made = acme.db.execute(select(Segment)).scalar_one()
    assert response.headers["location"] == f"/segments/{made.id}"
    assert made.criteria == {
        "all": [{"contact": {"country": {"equals": "DE"}}}, {"participation": "attended"}]
    }
    assert made.scope == "business_unit"
    assert made.owner_id == acme.gustav.id


def test_rows_round_trip_and_nested_trees_are_edited_as_json(acme: Acme, as_user: Any) -> None:
    flat = {
        "any": [
            {"contact": {"custom.tier": {"in": ["gold", "silver"]}}},
            {"participation": "not_attended", "event": {"id": acme.berlin.id}},
            {"contact": {"created_at": {"in_last_days": 30}}},
        ]
    }
    nested = {"all": [DE, {"not": {"participation": "attended"}}]}
    one = acme.segment(acme.gustav, flat, name="Flat")
    two = acme.segment(acme.gustav, nested, name="Nested")
    gustav = as_user("gustav")
    page = gustav.get(f"/segments/{one.id}/edit").text
    assert 'name="row_count" value="3"' in page
    assert 'value="custom" selected' in page
    assert 'value="gold, silver"' in page
    assert f'<option value="{acme.berlin.id}" selected>Berlin webinar' in page
    assert "Paris launch" not in page  # an event gustav may not read is never offered
    nested_page = gustav.get(f"/segments/{two.id}/edit").text
    assert 'name="mode" value="json"' in nested_page
    assert 'name="row_count"' not in nested_page
    # Saving the unchanged forms leaves the criteria as they were.
    response = gustav.post(
        f"/segments/{two.id}",
        {
            "action": "save",
            "name": "Nested",
            "scope": "business_unit",
            "mode": "json",
            "criteria_json": '{"all": [{"contact": {"country": {"equals": "DE"}}}, '
            '{"not": {"participation": "attended"}}]}',
        },
    )
    assert response.status_code == 303
    acme.db.expire_all()
    assert acme.db.get(Segment, two.id).criteria == nested  # type: ignore[union-attr]


def test_add_and_remove_rows_rerender_without_saving(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    added = gustav.post("/segments", _form(action="add_participation"))
    assert added.status_code == 200
    assert 'name="row_count" value="2"' in added.text
    assert 'id="row-1-participation"' in added.text
    assert "Berlin webinar" in added.text
    assert "Paris launch" not in added.text
    removed = gustav.post("/segments", _form(action="remove_0"))
    assert 'name="row_count" value="0"' in removed.text
    assert acme.count(Segment) == 0


def test_edit_as_json_and_back_to_rows(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    to_json = gustav.post("/segments", _form(action="edit_json"))
    assert to_json.status_code == 200
    assert 'name="mode" value="json"' in to_json.text
    assert "&#34;country&#34;: {\n" in to_json.text  # the rows' tree, ready to edit
    flat = gustav.post(
        "/segments",
        _form(action="apply_json", mode="json", criteria_json='{"contact": {"country": "FR"}}'),
    )
    assert 'name="row_count" value="1"' in flat.text
    assert 'value="FR"' in flat.text
    nested = '{"not": {"contact": {"country": "DE"}}}'
    kept = gustav.post("/segments", _form(action="apply_json", mode="json", criteria_json=nested))
    assert 'name="mode" value="json"' in kept.text  # rows cannot show a "not"
    saved = gustav.post("/segments", _form(mode="json", criteria_json=nested))
    assert saved.status_code == 303, saved.text[:2000]
    assert acme.db.execute(select(Segment.criteria)).scalar_one() == {
        "not": {"contact": {"country": "DE"}}
    }


def test_criteria_errors_show_inline_and_save_nothing(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    bad_row = gustav.post("/segments", _form(**{"row-0-field": "id", "row-0-value": "abc"}))
    assert bad_row.status_code == 422
    assert 'id="row-0-error"' in bad_row.text
    assert "criteria.all[0].contact.id: &#39;abc&#39; is not a whole number" in bad_row.text
    assert 'aria-invalid="true" aria-describedby="row-0-error"' in bad_row.text
    bad_json = gustav.post(
        "/segments",
        _form(
            mode="json",
            criteria_json='{"any": [{"contact": {"country": "DE"}}, {"participation": '
            '"attended", "event": {"start": {"after": "31-02-2026"}}}]}',
        ),
    )
    assert bad_json.status_code == 422
    assert "criteria.any[1].event.start: &#39;31-02-2026&#39; is not a date" in bad_json.text
    assert 'id="criteria-error"' in bad_json.text
    not_json = gustav.post("/segments", _form(mode="json", criteria_json="{all: ["))
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.text
    no_name = gustav.post("/segments", _form(name="  "))
    assert no_name.status_code == 422
    assert 'id="name-error"' in no_name.text
    assert "Give it a name." in no_name.text
    # An event gustav may not read is refused by id, as if it did not exist.
    hidden_event = gustav.post(
        "/segments",
        _form(
            row_count="1",
            **{"row-0-kind": "participation", "row-0-event": str(acme.paris.id)},
        ),
    )
    assert hidden_event.status_code == 422
    assert f"marketing event {acme.paris.id} not found" in hidden_event.text
    assert "Paris launch" not in hidden_event.text
    assert acme.count(Segment) == 0


def test_only_organization_level_marketers_are_offered_organization_scope(
    acme: Acme, as_user: Any
) -> None:
    gustav = as_user("gustav")
    assert 'value="organization"' not in gustav.get("/segments/new").text
    forged = gustav.post("/segments", _form(scope="organization"))
    assert forged.status_code == 422
    assert 'id="scope-error"' in forged.text
    assert acme.count(Segment) == 0
    mara = as_user("mara")
    assert 'value="organization"' in mara.get("/segments/new").text
    assert mara.post("/segments", _form(scope="organization")).status_code == 303
    assert acme.db.execute(select(Segment.scope)).scalar_one() == "organization"


def test_a_new_segment_starts_without_conditions_and_asks_for_one(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    page = gustav.get("/segments/new").text
    assert "No conditions yet" in page
    assert 'name="row_count" value="0"' in page
    assert 'name="row-0-field"' not in page
    assert "Add a condition to see who is in the segment." in page
    empty = gustav.post("/segments", _form(row_count="0"))
    assert empty.status_code == 422
    assert "Add at least one condition" in empty.text
    assert acme.count(Segment) == 0


def test_the_scope_defaults_to_what_applies_and_explains_itself(acme: Acme, as_user: Any) -> None:
    # Scoping off: organization is what applies, so those who may choose it start there.
    mara = as_user("mara").get("/segments/new").text
    assert '<option value="organization" selected>' in mara
    assert "Business unit scoping is off in this installation" in mara
    gustav = as_user("gustav").get("/segments/new").text
    assert 'value="organization"' not in gustav
    assert '<option value="business_unit" selected>' in gustav
    org.set_feature(db=acme.db, name=org.BU_SCOPING, enabled=True, by_user_id=None)
    acme.db.commit()
    scoped = as_user("mara").get("/segments/new").text
    assert '<option value="business_unit" selected>' in scoped
    assert "Organization: contacts of every business unit." in scoped
    assert "scoping is off" not in scoped


def test_event_rows_find_events_by_name_among_those_the_viewer_may_read(
    acme: Acme, as_user: Any
) -> None:
    gustav = as_user("gustav")
    row = {"row-0-kind": "participation", "row-0-participation": "attended"}
    found = gustav.post("/segments", _form(action="update", **row, **{"row-0-event_q": "berl"}))
    assert found.status_code == 200
    assert f'<option value="{acme.berlin.id}">Berlin webinar</option>' in found.text
    hidden = gustav.post("/segments", _form(action="update", **row, **{"row-0-event_q": "Paris"}))
    assert "No event you can read has “Paris” in its name" in hidden.text
    assert "Paris launch" not in hidden.text
    # The minutes apply to "attended" only, and say so by showing only there.
    assert 'id="row-0-min"' in found.text
    registered = gustav.post(
        "/segments", _form(action="update", **{**row, "row-0-participation": "registered"})
    )
    assert 'id="row-0-min"' not in registered.text
    saved = gustav.post(
        "/segments",
        _form(
            row_count="1",
            **row,
            **{"row-0-event": str(acme.berlin.id), "row-0-min": "20", "row-0-max": "90.5"},
        ),
    )
    assert saved.status_code == 303, saved.text[:2000]
    assert acme.db.execute(select(Segment.criteria)).scalar_one() == {
        "all": [
            {
                "participation": "attended",
                "event": {"id": acme.berlin.id},
                "min_minutes": 20,
                "max_minutes": 90.5,
            }
        ]
    }


def test_show_as_rows_takes_any_flat_tree_and_says_why_not_otherwise(
    acme: Acme, as_user: Any
) -> None:
    gustav = as_user("gustav")

    def apply(tree: Any) -> str:
        form = _form(action="apply_json", mode="json", criteria_json=json.dumps(tree))
        return str(gustav.post("/segments", form).text)

    rows = apply(
        {
            "all": [
                {"contact": {"country": "DE", "company": {"contains": "gmbh"}}},
                {
                    "participation": "attended",
                    "event": {"id": {"equals": acme.berlin.id}},
                    "min_minutes": 30,
                },
            ]
        }
    )
    assert 'name="row_count" value="3"' in rows  # two contact fields are two rows under all
    assert 'id="row-2-min" name="row-2-min" value="30"' in rows
    assert f'<option value="{acme.berlin.id}" selected>Berlin webinar' in rows
    reasons = {
        "rows cannot say “not”": {"not": DE},
        "rows cannot hold a group (all / any) inside another": {"any": [{"all": [DE]}]},
        "an event condition tests the event&#39;s name; rows pick one event": {
            "participation": "attended",
            "event": {"name": {"contains": "launch"}},
        },
        "a condition inside “any” tests several contact fields at once": {
            "any": [{"contact": {"country": "DE", "company": "x"}}]
        },
    }
    for reason, tree in reasons.items():
        page = apply(tree)
        assert 'name="mode" value="json"' in page
        assert f"These criteria are shown as JSON because {reason}." in page


def test_summaries_name_what_the_viewer_may_read_and_nothing_else(acme: Acme, as_user: Any) -> None:
    vips = acme.mlist(acme.gustav, "Berlin VIPs", acme.anna)
    tree = {
        "any": [
            {"participation": "attended", "event": {"id": acme.berlin.id}, "min_minutes": 30},
            {"participation": "not_attended", "event": {"id": acme.berlin.id}},
            {"list": vips.id},
        ]
    }
    made = acme.segment(acme.gustav, tree, name="Berlin follow-up")
    page = as_user("gustav").get(f"/segments/{made.id}").text
    assert "attended “Berlin webinar” for at least 30 min" in page
    assert "registered for “Berlin webinar” but did not attend" in page
    assert "member of the list “Berlin VIPs”" in page
    assert "where id equals" not in page
    # Shared with francoise, who may read the segment but neither the event nor the list.
    f.share_with_organization(acme.db, "segment", made.id)
    acme.db.commit()
    shared = as_user("francoise").get(f"/segments/{made.id}").text
    assert f"attended an event where id equals {acme.berlin.id} for at least 30 min" in shared
    assert f"member of list {vips.id}" in shared
    assert "Berlin webinar" not in shared
    assert "Berlin VIPs" not in shared


def test_members_show_minutes_at_the_events_the_criteria_name(acme: Acme, as_user: Any) -> None:
    f.attendance(acme.db, acme.berlin, acme.bernd, seconds=10 * 60 + 20)
    tree = {"participation": "attended", "event": {"id": acme.berlin.id}}
    made = acme.segment(acme.gustav, tree, name="Berlin attendees")
    page = as_user("gustav").get(f"/segments/{made.id}").text
    assert '<th scope="col" class="num">Minutes at Berlin webinar</th>' in page
    rows = dict(
        re.findall(
            r'<a href="/contacts/\d+">([^<]+)</a>.*?<td class="num">(\d+|—)</td>', page, re.S
        )
    )
    assert rows == {"Anna Schmidt": "30", "Bernd Weber": "10"}
    assert f'href="/segments/{made.id}/explain?contact_id={acme.anna.id}"' in page
    # Shared with francoise, who may not read the Berlin webinar: no column, no name.
    f.share_with_organization(acme.db, "segment", made.id)
    acme.db.commit()
    shared = as_user("francoise").get(f"/segments/{made.id}").text
    assert "Minutes at" not in shared
    assert "Berlin webinar" not in shared


def test_why_is_a_contact_in_or_not_names_each_condition(acme: Acme, as_user: Any) -> None:
    tree = {
        "all": [
            DE,
            {"participation": "attended", "event": {"id": acme.berlin.id}, "min_minutes": 20},
        ]
    }
    made = acme.segment(acme.gustav, tree, name="Berlin, 20 minutes")
    gustav = as_user("gustav")
    base = f"/segments/{made.id}/explain"
    anna = gustav.get(f"{base}?contact_id={acme.anna.id}")
    assert anna.status_code == 200
    assert "is in the segment" in anna.text
    assert "attended “Berlin webinar” for at least 20 min" in anna.text
    bernd = gustav.get(f"{base}?contact_id={acme.bernd.id}").text
    assert "is not in the segment" in bernd
    held = re.findall(
        r'<span class="visually-hidden">(holds|does not hold):</span>\s*([^<]+?)\s*</li>', bernd
    )
    assert ("does not hold", "attended “Berlin webinar” for at least 20 min") in held
    assert ("holds", "contact country equals &#39;DE&#39;") in held
    # Found by a search among the contacts gustav may read; Claire (France) is never listed.
    found = gustav.get(f"{base}?q=bern").text
    assert f'{base}?contact_id={acme.bernd.id}"' in found
    hidden = gustav.get(f"{base}?q=claire").text
    assert "No contact you may read matches" in hidden
    assert gustav.get(f"{base}?contact_id={acme.claire.id}").status_code == 404


def test_why_not_names_the_business_units_when_the_scope_leaves_a_contact_out(
    acme: Acme, as_user: Any
) -> None:
    org.set_feature(db=acme.db, name=org.BU_SCOPING, enabled=True, by_user_id=None)
    acme.db.commit()
    made = acme.segment(acme.mara, name="DE, root BU")  # business-unit scope: the root BU
    page = as_user("mara").get(f"/segments/{made.id}/explain?contact_id={acme.anna.id}").text
    assert "is not in the segment" in page
    assert "the contact is owned in Germany, not in" in page
    assert "so it is left out whatever the conditions say" in page


def test_a_failed_update_changes_nothing(acme: Acme, as_user: Any) -> None:
    made = acme.segment(acme.gustav)
    gustav = as_user("gustav")
    response = gustav.post(
        f"/segments/{made.id}",
        _form(name="Renamed", **{"row-0-field": "created_at", "row-0-value": "yesterday"}),
    )
    assert response.status_code == 422
    acme.db.expire_all()
    again = acme.db.get(Segment, made.id)
    assert again is not None
    assert again.name == "German contacts"
    assert again.criteria == DE
    ok = gustav.post(f"/segments/{made.id}", _form(name="Renamed", **{"row-0-value": "AT"}))
    assert ok.status_code == 303
    acme.db.expire_all()
    assert acme.db.get(Segment, made.id).criteria == {  # type: ignore[union-attr]
        "all": [{"contact": {"country": {"equals": "AT"}}}]
    }


def test_the_live_count_counts_only_readable_contacts(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    one_row = gustav.post("/segments/preview", _form())
    assert one_row.status_code == 200
    # Claire (France, country DE) matches the criteria but gustav may not read her.
    assert "2 members you can see" in one_row.text
    assert "in total" not in one_row.text  # segment_totals is off
    assert 'id="criteria-tree" aria-label' in one_row.text  # the tree shown follows the rows
    assert 'hx-swap-oob="true"' in one_row.text
    mara = as_user("mara")
    assert "3 members you can see" in mara.post("/segments/preview", _form()).text
    org.set_feature(db=acme.db, name=org.SEGMENT_TOTALS, enabled=True, by_user_id=None)
    acme.db.commit()
    gustav = as_user("gustav")
    # Even with totals on, an unsaved tree has no total (it would count what gustav
    # cannot see); saved segments show theirs.
    with_totals = gustav.post("/segments/preview", _form())
    assert "2 members you can see" in with_totals.text
    assert "in total" not in with_totals.text
    broken = gustav.post("/segments/preview", _form(**{"row-0-op": "gt"}))
    assert "operator &#39;gt&#39; does not apply here" in broken.text
    as_json = gustav.post(
        "/segments/preview", _form(mode="json", criteria_json='{"contact": {"country": "FR"}}')
    )
    assert "0 members you can see" in as_json.text  # Zoé is French: not gustav's to see
    assert "hx-swap-oob" not in as_json.text  # the JSON is the person's own text


# ---------------------------------------------------------------- what a viewer may see


def test_pages_show_only_what_the_viewer_may_read(acme: Acme, as_user: Any) -> None:
    shared = acme.segment(acme.mara, name="Everyone in DE", scope="organization")
    f.share_with_organization(acme.db, "segment", shared.id)
    french = acme.segment(acme.francoise, name="French secret")
    seg.refresh(db=acme.db, segment_id=shared.id)
    acme.db.commit()
    gustav = as_user("gustav")
    index = gustav.get("/segments").text
    assert "1 segment you can see" in index
    assert "Everyone in DE" in index
    assert "French secret" not in index
    assert re.search(r'<td class="num">2</td>', index)  # Anna and Bernd, not Claire
    detail = gustav.get(f"/segments/{shared.id}")
    assert detail.status_code == 200
    assert "Anna Schmidt" in detail.text
    assert "Bernd Weber" in detail.text
    assert "Claire" not in detail.text
    assert "claire@example.fr" not in detail.text
    assert '<span class="value">2</span> members you can see' in detail.text
    assert "in total" not in detail.text
    for url in ("/segments/abc", "/segments/0", "/segments/99999999999"):
        assert gustav.get(url).status_code == 422, url  # as the API: a malformed id
    for url in (
        f"/segments/{french.id}",
        f"/segments/{french.id}/edit",
        f"/segments/{french.id}/delete",
        f"/segments/{french.id}/members.csv",
    ):
        response = gustav.get(url)
        assert response.status_code == 404, url
        assert "French secret" not in response.text
    csv = gustav.get(f"/segments/{shared.id}/members.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "anna@example.de" in csv.text
    assert "claire@example.fr" not in csv.text
    mara = as_user("mara")
    assert (
        '<span class="value">3</span> members you can see'
        in mara.get(f"/segments/{shared.id}").text
    )


def test_changes_to_a_segment_the_viewer_may_not_read_are_refused(acme: Acme, as_user: Any) -> None:
    french = acme.segment(acme.francoise, name="French secret")
    gustav = as_user("gustav")
    for url, data in (
        (f"/segments/{french.id}", _form()),
        (f"/segments/{french.id}/refresh", {}),
        (f"/segments/{french.id}/delete", {}),
        ("/segments/preview", _form(segment_id=str(french.id))),
    ):
        response = gustav.post(url, data)
        assert response.status_code == 404, url
        assert "French secret" not in response.text
    acme.db.expire_all()
    kept = acme.db.get(Segment, french.id)
    assert kept is not None
    assert kept.criteria == DE
    assert kept.refreshed_at is None


def test_refresh_reports_what_the_viewer_sees(acme: Acme, as_user: Any) -> None:
    made = acme.segment(acme.mara, scope="organization")
    f.share_with_organization(acme.db, "segment", made.id)
    gustav = as_user("gustav")
    response = gustav.post(f"/segments/{made.id}/refresh")
    assert response.status_code == 200
    assert "Members you can see: 2 before, 2 now." in response.text
    assert "added" not in response.text  # all-member adds would count Claire
    acme.db.expire_all()
    assert acme.db.get(Segment, made.id).member_total == 3  # type: ignore[union-attr]
    assert "as of the last refresh" in response.text


def test_delete_asks_first_then_deletes(acme: Acme, as_user: Any) -> None:
    made = acme.segment(acme.gustav)
    gustav = as_user("gustav")
    confirm = gustav.get(f"/segments/{made.id}/delete")
    assert confirm.status_code == 200
    assert "Delete segment" in confirm.text
    assert acme.count(Segment) == 1
    done = gustav.post(f"/segments/{made.id}/delete")
    assert done.status_code == 303
    assert done.headers["location"] == "/segments"
    assert acme.count(Segment) == 0


POSTS = [
    "/segments",
    "/segments/preview",
    "/segments/{segment}",
    "/segments/{segment}/refresh",
    "/segments/{segment}/delete",
    "/lists",
    "/lists/{list}",
    "/lists/{list}/add",
    "/lists/{list}/import",
    "/lists/{list}/remove",
    "/lists/{list}/delete",
]


def test_every_change_needs_the_csrf_token(acme: Acme, as_user: Any) -> None:
    made = acme.segment(acme.gustav)
    vips = acme.mlist(acme.gustav, "VIPs", acme.anna)
    gustav = as_user("gustav")
    data = {**_form(name="Forged"), "name": "Forged", "emails": "bernd@example.de"}
    data["contact_id"] = str(acme.anna.id)
    for path in POSTS:
        url = path.format(segment=made.id, list=vips.id)
        for token in ("", "forged"):
            response = gustav.client.post(
                url,
                data={**data, "csrf": token},
                files={"file": ("x.csv", b"email\nbernd@example.de\n", "text/csv")}
                if path.endswith("import")
                else None,
                follow_redirects=False,
            )
            assert response.status_code == 403, url
            assert "This form was refused" in response.text
    acme.db.expire_all()
    assert acme.count(Segment) == 1
    assert acme.count(MarketingList) == 1
    assert acme.db.get(Segment, made.id).name == "German contacts"  # type: ignore[union-attr]
    assert acme.db.get(MarketingList, vips.id).name == "VIPs"  # type: ignore[union-attr]
    members = acme.db.execute(select(MarketingListMember.contact_id)).scalars().all()
    assert members == [acme.anna.id]


# ---------------------------------------------------------------- marketing lists


def test_lists_show_only_readable_lists_and_members(acme: Acme, as_user: Any) -> None:
    mine = acme.mlist(acme.gustav, "Berlin VIPs", acme.anna)
    theirs = acme.mlist(acme.francoise, "Paris VIPs", acme.claire)
    everyone = acme.mlist(acme.mara, "Everyone", acme.anna, acme.claire, acme.zoe)
    f.share_with_organization(acme.db, "marketing_list", everyone.id)
    gustav = as_user("gustav")
    index = gustav.get("/lists").text
    assert "2 lists you can see" in index
    assert "Berlin VIPs" in index
    assert "Everyone" in index
    assert "Paris VIPs" not in index
    shared = gustav.get(f"/lists/{everyone.id}").text
    assert "Anna Schmidt" in shared
    assert "Claire" not in shared
    assert "Zoé" not in shared
    assert '<span class="value">1</span> member you can see' in shared
    # Shared for reading only: no forms that would change it.
    assert f'action="/lists/{everyone.id}/add"' not in shared
    assert f'action="/lists/{everyone.id}/remove"' not in shared
    assert f'href="/lists/{everyone.id}/delete"' not in shared
    assert f'action="/lists/{mine.id}/add"' in gustav.get(f"/lists/{mine.id}").text
    assert gustav.get(f"/lists/{mine.id}").status_code == 200
    for url in (f"/lists/{theirs.id}", f"/lists/{theirs.id}/delete"):
        response = gustav.get(url)
        assert response.status_code == 404
        assert "Paris VIPs" not in response.text
    for url, data in (
        (f"/lists/{theirs.id}", {"name": "Mine now"}),
        (f"/lists/{theirs.id}/add", {"emails": "anna@example.de"}),
        (f"/lists/{theirs.id}/remove", {"contact_id": str(acme.claire.id)}),
        (f"/lists/{theirs.id}/delete", {}),
    ):
        assert gustav.post(url, data).status_code == 404, url
    # Someone else's contact cannot be removed from gustav's view of a list either.
    refused = gustav.post(f"/lists/{everyone.id}/remove", {"contact_id": str(acme.claire.id)})
    assert refused.status_code in (403, 404, 422)
    acme.db.expire_all()
    assert acme.db.get(MarketingList, theirs.id).name == "Paris VIPs"  # type: ignore[union-attr]
    assert acme.count(MarketingListMember) == 5


def test_bu_names_show_only_to_viewers_who_may_read_business_units(
    acme: Acme, as_user: Any
) -> None:
    # A role reading contacts, segments and lists across the organisation, but not BUs.
    grants = {t: {"read": Level.ORGANIZATION} for t in ("contact", "segment", "marketing_list")}
    role = org.create_role(db=acme.db, name="List reader", privileges=grants)
    with_password(acme.db, f.user(acme.db, "rhea", None, role.id))
    segment = acme.segment(acme.gustav, {"contact": {"country": "DE"}})
    mlist = acme.mlist(acme.gustav, "Berlin VIPs", acme.anna)
    for who, shown in (("gustav", True), ("rhea", False)):
        viewer = as_user(who)
        for url in (f"/segments/{segment.id}", f"/lists/{mlist.id}"):
            page = viewer.get(url)
            assert page.status_code == 200, (who, url)
            assert ("Germany" in page.text) is shown, (who, url)


def test_create_rename_add_remove_and_delete_a_list(acme: Acme, as_user: Any) -> None:
    gustav = as_user("gustav")
    blank = gustav.post("/lists", {"name": " "})
    assert blank.status_code == 422
    assert "Give it a name." in blank.text
    assert 'aria-describedby="name-error"' in blank.text
    assert acme.count(MarketingList) == 0
    made = gustav.post("/lists", {"name": "Trade fair", "description": "Hall 4"})
    assert made.status_code == 303
    list_id = int(made.headers["location"].rsplit("/", 1)[1])
    assert gustav.post(f"/lists/{list_id}", {"name": ""}).status_code == 422
    assert gustav.post(f"/lists/{list_id}", {"name": "Fair 2026"}).status_code == 303
    empty = gustav.post(f"/lists/{list_id}/add", {"emails": "  "})
    assert empty.status_code == 422
    assert 'id="emails-error"' in empty.text
    added = gustav.post(
        f"/lists/{list_id}/add",
        {"emails": "anna@example.de, BERND@example.de\nclaire@example.fr; nobody@example.com"},
    )
    assert added.status_code == 200
    report = added.text
    assert '<span class="value">2</span> added' in report
    # Claire exists, but gustav may not read her: she is as unknown as nobody.
    assert "<li>claire@example.fr</li>" in report
    assert "<li>nobody@example.com</li>" in report
    assert "Anna Schmidt" in report
    assert "Bernd Weber" in report
    removed = gustav.post(f"/lists/{list_id}/remove", {"contact_id": str(acme.bernd.id)})
    assert removed.status_code == 303
    assert acme.count(MarketingListMember) == 1
    acme.db.expire_all()
    assert acme.db.get(MarketingList, list_id).name == "Fair 2026"  # type: ignore[union-attr]
    assert gustav.get(f"/lists/{list_id}/delete").status_code == 200
    assert gustav.post(f"/lists/{list_id}/delete").status_code == 303
    assert acme.count(MarketingList) == 0


def test_a_list_in_use_is_not_deleted(acme: Acme, as_user: Any) -> None:
    vips = acme.mlist(acme.gustav, "VIPs", acme.anna)
    acme.segment(acme.gustav, {"list": vips.id}, name="VIP segment")
    gustav = as_user("gustav")
    response = gustav.post(f"/lists/{vips.id}/delete")
    assert response.status_code == 409
    assert "used by 1 segment(s)" in response.text
    assert acme.count(MarketingList) == 1


def test_csv_import_reports_and_refuses_bad_files(acme: Acme, as_user: Any) -> None:
    vips = acme.mlist(acme.gustav, "VIPs", acme.anna)
    gustav = as_user("gustav")
    for content, message in (
        (b"", "Choose a CSV file"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"name,company\nAnna,Kraftwerk\n", "needs a header row with an &#39;email&#39; column"),
    ):
        response = gustav.post(
            f"/lists/{vips.id}/import", files={"file": ("x.csv", content, "text/csv")}
        )
        assert response.status_code == 422, content
        assert message in response.text
        assert 'id="file-error"' in response.text
    assert acme.count(MarketingListMember) == 1
    csv = b"name,email\nAnna,anna@example.de\nBernd,bernd@example.de\nX,not-an-email\n"
    done = gustav.post(f"/lists/{vips.id}/import", files={"file": ("x.csv", csv, "text/csv")})
    assert done.status_code == 200
    assert '<span class="value">3</span> rows read' in done.text
    assert '<span class="value">1</span> added' in done.text
    assert '<span class="value">1</span> already members' in done.text
    assert '<td class="num">4</td><td>not-an-email</td>' in done.text
    assert acme.count(MarketingListMember) == 2


# ---------------------------------------------------------------- in the browser


def test_build_a_segment_with_the_live_count_then_see_its_members(
    page: Page, acme: Acme, live: Live
) -> None:
    sign_in(page, "gustav", next="/segments")
    expect(page.get_by_role("heading", level=1)).to_have_text("Segments")
    page.get_by_role("link", name="New segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New segment")
    page.get_by_label("Name", exact=True).fill("DE webinar attendees")
    count = page.locator("#live-count")
    expect(count).to_have_text("Add a condition to see who is in the segment.")
    page.get_by_role("button", name="Add contact condition").click()
    page.get_by_label("Value").fill("DE")
    expect(count).to_have_text("2 members you can see")  # Anna, Bernd; not Claire (France)
    page.get_by_label("Value").fill("FR")
    expect(count).to_have_text("0 members you can see")  # Zoé is French: gustav cannot see her
    page.get_by_label("Value").fill("DE")
    expect(count).to_have_text("2 members you can see")
    page.get_by_role("button", name="Add event condition").click()
    condition = page.get_by_role("group", name="Condition 2")
    expect(condition.get_by_label("Event", exact=True)).to_contain_text("Berlin webinar")
    expect(condition.get_by_label("Event", exact=True)).not_to_contain_text("Paris launch")
    condition.get_by_label("The contact").select_option("attended")
    expect(count).to_have_text("1 member you can see")
    page.get_by_text("Advanced (JSON)").click()
    expect(page.locator("#criteria-tree")).to_contain_text('"participation": "attended"')
    shot(page, "segment-builder", live)
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("DE webinar attendees")
    members = page.get_by_role("table", name=re.compile("Members of"))
    expect(members.get_by_role("link", name="Anna Schmidt", exact=True)).to_have_attribute(
        "href", f"/contacts/{acme.anna.id}"
    )
    expect(members).not_to_contain_text("Bernd")
    expect(page.get_by_text("evaluated now (not refreshed yet)")).to_be_visible()
    page.get_by_role("button", name="Refresh now").click()
    expect(page.get_by_text("Members you can see: 1 before, 1 now.")).to_be_visible()
    expect(page.get_by_text("as of the last refresh")).to_be_visible()
    shot(page, "segment", live)
    page.get_by_role("link", name="Segments", exact=True).first.click()
    row = page.get_by_role("row", name=re.compile("DE webinar attendees"))
    expect(row).to_contain_text("fresh")
    expect(row.get_by_role("cell").nth(3)).to_have_text("1")
    shot(page, "segments", live)


def test_people_who_attended_an_event_for_30_minutes_by_clicking(
    page: Page, acme: Acme, live: Live
) -> None:
    autumn = f.event(
        acme.db,
        acme.gustav,
        "Autumn Product Launch",
        start_at=datetime(2026, 10, 20, 9, tzinfo=UTC),
    )
    f.attendance(acme.db, autumn, acme.anna, seconds=45 * 60)
    f.attendance(acme.db, autumn, acme.bernd, seconds=10 * 60)
    acme.db.commit()
    acme.mlist(acme.gustav, "Autumn follow-up")
    sign_in(page, "gustav", next="/segments/new")
    expect(page.get_by_text("No conditions yet")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Autumn launch: stayed 30 minutes")
    page.get_by_role("button", name="Add event condition").click()
    condition = page.get_by_role("group", name="Condition 1")
    condition.get_by_label("Find the event").fill("autumn")
    event = condition.get_by_label("Event", exact=True)
    expect(event.locator("option")).to_have_text(
        ["any event", "Autumn Product Launch (20 Oct 2026)"]
    )
    event.select_option(label="Autumn Product Launch (20 Oct 2026)")
    count = page.locator("#live-count")
    expect(count).to_have_text("2 members you can see")
    condition.get_by_label("For at least (minutes)").fill("30")
    expect(count).to_have_text("1 member you can see")
    shot(page, "segment-builder-event-row", live)
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Autumn launch: stayed 30 minutes")
    expect(page.locator(".criteria-summary")).to_contain_text(
        "attended “Autumn Product Launch” for at least 30 min"
    )
    members = page.get_by_role("table", name=re.compile("Members of"))
    expect(members.get_by_role("link", name="Anna Schmidt", exact=True)).to_be_visible()
    expect(
        members.get_by_role("columnheader", name="Minutes at Autumn Product Launch")
    ).to_be_visible()
    expect(members.get_by_role("row", name=re.compile("Anna Schmidt"))).to_contain_text("45")
    expect(members).not_to_contain_text("Bernd")
    shot(page, "segment-attended-30-minutes", live)
    # Why is Anna in, and why is Bernd not?
    members.get_by_role("link", name="Why is Anna Schmidt in?").click()
    answer = page.locator("#answer")
    expect(answer).to_contain_text("is in the segment")
    page.get_by_label("Find a contact").fill("bernd")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="Bernd Weber").click()
    expect(answer).to_contain_text("is not in the segment")
    expect(answer.get_by_role("listitem").filter(has_text="Autumn Product Launch")).to_contain_text(
        "does not hold"
    )
    shot(page, "segment-why-not", live)
    # … and added to a follow-up list, counted before it happens.
    page.get_by_role("link", name="Autumn launch: stayed 30 minutes").click()
    page.get_by_label("Tick every member on this page").check()
    expect(page.get_by_label("Tick Anna Schmidt")).to_be_checked()
    page.get_by_label("all 1 that match").check()
    page.get_by_label("Marketing list").select_option(label="Autumn follow-up")
    page.get_by_role("button", name="Add to list…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add to “Autumn follow-up”?")
    expect(page.locator("#plan")).to_contain_text("1 will be added")
    shot(page, "bulk-confirm", live)
    page.get_by_role("button", name="Add 1 contact").click()
    expect(page.locator("#done")).to_have_text("1 contact added.")
    page.get_by_role("link", name="Open “Autumn follow-up”").click()
    follow_up = page.get_by_role("table", name=re.compile("Members of"))
    expect(follow_up.get_by_role("link", name="Anna Schmidt", exact=True)).to_be_visible()
    expect(follow_up).not_to_contain_text("Bernd")


def test_a_bu_marketer_never_sees_another_bus_contacts(page: Page, acme: Acme, live: Live) -> None:
    shared = acme.segment(acme.mara, name="Everyone in DE", scope="organization")
    f.share_with_organization(acme.db, "segment", shared.id)
    seg.refresh(db=acme.db, segment_id=shared.id)
    acme.db.commit()
    sign_in(page, "gustav", next="/segments")
    expect(page.get_by_role("row", name=re.compile("Everyone in DE"))).to_contain_text("2")
    page.get_by_role("link", name="Everyone in DE").click()
    expect(page.get_by_text("2 members you can see")).to_be_visible()
    expect(page.get_by_role("main")).not_to_contain_text("Claire")
    expect(page.get_by_role("main")).not_to_contain_text("Martin")
    expect(page.get_by_role("main")).not_to_contain_text("in total")
    # Shared for reading only: no edit or delete offered, and the edit page is refused.
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
    shot(page, "segment-bu-viewer", live)
    response = page.goto(f"/segments/{shared.id}/edit")
    assert response is not None
    assert response.status == 403


def test_the_scope_selector_offers_organization_only_to_org_level_marketers(
    page: Page, acme: Acme
) -> None:
    org.set_feature(db=acme.db, name=org.BU_SCOPING, enabled=True, by_user_id=None)
    acme.db.commit()
    sign_in(page, "gustav", next="/segments/new")
    scope = page.get_by_label("Scope")
    expect(scope.locator("option")).to_have_text(["Business unit"])
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "mara", next="/segments/new")
    expect(page.get_by_label("Scope").locator("option")).to_have_text(
        ["Business unit", "Organization"]
    )
    page.get_by_role("button", name="Add contact condition").click()
    page.get_by_label("Value").fill("DE")
    # Business-unit scope holds the root BU's own contacts (none); organization all three.
    expect(page.locator("#live-count")).to_have_text("0 members you can see")
    page.get_by_label("Scope").select_option("organization")
    expect(page.locator("#live-count")).to_have_text("3 members you can see")


def test_a_criteria_error_shows_inline_and_nothing_is_saved(
    page: Page, acme: Acme, live: Live
) -> None:
    sign_in(page, "gustav", next="/segments/new")
    page.get_by_label("Name", exact=True).fill("Broken")
    page.get_by_text("Advanced (JSON)").click()
    page.get_by_role("button", name="Edit as JSON").click()
    expect(page.get_by_label("Criteria as JSON")).to_have_value(re.compile('"all": \\[\\]'))
    page.get_by_label("Criteria as JSON").fill(
        '{"any": [{"contact": {"country": "DE"}}, '
        '{"participation": "attended", "event": {"start": {"after": "31-02-2026"}}}]}'
    )
    expect(page.locator("#live-count")).to_contain_text("is not a date")
    page.get_by_role("button", name="Save segment").click()
    error = page.locator("#criteria-error")
    expect(error).to_have_text(re.compile(r"criteria\.any\[1\]\.event\.start: '31-02-2026'"))
    expect(page.get_by_label("Criteria as JSON")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Broken")
    assert acme.count(Segment) == 0


def test_csrf_is_refused_on_create(page: Page, acme: Acme) -> None:
    sign_in(page, "gustav", next="/segments/new")
    page.get_by_label("Name", exact=True).fill("Forged")
    page.get_by_role("button", name="Add contact condition").click()
    page.get_by_label("Value").fill("DE")
    page.evaluate("() => document.querySelector('form.segment-form input[name=csrf]').remove()")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form was refused")
    assert acme.count(Segment) == 0


def test_csv_import_in_the_browser_shows_the_report(
    page: Page, acme: Acme, live: Live, tmp_path: Path
) -> None:
    vips = acme.mlist(acme.gustav, "Berlin VIPs")
    acme.mlist(acme.francoise, "Paris VIPs")
    sign_in(page, "gustav", next="/lists")
    expect(page.get_by_text("1 list you can see")).to_be_visible()
    expect(page.get_by_role("main")).not_to_contain_text("Paris VIPs")
    shot(page, "lists", live)
    page.get_by_role("link", name="Berlin VIPs").click()
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,name\nanna@example.de,Anna\nclaire@example.fr,Claire\nbogus,B\nbernd@example.de,B\n"
    )
    page.get_by_label("CSV file").set_input_files(csv)
    page.get_by_role("button", name="Import").click()
    report = page.get_by_role("region", name="Import report")
    expect(report.get_by_role("listitem").filter(has_text="added")).to_have_text("2 added")
    expect(report.get_by_role("listitem").filter(has_text="rows read")).to_have_text("4 rows read")
    expect(report).to_contain_text("claire@example.fr")  # unknown to gustav
    expect(report.get_by_role("row", name=re.compile("bogus"))).to_contain_text("4")
    members = page.get_by_role("table", name=re.compile("Members of"))
    expect(members.get_by_role("link", name="Anna Schmidt", exact=True)).to_be_visible()
    expect(members).not_to_contain_text("Claire")
    assert page.url.endswith(f"/lists/{vips.id}")
    shot(page, "list-import", live)


def test_the_builder_fits_a_phone(phone: Page, acme: Acme, live: Live) -> None:
    sign_in(phone, "gustav", next="/segments/new")
    phone.get_by_role("button", name="Add contact condition").click()
    first = phone.get_by_role("group", name="Condition 1")
    expect(first.get_by_label("Property name")).to_have_count(0)
    first.get_by_label("Contact field").select_option("custom")  # the row is drawn again
    first.get_by_label("Property name").fill("tier")
    first.get_by_label("Operator").select_option("gte")
    first.get_by_label("Value").fill("3")
    expect(phone.locator("#live-count")).to_have_text("0 members you can see")
    expect(phone.locator("#criteria-tree")).to_contain_text('"custom.tier": {')
    expect(phone.locator("#criteria-tree")).to_contain_text('"gte": 3')
    phone.get_by_role("button", name="Add event condition").click()
    expect(phone.get_by_role("group", name="Condition 2")).to_be_visible()
    expect(first.get_by_label("Property name")).to_have_value("tier")
    phone.get_by_text("Advanced (JSON)").click()
    no_horizontal_scroll(phone)
    shot(phone, "segment-builder-phone", live)


# ---------------------------------------------------------------- bulk actions


def _members(acme: Acme, list_id: int) -> set[int]:
    acme.db.expire_all()
    rows = select(MarketingListMember.contact_id).where(MarketingListMember.list_id == list_id)
    return set(acme.db.scalars(rows))


def _stats(html: str) -> list[str]:
    return [
        " ".join(re.sub(r"<[^>]+>", " ", li).split())
        for li in re.findall(r"<li>(.*?)</li>", html.split('id="plan"')[1].split("</ul>")[0], re.S)
    ]


def test_ticked_contacts_are_counted_then_added_only_when_confirmed(
    acme: Acme, as_user: Any
) -> None:
    follow_up = acme.mlist(acme.gustav, "Follow-up", acme.bernd)
    gustav = as_user("gustav")
    page = gustav.get("/contacts").text
    assert 'id="bulk-form"' in page
    assert f'<option value="{follow_up.id}">Follow-up</option>' in page
    chosen = {
        "action": "add",
        "list_id": str(follow_up.id),
        "source": "contacts",
        "choose": "ticked",
        # Claire is French: forged into the form, she is neither counted nor added.
        "contact_id": [str(acme.anna.id), str(acme.bernd.id), str(acme.claire.id)],
    }
    confirm = gustav.post("/bulk", chosen)
    assert confirm.status_code == 200, confirm.text[:2000]
    assert _stats(confirm.text) == [
        "2 contacts chosen that you may read",
        "1 will be added",
        "1 is already in the list",
    ]
    assert "Add 1 contact" in confirm.text
    assert _members(acme, follow_up.id) == {acme.bernd.id}  # nothing happens before
    done = gustav.post("/bulk/apply", chosen)
    assert done.status_code == 200
    assert "1 contact added; 1 was already in the list." in " ".join(done.text.split())
    assert _members(acme, follow_up.id) == {acme.anna.id, acme.bernd.id}
    removed = gustav.post("/bulk/apply", {**chosen, "action": "remove"})
    assert "2 contacts removed." in " ".join(removed.text.split())
    assert _members(acme, follow_up.id) == set()


def test_all_that_match_means_the_search_among_readable_contacts(acme: Acme, as_user: Any) -> None:
    follow_up = acme.mlist(acme.gustav, "Follow-up")
    gustav = as_user("gustav")
    search = {"source": "contacts", "choose": "all", "country": "DE", "list_id": str(follow_up.id)}
    confirm = gustav.post("/bulk", {**search, "action": "add"})
    # Anna and Bernd; Claire's country is DE too, but gustav may not read her.
    assert _stats(confirm.text)[0] == "2 contacts chosen that you may read"
    gustav.post("/bulk/apply", {**search, "action": "add"})
    assert _members(acme, follow_up.id) == {acme.anna.id, acme.bernd.id}
    asked = gustav.post("/bulk", {**search, "action": "export"})
    assert _stats(asked.text) == ["2 contacts chosen that you may read"]
    assert "Download 2 contacts" in asked.text
    export = gustav.post("/bulk/apply", {**search, "action": "export"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["email"] for r in rows) == ["anna@example.de", "bernd@example.de"]


def test_a_segments_members_go_to_a_list_and_other_bus_never_do(acme: Acme, as_user: Any) -> None:
    segment = acme.segment(acme.mara, DE, name="Everyone in DE", scope="organization")
    follow_up = acme.mlist(acme.mara, "DE follow-up")
    mara = as_user("mara")
    page = mara.get(f"/segments/{segment.id}").text
    assert f'name="contact_id" value="{acme.anna.id}" form="bulk-form"' in page
    chosen = {
        "source": "segment",
        "segment_id": str(segment.id),
        "choose": "all",
        "action": "add",
        "list_id": str(follow_up.id),
    }
    assert _stats(mara.post("/bulk", chosen).text)[:2] == [
        "3 contacts chosen that you may read",
        "3 will be added",
    ]
    mara.post("/bulk/apply", chosen)
    assert _members(acme, follow_up.id) == {acme.anna.id, acme.bernd.id, acme.claire.id}
    # gustav may read the segment once shared, but only his own BU's members count for him,
    # and mara's list is not one he may change.
    f.share_with_organization(acme.db, "segment", segment.id)
    acme.db.commit()
    gustav = as_user("gustav")
    mine = acme.mlist(acme.gustav, "Mine")
    counted = gustav.post("/bulk", {**chosen, "list_id": str(mine.id)})
    assert _stats(counted.text)[0] == "2 contacts chosen that you may read"
    theirs = gustav.post("/bulk", chosen)
    assert theirs.status_code == 404  # a list he may not read is not found, as everywhere
    assert f"marketing list {follow_up.id} not found" in theirs.text


def test_a_bulk_form_without_a_choice_says_what_is_missing(acme: Acme, as_user: Any) -> None:
    follow_up = acme.mlist(acme.gustav, "Follow-up")
    gustav = as_user("gustav")
    base = {"source": "contacts", "choose": "ticked", "list_id": str(follow_up.id)}
    cases = [
        ({**base, "action": "add"}, "Tick at least one contact"),
        (
            {**base, "action": "add", "contact_id": str(acme.anna.id), "list_id": ""},
            "Choose the marketing list",
        ),
        ({**base, "action": "shred", "contact_id": str(acme.anna.id)}, "Choose add to list"),
        ({**base, "action": "add", "contact_id": str(acme.zoe.id)}, "None of the chosen contacts"),
    ]
    for form, said in cases:
        refused = gustav.post("/bulk", form)
        assert refused.status_code == 422, form
        assert said in refused.text, (form, refused.text[-800:])
    assert _members(acme, follow_up.id) == set()
