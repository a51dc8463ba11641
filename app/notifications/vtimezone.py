"""VTIMEZONE components for the calendars Slotbook writes (F1 feeds, F2 invitations).

A client that does not know the Olson database (ical.js in Thunderbird, Outlook) learns a
zone only from the VTIMEZONE we send, so it must describe every clock change the events
touch. Listing each change as an RDATE is not enough: ical.js reads only the first value of
an RDATE, so a feed spanning two calendar years showed its summer bookings an hour late.

So each run of changes that follows one yearly rule (London: last Sunday of March at 01:00)
is written as a STANDARD or DAYLIGHT part with that RRULE, the way Thunderbird and Outlook
write zones themselves; a change that fits no rule gets a part of its own (DTSTART only).
The result is then checked against zoneinfo: every change in the span is read back from
the rules and compared; if anything differs, every change is written as its own part,
which all readers understand.

``vtimezone()`` (an icalendar ``Timezone``) and ``vtimezone_ical()`` (its text) are the
public entry points; both are cached per zone and span, the zone data never changes at
run time.
"""

from __future__ import annotations

import calendar as month_calendar
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule
from icalendar import Timezone, TimezoneDaylight, TimezoneStandard, vRecur

STEP = timedelta(hours=12)  # no zone changes its clocks twice within 12 hours
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Change:
    """One clock change: the instant, the offsets either side, and what it is called."""

    at: datetime  # UTC
    before: timedelta
    after: timedelta
    name: str
    daylight: bool

    @property
    def onset(self) -> datetime:
        """The wall time it happens at, read in the offset before it (RFC 5545 3.6.5)."""
        return (self.at + self.before).replace(tzinfo=None)

    @property
    def kind(self) -> tuple:
        return (self.before, self.after, self.name, self.daylight)


def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tzid`` valid from 1 January ``first_year`` to 31 December
    ``last_year`` (and, where the zone's current rule goes on, beyond)."""
    return _cached(tzid, int(first_year), int(last_year))


def vtimezone_ical(tzid: str, first_year: int, last_year: int) -> str:
    """The same VTIMEZONE as text (CRLF line ends, folded), for code that writes its own
    VCALENDAR text around it."""
    return _cached_text(tzid, int(first_year), int(last_year))


@functools.lru_cache(maxsize=128)
def _cached_text(tzid: str, first_year: int, last_year: int) -> str:
    return _cached(tzid, first_year, last_year).to_ical().decode()


@functools.lru_cache(maxsize=128)
def _cached(tzid: str, first_year: int, last_year: int) -> Timezone:
    zone = ZoneInfo(tzid)
    # A day's margin each side: 1 January starts 14 hours before UTC's in Kiribati, and
    # 31 December ends 12 hours after it in Baker Island.
    start = datetime(first_year, 1, 1, tzinfo=UTC) - timedelta(days=1)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC) + timedelta(days=1)
    changes = transitions(zone, start, end)
    opening = _opening(zone, start)
    parts = _rule_parts(changes, last_year)
    component = _component(tzid, opening, parts)
    if not _agrees(component, end, changes):
        component = _component(tzid, opening, [(change, None) for change in changes])
    return component


# --- the zone's changes ------------------------------------------------------------------


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[Change]:
    """Every change of ``zone``'s offset (or name) in [start, end), found by stepping
    12 hours and bisecting to the second."""
    found = []
    moment = start
    while moment < end:
        following = min(moment + STEP, end)
        if _state(zone, moment) != _state(zone, following):
            found.append(_change(zone, _bisect(zone, moment, following)))
        moment = following
    return found


def _state(zone: ZoneInfo, moment: datetime) -> tuple:
    local = moment.astimezone(zone)
    return local.utcoffset(), local.tzname(), bool(local.dst())


def _bisect(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first second at which the state is that of ``high``."""
    before = _state(zone, low)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _state(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _change(zone: ZoneInfo, at: datetime) -> Change:
    before = (at - timedelta(seconds=1)).astimezone(zone).utcoffset()
    local = at.astimezone(zone)
    return Change(at, before, local.utcoffset(), local.tzname() or "", bool(local.dst()))


def _opening(zone: ZoneInfo, start: datetime) -> Change:
    """The offset in force when the span opens, as a part with no change in it."""
    local = start.astimezone(zone)
    offset = local.utcoffset()
    return Change(start, offset, offset, local.tzname() or "", bool(local.dst()))


# --- yearly rules ------------------------------------------------------------------------


def _by_day(onset: datetime) -> set[str]:
    """The BYDAY values this date satisfies within its month: 2SU, and -1SU in the last week."""
    weekday = WEEKDAYS[onset.weekday()]
    found = {f"{(onset.day - 1) // 7 + 1}{weekday}"}
    if onset.day + 7 > month_calendar.monthrange(onset.year, onset.month)[1]:
        found.add(f"-1{weekday}")
    return found


def _rule_parts(changes: list[Change], last_year: int) -> list[tuple[Change, dict | None]]:
    """(first change, RRULE or None) per part: consecutive yearly changes of the same kind,
    month, wall time and weekday position share one rule."""
    by_kind: dict[tuple, list[Change]] = {}
    for change in changes:
        by_kind.setdefault(change.kind, []).append(change)
    parts = []
    for group in by_kind.values():
        run: list[Change] = []
        days: set[str] = set()
        for change in group:
            fits = run and _follows(run[-1], change) and days & _by_day(change.onset)
            if fits:
                run.append(change)
                days &= _by_day(change.onset)
                continue
            if run:
                parts.append(_part(run, days, last_year))
            run, days = [change], _by_day(change.onset)
        if run:
            parts.append(_part(run, days, last_year))
    parts.sort(key=lambda part: part[0].at)
    return parts


def _follows(previous: Change, change: Change) -> bool:
    a, b = previous.onset, change.onset
    return b.year == a.year + 1 and (b.month, b.time()) == (a.month, a.time())


def _part(run: list[Change], days: set[str], last_year: int) -> tuple[Change, dict | None]:
    if len(run) == 1:
        return run[0], None
    day = sorted(days, key=lambda value: value.startswith("-"))[0]  # 2SU before -1SU
    rule: dict = {"FREQ": "YEARLY", "BYMONTH": run[0].onset.month, "BYDAY": day}
    if run[-1].onset.year < last_year:
        # The rule stopped inside the span. A day's margin: ical.js compares UNTIL with
        # the onset's wall time as if that were UTC.
        rule["UNTIL"] = (run[-1].onset + timedelta(days=1)).replace(tzinfo=UTC)
    return run[0], rule


# --- the component -----------------------------------------------------------------------


def _component(tzid: str, opening: Change, parts: list[tuple[Change, dict | None]]) -> Timezone:
    zone = Timezone()
    zone.add("tzid", tzid)
    if not parts or parts[0][0].at > opening.at:
        zone.add_component(_observance(opening, None))
    for change, rule in parts:
        zone.add_component(_observance(change, rule))
    return zone


def _observance(change: Change, rule: dict | None):
    part = TimezoneDaylight() if change.daylight else TimezoneStandard()
    part.add("dtstart", change.onset)
    part.add("tzoffsetfrom", change.before)
    part.add("tzoffsetto", change.after)
    if change.name:
        part.add("tzname", change.name)
    if rule is not None:
        part.add("rrule", vRecur(rule))
    return part


# --- the check against zoneinfo ----------------------------------------------------------


def _agrees(component: Timezone, end: datetime, changes: list[Change]) -> bool:
    """Whether the component's parts, expanded as RFC 5545 reads them (each onset in the
    offset before it), give exactly zoneinfo's changes in the span: every one, nothing else."""
    expected = {(c.at, c.before, c.after) for c in changes}
    found = set()
    for part in component.subcomponents:
        before, after = part.TZOFFSETFROM, part.TZOFFSETTO
        if before == after:
            continue  # the opening part: no change there
        for onset in _onsets(part, end + before):
            at = (onset - before).replace(tzinfo=UTC)
            if at < end:
                found.add((at, before, after))
    return found == expected


def _onsets(part, until: datetime) -> list[datetime]:
    start = part.DTSTART
    rule = part.get("RRULE")
    if rule is None:
        return [start]
    text = rule.to_ical().decode()
    text = re.sub(r"UNTIL=(\d{8}T\d{6})Z", r"UNTIL=\1", text)  # compared as wall times
    limit = until.replace(tzinfo=None)
    return list(rrule.rrulestr(text, dtstart=start).between(start, limit, inc=True))


__all__ = ["Change", "transitions", "vtimezone", "vtimezone_ical"]
