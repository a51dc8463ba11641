"""One test per booking rule (A3, A4), each failing if the rule were ignored.

Winter in London (local time = UTC), so the expected instants read like the local times.
"Now" is Wednesday 15 January 2025, 10:07.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.assistant import CommonSlot, common_slots
from app.scheduling.intervals import Interval
from app.scheduling.rules import BookingWindow, WorkingHours, window_intervals
from app.scheduling.slots import Person, SlotRequest, find_slots, free_intervals

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2025, 1, 15, 10, 7, tzinfo=UTC)  # a Wednesday
WED, THU, FRI, SAT, SUN, MON = (date(2025, 1, d) for d in (15, 16, 17, 18, 19, 20))
HOUR = timedelta(hours=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def every_day(zone: ZoneInfo = LONDON, start: int = 9, end: int = 17) -> WorkingHours:
    return WorkingHours(zone, {d: ((time(start), time(end)),) for d in range(7)})


def person(pid: int = 1, **kw) -> Person:
    kw.setdefault("hours", every_day())
    return Person(pid, **kw)


def request(start: datetime, end: datetime, **kw) -> SlotRequest:
    window = kw.pop("window", BookingWindow(LONDON, weekends=True))
    kw.setdefault("duration", HOUR)
    kw.setdefault("interval", timedelta(minutes=30))
    return SlotRequest(start=start, end=end, now=kw.pop("now", NOW), window=window, **kw)


def starts(slots) -> list[datetime]:
    return [s.start for s in slots]


def first_start(people, req) -> datetime:
    return find_slots(people, req)[0].start


# --- booking window ---------------------------------------------------------------------


def test_weekends_are_off_by_default_and_on_when_enabled() -> None:
    off = request(at(SAT, 0), at(MON, 0), window=BookingWindow(LONDON))
    on = request(at(SAT, 0), at(MON, 0), window=BookingWindow(LONDON, weekends=True))
    assert find_slots([person()], off) == []
    assert len(find_slots([person()], on)) == 2 * 15


def test_weekends_are_local_to_the_organisation_zone() -> None:
    # Saturday begins in Auckland (+13 in January) at 11:00 UTC on Friday.
    auckland = ZoneInfo("Pacific/Auckland")
    friday = WorkingHours(LONDON, {4: ((time(8), time(13)),)})
    req = request(at(FRI, 0), at(SAT, 0), window=BookingWindow(auckland))
    assert starts(find_slots([person(hours=friday)], req)) == [
        at(FRI, 8),
        at(FRI, 8, 30),
        at(FRI, 9),
        at(FRI, 9, 30),
        at(FRI, 10),
    ]


def test_nothing_in_the_past() -> None:
    assert first_start([person()], request(at(WED, 0), at(THU, 0))) == at(WED, 10, 30)


def test_minimum_notice() -> None:
    window = BookingWindow(LONDON, weekends=True, minimum_notice=2 * HOUR)
    assert first_start([person()], request(at(WED, 0), at(THU, 0), window=window)) == at(
        WED, 12, 30
    )


@pytest.mark.parametrize(
    ("earliest_day", "first"), [(0, at(WED, 10, 30)), (1, at(THU, 9)), (3, at(SAT, 9))]
)
def test_earliest_day(earliest_day: int, first: datetime) -> None:
    window = BookingWindow(LONDON, weekends=True, earliest_day=earliest_day)
    assert first_start([person()], request(at(WED, 0), at(MON, 0), window=window)) == first


def test_earliest_day_counts_local_days() -> None:
    # 23:30 UTC on Wednesday is already Thursday 10:30 in Auckland: "tomorrow" is Friday there,
    # which begins at Thursday 11:00 UTC.
    auckland = ZoneInfo("Pacific/Auckland")
    window = BookingWindow(auckland, weekends=True, earliest_day=1)
    lo = window_intervals(window, at(WED, 23, 30), at(WED, 0), at(SAT, 0))[0].start
    assert lo == at(THU, 11)


def test_disabled_window() -> None:
    window = BookingWindow(LONDON, weekends=True, disabled_window=3 * HOUR)
    assert first_start([person()], request(at(WED, 0), at(THU, 0), window=window)) == at(
        WED, 13, 30
    )


def test_default_horizon_is_one_year() -> None:
    window = BookingWindow(LONDON, weekends=True)
    day_364, day_366 = (NOW + timedelta(days=n) for n in (364, 366))
    near = request(day_364.replace(hour=0, minute=0), day_364.replace(hour=23), window=window)
    far = request(day_366.replace(hour=0, minute=0), day_366.replace(hour=23), window=window)
    assert find_slots([person()], near)
    assert find_slots([person()], far) == []


def test_horizon_cuts_within_a_day() -> None:
    window = BookingWindow(LONDON, weekends=True, horizon=timedelta(hours=4))  # until 14:07
    assert starts(find_slots([person()], request(at(WED, 0), at(THU, 0), window=window)))[-1] == at(
        WED, 13
    )


def test_window_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        BookingWindow(LONDON, minimum_notice=-HOUR)
    with pytest.raises(ValueError):
        BookingWindow(LONDON, earliest_day=-1)


# --- per-person rules ---------------------------------------------------------------------


def test_max_per_day() -> None:
    p = person(bookings_per_day={THU: 2})
    full = request(at(THU, 0), at(SAT, 0), max_per_day=2)
    room = request(at(THU, 0), at(SAT, 0), max_per_day=3)
    assert {s.start.date() for s in find_slots([p], full)} == {FRI}
    assert {s.start.date() for s in find_slots([p], room)} == {THU, FRI}


def test_max_per_day_counts_the_persons_local_day() -> None:
    # In Auckland (+13) Thursday is Wednesday 11:00 UTC to Thursday 11:00 UTC.
    auckland = ZoneInfo("Pacific/Auckland")
    p = person(hours=every_day(auckland, 0, 23), bookings_per_day={THU: 1})
    req = request(at(WED, 0), at(FRI, 0), now=at(WED, 0) - 24 * HOUR, max_per_day=1, interval=HOUR)
    got = starts(find_slots([p], req))
    assert at(WED, 9) in got and at(THU, 11) in got  # 22:00 Wednesday, 00:00 Friday
    assert not [s for s in got if at(WED, 11) <= s < at(THU, 11)]


def test_buffer_before_keeps_clear_of_a_preceding_busy_block() -> None:
    busy = (Interval(at(THU, 12), at(THU, 13)),)
    plain = starts(find_slots([person(busy=busy)], request(at(THU, 0), at(FRI, 0))))
    padded = starts(
        find_slots(
            [person(busy=busy)],
            request(at(THU, 0), at(FRI, 0), buffer_before=timedelta(minutes=30)),
        )
    )
    assert at(THU, 13) in plain
    assert at(THU, 13) not in padded and at(THU, 13, 30) in padded


def test_buffer_after_keeps_clear_of_a_following_busy_block() -> None:
    busy = (Interval(at(THU, 12), at(THU, 13)),)
    plain = starts(find_slots([person(busy=busy)], request(at(THU, 0), at(FRI, 0))))
    padded = starts(
        find_slots(
            [person(busy=busy)],
            request(at(THU, 0), at(FRI, 0), buffer_after=timedelta(minutes=30)),
        )
    )
    assert at(THU, 11) in plain
    assert at(THU, 11) not in padded and at(THU, 10, 30) in padded


def test_unavailable_person_offers_nothing() -> None:
    req = request(at(THU, 0), at(FRI, 0))
    assert find_slots([person(available=False)], req) == []
    assert free_intervals(person(available=False), req) == []


def test_time_off_and_overrides() -> None:
    hours = WorkingHours(
        LONDON,
        {d: ((time(9), time(17)),) for d in range(7)},
        overrides={FRI: ()},
        time_off=(Interval(at(THU, 9), at(THU, 15)),),
    )
    got = starts(find_slots([person(hours=hours)], request(at(THU, 0), at(SAT, 0))))
    assert got == [at(THU, 15), at(THU, 15, 30), at(THU, 16)]


# --- grid --------------------------------------------------------------------------------


def test_grid_is_anchored_at_the_shift_start_not_the_query_or_the_free_time() -> None:
    hours = WorkingHours(LONDON, {d: ((time(9, 15), time(17)),) for d in range(7)})
    busy = (Interval(at(THU, 9, 15), at(THU, 10, 5)),)
    req = request(at(THU, 9, 20), at(FRI, 0), interval=HOUR)
    assert starts(find_slots([person(hours=hours, busy=busy)], req))[:2] == [
        at(THU, 10, 15),
        at(THU, 11, 15),
    ]


def test_evening_shift_of_the_previous_local_date_is_found() -> None:
    # New York 20:00-23:00 on Wednesday is Thursday 01:00-04:00 UTC.
    new_york = ZoneInfo("America/New_York")
    hours = WorkingHours(new_york, {2: ((time(20), time(23)),)})
    got = starts(find_slots([person(hours=hours)], request(at(THU, 0), at(FRI, 0))))
    assert got[0] == at(THU, 1) and got[-1] == at(THU, 3)


def test_default_grid_step_is_the_duration() -> None:
    req = request(at(THU, 0), at(FRI, 0), interval=None, duration=2 * HOUR)
    assert starts(find_slots([person()], req)) == [at(THU, h) for h in (9, 11, 13, 15)]


# --- groups -------------------------------------------------------------------------------


def four_people_two_busy_at_noon() -> list[Person]:
    noon = (Interval(at(THU, 12), at(THU, 13)),)
    return [person(1, busy=noon), person(2, busy=noon), person(3), person(4)]


def test_threshold_half_offers_noon_with_two_of_four_free() -> None:
    req = request(at(THU, 12), at(THU, 13), threshold=0.5)
    assert find_slots(four_people_two_busy_at_noon(), req) == [
        find_slots([person(3), person(4)], req)[0]
    ]
    assert find_slots(four_people_two_busy_at_noon(), req)[0].people == (3, 4)


def test_threshold_full_needs_everybody() -> None:
    req = request(at(THU, 12), at(THU, 13), threshold=1.0)
    assert find_slots(four_people_two_busy_at_noon(), req) == []
    assert find_slots(four_people_two_busy_at_noon()[2:], req)


def test_threshold_rounds_up_and_never_below_one_person() -> None:
    req = request(at(THU, 12), at(THU, 13), threshold=0.3)  # 0.3 * 10 = 3 (not 4)
    people = [person(i, busy=(Interval(at(THU, 12), at(THU, 13)),)) for i in range(1, 8)]
    people += [person(i) for i in (8, 9, 10)]
    assert [s.people for s in find_slots(people, req)] == [(8, 9, 10)]
    assert find_slots([*people[:7], person(8)], request(at(THU, 12), at(THU, 13), threshold=0))


def test_unavailable_people_still_count_towards_the_threshold() -> None:
    req = request(at(THU, 12), at(THU, 13), threshold=0.5)
    people = [person(1), person(2, available=False), person(3, available=False)]
    assert find_slots(people, req) == []


def test_people_are_listed_least_loaded_first_ties_by_id() -> None:
    people = [person(1, load=3), person(2, load=1), person(3, load=2), person(4, load=1)]
    slots = find_slots(people, request(at(THU, 12), at(THU, 13)))
    assert [s.people for s in slots] == [(2, 4, 3, 1)]


def test_empty_group_or_empty_range_offers_nothing() -> None:
    assert find_slots([], request(at(THU, 0), at(FRI, 0))) == []
    assert find_slots([person()], request(at(THU, 12), at(THU, 12))) == []


def test_request_validation() -> None:
    with pytest.raises(ValueError):
        request(at(THU, 0), at(FRI, 0), duration=timedelta(0))
    with pytest.raises(ValueError):
        request(at(THU, 0), at(FRI, 0), threshold=1.5)
    with pytest.raises(ValueError):
        request(at(THU, 0), at(FRI, 0), buffer_before=-HOUR)
    with pytest.raises(ValueError):
        request(datetime(2025, 1, 16), at(FRI, 0))


# --- scheduling assistant -----------------------------------------------------------------


def test_common_slots_need_every_required_person_and_report_optional_ones() -> None:
    morning_busy = (Interval(at(THU, 9), at(THU, 12)),)
    required = [person(1), person(2, busy=morning_busy)]
    optional = [person(7, busy=(Interval(at(THU, 13), at(THU, 14)),)), person(5)]
    got = common_slots(required, optional, request(at(THU, 0), at(FRI, 0), interval=HOUR))
    assert got == [
        CommonSlot(at(THU, 12), at(THU, 13), (5, 7)),
        CommonSlot(at(THU, 13), at(THU, 14), (5,)),
        CommonSlot(at(THU, 14), at(THU, 15), (5, 7)),
        CommonSlot(at(THU, 15), at(THU, 16), (5, 7)),
        CommonSlot(at(THU, 16), at(THU, 17), (5, 7)),
    ]


def test_common_slots_ignore_threshold_and_fail_closed() -> None:
    req = request(at(THU, 0), at(FRI, 0), threshold=0.0)
    assert common_slots([person(1), person(2, available=False)], [], req) == []
    assert common_slots([], [person(1)], req) == []
