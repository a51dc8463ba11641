"""Booking for oneself (S7): which types a person may book, the times offered to them, and
booking, moving and cancelling their own bookings through the ``bookings.service`` lifecycle
(so holds, audit and outbox messages happen exactly as for staff).

Learners are the people this is for: they book the types bookable by learners, for
themselves, from their assigned agent or the type's availability source (B6), inside the
public booking window (learners are not staff), and may move or cancel their own bookings
while the window still allows (``policy.learner_refusal``). Staff holding ``bookings.create``
may use the same pages for the types bookable by staff, with their own permissions: the
free person from the type's source (themself unless they may assign others) takes it.

The rules live in ``bookings.policy`` and ``bookings.service``; this module only chooses the
people and slots and turns a lost race into ``JustTaken``. Flushes, never commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings import policy, service
from app.bookings.availability import load_context, slots_for
from app.bookings.lifecycle import Action, allowed_actions
from app.bookings.models import HOLDING_STATUSES, Booking, BookingType, Hold, LocationMode
from app.database import MAX_ID, utcnow
from app.extensions import db
from app.scheduling.slots import Slot, find_slots

UPCOMING_LIMIT = 50


class JustTaken(Exception):
    """The chosen time is no longer offered (someone else took it, or the window moved)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "Sorry, that time was just taken or is no longer free. Choose another."
        )


def window_audience(user: User) -> str:
    """Which booking window applies: learners are not staff, so the public one (A4)."""
    return "staff" if user.is_staff else "public"


# --- what may be booked -----------------------------------------------------------------


def bookable_types(user: User) -> list[BookingType]:
    """The active booking types ``user`` may book for themself, by name."""
    rows = db.session.scalars(
        select(BookingType)
        .where(BookingType.active.is_(True))
        .order_by(BookingType.name, BookingType.id)
    )
    return [kind for kind in rows if policy.may_book_type(user, kind)]


def find_type(slug: str) -> BookingType | None:
    """An active booking type by slug (whoever may book it), or None."""
    return db.session.scalars(
        select(BookingType).where(BookingType.slug == slug, BookingType.active.is_(True))
    ).one_or_none()


# --- times offered ----------------------------------------------------------------------


def _own_people(user: User) -> list[User] | None:
    """Whose time a self-booking may take: the type's source (None), or only the person
    themself for staff who may not assign bookings to others."""
    if user.is_staff and not user.can(Perm.BOOKINGS_ASSIGN):
        return [user]
    return None


def holders(booking: Booking) -> list[User]:
    """The staff a booking holds: they must all be free at a new time (as the service checks)."""
    return [a.user for a in booking.attendees if a.user is not None and a.user.is_staff]


def offered_slots(
    user: User,
    kind: BookingType,
    start: datetime,
    end: datetime,
    *,
    booking: Booking | None = None,
    now: datetime | None = None,
) -> list[Slot]:
    """Free times of ``kind`` in [start, end) for ``user``: a new booking draws on the type's
    source for this learner (B6); moving ``booking`` keeps its people, its own time free."""
    audience = window_audience(user)
    if booking is None:
        learner = user if user.is_learner else None
        slots = slots_for(
            kind,
            start,
            end,
            audience=audience,
            learner=learner,
            people=_own_people(user),
            now=now,
        )
    else:
        people = holders(booking)
        if not people:
            return []
        context = load_context(
            kind,
            people,
            start,
            end,
            audience=audience,
            now=now,
            group_threshold=False,
            ignore_booking=booking,
        )
        slots = find_slots(context.people, context.request)
    if not user.is_learner or not slots:
        return slots
    return _without_own_holds(user, kind, slots, booking)


def _without_own_holds(
    user: User, kind: BookingType, slots: list[Slot], booking: Booking | None
) -> list[Slot]:
    """Drop the times the learner is already held at: they attend, so their hold would clash
    (B5) and the booking would be refused. Buffers count as for every hold."""
    before = timedelta(minutes=kind.buffer_before_minutes)
    after = timedelta(minutes=kind.buffer_after_minutes)
    lo, hi = slots[0].start - before, slots[-1].end + after
    query = select(Hold.starts_at, Hold.ends_at).where(
        Hold.person_id == user.id,
        Hold.active.is_(True),
        Hold.starts_at < hi,
        Hold.ends_at > lo,
    )
    if booking is not None:
        query = query.where(Hold.booking_id != booking.id)
    busy = db.session.execute(query).all()
    if not busy:
        return slots
    return [
        slot
        for slot in slots
        if not any(
            b_start < slot.end + after and b_end > slot.start - before for b_start, b_end in busy
        )
    ]


def slot_at(
    user: User, kind: BookingType, starts_at: datetime, booking: Booking | None = None
) -> Slot | None:
    for slot in offered_slots(user, kind, starts_at, starts_at + kind.duration, booking=booking):
        if slot.start == starts_at:
            return slot
    return None


# --- changing ---------------------------------------------------------------------------


def default_location(kind: BookingType) -> tuple[str, str]:
    modes = kind.location_modes or [LocationMode.FACE_TO_FACE]
    mode = kind.default_location_mode if kind.default_location_mode in modes else modes[0]
    working = service.working_modes(list(modes))  # Teams only while it works
    if mode not in working and working:
        mode = working[0]
    detail = "" if mode == LocationMode.TEAMS else (kind.location_detail or "")
    return mode, detail


def book(user: User, kind: BookingType, starts_at: datetime) -> Booking:
    """Book an offered time of ``kind`` for ``user``: the first free person of the slot
    (least-loaded first) holds it, a learner attends as its learner. Provisional when the
    type needs approval. Raises ``PermissionDenied`` (type not theirs) or ``JustTaken``."""
    policy.require_book_type(user, kind)
    slot = slot_at(user, kind, starts_at)
    if slot is None or not slot.people:
        raise JustTaken()
    person = db.session.get(User, slot.people[0])
    mode, detail = default_location(kind)
    try:
        with db.session.begin_nested():
            booking = service.create_booking(
                user,
                kind,
                starts_at,
                [person],
                learner=user if user.is_learner else None,
                location_mode=mode,
                location_detail=detail,
                check_availability=True,
                audience=window_audience(user),
            )
    except service.ConflictError as exc:  # UnavailableError is one too
        raise JustTaken() from exc
    return booking


def reschedule(user: User, booking: Booking, starts_at: datetime) -> Booking:
    """Move ``booking`` to an offered time; ``JustTaken`` when that time is gone."""
    refusal = change_refusal(user, booking, Action.RESCHEDULE)
    if refusal is not None:
        raise refusal
    if starts_at == booking.starts_at:
        raise service.BookingError("Your booking is already at that time. Choose another time.")
    try:
        with db.session.begin_nested():
            service.reschedule(
                user,
                booking,
                starts_at,
                check_availability=True,
                audience=window_audience(user),
            )
    except service.ConflictError as exc:
        raise JustTaken() from exc
    return booking


def cancel(user: User, booking: Booking) -> Booking:
    refusal = change_refusal(user, booking, Action.CANCEL)
    if refusal is not None:
        raise refusal
    return service.cancel(user, booking)


# --- own bookings -----------------------------------------------------------------------


def own_booking(user: User, booking_id: int) -> Booking | None:
    """The booking if it is ``user``'s own to manage here, else None (a 404: ids are not
    probed). A learner's own are those they are the learner of; staff's those they are part
    of and may see."""
    if not 0 < booking_id <= MAX_ID:
        return None
    booking = service.get_visible(user, booking_id)
    if booking is None:
        return None
    if user.is_learner:
        return booking if booking.learner_id == user.id else None
    return booking if booking.involves(user) else None


def change_refusal(
    user: User, booking: Booking, action: Action, now: datetime | None = None
) -> policy.PermissionDenied | None:
    """Why ``user`` may not ``action`` (cancel or reschedule) their ``booking`` here, as the
    exception to raise, or None when they may. Decides which buttons are shown too."""
    if action not in allowed_actions(booking.status):
        return policy.PermissionDenied(f"A {booking.status} booking cannot be changed.")
    if user.is_learner:
        reason = policy.learner_refusal(user, booking, now)
        if reason is None:
            return None
        mine = booking.learner_id == user.id
        if mine and policy.may_book_type(user, booking.booking_type, "learner"):
            return policy.OutsideWindow(reason)
        return policy.PermissionDenied(reason)
    if not policy.can(user, action, booking):
        return policy.PermissionDenied("You do not have permission to do that.")
    return None


def may_change(user: User, booking: Booking, action: Action) -> bool:
    return change_refusal(user, booking, action) is None


def upcoming(user: User, now: datetime | None = None) -> list[Booking]:
    """``user``'s own bookings still to come that are held (provisional or confirmed): a
    learner's as learner, staff's those they made."""
    now = now or utcnow()
    query = select(Booking).where(
        Booking.ends_at > now,
        Booking.status.in_([s.value for s in HOLDING_STATUSES]),
    )
    if user.is_learner:
        query = query.where(Booking.learner_id == user.id)
    else:
        query = query.where(or_(Booking.created_by_id == user.id, Booking.owner_id == user.id))
    query = query.order_by(Booking.starts_at, Booking.id).limit(UPCOMING_LIMIT)
    return list(db.session.scalars(query).unique())


def first_free_day(user: User, kind: BookingType, zone, booking: Booking | None = None):
    """The local date of the first time offered in the next nine weeks, or None."""
    now = utcnow()
    slots = offered_slots(user, kind, now, now + timedelta(days=63), booking=booking, now=now)
    return slots[0].start.astimezone(zone).date() if slots else None
