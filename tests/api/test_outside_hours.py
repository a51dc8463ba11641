"""The API never books outside the usual times (issue 15): it books offered slots only, so a
staff "book anyway" has no API mirror and the contract stays as it is; 03:00 and a Saturday
are a 409 with nothing stored, the past a 422."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import assert_error, iso, london, snapshot, unchanged, winter_monday


def test_the_api_refuses_three_in_the_morning_a_saturday_and_the_past(app, world):
    """people given (the agent themself) and outside their office hours: 409 conflict."""
    day = winter_monday()
    api = world.api(world.agent)
    before = snapshot(app)
    for start in (
        london(day, 3),
        london(day + timedelta(days=5), 10),  # Saturday
        london(day - timedelta(days=400), 10),
    ):
        response = api.post(
            "/api/v1/bookings",
            json={"booking_type": "review", "start": iso(start), "people": [world.agent.id]},
        )
        assert response.status_code in (409, 422), response.get_json()
        body = assert_error(response, response.status_code, response.get_json()["error"])
        assert body["error"] in ("conflict", "validation_error")
    assert unchanged(app, before)
    ok = api.post(
        "/api/v1/bookings",
        json={"booking_type": "review", "start": iso(london(day, 10)), "people": [world.agent.id]},
    )
    assert ok.status_code == 201, ok.get_json()
