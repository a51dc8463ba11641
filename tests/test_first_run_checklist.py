"""Issue [09] "First run": an owner of an empty organisation lands on a setup checklist, not an
empty calendar. Each step's state comes from the database; the checklist goes once there is
a booking type and another member of staff; ``?setup=skip`` shows the calendar anyway."""

from __future__ import annotations

import re
from datetime import time

from app.accounts.models import User
from app.admin.settings import set_setting
from app.database import begin_write
from app.extensions import db
from tests.conftest import PASSWORD, csrf_from

OWNER = "founder@example.test"
STEPS = ["organisation", "hours", "staff", "booking_type", "calendars", "public"]
LINKS = {
    "organisation": "/admin/settings/general",
    "hours": "/me/availability",
    "staff": "/admin/people/new",
    "booking_type": "/admin/booking-types/new",
    "calendars": "/me/calendars",
    "public": "/admin/settings/general",
}


def _create_owner(app) -> int:
    args = ["create-owner", OWNER, "--password", PASSWORD, "--name", "Fay Founder"]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    with app.app_context():
        return db.session.scalars(db.select(User.id).where(User.email == OWNER)).one()


def _sign_in(client, email: str = OWNER):
    token = csrf_from(client, "/login")
    data = {"email": email, "password": PASSWORD, "csrf_token": token}
    return client.post("/login", data=data)


def _states(page: str) -> dict[str, str]:
    found = re.findall(
        r'<li class="setup-step[^"]*" id="setup-([a-z_]+)">.*?<span class="badge [^"]*">([^<]+)<',
        page,
        re.S,
    )
    return dict(found)


def _write(app, change) -> None:
    with app.app_context():
        begin_write()
        change()
        db.session.commit()


def test_owner_of_an_empty_database_lands_on_the_checklist(app, client):
    """Only `flask create-owner` ran: every step is to do and links where it is done."""
    _create_owner(app)
    response = _sign_in(client)
    assert response.headers["Location"] == "/calendar"
    page = client.get("/calendar").get_data(as_text=True)
    assert "Set up your organisation" in page and 'class="cal-page"' not in page
    assert _states(page) == dict.fromkeys(STEPS, "To do")
    assert "0 of 6 steps done." in page
    for key, href in LINKS.items():
        step = page.split(f'id="setup-{key}"', 1)[1].split("</li>", 1)[0]
        assert f'href="{href}"' in step, key
    assert 'href="/calendar?setup=skip"' in page
    for href in set(LINKS.values()):
        assert client.get(href).status_code == 200, href  # every link opens its screen


def test_each_step_ticks_from_the_database(app, client, factory):
    from app.accounts import hours
    from app.connections.models import Connection

    owner_id = _create_owner(app)
    _sign_in(client)

    def owner():
        return db.session.get(User, owner_id)

    _write(app, lambda: set_setting("organisation_name", "Northgate Training"))
    _write(app, lambda: hours.set_weekly_hours(owner(), {0: [(time(9), time(17))]}))
    _write(app, lambda: db.session.add(Connection(kind="ics", user_id=owner_id, label="Work")))
    _write(app, lambda: set_setting("public_scheduling_enabled", True))
    states = _states(client.get("/calendar").get_data(as_text=True))
    assert states == {
        "organisation": "Done",
        "hours": "Done",
        "staff": "To do",
        "booking_type": "To do",
        "calendars": "Done",
        "public": "Done",
    }
    factory.user("agent")
    page = client.get("/calendar").get_data(as_text=True)
    assert _states(page)["staff"] == "Done" and "5 of 6 steps done." in page


def test_an_inactive_booking_type_or_a_learner_does_not_count(app, client, factory):
    _create_owner(app)
    _sign_in(client)
    factory.booking_type(active=False)
    factory.user("learner")
    factory.user("employer")
    page = client.get("/calendar").get_data(as_text=True)
    assert _states(page)["staff"] == "To do" and _states(page)["booking_type"] == "To do"


def test_the_checklist_goes_once_there_are_staff_and_a_booking_type(app, client, factory):
    _create_owner(app)
    _sign_in(client)
    factory.booking_type(name="Review")
    assert "Set up your organisation" in client.get("/calendar").get_data(as_text=True)
    factory.user("agent")
    page = client.get("/calendar").get_data(as_text=True)
    assert "Set up your organisation" not in page and 'class="cal-page"' in page


def test_show_the_calendar_anyway_and_htmx_navigation_skip_it(app, client):
    _create_owner(app)
    _sign_in(client)
    anyway = client.get("/calendar?setup=skip").get_data(as_text=True)
    assert 'class="cal-page"' in anyway and "Set up your organisation" not in anyway
    fragment = client.get("/calendar?view=week", headers={"HX-Request": "true"})
    assert "Set up your organisation" not in fragment.get_data(as_text=True)


def test_people_who_cannot_set_up_see_the_calendar(app, client, factory):
    """An agent of an empty organisation has no step they could do: no checklist."""
    agent = factory.user("agent")
    _sign_in(client, agent.email)
    page = client.get("/calendar").get_data(as_text=True)
    assert 'class="cal-page"' in page and "Set up your organisation" not in page


def test_people_managers_without_settings_see_it_too(app, client, factory):
    """settings.manage or people.manage: an administrator (both by default) gets it."""
    admin = factory.user("administrator")
    _sign_in(client, admin.email)
    assert "Set up your organisation" in client.get("/calendar").get_data(as_text=True)
