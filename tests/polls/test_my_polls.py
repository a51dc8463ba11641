"""Polls for everyone who may create one (issue 15): permission checked before the work,
the form keeps its proposed times, "My polls" with states and close, guests' own zone,
and how many invitees have linked calendars (seed 003)."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login
from tests.polls.test_polls import STARTS_RE, _create_poll, _outbox, _weekday

STATE_RE = re.compile(r'poll-state poll-state-(\w+)">')


def _search(client, kind, day, people=()):
    extra = "".join(f"&people={p.id}" for p in people)
    return client.get(
        f"/polls/new?booking_type={kind.id}{extra}&from={day.isoformat()}&days=1&search=1"
    )


def test_an_agent_sends_a_poll_to_guests(app, client, factory):
    """An agent (no bookings.assign) is not offered team members, and sending works."""
    agent = factory.user("agent", name="Amara Agent")
    factory.user("agent", name="Cal Colleague")
    kind = factory.booking_type(name="Review meeting")
    login(client, agent.email)
    page = _search(client, kind, _weekday())
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Cal Colleague" not in html
    assert "inviting team members needs" in html
    starts = STARTS_RE.findall(html)
    token = csrf_from(client, "/polls/new")
    response = client.post(
        "/polls/new",
        data={
            "csrf_token": token,
            "booking_type": kind.id,
            "starts": starts[:2],
            "emails": "guest@outside.test",
        },
    )
    assert response.status_code == 303
    assert {p["email"] for p in _outbox(app, "poll.invited")} == {
        agent.email,
        "guest@outside.test",
    }


def test_inviting_team_members_without_the_permission_is_refused_before_the_work(
    app, client, factory
):
    """Asked for with a colleague: a clear message at the search, before any times are
    chosen; a forged send is refused with the same message and nothing is stored."""
    agent = factory.user("agent", name="Amara Agent")
    colleague = factory.user("agent", name="Cal Colleague")
    kind = factory.booking_type(name="Review meeting")
    login(client, agent.email)
    page = _search(client, kind, _weekday(), [colleague])
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "Assign bookings to other people" in html
    assert not STARTS_RE.findall(html)
    before = db_state(app)
    token = csrf_from(client, "/polls/new")
    forged = client.post(
        "/polls/new",
        data={"csrf_token": token, "booking_type": kind.id, "people": [colleague.id]},
    )
    assert forged.status_code == 403 and "Assign bookings" in forged.get_data(as_text=True)
    assert not changed_tables(before, db_state(app))


def test_the_form_keeps_its_proposed_times_after_an_error(app, client, factory):
    """A bad guest address: 422, the same times offered again, the chosen ones ticked."""
    manager = factory.user("manager", name="Mo Manager")
    kind = factory.booking_type(name="Review meeting")
    login(client, manager.email)
    starts = STARTS_RE.findall(_search(client, kind, _weekday()).get_data(as_text=True))
    token = csrf_from(client, "/polls/new")
    response = client.post(
        "/polls/new",
        data={
            "csrf_token": token,
            "booking_type": kind.id,
            "starts": starts[1:3],
            "emails": "not-an-address",
            "from": _weekday().isoformat(),  # the form's hidden fields
            "days": "1",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "not a valid email address" in html
    assert STARTS_RE.findall(html) == starts
    for start in starts[1:3]:
        assert f'value="{start}" checked' in html
    assert f'value="{starts[0]}" checked' not in html
    assert "not-an-address" in html


def test_my_polls_states_and_close(app, client, factory):
    """Open → answered → closed by hand (with confirmation); booked polls say so."""
    from app.polls.models import Poll

    organiser = factory.user("manager", name="Mo Manager")
    colleague = factory.user("agent", name="Cal Colleague")
    poll_id, tokens, _, _ = _create_poll(app, client, factory, organiser, colleague)
    assert STATE_RE.findall(client.get("/polls").get_data(as_text=True)) == ["open"]

    guest = app.test_client()
    url = f"/polls/answer/{tokens['guest@outside.test']}"
    with app.app_context():
        options = [o.id for o in db.session.get(Poll, poll_id).options]
    data = {"csrf_token": csrf_from(guest, url), **{f"option-{i}": "yes" for i in options}}
    assert guest.post(url, data=data).status_code == 200
    listing = client.get("/polls").get_data(as_text=True)
    assert STATE_RE.findall(listing) == ["answered"] and "1 of 3" in listing

    confirm = client.get(f"/polls/{poll_id}/close")
    assert confirm.status_code == 200 and "Close the poll" in confirm.get_data(as_text=True)
    token = csrf_from(client, f"/polls/{poll_id}/close")
    assert client.post(f"/polls/{poll_id}/close", data={}).status_code == 400  # CSRF
    closed = client.post(f"/polls/{poll_id}/close", data={"csrf_token": token})
    assert closed.status_code == 303 and closed.headers["Location"].endswith("/polls")
    assert STATE_RE.findall(client.get("/polls").get_data(as_text=True)) == ["closed"]
    assert guest.get(url).status_code == 410  # the links stop taking answers
    again = client.post(f"/polls/{poll_id}/close", data={"csrf_token": token})
    assert again.status_code == 409
    with app.app_context():
        assert db.session.get(Poll, poll_id).status == "closed"


def test_a_booked_poll_shows_as_booked_and_others_cannot_close(app, client, factory):
    """Booked: state "booked" with a link to the booking; another agent cannot close it."""
    from app.polls.models import Poll

    organiser = factory.user("manager", name="Mo Manager")
    colleague = factory.user("agent", name="Cal Colleague")
    poll_id, _, _, _ = _create_poll(app, client, factory, organiser, colleague)
    with app.app_context():
        option = db.session.get(Poll, poll_id).options[0].id
    token = csrf_from(client, f"/polls/{poll_id}")
    client.post(f"/polls/{poll_id}/book", data={"csrf_token": token, "option_id": option})
    listing = client.get("/polls").get_data(as_text=True)
    assert STATE_RE.findall(listing) == ["booked"] and "See the booking" in listing
    other = app.test_client()
    login(other, colleague.email)
    assert other.get(f"/polls/{poll_id}/close").status_code == 404
    assert STATE_RE.findall(other.get("/polls").get_data(as_text=True)) == []


def test_guests_see_times_in_the_zone_they_choose(app, client, factory):
    """?tz=Asia/Tokyo shows Tokyo times (JST); a bad zone falls back to the organiser's."""
    organiser = factory.user("manager", name="Mo Manager")
    colleague = factory.user("agent", name="Cal Colleague")
    _, tokens, starts, _ = _create_poll(app, client, factory, organiser, colleague)
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tokyo = datetime.fromisoformat(starts[0]).astimezone(ZoneInfo("Asia/Tokyo"))
    url = f"/polls/answer/{tokens['guest@outside.test']}"
    html = app.test_client().get(f"{url}?tz=Asia/Tokyo").get_data(as_text=True)
    assert f"{tokyo:%a %d %b %Y, %H:%M} JST" in html
    assert '<option value="Asia/Tokyo" selected>' in html
    fallback = app.test_client().get(f"{url}?tz=Mars/Base").get_data(as_text=True)
    assert '<option value="Europe/London" selected>' in fallback


def test_the_poll_page_counts_linked_calendars(app, client, factory):
    """1 of 2 team invitees has a linked calendar: the page says so (seed 003)."""
    from app.connections.models import Connection
    from app.database import begin_write

    organiser = factory.user("manager", name="Mo Manager")
    colleague = factory.user("agent", name="Cal Colleague")
    poll_id, _, _, _ = _create_poll(app, client, factory, organiser, colleague)
    html = client.get(f"/polls/{poll_id}").get_data(as_text=True)
    assert "0 of 2 team invitees have linked calendars" in html
    with app.app_context():
        begin_write()
        db.session.add(Connection(kind="ics", user_id=colleague.id, label="Work"))
        db.session.commit()
        assert db.session.scalar(select(Connection.id)) is not None
    html = client.get(f"/polls/{poll_id}").get_data(as_text=True)
    assert "1 of 2 team invitees have linked calendars" in html
    assert "1 outside guest answers by link" in html
