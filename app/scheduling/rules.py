"""Working hours and booking windows, turned into UTC intervals.

Working hours are wall-clock times in a person's own zone and are expanded one *local* date at
a time, so that "09:00" is 09:00 on both sides of a clock change (A1, A6). A booking window
(A4) is the organisation's rule about *when* anything may be booked at all, decided in the
organisation's zone ("today", "weekend").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.scheduling.intervals import (
    Interval,
    Pair,
    clip_pairs,
    merge_pairs,
    subtract_pairs,
)
from app.scheduling.localtime import wall_to_utc

TimeRange = tuple[time, time]
"""Local wall-clock ``(start, end)`` within one day, ``start < end``."""

_ONE_DAY = timedelta(days=1)
_WEEKEND = timedelta(days=2)
_ONE_WEEK = timedelta(days=7)
_MIDNIGHT = time(0, 0)

# Resolving a wall-clock time is the costly step of expanding working hours (two zone
# conversions and a round-trip check), and a team shares a handful of zones and shift times,
# so the answers are memoised. The function is pure given the installed tz database.
_resolve = lru_cache(maxsize=1 << 16)(wall_to_utc)


def _check_ranges(ranges: tuple[TimeRange, ...], what: str) -> None:
    for rng in ranges:
        if len(rng) != 2 or not rng[0] < rng[1]:
            raise ValueError(f"{what}: a time range must start before it ends, got {rng!r}.")


@dataclass(frozen=True)
class WorkingHours:
    """When a person works, in their own zone.

    ``weekly`` maps a weekday (0 = Monday) to its time ranges; a missing weekday is a day off.
    ``overrides`` replaces the weekly pattern for one local date (``()`` = day off), and
    ``time_off`` removes UTC intervals (holidays, leave) on top of both.
    """

    zone: ZoneInfo
    weekly: Mapping[int, tuple[TimeRange, ...]]
    overrides: Mapping[date, tuple[TimeRange, ...]] = field(default_factory=dict)
    time_off: tuple[Interval, ...] = ()

    def __post_init__(self) -> None:
        for weekday, ranges in self.weekly.items():
            if weekday not in range(7):
                raise ValueError(f"Weekday must be 0 (Monday) to 6 (Sunday), got {weekday!r}.")
            _check_ranges(ranges, f"weekday {weekday}")
        for day, ranges in self.overrides.items():
            _check_ranges(ranges, f"override {day}")

    def ranges_on(self, day: date) -> tuple[TimeRange, ...]:
        """The local time ranges worked on ``day``: its override if any, else the weekday's."""
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), ())


def _local_dates_bounds(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[date, date]:
    """The first and last local date whose day may touch ``[start, end)``, with one spare
    day before.

    The spare day covers zones that fall back *at* midnight, where the repeated hour belongs to
    the previous date; anything outside ``[start, end)`` is clipped away later.
    """
    return start.astimezone(zone).date() - _ONE_DAY, end.astimezone(zone).date()


def shift_ranges(hours: WorkingHours, start: datetime, end: datetime) -> list[Pair]:
    """Each worked range of each local date touching ``[start, end)``, in UTC, unclipped.

    These are the grid anchors for slots: a shift that starts at 09:00 local yields candidate
    starts 09:00, 09:30, … even when the query begins at 10:10 or leave ends at 10:15. A
    boundary in a spring-forward gap moves to the end of the gap, an ambiguous one takes its
    first occurrence; a range that collapses to nothing (both ends in one gap) is dropped.
    """
    zone = hours.zone
    first, last = _local_dates_bounds(zone, start, end)
    overrides = hours.overrides
    if overrides:
        relevant = tuple(sorted((d, r) for d, r in overrides.items() if first <= d <= last))
    else:
        relevant = ()
    # A team shares a few patterns, and a server answers the same weeks again and again, so
    # the expansion is memoised on the pattern's *contents* (never on object identity).
    weekly = tuple(sorted(hours.weekly.items()))
    try:
        return list(_expand(zone, weekly, relevant, first, last))
    except TypeError:  # lists instead of tuples somewhere: unhashable, so expand uncached
        return list(_expand.__wrapped__(zone, weekly, relevant, first, last))


@lru_cache(maxsize=4096)
def _expand(
    zone: ZoneInfo,
    weekly: tuple[tuple[int, tuple[TimeRange, ...]], ...],
    overrides: tuple[tuple[date, tuple[TimeRange, ...]], ...],
    first: date,
    last: date,
) -> tuple[Pair, ...]:
    by_weekday = dict(weekly)
    by_date = dict(overrides)
    out: list[Pair] = []
    day = first
    while day <= last:
        ranges = by_date[day] if day in by_date else by_weekday.get(day.weekday(), ())
        for a, b in ranges:
            lo = _resolve(day, a, zone)
            hi = _resolve(day, b, zone)
            if lo < hi:
                out.append((lo, hi))
        day += _ONE_DAY
    return tuple(out)


def working_pairs(
    hours: WorkingHours, start: datetime, end: datetime, shifts: list[Pair] | None = None
) -> list[Pair]:
    """:func:`working_intervals` as merged ``(start, end)`` pairs (the engine's form).

    ``shifts`` lets the engine pass the :func:`shift_ranges` it already computed for the grid.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if shifts is None:
        shifts = shift_ranges(hours, start, end)
    worked = clip_pairs(merge_pairs(shifts), start, end)
    if hours.time_off and worked:
        worked = subtract_pairs(worked, merge_pairs((i.start, i.end) for i in hours.time_off))
    return worked


def working_intervals(hours: WorkingHours, start: datetime, end: datetime) -> list[Interval]:
    """When the person works within ``[start, end)``: merged, sorted UTC intervals.

    Expanded per local date so a 09:00 start is 09:00 local on both sides of a DST change;
    clipped to the query; time off removed. Clock-change oddities never raise and never
    duplicate time (see :func:`shift_ranges`).
    """
    return [Interval(s, e) for s, e in working_pairs(hours, start, end)]


@dataclass(frozen=True)
class BookingWindow:
    """The organisation's rules about when anything may be booked (A4, seeds 002 and 004).

    Every field has a safe default: unset never means "anything goes" (in particular the
    horizon defaults to one year ahead and weekends are off).
    """

    zone: ZoneInfo
    minimum_notice: timedelta = timedelta(0)
    earliest_day: int = 0
    disabled_window: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=365)
    weekends: bool = False

    def __post_init__(self) -> None:
        if self.minimum_notice < timedelta(0) or self.disabled_window < timedelta(0):
            raise ValueError("Minimum notice and disabled window cannot be negative.")
        if self.earliest_day < 0:
            raise ValueError("Earliest available day cannot be negative (0 = today).")
        if self.horizon < timedelta(0):
            raise ValueError("The booking horizon cannot be negative.")


def window_pairs(
    window: BookingWindow, now: datetime, start: datetime, end: datetime
) -> list[Pair]:
    """:func:`window_intervals` as merged ``(start, end)`` pairs (the engine's form)."""
    # Everything in UTC: two datetimes sharing one ZoneInfo compare by wall clock, which is
    # wrong in the repeated autumn hour.
    start, end, now = start.astimezone(UTC), end.astimezone(UTC), now.astimezone(UTC)
    zone = window.zone
    lo = max(start, now + window.minimum_notice, now + window.disabled_window)
    if window.earliest_day > 0:
        first_day = now.astimezone(zone).date() + timedelta(days=window.earliest_day)
        lo = max(lo, _resolve(first_day, _MIDNIGHT, zone))
    hi = min(end, now + window.horizon)
    if not lo < hi:
        return []
    open_ = [(lo, hi)]
    if window.weekends:
        return open_
    # Each weekend from Saturday's midnight to Monday's, from the one on or before the first
    # local date that may touch [lo, hi) (see _local_dates_bounds); weekends are disjoint and come
    # in order, so they need no merging. Two lookups a week, not two per weekend day.
    first, last = _local_dates_bounds(zone, lo, hi)
    saturday = first - timedelta(days=(first.weekday() - 5) % 7)
    weekend: list[Pair] = []
    while saturday <= last:
        monday = saturday + _WEEKEND
        weekend.append((_resolve(saturday, _MIDNIGHT, zone), _resolve(monday, _MIDNIGHT, zone)))
        saturday += _ONE_WEEK
    return subtract_pairs(open_, weekend)


def window_intervals(
    window: BookingWindow, now: datetime, start: datetime, end: datetime
) -> list[Interval]:
    """The bookable time within ``[start, end)`` as seen at ``now``.

    It begins at the latest of: ``now`` (nothing in the past), ``now + minimum_notice``,
    ``now + disabled_window`` and 00:00 local on ``today + earliest_day``; it ends at
    ``now + horizon``; local Saturdays and Sundays are cut out unless ``weekends``. A slot must
    lie wholly inside, so in effect nothing *starts* later than the horizon either.
    """
    return [Interval(s, e) for s, e in window_pairs(window, now, start, end)]
