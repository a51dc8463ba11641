"""Words for notifications: subjects, in-app titles and the email bodies (N1, N2).

Everything is written in the recipient's time zone and names the zone, because an invitation
read in another country must not be misread by an hour. Emails are rendered when the planner
runs, so a message retried later still describes the change as it was when it happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import render_template

from app.admin.settings import all_settings
from app.bookings.models import Booking, LocationMode, Status
from app.notifications.rules import RULES, Rule
from app.urls import absolute_url

UTC = ZoneInfo("UTC")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOUR = "#2457a7"

# What a subject line or an in-app title starts with, per rule.
HEADLINES: dict[Rule, str] = {
    Rule.PROVISIONAL_INVITE: "Provisional booking",
    Rule.MEETING_INVITE: "Meeting invitation",
    Rule.MEETING_UPDATED: "Meeting updated",
    Rule.MEETING_RESCHEDULED: "Meeting rescheduled",
    Rule.MEETING_CANCELLED: "Meeting cancelled",
    Rule.MEETING_REJECTED: "Booking rejected",
    Rule.MEETING_NO_SHOW: "Marked as no-show",
    Rule.REMINDER: "Reminder",
    Rule.VISITOR_CONFIRM_REQUEST: "Please confirm your booking",
    Rule.VISITOR_BOOKED: "Booking confirmed",
    Rule.VISITOR_LINKS: "Your booking link",
    Rule.POLL_INVITATION: "Choose a time",
    Rule.CALENDAR_NEEDS_RELINK: "Your linked calendar needs re-linking",
}

LOCATION_LABELS = {
    LocationMode.FACE_TO_FACE: "Face to face",
    LocationMode.REMOTE: "Online",
    LocationMode.TEAMS: "Microsoft Teams",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def zone_named(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """A zone by name, else ``fallback``, else UTC: stored names may be stale or mistyped."""
    for candidate in (name, fallback):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a folder of the zone database ("Europe") or an unreadable file
            continue
    return UTC


def short_when(moment: datetime, zone: ZoneInfo) -> str:
    """Short enough for a subject or a bell: "Tue 24 Nov 10:00 (Europe/London)"."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M} ({zone.key})"


def long_when(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> str:
    """For the email body: "Tuesday 24 November 2026, 10:00–11:00 GMT (Europe/London)"."""
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    day = f"{start:%A} {start.day} {start:%B %Y}"
    if start.date() == end.date():
        return f"{day}, {start:%H:%M}–{end:%H:%M} {start.tzname()} ({zone.key})"
    return (
        f"{day}, {start:%H:%M} {start.tzname()} until {end:%A} {end.day} {end:%B %Y}, "
        f"{end:%H:%M} {end.tzname()} ({zone.key})"
    )


def location_of(booking: Booking) -> str:
    label = LOCATION_LABELS.get(booking.location_mode, booking.location_mode)
    teams = booking.location_mode == LocationMode.TEAMS
    meeting = getattr(booking, "online_meeting", None) if teams else None  # T1's row
    if meeting is not None:
        if meeting.state == "scheduled" and meeting.join_url:
            return f"{label}: join at {meeting.join_url}"
        if meeting.state == "waiting" and meeting.push_after is not None:
            when = meeting.push_after.strftime("%d %b %Y")
            return f"{label} (the Teams link will be sent by Microsoft from {when})"
    return f"{label}: {booking.location_detail}" if booking.location_detail else label


def headline(rule: Rule, zone: ZoneInfo, booking: Booking | None, payload: dict) -> str:
    """The subject of the email and the title under the bell (one wording for both)."""
    prefix = HEADLINES[rule]
    if rule is Rule.VISITOR_BOOKED and awaiting_approval(booking):
        prefix = "Booking request received"
    if booking is not None:
        return f"{prefix}: {booking.title} on {short_when(booking.starts_at, zone)}"
    if rule is Rule.POLL_INVITATION and payload.get("poll_title"):
        return f"{prefix}: {payload['poll_title']}"
    return prefix


def awaiting_approval(booking: Booking | None) -> bool:
    """A booking on a type that needs approval: held (TENTATIVE), not yet confirmed."""
    return booking is not None and booking.status == Status.PROVISIONAL


def branding() -> dict[str, str]:
    """The organisation's name, mailer name and colour; a malformed colour falls back to the
    default so an admin's typo cannot break (or inject into) the email's inline styles."""
    settings = all_settings()
    colour = str(settings["brand_primary_colour"])
    return {
        "organisation_name": str(settings["organisation_name"]),
        "from_name": str(settings["mailer_from_name"]),
        "colour": colour if HEX_COLOUR.match(colour) else DEFAULT_COLOUR,
    }


def render_email(
    rule: Rule,
    *,
    kind: str,
    recipient_name: str,
    zone: ZoneInfo,
    booking: Booking | None,
    payload: dict,
    internal: bool,
    extra: dict | None = None,
) -> Rendered:
    """Subject, plain text and HTML for one recipient of one rule.

    ``internal`` recipients get a link to the booking in Slotbook; guests and visitors cannot
    sign in, so they get only what the payload carries for them (manage or confirm links).
    """
    subject = headline(rule, zone, booking, {**payload, **(extra or {})})
    context = {
        "rule": rule,
        "kind": kind,
        "subject": subject,
        "recipient_name": recipient_name,
        "zone": zone,
        "booking": booking,
        "awaiting_approval": awaiting_approval(booking),
        "when": long_when(booking.starts_at, booking.ends_at, zone) if booking else "",
        "location": location_of(booking) if booking else "",
        "people": [a.display_name for a in booking.attendees] if booking else [],
        "booking_url": absolute_url("bookings.detail", booking_id=booking.id)
        if booking and internal
        else None,
        "payload": payload,
        "deadline": _deadline(payload.get("deadline"), zone),
        "brand": branding(),
        "calendars_url": absolute_url("connections.index"),
        "add_to_calendar": _add_to_calendar(rule, booking, zone),
        **(extra or {}),
    }
    name = RULES[rule].template
    text = render_template(f"notifications/email/{name}.txt", **context)
    html = render_template(f"notifications/email/{name}.html", **context)
    return Rendered(subject=subject, text=_tidy(text), html=html)


def _add_to_calendar(rule: Rule, booking: Booking | None, zone: ZoneInfo) -> dict | None:
    """Google and Outlook "Add to calendar" links for a visitor's confirmed booking ([13]):
    the attached .ics covers mail clients that read it, the links cover webmail that does
    not. Built by ``public.visit``, as on the visitor's pages."""
    if rule is not Rule.VISITOR_BOOKED or booking is None or booking.status != Status.CONFIRMED:
        return None
    from app.public import visit

    seen = visit.describe(booking, zone, branding()["organisation_name"])
    return visit.web_links(seen)


def _tidy(text: str) -> str:
    """Template tags leave blank lines behind; a plain-text email reads better without them."""
    lines = [line.rstrip() if line != "-- " else line for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _deadline(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return short_when(moment, zone)
