"""Setting "Show unassigned bookings on agent dashboards": a booking whose person was
deactivated appears in a "To assign" list on agents' calendars; "Take it" makes it the
agent's through the booking service (availability, holds, audit); off, the list is gone."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.bookings.models import AuditEntry, Booking, Hold
from app.database import begin_write
from app.extensions import db
from tests.bookings.conftest import local, set_setting, weekday
from tests.conftest import csrf_from, login

CSRF_RE = r'name="csrf_token" value="([^"]+)"'


def _orphan(app, factory, cast) -> int:
    """Ben's booking, then Ben leaves (deactivated)."""
    booking = factory.booking(None, cast.review, local(weekday(), 10), [cast.other_agent])
    with app.app_context():
        begin_write()
        db.session.get(User, cast.other_agent.id).active = False
        db.session.commit()
    return booking.id


def _calendar(client) -> str:
    return client.get("/calendar").get_data(as_text=True)


def _take(client, booking_id: int):
    token = re.search(CSRF_RE, _calendar(client)).group(1)
    return client.post(f"/bookings/{booking_id}/take", data={"csrf_token": token})


def test_lane_lists_orphaned_bookings_and_take_it_assigns_them(app, client, factory, cast):
    booking_id = _orphan(app, factory, cast)
    factory.booking(None, cast.review, local(weekday(), 14), [cast.assessor])  # has a person
    login(client, cast.agent.email)
    page = _calendar(client)
    assert 'data-testid="to-assign"' in page and "was Ben Brown" in page
    assert page.count(">Take it</button>") == 1

    response = _take(client, booking_id)
    assert response.status_code == 303 and response.location.endswith(f"/bookings/{booking_id}")
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.owner_id == cast.agent.id
        assert [a.user_id for a in booking.attendees] == [cast.agent.id]
        holds = db.session.scalars(select(Hold).where(Hold.booking_id == booking_id)).all()
        assert {(h.person_id, h.active) for h in holds if h.active} == {(cast.agent.id, True)}
        audit = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(AuditEntry.id)
        ).all()[-1]
        assert (audit.action, audit.actor_id) == ("taken", cast.agent.id)
        assert audit.changes == {"owner": ["Ben Brown", "Amara Okafor"]}
        db.session.rollback()
    assert 'data-testid="to-assign"' not in _calendar(client)  # nothing left to take
    assert _take(client, booking_id).status_code == 404  # taken: gone from the lane


def test_an_agent_who_is_busy_then_cannot_take_it(app, client, factory, cast):
    booking_id = _orphan(app, factory, cast)
    factory.booking(None, cast.review, local(weekday(), 10), [cast.agent])
    login(client, cast.agent.email)
    response = _take(client, booking_id)
    assert response.status_code == 303 and response.location.endswith("/calendar")
    with app.app_context():
        assert db.session.get(Booking, booking_id).owner_id == cast.other_agent.id
        db.session.rollback()


def test_setting_off_hides_the_lane_and_refuses_take(app, client, factory, cast):
    booking_id = _orphan(app, factory, cast)
    login(client, cast.agent.email)
    assert "Take it" in _calendar(client)
    set_setting(app, "show_unassigned_bookings", False)
    assert 'data-testid="to-assign"' not in _calendar(client)
    set_setting(app, "show_unassigned_bookings", True)
    token_page = _calendar(client)
    set_setting(app, "show_unassigned_bookings", False)
    token = re.search(CSRF_RE, token_page).group(1)
    assert (
        client.post(f"/bookings/{booking_id}/take", data={"csrf_token": token}).status_code == 404
    )


def test_learners_get_no_lane_and_cannot_take(app, client, factory, cast):
    booking_id = _orphan(app, factory, cast)
    login(client, cast.learner.email)
    assert "Take it" not in client.get("/calendar").get_data(as_text=True)
    token = csrf_from(client, "/calendar")
    assert (
        client.post(f"/bookings/{booking_id}/take", data={"csrf_token": token}).status_code == 403
    )


@pytest.mark.db
def test_two_agents_taking_at_once_one_wins(app, factory, cast):
    """Both press Take it at the same moment: one owns the booking, the other is told."""
    import threading

    from app.bookings import service

    booking_id = _orphan(app, factory, cast)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def take(agent_id: int) -> None:
        barrier.wait()
        with app.app_context():
            begin_write()
            try:
                booking = db.session.get(Booking, booking_id)
                service.take_over(db.session.get(User, agent_id), booking)
                db.session.commit()
                outcomes.append("took")
            except service.BookingError as exc:
                db.session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=take, args=(who.id,)) for who in (cast.agent, cast.assessor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Someone has already taken this booking.", "took"]
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.owner_id in {cast.agent.id, cast.assessor.id}
        assert len([a for a in booking.attendees if a.user_id]) == 1
        taken = db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.booking_id == booking_id, AuditEntry.action == "taken"
            )
        ).all()
        assert len(taken) == 1
        db.session.rollback()
