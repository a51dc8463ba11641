"""``flask demo seed``: a small training provider that looks real enough to click through.

Idempotent: it does nothing when the demo owner already exists. Everything is made from
fixed choices (a seeded RNG), so two runs on two machines give the same data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app.accounts.models import PLANNING_GROUP_SLUG, Group, LearnerProfile, User
from app.accounts.service import create_user, ensure_roles, find_user
from app.admin.settings import set_setting
from app.bookings import service
from app.bookings.models import BookingType, LocationMode, Status
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import DONE, PENDING, OutboxMessage

DEMO_PASSWORD = "slotbook-demo"  # noqa: S105 - printed by `make run`; demo data only
DEMO_SLOT_AVAILABILITY = 33  # per cent of a group that must be free for a slot (seed 002)
DEMO_LOGINS = [
    ("owner@demo.slotbook.test", "owner"),
    ("bookings@demo.slotbook.test", "booking manager"),
    ("amara.okafor@demo.slotbook.test", "agent"),
    ("learner01@demo.slotbook.test", "learner"),
]

AGENTS = [
    ("Amara Okafor", "Europe/London"),
    ("Ben Hughes", "Europe/London"),
    ("Chloe Patel", "Europe/London"),
    ("Dafydd Evans", "Europe/London"),
    ("Erin Walsh", "Europe/Dublin"),
    ("Farid Haddad", "Europe/London"),
    ("Grace Lin", "America/New_York"),
    ("Hamish Reid", "Europe/London"),
]
FIRST = [
    "Aisha",
    "Callum",
    "Demi",
    "Ethan",
    "Freya",
    "George",
    "Holly",
    "Isaac",
    "Jade",
    "Kian",
    "Leah",
    "Mason",
    "Niamh",
    "Owen",
    "Poppy",
    "Rhys",
    "Sana",
    "Theo",
    "Uma",
    "Violet",
    "Will",
    "Yasmin",
    "Zak",
    "Ava",
    "Brandon",
    "Cerys",
    "Dylan",
    "Ellie",
    "Finn",
    "Grace",
]
LAST = [
    "Ali",
    "Brown",
    "Clarke",
    "Davies",
    "Edwards",
    "Fraser",
    "Green",
    "Hall",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Morgan",
    "Nolan",
    "O'Brien",
    "Price",
    "Quinn",
    "Roberts",
    "Singh",
    "Taylor",
    "Usman",
    "Vaughan",
    "Wood",
    "Young",
    "Zhang",
    "Baker",
    "Cole",
    "Doyle",
    "Evans",
    "Ford",
]
EMPLOYERS = [
    ("Northgate Engineering", "Priya Shah"),
    ("Riverside Care Trust", "Tom Bell"),
    ("Harbour Digital", "Megan Lloyd"),
    ("Castle Retail Group", "Sam Whitaker"),
    ("Meadow Foods", "Joanna Kerr"),
]

TYPES = [
    dict(
        slug="planning-meeting",
        name="Planning meeting",
        duration_minutes=60,
        buffer_after_minutes=15,
        requires_approval=True,
        bookable_by=["learner", "staff"],
        location_modes=["teams", "remote", "face_to_face"],
        colour="#2457a7",
    ),
    dict(
        slug="assessment-component",
        name="Assessment component",
        duration_minutes=120,
        buffer_before_minutes=15,
        buffer_after_minutes=15,
        bookable_by=["staff"],
        location_modes=["face_to_face", "remote"],
        colour="#7a3fb0",
        max_per_day=2,
    ),
    dict(
        slug="review",
        name="Review",
        duration_minutes=45,
        bookable_by=["learner", "staff"],
        location_modes=["teams", "remote", "face_to_face"],
        colour="#1f7a45",
    ),
    dict(
        slug="public-appointment",
        name="Public appointment",
        description="Thirty minutes with an adviser about our apprenticeships, online or at "
        "our office.",
        duration_minutes=30,
        bookable_by=["public", "learner", "staff"],
        location_modes=["remote", "face_to_face"],
        face_to_face_detail="Slotbook Training, 1 Market Street, Leeds LS1 6DT",
        remote_detail="https://meet.example/public-desk",
        colour="#b0531f",
        availability_source="group",
    ),
]


def seed(today: datetime | None = None) -> str:
    """Create the demo organisation; return a summary, or "" if it already exists."""
    begin_write()
    ensure_roles()
    if find_user(DEMO_LOGINS[0][0]) is not None:
        return ""
    rng = random.Random(20261120)
    today = today or utcnow()

    create_user(DEMO_LOGINS[0][0], "Olivia Owner", "owner", DEMO_PASSWORD)
    create_user("admin@demo.slotbook.test", "Adam Admin", "administrator", DEMO_PASSWORD)
    manager = create_user(DEMO_LOGINS[1][0], "Bea Bookings", "booking-manager", DEMO_PASSWORD)
    agents = [
        create_user(
            f"{name.lower().replace(' ', '.')}@demo.slotbook.test",
            name,
            "agent",
            DEMO_PASSWORD,
            timezone=zone,
        )
        for name, zone in AGENTS
    ]
    mentors = [
        create_user(
            f"{mentor.split()[0].lower()}@{company.split()[0].lower()}.example",
            mentor,
            "employer",
            DEMO_PASSWORD,
        )
        for company, mentor in EMPLOYERS
    ]
    learners = []
    for i in range(30):
        learner = create_user(
            f"learner{i + 1:02d}@demo.slotbook.test",
            f"{FIRST[i]} {LAST[(i * 7) % len(LAST)]}",
            "learner",
            DEMO_PASSWORD,
        )
        employer = i % len(EMPLOYERS)
        db.session.add(
            LearnerProfile(
                user_id=learner.id,
                employer_name=EMPLOYERS[employer][0],
                assigned_agent_id=agents[i % len(agents)].id if i % 10 != 9 else None,
                workplace_mentor_id=mentors[employer].id,
                assessor_id=agents[(i + 3) % len(agents)].id,
            )
        )
        learners.append(learner)

    planning = _group(PLANNING_GROUP_SLUG, "Planning Meeting Bookings", agents[:5], system=True)
    public_desk = _group("public-desk", "Public desk", agents[5:], system=False)
    types = {}
    for spec in TYPES:
        kind = BookingType(**spec)
        if spec["slug"] == "public-appointment":
            kind.availability_group = public_desk
        db.session.add(kind)
        types[spec["slug"]] = kind
    db.session.flush()

    set_setting("public_scheduling_enabled", True)  # so /book shows something to try
    # A desk is staffed by whoever is free. At the default 100 % every member of a group must
    # be free at once, and the public desk (a London full-timer, a New Yorker and a Monday to
    # Wednesday morning part-timer) never is: /book offered no time at all. A third of the
    # group is any one of the desk's three agents, or two of the five planners.
    set_setting("slot_availability_percentage", DEMO_SLOT_AVAILABILITY)
    _working_time(rng, today, agents)
    count = _bookings(rng, today, manager, agents, learners, types)
    _quiet_outbox()
    return (
        f"{len(agents)} agents, {len(learners)} learners, {len(mentors)} employers, "
        f"{len(types)} booking types, {count} bookings, group {planning.name!r}"
    )


def _quiet_outbox() -> None:
    """Demo history is made up: nobody is to be mailed about hundreds of invented bookings.
    The seed's outbox rows are marked done (it only runs on an empty organisation)."""
    db.session.flush()
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == PENDING)
        .values(status=DONE, done_at=utcnow(), last_error="demo data: not delivered")
    )


def _working_time(rng, today: datetime, agents: list[User]) -> None:
    """Office hours for most, one part-timer, a day off, some leave and calendar busy time."""
    from app.accounts import hours
    from app.connections.models import BusyBlock, BusyStatus

    full = [(time(9), time(17))]
    for agent in agents[:-1]:
        hours.set_weekly_hours(agent, {day: full for day in range(5)})
    hours.set_weekly_hours(agents[-1], {day: [(time(9), time(13))] for day in range(3)})

    london = ZoneInfo("Europe/London")
    next_week = (today.astimezone(london) + timedelta(days=7 - today.weekday())).date()
    hours.set_override(agents[1], next_week, [])  # Ben: day off next Monday
    hours.set_override(agents[2], next_week + timedelta(days=2), [(time(12), time(16))])
    leave_start = datetime.combine(next_week + timedelta(days=1), time(0), tzinfo=london)
    hours.add_time_off(
        agents[3],
        leave_start.astimezone(UTC),
        (leave_start + timedelta(days=3)).astimezone(UTC),
        "Annual leave",
    )

    first_day = (today.astimezone(london) - timedelta(days=7)).date()
    for agent in agents:
        zone = ZoneInfo(agent.timezone)
        for offset in range(0, 28, 2):
            day = first_day + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            start = datetime.combine(day, time(rng.choice([8, 12, 16]), 30), tzinfo=zone)
            db.session.add(
                BusyBlock(
                    person_id=agent.id,
                    starts_at=start.astimezone(UTC),
                    ends_at=(start + timedelta(minutes=rng.choice([30, 60, 90]))).astimezone(UTC),
                    status=rng.choice([BusyStatus.BUSY, BusyStatus.BUSY, BusyStatus.TENTATIVE]),
                    source="demo",
                )
            )
    db.session.flush()


def _group(slug: str, name: str, members: list[User], system: bool) -> Group:
    group = db.session.scalars(select(Group).where(Group.slug == slug)).one_or_none()
    if group is None:
        group = Group(slug=slug, name=name, system=system)
        db.session.add(group)
    group.members = members
    return group


def _demo_mode(kind: BookingType, starts: datetime) -> str:
    """The type's first mode, unless that is Teams and a Teams meeting cannot be made for
    this time (no Microsoft 365 connection, or in the past / too soon): then the next one."""
    from app.teams import service as teams

    modes = teams.allowed_modes(kind.location_modes)
    if modes and modes[0] == LocationMode.TEAMS:
        soon = utcnow() + timedelta(hours=teams.min_lead_hours())
        if starts < soon:
            modes = [m for m in modes if m != LocationMode.TEAMS] or modes
    return modes[0]


def _bookings(rng, today, manager, agents, learners, types) -> int:
    """About three weeks either side of today, every status represented."""
    london = ZoneInfo("Europe/London")
    start_day = (today.astimezone(london) - timedelta(days=21)).date()
    made = 0
    for offset in range(42):
        day = start_day + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for agent in agents:
            for hour in rng.sample([9, 10, 11, 13, 14, 15], k=rng.choice([0, 1, 2])):
                kind = types[rng.choice(list(types))]
                learner = rng.choice(learners)
                starts = datetime.combine(day, time(hour, rng.choice([0, 30])), tzinfo=london)
                mode = _demo_mode(kind, starts)
                try:
                    with db.session.begin_nested():
                        booking = service.create_booking(
                            manager,
                            kind,
                            starts.astimezone(UTC),
                            [agent],
                            learner=learner if kind.slug != "public-appointment" else None,
                            location_mode=mode,
                            location_detail="https://meet.example/demo"
                            if mode != LocationMode.FACE_TO_FACE
                            else "Room 2, Head Office",
                        )
                        _age(rng, manager, booking, today)
                    made += 1
                except service.ConflictError:
                    continue
    return made


def _age(rng, actor, booking, today) -> None:
    """Move some bookings along their lifecycle so every status appears."""
    past = booking.ends_at < today
    roll = rng.random()
    if booking.status == Status.PROVISIONAL and (past or roll < 0.5):
        (service.approve if roll < 0.8 else service.reject)(actor, booking)
    if booking.status == Status.CONFIRMED:
        if past and roll < 0.85:
            service.complete(actor, booking, now=today)
        elif past and roll < 0.95 and booking.booking_type.slug == "public-appointment":
            service.mark_no_show(actor, booking, now=today)  # the visitor never came
        elif roll > 0.93:
            service.cancel(actor, booking)
