"""Availability loading as it was before issue [14], kept runnable for bench/bench_api.py.

A verbatim copy of ``app.bookings.availability.load_context`` at commit 22c48aa: ORM rows for
hours, overrides and time off, Core rows for holds and busy blocks with the per-value
datetime converter, ``Interval`` objects for every busy block, and SQL that keeps every busy
block within a day of the range. The benchmark swaps it in to compare old and new in one run.
Not used by the application.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select

from app.accounts.models import DateOverride, TimeOff, User, WorkingHoursRule
from app.admin.settings import all_settings
from app.bookings.availability import (
    Audience,
    Context,
    _window,
    _zone,
    organisation_week,
)
from app.bookings.models import Booking, BookingType, Hold
from app.connections.freshness import stale_people
from app.connections.models import BLOCKING_STATUSES, BusyBlock
from app.database import utcnow
from app.extensions import db
from app.scheduling.intervals import Interval
from app.scheduling.rules import WorkingHours
from app.scheduling.slots import Person, SlotRequest


def load_context(
    booking_type: BookingType,
    people: Sequence[User],
    start: datetime,
    end: datetime,
    *,
    audience: Audience = "staff",
    now: datetime | None = None,
    group_threshold: bool = True,
    ignore_booking: Booking | None = None,
) -> Context:
    """Build engine inputs for ``people`` over [start, end) in six queries, whatever the
    number of people."""
    now = now or utcnow()
    settings = all_settings()
    ids = [p.id for p in people]
    pad = timedelta(minutes=booking_type.buffer_before_minutes + booking_type.buffer_after_minutes)
    lo, hi = start - pad - timedelta(days=1), end + pad + timedelta(days=1)

    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for rule in db.session.scalars(
        select(WorkingHoursRule).where(WorkingHoursRule.user_id.in_(ids))
    ):
        weekly[rule.user_id][rule.weekday].append((rule.start_time, rule.end_time))
    overrides: dict[int, dict[date, list]] = defaultdict(lambda: defaultdict(list))
    for row in db.session.scalars(
        select(DateOverride).where(
            DateOverride.user_id.in_(ids),
            DateOverride.day >= (lo - timedelta(days=1)).date(),
            DateOverride.day <= (hi + timedelta(days=1)).date(),
        )
    ):
        ranges = overrides[row.user_id][row.day]
        if row.start_time is not None and row.end_time is not None:
            ranges.append((row.start_time, row.end_time))
    time_off: dict[int, list[Interval]] = defaultdict(list)
    for row in db.session.scalars(
        select(TimeOff).where(
            TimeOff.user_id.in_(ids), TimeOff.starts_at < hi, TimeOff.ends_at > lo
        )
    ):
        time_off[row.user_id].append(Interval(row.starts_at, row.ends_at))

    busy: dict[int, list[Interval]] = defaultdict(list)
    load: dict[int, int] = defaultdict(int)
    per_day: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    zones = {p.id: _zone(p.timezone) for p in people}
    # Core execution on the session's connection: these two can return thousands of rows,
    # and the ORM's per-row layer would cost more than the query itself.
    connection = db.session.connection()
    holds = connection.execute(
        select(
            Hold.person_id, Hold.starts_at, Hold.ends_at, Booking.booking_type_id, Booking.starts_at
        )
        .join(Booking, Booking.id == Hold.booking_id)
        .where(
            Hold.person_id.in_(ids),
            Hold.active.is_(True),
            Hold.starts_at < hi,
            Hold.ends_at > lo,
            Hold.booking_id != (ignore_booking.id if ignore_booking else -1),
        )
    )
    for person_id, h_start, h_end, type_id, b_start in holds:
        busy[person_id].append(Interval(h_start, h_end))
        load[person_id] += 1
        if type_id == booking_type.id:
            per_day[person_id][b_start.astimezone(zones[person_id]).date()] += 1
    # "Compute availability from calendars" off: linked calendars are still synced and shown
    # on the calendar, but neither their busy time nor their staleness decides any slot.
    use_calendars = bool(settings["compute_availability"])
    blocks = (
        connection.execute(
            select(BusyBlock.person_id, BusyBlock.starts_at, BusyBlock.ends_at).where(
                BusyBlock.person_id.in_(ids),
                BusyBlock.status.in_([s.value for s in BLOCKING_STATUSES]),
                BusyBlock.starts_at < hi,
                BusyBlock.ends_at > lo,
            )
        )
        if use_calendars
        else []
    )
    for person_id, b_start, b_end in blocks:
        busy[person_id].append(Interval(b_start, b_end))

    default_week = organisation_week(settings)
    problems = stale_people(ids, now) if use_calendars else {}
    engine_people = [
        Person(
            id=p.id,
            hours=WorkingHours(
                zone=zones[p.id],
                weekly={day: tuple(r) for day, r in weekly[p.id].items()}
                if p.id in weekly
                else default_week,
                overrides={day: tuple(r) for day, r in overrides[p.id].items()},
                time_off=tuple(time_off[p.id]),
            ),
            busy=tuple(busy[p.id]),
            load=load[p.id],
            bookings_per_day=dict(per_day[p.id]),
            available=p.active and p.id not in problems,  # deactivated people offer nothing
        )
        for p in people
    ]
    threshold = settings["slot_availability_percentage"] / 100 if group_threshold else 1.0
    request = SlotRequest(
        start=start,
        end=end,
        now=now,
        duration=booking_type.duration,
        window=_window(booking_type, settings, audience),
        interval=timedelta(minutes=booking_type.slot_interval_minutes)
        if booking_type.slot_interval_minutes
        else None,
        buffer_before=timedelta(minutes=booking_type.buffer_before_minutes),
        buffer_after=timedelta(minutes=booking_type.buffer_after_minutes),
        max_per_day=booking_type.max_per_day,
        threshold=threshold,
    )
    return Context(engine_people, request, problems)
