"""Turning a wall-clock time in a zone into an instant, honestly across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class NonexistentTimeError(ValueError):
    """The wall-clock time is skipped by a clock change in that zone (e.g. 01:30 in March)."""


def local_to_utc(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant for ``day`` at ``clock`` in ``zone``.

    A time that does not exist (spring forward) raises ``NonexistentTimeError``; a time that
    occurs twice (fall back) means its first occurrence (``fold=0``), as calendars do.
    """
    local = datetime.combine(day, clock, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentTimeError(
            f"{clock:%H:%M} on {day:%d %b %Y} does not exist in {zone.key} (the clocks change)."
        )
    return instant


def wall_to_utc(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant for ``day`` at ``clock`` in ``zone``, never raising.

    Working hours and day boundaries must always turn into *some* instant, or one odd date
    (a clock change at 01:30, a zone that skips midnight or a whole day) would break every
    availability query that touches it. The rule is "the first instant whose wall clock reads
    ``clock`` or later": a time that occurs twice means its first occurrence (``fold=0``), and
    a time skipped by a spring-forward gap moves to the first instant after the gap (01:30 on
    the March change day in London is 02:00 BST, i.e. 01:00 UTC).
    """
    local = datetime.combine(day, clock, tzinfo=zone)
    instant = local.astimezone(UTC)
    wall = local.replace(tzinfo=None)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap: with fold=0 the offset from before the change applies, which lands after the
    # gap; fold=1 uses the later offset and lands before it. The change lies in between.
    late = instant
    early = local.replace(fold=1).astimezone(UTC)
    if early > late:  # only if a zone ever moved its clocks back "into" a gap; be safe
        early, late = late, early
    one = timedelta(microseconds=1)
    while late - early > one:
        mid = early + (late - early) // 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            late = mid
        else:
            early = mid
    return late
