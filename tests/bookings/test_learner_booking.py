"""S7, B6: learners book the types bookable by learners, from their assigned agent or the
type's source, and move or cancel their own bookings within the window; a type not bookable
by learners is refused to them on the page, in the form and in the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import func, select

from app.accounts.models import LearnerProfile, User
from app.bookings.models import AuditEntry, AvailabilitySource, Booking, Hold, Status
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.accounts.conftest import changed_tables, db_state
from tests.api.conftest import Api, assert_error, snapshot, unchanged
from tests.bookings.conftest import LONDON, local, weekday
from tests.conftest import csrf_from, login

START_RE = re.compile(r'href="[^"]*(?:\?|&amp;)start=([^"&]+)"')


@dataclass
class Scene:
    agent: object
    other_agent: object
    learner: object
    other_learner: object
    review: object  # bookable by learners, from the learner's assigned agent
    approval: object  # bookable by learners, needs approval
    staff_only: object  # bookable by staff only


@pytest.fixture
def scene(app, factory) -> Scene:
    agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
    other_agent = factory.user("agent", email="otto@example.test", name="Otto Agent")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    other = factory.user("learner", email="lou@example.test", name="Lou Learner")
    with app.app_context():
        begin_write()
        db.session.add(LearnerProfile(user_id=learner.id, assigned_agent_id=agent.id))
        db.session.add(LearnerProfile(user_id=other.id, assigned_agent_id=other_agent.id))
        db.session.commit()
    common = dict(availability_source=AvailabilitySource.ASSIGNED_AGENT, horizon_days=400)
    review = factory.booking_type(
        slug="review", name="Progress review", bookable_by=["learner"], **common
    )
    approval = factory.booking_type(
        slug="gateway",
        name="Gateway meeting",
        bookable_by=["learner", "staff"],
        requires_approval=True,
        **common,
    )
    staff_only = factory.booking_type(
        slug="assessment", name="Assessment", bookable_by=["staff"], **common
    )
    return Scene(agent, other_agent, learner, other, review, approval, staff_only)


def _starts(page: str) -> list[datetime]:
    return [datetime.fromisoformat(unquote(m)) for m in START_RE.findall(page)]


def _booking(app, booking_id: int) -> dict:
    with app.app_context():
        b = db.session.get(Booking, booking_id)
        return dict(
            status=b.status,
            starts_at=b.starts_at,
            owner_id=b.owner_id,
            learner_id=b.learner_id,
            created_by_id=b.created_by_id,
            holds=sorted(
                (h.person_id, h.active, h.starts_at, h.ends_at)
                for h in db.session.scalars(select(Hold).where(Hold.booking_id == b.id))
            ),
            audit=[
                (e.action, e.actor_id)
                for e in db.session.scalars(
                    select(AuditEntry).where(AuditEntry.booking_id == b.id).order_by(AuditEntry.id)
                )
            ],
            outbox=db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all(),
        )


def _count_bookings(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Booking))


def _book_first_time(app, client, slug: str) -> tuple[int, datetime]:
    page = client.get(f"/me/book/{slug}").get_data(as_text=True)
    start = _starts(page)[0]
    token = csrf_from(client, "/me/book")
    response = client.post(
        f"/me/book/{slug}", data={"start": start.isoformat(), "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    booking_id = int(response.headers["Location"].rsplit("/", 1)[1])
    return booking_id, start


# --- the page ----------------------------------------------------------------------------


def test_learner_sees_only_types_bookable_by_learners(app, client, scene):
    """/me/book lists the learner types, never the staff-only one; the nav offers "Book"."""
    login(client, scene.learner.email)
    page = client.get("/me/book").get_data(as_text=True)
    assert "Progress review" in page and "Gateway meeting" in page
    assert "Assessment" not in page
    assert 'href="/me/book"' in client.get("/bookings").get_data(as_text=True)


def test_nothing_bookable_shows_the_empty_state(app, client, factory):
    """With no type bookable by learners the page says so and links nowhere."""
    learner = factory.user("learner", email="lone@example.test")
    factory.booking_type(slug="staffy", name="Staff thing", bookable_by=["staff"])
    login(client, learner.email)
    page = client.get("/me/book").get_data(as_text=True)
    assert "Nothing can be booked here yet; ask your training provider." in page
    assert "/me/book/staffy" not in page


def test_learner_books_a_time_of_their_assigned_agent(app, client, scene):
    """Choosing a time shows a confirm step in the learner's zone; confirming books it with the
    assigned agent as owner and the learner as learner, holds both, audits and emits."""
    login(client, scene.learner.email)
    page = client.get("/me/book/review").get_data(as_text=True)
    assert "Europe/London" in page
    starts = _starts(page)
    assert starts, "free times are offered"
    tomorrow = datetime.now(starts[0].tzinfo).date() + timedelta(days=1)
    assert all(s.date() >= tomorrow for s in starts)  # the public window: not today
    confirm = client.get(f"/me/book/review?start={quote(starts[0].isoformat())}").get_data(
        as_text=True
    )
    assert "Confirm booking" in confirm and "Ada Agent" in confirm
    assert starts[0].astimezone(LONDON).strftime("%A %d %B %Y, %H:%M") in confirm
    booking_id, start = _book_first_time(app, client, "review")
    facts = _booking(app, booking_id)
    assert facts["status"] == Status.CONFIRMED
    assert facts["starts_at"] == start
    assert facts["owner_id"] == scene.agent.id
    assert facts["learner_id"] == scene.learner.id
    assert facts["created_by_id"] == scene.learner.id
    assert {(p, a) for p, a, *_ in facts["holds"]} == {
        (scene.agent.id, True),
        (scene.learner.id, True),
    }
    assert facts["audit"] == [("created", scene.learner.id)]
    assert "booking.created" in facts["outbox"]
    detail = client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert "Booked: Progress review; it is confirmed." in detail
    assert f"/me/book/bookings/{booking_id}/reschedule" in detail  # their own change buttons
    assert f"/me/book/bookings/{booking_id}/cancel" in detail


def test_a_type_needing_approval_books_provisionally(app, client, scene):
    """A learner's booking of a type that needs approval waits as provisional."""
    login(client, scene.learner.email)
    booking_id, _ = _book_first_time(app, client, "gateway")
    assert _booking(app, booking_id)["status"] == Status.PROVISIONAL


def test_a_time_just_taken_gives_a_clear_message_and_fresh_times(app, client, factory, scene):
    """Someone takes the agent's time between choosing and confirming: 409, a message, the
    taken time no longer offered, nothing written."""
    login(client, scene.learner.email)
    page = client.get("/me/book/review").get_data(as_text=True)
    start = _starts(page)[0]
    factory.booking(None, scene.staff_only, start, [scene.agent])
    before = db_state(app)
    token = csrf_from(client, "/me/book")
    response = client.post(
        "/me/book/review", data={"start": start.isoformat(), "csrf_token": token}
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "just taken" in html
    assert start not in _starts(html) and _starts(html)
    assert changed_tables(before, db_state(app)) == []


def test_a_time_not_offered_is_refused(app, client, scene):
    """A made-up start (a Sunday at 03:00, or garbage) books nothing."""
    login(client, scene.learner.email)
    token = csrf_from(client, "/me/book")
    sunday = weekday(20)
    while sunday.weekday() != 6:
        sunday += timedelta(days=1)
    before = db_state(app)
    for start, status in ((local(sunday, 3).isoformat(), 409), ("not a time", 400), ("", 400)):
        response = client.post("/me/book/review", data={"start": start, "csrf_token": token})
        assert response.status_code == status, start
    assert changed_tables(before, db_state(app)) == []


def test_a_staff_only_type_is_refused_on_page_and_form(app, client, scene):
    """The staff-only type: its page is 403, posting a real free time of it is 403, nothing
    written; an unknown slug is 404."""
    login(client, scene.learner.email)
    assert client.get("/me/book/assessment").status_code == 403
    assert client.get("/me/book/no-such-type").status_code == 404
    with app.app_context():
        from app.bookings.availability import slots_for
        from app.bookings.models import BookingType

        kind = db.session.get(BookingType, scene.staff_only.id)
        now = datetime.now(local(weekday(), 9).tzinfo)
        free = slots_for(
            kind,
            now,
            now + timedelta(days=20),
            audience="staff",
            people=[db.session.get(User, scene.agent.id)],
        )[0].start
    token = csrf_from(client, "/me/book")
    before = db_state(app)
    response = client.post(
        "/me/book/assessment", data={"start": free.isoformat(), "csrf_token": token}
    )
    assert response.status_code == 403
    assert changed_tables(before, db_state(app)) == []


def test_the_staff_booking_form_refuses_learners(app, client, scene):
    """The staff form stays closed to learners (403), whatever type they post."""
    login(client, scene.learner.email)
    assert client.get("/bookings/new").status_code == 403


# --- their own bookings ------------------------------------------------------------------


def test_learner_moves_their_own_booking(app, client, scene):
    """Choosing a new time moves the booking and its holds; the audit names the learner and a
    rescheduled message goes out."""
    login(client, scene.learner.email)
    booking_id, start = _book_first_time(app, client, "review")
    url = f"/me/book/bookings/{booking_id}/reschedule"
    page = client.get(url).get_data(as_text=True)
    assert "Choose a new time" in page
    new = next(s for s in _starts(page) if s != start)
    token = csrf_from(client, url)
    response = client.post(url, data={"start": new.isoformat(), "csrf_token": token})
    assert response.status_code == 303
    facts = _booking(app, booking_id)
    assert facts["starts_at"] == new and facts["status"] == Status.CONFIRMED
    assert all(h[2] == new and h[1] for h in facts["holds"])
    assert facts["audit"] == [("created", scene.learner.id), ("rescheduled", scene.learner.id)]
    assert facts["outbox"].count("booking.rescheduled") == 1


def test_learner_cancels_their_own_booking(app, client, scene):
    """Cancelling releases the holds, records who did it and tells everyone."""
    login(client, scene.learner.email)
    booking_id, _ = _book_first_time(app, client, "review")
    token = csrf_from(client, "/me/book")
    response = client.post(f"/me/book/bookings/{booking_id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    facts = _booking(app, booking_id)
    assert facts["status"] == Status.CANCELLED
    assert facts["holds"] and not any(h[1] for h in facts["holds"])
    assert facts["audit"][-1] == ("cancelled", scene.learner.id)
    assert "booking.cancelled" in facts["outbox"]


def test_learner_cannot_touch_another_learners_booking(app, client, factory, scene):
    """Another learner's booking is 404 for every page and change, and stays as it was; so
    are ids that cannot exist."""
    theirs = factory.booking(
        None,
        scene.review,
        local(weekday(12), 10),
        [scene.other_agent],
        learner=scene.other_learner,
    )
    login(client, scene.learner.email)
    token = csrf_from(client, "/me/book")
    before = db_state(app)
    for booking_id in (theirs.id, 2**31, 10**20):
        base = f"/me/book/bookings/{booking_id}"
        assert client.get(f"{base}/reschedule").status_code == 404
        data = {"start": local(weekday(14), 11).isoformat(), "csrf_token": token}
        assert client.post(f"{base}/reschedule", data=data).status_code == 404
        assert client.post(f"{base}/cancel", data={"csrf_token": token}).status_code == 404
    assert changed_tables(before, db_state(app)) == []


def test_a_staff_booked_type_is_not_the_learners_to_change(app, client, factory, scene):
    """A learner's booking of a staff-only type has no buttons and refuses their changes."""
    booking = factory.booking(
        None, scene.staff_only, local(weekday(12), 10), [scene.agent], learner=scene.learner
    )
    login(client, scene.learner.email)
    detail = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert f"/me/book/bookings/{booking.id}/cancel" not in detail
    token = csrf_from(client, "/me/book")
    before = db_state(app)
    response = client.post(f"/me/book/bookings/{booking.id}/cancel", data={"csrf_token": token})
    assert response.status_code == 403
    assert "arranged by staff" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_changes_outside_the_window_are_refused(app, client, factory, scene):
    """With three days' minimum notice a booking two days ahead cannot be moved or cancelled
    by the learner: no buttons, a clear 403, nothing written (staff still can)."""
    from tests.bookings.conftest import set_setting

    set_setting(app, "minimum_notice_minutes", 3 * 24 * 60)
    soon = local(weekday(2), 10)
    booking = factory.booking(None, scene.review, soon, [scene.agent], learner=scene.learner)
    login(client, scene.learner.email)
    index = client.get("/me/book").get_data(as_text=True)
    assert f"/me/book/bookings/{booking.id}/cancel" not in index
    assert "Ask Ada Agent to change it" in index
    assert f"/me/book/bookings/{booking.id}/cancel" not in client.get(
        f"/bookings/{booking.id}"
    ).get_data(as_text=True)
    token = csrf_from(client, "/me/book")
    before = db_state(app)
    url = f"/me/book/bookings/{booking.id}"
    response = client.post(f"{url}/cancel", data={"csrf_token": token})
    assert response.status_code == 403
    assert "too late to change this booking online" in response.get_data(as_text=True)
    data = {"start": local(weekday(20), 11).isoformat(), "csrf_token": token}
    assert client.post(f"{url}/reschedule", data=data).status_code == 403
    assert client.get(f"{url}/reschedule").status_code == 403
    assert changed_tables(before, db_state(app)) == []


# --- the API -----------------------------------------------------------------------------


def _api(app, client, user) -> Api:
    from app.accounts.service import create_api_token

    with app.app_context():
        begin_write()
        token = create_api_token(db.session.get(User, user.id), "test")
        db.session.commit()
    return Api(client, token)


def _free_start(app, scene, kind, learner=None) -> datetime:
    from app.bookings.availability import slots_for
    from app.bookings.models import BookingType

    with app.app_context():
        row = db.session.get(BookingType, kind.id)
        now = datetime.now(local(weekday(), 9).tzinfo)
        who = db.session.get(User, (learner or scene.learner).id)
        slots = slots_for(row, now, now + timedelta(days=30), audience="public", learner=who)
        return slots[0].start


def test_api_learner_books_for_themself(app, client, scene):
    """POST /api/v1/bookings by a learner: their assigned agent takes it, they are the learner."""
    api = _api(app, client, scene.learner)
    start = _free_start(app, scene, scene.review)
    response = api.post(
        "/api/v1/bookings", json={"booking_type": "review", "start": start.isoformat()}
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    facts = _booking(app, body["id"])
    assert facts["owner_id"] == scene.agent.id and facts["learner_id"] == scene.learner.id
    assert facts["audit"] == [("created", scene.learner.id)]


def test_api_refuses_learners_what_is_not_theirs(app, client, factory, scene):
    """Staff-only type: 403 forbidden; naming people or another learner: refused; nothing
    written in any case."""
    api = _api(app, client, scene.learner)
    start = _free_start(app, scene, scene.review)
    before = snapshot(app)
    refused = [
        ({"booking_type": "assessment", "start": start.isoformat()}, 403, "forbidden"),
        (
            {"booking_type": "review", "start": start.isoformat(), "people": [scene.agent.id]},
            400,
            "validation_error",
        ),
        (
            {
                "booking_type": "review",
                "start": start.isoformat(),
                "learner": scene.other_learner.id,
            },
            403,
            "forbidden",
        ),
    ]
    for body, status, code in refused:
        assert_error(api.post("/api/v1/bookings", json=body), status, code)
    assert unchanged(app, before)


def test_api_learner_moves_and_cancels_their_own(app, client, scene):
    """PATCH start and POST cancel on their own booking; another learner's is 404, and a huge
    id is 404 too."""
    api = _api(app, client, scene.learner)
    start = _free_start(app, scene, scene.review)
    created = api.post(
        "/api/v1/bookings", json={"booking_type": "review", "start": start.isoformat()}
    ).get_json()
    later = start + timedelta(days=7)
    moved = api.patch(f"/api/v1/bookings/{created['id']}", json={"start": later.isoformat()})
    assert moved.status_code == 200, moved.get_json()
    assert _booking(app, created["id"])["starts_at"] == later
    other_api = _api(app, client, scene.other_learner)
    before = snapshot(app)
    assert_error(
        other_api.patch(f"/api/v1/bookings/{created['id']}", json={"start": start.isoformat()}),
        404,
        "not_found",
    )
    assert_error(other_api.post(f"/api/v1/bookings/{created['id']}/cancel"), 404, "not_found")
    assert_error(api.post(f"/api/v1/bookings/{10**12}/cancel"), 404, "not_found")
    assert unchanged(app, before)
    cancelled = api.post(f"/api/v1/bookings/{created['id']}/cancel")
    assert cancelled.status_code == 200
    facts = _booking(app, created["id"])
    assert facts["status"] == Status.CANCELLED and not any(h[1] for h in facts["holds"])


def test_api_learner_cannot_approve_or_edit(app, client, factory, scene):
    """A learner may not confirm their provisional booking, nor edit its details: 403."""
    api = _api(app, client, scene.learner)
    start = _free_start(app, scene, scene.approval)
    created = api.post(
        "/api/v1/bookings", json={"booking_type": "gateway", "start": start.isoformat()}
    ).get_json()
    assert created["status"] == "provisional"
    before = snapshot(app)
    for body in ({"status": "confirmed"}, {"description": "mine now"}):
        assert_error(api.patch(f"/api/v1/bookings/{created['id']}", json=body), 403, "forbidden")
    assert unchanged(app, before)


def test_api_outside_the_window_is_forbidden(app, client, factory, scene):
    """Too close to the start the learner's cancel is 403 with a message, and nothing changes."""
    from tests.bookings.conftest import set_setting

    set_setting(app, "minimum_notice_minutes", 3 * 24 * 60)
    booking = factory.booking(
        None, scene.review, local(weekday(2), 10), [scene.agent], learner=scene.learner
    )
    api = _api(app, client, scene.learner)
    before = snapshot(app)
    body = assert_error(api.post(f"/api/v1/bookings/{booking.id}/cancel"), 403, "forbidden")
    assert "too late" in body["message"]
    assert unchanged(app, before)


def test_the_service_refuses_a_learner_a_staff_only_type(app, scene):
    """Below the pages: create_booking by a learner for a staff-only type, or for someone else,
    or with a person the type's source does not offer, raises and writes nothing."""
    from app.bookings import service
    from app.bookings.models import BookingType
    from app.bookings.policy import PermissionDenied

    start = _free_start(app, scene, scene.review)
    before = db_state(app)
    with app.app_context():
        begin_write()
        me = db.session.get(User, scene.learner.id)
        agent = db.session.get(User, scene.agent.id)
        other_agent = db.session.get(User, scene.other_agent.id)
        staff_only = db.session.get(BookingType, scene.staff_only.id)
        review = db.session.get(BookingType, scene.review.id)
        attempts = [
            (PermissionDenied, staff_only, [agent], me),
            (PermissionDenied, review, [agent], db.session.get(User, scene.other_learner.id)),
            (service.BookingError, review, [other_agent], me),
        ]
        for error, kind, people, learner in attempts:
            with pytest.raises(error):
                service.create_booking(me, kind, start, people, learner=learner)
        db.session.rollback()
    assert changed_tables(before, db_state(app)) == []


def test_times_the_learner_is_already_held_are_not_offered(app, client, factory, scene):
    """A learner already in another booking (with someone else) is not offered that time."""
    login(client, scene.learner.email)
    first = _starts(client.get("/me/book/review").get_data(as_text=True))[0]
    factory.booking(None, scene.staff_only, first, [scene.other_agent], learner=scene.learner)
    day = first.astimezone(LONDON).date().isoformat()
    page = client.get(f"/me/book/review?day={day}").get_data(as_text=True)
    assert first not in _starts(page)
    assert _starts(page), "other times stay offered"
