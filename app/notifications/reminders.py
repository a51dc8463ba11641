"""Meeting reminders (N3): a ``reminder.due`` message per attendee, once, before the start.

A periodic job (every minute, ``app/jobs.py``) looks at confirmed bookings that start within
the organisation's ``reminder_minutes`` and have not started yet. Each attendee's reminder is
an ``emit_once`` keyed by booking, attendee and start time, so running the job twice, or on two
workers at once, still sends one reminder, while a booking moved to a new time earns a new one.
The planner turns ``reminder.due`` into email, bell and SMS like any other rule (``reminder``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.admin.settings import get_setting
from app.bookings.models import Attendee, Booking, Status
from app.database import utcnow
from app.extensions import db
from app.outbox import OutboxMessage, emit_once

KIND = "reminder.due"


def attendee_key(attendee: Attendee) -> str:
    """Who the reminder is for, stable across edits: the user's id, or a short hash of a
    guest's email (keeps the dedupe key short and the address out of it)."""
    if attendee.user_id is not None:
        return f"u{attendee.user_id}"
    email = (attendee.email or "").strip().lower()
    return "g" + hashlib.sha256(email.encode()).hexdigest()[:20]


def dedupe_key(booking: Booking, attendee: Attendee) -> str:
    return f"reminder:{booking.id}:{attendee_key(attendee)}:{booking.starts_at.isoformat()}"


def _attendee_payload(attendee: Attendee) -> dict:
    if attendee.user is not None:
        return {
            "user_id": attendee.user_id,
            "email": attendee.user.email,
            "name": attendee.user.name,
        }
    return {"user_id": None, "email": attendee.email, "name": attendee.display_name}


def due_bookings(now: datetime, minutes: int) -> list[Booking]:
    """Confirmed bookings starting after ``now`` and at most ``minutes`` later."""
    query = (
        select(Booking)
        .where(
            Booking.status == Status.CONFIRMED,
            Booking.starts_at > now,
            Booking.starts_at <= now + timedelta(minutes=minutes),
        )
        .options(selectinload(Booking.attendees))
        .order_by(Booking.starts_at, Booking.id)
    )
    return list(db.session.scalars(query))


def queue_reminders(now: datetime | None = None) -> int:
    """Emit the reminders that are due and not yet sent; returns how many were emitted.

    Call inside a writing transaction (``begin_write``); the caller commits. A setting of 0
    minutes turns reminders off.
    """
    now = now or utcnow()
    minutes = int(get_setting("reminder_minutes"))
    if minutes <= 0:
        return 0
    due = [
        (booking, attendee)
        for booking in due_bookings(now, minutes)
        for attendee in booking.attendees
    ]
    sent = existing_keys([dedupe_key(booking, attendee) for booking, attendee in due])
    emitted = 0
    for booking, attendee in due:
        key = dedupe_key(booking, attendee)
        if key in sent:
            continue
        # emit_once still guards the insert: another worker may be on the same minute
        message = emit_once(
            key,
            KIND,
            booking_id=booking.id,
            status=booking.status,
            sequence=booking.sequence,
            starts_at=booking.starts_at.isoformat(),
            attendee=_attendee_payload(attendee),
        )
        emitted += message is not None
    return emitted


def existing_keys(keys: list[str], chunk: int = 500) -> set[str]:
    """Which of ``keys`` the outbox already holds: one query per ``chunk`` keys, not one per
    attendee every minute."""
    found: set[str] = set()
    for i in range(0, len(keys), chunk):
        part = keys[i : i + chunk]
        found.update(
            db.session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(part))
            )
        )
    return found
