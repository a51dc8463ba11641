"""Acceptance: GET /api/v1/availability issues as many SQL statements for 30 agents as for 3."""

from __future__ import annotations

from datetime import time

from sqlalchemy import event

from app.accounts import hours
from app.accounts.models import Group, User
from app.accounts.service import create_api_token
from app.bookings.models import AvailabilitySource, BookingType
from app.connections.models import BusyBlock
from app.database import begin_write
from app.extensions import db
from tests.conftest import at


def test_statement_count_is_the_same_for_3_and_30_agents(app, client, factory):
    """Two groups (3 and 30 agents, each with hours and busy blocks): equal statement counts."""
    manager = factory.user("booking-manager")
    agents = [factory.user("agent", name=f"Agent {n:02d}") for n in range(30)]
    with app.app_context():
        begin_write()
        for n, agent in enumerate(agents):
            person = db.session.get(User, agent.id)
            hours.set_weekly_hours(person, {d: [(time(9), time(17))] for d in range(5)})
            db.session.add(
                BusyBlock(
                    person_id=agent.id,
                    starts_at=at(3 + n % 5, 10),
                    ends_at=at(3 + n % 5, 11),
                    source="test",
                )
            )
        for slug, members in (("three", agents[:3]), ("thirty", agents)):
            group = Group(
                slug=slug, name=slug, members=[db.session.get(User, a.id) for a in members]
            )
            db.session.add(group)
            db.session.flush()
            db.session.add(
                BookingType(
                    slug=f"type-{slug}",
                    name=slug,
                    duration_minutes=60,
                    availability_source=AvailabilitySource.GROUP,
                    availability_group_id=group.id,
                )
            )
        token = create_api_token(db.session.get(User, manager.id))
        db.session.commit()
        engine = db.engine

    def statements(slug: str) -> tuple[int, int]:
        seen: list[str] = []

        def count(*args):
            seen.append(args[2])

        query = {
            "booking_type": f"type-{slug}",
            "start": at(1, 0).isoformat(),
            "end": at(29, 0).isoformat(),
            "tz": "Europe/London",
        }
        client.get(
            "/api/v1/availability", query_string=query, headers={"Authorization": f"Bearer {token}"}
        )  # records the token's use
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = client.get(
                "/api/v1/availability",
                query_string=query,
                headers={"Authorization": f"Bearer {token}"},
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.get_json()
        people = {p for slot in response.get_json()["slots"] for p in slot["people"]}
        return len(seen), len(people)

    three, thirty = statements("three"), statements("thirty")
    assert three[1] == 3 and thirty[1] == 30  # every agent was really considered
    assert three[0] == thirty[0], (three, thirty)
