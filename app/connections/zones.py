"""A calendar's own VTIMEZONE definitions, read safely (A2, K6).

Calendars from Outlook ("Customized Time Zone"), Lotus Notes, Google and Lightning define
their zones themselves, and the events must be read in those zones, not in UTC. dateutil's
``tzical`` refuses anything beyond the bare minimum (an ``X-LIC-LOCATION`` line, a
``TZNAME`` parameter, ``BYHOUR`` in a rule) and re-runs each rule from 1601 on every
conversion, and icalendar's zones live in a process-wide cache, so the zones are read here:

- every property is tolerated; only DTSTART, TZOFFSETFROM, TZOFFSETTO, RRULE, RDATE and
  TZNAME are used (X- properties, COMMENT, TZURL, LAST-MODIFIED and parameters are ignored);
- RRULEs may use every RFC 5545 rule part that is safe to evaluate; they go through the
  same checks as event rules (``expand._Rule``: ranges, rules that never match), and only
  yearly and monthly rules are accepted, because a zone that changes its clocks more often
  is not a zone;
- the onsets are worked out once, when the calendar is read, for the years around the
  window (``first_year`` to ``last_year``: a rule from 1601 is skipped ahead by whole years,
  as event rules are, and a rule that ended is read from shortly before its end), at most
  ``MAX_ONSETS`` in all; each conversion is then a binary search. Definitions are cached by
  their full text (never by TZID alone, which Outlook gives every custom zone), because a
  CalDAV calendar repeats the same VTIMEZONE in every event.

An onset is the wall time in the offset before it (RFC 5545 3.6.5). A wall time that
happens twice reads as the first (fold 0) and one in a gap in the offset before it, as RFC
5545 3.3.5 and PEP 495 say.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as fixed_timezone

from icalendar import vRecur

MAX_PARTS = 100
MAX_ONSETS = 20_000  # per zone; 1601 to 2100 yearly is 1,000 for a two-part zone
MAX_RDATES = 1_000
MAX_COUNT = 200  # COUNT in a zone rule; rules with COUNT are run from their DTSTART
ZONE_FREQS = ("YEARLY", "MONTHLY")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_OFFSET = re.compile(r"([+-])([01]\d|2[0-3])([0-5]\d)([0-5]\d)?")
_LOCAL = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?Z?")


class UnusableZone(Exception):
    """The VTIMEZONE cannot be used safely; its events are read as UTC with a warning."""


class CalendarZone(tzinfo):
    """A zone from a calendar's VTIMEZONE: a sorted list of changes in UTC."""

    def __init__(self, tzid: str, changes: list[tuple], first: tuple[timedelta, str]) -> None:
        # changes: (utc instant naive, offset before, offset after, name, daylight)
        self.tzid = tzid
        self._changes = changes
        self._first = first
        self._at = [change[0] for change in changes]
        # The wall time from which each change applies, for fold 0 and fold 1.
        self._walls = (
            [at + before + max(after - before, timedelta(0)) for at, before, after, *_ in changes],
            [at + before + min(after - before, timedelta(0)) for at, before, after, *_ in changes],
        )

    def __repr__(self) -> str:
        return f"<CalendarZone {self.tzid!r}: {len(self._changes)} changes>"

    def _state(self, index: int) -> tuple[timedelta, str, bool]:
        if index < 0:
            offset, name = self._first
            return offset, name, False
        _, _, after, name, daylight = self._changes[index]
        return after, name, daylight

    def _local(self, dt: datetime) -> tuple[timedelta, str, bool]:
        wall = dt.replace(tzinfo=None)
        return self._state(bisect_right(self._walls[dt.fold], wall) - 1)

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        if dt is None:
            return None
        return self._local(dt)[0]

    def dst(self, dt: datetime | None) -> timedelta | None:
        if dt is None:
            return None
        _, _, daylight = self._local(dt)
        return timedelta(hours=1) if daylight else timedelta(0)

    def tzname(self, dt: datetime | None) -> str | None:
        if dt is None:
            return self.tzid
        return self._local(dt)[1]

    def fromutc(self, dt: datetime) -> datetime:
        instant = dt.replace(tzinfo=None)
        index = bisect_right(self._at, instant) - 1
        offset = self._state(index)[0]
        wall = instant + offset
        fold = 0
        if index >= 0:
            at, before, after, *_ = self._changes[index]
            if after < before and instant < at + (before - after):
                fold = 1  # the repeated hour, second time round
        return wall.replace(tzinfo=self, fold=fold)


def read_zone(lines: list[str], tzid: str, first_year: int, last_year: int) -> CalendarZone:
    """The zone described by one VTIMEZONE's lines (unfolded), exact from ``first_year`` to
    ``last_year``; raises ``UnusableZone``."""
    zone = _read_cached(tuple(lines), tzid, first_year, last_year)
    if zone is None:
        raise UnusableZone("refused")
    return zone


@functools.lru_cache(maxsize=256)
def _read_cached(
    lines: tuple[str, ...], tzid: str, first_year: int, last_year: int
) -> CalendarZone | None:
    try:
        return _read(list(lines), tzid, first_year, last_year)
    except Exception:  # UnusableZone, or anything the definition provoked
        return None


def _read(lines: list[str], tzid: str, first_year: int, last_year: int) -> CalendarZone:
    parts = _parts(lines)
    if not 0 < len(parts) <= MAX_PARTS:
        raise UnusableZone("no usable STANDARD or DAYLIGHT parts")
    changes: list[tuple] = []
    for part in parts:
        changes.extend(_changes(part, (first_year, last_year), MAX_ONSETS - len(changes)))
    changes.sort(key=lambda change: change[0])
    first = changes[0]
    zone = CalendarZone(tzid, changes, (first[1], first[3]))
    datetime(2026, 1, 1, tzinfo=zone).utcoffset()  # fails now rather than per event
    return zone


# --- the parts ---------------------------------------------------------------------------


def _parts(lines: list[str]) -> list[dict]:
    """STANDARD and DAYLIGHT parts as {name: [(params, value), ...]}, anything nested in
    them and every other component ignored."""
    parts: list[dict] = []
    current: dict | None = None
    depth = 0
    for line in lines[1:-1]:  # inside BEGIN:VTIMEZONE ... END:VTIMEZONE
        name, params, value = _split(line)
        if name == "BEGIN":
            depth += 1
            kind = value.strip().upper()
            if depth == 1 and kind in ("STANDARD", "DAYLIGHT"):
                current = {"_daylight": kind == "DAYLIGHT"}
            continue
        if name == "END":
            depth -= 1
            if depth == 0 and current is not None:
                parts.append(current)
                current = None
            continue
        if current is not None and depth == 1:
            current.setdefault(name, []).append((params, value))
    return parts


def _split(line: str) -> tuple[str, str, str]:
    """(NAME, parameters, value) of a content line; the colon inside a quoted parameter
    value does not end the parameters."""
    match = _NAME.match(line)
    if not match:
        return "", "", ""
    quoted = False
    for index in range(match.end(), len(line)):
        char = line[index]
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return match.group().upper(), line[match.end() : index], line[index + 1 :]
    return match.group().upper(), "", ""


def _first(part: dict, name: str) -> str | None:
    values = part.get(name)
    return values[0][1].strip() if values else None


def _offset(value: str | None) -> timedelta:
    match = _OFFSET.fullmatch((value or "").strip())
    if not match:
        raise UnusableZone("an offset that cannot be read")
    sign, hours, minutes, seconds = match.groups()
    size = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
    return -size if sign == "-" else size


def _local(value: str) -> datetime:
    """A DATE-TIME (or DATE) as a naive wall time; a trailing Z is ignored (not allowed in
    a VTIMEZONE's DTSTART, but written by some)."""
    match = _LOCAL.fullmatch(value.strip().upper())
    if not match:
        raise UnusableZone("a date that cannot be read")
    numbers = [int(group) for group in match.groups() if group is not None]
    try:
        return datetime(*numbers)
    except ValueError as exc:
        raise UnusableZone("a date that does not exist") from exc


# --- onsets ------------------------------------------------------------------------------


def _changes(part: dict, years: tuple[int, int], room: int) -> list[tuple]:
    before = _offset(_first(part, "TZOFFSETFROM"))
    after = _offset(_first(part, "TZOFFSETTO"))
    start_text = _first(part, "DTSTART")
    if start_text is None:
        raise UnusableZone("a part without DTSTART")
    start = _local(start_text)
    name = (_first(part, "TZNAME") or "")[:40]
    daylight = part["_daylight"]
    onsets = {start}
    for _, value in part.get("RDATE", []):
        for item in value.split(","):
            onsets.add(_local(item.split("/")[0]))
            if len(onsets) > MAX_RDATES:
                raise UnusableZone("too many RDATEs")
    limit = datetime(years[1] + 1, 1, 1)
    for _, value in part.get("RRULE", [])[:1]:
        onsets.update(_rule_onsets(value, start, before, (years[0], limit), room - len(onsets)))
    return [((onset - before), before, after, name, daylight) for onset in onsets]


def _rule_onsets(
    value: str, start: datetime, before: timedelta, span: tuple[int, datetime], room: int
) -> list[datetime]:
    """The rule's onsets from two years before ``span``'s first year (or from just before
    the rule ended) up to its limit, as wall times. The rule runs in the fixed offset
    before the change, so UNTIL (UTC) compares as RFC 5545 means it."""
    from app.connections.expand import _Rule, _Skip  # the event rules' checks, shared

    try:
        recur = vRecur.from_ical(value.strip())
    except Exception as exc:
        raise UnusableZone("a rule that cannot be read") from exc
    freq = str((recur.get("FREQ") or [""])[0]).upper()
    if freq not in ZONE_FREQS:
        raise UnusableZone(f"a rule repeating {freq.lower() or 'never'}")
    zone = fixed_timezone(before)
    try:
        rule = _Rule(recur, start.replace(tzinfo=zone), _TimedSeries())
    except _Skip as skip:
        raise UnusableZone(str(skip)) from skip
    if rule.count is not None and rule.count > MAX_COUNT:
        raise UnusableZone("a rule with too many changes")
    first_year, limit = span
    if rule.until is not None:
        first_year = min(first_year, rule.until.year)
    target = datetime(max(first_year - 2, 1), 1, 1, tzinfo=zone)
    found = []
    end = limit.replace(tzinfo=zone)
    for occurrence in rule.occurrences(target):
        if occurrence >= end:
            break
        found.append(occurrence.replace(tzinfo=None))
        if len(found) > room:
            raise UnusableZone("too many changes")
    return found


class _TimedSeries:
    """What ``_Rule`` asks of the series it belongs to: a zone's rules are never all-day."""

    all_day = False


__all__ = ["CalendarZone", "UnusableZone", "read_zone"]
