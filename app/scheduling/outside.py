"""Why a chosen time is not one the person would be offered, apart from busy time.

Staff booking by hand may choose any time; the live preview and the form must still say when
that time lies outside the person's working hours, on a closed day, in time off or outside
the booking window (A1, A4), so that "free" is never said of 03:00 on a Saturday. Busy time
is left out here: it is the conflict overlay's business (C3).

Pure: aware datetimes in, reason codes out, so the rule is tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.scheduling.intervals import Interval, covers
from app.scheduling.rules import BookingWindow, WorkingHours, window_pairs, working_pairs

PAST = "past"
CLOSED_DAY = "closed_day"  # the organisation's window is closed that day (weekends off)
DAY_OFF = "day_off"  # the person works no hours that local day
HOURS = "hours"  # the person works that day, but not at that time
TIME_OFF = "time_off"  # leave or holiday over the time
NOTICE = "notice"  # too soon: minimum notice, disabled window or earliest day
HORIZON = "horizon"  # too far ahead


@dataclass(frozen=True)
class Outside:
    """One reason, with what the sentence shown to staff needs."""

    code: str
    ranges: tuple[tuple[datetime, datetime], ...] = ()  # the person's hours that day (HOURS)


def window_reasons(window: BookingWindow, now: datetime, slot: Interval) -> list[Outside]:
    """Why ``slot`` is outside the organisation's booking window (nothing when inside)."""
    if slot.start < now:
        return [Outside(PAST)]
    open_ = window_pairs(window, now, slot.start, slot.end)
    if covers([Interval(a, b) for a, b in open_], slot):
        return []
    if slot.start >= now + window.horizon or slot.end > now + window.horizon:
        return [Outside(HORIZON)]
    local = slot.start.astimezone(window.zone)
    if not window.weekends and (
        local.weekday() >= 5 or slot.end.astimezone(window.zone).weekday() >= 5
    ):
        return [Outside(CLOSED_DAY)]
    return [Outside(NOTICE)]


def hours_reasons(hours: WorkingHours, slot: Interval) -> list[Outside]:
    """Why ``slot`` is outside one person's working time (nothing when inside)."""
    day = slot.start.astimezone(hours.zone).date()
    if not hours.ranges_on(day):
        return [Outside(DAY_OFF)]
    pad = timedelta(days=1)
    worked_whole = working_pairs(
        WorkingHours(hours.zone, hours.weekly, hours.overrides), slot.start - pad, slot.end + pad
    )
    on_day = tuple((a, b) for a, b in worked_whole if a.astimezone(hours.zone).date() == day)
    if not covers([Interval(a, b) for a, b in worked_whole], slot):
        return [Outside(HOURS, on_day)]
    if any(off.start < slot.end and off.end > slot.start for off in hours.time_off):
        return [Outside(TIME_OFF)]
    return []
