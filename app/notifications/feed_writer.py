"""The personal feed's VEVENTs written as text (F1, issue [14]), byte for byte what
``icalendar`` writes for them.

A feed of thousands of bookings spent most of its time in ``icalendar``'s serialisation: a
property object and a ``Parameters`` object per line, then pure-Python folding character by
character. A feed event carries a fixed set of properties (UID, SEQUENCE, DTSTAMP, DTSTART,
DTEND, LOCATION, CATEGORIES, ORGANIZER, STATUS, SUMMARY, DESCRIPTION, URL), so this module
writes those lines directly with the same rules:

- TEXT values escaped as RFC 5545 3.3.11 (``\\`` ``;`` ``,`` and line breaks) in
  ``icalendar``'s order;
- the CN parameter escaped as RFC 6868 and quoted when it holds a space, a quote or one of
  ``, ; :``;
- date-times in the organiser's zone with its TZID, or in UTC with ``Z``;
- lines folded before the 75th octet (continuations start with one space), never inside a
  UTF-8 sequence and never right after a ``\\`` or ``^`` that starts an escape.

Everything that is not per event (the calendar's own properties and the VTIMEZONEs from the
shared builder in ``notifications.vtimezone``) is still written by ``icalendar``; parsing and
invitations keep using it too. ``tests/notifications/test_feed_writer.py`` checks the bytes
against ``icalendar`` on a corpus of awkward bookings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from app.bookings.models import Status
from app.bookings.writeback import PENDING_PREFIX, calendar_title
from app.notifications import ics
from app.notifications.vtimezone import vtimezone

FOLD_AT = 74  # octets of content per physical line: icalendar folds when a 75th would come
_QUOTABLE = re.compile("[,;:’]")  # icalendar quotes for the typographic apostrophe too
CN_QUOTE_ALSO = " '"  # icalendar quotes a CN holding a space or an apostrophe
_RFC6868 = re.compile(r'\^|\r\n|\r|\n|"')
_RFC6868_SUBSTITUTES = {"^": "^^", "\r\n": "^n", "\r": "^n", "\n": "^n", '"': "^'"}


class FeedRow(NamedTuple):
    """One event of a feed as the writer reads it: plain values, no ORM object.

    ``feeds`` makes these straight from its two bulk queries (issue [14]: building a record
    per booking, one per attendee, one per owner and type, cost as much as writing them).
    The attribute names are a booking's, so ``ics``'s rules (location, description, title,
    the organiser's zone) read a row as they read a booking."""

    id: int
    uid: str
    sequence: int | None
    status: str
    title: str | None
    description: str | None
    starts_at: datetime
    ends_at: datetime
    location_mode: str
    location_detail: str | None
    stamp: datetime | None  # the last change (updated, else created); None: now
    owner: object | None  # name, email and timezone, like a User
    booking_type: object  # its name, like a BookingType
    people: str  # the attendees' names, ", "-joined


def row_of(booking) -> FeedRow:
    """The feed row of any booking-like object (a ``Booking``, a ``feeds.FeedEntry``)."""
    return FeedRow(
        booking.id,
        booking.uid,
        booking.sequence,
        booking.status,
        booking.title,
        booking.description,
        booking.starts_at,
        booking.ends_at,
        booking.location_mode,
        booking.location_detail,
        booking.updated_at or booking.created_at,
        booking.owner,
        booking.booking_type,
        ", ".join(a.display_name for a in booking.attendees),
    )


def write(user, bookings: Iterable) -> str:
    """The whole feed of ``user`` listing ``bookings`` (see ``ics.feed`` for what it says)."""
    return write_rows(user, [row_of(booking) for booking in bookings])


def write_rows(user, rows: Iterable[FeedRow]) -> str:
    """The whole feed of ``user`` listing ``rows``, in their order."""
    return "".join(_pieces(user, rows))


def write_rows_utf8(user, rows: Iterable[FeedRow]) -> bytes:
    """:func:`write_rows` as UTF-8, the calendar's head encoded apart from the rest: the head
    names the person (often beyond ASCII, and "–"), which would make the whole text a wide
    string to encode, while the events are usually ASCII and encode as a plain copy."""
    head, *rest = _pieces(user, rows)
    return head.encode() + "".join(rest).encode()


def _pieces(user, rows: Iterable[FeedRow]) -> list[str]:
    """The feed's text in pieces: the calendar's head, its VTIMEZONEs, the events, the end."""
    base_url = ics._base_url()
    zones: dict[str | None, ZoneInfo] = {}  # owner's zone name -> the zone ics picks for it
    spans: dict[str, list[datetime]] = {}  # zone key -> [first start, last end]
    events: list[str] = []
    for row in rows:
        name = getattr(row.owner, "timezone", None)
        zone = zones.get(name)
        if zone is None:
            zone = zones[name] = ics.organiser_zone(row)
        span = spans.get(zone.key)
        if span is None:
            spans[zone.key] = [row.starts_at, row.ends_at]
        else:
            if row.starts_at < span[0]:
                span[0] = row.starts_at
            if row.ends_at > span[1]:
                span[1] = row.ends_at
        events.append(event(row, zone, base_url))
    head = ics.feed_calendar(user).to_ical(sorted=False).decode()
    head = head[: -len("END:VCALENDAR\r\n")]
    zone_texts = [
        _vtimezone_text(key, *_years(*spans[key])) for key in sorted(set(spans) - {"UTC"})
    ]
    return [head, *zone_texts, *events, "END:VCALENDAR\r\n"]


def _years(first: datetime, last: datetime) -> tuple[int, int]:
    """The years a zone's VTIMEZONE covers: one either side of its events (as ``ics``)."""
    return first.astimezone(UTC).year - 1, last.astimezone(UTC).year + 1


@lru_cache(maxsize=128)
def _vtimezone_text(key: str, first: int, last: int) -> str:
    """The shared builder's VTIMEZONE as it is written inside a feed (properties in the order
    the builder added them, as ``to_ical(sorted=False)`` writes a calendar)."""
    return vtimezone(key, first, last).to_ical(sorted=False).decode()


def event(row: FeedRow, zone: ZoneInfo, base_url: str) -> str:
    """One VEVENT of the feed, CRLF-terminated lines, as ``ics._feed_event`` describes it."""
    stamp = row.stamp or datetime.now(UTC)
    status = row.status
    pending = PENDING_PREFIX if status == Status.PROVISIONAL else ""
    lines = (
        "BEGIN:VEVENT",
        "UID:" + text(row.uid),
        f"SEQUENCE:{int(row.sequence or 0)}",
        "DTSTAMP:" + _utc(stamp),
        "DTSTART" + _zoned(row.starts_at, zone),
        "DTEND" + _zoned(row.ends_at, zone),
        "LOCATION:" + text(ics._location(row)),
        "CATEGORIES:" + text(row.booking_type.name),
        "ORGANIZER" + _organizer(row),
        "STATUS:" + ics._STATUS[status],  # a StrEnum's members are found by their values
        "SUMMARY:" + text(pending + calendar_title(row)),
        "DESCRIPTION:" + text(ics._description(row, people=row.people)),
        f"URL:{base_url}/bookings/{row.id}",
        "END:VEVENT",
    )
    return "".join(fold(line) + "\r\n" for line in lines)


# --- values --------------------------------------------------------------------------------


def text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 3.3.11, in ``icalendar``'s order (a literal ``\\N``
    is read as a line break first; CRLF, LF and a lone CR all become ``\\n``)."""
    return (
        value.replace(r"\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _zoned(instant: datetime, zone) -> str:
    """``;TZID=<zone>:<local time>`` or ``:<UTC time>Z``, as ``ics._in_zone`` chooses."""
    local = ics._in_zone(instant, zone)
    if local.tzinfo is UTC or zone.key == "UTC":
        return ":" + _utc(local)
    return f";TZID={zone.key}:{local:%Y%m%dT%H%M%S}"


def _organizer(row: FeedRow) -> str:
    """``;CN=<name>:mailto:<email>`` of the owner, else of the mailer address."""
    owner = row.owner
    if owner is not None:
        email, name = owner.email, owner.name
    else:
        name, email = parseaddr(ics._config("MAIL_DEFAULT_SENDER", "slotbook@localhost"))
        email, name = email or "slotbook@localhost", name or "Slotbook"
    if not name:
        return f":mailto:{email}"
    cn = " ".join(name.split())  # no line breaks inside a parameter (blank stays: CN=)
    return f";CN={parameter(cn, quote_also=CN_QUOTE_ALSO)}:mailto:{email}"


def parameter(value: str, quote_also: str = "") -> str:
    """A parameter value: RFC 6868 escapes, quoted when it holds ``, ; :`` or ’ (or one of
    ``quote_also``, checked on the value as given)."""
    always = any(c in value for c in quote_also)
    escaped = _RFC6868.sub(lambda m: _RFC6868_SUBSTITUTES[m.group(0)], value)
    if always or _QUOTABLE.search(escaped):
        return f'"{escaped}"'
    return escaped


# --- folding -------------------------------------------------------------------------------


def fold(line: str) -> str:
    """``line`` folded as ``icalendar`` folds: at most 74 octets before each fold, the fold
    being CRLF and one space, never inside a character's UTF-8 bytes, and never right after
    a ``\\`` or ``^`` (an escape stays whole on the next line)."""
    if line.isascii():
        if len(line) <= FOLD_AT:
            return line
        pieces = []
        i, n = 0, len(line)
        while n - i > FOLD_AT:
            j = i + FOLD_AT
            if line[j - 1] in "\\^" and j - 1 > i:
                j -= 1
            pieces.append(line[i:j])
            i = j
        pieces.append(line[i:])
        return "\r\n ".join(pieces)
    return _fold_unicode(line)


def _fold_unicode(line: str) -> str:
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = 1 if char < "\x80" else len(char.encode("utf-8"))
        if current and size + width > FOLD_AT:
            if len(current) > 1 and current[-1] in "\\^":
                carried = current.pop()
                pieces.append("".join(current))
                current, size = [carried], 1
            else:
                pieces.append("".join(current))
                current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return "\r\n ".join(pieces)
