"""The transactional outbox: rows survive a Redis outage and are delivered exactly once."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from app import config as app_config
from app import create_app, jobs, outbox
from app.database import begin_write
from app.extensions import db
from app.outbox import QUEUE_NAME, OutboxMessage
from tests.bookings.conftest import weekday
from tests.conftest import Factory, RedisServer, at, csrf_from, login


def _rows(app) -> list[OutboxMessage]:
    """The rows the test made; the emails the notification planner adds are tested there."""
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind.not_like("notify.%"))
            .order_by(OutboxMessage.id)
        ).all()
        db.session.remove()
        return rows


def _work(connection: Redis) -> None:
    """Run every queued outbox job in this process, as ``worker.py --burst`` would."""
    SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection).work(
        burst=True, logging_level="WARNING"
    )


def _delivered(caplog) -> Counter:
    """How many times a row was delivered (its handlers all ran), per outbox row id."""
    return Counter(
        r.args[1]
        for r in caplog.records
        if r.name == "app.outbox"
        and r.getMessage().startswith("outbox delivered")
        and not r.args[0].startswith("notify.")
    )


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_app(database_url, redis_server, monkeypatch, tmp_path):
    """The app on its own redis-server, which the test may stop and start."""
    app = create_app(app_config.TestConfig(database_url, redis_server.url))
    app.config.update(MAIL_SERVER=None, MAIL_OUTBOX_DIR=str(tmp_path / "mail"))
    monkeypatch.setattr(jobs, "_app", app)  # jobs run by in-process workers use this app
    with app.app_context():
        from app.accounts.service import ensure_roles

        begin_write()
        ensure_roles()
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def boom_handler():
    """A handler for "test.boom" that always raises; unregistered afterwards."""
    calls: list[int] = []

    def boom(message: OutboxMessage) -> None:
        calls.append(message.id)
        raise RuntimeError("boom")

    outbox.handles("test.boom")(boom)
    yield calls
    outbox._handlers["test.boom"].remove(boom)
    if not outbox._handlers["test.boom"]:
        del outbox._handlers["test.boom"]


def test_booking_survives_redis_outage_and_is_delivered_once(outage_app, redis_server, caplog):
    """With Redis stopped a booking still succeeds; after restart the sweeper delivers once."""
    caplog.set_level(logging.INFO, logger="app.outbox")
    factory = Factory(outage_app)
    factory.user("booking-manager", email="bm@example.test", timezone="UTC")
    agent = factory.user("agent", name="Agent Outage")
    kind = factory.booking_type(name="Review")
    client = outage_app.test_client()
    login(client, "bm@example.test")
    token = csrf_from(client, "/bookings/new")
    day = weekday(2)  # the staff form asks for "book anyway" on a weekend

    redis_server.stop()
    response = client.post(
        "/bookings/new",
        data={
            "csrf_token": token,
            "booking_type": kind.id,
            "day": day.isoformat(),
            "start": "10:00",
            "people": [agent.id],
            "learner": 0,
            "location_mode": "face_to_face",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    booking_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    rows = _rows(outage_app)
    assert [(r.kind, r.payload["booking_id"]) for r in rows] == [("booking.created", booking_id)]
    assert all(r.status == outbox.PENDING and r.attempts == 0 for r in rows)
    assert "could not enqueue" in caplog.text
    ids = [r.id for r in rows]

    redis_server.start()  # same port, empty: nothing was queued while it was down
    connection = Redis.from_url(redis_server.url)
    assert Queue(QUEUE_NAME, connection=connection).count == 0
    outage_app.config["OUTBOX_SWEEP_AFTER_SECONDS"] = 0
    assert jobs.sweep_outbox() == len(ids)
    _work(connection)

    rows = _rows(outage_app)
    assert [(r.status, r.attempts) for r in rows] == [(outbox.DONE, 1)] * len(ids)
    assert all(r.done_at is not None and r.last_error is None for r in rows)
    assert _delivered(caplog) == Counter({i: 1 for i in ids})

    # Sweeping again finds nothing; even a duplicate enqueue of done rows runs nothing twice.
    assert jobs.sweep_outbox() == 0
    with outage_app.app_context():
        assert outbox.enqueue_ids(ids) == len(ids)
    _work(connection)
    assert [(r.status, r.attempts) for r in _rows(outage_app)] == [(outbox.DONE, 1)] * len(ids)
    assert _delivered(caplog) == Counter({i: 1 for i in ids})


def test_failing_handler_backs_off_then_fails(app, redis, boom_handler, monkeypatch):
    """A raising handler leaves the row pending with an error and back-off, then failed."""
    monkeypatch.setattr(jobs, "_app", app)
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    with app.app_context():
        begin_write()
        message = outbox.emit("test.boom", n=1)
        db.session.commit()  # enqueued to Redis after the commit
        message_id, first_due = message.id, message.available_at
        db.session.remove()
    assert Queue(QUEUE_NAME, connection=redis).job_ids == [f"outbox-{message_id}"]

    _work(redis)
    [row] = _rows(app)
    assert (row.status, row.attempts) == (outbox.PENDING, 1)
    assert row.last_error == "RuntimeError: boom"
    assert row.available_at > first_due
    assert boom_handler == [message_id]
    with app.app_context():
        assert outbox.sweep() == 0  # backing off: not due yet, so the sweeper leaves it
        db.session.remove()

    assert jobs.deliver_outbox_message(message_id) == outbox.PENDING
    assert jobs.deliver_outbox_message(message_id) == outbox.FAILED
    assert jobs.deliver_outbox_message(message_id) == outbox.FAILED  # failed rows never rerun
    [row] = _rows(app)
    assert (row.status, row.attempts, row.done_at) == (outbox.FAILED, 3, None)
    assert row.last_error == "RuntimeError: boom"
    assert boom_handler == [message_id] * 3


def test_rolled_back_transaction_enqueues_nothing(app, redis, factory):
    """Messages of a rolled-back transaction are neither stored nor queued, now or later."""
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType

    manager = factory.user("booking-manager")
    agent = factory.user("agent")
    kind = factory.booking_type()
    queue = Queue(QUEUE_NAME, connection=redis)
    with app.app_context():
        begin_write()
        service.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            at(2),
            [db.session.get(User, agent.id)],
        )
        outbox.emit("booking.updated", booking_id=0)
        outbox.emit("booking.updated", booking_id=0)
        db.session.flush()
        db.session.rollback()
        assert queue.count == 0
        assert db.session.scalars(select(OutboxMessage)).all() == []
        db.session.rollback()

        # The same session's next transaction must not carry the rolled-back ids along.
        begin_write()
        kept = outbox.emit("booking.updated", booking_id=0)
        db.session.commit()
        assert queue.job_ids == [f"outbox-{kept.id}"]
        db.session.remove()


def test_a_kind_nobody_handles_yet_waits_instead_of_being_done(app):
    """No handler registered: the row stays pending (attempts untouched, retried an hour later),
    and once a consumer registers, the same row is delivered."""
    from datetime import timedelta

    from app import outbox
    from app.database import begin_write, utcnow
    from app.extensions import db

    with app.app_context():
        begin_write()
        message = outbox.emit("test.later", note="hello")
        db.session.commit()
        message_id = message.id
        assert outbox.deliver(message_id) == outbox.PENDING
        row = db.session.get(outbox.OutboxMessage, message_id)
        assert row.attempts == 0 and "no handler" in row.last_error
        assert row.available_at > utcnow() + timedelta(minutes=55)
        assert outbox.sweep() == 0  # not due again yet
        db.session.rollback()

        seen = []
        outbox.handles("test.later")(seen.append)
        try:
            assert outbox.deliver(message_id) == outbox.DONE
        finally:
            outbox._handlers.pop("test.later")
        assert [m.id for m in seen] == [message_id]


def test_each_handler_succeeds_once_and_only_failed_ones_run_again(app):
    """Two consumers of one row: the one that worked is not repeated when the other is
    retried (a mail is not sent twice because a calendar server was down)."""
    from app import outbox
    from app.database import begin_write
    from app.extensions import db

    calls: dict[str, int] = {"steady": 0, "flaky": 0}

    def steady(message) -> None:
        calls["steady"] += 1

    def flaky(message) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("server down")

    outbox.handles("test.fanout")(steady)
    outbox.handles("test.fanout")(flaky)
    try:
        with app.app_context():
            begin_write()
            message = outbox.emit("test.fanout")
            db.session.commit()
            message_id = message.id
            assert outbox.deliver(message_id) == outbox.PENDING
            row = db.session.get(outbox.OutboxMessage, message_id)
            assert row.handled == [outbox.handler_name(steady)]
            assert row.last_error == "RuntimeError: server down"
            db.session.commit()
            assert outbox.deliver(message_id) == outbox.DONE
            db.session.remove()
    finally:
        outbox._handlers.pop("test.fanout")
    assert calls == {"steady": 1, "flaky": 2}


def test_emit_once_keeps_one_message_per_key(app):
    from app import outbox
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        first = outbox.emit_once("reminder:1:2", "test.reminder", booking_id=1)
        assert first is not None
        assert outbox.emit_once("reminder:1:2", "test.reminder", booking_id=1) is None
        db.session.commit()
        begin_write()
        assert outbox.emit_once("reminder:1:2", "test.reminder", booking_id=1) is None
        db.session.commit()
        kinds = db.session.scalars(
            select(outbox.OutboxMessage.kind).where(outbox.OutboxMessage.kind == "test.reminder")
        ).all()
        assert kinds == ["test.reminder"]
        db.session.remove()
