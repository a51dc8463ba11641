"""Settings that change screens, in a real browser: the calendar's To-assign list and Take it,
the visitor's Join button, and marking a no-show after the waiting time; axe and screenshots."""

from __future__ import annotations

from datetime import timedelta

from app.accounts.models import User
from app.bookings.models import Booking
from app.database import begin_write, utcnow
from app.extensions import db
from tests.browser.conftest import shoot, sign_in
from tests.public.conftest import book_form, first_slot, outbox, token_from
from tests.public.conftest import public as public  # the fixture, re-exported

LINK = "https://meet.example.test/room-3"


def test_agent_takes_a_booking_from_the_to_assign_list(app, factory, public, live_server, page):
    leaver = factory.user("agent", email="lee@example.test", name="Lee Leaver")
    booking = factory.booking(None, public["kind"], first_slot(app, public["kind"]), [leaver])
    with app.app_context():
        begin_write()
        db.session.get(User, leaver.id).active = False
        db.session.commit()
    sign_in(page, live_server, "agent@example.test")
    page.goto(f"{live_server}/calendar")
    lane = page.get_by_role("region", name="To assign")
    assert "was Lee Leaver" in lane.inner_text()
    shoot(page, "calendar-to-assign")
    lane.get_by_role("button", name="Take it: Consultation").click()
    page.wait_for_url(f"{live_server}/bookings/{booking.id}")
    assert "You took this booking" in page.content()
    with app.app_context():
        assert db.session.get(Booking, booking.id).owner_id == public["agent"].id
        db.session.rollback()


def _visitor_booking(app, client, public, starts_in: timedelta) -> tuple[int, str]:
    assert book_form(client, "consultation", first_slot(app, public["kind"])).status_code == 200
    [created] = outbox(app, "public.booking_created")
    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, created["booking_id"])
        booking.starts_at = utcnow() + starts_in
        booking.ends_at = booking.starts_at + timedelta(hours=1)
        booking.location_mode, booking.location_detail = "remote", LINK
        db.session.commit()
    return created["booking_id"], token_from(created["manage_url"])


def test_visitor_sees_join_shortly_before_the_start(app, client, public, live_server, page):
    _, token = _visitor_booking(app, client, public, timedelta(minutes=3))
    page.goto(f"{live_server}/book/manage/{token}")
    join = page.get_by_role("link", name="Join the meeting")
    assert join.get_attribute("href") == LINK
    shoot(page, "public-manage-join")


def test_agent_marks_a_no_show_after_the_waiting_time(app, client, public, live_server, page):
    booking_id, _ = _visitor_booking(app, client, public, -timedelta(minutes=30))
    sign_in(page, live_server, "agent@example.test")
    page.goto(f"{live_server}/bookings/{booking_id}")
    page.get_by_text("Mark as no-show…").click()
    shoot(page, "booking-no-show-confirm")
    page.get_by_role("button", name="Yes, mark as no-show").click()
    page.wait_for_url(f"{live_server}/bookings/{booking_id}")
    assert "Booking marked as a no-show." in page.content()
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "no_show"
        db.session.rollback()
