"""Known answers across clock changes (A6): Europe/London and America/New_York, 2024.

London: 31 March 01:00 GMT → 02:00 BST (01:00 UTC); 27 October 02:00 BST → 01:00 GMT (01:00 UTC).
New York: 10 March 02:00 EST → 03:00 EDT (07:00 UTC); 3 November 02:00 EDT → 01:00 EST (06:00 UTC).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.intervals import Interval
from app.scheduling.localtime import wall_to_utc
from app.scheduling.rules import BookingWindow, WorkingHours, working_intervals
from app.scheduling.slots import Person, SlotRequest, find_slots

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
EVERY_DAY = range(7)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nine_to_five(zone: ZoneInfo, **kw) -> WorkingHours:
    return WorkingHours(zone, {d: ((time(9), time(17)),) for d in EVERY_DAY}, **kw)


def slots_for(hours: WorkingHours, start: datetime, end: datetime, minutes: int = 60):
    request = SlotRequest(
        start=start,
        end=end,
        now=start - timedelta(days=1),
        duration=timedelta(minutes=minutes),
        interval=timedelta(minutes=30),
        window=BookingWindow(hours.zone, weekends=True),
    )
    return find_slots([Person(1, hours)], request)


def local_starts_by_day(slots, zone: ZoneInfo) -> dict[date, list[str]]:
    out: dict[date, list[str]] = defaultdict(list)
    for slot in slots:
        local = slot.start.astimezone(zone)
        out[local.date()].append(f"{local:%H:%M}")
    return dict(out)


NINE_TO_FOUR = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)][:-1]  # 09:00…16:00


@pytest.mark.parametrize(
    ("zone", "change_day"),
    [
        (LONDON, date(2024, 3, 31)),
        (LONDON, date(2024, 10, 27)),
        (NEW_YORK, date(2024, 3, 10)),
        (NEW_YORK, date(2024, 11, 3)),
    ],
)
def test_a_nine_to_five_day_is_nine_to_five_local_around_the_change(zone, change_day) -> None:
    start = datetime.combine(change_day - timedelta(days=1), time(0), tzinfo=zone)
    end = datetime.combine(change_day + timedelta(days=2), time(0), tzinfo=zone)
    by_day = local_starts_by_day(slots_for(nine_to_five(zone), start, end), zone)
    assert sorted(by_day) == [change_day + timedelta(days=d) for d in (-1, 0, 1)]
    for starts in by_day.values():
        assert starts == NINE_TO_FOUR
    # ... and the UTC instants really moved by the hour on the change day.
    before = wall_to_utc(change_day - timedelta(days=1), time(9), zone)
    after = wall_to_utc(change_day + timedelta(days=1), time(9), zone)
    assert after - before != timedelta(days=2)


def test_london_nine_oclock_in_utc_on_both_sides_of_the_spring_change() -> None:
    slots = slots_for(nine_to_five(LONDON), utc(2024, 3, 30), utc(2024, 4, 1))
    firsts = sorted({s.start for s in slots if s.start.astimezone(LONDON).hour == 9})
    assert firsts[0] == utc(2024, 3, 30, 9)  # GMT
    assert firsts[2] == utc(2024, 3, 31, 8)  # BST


def test_spring_gap_start_moves_to_the_end_of_the_gap() -> None:
    # 01:30 does not exist on 31 March in London: the shift starts at 02:00 BST = 01:00 UTC.
    day = date(2024, 3, 31)
    hours = WorkingHours(LONDON, {}, {day: ((time(1, 30), time(3, 30)),)})
    assert working_intervals(hours, utc(2024, 3, 30), utc(2024, 4, 1)) == [
        Interval(utc(2024, 3, 31, 1), utc(2024, 3, 31, 2, 30))
    ]
    slots = slots_for(hours, utc(2024, 3, 30), utc(2024, 4, 1), minutes=30)
    assert [s.start.astimezone(LONDON).strftime("%H:%M") for s in slots] == [
        "02:00",
        "02:30",
        "03:00",
    ]


def test_spring_gap_end_and_a_range_wholly_inside_the_gap() -> None:
    day = date(2024, 3, 31)
    hours = WorkingHours(LONDON, {}, {day: ((time(0, 0), time(1, 30)), (time(1, 15), time(1, 45)))})
    # 00:00-01:30 ends where the gap ends (01:00 UTC); 01:15-01:45 vanishes, without error.
    assert working_intervals(hours, utc(2024, 3, 30), utc(2024, 4, 1)) == [
        Interval(utc(2024, 3, 31, 0), utc(2024, 3, 31, 1))
    ]


def test_autumn_repeated_time_takes_its_first_occurrence_without_duplicates() -> None:
    # 01:30 happens twice on 27 October in London; a 01:30-03:30 shift starts at the first
    # (01:30 BST = 00:30 UTC) and ends 03:30 GMT = 03:30 UTC: three real hours.
    day = date(2024, 10, 27)
    hours = WorkingHours(LONDON, {}, {day: ((time(1, 30), time(3, 30)),)})
    assert working_intervals(hours, utc(2024, 10, 26), utc(2024, 10, 28)) == [
        Interval(utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 3, 30))
    ]
    slots = slots_for(hours, utc(2024, 10, 26), utc(2024, 10, 28), minutes=30)
    starts = [s.start for s in slots]
    assert starts == [utc(2024, 10, 27, 0, 30) + timedelta(minutes=30 * k) for k in range(6)]
    assert len(set(starts)) == len(starts)
    local = [f"{s.astimezone(LONDON):%H:%M %Z}" for s in starts]
    assert local == [
        "01:30 BST",
        "01:00 GMT",
        "01:30 GMT",
        "02:00 GMT",
        "02:30 GMT",
        "03:00 GMT",
    ]


def test_autumn_shift_ending_at_a_repeated_time_ends_at_its_first_occurrence() -> None:
    day = date(2024, 10, 27)
    hours = WorkingHours(LONDON, {}, {day: ((time(0, 30), time(1, 30)),)})
    assert working_intervals(hours, utc(2024, 10, 26), utc(2024, 10, 28)) == [
        Interval(utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 0, 30))
    ]


def test_new_york_gap_and_overlap_as_weekly_hours() -> None:
    # A Sunday night shift 01:30-03:30 every week, across both US changes of 2024.
    hours = WorkingHours(NEW_YORK, {6: ((time(1, 30), time(3, 30)),)})
    spring = working_intervals(hours, utc(2024, 3, 9), utc(2024, 3, 12))
    autumn = working_intervals(hours, utc(2024, 11, 2), utc(2024, 11, 5))
    # 10 March: 01:30 EST (06:30 UTC) to 03:30 EDT (07:30 UTC): one real hour.
    assert spring == [Interval(utc(2024, 3, 10, 6, 30), utc(2024, 3, 10, 7, 30))]
    # 3 November: 01:30 EDT (05:30 UTC, first occurrence) to 03:30 EST (08:30 UTC).
    assert autumn == [Interval(utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 8, 30))]
    # A 02:30 start does not exist on 10 March: it moves to 03:00 EDT = 07:00 UTC.
    gap = WorkingHours(NEW_YORK, {6: ((time(2, 30), time(4)),)})
    assert working_intervals(gap, utc(2024, 3, 9), utc(2024, 3, 12)) == [
        Interval(utc(2024, 3, 10, 7), utc(2024, 3, 10, 8))
    ]


def test_a_visitor_zone_only_changes_presentation() -> None:
    """Slots are UTC instants; showing them in Sydney or New York is the caller's job (A6)."""
    slots = slots_for(nine_to_five(LONDON), utc(2024, 3, 30), utc(2024, 4, 1))
    assert all(s.start.tzinfo is UTC for s in slots)
    assert slots[0].start.astimezone(ZoneInfo("Australia/Sydney")).strftime("%H:%M") == "20:00"
