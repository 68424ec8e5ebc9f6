"""How many people were present in a session, minute by minute, from join/leave intervals (T9).

A person counts once in a minute when any of their intervals covers part of it: two
overlapping intervals of one person (two devices, a rejoin within the minute) still count
once. Intervals are half-open, so someone who leaves at 10:05:00 is not present at 10:05.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Minute:
    """One minute of a session and how many people were present during it."""

    start: datetime
    present: int


def per_minute(
    intervals: Iterable[tuple[Hashable, datetime, datetime]], start: datetime, end: datetime
) -> list[Minute]:
    """People present per minute from ``start`` (rounded down to the minute) to ``end``.

    Args:
        intervals: ``(person, join, leave)``; intervals outside the window are clipped.
        start, end: the window (aware datetimes); ``end`` is rounded up to the minute.

    Returns:
        One ``Minute`` per minute of the window, in order (empty if the window is empty).

    Example:
        >>> from datetime import UTC
        >>> t = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
        >>> left = t + timedelta(seconds=90)  # present for part of the second minute
        >>> [m.present for m in per_minute([("ann", t, left)], t, t + 3 * MINUTE)]
        [1, 1, 0]
    """
    origin = start.replace(second=0, microsecond=0)

    def offset(at: datetime) -> float:
        return (at - origin) / MINUTE

    size = max(0, math.ceil(offset(end)))
    spans: dict[Hashable, list[tuple[int, int]]] = {}
    for person, join, leave in intervals:
        first, stop = max(0, math.floor(offset(join))), min(size, math.ceil(offset(leave)))
        if leave > join and first < stop:
            spans.setdefault(person, []).append((first, stop))
    change = [0] * (size + 1)
    for ranges in spans.values():
        # Merge one person's minute ranges first, so overlaps count once.
        ranges.sort()
        lo, hi = ranges[0]
        for a, b in ranges[1:]:
            if a > hi:
                change[lo] += 1
                change[hi] -= 1
                lo, hi = a, b
            else:
                hi = max(hi, b)
        change[lo] += 1
        change[hi] -= 1
    minutes, present = [], 0
    for i in range(size):
        present += change[i]
        minutes.append(Minute(origin + i * MINUTE, present))
    return minutes
