"""The booking form with its conflict preview, the side drawer and the capacity screen, driven
in headless Chromium as a booking manager (and an agent) would, with screenshots."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from app.bookings.models import Booking, Status
from app.extensions import db
from tests.bookings.conftest import add_busy, local, weekday
from tests.browser.conftest import htmx_settled, shoot, sign_in


@pytest.fixture
def people(factory):
    manager = factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    agent = factory.user("agent", email="amara@example.test", name="Amara Okafor")
    other = factory.user("agent", email="ben@example.test", name="Ben Brown")
    learner = factory.user("learner", email="aisha@example.test", name="Aisha Ali")
    planning = factory.booking_type(name="Planning meeting", requires_approval=True)
    review = factory.booking_type(name="Review")
    return SimpleNamespace(
        manager=manager, agent=agent, other=other, learner=learner, planning=planning, review=review
    )


def test_form_preview_shows_the_conflict_and_booking_anyway_works(
    app, factory, live_server, page, people
):
    """Choosing a time over the agent's busy block draws it red-striped with words; a quick
    pick clears it; booking over the busy block anyway is allowed and opens the booking."""
    p = people
    day = weekday()
    add_busy(app, p.agent, local(day, 10), local(day, 11))
    factory.booking(None, p.review, local(day, 14), [p.agent], title="Portfolio review")
    sign_in(page, live_server, p.manager.email)

    page.goto(f"{live_server}/bookings/new")
    page.get_by_label("Booking type").select_option(label="Review (60 min)")
    page.get_by_label("Held by").select_option(label="Amara Okafor")
    page.get_by_label("Learner").select_option(label="Aisha Ali")
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Start time").fill("10:30")
    preview = page.get_by_role("region", name=re.compile("Their day"))
    conflict = preview.locator(".pv-chip.pv-proposed.pv-conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Conflicts with Busy")
    expect(preview.locator(".pv-message-conflict")).to_contain_text("10:30–11:30 conflicts with")
    expect(preview.locator(".pv-chip.pv-booking")).to_contain_text("Portfolio review")

    page.get_by_role("button", name="Use 11:00").click()
    expect(page.get_by_label("Start time")).to_have_value("11:00")
    expect(preview.locator(".pv-message-ok")).to_contain_text("is free for everyone chosen")
    expect(preview.locator(".pv-conflict")).to_have_count(0)

    page.get_by_label("Start time").fill("10:30")
    expect(preview.locator(".pv-chip.pv-proposed.pv-conflict")).to_be_visible()
    page.get_by_label("Address or meeting link").fill("Room 2, Head Office")
    shoot(page, "booking-form-conflict")
    page.get_by_role("button", name="Book", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Booked: Review, confirmed.")
    expect(page.locator("dt:text('When') + dd")).to_contain_text("10:30")
    with app.app_context():
        booking = db.session.scalars(db.select(Booking).order_by(Booking.id.desc())).first()
        assert booking.starts_at == local(day, 10, 30) and booking.owner_id == p.agent.id

    # ... and the saved booking is red-striped on the team calendar too, with its label (C3).
    page.goto(f"{live_server}/calendar?scope=team&view=day&date={day.isoformat()}")
    saved = page.locator(".cal-item.has-conflict")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("Conflicts with: Busy 10:00–11:00")
    assert "repeating-linear-gradient" in saved.evaluate(
        "el => getComputedStyle(el).backgroundImage"
    )


def test_new_booking_in_the_drawer(app, factory, live_server, page, people):
    """The bookings list's "New booking" opens the form in the drawer; saving swaps in the
    new booking's drawer and the list behind it refreshes."""
    p = people
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/bookings")
    page.get_by_role("main").get_by_role("link", name="New booking").click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="New booking")).to_be_focused()
    htmx_settled(page)  # the form was swapped in; its preview triggers bind on settle
    drawer.get_by_label("Booking type").select_option(label="Planning meeting (60 min)")
    drawer.get_by_label("Held by").select_option(label="Amara Okafor")
    drawer.get_by_label("Learner").select_option(label="Aisha Ali")
    drawer.get_by_label("Date").fill(weekday(12).isoformat())
    drawer.get_by_label("Start time").fill("09:00")
    expect(drawer.locator(".pv-message-ok")).to_be_visible()
    drawer.get_by_role("button", name="Book", exact=True).click()
    expect(drawer.get_by_role("status")).to_contain_text("awaiting approval")
    expect(drawer.get_by_role("heading", name="Planning meeting")).to_be_focused()
    expect(page.locator("#bookings-list")).to_contain_text("Planning meeting")


def test_manager_approves_from_the_drawer(app, factory, live_server, page, people):
    """Open a provisional booking in the drawer from the list, approve it there, close it with
    Escape; focus goes into the drawer and back to the link."""
    p = people
    booking = factory.booking(None, p.planning, local(weekday(), 10), [p.agent], learner=p.learner)
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/bookings")
    link = page.locator("#bookings-list").get_by_role("link", name="Planning meeting")
    link.click()
    drawer = page.locator("#drawer")
    heading = drawer.get_by_role("heading", name="Planning meeting")
    expect(heading).to_be_focused()
    expect(drawer.locator(".badge")).to_contain_text("[PENDING]")
    expect(drawer).to_contain_text("Aisha Ali")
    shoot(page, "booking-drawer")

    drawer.get_by_role("button", name="Approve").click()
    expect(drawer.get_by_role("status")).to_contain_text("Booking approved.")
    expect(drawer.locator(".badge")).to_have_text("Confirmed")
    expect(drawer.get_by_role("region", name="History")).to_contain_text("Bea Bookings approved")
    expect(page.locator("#bookings-list .badge")).to_have_text("Confirmed")  # list refreshed

    page.keyboard.press("Escape")
    expect(drawer).to_be_empty()
    expect(drawer).to_be_hidden()
    expect(
        page.locator("#bookings-list").get_by_role("link", name="Planning meeting")
    ).to_be_focused()
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == Status.CONFIRMED


def test_cancel_in_the_drawer_asks_first_and_close_button_works(
    app, factory, live_server, page, people
):
    """Cancel in the drawer still has its "Yes, cancel it" step; × closes the drawer."""
    p = people
    booking = factory.booking(None, p.review, local(weekday(), 11), [p.agent])
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/bookings")
    page.locator("#bookings-list").get_by_role("link", name="Review").click()
    drawer = page.locator("#drawer")
    drawer.get_by_text("Cancel…").click()
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == Status.CONFIRMED
    drawer.get_by_role("button", name="Yes, cancel it").click()
    expect(drawer.locator(".badge")).to_contain_text("Cancelled")
    drawer.get_by_role("button", name="Close booking details").click()
    expect(drawer).to_be_hidden()


def test_bulk_approve_two_on_the_capacity_screen(app, factory, live_server, page, people):
    """Filter, tick two provisional bookings, confirm, and both are approved."""
    p = people
    day = weekday()
    first = factory.booking(None, p.planning, local(day, 10), [p.agent], learner=p.learner)
    second = factory.booking(None, p.planning, local(day, 13), [p.other])
    third = factory.booking(None, p.planning, local(weekday(15), 9), [p.other])
    with app.app_context():
        from app.bookings import service
        from app.database import begin_write

        begin_write()
        service.approve(None, db.session.get(Booking, third.id))
        db.session.commit()
    sign_in(page, live_server, p.manager.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Capacity").click()
    expect(page.get_by_role("heading", name="Planning capacity")).to_be_visible()
    htmx_settled(page)  # the filters are bound by htmx once the page has loaded
    table = page.locator("#capacity-table")
    expect(table.locator("tbody tr")).to_have_count(3)

    page.get_by_label("Status").select_option(label="Provisional")
    expect(page).to_have_url(re.compile(r"/capacity\?status=provisional"))
    expect(table.locator("tbody tr")).to_have_count(2)
    for booking in (first, second):
        page.locator(f"#pick-{booking.id}").check()
    shoot(page, "capacity")
    page.get_by_role("button", name="Approve selected…").click()

    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="Approve 2 bookings?")).to_be_focused()
    with app.app_context():
        assert db.session.get(Booking, first.id).status == Status.PROVISIONAL  # not yet
    shoot(page, "capacity-confirm")
    drawer.get_by_role("button", name="Yes, approve 2 bookings").click()
    expect(drawer.get_by_role("status")).to_have_text("2 bookings approved.")
    expect(table.locator("tbody tr")).to_have_count(0)  # the provisional filter now shows none
    with app.app_context():
        for booking in (first, second):
            row = db.session.get(Booking, booking.id)
            assert row.status == Status.CONFIRMED
            assert row.audit_entries[-1].actor_id == p.manager.id


def test_agent_sees_no_approve_button_and_gets_403(app, factory, live_server, page, people):
    """An agent's own provisional booking: no Approve in the drawer or page; posting is 403."""
    p = people
    booking = factory.booking(None, p.planning, local(weekday(), 10), [p.agent], learner=p.learner)
    sign_in(page, live_server, p.agent.email)
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Capacity")
    ).to_have_count(0)
    page.goto(f"{live_server}/bookings")
    page.locator("#bookings-list").get_by_role("link", name="Planning meeting").click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="Planning meeting")).to_be_visible()
    expect(drawer.get_by_role("button", name="Approve")).to_have_count(0)
    expect(drawer.get_by_text("Reject…")).to_have_count(0)
    token = drawer.locator('input[name="csrf_token"]').first.input_value()
    response = page.request.post(
        f"{live_server}/bookings/{booking.id}/approve", form={"csrf_token": token}
    )
    assert response.status == 403
    assert page.request.get(f"{live_server}/capacity").status == 403
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == Status.PROVISIONAL


def test_reassign_from_the_capacity_screen(app, factory, live_server, page, people):
    """Reassign opens in the drawer listing only free agents; choosing one moves the booking
    and the table behind shows the new owner."""
    p = people
    day = weekday()
    booking = factory.booking(None, p.planning, local(day, 10), [p.agent], learner=p.learner)
    busy = factory.user("agent", email="bo@example.test", name="Bo Busy")
    add_busy(app, busy, local(day, 9), local(day, 12))
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/capacity")
    page.get_by_role("link", name=re.compile("^Reassign Planning meeting")).click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="Reassign Planning meeting")).to_be_focused()
    expect(drawer.get_by_label("Ben Brown")).to_be_visible()
    expect(drawer.get_by_label("Bo Busy")).to_have_count(0)
    shoot(page, "capacity-reassign")
    drawer.get_by_label("Ben Brown").check()
    drawer.get_by_role("button", name="Reassign").click()
    expect(drawer.get_by_role("status")).to_contain_text("moved from Amara Okafor to Ben Brown")
    expect(page.locator("#capacity-table tbody tr").first).to_contain_text("Ben Brown")
    with app.app_context():
        assert db.session.get(Booking, booking.id).owner_id == p.other.id


def test_drawer_opens_from_the_team_calendar(app, factory, live_server, page, people):
    """A booking on the calendar opens in the calendar's drawer; approving it there refreshes
    the calendar (bookingChanged) and Escape hands focus back to the item."""
    p = people
    day = weekday()
    factory.booking(None, p.planning, local(day, 10), [p.agent], learner=p.learner)
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/calendar?scope=team&view=day&date={day.isoformat()}")
    item = page.locator(".cal-link", has_text="Planning meeting").first
    item.click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="Planning meeting")).to_be_focused()
    drawer.get_by_role("button", name="Approve").click()
    expect(drawer.get_by_role("status")).to_contain_text("Booking approved.")
    expect(page.locator(".cal-link", has_text="[PENDING]")).to_have_count(0)
    shoot(page, "calendar-drawer")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(page.locator(".cal-link", has_text="Planning meeting").first).to_be_focused()


def test_a_refusal_shows_in_the_drawer_with_a_way_out(app, factory, live_server, page, people):
    """If the manager loses bookings.approve while the drawer is open, Approve answers 403: the
    message appears in the drawer (not silently dropped) with a close button."""
    from app.accounts.models import Role
    from app.database import begin_write

    p = people
    booking = factory.booking(None, p.planning, local(weekday(), 10), [p.agent])
    sign_in(page, live_server, p.manager.email)
    page.goto(f"{live_server}/bookings")
    page.locator("#bookings-list").get_by_role("link", name="Planning meeting").click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("button", name="Approve")).to_be_visible()
    with app.app_context():
        begin_write()
        role = db.session.scalars(db.select(Role).where(Role.slug == "booking-manager")).one()
        role.permissions = [x for x in role.permissions if x.code != "bookings.approve"]
        db.session.commit()
    drawer.get_by_role("button", name="Approve").click()
    expect(drawer.get_by_role("heading", name="Not allowed")).to_be_focused()
    drawer.get_by_role("button", name="Close").click()
    expect(drawer).to_be_hidden()
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == Status.PROVISIONAL
