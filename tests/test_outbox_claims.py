"""Outbox delivery in three steps: claim and commit, I/O with no transaction, record.

These are the contracts the handlers rely on: the network part runs with no database lock
held, a row another worker holds is left alone until its lease runs out, rows of one booking
are delivered one at a time, the sweeper re-queues only what is not already waiting, and one
Redis client serves the whole app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import create_engine, select, text, update

from app import jobs, outbox
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import QUEUE_NAME, OutboxMessage, PartialFailure, Send


@pytest.fixture
def register():
    """Register test handlers for a kind; unregistered afterwards."""
    added: list[tuple[str, Callable]] = []

    def add(kind: str, handler: Callable) -> Callable:
        outbox.handles(kind)(handler)
        added.append((kind, handler))
        return handler

    yield add
    for kind, handler in added:
        outbox._handlers[kind].remove(handler)
        if not outbox._handlers[kind]:
            del outbox._handlers[kind]


def _emit(app, kind: str, **payload) -> int:
    with app.app_context():
        begin_write()
        message = outbox.emit(kind, **payload)
        db.session.commit()
        message_id = message.id
        db.session.remove()
    return message_id


def _row(app, message_id: int) -> OutboxMessage:
    with app.app_context():
        row = db.session.get(OutboxMessage, message_id)
        db.session.expunge(row)
        db.session.remove()
    return row


def _deliver(app, message_id: int) -> str:
    with app.app_context():
        status = outbox.deliver(message_id)
        db.session.remove()
    return status


def _in_thread(func: Callable[[], object]) -> object:
    """Run ``func`` in another thread (another worker, with its own session) and return
    what it returned."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join(60)
    assert result, "the other worker did not finish"
    return result[0]


def _lock_is_free(app) -> bool:
    """Whether another connection can take the write lock at once (SQLite) or lock the
    outbox rows without waiting (PostgreSQL): nobody holds a transaction over them."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout=200")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT id FROM outbox_messages FOR UPDATE NOWAIT"))
            conn.rollback()
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def test_the_io_runs_with_no_transaction_and_no_lock_then_the_result_is_recorded(app, register):
    """A handler's ``Send.io`` runs after its writes are committed, with no transaction open
    (another writer gets the lock at once); ``record`` stores what it returned, with the
    handled mark, and the row is done."""
    seen: dict[str, object] = {}

    def handler(message: OutboxMessage) -> Send:
        outbox.emit("test.prepared", source=message.id)  # committed before the I/O

        def io() -> str:
            seen["in_transaction"] = db.session().in_transaction()
            seen["lock_free"] = _lock_is_free(app)
            seen["prepared_visible"] = _in_thread(lambda: _count(app, "test.prepared"))
            return "sent"

        def record(result: str) -> None:
            outbox.emit("test.recorded", result=result)

        return Send(io, record)

    register("test.io", handler)
    message_id = _emit(app, "test.io")
    assert _deliver(app, message_id) == outbox.DONE
    assert seen == {"in_transaction": False, "lock_free": True, "prepared_visible": 1}
    row = _row(app, message_id)
    assert row.handled == [outbox.handler_name(handler)]
    assert (row.attempts, row.claimed_by, row.claimed_until) == (1, None, None)
    assert _count(app, "test.recorded") == 1


def _count(app, kind: str) -> int:
    with app.app_context():
        n = len(
            db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == kind)).all()
        )
        db.session.remove()
    return n


def test_a_failed_io_records_nothing_and_a_partial_failure_keeps_what_it_recorded(app, register):
    """An I/O that raises leaves no trace but the error (retried later); a record step that
    raises ``PartialFailure`` keeps its writes and is retried; the retry then finishes."""
    calls = {"io": 0}

    def handler(message: OutboxMessage) -> Send:
        def io() -> int:
            calls["io"] += 1
            if calls["io"] == 1:
                raise ConnectionError("server hung up")
            return calls["io"]

        def record(n: int) -> None:
            outbox.emit("test.partial", n=n)
            if n == 2:
                raise PartialFailure("one calendar of two", retry_after=7200)

        return Send(io, record)

    register("test.flaky", handler)
    message_id = _emit(app, "test.flaky")
    assert _deliver(app, message_id) == outbox.PENDING
    row = _row(app, message_id)
    assert row.last_error == "ConnectionError: server hung up" and row.handled == []
    assert _count(app, "test.partial") == 0

    assert _deliver(app, message_id) == outbox.PENDING
    row = _row(app, message_id)
    assert row.last_error == "PartialFailure: one calendar of two" and row.handled == []
    assert row.available_at > utcnow() + timedelta(minutes=110)  # its Retry-After believed
    assert _count(app, "test.partial") == 1  # kept

    assert _deliver(app, message_id) == outbox.DONE
    assert calls["io"] == 3 and _count(app, "test.partial") == 2


def test_a_claimed_row_is_left_alone_until_its_lease_runs_out(app, register):
    """While one worker is inside a row's I/O, a second worker given the same id leaves it
    (and the sweeper does not queue it); a worker that died leaves a claim that runs out, and
    the row is then swept and delivered."""
    runs: list[int] = []
    during: dict[str, object] = {}

    def handler(message: OutboxMessage) -> Send:
        runs.append(message.id)

        def io() -> None:
            during["second"] = _in_thread(lambda: _deliver(app, message.id))
            during["swept"] = _in_thread(lambda: _sweep(app))

        return Send(io)

    register("test.claimed", handler)
    message_id = _emit(app, "test.claimed")
    assert _deliver(app, message_id) == outbox.DONE
    assert during == {"second": outbox.CLAIMED, "swept": 0}
    assert runs == [message_id]

    # A worker that claimed a row and died: its claim holds until the lease ends.
    crashed = _emit(app, "test.claimed")
    with app.app_context():
        begin_write()
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == crashed)
            .values(claimed_by="dead", claimed_until=utcnow() + timedelta(minutes=5), attempts=1)
        )
        db.session.commit()
    assert _deliver(app, crashed) == outbox.CLAIMED
    assert _sweep(app) == 0
    with app.app_context():
        begin_write()
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == crashed)
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert _sweep(app) == 1
    assert _deliver(app, crashed) == outbox.DONE
    assert runs == [message_id, crashed]
    assert _row(app, crashed).attempts == 2


def _sweep(app, older_than: timedelta | None = None) -> int:
    with app.app_context():
        n = outbox.sweep(older_than)
        db.session.remove()
    return n


def test_rows_of_one_booking_are_delivered_one_at_a_time(app, register):
    """Two changes of one booking: while the first is in its I/O, the second is not started
    (it would write an older or newer version into the same calendars at the same time);
    the next sweep queues it and it is delivered."""
    order: list[str] = []
    during: dict[str, object] = {}

    def handler(message: OutboxMessage) -> Send:
        step = message.data["step"]

        def io() -> None:
            order.append(step)
            if step == "first":
                during["second"] = _in_thread(lambda: _deliver(app, second))
                during["other booking"] = _in_thread(lambda: _deliver(app, other))

        return Send(io)

    register("booking.test_order", handler)
    first = _emit(app, "booking.test_order", booking_id=999_001, step="first")
    second = _emit(app, "booking.test_order", booking_id=999_001, step="second")
    other = _emit(app, "booking.test_order", booking_id=999_002, step="other")
    assert _row(app, first).ordering_key == "booking:999001"

    assert _deliver(app, first) == outbox.DONE
    assert during == {"second": outbox.BUSY, "other booking": outbox.DONE}
    row = _row(app, second)
    assert (row.status, row.attempts, row.enqueued_at) == (outbox.PENDING, 0, None)
    assert _sweep(app, timedelta(seconds=60)) == 1  # not queued any more: swept at once
    assert _deliver(app, second) == outbox.DONE
    assert order == ["first", "other", "second"]


def test_the_sweeper_leaves_rows_alone_that_wait_in_the_queue(app, redis):
    """A committed row is queued once and stamped; the sweeper neither queues it again while
    it waits (not even when asked to sweep everything), nor re-sweeps it within the
    interval; a row whose job was lost is swept once the interval has passed."""
    queue = Queue(QUEUE_NAME, connection=redis)
    message_id = _emit(app, "test.waiting")
    assert queue.job_ids == [f"outbox-{message_id}"]
    row = _row(app, message_id)
    assert row.enqueued_at is not None and utcnow() - row.enqueued_at < timedelta(minutes=1)

    assert _sweep(app, timedelta(seconds=60)) == 0  # queued a moment ago
    assert _sweep(app) == 1  # a burst sweeps everything due …
    assert queue.job_ids == [f"outbox-{message_id}"]  # … but the waiting job is not doubled

    redis.flushdb()  # the queue lost the job (Redis restarted without persistence)
    assert _sweep(app, timedelta(seconds=60)) == 0  # stamped by the last sweep
    with app.app_context():
        begin_write()
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(enqueued_at=utcnow() - timedelta(minutes=2))
        )
        db.session.commit()
    assert _sweep(app, timedelta(seconds=60)) == 1
    assert queue.job_ids == [f"outbox-{message_id}"]
    assert utcnow() - _row(app, message_id).enqueued_at < timedelta(minutes=1)


def test_one_redis_client_serves_every_enqueue(app, redis):
    """Thirty commits with an outbox row each open at most a connection or two to Redis, not
    one client (and connection) per enqueue."""
    with app.app_context():
        assert jobs.redis_connection() is jobs.redis_connection()
        jobs.redis_connection().ping()  # the pool's connection exists before we count
        db.session.remove()
    before = redis.info("stats")["total_connections_received"]
    ids = [_emit(app, "test.counted", n=n) for n in range(30)]
    opened = redis.info("stats")["total_connections_received"] - before
    assert len(Queue(QUEUE_NAME, connection=redis).job_ids) == len(ids)
    assert opened <= 2, f"{opened} Redis connections for {len(ids)} enqueues"


def test_link_fields_are_sealed_in_the_row_and_dropped_once_delivered(app, register):
    """A manage URL in a payload is stored encrypted (handlers read it through
    ``message.data``) and is gone from the row once it is delivered."""
    url = "https://slotbook.example/book/manage/sbm_secret-token-value"
    seen: list[str] = []
    register("test.link", lambda message: seen.append(message.data["manage_url"]))
    message_id = _emit(app, "test.link", booking_id=5, manage_url=url)
    stored = _row(app, message_id).payload
    assert set(stored) == {"booking_id", "sealed"} and url not in repr(stored)
    assert stored["sealed"].startswith("v1.")

    assert _deliver(app, message_id) == outbox.DONE
    assert seen == [url]
    assert _row(app, message_id).payload == {"booking_id": 5}
