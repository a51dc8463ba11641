"""The API's side of Teams meetings (issue [10]): ``location_mode: teams`` and
``organiser_email`` on create and PATCH, the ``online_meeting`` object of a booking, and
422 ``teams_unavailable`` when Teams cannot work."""

from __future__ import annotations

from sqlalchemy import func, select

from app.bookings.models import Booking
from app.extensions import db
from tests.api.conftest import iso, london, winter_monday
from tests.fakes import graph_server as _fake_microsoft
from tests.teams.meet_helpers import connect_org, deliver_all

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls


def _body(world, hour: int = 10, **extra) -> dict:
    day = winter_monday()
    return {
        "booking_type": "review",
        "start": iso(london(day, hour)),
        "people": [world.agent.id],
        "learner": world.learner.id,
        **extra,
    }


def test_teams_booking_through_the_api_shows_its_meeting(app, world, graph_server):
    """Created as Teams with an organiser: online_meeting says waiting with push_after until
    the window; once pushed (here: window widened, job run) scheduled with the join URL."""
    connect_org(app, graph_server, world.agent.email, world.manager.email, world.learner.email)
    api = world.api(world.manager)
    created = api.post(
        "/api/v1/bookings",
        json=_body(world, location_mode="teams", organiser_email=world.manager.email),
    )
    assert created.status_code == 201, created.get_json()
    url = created.headers["Location"]
    meeting = created.get_json()["online_meeting"]
    assert meeting["provider"] == "teams"
    assert meeting["join_url"] is None and meeting["error"] is None
    deliver_all(app)
    shown = api.get(url).get_json()["online_meeting"]
    if shown["state"] == "waiting":  # the winter Monday is beyond the 5-day window
        assert shown["push_after"] is not None
        from datetime import datetime, timedelta

        from app.database import begin_write
        from app.teams.meetings import schedule_due

        with app.app_context():
            begin_write()
            start = datetime.fromisoformat(shown["push_after"]) + timedelta(minutes=1)
            assert schedule_due(now=start) == 1
            db.session.commit()
        deliver_all(app)
        shown = api.get(url).get_json()["online_meeting"]
    assert shown["state"] == "scheduled"
    [(_, fake)] = graph_server.teams_meetings_of(world.manager.email)
    assert shown["join_url"] == fake.join_url
    plain = api.post(
        "/api/v1/bookings",
        json=_body(
            world, hour=14, location_mode="remote", location_detail="https://meet.example/x"
        ),
    )
    assert plain.status_code == 201, plain.get_json()
    assert plain.get_json()["online_meeting"] is None


def test_without_a_connection_teams_is_422_teams_unavailable(app, world):
    api = world.api(world.manager)
    refused = api.post("/api/v1/bookings", json=_body(world, location_mode="teams"))
    assert refused.status_code == 422
    assert refused.get_json()["error"] == "teams_unavailable"
    assert "Microsoft 365 connection" in refused.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0

    created = api.post("/api/v1/bookings", json=_body(world))
    assert created.status_code == 201
    url = created.headers["Location"]
    patched = api.patch(url, json={"location_mode": "teams"})
    assert patched.status_code == 422 and patched.get_json()["error"] == "teams_unavailable"
    shown = api.get(url).get_json()
    assert (shown["location_mode"], shown["sequence"], shown["online_meeting"]) == (
        "face_to_face",
        0,
        None,
    )


def _owner_api(world):
    owner = world.factory.user("owner", email="olive@example.test", name="Olive Owner")
    world.token_for(owner)
    return world.api(owner)


def test_a_types_default_location_must_work(app, world):
    """Without a Microsoft 365 connection Teams cannot be a type's default location."""
    api = _owner_api(world)
    body = {"location_modes": ["face_to_face", "teams"], "default_location_mode": "teams"}
    refused = api.patch("/api/v1/booking-types/review", json=body)
    assert refused.status_code == 400
    assert "cannot be the default location" in refused.get_json()["message"]
    types = {t["slug"]: t for t in api.get("/api/v1/booking-types").get_json()["booking_types"]}
    assert types["review"]["default_location_mode"] != "teams"  # nothing changed


def test_with_a_connection_teams_may_be_the_default(app, world, teams_connection):
    api = _owner_api(world)
    body = {"location_modes": ["face_to_face", "teams"], "default_location_mode": "teams"}
    accepted = api.patch("/api/v1/booking-types/review", json=body)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["default_location_mode"] == "teams"
