"""Shapes of hostile input that once answered 500 (issue 12 F5), shared by the API tests,
the schemathesis contract test and the property test: forged cursors (naive or extreme
date-times, integers beyond 64 bits) and segment criteria holding extreme values.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

NAIVE = "2026-03-01T09:00:00"
LATE = "9999-12-31T23:59:59-14:00"  # past datetime.max once in UTC
EARLY = "0001-01-01T00:00:00+14:00"  # before datetime.min once in UTC
HUGE_INTS = (2**31, 2**63, 2**64, 99999999999999999999, -(2**31) - 1, -(2**63) - 1)


def forge(sort: Any, value: Any, row_id: Any = 1) -> str:
    """A cursor in the API's own encoding, holding whatever a forger likes."""
    raw = json.dumps([sort, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged_cursors(sort: str) -> list[str]:
    """One cursor of each hostile shape for a list sorted by ``sort``."""
    times = [{"t": t} for t in (NAIVE, LATE, EARLY, "2026-02-30T00:00:00+00:00", None)]
    return [
        *(forge(sort, t) for t in times),
        *(forge(sort, n) for n in HUGE_INTS),
        *(forge(sort, "x", n) for n in HUGE_INTS),
        forge(sort, 1, True),
        forge(sort, True),
    ]


def cursors(sort: str) -> st.SearchStrategy[str]:
    """Hostile cursors: the fixed shapes, and random values and ids in the same encoding."""
    times = st.one_of(
        st.datetimes().map(lambda d: {"t": d.isoformat()}),  # naive
        st.sampled_from([LATE, EARLY, NAIVE]).map(lambda t: {"t": t}),
    )
    values = st.one_of(times, st.integers(), st.text(max_size=20), st.none(), st.booleans())
    ids = st.one_of(st.integers(), st.sampled_from(HUGE_INTS), st.text(max_size=5))
    return st.one_of(
        st.sampled_from(forged_cursors(sort)), st.builds(forge, st.just(sort), values, ids)
    )


HUGE = st.one_of(
    st.sampled_from(HUGE_INTS),
    st.integers(min_value=2**31, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**31) - 1),
)
EXTREME_DATES = st.one_of(
    st.sampled_from([LATE, EARLY]),
    # Late enough (early enough) that the offset carries them past year 9999 (before year 1).
    st.datetimes(min_value=datetime(9999, 12, 31, 10)).map(lambda d: d.isoformat() + "-14:00"),
    st.datetimes(max_value=datetime(1, 1, 1, 13, 59, 59)).map(lambda d: d.isoformat() + "+14:00"),
)


def extreme_criteria() -> st.SearchStrategy[Any]:
    """Criteria trees holding a value SQL cannot compare: every one must be refused."""
    number_field = st.sampled_from(["id", "business_unit_id"])
    event_number = st.sampled_from(["id", "registrants", "attendees", "cancellations"])
    number_op = st.sampled_from(["equals", "gt", "gte", "lt", "lte", "not_equals"])
    date_op = st.sampled_from(["before", "after", "on"])
    date_field = st.sampled_from(["created_at", "modified_at"])
    return st.one_of(
        st.builds(lambda f, o, v: {"contact": {f: {o: v}}}, number_field, number_op, HUGE),
        st.builds(lambda f, v: {"contact": {f: {"in": [1, v]}}}, number_field, HUGE),
        st.builds(lambda f, v: {"contact": {f: {"between": [0, v]}}}, number_field, HUGE),
        st.builds(
            lambda f, o, v: {"participation": "registered", "event": {f: {o: v}}},
            event_number,
            number_op,
            HUGE,
        ),
        st.builds(lambda v: {"list": v}, HUGE),
        st.builds(lambda v: {"list": {"id": v}}, HUGE),
        st.builds(lambda f, o, v: {"contact": {f: {o: v}}}, date_field, date_op, EXTREME_DATES),
        st.builds(
            lambda f, v: {"contact": {f: {"between": ["2026-01-01", v]}}},
            date_field,
            EXTREME_DATES,
        ),
        st.builds(
            lambda o, v: {"participation": "attended", "event": {"start": {o: v}}},
            date_op,
            EXTREME_DATES,
        ),
        st.builds(lambda v: {"contact": {"custom.score": {"gt": v}}}, st.just(10**400)),
        st.builds(
            lambda tree: {"any": [{"contact": {"country": "DE"}}, tree]},
            st.builds(lambda v: {"contact": {"id": v}}, HUGE),
        ),
    )
