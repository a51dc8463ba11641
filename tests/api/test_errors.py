"""Every bad input gets a JSON error with a stable code and a 4xx status, and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest

from app.bookings.models import Status
from tests.api.conftest import assert_error, iso, london, snapshot, unchanged, winter_monday

# --- query strings ---------------------------------------------------------------------


def _availability(**overrides) -> str:
    day = winter_monday()
    query = {
        "booking_type": "review",
        "start": iso(london(day, 0)),
        "end": iso(london(day + timedelta(days=1), 0)),
        "tz": "Europe/London",
        **overrides,
    }
    return "/api/v1/availability?" + urlencode({k: v for k, v in query.items() if v is not None})


def _listing(**overrides) -> str:
    day = winter_monday()
    query = {
        "start": iso(london(day, 0)),
        "end": iso(london(day + timedelta(days=7), 0)),
        **overrides,
    }
    return "/api/v1/bookings?" + urlencode({k: v for k, v in query.items() if v is not None})


RANGE_CASES = [
    ("unknown zone", {"tz": "Mars/Olympus_Mons"}, "unknown_zone"),
    ("zone with a path", {"tz": "../../etc/passwd"}, "unknown_zone"),
    ("zone that is a folder", {"tz": "America"}, "unknown_zone"),
    (
        "end before start",
        {"start": "2030-01-08T00:00:00Z", "end": "2030-01-07T00:00:00Z"},
        "end_before_start",
    ),
    (
        "empty range",
        {"start": "2030-01-08T00:00:00Z", "end": "2030-01-08T00:00:00Z"},
        "end_before_start",
    ),
    ("63 days", {"start": "2030-01-01T00:00:00Z", "end": "2030-03-05T00:00:00Z"}, "range_too_long"),
    ("not a date", {"start": "next tuesday"}, "malformed_datetime"),
    ("impossible date", {"start": "2030-02-30T09:00:00Z"}, "malformed_datetime"),
    ("bad offset", {"end": "2030-01-08T00:00:00+25:00"}, "malformed_datetime"),
    ("year out of range", {"start": "0001-01-01T00:00:00+05:00"}, "malformed_datetime"),
    ("missing start", {"start": None}, "missing_parameter"),
    ("empty end", {"end": ""}, "missing_parameter"),
]


@pytest.mark.parametrize("label,change,code", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
@pytest.mark.parametrize("route", ["availability", "bookings"])
def test_bad_ranges(app, world, route, label, change, code):
    """Availability and the booking list validate zone and range the same way."""
    url = _availability(**change) if route == "availability" else _listing(**change)
    before = snapshot(app)
    assert_error(world.api(world.manager).get(url), 400, code)
    assert unchanged(app, before)


def test_exactly_62_days_is_allowed(world):
    """The limit is inclusive: a 62-day range is answered."""
    url = _listing(start="2030-01-01T00:00:00Z", end="2030-03-04T00:00:00Z")
    assert world.api(world.manager).get(url).status_code == 200


@pytest.mark.parametrize(
    "change,code",
    [
        ({"booking_type": "no-such-type"}, "unknown_booking_type"),
        ({"booking_type": None}, "missing_parameter"),
        ({"tz": None}, "missing_parameter"),
        ({"people": "abc"}, "validation_error"),
        ({"people": "1,,2"}, "validation_error"),
        ({"people": "99999"}, "validation_error"),
        ({"people": "99999999999999999999999"}, "validation_error"),
        ({"learner": "x"}, "validation_error"),
        ({"learner": "99999"}, "validation_error"),
    ],
)
def test_bad_availability_parameters(app, world, change, code):
    """Unknown type, missing booking_type or tz, people and learner ids that are not people."""
    before = snapshot(app)
    assert_error(world.api(world.manager).get(_availability(**change)), 400, code)
    assert unchanged(app, before)


def test_availability_people_must_be_active_staff(world):
    """A learner's id in people, or the manager's id as learner, is a validation_error."""
    api = world.api(world.manager)
    assert_error(api.get(_availability(people=str(world.learner.id))), 400, "validation_error")
    assert_error(api.get(_availability(learner=str(world.agent.id))), 400, "validation_error")


def test_an_inactive_booking_type_is_unknown(app, world):
    """An inactive type is answered exactly like a missing one."""
    world.factory.booking_type(slug="retired", active=False)
    assert_error(
        world.api(world.manager).get(_availability(booking_type="retired")),
        400,
        "unknown_booking_type",
    )


def test_naive_datetimes_need_tz(world):
    """Without an offset a datetime is malformed, unless tz says how to read it."""
    api = world.api(world.manager)
    naive = {"start": "2030-01-07T00:00:00", "end": "2030-01-08T00:00:00"}
    assert_error(api.get(_listing(**naive)), 400, "malformed_datetime")
    assert api.get(_listing(**naive, tz="Europe/London")).status_code == 200
    gap = {"start": "2030-03-31T01:30:00", "end": "2030-04-01T00:00:00", "tz": "Europe/London"}
    body = assert_error(api.get(_listing(**gap)), 400, "malformed_datetime")
    assert "does not exist" in body["message"]


def test_unknown_group_is_404(world):
    """people?group= an unknown slug: 404 not_found."""
    assert_error(world.api(world.manager).get("/api/v1/people?group=nope"), 404, "not_found")


def test_bad_person_filter(world):
    """person must be an id; an unknown id simply matches nothing (no existence probe)."""
    api = world.api(world.manager)
    assert_error(api.get(_listing(person="me")), 400, "validation_error")
    response = api.get(_listing(person="424242"))
    assert response.status_code == 200 and response.get_json() == {"bookings": []}


# --- bodies ----------------------------------------------------------------------------


def _create_body(world, **overrides) -> dict:
    body = {
        "booking_type": "review",
        "start": iso(london(winter_monday(), 10)),
        "people": [world.agent.id],
        **overrides,
    }
    return {k: v for k, v in body.items() if v is not None}


CREATE_CASES = [
    ("unknown type", {"booking_type": "nope"}, 400, "unknown_booking_type"),
    ("type not a string", {"booking_type": 7}, 400, "unknown_booking_type"),
    ("missing type", {"booking_type": None}, 400, "missing_parameter"),
    ("missing start", {"start": None}, 400, "missing_parameter"),
    ("malformed start", {"start": "10am Monday"}, 400, "malformed_datetime"),
    ("naive start without tz", {"start": "2030-01-07T10:00:00"}, 400, "malformed_datetime"),
    ("start not a string", {"start": 1700000000}, 400, "malformed_datetime"),
    ("people not a list", {"people": "2"}, 400, "validation_error"),
    ("people empty", {"people": []}, 400, "validation_error"),
    ("people with a bool", {"people": [True]}, 400, "validation_error"),
    ("unknown person", {"people": [424242]}, 400, "validation_error"),
    ("a learner as people", {"people": ["LEARNER"]}, 400, "validation_error"),
    ("learner who is staff", {"learner": "AGENT"}, 400, "validation_error"),
    ("unknown field", {"starts_at": "2030-01-07T10:00:00Z"}, 400, "validation_error"),
    ("description not text", {"description": ["x"]}, 400, "validation_error"),
    ("location detail too long", {"location_detail": "x" * 501}, 400, "validation_error"),
    ("location mode not offered", {"location_mode": "hologram"}, 422, "validation_error"),
]


@pytest.mark.parametrize("label,change,status,code", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_bad_create_bodies(app, world, label, change, status, code):
    """Each bad body is refused with its code and no booking, hold, audit or outbox row."""
    ids = {"LEARNER": world.learner.id, "AGENT": world.agent.id}

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    before = snapshot(app)
    body = _create_body(world, **{k: resolve(v) for k, v in change.items()})
    response = world.api(world.manager).post("/api/v1/bookings", json=body)
    assert_error(response, status, code)
    assert unchanged(app, before)


@pytest.mark.parametrize(
    "data,content_type",
    [
        ("{not json", "application/json"),
        ("", "application/json"),
        ("[1, 2]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("booking_type=review", "application/x-www-form-urlencoded"),
        ("[" * 100_000, "application/json"),
    ],
)
def test_invalid_json_bodies(app, world, data, content_type):
    """Anything but a JSON object is invalid_json, on create and on update."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    api = world.api(world.manager)
    before = snapshot(app)
    for send, url in (
        (api.client.post, "/api/v1/bookings"),
        (api.client.patch, f"/api/v1/bookings/{booking.id}"),
    ):
        response = send(url, data=data, content_type=content_type, headers=api._headers(None))
        assert_error(response, 400, "invalid_json")
    assert unchanged(app, before)


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "validation_error"),
        ({"status": "cancelled"}, "validation_error"),
        ({"status": "CONFIRMED"}, "validation_error"),
        ({"start": "soon"}, "malformed_datetime"),
        ({"start": None}, "malformed_datetime"),
        ({"title": "New title"}, "validation_error"),
        ({"description": 5}, "validation_error"),
    ],
)
def test_bad_patch_bodies(app, world, body, code):
    """PATCH refuses empty, unknown, wrongly typed and unsupported changes."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    before = snapshot(app)
    response = world.api(world.manager).patch(f"/api/v1/bookings/{booking.id}", json=body)
    assert_error(response, 400, code)
    assert unchanged(app, before)


def test_one_refused_change_undoes_the_others(app, world):
    """PATCH start + an illegal status: the reschedule is rolled back with the refusal."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    before = snapshot(app)
    body = {"start": iso(london(winter_monday(), 13)), "status": "confirmed"}
    response = world.api(world.manager).patch(f"/api/v1/bookings/{booking.id}", json=body)
    assert_error(response, 409, "invalid_transition")
    assert unchanged(app, before)


# --- objects, conflicts and transitions --------------------------------------------------


def test_another_agents_booking_is_404_everywhere(app, world):
    """Agent Cy reads, patches and cancels Ada's booking by id: 404 each time, no write; the
    answer is the same as for an id that does not exist."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    api = world.api(world.colleague)
    before = snapshot(app)
    for booking_id in (booking.id, 424242, 2**40):
        url = f"/api/v1/bookings/{booking_id}"
        assert_error(api.get(url), 404, "not_found")
        assert_error(api.patch(url, json={"description": "mine now"}), 404, "not_found")
        assert_error(api.post(f"{url}/cancel"), 404, "not_found")
    assert unchanged(app, before)
    listing = api.get(_listing(tz="UTC")).get_json()
    assert listing == {"bookings": []}


def test_double_booking_is_409(app, world):
    """Booking Ada over her existing booking is a 409 conflict and writes nothing."""
    day = winter_monday()
    world.book(world.manager, [world.agent], london(day, 10))
    before = snapshot(app)
    body = _create_body(world, start=iso(london(day, 10, 30)))
    assert_error(world.api(world.manager).post("/api/v1/bookings", json=body), 409, "conflict")
    assert unchanged(app, before)


def test_outside_working_hours_is_409(app, world):
    """A start outside the person's hours is refused like a clash (the slot is not free)."""
    before = snapshot(app)
    body = _create_body(world, start=iso(london(winter_monday(), 20)))
    assert_error(world.api(world.manager).post("/api/v1/bookings", json=body), 409, "conflict")
    assert unchanged(app, before)


def test_no_free_person_for_an_automatic_booking_is_409(app, world):
    """People omitted and the group's only member busy: 409 conflict."""
    day = winter_monday()
    world.book(world.manager, [world.agent], london(day, 10))
    before = snapshot(app)
    body = _create_body(world, start=iso(london(day, 10)), people=None)
    assert "people" not in body
    assert_error(world.api(world.manager).post("/api/v1/bookings", json=body), 409, "conflict")
    assert unchanged(app, before)


def test_rescheduling_into_a_clash_is_409(app, world):
    """PATCH start onto another of Ada's bookings: 409 conflict, time unchanged."""
    day = winter_monday()
    world.book(world.manager, [world.agent], london(day, 10))
    moving = world.book(world.manager, [world.agent], london(day, 14))
    before = snapshot(app)
    url = f"/api/v1/bookings/{moving.id}"
    response = world.api(world.manager).patch(url, json={"start": iso(london(day, 10))})
    assert_error(response, 409, "conflict")
    assert unchanged(app, before)


def test_confirming_a_confirmed_booking_is_an_invalid_transition(app, world):
    """PATCH status=confirmed on a confirmed booking: 409 invalid_transition, no write."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    assert booking.status == Status.CONFIRMED
    before = snapshot(app)
    url = f"/api/v1/bookings/{booking.id}"
    response = world.api(world.manager).patch(url, json={"status": "confirmed"})
    assert_error(response, 409, "invalid_transition")
    assert unchanged(app, before)


def test_cancelling_twice_is_an_invalid_transition(app, world):
    """The second cancel is 409 invalid_transition and changes nothing."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    api = world.api(world.manager)
    url = f"/api/v1/bookings/{booking.id}/cancel"
    assert api.post(url).status_code == 200
    before = snapshot(app)
    assert_error(api.post(url), 409, "invalid_transition")
    assert unchanged(app, before)


def test_completing_a_future_booking_is_422(app, world):
    """status=completed before the booking starts: refused by the service rule (422)."""
    booking = world.book(world.manager, [world.agent], london(winter_monday(), 9))
    before = snapshot(app)
    url = f"/api/v1/bookings/{booking.id}"
    response = world.api(world.manager).patch(url, json={"status": "completed"})
    assert_error(response, 422, "validation_error")
    assert unchanged(app, before)


# --- routing ---------------------------------------------------------------------------


def test_unknown_paths_and_methods_are_json(world):
    """404 and 405 under /api/ are JSON, not the HTML error page; 405 says what is allowed."""
    api = world.api(world.manager)
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(api.get("/api/v2/bookings"), 404, "not_found")
    response = api.client.delete("/api/v1/bookings/1", headers=api._headers(None))
    assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]
    assert_error(
        api.client.put("/api/v1/bookings", headers=api._headers(None)), 405, "method_not_allowed"
    )
    page = world.client.get("/no-such-page")  # outside the API: still the HTML page
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_an_unexpected_failure_is_json_and_reveals_nothing(app, world, monkeypatch):
    """An exception inside a view (in production mode) is a JSON 500 without its details,
    and the transaction is rolled back."""
    from app.api import routes

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(routes, "slots_for", explode)
    before = snapshot(app)
    body = _create_body(world, people=None)
    response = world.api(world.manager).post("/api/v1/bookings", json=body)
    assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert unchanged(app, before)
