"""Issue [14]: the bulk availability loader answers exactly what the loader before it did.

``bench/legacy_availability.py`` keeps the loader as it was before the change (ORM rows, a
converter per value, every busy block within a day of the range). On seeded, varied data
(people in London, New York, Berlin and Kolkata with split shifts, weekend work, the
organisation's default week, overrides, time off, blocks of every status at odd seconds,
active and released holds of two booking types, buffers, grids, a day limit, the March clock
change, "now" inside the range, both audiences, a booking being moved, calendars used or
not) both must give the same slots, the same free time per person, the same loads and the
same day counts (where the type has a daily maximum: without one they cannot matter and the
new loader does not read them).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from sqlalchemy import insert

from app.accounts import hours
from app.accounts.models import DateOverride, TimeOff, User
from app.admin.settings import set_setting
from app.bookings import availability
from app.bookings.models import Booking, BookingType, Hold
from app.connections.models import BusyBlock, BusyStatus
from app.database import begin_write
from app.extensions import db
from app.scheduling.slots import find_slots, free_intervals
from bench.legacy_availability import load_context as legacy_load_context

START = datetime(2030, 3, 25, 0, 0, tzinfo=UTC)  # a Monday; London moves its clocks on the 31st
ZONES = ("Europe/London", "America/New_York", "Europe/Berlin", "Asia/Kolkata")
STATUSES = tuple(s.value for s in BusyStatus)


def _populate(rng: random.Random, factory) -> tuple[list[int], list[int], list[int]]:
    """Six people, two booking types, and their hours, overrides, time off, blocks and holds.
    Returns the people's ids, the booking types' ids and the bookings' ids."""
    people = [factory.user("agent", name=f"Agent {n}", timezone=ZONES[n % 4]) for n in range(6)]
    kinds = [
        factory.booking_type(
            name=f"Kind {n}",
            duration_minutes=rng.choice((30, 45, 60)),
            slot_interval_minutes=rng.choice((None, 15, 30)),
            buffer_before_minutes=rng.choice((0, 10, 15)),
            buffer_after_minutes=rng.choice((0, 5, 20)),
            max_per_day=rng.choice((None, 1, 2)),
            horizon_days=3650,
        )
        for n in range(2)
    ]
    begin_write()
    blocks, bookings, holds = [], [], []
    for n, person in enumerate(people):
        user = db.session.get(User, person.id)
        if n != 5:  # the last one keeps the organisation's default week
            days = range(7) if n == 4 else range(5)
            shifts = (
                [(clock(8), clock(12)), (clock(13), clock(17, 30))]
                if n % 2
                else [(clock(9), clock(17))]
            )
            hours.set_weekly_hours(user, {d: shifts for d in days})
        for _ in range(2):
            day = (START + timedelta(days=rng.randrange(-2, 20))).date()
            off = rng.random() < 0.5
            db.session.add(
                DateOverride(
                    user_id=person.id,
                    day=day,
                    start_time=None if off else clock(rng.randrange(6, 11)),
                    end_time=None if off else clock(rng.randrange(14, 20)),
                )
            )
        leave = START + timedelta(days=rng.randrange(0, 18), hours=rng.randrange(0, 24))
        db.session.add(
            TimeOff(
                user_id=person.id,
                starts_at=leave,
                ends_at=leave + timedelta(hours=rng.randrange(2, 40)),
            )
        )
        for _ in range(80):
            at = START + timedelta(seconds=rng.randrange(-3 * 86400, 24 * 86400))
            blocks.append(
                {
                    "person_id": person.id,
                    "starts_at": at,
                    "ends_at": at + timedelta(minutes=rng.randrange(5, 240)),
                    "status": rng.choice(STATUSES),
                    "source": "test",
                }
            )
        for bucket in rng.sample(range(-24, 264), 25):  # two-hour buckets: no active overlap
            at = START + timedelta(hours=2 * bucket, minutes=5 * rng.randrange(0, 7))
            kind = rng.choice(kinds)
            active = rng.random() < 0.8
            booking_id = len(bookings) + 1
            bookings.append(
                {
                    "id": booking_id,
                    "uid": str(uuid.UUID(int=rng.getrandbits(128))),
                    "booking_type_id": kind.id,
                    "status": "confirmed" if active else "cancelled",
                    "title": "Held",
                    "starts_at": at,
                    "ends_at": at + timedelta(minutes=60),
                }
            )
            holds.append(
                {
                    "booking_id": booking_id,
                    "person_id": person.id,
                    "starts_at": at - timedelta(minutes=rng.choice((0, 10))),
                    "ends_at": at + timedelta(minutes=rng.choice((60, 75))),
                    "active": active,
                }
            )
    db.session.execute(insert(BusyBlock), blocks)
    db.session.execute(insert(Booking), bookings)
    db.session.execute(insert(Hold), holds)
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            db.text("SELECT setval('bookings_id_seq', :n)"), {"n": len(bookings) + 1}
        )
    db.session.commit()
    return [p.id for p in people], [k.id for k in kinds], [b["id"] for b in bookings]


def _answers(loader, kind, users, start, end, **options):
    context = loader(kind, users, start, end, **options)
    slots = find_slots(context.people, context.request)
    per_person = {
        p.id: (
            free_intervals(p, context.request),
            p.load,
            # Day counts only matter under a daily maximum, and only then are they loaded.
            dict(p.bookings_per_day) if kind.max_per_day is not None else None,
            p.available,
            p.hours,
        )
        for p in context.people
    }
    return slots, per_person, context.request, context.calendar_problems


@pytest.mark.parametrize("seed", range(6))
def test_bulk_loader_answers_what_the_old_loader_answered(app, factory, seed):
    rng = random.Random(seed)
    with app.app_context():
        people, kinds, bookings = _populate(rng, factory)
        if seed % 3 == 2:
            begin_write()
            set_setting("compute_availability", False)
            db.session.commit()
        users = [db.session.get(User, i) for i in people]
        offered = 0
        for round_ in range(6):
            kind = db.session.get(BookingType, rng.choice(kinds))
            start = START + timedelta(days=rng.randrange(-1, 10), minutes=rng.randrange(0, 1440))
            end = start + timedelta(days=rng.choice((1, 3, 7, 14)))
            moving = db.session.get(Booking, rng.choice(bookings)) if round_ % 2 else None
            options = {
                "audience": rng.choice(("public", "staff")),
                "now": start - timedelta(hours=rng.choice((-30, -2, 48))),
                "group_threshold": rng.random() < 0.5,
                "ignore_booking": moving,
            }
            chosen = rng.sample(users, rng.choice((1, 1, 2, 3, 6)))
            new = _answers(availability.load_context, kind, chosen, start, end, **options)
            old = _answers(legacy_load_context, kind, chosen, start, end, **options)
            assert new == old, (seed, round_)
            offered += len(new[0])
        assert offered, "no round offered anything: the comparison would prove little"


@pytest.mark.parametrize("in_runs", [True, False])
@pytest.mark.parametrize("shuffled", [True, False])
def test_rows_are_added_to_their_person_in_order_whatever_the_rows_order(in_runs, shuffled):
    """``_add_pairs`` adds a run of one person's rows as a slice: rows in any order (several
    runs of a person, interleaved people) still land, in their order, with their person."""
    rng = random.Random(14)
    base = datetime(2030, 3, 18, tzinfo=UTC)
    rows = [
        (person, base + timedelta(minutes=rng.randrange(10_000)), base + timedelta(days=9))
        for person in (7, 3, 11)
        for _ in range(rng.randrange(1, 40))
    ]
    if shuffled:
        rng.shuffle(rows)
    ids = tuple(r[0] for r in rows)
    texts = [tuple(f"{i.isoformat(' ', 'microseconds')}" for i in r[1:]) for r in rows]
    busy = defaultdict(list, {3: [(base, base)]})  # a person's holds, added before
    availability._add_pairs(
        busy, ids, [t[0] for t in texts], [t[1] for t in texts], in_runs=in_runs
    )
    expected = {3: [(base, base)], 7: [], 11: []}
    for person, start, end in rows:
        expected[person].append((start, end))
    assert dict(busy) == expected
    assert all(s.tzinfo is UTC for pairs in busy.values() for s, _ in pairs)


def test_people_with_the_same_week_and_zone_share_one_working_hours(app, factory):
    """The loader reads each person's week as one text and builds one ``WorkingHours`` per
    distinct week and zone: the engine then expands each once for the whole team."""
    office = {d: [(clock(9), clock(17))] for d in range(5)}
    split = {d: [(clock(8), clock(12)), (clock(13), clock(17))] for d in range(4)}
    plan = [  # (zone, week); None: the organisation's week
        ("Europe/London", office),
        ("Europe/London", office),
        ("Europe/London", split),
        ("America/New_York", office),
        ("Europe/London", None),
        ("Europe/London", None),
    ]
    people = [factory.user("agent", timezone=zone) for zone, _ in plan]
    kind = factory.booking_type()
    with app.app_context():
        begin_write()
        for person, (_, week) in zip(people, plan, strict=True):
            if week is not None:
                hours.set_weekly_hours(db.session.get(User, person.id), week)
        db.session.commit()
        users = [db.session.get(User, p.id) for p in people]
        context = availability.load_context(
            db.session.get(BookingType, kind.id), users, START, START + timedelta(days=7)
        )
    found = [p.hours for p in context.people]
    assert found[0] is found[1]
    assert len({id(h) for h in found}) == 4  # office London, split, office New York, default
    assert found[0].weekly == {d: ((clock(9), clock(17)),) for d in range(5)}
    assert found[2].weekly == {d: ((clock(8), clock(12)), (clock(13), clock(17))) for d in range(4)}
    assert found[3].weekly == found[0].weekly and found[3].zone.key == "America/New_York"
    assert found[4] is found[5] and 5 not in found[4].weekly  # Monday to Friday by default
