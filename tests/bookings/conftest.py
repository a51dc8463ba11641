"""Helpers for the booking screen tests: weekday times in London, busy blocks, HTMX requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

LONDON = ZoneInfo("Europe/London")
HX = {"HX-Request": "true"}


def weekday(days_ahead: int = 10) -> date:
    """A Monday-to-Friday date at least ``days_ahead`` days from today (London)."""
    day = datetime.now(LONDON).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in London as a UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def add_busy(app, person, start: datetime, end: datetime, **fields):
    from app.connections.models import BusyBlock
    from app.database import begin_write
    from app.extensions import db

    fields.setdefault("source", "caldav:1")
    with app.app_context():
        begin_write()
        block = BusyBlock(person_id=person.id, starts_at=start, ends_at=end, **fields)
        db.session.add(block)
        db.session.commit()
        return block.id


def set_setting(app, key: str, value) -> None:
    from app.admin import settings
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        settings.set_setting(key, value)
        db.session.commit()


def is_fragment(response) -> bool:
    return "<html" not in response.get_data(as_text=True)


def varies_on_hx(response) -> bool:
    return "HX-Request" in response.headers.get("Vary", "")


@dataclass
class Cast:
    manager: object
    agent: object
    other_agent: object
    learner: object
    mentor: object
    assessor: object
    planning: object  # a booking type that needs approval
    review: object  # one that does not


@pytest.fixture
def cast(app, factory) -> Cast:
    """A booking manager, two agents, a learner with a workplace mentor and an assessor."""
    from app.accounts.models import LearnerProfile
    from app.database import begin_write
    from app.extensions import db

    manager = factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    agent = factory.user("agent", email="amara@example.test", name="Amara Okafor")
    other = factory.user("agent", email="ben@example.test", name="Ben Brown")
    learner = factory.user("learner", email="aisha@example.test", name="Aisha Ali")
    mentor = factory.user("employer", email="mo@example.test", name="Mo Mentor")
    assessor = factory.user("agent", email="asa@example.test", name="Asa Assessor")
    with app.app_context():
        begin_write()
        db.session.add(
            LearnerProfile(
                user_id=learner.id, workplace_mentor_id=mentor.id, assessor_id=assessor.id
            )
        )
        db.session.commit()
    planning = factory.booking_type(name="Planning meeting", requires_approval=True)
    review = factory.booking_type(name="Review")
    return Cast(manager, agent, other, learner, mentor, assessor, planning, review)
