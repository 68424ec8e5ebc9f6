"""Graph's times: ``dateTimeTimeZone`` with Windows zone names, and UTC DateTimeOffsets.

Windows names map to IANA through CLDR's windowsZones (``tzlocal.windows_tz``). An unknown
zone is an error to :func:`parse_date_time_zone`, never silently UTC (reference §6.11);
:func:`read_date_time_zone` instead reads it as UTC *and says so*, for the Teams sync, which
must never fail on a zone Graph itself made up (its town-hall example says ``"PacificSt"``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from tzlocal import windows_tz

from gatherly.core.exceptions import SkippableRecordError


def iana_zone(name: str) -> str:
    """The IANA zone for a Windows (or already IANA) zone name."""
    if name in ("UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
        return "UTC"
    iana = windows_tz.win_tz.get(name)
    if iana:
        return iana
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SkippableRecordError(f"unknown time zone {name!r}") from None
    return name


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_zone(name: str | None) -> bool:
    """True for an IANA zone name this machine's zone data knows (``Europe/Berlin``)."""
    return bool(name) and name in _known_zones()


def zone_groups() -> dict[str, list[str]]:
    """The known IANA zones by region (``Europe``: ``Europe/Berlin``, …), for a picker;
    the old aliases (``US/Eastern``, ``CET``) are left out."""
    groups: dict[str, list[str]] = {}
    for name in sorted(_known_zones()):
        region, sep, _city = name.partition("/")
        if sep and region in _REGIONS:
            groups.setdefault(region, []).append(name)
    return groups | {"Other": ["UTC"]}


_REGIONS = (
    "Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
    "Indian", "Pacific",
)  # fmt: skip


def zone_label(at: datetime) -> str:
    """The zone of an aware time as people read it: ``CET``, ``EDT``, or ``UTC+04`` where
    the zone has no letters of its own."""
    name = at.tzname() or "UTC"
    if name[:1] in "+-":
        return f"UTC{name}"
    return name


def _parse_iso(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    # Graph writes 7 fractional digits; Python takes at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SkippableRecordError(f"not a date-time: {value!r}") from None


def parse_offset(value: str | None) -> datetime | None:
    """A Graph DateTimeOffset in UTC; naive values (doc samples omit the Z) are UTC."""
    if not value:
        return None
    parsed = _parse_iso(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date_time_zone(value: Any) -> tuple[datetime | None, str]:
    """A ``dateTimeTimeZone`` (or a bare ISO string, as doc samples show) → (UTC time, IANA zone)."""
    if value is None:
        return None, "UTC"
    if isinstance(value, str):
        return parse_offset(value), "UTC"
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise SkippableRecordError(f"not a dateTimeTimeZone: {value!r}")
    zone = iana_zone(str(value.get("timeZone") or "UTC"))
    local = _parse_iso(value["dateTime"])
    if local.tzinfo is not None:
        return local.astimezone(UTC), zone
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC), zone


@dataclass(frozen=True)
class GraphTime:
    """A ``dateTimeTimeZone`` read: the instant in UTC and the zone it was written in.

    ``zone`` is the IANA name, or, when Graph sent a name no zone table knows, that raw
    name as sent; then ``unknown_zone`` holds it too and ``at`` was read as UTC wall time.
    """

    at: datetime | None
    zone: str
    unknown_zone: str | None = None


def read_date_time_zone(value: Any) -> GraphTime:
    """:func:`parse_date_time_zone` that never fails on the zone's name: an unknown one
    (``"PacificSt"``) is kept as sent and the wall time read as UTC, which the caller reports.

    Raises:
        SkippableRecordError: the value is not a dateTimeTimeZone or its time is unreadable.
    """
    try:
        at, zone = parse_date_time_zone(value)
    except SkippableRecordError:
        if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
            raise
        raw = str(value.get("timeZone"))
        local = _parse_iso(value["dateTime"])  # a bad time still fails, as it should
        at = local.astimezone(UTC) if local.tzinfo else local.replace(tzinfo=UTC)
        return GraphTime(at, raw, raw)
    return GraphTime(at, zone)
