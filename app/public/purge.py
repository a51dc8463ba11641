"""Purging outdated visitor details (setting "Purge outdated events at midnight").

A nightly periodic job (``app.jobs.purge_outdated_visitors``) removes the name, email and
phone of public visitors whose booking ended more than ``purge_after_days`` days ago. The
booking, its holds and its audit trail stay, so reports and the calendar keep their history;
only what identifies the visitor goes, and the purge itself is recorded in the audit trail.

Safe to run twice or on two workers at once: rows are picked only while they still hold
details, locked with ``SKIP LOCKED`` (a row another run is purging is left to that run) and
PostgreSQL re-checks the filter on a row that changed meanwhile, so each visitor is anonymised
and audited exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from app.admin.settings import all_settings
from app.bookings.models import Attendee, AuditEntry, Booking
from app.database import utcnow
from app.extensions import db
from app.public.models import PublicBooking

REMOVED_NAME = "Removed visitor"
REMOVED_DESCRIPTION = "Booked online"


def removed_email(attendee_id: int) -> str:
    """A placeholder an attendee row can keep (it needs a user or an email): the ``.invalid``
    top-level domain never delivers, and the id keeps it unique within the booking."""
    return f"removed-{attendee_id}@visitor.invalid"


def purge_outdated_visitors(now: datetime | None = None) -> int:
    """Anonymise visitors whose booking ended before the cut-off; returns how many.

    Does nothing while the setting is off. Flushes, never commits: the job commits once.
    """
    settings = all_settings()
    if not settings["purge_outdated_events"]:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=int(settings["purge_after_days"]))
    records = db.session.scalars(
        select(PublicBooking)
        .join(Booking, Booking.id == PublicBooking.booking_id)
        .where(
            Booking.ends_at < cutoff,
            or_(
                PublicBooking.contact_name != REMOVED_NAME,
                PublicBooking.contact_email.is_not(None),
                PublicBooking.contact_phone.is_not(None),
            ),
        )
        .order_by(PublicBooking.booking_id)
        .with_for_update(of=PublicBooking, skip_locked=True)
    ).all()
    for record in records:
        record.contact_name = REMOVED_NAME
        record.contact_email = None
        record.contact_phone = None
        booking = record.booking
        if booking.description.startswith("Booked online by"):
            booking.description = REMOVED_DESCRIPTION
        for attendee in db.session.scalars(
            select(Attendee).where(Attendee.booking_id == booking.id, Attendee.user_id.is_(None))
        ):
            attendee.name = REMOVED_NAME
            attendee.email = removed_email(attendee.id)
        db.session.add(
            AuditEntry(
                booking_id=booking.id,
                actor_id=None,
                action="visitor_details_removed",
                changes={"visitor": ["details", "removed"]},
            )
        )
    db.session.flush()
    return len(records)
