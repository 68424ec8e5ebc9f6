"""Criteria values at the edges (issue 12 F5): the parser refuses what SQL cannot compare,
naming the node, and what it accepts compiles and runs on both backends, whatever the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatherly.core.bounds import INT_MAX, INT_MIN, shift, to_utc
from gatherly.segment import criteria as crit
from gatherly.segment import service as seg
from tests.segment.conftest import Org


@pytest.mark.parametrize(
    ("tree", "path", "says"),
    [
        ({"contact": {"id": INT_MAX + 1}}, "criteria.contact.id", "out of range"),
        ({"contact": {"id": INT_MIN - 1}}, "criteria.contact.id", "out of range"),
        ({"contact": {"id": {"in": [1, 2**64]}}}, "criteria.contact.id", "out of range"),
        ({"list": 2**63}, "criteria.list", "is not a marketing list id"),
        ({"list": 0}, "criteria.list", "is not a marketing list id"),
        (
            {"participation": "registered", "event": {"registrants": {"gte": 10**30}}},
            "criteria.event.registrants",
            "out of range",
        ),
        (
            {"contact": {"created_at": {"before": "9999-12-31T23:59:59-14:00"}}},
            "criteria.contact.created_at",
            "out of range once converted to UTC",
        ),
        (
            {"contact": {"created_at": {"on": "0001-01-01T00:00:00+14:00"}}},
            "criteria.contact.created_at",
            "out of range once converted to UTC",
        ),
        (
            {"contact": {"custom.score": {"gt": float("inf")}}},
            "criteria.contact.custom.score",
            "is not a number",
        ),
        (
            {"contact": {"custom.score": float("nan")}},
            "criteria.contact.custom.score",
            "is not a text or a number",
        ),
        (
            {"participation": "attended", "min_minutes": float("nan")},
            "criteria.min_minutes",
            "minutes",
        ),
    ],
)
def test_values_sql_cannot_compare_are_refused_by_name(tree: Any, path: str, says: str) -> None:
    with pytest.raises(crit.CriteriaError) as raised:
        crit.parse(tree)
    assert raised.value.field == path
    assert raised.value.message.startswith(f"{path}: ")
    assert says in raised.value.message
    assert len(raised.value.message) < 200  # a huge value is quoted cut short


def test_dates_are_held_in_utc() -> None:
    parsed = crit.parse({"contact": {"created_at": {"after": "2026-03-01T09:00:00+09:00"}}})
    (condition,) = parsed.root.conditions
    assert condition.value == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert condition.value.tzinfo is UTC
    naive = crit.parse({"contact": {"created_at": {"after": "2026-03-01T09:00:00"}}})
    assert naive.root.conditions[0].value == datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_the_bounds_helpers() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        to_utc(datetime(2026, 1, 1))  # naive: the point of the test
    late = datetime(9999, 12, 31, 12, tzinfo=UTC)
    assert shift(late, timedelta(days=2)) == datetime.max.replace(tzinfo=UTC)
    early = datetime(1, 1, 1, 12, tzinfo=UTC)
    assert shift(early, -timedelta(days=2)) == datetime.min.replace(tzinfo=UTC)
    assert shift(late, -timedelta(days=1)) == datetime(9999, 12, 30, 12, tzinfo=UTC)


EDGES = [
    {"contact": {"created_at": {"on": "9999-12-31"}}},
    {"contact": {"created_at": {"in_next_days": 36500}}},
    {"contact": {"created_at": {"in_last_days": 36500}}},
    {"contact": {"created_at": {"more_than_days_ago": 36500}}},
    {"contact": {"created_at": {"between": ["0001-01-01", "9999-12-31"]}}},
    {"participation": "registered", "event": {"start": {"in_next_days": 30}}},
    {"contact": {"id": {"between": [INT_MIN, INT_MAX]}}},
]


@pytest.mark.parametrize(
    "now", [datetime(9999, 12, 20, tzinfo=UTC), datetime(1, 1, 5, tzinfo=UTC)], ids=str
)
def test_relative_dates_near_the_ends_of_time_refresh_without_overflow(
    acme: Org, now: datetime
) -> None:
    ids = [acme.segment("uOrg", tree, name=f"Edge {i}") for i, tree in enumerate(EDGES)]
    for segment_id in ids:
        result = seg.refresh(db=acme.db, segment_id=segment_id, now=now)
        assert result is not None
    acme.db.commit()
    # Contacts were created now, so of these only "between year 1 and 9999" and the whole
    # id range hold all three (the others depend on the clock, which is far away).
    uorg = acme.p("uOrg")
    totals = [seg.get_segment(db=acme.db, principal=uorg, segment_id=i).member_total for i in ids]
    assert totals[4] == totals[6] == 3
