"""Busy time from iCalendar text (SPEC A2, K6): recurrences, statuses, time zones, durations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.connections.expand import busy_from_ical, looks_like_calendar, parse_calendar_name

LONDON = ZoneInfo("Europe/London")
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def ics(*events: str, head: str = "") -> str:
    """A VCALENDAR around the given VEVENT bodies, with CRLF line ends as RFC 5545 wants."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotbook tests//EN"]
    parts += [line for line in head.strip().splitlines() if line]
    for event in events:
        parts += ["BEGIN:VEVENT", *[ln.strip() for ln in event.strip().splitlines()], "END:VEVENT"]
    parts.append("END:VCALENDAR")
    return "\r\n".join(parts) + "\r\n"


def expand(text, window=MARCH, **options):
    options.setdefault("max_instances", 2000)
    options.setdefault("max_seconds", 5.0)
    return busy_from_ical(text, *window, **options)


def blocks_of(result, key: str):
    (change,) = [c for c in result.changes if c.key == key]
    return [(b.starts_at, b.ends_at) for b in change.blocks]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- recurrences -----------------------------------------------------------------------------

WEEKLY_STANDUP = ics(
    """
    UID:standup@example.test
    SUMMARY:Standup
    DTSTART;TZID=Europe/London:20260302T090000
    DTEND;TZID=Europe/London:20260302T093000
    RRULE:FREQ=WEEKLY;COUNT=8
    EXDATE;TZID=Europe/London:20260309T090000
    """,
    """
    UID:standup@example.test
    RECURRENCE-ID;TZID=Europe/London:20260316T090000
    SUMMARY:Standup (moved)
    DTSTART;TZID=Europe/London:20260317T140000
    DTEND;TZID=Europe/London:20260317T150000
    SEQUENCE:1
    """,
    """
    UID:standup@example.test
    RECURRENCE-ID;TZID=Europe/London:20260406T090000
    STATUS:CANCELLED
    DTSTART;TZID=Europe/London:20260406T090000
    DTEND;TZID=Europe/London:20260406T093000
    """,
)


def test_weekly_event_with_exdate_moved_and_cancelled_instances():
    result = expand(WEEKLY_STANDUP)

    assert result.warnings == []
    assert [c.key for c in result.changes] == ["standup@example.test"]
    assert blocks_of(result, "standup@example.test") == [
        (utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 30)),  # 9:00 GMT
        # 9 March excluded; 16 March moved to the 17th, 14:00-15:00
        (utc(2026, 3, 17, 14), utc(2026, 3, 17, 15)),
        (utc(2026, 3, 23, 9), utc(2026, 3, 23, 9, 30)),
        # 29 March: the clocks go forward, 9:00 BST is 8:00 UTC
        (utc(2026, 3, 30, 8), utc(2026, 3, 30, 8, 30)),
        # 6 April cancelled
        (utc(2026, 4, 13, 8), utc(2026, 4, 13, 8, 30)),
        (utc(2026, 4, 20, 8), utc(2026, 4, 20, 8, 30)),
    ]
    (change,) = result.changes
    assert [b.title for b in change.blocks][:2] == ["Standup", "Standup (moved)"]
    assert {b.status for b in change.blocks} == {"busy"}


def test_a_9am_london_meeting_stays_at_9am_local_across_both_dst_changes():
    text = ics(
        """
        UID:daily
        DTSTART;TZID=Europe/London:20261020T090000
        DURATION:PT1H
        RRULE:FREQ=DAILY
        """
    )
    window = (utc(2026, 10, 23), utc(2026, 10, 27))

    starts = [s for s, _ in blocks_of(expand(text, window), "daily")]

    assert [s.astimezone(LONDON).hour for s in starts] == [9, 9, 9, 9]
    assert [s.hour for s in starts] == [8, 8, 9, 9]  # BST until 25 October, then GMT


def test_the_window_only_gets_instances_that_overlap_it():
    text = ics(
        """
        UID:nightly
        DTSTART:20260228T230000Z
        DTEND:20260301T010000Z
        RRULE:FREQ=DAILY;UNTIL=20260430T230000Z
        """
    )

    found = blocks_of(expand(text), "nightly")

    assert found[0] == (utc(2026, 2, 28, 23), utc(2026, 3, 1, 1))  # started before, overlaps
    assert found[-1] == (utc(2026, 4, 30, 23), utc(2026, 5, 1, 1))  # UNTIL is inclusive
    assert len(found) == 62


def test_a_moved_instance_counts_where_it_went_not_where_it_was():
    text = ics(
        """
        UID:review
        DTSTART:20260223T100000Z
        DTEND:20260223T110000Z
        RRULE:FREQ=WEEKLY;COUNT=3
        """,
        """
        UID:review
        RECURRENCE-ID:20260223T100000Z
        DTSTART:20260303T100000Z
        DTEND:20260303T110000Z
        """,
        """
        UID:review
        RECURRENCE-ID:20260302T100000Z
        DTSTART:20260601T100000Z
        DTEND:20260601T110000Z
        """,
    )

    # 23 Feb moved into the window (3 March); 2 March moved out of it (1 June).
    assert blocks_of(expand(text), "review") == [
        (utc(2026, 3, 3, 10), utc(2026, 3, 3, 11)),
        (utc(2026, 3, 9, 10), utc(2026, 3, 9, 11)),
    ]


def test_an_override_without_an_end_keeps_the_length_and_title_of_the_series():
    text = ics(
        """
        UID:class
        SUMMARY:Class
        DTSTART:20260302T100000Z
        DTEND:20260302T120000Z
        RRULE:FREQ=WEEKLY;COUNT=2
        """,
        """
        UID:class
        RECURRENCE-ID:20260309T100000Z
        DTSTART:20260309T130000Z
        """,
    )

    (change,) = expand(text).changes

    assert [(b.starts_at, b.ends_at, b.title) for b in change.blocks] == [
        (utc(2026, 3, 2, 10), utc(2026, 3, 2, 12), "Class"),
        (utc(2026, 3, 9, 13), utc(2026, 3, 9, 15), "Class"),
    ]


def test_rdate_adds_instances_and_a_date_exdate_removes_a_timed_one():
    text = ics(
        """
        UID:extra
        DTSTART:20260302T100000Z
        DTEND:20260302T110000Z
        RRULE:FREQ=DAILY;COUNT=3
        EXDATE;VALUE=DATE:20260303
        RDATE:20260310T150000Z
        RDATE;VALUE=PERIOD:20260312T080000Z/PT4H
        """
    )

    assert blocks_of(expand(text), "extra") == [
        (utc(2026, 3, 2, 10), utc(2026, 3, 2, 11)),
        (utc(2026, 3, 4, 10), utc(2026, 3, 4, 11)),
        (utc(2026, 3, 10, 15), utc(2026, 3, 10, 16)),
        (utc(2026, 3, 12, 8), utc(2026, 3, 12, 12)),
    ]


def test_monthly_last_weekday_with_bysetpos():
    text = ics(
        """
        UID:payday
        DTSTART:20260130T120000Z
        DURATION:PT30M
        RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1
        """
    )

    starts = [s.date() for s, _ in blocks_of(expand(text), "payday")]

    assert starts == [date(2026, 3, 31), date(2026, 4, 30)]


def test_an_old_series_is_fast_forwarded_not_walked_from_its_start():
    """A minutely event since 1990 has 19 million earlier occurrences; the window still gets
    its instances, found without walking through them (a walk would hit the cap)."""
    text = ics(
        """
        UID:old
        DTSTART:19900101T000000Z
        DURATION:PT30S
        RRULE:FREQ=MINUTELY;INTERVAL=30
        """
    )
    window = (utc(2026, 3, 1, 9), utc(2026, 3, 1, 11))

    result = expand(text, window, max_instances=50)

    assert result.warnings == []
    assert [s.strftime("%H:%M") for s, _ in blocks_of(result, "old")] == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
    ]


# --- all-day events ------------------------------------------------------------------------


def test_all_day_events_are_busy_all_day_in_utc_by_default():
    text = ics(
        """
        UID:holiday
        DTSTART;VALUE=DATE:20260305
        DTEND;VALUE=DATE:20260307
        """,
        """
        UID:one-day
        DTSTART;VALUE=DATE:20260310
        """,
    )

    result = expand(text)

    assert blocks_of(result, "holiday") == [(utc(2026, 3, 5), utc(2026, 3, 7))]
    assert blocks_of(result, "one-day") == [(utc(2026, 3, 10), utc(2026, 3, 11))]  # RFC: 1 day
    assert result.warnings == []


def test_all_day_events_follow_the_callers_zone_when_given():
    text = ics(
        """
        UID:summer-day
        DTSTART;VALUE=DATE:20260410
        DURATION:P1D
        """
    )

    found = blocks_of(expand(text, floating_zone=LONDON), "summer-day")

    assert found == [(utc(2026, 4, 9, 23), utc(2026, 4, 10, 23))]  # midnight to midnight BST


def test_recurring_all_day_event_with_exdate():
    text = ics(
        """
        UID:gym
        DTSTART;VALUE=DATE:20260302
        RRULE:FREQ=WEEKLY;UNTIL=20260316
        EXDATE;VALUE=DATE:20260309
        """
    )

    assert blocks_of(expand(text), "gym") == [
        (utc(2026, 3, 2), utc(2026, 3, 3)),
        (utc(2026, 3, 16), utc(2026, 3, 17)),
    ]


# --- busy or not ---------------------------------------------------------------------------


def test_transparent_free_and_cancelled_events_block_nothing():
    text = ics(
        """
        UID:transparent
        TRANSP:TRANSPARENT
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
        """
        UID:outlook-free
        X-MICROSOFT-CDO-BUSYSTATUS:FREE
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
        """
        UID:cancelled
        STATUS:CANCELLED
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        RRULE:FREQ=DAILY
        """,
        """
        UID:opaque
        TRANSP:OPAQUE
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
    )

    result = expand(text)

    assert {c.key: len(c.blocks) for c in result.changes} == {
        "transparent": 0,
        "outlook-free": 0,
        "cancelled": 0,
        "opaque": 1,
    }


def test_tentative_and_out_of_office_keep_their_status():
    text = ics(
        """
        UID:maybe
        STATUS:TENTATIVE
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
        """
        UID:outlook-maybe
        X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
        """
        UID:away
        X-MICROSOFT-CDO-BUSYSTATUS:OOF
        DTSTART;VALUE=DATE:20260306
        """,
        """
        UID:sure
        STATUS:CONFIRMED
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
    )

    statuses = {c.key: [b.status for b in c.blocks] for c in expand(text).changes}

    assert statuses == {
        "maybe": ["tentative"],
        "outlook-maybe": ["tentative"],
        "away": ["oof"],
        "sure": ["busy"],
    }


def test_a_transparent_series_can_have_an_opaque_instance():
    text = ics(
        """
        UID:focus
        TRANSP:TRANSPARENT
        DTSTART:20260302T080000Z
        DTEND:20260302T090000Z
        RRULE:FREQ=DAILY;COUNT=5
        """,
        """
        UID:focus
        RECURRENCE-ID:20260304T080000Z
        TRANSP:OPAQUE
        DTSTART:20260304T080000Z
        DTEND:20260304T090000Z
        """,
    )

    assert blocks_of(expand(text), "focus") == [(utc(2026, 3, 4, 8), utc(2026, 3, 4, 9))]


# --- time zones ----------------------------------------------------------------------------


def test_unknown_time_zone_is_read_as_utc_with_a_warning():
    text = ics(
        """
        UID:mars
        SUMMARY:Rover check
        DTSTART;TZID=Mars/Olympus:20260305T100000
        DTEND;TZID=Mars/Olympus:20260305T110000
        """
    )

    result = expand(text)

    assert blocks_of(result, "mars") == [(utc(2026, 3, 5, 10), utc(2026, 3, 5, 11))]
    assert result.warnings == [
        "Unknown time zone 'Mars/Olympus' in event 'Rover check'; read as UTC."
    ]


def test_windows_zone_names_are_understood():
    text = ics(
        """
        UID:outlook
        DTSTART;TZID=W. Europe Standard Time:20260701T100000
        DTEND;TZID=W. Europe Standard Time:20260701T110000
        """
    )

    window = (utc(2026, 7, 1), utc(2026, 7, 2))
    assert blocks_of(expand(text, window), "outlook") == [(utc(2026, 7, 1, 8), utc(2026, 7, 1, 9))]


def vtimezone(tzid: str, standard: str, daylight: str, rule: str = "") -> str:
    std_rule = rule or "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"
    dst_rule = rule or "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"
    return f"""
BEGIN:VTIMEZONE
TZID:{tzid}
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:{daylight}
TZOFFSETTO:{standard}
RRULE:{std_rule}
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:{standard}
TZOFFSETTO:{daylight}
RRULE:{dst_rule}
END:DAYLIGHT
END:VTIMEZONE
"""


def custom_zone_event(uid: str) -> str:
    return f"""
    UID:{uid}
    DTSTART;TZID=Customized Time Zone:20260701T100000
    DTEND;TZID=Customized Time Zone:20260701T110000
    """


def test_a_calendars_own_vtimezone_is_used_and_never_leaks_into_another_calendar():
    """icalendar caches VTIMEZONEs for the whole process by TZID; Outlook calls every custom
    zone "Customized Time Zone". Each calendar must get its own definition."""
    berlin = ics(
        custom_zone_event("berlin"), head=vtimezone("Customized Time Zone", "+0100", "+0200")
    )
    new_york = ics(
        custom_zone_event("new-york"), head=vtimezone("Customized Time Zone", "-0500", "-0400")
    )
    window = (utc(2026, 7, 1), utc(2026, 7, 2))

    first = expand(berlin, window)
    second = expand(new_york, window)

    assert blocks_of(first, "berlin") == [(utc(2026, 7, 1, 8), utc(2026, 7, 1, 9))]
    assert blocks_of(second, "new-york") == [(utc(2026, 7, 1, 14), utc(2026, 7, 1, 15))]
    assert first.warnings == second.warnings == []


def test_a_hostile_vtimezone_is_refused_instead_of_run():
    """A zone whose rule repeats every second from 1601 would cost billions of steps on every
    conversion; it is refused and the times are read as UTC."""
    zone = vtimezone("Evil", "+0100", "+0200", rule="FREQ=SECONDLY")
    text = ics(
        """
        UID:evil
        SUMMARY:Trap
        DTSTART;TZID=Evil:20260305T100000
        DTEND;TZID=Evil:20260305T110000
        """,
        head=zone,
    )

    result = expand(text, max_seconds=1.0)

    assert blocks_of(result, "evil") == [(utc(2026, 3, 5, 10), utc(2026, 3, 5, 11))]
    assert result.warnings == [
        "The time zone 'Evil' in event 'Trap' is defined in a way Slotbook cannot use; read as UTC."
    ]


def test_floating_times_are_read_in_the_given_zone():
    text = ics(
        """
        UID:floating
        DTSTART:20260701T100000
        DTEND:20260701T113000
        """
    )
    window = (utc(2026, 7, 1), utc(2026, 7, 2))

    assert blocks_of(expand(text, window), "floating") == [
        (utc(2026, 7, 1, 10), utc(2026, 7, 1, 11, 30))
    ]
    london = expand(text, window, floating_zone=LONDON)
    assert blocks_of(london, "floating") == [(utc(2026, 7, 1, 9), utc(2026, 7, 1, 10, 30))]


# --- durations -----------------------------------------------------------------------------


def test_missing_dtend_follows_rfc_5545():
    text = ics(
        """
        UID:reminder
        DTSTART:20260305T100000Z
        """,
        """
        UID:with-duration
        DTSTART:20260305T100000Z
        DURATION:PT45M
        """,
        """
        UID:all-day
        DTSTART;VALUE=DATE:20260305
        """,
    )

    result = expand(text)

    assert blocks_of(result, "reminder") == []  # ends where it starts: nothing busy
    assert blocks_of(result, "with-duration") == [(utc(2026, 3, 5, 10), utc(2026, 3, 5, 10, 45))]
    assert blocks_of(result, "all-day") == [(utc(2026, 3, 5), utc(2026, 3, 6))]
    assert result.warnings == []  # all three are valid iCalendar


def test_malformed_ends_and_starts_are_warned_about():
    text = ics(
        """
        UID:backwards
        SUMMARY:Backwards
        DTSTART:20260305T100000Z
        DTEND:20260305T090000Z
        """,
        """
        UID:negative
        SUMMARY:Negative
        DTSTART:20260305T100000Z
        DURATION:-PT1H
        """,
        """
        UID:no-start
        SUMMARY:Nowhere
        DTEND:20260305T090000Z
        """,
        """
        UID:bad-start
        SUMMARY:Garbled
        DTSTART:2026-03-05 10:00
        """,
        """
        UID:fine
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """,
    )

    result = expand(text)

    assert {c.key for c in result.changes} == {"backwards", "negative", "fine"}
    assert blocks_of(result, "fine") == [(utc(2026, 3, 5, 10), utc(2026, 3, 5, 11))]
    assert blocks_of(result, "backwards") == blocks_of(result, "negative") == []
    assert result.warnings == [
        "Event 'Backwards' ends before it starts; it was ignored.",
        "Event 'Negative' has a negative duration; it was read as having none.",
        "Skipped an event without a start.",
        "Skipped event 'Garbled': its DTSTART could not be read.",
    ]


def test_dtend_gives_an_exact_duration_and_duration_a_nominal_one():
    """RFC 5545 3.8.5.3: instances keep the exact length DTSTART..DTEND, but a DURATION's
    days are calendar days. Seen on a Saturday-to-Sunday event over the clocks going
    forward (29 March 2026, London)."""
    text = ics(
        """
        UID:by-dtend
        DTSTART;TZID=Europe/London:20260321T060000
        DTEND;TZID=Europe/London:20260322T070000
        RRULE:FREQ=WEEKLY;COUNT=2
        """,
        """
        UID:by-duration
        DTSTART;TZID=Europe/London:20260321T060000
        DURATION:P1DT1H
        RRULE:FREQ=WEEKLY;COUNT=2
        """,
    )

    result = expand(text)

    assert blocks_of(result, "by-dtend")[1] == (utc(2026, 3, 28, 6), utc(2026, 3, 29, 7))
    assert blocks_of(result, "by-duration")[1] == (utc(2026, 3, 28, 6), utc(2026, 3, 29, 6))


# --- limits ----------------------------------------------------------------------------------


def test_an_endless_secondly_rule_is_capped_with_a_warning():
    text = ics(
        """
        UID:flood
        SUMMARY:Flood
        DTSTART:20260101T000000Z
        DURATION:PT1S
        RRULE:FREQ=SECONDLY
        """
    )

    result = expand(text, max_instances=2000)

    assert len(result.changes[0].blocks) == 2000
    assert result.changes[0].blocks[0].starts_at == MARCH[0]
    assert result.warnings == [
        "Event 'Flood' repeats every second without end; only the first 2000 occurrences were used."
    ]


def test_titles_and_keys():
    text = ics(
        f"""
        UID:long
        SUMMARY:{"x" * 500}
        DTSTART:20260305T100000Z
        DTEND:20260305T110000Z
        """
    )

    result = expand(text, key_prefix="/cal/work/abc.ics#")

    assert [c.key for c in result.changes] == ["/cal/work/abc.ics#long"]
    assert len(result.changes[0].blocks[0].title) == 300


def test_warnings_are_bounded():
    events = [
        f"UID:e{i}\nSUMMARY:Event {i}\nDTSTART;TZID=Zone/{i}:20260305T100000" for i in range(40)
    ]

    result = expand(ics(*events))

    assert len(result.warnings) == 21
    assert result.warnings[-1] == "…and 20 more problems."


def test_a_one_line_string_is_never_read_as_a_file_name(tmp_path):
    """icalendar reads a single-line str as a path; a feed answering with a path of a file
    on this server must not make us parse that file."""
    secret = tmp_path / "other-user.ics"
    secret.write_text(ics("UID:leak\nDTSTART:20260305T100000Z\nDTEND:20260305T110000Z"))

    result = expand(str(secret))

    assert result.changes == []
    assert not result.readable


def test_calendar_name_and_detection():
    text = ics(head="X-WR-CALNAME:Team\\, shared")

    assert parse_calendar_name(text) == "Team, shared"
    assert parse_calendar_name(ics()) is None
    assert looks_like_calendar(text.encode())
    assert not looks_like_calendar(b"<!doctype html><title>Sign in</title>")


# --- agreement with recurring_ical_events on ordinary series ---------------------------------

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "UTC"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def ordinary_series(draw):
    """A recurring event such as calendar apps write: daily, weekly or monthly, with an end
    or not, some weekdays, a few excluded dates."""
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.dates(date(2025, 10, 1), date(2026, 12, 31)))
    start = datetime(
        day.year, day.month, day.day, draw(st.integers(6, 20)), draw(st.sampled_from([0, 30]))
    )
    # Up to 4 hours between 06:00 and 24:00: no instance spans a DST change, where the RFC's
    # exact DTEND duration and the library's wall-clock one differ (tested separately).
    minutes = draw(st.sampled_from([15, 30, 60, 90, 240]))
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    rule = f"FREQ={freq};INTERVAL={draw(st.integers(1, 3))}"
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
        rule += ";BYDAY=" + ",".join(days)
    if freq == "MONTHLY":
        rule += draw(
            st.sampled_from(
                [
                    "",
                    ";BYMONTHDAY=1,15",
                    ";BYMONTHDAY=-1",
                    ";BYDAY=2TU",
                    ";BYDAY=-1FR",
                    ";BYDAY=1MO,3MO",
                ]
            )
        )
    ending = draw(st.sampled_from(["count", "until", "none"]))
    if ending == "count":
        rule += f";COUNT={draw(st.integers(1, 60))}"
    elif ending == "until":
        until = start.replace(tzinfo=ZoneInfo(zone)) + timedelta(days=draw(st.integers(1, 300)))
        rule += ";UNTIL=" + until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    aware = start.replace(tzinfo=ZoneInfo(zone))
    first = [aware, *islice(rrulestr(rule, dtstart=aware), 12)]
    excluded = draw(st.lists(st.sampled_from(first), max_size=3, unique=True))
    lines = [
        "UID:series",
        f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={zone}:{start + timedelta(minutes=minutes):%Y%m%dT%H%M%S}",
        f"RRULE:{rule}",
    ]
    lines += [f"EXDATE;TZID={zone}:{moment:%Y%m%dT%H%M%S}" for moment in excluded]
    return "\n".join(lines), first[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    series=ordinary_series(),
    offset=st.integers(-5, 90),
    length=st.integers(1, 120),
)
def test_ordinary_series_expand_as_recurring_ical_events_does(series, offset, length):
    """Slotbook expands rules itself (to stay bounded on hostile input); on everyday series
    it must agree with the widely used library."""
    body, first = series
    text = ics(body)
    start = first.astimezone(UTC) + timedelta(days=offset, minutes=7)  # no ties at the edges
    end = start + timedelta(days=length)

    ours = {(s, e) for s, e in blocks_of(expand(text, (start, end)), "series")}
    calendar = icalendar.Calendar.from_ical(text.encode())
    theirs = {
        (e["DTSTART"].dt.astimezone(UTC), e["DTEND"].dt.astimezone(UTC))
        for e in recurring_ical_events.of(calendar).between(start, end)
    }

    assert ours == theirs
