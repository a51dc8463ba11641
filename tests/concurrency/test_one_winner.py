"""B7 through HTTP: concurrent requests for one booking, link or contact have one winner.

Requests race from threads against gunicorn with 4 worker processes (``conftest.py``), on
SQLite and, with ``TEST_DATABASE_URL``, on PostgreSQL, where before the row lock four of ten
approvals of one booking succeeded and an approval could land on a cancelled booking.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import partial
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from app.bookings.lifecycle import TRANSITIONS
from tests.concurrency.conftest import copy_session, race
from tests.conftest import at

pytestmark = pytest.mark.db

APPROVALS = 10
ROUNDS = 40
LINK_CLICKS = 6
PUBLIC_POSTS = 20
HX = {"HX-Request": "true"}
LEGAL = {(old, new) for table in TRANSITIONS.values() for old, new in table.items() if old != new}


# --- arranging and reading -----------------------------------------------------------------


def _api_token(app, user) -> str:
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        token = create_api_token(db.session.get(User, user.id), "races")
        db.session.commit()
    return token


def _api(server, token: str):
    session = server.session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _history(app, booking_id: int) -> dict:
    """What the database holds about one booking: status, sequence, trail, outbox, holds."""
    from app.bookings.models import AuditEntry, Booking, Hold
    from app.extensions import db
    from app.outbox import OutboxMessage

    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        trail = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(AuditEntry.id)
        ).all()
        messages = [
            m
            for m in db.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind.like("booking.%"))
                .order_by(OutboxMessage.id)
            )
            if m.payload.get("booking_id") == booking_id
        ]
        active_holds = db.session.scalar(
            select(func.count())
            .select_from(Hold)
            .where(Hold.booking_id == booking_id, Hold.active.is_(True))
        )
        result = {
            "status": booking.status,
            "sequence": booking.sequence,
            "actions": [e.action for e in trail],
            "changes": [tuple(e.changes["status"]) for e in trail if "status" in e.changes],
            "kinds": [m.kind for m in messages],
            "sequences": [m.payload["sequence"] for m in messages],
            "active_holds": active_holds,
        }
        db.session.rollback()
    return result


def _assert_legal_path(history: dict) -> None:
    """The trail is one B2 path from creation, and the sequence counted every change."""
    changes = history["changes"]
    assert changes[0] in {(None, "provisional"), (None, "confirmed")}, changes
    for (_, before), (old, new) in pairwise(changes):
        assert old == before, f"a change started from a state it did not see: {changes}"
        assert (old, new) in LEGAL, f"illegal B2 move {old} -> {new}: {changes}"
    assert changes[-1][1] == history["status"], changes
    first = history["sequences"][0]
    assert history["sequences"] == list(range(first, first + len(changes))), history
    assert history["sequence"] == history["sequences"][-1], history


def _assert_no_server_error(server, responses) -> None:
    errors = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not errors, [*errors, server.tail()]


# --- ten approvals -------------------------------------------------------------------------


def test_ten_concurrent_approvals_one_wins(live_server, live_app, live_factory):
    """10 simultaneous approvals (5 API, 5 HTML) of one provisional booking: one succeeds,
    the others get 409 invalid_transition; one audit entry, one booking.approved message."""
    manager = live_factory.user("booking-manager")
    agent = live_factory.user("agent")
    kind = live_factory.booking_type(requires_approval=True)
    booking = live_factory.booking(manager, kind, at(3, 10), [agent])
    assert booking.status == "provisional"
    api = _api(live_server, _api_token(live_app, manager))
    browser = live_server.login(manager.email)
    csrf = live_server.csrf(browser, f"/bookings/{booking.id}")

    def by_api(session):
        return lambda: session.patch(
            f"{live_server.url}/api/v1/bookings/{booking.id}",
            json={"status": "confirmed"},
            timeout=60,
        )

    def by_page(session):
        return lambda: session.post(
            f"{live_server.url}/bookings/{booking.id}/approve",
            data={"csrf_token": csrf},
            headers=HX,
            timeout=60,
        )

    calls = [
        by_api(copy_session(live_server, api))
        if i % 2
        else by_page(copy_session(live_server, browser))
        for i in range(APPROVALS)
    ]
    responses = race(calls)

    _assert_no_server_error(live_server, responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 409: APPROVALS - 1}
    for response in responses:
        if response.status_code != 409:
            continue
        if response.headers["Content-Type"].startswith("application/json"):
            assert response.json()["error"] == "invalid_transition"
        else:
            assert "A confirmed booking cannot be approved." in response.text
    history = _history(live_app, booking.id)
    assert history["status"] == "confirmed"
    assert history["actions"].count("approved") == 1, history
    assert history["kinds"].count("booking.approved") == 1, history
    _assert_legal_path(history)


# --- approve against cancel ----------------------------------------------------------------


def test_approve_and_cancel_together_give_a_legal_path(live_server, live_app, live_factory):
    """ROUNDS times, an approval and a cancellation of one provisional booking are sent
    together (the cancel by API and by page in turn). Whichever commits first, the other sees
    it: the booking ends cancelled and free, its trail is a legal B2 path, the approval
    succeeds only when it came first, and the sequence counts every change."""
    manager = live_factory.user("booking-manager")
    agent = live_factory.user("agent")
    kind = live_factory.booking_type(requires_approval=True, duration_minutes=30)
    bookings = [
        live_factory.booking(manager, kind, at(2 + i // 10, 8 + i % 10), [agent])
        for i in range(ROUNDS)
    ]
    api = _api(live_server, _api_token(live_app, manager))
    browser = live_server.login(manager.email)
    csrf = live_server.csrf(browser, f"/bookings/{bookings[0].id}")
    approver, api_canceller = copy_session(live_server, api), copy_session(live_server, api)
    page_canceller = copy_session(live_server, browser)

    url = live_server.url
    outcomes = []
    started = time.monotonic()
    for i, booking in enumerate(bookings):
        approve = partial(
            approver.patch,
            f"{url}/api/v1/bookings/{booking.id}",
            json={"status": "confirmed"},
            timeout=60,
        )
        if i % 2:
            cancel = partial(
                api_canceller.post, f"{url}/api/v1/bookings/{booking.id}/cancel", timeout=60
            )
        else:
            cancel = partial(
                page_canceller.post,
                f"{url}/bookings/{booking.id}/cancel",
                data={"csrf_token": csrf},
                headers=HX,
                timeout=60,
            )
        outcomes.append(race([approve, cancel]))
    elapsed = time.monotonic() - started

    orders = Counter()
    for booking, (approved, cancelled) in zip(bookings, outcomes, strict=True):
        answers = [approved, cancelled]
        _assert_no_server_error(live_server, answers)
        history = _history(live_app, booking.id)
        _assert_legal_path(history)
        assert history["status"] == "cancelled" and history["active_holds"] == 0, history
        assert cancelled.status_code == 200, cancelled.text[:300]  # cancel is legal either way
        if "approved" in history["actions"]:
            assert approved.status_code == 200, history
            assert history["kinds"] == ["booking.created", "booking.approved", "booking.cancelled"]
            orders["approve first"] += 1
        else:
            assert approved.status_code == 409, (approved.status_code, history)
            assert approved.json()["error"] == "invalid_transition"
            assert history["kinds"] == ["booking.created", "booking.cancelled"]
            orders["cancel first"] += 1
    assert sum(orders.values()) == ROUNDS
    print(f"{ROUNDS} rounds in {elapsed:.1f}s: {dict(orders)}")


# --- the public side: one manage link, one contact -------------------------------------------


@pytest.fixture(scope="module")
def public_world(live_app, live_factory):
    """Public scheduling on, one agent (default hours) behind a public 30-minute type."""
    from app.accounts.models import Group, User
    from app.admin.settings import set_setting
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    agent = live_factory.user("agent", name="Pat Public")
    kind = live_factory.booking_type(
        slug="visit",
        name="Visit",
        bookable_by=["public"],
        duration_minutes=30,
        weekends_enabled=True,
        availability_source="group",
    )
    with live_app.app_context():
        begin_write()
        group = Group(slug="visits", name="Visits")
        group.members.append(db.session.get(User, agent.id))
        db.session.add(group)
        db.session.flush()
        db.session.get(BookingType, kind.id).availability_group_id = group.id
        for key, value in dict(
            public_scheduling_enabled=True,
            weekends_enabled=True,
            earliest_day_public=1,
            contact_required_fields="email",
            confirmation_timeout_minutes=0,
        ).items():
            set_setting(key, value)
        db.session.commit()
    return {"kind": kind, "days": _slots_by_day(live_app, kind)}


def _slots_by_day(app, kind) -> list[list[datetime]]:
    """The offered starts of the next fortnight, grouped by the organisation's local day."""
    from zoneinfo import ZoneInfo

    from app.admin.settings import get_setting
    from app.bookings.models import BookingType
    from app.extensions import db
    from app.public.service import offered_slots

    with app.app_context():
        zone = ZoneInfo(str(get_setting("organisation_timezone")))
        lo = datetime.combine(datetime.now(UTC).date() + timedelta(days=2), clock(0), UTC)
        slots = offered_slots(db.session.get(BookingType, kind.id), lo, lo + timedelta(days=14))
        db.session.rollback()
    days: dict = {}
    for slot in slots:
        days.setdefault(slot.start.astimezone(zone).date(), []).append(slot.start)
    result = [starts for _, starts in sorted(days.items()) if len(starts) >= 4]
    assert len(result) >= 2, "the public world offers too few slots"
    return result


def _set(app, **values) -> None:
    from app.admin.settings import set_setting
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        for key, value in values.items():
            set_setting(key, value)
        db.session.commit()


def test_one_manage_link_cancels_once(live_server, live_app, public_world):
    """6 simultaneous cancels through one manage link: one cancels (200), the others get the
    "already used" page (410); one cancellation is recorded and announced."""
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db
    from app.public import service, tokens

    start = public_world["days"][0][0]
    with live_app.test_request_context():
        begin_write()
        kind = db.session.get(BookingType, public_world["kind"].id)
        contact = service.Contact("Lin Link", "lin@example.test", None, "UTC")
        booking, _ = service.book(kind, start, contact)
        token = tokens.issue(booking, tokens.Purpose.MANAGE, booking.ends_at)
        booking_id = booking.id
        db.session.commit()
    visitor = live_server.session()
    csrf = live_server.csrf(visitor, f"/book/manage/{token}/cancel")
    url = f"{live_server.url}/book/manage/{token}/cancel"
    calls = [
        (
            lambda s=copy_session(live_server, visitor): s.post(
                url, data={"csrf_token": csrf}, timeout=60
            )
        )
        for _ in range(LINK_CLICKS)
    ]
    responses = race(calls)

    _assert_no_server_error(live_server, responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 410: LINK_CLICKS - 1}
    for response in responses:
        if response.status_code == 410:
            assert "already been used" in response.text
    history = _history(live_app, booking_id)
    assert history["status"] == "cancelled" and history["active_holds"] == 0
    assert history["actions"].count("cancelled") == 1, history
    assert history["kinds"].count("booking.cancelled") == 1, history
    _assert_legal_path(history)


def test_one_confirmation_link_confirms_once(live_server, live_app, public_world):
    """S4: 6 simultaneous posts of one confirmation link: one confirms (200), the others get
    the "already used" page (410); the confirmation is recorded and announced once."""
    from datetime import timedelta

    from app.bookings.models import AuditEntry, BookingType
    from app.database import begin_write, utcnow
    from app.extensions import db
    from app.outbox import OutboxMessage
    from app.public import service, tokens

    start = public_world["days"][0][1]
    with live_app.test_request_context():
        begin_write()
        kind = db.session.get(BookingType, public_world["kind"].id)
        contact = service.Contact("Cy Confirm", "cy@example.test", None, "UTC")
        booking, record = service.book(kind, start, contact)
        record.pending_confirmation = True
        record.confirm_deadline = utcnow() + timedelta(hours=1)
        token = tokens.issue(booking, tokens.Purpose.CONFIRM, record.confirm_deadline)
        booking_id = booking.id
        db.session.commit()
    visitor = live_server.session()
    csrf = live_server.csrf(visitor, f"/book/confirm/{token}")
    url = f"{live_server.url}/book/confirm/{token}"
    calls = [
        partial(copy_session(live_server, visitor).post, url, data={"csrf_token": csrf}, timeout=60)
        for _ in range(LINK_CLICKS)
    ]
    responses = race(calls)

    _assert_no_server_error(live_server, responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 410: LINK_CLICKS - 1}
    for response in responses:
        if response.status_code == 410:
            assert "already been used" in response.text
    with live_app.app_context():
        confirmed = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.booking_id == booking_id, AuditEntry.action == "visitor_confirmed")
        )
        announced = [
            m
            for m in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "public.booking_confirmed")
            )
            if m.payload.get("booking_id") == booking_id
        ]
        db.session.rollback()
    assert confirmed == 1
    assert len(announced) == 1


def test_daily_maximum_per_contact_holds_under_a_burst(live_server, live_app, public_world):
    """S3 with a maximum of 1: 20 simultaneous posts for one contact, spread over several
    free times of one day, make exactly one booking; the rest are told they are over the
    limit (429) or that their time was taken (409)."""
    from app.bookings.models import Booking, Status
    from app.extensions import db
    from app.public.models import PublicBooking

    _set(live_app, max_bookings_per_contact_per_day=1)
    starts = public_world["days"][1]
    slug = public_world["kind"].slug
    visitor = live_server.session()
    csrf = live_server.csrf(visitor, f"/book/{slug}?tz=UTC")

    def post(start):
        session = copy_session(live_server, visitor)
        data = {
            "csrf_token": csrf,
            "tz": "UTC",
            "start": start.isoformat(),
            "name": "Bea Burst",
            "email": "Bea@Example.test" if start.minute else "bea@example.test",
            "phone": "",
            "website": "",
        }
        return lambda: session.post(f"{live_server.url}/book/{slug}", data=data, timeout=60)

    responses = race([post(starts[i % len(starts)]) for i in range(PUBLIC_POSTS)])

    _assert_no_server_error(live_server, responses)
    codes = Counter(r.status_code for r in responses)
    assert codes[200] == 1, codes
    assert set(codes) <= {200, 409, 429}, codes
    with live_app.app_context():
        made = db.session.scalar(
            select(func.count())
            .select_from(Booking)
            .join(PublicBooking, PublicBooking.booking_id == Booking.id)
            .where(
                func.lower(PublicBooking.contact_email) == "bea@example.test",
                Booking.status.in_([Status.PROVISIONAL, Status.CONFIRMED]),
            )
        )
        db.session.rollback()
    assert made == 1


# --- one poll, several bookings of it ------------------------------------------------------


def test_one_poll_is_booked_once(live_server, live_app, live_factory):
    """Six "book this time" posts for two different options of one poll at once: one booking
    is made and the poll closes; the others are told it is closed (before the poll row was
    locked, PostgreSQL could book both options)."""
    from app.accounts.models import User
    from app.bookings.models import Booking, BookingType
    from app.database import begin_write
    from app.extensions import db
    from app.polls.models import Poll
    from app.polls.service import create_poll, propose_slots

    organiser = live_factory.user("booking-manager")
    colleague = live_factory.user("agent")
    kind = live_factory.booking_type()
    day = datetime.combine(at(3, 0).date(), clock(0), UTC)
    with live_app.app_context():
        begin_write()
        people = [db.session.get(User, organiser.id), db.session.get(User, colleague.id)]
        booking_type = db.session.get(BookingType, kind.id)
        starts = [s.start for s in propose_slots(booking_type, people, day, day + timedelta(7))]
        assert len(starts) >= 2, "no common slots to propose"
        poll, _ = create_poll(people[0], booking_type, "Review", starts[:2], people[1:])
        db.session.commit()
        poll_id, options = poll.id, [o.id for o in poll.options]
        before = db.session.scalar(select(func.count()).select_from(Booking))

    browser = live_server.login(organiser.email)
    csrf = live_server.csrf(browser, f"/polls/{poll_id}")

    def post(session, option_id):
        return lambda: session.post(
            f"{live_server.url}/polls/{poll_id}/book",
            data={"csrf_token": csrf, "option_id": option_id},
            allow_redirects=False,
            timeout=60,
        )

    calls = [post(copy_session(live_server, browser), options[i % 2]) for i in range(6)]
    responses = race(calls)

    _assert_no_server_error(live_server, responses)
    assert Counter(r.status_code for r in responses) == {303: 1, 422: 5}
    assert all("This poll is closed." in r.text for r in responses if r.status_code == 422)
    with live_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == before + 1
        assert db.session.get(Poll, poll_id).status == "booked"
        db.session.rollback()
