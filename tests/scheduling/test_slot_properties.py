"""Slot generation on random inputs, in random real time zones, against a brute-force reference.

The reference below shares no code with the engine: it resolves wall-clock times by scanning
minutes ("the first instant whose wall clock reads the time or later" — which is exactly the
documented rule for gaps and repeated hours), keeps working time and the booking window as sets
of minutes, and checks every candidate start person by person, busy block by busy block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduling.assistant import CommonSlot, common_slots
from app.scheduling.intervals import Interval, covers, overlaps_any
from app.scheduling.rules import BookingWindow, WorkingHours, window_intervals, working_intervals
from app.scheduling.slots import Person, Slot, SlotRequest, find_slots, free_intervals

ZONE_NAMES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",  # -3:30 / -2:30
    "America/Sao_Paulo",  # DST changed at midnight until 2019
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at midnight / 01:00
    "Australia/Lord_Howe",  # 30-minute DST
    "Australia/Adelaide",  # +9:30 / +10:30
    "Asia/Kathmandu",  # +5:45
    "Asia/Kolkata",
    "Asia/Tehran",  # DST at midnight until 2022
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",  # skipped 30 Dec 2011 entirely
]
ZONES = [ZoneInfo(name) for name in ZONE_NAMES]

# Days on or next to clock changes in the zones above, so that most examples cross one.
AWKWARD_DAYS = [
    date(2024, 3, 31),  # Europe spring
    date(2024, 10, 27),  # Europe autumn
    date(2024, 3, 10),  # US spring
    date(2024, 11, 3),  # US autumn
    date(2018, 11, 4),  # Sao Paulo spring, at midnight
    date(2018, 2, 17),  # Sao Paulo autumn, at midnight
    date(2024, 4, 7),  # Lord Howe / Adelaide autumn; Chile autumn (6 Apr 24:00)
    date(2024, 10, 6),  # Lord Howe / Adelaide spring
    date(2024, 9, 8),  # Chile spring
    date(2024, 9, 29),  # Chatham spring
    date(2024, 3, 10),  # Havana spring
    date(2021, 3, 22),  # Tehran spring
    date(2021, 9, 22),  # Tehran autumn
    date(2011, 12, 30),  # Apia: the day that did not exist
    date(2011, 9, 24),  # Apia spring
]


def _transitions(zone: ZoneInfo, years=(2011, 2018, 2021, 2024)) -> list[tuple[date, tuple]]:
    """Local dates with a clock change in ``zone``, each with the quarter-hours of that date
    lying in or next to the skipped or repeated wall-clock times (found by scanning)."""
    out: dict[date, set[int]] = {}
    quarter = timedelta(minutes=15)
    for year in years:
        day = datetime(year, 1, 1, tzinfo=UTC)
        while day.year == year:  # day by day, then quarter hour by quarter hour where it changed
            if (
                day.astimezone(zone).utcoffset()
                != (day + timedelta(days=1)).astimezone(zone).utcoffset()
            ):
                t = day
                previous = t.astimezone(zone).utcoffset()
                while t < day + timedelta(days=1):
                    t += quarter
                    offset = t.astimezone(zone).utcoffset()
                    if offset != previous:
                        before = t.replace(tzinfo=None) + previous  # wall clock just before
                        after = t.replace(tzinfo=None) + offset  # ... and just after
                        lo, hi = min(before, after), max(before, after)
                        moment = lo - 2 * quarter
                        while moment <= hi + 2 * quarter:
                            quarters = out.setdefault(moment.date(), set())
                            quarters.add(moment.hour * 4 + moment.minute // 15)
                            moment += quarter
                    previous = offset
            day += timedelta(days=1)
    return [(day, tuple(sorted(q))) for day, q in sorted(out.items())]


TRANSITIONS = {zone: _transitions(zone) for zone in ZONES}
TRANSITION_DAYS = {zone: [d for d, _ in TRANSITIONS[zone]] or AWKWARD_DAYS for zone in ZONES}
HOT_QUARTERS = {
    (zone, day): st.sampled_from(quarters) for zone in ZONES for day, quarters in TRANSITIONS[zone]
}

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def minute_of(value: datetime) -> int:
    return (value - EPOCH) // MINUTE


def instant(minute: int) -> datetime:
    return EPOCH + minute * MINUTE


# --- the reference ------------------------------------------------------------------------


def wall(minute: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(minute * 60, zone).replace(tzinfo=None)


@cache
def ref_resolve(day: date, clock: time, zone: ZoneInfo) -> int:
    """The first minute whose wall clock in ``zone`` reads ``day clock`` or later (by scanning)."""
    target = datetime.combine(day, clock)
    naive = minute_of(target.replace(tzinfo=UTC))
    offsets = {
        (wall(naive + h * 60, zone) - instant(naive + h * 60).replace(tzinfo=None)) // MINUTE
        for h in range(-40, 41)
    }
    for minute in range(naive - max(offsets) - 1, naive - min(offsets) + 2):
        if wall(minute, zone) >= target:
            return minute
    raise AssertionError("unreachable: the scan range always contains the answer")


def ref_local_dates(zone: ZoneInfo, start: int, end: int) -> list[date]:
    first = wall(start, zone).date() - timedelta(days=2)
    last = wall(end, zone).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def ref_shifts(hours: WorkingHours, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    for day in ref_local_dates(hours.zone, start, end):
        ranges = hours.overrides.get(day, hours.weekly.get(day.weekday(), ()))
        for a, b in ranges:
            lo, hi = ref_resolve(day, a, hours.zone), ref_resolve(day, b, hours.zone)
            if lo < hi:
                out.append((lo, hi))
    return out


def ref_working(hours: WorkingHours, start: int, end: int) -> set[int]:
    minutes: set[int] = set()
    for lo, hi in ref_shifts(hours, start, end):
        minutes.update(range(max(lo, start), min(hi, end)))
    for off in hours.time_off:
        minutes.difference_update(range(minute_of(off.start), minute_of(off.end)))
    return minutes


def ref_window(window: BookingWindow, now: int, start: int, end: int) -> set[int]:
    today = wall(now, window.zone).date()
    first_day = today + timedelta(days=window.earliest_day)
    earliest = now + max(window.minimum_notice, window.disabled_window) // MINUTE
    latest = now + window.horizon // MINUTE
    out = set()
    for m in range(start, end):
        local = wall(m, window.zone)
        if m < earliest or m >= latest or local.date() < first_day:
            continue
        if not window.weekends and local.weekday() >= 5:
            continue
        out.add(m)
    return out


@dataclass
class RefContext:
    start: int
    end: int
    now: int
    duration: int
    step: int
    before: int
    after: int
    window: set[int]


def ref_context(request: SlotRequest) -> RefContext:
    start, end, now = (minute_of(request.start), minute_of(request.end), minute_of(request.now))
    return RefContext(
        start=start,
        end=end,
        now=now,
        duration=request.duration // MINUTE,
        step=(request.interval or request.duration) // MINUTE,
        before=request.buffer_before // MINUTE,
        after=request.buffer_after // MINUTE,
        window=ref_window(request.window, now, start, end),
    )


def ref_is_free(person: Person, s: int, ctx: RefContext, request: SlotRequest, cache: dict) -> bool:
    if not person.available:
        return False
    if person.id not in cache:
        cache[person.id] = ref_working(person.hours, ctx.start, ctx.end)
    working = cache[person.id]
    slot = range(s, s + ctx.duration)
    if not all(m in working and m in ctx.window for m in slot):
        return False
    lo, hi = s - ctx.before, s + ctx.duration + ctx.after
    for block in person.busy:  # one busy block at a time, the obvious way
        if minute_of(block.start) < hi and lo < minute_of(block.end):
            return False
    if request.max_per_day is not None:
        day = wall(s, person.hours.zone).date()
        if person.bookings_per_day.get(day, 0) >= request.max_per_day:
            return False
    return True


def ref_candidates(people: list[Person], ctx: RefContext) -> list[int]:
    points = set()
    for person in people:
        if not person.available:
            continue
        for lo, hi in ref_shifts(person.hours, ctx.start, ctx.end):
            s = lo
            while s < hi:
                if ctx.start <= s and s + ctx.duration <= ctx.end:
                    points.add(s)
                s += ctx.step
    return sorted(points)


def ref_find_slots(people: list[Person], request: SlotRequest) -> list[Slot]:
    ctx = ref_context(request)
    if not people or ctx.start >= ctx.end:
        return []
    need = max(1, math.ceil(Fraction(str(request.threshold)) * len(people)))
    ordered = sorted(people, key=lambda p: (p.load, p.id))
    cache: dict = {}
    out = []
    for s in ref_candidates(people, ctx):
        free = [p.id for p in ordered if ref_is_free(p, s, ctx, request, cache)]
        if len(free) >= need:
            out.append(Slot(instant(s), instant(s + ctx.duration), tuple(free)))
    return out


def ref_common_slots(
    required: list[Person], optional: list[Person], request: SlotRequest
) -> list[CommonSlot]:
    ctx = ref_context(request)
    if not required or ctx.start >= ctx.end:
        return []
    cache: dict = {}
    out = []
    for s in ref_candidates(required, ctx):
        if all(ref_is_free(p, s, ctx, request, cache) for p in required):
            extra = tuple(
                p.id
                for p in sorted(optional, key=lambda p: p.id)
                if ref_is_free(p, s, ctx, request, cache)
            )
            out.append(CommonSlot(instant(s), instant(s + ctx.duration), extra))
    return out


# --- strategies ---------------------------------------------------------------------------

QUARTER = st.integers(0, 95)


@st.composite
def time_range(draw, hot=None) -> tuple[time, time]:
    """A local time range on quarter hours; with ``hot``, often starting or ending in a
    skipped or repeated stretch of wall clock."""
    picks = sorted({draw(QUARTER if hot is None else st.one_of(QUARTER, hot)) for _ in range(2)})
    if len(picks) == 1:
        picks = [picks[0], picks[0] + 1] if picks[0] < 95 else [94, 95]
    a, b = picks
    return (time(a // 4, a % 4 * 15), time(b // 4, b % 4 * 15))


day_ranges = st.lists(time_range(), min_size=1, max_size=2).map(tuple)


# Strategies are built once: building them inside the composite costs more than the test.
ZONE = st.sampled_from(ZONES)
ANY_DAY = st.dates(date(2005, 1, 1), date(2035, 12, 31))
AWKWARD_DAY = st.sampled_from(AWKWARD_DAYS)
TRANSITION_DAY = {zone: st.sampled_from(days) for zone, days in TRANSITION_DAYS.items()}
WORKS_THAT_DAY = st.sampled_from([True, True, True, False])
AVAILABLE = st.sampled_from([True, True, True, True, False])
NOTICE = st.sampled_from([0, 0, 0, 45, 120, 360])
EARLIEST_DAY = st.sampled_from([0, 0, 0, 1, 2, 3])
DISABLED = st.sampled_from([0, 0, 0, 30, 240])
HORIZON = st.sampled_from([timedelta(days=365)] * 3 + [timedelta(days=1), timedelta(hours=30)])
WEEKENDS = st.sampled_from([True, True, False])
STEP = st.one_of(st.none(), st.integers(1, 8).map(lambda q: timedelta(minutes=15 * q)))
MAX_PER_DAY = st.sampled_from([None] * 4 + [0, 1, 2, 2, 3])
THRESHOLD = st.sampled_from([0.0, 0.0, 0.25, 0.34, 0.5, 0.75, 1.0])
NEAR_DAY = st.integers(-2, 4)


@st.composite
def scenario(draw):
    """People in random real zones, a range of up to three days usually crossing a clock change
    in the first person's zone, and request options biased towards producing some slots."""
    zones = [draw(ZONE)]
    for _ in range(draw(st.integers(0, 3))):
        zones.append(zones[0] if draw(st.booleans()) else draw(ZONE))
    base = draw(st.one_of(TRANSITION_DAY[zones[0]], AWKWARD_DAY, ANY_DAY))
    start = datetime.combine(base, time(0), tzinfo=UTC) + timedelta(
        minutes=15 * draw(st.integers(-60, 48))
    )
    end = start + timedelta(minutes=15 * draw(st.integers(1, 4 * 24 * 3)))
    now = start + timedelta(minutes=5 * draw(st.integers(-12 * 24 * 2, 12 * 6)))
    span = (end - start) // MINUTE // 5

    def moment(lo: int, hi: int) -> datetime:
        return start + timedelta(minutes=5 * draw(st.integers(lo, hi)))

    def near_day() -> date:
        return base + timedelta(days=draw(NEAR_DAY))

    people = []
    for pid, zone in enumerate(zones, start=1):
        weekly = {d: draw(day_ranges) for d in range(7) if draw(WORKS_THAT_DAY)}
        overrides = {near_day(): draw(day_ranges) for _ in range(draw(st.integers(0, 2)))}
        hot = HOT_QUARTERS.get((zone, base))
        if hot is not None and draw(st.booleans()):  # a shift boundary in the gap or overlap
            overrides[base] = tuple(draw(time_range(hot)) for _ in range(draw(st.integers(1, 2))))
        time_off = []
        for _ in range(draw(st.integers(0, 2))):
            a = moment(-120, span)
            time_off.append(Interval(a, a + timedelta(minutes=5 * draw(st.integers(1, 200)))))
        busy = []
        for _ in range(draw(st.integers(0, 8))):
            a = moment(-120, span + 60)
            busy.append(Interval(a, a + timedelta(minutes=5 * draw(st.integers(1, 48)))))
        per_day = {near_day(): draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 5)))}
        people.append(
            Person(
                id=pid,
                hours=WorkingHours(zone, weekly, overrides, tuple(time_off)),
                busy=tuple(busy),
                load=draw(st.integers(0, 3)),
                bookings_per_day=per_day,
                available=draw(AVAILABLE),
            )
        )
    window = BookingWindow(
        zone=zones[0] if draw(st.booleans()) else draw(ZONE),
        minimum_notice=timedelta(minutes=draw(NOTICE)),
        earliest_day=draw(EARLIEST_DAY),
        disabled_window=timedelta(minutes=draw(DISABLED)),
        horizon=draw(HORIZON),
        weekends=draw(WEEKENDS),
    )
    request = SlotRequest(
        start=start,
        end=end,
        now=now,
        duration=timedelta(minutes=15 * draw(st.integers(1, 12))),
        window=window,
        interval=draw(STEP),
        buffer_before=timedelta(minutes=5 * draw(st.integers(0, 12))),
        buffer_after=timedelta(minutes=5 * draw(st.integers(0, 12))),
        max_per_day=draw(MAX_PER_DAY),
        threshold=draw(THRESHOLD),
    )
    return people, request


# Counts are chosen so this file runs in about 15 s on a 2-core machine.
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- properties ---------------------------------------------------------------------------


@settings(SETTINGS, max_examples=400)
@given(scenario())
def test_find_slots_equals_the_brute_force_reference(case) -> None:
    people, request = case
    assert find_slots(people, request) == ref_find_slots(people, request)


@SETTINGS
@given(scenario())
def test_people_sharing_one_working_hours_equal_the_reference(case) -> None:
    """The loader hands a team's members one WorkingHours object, and the engine derives
    shifts and working time once per object: shared, the answer is still the reference's."""
    people, request = case
    shared = [replace(p, hours=people[0].hours) for p in people]
    assert find_slots(shared, request) == ref_find_slots(shared, request)


@SETTINGS
@given(scenario())
def test_every_slot_is_in_hours_in_the_window_clear_of_busy_and_meets_the_threshold(case) -> None:
    people, request = case
    by_id = {p.id: p for p in people}
    need = max(1, math.ceil(Fraction(str(request.threshold)) * len(people)))
    window = window_intervals(request.window, request.now, request.start, request.end)
    slots = find_slots(people, request)
    assert slots == sorted(set(slots))  # sorted by start, no duplicates
    assert len({s.start for s in slots}) == len(slots)
    for slot in slots:
        assert slot.end - slot.start == request.duration
        assert len(slot.people) >= need
        assert covers(window, Interval(slot.start, slot.end))
        loads = [(by_id[i].load, i) for i in slot.people]
        assert loads == sorted(loads)
        padded = Interval(slot.start - request.buffer_before, slot.end + request.buffer_after)
        for pid in slot.people:
            person = by_id[pid]
            assert person.available
            assert covers(
                working_intervals(person.hours, request.start, request.end),
                Interval(slot.start, slot.end),
            )
            assert not overlaps_any(person.busy, padded)
            assert covers(free_intervals(person, request), Interval(slot.start, slot.end))


@SETTINGS
@given(scenario(), st.integers(0, 3))
def test_common_slots_equal_the_brute_force_reference(case, n_required: int) -> None:
    people, request = case
    required, optional = people[: max(1, n_required)], people[max(1, n_required) :]
    assert common_slots(required, optional, request) == ref_common_slots(
        required, optional, request
    )


@st.composite
def awkward_day_hours(draw):
    zone = draw(ZONE)
    if TRANSITIONS[zone] and draw(st.sampled_from([True, True, True, False])):
        day, _ = draw(st.sampled_from(TRANSITIONS[zone]))
        hot = HOT_QUARTERS[(zone, day)]
    else:
        day, hot = draw(st.one_of(AWKWARD_DAY, ANY_DAY)), None
    ranges = tuple(draw(time_range(hot)) for _ in range(draw(st.integers(1, 3))))
    return zone, day, ranges


@settings(max_examples=300, deadline=None)
@given(awkward_day_hours())
def test_working_intervals_resolve_wall_clock_like_the_reference(case) -> None:
    zone, day, ranges = case
    hours = WorkingHours(zone, {}, {day: ranges})
    start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1)
    end = start + timedelta(days=3)
    got = []
    for i in working_intervals(hours, start, end):
        got.extend(range(minute_of(i.start), minute_of(i.end)))
        assert (i.start - EPOCH) % MINUTE == timedelta(0)  # boundaries are exact instants
    assert len(got) == len(set(got))
    assert set(got) == ref_working(hours, minute_of(start), minute_of(end))
