"""People, working hours, groups and booking types through the API: each endpoint's happy path,
and bad input (unknown role, zone, group or person, duplicates, wrong JSON types, huge ids,
missing permission) answered with 4xx JSON and no change at all."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import func, select

from app.accounts.models import Group, LearnerProfile, User, WorkingHoursRule
from app.bookings.models import BookingType
from app.extensions import db
from app.outbox import OutboxMessage
from tests.api.conftest import Api, assert_error, group_id, snapshot, unchanged

HUGE = 2**63


@pytest.fixture
def admin(world) -> Api:
    user = world.factory.user("administrator", email="admin@example.test", name="Al Admin")
    world.token_for(user)
    return world.api(user)


def _send(api: Api, method: str, url: str, body=None):
    return api.client.open(url, method=method, json=body, headers=api._headers(None))


def _refused(app, api: Api, method: str, url: str, body, status: int, code: str) -> dict:
    """Send; expect this JSON error and not a single row changed."""
    before = snapshot(app)
    answer = assert_error(_send(api, method, url, body), status, code)
    assert unchanged(app, before), f"{method} {url} {body!r} wrote something"
    return answer


def _user(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one_or_none()
        if user is not None:
            _ = user.role.slug
        return user


# --- people: reading -------------------------------------------------------------------------


def test_list_people_filters_and_pages(app, world, admin):
    """Without role: active staff (as before). role, q, group (slug or id), active and paging
    narrow it; total counts every match."""
    off = world.factory.user("agent", email="off@example.test", name="Off Duty")
    _send(admin, "PATCH", f"/api/v1/people/{off.id}", {"active": False})

    body = admin.get("/api/v1/people").get_json()
    names = [p["name"] for p in body["people"]]
    assert names == ["Ada Agent", "Al Admin", "Bea Manager", "Cy Colleague"]
    assert (body["total"], body["page"], body["per_page"]) == (4, 1, None)

    learners = admin.get("/api/v1/people?role=learner").get_json()["people"]
    assert [p["id"] for p in learners] == [world.learner.id]
    assert [p["name"] for p in admin.get("/api/v1/people?q=COLL").get_json()["people"]] == [
        "Cy Colleague"
    ]
    desk = group_id(app, "desk")
    for group in ("desk", str(desk)):
        people = admin.get(f"/api/v1/people?group={group}").get_json()["people"]
        assert [p["id"] for p in people] == [world.agent.id]
        assert people[0]["groups"] == [desk]
    inactive = admin.get("/api/v1/people?active=false").get_json()["people"]
    assert [p["name"] for p in inactive] == ["Off Duty"]
    assert admin.get("/api/v1/people?active=all").get_json()["total"] == 5

    page2 = admin.get("/api/v1/people?page=2&per_page=3").get_json()
    assert [p["name"] for p in page2["people"]] == ["Cy Colleague"]
    assert (page2["total"], page2["page"], page2["per_page"]) == (4, 2, 3)


def test_colleagues_see_active_staff_only(world):
    """An agent (calendar.view_team, not people.manage): no learners, no deactivated people,
    whatever the filters; a learner's id is 404 for them."""
    api = world.api(world.agent)
    assert api.get("/api/v1/people?role=learner").get_json()["people"] == []
    assert api.get("/api/v1/people?active=all").get_json()["total"] == 3
    assert_error(api.get(f"/api/v1/people/{world.learner.id}"), 404, "not_found")
    assert api.get(f"/api/v1/people/{world.colleague.id}").get_json()["name"] == "Cy Colleague"


@pytest.mark.parametrize(
    "query,status,code",
    [
        ("role=wizard", 400, "validation_error"),
        ("group=nope", 404, "not_found"),
        ("group=424242", 404, "not_found"),
        (f"group={HUGE}", 404, "not_found"),
        ("page=0", 400, "validation_error"),
        ("page=x", 400, "validation_error"),
        (f"page={HUGE}", 400, "validation_error"),
        ("per_page=501", 400, "validation_error"),
        ("active=maybe", 400, "validation_error"),
        ("q=" + "x" * 201, 400, "validation_error"),
    ],
)
def test_bad_people_queries(app, world, admin, query, status, code):
    _refused(app, admin, "GET", f"/api/v1/people?{query}", None, status, code)


@pytest.mark.parametrize("person", ["424242", str(2**31), str(HUGE)])
def test_unknown_person_is_404(app, world, admin, person):
    _refused(app, admin, "GET", f"/api/v1/people/{person}", None, 404, "not_found")
    _refused(app, admin, "PATCH", f"/api/v1/people/{person}", {"name": "X"}, 404, "not_found")
    url = f"/api/v1/people/{person}/working-hours"
    _refused(app, admin, "PUT", url, {"week": {}}, 404, "not_found")


# --- people: creating ------------------------------------------------------------------------


def test_create_a_learner_with_links(app, world, admin):
    """A learner with assigned agent, mentor, assessor and employer: 201, Location, and the
    stored profile; GET answers the same."""
    employer = world.factory.user("employer", email="boss@example.test", name="Em Ployer")
    body = {
        "name": "Lou Learner",
        "email": "Lou@Example.test",
        "role": "learner",
        "timezone": "America/New_York",
        "assigned_agent": world.agent.id,
        "mentor": employer.id,
        "assessor": world.colleague.id,
        "employer": employer.id,
    }
    response = admin.post("/api/v1/people", json=body)
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert made["email"] == "lou@example.test" and made["role"] == "learner"
    assert (made["assigned_agent"], made["mentor"], made["assessor"], made["employer"]) == (
        world.agent.id,
        employer.id,
        world.colleague.id,
        employer.id,
    )
    assert response.headers["Location"].endswith(f"/api/v1/people/{made['id']}")
    assert admin.get(f"/api/v1/people/{made['id']}").get_json() == made
    with app.app_context():
        profile = db.session.get(LearnerProfile, made["id"])
        assert profile.assigned_agent_id == world.agent.id
        assert profile.workplace_mentor_id == employer.id
        assert db.session.get(User, made["id"]).timezone == "America/New_York"


def test_create_staff_in_groups_and_invite(app, world, admin):
    """An agent in the desk group, invited: the invitation is an outbox row (sent after the
    commit), and the person has no password yet."""
    desk = group_id(app, "desk")
    with app.app_context():
        outbox = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    body = {
        "name": "Nia New",
        "email": "nia@example.test",
        "role": "agent",
        "groups": [desk],
        "invite": True,
    }
    response = admin.post("/api/v1/people", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["groups"] == [desk] and response.get_json()["active"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox + 1
        nia = db.session.scalars(select(User).where(User.email == "nia@example.test")).one()
        assert nia.password_hash is None
        assert nia.id in {m.id for m in db.session.get(Group, desk).members}


PERSON = {"name": "Pat Person", "email": "pat@example.test", "role": "agent"}
BAD_CREATE = [
    ("unknown role", {"role": "wizard"}, 400, "validation_error"),
    ("unknown zone", {"timezone": "Mars/Olympus_Mons"}, 400, "unknown_zone"),
    ("zone not text", {"timezone": 1}, 400, "unknown_zone"),
    ("duplicate email", {"email": "ada@example.test"}, 409, "conflict"),
    ("duplicate email, other case", {"email": " ADA@example.TEST "}, 409, "conflict"),
    ("invalid email", {"email": "not-an-address"}, 400, "validation_error"),
    ("missing email", {"email": None}, 400, "missing_parameter"),
    ("missing role", {"role": None}, 400, "missing_parameter"),
    ("name not text", {"name": 5}, 400, "validation_error"),
    ("name too long", {"name": "x" * 201}, 400, "validation_error"),
    ("active not a bool", {"active": "yes"}, 400, "validation_error"),
    ("invite not a bool", {"invite": "true"}, 400, "validation_error"),
    ("groups not a list", {"groups": "1"}, 400, "validation_error"),
    ("group id a string", {"groups": ["1"]}, 400, "validation_error"),
    ("group id a bool", {"groups": [True]}, 400, "validation_error"),
    ("unknown group", {"groups": [424242]}, 400, "validation_error"),
    ("huge group id", {"groups": [HUGE]}, 400, "validation_error"),
    ("unknown field", {"password": "hunter22hunter22"}, 400, "validation_error"),
    ("links on staff", {"mentor": "AGENT"}, 400, "validation_error"),
    ("unknown mentor", {"role": "learner", "mentor": 424242}, 400, "validation_error"),
    ("huge mentor id", {"role": "learner", "mentor": HUGE}, 400, "validation_error"),
    ("learner as assessor", {"role": "learner", "assessor": "LEARNER"}, 400, "validation_error"),
    ("a role with more rights", {"role": "owner"}, 403, "forbidden"),
    ("invite someone inactive", {"active": False, "invite": True}, 400, "validation_error"),
]


@pytest.mark.parametrize("label,change,status,code", BAD_CREATE, ids=[c[0] for c in BAD_CREATE])
def test_bad_create_person(app, world, admin, label, change, status, code):
    ids = {"AGENT": world.agent.id, "LEARNER": world.learner.id}
    body = {**PERSON, **{k: ids.get(v, v) if isinstance(v, str) else v for k, v in change.items()}}
    body = {k: v for k, v in body.items() if v is not None}
    _refused(app, admin, "POST", "/api/v1/people", body, status, code)


@pytest.mark.parametrize("data", ["{not json", "", "[1]", "null"])
def test_people_bodies_must_be_json_objects(app, world, admin, data):
    before = snapshot(app)
    for method, url in (
        ("POST", "/api/v1/people"),
        ("PATCH", f"/api/v1/people/{world.agent.id}"),
        ("PUT", f"/api/v1/people/{world.agent.id}/working-hours"),
        ("POST", "/api/v1/groups"),
        ("POST", "/api/v1/booking-types"),
    ):
        response = admin.client.open(
            url,
            method=method,
            data=data,
            content_type="application/json",
            headers=admin._headers(None),
        )
        assert_error(response, 400, "invalid_json")
    assert unchanged(app, before)


# --- people: changing ------------------------------------------------------------------------


def test_patch_person_changes_only_what_is_sent(app, world, admin):
    """Rename, move zone, regroup, then deactivate: each answer shows the stored person."""
    url = f"/api/v1/people/{world.colleague.id}"
    desk = group_id(app, "desk")
    response = admin.patch(url, json={"name": "Cy Renamed", "timezone": "Asia/Tokyo"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == "Cy Renamed"
    assert response.get_json()["email"] == "cy@example.test"
    assert response.get_json()["timezone"] == "Asia/Tokyo"
    assert admin.patch(url, json={"groups": [desk]}).get_json()["groups"] == [desk]
    assert admin.patch(url, json={"role": "manager"}).get_json()["role"] == "manager"
    assert admin.patch(url, json={"active": False}).get_json()["active"] is False
    colleague = _user(app, "cy@example.test")
    assert (colleague.name, colleague.timezone, colleague.active) == (
        "Cy Renamed",
        "Asia/Tokyo",
        False,
    )
    assert colleague.role.slug == "manager"


def test_patch_learner_links_and_clear_them(app, world, admin):
    url = f"/api/v1/people/{world.learner.id}"
    body = admin.patch(url, json={"mentor": world.agent.id, "assessor": world.colleague.id})
    assert (body.get_json()["mentor"], body.get_json()["assessor"]) == (
        world.agent.id,
        world.colleague.id,
    )
    cleared = admin.patch(url, json={"mentor": None}).get_json()
    assert cleared["mentor"] is None and cleared["assessor"] == world.colleague.id


BAD_PATCH = [
    ("empty", {}, 400, "validation_error"),
    ("unknown role", {"role": "wizard"}, 400, "validation_error"),
    ("unknown zone", {"timezone": "Europe/Atlantis"}, 400, "unknown_zone"),
    ("duplicate email", {"email": "ada@example.test"}, 409, "conflict"),
    ("name null", {"name": None}, 400, "validation_error"),
    ("role null", {"role": None}, 400, "validation_error"),
    ("active not a bool", {"active": 0}, 400, "validation_error"),
    ("invite is for POST only", {"invite": True}, 400, "validation_error"),
    ("unknown group", {"groups": [424242]}, 400, "validation_error"),
    ("huge group id", {"groups": [HUGE]}, 400, "validation_error"),
    ("links on staff", {"assigned_agent": "AGENT"}, 400, "validation_error"),
    ("a role with more rights", {"role": "owner"}, 403, "forbidden"),
    ("several, one bad", {"name": "Fine", "timezone": "Nowhere/Land"}, 400, "unknown_zone"),
    ("several, duplicate last", {"name": "Fine", "email": "lee@example.test"}, 409, "conflict"),
    (
        "renamed, then an unknown group",
        {"name": "Fine", "groups": [424242]},
        400,
        "validation_error",
    ),
    ("renamed, then a link refused", {"name": "Fine", "mentor": "AGENT"}, 400, "validation_error"),
]


@pytest.mark.parametrize("label,change,status,code", BAD_PATCH, ids=[c[0] for c in BAD_PATCH])
def test_bad_patch_person(app, world, admin, label, change, status, code):
    ids = {"AGENT": world.agent.id}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in change.items()}
    url = f"/api/v1/people/{world.colleague.id}"
    _refused(app, admin, "PATCH", url, body, status, code)


def test_nobody_edits_someone_with_more_rights_and_the_last_owner_stays(app, world, admin):
    """An administrator cannot change an owner (403); the only owner cannot demote or
    deactivate themself (400); nothing is written either way."""
    owner = world.factory.user("owner", email="owner@example.test", name="Olive Owner")
    world.token_for(owner)
    url = f"/api/v1/people/{owner.id}"
    _refused(app, admin, "PATCH", url, {"name": "Taken Over"}, 403, "forbidden")
    hours = f"{url}/working-hours"
    _refused(app, admin, "PUT", hours, {"week": {}}, 403, "forbidden")
    own = world.api(owner)
    _refused(app, own, "PATCH", url, {"role": "agent"}, 400, "validation_error")
    _refused(app, own, "PATCH", url, {"active": False}, 400, "validation_error")


# --- working hours ---------------------------------------------------------------------------


def test_put_working_hours_replaces_the_week_and_zone(app, world, admin):
    """A manager sets a colleague's zone and week; the answer is the stored week, every day."""
    url = f"/api/v1/people/{world.colleague.id}/working-hours"
    week = {"mon": [["13:00", "17:00"], ["08:30", "12:00"]], "sat": [["10:00", "12:00"]]}
    response = admin.put(url, json={"timezone": "America/New_York", "week": week})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "timezone": "America/New_York",
        "week": {
            "mon": [["08:30", "12:00"], ["13:00", "17:00"]],
            "tue": [],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [["10:00", "12:00"]],
            "sun": [],
        },
    }
    with app.app_context():
        rules = db.session.scalars(
            select(WorkingHoursRule)
            .where(WorkingHoursRule.user_id == world.colleague.id)
            .order_by(WorkingHoursRule.weekday, WorkingHoursRule.start_time)
        ).all()
        assert [(r.weekday, r.start_time, r.end_time) for r in rules] == [
            (0, time(8, 30), time(12)),
            (0, time(13), time(17)),
            (5, time(10), time(12)),
        ]
        assert db.session.get(User, world.colleague.id).timezone == "America/New_York"


def test_an_agent_may_move_their_own_zone(app, world):
    api = world.api(world.agent)
    url = f"/api/v1/people/{world.agent.id}/working-hours"
    response = api.put(
        url, json={"timezone": "Europe/Paris", "week": {"fri": [["09:00", "12:00"]]}}
    )
    assert response.status_code == 200, response.get_json()
    assert _user(app, "ada@example.test").timezone == "Europe/Paris"
    # ...but not a colleague's hours
    other = f"/api/v1/people/{world.colleague.id}/working-hours"
    _refused(app, api, "PUT", other, {"week": {}}, 403, "forbidden")


BAD_WEEKS = [
    ("unknown day", {"week": {"monday": [["09:00", "17:00"]]}}, "validation_error"),
    ("not a time", {"week": {"mon": [["9am", "17:00"]]}}, "validation_error"),
    ("25 o'clock", {"week": {"mon": [["09:00", "25:00"]]}}, "validation_error"),
    ("ends before it starts", {"week": {"mon": [["17:00", "09:00"]]}}, "validation_error"),
    ("overlap", {"week": {"tue": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "validation_error"),
    ("three ends", {"week": {"mon": [["09:00", "12:00", "13:00"]]}}, "validation_error"),
    ("day not a list", {"week": {"mon": "09:00-17:00"}}, "validation_error"),
    ("week not an object", {"week": [["09:00", "17:00"]]}, "validation_error"),
    ("times as numbers", {"week": {"mon": [[9, 17]]}}, "validation_error"),
    ("missing week", {"timezone": "Europe/London"}, "missing_parameter"),
    ("unknown zone", {"timezone": "Mars/Base", "week": {}}, "unknown_zone"),
    (
        "good week, bad zone",
        {"timezone": "Nope", "week": {"mon": [["09:00", "10:00"]]}},
        "unknown_zone",
    ),
    ("unknown field", {"week": {}, "overrides": []}, "validation_error"),
    (
        "zone moved, then a bad week",
        {"timezone": "Asia/Tokyo", "week": {"mon": [["17:00", "09:00"]]}},
        "validation_error",
    ),
]


@pytest.mark.parametrize("label,body,code", BAD_WEEKS, ids=[c[0] for c in BAD_WEEKS])
def test_bad_working_hours(app, world, admin, label, body, code):
    url = f"/api/v1/people/{world.colleague.id}/working-hours"
    _refused(app, admin, "PUT", url, body, 400, code)


# --- groups ----------------------------------------------------------------------------------


def test_groups_list_create_and_members(app, world, admin):
    listing = admin.get("/api/v1/groups").get_json()["groups"]
    assert [(g["slug"], g["members"]) for g in listing] == [("desk", [world.agent.id])]
    response = admin.post("/api/v1/groups", json={"name": "Night desk"})
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert (made["name"], made["slug"], made["members"], made["system"]) == (
        "Night desk",
        "night-desk",
        [],
        False,
    )
    url = f"/api/v1/groups/{made['id']}/members"
    body = admin.put(url, json={"members": [world.colleague.id, world.agent.id]}).get_json()
    assert body["members"] == [world.agent.id, world.colleague.id]  # by name
    assert admin.put(url, json={"members": []}).get_json()["members"] == []
    with app.app_context():
        assert db.session.get(Group, made["id"]).members == []


BAD_GROUPS = [
    ("POST", "/api/v1/groups", {"name": "Assessment desk"}, 409, "conflict"),
    ("POST", "/api/v1/groups", {"name": "  "}, 400, "validation_error"),
    ("POST", "/api/v1/groups", {"name": 7}, 400, "validation_error"),
    ("POST", "/api/v1/groups", {}, 400, "missing_parameter"),
    ("POST", "/api/v1/groups", {"name": "x" * 201}, 400, "validation_error"),
    ("PUT", "DESK", {"members": ["LEARNER"]}, 400, "validation_error"),
    ("PUT", "DESK", {"members": [424242]}, 400, "validation_error"),
    ("PUT", "DESK", {"members": [HUGE]}, 400, "validation_error"),
    ("PUT", "DESK", {"members": ["1"]}, 400, "validation_error"),
    ("PUT", "DESK", {"members": 1}, 400, "validation_error"),
    ("PUT", "DESK", {}, 400, "missing_parameter"),
    ("PUT", "/api/v1/groups/424242/members", {"members": []}, 404, "not_found"),
    ("PUT", f"/api/v1/groups/{HUGE}/members", {"members": []}, 404, "not_found"),
]


@pytest.mark.parametrize("method,url,body,status,code", BAD_GROUPS)
def test_bad_group_requests(app, world, admin, method, url, body, status, code):
    if url == "DESK":
        url = f"/api/v1/groups/{group_id(app, 'desk')}/members"
    if body.get("members") == ["LEARNER"]:
        body = {"members": [world.learner.id]}
    _refused(app, admin, method, url, body, status, code)


# --- booking types ---------------------------------------------------------------------------


def test_create_and_patch_a_booking_type(app, world, admin):
    """Every documented field goes in; GET lists it with the same values; deactivating takes
    it off the list, and it can be reactivated."""
    desk = group_id(app, "desk")
    body = {
        "name": "Induction",
        "slug": "induction",
        "description": "Your first meeting.",
        "duration_minutes": 45,
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 10,
        "location_modes": ["face_to_face", "remote"],
        "default_location_mode": "remote",
        "location_detail": "https://meet.example.test/induction",
        "requires_approval": True,
        "bookable_by": ["public", "learner"],
        "availability_source": "group",
        "group": desk,
        "minimum_notice_minutes": 120,
        "earliest_day_public": 2,
        "earliest_day_staff": 0,
        "disabled_window_minutes": 30,
        "horizon_days": 60,
        "weekends_enabled": True,
        "max_per_day": 3,
        "colour": "#aa3300",
        "active": True,
        "face_to_face_detail": "",
        "remote_detail": "",
        "planned_otj_minutes": 90,
        "complete_on_verified": True,
    }
    response = admin.post("/api/v1/booking-types", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == body
    listed = {t["slug"]: t for t in admin.get("/api/v1/booking-types").get_json()["booking_types"]}
    assert listed["induction"] == body

    url = "/api/v1/booking-types/induction"
    patched = admin.patch(url, json={"duration_minutes": 30, "active": False}).get_json()
    assert (patched["duration_minutes"], patched["active"], patched["name"]) == (
        30,
        False,
        "Induction",
    )
    listed = {t["slug"] for t in admin.get("/api/v1/booking-types").get_json()["booking_types"]}
    assert "induction" not in listed
    assert admin.patch(url, json={"active": True}).get_json()["active"] is True
    # null hands a window field back to the organisation's setting.
    reset = admin.patch(url, json={"horizon_days": None, "weekends_enabled": None}).get_json()
    assert (reset["horizon_days"], reset["weekends_enabled"], reset["max_per_day"]) == (
        None,
        None,
        3,
    )
    with app.app_context():
        kind = db.session.scalars(select(BookingType).where(BookingType.slug == "induction")).one()
        assert (kind.duration_minutes, kind.availability_group_id, kind.active) == (30, desk, True)
        assert (kind.earliest_day_public, kind.horizon_days, kind.colour) == (2, None, "#aa3300")


def test_a_slug_is_made_from_the_name(world, admin):
    response = admin.post("/api/v1/booking-types", json={"name": "Progress Review"})
    assert response.status_code == 201
    assert response.get_json()["slug"] == "progress-review"


BAD_TYPES = [
    ("POST", {}, 400, "missing_parameter"),
    ("POST", {"name": "Twin", "slug": "review"}, 400, "validation_error"),
    ("POST", {"name": "Bad slug", "slug": "Not A Slug"}, 400, "validation_error"),
    ("POST", {"name": "X", "duration_minutes": "60"}, 400, "validation_error"),
    ("POST", {"name": "X", "duration_minutes": 0}, 400, "validation_error"),
    ("POST", {"name": "X", "duration_minutes": True}, 400, "validation_error"),
    ("POST", {"name": "X", "location_modes": ["hologram"]}, 400, "validation_error"),
    ("POST", {"name": "X", "location_modes": []}, 400, "validation_error"),
    ("POST", {"name": "X", "bookable_by": "public"}, 400, "validation_error"),
    (
        "POST",
        {"name": "X", "location_modes": ["remote"], "default_location_mode": "teams"},
        400,
        "validation_error",
    ),
    (
        "POST",
        {"name": "X", "availability_source": "group", "group": 424242},
        400,
        "validation_error",
    ),
    ("POST", {"name": "X", "availability_source": "group", "group": HUGE}, 400, "validation_error"),
    ("POST", {"name": "X", "availability_source": "group"}, 400, "validation_error"),
    ("PATCH", {}, 400, "validation_error"),
    ("PATCH", {"slug": "planning"}, 400, "validation_error"),
    ("PATCH", {"name": None}, 400, "validation_error"),
    ("PATCH", {"active": "no"}, 400, "validation_error"),
    ("PATCH", {"group": "desk"}, 400, "validation_error"),
    ("PATCH", {"horizon_days": 0}, 400, "validation_error"),
    ("PATCH", {"earliest_day_public": -1}, 400, "validation_error"),
    ("PATCH", {"max_per_day": "2"}, 400, "validation_error"),
    ("PATCH", {"weekends_enabled": "yes"}, 400, "validation_error"),
    ("PATCH", {"colour": "red"}, 400, "validation_error"),
    ("PATCH", {"colour": None}, 400, "validation_error"),
]


@pytest.mark.parametrize("method,body,status,code", BAD_TYPES)
def test_bad_booking_type_requests(app, world, admin, method, body, status, code):
    url = "/api/v1/booking-types" if method == "POST" else "/api/v1/booking-types/review"
    _refused(app, admin, method, url, body, status, code)


def test_unknown_booking_type_is_404(app, world, admin):
    _refused(app, admin, "PATCH", "/api/v1/booking-types/nope", {"active": False}, 404, "not_found")
