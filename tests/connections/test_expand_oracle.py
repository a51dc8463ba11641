"""Issue [11]: calendars read as their owners see them. Each hand-made calendar holds one
reading defect found in real files; busy time from ``busy_from_ical`` is compared with
recurring-ical-events (an independent implementation on icalendar) as the oracle, and with
the instants worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from app.connections.expand import busy_from_ical

SYDNEY = ZoneInfo("Australia/Sydney")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ics(*events: str, head: str = "") -> str:
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotbook tests//EN"]
    parts += [line.strip() for line in head.strip().splitlines() if line.strip()]
    for event in events:
        parts += ["BEGIN:VEVENT", *[ln.strip() for ln in event.strip().splitlines()], "END:VEVENT"]
    parts.append("END:VCALENDAR")
    return "\r\n".join(parts) + "\r\n"


def ours(text: str, window, zone: tzinfo = UTC) -> list[tuple[datetime, datetime]]:
    result = busy_from_ical(text, *window, max_instances=2000, max_seconds=5.0, floating_zone=zone)
    assert result.complete
    return sorted((b.starts_at, b.ends_at) for c in result.changes for b in c.blocks)


def oracle(text: str, window, zone: tzinfo = UTC) -> list[tuple[datetime, datetime]]:
    """recurring-ical-events' reading: all-day and floating values put in ``zone``. Its
    zone reader (dateutil's tzical) refuses X- properties and TZNAME parameters, so it is
    given the same zone without them."""
    calendar = icalendar.Calendar.from_ical(_plain(text).encode())
    found = []
    for event in recurring_ical_events.of(calendar).between(*window):
        start, end = event["DTSTART"].dt, event["DTEND"].dt
        found.append((_instant(start, zone), _instant(end, zone)))
    return sorted(found)


def _plain(text: str) -> str:
    lines = [line for line in text.split("\r\n") if not line.startswith("X-")]
    return "\r\n".join(re.sub(r"^TZNAME;[^:]*:", "TZNAME:", line) for line in lines)


def _instant(value: date | datetime, zone: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def agree(text: str, window, zone: tzinfo = UTC) -> list[tuple[datetime, datetime]]:
    mine = ours(text, window, zone)
    assert mine == oracle(text, window, zone)
    return mine


# --- RECURRENCE-ID;RANGE=THISANDFUTURE ---------------------------------------------------

THIS_AND_FUTURE = ics(
    """
    UID:weekly-review
    SUMMARY:Weekly review
    DTSTART;TZID=Europe/London:20260302T090000
    DTEND;TZID=Europe/London:20260302T100000
    RRULE:FREQ=WEEKLY;COUNT=8
    """,
    """
    UID:weekly-review
    SUMMARY:Weekly review (later, longer)
    RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/London:20260316T090000
    DTSTART;TZID=Europe/London:20260316T110000
    DTEND;TZID=Europe/London:20260316T123000
    """,
)


def test_this_and_future_moves_the_rest_of_the_series():
    """From 16 March every instance starts two hours later and lasts 90 minutes, in London
    wall time across the clock change of 29 March; the two before stay where they were."""
    window = (utc(2026, 3, 1), utc(2026, 5, 1))

    found = agree(THIS_AND_FUTURE, window)

    assert found[:2] == [
        (utc(2026, 3, 2, 9), utc(2026, 3, 2, 10)),
        (utc(2026, 3, 9, 9), utc(2026, 3, 9, 10)),
    ]
    assert found[2:4] == [
        (utc(2026, 3, 16, 11), utc(2026, 3, 16, 12, 30)),
        (utc(2026, 3, 23, 11), utc(2026, 3, 23, 12, 30)),
    ]
    assert found[4] == (utc(2026, 3, 30, 10), utc(2026, 3, 30, 11, 30))  # BST
    assert len(found) == 8


def test_this_and_future_reaches_into_a_window_that_starts_later():
    """A window after the override still sees the moved instances (the rule is skipped
    ahead to the window, the shift applied after)."""
    window = (utc(2026, 4, 6), utc(2026, 4, 21))

    assert agree(THIS_AND_FUTURE, window) == [
        (utc(2026, 4, 6, 10), utc(2026, 4, 6, 11, 30)),
        (utc(2026, 4, 13, 10), utc(2026, 4, 13, 11, 30)),
        (utc(2026, 4, 20, 10), utc(2026, 4, 20, 11, 30)),
    ]


# --- custom VTIMEZONEs ---------------------------------------------------------------------

LIGHTNING_ZONE = """
BEGIN:VTIMEZONE
TZID:Lightning Central European
X-LIC-LOCATION:Europe/Berlin
X-MICROSOFT-CDO-TZID:4
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME;LANGUAGE=de:MESZ
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
X-COMMENT:written by the calendar's client
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME;LANGUAGE=de:MEZ
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def test_a_vtimezone_with_x_properties_and_tzname_parameters_is_used():
    """Google and Lightning write X-LIC-LOCATION, Outlook X-MICROSOFT-CDO-TZID, and TZNAME
    may carry a LANGUAGE parameter: the zone is still read, and the daily 10:00 meeting is
    08:00 UTC in summer and 09:00 UTC in winter."""
    text = ics(
        """
        UID:daily
        SUMMARY:Daily
        DTSTART;TZID=Lightning Central European:20261020T100000
        DTEND;TZID=Lightning Central European:20261020T103000
        RRULE:FREQ=DAILY;COUNT=14
        """,
        head=LIGHTNING_ZONE,
    )
    window = (utc(2026, 10, 1), utc(2026, 11, 15))

    found = agree(text, window)

    assert found[0] == (utc(2026, 10, 20, 8), utc(2026, 10, 20, 8, 30))
    assert found[-1] == (utc(2026, 11, 2, 9), utc(2026, 11, 2, 9, 30))
    assert [start.hour for start, _ in found].count(8) == 5  # 20 to 24 October
    assert busy_from_ical(text, *window, max_instances=10, max_seconds=5).warnings == [
        "Event 'Daily' repeats every day, 14 times; only the first 10 occurrences were used."
    ]


LOTUS_ZONE = """
BEGIN:VTIMEZONE
TZID:Eastern-Lotus
BEGIN:STANDARD
DTSTART:19501105T020000
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
RRULE:FREQ=YEARLY;BYMINUTE=0;BYHOUR=2;BYDAY=1SU;BYMONTH=11
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19500312T020000
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
RRULE:FREQ=YEARLY;BYMINUTE=0;BYHOUR=2;BYDAY=2SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


def test_vtimezone_rules_with_byhour_and_byminute_are_evaluated():
    """Lotus Notes writes BYHOUR/BYMINUTE into its zone rules; the New York-like zone
    changes on 8 March 2026, so 09:00 is 14:00 UTC before and 13:00 UTC after."""
    text = ics(
        """
        UID:lotus
        SUMMARY:Status call
        DTSTART;TZID=Eastern-Lotus:20260302T090000
        DTEND;TZID=Eastern-Lotus:20260302T100000
        RRULE:FREQ=DAILY;COUNT=14
        """,
        head=LOTUS_ZONE,
    )
    window = (utc(2026, 3, 1), utc(2026, 4, 1))

    found = agree(text, window)

    assert found[0] == (utc(2026, 3, 2, 14), utc(2026, 3, 2, 15))
    assert found[6] == (utc(2026, 3, 8, 13), utc(2026, 3, 8, 14))
    assert len(found) == 14


def test_unsafe_zone_rules_are_still_refused():
    """A zone changing every day is no zone: refused with a warning, read as UTC."""
    text = ics(
        """
        UID:odd
        SUMMARY:Odd
        DTSTART;TZID=Eastern-Lotus:20260302T090000
        DTEND;TZID=Eastern-Lotus:20260302T100000
        """,
        head=LOTUS_ZONE.replace("FREQ=YEARLY;BYMINUTE=0;BYHOUR=2;BYDAY=2SU", "FREQ=DAILY"),
    )
    result = busy_from_ical(text, utc(2026, 3, 1), utc(2026, 4, 1), max_instances=9, max_seconds=5)

    assert [(b.starts_at, b.ends_at) for c in result.changes for b in c.blocks] == [
        (utc(2026, 3, 2, 9), utc(2026, 3, 2, 10))
    ]
    assert "cannot use; read as UTC" in result.warnings[0]


# --- UNTIL as a DATE -----------------------------------------------------------------------


def test_until_as_a_date_on_a_timed_series_stops_before_that_day():
    text = ics(
        """
        UID:course
        SUMMARY:Course
        DTSTART;TZID=Europe/London:20260302T090000
        DTEND;TZID=Europe/London:20260302T120000
        RRULE:FREQ=DAILY;UNTIL=20260306
        """
    )
    window = (utc(2026, 3, 1), utc(2026, 3, 31))

    found = agree(text, window)

    assert [start.day for start, _ in found] == [2, 3, 4, 5]


# --- all-day and floating in the owner's zone ---------------------------------------------

SYDNEY_DAY = ics(
    """
    UID:holiday
    SUMMARY:Holiday
    DTSTART;VALUE=DATE:20260710
    DTEND;VALUE=DATE:20260711
    """,
    """
    UID:gym
    SUMMARY:Gym
    DTSTART:20260713T070000
    DTEND:20260713T080000
    RRULE:FREQ=WEEKLY;COUNT=3
    """,
)


def test_all_day_and_floating_times_are_read_in_the_owners_zone():
    """In Sydney (UTC+10 in July) the holiday blocks Sydney midnight to midnight, not
    10:00 to 10:00, and the 07:00 gym is 21:00 UTC the evening before."""
    window = (utc(2026, 7, 1), utc(2026, 8, 1))

    found = agree(SYDNEY_DAY, window, SYDNEY)

    assert found == [
        (utc(2026, 7, 9, 14), utc(2026, 7, 10, 14)),
        (utc(2026, 7, 12, 21), utc(2026, 7, 12, 22)),
        (utc(2026, 7, 19, 21), utc(2026, 7, 19, 22)),
        (utc(2026, 7, 26, 21), utc(2026, 7, 26, 22)),
    ]
    assert found != ours(SYDNEY_DAY, window)  # read in UTC it would be wrong
    assert found[0][1] - found[0][0] == timedelta(days=1)
