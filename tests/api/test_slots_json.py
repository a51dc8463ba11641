"""The availability answer is written as text by hand (``serializers.slots_json``): it must be
the very bytes ``jsonify`` writes for the same slots, and match ``SlotList``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import jsonify

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
