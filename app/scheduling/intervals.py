"""Half-open time intervals and the few set operations availability needs.

Everything here is a sweep over sorted lists, because availability is "working time ∩ booking
window − busy time" for many people at once and must stay fast: no per-minute sets, no
quadratic scans. The pair functions (``*_pairs``) work on plain ``(start, end)`` tuples of any
orderable type; the engine uses them directly on its hot path, and the public ``Interval``
functions are thin wrappers over the same code, so the property tests exercise what runs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, TypeVar

T = TypeVar("T", bound=Any)
Pair = tuple[T, T]
_first = itemgetter(0)


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    """The instants ``start <= t < end``.

    Half-open so that back-to-back bookings (10:00-11:00, 11:00-12:00) do not overlap. Both
    ends must be aware; they are stored in UTC so that ordering and equality never depend on
    a zone's wall clock (two datetimes sharing a ``ZoneInfo`` compare by wall time and get the
    repeated autumn hour wrong).
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = self.start, self.end
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("Interval needs aware datetimes (with a time zone).")
        if start.tzinfo is not UTC:
            start = start.astimezone(UTC)
            object.__setattr__(self, "start", start)
        if end.tzinfo is not UTC:
            end = end.astimezone(UTC)
            object.__setattr__(self, "end", end)
        if not start < end:
            raise ValueError(f"Interval must start before it ends: {start} >= {end}.")

    @property
    def duration(self) -> timedelta:
        """How long the interval lasts."""
        return self.end - self.start


# --- the algebra on (start, end) pairs -------------------------------------------------


def merge_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Sorted, with overlapping or touching pairs joined (so a result never touches itself)."""
    ordered = sorted(pairs)
    if not ordered:
        return []
    out: list[Pair] = []
    cur_start, cur_end = ordered[0]
    for start, end in ordered:
        if start <= cur_end:
            if end > cur_end:
                cur_end = end
        else:
            out.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    out.append((cur_start, cur_end))
    return out


def merge_widened(pairs: Iterable[Pair], earlier: Any, later: Any) -> list[Pair]:
    """:func:`merge_pairs` of each ``(start - earlier, end + later)`` (``earlier`` and
    ``later`` not negative), widened only once merged: two pairs join when the gap between
    them is at most ``earlier + later``. The engine widens every busy block of a person by
    the new booking's buffers; most join another, and are then never widened themselves."""
    ordered = sorted(pairs)
    if not ordered:
        return []
    gap = earlier + later
    out: list[Pair] = []
    cur_start, cur_end = ordered[0]
    reach = cur_end + gap
    for start, end in ordered:
        if start <= reach:
            if end > cur_end:
                cur_end = end
                reach = end + gap
        else:
            out.append((cur_start - earlier, cur_end + later))
            cur_start, cur_end = start, end
            reach = end + gap
    out.append((cur_start - earlier, cur_end + later))
    return out


def subtract_pairs(base: Sequence[Pair], remove: Sequence[Pair]) -> list[Pair]:
    """``base`` minus ``remove``; both must already be merged (sorted, disjoint)."""
    out: list[Pair] = []
    j = 0
    n = len(remove)
    for start, end in base:
        # Skip removals that end before this piece starts: they cannot affect later pieces.
        while j < n and remove[j][1] <= start:
            j += 1
        k = j
        cur = start
        while k < n and remove[k][0] < end:
            r_start, r_end = remove[k]
            if r_start > cur:
                out.append((cur, r_start))
            if r_end > cur:
                cur = r_end
            if cur >= end:
                break
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def intersect_pairs(a: Sequence[Pair], b: Sequence[Pair]) -> list[Pair]:
    """Where both ``a`` and ``b`` are; both must already be merged (sorted, disjoint)."""
    out: list[Pair] = []
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        lo = a_start if a_start > b_start else b_start
        hi = a_end if a_end < b_end else b_end
        if lo < hi:
            out.append((lo, hi))
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return out


def clip_pairs(pairs: Sequence[Pair], lo: Any, hi: Any) -> list[Pair]:
    """Merged ``pairs`` cut to ``[lo, hi)``."""
    out: list[Pair] = []
    for start, end in pairs:
        if end <= lo:
            continue
        if start >= hi:
            break
        s = start if start > lo else lo
        e = end if end < hi else hi
        if s < e:
            out.append((s, e))
    return out


# --- the public Interval functions -------------------------------------------------------


def _to_pairs(intervals: Iterable[Interval]) -> list[Pair]:
    return [(i.start, i.end) for i in intervals]


def _to_intervals(pairs: Iterable[Pair]) -> list[Interval]:
    return [Interval(s, e) for s, e in pairs]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined into one.

    Touching ones are joined because a slot may run across the join (09:00-12:00 and
    12:00-17:00 working hours allow an 11:30-12:30 booking).
    """
    return _to_intervals(merge_pairs(_to_pairs(intervals)))


def subtract(base: Sequence[Interval], remove: Sequence[Interval]) -> list[Interval]:
    """The parts of ``base`` not covered by ``remove``, merged and sorted.

    Inputs may come in any order and may overlap: they are merged first (linear for input that
    is already sorted), then one linear sweep does the rest.
    """
    return _to_intervals(
        subtract_pairs(merge_pairs(_to_pairs(base)), merge_pairs(_to_pairs(remove)))
    )


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Time that lies in both ``a`` and ``b``, merged and sorted (inputs in any order)."""
    return _to_intervals(intersect_pairs(merge_pairs(_to_pairs(a)), merge_pairs(_to_pairs(b))))


def covers(intervals: Sequence[Interval], interval: Interval) -> bool:
    """Whether ``interval`` lies wholly inside the union of ``intervals``.

    Since touching intervals are merged, 09:00-12:00 + 12:00-17:00 covers 11:30-12:30. The
    input is merged first, so any order is accepted (and correctness never depends on the
    caller having sorted); the lookup itself is a bisect.
    """
    merged = merge_pairs(_to_pairs(intervals))
    i = bisect_right(merged, interval.start, key=_first) - 1
    return i >= 0 and merged[i][0] <= interval.start and interval.end <= merged[i][1]


def overlaps_any(intervals: Sequence[Interval], interval: Interval) -> bool:
    """Whether ``interval`` shares any instant with one of ``intervals`` (touching is not).

    The input is merged first, so any order is accepted; the lookup itself is a bisect.
    """
    merged = merge_pairs(_to_pairs(intervals))
    # The last merged piece starting before interval.end is the only candidate: earlier ones
    # end before it starts (they are disjoint and sorted).
    i = bisect_left(merged, interval.end, key=_first) - 1
    return i >= 0 and merged[i][1] > interval.start
