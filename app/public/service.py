"""The public booking flow: what visitors may book, and booking, confirming, releasing,
rescheduling and cancelling on their behalf (actor ``None``: the system acting for a
tokenised visitor). Flushes, never commits: routes and jobs commit once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, or_, select

from app.accounts.models import User
from app.admin.settings import all_settings
from app.bookings import policy
from app.bookings import service as bookings
from app.bookings.availability import candidate_people, slots_for
from app.bookings.lifecycle import TransitionError
from app.bookings.models import (
    HOLDING_STATUSES,
    AuditEntry,
    Booking,
    BookingType,
    Hold,
    LocationMode,
)
from app.database import lock_names, utcnow
from app.extensions import db
from app.outbox import emit
from app.public.models import LinkToken, PublicBooking
from app.public.tokens import LinkState, Purpose, issue, move_expiry, use_up
from app.urls import absolute_url

UTC = ZoneInfo("UTC")


class JustTaken(Exception):
    """The slot went to someone else (or is no longer offered)."""


class NotOffered(JustTaken):
    """The time was never one of the offered slots (nobody booked it: it is outside the
    hours or the window, or not on the slot grid); the visitor is told that, not "taken"."""


class OverDailyLimit(Exception):
    """The contact already has the maximum number of bookings on that day (S3)."""


class LinkUsed(Exception):
    """The link was used up, or its booking ended, by an earlier or concurrent request: the
    visitor gets the page a later click would get (``state``), whichever of two
    simultaneous clicks this was."""

    def __init__(self, state: LinkState = LinkState.USED) -> None:
        self.state = state
        super().__init__(state.value)


def zone_or_default(name: str | None, default: str = "UTC") -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate and candidate in _zone_names():
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


_ZONES: list[str] = []


def _zone_names() -> set[str]:
    return set(zone_names())


def zone_names() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))
    return _ZONES


def public_types() -> list[BookingType]:
    rows = db.session.scalars(
        select(BookingType).where(BookingType.active.is_(True)).order_by(BookingType.name)
    )
    return [t for t in rows if policy.may_book_type(None, t, "public")]  # who may book (B1)


def public_type(slug: str) -> BookingType | None:
    return next((t for t in public_types() if t.slug == slug), None)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def offered_slots(kind: BookingType, start: datetime, end: datetime):
    return slots_for(kind, start, end, audience="public")


def slot_at(kind: BookingType, starts_at: datetime):
    """The offered slot starting at ``starts_at``, or None."""
    for slot in offered_slots(kind, starts_at, starts_at + kind.duration):
        if slot.start == starts_at:
            return slot
    return None


def gone(kind: BookingType, starts_at: datetime) -> JustTaken:
    """Why a time is not bookable, truthfully: ``JustTaken`` when someone's booking holds one
    of the type's people then, else ``NotOffered`` (it never was a free time)."""
    people = [p.id for p in candidate_people(kind)]
    held = people and db.session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(
            Hold.active.is_(True),
            Hold.person_id.in_(people),
            Hold.starts_at < starts_at + kind.duration,
            Hold.ends_at > starts_at,
        )
    )
    return JustTaken() if held else NotOffered()


def _teams_available() -> bool:
    """Whether Teams meetings can be made now (the organisation's Microsoft 365 connection
    works): a visitor must not be offered a meeting nobody can create. Imported late, since
    ``app.teams`` builds on the booking service this module also imports."""
    from app.teams.service import teams_available

    return bool(teams_available())


def visitor_modes(kind: BookingType) -> list[str]:
    """The ways a visitor may choose to meet: the type's modes, the default first, Teams only
    while Teams meetings work."""
    modes = [str(m) for m in (kind.location_modes or [LocationMode.FACE_TO_FACE.value])]
    default = kind.default_location_mode if kind.default_location_mode in modes else modes[0]
    ordered = [default] + [m for m in modes if m != default]
    if LocationMode.TEAMS in ordered and not _teams_available():
        ordered.remove(LocationMode.TEAMS)
    return ordered


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None
    phone: str | None
    timezone: str


def _contact_bookings_on(contact: Contact, day_start: datetime, day_end: datetime):
    matches = []
    if contact.email:
        matches.append(func.lower(PublicBooking.contact_email) == contact.email.lower())
    if contact.phone:
        matches.append(PublicBooking.contact_phone == contact.phone)
    if not matches:
        return []
    return list(
        db.session.scalars(
            select(Booking)
            .join(PublicBooking, PublicBooking.booking_id == Booking.id)
            .where(
                or_(*matches),
                Booking.status.in_([s.value for s in HOLDING_STATUSES]),
                Booking.starts_at >= day_start,
                Booking.starts_at < day_end,
            )
            .order_by(Booking.starts_at)
        )
    )


def _lock_contact(contact: Contact) -> None:
    """Make concurrent bookings for one contact take turns from counting to commit (S3).

    The daily maximum counts rows that a concurrent request may be about to insert, so the
    count alone let one booking per web worker through. The keys are the ones the count
    matches on (the email in lower case, the phone), the phone reduced to its digits so
    differently written forms of one number also wait for each other.
    """
    names = []
    if contact.email:
        names.append("contact-email:" + contact.email.strip().lower())
    if contact.phone:
        names.append("contact-phone:" + "".join(ch for ch in contact.phone if ch.isdigit()))
    lock_names(names)


def manage_url(token: str) -> str:
    return absolute_url("public.manage", token=token)


def confirm_url(token: str) -> str:
    return absolute_url("public.confirm", token=token)


def book(
    kind: BookingType,
    starts_at: datetime,
    contact: Contact,
    now: datetime | None = None,
    location_mode: str | None = None,
):
    """Book the first free person of the slot for a visitor; returns ``(booking, record)``.

    ``location_mode`` is the visitor's choice among ``visitor_modes`` (None: the first);
    the booking carries that mode's address or link. Raises ``ValueError`` for a mode not
    offered, ``OverDailyLimit`` (after re-sending the manage links of that day's bookings
    through the outbox) or ``JustTaken`` (``NotOffered`` for a time never offered). Runs
    inside the request's write transaction, so the availability re-check in
    ``create_booking`` cannot race (B5).
    """
    now = now or utcnow()
    modes = visitor_modes(kind)
    if location_mode is None:
        location_mode = modes[0] if modes else None
    if location_mode not in modes:
        raise ValueError("Choose one of the ways to meet offered for this appointment.")
    settings = all_settings()
    org_zone = zone_or_default(str(settings["organisation_timezone"]))
    limit = int(settings["max_bookings_per_contact_per_day"])
    if limit > 0:
        _lock_contact(contact)  # before counting, held until commit
        lo, hi = local_day_bounds(starts_at.astimezone(org_zone).date(), org_zone)
        earlier = _contact_bookings_on(contact, lo, hi)
        if len(earlier) >= limit:
            resend_manage_links(earlier, contact)
            raise OverDailyLimit()
    slot = slot_at(kind, starts_at)
    if slot is None or not slot.people:
        raise gone(kind, starts_at)
    person = db.session.get(User, slot.people[0])
    guests = [bookings.Guest(contact.email, contact.name)] if contact.email else []
    try:
        with db.session.begin_nested():
            booking = bookings.create_booking(
                None,
                kind,
                starts_at,
                [person],
                guests=guests,
                location_mode=location_mode,
                check_availability=True,
                audience="public",
                description=f"Booked online by {contact.name}",
            )
    except bookings.ConflictError as exc:  # UnavailableError is one too
        raise JustTaken() from exc
    timeout = int(settings["confirmation_timeout_minutes"])
    record = PublicBooking(
        booking=booking,
        contact_name=contact.name,
        contact_email=contact.email,
        contact_phone=contact.phone,
        visitor_timezone=contact.timezone,
        pending_confirmation=timeout > 0,
        confirm_deadline=now + timedelta(minutes=timeout) if timeout > 0 else None,
    )
    db.session.add(record)
    manage = issue(booking, Purpose.MANAGE, booking.ends_at)
    payload = dict(
        booking_id=booking.id,
        email=contact.email,
        phone=contact.phone,
        name=contact.name,
        timezone=contact.timezone,
        manage_url=manage_url(manage),
    )
    if timeout > 0:
        confirm = issue(booking, Purpose.CONFIRM, record.confirm_deadline)
        emit(
            "public.confirmation_requested",
            confirm_url=confirm_url(confirm),
            deadline=record.confirm_deadline.isoformat(),
            **payload,
        )
    else:
        emit("public.booking_created", **payload)
    db.session.flush()
    return booking, record


def resend_manage_links(earlier: list[Booking], contact: Contact) -> None:
    """Fresh manage links for ``earlier`` bookings, sent to the contact on file, never shown."""
    for booking in earlier:
        record = db.session.get(PublicBooking, booking.id)
        token = issue(booking, Purpose.MANAGE, booking.ends_at)
        emit(
            "public.manage_link_resent",
            booking_id=booking.id,
            email=record.contact_email if record else None,
            phone=record.contact_phone if record else None,
            manage_url=manage_url(token),
        )


def confirm_by_link(row: LinkToken) -> PublicBooking:
    """Confirm the booking of a confirmation link and use the link up, once (S4, B7).

    The booking is locked first (the release job locks it too before it gives the slot
    away), then the link is used up by a conditional update: of two simultaneous clicks one
    confirms and the other gets ``LinkUsed``, as a later click would.
    """
    booking = bookings.lock_booking(row.booking)
    if not use_up(row):
        raise LinkUsed(LinkState.USED)
    record = db.session.get(PublicBooking, booking.id)
    if record is not None:
        db.session.refresh(record)  # read under the booking's lock
    if (
        record is None
        or booking.status not in {"provisional", "confirmed"}
        or not record.pending_confirmation
    ):
        raise LinkUsed(LinkState.EXPIRED)  # the caller rolls back: the link stays unused
    confirm(record)
    return record


def confirm(record: PublicBooking) -> None:
    record.pending_confirmation = False
    record.confirm_deadline = None
    db.session.add(AuditEntry(booking=record.booking, action="visitor_confirmed", changes={}))
    # The confirmation mail carries the calendar invitation and a fresh manage link (only
    # hashes of tokens are stored, so the first one cannot be sent again).
    manage = issue(record.booking, Purpose.MANAGE, record.booking.ends_at)
    emit(
        "public.booking_confirmed",
        booking_id=record.booking_id,
        email=record.contact_email,
        phone=record.contact_phone,
        name=record.contact_name,
        timezone=record.visitor_timezone,
        manage_url=manage_url(manage),
    )
    db.session.flush()


def cancel_by_link(row: LinkToken) -> Booking:
    """Cancel the booking of a manage link and use the link up, once (S5, B7).

    The booking is locked before its status is read and the link is used up by a
    conditional update, so of several simultaneous cancels one succeeds and the others get
    ``LinkUsed``, exactly as a click after it would.
    """
    booking = bookings.lock_booking(row.booking)
    if booking.status not in {"provisional", "confirmed"} or not use_up(row):
        raise LinkUsed()
    bookings.cancel(None, booking)
    db.session.flush()
    return booking


def reschedule(booking: Booking, starts_at: datetime) -> None:
    """Move to another offered slot; raises ``JustTaken`` when the slot is gone and
    ``LinkUsed`` when the booking was cancelled or ended meanwhile."""
    try:
        with db.session.begin_nested():
            bookings.reschedule(
                None, booking, starts_at, check_availability=True, audience="public"
            )
    except bookings.ConflictError as exc:
        raise JustTaken() from exc
    except TransitionError as exc:
        raise LinkUsed() from exc
    move_expiry(booking, Purpose.MANAGE, booking.ends_at)
    db.session.flush()


def release_unconfirmed(now: datetime | None = None) -> int:
    """Cancel visitor bookings whose confirmation deadline passed (S4); audited "released"."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(PublicBooking)
        .where(PublicBooking.pending_confirmation.is_(True), PublicBooking.confirm_deadline <= now)
        .order_by(PublicBooking.booking_id)  # locks in one order: two sweepers never deadlock
    ).all()
    released = 0
    for record in rows:
        booking = bookings.lock_booking(record.booking)
        db.session.refresh(record)  # confirmed meanwhile? read under the booking's lock
        deadline = record.confirm_deadline
        if not record.pending_confirmation or deadline is None or deadline > now:
            continue
        record.pending_confirmation = False
        for row in db.session.scalars(
            select(LinkToken).where(LinkToken.booking_id == booking.id, LinkToken.used_at.is_(None))
        ):
            row.used_at = now  # released: neither link works any more
        if booking.status in {"provisional", "confirmed"}:
            bookings.cancel(None, booking)
            db.session.add(
                AuditEntry(
                    booking=booking,
                    action="released",
                    changes={"reason": [None, "not confirmed in time"]},
                )
            )
            released += 1
    db.session.flush()
    return released
