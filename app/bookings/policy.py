"""Who may see and do what with a booking (SPEC P1, P2), in one place for routes and services."""

from __future__ import annotations

from sqlalchemy import Select, exists, or_, select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings.lifecycle import Action
from app.bookings.models import Attendee, Booking


class PermissionDenied(Exception):
    """The actor lacks the permission or may not touch this object."""


ACTION_PERMISSION: dict[Action, Perm] = {
    Action.APPROVE: Perm.BOOKINGS_APPROVE,
    Action.REJECT: Perm.BOOKINGS_APPROVE,
    Action.CANCEL: Perm.BOOKINGS_DELETE,
    Action.COMPLETE: Perm.BOOKINGS_EDIT,
    Action.RESCHEDULE: Perm.BOOKINGS_EDIT,
    Action.REBOOK: Perm.BOOKINGS_CREATE,
}


def can_view(user: User, booking: Booking) -> bool:
    return user.can(Perm.BOOKINGS_VIEW_ALL) or booking.involves(user)


def can(user: User, action: Action | Perm, booking: Booking) -> bool:
    """Permission for the action and sight of this particular booking, both required."""
    permission = ACTION_PERMISSION[action] if isinstance(action, Action) else action
    return user.can(permission) and can_view(user, booking)


def require(user: User | None, action: Action | Perm, booking: Booking | None = None) -> None:
    """Raise ``PermissionDenied`` unless allowed. ``None`` is the system acting for itself."""
    if user is None:
        return
    if booking is None:
        permission = ACTION_PERMISSION[action] if isinstance(action, Action) else action
        allowed = user.can(permission)
    else:
        allowed = can(user, action, booking)
    if not allowed:
        raise PermissionDenied("You do not have permission to do that.")


def visible_bookings(user: User) -> Select:
    """A query of the bookings ``user`` may see."""
    query = select(Booking)
    if user.can(Perm.BOOKINGS_VIEW_ALL):
        return query
    attends = exists().where(Attendee.booking_id == Booking.id, Attendee.user_id == user.id)
    return query.where(
        or_(
            Booking.owner_id == user.id,
            Booking.learner_id == user.id,
            Booking.created_by_id == user.id,
            attends,
        )
    )
