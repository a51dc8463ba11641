"""The calendar's plain parts: ranges in the viewer's zone (DST included), query-string
parsing, C2 titles and the layout of items on days and in columns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.calendar.queries import (
    BadRequest,
    Item,
    Params,
    Segment,
    _grid,
    _place,
    _segments,
    make_window,
    parse_params,
    span_label,
)
from app.connections.titles import busy_label

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- ranges ------------------------------------------------------------------------------


def test_week_runs_monday_to_sunday_from_local_midnight():
    """Any day of the week shows the Monday–Sunday around it, each day from local midnight."""
    window = make_window("week", date(2030, 1, 16), LONDON)  # a Wednesday
    assert [d.date for d in window.days] == [date(2030, 1, 14) + timedelta(n) for n in range(7)]
    assert window.start == utc(2030, 1, 14, 0) and window.end == utc(2030, 1, 21, 0)
    assert window.previous == date(2030, 1, 9) and window.next == date(2030, 1, 23)
    assert window.label == "14–20 January 2030"
    assert window.zone_label == "Europe/London (GMT)"


def test_spring_forward_week_is_167_hours_and_days_start_at_local_midnight():
    """London's clocks go forward on Sunday 31 March 2030: that day lasts 23 hours, the week
    167, and the header names both GMT and BST."""
    window = make_window("week", date(2030, 3, 27), LONDON)
    assert window.end - window.start == timedelta(hours=167)
    sunday = window.days[-1]
    assert sunday.date == date(2030, 3, 31)
    assert sunday.end - sunday.start == timedelta(hours=23)
    assert sunday.end == utc(2030, 3, 31, 23)  # 00:00 BST on 1 April
    for day in window.days:
        local = day.start.astimezone(LONDON)
        assert (local.date(), local.hour, local.minute) == (day.date, 0, 0)
    assert window.zone_label == "Europe/London (GMT/BST)"


def test_fall_back_week_is_169_hours():
    """Sunday 27 October 2030 lasts 25 hours in London."""
    window = make_window("week", date(2030, 10, 21), LONDON)
    assert window.end - window.start == timedelta(hours=169)
    assert window.days[-1].end - window.days[-1].start == timedelta(hours=25)
    assert window.start == utc(2030, 10, 20, 23)  # 00:00 BST on Monday 21 October
    assert window.zone_label == "Europe/London (BST/GMT)"


def test_the_viewers_zone_decides_where_days_begin():
    """A New York viewer's day starts at 05:00 UTC in winter; their DST change is another date."""
    window = make_window("day", date(2030, 1, 15), NEW_YORK)
    assert (window.start, window.end) == (utc(2030, 1, 15, 5), utc(2030, 1, 16, 5))
    assert window.label == "Tuesday 15 January 2030"
    assert window.previous == date(2030, 1, 14) and window.next == date(2030, 1, 16)
    spring = make_window("week", date(2030, 3, 10), NEW_YORK)  # US change: Sunday 10 March
    assert spring.end - spring.start == timedelta(hours=167)


@pytest.mark.parametrize(
    ("anchor", "label"),
    [
        (date(2030, 1, 30), "28 Jan – 3 Feb 2030"),
        (date(2030, 12, 31), "30 Dec 2030 – 5 Jan 2031"),
    ],
)
def test_week_labels_across_months_and_years(anchor, label):
    """A week spanning two months or two years names both."""
    assert make_window("week", anchor, LONDON).label == label


# --- the query string ------------------------------------------------------------------


def test_parameters_default_to_this_week_and_round_trip():
    """No arguments: the week of today in the default scope; args() writes a canonical URL."""
    params = parse_params({}, today=date(2030, 1, 16), scope="team")
    assert params == Params(day=date(2030, 1, 16), view="week", scope="team")
    full = {"view": "day", "date": "2030-01-17", "scope": "team", "group": "g", "type": "t"}
    params = parse_params({**full, "cancelled": "1"}, today=date(2030, 1, 1), scope="me")
    assert params.args() == {**full, "cancelled": "1"}
    assert params.args(scope="me") == {"view": "day", "date": "2030-01-17", "scope": "me",
                                       "type": "t", "cancelled": "1"}  # fmt: skip
    assert parse_params({"date": " 2030-02-01 "}, today=date(2030, 1, 1), scope="me").day == date(
        2030, 2, 1
    )


@pytest.mark.parametrize(
    "args",
    [
        {"view": "month"},
        {"scope": "everyone"},
        {"date": "23/11/2026"},
        {"date": "2026-02-30"},
        {"date": "0002-01-01"},
        {"date": "2200-01-01"},
        {"group": "x" * 81},
    ],
)
def test_bad_parameters_are_refused_with_a_reason(args):
    """Each unreadable value raises BadRequest with a message for people."""
    with pytest.raises(BadRequest) as caught:
        parse_params(args, today=date(2030, 1, 1), scope="me")
    assert str(caught.value)


# --- C2 titles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "source", "title", "show", "expected"),
    [
        ("busy", "graph-org", "Board meeting", True, "Board meeting"),
        ("busy", "graph-org:tenant", "Board meeting", True, "Board meeting"),
        ("busy", "graph-org", "Board meeting", False, "Private event"),
        ("busy", "graph-org", None, True, "Private event"),
        ("busy", "graph:12", "Dentist", True, "Busy"),  # personally linked Microsoft account
        ("busy", "caldav:3", "Dentist", True, "Busy"),
        ("busy", "ics:4", "Dentist", False, "Busy"),
        ("tentative", "caldav:3", None, False, "Busy (tentative)"),
        ("oof", "graph-org", "Holiday", True, "Holiday (out of office)"),
    ],
)
def test_external_events_are_titled_by_the_c2_rule(status, source, title, show, expected):
    """The real title only for organisation Microsoft 365 with "Show event details" on."""
    assert busy_label(status, source, title, show) == expected


# --- layout ------------------------------------------------------------------------------


def _item(start: datetime, end: datetime) -> Item:
    return Item("booking", start, end, "T", "confirmed", span_label(start, end, LONDON))


def test_an_item_crossing_midnight_is_drawn_on_both_days():
    """22:00–02:00 local: 22:00–24:00 on the first day, 00:00–02:00 on the next."""
    window = make_window("week", date(2030, 1, 14), LONDON)
    item = _item(utc(2030, 1, 15, 22), utc(2030, 1, 16, 2))
    parts = [
        (i, s.start_min, s.end_min, s.all_day) for i, s in _segments(item, window.days, LONDON)
    ]
    assert parts == [(1, 22 * 60, 24 * 60, False), (2, 0, 120, False)]
    assert item.time_label == "Tue 15 22:00 – Wed 16 02:00"


def test_a_block_covering_whole_days_is_all_day():
    """An absence from Tuesday 00:00 to Thursday noon: all day Tuesday and Wednesday, timed on
    Thursday."""
    window = make_window("week", date(2030, 1, 14), LONDON)
    item = _item(utc(2030, 1, 15, 0), utc(2030, 1, 17, 12))
    parts = [(i, s.all_day) for i, s in _segments(item, window.days, LONDON)]
    assert parts == [(1, True), (2, True), (3, False)]


def test_times_after_the_clock_change_are_local_wall_times():
    """09:00 BST on the Monday after the change sits on the 09:00 row."""
    window = make_window("day", date(2030, 4, 1), LONDON)
    item = _item(utc(2030, 4, 1, 8), utc(2030, 4, 1, 9))
    ((_, segment),) = _segments(item, window.days, LONDON)
    assert (segment.start_min, segment.end_min) == (9 * 60, 10 * 60)
    assert item.time_label == "09:00–10:00"


def test_overlapping_items_share_the_column_side_by_side():
    """Two overlapping items get two sub-columns; a later, separate item the full width."""
    segs = [
        Segment(_item(utc(2030, 1, 14, 9), utc(2030, 1, 14, 10)), 540, 600, False),
        Segment(_item(utc(2030, 1, 14, 9, 30), utc(2030, 1, 14, 11)), 570, 660, False),
        Segment(_item(utc(2030, 1, 14, 13), utc(2030, 1, 14, 14)), 780, 840, False),
    ]
    _place(segs, 7 * 60)
    assert [(s.col, s.cols) for s in segs] == [(0, 2), (1, 2), (0, 1)]
    assert [(s.left, s.width) for s in segs] == [(0, 50), (50, 50), (0, 100)]
    assert (segs[0].row_start, segs[0].row_end) == (9, 13)  # 09:00 is row 9 after 07:00


def test_bookings_keep_the_wide_track_where_they_meet_busy_time():
    """A booking overlapping an external block gets the left 70 %, the block the right 30 %;
    a booking elsewhere in the day keeps the full width."""
    booking = Segment(_item(utc(2030, 1, 14, 14), utc(2030, 1, 14, 15)), 840, 900, False)
    block = Segment(
        Item("busy", utc(2030, 1, 14, 14, 30), utc(2030, 1, 14, 15, 30), "Busy", "busy", ""),
        870,
        930,
        False,
    )
    alone = Segment(_item(utc(2030, 1, 14, 9), utc(2030, 1, 14, 10)), 540, 600, False)
    _place([block, booking, alone], 7 * 60)
    assert (booking.left, booking.width) == (0.0, 70.0)
    assert (block.left, block.width) == (70.0, 30.0)
    assert (alone.left, alone.width) == (0.0, 100.0)


def test_the_grid_shows_seven_to_eight_and_stretches_for_early_items():
    """07:00–20:00 by default; an item at 05:30 extends the top to 05:00."""
    from app.calendar.queries import Column

    column = Column(
        "x",
        "x",
        segments=[Segment(_item(utc(2030, 1, 14, 5, 30), utc(2030, 1, 14, 6)), 330, 360, False)],
    )
    grid = _grid([column])
    assert (grid.first_min, grid.last_min) == (5 * 60, 20 * 60)
    assert grid.rows == 60 and grid.hours[0] == (1, "05:00")
    assert _grid([]).first_min == 7 * 60
