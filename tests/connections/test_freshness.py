"""K4 fail closed: an agent whose calendar data is stale or unreadable offers no slots, and
staff are told why in the booking form."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.accounts import hours
from app.accounts.models import User
from app.bookings import availability
from app.bookings.models import BookingType
from app.connections.models import Connection, ConnectionKind, LinkedCalendar
from app.database import begin_write
from app.extensions import db
from tests.conftest import login

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2030, 1, 7, 7, 0, tzinfo=UTC)  # a Monday morning
MONDAY = date(2030, 1, 14)


@pytest.fixture
def agent(app, factory):
    agent = factory.user("agent", name="Alex Agent")
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(
            db.session.get(User, agent.id), {d: [(time(9), time(17))] for d in range(5)}
        )
        db.session.commit()
    return agent


def _link(app, agent, *, synced_at, needs_relink=False, counts=True):
    with app.app_context():
        begin_write()
        connection = Connection(
            kind=ConnectionKind.ICS,
            user_id=agent.id,
            url="https://calendar.example.test/feed.ics",
            needs_relink=needs_relink,
        )
        connection.calendars.append(
            LinkedCalendar(
                person_id=agent.id,
                remote_id=connection.url,
                name="Home",
                use_for_availability=counts,
                last_synced_at=synced_at,
            )
        )
        db.session.add(connection)
        db.session.commit()


def _slots(app, agent, kind):
    start = datetime.combine(MONDAY, time(0), tzinfo=LONDON)
    with app.app_context():
        return availability.slots_for(
            db.session.get(BookingType, kind.id),
            start,
            start + timedelta(days=1),
            people=[db.session.get(User, agent.id)],
            now=NOW,
        )


def test_no_linked_calendar_offers_slots(app, factory, agent):
    kind = factory.booking_type(duration_minutes=60)
    assert len(_slots(app, agent, kind)) == 8


def test_recently_synced_calendar_offers_slots(app, factory, agent):
    _link(app, agent, synced_at=NOW - timedelta(minutes=40))  # < 3 intervals of 15 min
    kind = factory.booking_type(duration_minutes=60)
    assert len(_slots(app, agent, kind)) == 8


@pytest.mark.parametrize(
    ("synced_at", "needs_relink", "reason"),
    [
        (NOW - timedelta(minutes=46), False, "has not synced since 07 Jan 06:14 UTC"),
        (None, False, "has not been read yet"),
        (NOW - timedelta(minutes=5), True, "needs to be linked again"),
    ],
)
def test_stale_or_broken_calendar_offers_nothing(
    app, factory, agent, synced_at, needs_relink, reason
):
    _link(app, agent, synced_at=synced_at, needs_relink=needs_relink)
    kind = factory.booking_type(duration_minutes=60)
    assert _slots(app, agent, kind) == []
    with app.app_context():
        from app.connections.freshness import stale_people

        assert reason in stale_people([agent.id], NOW)[agent.id]


def test_calendar_not_counting_for_availability_is_ignored(app, factory, agent):
    _link(app, agent, synced_at=None, counts=False)
    kind = factory.booking_type(duration_minutes=60)
    assert len(_slots(app, agent, kind)) == 8


def test_booking_form_says_why_an_agent_offers_nothing(app, client, factory, agent):
    manager = factory.user("booking-manager")
    kind = factory.booking_type(duration_minutes=60)
    _link(app, agent, synced_at=None)
    login(client, manager.email)
    day = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    response = client.get(
        "/bookings/preview",
        query_string={"booking_type": kind.id, "people": [agent.id], "learner": 0, "day": day},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "No times offered: Their calendar “Home” has not been read yet." in html
