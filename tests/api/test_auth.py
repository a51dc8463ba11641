"""Bearer tokens, and only bearer tokens, open the API; permissions are checked per route."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import ApiToken, User
from app.database import begin_write, utcnow
from app.extensions import db
from tests.api.conftest import (
    Api,
    assert_error,
    group_id,
    iso,
    london,
    snapshot,
    unchanged,
    winter_monday,
)
from tests.conftest import login

PUBLIC = {"api.openapi"}


def _manage_requests(world, tag: str = "x") -> list[tuple[str, str, str, dict | None, int]]:
    """The routes that run the organisation (people, hours, groups, booking types), each valid
    for an owner or administrator; ``tag`` keeps created names and emails unique."""
    desk = group_id(world.app, "desk")
    agent, colleague = world.agent.id, world.colleague.id
    return [
        ("api.people", "GET", "/api/v1/people?role=agent&page=1", None, 200),
        ("api.get_person", "GET", f"/api/v1/people/{agent}", None, 200),
        (
            "api.create_person",
            "POST",
            "/api/v1/people",
            {"name": f"New {tag}", "email": f"new-{tag}@example.test", "role": "agent"},
            201,
        ),
        ("api.update_person", "PATCH", f"/api/v1/people/{colleague}", {"name": f"Cy {tag}"}, 200),
        (
            "api.set_working_hours",
            "PUT",
            f"/api/v1/people/{colleague}/working-hours",
            {"week": {"mon": [["10:00", "16:00"]]}},
            200,
        ),
        ("api.list_groups", "GET", "/api/v1/groups", None, 200),
        ("api.create_group", "POST", "/api/v1/groups", {"name": f"Night desk {tag}"}, 201),
        (
            "api.set_group_members",
            "PUT",
            f"/api/v1/groups/{desk}/members",
            {"members": [agent, colleague]},
            200,
        ),
        ("api.create_booking_type", "POST", "/api/v1/booking-types", {"name": f"Intro {tag}"}, 201),
        (
            "api.update_booking_type",
            "PATCH",
            "/api/v1/booking-types/review",
            {"description": f"Bring your portfolio ({tag})."},
            200,
        ),
    ]


def _requests(world) -> list[tuple[str, str, str, dict | None, int]]:
    """(endpoint, method, url, json, status when allowed) for every protected API route,
    each valid for an administrator."""
    day = winter_monday()
    mine = world.book(world.manager, [world.agent], london(day, 9))
    other = world.book(world.manager, [world.agent], london(day, 11))
    window = f"start={iso(london(day, 0))}&end={iso(london(day + timedelta(days=1), 0))}"
    window = window.replace("+", "%2B")
    return [
        ("api.booking_types", "GET", "/api/v1/booking-types", None, 200),
        (
            "api.availability",
            "GET",
            f"/api/v1/availability?booking_type=review&{window}&tz=Europe/London",
            None,
            200,
        ),
        ("api.people", "GET", "/api/v1/people", None, 200),
        ("api.list_bookings", "GET", f"/api/v1/bookings?{window}", None, 200),
        (
            "api.create_booking",
            "POST",
            "/api/v1/bookings",
            {"booking_type": "review", "start": iso(london(day, 14)), "people": [world.agent.id]},
            201,
        ),
        ("api.get_booking", "GET", f"/api/v1/bookings/{mine.id}", None, 200),
        (
            "api.update_booking",
            "PATCH",
            f"/api/v1/bookings/{mine.id}",
            {"description": "Bring the portfolio."},
            200,
        ),
        ("api.cancel_booking", "POST", f"/api/v1/bookings/{other.id}/cancel", None, 200),
        *_manage_requests(world),
    ]


def _send(client, method: str, url: str, body, headers: dict):
    return client.open(url, method=method, json=body, headers=headers)


def _revoke(app, user_id: int) -> None:
    with app.app_context():
        begin_write()
        for row in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)):
            row.revoked_at = utcnow()
        db.session.commit()


def _disable(app, user_id: int) -> None:
    with app.app_context():
        begin_write()
        db.session.get(User, user_id).active = False
        db.session.commit()


def test_every_route_refuses_callers_without_a_valid_token(app, factory, world):
    """Each protected route: no token, a wrong scheme, a garbage token, a revoked token, a
    disabled user's token and a signed-in browser session all get 401 JSON and write nothing;
    the valid token then works."""
    owner = factory.user("owner", email="owner@example.test")
    browser = app.test_client()
    login(browser, owner.email)  # a live session cookie of the most powerful user
    revoked_user = factory.user("booking-manager", email="gone@example.test")
    revoked = world.token_for(revoked_user)
    _revoke(app, revoked_user.id)
    disabled_user = factory.user("booking-manager", email="off@example.test")
    disabled = world.token_for(disabled_user)
    _disable(app, disabled_user.id)
    administrator = factory.user("administrator", email="admin@example.test")
    valid = world.token_for(administrator)

    requests = _requests(world)
    protected = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    sent = {endpoint for endpoint, *_ in requests}
    assert protected - PUBLIC <= sent
    assert {(e, m) for e, m, *_ in requests} >= {
        (r.endpoint, m)
        for r in app.url_map.iter_rules()
        if r.endpoint in protected - PUBLIC
        for m in r.methods - {"HEAD", "OPTIONS"}
    }

    cases = {
        "no token": (world.client, {}),
        "basic auth": (world.client, {"Authorization": "Basic b3duZXI6cGFzc3dvcmQ="}),
        "empty bearer": (world.client, {"Authorization": "Bearer "}),
        "garbage token": (world.client, {"Authorization": "Bearer sb_not-a-real-token"}),
        "revoked token": (world.client, {"Authorization": f"Bearer {revoked}"}),
        "disabled user": (world.client, {"Authorization": f"Bearer {disabled}"}),
        "session cookie only": (browser, {}),
    }
    failures = []
    for endpoint, method, url, body, ok in requests:
        before = snapshot(app)
        for label, (client, headers) in cases.items():
            response = _send(client, method, url, body, headers)
            if response.status_code != 401 or not response.is_json:
                failures.append(f"{endpoint} with {label}: {response.status_code}")
                continue
            if response.get_json()["error"] != "unauthorized":
                failures.append(f"{endpoint} with {label}: {response.get_json()}")
            if not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                failures.append(f"{endpoint} with {label}: no Bearer challenge")
        if not unchanged(app, before):
            failures.append(f"{endpoint}: refused requests wrote something")
        response = _send(world.client, method, url, body, {"Authorization": f"Bearer {valid}"})
        if response.status_code != ok:
            failures.append(f"{endpoint} with a valid token: {response.status_code}, want {ok}")
    assert not failures, "\n".join(failures)
    assert browser.get("/bookings").status_code == 200  # the session itself still works


def test_bearer_scheme_is_case_insensitive_and_cookie_never_needed(world):
    """'bearer' works like 'Bearer', and API responses set no session cookie."""
    token = world.tokens[world.agent.id]
    response = world.client.get(
        "/api/v1/booking-types", headers={"Authorization": f"bearer  {token}"}
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_a_session_plus_someone_elses_token_acts_as_the_token(app, factory, world):
    """With an owner's session cookie and a learner's token, the learner is who acts."""
    owner = factory.user("owner", email="owner@example.test")
    login(world.client, owner.email)
    response = Api(world.client, world.tokens[world.learner.id]).get("/api/v1/people")
    assert_error(response, 403, "forbidden")


def _last_used(app, user):
    with app.app_context():
        query = select(ApiToken.last_used_at).where(ApiToken.user_id == user.id)
        value = db.session.scalars(query).one()
        db.session.rollback()
        return value


def test_a_read_writes_nothing_and_the_periodic_job_records_the_use(app, world):
    """A read leaves every table as it was (its use is noted in Redis); the periodic job
    stores it as ``last_used_at``, once; within the minute further calls note nothing."""
    from app import jobs
    from tests.accounts.conftest import changed_tables, db_state

    assert _last_used(app, world.agent) is None
    before = db_state(app)
    assert world.api(world.agent).get("/api/v1/booking-types").status_code == 200
    assert changed_tables(before, db_state(app)) == []
    with app.app_context():
        assert jobs.record_api_token_uses() == 1
        assert jobs.record_api_token_uses() == 0  # taken: nothing noted twice
    first_use = _last_used(app, world.agent)
    assert first_use is not None and utcnow() - first_use < timedelta(minutes=1)

    assert world.api(world.agent).get("/api/v1/booking-types").status_code == 200
    with app.app_context():
        assert jobs.record_api_token_uses() == 0
    assert _last_used(app, world.agent) == first_use


def test_a_read_answers_while_another_writer_holds_the_lock(app, world, database_url):
    """Reads never wait for the write lock: with a writer holding it (SQLite ``BEGIN
    IMMEDIATE``; on PostgreSQL a lock that lets only reads through on the tokens' table),
    an API read with a never-used token answers at once instead of timing out."""
    import time

    from sqlalchemy import create_engine, text

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as writer:
        if writer.dialect.name == "sqlite":
            writer.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            writer.execute(text("BEGIN"))
            writer.execute(text("LOCK TABLE api_tokens IN EXCLUSIVE MODE"))
        try:
            started = time.monotonic()
            response = world.api(world.manager).get("/api/v1/booking-types")
            elapsed = time.monotonic() - started
        finally:
            writer.exec_driver_sql("ROLLBACK")
    engine.dispose()
    assert response.status_code == 200
    assert elapsed < 2, f"the read waited {elapsed:.1f} s for the write lock"


def test_the_openapi_document_needs_no_token(world):
    """The document is public: it describes the API, not anyone's data."""
    response = world.client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.1")


# --- permissions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,url",
    [
        (
            "GET",
            "/api/v1/availability?booking_type=review&start=2030-01-07T00:00Z"
            "&end=2030-01-08T00:00Z&tz=UTC",
        ),
        ("GET", "/api/v1/people"),
        ("POST", "/api/v1/bookings"),
    ],
)
def test_a_learner_is_forbidden_staff_routes(app, world, method, url):
    """A learner's token: 403 forbidden on availability, people and creating, nothing written."""
    before = snapshot(app)
    body = {"booking_type": "review", "start": "2030-01-07T10:00:00Z", "people": [world.agent.id]}
    response = world.api(world.learner).client.open(
        url,
        method=method,
        json=body if method == "POST" else None,
        headers={"Authorization": f"Bearer {world.tokens[world.learner.id]}"},
    )
    assert_error(response, 403, "forbidden")
    assert unchanged(app, before)


def test_an_agent_cannot_book_someone_else_without_assign(app, world):
    """Agents lack bookings.assign: booking a colleague is 403 and writes nothing; booking
    themself works."""
    day = winter_monday()
    api = world.api(world.agent)
    before = snapshot(app)
    body = {"booking_type": "review", "start": iso(london(day, 10))}
    response = api.post("/api/v1/bookings", json={**body, "people": [world.colleague.id]})
    assert_error(response, 403, "forbidden")
    assert unchanged(app, before)
    response = api.post("/api/v1/bookings", json={**body, "people": [world.agent.id]})
    assert response.status_code == 201, response.get_json()


def test_an_agent_cannot_approve(app, world):
    """Approving needs bookings.approve: an agent's PATCH status=confirmed on their own
    provisional booking is 403; the manager's works."""
    day = winter_monday()
    booking = world.book(world.manager, [world.agent], london(day, 10), kind=world.approval)
    before = snapshot(app)
    url = f"/api/v1/bookings/{booking.id}"
    assert_error(world.api(world.agent).patch(url, json={"status": "confirmed"}), 403, "forbidden")
    assert unchanged(app, before)
    response = world.api(world.manager).patch(url, json={"status": "confirmed"})
    assert response.status_code == 200 and response.get_json()["status"] == "confirmed"


# Who may use each route that runs the organisation (the screens' permissions, SPEC P1).
MANAGE_ALLOWED = {
    "api.people": {"owner", "administrator", "manager", "booking-manager", "agent"},
    "api.get_person": {"owner", "administrator", "manager", "booking-manager", "agent"},
    "api.create_person": {"owner", "administrator"},
    "api.update_person": {"owner", "administrator"},
    "api.set_working_hours": {"owner", "administrator"},
    "api.list_groups": {"owner", "administrator"},
    "api.create_group": {"owner", "administrator"},
    "api.set_group_members": {"owner", "administrator"},
    "api.create_booking_type": {"owner", "administrator"},
    "api.update_booking_type": {"owner", "administrator"},
}
ROLES = ["owner", "administrator", "manager", "booking-manager", "agent", "learner", "employer"]


@pytest.mark.parametrize("role", ROLES)
def test_every_manage_route_by_role(app, factory, world, role):
    """Each role × each people/groups/hours/booking-type route: allowed roles succeed; every
    other role gets 403 forbidden JSON and nothing is written."""
    assert {e for e, *_ in _manage_requests(world)} == set(MANAGE_ALLOWED)
    caller = factory.user(role, email=f"{role}-caller@example.test")
    api = Api(world.client, world.token_for(caller))
    failures = []
    for endpoint, method, url, body, ok in _manage_requests(world, role):
        before = snapshot(app)
        response = api.client.open(url, method=method, json=body, headers=api._headers(None))
        if role in MANAGE_ALLOWED[endpoint]:
            if response.status_code != ok:
                failures.append(f"{endpoint}: {response.status_code} {response.get_json()}")
            continue
        if response.status_code != 403 or response.get_json()["error"] != "forbidden":
            failures.append(f"{endpoint}: {response.status_code}, want 403 forbidden")
        if not unchanged(app, before):
            failures.append(f"{endpoint}: a refused request wrote something")
    assert not failures, "\n".join(failures)


def test_own_working_hours_need_hours_edit_own(app, world):
    """An agent (hours.edit_own) replaces their own week; a learner (no hours.edit_own) is
    refused on their own id, and nobody learns whether another id exists."""
    body = {"week": {"tue": [["08:00", "12:00"], ["13:00", "15:30"]]}}
    response = world.api(world.agent).client.put(
        f"/api/v1/people/{world.agent.id}/working-hours",
        json=body,
        headers=world.api(world.agent)._headers(None),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["week"]["tue"] == [["08:00", "12:00"], ["13:00", "15:30"]]
    assert response.get_json()["week"]["mon"] == []
    learner = world.api(world.learner)
    before = snapshot(app)
    for person in (world.learner.id, world.agent.id, 424242):
        url = f"/api/v1/people/{person}/working-hours"
        assert_error(
            learner.client.put(url, json=body, headers=learner._headers(None)), 403, "forbidden"
        )
    assert unchanged(app, before)
