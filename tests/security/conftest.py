"""A world with one live token of every kind, made through the services that issue them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.public.conftest import book_form, first_slot, public, set_settings  # noqa: F401


@dataclass(frozen=True)
class Links:
    """Plain tokens, and the page each one opens."""

    manage: str
    confirm: str
    poll: str
    set_password: str
    feed: str
    api: str

    def tokens(self) -> dict[str, str]:
        return dict(vars(self))

    def pages(self) -> dict[str, str]:
        """Every public page whose URL holds a token (the API token travels in a header)."""
        return {
            "manage": f"/book/manage/{self.manage}",
            "manage cancel": f"/book/manage/{self.manage}/cancel",
            "manage reschedule": f"/book/manage/{self.manage}/reschedule",
            "confirm": f"/book/confirm/{self.confirm}",
            "poll answer": f"/polls/answer/{self.poll}",
            "set password": f"/set-password/{self.set_password}",
            "feed": f"/feeds/{self.feed}.ics",
        }


def _weekday(offset: int = 3) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=offset)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), UTC)


@pytest.fixture
def links(app, client, factory, public) -> Links:  # noqa: F811 - the imported fixture
    """A public booking awaiting confirmation (manage and confirm links), a poll with a guest,
    a password reset, a calendar feed and an API token."""
    from app.accounts import passwords
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.bookings.models import Booking, BookingType
    from app.database import begin_write
    from app.extensions import db
    from app.notifications import feeds
    from app.polls import service as polls
    from app.public import tokens

    set_settings(app, confirmation_timeout_minutes=30)
    response = book_form(client, "consultation", first_slot(app, public["kind"]))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    manager = factory.user("manager", email="mo@example.test")
    with app.app_context():
        begin_write()
        booking = db.session.scalars(select(Booking)).one()
        expires = booking.ends_at
        manage = tokens.issue(booking, tokens.Purpose.MANAGE, expires)
        confirm = tokens.issue(booking, tokens.Purpose.CONFIRM, expires)
        mo = db.session.get(User, manager.id)
        kind = db.session.get(BookingType, public["kind"].id)
        start = _weekday()
        slots = polls.propose_slots(kind, [mo], start, start + timedelta(days=1))
        assert slots, "no free slot to propose"
        _, invitations = polls.create_poll(
            mo, kind, "Review", [slots[0].start], [mo], ["guest@outside.test"]
        )
        [poll] = [i.token for i in invitations if i.invitee.email == "guest@outside.test"]
        made = Links(
            manage=manage,
            confirm=confirm,
            poll=poll,
            set_password=passwords.issue_token(mo, passwords.RESET),
            feed=feeds.rotate(mo),
            api=create_api_token(mo, "security test"),
        )
        db.session.commit()
    return made


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The test app behind werkzeug's development server (whose access log is under test)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
