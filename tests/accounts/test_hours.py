"""A1: a person edits their own working hours, date overrides and time off."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import select

from app.accounts.models import DateOverride, TimeOff, WorkingHoursRule
from app.extensions import db
from tests.conftest import csrf_from, login


def _rules(app, user_id):
    with app.app_context():
        return sorted(
            (r.weekday, r.start_time, r.end_time)
            for r in db.session.scalars(
                select(WorkingHoursRule).where(WorkingHoursRule.user_id == user_id)
            )
        )


def test_weekly_hours_are_saved_and_shown_again(app, client, factory):
    """Two ranges on Monday, one on Friday: stored as rules and pre-filled on the page."""
    agent = factory.user("agent", email="amara@example.test")
    login(client, agent.email)
    token = csrf_from(client, "/me/availability")
    form = {
        "csrf_token": token,
        "d0_start1": "09:00",
        "d0_end1": "12:00",
        "d0_start2": "13:00",
        "d0_end2": "17:30",
        "d4_start1": "10:00",
        "d4_end1": "14:00",
    }
    response = client.post("/me/availability/week", data=form)
    assert response.status_code == 303
    assert _rules(app, agent.id) == [
        (0, time(9), time(12)),
        (0, time(13), time(17, 30)),
        (4, time(10), time(14)),
    ]
    page = client.get("/me/availability").get_data(as_text=True)
    assert 'value="13:00"' in page and "Europe/London" in page


def test_bad_ranges_are_refused_and_change_nothing(app, client, factory):
    """An end before its start, a half-filled range or overlapping ranges: 400, old hours kept."""
    agent = factory.user("agent", email="amara@example.test")
    login(client, agent.email)
    token = csrf_from(client, "/me/availability")
    client.post(
        "/me/availability/week",
        data={"csrf_token": token, "d1_start1": "09:00", "d1_end1": "17:00"},
    )
    before = _rules(app, agent.id)
    for bad, message in [
        ({"d2_start1": "17:00", "d2_end1": "09:00"}, "ends before it starts"),
        ({"d2_start1": "09:00"}, "give both a start and an end"),
        (
            {"d2_start1": "09:00", "d2_end1": "12:00", "d2_start2": "11:00", "d2_end2": "13:00"},
            "overlap",
        ),
        ({"d2_start1": "nine", "d2_end1": "12:00"}, "is not a time"),
    ]:
        response = client.post("/me/availability/week", data={"csrf_token": token, **bad})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
        assert _rules(app, agent.id) == before


def test_override_day_off_and_removal(app, client, factory):
    """A date with no times becomes a day off; removing it restores the weekly hours."""
    agent = factory.user("agent", email="amara@example.test")
    login(client, agent.email)
    token = csrf_from(client, "/me/availability")
    day = date(2030, 3, 4)
    assert (
        client.post(
            "/me/availability/overrides", data={"csrf_token": token, "day": day.isoformat()}
        ).status_code
        == 303
    )
    with app.app_context():
        row = db.session.scalars(select(DateOverride)).one()
        assert (row.day, row.start_time, row.end_time) == (day, None, None)
    assert "day off" in client.get("/me/availability").get_data(as_text=True)
    url = f"/me/availability/overrides/{day.isoformat()}/delete"
    assert client.post(url, data={"csrf_token": token}).status_code == 303
    with app.app_context():
        assert db.session.scalars(select(DateOverride)).all() == []


def test_whole_days_of_time_off_follow_the_clock_change(app, client, factory):
    """Time off for the last Sunday of March in London is 23 hours long, midnight to midnight."""
    agent = factory.user("agent", email="amara@example.test")
    login(client, agent.email)
    token = csrf_from(client, "/me/availability")
    response = client.post(
        "/me/availability/time-off",
        data={
            "csrf_token": token,
            "start_day": "2030-03-31",
            "end_day": "2030-03-31",
            "reason": "Family",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        row = db.session.scalars(select(TimeOff)).one()
        assert row.starts_at == datetime(2030, 3, 31, 0, 0, tzinfo=UTC)
        assert row.ends_at == datetime(2030, 3, 31, 23, 0, tzinfo=UTC)  # 00:00 BST on 1 April


def test_nobody_removes_another_persons_time_off(app, client, factory):
    """A time-off id of someone else is simply not found, and their row stays."""
    owner_of_row = factory.user("agent", email="ben@example.test")
    with app.app_context():
        from app.accounts import hours
        from app.accounts.models import User
        from app.database import begin_write

        begin_write()
        row = hours.add_time_off(
            db.session.get(User, owner_of_row.id),
            datetime(2030, 1, 1, tzinfo=UTC),
            datetime(2030, 1, 2, tzinfo=UTC),
        )
        db.session.commit()
        row_id = row.id
    intruder = factory.user("agent", email="amara@example.test")
    login(client, intruder.email)
    token = csrf_from(client, "/me/availability")
    response = client.post(f"/me/availability/time-off/{row_id}/delete", data={"csrf_token": token})
    assert response.status_code == 400
    assert "no longer exists" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(TimeOff, row_id) is not None


def test_learners_have_no_availability_screen(client, factory):
    """Working hours are for staff: a learner gets 403."""
    learner = factory.user("learner", email="lee@example.test")
    login(client, learner.email)
    assert client.get("/me/availability").status_code == 403
