"""Who may see and do what with a booking (SPEC P1, P2), in one place for routes and services."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Select, exists, or_, select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings.lifecycle import Action
from app.bookings.models import Attendee, Booking
from app.database import utcnow
from app.scheduling.localtime import wall_to_utc


class PermissionDenied(Exception):
    """The actor lacks the permission or may not touch this object."""


ACTION_PERMISSION: dict[Action, Perm] = {
    Action.APPROVE: Perm.BOOKINGS_APPROVE,
    Action.REJECT: Perm.BOOKINGS_APPROVE,
    Action.CANCEL: Perm.BOOKINGS_DELETE,
    Action.COMPLETE: Perm.BOOKINGS_EDIT,
    Action.NO_SHOW: Perm.BOOKINGS_EDIT,
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


# --- who may book which type (B1 "who may book it", S7) ---------------------------------

AUDIENCES = ("public", "learner", "staff")


def audience_of(user: User | None) -> str | None:
    """In which capacity ``user`` books: a visitor (None) as "public", a learner as
    "learner", staff as "staff"; anyone else (an employer) books nothing themself."""
    if user is None:
        return "public"
    if user.is_learner:
        return "learner"
    if user.is_staff:
        return "staff"
    return None


def may_book_type(user: User | None, kind, audience: str | None = None) -> bool:
    """Whether ``user`` may book ``kind`` (a ``BookingType``): it is active and its "who may
    book it" names the user's audience; staff also need ``bookings.create``. ``audience``
    names the capacity the caller has in mind; one that is not the user's own is refused."""
    own = audience_of(user)
    if own is None or (audience is not None and audience != own) or not kind.active:
        return False
    if own == "staff" and not user.can(Perm.BOOKINGS_CREATE):
        return False
    return own in (kind.bookable_by or ())


def require_book_type(user: User | None, kind, audience: str | None = None) -> None:
    if not may_book_type(user, kind, audience):
        raise PermissionDenied(f"{kind.name} cannot be booked by you.")


# --- learners changing their own bookings (S7) -------------------------------------------

LEARNER_ACTIONS = frozenset({Action.CANCEL, Action.RESCHEDULE})


class OutsideWindow(PermissionDenied):
    """Too late for a learner to change this booking themself; staff still can."""


def change_deadline(kind, now: datetime | None = None) -> datetime:
    """The earliest start a learner may still book, move or cancel by themself: the type's
    public booking window (A4: minimum notice, disabled window, earliest day), from ``now``."""
    from app.admin.settings import all_settings
    from app.bookings.availability import _window

    now = now or utcnow()
    window = _window(kind, all_settings(), "public")
    deadline = now + max(window.minimum_notice, window.disabled_window)
    if window.earliest_day > 0:
        first_day = now.astimezone(window.zone).date() + timedelta(days=window.earliest_day)
        deadline = max(deadline, wall_to_utc(first_day, time(0), window.zone))
    return deadline


def learner_refusal(user: User, booking: Booking, now: datetime | None = None) -> str | None:
    """Why the learner may not move or cancel ``booking`` themself, or None when they may:
    it is theirs (they are its learner), its type is bookable by learners, and it starts no
    earlier than the booking window allows."""
    if not user.is_learner or booking.learner_id != user.id:
        return "Only the booking's learner can change it."
    if not may_book_type(user, booking.booking_type, "learner"):
        return f"{booking.booking_type.name} bookings are arranged by staff; ask them to change it."
    if booking.starts_at < change_deadline(booking.booking_type, now):
        who = f" ({booking.owner.name})" if booking.owner else ""
        return (
            "It is too late to change this booking online. "
            f"Contact the person holding it{who} instead."
        )
    return None


def learner_may_change(user: User, booking: Booking, now: datetime | None = None) -> bool:
    return learner_refusal(user, booking, now) is None


def acts_as_learner(user: User | None, action: Action) -> bool:
    """Whether ``user`` changes a booking under the learner rule (S7). A learner always does,
    whatever the role matrix gives them: the rule of who may book a type holds everywhere."""
    return user is not None and user.is_learner and action in LEARNER_ACTIONS


def require_change(
    user: User | None, action: Action, booking: Booking, now: datetime | None = None
) -> None:
    """``require`` for a change of one booking, which a learner may also make to their own
    booking (cancel, reschedule) within the window: ``OutsideWindow`` when too late."""
    if not acts_as_learner(user, action):
        require(user, action, booking)
        return
    reason = learner_refusal(user, booking, now)
    if reason is None:
        return
    if booking.learner_id == user.id and may_book_type(user, booking.booking_type, "learner"):
        raise OutsideWindow(reason)
    raise PermissionDenied(reason)
