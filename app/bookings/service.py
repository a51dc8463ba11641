"""The rules of changing bookings. Every function here:

- checks the actor's permission (``actor=None`` is the system or a tokenised public flow),
- moves the status through ``lifecycle`` (illegal moves raise ``TransitionError``),
- keeps the people's holds right (no double booking, B5),
- writes an audit entry and outbox messages in the same transaction,
- flushes but never commits: the route or job that called it commits once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings import policy
from app.bookings.lifecycle import Action, TransitionError, next_status
from app.bookings.models import (
    HOLDING_STATUSES,
    Attendee,
    AttendeeRole,
    AuditEntry,
    Booking,
    BookingType,
    Hold,
    Status,
)
from app.database import begin_write, lock_people, lock_row, utcnow
from app.extensions import db
from app.outbox import emit


class BookingError(ValueError):
    """Input a booking cannot accept; the message is shown to the person as it is."""


class OutsideHoursError(BookingError):
    """A hand-picked time outside the usual (working hours, closed day, booking window):
    staff may still book it, but only by saying "book anyway" with a reason."""

    def __init__(self, reasons: list) -> None:
        self.reasons = reasons
        super().__init__(
            "This time is outside the usual: "
            + " ".join(r.text for r in reasons)
            + " Tick “Book anyway” and give a reason to book it all the same."
        )


class ConflictError(Exception):
    """Someone is already held at that time (B5)."""

    def __init__(self, people: list[str]) -> None:
        self.people = people
        names = ", ".join(people) if people else "Someone"
        super().__init__(f"{names} already has a booking at that time. Choose another time.")


class UnavailableError(ConflictError):
    """The time is outside someone's working hours, window or free time (slot-based booking)."""

    def __init__(self, people: list[str]) -> None:
        self.people = people
        Exception.__init__(
            self,
            f"{', '.join(people)} cannot take this booking at that time (outside working hours "
            "or the booking window, on leave, or busy). Choose another slot.",
        )


@dataclass(frozen=True)
class Guest:
    email: str
    name: str = ""


# --- reading ------------------------------------------------------------------------


def get_visible(actor: User, booking_id: int) -> Booking | None:
    """The booking if it exists and ``actor`` may see it; otherwise None (a 404, not a 403,
    so ids cannot be probed)."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not policy.can_view(actor, booking):
        return None
    return booking


def lock_booking(booking: Booking) -> Booking:
    """Make this transaction the booking's only writer and reload it (B7).

    Every change of an existing booking starts here, before it reads the status or anything
    else it decides on: concurrent requests for one booking then take turns, and each sees
    what the one before committed, so exactly one approval wins, a cancel and an approval
    give a legal B2 path, and the sequence counts every change. PostgreSQL takes the row lock
    (``SELECT ... FOR UPDATE``); SQLite's BEGIN IMMEDIATE already serialises writers.
    """
    lock_row(booking)
    return booking


# --- holds --------------------------------------------------------------------------


def _hold_period(booking: Booking) -> tuple[datetime, datetime]:
    kind = booking.booking_type
    return (
        booking.starts_at - timedelta(minutes=kind.buffer_before_minutes),
        booking.ends_at + timedelta(minutes=kind.buffer_after_minutes),
    )


def _conflicting_people(people: list[User], start: datetime, end: datetime, booking: Booking):
    if not people:
        return []
    query = (
        select(Hold.person_id)
        .where(
            Hold.person_id.in_([p.id for p in people]),
            Hold.active.is_(True),
            Hold.starts_at < end,
            Hold.ends_at > start,
        )
        .distinct()
    )
    if booking.id is not None:
        query = query.where(Hold.booking_id != booking.id)
    busy = set(db.session.scalars(query))
    return [p for p in people if p.id in busy]


def _sync_holds(booking: Booking) -> None:
    """Make the booking's holds match its people and time, or raise ``ConflictError``.

    On SQLite the caller holds the write lock (``begin_write``), so the re-check cannot race.
    On PostgreSQL ``lock_people`` makes concurrent writers for the same people take turns, so
    the re-check sees the winner's committed hold; the exclusion constraint stays the final
    word, and an insert that still slips past the check becomes the same ``ConflictError``.

    The hold changes are made *inside* the savepoint: ``begin_nested()`` flushes whatever is
    pending before it emits SAVEPOINT, so holds added before it would be inserted outside the
    savepoint, and a constraint violation would abort the whole transaction instead of just
    the savepoint (PostgreSQL race loser got ``PendingRollbackError``, not a conflict).
    """
    begin_write()
    people = booking.internal_people if booking.status in HOLDING_STATUSES else []
    lock_people(p.id for p in people)
    start, end = _hold_period(booking)
    clashes = _conflicting_people(people, start, end, booking)
    if clashes:
        raise ConflictError([p.name for p in clashes])
    names = [p.name for p in people]  # read now, not after a failed flush
    wanted = {p.id for p in people}
    try:
        with db.session.begin_nested():  # flushes the booking itself, which holds no time
            by_person = {h.person_id: h for h in booking.holds}
            for person_id, hold in by_person.items():
                if person_id not in wanted:
                    booking.holds.remove(hold)
            for person_id in wanted:
                hold = by_person.get(person_id)
                if hold is None:
                    booking.holds.append(Hold(person_id=person_id, starts_at=start, ends_at=end))
                else:
                    hold.starts_at, hold.ends_at, hold.active = start, end, True
            db.session.flush()
    except IntegrityError as exc:
        if "no_overlapping_holds" in str(exc.orig):
            raise ConflictError(names) from exc
        raise


def _release_holds(booking: Booking) -> None:
    for hold in booking.holds:
        hold.active = False


# --- audit and outbox ---------------------------------------------------------------


def _record(booking: Booking, actor: User | None, action: str, changes: dict, kind: str, **extra):
    db.session.add(
        AuditEntry(
            booking=booking, actor_id=actor.id if actor else None, action=action, changes=changes
        )
    )
    db.session.flush()
    emit(
        kind,
        booking_id=booking.id,
        status=booking.status,
        sequence=booking.sequence,
        actor_id=actor.id if actor else None,
        **extra,
    )


def _iso(value: datetime) -> str:
    return value.isoformat()


# --- how a booking meets: rules other features attach (the Teams package, issue [10]) ----

# Called inside the booking's write transaction after a booking is created, moved or its
# location changed, with ``organiser_email`` as the caller gave it (None: unchanged). A hook
# may raise ``BookingError`` to refuse the change (nothing is then committed); it returns
# True when it changed something of its own (an edit then counts as a change). Registered on
# import by ``app/teams/service.py``; bookings itself knows nothing of Teams.
MeetingHook = Callable[..., bool]
MEETING_HOOKS: list[MeetingHook] = []


def on_meeting_change(hook: MeetingHook) -> MeetingHook:
    MEETING_HOOKS.append(hook)
    return hook


# Narrow a type's location modes to those that work now (Teams needs its connection); the
# default mode of a booking made without one is the type's default only if it works.
MODE_FILTERS: list[Callable[[list[str]], list[str]]] = []


def working_modes(modes: list[str]) -> list[str]:
    for narrow in MODE_FILTERS:
        modes = narrow(modes)
    return list(modes)


def _meeting_changed(
    booking: Booking, actor: User | None, change: str, organiser_email: str | None = None
) -> bool:
    db.session.flush()
    changed = False
    for hook in MEETING_HOOKS:
        changed |= bool(hook(booking, actor, change=change, organiser_email=organiser_email))
    return changed


# --- creating -----------------------------------------------------------------------


PAST_LIMIT = timedelta(days=365)  # staff may record a booking up to a year after the fact


def _check_start(starts_at: datetime, booking_type: BookingType, actor: User | None) -> None:
    """Refuse a start no booking can sensibly have: without a zone, or, when a person chose it
    (staff, a learner, the API), more than a year ago or beyond the type's booking horizon
    (its own, else the organisation's). Far-off years are not just odd: the notifier cannot
    render year 1. System callers (``actor=None``: the public pages, which only offer slots
    inside the window, jobs and imports) choose no free-form dates."""
    from app.admin.settings import get_setting  # settings sit beside bookings, not below

    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        raise BookingError("The start time needs a time zone.")
    if actor is None:
        return
    now = utcnow()
    if starts_at < now - PAST_LIMIT:
        raise BookingError("A booking cannot start more than a year ago. Check the date.")
    days = booking_type.horizon_days
    if days is None:
        days = int(get_setting("booking_horizon_days"))
    if starts_at > now + timedelta(days=days):
        raise BookingError(
            f"A booking cannot start more than {days} days ahead (the booking horizon). "
            "Check the date."
        )


def _role_for(user: User, learner: User | None) -> str:
    if learner is not None and user.id == learner.id:
        return AttendeeRole.LEARNER
    if user.role.slug == "employer":
        return AttendeeRole.EMPLOYER
    return AttendeeRole.AGENT if user.is_staff else AttendeeRole.LEARNER


def create_booking(
    actor: User | None,
    booking_type: BookingType,
    starts_at: datetime,
    people: list[User],
    *,
    learner: User | None = None,
    guests: list[Guest] = (),
    location_mode: str | None = None,
    location_detail: str | None = None,
    title: str | None = None,
    description: str = "",
    rebook_of: Booking | None = None,
    rebook_kind: str | None = None,
    check_availability: bool = False,
    audience: str = "staff",
    hours_check: bool = False,
    book_anyway: str | None = None,
    organiser_email: str | None = None,
) -> Booking:
    """Book ``people`` (the first is the owner) for one slot of ``booking_type``.

    Provisional when the type needs approval, confirmed otherwise. Raises ``BookingError``,
    ``ConflictError`` or ``PermissionDenied`` and then has changed nothing.

    Holds always prevent double booking. Slot-based callers (the API, the public pages) also
    pass ``check_availability=True``: the people must be free by the same rules that offered
    the slot (working hours, window, busy calendars, max per day), re-checked here inside the
    write transaction. Staff booking by hand may book over an external busy block: the
    calendar shows that as a conflict (C3) rather than refusing it.

    Without ``location_mode`` the booking meets as the type's default mode; without a
    ``location_detail`` (None or blank) it carries the type's address or meeting details.
    Staff book only types bookable by staff (B1 "who may book it"); a resit or retake
    (``rebook_of``) of an existing booking keeps that booking's type.

    ``hours_check`` (the staff booking form) refuses a start in the past, and one outside the
    people's working hours, on a closed day or outside the booking window unless
    ``book_anyway`` gives a reason; the reasons and that note go into the audit trail.
    """
    begin_write()
    self_service = actor is not None and actor.is_learner
    if self_service:
        # S7: a learner books a type bookable by learners, for themself, at an offered time
        policy.require_book_type(actor, booking_type, "learner")
        check_availability, audience = True, "public"
    else:
        policy.require(actor, Perm.BOOKINGS_CREATE)
    _check_start(starts_at, booking_type, actor)
    if hours_check and starts_at < utcnow():
        raise BookingError(_past_message(starts_at, actor))
    if not booking_type.active:
        raise BookingError(f"{booking_type.name} is not bookable at the moment.")
    by_staff = actor is not None and actor.is_staff and not self_service and rebook_of is None
    if by_staff and not policy.may_book_type(actor, booking_type, "staff"):
        raise policy.PermissionDenied(
            f"{booking_type.name} cannot be booked by staff: it is offered to "
            f"{' and '.join(booking_type.bookable_by or ['nobody'])} only."
        )
    location_mode, location_detail = _location(booking_type, location_mode, location_detail)
    people = list(dict.fromkeys(people))  # keep order, drop repeats
    if self_service:
        _check_learner_booking(actor, booking_type, people, learner, guests)
    if not people:
        raise BookingError("Choose at least one person to hold the booking.")
    if any(not p.active for p in people):
        raise BookingError("A chosen person's account is disabled.")
    if actor is not None and not self_service and any(p.id != actor.id for p in people):
        policy.require(actor, Perm.BOOKINGS_ASSIGN)
    if location_mode not in booking_type.location_modes:
        raise BookingError("That location is not offered for this booking type.")
    if check_availability:
        _require_available(booking_type, people, starts_at, audience)
    outside = {}
    if hours_check:
        outside = _check_outside(actor, booking_type, people, starts_at, book_anyway)

    booking = Booking(
        booking_type=booking_type,
        status=Status.PROVISIONAL if booking_type.requires_approval else Status.CONFIRMED,
        title=title or booking_type.name,
        description=description,
        starts_at=starts_at,
        ends_at=starts_at + booking_type.duration,
        location_mode=location_mode,
        location_detail=location_detail,
        owner_id=people[0].id,
        learner_id=learner.id if learner else None,
        created_by_id=actor.id if actor else None,
        rebook_of=rebook_of,
        rebook_kind=rebook_kind,
        planned_otj_minutes=booking_type.planned_otj_minutes,  # off-the-job plan (seed 001)
    )
    everyone = people + ([learner] if learner and learner not in people else [])
    for person in everyone:
        booking.attendees.append(
            Attendee(user_id=person.id, user=person, role=_role_for(person, learner))
        )
    for guest in guests:
        booking.attendees.append(
            Attendee(email=_clean_email(guest.email), name=guest.name, role=AttendeeRole.GUEST)
        )
    db.session.add(booking)
    _sync_holds(booking)
    _meeting_changed(booking, actor, "created", organiser_email)
    _record(
        booking,
        actor,
        "created",
        {
            "status": [None, booking.status],
            "starts_at": [None, _iso(booking.starts_at)],
            "people": [None, [p.name for p in everyone]],
            **outside,
        },
        "booking.created",
    )
    return booking


def _past_message(starts_at: datetime, actor: User | None) -> str:
    local = starts_at.astimezone(actor.zone) if actor is not None else starts_at
    return f"{local:%d %B %Y, %H:%M} has already passed: choose a time from now on."


def _check_outside(
    actor: User | None,
    booking_type: BookingType,
    people: list[User],
    starts_at: datetime,
    book_anyway: str | None,
) -> dict:
    """The staff form's rule: never in the past; outside the usual only with a reason. Returns
    what the audit entry records about it (nothing for an ordinary time)."""
    from app.bookings.availability import outside_reasons

    zone = actor.zone if actor is not None else None
    reasons = outside_reasons(booking_type, people, starts_at, zone or starts_at.tzinfo)
    if any(r.code == "past" for r in reasons):
        raise BookingError(_past_message(starts_at, actor))
    if not reasons:
        return {}
    note = (book_anyway or "").strip()
    if not note:
        raise OutsideHoursError(reasons)
    return {
        "outside_usual_times": [None, [r.text for r in reasons]],
        "book_anyway_reason": [None, note[:500]],
    }


def _check_learner_booking(
    actor: User, booking_type: BookingType, people: list[User], learner, guests
) -> None:
    """A learner's own booking: they are its learner, and it is held by one person the
    type's availability source offers them (B6); nobody else is brought along."""
    from app.bookings.availability import candidate_people

    if learner is None or learner.id != actor.id:
        raise policy.PermissionDenied("Learners can only book for themselves.")
    if guests:
        raise BookingError("Guests cannot be added to a booking you make for yourself.")
    offered = {p.id for p in candidate_people(booking_type, actor)}
    if len(people) != 1 or people[0].id not in offered:
        raise BookingError(
            "The person who takes your booking is chosen for you: choose one of the times offered."
        )


def _location(kind: BookingType, mode: str | None, detail: str | None) -> tuple[str, str]:
    """The booking's location mode and detail, the type's filling what is not given: the
    type's address or meeting details of the chosen mode (``types.detail_for``); a booking
    meeting another way never gets the default mode's detail."""
    from app.bookings.types import default_location, detail_for

    default_mode, _ = default_location(kind)
    if not mode and default_mode not in working_modes(kind.location_modes or []):
        default_mode = (working_modes(kind.location_modes or []) or [default_mode])[0]
    mode = mode or default_mode
    if not (detail or "").strip():
        detail = detail_for(kind, mode)  # the mode's own address or link, never another's
    return mode, detail


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in email):
        # CR/LF and other control characters would break mail headers and calendar files
        raise BookingError(
            "That is not a valid email address: it contains spaces, line breaks or "
            "control characters."
        )
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise BookingError(f"{email or 'An empty address'} is not a valid email address.")
    return email


def _require_available(
    booking_type: BookingType,
    people: list[User],
    starts_at: datetime,
    audience: str,
    booking: Booking | None = None,
) -> None:
    from app.bookings.availability import unavailable_people

    blocked = unavailable_people(
        booking_type, people, starts_at, audience=audience, ignore_booking=booking
    )
    if blocked:
        raise UnavailableError([p.name for p in blocked])


# --- lifecycle actions --------------------------------------------------------------


def _transition(actor: User | None, booking: Booking, action: Action, kind: str) -> Booking:
    lock_booking(booking)
    policy.require_change(actor, action, booking)
    old = booking.status
    booking.status = next_status(old, action)
    booking.sequence += 1
    if booking.status in HOLDING_STATUSES:
        _sync_holds(booking)
    else:
        _release_holds(booking)
    _record(booking, actor, kind.split(".", 1)[1], {"status": [old, booking.status]}, kind)
    return booking


def approve(actor: User | None, booking: Booking) -> Booking:
    return _transition(actor, booking, Action.APPROVE, "booking.approved")


def reject(actor: User | None, booking: Booking) -> Booking:
    return _transition(actor, booking, Action.REJECT, "booking.rejected")


def cancel(actor: User | None, booking: Booking) -> Booking:
    return _transition(actor, booking, Action.CANCEL, "booking.cancelled")


def complete(actor: User | None, booking: Booking, now: datetime | None = None) -> Booking:
    lock_booking(booking)  # the status and start checked below are the ones changed
    next_status(booking.status, Action.COMPLETE)  # a status error outranks a timing one
    if booking.starts_at > (now or utcnow()):
        raise BookingError("A booking cannot be completed before it starts.")
    return _transition(actor, booking, Action.COMPLETE, "booking.completed")


def no_show_from(booking: Booking) -> datetime:
    """When a booking may be marked a no-show: its start plus the maximum waiting time (the
    organisation setting), so nobody is marked absent while they may still be joining."""
    from app.admin.settings import get_setting  # settings sit beside bookings, not below

    return booking.starts_at + timedelta(minutes=int(get_setting("max_waiting_minutes")))


def mark_no_show(actor: User | None, booking: Booking, now: datetime | None = None) -> Booking:
    """The visitor did not come: confirmed -> no_show, once the waiting time is over."""
    lock_booking(booking)
    next_status(booking.status, Action.NO_SHOW)  # a status error outranks a timing one
    if no_show_from(booking) > (now or utcnow()):
        raise BookingError(
            "A booking can be marked as a no-show only after the maximum waiting time."
        )
    return _transition(actor, booking, Action.NO_SHOW, "booking.no_show")


def take_over(actor: User, booking: Booking) -> Booking:
    """An agent takes an unassigned booking (see ``app.bookings.unassigned``): they replace the
    departed owner, their time is held and checked like any booking's, and attendees are told
    of the change. Refused once someone else took it, or when the lane is switched off."""
    from app.bookings import unassigned  # it reads settings, which sit beside bookings

    lock_booking(booking)
    if not (unassigned.lane_enabled() and unassigned.may_take(actor)):
        raise policy.PermissionDenied("You do not have permission to do that.")
    if not unassigned.is_unassigned(booking):
        raise BookingError("Someone has already taken this booking.")
    _require_available(booking.booking_type, [actor], booking.starts_at, "staff", booking)
    old = booking.owner.name if booking.owner else None
    for attendee in list(booking.attendees):
        if attendee.user_id is not None and attendee.user_id == booking.owner_id:
            booking.attendees.remove(attendee)
    if not any(a.user_id == actor.id for a in booking.attendees):
        booking.attendees.append(
            Attendee(user_id=actor.id, user=actor, role=_role_for(actor, booking.learner))
        )
    booking.owner_id, booking.owner = actor.id, actor
    booking.sequence += 1
    _sync_holds(booking)
    _record(booking, actor, "taken", {"owner": [old, actor.name]}, "booking.updated")
    return booking


def reschedule(
    actor: User | None,
    booking: Booking,
    starts_at: datetime,
    *,
    check_availability: bool = False,
    audience: str = "staff",
) -> Booking:
    """Move the booking, keeping its length. Confirmed stays confirmed (B2).

    ``check_availability`` as for ``create_booking``; the booking's own time does not count
    against it."""
    lock_booking(booking)
    policy.require_change(actor, Action.RESCHEDULE, booking)
    if policy.acts_as_learner(actor, Action.RESCHEDULE):
        check_availability, audience = True, "public"  # only to an offered time (S7)
    next_status(booking.status, Action.RESCHEDULE)
    _check_start(starts_at, booking.booking_type, actor)
    if starts_at == booking.starts_at:
        raise BookingError("The booking is already at that time.")
    if check_availability:
        holders = [a.user for a in booking.attendees if a.user and a.user.is_staff]
        _require_available(booking.booking_type, holders, starts_at, audience, booking)
    old_start, length = booking.starts_at, booking.ends_at - booking.starts_at
    booking.starts_at, booking.ends_at = starts_at, starts_at + length
    booking.sequence += 1
    _sync_holds(booking)
    _meeting_changed(booking, actor, "rescheduled")
    kind = "booking.rescheduled" if booking.status == Status.CONFIRMED else "booking.updated"
    _record(
        booking,
        actor,
        "rescheduled",
        {"starts_at": [_iso(old_start), _iso(booking.starts_at)]},
        kind,
    )
    return booking


EDITABLE_STATUSES = frozenset({Status.PROVISIONAL, Status.CONFIRMED})
LOCATION_DETAIL_MAX = 500


def update_details(
    actor: User | None,
    booking: Booking,
    *,
    description: str | None = None,
    location_detail: str | None = None,
    location_mode: str | None = None,
    organiser_email: str | None = None,
) -> Booking:
    """Edit the booking's free text and how it meets (``None`` leaves a field as it is).

    An edit is a change people are told about: the sequence goes up, the audit records old and
    new values and "booking.updated" is emitted. Setting the values it already has records
    nothing, so repeating the same edit is harmless.
    """
    lock_booking(booking)
    policy.require(actor, Action.RESCHEDULE, booking)  # editing is bookings.edit
    if booking.status not in EDITABLE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be edited.")
    if location_detail is not None and len(location_detail) > LOCATION_DETAIL_MAX:
        raise BookingError(f"The location may be at most {LOCATION_DETAIL_MAX} characters.")
    if location_mode is not None and location_mode not in booking.booking_type.location_modes:
        raise BookingError(f"{booking.booking_type.name} cannot take place that way.")
    changes = {}
    fields = (
        ("description", description),
        ("location_detail", location_detail),
        ("location_mode", location_mode),
    )
    for field, value in fields:
        if value is not None and value != getattr(booking, field):
            changes[field] = [getattr(booking, field), value]
            setattr(booking, field, value)
    if "location_mode" in changes or organiser_email is not None:
        own = _meeting_changed(booking, actor, "location", organiser_email)
        if own and not changes:
            changes["organiser_email"] = [None, organiser_email.strip().lower()]
    if not changes:
        return booking
    booking.sequence += 1
    _record(booking, actor, "updated", changes, "booking.updated")
    return booking


def reassign(
    actor: User | None,
    booking: Booking,
    new_agent: User,
    *,
    check_availability: bool = False,
    audience: str = "staff",
) -> Booking:
    """Hand the booking to another agent (C5): owner, hold and attendee row move together.

    Needs ``bookings.assign``. Refused with ``ConflictError`` when the new agent is already
    held at that time; with ``check_availability`` (the capacity screen) also when they are
    not free by the availability rules (``UnavailableError``). The old owner stops attending
    and is told ("attendee.removed"); the new one is invited ("attendee.added").
    """
    lock_booking(booking)
    policy.require(actor, Perm.BOOKINGS_ASSIGN, booking)
    if booking.status not in EDITABLE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be reassigned.")
    if new_agent is None or not new_agent.active or not new_agent.is_staff:
        raise BookingError("Choose an active member of staff to take the booking.")
    if new_agent.id == booking.owner_id:
        raise BookingError(f"{new_agent.name} already holds this booking.")
    if check_availability:
        _require_available(booking.booking_type, [new_agent], booking.starts_at, audience, booking)
    old_owner = booking.owner
    old_row = next((a for a in booking.attendees if a.user_id == booking.owner_id), None)
    who = None
    if old_row is not None:
        who = {"user_id": old_row.user_id, "email": old_row.email, "name": old_row.display_name}
        booking.attendees.remove(old_row)
    new_row = next((a for a in booking.attendees if a.user_id == new_agent.id), None)
    invited = new_row is None
    if invited:
        new_row = Attendee(user_id=new_agent.id, user=new_agent, role=AttendeeRole.AGENT)
        booking.attendees.append(new_row)
    booking.owner = new_agent
    booking.sequence += 1
    _sync_holds(booking)
    _record(
        booking,
        actor,
        "reassigned",
        {"owner": [old_owner.name if old_owner else None, new_agent.name]},
        "attendee.removed",
        attendee=who,
    )
    if invited:
        emit(
            "attendee.added",
            booking_id=booking.id,
            status=booking.status,
            sequence=booking.sequence,
            actor_id=actor.id if actor else None,
            attendee_id=new_row.id,
        )
    return booking


# --- many at once (the capacity screen) ----------------------------------------------


BULK_ACTIONS = {Action.APPROVE: approve, Action.REJECT: reject}


@dataclass(frozen=True)
class BulkFailure:
    booking_id: int
    title: str
    message: str


class BulkError(Exception):
    """At least one booking of a bulk action could not change; the caller rolls back all."""

    def __init__(self, failures: list[BulkFailure]) -> None:
        self.failures = failures
        super().__init__(
            f"{len(failures)} of the chosen bookings cannot be changed, so none were changed."
        )


def bulk_transition(actor: User | None, bookings: list[Booking], action: Action) -> list[Booking]:
    """Approve or reject several bookings: all of them, or none (C5).

    The person confirmed one list, so doing only part of it would surprise them. Every
    booking is tried (each in its own savepoint, through the same function as a single
    action), so the ``BulkError`` names every booking that failed and why, not just the
    first; the caller then rolls the whole transaction back and nothing has changed.

    All the bookings are locked first, in id order, so two bulk actions over overlapping
    lists wait for each other instead of deadlocking.
    """
    begin_write()
    change = BULK_ACTIONS.get(action)
    if change is None:
        raise BookingError("Only approve and reject can be done to several bookings at once.")
    if not bookings:
        raise BookingError("Choose at least one booking.")
    for booking in sorted(bookings, key=lambda b: b.id):
        lock_booking(booking)
    failures = []
    for booking in bookings:
        booking_id, title = booking.id, booking.title
        try:
            with db.session.begin_nested():
                change(actor, booking)
        except (TransitionError, BookingError, ConflictError, policy.PermissionDenied) as exc:
            failures.append(BulkFailure(booking_id, title, str(exc)))
    if failures:
        raise BulkError(failures)
    return bookings


def rebook(
    actor: User | None, original: Booking, starts_at: datetime, kind: str = "resit"
) -> Booking:
    """A resit or retake (B4): a new booking linked to the original, which stays as it was.
    The original is locked: its status decides whether it may be rebooked."""
    lock_booking(original)
    if kind not in {"resit", "retake"}:
        raise BookingError("A rebooking is either a resit or a retake.")
    policy.require(actor, Action.REBOOK, original)
    next_status(original.status, Action.REBOOK)
    people = [a.user for a in original.attendees if a.user and a.user_id != original.learner_id]
    guests = [Guest(a.email, a.name) for a in original.attendees if a.user is None]
    new = create_booking(
        actor,
        original.booking_type,
        starts_at,
        people,
        learner=original.learner,
        guests=guests,
        location_mode=original.location_mode,
        location_detail=original.location_detail,
        title=f"{original.booking_type.name} ({kind})",
        description=original.description,
        rebook_of=original,
        rebook_kind=kind,
    )
    db.session.add(
        AuditEntry(
            booking=original,
            actor_id=actor.id if actor else None,
            action="rebooked",
            changes={"rebooked_as": [None, new.id], "kind": [None, kind]},
        )
    )
    db.session.flush()
    return new


# --- attendees ----------------------------------------------------------------------


def add_attendee(
    actor: User | None,
    booking: Booking,
    *,
    user: User | None = None,
    guest: Guest | None = None,
    role: str | None = None,
) -> Attendee:
    """Add a person (held from then on, like every internal attendee) or an outside guest.

    Changing who attends is an edit (``bookings.edit``). Putting someone else's time on the
    booking is assigning them as well: it needs ``bookings.assign``, exactly as booking them
    in the first place does, except for the booking's own learner, whom creating it never
    needed that for. A guest takes nobody's time.
    """
    lock_booking(booking)
    policy.require(actor, Action.RESCHEDULE, booking)  # changing who attends is an edit
    if booking.status not in {Status.PROVISIONAL, Status.CONFIRMED}:
        raise BookingError(f"Attendees of a {booking.status} booking cannot change.")
    if (user is None) == (guest is None):
        raise BookingError("Add either a person or a guest email.")
    if user is not None and actor is not None and user.id not in {actor.id, booking.learner_id}:
        policy.require(actor, Perm.BOOKINGS_ASSIGN)
    if user is not None:
        if any(a.user_id == user.id for a in booking.attendees):
            raise BookingError(f"{user.name} is already attending.")
        attendee = Attendee(
            user_id=user.id, user=user, role=role or _role_for(user, booking.learner)
        )
    else:
        email = _clean_email(guest.email)
        if any(a.email == email for a in booking.attendees):
            raise BookingError(f"{email} is already attending.")
        attendee = Attendee(email=email, name=guest.name, role=role or AttendeeRole.GUEST)
    booking.attendees.append(attendee)
    booking.sequence += 1
    _sync_holds(booking)
    _record(
        booking,
        actor,
        "attendee_added",
        {"attendees": [None, attendee.display_name]},
        "attendee.added",
        attendee_id=attendee.id,
    )
    return attendee


def remove_attendee(actor: User | None, booking: Booking, attendee: Attendee) -> None:
    lock_booking(booking)
    policy.require(actor, Action.RESCHEDULE, booking)
    if attendee not in booking.attendees:  # another booking's, or removed meanwhile
        raise BookingError("That person is not attending this booking.")
    if booking.status not in {Status.PROVISIONAL, Status.CONFIRMED}:
        raise BookingError(f"Attendees of a {booking.status} booking cannot change.")
    if attendee.user_id is not None and attendee.user_id == booking.owner_id:
        raise BookingError("The booking's owner cannot be removed; reassign it first.")
    who = {"user_id": attendee.user_id, "email": attendee.email, "name": attendee.display_name}
    booking.attendees.remove(attendee)
    booking.sequence += 1
    _sync_holds(booking)
    _record(
        booking,
        actor,
        "attendee_removed",
        {"attendees": [who["name"], None]},
        "attendee.removed",
        attendee=who,
    )
