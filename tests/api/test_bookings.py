"""Happy paths: types, slots in the caller's zone, the booking lifecycle, lists and people."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from app.accounts.models import ApiToken, Group, User
from app.bookings.models import AuditEntry, Booking, Hold, Status
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.api.conftest import LONDON, iso, london, summer_monday, winter_monday


def _availability(api, **query):
    return api.get("/api/v1/availability?" + urlencode(query))


def _day_range(day, zone: str = "Europe/London") -> dict:
    return {
        "start": iso(london(day, 0)),
        "end": iso(london(day + timedelta(days=1), 0)),
        "tz": zone,
    }


def test_booking_types_lists_the_active_ones(world):
    """Active types with every contract field; inactive ones are left out."""
    world.factory.booking_type(slug="retired", name="Retired", active=False)
    response = world.api(world.learner).get("/api/v1/booking-types")
    assert response.status_code == 200
    types = {t["slug"]: t for t in response.get_json()["booking_types"]}
    assert set(types) == {"review", "planning"}
    assert types["planning"] == {
        "slug": "planning",
        "name": "Planning meeting",
        "duration_minutes": 60,
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "location_modes": ["face_to_face", "remote", "teams"],
        "requires_approval": True,
        "bookable_by": ["staff"],
        "availability_source": "group",
        "description": "",
        "default_location_mode": None,
        "location_detail": "",
        "face_to_face_detail": "",
        "remote_detail": "",
        "planned_otj_minutes": None,
        "complete_on_verified": False,
        "group": types["review"]["group"],
        "minimum_notice_minutes": None,
        "earliest_day_public": None,
        "earliest_day_staff": None,
        "disabled_window_minutes": None,
        "horizon_days": 400,  # the world's planning type looks a year ahead
        "weekends_enabled": None,
        "max_per_day": None,
        "colour": "#2457a7",
        "active": True,
    }
    assert types["review"]["group"] is not None


def test_availability_is_rendered_in_the_requested_zone(world):
    """Ada works 09:00–17:00 London; New York sees 04:00–11:00 starts at -05:00 in winter."""
    day = winter_monday()
    api = world.api(world.manager)
    response = _availability(api, booking_type="review", **_day_range(day, "America/New_York"))
    assert response.status_code == 200
    slots = response.get_json()["slots"]
    assert len(slots) == 8
    assert all(s["start"].endswith("-05:00") and s["end"].endswith("-05:00") for s in slots)
    assert slots[0] == {
        "start": f"{day.isoformat()}T04:00:00-05:00",
        "end": f"{day.isoformat()}T05:00:00-05:00",
        "people": [world.agent.id],
    }
    first = datetime.fromisoformat(slots[0]["start"])
    assert first == london(day, 9) and first.astimezone(LONDON).hour == 9
    in_london = _availability(api, booking_type="review", **_day_range(day))
    assert [s["start"] for s in in_london.get_json()["slots"]][:2] == [
        f"{day.isoformat()}T09:00:00+00:00",
        f"{day.isoformat()}T10:00:00+00:00",
    ]


def test_availability_reads_naive_times_in_tz(world):
    """start/end without an offset are local times in tz: New York's day, New York's slots."""
    day = winter_monday()
    query = {
        "booking_type": "review",
        "start": f"{day.isoformat()}T05:00:00",  # 10:00 London
        "end": f"{day.isoformat()}T07:00:00",  # 12:00 London
        "tz": "America/New_York",
    }
    slots = _availability(world.api(world.manager), **query).get_json()["slots"]
    assert [s["start"] for s in slots] == [
        f"{day.isoformat()}T05:00:00-05:00",
        f"{day.isoformat()}T06:00:00-05:00",
    ]


def test_availability_with_people_and_busy_time(world):
    """people= asks for those people instead of the type's group; their bookings are busy."""
    day = winter_monday()
    api = world.api(world.manager)
    world.book(world.manager, [world.colleague], london(day, 9))
    query = {"booking_type": "review", **_day_range(day), "people": str(world.colleague.id)}
    slots = _availability(api, **query).get_json()["slots"]
    assert len(slots) == 7 and slots[0]["start"].startswith(f"{day.isoformat()}T10:00")
    assert all(s["people"] == [world.colleague.id] for s in slots)
    both = {**query, "people": f"{world.agent.id},{world.colleague.id}"}
    slots = _availability(api, **both).get_json()["slots"]
    assert len(slots) == 7 and set(slots[0]["people"]) == {world.agent.id, world.colleague.id}


def test_create_read_reschedule_edit_cancel(app, world):
    """The whole life of a booking through the API, with audit, holds and outbox rows."""
    day = winter_monday()
    api = world.api(world.manager)
    body = {
        "booking_type": "review",
        "start": f"{day.isoformat()}T05:00:00-05:00",  # 10:00 London
        "people": [world.agent.id],
        "learner": world.learner.id,
        "location_mode": "remote",
        "location_detail": "https://meet.example.test/room",
        "description": "Portfolio review.",
    }
    created = api.post("/api/v1/bookings?tz=America/New_York", json=body)
    assert created.status_code == 201, created.get_json()
    booking = created.get_json()
    assert created.headers["Location"] == f"/api/v1/bookings/{booking['id']}"
    assert booking["status"] == "confirmed"
    assert booking["start"] == f"{day.isoformat()}T05:00:00-05:00"
    assert booking["end"] == f"{day.isoformat()}T06:00:00-05:00"
    assert booking["owner"] == world.agent.id and booking["learner"] == world.learner.id
    assert booking["booking_type"] == "review" and booking["title"] == "Review"
    assert booking["location_mode"] == "remote" and booking["rebook_of"] is None
    assert booking["sequence"] == 0 and booking["uid"]
    assert sorted((a["user_id"], a["role"]) for a in booking["attendees"]) == sorted(
        [(world.agent.id, "agent"), (world.learner.id, "learner")]
    )
    assert all(a["email"] is None for a in booking["attendees"])
    url = created.headers["Location"]

    fetched = api.get(url)
    assert fetched.status_code == 200
    assert fetched.get_json()["start"] == iso(london(day, 10))  # UTC without tz
    assert fetched.get_json()["id"] == booking["id"]
    assert world.api(world.agent).get(url).status_code == 200  # Ada attends
    assert world.api(world.learner).get(url).status_code == 200  # so does Lee

    moved = api.patch(url, json={"start": iso(london(day, 14))})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["start"] == iso(london(day, 14))
    assert moved.get_json()["sequence"] == 1 and moved.get_json()["status"] == "confirmed"

    edited = api.patch(url + "?tz=Europe/London", json={"description": "Bring the logbook."})
    assert edited.status_code == 200
    assert edited.get_json()["description"] == "Bring the logbook."
    assert edited.get_json()["sequence"] == 2
    again = api.patch(url, json={"description": "Bring the logbook."})  # same value: no-op
    assert again.status_code == 200 and again.get_json()["sequence"] == 2

    cancelled = api.post(url + "/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"

    with app.app_context():
        row = db.session.get(Booking, booking["id"])
        actions = [(e.action, e.actor_id) for e in row.audit_entries]
        assert actions == [
            ("created", world.manager.id),
            ("rescheduled", world.manager.id),
            ("updated", world.manager.id),
            ("cancelled", world.manager.id),
        ]
        assert row.audit_entries[2].changes == {
            "description": ["Portfolio review.", "Bring the logbook."]
        }
        assert not any(h.active for h in row.holds)
        kinds = [
            m.kind
            for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            if m.payload.get("booking_id") == row.id
        ]
        assert kinds == [
            "booking.created",
            "booking.rescheduled",
            "booking.updated",
            "booking.cancelled",
        ]


def test_create_without_people_assigns_a_free_group_member(app, world):
    """people omitted: the type's group offers the slot and its free member takes it."""
    day = winter_monday()
    response = world.api(world.manager).post(
        "/api/v1/bookings",
        json={"booking_type": "review", "start": iso(london(day, 11))},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["owner"] == world.agent.id
    assert response.get_json()["location_mode"] == "face_to_face"  # the type's first mode


def test_create_without_people_picks_the_least_loaded(app, world):
    """With two free members, the one with fewer bookings gets the new one."""
    day = winter_monday()
    with app.app_context():
        begin_write()
        group = db.session.scalars(select(Group).where(Group.slug == "desk")).one()
        group.members = [
            db.session.get(User, world.agent.id),
            db.session.get(User, world.colleague.id),
        ]
        db.session.commit()
    lower, higher = sorted([world.agent, world.colleague], key=lambda u: u.id)
    world.book(world.manager, [lower], london(day, 9))  # the lower id is now busier
    response = world.api(world.manager).post(
        "/api/v1/bookings", json={"booking_type": "review", "start": iso(london(day, 11))}
    )
    assert response.status_code == 201 and response.get_json()["owner"] == higher.id


def test_an_agent_books_themself(app, world):
    """An agent may book their own time without bookings.assign."""
    day = winter_monday()
    response = world.api(world.agent).post(
        "/api/v1/bookings",
        json={"booking_type": "review", "start": iso(london(day, 15)), "people": [world.agent.id]},
    )
    assert response.status_code == 201
    with app.app_context():
        assert db.session.get(Booking, response.get_json()["id"]).created_by_id == world.agent.id


def test_provisional_then_approved(app, world):
    """A type that needs approval starts provisional; PATCH status=confirmed approves it."""
    day = winter_monday()
    api = world.api(world.manager)
    created = api.post(
        "/api/v1/bookings",
        json={"booking_type": "planning", "start": iso(london(day, 9)), "people": [world.agent.id]},
    )
    assert created.status_code == 201 and created.get_json()["status"] == "provisional"
    url = created.headers["Location"]
    approved = api.patch(url, json={"status": "confirmed"})
    assert approved.status_code == 200 and approved.get_json()["status"] == "confirmed"
    with app.app_context():
        holds = db.session.scalars(
            select(Hold).where(Hold.booking_id == created.get_json()["id"])
        ).all()
        assert [h.active for h in holds] == [True]


def test_reject_and_complete(app, world):
    """status=rejected rejects a provisional booking; completed marks a past one done."""
    day = winter_monday()
    pending = world.book(world.manager, [world.agent], london(day, 9), kind=world.approval)
    past = world.book(world.manager, [world.agent], datetime.now(LONDON) - timedelta(days=2))
    api = world.api(world.manager)
    rejected = api.patch(f"/api/v1/bookings/{pending.id}", json={"status": "rejected"})
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    done = api.patch(f"/api/v1/bookings/{past.id}", json={"status": "completed"})
    assert done.status_code == 200 and done.get_json()["status"] == Status.COMPLETED


def test_bookings_list_filters_by_range_and_person(world):
    """Only bookings overlapping [start, end) come back, by start; person narrows to theirs."""
    day = winter_monday()
    api = world.api(world.manager)
    a = world.book(world.manager, [world.agent], london(day, 9))
    c = world.book(world.manager, [world.colleague], london(day, 10), learner=world.learner)
    world.book(world.manager, [world.agent], london(day + timedelta(days=1), 9))  # next day
    world.book(world.manager, [world.colleague], london(day - timedelta(days=7), 9))  # earlier

    def listed(**query):
        response = api.get("/api/v1/bookings?" + urlencode(query))
        assert response.status_code == 200, response.get_json()
        return [b["id"] for b in response.get_json()["bookings"]]

    one_day = {"start": iso(london(day, 0)), "end": iso(london(day, 23))}
    assert listed(**one_day) == [a.id, c.id]
    assert listed(**one_day, person=world.agent.id) == [a.id]
    assert listed(**one_day, person=world.colleague.id) == [c.id]
    assert listed(**one_day, person=world.learner.id) == [c.id]
    # a range that only touches the 09:00–10:00 booking's end does not include it
    assert listed(start=iso(london(day, 10)), end=iso(london(day, 10, 30))) == [c.id]
    zoned = api.get("/api/v1/bookings?" + urlencode({**one_day, "tz": "America/New_York"}))
    assert zoned.get_json()["bookings"][0]["start"].endswith("-05:00")


def test_bookings_list_shows_only_what_the_caller_may_see(world):
    """An agent lists their own bookings, not a colleague's; the manager sees both."""
    day = winter_monday()
    mine = world.book(world.manager, [world.agent], london(day, 9))
    world.book(world.manager, [world.colleague], london(day, 9))
    query = urlencode({"start": iso(london(day, 0)), "end": iso(london(day, 23))})
    agent_view = world.api(world.agent).get(f"/api/v1/bookings?{query}").get_json()
    assert [b["id"] for b in agent_view["bookings"]] == [mine.id]
    manager_view = world.api(world.manager).get(f"/api/v1/bookings?{query}").get_json()
    assert len(manager_view["bookings"]) == 2


def test_people_lists_active_staff_and_filters_by_group(app, world):
    """Staff only (no learners, no disabled accounts), by name; ?group= narrows to members."""
    off = world.factory.user("agent", email="off@example.test", name="Off Duty")
    with app.app_context():
        begin_write()
        db.session.get(User, off.id).active = False
        db.session.commit()
    api = world.api(world.agent)
    people = api.get("/api/v1/people").get_json()["people"]
    assert [p["name"] for p in people] == ["Ada Agent", "Bea Manager", "Cy Colleague"]
    assert people[0] == {
        "id": world.agent.id,
        "name": "Ada Agent",
        "email": "ada@example.test",
        "role": "agent",
        "timezone": "Europe/London",
        "active": True,
        "groups": [people[0]["groups"][0]],
        "assigned_agent": None,
        "mentor": None,
        "assessor": None,
        "employer": None,
    }
    with app.app_context():
        desk_id = db.session.scalars(select(Group.id).where(Group.slug == "desk")).one()
    assert people[0]["groups"] == [desk_id]
    desk = api.get("/api/v1/people?group=desk").get_json()["people"]
    assert [p["id"] for p in desk] == [world.agent.id]


def test_reads_write_nothing(app, world):
    """A GET writes nothing: no booking rows, no outbox, not even the token's last use (that
    is noted in Redis and stored by a periodic job, tests/api/test_auth.py)."""
    day = winter_monday()
    api = world.api(world.manager)
    with app.app_context():
        counts = (
            db.session.scalar(select(db.func.count()).select_from(AuditEntry)),
            db.session.scalar(select(db.func.count()).select_from(OutboxMessage)),
        )
    _availability(api, booking_type="review", **_day_range(day))
    with app.app_context():
        assert counts == (
            db.session.scalar(select(db.func.count()).select_from(AuditEntry)),
            db.session.scalar(select(db.func.count()).select_from(OutboxMessage)),
        )
        token = db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == world.manager.id)
        ).one()
        assert token.last_used_at is None


def test_summer_offsets_follow_dst(world):
    """A6: in July, 09:00 London is 08:00 UTC and 04:00 in New York, both on summer time."""
    day = summer_monday()
    api = world.api(world.manager)
    in_london = _availability(api, booking_type="review", **_day_range(day)).get_json()["slots"]
    assert in_london[0]["start"] == f"{day.isoformat()}T09:00:00+01:00"
    query = {"booking_type": "review", **_day_range(day, "America/New_York")}
    in_new_york = _availability(api, **query).get_json()["slots"]
    assert in_new_york[0]["start"] == f"{day.isoformat()}T04:00:00-04:00"
    assert datetime.fromisoformat(in_new_york[0]["start"]) == london(day, 9)


def test_patch_switches_how_a_booking_meets(app, world, teams_connection):
    """location_mode is editable (K5: switching to Teams hands the calendar over to the Teams
    invitation); a mode the type does not allow is refused and changes nothing."""
    day = winter_monday()
    api = world.api(world.manager)
    body = {"booking_type": "review", "start": iso(london(day, 10)), "people": [world.agent.id]}
    created = api.post("/api/v1/bookings", json=body)
    assert created.status_code == 201, created.get_json()
    url = created.headers["Location"]

    refused = api.patch(url, json={"location_mode": "moon"})
    assert refused.status_code in (400, 409, 422), refused.get_json()
    assert "cannot take place that way" in refused.get_json()["message"]
    assert api.get(url).get_json()["sequence"] == 0
    to_teams = api.patch(url, json={"location_mode": "teams"})
    assert to_teams.status_code == 200, to_teams.get_json()
    assert (to_teams.get_json()["location_mode"], to_teams.get_json()["sequence"]) == ("teams", 1)
