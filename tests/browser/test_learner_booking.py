"""S7 in a real browser: a learner chooses a type, a free time and confirms; then moves and
cancels it from their list. Every screen is checked with axe-core and photographed."""

from __future__ import annotations

from app.accounts.models import LearnerProfile
from app.bookings.models import AvailabilitySource
from app.database import begin_write
from app.extensions import db
from tests.browser.conftest import htmx_settled, shoot, sign_in


def test_learner_books_moves_and_cancels_in_the_browser(app, factory, live_server, page):
    """Book → confirm → detail; then a new time, then cancel, all through the screens."""
    agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    with app.app_context():
        begin_write()
        db.session.add(LearnerProfile(user_id=learner.id, assigned_agent_id=agent.id))
        db.session.commit()
    factory.booking_type(
        slug="review",
        name="Progress review",
        description="A half-hour check-in with your assessor.",
        duration_minutes=30,
        bookable_by=["learner"],
        availability_source=AvailabilitySource.ASSIGNED_AGENT,
    )
    factory.booking_type(slug="assessment", name="Assessment", bookable_by=["staff"])

    sign_in(page, live_server, learner.email)
    page.get_by_role("link", name="Book", exact=True).first.click()
    page.wait_for_url(f"{live_server}/me/book")
    assert page.get_by_text("Assessment").count() == 0
    shoot(page, "learner-book-types")

    page.get_by_role("link", name="Progress review").click()
    page.wait_for_url(f"{live_server}/me/book/review*")
    page.get_by_text("Europe/London").first.wait_for()
    shoot(page, "learner-book-times")
    page.get_by_role("link", name="Next week ›").click()
    htmx_settled(page)
    assert "day=" in page.url
    page.locator(".quick-pick").first.click()
    htmx_settled(page)
    page.get_by_role("button", name="Confirm booking").wait_for()
    assert page.get_by_text("Ada Agent").count() >= 1
    shoot(page, "learner-book-confirm")
    page.get_by_role("button", name="Confirm booking").click()
    page.wait_for_url(f"{live_server}/bookings/*")
    page.get_by_text("Booked: Progress review; it is confirmed.").wait_for()
    shoot(page, "learner-booking-detail")

    page.get_by_role("link", name="Choose a new time").first.click()
    page.wait_for_url("**/reschedule*")
    page.locator(".quick-pick").nth(1).click()
    htmx_settled(page)
    shoot(page, "learner-reschedule-confirm")
    page.get_by_role("button", name="Move my booking").click()
    page.get_by_text("Booking moved.").wait_for()

    page.goto(f"{live_server}/me/book")
    page.locator("summary", has_text="Cancel").first.click()
    shoot(page, "learner-cancel-confirm")
    page.get_by_role("button", name="Yes, cancel it").click()
    page.get_by_text("Booking cancelled.").wait_for()
    assert page.get_by_text("Cancelled").count() >= 1
