"""Who is told what, and how (N2): seed 004's matrix as one table.

Each outbox message about a booking (or a visitor, a poll, a calendar link) is matched to a
``Trigger``: the message kind, optionally the booking's status at that moment, the rule that
says which message to send, and who receives it. Rules name their template and whether an
.ics goes with it (REQUEST for invitations and updates, CANCEL for cancellations, F2). The
admin picks the channels per rule (``RuleChannel`` rows); until they do, ``default_channels``
holds (email on by default, as in seed 004).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from app.extensions import db


class Channel(StrEnum):
    EMAIL = "email"
    IN_APP = "in_app"
    SMS = "sms"


CHANNEL_LABELS = {Channel.EMAIL: "Email", Channel.IN_APP: "In-app", Channel.SMS: "SMS"}


class Rule(StrEnum):
    PROVISIONAL_INVITE = "provisional_invite"
    MEETING_INVITE = "meeting_invite"
    MEETING_UPDATED = "meeting_updated"
    MEETING_RESCHEDULED = "meeting_rescheduled"
    MEETING_CANCELLED = "meeting_cancelled"
    MEETING_REJECTED = "meeting_rejected"
    MEETING_NO_SHOW = "meeting_no_show"
    REMINDER = "reminder"
    VISITOR_CONFIRM_REQUEST = "visitor_confirm_request"
    VISITOR_BOOKED = "visitor_booked"
    VISITOR_LINKS = "visitor_links"
    POLL_INVITATION = "poll_invitation"
    CALENDAR_NEEDS_RELINK = "calendar_needs_relink"


class Recipients(StrEnum):
    ATTENDEES = "attendees"  # everyone attending the booking (people and guests)
    ATTENDEE = "attendee"  # the one attendee the message is about (payload "attendee")
    VISITOR = "visitor"  # the public visitor's contact (payload email / phone)
    INVITEE = "invitee"  # a poll invitee (payload email)
    OWNER = "owner"  # the user a calendar connection belongs to (payload user_id)


@dataclass(frozen=True)
class RuleInfo:
    label: str  # as the admin screen names it (seed 004's names)
    template: str  # templates/notifications/email/<template>.{txt,html}
    ics_method: str | None  # "REQUEST", "CANCEL" or None (no attachment)
    default_channels: tuple[Channel, ...]


_MAIL_AND_BELL = (Channel.EMAIL, Channel.IN_APP)

RULES: dict[Rule, RuleInfo] = {
    Rule.PROVISIONAL_INVITE: RuleInfo(
        "Provisional booking invite", "provisional_invite", "REQUEST", _MAIL_AND_BELL
    ),
    Rule.MEETING_INVITE: RuleInfo("Meeting invite", "meeting_invite", "REQUEST", _MAIL_AND_BELL),
    Rule.MEETING_UPDATED: RuleInfo("Meeting updated", "meeting_updated", "REQUEST", _MAIL_AND_BELL),
    Rule.MEETING_RESCHEDULED: RuleInfo(
        "Meeting rescheduled", "meeting_rescheduled", "REQUEST", _MAIL_AND_BELL
    ),
    Rule.MEETING_CANCELLED: RuleInfo(
        "Meeting cancelled", "meeting_cancelled", "CANCEL", _MAIL_AND_BELL
    ),
    Rule.MEETING_REJECTED: RuleInfo(
        "Meeting booking rejected", "meeting_rejected", "CANCEL", _MAIL_AND_BELL
    ),
    Rule.MEETING_NO_SHOW: RuleInfo(
        "Visitor marked as no-show", "meeting_no_show", None, _MAIL_AND_BELL
    ),
    Rule.REMINDER: RuleInfo("Meeting reminder", "reminder", None, _MAIL_AND_BELL),
    Rule.VISITOR_CONFIRM_REQUEST: RuleInfo(
        "Confirm your booking (visitors)", "visitor_confirm_request", None, (Channel.EMAIL,)
    ),
    Rule.VISITOR_BOOKED: RuleInfo(
        "Booking confirmation (visitors)", "visitor_booked", "REQUEST", (Channel.EMAIL,)
    ),
    Rule.VISITOR_LINKS: RuleInfo(
        "Manage links (visitors)", "visitor_links", None, (Channel.EMAIL,)
    ),
    Rule.POLL_INVITATION: RuleInfo(
        "Meeting poll invitation", "poll_invitation", None, (Channel.EMAIL,)
    ),
    Rule.CALENDAR_NEEDS_RELINK: RuleInfo(
        "Linked calendar needs re-linking", "calendar_needs_relink", None, _MAIL_AND_BELL
    ),
}


@dataclass(frozen=True)
class Trigger:
    kind: str  # the outbox message kind
    status: str | None  # the booking status in the payload, or None for any
    rule: Rule
    recipients: Recipients


_A, _ONE = Recipients.ATTENDEES, Recipients.ATTENDEE

TRIGGERS: tuple[Trigger, ...] = (
    # Provisional bookings (seed 004)
    Trigger("booking.created", "provisional", Rule.PROVISIONAL_INVITE, _A),
    Trigger("booking.updated", "provisional", Rule.MEETING_UPDATED, _A),
    Trigger("attendee.removed", "provisional", Rule.MEETING_CANCELLED, _ONE),
    Trigger("attendee.added", "provisional", Rule.PROVISIONAL_INVITE, _ONE),
    Trigger("booking.approved", None, Rule.MEETING_INVITE, _A),
    Trigger("booking.rejected", None, Rule.MEETING_REJECTED, _A),
    # Confirmed bookings (seed 004)
    Trigger("booking.created", "confirmed", Rule.MEETING_INVITE, _A),
    Trigger("booking.updated", "confirmed", Rule.MEETING_UPDATED, _A),
    Trigger("booking.rescheduled", None, Rule.MEETING_RESCHEDULED, _A),
    Trigger("booking.cancelled", None, Rule.MEETING_CANCELLED, _A),
    Trigger("booking.no_show", None, Rule.MEETING_NO_SHOW, _A),
    Trigger("attendee.removed", "confirmed", Rule.MEETING_CANCELLED, _ONE),
    Trigger("attendee.added", "confirmed", Rule.MEETING_INVITE, _ONE),
    # Reminders (N3), visitors (S4, S5), polls (A5), calendar links (K6)
    Trigger("reminder.due", None, Rule.REMINDER, _ONE),
    Trigger(
        "public.confirmation_requested", None, Rule.VISITOR_CONFIRM_REQUEST, Recipients.VISITOR
    ),
    Trigger("public.booking_created", None, Rule.VISITOR_BOOKED, Recipients.VISITOR),
    Trigger("public.booking_confirmed", None, Rule.VISITOR_BOOKED, Recipients.VISITOR),
    Trigger("public.manage_link_resent", None, Rule.VISITOR_LINKS, Recipients.VISITOR),
    Trigger("poll.invited", None, Rule.POLL_INVITATION, Recipients.INVITEE),
    Trigger("connection.needs_relink", None, Rule.CALENDAR_NEEDS_RELINK, Recipients.OWNER),
)

TRIGGER_KINDS = tuple(sorted({t.kind for t in TRIGGERS}))


def trigger_for(kind: str, status: str | None) -> Trigger | None:
    """The trigger for a message, or None when nobody is told (e.g. booking.completed)."""
    for trigger in TRIGGERS:
        if trigger.kind == kind and trigger.status in (None, status):
            return trigger
    return None


def channels_for(rule: Rule) -> set[Channel]:
    """The channels the admin chose for ``rule`` (its defaults where they chose nothing)."""
    from app.notifications.models import RuleChannel

    chosen = {
        Channel(row.channel): row.enabled
        for row in db.session.scalars(select(RuleChannel).where(RuleChannel.rule == rule))
    }
    defaults = RULES[rule].default_channels
    return {c for c in Channel if chosen.get(c, c in defaults)}
