"""Teams meetings in a real browser (issue [10], acceptance 5, join-link half): a booking
manager books a Teams meeting in the drawer; once the worker has made it in the Microsoft
stand-in the drawer shows its Join link, and the learner sees Join on their own bookings.
Axe-checked, screenshots at desk and phone width."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.bookings.conftest import weekday
from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.fakes import graph_server as _fake_microsoft
from tests.teams.meet_helpers import connect_org, deliver_all, meeting_of

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls


def test_book_a_teams_meeting_and_join_it(app, factory, live_server, page, graph_server):
    manager = factory.user("booking-manager", email="bea@contoso.test", name="Bea Bookings")
    agent = factory.user("agent", email="amara@contoso.test", name="Amara Okafor")
    learner = factory.user("learner", email="aisha@contoso.test", name="Aisha Ali")
    factory.booking_type(
        name="Progress review",
        location_modes=["teams", "face_to_face"],
        default_location_mode="teams",
        bookable_by=["staff", "learner"],
    )
    connect_org(app, graph_server, manager.email, agent.email, learner.email)

    sign_in(page, live_server, manager.email)
    page.goto(f"{live_server}/bookings")
    page.get_by_role("main").get_by_role("link", name="New booking").click()
    drawer = page.locator("#drawer")
    expect(drawer.get_by_role("heading", name="New booking")).to_be_focused()
    htmx_settled(page)
    drawer.get_by_label("Booking type").select_option(label="Progress review (60 min)")
    drawer.get_by_label("Held by").select_option(label="Amara Okafor")
    drawer.get_by_label("Learner").select_option(label="Aisha Ali")
    drawer.get_by_label("Date").fill(weekday(1).isoformat())
    drawer.get_by_label("Start time").fill("10:00")
    expect(drawer.get_by_label("Location")).to_have_value("teams")
    expect(drawer.get_by_label("Organiser email")).to_be_visible()
    drawer.get_by_role("button", name="Book", exact=True).click()
    expect(drawer.get_by_role("status")).to_contain_text("Booked: Progress review")
    expect(drawer.get_by_test_id("teams-waiting")).to_contain_text("Teams link")

    deliver_all(app)  # the worker: the outbox makes the meeting in Amara's mailbox
    [(event, fake)] = graph_server.teams_meetings_of(agent.email)
    assert event.subject == "Progress review"
    page.goto(f"{live_server}/bookings")
    page.locator("#bookings-list").get_by_role("link", name="Progress review").click()
    expect(drawer.get_by_role("heading", name="Progress review")).to_be_focused()
    join = drawer.get_by_test_id("teams-join")
    expect(join).to_have_attribute("href", fake.join_url)
    expect(join).to_contain_text("Join")
    shoot(page, "teams-meeting-drawer")
    assert meeting_of(app, _only_booking(app)).join_url == fake.join_url

    page.context.clear_cookies()
    sign_in(page, live_server, learner.email)
    page.goto(f"{live_server}/me/book")
    join = page.get_by_test_id("teams-join")
    expect(join).to_have_attribute("href", fake.join_url)
    expect(join).to_contain_text("Join")
    shoot(page, "teams-meeting-learner")


def _only_booking(app) -> int:
    from sqlalchemy import select

    from app.bookings.models import Booking
    from app.extensions import db

    with app.app_context():
        [booking_id] = db.session.scalars(select(Booking.id)).all()
        db.session.rollback()
        return booking_id
