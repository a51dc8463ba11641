"""The plain booking screens, driven as a booking manager would, with screenshots."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from app.bookings.models import Booking, Status
from app.extensions import db
from tests.browser.conftest import shoot, sign_in
from tests.conftest import at


def test_manager_books_approves_and_sees_the_audit_trail(app, factory, live_server, page):
    """Sign in, create a provisional booking from the form, approve it, read its history."""
    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    agent = factory.user("agent", name="Amara Okafor")
    learner = factory.user("learner", name="Aisha Ali")
    kind = factory.booking_type(name="Planning meeting", requires_approval=True)
    factory.booking(None, kind, at(-2), [agent], learner=learner)  # something in the list

    page.goto(f"{live_server}/login")
    shoot(page, "login")
    sign_in(page, live_server, "bea@example.test")
    expect(page).to_have_url(f"{live_server}/calendar")  # staff start on the calendar
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Bookings").click()
    expect(page.get_by_role("heading", name="Bookings")).to_be_visible()
    shoot(page, "bookings-list")

    page.get_by_role("link", name="New booking").first.click()
    page.get_by_label("Booking type").select_option(label="Planning meeting (60 min)")
    page.get_by_label("Date").fill(at(3).strftime("%Y-%m-%d"))
    page.get_by_label("Start time").fill("10:30")
    page.get_by_label("Held by").select_option(label="Amara Okafor")
    page.get_by_label("Learner").select_option(label="Aisha Ali")
    page.get_by_label("Address or meeting link").fill("Room 2, Head Office")
    shoot(page, "booking-new")
    page.get_by_role("button", name="Book").click()

    expect(page.get_by_role("status")).to_contain_text("awaiting approval")
    expect(page.locator(".badge")).to_contain_text("[PENDING]")
    when = page.locator("dt:text('When') + dd")
    zone_name = datetime.combine(at(3).date(), time(10, 30), ZoneInfo("Europe/London")).tzname()
    expect(when).to_contain_text(f"10:30 {zone_name}")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Booking approved")
    expect(page.locator(".badge")).to_have_text("Confirmed")
    history = page.get_by_role("region", name="History")
    expect(history).to_contain_text("Bea Bookings approved")
    expect(history).to_contain_text("provisional → confirmed")
    shoot(page, "booking-detail")

    with app.app_context():
        booking = db.session.scalars(db.select(Booking).order_by(Booking.id.desc())).first()
        assert booking.status == Status.CONFIRMED
        local = booking.starts_at.astimezone(ZoneInfo("Europe/London"))
        assert (local.hour, local.minute) == (10, 30)


def test_cancel_asks_for_confirmation_first(app, factory, live_server, page):
    """Cancel is two steps: the first click only reveals a confirmation."""
    factory.user("booking-manager", email="bea@example.test")
    agent = factory.user("agent", name="Amara Okafor")
    booking = factory.booking(None, factory.booking_type(name="Review"), at(4), [agent])
    sign_in(page, live_server, "bea@example.test")
    page.goto(f"{live_server}/bookings/{booking.id}")
    page.get_by_text("Cancel…").click()
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == Status.CONFIRMED
    page.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator(".badge")).to_contain_text("Cancelled")


def test_owner_sees_the_role_matrix(factory, live_server, page):
    """The owner's navigation offers users and roles; the matrix shows every role."""
    factory.user("owner", email="olivia@example.test", name="Olivia Owner")
    sign_in(page, live_server, "olivia@example.test")
    page.get_by_role("link", name="Roles").click()
    for role in ["Owner", "Administrator", "Manager", "Booking manager", "Agent"]:
        expect(page.get_by_role("columnheader", name=role, exact=True)).to_be_visible()
    owner_roles = page.get_by_label("Owner: Edit the role permission matrix")
    expect(owner_roles).to_be_checked()
    expect(owner_roles).to_be_disabled()
    shoot(page, "roles")
