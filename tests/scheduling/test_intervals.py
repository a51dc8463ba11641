"""Property tests of the interval algebra against minute-resolution sets.

Each interval is a set of whole minutes; the algebra must agree with set union, difference and
intersection, and its results must be in canonical form (sorted, disjoint, never touching).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scheduling.intervals import (
    Interval,
    covers,
    intersect,
    merge,
    merge_pairs,
    merge_widened,
    overlaps_any,
    subtract,
)

BASE = datetime(2024, 3, 31, tzinfo=UTC)  # a London clock-change day, for the zone cases
ZONES = [UTC, ZoneInfo("Europe/London"), ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/New_York")]


def at(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


def minutes_of(intervals: list[Interval]) -> set[int]:
    out: set[int] = set()
    for i in intervals:
        out.update(
            range(
                int((i.start - BASE) / timedelta(minutes=1)),
                int((i.end - BASE) / timedelta(minutes=1)),
            )
        )
    return out


def canonical(minutes: set[int]) -> list[Interval]:
    """The unique merged form of a minute set: maximal runs of consecutive minutes."""
    out: list[Interval] = []
    for m in sorted(minutes):
        if out and out[-1].end == at(m):
            out[-1] = Interval(out[-1].start, at(m + 1))
        else:
            out.append(Interval(at(m), at(m + 1)))
    return out


@st.composite
def intervals(draw, max_minute: int = 120) -> Interval:
    a = draw(st.integers(0, max_minute - 1))
    b = draw(st.integers(a + 1, max_minute))
    zone = draw(st.sampled_from(ZONES))  # any aware zone in, UTC out
    return Interval(at(a).astimezone(zone), at(b).astimezone(zone))


interval_lists = st.lists(intervals(), max_size=12)


@given(interval_lists)
def test_merge_is_the_canonical_union(xs: list[Interval]) -> None:
    result = merge(xs)
    assert result == canonical(minutes_of(xs))
    assert all(i.start.tzinfo is UTC and i.end.tzinfo is UTC for i in result)


@given(interval_lists, st.integers(0, 30), st.integers(0, 30))
def test_merge_widened_is_the_union_of_the_widened_pairs(
    xs: list[Interval], earlier: int, later: int
) -> None:
    pairs = [(i.start, i.end) for i in xs]
    before, after = timedelta(minutes=earlier), timedelta(minutes=later)
    widened = [(s - before, e + after) for s, e in pairs]
    assert merge_widened(pairs, before, after) == merge_pairs(widened)
    assert merge_widened(pairs, timedelta(0), timedelta(0)) == merge_pairs(pairs)


@given(interval_lists, interval_lists)
def test_subtract_is_set_difference(base: list[Interval], remove: list[Interval]) -> None:
    assert subtract(base, remove) == canonical(minutes_of(base) - minutes_of(remove))


@given(interval_lists, interval_lists)
def test_intersect_is_set_intersection(a: list[Interval], b: list[Interval]) -> None:
    assert intersect(a, b) == canonical(minutes_of(a) & minutes_of(b))


@given(interval_lists, intervals())
def test_covers_means_every_minute_is_inside(xs: list[Interval], probe: Interval) -> None:
    assert covers(xs, probe) == (minutes_of([probe]) <= minutes_of(xs))


@given(interval_lists, intervals())
def test_overlaps_any_means_a_shared_minute(xs: list[Interval], probe: Interval) -> None:
    assert overlaps_any(xs, probe) == bool(minutes_of([probe]) & minutes_of(xs))


def test_touching_intervals_merge_but_do_not_overlap() -> None:
    morning, afternoon = Interval(at(0), at(60)), Interval(at(60), at(120))
    assert merge([afternoon, morning]) == [Interval(at(0), at(120))]
    assert not overlaps_any([morning], afternoon)
    assert covers([morning, afternoon], Interval(at(30), at(90)))


def test_interval_rejects_empty_reversed_and_naive() -> None:
    with pytest.raises(ValueError):
        Interval(at(10), at(10))
    with pytest.raises(ValueError):
        Interval(at(10), at(5))
    with pytest.raises(ValueError):
        Interval(datetime(2024, 1, 1), datetime(2024, 1, 2))


def test_interval_orders_by_instant_in_the_repeated_autumn_hour() -> None:
    """Two London datetimes compare by wall clock; Intervals must compare by instant."""
    london = ZoneInfo("Europe/London")
    first = datetime(2024, 10, 27, 1, 30, tzinfo=london)  # BST, 00:30 UTC
    second = first.replace(fold=1)  # GMT, 01:30 UTC
    # (Adding to an aware datetime is wall-clock arithmetic and resets fold, so add in UTC.)
    a = Interval(first, first.astimezone(UTC) + timedelta(minutes=10))
    b = Interval(second, second.astimezone(UTC) + timedelta(minutes=10))
    assert a < b
    assert not overlaps_any([a], b)
    assert len(merge([a, b])) == 2


@settings(max_examples=50)
@given(st.lists(intervals(max_minute=2000), max_size=60), st.lists(intervals(2000), max_size=60))
def test_larger_inputs_agree_too(a: list[Interval], b: list[Interval]) -> None:
    assert subtract(a, b) == canonical(minutes_of(a) - minutes_of(b))
    assert intersect(a, b) == canonical(minutes_of(a) & minutes_of(b))
