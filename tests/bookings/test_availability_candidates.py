"""Issue [14]: ``availability.candidates`` (plain rows, used to compute slots) names the same
people as ``candidate_people`` (users, used by booking) for every source of B6."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import PLANNING_GROUP_SLUG, Group, LearnerProfile, User
from app.bookings import availability
from app.bookings.models import AvailabilitySource, BookingType
from app.database import begin_write
from app.extensions import db

pytestmark = pytest.mark.db


def _both(kind_id: int, learner_id: int | None) -> tuple[list, list]:
    db.session.expire_all()  # members as a request reads them, in the group's order
    kind = db.session.get(BookingType, kind_id)
    learner = db.session.get(User, learner_id) if learner_id else None
    found = availability.candidates(kind, learner)
    assert all(type(r.active) is bool for r in found)  # not SQLite's 0 or 1
    rows = [(r.id, r.timezone, r.active) for r in found]
    users = [(u.id, u.timezone, u.active) for u in availability.candidate_people(kind, learner)]
    db.session.rollback()  # a read transaction: the next change opens a writer
    return rows, users


def _deactivate(user_id: int) -> None:
    begin_write()
    db.session.get(User, user_id).active = False
    db.session.commit()


def test_every_source_names_the_same_people(app, factory):
    agents = [
        factory.user("agent", name=f"Agent {name}", timezone=zone)
        for name, zone in (("Cy", "Europe/London"), ("Al", "America/New_York"), ("Bo", "UTC"))
    ]
    other = factory.user("agent", name="Other")
    learner = factory.user("learner", name="Lee")
    lone = factory.user("learner", name="Lone")
    team = factory.user("agent", name="Team")
    group_kind = factory.booking_type(availability_source=AvailabilitySource.GROUP)
    assigned_kind = factory.booking_type(availability_source=AvailabilitySource.ASSIGNED_AGENT)
    default_kind = factory.booking_type()
    unset_kind = factory.booking_type(availability_source=AvailabilitySource.GROUP)
    with app.app_context():
        begin_write()
        members = [db.session.get(User, a.id) for a in agents]
        group = Group(slug="team", name="Team", members=members)
        planning = Group(slug=PLANNING_GROUP_SLUG, name="Planning", system=True)
        db.session.add_all([group, planning])
        db.session.add(LearnerProfile(user_id=learner.id, assigned_agent_id=other.id))
        db.session.flush()
        db.session.get(BookingType, group_kind.id).availability_group_id = group.id
        db.session.commit()

        def same(kind_id, learner_id, expected_ids):
            rows, users = _both(kind_id, learner_id)
            assert rows == users
            assert sorted(r[0] for r in rows) == sorted(expected_ids)

        same(group_kind.id, None, [a.id for a in agents])
        same(unset_kind.id, None, [])
        same(assigned_kind.id, learner.id, [other.id])
        same(assigned_kind.id, lone.id, [])
        same(assigned_kind.id, None, [])
        same(default_kind.id, learner.id, [other.id])  # empty planning group: the assigned agent
        same(default_kind.id, None, [])

        begin_write()
        db.session.get(Group, planning.id).members = [db.session.get(User, team.id)]
        db.session.commit()
        same(default_kind.id, learner.id, [team.id])

        _deactivate(agents[1].id)
        _deactivate(other.id)
        same(group_kind.id, None, [agents[0].id, agents[2].id])
        same(assigned_kind.id, learner.id, [])
        _deactivate(team.id)
        same(default_kind.id, learner.id, [])


@pytest.mark.parametrize("weekends", [True, False, None])
def test_offer_rules_are_the_booking_types_own(app, factory, weekends):
    """``offer_rules`` (the API's availability reads it instead of the ORM object) carries
    each value the type holds, a boolean as a boolean, and finds only active types."""
    set_kind = factory.booking_type(
        slug="set",
        availability_source=AvailabilitySource.ASSIGNED_AGENT,
        duration_minutes=45,
        slot_interval_minutes=15,
        buffer_before_minutes=5,
        buffer_after_minutes=10,
        max_per_day=3,
        minimum_notice_minutes=120,
        earliest_day_public=2,
        earliest_day_staff=1,
        disabled_window_minutes=30,
        horizon_days=90,
        weekends_enabled=weekends,
    )
    factory.booking_type(slug="unset")
    factory.booking_type(slug="retired", active=False)
    with app.app_context():
        for slug in ("set", "unset"):
            kind = db.session.scalars(select(BookingType).where(BookingType.slug == slug)).one()
            rules = availability.offer_rules(slug)
            assert rules == tuple(getattr(kind, name) for name in rules._fields)
            assert rules.duration == kind.duration
        assert availability.offer_rules("set").weekends_enabled is weekends
        assert availability.offer_rules("set").id == set_kind.id
        assert availability.offer_rules("retired") is None
        assert availability.offer_rules("nothing") is None
