"""Abuse limits (S6): per-IP and per-contact limits, 429 pages, fail closed for booking posts."""

from __future__ import annotations

import os

import pytest
from flask import Blueprint, request
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig as _TestConfig
from app.public.limits import limit_booking_posts, limit_slot_queries
from tests.conftest import RedisServer


def _count(app) -> int:
    from app.extensions import db
    from app.outbox import OutboxMessage

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def _add_test_routes(app) -> None:
    """Two tiny routes standing in for the public pages: a slot query and a booking post
    that writes a row (an outbox message) each time it runs."""
    bp = Blueprint("limits_test", __name__)

    @bp.get("/_test/slots")
    @limit_slot_queries
    def slots():
        return "slots"

    @bp.route("/_test/book", methods=["GET", "POST"])
    @limit_booking_posts
    def book():
        if request.method == "GET":
            return "form"
        from app.database import begin_write
        from app.extensions import db
        from app.outbox import emit

        begin_write()
        emit("test.booked", email=request.form.get("email", ""))
        db.session.commit()
        return "booked", 201

    app.register_blueprint(bp)
    from app.extensions import csrf

    csrf.exempt(bp)


@pytest.fixture
def limited_app(app):
    app.config.update(
        SLOTBOOK_LIMIT_SLOT_QUERIES="3/minute",
        SLOTBOOK_LIMIT_BOOKING_POSTS_IP="4/hour",
        SLOTBOOK_LIMIT_BOOKING_POSTS_CONTACT="2/day",
    )
    _add_test_routes(app)
    return app


def test_slot_queries_are_limited_per_ip(limited_app):
    """The fourth query in a minute from one address gets a 429 page with Retry-After."""
    client = limited_app.test_client()
    for _ in range(3):
        assert client.get("/_test/slots").status_code == 200
    response = client.get("/_test/slots")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many requests" in response.get_data(as_text=True)
    other = client.get("/_test/slots", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_booking_posts_are_limited_per_contact_and_create_nothing_beyond(limited_app):
    """A burst for one contact: two bookings, then 429s that write nothing."""
    client = limited_app.test_client()
    statuses = [
        client.post(
            "/_test/book",
            data={"email": "Pat@Example.test"},
            environ_base={"REMOTE_ADDR": f"10.0.1.{n}"},
        ).status_code
        for n in range(6)
    ]
    assert statuses == [201, 201, 429, 429, 429, 429]
    assert _count(limited_app) == 2
    phone = client.post("/_test/book", data={"phone": "+44 7700 900123"})
    assert phone.status_code == 201


def test_booking_posts_are_limited_per_ip(limited_app):
    """One address, different contacts: the per-IP limit stops the burst."""
    client = limited_app.test_client()
    statuses = [
        client.post("/_test/book", data={"email": f"p{n}@example.test"}).status_code
        for n in range(7)
    ]
    assert statuses == [201] * 4 + [429] * 3
    assert _count(limited_app) == 4
    assert client.get("/_test/book").status_code == 200  # GETs are not counted


def test_staff_pages_and_api_are_not_limited(limited_app):
    """No default limit: staff pages and the API answer however often they are asked."""
    client = limited_app.test_client()
    for _ in range(10):
        assert client.get("/login").status_code == 200
        assert client.get("/api/v1/bookings").status_code == 401


def test_booking_posts_fail_closed_when_redis_is_down(database_url, tmp_path, caplog):
    """Redis stopped: booking posts get 503 and write nothing; slot queries still answer."""
    server = RedisServer(tmp_path)
    server.start()
    app = create_app(_TestConfig(database_url, server.url))
    _add_test_routes(app)
    client = app.test_client()
    try:
        assert client.post("/_test/book", data={"email": "a@example.test"}).status_code == 201
        server.stop()
        for _ in range(3):
            response = client.post("/_test/book", data={"email": "b@example.test"})
            assert response.status_code == 503
            assert "Bookings are paused" in response.get_data(as_text=True)
        assert _count(app) == 1
        assert client.get("/_test/slots").status_code == 200
        assert "storage unreachable" in caplog.text
    finally:
        server.stop()
        from app.extensions import db

        with app.app_context():
            db.engine.dispose()


def test_limits_come_from_the_environment(monkeypatch):
    """SLOTBOOK_LIMIT_* override the defaults."""
    monkeypatch.setenv("SLOTBOOK_LIMIT_BOOKING_POSTS_IP", "7/hour")
    config = _TestConfig("sqlite://")
    assert config.SLOTBOOK_LIMIT_BOOKING_POSTS_IP == "7/hour"
    assert config.SLOTBOOK_LIMIT_SLOT_QUERIES == "60/minute"
    assert os.environ["SLOTBOOK_LIMIT_BOOKING_POSTS_IP"] == "7/hour"


# --- the real booking post (app/public/routes.py) -------------------------------------------


def _offered(app, kind, n: int):
    from datetime import UTC, datetime, time, timedelta

    from app.bookings.models import BookingType
    from app.extensions import db
    from app.public.service import offered_slots

    with app.app_context():
        start = datetime.combine(datetime.now(UTC).date() + timedelta(days=2), time(0), UTC)
        slots = offered_slots(
            db.session.get(BookingType, kind.id), start, start + timedelta(days=7)
        )
        db.session.rollback()
    assert len(slots) >= n
    return [s.start for s in slots[:n]]


def test_public_booking_burst_beyond_the_limit_gets_429_and_creates_nothing(app, public):
    """Five posts from one address, limit 2/hour: two bookings, then 429s that book nothing."""
    from app.bookings.models import Booking
    from tests.public.conftest import book_form

    app.config["SLOTBOOK_LIMIT_BOOKING_POSTS_IP"] = "2/hour"
    client = app.test_client()
    starts = _offered(app, public["kind"], 5)
    statuses = [
        book_form(client, "consultation", start, email=f"v{n}@example.test").status_code
        for n, start in enumerate(starts)
    ]
    assert statuses == [200, 200, 429, 429, 429]
    with app.app_context():
        assert db_count(Booking) == 2
    last = book_form(client, "consultation", starts[4], email="v9@example.test")
    assert last.status_code == 429 and "Retry-After" in last.headers


def db_count(model) -> int:
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


def test_trusted_proxy_hops_use_the_forwarded_address(database_url, redis_url, monkeypatch):
    """Behind one trusted proxy, visitors are counted by X-Forwarded-For, not the proxy."""
    monkeypatch.setenv("SLOTBOOK_TRUSTED_PROXIES", "1")
    app = create_app(_TestConfig(database_url, redis_url))
    app.config["SLOTBOOK_LIMIT_SLOT_QUERIES"] = "1/minute"
    _add_test_routes(app)
    client = app.test_client()
    try:
        for n in range(3):
            headers = {"X-Forwarded-For": f"203.0.113.{n}"}
            assert client.get("/_test/slots", headers=headers).status_code == 200
        headers = {"X-Forwarded-For": "203.0.113.0"}
        assert client.get("/_test/slots", headers=headers).status_code == 429
    finally:
        from app.extensions import db

        with app.app_context():
            db.engine.dispose()
