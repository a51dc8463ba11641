"""Teams meetings' rules inside Slotbook (T1, T2): whether Teams can be offered, the
scheduling window, the minimum notice, and the meeting row kept beside each Teams booking.

Everything here is database only; the Graph calls live in ``meetings.py`` and run from the
outbox. The booking service calls ``on_booking_meeting`` (registered through
``bookings.service.on_meeting_change``) inside the booking's write transaction, so a refused
Teams booking changes nothing, and the outbox message of the same change pushes the meeting
once it is inside the window.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import select

from app.accounts.models import User
from app.admin.settings import get_setting
from app.bookings.models import Booking, BookingType, LocationMode
from app.bookings.service import MODE_FILTERS, BookingError, on_meeting_change
from app.connections.models import Connection, ConnectionKind
from app.database import utcnow
from app.extensions import db
from app.teams.models import MeetingState, OnlineMeeting

TEAMS = LocationMode.TEAMS.value


class TeamsUnavailable(BookingError):
    """Teams was asked for but cannot work now (the API answers 422 ``teams_unavailable``)."""

    code = "teams_unavailable"


# --- settings (seed 001) -----------------------------------------------------------------


def window_days() -> int:
    return int(get_setting("teams_scheduling_window_days"))


def min_lead_hours() -> int:
    return int(get_setting("teams_min_lead_hours"))


def interval_hours() -> int:
    return int(get_setting("teams_schedule_interval_hours"))


# --- can Teams work? ---------------------------------------------------------------------


def organisation_connection() -> Connection | None:
    return db.session.scalars(
        select(Connection)
        .where(Connection.kind == ConnectionKind.MICROSOFT_ORG)
        .order_by(Connection.id)
    ).first()


def unavailable_reason() -> str | None:
    """Why Teams meetings cannot be made now, or None when they can."""
    connection = organisation_connection()
    if connection is None or not connection.secret_sealed or not connection.client_id:
        return (
            "Microsoft Teams meetings need the organisation's Microsoft 365 connection; "
            "an administrator can set it up under Calendars."
        )
    if connection.needs_relink:
        return (
            "Microsoft 365 no longer accepts Slotbook's app registration; an administrator "
            "needs to enter the client secret again before Teams meetings can be made."
        )
    return None


def teams_available() -> bool:
    """Whether forms, pickers and the API may offer Microsoft Teams."""
    return unavailable_reason() is None


def allowed_modes(modes: list[str] | tuple[str, ...]) -> list[str]:
    """``modes`` without Teams when Teams cannot work (never offer what does nothing)."""
    if TEAMS in modes and not teams_available():
        return [m for m in modes if m != TEAMS]
    return list(modes)


MODE_FILTERS.append(allowed_modes)  # a booking made without a mode never defaults to Teams


def default_mode_for(kind: BookingType) -> str | None:
    """The type's default location, unless it is Teams and Teams cannot work: then the first
    other mode the type offers (a type's default must be one that works)."""
    mode = kind.default_location_mode or (kind.location_modes or [None])[0]
    if mode == TEAMS and not teams_available():
        others = [m for m in kind.location_modes or [] if m != TEAMS]
        return others[0] if others else None
    return mode


def require_teams() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise TeamsUnavailable(reason)


# --- the window --------------------------------------------------------------------------


def push_after_for(starts_at: datetime) -> datetime:
    """When a meeting enters the scheduling window (it is created in Teams from then on)."""
    return starts_at - timedelta(days=window_days())


def check_lead(starts_at: datetime, now: datetime | None = None) -> None:
    hours = min_lead_hours()
    now = now or utcnow()
    if starts_at < now + timedelta(hours=hours):
        raise BookingError(
            f"A Microsoft Teams meeting must start at least {hours} hours from now, so "
            "Microsoft can send the invitations in time. Choose a later time or another "
            "location."
        )


def is_organiser(meeting: OnlineMeeting, user) -> bool:
    """Whether ``user`` organises ``meeting`` (they get "Start meeting", others "Join"): by
    account, or by the organiser email entered on the booking."""
    if not getattr(user, "is_authenticated", False):
        return False
    return (
        user.id == meeting.organiser_user_id
        or (user.email or "").lower() == (meeting.organiser_email or "").lower()
    )


def waiting_text(meeting: OnlineMeeting | None, zone: tzinfo | None = None) -> str | None:
    """ "Teams link will be created on <date>" while the meeting waits for its window; the
    date as the reader's calendar has it (``zone``, UTC when unknown)."""
    if meeting is None or meeting.state != MeetingState.WAITING:
        return None
    push_after = push_after_for(meeting.booking.starts_at)  # the window as set now
    if push_after <= utcnow():
        return "The Teams link is being created."
    day = push_after.astimezone(zone or UTC).strftime("%-d %B %Y")
    return f"Teams link will be created on {day}"


# --- the row beside the booking (called in the booking's transaction) ---------------------


def _clean_organiser(email: str) -> str:
    email = (email or "").strip().lower()
    if (
        "@" not in email
        or email.startswith("@")
        or email.endswith("@")
        or any(ch.isspace() for ch in email)
        or len(email) > 320
    ):
        raise BookingError(f"{email or 'An empty address'} is not a valid organiser email.")
    return email


@on_meeting_change
def on_booking_meeting(
    booking: Booking, actor: User | None, *, change: str, organiser_email: str | None
) -> bool:
    """Keep the booking's meeting row in step with how it meets; refuse a Teams booking that
    cannot work (no connection, too soon). True when only the organiser changed."""
    meeting: OnlineMeeting | None = booking.online_meeting
    if booking.location_mode != TEAMS:
        if organiser_email:
            raise BookingError("An organiser email is only used for Microsoft Teams meetings.")
        return False  # the outbox handler cancels a meeting already made
    new_meeting = meeting is None or meeting.state == MeetingState.CANCELLED
    if change in {"created", "location"} and new_meeting:
        require_teams()
    if change in {"created", "rescheduled"} or new_meeting:
        check_lead(booking.starts_at)
    organiser = _clean_organiser(organiser_email) if organiser_email else None
    if new_meeting:
        if meeting is None:
            meeting = OnlineMeeting(provider="teams")
            db.session.add(meeting)
            meeting.booking = booking
        meeting.state = MeetingState.WAITING
        meeting.graph_event_id = meeting.graph_online_meeting_id = meeting.join_url = None
        meeting.error = meeting.etag = None
        meeting.transaction_id = uuid.uuid4().hex
        meeting.attempts = 0
        meeting.organiser_email = organiser or _owner_email(booking)
    changed = False
    if organiser is not None and organiser != meeting.organiser_email:
        if meeting.graph_event_id:
            raise BookingError(
                "This Teams meeting already exists in its organiser's calendar, so its "
                "organiser cannot change. Switch the booking to another location and back "
                "to Teams to make a new meeting."
            )
        meeting.organiser_email, changed = organiser, True
    meeting.organiser_user_id = _user_id(meeting.organiser_email)
    if meeting.state == MeetingState.WAITING:
        meeting.push_after = push_after_for(booking.starts_at)
    return changed


def _owner_email(booking: Booking) -> str:
    owner = booking.owner or (db.session.get(User, booking.owner_id) if booking.owner_id else None)
    if owner is None or not owner.email:
        raise BookingError("A Teams meeting needs an organiser: enter the organiser's email.")
    return owner.email.strip().lower()


def _user_id(email: str) -> int | None:
    return db.session.scalar(select(User.id).where(User.email == email))


# --- what the API and the screens show ----------------------------------------------------


def meeting_json(booking: Booking) -> dict | None:
    """The ``online_meeting`` object of ``GET /api/v1/bookings/{id}`` (null when not Teams)."""
    if booking.location_mode != TEAMS:
        return None  # before touching the relationship: a list of bookings loads no rows
    meeting: OnlineMeeting | None = booking.online_meeting
    if meeting is None:
        return None
    return {
        "provider": meeting.provider,
        "state": meeting.state,
        "join_url": meeting.join_url if meeting.state == MeetingState.SCHEDULED else None,
        "push_after": (
            push_after_for(booking.starts_at).isoformat()
            if meeting.state == MeetingState.WAITING
            else None
        ),
        "error": meeting.error,
    }
