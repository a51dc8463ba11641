"""The availability answer is written as text by hand (``serializers.slots_json``): it must be
the very bytes ``jsonify`` writes for the same slots, and match ``SlotList``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

import pytest
from flask import jsonify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.schemas import SlotList
from app.api.serializers import slots_json
from app.scheduling.slots import Slot

# Around London's and Sydney's clock changes, an instant with seconds and microseconds, a
# half-hour zone, and people lists of one, several and none.
_START = datetime(2030, 3, 30, 23, 0, tzinfo=UTC)
SLOTS = [
    Slot(_START + timedelta(minutes=30 * k), _START + timedelta(minutes=30 * k + 60), people)
    for k, people in enumerate([(3,), (12, 4, 7), (), (4,), (3, 12), (3,)] * 3)
] + [Slot(datetime(2030, 4, 6, 15, 59, 1, 250, tzinfo=UTC), _START + timedelta(days=7), (1,))]


def expected(slots: list[Slot], zone: ZoneInfo) -> dict:
    return {
        "slots": [
            {
                "start": s.start.astimezone(zone).isoformat(),
                "end": s.end.astimezone(zone).isoformat(),
                "people": list(s.people),
            }
            for s in slots
        ]
    }


@pytest.mark.parametrize("zone", ["Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC"])
def test_the_text_is_what_jsonify_writes_and_what_slot_list_describes(app, zone):
    answer = expected(SLOTS, ZoneInfo(zone))
    with app.app_context():
        text = slots_json(SLOTS, ZoneInfo(zone))
        assert text == jsonify(answer).get_data(as_text=True)
    assert json.loads(text) == answer
    SlotList.model_validate_json(text)  # raises if the shape drifts from the document's
    offsets = {s[key][-6:] for s in answer["slots"] for key in ("start", "end")}
    assert len(offsets) == (2 if zone in ("Europe/London", "Australia/Sydney") else 1)


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        # London's repeated hour: the same local date and time of day, two offsets.
        ("Europe/London", datetime(2030, 10, 27, 0, 0, tzinfo=UTC)),
        # Amsterdam in 1936 was 19 min 32 s ahead of UTC: an offset with seconds.
        ("Europe/Amsterdam", datetime(1936, 6, 1, 8, 0, 5, tzinfo=UTC)),
    ],
)
def test_each_instant_keeps_its_own_offset(app, zone, first):
    slots = [
        Slot(first + timedelta(minutes=30 * k), first + timedelta(minutes=30 * k + 60), (1,))
        for k in range(6)
    ]
    answer = expected(slots, ZoneInfo(zone))
    with app.app_context():
        assert slots_json(slots, ZoneInfo(zone)) == jsonify(answer).get_data(as_text=True)
    starts = [s["start"] for s in answer["slots"]]
    assert len(set(starts)) == len(starts)


def test_no_slots_is_an_empty_list(app):
    with app.app_context():
        assert slots_json([], UTC) == jsonify({"slots": []}).get_data(as_text=True)


# Zones whose clocks change at local midnight (Santiago, Havana at 00:00/01:00), by half an
# hour (Lord Howe), twice a year south and north, or never; and UTC itself.
ZONES = [
    "Europe/London",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
]
_EPOCH = datetime(2029, 1, 1, tzinfo=UTC)


@st.composite
def slot_lists(draw) -> list[Slot]:
    """Sorted slots over two years on a minute grid (some 1,250 microseconds off it),
    lasting up to two days, so that some cross local midnight and some a clock change;
    some starts carry another zone than UTC (the same instant, written the same)."""
    starts = sorted(
        draw(st.lists(st.integers(0, 2 * 366 * 24 * 60), min_size=1, max_size=40, unique=True))
    )
    slots = []
    for minute in starts:
        start = _EPOCH + timedelta(minutes=minute, microseconds=draw(st.sampled_from([0, 1_250])))
        end = start + timedelta(minutes=draw(st.integers(1, 2 * 24 * 60)))
        if draw(st.booleans()):
            start = start.astimezone(ZoneInfo("Asia/Tokyo"))
        slots.append(Slot(start, end, (1,)))
    return slots


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slots=slot_lists(), zone=st.sampled_from(ZONES))
def test_any_slots_in_any_zone_are_written_as_isoformat_writes_them(slots, zone):
    text = slots_json(slots, ZoneInfo(zone))
    assert json.loads(text) == expected(slots, ZoneInfo(zone))


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/London", datetime(2030, 3, 31)),  # 01:00 -> 02:00
        ("Europe/London", datetime(2030, 10, 27)),  # 02:00 -> 01:00
        ("America/Santiago", datetime(2030, 9, 8)),  # 00:00 -> 01:00: the day starts at 01:00
        ("America/Santiago", datetime(2030, 4, 7)),  # 00:00 -> 23:00 the day before
        ("Australia/Lord_Howe", datetime(2030, 4, 7)),  # half an hour back
    ],
)
def test_every_minute_of_a_day_the_clocks_change(zone, day):
    """Each minute of the day and of the days either side, as one answer: a day whose
    offset changes is written instant by instant, the days around it from their midnight."""
    local = ZoneInfo(zone)
    first = datetime.combine((day - timedelta(days=1)).date(), datetime.min.time(), local)
    first = first.astimezone(UTC)
    slots = [
        Slot(first + timedelta(minutes=m), first + timedelta(minutes=m + 30), (2,))
        for m in range(0, 3 * 24 * 60, 7)
    ]
    assert json.loads(slots_json(slots, local)) == expected(slots, local)


def test_no_zone_changes_its_offset_twice_within_48_hours():
    """What ``serializers._steady_day`` relies on: a local day whose first and last instants
    have the offset of one of its instants has that offset throughout, because no zone of
    the tz database this machine reads changes its offset twice within 48 hours. Read from
    the transitions of the standard library's own pure-Python ``ZoneInfo`` (which reads the
    same files), to 2100 by each zone's rule for the years after its last listed change."""
    from zoneinfo import _zoneinfo

    closest = []
    for key in sorted(available_timezones()):
        zone = _zoneinfo.ZoneInfo.no_cache(key)
        changes = list(zone._trans_utc)
        last_year = datetime.fromtimestamp(changes[-1], UTC).year if changes else 1970
        if isinstance(zone._tz_after, _zoneinfo._TZStr):
            for year in range(last_year + 1, 2101):
                changes.extend(zone._tz_after.transitions(year))
        changes.sort()
        gaps = [(b - a, key) for a, b in pairwise(changes)]
        if gaps:
            closest.append(min(gaps))
    assert len(closest) > 300  # the database was read
    gap, key = min(closest)
    assert gap > 48 * 3600, f"{key} changes its offset twice within {gap / 3600:.1f} hours"
