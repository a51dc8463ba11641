"""Meeting polls (A5): propose common slots, answer by token without an account, book one."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login

STARTS_RE = re.compile(r'name="starts" value="([^"]+)"')


def _weekday(offset: int = 2) -> date:
    day = datetime.now(UTC).date() + timedelta(days=offset)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _outbox(app, kind: str) -> list[dict]:
    from app.outbox import OutboxMessage

    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        ).all()
        return [row.data for row in rows]  # the payload with its sealed links opened


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _create_poll(app, client, factory, organiser, colleague, *, guests="guest@outside.test"):
    """Search common slots as ``organiser`` and propose the first two; returns (poll id,
    tokens by email, proposed starts)."""
    kind = factory.booking_type(name="Review meeting")
    day = _weekday()
    login(client, organiser.email)
    page = client.get(
        f"/polls/new?booking_type={kind.id}&people={colleague.id}"
        f"&from={day.isoformat()}&days=1&search=1"
    )
    assert page.status_code == 200
    starts = STARTS_RE.findall(page.get_data(as_text=True))
    assert starts, "no common slots offered"
    token = csrf_from(client, "/polls/new")
    response = client.post(
        "/polls/new",
        data={
            "csrf_token": token,
            "booking_type": kind.id,
            "people": [colleague.id],
            "title": "Quarterly review",
            "starts": starts[:2],
            "emails": guests,
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    poll_id = int(response.headers["Location"].rsplit("/", 1)[1])
    tokens = {p["email"]: p["token"] for p in _outbox(app, "poll.invited")}
    return poll_id, tokens, starts[:2], kind


def test_full_flow(app, client, factory, caplog):
    """Propose, answer by link (GET changes nothing), see the table, book in one click."""
    from app.bookings.models import Attendee, Booking, Hold
    from app.polls.models import Poll, PollInvitee

    caplog.set_level(logging.DEBUG)
    organiser = factory.user("manager", name="Mo Manager")
    colleague = factory.user("agent", name="Cal Colleague")
    poll_id, tokens, starts, _ = _create_poll(app, client, factory, organiser, colleague)
    assert set(tokens) == {organiser.email, colleague.email, "guest@outside.test"}

    anonymous = app.test_client()
    guest_url = f"/polls/answer/{tokens['guest@outside.test']}"
    before = db_state(app)
    page = anonymous.get(guest_url)
    assert page.status_code == 200
    assert "Quarterly review" in page.get_data(as_text=True)
    assert not changed_tables(before, db_state(app))

    with app.app_context():
        poll = db.session.get(Poll, poll_id)
        option_ids = [o.id for o in poll.options]
    for email, answer in [("guest@outside.test", "yes"), (colleague.email, "maybe")]:
        url = f"/polls/answer/{tokens[email]}"
        csrf = csrf_from(anonymous, url)
        data = {"csrf_token": csrf, **{f"option-{i}": answer for i in option_ids}}
        assert anonymous.post(url, data=data).status_code == 200
    # An incomplete answer is refused and changes nothing.
    before = db_state(app)
    csrf = csrf_from(anonymous, guest_url)
    bad = anonymous.post(guest_url, data={"csrf_token": csrf, f"option-{option_ids[0]}": "no"})
    assert bad.status_code == 422
    assert not changed_tables(before, db_state(app))

    table = client.get(f"/polls/{poll_id}").get_data(as_text=True)
    assert "guest@outside.test" in table and "maybe" in table and "Book this time" in table

    csrf = csrf_from(client, f"/polls/{poll_id}")
    response = client.post(
        f"/polls/{poll_id}/book", data={"csrf_token": csrf, "option_id": option_ids[0]}
    )
    assert response.status_code == 303
    booking_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.starts_at == datetime.fromisoformat(starts[0])
        assert booking.title == "Quarterly review"
        held = {
            h.person_id
            for h in db.session.scalars(select(Hold).where(Hold.booking_id == booking_id))
        }
        assert held == {organiser.id, colleague.id}
        guests = db.session.scalars(
            select(Attendee.email).where(
                Attendee.booking_id == booking_id, Attendee.user_id.is_(None)
            )
        ).all()
        assert guests == ["guest@outside.test"]
        poll = db.session.get(Poll, poll_id)
        assert poll.status == "booked" and poll.booking_id == booking_id
        hashes = db.session.scalars(select(PollInvitee.token_hash)).all()
        assert not set(tokens.values()) & set(hashes)  # only hashes are stored

    # The poll is closed: links say so and change nothing; booking again is refused.
    before = db_state(app)
    closed = anonymous.get(guest_url)
    assert closed.status_code == 410 and "closed" in closed.get_data(as_text=True)
    again = client.post(
        f"/polls/{poll_id}/book", data={"csrf_token": csrf, "option_id": option_ids[1]}
    )
    assert again.status_code == 422
    assert not changed_tables(before, db_state(app))
    invited = _outbox(app, "poll.invited")
    assert all(p["url"].endswith(f"/polls/answer/{p['token']}") for p in invited)
    from app.outbox import OutboxMessage, deliver

    with app.app_context():
        ids = db.session.scalars(select(OutboxMessage.id)).all()
    for message_id in ids:
        with app.app_context():
            deliver(message_id)
    for token in tokens.values():
        assert token not in caplog.text  # plaintext tokens never reach the logs


def test_booking_a_slot_someone_has_since_filled_is_409(app, client, factory):
    """A colleague booked meanwhile: 409 with the reason, nothing booked, the poll stays open."""
    from app.bookings.models import Booking
    from app.polls.models import Poll

    organiser = factory.user("manager")
    colleague = factory.user("agent", name="Busy Bee")
    poll_id, _, starts, kind = _create_poll(app, client, factory, organiser, colleague)
    factory.booking(None, kind, datetime.fromisoformat(starts[0]), [colleague])
    bookings = _count(app, Booking)
    with app.app_context():
        option_id = db.session.get(Poll, poll_id).options[0].id
    csrf = csrf_from(client, f"/polls/{poll_id}")
    response = client.post(
        f"/polls/{poll_id}/book", data={"csrf_token": csrf, "option_id": option_id}
    )
    assert response.status_code == 409
    assert "Busy Bee" in response.get_data(as_text=True)
    assert _count(app, Booking) == bookings
    with app.app_context():
        assert db.session.get(Poll, poll_id).status == "open"


def test_only_the_organiser_or_view_all_sees_and_books(app, client, factory):
    """Another agent gets 404 for the table and the book action; a manager may see it."""
    organiser = factory.user("manager")
    colleague = factory.user("agent")
    poll_id, _, _, _ = _create_poll(app, client, factory, organiser, colleague, guests="")
    stranger = factory.user("agent")
    other = app.test_client()
    login(other, stranger.email)
    csrf = csrf_from(other, "/bookings")
    before = db_state(app)
    assert other.get(f"/polls/{poll_id}").status_code == 404
    assert (
        other.post(f"/polls/{poll_id}/book", data={"csrf_token": csrf, "option_id": 1}).status_code
        == 404
    )
    assert other.get("/polls/999999").status_code == 404
    assert not changed_tables(before, db_state(app))
    # Even an invited colleague is no organiser: they answer through their link.
    invited = app.test_client()
    login(invited, colleague.email)
    assert invited.get(f"/polls/{poll_id}").status_code == 404
    boss = app.test_client()
    login(boss, factory.user("booking-manager").email)
    assert boss.get(f"/polls/{poll_id}").status_code == 200


def test_tampered_and_expired_tokens_get_a_clear_page(app, client, factory):
    """Unknown, altered and expired links: a clear page, and nothing changes."""
    from app.database import begin_write
    from app.polls.models import Poll

    organiser = factory.user("manager")
    colleague = factory.user("agent")
    poll_id, tokens, _, _ = _create_poll(app, client, factory, organiser, colleague)
    token = tokens["guest@outside.test"]
    anonymous = app.test_client()
    csrf = csrf_from(anonymous, f"/polls/answer/{token}")
    before = db_state(app)
    for bad in [token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "sbp_nope", "x" * 300]:
        for response in (
            anonymous.get(f"/polls/answer/{bad}"),
            anonymous.post(f"/polls/answer/{bad}", data={"csrf_token": csrf}),
        ):
            assert response.status_code == 404
            assert "not valid" in response.get_data(as_text=True)
    assert not changed_tables(before, db_state(app))

    with app.app_context():
        begin_write()
        db.session.get(Poll, poll_id).expires_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    before = db_state(app)
    assert anonymous.get(f"/polls/answer/{token}").status_code == 410
    response = anonymous.post(f"/polls/answer/{token}", data={"csrf_token": csrf})
    assert response.status_code == 410
    assert not changed_tables(before, db_state(app))


def test_answer_post_needs_csrf(app, client, factory):
    """The public answer form is CSRF-protected like every other POST."""
    organiser = factory.user("manager")
    colleague = factory.user("agent")
    _, tokens, _, _ = _create_poll(app, client, factory, organiser, colleague)
    anonymous = app.test_client()
    before = db_state(app)
    response = anonymous.post(f"/polls/answer/{tokens['guest@outside.test']}", data={})
    assert response.status_code == 400
    assert not changed_tables(before, db_state(app))


def test_proposed_times_must_still_be_free(app, client, factory):
    """A start nobody was offered (or no longer free) is refused and nothing is created."""
    from app.polls.models import Poll

    organiser = factory.user("manager")
    kind = factory.booking_type()
    login(client, organiser.email)
    csrf = csrf_from(client, "/polls/new")
    sunday_night = datetime.combine(_weekday(), datetime.min.time(), UTC).replace(hour=2)
    response = client.post(
        "/polls/new",
        data={"csrf_token": csrf, "booking_type": kind.id, "starts": [sunday_night.isoformat()]},
    )
    assert response.status_code == 422
    assert "no longer free" in response.get_data(as_text=True)
    assert _count(app, Poll) == 0
