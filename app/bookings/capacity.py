"""Planning capacity (C5, seed 004): which bookings the screen lists and who could take one.

"Planning bookings" are those of booking types that need approval, while they are still
provisional or confirmed. Filters come from a query string and are untrusted: a value that
does not parse is dropped and reported, never an error page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.accounts.models import Role, User
from app.bookings import policy
from app.bookings.availability import candidate_people, unavailable_people
from app.bookings.models import Booking, BookingType, Status
from app.extensions import db
from app.scheduling.localtime import wall_to_utc

PLANNING_STATUSES = (Status.PROVISIONAL, Status.CONFIRMED)
LIMIT = 200


@dataclass
class Filters:
    status: str = ""
    agent: int | None = None
    type: int | None = None
    start: date | None = None
    end: date | None = None
    problems: list[str] = field(default_factory=list)

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments (for links that keep them)."""
        values = {
            "status": self.status,
            "agent": self.agent,
            "type": self.type,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def parse_filters(args) -> Filters:
    filters = Filters()
    status = args.get("status", "")
    if status in {s.value for s in PLANNING_STATUSES}:
        filters.status = status
    elif status:
        filters.problems.append(f"Unknown status “{status}” ignored.")
    filters.agent, filters.type = _int(args.get("agent")), _int(args.get("type"))
    for key, attr, label in (("from", "start", "From"), ("to", "end", "To")):
        raw = args.get(key, "")
        if not raw:
            continue
        try:
            setattr(filters, attr, date.fromisoformat(raw))
        except ValueError:
            filters.problems.append(f"{label} date “{raw}” is not a date (YYYY-MM-DD); ignored.")
    if filters.start and filters.end and filters.end < filters.start:
        filters.problems.append("The “to” date is before the “from” date: nothing can match.")
    return filters


def planning_query(actor: User):
    """Provisional and confirmed bookings of approval types that ``actor`` may see."""
    return (
        policy.visible_bookings(actor)
        .join(BookingType, BookingType.id == Booking.booking_type_id)
        .where(BookingType.requires_approval.is_(True), Booking.status.in_(PLANNING_STATUSES))
    )


def planning_bookings(actor: User, filters: Filters, zone: ZoneInfo) -> list[Booking]:
    """The screen's rows, soonest first; dates are whole days in the viewer's zone."""
    query = planning_query(actor)
    if filters.status:
        query = query.where(Booking.status == filters.status)
    if filters.agent:
        query = query.where(Booking.owner_id == filters.agent)
    if filters.type:
        query = query.where(Booking.booking_type_id == filters.type)
    if filters.start:
        query = query.where(Booking.starts_at >= _day_start(filters.start, zone))
    if filters.end:
        query = query.where(Booking.starts_at < _day_start(filters.end + timedelta(days=1), zone))
    query = (
        query.options(selectinload(Booking.owner), selectinload(Booking.learner))
        .order_by(Booking.starts_at, Booking.id)
        .limit(LIMIT)
    )
    return list(db.session.scalars(query).unique())


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return wall_to_utc(day, time(0), zone)


def chosen_bookings(actor: User, ids: list[int]) -> list[Booking] | None:
    """The planning bookings with these ids, in the given order; None if any id is not one
    the actor may see on this screen (the caller answers 404)."""
    if not ids:
        return []
    rows = {b.id: b for b in db.session.scalars(planning_query(actor).where(Booking.id.in_(ids)))}
    if set(ids) - rows.keys():
        return None
    return [rows[i] for i in dict.fromkeys(ids)]


def staff() -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .join(Role)
            .where(Role.is_staff.is_(True), User.active.is_(True))
            .order_by(User.name)
        )
    )


def pool(booking: Booking) -> list[User]:
    """Who might take this booking: the booking type's availability source (B6) when it names
    anyone, otherwise every active member of staff."""
    people = candidate_people(booking.booking_type, booking.learner) or staff()
    return [p for p in people if p.is_staff]


def free_agents(booking: Booking) -> list[User]:
    """Agents other than the owner who are free for this booking's time by the availability
    rules (working hours, window, time off, bookings and busy calendars, max per day)."""
    others = [p for p in pool(booking) if p.id != booking.owner_id]
    if not others:
        return []
    blocked = {
        p.id
        for p in unavailable_people(
            booking.booking_type, others, booking.starts_at, ignore_booking=booking
        )
    }
    return [p for p in others if p.id not in blocked]
