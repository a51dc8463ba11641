"""The capacity screen (C5): filters, bulk approve/reject with a confirmation, reassign."""

from __future__ import annotations

import re
from datetime import time

import pytest
from sqlalchemy import func, select

from app.accounts import hours
from app.accounts.models import User
from app.bookings import service
from app.bookings.models import AuditEntry, Booking, Hold, Status
from app.bookings.policy import PermissionDenied
from app.database import begin_write
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.bookings.conftest import HX, add_busy, is_fragment, local, varies_on_hx, weekday
from tests.conftest import csrf_from, login


@pytest.fixture
def planned(factory, cast):
    """Planning bookings in several states, and one booking of a type without approval."""
    d1, d2 = weekday(10), weekday(14)
    first = factory.booking(None, cast.planning, local(d1, 10), [cast.agent], learner=cast.learner)
    second = factory.booking(None, cast.planning, local(d1, 14), [cast.other_agent])
    confirmed = factory.booking(None, cast.planning, local(d2, 10), [cast.agent])
    rejected = factory.booking(None, cast.planning, local(d2, 15), [cast.other_agent])
    with factory.app.app_context():
        begin_write()
        service.approve(None, db.session.get(Booking, confirmed.id))
        service.reject(None, db.session.get(Booking, rejected.id))
        db.session.commit()
    review = factory.booking(None, cast.review, local(d1, 16), [cast.agent], title="Plain review")
    return {
        "first": first.id,
        "second": second.id,
        "confirmed": confirmed.id,
        "rejected": rejected.id,
        "review": review.id,
        "d1": d1,
        "d2": d2,
    }


def _status(app, booking_id):
    with app.app_context():
        return db.session.get(Booking, booking_id).status


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]


def _audit_count(app, booking_id):
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.booking_id == booking_id)
        )


def test_capacity_needs_the_permission(app, client, cast, planned):
    """An agent (no capacity.manage) gets 403 on every capacity URL and no nav link."""
    login(client, cast.agent.email)
    assert "/capacity" not in client.get("/bookings").get_data(as_text=True)
    token = csrf_from(client, "/bookings")
    ids = f"ids={planned['first']}"
    for url in (
        "/capacity",
        f"/capacity/confirm?action=approve&{ids}",
        f"/capacity/{planned['first']}/reassign",
    ):
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers=HX).status_code == 403, url
    response = client.post(
        "/capacity/bulk", data={"csrf_token": token, "action": "approve", "ids": planned["first"]}
    )
    assert response.status_code == 403
    assert _status(app, planned["first"]) == Status.PROVISIONAL


def test_capacity_lists_planning_bookings_as_page_or_fragment(app, client, cast, planned):
    """Provisional and confirmed bookings of approval types only; Vary on both answers."""
    login(client, cast.manager.email)
    page = client.get("/capacity")
    assert page.status_code == 200 and not is_fragment(page) and varies_on_hx(page)
    html = page.get_data(as_text=True)
    assert 'href="/capacity"' in html and "Planning capacity" in html  # nav + heading
    assert sorted(_rows(html)) == sorted(
        [planned["first"], planned["second"], planned["confirmed"]]
    )
    fragment = client.get("/capacity", headers=HX)
    assert is_fragment(fragment) and varies_on_hx(fragment)
    assert 'id="capacity-table"' in fragment.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=provisional", ["first", "second"]),
        ("status=confirmed", ["confirmed"]),
        ("agent={agent}", ["first", "confirmed"]),
        ("type={review}", []),
        ("from={d2}", ["confirmed"]),
        ("to={d1}", ["first", "second"]),
        ("from={d1}&to={d1}&agent={other}", ["second"]),
    ],
)
def test_capacity_filters(app, client, cast, planned, query, expected):
    """Status, agent, type and date range filter the table (GET arguments, HTMX fragment)."""
    login(client, cast.manager.email)
    url = "/capacity?" + query.format(
        agent=cast.agent.id,
        other=cast.other_agent.id,
        review=cast.review.id,
        d1=planned["d1"].isoformat(),
        d2=planned["d2"].isoformat(),
    )
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert sorted(_rows(html)) == sorted(planned[name] for name in expected)


def test_bad_filters_are_reported_and_ignored(app, client, cast, planned):
    """A date that does not parse is named on the page, not an error page."""
    login(client, cast.manager.email)
    response = client.get("/capacity?from=31/12/2030&status=nonsense")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "is not a date" in html and "Unknown status" in html
    assert len(_rows(html)) == 3


def test_bulk_approve_needs_the_confirmation_step_then_approves_both(app, client, cast, planned):
    """The confirm page changes nothing; the POST approves both, each with an audit entry."""
    login(client, cast.manager.email)
    ids = [planned["first"], planned["second"]]
    before = db_state(app)
    query = f"action=approve&ids={ids[0]}&ids={ids[1]}"
    confirm = client.get(f"/capacity/confirm?{query}", headers=HX)
    assert confirm.status_code == 200 and is_fragment(confirm) and varies_on_hx(confirm)
    html = confirm.get_data(as_text=True)
    assert "Approve 2 bookings?" in html and "Yes, approve 2 bookings" in html
    assert html.count('type="hidden" name="ids"') == 2
    page = client.get(f"/capacity/confirm?{query}")
    assert not is_fragment(page) and varies_on_hx(page)
    assert changed_tables(before, db_state(app)) == []  # nothing changed yet

    token = csrf_from(client, f"/capacity/confirm?{query}")
    response = client.post(
        "/capacity/bulk", data={"csrf_token": token, "action": "approve", "ids": ids}, headers=HX
    )
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "bookingChanged"
    assert "2 bookings approved." in response.get_data(as_text=True)
    with app.app_context():
        for booking_id in ids:
            row = db.session.get(Booking, booking_id)
            assert row.status == Status.CONFIRMED
            last = row.audit_entries[-1]
            assert (last.action, last.actor_id) == ("approved", cast.manager.id)
            assert last.changes == {"status": ["provisional", "confirmed"]}


def test_bulk_without_htmx_redirects_to_the_list(app, client, cast, planned):
    """Without JavaScript the same POST redirects back with a message."""
    login(client, cast.manager.email)
    token = csrf_from(client, "/capacity")
    response = client.post(
        "/capacity/bulk",
        data={"csrf_token": token, "action": "reject", "ids": [planned["first"]]},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/capacity"
    assert _status(app, planned["first"]) == Status.REJECTED
    assert "1 booking rejected." in client.get("/capacity").get_data(as_text=True)


def test_bulk_with_an_illegal_booking_changes_nothing_and_names_it(app, client, cast, planned):
    """All or nothing: approving a provisional and a confirmed booking is a 409 naming the
    confirmed one; the provisional one stays provisional and no audit entry is written."""
    login(client, cast.manager.email)
    ids = [planned["first"], planned["confirmed"]]
    query = f"action=approve&ids={ids[0]}&ids={ids[1]}"
    confirm = client.get(f"/capacity/confirm?{query}").get_data(as_text=True)
    assert "Cannot be approved: A confirmed booking cannot be approved." in confirm
    assert "Yes, approve" not in confirm  # no button that cannot work
    audits = [_audit_count(app, i) for i in ids]
    before = db_state(app)
    token = csrf_from(client, "/capacity")
    response = client.post(
        "/capacity/bulk", data={"csrf_token": token, "action": "approve", "ids": ids}, headers=HX
    )
    assert response.status_code == 409 and is_fragment(response)
    html = response.get_data(as_text=True)
    assert "1 of the chosen bookings cannot be changed, so none were changed." in html
    assert "Cannot be approved: A confirmed booking cannot be approved." in html
    assert "HX-Trigger" not in response.headers
    assert changed_tables(before, db_state(app)) == []
    assert [_audit_count(app, i) for i in ids] == audits
    assert _status(app, planned["first"]) == Status.PROVISIONAL


def test_bulk_with_an_id_off_the_screen_is_404(app, client, cast, planned):
    """Ids of bookings that are not planning bookings (or do not exist) are not found."""
    login(client, cast.manager.email)
    token = csrf_from(client, "/capacity")
    for bad in (planned["review"], planned["rejected"], 999_999):
        assert client.get(f"/capacity/confirm?action=approve&ids={bad}").status_code == 404
        response = client.post(
            "/capacity/bulk",
            data={"csrf_token": token, "action": "approve", "ids": [planned["first"], bad]},
        )
        assert response.status_code == 404
    assert _status(app, planned["first"]) == Status.PROVISIONAL


def test_bulk_needs_a_known_action_and_a_choice(app, client, cast, planned):
    """No ticked booking is a 400 with a message; an unknown action is a 400."""
    login(client, cast.manager.email)
    response = client.get("/capacity/confirm?action=approve", headers=HX)
    assert response.status_code == 400 and "Tick at least one booking" in response.get_data(
        as_text=True
    )
    assert client.get(f"/capacity/confirm?action=delete&ids={planned['first']}").status_code == 400


# --- reassign ------------------------------------------------------------------------------


@pytest.fixture
def agents(app, factory, cast):
    """Three more agents for 10:00-11:00 on d1: one free, one busy in their calendar, one off."""
    free = factory.user("agent", email="fay@example.test", name="Fay Free")
    busy = factory.user("agent", email="bo@example.test", name="Bo Busy")
    off = factory.user("agent", email="pat@example.test", name="Pat Parttime")
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(
            db.session.get(User, off.id), {d: [(time(13), time(17))] for d in range(5)}
        )
        db.session.commit()
    return free, busy, off


def test_reassign_offers_only_free_agents(app, client, cast, planned, agents):
    """The chooser lists agents free at the booking's time (not busy, not off, not the owner)."""
    _, busy, _ = agents
    d1 = planned["d1"]
    add_busy(app, busy, local(d1, 9, 30), local(d1, 10, 30))
    login(client, cast.manager.email)
    url = f"/capacity/{planned['first']}/reassign"
    fragment = client.get(url, headers=HX)
    assert fragment.status_code == 200 and is_fragment(fragment) and varies_on_hx(fragment)
    html = fragment.get_data(as_text=True)
    assert "Fay Free" in html
    for name in ("Bo Busy", "Pat Parttime", "Amara Okafor"):  # Amara owns it
        assert f"> {name}</label>" not in html, name
    assert "> Ben Brown</label>" in html  # Ben's own booking that day is at 14:00
    page = client.get(url)
    assert not is_fragment(page) and varies_on_hx(page)


def test_reassign_to_a_busy_agent_is_refused(app, client, cast, planned, agents):
    """A forged post naming an agent who is not free: 409, nothing changes."""
    _, busy, off = agents
    add_busy(app, busy, local(planned["d1"], 9, 30), local(planned["d1"], 10, 30))
    login(client, cast.manager.email)
    url = f"/capacity/{planned['first']}/reassign"
    token = csrf_from(client, url)
    before = db_state(app)
    for who in (busy, off):
        response = client.post(url, data={"csrf_token": token, "agent_id": who.id}, headers=HX)
        assert response.status_code == 409, who.name
        assert "cannot take this booking at that time" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_reassign_to_a_held_agent_is_a_conflict(app, client, factory, cast, planned, agents):
    """Someone with another Slotbook booking then is refused by the holds."""
    free, _, _ = agents
    factory.booking(None, cast.review, local(planned["d1"], 10), [free])
    login(client, cast.manager.email)
    url = f"/capacity/{planned['first']}/reassign"
    assert "Fay Free" not in client.get(url, headers=HX).get_data(as_text=True)
    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, planned["first"])
        with pytest.raises(service.ConflictError):
            service.reassign(
                db.session.get(User, cast.manager.id), booking, db.session.get(User, free.id)
            )
        db.session.rollback()


def test_reassign_moves_owner_hold_and_attendee(app, client, cast, planned, agents):
    """Reassigning to a free agent moves all three, audits it and refreshes the table."""
    free, _, _ = agents
    login(client, cast.manager.email)
    url = f"/capacity/{planned['first']}/reassign"
    token = csrf_from(client, url)
    response = client.post(url, data={"csrf_token": token, "agent_id": free.id}, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "bookingChanged"
    assert "moved from Amara Okafor to Fay Free" in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.get(Booking, planned["first"])
        assert row.owner_id == free.id and row.status == Status.PROVISIONAL
        people = {a.user_id for a in row.attendees}
        assert free.id in people and cast.agent.id not in people and cast.learner.id in people
        held = set(
            db.session.scalars(
                select(Hold.person_id).where(Hold.booking_id == row.id, Hold.active.is_(True))
            )
        )
        assert held == {free.id, cast.learner.id}
        last = row.audit_entries[-1]
        assert last.action == "reassigned" and last.actor_id == cast.manager.id
        assert last.changes == {"owner": ["Amara Okafor", "Fay Free"]}
        kinds = db.session.scalars(
            select(db.text("kind")).select_from(db.text("outbox_messages")).order_by(db.text("id"))
        ).all()
        assert kinds[-2:] == ["attendee.removed", "attendee.added"]


def test_reassign_without_htmx_redirects(app, client, cast, planned, agents):
    """The plain form post redirects to the capacity screen."""
    free, _, _ = agents
    login(client, cast.manager.email)
    url = f"/capacity/{planned['first']}/reassign"
    response = client.post(url, data={"csrf_token": csrf_from(client, url), "agent_id": free.id})
    assert response.status_code == 303 and response.headers["Location"] == "/capacity"


def test_reassign_needs_bookings_assign(app, cast, planned, agents):
    """The service refuses an actor without bookings.assign."""
    free, _, _ = agents
    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, planned["first"])
        with pytest.raises(PermissionDenied):
            service.reassign(
                db.session.get(User, cast.agent.id), booking, db.session.get(User, free.id)
            )
        db.session.rollback()


def test_reassign_of_a_booking_off_the_screen_is_404(app, client, cast, planned, agents):
    """A rejected planning booking or a plain review cannot be reassigned here."""
    login(client, cast.manager.email)
    for key in ("rejected", "review"):
        assert client.get(f"/capacity/{planned[key]}/reassign").status_code == 404
