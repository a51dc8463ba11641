"""Putting someone else on a booking is assigning them (P2): "add attendee" needs
``bookings.assign`` for any person other than the actor, as booking them would."""

from __future__ import annotations

from sqlalchemy import func, select

from app.bookings.models import Attendee, Booking, Hold
from app.extensions import db
from tests.bookings.conftest import local, weekday
from tests.conftest import csrf_from, login


def _own_booking(factory, cast):
    """A booking held by the agent (who may edit but not assign), with the learner."""
    return factory.booking(
        None, cast.review, local(weekday(10), 10), [cast.agent], learner=cast.learner
    )


def _state(app, booking_id: int, person_id: int) -> tuple[int, int, int]:
    """(attendee rows of the person, active holds of the person, the booking's sequence)."""
    with app.app_context():
        rows = db.session.scalar(
            select(func.count())
            .select_from(Attendee)
            .where(Attendee.booking_id == booking_id, Attendee.user_id == person_id)
        )
        holds = db.session.scalar(
            select(func.count())
            .select_from(Hold)
            .where(Hold.person_id == person_id, Hold.active.is_(True))
        )
        sequence = db.session.get(Booking, booking_id).sequence
        db.session.rollback()
    return rows, holds, sequence


def _add(client, booking_id: int, **fields):
    data = {"csrf_token": csrf_from(client, f"/bookings/{booking_id}"), "user_id": "0"}
    data.update(fields)
    return client.post(f"/bookings/{booking_id}/attendees", data=data)


def test_agent_without_assign_cannot_add_another_agent(app, client, factory, cast):
    """An agent may edit their own booking but not put a colleague on it: 403, and the
    colleague gets neither an attendee row nor a hold on their time."""
    booking = _own_booking(factory, cast)
    login(client, cast.agent.email)
    before = _state(app, booking.id, cast.other_agent.id)
    assert before[:2] == (0, 0)
    response = _add(client, booking.id, user_id=str(cast.other_agent.id))
    assert response.status_code == 403
    assert _state(app, booking.id, cast.other_agent.id) == before


def test_agent_without_assign_cannot_add_the_assessor_by_shortcut(app, client, factory, cast):
    """The assessor shortcut puts another member of staff on the booking: refused too."""
    booking = _own_booking(factory, cast)
    login(client, cast.agent.email)
    before = _state(app, booking.id, cast.assessor.id)
    response = _add(client, booking.id, shortcut="assessor")
    assert response.status_code == 403
    assert _state(app, booking.id, cast.assessor.id) == before


def test_agent_without_assign_may_still_add_a_guest(app, client, factory, cast):
    """A guest takes nobody's time: editing the booking is enough."""
    booking = _own_booking(factory, cast)
    login(client, cast.agent.email)
    response = _add(client, booking.id, email="guest@example.test", name="Gus Guest")
    assert response.status_code == 303
    with app.app_context():
        emails = {a.email for a in db.session.get(Booking, booking.id).attendees}
    assert "guest@example.test" in emails


def test_booking_manager_may_add_another_agent(app, client, factory, cast):
    """With bookings.assign the colleague is added and held for the booking's time."""
    booking = _own_booking(factory, cast)
    login(client, cast.manager.email)
    _, _, sequence = _state(app, booking.id, cast.other_agent.id)
    response = _add(client, booking.id, user_id=str(cast.other_agent.id))
    assert response.status_code == 303
    assert _state(app, booking.id, cast.other_agent.id) == (1, 1, sequence + 1)


def test_service_refuses_adding_another_person_without_assign(app, factory, cast):
    """The rule lives in the service, so every caller (API, jobs, screens) gets it."""
    import pytest

    from app.accounts.models import User
    from app.bookings import policy, service
    from app.database import begin_write

    booking = _own_booking(factory, cast)
    with app.app_context():
        begin_write()
        agent = db.session.get(User, cast.agent.id)
        with pytest.raises(policy.PermissionDenied):
            service.add_attendee(
                agent,
                db.session.get(Booking, booking.id),
                user=db.session.get(User, cast.other_agent.id),
            )
        db.session.rollback()
