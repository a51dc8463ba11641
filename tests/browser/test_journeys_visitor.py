"""The visitor's and the learner's journeys in a real browser, at a desk's width and a phone's
([13]): a visitor books a remote appointment and downloads the calendar file; a learner books,
moves and cancels on a phone; the staff menu folds behind a button. axe-core checks every page
visited (``shoot`` at both widths, ``assert_accessible`` elsewhere)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from app.accounts.models import LearnerProfile
from app.bookings.models import AvailabilitySource, Booking, BookingType
from app.database import begin_write
from app.extensions import db
from tests.browser.conftest import PHONE_WIDTH, assert_accessible, htmx_settled, shoot, sign_in
from tests.public.conftest import public as public  # the fixture, re-exported

TOKYO = ZoneInfo("Asia/Tokyo")
LINK = "https://meet.example.test/desk"
WIDTHS = {"desk": 1280, "phone": PHONE_WIDTH}


@pytest.fixture(params=list(WIDTHS))
def width(request) -> int:
    return WIDTHS[request.param]


def _visitor(browser, width: int):
    context = browser.new_context(
        viewport={"width": width, "height": 860},
        timezone_id="Asia/Tokyo",
        locale="en-GB",
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def _remote_and_face_to_face(app, kind) -> None:
    with app.app_context():
        begin_write()
        row = db.session.get(BookingType, kind.id)
        row.description = "An hour with an adviser, online or at our office."
        row.location_modes = ["face_to_face", "remote"]
        row.face_to_face_detail = "Reception, 1 High Street"
        row.remote_detail = LINK
        db.session.commit()


WIDEST = """() => {
  const limit = window.innerWidth;
  const SCROLLERS = '.tg-scroll, .table-scroll, .pw-scroll';
  const wide = [...document.querySelectorAll('body *')].filter(el => {
    const box = el.getBoundingClientRect();
    const inside = el.parentElement && el.parentElement.closest(SCROLLERS);
    return box.right > limit + 1 && !inside;
  });
  const leaves = wide.filter(el => !wide.some(other => other !== el && el.contains(other)));
  return leaves.slice(0, 6).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.trim()
      .split(/\\s+/).join('.') : '') + ' ' + Math.round(el.getBoundingClientRect().right));
}"""


def _fits(page) -> None:
    """Nothing on the page is wider than the viewport (no sideways scrolling); the failure
    names the elements that stick out. Measured once the styles have loaded."""
    page.wait_for_load_state()
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (
        f"{page.url} is {widths[0]} px wide in {widths[1]} px: {page.evaluate(WIDEST)}"
    )


def test_visitor_books_a_remote_appointment_and_downloads_the_calendar_file(
    app, public, live_server, browser, width, tmp_path
):
    _remote_and_face_to_face(app, public["kind"])
    context, page = _visitor(browser, width)

    # At a desk's width ``shoot`` photographs and checks both widths; at a phone's, check.
    def snap(name: str) -> None:
        if width > PHONE_WIDTH:
            shoot(page, name)
        else:
            assert_accessible(page, f"{name} at {width} px")

    try:
        page.goto(f"{live_server}/book")
        card = page.get_by_role("link", name="Consultation")
        assert "An hour with an adviser" in card.inner_text()
        assert "60 minutes · Face to face or online" in card.inner_text()
        _fits(page)
        snap("visitor-landing")
        card.click()
        page.wait_for_url(lambda url: "Asia%2FTokyo" in url or "Asia/Tokyo" in url)
        htmx_settled(page)
        # Nothing to fill in until a time is chosen.
        assert not page.get_by_label("Name").is_visible()
        assert page.get_by_text("Choose a time above to continue.").is_visible()
        _fits(page)
        snap("visitor-picker")

        first = page.locator('input[name="start"]').first
        chosen = first.get_attribute("value")
        first.check()
        page.get_by_label("Name").wait_for(state="visible")
        page.get_by_text("At Reception, 1 High Street").wait_for()
        page.get_by_label("Online (video or phone)").check()
        page.get_by_label("Name").fill("Tomo Visitor")
        page.get_by_label("Email").fill("tomo@example.test")
        _fits(page)
        snap("visitor-picker-time-chosen")
        page.get_by_role("button", name="Book this time").click()
        page.get_by_role("heading", name="You're booked").wait_for()

        with app.app_context():
            booking = db.session.scalars(select(Booking)).one()
            starts_at, ends_at, uid = booking.starts_at, booking.ends_at, booking.uid
            assert (booking.location_mode, booking.location_detail) == ("remote", LINK)
            db.session.rollback()
        assert starts_at.isoformat() == chosen.replace("Z", "+00:00")
        begin, end = starts_at.astimezone(TOKYO), ends_at.astimezone(TOKYO)
        assert page.get_by_test_id("when").inner_text() == (
            f"{begin:%A %d %B %Y}, {begin:%H:%M}–{end:%H:%M} JST"
        )
        assert page.get_by_test_id("with").inner_text() == "Agnes Agent"
        where = page.get_by_test_id("where").get_by_role("link", name=LINK)
        assert where.get_attribute("href") == LINK
        assert "calendar.google.com" in page.get_by_test_id("google").get_attribute("href")
        assert "outlook.live.com" in page.get_by_test_id("outlook").get_attribute("href")
        _fits(page)
        snap("visitor-booked")

        with page.expect_download() as caught:
            page.get_by_test_id("ics").click()
        saved = Path(tmp_path / "booking.ics")
        caught.value.save_as(saved)
        assert caught.value.suggested_filename == "consultation.ics"
        calendar = Calendar.from_ical(saved.read_bytes())
        [event] = calendar.walk("VEVENT")
        assert str(event["uid"]) == uid and str(calendar["method"]) == "PUBLISH"
        assert event.decoded("dtstart") == starts_at
        assert event.decoded("dtend") == starts_at + timedelta(hours=1)
        assert str(event["location"]) == LINK and str(event["status"]) == "CONFIRMED"
        assert "With: Agnes Agent" in str(event["description"])
    finally:
        context.close()


def test_an_empty_week_offers_no_form(public, live_server, browser):
    context, page = _visitor(browser, PHONE_WIDTH)
    try:
        page.goto(f"{live_server}/book/consultation?tz=Asia/Tokyo&day=2099-01-05")
        page.get_by_test_id("empty-week").wait_for()
        assert page.get_by_role("button", name="Book this time").count() == 0
        assert page.get_by_label("Name").count() == 0
        _fits(page)
        assert_accessible(page, "an empty week at phone width")
    finally:
        context.close()


def _learner_world(app, factory):
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
    return learner


def _open_menu(page) -> None:
    menu = page.get_by_role("button", name="Menu")
    if page.viewport_size["width"] <= 760:
        assert menu.get_attribute("aria-expanded") == "false"
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"


def test_learner_books_moves_and_cancels(app, factory, live_server, page, width):
    """The learner's journey at both widths; on a phone through the folded menu."""
    learner = _learner_world(app, factory)
    page.set_viewport_size({"width": width, "height": 860})
    sign_in(page, live_server, learner.email)
    _fits(page)
    _open_menu(page)
    page.get_by_role("link", name="Book", exact=True).first.click()
    page.wait_for_url(f"{live_server}/me/book")
    _fits(page)
    assert_accessible(page, f"learner types at {width}")
    page.get_by_role("link", name="Progress review").click()
    page.wait_for_url(f"{live_server}/me/book/review*")
    htmx_settled(page)
    _fits(page)
    assert_accessible(page, f"learner times at {width}")
    page.locator(".quick-pick").first.click()
    htmx_settled(page)
    page.get_by_role("button", name="Confirm booking").click()
    page.wait_for_url(f"{live_server}/bookings/*")
    page.get_by_text("Booked: Progress review; it is confirmed.").wait_for()
    _fits(page)
    assert_accessible(page, f"learner booking at {width}")

    page.get_by_role("link", name="Choose a new time").first.click()
    page.wait_for_url("**/reschedule*")
    htmx_settled(page)
    page.locator(".quick-pick").nth(1).click()
    htmx_settled(page)
    _fits(page)
    assert_accessible(page, f"learner reschedule at {width}")
    page.get_by_role("button", name="Move my booking").click()
    page.get_by_text("Booking moved.").wait_for()

    page.goto(f"{live_server}/me/book")
    page.locator("summary", has_text="Cancel").first.click()
    _fits(page)
    assert_accessible(page, f"learner cancel at {width}")
    page.get_by_role("button", name="Yes, cancel it").click()
    page.get_by_text("Booking cancelled.").wait_for()
    with app.app_context():
        assert db.session.scalars(select(Booking.status)).all() == ["cancelled"]
        db.session.rollback()


def test_staff_menu_folds_behind_a_button_on_a_phone(app, factory, live_server, page):
    """At 390 px the menu is one button: aria-expanded follows it, Enter opens it, Escape
    closes it and gives focus back; at a desk's width the button is not there at all."""
    manager = factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    sign_in(page, live_server, manager.email)
    menu = page.get_by_role("button", name="Menu")
    assert not menu.is_visible()
    assert page.get_by_role("link", name="Bookings", exact=True).is_visible()

    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    page.goto(f"{live_server}/bookings")
    htmx_settled(page)
    bookings = page.get_by_role("navigation", name="Main").get_by_role("link", name="Bookings")
    assert menu.is_visible() and not bookings.is_visible()
    assert menu.bounding_box()["height"] < 60  # the menu no longer fills the screen
    _fits(page)
    shoot(page, "staff-menu-closed-phone")
    menu.focus()
    page.keyboard.press("Enter")
    assert menu.get_attribute("aria-expanded") == "true" and bookings.is_visible()
    _fits(page)
    assert_accessible(page, "staff menu open at phone width")
    page.screenshot(path=str(_screenshots() / "staff-menu-open-phone.png"), full_page=True)
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false" and not bookings.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Menu"
    menu.click()
    bookings.click()  # an ordinary link: the page it opens starts with the menu folded
    page.wait_for_url(f"{live_server}/bookings")
    assert page.get_by_role("button", name="Menu").get_attribute("aria-expanded") == "false"


def _screenshots() -> Path:
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_booking_drawer_is_a_full_screen_sheet_on_a_phone(app, factory, live_server, page):
    """On a phone the booking opens over the whole screen; closing it gives the list back."""
    from tests.conftest import at

    manager = factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
    kind = factory.booking_type(slug="review", name="Progress review", duration_minutes=30)
    factory.booking(manager, kind, at(day_offset=2, hour=10), [agent])
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    sign_in(page, live_server, manager.email)
    page.goto(f"{live_server}/bookings")
    htmx_settled(page)
    row = page.locator("#bookings-list tbody tr").first
    assert row.bounding_box()["width"] <= PHONE_WIDTH  # a card, not a wide table row
    _fits(page)
    shoot(page, "phone-bookings-list-cards")
    row.get_by_role("link", name="Progress review").click()
    drawer = page.locator("#drawer")
    drawer.get_by_role("heading", name="Progress review").first.wait_for()
    htmx_settled(page)
    box = drawer.bounding_box()
    assert (box["x"], box["y"], box["width"]) == (0, 0, PHONE_WIDTH)
    assert box["height"] == 844
    _fits(page)
    assert_accessible(page, "booking drawer at phone width")
    page.screenshot(path=str(_screenshots() / "phone-booking-drawer-sheet.png"))
    page.keyboard.press("Escape")
    drawer.wait_for(state="hidden")
