"""Fail closed (S6): with the limiter's Redis stopped, public booking posts are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig as _TestConfig
from tests.conftest import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app(database_url, redis_server):
    """The app with its own Redis server, which the test may stop."""
    app = create_app(_TestConfig(database_url, redis_server.url))
    yield app
    from app.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_public_booking_posts_get_503_and_create_nothing_when_redis_is_down(
    app, public, redis_server
):
    """Redis stopped: the booking post is refused with a clear page; the picker still works."""
    from app.bookings.models import Booking
    from app.extensions import db
    from tests.public.conftest import book_form, first_slot

    start = first_slot(app, public["kind"])
    client = app.test_client()
    client.get("/book/consultation?tz=UTC")  # the session (CSRF) exists before the outage
    redis_server.stop()
    response = book_form(client, "consultation", start)
    assert response.status_code == 503
    assert "Bookings are paused" in response.get_data(as_text=True)
    assert response.headers["Retry-After"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0
    assert client.get("/book/consultation?tz=UTC").status_code == 200  # fails open
