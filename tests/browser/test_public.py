"""Public self-scheduling in a real browser: a New York visitor books a London agent's slot,
then reschedules and cancels through the manage link; the page weight stays small."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.browser.conftest import shoot
from tests.public.conftest import outbox, token_from
from tests.public.conftest import public as public  # the fixture, re-exported

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def visitor(browser):
    context = browser.new_context(
        viewport={"width": 1100, "height": 860}, timezone_id="America/New_York", locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _booking(app):
    from app.bookings.models import Booking
    from app.extensions import db

    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        result = booking.status, booking.starts_at
        db.session.rollback()
    return result


def test_new_york_visitor_books_reschedules_and_cancels(app, public, live_server, visitor):
    """The browser's zone is detected, times are New York local, manage link works."""
    page = visitor
    page.goto(f"{live_server}/book")
    page.get_by_role("link", name="Consultation").click()
    page.wait_for_url(lambda url: "tz=America%2FNew_York" in url or "tz=America/New_York" in url)
    assert page.get_by_test_id("zone").inner_text() == "America/New_York"
    page.goto(f"{live_server}/book")
    shoot(page, "public-landing")
    page.goto(f"{live_server}/book/consultation?tz=America/New_York")
    shoot(page, "public-slot-picker")

    # Next week by HTMX: the URL changes, the page is not reloaded.
    page.evaluate("window.__stay = 1")
    page.get_by_role("link", name="Next week ›").click()
    page.wait_for_url(lambda url: "day=" in url)
    assert page.evaluate("window.__stay") == 1
    page.goto(f"{live_server}/book/consultation?tz=America/New_York")

    first = page.locator('input[name="start"]').first
    chosen = first.get_attribute("value")
    first.check()
    page.get_by_label("Name").fill("Nora York")
    page.get_by_label("Email").fill("nora@example.test")
    page.get_by_role("button", name="Book this time").click()
    page.get_by_role("heading", name="You're booked").wait_for()
    _status, starts_at = _booking(app)
    assert starts_at.isoformat() == chosen.replace("Z", "+00:00")
    local = starts_at.astimezone(NEW_YORK)
    when = page.get_by_test_id("when").inner_text()
    end = (starts_at + timedelta(hours=1)).astimezone(NEW_YORK)
    assert when == f"{local.strftime('%A %d %B %Y, %H:%M')}–{end:%H:%M} {local.tzname()}"
    assert local.tzname() in {"EST", "EDT"}

    token = token_from(outbox(app, "public.booking_created")[0]["manage_url"])
    page.goto(f"{live_server}/book/manage/{token}")
    shoot(page, "public-manage")
    page.get_by_role("link", name="Change the time").click()
    second = page.locator('input[name="start"]').nth(3)
    new_start = second.get_attribute("value")
    second.check()
    page.get_by_role("button", name="Move my booking to this time").click()
    page.get_by_role("heading", name="Your booking has been moved").wait_for()
    assert _booking(app)[1].isoformat() == new_start.replace("Z", "+00:00")

    page.get_by_role("link", name="Back to your booking").click()
    page.get_by_role("link", name="Cancel booking").click()
    assert _booking(app)[0] == "confirmed"  # the link opened a page, nothing more
    page.get_by_role("button", name="Yes, cancel it").click()
    page.get_by_role("heading", name="Booking cancelled").wait_for()
    assert _booking(app)[0] == "cancelled"
    page.goto(f"{live_server}/book/manage/{token}")
    assert "already been used" in page.content()


def test_honeypot_in_the_browser_creates_nothing(app, public, live_server, visitor):
    """A bot that fills the hidden field sees a thank-you page; nothing is booked."""
    page = visitor
    page.goto(f"{live_server}/book/consultation?tz=America/New_York")
    page.locator('input[name="start"]').first.check()
    page.get_by_label("Name").fill("Bot")
    page.get_by_label("Email").fill("bot@example.test")
    page.locator("#website").fill("http://spam.example", force=True)
    page.get_by_role("button", name="Book this time").click()
    page.get_by_role("heading", name="Thank you").wait_for()
    from app.bookings.models import Booking
    from app.extensions import db

    with app.app_context():
        assert db.session.scalars(select(Booking)).all() == []
