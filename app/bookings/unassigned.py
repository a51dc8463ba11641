"""Bookings nobody can run ("Show unassigned bookings on agent dashboards").

Every booking gets a person when it is made, public ones included (the visitor's slot is the
first free person's), so "unassigned" here means: an upcoming provisional or confirmed booking
whose owner is gone, i.e. has no owner or was deactivated after the booking was made. Such a
booking still shows on nobody's working calendar, so agents see it in a "To assign" list on
their calendar and may take it (``service.take_over``), while the setting is on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.admin.settings import get_setting
from app.bookings.models import Booking, Status
from app.database import utcnow
from app.extensions import db

LIMIT = 20  # a short list to act on, soonest first; more means staffing, not a lane


def lane_enabled() -> bool:
    return bool(get_setting("show_unassigned_bookings"))


def may_take(user: User) -> bool:
    """Staff who may edit bookings see the lane and may take from it."""
    return user.is_staff and user.can(Perm.BOOKINGS_EDIT)


def unassigned_query(now: datetime | None = None) -> Select:
    now = now or utcnow()
    inactive_owner = select(User.id).where(User.active.is_(False))
    return (
        select(Booking)
        .where(
            Booking.status.in_([Status.PROVISIONAL, Status.CONFIRMED]),
            Booking.ends_at > now,
            or_(Booking.owner_id.is_(None), Booking.owner_id.in_(inactive_owner)),
        )
        .order_by(Booking.starts_at, Booking.id)
    )


def is_unassigned(booking: Booking, now: datetime | None = None) -> bool:
    return db.session.scalar(unassigned_query(now).where(Booking.id == booking.id)) is not None


def lane_for(user: User) -> list[Booking] | None:
    """The "To assign" list for ``user``, or None when they do not get one (setting off, or
    not someone who may take bookings)."""
    if not lane_enabled() or not may_take(user):
        return None
    return list(db.session.scalars(unassigned_query().limit(LIMIT)).unique())
