"""Starting a booking from an empty calendar slot, and a Team view of bookable people only
(issue 15)."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest

from app.accounts import hours
from app.accounts.models import User
from app.database import begin_write
from app.extensions import db
from tests.calendar.conftest import MONDAY
from tests.calendar.test_routes import make_group, page, team  # noqa: F401 - the fixture
from tests.conftest import login

pytestmark = pytest.mark.db
PICK_RE = re.compile(r'data-pick-url="([^"]+)"')
LANES_RE = re.compile(r'<th scope="row">([^<]+)</th>')


def _set_hours(app, person):
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(db.session.get(User, person.id), {0: [(time(9), time(17))]})
        db.session.commit()


def test_team_lists_bookable_people_only(app, client, factory, team):  # noqa: F811
    """An owner or booking manager without hours, group or bookings has no lane; an agent
    with working hours has one even in an empty week; a group member has one in the group."""
    carl = factory.user("agent", email="carl@example.test", name="Carl Agent")
    dee = factory.user("agent", email="dee@example.test", name="Dee Agent")
    factory.user("owner", email="own@example.test", name="Olga Owner")
    _set_hours(app, carl)
    make_group(app, "assessors", [dee])
    login(client, team["manager"].email)
    assert LANES_RE.findall(page(client, scope="team")) == [
        "Ann Agent",
        "Bob Agent",
        "Carl Agent",
        "Dee Agent",
    ]
    later = (MONDAY + timedelta(days=21)).isoformat()
    assert LANES_RE.findall(page(client, scope="team", date=later)) == ["Carl Agent", "Dee Agent"]
    assert LANES_RE.findall(page(client, scope="team", group="assessors")) == ["Dee Agent"]


def test_empty_slots_carry_the_booking_form_for_that_day_and_person(app, client, team):  # noqa: F811
    """Me week: a column per day for the viewer; Team day: a column per person; Team week: a
    cell per person and day. Each has a keyboard link to the same form."""
    manager, ann = team["manager"], team["ann"]
    login(client, manager.email)
    me = PICK_RE.findall(page(client, scope="me"))
    days = [(MONDAY + timedelta(days=n)).isoformat() for n in range(7)]
    assert me == [f"/bookings/new?day={d}&amp;people={manager.id}" for d in days]
    day = page(client, scope="team", view="day")
    assert PICK_RE.findall(day)[0] == f"/bookings/new?day={MONDAY}&amp;people={ann.id}"
    assert 'data-first-min="420" data-rows="52"' in day
    assert ">New booking for Ann Agent</a>" in day
    week = PICK_RE.findall(page(client, scope="team"))
    assert len(week) == 2 * 7 and week[1] == f"/bookings/new?day={days[1]}&amp;people={ann.id}"
    form = client.get(f"/bookings/new?day={MONDAY}&people={ann.id}&start=10:30")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'value="10:30"' in html
    assert f'<option selected value="{ann.id}">' in html or f'value="{ann.id}" selected' in html


def test_an_agent_gets_slots_for_themself_only(app, client, team):  # noqa: F811
    """Without bookings.assign an agent's Team view offers no one else's slots; a learner's
    calendar offers none at all."""
    ann, bob = team["ann"], team["bob"]
    login(client, ann.email)
    urls = PICK_RE.findall(page(client, scope="team", view="day"))
    assert urls == [f"/bookings/new?day={MONDAY}&amp;people={ann.id}"]
    learner = app.test_client()
    login(learner, team["learner"].email)
    assert PICK_RE.findall(page(learner, scope="me")) == []
    assert bob  # Bob's column is shown to Ann, without a slot link
