"""The booking form's live preview (C3): the chosen people's day, and whether a time clashes.

One row ("lane") per person: their Slotbook bookings and the busy blocks of their linked
calendars, titled by the C2 rule. The proposed time is checked the way the booking will be:
with the type's buffers against other bookings' holds (what the service refuses, B5) and
against busy blocks (which staff may book over, so it is shown, not refused). Free starts for
everyone chosen are offered as quick picks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.admin.settings import get_setting
from app.bookings import policy
from app.bookings.availability import outside_reasons, slots_for
from app.bookings.models import Booking, BookingType, Hold
from app.connections.freshness import stale_people
from app.connections.models import BLOCKING_STATUSES, BusyBlock
from app.connections.titles import busy_label
from app.extensions import db
from app.scheduling.localtime import wall_to_utc

EARLIEST_HOUR, LATEST_HOUR = 7, 19  # the preview shows at least this much of the day
QUICK_PICKS = 24


@dataclass
class Item:
    kind: str  # "booking", "busy" or "proposed"
    label: str
    start: datetime
    end: datetime
    status: str = ""
    conflict: bool = False


@dataclass
class Lane:
    person: User
    items: list[Item] = field(default_factory=list)
    proposed: Item | None = None
    conflicts: list[Item] = field(default_factory=list)
    calendar_problem: str | None = None  # why they offer no slots although they may be free


@dataclass
class DayPreview:
    day: date
    zone: ZoneInfo
    lanes: list[Lane]
    range_start: datetime
    range_end: datetime
    hours: list[tuple[int, float]]  # (local hour, left %)
    proposed: tuple[datetime, datetime] | None = None
    quick_picks: list[datetime] = field(default_factory=list)
    # Why the proposed time is not an ordinary one (past, closed day, outside hours or the
    # booking window): never called "free" then, and booking it needs "book anyway".
    outside: list = field(default_factory=list)

    @property
    def in_past(self) -> bool:
        return any(r.code == "past" for r in self.outside)

    @property
    def conflicts(self) -> list[tuple[User, Item]]:
        return [(lane.person, item) for lane in self.lanes for item in lane.conflicts]

    def left(self, item: Item) -> float:
        return round(self._offset(max(item.start, self.range_start)), 3)

    def width(self, item: Item) -> float:
        start = max(item.start, self.range_start)
        end = min(item.end, self.range_end)
        return round(max(self._offset(end) - self._offset(start), 0.6), 3)

    def _offset(self, instant: datetime) -> float:
        span = (self.range_end - self.range_start).total_seconds()
        return 100 * (instant - self.range_start).total_seconds() / span


def day_preview(
    viewer: User,
    booking_type: BookingType,
    people: list[User],
    day: date,
    starts_at: datetime | None = None,
    *,
    ignore_booking: Booking | None = None,
) -> DayPreview:
    """The preview of ``day`` (a date in the viewer's zone) for ``people``."""
    zone = viewer.zone
    people = list(dict.fromkeys(people))
    day_start = wall_to_utc(day, time(0), zone)
    day_end = wall_to_utc(day + timedelta(days=1), time(0), zone)
    problems = stale_people([p.id for p in people])
    lanes = {p.id: Lane(p, calendar_problem=problems.get(p.id)) for p in people}
    ids = list(lanes)

    held = db.session.execute(
        select(Hold.person_id, Hold.starts_at, Hold.ends_at, Booking)
        .join(Booking, Booking.id == Hold.booking_id)
        .where(
            Hold.person_id.in_(ids),
            Hold.active.is_(True),
            Hold.starts_at < day_end,
            Hold.ends_at > day_start,
            Hold.booking_id != (ignore_booking.id if ignore_booking else -1),
        )
        .order_by(Booking.starts_at)
    ).all()
    visible = _visible_ids(viewer, {row.Booking.id for row in held})
    hold_periods: dict[int, list[tuple[datetime, datetime, Item]]] = defaultdict(list)
    for person_id, h_start, h_end, booking in held:
        item = Item(
            "booking",
            booking.title if booking.id in visible else "Booked",
            booking.starts_at,
            booking.ends_at,
            status=booking.status,
        )
        lanes[person_id].items.append(item)
        hold_periods[person_id].append((h_start, h_end, item))

    show_details = bool(get_setting("show_event_details"))
    blocks = db.session.scalars(
        select(BusyBlock)
        .where(
            BusyBlock.person_id.in_(ids),
            BusyBlock.status.in_([s.value for s in BLOCKING_STATUSES]),
            BusyBlock.starts_at < day_end,
            BusyBlock.ends_at > day_start,
        )
        .order_by(BusyBlock.starts_at)
    ).all()
    for block in blocks:
        label = busy_label(block.status, block.source, block.title, show_details)
        lanes[block.person_id].items.append(
            Item("busy", label, block.starts_at, block.ends_at, status=block.status)
        )

    proposed = None
    if starts_at is not None:
        proposed = (starts_at, starts_at + booking_type.duration)
        padded = (
            starts_at - timedelta(minutes=booking_type.buffer_before_minutes),
            proposed[1] + timedelta(minutes=booking_type.buffer_after_minutes),
        )
        for lane in lanes.values():
            lane.proposed = Item("proposed", booking_type.name, *proposed)
            clashes = [
                item
                for h_start, h_end, item in hold_periods[lane.person.id]
                if h_start < padded[1] and h_end > padded[0]
            ] + [
                item
                for item in lane.items
                if item.kind == "busy" and item.start < padded[1] and item.end > padded[0]
            ]
            for item in clashes:
                item.conflict = True
            lane.conflicts = sorted(clashes, key=lambda i: i.start)
            lane.proposed.conflict = bool(clashes)
    for lane in lanes.values():
        lane.items.sort(key=lambda i: i.start)

    staff = [p for p in people if p.is_staff]
    slots = slots_for(booking_type, day_start, day_end, people=staff) if staff else []
    # The engine answers for staff (working hours, calendars); a learner chosen too must not
    # be held or busy either, or the pick would be refused or shown as a conflict.
    others = [lanes[p.id] for p in people if not p.is_staff]
    before = timedelta(minutes=booking_type.buffer_before_minutes)
    after = timedelta(minutes=booking_type.buffer_after_minutes)
    picks = [
        slot.start
        for slot in slots
        if not any(
            _overlaps(lane, hold_periods[lane.person.id], slot.start - before, slot.end + after)
            for lane in others
        )
    ][:QUICK_PICKS]

    range_start, range_end, hours = _range(day, zone, day_start, day_end, lanes.values(), proposed)
    outside = outside_reasons(booking_type, people, starts_at, zone) if starts_at else []
    return DayPreview(
        day, zone, list(lanes.values()), range_start, range_end, hours, proposed, picks, outside
    )


def _overlaps(lane: Lane, holds, start: datetime, end: datetime) -> bool:
    return any(h_start < end and h_end > start for h_start, h_end, _ in holds) or any(
        item.kind == "busy" and item.start < end and item.end > start for item in lane.items
    )


def _visible_ids(viewer: User, ids: set[int]) -> set[int]:
    if not ids or viewer.can(Perm.BOOKINGS_VIEW_ALL):
        return ids
    query = policy.visible_bookings(viewer).with_only_columns(Booking.id).where(Booking.id.in_(ids))
    return set(db.session.scalars(query))


def _range(day, zone, day_start, day_end, lanes, proposed):
    """The stretch of the day drawn: 07:00-19:00 local, widened to show everything."""
    instants = [i.start for lane in lanes for i in lane.items] + [
        i.end for lane in lanes for i in lane.items
    ]
    if proposed:
        instants += list(proposed)
    first, last = EARLIEST_HOUR, LATEST_HOUR
    for instant in instants:
        clipped = min(max(instant, day_start), day_end)
        local = clipped.astimezone(zone)
        if clipped == day_end:
            last = 24
            continue
        first = min(first, local.hour)
        last = max(last, local.hour + (1 if (local.minute or local.second) else 0))
    start = wall_to_utc(day, time(first), zone)
    end = day_end if last >= 24 else wall_to_utc(day, time(last), zone)
    span = (end - start).total_seconds()
    hours = []
    for hour in range(first, min(last, 24)):
        instant = wall_to_utc(day, time(hour), zone)
        hours.append((hour, round(100 * (instant - start).total_seconds() / span, 3)))
    return start, end, hours
