"""The agent's and booking manager's journeys of issue 15, at a desk (1280 px) and on a phone
(390 px): a poll sent by an agent and answered by a guest in Tokyo, a booking started by
clicking an empty calendar slot, and the staff form refusing the past and asking for
"book anyway" at 03:00. axe-core runs on every screen shot (``shoot``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from tests.browser.conftest import htmx_settled, shoot, sign_in

LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
WIDTHS = [1280, 390]


def _weekday(days_ahead: int = 7) -> date:
    day = datetime.now(LONDON).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def tokyo_guest(browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, timezone_id="Asia/Tokyo", locale="en-GB"
    )
    guest = context.new_page()
    guest.set_default_timeout(10_000)
    yield guest
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_sends_a_poll_and_a_tokyo_guest_answers_in_tokyo_time(
    app, factory, live_server, page, tokyo_guest, width
):
    """An agent (no bookings.assign) proposes two times to a guest and sends the poll; the
    guest's browser is in Asia/Tokyo and sees the times in Tokyo time; the agent's My polls
    then says "Answered"."""
    from app.outbox import OutboxMessage

    page.set_viewport_size({"width": width, "height": 860})
    factory.user("agent", email="amara@example.test", name="Amara Okafor")
    factory.booking_type(name="Review", duration_minutes=45)
    day = _weekday()
    sign_in(page, live_server, "amara@example.test")
    page.goto(f"{live_server}/polls/new")
    page.get_by_label("Booking type").select_option(label="Review (45 min)")
    page.get_by_label("From").fill(day.isoformat())
    page.get_by_label("Days").fill("1")
    page.get_by_role("button", name="Find common free times").click()
    boxes = page.locator('input[name="starts"]')
    expect(boxes.first).to_be_visible()
    boxes.nth(2).check()  # 09:30 London (the day starts at 08:00, every 45 minutes)
    boxes.nth(4).check()
    page.get_by_label("Outside guests' email addresses").fill("kenji@example.jp")
    if width == 1280:
        shoot(page, "poll-new")
    page.get_by_role("button", name="Send the poll").click()
    expect(page.get_by_role("heading", name="Poll: Review")).to_be_visible()
    expect(page.get_by_text("1 outside guest answers by link")).to_be_visible()
    if width == 1280:
        shoot(page, "poll-detail")

    with app.app_context():
        sent = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "poll.invited")
        ).all()
        url = next(m.data["url"] for m in sent if m.data["email"] == "kenji@example.jp")
        from app.polls.models import PollOption

        first = db.session.scalars(select(PollOption.starts_at).order_by(PollOption.starts_at))
        first = next(iter(first))
    path = url.split("/polls/", 1)[1]
    tokyo_guest.goto(f"{live_server}/polls/{path}")
    tokyo_guest.wait_for_url("**tz=Asia%2FTokyo**")  # detected in the browser
    expect(tokyo_guest.get_by_label("Times are shown in")).to_have_value("Asia/Tokyo")
    in_tokyo = first.astimezone(TOKYO).strftime("%a %d %b %Y, %H:%M")
    expect(tokyo_guest.get_by_text(f"{in_tokyo} JST")).to_be_visible()
    if width == 1280:
        shoot(tokyo_guest, "poll-answer-tokyo")
    for group in tokyo_guest.locator("fieldset").all():
        group.get_by_label("Yes").check()
    tokyo_guest.get_by_role("button", name="Save my answers").click()
    expect(tokyo_guest.get_by_role("heading").first).to_be_visible()

    page.goto(f"{live_server}/polls")
    expect(page.locator(".poll-state").first).to_have_text("Answered")
    if width == 1280:
        shoot(page, "polls-mine")
    page.get_by_role("link", name="Close Review").click()
    if width == 1280:
        shoot(page, "poll-close")
    page.get_by_role("button", name="Close the poll").click()
    expect(page.locator(".poll-state").first).to_have_text("Closed")


def _column_point(page, column, hour: int, minute: int = 0):
    """The middle of the 15-minute row at hour:minute in a time-grid column."""
    column.scroll_into_view_if_needed()
    box = column.bounding_box()
    first = int(column.get_attribute("data-first-min"))
    rows = int(column.get_attribute("data-rows"))
    row = (hour * 60 + minute - first) // 15
    return box["x"] + box["width"] / 2, box["y"] + (row + 0.5) * box["height"] / rows


@pytest.mark.parametrize("width", WIDTHS)
def test_a_booking_manager_books_by_clicking_an_empty_slot(app, factory, live_server, page, width):
    """Team day view: clicking Amara's empty 10:00 opens the form in the drawer with her, the
    day and 10:00 filled in; booking it puts it in her column. At 1280 px a drag from 14:00
    to 15:00 starts a second booking at 14:00."""
    from app.accounts import hours
    from app.accounts.models import User
    from app.bookings.models import Booking
    from app.database import begin_write

    page.set_viewport_size({"width": width, "height": 860})
    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    agent = factory.user("agent", name="Amara Okafor")
    factory.booking_type(name="Review", duration_minutes=45)
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(
            db.session.get(User, agent.id), {d: [(time(9), time(17))] for d in range(5)}
        )
        db.session.commit()
    day = _weekday()
    sign_in(page, live_server, "bea@example.test")
    page.goto(f"{live_server}/calendar?view=day&scope=team&date={day.isoformat()}")
    column = page.locator(".tg-col[data-pick-url]").first
    page.mouse.click(*_column_point(page, column, 10))
    drawer = page.locator("#drawer")
    expect(drawer.get_by_label("Start time")).to_have_value("10:00")
    expect(drawer.get_by_label("Date")).to_have_value(day.isoformat())
    expect(drawer.get_by_label("Held by")).to_have_value(str(agent.id))
    htmx_settled(page)
    expect(drawer.get_by_role("status").first).to_contain_text("is free for everyone chosen")
    if width == 1280:  # shoot() checks and pictures it at 390 px too
        shoot(page, "calendar-slot-booking")
    drawer.get_by_role("button", name="Book", exact=True).click()
    expect(drawer.get_by_role("status").first).to_contain_text("Booked: Review")
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert booking.starts_at.astimezone(LONDON).time() == time(10)
        assert booking.owner_id == agent.id
    if width != 1280:
        return
    page.goto(f"{live_server}/calendar?view=day&scope=team&date={day.isoformat()}")
    column = page.locator(".tg-col[data-pick-url]").first
    page.mouse.move(*_column_point(page, column, 14))
    page.mouse.down()
    page.mouse.move(*_column_point(page, column, 15), steps=4)
    expect(page.locator(".tg-pick")).to_be_visible()
    page.mouse.up()
    expect(page.locator("#drawer").get_by_label("Start time")).to_have_value("14:00")
    # The keyboard's way: the column's own link, reached with Tab, opens the same form.
    page.keyboard.press("Escape")
    link = page.get_by_role("link", name="New booking for Amara Okafor")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#drawer").get_by_label("Held by")).to_have_value(str(agent.id))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_staff_form_refuses_2020_and_asks_for_book_anyway_at_three(
    app, factory, live_server, page, width
):
    """2020: refused with a clear message. 03:00 on a weekday: the preview says why it is not
    a usual time; booking asks for "Book anyway" and a reason, which the history records."""
    from app.bookings.models import AuditEntry, Booking

    page.set_viewport_size({"width": width, "height": 860})
    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    factory.user("agent", name="Amara Okafor")
    factory.booking_type(name="Review", duration_minutes=45)
    sign_in(page, live_server, "bea@example.test")
    page.goto(f"{live_server}/bookings/new")
    htmx_settled(page)
    page.get_by_label("Booking type").select_option(label="Review (45 min)")
    page.get_by_label("Held by").select_option(label="Amara Okafor")
    page.get_by_label("Date").fill("2020-03-02")
    page.get_by_label("Start time").fill("10:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("cannot start more than a year ago")

    day = _weekday()
    htmx_settled(page)
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Start time").fill("03:00")
    page.get_by_label("Start time").dispatch_event("change")
    htmx_settled(page)
    preview = page.locator("#bf-preview")
    expect(preview).to_contain_text("03:00–03:45 is not a usual time")
    expect(preview).to_contain_text("outside Amara Okafor's working hours (they work 08:00–18:00)")
    expect(preview).not_to_contain_text("is free")
    if width == 1280:
        shoot(page, "booking-book-anyway")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Tick “Book anyway”")
    with app.app_context():
        assert db.session.scalars(select(Booking)).first() is None
    htmx_settled(page)
    page.get_by_label("Book anyway, outside the usual times").check()
    page.get_by_label("Reason for booking outside the usual times").fill("Night-shift learner")
    page.get_by_role("button", name="Book", exact=True).click()
    history = page.get_by_role("region", name="History")
    expect(history).to_contain_text("book anyway reason: Night-shift learner")
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry)).one()
        assert entry.changes["book_anyway_reason"] == [None, "Night-shift learner"]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_bookings_list_pages_and_searches(app, factory, live_server, page, width):
    """Upcoming first; typing a name narrows the list without a page load; past bookings are
    one click away."""
    page.set_viewport_size({"width": width, "height": 860})
    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    amara = factory.user("agent", name="Amara Okafor")
    ben = factory.user("agent", name="Ben Hughes")
    kind = factory.booking_type(name="Review", duration_minutes=45)
    first = _weekday(3)
    london = datetime.combine(first, time(9), LONDON)
    for n in range(30):
        who = amara if n % 2 else ben
        factory.booking(None, kind, london + timedelta(days=n // 5, hours=n % 5), [who],
                        title=f"Review {n:02d}")  # fmt: skip
    factory.booking(None, kind, london - timedelta(days=30), [amara], title="Old review")
    sign_in(page, live_server, "bea@example.test")
    page.goto(f"{live_server}/bookings")
    rows = page.locator("#bookings-list tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("Review 00")
    expect(page.locator(".pager")).to_contain_text("1–25 of 30")
    if width == 1280:
        shoot(page, "bookings-list-paged")
    htmx_settled(page)
    page.get_by_label("Person or title").fill("Ben Hughes")
    expect(page.locator(".pager")).to_contain_text("of 15")
    expect(page).to_have_url(re.compile(r"q=Ben"))
    page.get_by_label("Past").check()
    expect(rows).to_have_count(0)
    page.get_by_label("Person or title").fill("")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Old review")
