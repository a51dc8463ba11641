"""The team calendar driven as a booking manager would: HTMX navigation with real URLs, Me and
Team, the red-striped conflict with its words, the back button, a phone-width day view."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.accounts.models import Group, User
from app.connections.models import BusyBlock
from app.database import begin_write, utcnow
from app.extensions import db
from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.calendar.conftest import MONDAY, local

WEEK = f"view=week&date={MONDAY.isoformat()}&scope=team"


@pytest.fixture
def office(app, factory):
    """A manager, four agents with a week of bookings, busy time, and one conflict: Amara's
    Tuesday 10:00 planning meeting overlaps her 10:30–11:30 calendar event."""
    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    names = ["Amara Okafor", "Ben Hughes", "Chloe Patel", "Dafydd Evans"]
    agents = [factory.user("agent", name=name) for name in names]
    learner = factory.user("learner", name="Aisha Ali")
    planning = factory.booking_type(
        slug="planning", name="Planning meeting", requires_approval=True, colour="#2457a7"
    )
    review = factory.booking_type(slug="review", name="Review", colour="#1f7a45")
    for n, agent in enumerate(agents):
        for day in range(5):
            when = MONDAY + timedelta(days=day)
            kind = planning if (n + day) % 3 == 0 else review
            factory.booking(None, kind, local(when, 9 + (n + day) % 4), [agent], learner=learner)
    tuesday = MONDAY + timedelta(days=1)
    factory.booking(None, planning, local(tuesday, 14), [agents[0]], learner=learner)
    with app.app_context():
        begin_write()
        blocks = [
            (agents[0], local(tuesday, 14, 30), local(tuesday, 15, 30), "busy"),  # the conflict
            (agents[1], local(MONDAY, 15), local(MONDAY, 16), "busy"),
            (agents[2], local(tuesday, 13), local(tuesday, 14), "tentative"),  # touching
            (
                agents[3],
                local(MONDAY + timedelta(days=3), 16),
                local(MONDAY + timedelta(3), 17),
                "oof",
            ),
        ]
        for person, start, end, status in blocks:
            db.session.add(
                BusyBlock(
                    person_id=person.id, starts_at=start, ends_at=end, status=status, source="demo"
                )
            )
        db.session.add(
            Group(
                slug="assessors",
                name="Assessors",
                members=[db.session.get(User, a.id) for a in agents[:2]],
            )
        )
        db.session.commit()
    return agents


def _mark_page(page) -> None:
    """Set a flag a full page load would wipe, to prove navigation stayed in the page."""
    page.evaluate("window.__stillHere = true")


def _still_same_page(page) -> bool:
    return page.evaluate("window.__stillHere === true")


def test_manager_navigates_weeks_switches_views_and_sees_conflicts(app, office, live_server, page):
    """Next/previous/today/jump update the URL and header without a reload; Me/Team switch;
    the conflict is red-striped with its label; back restores the previous week."""
    sign_in(page, live_server, "bea@example.test")
    expect(page).to_have_url(f"{live_server}/calendar")
    page.goto(f"{live_server}/calendar?{WEEK}")
    heading = page.locator("#cal-heading")
    expect(heading).to_have_text("14–20 January 2030")
    expect(page.locator(".cal-zone")).to_contain_text("Europe/London (GMT)")
    _mark_page(page)

    conflict = page.locator(".cal-item.has-conflict")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("[PENDING] Planning meeting")
    expect(conflict).to_contain_text("Conflicts with: Busy 14:30–15:30")
    stripes = conflict.evaluate("el => getComputedStyle(el).backgroundImage")
    assert "repeating-linear-gradient" in stripes
    expect(page.locator(".item-busy")).to_have_count(4)
    pending = page.locator(".item-booking.is-provisional").first
    assert pending.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"
    shoot(page, "calendar-week-team")

    page.get_by_role("link", name="Next week").click()
    expect(heading).to_have_text("21–27 January 2030")
    expect(page).to_have_url(re.compile(r"date=2030-01-21"))
    expect(page.locator(".cal-empty")).to_contain_text("No bookings this week")
    page.get_by_role("link", name="Previous week").click()
    expect(heading).to_have_text("14–20 January 2030")  # as a person would, see it land first
    page.get_by_role("link", name="Previous week").click()
    expect(heading).to_have_text("7–13 January 2030")
    expect(page).to_have_url(re.compile(r"date=2030-01-07"))
    assert _still_same_page(page)

    page.go_back()  # back to the week after the first "previous"
    expect(page).to_have_url(re.compile(r"date=2030-01-14"))
    expect(heading).to_have_text("14–20 January 2030")
    expect(page.locator(".cal-item.has-conflict")).to_have_count(1)
    page.go_back()
    expect(heading).to_have_text("21–27 January 2030")
    page.go_forward()
    expect(heading).to_have_text("14–20 January 2030")

    page.get_by_role("link", name="Today", exact=True).click()
    today = utcnow().date()
    monday = today - timedelta(days=today.weekday())
    expect(page).to_have_url(re.compile(rf"date={today.isoformat()}"))
    expect(heading).to_contain_text(str((monday + timedelta(days=6)).day))

    htmx_settled(page)
    page.get_by_label("Go to date").fill("2030-01-16")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(heading).to_have_text("14–20 January 2030")
    expect(page).to_have_url(re.compile(r"date=2030-01-16"))

    page.get_by_role("link", name="Me", exact=True).click()
    expect(page).to_have_url(re.compile(r"scope=me"))
    expect(page.locator("#cal-scope-label")).to_have_text("My bookings")
    expect(page.locator(".cal-empty")).to_contain_text("No bookings this week")
    expect(page.locator(".item-busy")).to_have_count(0)  # C6: no external events in Me
    page.get_by_role("link", name="Team", exact=True).click()
    expect(page).to_have_url(re.compile(r"scope=team"))
    # The four agents; Bea (booking manager, no hours, group or bookings) has no lane.
    expect(page.locator("tbody th[scope=row]")).to_have_count(4)

    htmx_settled(page)
    page.get_by_label("Group").select_option(label="Assessors")
    expect(page).to_have_url(re.compile(r"group=assessors"))
    expect(page.locator("tbody th[scope=row]")).to_have_text(["Amara Okafor", "Ben Hughes"])
    assert _still_same_page(page)

    page.reload()  # the URL alone rebuilds the same view
    expect(heading).to_have_text("14–20 January 2030")
    expect(page.get_by_label("Group")).to_have_value("assessors")
    expect(page.locator(".cal-item.has-conflict")).to_have_count(1)


def test_keyboard_reaches_navigation_and_bookings(app, office, live_server, page):
    """Enter on a focused "Next week" navigates and keeps focus there; bookings are links that
    open the drawer beside the calendar without leaving the page, and a change made in the
    drawer refreshes the calendar."""
    sign_in(page, live_server, "bea@example.test")
    page.goto(f"{live_server}/calendar?{WEEK}")
    page.locator("#cal-next").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#cal-heading")).to_have_text("21–27 January 2030")
    expect(page.locator("#cal-next")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # Today
    page.keyboard.press("Shift+Tab")  # Previous week
    page.keyboard.press("Enter")
    expect(page.locator("#cal-heading")).to_have_text("14–20 January 2030")

    link = page.locator(".cal-item.has-conflict a")
    link.focus()
    outline = link.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"  # visible focus
    url = page.url
    page.keyboard.press("Enter")
    drawer = page.locator("#drawer")
    expect(drawer).not_to_be_empty()
    assert page.url == url

    # Approving in the drawer tells the page (HX-Trigger: bookingChanged): the calendar
    # reloads itself in place, and the booking is no longer pending but still conflicting.
    drawer.get_by_role("button", name="Approve").click()
    conflict = page.locator(".cal-item.has-conflict")
    expect(conflict).not_to_contain_text("[PENDING]")
    expect(conflict).to_contain_text("Conflicts with: Busy 14:30–15:30")
    expect(conflict).to_have_class(re.compile(r"\bis-confirmed\b"))
    assert page.url == url


def test_day_view_on_a_phone(app, office, live_server, page):
    """At 390 px the Team day view scrolls sideways inside the calendar, not the whole page."""
    sign_in(page, live_server, "bea@example.test")
    page.set_viewport_size({"width": 390, "height": 844})
    tuesday = (MONDAY + timedelta(days=1)).isoformat()
    page.goto(f"{live_server}/calendar?view=week&date={tuesday}&scope=team")
    page.get_by_role("link", name="Day", exact=True).click()
    expect(page.locator("#cal-heading")).to_have_text("Tuesday 15 January 2030")
    expect(page).to_have_url(re.compile(r"view=day"))
    page.get_by_role("link", name="Next day").click()
    expect(page.locator("#cal-heading")).to_have_text("Wednesday 16 January 2030")  # landed
    page.get_by_role("link", name="Week", exact=True).click()
    page.get_by_role("link", name="Tue 15 Jan").click()  # a day's heading opens that day
    expect(page.locator("#cal-heading")).to_have_text("Tuesday 15 January 2030")
    expect(page).to_have_url(re.compile(r"view=day&date=2030-01-15"))
    columns = page.locator(".tg-colhead")
    expect(columns).to_have_count(4)  # the bookable people: the four agents
    expect(page.locator(".cal-item.has-conflict")).to_contain_text("Conflicts with")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390, f"the page scrolls sideways ({overflow}px)"
    scroller = page.locator(".tg-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    shoot(page, "calendar-day-phone")


def test_agent_team_view_hides_other_peoples_bookings(app, office, factory, live_server, page):
    """An agent sees colleagues' bookings as anonymous busy time: no titles, no links."""
    sign_in(page, live_server, office[1].email)
    page.goto(f"{live_server}/calendar?{WEEK}")
    amara = page.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="Amara"))
    expect(amara.locator(".item-hidden").first).to_contain_text("Busy")
    expect(amara.locator("a")).to_have_count(0)
    expect(amara).not_to_contain_text("Planning meeting")
    own = page.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="Ben Hughes"))
    expect(own.locator(".item-booking a").first).to_be_visible()
