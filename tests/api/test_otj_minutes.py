"""Planned off-the-job minutes in the API (issue 12, T3): on booking types (GET/PATCH
/api/v1/booking-types) as the default, on bookings (create and PATCH) defaulting to the
type's, audited when changed; and the booking's ``attendance`` object."""

from __future__ import annotations

from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking
from app.database import begin_write
from app.extensions import db
from app.teams.attendance_models import MeetingAttendance
from tests.api.conftest import assert_error, iso, london, winter_monday


def test_booking_type_plan_is_read_and_changed_and_new_bookings_take_it(app, world):
    owner = world.factory.user("owner", email="own@example.test")
    world.token_for(owner)
    api = world.api(owner)

    listed = api.get("/api/v1/booking-types").get_json()["booking_types"]
    review = next(t for t in listed if t["slug"] == "review")
    assert review["planned_otj_minutes"] is None and review["complete_on_verified"] is False

    changed = api.patch(
        "/api/v1/booking-types/review",
        json={"planned_otj_minutes": 90, "complete_on_verified": True},
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["planned_otj_minutes"] == 90
    assert changed.get_json()["complete_on_verified"] is True
    assert_error(
        api.patch("/api/v1/booking-types/review", json={"planned_otj_minutes": 0}),
        400,
        "validation_error",
    )

    day = winter_monday()
    manager = world.api(world.manager)
    inherited = manager.post(
        "/api/v1/bookings",
        json={"booking_type": "review", "start": iso(london(day, 10)), "people": [world.agent.id]},
    )
    assert inherited.status_code == 201, inherited.get_json()
    assert inherited.get_json()["planned_otj_minutes"] == 90
    assert inherited.get_json()["attendance"] is None  # not a Teams meeting
    own = manager.post(
        "/api/v1/bookings",
        json={
            "booking_type": "review",
            "start": iso(london(day, 12)),
            "people": [world.agent.id],
            "planned_otj_minutes": 45,
        },
    )
    assert own.status_code == 201, own.get_json()
    assert own.get_json()["planned_otj_minutes"] == 45


def test_booking_plan_is_patched_audited_and_cleared(app, world):
    day = winter_monday()
    booking = world.book(world.manager, [world.agent], london(day, 10), learner=world.learner)
    api = world.api(world.manager)

    response = api.patch(f"/api/v1/bookings/{booking.id}", json={"planned_otj_minutes": 30})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["planned_otj_minutes"] == 30
    assert_error(
        api.patch(f"/api/v1/bookings/{booking.id}", json={"planned_otj_minutes": 2000}),
        400,
        "validation_error",
    )
    cleared = api.patch(f"/api/v1/bookings/{booking.id}", json={"planned_otj_minutes": None})
    assert cleared.status_code == 200 and cleared.get_json()["planned_otj_minutes"] is None

    with app.app_context():
        changes = [
            e.changes["planned_otj_minutes"]
            for e in db.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.booking_id == booking.id)
                .order_by(AuditEntry.id)
            )
            if "planned_otj_minutes" in e.changes
        ]
        db.session.rollback()
    assert changes == [[None, 30], [30, None]]
    # the learner may read the booking, not change its plan
    refused = world.api(world.learner).patch(
        f"/api/v1/bookings/{booking.id}", json={"planned_otj_minutes": 60}
    )
    assert refused.status_code in (403, 404)


def test_attendance_object_of_a_teams_booking(app, world):
    day = winter_monday()
    booking = world.book(world.manager, [world.agent], london(day, 10), learner=world.learner)
    api = world.api(world.manager)
    with app.app_context():
        begin_write()
        row = db.session.get(Booking, booking.id)
        row.location_mode, row.planned_otj_minutes = "teams", 60
        db.session.commit()
    assert api.get(f"/api/v1/bookings/{booking.id}").get_json()["attendance"] == {
        "state": "pending",
        "otj_minutes": None,
        "people": [],
    }
    with app.app_context():
        begin_write()
        db.session.add(
            MeetingAttendance(
                booking_id=booking.id,
                state="recorded",
                otj_minutes=50,
                people=[{"email": "lee@example.test", "name": "Lee", "minutes": 50}],
                reason="",
                tries=0,
            )
        )
        db.session.commit()
    assert api.get(f"/api/v1/bookings/{booking.id}").get_json()["attendance"] == {
        "state": "recorded",
        "otj_minutes": 50,
        "people": [{"email": "lee@example.test", "minutes": 50}],
    }
