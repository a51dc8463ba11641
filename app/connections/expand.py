"""Busy time from iCalendar data: recurrences expanded, hostile input survived (A2, K6).

ICS feeds and CalDAV objects come from servers we do not control, so this module treats them
as hostile. It never raises, and it bounds the work one call can do:

- The text is scanned line by line first. Only the properties busy time needs are kept, nested
  components (alarms) and every other kind of component are dropped, and each VEVENT is then
  parsed on its own, so one broken event costs only itself and the clock can be checked
  between events.
- Recurrences are expanded here with ``dateutil.rrule`` iterated lazily, not with
  ``recurring_ical_events``: its ``between()`` asks dateutil for a list of every occurrence from
  DTSTART up to the end of the window (and caches them), which for ``FREQ=SECONDLY`` is a
  billion datetimes and cannot be interrupted. Here each rule is iterated one occurrence at a
  time, fast-forwarded close to the window where that keeps its meaning, capped at
  ``max_instances`` occurrences in the window per event, and stopped when the per-call time
  budget runs out. Rules that would make dateutil spin without yielding (conditions that
  never match) are detected beforehand.
- VTIMEZONE definitions are never handed to icalendar, whose time-zone cache is process-wide
  (one feed's "Customized Time Zone" would be used for another's) and whose zones would run a
  hostile VTIMEZONE rule from the year 1601 on every conversion. They are read per call by
  ``connections.zones`` (extension properties and parameters tolerated, every safe rule part
  evaluated once); an unknown or unusable TZID is read as UTC with a warning.
- icalendar is only ever given bytes: it treats a one-line ``str`` as a file name to read.

Rules (A2): TRANSP:TRANSPARENT, STATUS:CANCELLED and Microsoft's BUSYSTATUS FREE are not busy;
STATUS:TENTATIVE is "tentative", BUSYSTATUS OOF is "oof"; all-day events are busy all day in
``floating_zone`` (also used for floating times); a DATE-TIME start without DTEND or DURATION
ends where it starts, so it blocks nothing (RFC 5545 3.6.1).
"""

from __future__ import annotations

import hashlib
import heapq
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from datetime import timezone as fixed_timezone
from operator import itemgetter
from zoneinfo import ZoneInfo

from dateutil import rrule as du
from icalendar import Event

from app.connections.models import BusyStatus
from app.connections.providers.base import BusyInterval, EventChange
from app.connections.zones import read_zone

MAX_WARNINGS = 20
MAX_EVENTS = 100_000  # VEVENTs read per call; a feed with more is not a personal calendar
MAX_LINE = 100_000  # characters; longer property lines (a 10 MB RDATE) are ignored
MAX_SUMMARY = 1_000  # characters of SUMMARY kept before parsing
MAX_TITLE = 300  # BusyBlock.title's column size
MAX_ZONE_LINES = 2_000
MAX_DEPTH = 4  # VCALENDAR > VEVENT > VALARM is 3; anything deeper is not from a real client

# What busy time needs from a VEVENT; everything else is dropped before parsing.
KEPT_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "TRANSP",
        "SUMMARY",
        "SEQUENCE",
        "X-MICROSOFT-CDO-BUSYSTATUS",
    }
)

# The same unfolding and line splitting as icalendar's own parser.
_UNFOLD = re.compile(r"(?:(?<!\n)\r\n|(?<![\r\n])\n)(?:\r?\n)*[ \t]")
_NEWLINE = re.compile(r"\r?\n")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_ESCAPE = re.compile(r"\\([\\;,nN])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass
class ExpandResult:
    """Busy time per event, and what went wrong, in sentences for the calendar's owner.

    ``readable`` is False when the data held no iCalendar at all (an HTML page, garbage);
    ``cut_short`` when it ended inside a component (a truncated download); ``complete`` is
    False when something was left out (the time budget ran out, too many events).
    """

    changes: list[EventChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    readable: bool = True
    cut_short: bool = False
    complete: bool = True


def busy_from_ical(
    data: str | bytes,
    start: datetime,
    end: datetime,
    *,
    max_instances: int,
    max_seconds: float,
    key_prefix: str = "",
    floating_zone: tzinfo = UTC,
) -> ExpandResult:
    """Busy instances in [start, end) of every VEVENT in ``data``, one EventChange per UID."""
    run = _Run(_as_utc(start), _as_utc(end), max(1, max_instances), max_seconds, floating_zone)
    result = ExpandResult()
    try:
        document = _scan(data, run)
        result.readable = document.calendars > 0
        result.cut_short = document.cut_short
        if not result.readable:
            run.warn("The calendar could not be read: it contains no iCalendar data.")
        else:
            _report_scan(document, run)
            run.zones = _build_zones(document.zones, run)
            result.changes = _expand_all(document.events, key_prefix, run)
    except Exception as exc:  # the last guard: hostile input must never break a sync
        run.warn(f"The calendar could not be read: {_reason(exc)}.")
        run.complete = False
    result.warnings = run.finished_warnings()
    result.complete = run.complete and not result.cut_short
    return result


def parse_calendar_name(data: str | bytes) -> str | None:
    """The feed's own name (X-WR-CALNAME), for naming a subscribed calendar."""
    try:
        return _scan(data, None).name
    except Exception:
        return None


def looks_like_calendar(data: str | bytes) -> bool:
    """Whether ``data`` holds a VCALENDAR at all (an address may answer with an HTML page)."""
    try:
        return _scan(data, None).calendars > 0
    except Exception:
        return False


# --- one call's state --------------------------------------------------------------------


class _Run:
    """The window, the limits, the clock and the warnings of one ``busy_from_ical`` call."""

    def __init__(self, start, end, max_instances, max_seconds, floating_zone) -> None:
        self.start = start
        self.end = end
        self.max_instances = max_instances
        self.max_iterations = max(10_000, 50 * max_instances)
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds
        self.floating_zone = floating_zone
        self.zones: dict[str, tzinfo | None] = {}
        self.complete = True
        self._warnings: list[str] = []
        self._more = 0

    def warn(self, sentence: str) -> None:
        if sentence in self._warnings:
            return
        if len(self._warnings) < MAX_WARNINGS:
            self._warnings.append(sentence)
        else:
            self._more += 1

    def finished_warnings(self) -> list[str]:
        extra = [f"…and {self._more} more problems."] if self._more else []
        return self._warnings + extra

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def stop_for_time(self) -> None:
        self.complete = False
        self.warn(
            f"Reading the calendar took longer than {self.max_seconds:g} seconds; "
            "some events were left out."
        )


# --- scanning the text -------------------------------------------------------------------


@dataclass
class _Document:
    calendars: int = 0
    name: str | None = None
    events: list[list[str]] = field(default_factory=list)
    zones: list[list[str]] = field(default_factory=list)
    cut_short: bool = False
    nul_bytes: bool = False
    ignored_lines: int = 0
    long_lines: int = 0
    extra_events: int = 0
    unfinished: int = 0
    long_titles: int = 0
    deepest: int = 0
    stopped_early: bool = False


def _text(data: str | bytes) -> str:
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8-sig", errors="replace")
    return str(data).removeprefix("\ufeff")


def _scan(data: str | bytes, run: _Run | None) -> _Document:
    """Split the text into the VEVENTs and VTIMEZONEs of its VCALENDARs, as raw lines.

    A small state machine over unfolded lines instead of a full parse, so that nesting depth,
    unknown components, huge property values and non-iCalendar lines cost next to nothing.
    """
    text = _text(data)
    document = _Document(nul_bytes="\x00" in text)
    text = text.replace("\x00", "")
    stack: list[str] = []
    current: list[str] | None = None  # lines of the VEVENT or VTIMEZONE being read
    for number, line in enumerate(_NEWLINE.split(_UNFOLD.sub("", text))):
        if run is not None and number % 10_000 == 9_999 and run.out_of_time():
            document.stopped_early = True
            break
        if not line.strip():
            continue
        match = _NAME.match(line)
        if not match or match.end() == len(line) or line[match.end()] not in ":;":
            document.ignored_lines += 1
            continue
        name = match.group().upper()
        if name == "BEGIN":
            current = _begin(document, stack, line[match.end() + 1 :].strip().upper(), current)
        elif name == "END":
            current = _end(document, stack, line[match.end() + 1 :].strip().upper(), current)
        else:
            _property(document, stack, name, line, current)
    document.cut_short = bool(stack)
    return document


def _begin(document: _Document, stack: list[str], kind: str, current):
    stack.append(kind)
    document.deepest = max(document.deepest, len(stack))
    if len(stack) == 1:
        if kind == "VCALENDAR":
            document.calendars += 1
        return current
    if len(stack) == 2 and stack[0] == "VCALENDAR":
        if kind == "VEVENT":
            if len(document.events) >= MAX_EVENTS:
                document.extra_events += 1
                return None
            return ["BEGIN:VEVENT"]
        if kind == "VTIMEZONE":
            return ["BEGIN:VTIMEZONE"]
        return None
    if current is not None and stack[1] == "VTIMEZONE":
        current.append(f"BEGIN:{kind}")
    return current


def _end(document: _Document, stack: list[str], kind: str, current):
    if kind not in stack:
        document.ignored_lines += 1
        return current
    while stack[-1] != kind:  # lenient: close what was left open inside
        stack.pop()
    depth = len(stack)
    stack.pop()
    if current is None:
        return None
    if depth == 2:
        current.append(f"END:{kind}")
        if kind == "VEVENT":
            document.events.append(current)
        elif len(current) <= MAX_ZONE_LINES:
            document.zones.append(current)
        return None
    if depth < 2:  # the calendar closed around an unfinished event
        document.unfinished += 1
        return None
    if stack[1] == "VTIMEZONE":
        current.append(f"END:{kind}")
    return current


def _property(document: _Document, stack: list[str], name: str, line: str, current) -> None:
    depth = len(stack)
    if depth == 1 and stack[0] == "VCALENDAR" and name == "X-WR-CALNAME":
        document.name = document.name or _calendar_name(line[: 4 * MAX_SUMMARY])
        return
    if current is None:
        return
    if stack[1] == "VTIMEZONE":
        if len(line) <= MAX_LINE:
            current.append(line)
        return
    if depth != 2 or name not in KEPT_PROPERTIES:
        return
    if name == "SUMMARY" and len(line) > MAX_SUMMARY:
        document.long_titles += 1
        line = line[:MAX_SUMMARY].rstrip("\\")
    elif len(line) > MAX_LINE:
        document.long_lines += 1
        return
    current.append(line)


def _calendar_name(line: str) -> str | None:
    try:
        name = _clean(_unescape(_raw_value(line)), MAX_TITLE)
    except Exception:
        return None
    return name or None


def _unescape(value: str) -> str:
    """RFC 5545 TEXT: backslash escapes for backslash, semicolon, comma and newline."""
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _raw_value(line: str) -> str:
    """The value of a content line: after the first colon that is not inside quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[index + 1 :]
    return ""


def _report_scan(document: _Document, run: _Run) -> None:
    if document.nul_bytes:
        run.warn("The calendar contained NUL bytes; they were removed.")
    if document.ignored_lines:
        run.warn(f"Ignored {document.ignored_lines} lines that are not iCalendar.")
    if document.long_lines:
        run.warn(f"Ignored {document.long_lines} overlong property lines.")
    if document.long_titles:
        run.warn(f"Shortened {document.long_titles} overlong event titles.")
    if document.deepest > MAX_DEPTH:
        run.warn(f"Ignored components nested more than {MAX_DEPTH} levels deep.")
    if document.unfinished:
        run.warn(f"Ignored {document.unfinished} events that were not finished.")
    if document.cut_short:
        run.warn("The calendar ends in the middle of an entry; it may have been cut short.")
    if document.extra_events:
        run.complete = False
        run.warn(
            f"The calendar has more than {MAX_EVENTS} events; "
            f"the last {document.extra_events} were left out."
        )
    if document.stopped_early:
        run.stop_for_time()


# --- time zones ----------------------------------------------------------------------------


def _build_zones(blocks: list[list[str]], run: _Run) -> dict[str, tzinfo | None]:
    """This calendar's own VTIMEZONEs by TZID; None marks one that cannot be used safely.
    Their changes are worked out for the years around the window (``connections.zones``)."""
    zones: dict[str, tzinfo | None] = {}
    for lines in blocks:
        tzid = _zone_id(lines)
        if tzid is None or tzid in zones:
            continue
        try:
            zones[tzid] = read_zone(lines, tzid, run.start.year - 1, run.end.year + 1)
        except Exception:  # UnusableZone, or anything the definition provoked
            zones[tzid] = None
    return zones


def _zone_id(lines: list[str]) -> str | None:
    for line in lines:
        match = _NAME.match(line)
        if match and match.group().upper() == "TZID":
            return _raw_value(line).strip().strip("/") or None
    return None


# --- reading events ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """How long an instance lasts: nominal days (calendar days, DST-aware) plus exact time."""

    days: int = 0
    exact: timedelta = timedelta(0)


@dataclass
class _Component:
    uid: str
    name: str  # for warnings
    title: str | None
    start: date | datetime  # a date (all-day) or an aware datetime
    span: _Span
    has_end: bool  # DTEND or DURATION given (an override without one keeps the master's)
    status: str | None  # a BusyStatus value, or None when it blocks nothing
    rules: list
    rdates: list[tuple[date | datetime, datetime | None]]
    exdates: list[date | datetime]
    recurrence_id: date | datetime | None
    sequence: int
    this_and_future: bool = False  # RECURRENCE-ID;RANGE=THISANDFUTURE: later instances follow


class _Skip(Exception):
    """This component cannot be used; the message is the warning."""


def _expand_all(events: list[list[str]], key_prefix: str, run: _Run) -> list[EventChange]:
    series: dict[str, list[_Component]] = {}
    for lines in events:
        if run.out_of_time():
            run.stop_for_time()
            break
        component = _read_component(lines, run)
        if component is not None:
            series.setdefault(component.uid, []).append(component)
    changes = []
    for uid, components in series.items():
        if run.out_of_time():
            run.stop_for_time()
            break
        changes.append(EventChange(key=key_prefix + uid, blocks=_blocks(components, run)))
    return changes


def _blocks(components: list[_Component], run: _Run) -> list[BusyInterval]:
    try:
        return _Series(components, run).blocks()
    except Exception as exc:  # one odd event must not cost the others
        name = components[0].name
        run.warn(f"Skipped event '{name}': it could not be worked out ({_reason(exc)}).")
        return []


def _read_component(lines: list[str], run: _Run) -> _Component | None:
    try:
        event = Event.from_ical(("\r\n".join(lines) + "\r\n").encode())
    except Exception as exc:
        run.warn(f"Skipped an event that could not be read ({_reason(exc)}).")
        return None
    name = _event_name(event)
    try:
        return _component(event, name, lines, run)
    except _Skip as skip:
        run.warn(str(skip))
    except Exception as exc:
        run.warn(f"Skipped event '{name}': it could not be read ({_reason(exc)}).")
    return None


def _component(event: Event, name: str, lines: list[str], run: _Run) -> _Component:
    recurrence_id = _value(event, "RECURRENCE-ID", name, run)
    start = _value(event, "DTSTART", name, run)
    if start is None:
        if recurrence_id is None:
            raise _Skip("Skipped an event without a start.")
        start = recurrence_id
    uid = _clean(str(event.get("UID", "")), 900) or "no-uid:" + _digest(lines)
    return _Component(
        uid=uid,
        name=name,
        title=_clean(str(event.get("SUMMARY", "")), MAX_TITLE) or None,
        start=start,
        span=_span(event, start, name, run),
        has_end="DTEND" in event or "DURATION" in event,
        status=_status(event),
        rules=_list(event.get("RRULE")),
        rdates=_dates(event, "RDATE", name, run),
        exdates=[value for value, _ in _dates(event, "EXDATE", name, run)],
        recurrence_id=recurrence_id,
        sequence=_int(event.get("SEQUENCE")),
        this_and_future=recurrence_id is not None and _this_and_future(event),
    )


def _this_and_future(event: Event) -> bool:
    """RFC 5545 3.8.4.4: RANGE=THISANDFUTURE moves every later instance by the same time
    difference and gives them the same duration (THISANDPRIOR is deprecated and ignored)."""
    value = event.get("RECURRENCE-ID")
    if isinstance(value, list):
        value = value[0]
    params = getattr(value, "params", None) or {}
    return str(params.get("RANGE", "")).strip().upper() == "THISANDFUTURE"


def _status(event: Event) -> str | None:
    """A2: transparent, cancelled and free events block nothing; tentative still blocks."""
    if str(event.get("TRANSP", "")).strip().upper() == "TRANSPARENT":
        return None
    status = str(event.get("STATUS", "")).strip().upper()
    microsoft = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).strip().upper()
    if status == "CANCELLED" or microsoft == "FREE":
        return None
    if microsoft == "OOF":
        return BusyStatus.OUT_OF_OFFICE.value
    if status == "TENTATIVE" or microsoft == "TENTATIVE":
        return BusyStatus.TENTATIVE.value
    return BusyStatus.BUSY.value


def _value(event: Event, prop: str, name: str, run: _Run) -> date | datetime | None:
    """A date, or an aware datetime (floating → ``floating_zone``, unknown TZID → UTC)."""
    value = event.get(prop)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    try:
        moment, tzid = value.dt, value.params.get("TZID")
    except Exception as exc:  # icalendar's vBroken raises on .dt
        raise _Skip(f"Skipped event '{name}': its {prop} could not be read.") from exc
    return _moment(moment, tzid, name, run)


def _moment(value, tzid: str | None, name: str, run: _Run) -> date | datetime:
    if not isinstance(value, date):
        raise _Skip(f"Skipped event '{name}': it has a date that could not be read.")
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=_zone_for(tzid, name, run) if tzid else run.floating_zone)
    if isinstance(value.tzinfo, ZoneInfo | fixed_timezone):
        return value
    # A zone icalendar took from its process-wide cache: use this calendar's own definition.
    return value.replace(tzinfo=_zone_for(tzid, name, run) if tzid else UTC)


def _zone_for(tzid: str, name: str, run: _Run) -> tzinfo:
    clean = str(tzid).strip().strip("/")
    zone = run.zones.get(clean)
    if zone is not None:
        return zone
    label = _clean(clean, 60)
    if clean in run.zones:
        run.warn(
            f"The time zone '{label}' in event '{name}' is defined in a way Slotbook cannot "
            "use; read as UTC."
        )
    else:
        run.warn(f"Unknown time zone '{label}' in event '{name}'; read as UTC.")
    return UTC


def _span(event: Event, start: date | datetime, name: str, run: _Run) -> _Span:
    all_day = not isinstance(start, datetime)
    end = _optional(event, "DTEND", name, run)
    if end is not None:
        return _span_to(start, end, name, run)
    duration = event.get("DURATION")
    try:
        delta = duration.dt if duration is not None else None
    except Exception:  # icalendar's vBroken raises on .dt
        delta = None
    if isinstance(delta, timedelta):
        if delta >= timedelta(0):
            return _span_of(delta, all_day)
        run.warn(f"Event '{name}' has a negative duration; it was read as having none.")
    elif duration is not None:
        run.warn(f"Event '{name}' has a duration that could not be read.")
    return _Span(days=1) if all_day else _Span()


def _optional(event: Event, prop: str, name: str, run: _Run):
    try:
        return _value(event, prop, name, run)
    except _Skip:
        run.warn(f"Event '{name}' has a {prop} that could not be read; it was ignored.")
        return None


def _span_to(start: date | datetime, end: date | datetime, name: str, run: _Run) -> _Span:
    if not isinstance(start, datetime):
        end_day = end.astimezone(run.floating_zone).date() if isinstance(end, datetime) else end
        days = (end_day - start).days
        if days < 0:
            run.warn(f"Event '{name}' ends before it starts; it was read as one day.")
        return _Span(days=max(1, days))
    if not isinstance(end, datetime):
        end = datetime.combine(end, clock_time(), tzinfo=start.tzinfo)
    exact = end.astimezone(UTC) - start.astimezone(UTC)
    if exact < timedelta(0):
        run.warn(f"Event '{name}' ends before it starts; it was ignored.")
        return _Span()
    return _Span(exact=exact)


def _span_of(duration: timedelta, all_day: bool) -> _Span:
    if all_day:
        return _Span(days=max(1, duration.days + (1 if duration.seconds else 0)))
    return _Span(days=duration.days, exact=duration - timedelta(days=duration.days))


def _dates(event: Event, prop: str, name: str, run: _Run):
    """RDATE/EXDATE values as (start, explicit end or None); periods carry their end."""
    found = []
    for item in _list(event.get(prop)):
        values = getattr(item, "dts", None)
        if values is None:
            run.warn(f"Event '{name}' has a {prop} that could not be read; it was ignored.")
            continue
        tzid = item.params.get("TZID")
        for value in values:
            found.append(_date_item(value.dt, value.params.get("TZID", tzid), name, run))
    return found


def _date_item(value, tzid, name: str, run: _Run):
    if isinstance(value, tuple):  # a PERIOD: (start, end) or (start, duration)
        first = _moment(value[0], tzid, name, run)
        other = value[1]
        if isinstance(other, timedelta):
            return first, _as_utc_value(first) + other
        return first, _as_utc_value(_moment(other, tzid, name, run))
    return _moment(value, tzid, name, run), None


# --- expanding one UID ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Future:
    """A RANGE=THISANDFUTURE override: from its instance on, instances move by ``shift``
    and take its length, status and title."""

    key: tuple
    component: _Component
    shift: timedelta


def _comparable(start: date | datetime, recurrence_id: date | datetime) -> bool:
    return isinstance(start, datetime) == isinstance(recurrence_id, datetime)


class _Series:
    """All components sharing a UID: the recurring master(s) and their overridden instances."""

    def __init__(self, components: list[_Component], run: _Run) -> None:
        self.run = run
        masters = [c for c in components if c.recurrence_id is None]
        top = max((c.sequence for c in masters), default=0)
        self.masters = [c for c in masters if c.sequence == top]
        self.all_day = bool(masters) and not isinstance(masters[0].start, datetime)
        self.overrides: dict[tuple, _Component] = {}
        moved = sorted((c for c in components if c.recurrence_id is not None), key=_sequence)
        for component in moved:  # the highest SEQUENCE wins
            self.overrides[self.key(component.recurrence_id)] = component
        self.excluded = {self.key(value) for m in self.masters for value in m.exdates}
        self.futures = sorted(
            (
                _Future(self.key(c.recurrence_id), self._completed(c), c.start - c.recurrence_id)
                for c in self.overrides.values()
                if c.this_and_future and _comparable(c.start, c.recurrence_id)
            ),
            key=lambda future: future.key,
        )
        self.reach = self._reach()

    def following(self, start: date | datetime) -> _Future | None:
        """The latest THISANDFUTURE override before this instance, which it follows."""
        key = self.key(start)
        found = None
        for future in self.futures:
            if future.key[0] == key[0] and future.key < key:
                found = future
        return found

    def _reach(self) -> tuple[timedelta, timedelta]:
        """How far THISANDFUTURE moves instances: (latest end beyond an unmoved instance's
        length, earliest start before its own), so the window is widened by that much."""
        later = earlier = timedelta(0)
        for future in self.futures:
            span = future.component.span
            later = max(later, future.shift + timedelta(days=span.days) + span.exact)
            earlier = max(earlier, -future.shift)
        return later, earlier

    def key(self, value: date | datetime) -> tuple:
        """Identity of an instance (RECURRENCE-ID, EXDATE): its UTC instant, or its day."""
        if not isinstance(value, datetime):
            return ("d", value)
        if self.all_day:
            return ("d", value.astimezone(self.run.floating_zone).date())
        return ("t", value.astimezone(UTC))

    def skipped(self, start: date | datetime) -> bool:
        """Whether an instance is excluded or replaced. An EXDATE or RECURRENCE-ID given as a
        DATE matches a timed instance on that local day."""
        if isinstance(start, datetime):
            keys: tuple = (("t", start.astimezone(UTC)), ("d", start.date()))
        else:
            keys = (("d", start),)
        return any(key in self.excluded or key in self.overrides for key in keys)

    def blocks(self) -> list[BusyInterval]:
        found: list[BusyInterval] = []
        for master in self.masters:
            found.extend(_Expansion(master, self).blocks())
        for key, override in self.overrides.items():
            if override.status is not None and key not in self.excluded:
                block = _block(self._completed(override), override.start, None, self.run)
                if block is not None:
                    found.append(block)
        found.sort(key=lambda block: (block.starts_at, block.ends_at))
        return found[: self.run.max_instances]

    def _completed(self, override: _Component) -> _Component:
        """Some clients write only what changed into an override: take its length and
        title from the master then."""
        if not self.masters:
            return override
        master = self.masters[0]
        span = override.span if override.has_end else master.span
        return replace(override, span=span, title=override.title or master.title)


def _sequence(component: _Component) -> int:
    return component.sequence


def _block(component: _Component, start, explicit_end, run: _Run) -> BusyInterval | None:
    """The busy interval of one instance, or None if it is empty or outside the window."""
    starts_at, ends_at = _interval(start, component.span, explicit_end, run)
    if ends_at <= starts_at or ends_at <= run.start or starts_at >= run.end:
        return None
    return BusyInterval(starts_at, ends_at, component.status, component.title)


def _interval(start, span: _Span, explicit_end, run: _Run) -> tuple[datetime, datetime]:
    if not isinstance(start, datetime):
        first = datetime.combine(start, clock_time(), tzinfo=run.floating_zone)
        last = datetime.combine(start + timedelta(days=span.days), clock_time(), first.tzinfo)
        return first.astimezone(UTC), explicit_end or last.astimezone(UTC)
    if explicit_end is not None:
        return start.astimezone(UTC), explicit_end
    ends = (start + timedelta(days=span.days)).astimezone(UTC) + span.exact
    return start.astimezone(UTC), ends


class _Expansion:
    """The instances of one recurring master inside the window, lazily and within limits."""

    def __init__(self, master: _Component, series: _Series) -> None:
        self.master = master
        self.series = series
        self.run = series.run
        self.all_day = not isinstance(master.start, datetime)

    def blocks(self) -> list[BusyInterval]:
        if self.master.status is None and not self.series.futures:
            return []  # not busy; its overrides are looked at separately
        found: list[BusyInterval] = []
        rules = self._rules()
        previous = None
        for count, (start, explicit_end) in enumerate(self._starts(rules), start=1):
            if self._must_stop(count, rules):  # every time: one step may cost milliseconds
                break
            if start == previous:
                continue
            previous = start
            if self._utc(start) >= self.run.end + self.series.reach[1]:
                break
            if self.series.skipped(start):
                continue
            block = self._block(start, explicit_end)
            if block is None:
                continue
            found.append(block)
            if len(found) >= self.run.max_instances:
                self._warn_capped(rules)
                break
        return found

    def _block(self, start: date | datetime, explicit_end) -> BusyInterval | None:
        """One instance's busy time; after a THISANDFUTURE override, moved and shaped by it."""
        future = self.series.following(start)
        if future is None:
            if self.master.status is None:
                return None
            return _block(self.master, start, explicit_end, self.run)
        if future.component.status is None:
            return None
        return _block(future.component, start + future.shift, None, self.run)

    def _utc(self, start: date | datetime) -> datetime:
        if isinstance(start, datetime):
            return start.astimezone(UTC)
        return datetime.combine(start, clock_time(), tzinfo=self.run.floating_zone).astimezone(UTC)

    def _must_stop(self, count: int, rules: list[_Rule]) -> bool:
        if self.run.out_of_time():
            self.run.stop_for_time()
            return True
        if count > self.run.max_iterations:
            self.run.complete = False
            how = rules[0].describe() if rules else "very often"
            self.run.warn(
                f"Event '{self.master.name}' repeats {how} with too many occurrences before "
                "the synced period to work out; it was left out."
            )
            return True
        return False

    def _warn_capped(self, rules: list[_Rule]) -> None:
        how = rules[0].describe() if rules else "very often"
        self.run.warn(
            f"Event '{self.master.name}' repeats {how}; only the first "
            f"{self.run.max_instances} occurrences were used."
        )

    # The instance starts, merged in order: the rules, RDATEs and DTSTART itself.

    def _starts(self, rules: list[_Rule]) -> Iterator[tuple]:
        local = self._local
        streams: list[Iterable[tuple]] = [
            ((occurrence, None) for occurrence in rule.occurrences(self._target(rule)))
            for rule in rules
        ]
        rdates = sorted(
            ((local(value), end) for value, end in self.master.rdates), key=itemgetter(0)
        )
        streams.append(rdates)
        streams.append([(local(self.master.start), None)])
        for start, end in heapq.merge(*streams, key=itemgetter(0)):
            yield (start.date() if self.all_day else start), end

    def _local(self, value: date | datetime) -> datetime:
        """The form rules run in: naive midnights for all-day series, aware otherwise."""
        start = self.master.start
        if self.all_day:
            if isinstance(value, datetime):
                value = value.astimezone(self.run.floating_zone).date()
            return datetime.combine(value, clock_time())
        if isinstance(value, datetime):
            return value
        return datetime.combine(value, start.timetz())

    def _target(self, rule: _Rule) -> datetime:
        """The latest start that may still matter: instances starting before it end before
        the window opens, so a rule may be fast-forwarded to it."""
        span = self.master.span
        if self.all_day:
            first_day = self.run.start.astimezone(self.run.floating_zone).date()
            later = self.series.reach[0]
            days = max(span.days, later.days + 1)
            return datetime.combine(first_day - timedelta(days=days + 1), clock_time())
        # Rules step in wall-clock time; 3 hours covers any DST shift between wall and UTC.
        longest = timedelta(days=span.days, hours=3) + span.exact + self.series.reach[0]
        return (self.run.start - longest).astimezone(self.master.start.tzinfo)

    def _rules(self) -> list[_Rule]:
        rules = []
        for recur in self.master.rules:
            try:
                rules.append(_Rule(recur, self._local(self.master.start), self))
            except _Skip as skip:
                self.run.warn(
                    f"Event '{self.master.name}' {skip}; only its listed dates were used."
                )
            except Exception:
                self.run.warn(
                    f"Event '{self.master.name}' has a repeat rule that could not be read; "
                    "only its listed dates were used."
                )
        return rules


# --- recurrence rules ----------------------------------------------------------------------

_FREQS = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
_EVERY = {
    du.YEARLY: "every year",
    du.MONTHLY: "every month",
    du.WEEKLY: "every week",
    du.DAILY: "every day",
    du.HOURLY: "every hour",
    du.MINUTELY: "every minute",
    du.SECONDLY: "every second",
}
_UNIT_SECONDS = {du.WEEKLY: 604_800, du.DAILY: 86_400, du.HOURLY: 3_600, du.MINUTELY: 60}
_UNIT_SECONDS[du.SECONDLY] = 1
_SUB_DAILY = (du.HOURLY, du.MINUTELY, du.SECONDLY)
_WEEKDAYS = {"MO": du.MO, "TU": du.TU, "WE": du.WE, "TH": du.TH, "FR": du.FR, "SA": du.SA}
_WEEKDAYS["SU"] = du.SU
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
# part: (dateutil keyword, lowest, highest, negative values allowed)
_NUMBER_PARTS = {
    "BYMONTH": ("bymonth", 1, 12, False),
    "BYMONTHDAY": ("bymonthday", 1, 31, True),
    "BYYEARDAY": ("byyearday", 1, 366, True),
    "BYWEEKNO": ("byweekno", 1, 53, True),
    "BYHOUR": ("byhour", 0, 23, False),
    "BYMINUTE": ("byminute", 0, 59, False),
    "BYSECOND": ("bysecond", 0, 59, False),
    "BYSETPOS": ("bysetpos", 1, 366, True),
}
_SIZED_PARTS = ("byhour", "byminute", "bysecond")
_DATE_FILTERS = ("bymonth", "bymonthday", "byyearday", "byweekno", "byweekday")


class _Rule:
    """One RRULE, checked so that dateutil cannot spin on it, ready to iterate lazily."""

    def __init__(self, recur, dtstart: datetime, expansion: _Expansion) -> None:
        if not hasattr(recur, "keys"):
            raise _Skip("has a repeat rule that could not be read")
        parts = {str(key).upper(): list(values) for key, values in recur.items()}
        if "RSCALE" in parts:
            raise _Skip("has a repeat rule for a calendar other than the Gregorian one")
        self.dtstart = dtstart
        self.freq = _FREQS.get(str(_first(parts, "FREQ", "")).upper())
        if self.freq is None:
            raise _Skip("has a repeat rule without a valid frequency")
        self.interval = _positive(_first(parts, "INTERVAL", 1), "INTERVAL")
        count = _first(parts, "COUNT", None)
        self.count = None if count is None else _positive(count, "COUNT")
        until = _first(parts, "UNTIL", None)
        self.until = None if until is None or count is not None else self._until(until, expansion)
        self.parts = _by_parts(parts, self.freq)
        self._check_feasible()
        self.occurrences(self.dtstart)  # dateutil refuses some combinations only when built

    def describe(self) -> str:
        every = _EVERY[self.freq]
        if self.count is not None:
            return f"{every}, {self.count} times"
        return every if self.until is not None else f"{every} without end"

    def _until(self, value, expansion: _Expansion) -> datetime:
        if expansion.all_day:
            return expansion._local(value)
        zone = self.dtstart.tzinfo
        if isinstance(value, datetime):
            return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
        # A DATE on a timed series: the series stops before that day begins, read as UTC
        # midnight like recurring-ical-events and ical.js.
        return datetime.combine(value, clock_time(), tzinfo=UTC).astimezone(zone)

    # Feasibility: dateutil loops up to the year 9999 without yielding when nothing matches.

    def _check_feasible(self) -> None:
        has_dates = any(self.parts.get(key) for key in _DATE_FILTERS)
        if self.freq in _SUB_DAILY and has_dates and not self._sub_daily_dates_ok():
            raise _Skip("has a repeat rule Slotbook cannot work out")
        positions = self.parts.get("bysetpos")
        if positions and all(abs(p) > self._per_period() for p in positions):
            raise _Skip("has a repeat rule that never matches")
        if positions and not self._positions_possible():
            raise _Skip("has a repeat rule that never matches")
        if has_dates and not self._dates_possible():
            raise _Skip("has a repeat rule that never matches")
        weekdays = {w.weekday for w in self.parts.get("byweekday") or ()}
        same_weekday = self.freq == du.DAILY and self.interval % 7 == 0
        if same_weekday and weekdays and self.dtstart.weekday() not in weekdays:
            raise _Skip("has a repeat rule that never matches")

    def _sub_daily_dates_ok(self) -> bool:
        """Hourly and minutely rules step through skipped days one by one inside dateutil,
        so only day conditions that match within a year are accepted (months and weekdays),
        and only steps that reach every day; secondly rules get none."""
        if self.freq == du.SECONDLY:
            return False  # dateutil may scan 86,400 seconds for every skipped day
        sparse = ("bymonthday", "byyearday", "byweekno")
        reaches_every_day = 86_400 % (self.interval * _UNIT_SECONDS[self.freq]) == 0
        return reaches_every_day and not any(self.parts.get(key) for key in sparse)

    def _per_period(self) -> int:
        """At most how many candidates one period of the rule holds (for BYSETPOS)."""
        size = {key: len(self.parts.get(key) or (0,)) for key in _SIZED_PARTS}
        finer = {
            du.SECONDLY: 1,
            du.MINUTELY: size["bysecond"],
            du.HOURLY: size["byminute"] * size["bysecond"],
        }
        if self.freq in finer:
            return finer[self.freq]
        return self._days_per_period() * size["byhour"] * size["byminute"] * size["bysecond"]

    def _days_per_period(self) -> int:
        """At most how many days one period holds, from the tightest BY… part (with
        dateutil's defaults from DTSTART when there is none)."""
        count = {key: len(self.parts.get(key) or ()) for key in (*_DATE_FILTERS, "bymonth")}
        yearly = self.freq == du.YEARLY
        if not any(count[key] for key in ("byweekno", "byyearday", "bymonthday", "byweekday")):
            return max(1, count["bymonth"]) if yearly else 1
        months = count["bymonth"] or 12
        bounds = [{du.YEARLY: 366, du.MONTHLY: 31, du.WEEKLY: 7}.get(self.freq, 1)]
        if count["byyearday"]:
            bounds.append(count["byyearday"])
        if count["bymonthday"]:
            bounds.append(count["bymonthday"] * (months if yearly else 1))
        if count["byweekday"]:
            weeks = {du.YEARLY: 5 * months if count["bymonth"] else 53, du.MONTHLY: 5}
            bounds.append(count["byweekday"] * weeks.get(self.freq, 1))
        if yearly and count["byweekno"]:
            bounds.append(7 * count["byweekno"])
        if yearly and count["bymonth"]:
            bounds.append(31 * count["bymonth"])
        return min(bounds)

    def _positions_possible(self) -> bool:
        """BYSETPOS beyond what a period really holds makes dateutil spin to the year 9999;
        the rule run from 8800 (a whole 400-year cycle and more) shows it cheaply."""
        if self.freq not in (du.WEEKLY, du.MONTHLY, du.YEARLY):
            return True  # for daily and finer rules the bound above is exact
        start = self.dtstart
        try:
            probe = du.rrule(
                self.freq,
                dtstart=datetime(8800, start.month, start.day, start.hour, start.minute),
                interval=self.interval,
                **self.parts,
            )
            return next(iter(probe), None) is not None
        except (ValueError, OverflowError):
            return False

    def _dates_possible(self) -> bool:
        """Whether the day conditions ever match. The Gregorian calendar repeats every 400
        years, so a probe that runs from 8800 to dateutil's end (9999) decides it cheaply."""
        coarse = self.freq in (du.MONTHLY, du.YEARLY)
        weekdays = self.parts.get("byweekday")
        if not coarse:
            weekdays = tuple({w.weekday for w in weekdays}) if weekdays else tuple(range(7))
        try:
            probe = du.rrule(
                du.MONTHLY if self.freq == du.MONTHLY else du.YEARLY,
                dtstart=datetime(8800, self.dtstart.month, self.dtstart.day),
                bymonth=self.parts.get("bymonth"),
                bymonthday=self.parts.get("bymonthday"),
                byyearday=self.parts.get("byyearday"),
                byweekno=self.parts.get("byweekno"),
                byweekday=weekdays,
                byhour=0,
                byminute=0,
                bysecond=0,
            )
            return next(iter(probe), None) is not None
        except (ValueError, OverflowError):
            return False

    # Iteration.

    def occurrences(self, target: datetime) -> Iterator[datetime]:
        """Occurrences in order, skipping ahead to ``target`` where the rule allows it."""
        start, count = self._fast_forward(target)
        if count is not None and count <= 0:
            return iter(())
        rule = du.rrule(
            self.freq,
            dtstart=start,
            interval=self.interval,
            count=count,
            until=self.until,
            **self.parts,
        )
        return iter(rule)

    def _fast_forward(self, target: datetime) -> tuple[datetime, int | None]:
        """Move DTSTART forward by whole periods of the rule (every period keeps its absolute
        place, so the occurrences from there on are the same). With COUNT this only holds
        when each period yields exactly one occurrence."""
        if target <= self.dtstart:
            return self.dtstart, self.count
        if self.count is not None and (self.freq not in _UNIT_SECONDS or self.parts):
            return self.dtstart, self.count
        try:
            periods, start = self._skip_periods(target)
        except (OverflowError, ValueError):
            return self.dtstart, self.count
        if periods <= 0:
            return self.dtstart, self.count
        return start, None if self.count is None else self.count - periods

    def _skip_periods(self, target: datetime) -> tuple[int, datetime]:
        wall = target.replace(tzinfo=None) - self.dtstart.replace(tzinfo=None)
        if self.freq in _UNIT_SECONDS:
            step = self.interval * _UNIT_SECONDS[self.freq]
            periods = (wall.days * 86_400 + wall.seconds) // step
            return periods, self.dtstart + timedelta(seconds=periods * step)
        if self.freq == du.MONTHLY:
            months = (target.year - self.dtstart.year) * 12 + target.month - self.dtstart.month
            periods = (months - 1) // self.interval
            total = self.dtstart.month - 1 + periods * self.interval
            moved = self.dtstart.replace(year=self.dtstart.year + total // 12, month=total % 12 + 1)
            return periods, moved
        periods = (target.year - self.dtstart.year - 1) // self.interval
        return periods, self.dtstart.replace(year=self.dtstart.year + periods * self.interval)


def _by_parts(parts: dict[str, list], freq: int) -> dict:
    """dateutil keywords for the BY… parts, each value range-checked (out-of-range values
    would never match and leave dateutil looping to the year 9999)."""
    found: dict = {}
    for part, (keyword, low, high, signed) in _NUMBER_PARTS.items():
        if part not in parts:
            continue
        values = tuple(dict.fromkeys(int(value) for value in parts[part]))  # no repeats
        for value in values:
            if not (low <= value <= high or (signed and -high <= value <= -low)):
                raise _Skip(f"has a repeat rule with {part}={value}")
        found[keyword] = values
    if "BYDAY" in parts:
        days = (_weekday(str(value), freq) for value in parts["BYDAY"])
        found["byweekday"] = tuple(dict.fromkeys(days))
    if "WKST" in parts:
        found["wkst"] = _weekday(str(parts["WKST"][0]), du.WEEKLY).weekday
    return found


def _weekday(text: str, freq: int):
    match = _BYDAY.fullmatch(text.strip().upper())
    if not match:
        raise _Skip(f"has a repeat rule with the weekday '{_clean(text, 10)}'")
    day = _WEEKDAYS[match.group(2)]
    number = int(match.group(1) or 0)
    if number == 0 or freq not in (du.MONTHLY, du.YEARLY):
        return day  # RFC 5545: a numbered weekday only means something monthly or yearly
    if not 1 <= abs(number) <= 53:
        raise _Skip(f"has a repeat rule with the weekday '{_clean(text, 10)}'")
    return day(number)


def _positive(value, what: str) -> int:
    number = int(value)
    if number < 1:
        raise _Skip(f"has a repeat rule with {what}={number}")
    return number


# --- small helpers -------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _as_utc_value(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, clock_time(), tzinfo=UTC)


def _first(parts: dict[str, list], key: str, default):
    values = parts.get(key)
    return values[0] if values else default


def _list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _clean(text: str, limit: int) -> str:
    """Text fit for a sentence or a title: no control characters, trimmed, bounded."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _event_name(event: Event) -> str:
    return (
        _clean(str(event.get("SUMMARY", "")), 60)
        or _clean(str(event.get("UID", "")), 60)
        or "without a title"
    )


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:24]


def _reason(exc: BaseException) -> str:
    text = _clean(str(exc), 120)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "ExpandResult",
    "busy_from_ical",
    "looks_like_calendar",
    "parse_calendar_name",
]
