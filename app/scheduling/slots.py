"""Bookable slots for one person or a group (A3), from plain values.

How a query runs, and why it is fast enough for a team (30 people, 4 weeks, ~300 busy blocks
each): each person's *valid starts* are computed once as a few sorted ranges, by interval
sweeps (working ∩ window − busy padded by the new booking's buffers, then shrunk by the
duration); candidate starts on the grid are then matched against those ranges by bisect. No
candidate is ever checked against the busy list one block at a time.

All instants here are UTC; local time only matters for expanding working hours, for the
window's "today"/"weekend" and for which local day a booking counts against.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import NamedTuple

from app.scheduling.intervals import (
    Interval,
    Pair,
    intersect_pairs,
    merge_pairs,
    merge_widened,
    subtract_pairs,
)
from app.scheduling.rules import (
    _MIDNIGHT,
    _ONE_DAY,
    BookingWindow,
    WorkingHours,
    _resolve,
    shift_ranges,
    window_pairs,
    working_pairs,
)

_ZERO = timedelta(0)
_MIN_STEP = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)  # the resolution of datetime: [a, b] == [a, b + _TICK)


@dataclass(frozen=True)
class Person:
    """Someone who can be booked, with everything availability needs to know about them.

    ``busy`` holds existing bookings' holds (already padded with *their* buffers) and calendar
    busy blocks, in any order and possibly overlapping. ``available=False`` means their busy
    data is stale or unreadable: they then offer nothing, because offering time we cannot
    vouch for leads to double bookings (fail closed).
    """

    id: int
    hours: WorkingHours
    busy: tuple[Interval, ...] = ()
    load: int = 0
    bookings_per_day: Mapping[date, int] = field(default_factory=dict)
    available: bool = True
    # The same as ``busy`` as plain ``(start, end)`` pairs of aware UTC datetimes, start < end:
    # the loader's form, so a month of a team's calendars (tens of thousands of blocks) is not
    # turned into as many ``Interval`` objects only to be taken apart again here.
    busy_pairs: tuple[Pair, ...] = ()


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"SlotRequest.{name} must be an aware datetime.")
    return value


@dataclass(frozen=True)
class SlotRequest:
    """What is being booked and over which range, as seen at ``now``.

    ``interval`` is the grid step (``None`` = the duration). The buffers belong to the *new*
    booking: ``[start - buffer_before, start + duration + buffer_after)`` must be clear of busy
    time. ``threshold`` is the fraction of a group that must be free for a start to be offered
    (seed 002 "Time Slot Availability"); at least one person always.
    """

    start: datetime
    end: datetime
    now: datetime
    duration: timedelta
    window: BookingWindow
    interval: timedelta | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    max_per_day: int | None = None
    threshold: float = 1.0

    def __post_init__(self) -> None:
        for name in ("start", "end", "now"):
            _aware(getattr(self, name), name)
        if self.duration < _MIN_STEP:
            raise ValueError("A booking must last at least one minute.")
        if self.interval is not None and self.interval < _MIN_STEP:
            # A microsecond grid over a month would be billions of candidates.
            raise ValueError("The slot grid step must be at least one minute.")
        if self.buffer_before < _ZERO or self.buffer_after < _ZERO:
            raise ValueError("Buffers cannot be negative.")
        if self.max_per_day is not None and self.max_per_day < 0:
            raise ValueError("Maximum bookings per day cannot be negative.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("The availability threshold is a fraction between 0 and 1.")

    @property
    def step(self) -> timedelta:
        """The grid step actually used."""
        return self.interval if self.interval is not None else self.duration

    @cached_property
    def open_pairs(self) -> list[Pair]:
        """The bookable time in ``[start, end)`` as merged UTC pairs (:func:`window_pairs`),
        worked out once per request: the loader narrows calendar busy time to it and the
        engine finds slots in it."""
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        return window_pairs(self.window, self.now, start, end) if start < end else []

    def required(self, group_size: int) -> int:
        """How many of ``group_size`` people must be free: ``ceil(threshold * n)``, at least 1.

        Rounded to 9 places first so that 0.3 * 10 counts as 3, not 3.0000000000000004 → 4.
        """
        return max(1, math.ceil(round(self.threshold * group_size, 9)))


class Slot(NamedTuple):
    """A bookable start, with the people free for it (least-loaded first, ties by id).

    A named tuple rather than a frozen dataclass: equally immutable and ordered, and built
    in under half the time (tuple's own constructor instead of one ``object.__setattr__``
    per field), which counts when an answer has hundreds of slots (issue [14]). Like any
    tuple it also equals a plain ``(start, end, people)``."""

    start: datetime
    end: datetime
    people: tuple[int, ...]


# --- the engine ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Query:
    """A request normalised to UTC, with the window computed once for everybody.

    ``start``/``end`` are the span of the window (the requested range cut to bookable time):
    nothing outside it can be offered, so working hours are only expanded over it. A query
    with an empty window has ``start == end``.
    """

    start: datetime
    end: datetime
    duration: timedelta
    step: timedelta
    before: timedelta
    after: timedelta
    max_per_day: int | None
    window: list[Pair]


def _query(request: SlotRequest) -> _Query:
    start = request.start.astimezone(UTC)
    end = request.end.astimezone(UTC)
    window = request.open_pairs
    if window:
        start, end = window[0][0], window[-1][1]
    else:
        end = start
    return _Query(
        start=start,
        end=end,
        duration=request.duration,
        step=request.step,
        before=request.buffer_before,
        after=request.buffer_after,
        max_per_day=request.max_per_day,
        window=window,
    )


def _free_pairs(
    person: Person, q: _Query, shifts: list[Pair] | None = None, worked: dict | None = None
) -> list[Pair]:
    """Working ∩ window − busy padded by the new booking's buffers (merged pairs).

    ``worked`` remembers working ∩ window per ``WorkingHours`` object for one query: the
    members of a team mostly share theirs (the loader gives them the same object)."""
    if not person.available or not q.window:
        return []
    if worked is None:
        worked = {}
    free = worked.get(id(person.hours))
    if free is None:
        free = worked[id(person.hours)] = intersect_pairs(
            working_pairs(person.hours, q.start, q.end, shifts), q.window
        )
    if not free or not (person.busy or person.busy_pairs):
        return free
    before, after = q.before, q.after
    busy = person.busy_pairs
    if person.busy:
        busy = [*busy, *((b.start, b.end) for b in person.busy)]
    # A new booking at s occupies [s - before, s + duration + after); it clashes with a busy
    # block [bs, be) exactly when [s, s + duration) meets [bs - after, be + before).
    return subtract_pairs(free, merge_widened(busy, after, before))


def _full_days(person: Person, limit: int) -> list[Pair]:
    """The UTC spans of the person's local days that already have ``limit`` bookings."""
    zone = person.hours.zone
    spans = [
        (_resolve(day, _MIDNIGHT, zone), _resolve(day + _ONE_DAY, _MIDNIGHT, zone))
        for day, count in person.bookings_per_day.items()
        if count >= limit
    ]
    return merge_pairs(s for s in spans if s[0] < s[1])


def _start_ranges(
    person: Person, q: _Query, shifts: list[Pair] | None = None, worked: dict | None = None
) -> list[Pair]:
    """Half-open ranges of instants at which a slot may start for this person.

    From each free piece ``[L, R)`` long enough, starts run over ``[L, R - duration]``; days
    at their ``max_per_day`` are then removed (a booking counts against the local date it
    starts on).
    """
    limit = q.max_per_day
    if limit == 0:
        return []
    # The last start is R - duration, so the range is [L, R - duration + tick): one subtraction
    # a piece, which also tells whether the piece is long enough (R - L >= duration).
    shrink = q.duration - _TICK
    starts = [
        (lo, last)
        for lo, hi in _free_pairs(person, q, shifts, worked)
        if (last := hi - shrink) > lo
    ]
    if starts and limit is not None and person.bookings_per_day:
        full = _full_days(person, limit)
        if full:
            starts = subtract_pairs(starts, full)
    return starts


def _shifts(people: Sequence[Person], q: _Query) -> list[list[Pair]]:
    """Each person's shift ranges (grid anchors), computed once per query; none if unavailable."""
    if not q.window:
        return [[] for _ in people]
    found: dict[int, list[Pair]] = {}  # per WorkingHours object: team members share theirs
    out = []
    for p in people:
        if not p.available:
            out.append([])
            continue
        ranges = found.get(id(p.hours))
        if ranges is None:
            ranges = found[id(p.hours)] = shift_ranges(p.hours, q.start, q.end)
        out.append(ranges)
    return out


def _grid(shifts: Sequence[list[Pair]], q: _Query) -> list[datetime]:
    """Candidate starts: steps of the grid anchored at the start of each worked shift.

    Anchoring at the shift's own start (09:00 local) rather than at the query start, at the
    end of someone's leave or at a busy block keeps starts on a predictable grid (09:00,
    09:30, …). Steps are real (UTC) time, so a shift across a clock change keeps its spacing.
    Only people who can offer anything contribute anchors (see :func:`_shifts`).
    """
    if not q.window:
        return []
    lo = q.start
    hi = q.end - q.duration  # the last possible start
    if hi < lo:
        return []
    step = q.step
    anchors: set[Pair] = set()
    for ranges in shifts:
        anchors.update(ranges)
    runs: list[tuple[datetime, int]] = []  # (first point, number of points) per anchor
    for a, b in anchors:
        stop = b if b <= hi else hi + _TICK
        s = a
        if s < lo:
            s = a + -((a - lo) // step) * step  # first grid point at or after lo
        if s < stop:
            runs.append((s, -((s - stop) // step)))  # the points s + k * step < stop
    if not runs:
        return []
    runs.sort()
    offsets = [k * step for k in range(max(n for _, n in runs))]
    # Shifts that do not overlap (the usual case: one per day) give runs in order that share
    # no point, so their points are simply joined; otherwise they are merged as a set.
    last = None
    joined = True
    for s, n in runs:
        if last is not None and s <= last:
            joined = False
            break
        last = s + offsets[n - 1]
    points = [s + offset for s, n in runs for offset in offsets[:n]]
    return points if joined else sorted(set(points))


def _mark(
    hits: list[list[int]], candidates: list[datetime], person_id: int, ranges: list[Pair]
) -> None:
    j = 0
    for lo, hi in ranges:  # sorted: each range's candidates come after the previous one's
        i = bisect_left(candidates, lo, j)
        j = bisect_left(candidates, hi, i)
        for found in hits[i:j]:  # a slice of the lists: no index arithmetic per candidate
            found.append(person_id)


def free_intervals(person: Person, request: SlotRequest) -> list[Interval]:
    """Working hours ∩ booking window − busy time padded by the new booking's buffers.

    For inspection and the UI: a slot is offered for this person exactly when it lies on the
    grid, inside one of these intervals, and its local day is below ``max_per_day``.
    Nothing for a person whose busy data is unreliable (``available=False``).
    """
    q = _query(request)
    if not q.start < q.end:
        return []
    return [Interval(s, e) for s, e in _free_pairs(person, q)]


def find_slots(people: Sequence[Person], request: SlotRequest) -> list[Slot]:
    """Bookable slots for ``people`` (one person or a group), sorted by start, no duplicates.

    A start is offered when at least ``max(1, ceil(threshold * len(people)))`` people are free
    for ``[start, start + duration)``: inside their working hours and the booking window, with
    the padded range clear of their busy time, their data ``available`` and their day below
    ``max_per_day``. Each slot lists the free people least-loaded first (ties by id), which is
    the order booking assigns them in. Unavailable people still count in ``len(people)``: stale
    data must make a group *less* bookable, never more.

    Candidate starts are the union of the available people's grids (:func:`_grid`); a person
    counts as free at any candidate, on their own grid or not, so members whose shifts start at
    09:00 and 09:15 can still share slots. For one person it is simply their own grid.
    """
    if not people:
        return []
    q = _query(request)
    if not q.start < q.end:
        return []
    ordered = sorted(people, key=lambda p: (p.load, p.id))
    shifts = _shifts(ordered, q)
    candidates = _grid(shifts, q)
    if not candidates:
        return []
    need = request.required(len(people))
    worked: dict[int, list[Pair]] = {}  # see _free_pairs
    hits: list[list[int]] = [[] for _ in candidates]
    for person, ranges in zip(ordered, shifts, strict=True):
        _mark(hits, candidates, person.id, _start_ranges(person, q, ranges, worked))
    duration = q.duration
    return [
        Slot(start, start + duration, tuple(ids))
        for start, ids in zip(candidates, hits, strict=True)
        if len(ids) >= need
    ]
