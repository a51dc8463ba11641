"""B6 sources, A1 defaults, the in-transaction re-check and constant query counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from app.accounts import hours
from app.accounts.models import PLANNING_GROUP_SLUG, Group, LearnerProfile, User
from app.bookings import availability, service
from app.bookings.models import AvailabilitySource, BookingType
from app.connections.models import BusyBlock, BusyStatus
from app.database import begin_write
from app.extensions import db

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2030, 1, 7, 7, 0, tzinfo=UTC)  # a Monday morning
MONDAY = date(2030, 1, 14)


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


@pytest.fixture
def setup(app, factory):
    """Three agents with office hours, a learner assigned to the third, no planning members."""
    agents = [factory.user("agent", name=f"Agent {n}") for n in range(3)]
    learner = factory.user("learner", name="Lee Learner")
    with app.app_context():
        begin_write()
        for agent in agents:
            hours.set_weekly_hours(
                db.session.get(User, agent.id), {d: [(time(9), time(17))] for d in range(5)}
            )
        db.session.add(LearnerProfile(user_id=learner.id, assigned_agent_id=agents[2].id))
        db.session.add(
            Group(slug=PLANNING_GROUP_SLUG, name="Planning Meeting Bookings", system=True)
        )
        db.session.commit()
    return agents, learner


def _type(app, factory, **fields):
    fields.setdefault("duration_minutes", 60)
    return factory.booking_type(**fields)


def _people_offered(app, kind_id, learner_id=None, day=MONDAY):
    with app.app_context():
        kind = db.session.get(BookingType, kind_id)
        learner = db.session.get(User, learner_id) if learner_id else None
        slots = availability.slots_for(
            kind, _local(day, 0), _local(day, 23), learner=learner, now=NOW
        )
        return {p for slot in slots for p in slot.people}, slots


def _set_members(app, slug, user_ids):
    with app.app_context():
        begin_write()
        group = db.session.scalars(select(Group).where(Group.slug == slug)).one()
        group.members = [db.session.get(User, i) for i in user_ids]
        db.session.commit()


def test_default_source_uses_the_planning_group(app, factory, setup):
    """Default: the "Planning Meeting Bookings" members offer slots, nobody else."""
    agents, learner = setup
    _set_members(app, PLANNING_GROUP_SLUG, [agents[0].id, agents[1].id])
    kind = _type(app, factory)
    offered, slots = _people_offered(app, kind.id, learner.id)
    assert offered == {agents[0].id, agents[1].id}
    assert slots[0].start == _local(MONDAY, 9)


def test_default_source_falls_back_to_the_assigned_agent(app, factory, setup):
    """Default with an empty planning group: the learner's assigned agent."""
    agents, learner = setup
    kind = _type(app, factory)
    assert _people_offered(app, kind.id, learner.id)[0] == {agents[2].id}
    assert _people_offered(app, kind.id)[1] == []  # and nobody without a learner


def test_assigned_agent_source_without_one_is_empty(app, factory, setup):
    """Assigned-agent source for a learner with no agent: no slots, no error."""
    agents, learner = setup
    kind = _type(app, factory, availability_source=AvailabilitySource.ASSIGNED_AGENT)
    assert _people_offered(app, kind.id, learner.id)[0] == {agents[2].id}
    orphan = factory.user("learner", name="No Agent")
    assert _people_offered(app, kind.id, orphan.id)[1] == []
    assert _people_offered(app, kind.id, None)[1] == []


def test_named_group_unconfigured_is_empty(app, factory, setup):
    """Group source with no group chosen, or an empty one: no slots, no error."""
    agents, _ = setup
    kind = _type(app, factory, availability_source=AvailabilitySource.GROUP)
    assert _people_offered(app, kind.id)[1] == []
    with app.app_context():
        begin_write()
        group = Group(slug="desk", name="Desk")
        db.session.add(group)
        db.session.flush()
        db.session.get(BookingType, kind.id).availability_group_id = group.id
        db.session.commit()
    assert _people_offered(app, kind.id)[1] == []
    _set_members(app, "desk", [agents[1].id])
    assert _people_offered(app, kind.id)[0] == {agents[1].id}


def test_people_without_hours_get_the_organisation_day(app, factory):
    """Someone who set no hours works the organisation's day (08:00–18:00, weekdays)."""
    agent = factory.user("agent")
    kind = _type(app, factory)
    with app.app_context():
        person = db.session.get(User, agent.id)
        slots = availability.slots_for(
            db.session.get(BookingType, kind.id),
            _local(MONDAY, 0),
            _local(MONDAY + timedelta(days=6), 0),
            people=[person],
            now=NOW,
        )
    starts = [s.start.astimezone(LONDON) for s in slots]
    assert starts[0].time() == time(8) and starts[-1].time() == time(17)
    assert {s.date() for s in starts} == {MONDAY + timedelta(days=d) for d in range(5)}


def _book(app, kind_id, agent_id, start, **kwargs):
    with app.app_context():
        begin_write()
        try:
            booking = service.create_booking(
                None,
                db.session.get(BookingType, kind_id),
                start,
                [db.session.get(User, agent_id)],
                check_availability=True,
                **kwargs,
            )
            db.session.commit()
            return booking.id
        finally:
            db.session.rollback()


def test_slot_based_booking_rechecks_in_the_transaction(app, factory, setup):
    """Outside hours, over a busy block or on leave is refused; a free slot is accepted."""
    agents, _ = setup
    agent = agents[0]
    kind = _type(app, factory)
    future = _local(date.today() + timedelta(days=(7 - date.today().weekday()) + 7), 0).date()
    with app.app_context():
        begin_write()
        db.session.add(
            BusyBlock(
                person_id=agent.id,
                starts_at=_local(future, 11),
                ends_at=_local(future, 12),
                status=BusyStatus.TENTATIVE,
                source="test",
            )
        )
        db.session.add(
            BusyBlock(
                person_id=agent.id,
                starts_at=_local(future, 13),
                ends_at=_local(future, 14),
                status=BusyStatus.FREE,
                source="test",
            )
        )
        db.session.commit()
    for refused in (_local(future, 7), _local(future, 16, 30), _local(future, 11, 30)):
        with pytest.raises(service.UnavailableError, match="Agent 0 cannot take this booking"):
            _book(app, kind.id, agent.id, refused)
    assert _book(app, kind.id, agent.id, _local(future, 13))  # a "free" event does not block
    assert _book(app, kind.id, agent.id, _local(future, 9))


def test_query_count_does_not_grow_with_people(app, factory):
    """Slots for 30 agents cost the same number of SQL statements as for 3."""
    agents = [factory.user("agent", name=f"Agent {n:02d}") for n in range(30)]
    kind = _type(app, factory, availability_source=AvailabilitySource.GROUP)
    with app.app_context():
        begin_write()
        for agent in agents:
            hours.set_weekly_hours(
                db.session.get(User, agent.id), {d: [(time(9), time(17))] for d in range(5)}
            )
        for group_slug, members in (("three", agents[:3]), ("thirty", agents)):
            db.session.add(
                Group(
                    slug=group_slug,
                    name=group_slug,
                    members=[db.session.get(User, a.id) for a in members],
                )
            )
        db.session.commit()

    def count(slug: str) -> tuple[int, int]:
        with app.app_context():
            group = db.session.scalars(select(Group).where(Group.slug == slug)).one()
            kind_row = db.session.get(BookingType, kind.id)
            kind_row.availability_group_id = group.id
            db.session.flush()
            db.session.expunge_all()
            kind_row = db.session.get(BookingType, kind.id)
            statements = []
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                slots = availability.slots_for(
                    kind_row, _local(MONDAY, 0), _local(MONDAY + timedelta(days=28), 0), now=NOW
                )
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
            db.session.rollback()
            return len(statements), len({p for s in slots for p in s.people})

    three, thirty = count("three"), count("thirty")
    assert three[1] == 3 and thirty[1] == 30
    assert three[0] == thirty[0], (three, thirty)
