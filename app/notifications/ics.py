"""iCalendar for people's calendar clients: invitations attached to emails (F2) and personal
feeds (F1).

Both are built with the ``icalendar`` library (folding, CRLF, escaping, RFC 6868 parameter
quoting) and follow the same event rules, so a booking looks the same wherever it lands:

- UID is the booking's stable ``uid``: every version, the feed copy and the cancellation are
  one calendar event, and SEQUENCE (which goes up with every change) tells clients which copy
  is newer;
- times carry the organiser's zone (the owner's, else Europe/London) with a VTIMEZONE
  describing that zone over the years the events touch (``notifications.vtimezone``: yearly
  RRULEs checked against zoneinfo), so a client that knows nothing of the Olson database
  (ical.js, Outlook) still gets the right instants across DST changes;
- STATUS says what the booking is: TENTATIVE while provisional, CONFIRMED once confirmed or
  completed, CANCELLED in a cancellation;
- titles name the booking type (seed 000, 5.14.0), as the calendar write-back does.

Invitations (METHOD:REQUEST/CANCEL, RFC 5546) carry ORGANIZER and ATTENDEE lines and a plain
title (the STATUS says "tentative"). Feeds (METHOD:PUBLISH) may not carry ATTENDEE lines
(RFC 5546 3.2.1; Outlook would treat the events as meetings to answer), so the people are named
in the description instead, and provisional bookings keep the "[PENDING] " prefix people know
from the write-back, because a subscribed calendar shows tentative events no differently.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context
from icalendar import Calendar, Event, vCalAddress

from app.bookings.models import Attendee, LocationMode, Status
from app.bookings.writeback import PENDING_PREFIX, calendar_title
from app.notifications.vtimezone import vtimezone

PRODID = "-//Slotbook//Slotbook//EN"
DEFAULT_ZONE = "Europe/London"
METHODS = frozenset({"REQUEST", "CANCEL"})
LOCATION_LABELS = {
    LocationMode.FACE_TO_FACE: "Face to face",
    LocationMode.REMOTE: "Online",
    LocationMode.TEAMS: "Microsoft Teams meeting",
}
_STATUS = {
    Status.PROVISIONAL: "TENTATIVE",
    Status.CONFIRMED: "CONFIRMED",
    Status.COMPLETED: "CONFIRMED",
    Status.NO_SHOW: "CONFIRMED",  # the time was kept (waiting); the event stays as it was
    Status.CANCELLED: "CANCELLED",
    Status.REJECTED: "CANCELLED",
}


# --- public API ----------------------------------------------------------------------------


def invitation(booking, *, method: str, sequence: int, recipient_email: str | None = None) -> str:
    """A VCALENDAR with METHOD ``method`` (REQUEST or CANCEL) and one VEVENT for ``booking``.

    ``sequence`` is the version the message is about. A CANCEL never goes below the booking's
    current sequence, so it always supersedes every REQUEST already sent for the event.
    ``recipient_email`` is who the attachment goes to: someone no longer attending (removed
    from the booking) gets a CANCEL naming only them, as RFC 5546 3.2.5 asks; a recipient
    missing from the attendees (a visitor's contact address) is added to the list.
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"unsupported iTIP method {method!r}")
    if method == "CANCEL":
        sequence = max(int(sequence), int(booking.sequence or 0))
    zone = organiser_zone(booking)
    calendar = _calendar(method)
    event = _event(booking, zone, sequence=int(sequence), stamp=datetime.now(UTC))
    event.add("status", "CANCELLED" if method == "CANCEL" else _STATUS[Status(booking.status)])
    event.add("summary", calendar_title(booking))
    event.add("description", _description(booking))
    _add_people(event, booking, method, recipient_email)
    calendar.add_component(event)
    _add_timezones(calendar, {zone.key: [booking]})
    return calendar.to_ical(sorted=False).decode()  # in the order written; sorting costs time


def feed(user, bookings) -> str:
    """A VCALENDAR listing ``bookings`` for ``user``'s subscription feed (METHOD:PUBLISH).

    DTSTAMP is each booking's last change rather than "now", so the same bookings always give
    the same bytes: the feed's ETag can then be worked out without building the body.

    Written by ``feed_writer`` (the events as text, issue [14]: icalendar's serialisation was
    most of a big feed's time); :func:`feed_icalendar` is the same feed built with icalendar,
    which the byte-for-byte test compares it with.
    """
    from app.notifications import feed_writer

    return feed_writer.write(user, bookings)


def feed_calendar(user) -> Calendar:
    """The feed's VCALENDAR with its own properties and no components yet."""
    calendar = _calendar("PUBLISH")
    name = f"Slotbook – {user.name}"
    calendar.add("x-wr-calname", name)
    calendar.add("name", name)
    calendar.add("x-wr-caldesc", f"Bookings of {user.name} in Slotbook")
    calendar.add("x-published-ttl", "PT1H")  # Outlook's refresh hint
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    return calendar


def feed_icalendar(user, bookings) -> str:
    """:func:`feed` built with the icalendar library: the reference for ``feed_writer``."""
    calendar = feed_calendar(user)
    by_zone: dict[str, list] = {}
    base_url = _base_url()
    for booking in bookings:
        zone = organiser_zone(booking)
        by_zone.setdefault(zone.key, []).append(booking)
        calendar.add_component(_feed_event(booking, zone, base_url))
    _add_timezones(calendar, by_zone)
    return calendar.to_ical(sorted=False).decode()  # in the order written; sorting costs time


def organiser_zone(booking) -> ZoneInfo:
    """The zone an event is written in: its organiser's (the booking owner's), else London."""
    name = getattr(booking.owner, "timezone", None) or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed, a folder
        return ZoneInfo(DEFAULT_ZONE)


# --- calendar and events -------------------------------------------------------------------


def _calendar(method: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    return calendar


def _event(booking, zone: ZoneInfo, *, sequence: int, stamp: datetime) -> Event:
    """The parts every copy of a booking's event shares: identity, version, time, place."""
    event = Event()
    event.add("uid", booking.uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", _in_zone(booking.starts_at, zone))
    event.add("dtend", _in_zone(booking.ends_at, zone))
    event.add("location", _location(booking))
    event.add("categories", [booking.booking_type.name])
    event.add("organizer", _organizer(booking))
    return event


def _feed_event(booking, zone: ZoneInfo, base_url: str) -> Event:
    stamp = booking.updated_at or booking.created_at or datetime.now(UTC)
    event = _event(booking, zone, sequence=int(booking.sequence or 0), stamp=stamp)
    status = Status(booking.status)
    event.add("status", _STATUS[status])
    pending = PENDING_PREFIX if status == Status.PROVISIONAL else ""
    event.add("summary", pending + calendar_title(booking))
    people = ", ".join(a.display_name for a in booking.attendees)
    event.add("description", _description(booking, people=people))
    event.add("url", f"{base_url}/bookings/{booking.id}")
    return event


def _location(booking) -> str:
    detail = (booking.location_detail or "").strip()
    label = LOCATION_LABELS.get(booking.location_mode, "")
    if detail and label and booking.location_mode != LocationMode.FACE_TO_FACE:
        return f"{label}: {detail}"
    return detail or label


def _description(booking, people: str = "") -> str:
    lines = []
    if (booking.description or "").strip():
        lines += [booking.description.strip(), ""]
    lines.append(f"Booking type: {booking.booking_type.name}")
    if people:
        lines.append(f"With: {people}")
    if booking.status == Status.PROVISIONAL:
        lines.append("Provisional: waiting for approval.")
    return "\n".join(lines)


# --- people --------------------------------------------------------------------------------


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = " ".join(name.split())  # no line breaks inside a parameter
    for key, value in params.items():
        address.params[key.upper().replace("_", "-")] = value
    return address


def _organizer(booking) -> vCalAddress:
    """The booking's owner; a booking nobody owns is organised by the mailer address."""
    owner = booking.owner
    if owner is not None:
        return _address(owner.email, owner.name)
    name, email = parseaddr(_config("MAIL_DEFAULT_SENDER", "slotbook@localhost"))
    return _address(email or "slotbook@localhost", name or "Slotbook")


def _attendee_email(attendee: Attendee) -> str | None:
    return attendee.user.email if attendee.user is not None else attendee.email


def _add_people(event: Event, booking, method: str, recipient_email: str | None) -> None:
    attending = [(a, _attendee_email(a)) for a in booking.attendees]
    attending = [(a, email) for a, email in attending if email]
    emails = {email.lower() for _, email in attending}
    recipient = (recipient_email or "").strip()
    if recipient and recipient.lower() not in emails and method == "CANCEL":
        attending = []  # removed from the booking: the cancellation names only them
    for attendee, email in attending:
        chair = attendee.user_id is not None and attendee.user_id == booking.owner_id
        event.add(
            "attendee",
            _address(
                email,
                attendee.display_name,
                cutype="INDIVIDUAL",
                role="CHAIR" if chair else "REQ-PARTICIPANT",
                partstat="NEEDS-ACTION",
                rsvp="FALSE",
            ),
        )
    if recipient and recipient.lower() not in emails:
        event.add(
            "attendee",
            _address(
                recipient,
                "",
                cutype="INDIVIDUAL",
                role="REQ-PARTICIPANT",
                partstat="NEEDS-ACTION",
                rsvp="FALSE",
            ),
        )


# --- time zones ----------------------------------------------------------------------------


def _in_zone(instant: datetime, zone: ZoneInfo) -> datetime:
    """``instant`` as local time in ``zone``, or in UTC when that local time happens twice
    (the hour repeated when clocks go back). RFC 5545 3.3.5 reads a repeated local time as
    its first occurrence, but clients differ (ical.js takes the second), so such an instant
    is written in UTC, which every reader agrees on."""
    local = instant.astimezone(zone)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        return instant.astimezone(UTC)
    return local


def _add_timezones(calendar: Calendar, by_zone: dict[str, list]) -> None:
    """One VTIMEZONE per zone used, covering the whole years the zone's events touch; they go
    first, before the events that refer to them."""
    zones = []
    for key in sorted(set(by_zone) - {"UTC"}):  # UTC times are written with "Z", no TZID
        bookings: Iterable = by_zone[key]
        first = min(b.starts_at for b in bookings).astimezone(UTC).year - 1
        last = max(b.ends_at for b in bookings).astimezone(UTC).year + 1
        zones.append(vtimezone(key, first, last))
    calendar.subcomponents[0:0] = zones


# --- configuration -------------------------------------------------------------------------


def _config(key: str, default: str) -> str:
    if has_app_context():
        return current_app.config.get(key) or default
    return default


def _base_url() -> str:
    return _config("SLOTBOOK_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
