"""What a visitor is told about their booking, and "Add to calendar".

The pages after booking, the manage page and the visitor's emails all say the same: start and
end in the visitor's zone, with whom, where (the address, or the meeting link), and how to put
it in a calendar: a downloaded .ics file, or a Google or Outlook web link that opens the
calendar's new-event page already filled in. The links are built here, not by a third-party
script, so the public pages stay small and send nothing to anyone until the visitor clicks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from app.bookings.models import Booking, LocationMode, Status

PRODID = "-//Slotbook//Slotbook visitor//EN"
WHERE_LABELS = {
    LocationMode.FACE_TO_FACE: "Face to face",
    LocationMode.REMOTE: "Online",
    LocationMode.TEAMS: "Microsoft Teams",
}
MODE_CHOICES = {
    LocationMode.FACE_TO_FACE: "Face to face",
    LocationMode.REMOTE: "Online (video or phone)",
    LocationMode.TEAMS: "Microsoft Teams",
}
GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = "https://outlook.live.com/calendar/0/deeplink/compose"
OFFICE = "https://outlook.office.com/calendar/0/deeplink/compose"


def is_link(text: str) -> bool:
    """Whether a location detail is a web address to make clickable (https only: an
    ``http:`` or ``javascript:`` detail stays text)."""
    text = (text or "").strip()
    return text.startswith("https://") and not any(ch.isspace() for ch in text)


@dataclass(frozen=True)
class Visit:
    """A booking as its visitor sees it, in the visitor's zone."""

    title: str
    start: datetime
    end: datetime
    zone: str
    with_whom: list[str]
    where: str  # "Face to face", "Online"
    detail: str  # the address or meeting details ("" when none)
    detail_is_link: bool
    calendar_ok: bool  # confirmed: worth adding to a calendar

    @property
    def when(self) -> str:
        """ "Monday 07 December 2026, 10:00–10:30 EST" (the end's day too when it differs)."""
        start, end = self.start, self.end
        day = start.strftime("%A %d %B %Y")
        if start.date() == end.date():
            return f"{day}, {start:%H:%M}–{end:%H:%M} {end.tzname()}"
        until = end.strftime("%A %d %B %Y, %H:%M")
        return f"{day}, {start:%H:%M} {start.tzname()} – {until} {end.tzname()}"


def describe(booking: Booking, zone: ZoneInfo, organisation: str) -> Visit:
    """The visitor's view of ``booking`` in ``zone``."""
    detail = (booking.location_detail or "").strip()
    return Visit(
        title=f"{booking.booking_type.name} – {organisation}",
        start=booking.starts_at.astimezone(zone),
        end=booking.ends_at.astimezone(zone),
        zone=zone.key,
        with_whom=[p.name for p in booking.internal_people],
        where=WHERE_LABELS.get(booking.location_mode, str(booking.location_mode)),
        detail=detail,
        detail_is_link=is_link(detail),
        calendar_ok=booking.status == Status.CONFIRMED,
    )


def _details(visit: Visit, manage_url: str | None) -> str:
    lines = []
    if visit.with_whom:
        lines.append("With: " + ", ".join(visit.with_whom))
    lines.append(f"Where: {visit.where}" + (f": {visit.detail}" if visit.detail else ""))
    if manage_url:
        lines.append(f"Change or cancel: {manage_url}")
    return "\n".join(lines)


def _location(visit: Visit) -> str:
    return visit.detail or visit.where


def web_links(visit: Visit, manage_url: str | None = None) -> dict[str, str]:
    """Google Calendar, Outlook.com and Microsoft 365 links that open a filled-in new event."""
    start_utc, end_utc = visit.start.astimezone(UTC), visit.end.astimezone(UTC)
    details, location = _details(visit, manage_url), _location(visit)
    google = {
        "action": "TEMPLATE",
        "text": visit.title,
        "dates": f"{start_utc:%Y%m%dT%H%M%SZ}/{end_utc:%Y%m%dT%H%M%SZ}",
        "details": details,
        "location": location,
        "ctz": visit.zone,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": visit.title,
        "startdt": f"{start_utc:%Y-%m-%dT%H:%M:%SZ}",
        "enddt": f"{end_utc:%Y-%m-%dT%H:%M:%SZ}",
        "body": details,
        "location": location,
    }
    return {
        "google": f"{GOOGLE}?{urlencode(google)}",
        "outlook": f"{OUTLOOK}?{urlencode(outlook)}",
        "office": f"{OFFICE}?{urlencode(outlook)}",
    }


def ics(booking: Booking, visit: Visit, manage_url: str | None = None) -> bytes:
    """A one-event calendar file (METHOD:PUBLISH) the visitor's calendar imports. Its UID is
    the booking's, so importing it again after a change updates the same event, and times
    are in UTC, which every calendar reads without a VTIMEZONE."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", booking.uid)
    event.add("sequence", int(booking.sequence or 0))
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.starts_at.astimezone(UTC))
    event.add("dtend", booking.ends_at.astimezone(UTC))
    event.add("summary", visit.title)
    event.add("location", _location(visit))
    event.add("description", _details(visit, manage_url))
    event.add("status", "CONFIRMED" if visit.calendar_ok else "TENTATIVE")
    if visit.detail_is_link:
        event.add("url", visit.detail)
    calendar.add_component(event)
    return calendar.to_ical()
