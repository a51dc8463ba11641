"""A calendar's own VTIMEZONE, read by ``connections.zones``: the same offsets as zoneinfo at
every half hour, both ways (UTC to wall time with PEP 495 folds, and wall time to UTC), for
zones written the way Slotbook, Outlook and Lotus Notes write them; and bounded on hostile
definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.connections.zones import UnusableZone, read_zone
from app.notifications.vtimezone import vtimezone_ical


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r\n ", "").split("\r\n") if line]


def _half_hours(first: datetime, last: datetime):
    moment = first
    while moment < last:
        yield moment
        moment += timedelta(minutes=30)


@pytest.mark.parametrize("tzid", ["Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_slotbooks_own_vtimezone_reads_back_as_zoneinfo(tzid):
    real = ZoneInfo(tzid)
    zone = read_zone(_lines(vtimezone_ical(tzid, 2026, 2028)), "Custom", 2026, 2029)

    for moment in _half_hours(datetime(2026, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)):
        ours, theirs = moment.astimezone(zone), moment.astimezone(real)
        assert ours.replace(tzinfo=None) == theirs.replace(tzinfo=None), moment
        assert ours.fold == theirs.fold, moment
        wall = theirs.replace(tzinfo=None)
        for fold in (0, 1):  # and back: every wall time, both readings of a repeated one
            assert (
                wall.replace(tzinfo=zone, fold=fold).utcoffset()
                == wall.replace(tzinfo=real, fold=fold).utcoffset()
            ), (wall, fold)


OUTLOOK_1601 = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE"""


def test_an_outlook_zone_from_1601_matches_berlin_today():
    zone = read_zone(OUTLOOK_1601.split("\n"), "W. Europe Standard Time", 2029, 2031)
    berlin = ZoneInfo("Europe/Berlin")
    for moment in _half_hours(datetime(2029, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)):
        assert moment.astimezone(zone).utcoffset() == moment.astimezone(berlin).utcoffset()


def test_a_rule_that_ended_is_not_applied_later():
    """DST until 2010 (UNTIL), none after: 2012 summer reads as standard time."""
    text = OUTLOOK_1601.replace("BYMONTH=3", "BYMONTH=3;UNTIL=20100328T010000Z").replace(
        "BYMONTH=10", "BYMONTH=10;UNTIL=20101031T010000Z"
    )
    zone = read_zone(text.split("\n"), "Ended", 2009, 2013)

    assert datetime(2009, 7, 1, 12, tzinfo=zone).utcoffset() == timedelta(hours=2)
    assert datetime(2012, 7, 1, 12, tzinfo=zone).utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "change",
    [
        ("FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "FREQ=SECONDLY"),
        ("FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "FREQ=DAILY"),
        ("BYMONTH=10", "BYMONTH=13"),
        ("BYDAY=-1SU;BYMONTH=10", "BYMONTHDAY=31;BYMONTH=2"),  # never matches
        ("TZOFFSETTO:+0100", "TZOFFSETTO:+2500"),
        ("DTSTART:16010101T030000", "DTSTART:1601-01-01"),
        ("BYDAY=-1SU;BYMONTH=10", "BYDAY=-1SU;BYMONTH=10;COUNT=5000"),  # run from 1601
    ],
)
def test_hostile_or_broken_definitions_are_refused_quickly(change):
    """Refused (the caller reads the events as UTC and says so), never run for long: a
    COUNT cannot be skipped ahead, so the last one would run 5,000 years from 1601."""
    text = OUTLOOK_1601.replace(*change)
    assert text != OUTLOOK_1601

    with pytest.raises(UnusableZone):
        read_zone(text.split("\n"), "Evil", 2029, 2031)


def test_too_many_rdates_are_refused():
    rdates = ",".join(f"{year}0101T000000" for year in range(1000, 2100))
    text = OUTLOOK_1601.replace("END:STANDARD", f"RDATE:{rdates}\nEND:STANDARD")

    with pytest.raises(UnusableZone):
        read_zone(text.split("\n"), "Evil", 2029, 2031)
