"""The notification planner: turns each outbox message into the messages people receive.

For a booking change (or a visitor, poll or calendar-link event) the planner finds its rule
(``rules.trigger_for``), works out who is told, and for each person and each channel the
admin switched on it writes what is sent *now*: a ``notify.email`` outbox row (subject and
bodies rendered, .ics attached), an in-app ``Notification`` row, a ``notify.sms`` row.
Sending happens later, one row per message, so one bad address or a slow SMTP server delays
only its own message and never the booking (N4).

Planning only touches the database (the outbox runs it inside a write transaction and marks
it handled in the same commit), so a message is planned all-or-nothing and never twice.
Payload fields that carry links (visitors' manage and confirm URLs, poll links, the rendered
bodies) are sealed by ``emit`` and read back through ``message.data``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from app.accounts.models import User
from app.admin.settings import get_setting
from app.bookings.models import Attendee, Booking, Status
from app.bookings.writeback import teams_takes_over
from app.extensions import db
from app.notifications import ics
from app.notifications.models import Notification
from app.notifications.render import headline, location_of, long_when, render_email, zone_named
from app.notifications.rules import (
    RULES,
    Channel,
    Recipients,
    Rule,
    Trigger,
    channels_for,
    trigger_for,
)
from app.outbox import OutboxMessage, emit, handles
from app.public.models import PublicBooking


@dataclass(frozen=True)
class Recipient:
    """Someone to tell: an internal user (``user_id``), a guest or a visitor."""

    name: str
    email: str | None
    timezone: str | None = None
    phone: str | None = None
    user_id: int | None = None


@handles("booking.*", "attendee.*", "public.*", "poll.*", "reminder.*", "connection.*")
def plan_notifications(message: OutboxMessage) -> None:
    """Plan every message one outbox row asks for (nothing when no rule matches it)."""
    payload = message.data
    trigger = trigger_for(message.kind, payload.get("status"))
    if trigger is None:
        return
    booking = db.session.get(Booking, payload["booking_id"]) if payload.get("booking_id") else None
    if payload.get("booking_id") and booking is None:
        return  # the booking is gone: there is nothing left to describe
    if message.kind == "reminder.due" and _stale_reminder(payload, booking):
        return  # planned late, after a cancel or a move: the meeting it reminds of is gone
    channels = channels_for(trigger.rule)
    if not channels:
        return
    extra = _extra_context(trigger.rule, payload)
    for recipient in _unique(recipients_for(trigger, message.kind, payload, booking)):
        _plan_one(message, trigger.rule, recipient, booking, payload, channels, extra)


def _stale_reminder(payload: dict, booking: Booking | None) -> bool:
    """A reminder whose booking is no longer confirmed, or no longer starts when the
    reminder says. The moved meeting earns its own reminder (keyed by the new start); an
    edit that keeps the time (sequence up, start the same) still deserves this one, so the
    sequence decides only for older payloads that carry no start."""
    if booking is None or booking.status != Status.CONFIRMED:
        return True
    starts_at = payload.get("starts_at")
    if starts_at is not None:
        try:
            return datetime.fromisoformat(starts_at) != booking.starts_at
        except (TypeError, ValueError):
            return True
    sequence = payload.get("sequence")
    return sequence is not None and int(sequence) != booking.sequence


def _plan_one(
    message: OutboxMessage,
    rule: Rule,
    recipient: Recipient,
    booking: Booking | None,
    payload: dict,
    channels: set[Channel],
    extra: dict,
) -> None:
    zone = zone_named(recipient.timezone, str(get_setting("organisation_timezone")))
    if Channel.EMAIL in channels and recipient.email:
        _plan_email(message, rule, recipient, zone, booking, payload, extra)
    if Channel.IN_APP in channels and recipient.user_id is not None:
        _add_in_app(message, rule, recipient, zone, booking, payload, extra)
    if Channel.SMS in channels and recipient.phone:
        _plan_sms(message, rule, recipient, zone, booking, payload, extra)


# --- recipients ---------------------------------------------------------------------


def recipients_for(
    trigger: Trigger, kind: str, payload: dict, booking: Booking | None
) -> Iterator[Recipient]:
    """Who the trigger's ``Recipients`` means for this message (seed 004)."""
    who = trigger.recipients
    if who is Recipients.ATTENDEES and booking is not None:
        yield from _attendees(booking, skip_visitor=kind == "booking.created")
    elif who is Recipients.ATTENDEE:
        person = _the_attendee(payload, booking)
        if person is not None:
            yield person
    elif who is Recipients.VISITOR:
        yield _visitor(payload)
    elif who is Recipients.INVITEE and payload.get("email"):
        yield _invitee(payload)
    elif who is Recipients.OWNER and payload.get("user_id"):
        user = db.session.get(User, payload["user_id"])
        if user is not None and user.active:
            yield _from_user(user)


def _attendees(booking: Booking, *, skip_visitor: bool) -> Iterator[Recipient]:
    """Every attendee. A visitor's own guest row is skipped on ``booking.created``: they get
    ``public.booking_created`` (or a confirmation request) instead, which carries their
    manage link, and one booking should not arrive as two emails."""
    record = db.session.get(PublicBooking, booking.id)
    visitor_email = (record.contact_email or "").lower() if record else ""
    for attendee in booking.attendees:
        if attendee.user is not None:
            if attendee.user.active:
                yield _from_user(attendee.user)
            continue
        is_visitor = bool(visitor_email) and (attendee.email or "").lower() == visitor_email
        if is_visitor and skip_visitor:
            continue
        yield Recipient(
            name=attendee.display_name,
            email=attendee.email,
            timezone=record.visitor_timezone if is_visitor else None,
            phone=record.contact_phone if is_visitor else None,
        )


def _the_attendee(payload: dict, booking: Booking | None) -> Recipient | None:
    """The attendee a message is about: a row that still exists (added), or the snapshot the
    message carries (removed, reminder)."""
    if payload.get("attendee_id"):
        row = db.session.get(Attendee, payload["attendee_id"])
        if row is None:
            return None
        if row.user is not None:
            return _from_user(row.user) if row.user.active else None
        return Recipient(name=row.display_name, email=row.email)
    snapshot = payload.get("attendee") or {}
    if snapshot.get("user_id"):
        user = db.session.get(User, snapshot["user_id"])
        return _from_user(user) if user is not None and user.active else None
    if snapshot.get("email"):
        return Recipient(name=snapshot.get("name") or "", email=snapshot["email"])
    return None


def _visitor(payload: dict) -> Recipient:
    timezone = payload.get("timezone")
    if not timezone and payload.get("booking_id"):
        record = db.session.get(PublicBooking, payload["booking_id"])
        timezone = record.visitor_timezone if record else None
    return Recipient(
        name=payload.get("name") or "",
        email=payload.get("email"),
        timezone=timezone,
        phone=payload.get("phone"),
    )


def _invitee(payload: dict) -> Recipient:
    """A poll invitee: a colleague (their name and zone) or a guest known by address."""
    from app.polls.models import PollInvitee

    row = db.session.get(PollInvitee, payload["invitee_id"]) if payload.get("invitee_id") else None
    if row is not None and row.user is not None and row.user.active:
        return _from_user(row.user)
    return Recipient(name=row.name if row else "", email=payload["email"])


def _from_user(user: User) -> Recipient:
    return Recipient(name=user.name, email=user.email, timezone=user.timezone, user_id=user.id)


def _unique(recipients: Iterator[Recipient]) -> Iterator[Recipient]:
    """Each address (or user) once, even if they are on a booking twice over."""
    seen: set[str] = set()
    for recipient in recipients:
        key = (recipient.email or "").lower() or f"user:{recipient.user_id}"
        if key in seen:
            continue
        seen.add(key)
        yield recipient


def _extra_context(rule: Rule, payload: dict) -> dict:
    """Facts a template needs that are neither in the booking nor in the payload."""
    if rule is Rule.POLL_INVITATION and payload.get("poll_id"):
        from app.polls.models import Poll

        poll = db.session.get(Poll, payload["poll_id"])
        if poll is not None:
            return {"poll_title": poll.title, "poll_organiser": poll.organiser.name}
    return {}


# --- channels -----------------------------------------------------------------------


def _plan_email(
    message: OutboxMessage,
    rule: Rule,
    recipient: Recipient,
    zone: ZoneInfo,
    booking: Booking | None,
    payload: dict,
    extra: dict,
) -> None:
    rendered = render_email(
        rule,
        kind=message.kind,
        recipient_name=recipient.name,
        zone=zone,
        booking=booking,
        payload=payload,
        internal=recipient.user_id is not None,
        extra=extra,
    )
    method = RULES[rule].ics_method if booking is not None else None
    if booking is not None and teams_takes_over(booking):
        method = None  # Microsoft sends the Teams invitation; ours would be a second one
    invitation = None
    if method:
        sequence = payload.get("sequence")
        invitation = ics.invitation(
            booking,
            method=method,
            sequence=booking.sequence if sequence is None else int(sequence),
            recipient_email=recipient.email,
        )
    emit(
        "notify.email",
        rule=str(rule),
        booking_id=booking.id if booking else None,
        to=recipient.email,
        to_name=recipient.name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        ics=invitation,
        ics_method=method if invitation else None,
        source=message.id,
    )


def _add_in_app(
    message: OutboxMessage,
    rule: Rule,
    recipient: Recipient,
    zone: ZoneInfo,
    booking: Booking | None,
    payload: dict,
    extra: dict,
) -> None:
    """A line under the bell, in the recipient's own zone; only people who can sign in."""
    body = ""
    url = None
    if booking is not None:
        body = f"{long_when(booking.starts_at, booking.ends_at, zone)} · {location_of(booking)}"
        url = f"/bookings/{booking.id}"
    elif rule is Rule.CALENDAR_NEEDS_RELINK:
        body = "Slotbook can no longer read or write this calendar until you link it again."
        url = "/me/calendars"
    db.session.add(
        Notification(
            user_id=recipient.user_id,
            rule=str(rule),
            title=headline(rule, zone, booking, {**payload, **extra})[:300],
            body=body,
            url=url,
            booking_id=booking.id if booking else None,
            source_message_id=message.id,
        )
    )


def _plan_sms(
    message: OutboxMessage,
    rule: Rule,
    recipient: Recipient,
    zone: ZoneInfo,
    booking: Booking | None,
    payload: dict,
    extra: dict,
) -> None:
    """A short text: the headline, plus the visitor's own link when the message has one."""
    text = headline(rule, zone, booking, {**payload, **extra})
    link = payload.get("confirm_url") or payload.get("manage_url")
    if link:
        text = f"{text}. {link}"
    emit(
        "notify.sms",
        to=recipient.phone,
        text=text,
        rule=str(rule),
        booking_id=booking.id if booking else None,
        source=message.id,
    )
