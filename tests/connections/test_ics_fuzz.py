"""Property tests: malformed and hostile iCalendar never crashes or hangs a sync (K6).

Generated calendars mix an ordinary event with hostile ingredients (endless SECONDLY rules,
COUNT=1000000000, unknown TZIDs, NUL bytes, garbage lines, deep nesting, huge values,
truncation, random bytes). Each call gets a budget of 0.5 s and 500 instances per event;
the tests check the outcome stays inside those limits and that every hostile ingredient is
reported in a warning, both from ``busy_from_ical`` and through the ICS provider's HTTP path.
Time is bounded by the budget in the code, not asserted here.

The slowest generated calendars take ~0.2 s on an idle machine, so on a loaded one a call can
run out of its budget. That answer is warned about and still checked for bounds, but it drops
whatever was not read in time, so the warnings and the ordinary event are then checked on a
second read with a minute's room (``ROOM``), which must not run out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.connections.expand import busy_from_ical
from app.connections.models import Connection, ConnectionKind, LinkedCalendar
from app.connections.providers.base import ProviderError, ProviderSettings
from app.connections.providers.ics import IcsProvider
from tests.connections.ics_server import FeedServer

CAP = 500
BUDGET = 0.5
ROOM = 60.0
WINDOW = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
OUT_OF_TIME = "Reading the calendar took longer than"
ANCHOR = ["UID:anchor", "DTSTART:20260310T100000Z", "DTEND:20260310T110000Z"]
SETTINGS = ProviderSettings(
    allow_private_urls=True,
    http_attempts=1,
    timeout=5,
    max_instances_per_event=CAP,
    max_expand_seconds=BUDGET,
)
ROOMY_SETTINGS = replace(SETTINGS, max_expand_seconds=ROOM)


@dataclass
class Hostile:
    """A generated calendar and what it must be warned about."""

    text: str | bytes
    expected: list[str] = field(default_factory=list)  # substrings of some warning each
    anchor_intact: bool = True  # the ordinary event must still be read
    readable: bool = True


# --- ingredients: hostile events -------------------------------------------------------------

moments = st.datetimes(datetime(1990, 1, 1), datetime(2026, 4, 1)).map(
    lambda d: d.strftime("%Y%m%dT%H%M%SZ")
)
titles = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\\;,"), max_size=40)


@st.composite
def endless_rule(draw, uid):
    freq = draw(st.sampled_from(["SECONDLY", "MINUTELY"]))
    lines = [f"UID:{uid}", f"DTSTART:{draw(moments)}", "DURATION:PT1S", f"RRULE:FREQ={freq}"]
    return lines, ["occurrences were used"]


@st.composite
def huge_count(draw, uid):
    start = draw(st.datetimes(datetime(2025, 9, 1), datetime(2026, 4, 1)))
    lines = [
        f"UID:{uid}",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        "DURATION:PT1S",
        "RRULE:FREQ=SECONDLY;COUNT=1000000000",
    ]
    return lines, ["1000000000 times; only the first 500 occurrences were used"]


@st.composite
def unknown_zone(draw, uid):
    zone = "Nowhere/" + draw(st.from_regex(r"[A-Z][a-z]{2,12}", fullmatch=True))
    lines = [
        f"UID:{uid}",
        f"DTSTART;TZID={zone}:20260305T100000",
        f"DTEND;TZID={zone}:20260305T110000",
    ]
    return lines, [f"Unknown time zone '{zone}'"]


@st.composite
def without_dtend(draw, uid):
    """Valid iCalendar (RFC 5545: the event ends where it starts): no warning, no busy time."""
    return [f"UID:{uid}", f"DTSTART:{draw(moments)}", f"SUMMARY:{draw(titles)}"], []


@st.composite
def without_start(draw, uid):
    return [f"UID:{uid}", f"SUMMARY:{draw(titles)}", "DURATION:PT1H"], [
        "Skipped an event without a start."
    ]


@st.composite
def broken_start(draw, uid):
    value = draw(st.sampled_from(["2026-13-45T99", "tomorrow", "20261345T990000Z", ""]))
    return [f"UID:{uid}", f"DTSTART:{value}"], ["could not be read"]


@st.composite
def impossible_rule(draw, uid):
    rule = draw(
        st.sampled_from(
            [
                "FREQ=SECONDLY;BYSETPOS=2",
                "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
                "FREQ=HOURLY;INTERVAL=168;BYDAY=MO",
                "FREQ=YEARLY;BYMONTH=13",
                "FREQ=FORTNIGHTLY",
                "FREQ=DAILY;INTERVAL=0",
                "FREQ=WEEKLY;COUNT=-3",
            ]
        )
    )
    lines = [f"UID:{uid}", "DTSTART:20260302T090000Z", "DURATION:PT1H", f"RRULE:{rule}"]
    return lines, ["repeat rule"]


@st.composite
def huge_title(draw, uid):
    size = draw(st.integers(2_000, 300_000))
    lines = [f"UID:{uid}", "DTSTART:20260305T100000Z", "DURATION:PT1H", "SUMMARY:" + "A" * size]
    return lines, ["overlong event titles"]


@st.composite
def deep_nesting(draw, uid):
    depth = draw(st.integers(3, 3_000))
    nested = [f"BEGIN:X-{i % 7}" for i in range(depth)] + [
        f"END:X-{i % 7}" for i in reversed(range(depth))
    ]
    lines = [f"UID:{uid}", "DTSTART:20260305T100000Z", "DURATION:PT1H", *nested]
    return lines, ["nested more than 4 levels deep"]


INGREDIENTS = [
    endless_rule,
    huge_count,
    unknown_zone,
    without_dtend,
    without_start,
    broken_start,
    impossible_rule,
    huge_title,
    deep_nesting,
]


# --- assembling a calendar -------------------------------------------------------------------


@st.composite
def hostile_calendars(draw) -> Hostile:
    kinds = draw(st.lists(st.sampled_from(INGREDIENTS), min_size=1, max_size=4))
    events = [ANCHOR]
    expected: list[str] = []
    for number, kind in enumerate(kinds):
        lines, warnings = draw(kind(f"hostile-{number}"))
        events.append(lines)
        expected += warnings
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Fuzz//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    hostile = Hostile("\r\n".join(lines) + "\r\n", expected)
    for damage in draw(st.lists(st.sampled_from(DAMAGE), max_size=2, unique=True)):
        damage(draw, hostile)
    final = draw(st.sampled_from([None, None, truncated, random_bytes]))
    if final is not None:
        final(draw, hostile)
    return hostile


def with_nul_bytes(draw, hostile: Hostile) -> None:
    text = hostile.text
    for position in sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=5))):
        text = text[:position] + "\x00" + text[position:]
    hostile.text = text
    hostile.expected.append("NUL bytes")


def with_garbage_lines(draw, hostile: Hostile) -> None:
    lines = hostile.text.split("\r\n")
    garbage = st.text(st.characters(exclude_characters="\r\n:;", codec="utf-8"), max_size=30)
    for _ in range(draw(st.integers(1, 5))):
        position = draw(st.integers(1, len(lines) - 1))
        lines.insert(position, "%" + draw(garbage))  # never a folded line: starts with "%"
    hostile.text = "\r\n".join(lines)
    hostile.expected.append("lines that are not iCalendar")


def truncated(draw, hostile: Hostile) -> None:
    text = hostile.text
    cut = draw(st.integers(0, len(text.rstrip()) - len("END:VCALENDAR") - 1))
    hostile.text = text[:cut]
    hostile.expected.clear()  # whatever followed the cut is gone
    hostile.anchor_intact = False
    hostile.readable = "BEGIN:VCALENDAR" in hostile.text.replace("\x00", "")
    hostile.expected.append("cut short" if hostile.readable else "contains no iCalendar data")


def random_bytes(draw, hostile: Hostile) -> None:
    hostile.text = draw(st.binary(max_size=4_000))
    hostile.expected = ["contains no iCalendar data"]
    hostile.anchor_intact = False
    hostile.readable = False


DAMAGE = [with_nul_bytes, with_garbage_lines]


# --- checks ----------------------------------------------------------------------------------


def check_bounded(changes) -> None:
    for change in changes:
        assert len(change.blocks) <= CAP
        for block in change.blocks:
            assert block.starts_at.utcoffset().total_seconds() == 0
            assert block.starts_at < block.ends_at
            assert block.title is None or len(block.title) <= 300


def ran_out_of_time(warnings: list[str]) -> bool:
    return any(OUT_OF_TIME in w for w in warnings)


def check_warned(hostile: Hostile, warnings: list[str]) -> None:
    assert not ran_out_of_time(warnings), warnings
    for expected in hostile.expected:
        assert any(expected in w for w in warnings), (expected, warnings)


def check_anchor(hostile: Hostile, changes) -> None:
    if not hostile.anchor_intact:
        return
    (anchor,) = [c for c in changes if c.key == "anchor"]
    assert [(b.starts_at.hour, b.ends_at.hour) for b in anchor.blocks] == [(10, 11)]


@settings(max_examples=150, deadline=None)
@given(hostile=hostile_calendars())
def test_hostile_calendars_are_read_within_limits_and_warned_about(hostile):
    result = busy_from_ical(hostile.text, *WINDOW, max_instances=CAP, max_seconds=BUDGET)

    assert result.readable == hostile.readable
    check_bounded(result.changes)
    if ran_out_of_time(result.warnings):  # a loaded machine: read again with room
        result = busy_from_ical(hostile.text, *WINDOW, max_instances=CAP, max_seconds=ROOM)
    check_warned(hostile, result.warnings)
    check_anchor(hostile, result.changes)
    assert len(result.warnings) <= 21


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3_000) | st.text(max_size=3_000))
def test_arbitrary_input_never_raises(data):
    result = busy_from_ical(data, *WINDOW, max_instances=CAP, max_seconds=BUDGET)

    check_bounded(result.changes)
    if not result.readable:
        assert result.warnings


VALID = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n"
    "DTSTART;TZID=Europe/London:20260302T090000\r\nDTEND;TZID=Europe/London:20260302T100000\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260430T000000Z\r\nEXDATE:20260304T090000Z\r\n"
    "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID;TZID=Europe/London:20260309T090000\r\n"
    "DTSTART;TZID=Europe/London:20260310T090000\r\nDURATION:PT2H\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 40), st.text(max_size=12)),
        min_size=1,
        max_size=6,
    )
)
def test_a_mangled_calendar_never_raises(cuts):
    """Slices of a valid calendar deleted or replaced at random."""
    text = VALID
    for position, length, replacement in cuts:
        text = text[:position] + replacement + text[position + length :]

    result = busy_from_ical(text, *WINDOW, max_instances=CAP, max_seconds=BUDGET)

    check_bounded(result.changes)


FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]


def numbers(low: int, high: int):
    values = st.integers(low, high).filter(bool) if low < 0 else st.integers(low, high)
    return st.lists(values, min_size=1, max_size=4).map(lambda xs: ",".join(map(str, xs)))


RULE_PARTS = {
    "INTERVAL": st.integers(1, 400).map(str),
    "COUNT": st.sampled_from(["1", "5", "1000000000"]),
    "UNTIL": st.sampled_from(["20260401T000000Z", "20300101", "19990101T000000Z"]),
    "BYMONTH": numbers(1, 12),
    "BYMONTHDAY": numbers(-31, 31),
    "BYYEARDAY": numbers(-366, 366),
    "BYWEEKNO": numbers(-53, 53),
    "BYDAY": st.lists(
        st.tuples(st.sampled_from(["", "1", "-1", "5", "53"]), st.sampled_from(["MO", "FR", "SU"])),
        min_size=1,
        max_size=3,
    ).map(lambda days: ",".join(n + d for n, d in days)),
    "BYHOUR": numbers(0, 23),
    "BYMINUTE": numbers(0, 59),
    "BYSECOND": numbers(0, 59),
    "BYSETPOS": numbers(-10, 10),
    "WKST": st.sampled_from(["MO", "SU"]),
}


@st.composite
def recurrence_rules(draw) -> str:
    """Any combination of RRULE parts, including ones that never match or match rarely, the
    kind that leaves dateutil looping to the year 9999 unless they are caught first."""
    chosen = draw(st.lists(st.sampled_from(sorted(RULE_PARTS)), max_size=5, unique=True))
    parts = [f"FREQ={draw(st.sampled_from(FREQS))}"]
    return ";".join(parts + [f"{name}={draw(RULE_PARTS[name])}" for name in chosen])


@settings(max_examples=150, deadline=None)
@given(
    rule=recurrence_rules(),
    start=st.sampled_from(
        [
            "DTSTART:00010101T000000Z",
            "DTSTART:19000101T000000Z",
            "DTSTART;TZID=Europe/London:20260401T120000",
            "DTSTART;VALUE=DATE:20200229",
        ]
    ),
)
def test_any_recurrence_rule_stays_within_the_limits(rule, start):
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:rule\r\n"
        f"{start}\r\nDURATION:PT30M\r\nRRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )

    result = busy_from_ical(text, *WINDOW, max_instances=CAP, max_seconds=BUDGET)

    check_bounded(result.changes)
    (change,) = result.changes
    if len(change.blocks) == CAP:
        assert any("occurrences were used" in w for w in result.warnings)


# --- the same through the ICS provider's HTTP path -------------------------------------------


@pytest.fixture(scope="module")
def feed_server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def person(factory):
    return factory.user("agent")


@settings(
    max_examples=40,
    deadline=None,
    # ``person`` is only read, so sharing one per test across examples is fine.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(hostile=hostile_calendars())
def test_hostile_feeds_through_the_provider(feed_server, person, hostile):
    path = f"/feed-{len(feed_server.hits)}.ics"
    body = hostile.text if isinstance(hostile.text, bytes) else hostile.text.encode()
    feed_server.feed(path, body)
    url = feed_server.url(path)
    connection = Connection(kind=ConnectionKind.ICS, user_id=person.id, url=url)
    calendar = LinkedCalendar(person_id=person.id, remote_id=url, name="Feed")

    try:
        result = IcsProvider(connection, None, SETTINGS).read_busy(calendar, *WINDOW, None)
    except ProviderError as error:  # the sync records this as the connection's error
        assert not hostile.readable
        assert "did not return an iCalendar feed" in str(error)
        return

    assert hostile.readable
    check_bounded(result.changes)
    if ran_out_of_time(result.warnings):  # a loaded machine: read again with room
        result = IcsProvider(connection, None, ROOMY_SETTINGS).read_busy(calendar, *WINDOW, None)
    check_warned(hostile, result.warnings)
    check_anchor(hostile, result.changes)
    assert result.full == (result.cursor is not None)
