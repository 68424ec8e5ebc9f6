"""Graph's dateTimeTimeZone: Windows names mapped to IANA; a name no table knows is an error
to the strict reader and, to the sync's reader, UTC said out loud."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatherly.core.exceptions import SkippableRecordError
from gatherly.core.timezones import GraphTime, parse_date_time_zone, read_date_time_zone


def test_windows_names_are_read_in_their_zone() -> None:
    value = {"dateTime": "2026-11-04T09:00:00.0000000", "timeZone": "Pacific Standard Time"}
    at = datetime(2026, 11, 4, 17, 0, tzinfo=UTC)
    assert parse_date_time_zone(value) == (at, "America/Los_Angeles")
    assert read_date_time_zone(value) == GraphTime(at, "America/Los_Angeles", None)


def test_an_unknown_name_is_read_as_utc_and_kept() -> None:
    value = {"dateTime": "2026-11-19T09:00:00", "timeZone": "PacificSt"}
    with pytest.raises(SkippableRecordError, match="unknown time zone 'PacificSt'"):
        parse_date_time_zone(value)
    assert read_date_time_zone(value) == GraphTime(
        datetime(2026, 11, 19, 9, 0, tzinfo=UTC), "PacificSt", "PacificSt"
    )


def test_a_bad_time_still_fails() -> None:
    for value in ({"dateTime": "soon", "timeZone": "PacificSt"}, {"timeZone": "UTC"}, 5):
        with pytest.raises(SkippableRecordError):
            read_date_time_zone(value)
    assert read_date_time_zone(None) == GraphTime(None, "UTC")
