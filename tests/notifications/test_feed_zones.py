"""Issue [11]: a personal feed spanning three calendar years, with organisers in London, New
York and Lord Howe, reads the same UTC instants in icalendar and in Mozilla's ical.js (which
knows zones only from the feed's own VTIMEZONEs), and those are the bookings' instants, for
every event: monthly bookings and one either side of every clock change."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from app.bookings.models import Booking
from app.extensions import db
from app.notifications import ics
from app.notifications.vtimezone import transitions
from tests.notifications import test_ics
from tests.notifications.test_ics import both

icaljs = test_ics.icaljs  # the session fixture, used here by name

ZONES = ("Europe/London", "America/New_York", "Australia/Lord_Howe")
YEARS = (2027, 2028, 2029)


def _changes(zone: ZoneInfo) -> list[datetime]:
    """Every instant in the three years where the zone's offset changes (half-hour steps,
    independent of the code under test)."""
    moment, end, found = datetime(YEARS[0], 1, 1, tzinfo=UTC), datetime(YEARS[-1] + 1, 1, 1), []
    end = end.replace(tzinfo=UTC)
    while moment < end:
        following = moment + timedelta(minutes=30)
        if moment.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            found.append(following)
        moment = following
    return found


def _starts(tzid: str) -> list[datetime]:
    zone = ZoneInfo(tzid)
    starts = [
        datetime.combine(datetime(year, month, 15), time(9), tzinfo=zone).astimezone(UTC)
        for year in YEARS
        for month in range(1, 13)
    ]
    for change in _changes(zone):
        starts += [change - timedelta(hours=2), change + timedelta(minutes=30)]
    return sorted(starts)


def test_a_three_year_feed_reads_the_same_in_icalendar_and_icaljs(app, factory, icaljs):
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    kind = factory.booking_type(name="Observation", duration_minutes=60)
    bookings = {}
    for number, tzid in enumerate(ZONES):
        owner = factory.user(
            "agent", email=f"org{number}@example.test", name=f"Organiser {number}", timezone=tzid
        )
        assert len(_changes(ZoneInfo(tzid))) == 6
        for start in _starts(tzid):
            booking = factory.booking(None, kind, start, [owner], learner=learner)
            bookings[booking.uid] = (booking.id, start, start + timedelta(hours=1), tzid)

    with app.app_context():
        from app.accounts.models import User

        rows = [db.session.get(Booking, booking_id) for booking_id, *_ in bookings.values()]
        text = ics.feed(db.session.get(User, learner.id), rows)
        db.session.rollback()

    read = both(icaljs, text)  # icalendar and ical.js agree on every field of every event

    assert sorted(read["timezones"]) == sorted(ZONES)
    assert len(read["events"]) == len(bookings) == 3 * (36 + 12)
    for event in read["events"]:
        _, start, end, tzid = bookings[event["uid"]]
        assert (event["start"], event["end"]) == (test_ics._iso(start), test_ics._iso(end))
        assert event["tzid"] in (tzid, "UTC", "Z")  # a repeated wall time is written in UTC
    _only_the_feeds_zones_give_the_same_instants(text, bookings)


def _only_the_feeds_zones_give_the_same_instants(text: str, bookings: dict) -> None:
    """icalendar finds Europe/London etc. in its own zone database; read again with only the
    feed's VTIMEZONEs (as ical.js does), every start and end is still the booking's."""
    calendar = icalendar.Calendar.from_ical(text)
    zones = {
        str(part["TZID"]): part.to_tz(lookup_tzid=False) for part in calendar.walk("VTIMEZONE")
    }
    for event in calendar.walk("VEVENT"):
        _, start, end, _ = bookings[str(event["UID"])]
        for prop, expected in (("DTSTART", start), ("DTEND", end)):
            value = event[prop]
            local = value.dt
            tzid = value.params.get("TZID")
            if tzid:
                local = local.replace(tzinfo=zones[tzid])
            assert local.astimezone(UTC) == expected, (event["UID"], prop)


def _calendar_text(tzid: str, first_year: int, last_year: int, walls: list[datetime]) -> str:
    from app.notifications.vtimezone import vtimezone_ical

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotbook tests//EN", "METHOD:PUBLISH"]
    text = "\r\n".join(lines) + "\r\n" + vtimezone_ical(tzid, first_year, last_year)
    for number, wall in enumerate(walls):
        start, end = wall, wall + timedelta(minutes=30)
        text += (
            f"BEGIN:VEVENT\r\nUID:edge-{number}\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\n"
            f"SUMMARY:Edge\r\nDESCRIPTION:\r\nLOCATION:\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART;TZID={tzid}:{start:%Y%m%dT%H%M%S}\r\n"
            f"DTEND;TZID={tzid}:{end:%Y%m%dT%H%M%S}\r\nEND:VEVENT\r\n"
        )
    return text + "END:VCALENDAR\r\n"


def test_the_first_and_last_minutes_of_any_span_read_right_in_icaljs(icaljs):
    """A VTIMEZONE made for exactly the events' years still covers local midnight of
    1 January and the last minutes of 31 December in zones far from UTC, and every summer of
    a span of any length (ical.js reads only the VTIMEZONE)."""
    for tzid in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe", *ZONES):
        for first, last in ((2027, 2027), (2027, 2031)):
            walls = [datetime(first, 1, 1, 0, 15), datetime(last, 12, 31, 23, 15)]
            walls += [datetime(year, 7, 1, 12) for year in range(first, last + 1)]
            walls += [datetime(year, 1, 15, 12) for year in range(first, last + 1)]
            read = icaljs(_calendar_text(tzid, first, last, walls))
            zone = ZoneInfo(tzid)
            for wall, event in zip(walls, read["events"], strict=True):
                assert event["start"] == test_ics._iso(wall.replace(tzinfo=zone)), (tzid, wall)


@pytest.mark.parametrize(
    ("tzid", "first", "last"),
    [
        ("Europe/Moscow", 2009, 2016),  # DST ended 2010, permanent +4 in 2011, +3 in 2014
        ("Africa/Casablanca", 2012, 2020),  # summer time paused for Ramadan, then permanent
        ("America/Sao_Paulo", 2016, 2021),  # rules changing yearly, abolished in 2019
        ("Asia/Tehran", 2020, 2024),  # fixed dates, not weekdays; abolished in 2022
    ],
)
def test_irregular_zones_read_right_in_icaljs(icaljs, tzid, first, last):
    """Changes that follow no yearly weekday rule get parts of their own; every tenth day
    at noon (and the day after each change) reads as zoneinfo says in ical.js."""
    zone = ZoneInfo(tzid)
    walls = []
    day = datetime(first, 1, 1, 12)
    while day.year <= last:
        walls.append(day)
        day += timedelta(days=10)
    start, end = datetime(first, 1, 1, tzinfo=UTC), datetime(last + 1, 1, 1, tzinfo=UTC)
    for change in transitions(zone, start, end):
        walls.append((change.at + timedelta(days=1)).astimezone(zone).replace(tzinfo=None))

    read = icaljs(_calendar_text(tzid, first, last, walls))

    for wall, event in zip(walls, read["events"], strict=True):
        assert event["start"] == test_ics._iso(wall.replace(tzinfo=zone)), (tzid, wall)
