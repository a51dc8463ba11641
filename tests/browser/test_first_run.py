"""From an empty database to a visitor's booking, through the screens alone.

The owner exists only because ``flask create-owner`` made them; everything else a training
provider needs (a team, agents with hours, a learner with a workplace mentor, a public booking
type) is set up in the browser, and a visitor then books it at /book. If any of those steps
still needed the demo seed or the command line, this test would not get to the booking.
"""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.conftest import PASSWORD

OWNER = "olive@example.test"


def _cli(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _count(app, model) -> int:
    from app.extensions import db

    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
    return n


def _add_person(page, base: str, name: str, email: str, role: str, group: str | None = None):
    page.goto(f"{base}/admin/people/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Role").select_option(role)
    if group:
        page.get_by_label(group).check()
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def _set_weekdays(page, start: str, end: str, days: range) -> None:
    weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    for day in days:
        page.get_by_label(f"{weekdays[day]} range 1 start").fill(start)
        page.get_by_label(f"{weekdays[day]} range 1 end").fill(end)
    page.get_by_role("button", name="Save working hours").click()
    expect(page.get_by_text("Working hours saved.")).to_be_visible()


def test_owner_sets_up_from_nothing_and_a_visitor_books(app, live_server, page, browser):
    from app.accounts.models import Group, LearnerProfile, User
    from app.bookings.models import Booking, BookingType
    from app.extensions import db

    assert _count(app, User) == 0 and _count(app, BookingType) == 0
    _cli(app, "create-owner", OWNER, "--name", "Olive Owner", "--password", PASSWORD)
    sign_in(page, live_server, OWNER)

    # A group for the assessors.
    page.get_by_role("link", name="Groups").click()
    page.get_by_label("Name").fill("Assessors")
    page.get_by_role("button", name="Create group").click()
    page.wait_for_url("**/admin/groups/*")

    # Two agents in it, each with their own working hours.
    for name, email, start, end in [
        ("Amara Okafor", "amara@example.test", "09:00", "17:00"),
        ("Ben Brown", "ben@example.test", "10:00", "16:00"),
    ]:
        _add_person(page, live_server, name, email, "agent", group="Assessors")
        page.get_by_role("link", name=f"Edit {name}'s availability").click()
        _set_weekdays(page, start, end, range(7))
    shoot(page, "first-run-agent-hours")

    # A workplace mentor, then a learner linked to them and to an agent.
    _add_person(page, live_server, "Emma Employer", "emma@example.test", "employer")
    _add_person(page, live_server, "Lee Learner", "lee@example.test", "learner")
    htmx_settled(page)  # htmx binds the pickers' triggers on load
    page.get_by_label("Search for the workplace mentor").fill("emma")
    htmx_settled(page)
    page.locator("#p-mentor_id").select_option(
        label="Emma Employer · emma@example.test (Employer (workplace mentor))"
    )
    page.get_by_label("Search for the assigned agent (end-point assessment)").fill("amara")
    htmx_settled(page)
    page.locator("#p-assigned_agent_id").select_option(
        label="Amara Okafor · amara@example.test (Agent)"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Olive Owner saved Lee Learner")).to_be_visible()
    shoot(page, "first-run-learner")

    # A public booking type whose times come from the group.
    page.get_by_role("link", name="Booking types").click()
    page.get_by_role("link", name="New booking type").click()
    page.get_by_label("Name", exact=True).fill("Skills review")
    page.get_by_label("Description").fill("A one-hour review of your portfolio with an assessor.")
    page.locator("#bt-who-learner").set_checked(False)
    page.locator("#bt-who-staff").set_checked(False)
    page.get_by_label("The public (landing page)").check()
    page.get_by_label("A group", exact=True).check()
    page.get_by_label("Group (when availability comes from a group)").select_option(
        label="Assessors (2 members)"
    )
    page.get_by_role("button", name="Create booking type").click()
    expect(page.get_by_text("Booking type Skills review created.")).to_be_visible()

    # Public booking is switched on from the command line until its screen lands ([09]).
    _cli(app, "settings", "set", "public_scheduling_enabled", "true")

    with app.app_context():
        assessors = db.session.scalars(select(Group).where(Group.name == "Assessors")).one()
        assert sorted(u.name for u in assessors.members) == ["Amara Okafor", "Ben Brown"]
        lee = db.session.scalars(select(User).where(User.email == "lee@example.test")).one()
        profile = db.session.get(LearnerProfile, lee.id)
        assert profile.workplace_mentor.name == "Emma Employer"
        assert profile.assigned_agent.name == "Amara Okafor"
        kind = db.session.scalars(
            select(BookingType).where(BookingType.name == "Skills review")
        ).one()
        assert kind.bookable_by == ["public"] and kind.availability_group_id == assessors.id
        db.session.rollback()

    # A visitor, not signed in, books it.
    visitor = browser.new_context(
        viewport={"width": 1100, "height": 860}, locale="en-GB", timezone_id="Europe/London"
    )
    try:
        public = visitor.new_page()
        public.set_default_timeout(10_000)
        public.goto(f"{live_server}/book")
        expect(public.get_by_text("A one-hour review of your portfolio")).to_be_visible()
        public.get_by_role("link", name="Skills review").click()
        first = public.locator('input[name="start"]').first
        first.check()
        public.get_by_label("Name").fill("Val Visitor")
        public.get_by_label("Email").fill("val@example.test")
        public.get_by_role("button", name="Book this time").click()
        expect(public.get_by_role("heading", name="You're booked")).to_be_visible()
        shoot(public, "first-run-visitor-booked")
    finally:
        visitor.close()

    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert booking.booking_type.name == "Skills review"
        staff = {u.name for u in booking.internal_people}
        assert staff & {"Amara Okafor", "Ben Brown"}, staff
        db.session.rollback()
