"""B5 under concurrency: one agent, many simultaneous overlapping bookings, one winner.

SQLite serialises writers with ``BEGIN IMMEDIATE`` (``begin_write``) so the service's overlap
check and hold insert are atomic; PostgreSQL takes per-person advisory locks and relies on
the ``no_overlapping_holds`` exclusion constraint. The same tests run on both
(``TEST_DATABASE_URL`` switches to PostgreSQL).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.bookings.models import Booking, Hold
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.conftest import at

pytestmark = pytest.mark.db

THREADS = 50
PROCESSES = 4
# (duration, buffer before, buffer after) in minutes: every type gives a different hold length.
SHAPES = [(30, 0, 0), (45, 10, 0), (60, 0, 15), (90, 15, 15), (120, 5, 30)]


def _kinds(factory) -> list:
    return [
        factory.booking_type(duration_minutes=d, buffer_before_minutes=b, buffer_after_minutes=a)
        for d, b, a in SHAPES
    ]


def _overlapping_start(kind, instant: datetime, i: int) -> datetime:
    """A start whose booking (let alone its hold) covers ``instant``; varies with ``i``."""
    offset = (i * 7) % kind.duration_minutes  # always < duration, so start <= instant < end
    return instant - timedelta(minutes=offset)


def _book(app, manager_id: int, agent_id: int, kind_id: int, starts_at: datetime):
    """One booking attempt in its own app context and transaction: ("ok", id) or the error."""
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType

    with app.app_context():
        try:
            begin_write()
            manager = db.session.get(User, manager_id)
            agent = db.session.get(User, agent_id)
            kind = db.session.get(BookingType, kind_id)
            booking = service.create_booking(manager, kind, starts_at, [agent])
            db.session.commit()
            return "ok", booking.id
        except service.ConflictError as exc:
            db.session.rollback()
            return "conflict", str(exc)
        except Exception as exc:  # reported to the test, never swallowed
            db.session.rollback()
            return "error", repr(exc)
        finally:
            db.session.remove()


def _counts(app, agent_id: int) -> tuple[int, int, int]:
    """(active holds of the agent, bookings, booking.created outbox rows)."""
    with app.app_context():
        holds = db.session.scalar(
            select(func.count())
            .select_from(Hold)
            .where(Hold.person_id == agent_id, Hold.active.is_(True))
        )
        bookings = db.session.scalar(select(func.count()).select_from(Booking))
        created = db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "booking.created")
        )
        db.session.remove()
        return holds, bookings, created


def _run_threads(app, attempts: list[tuple[int, datetime]], manager, agent) -> list:
    barrier = threading.Barrier(len(attempts))
    results: list = [None] * len(attempts)

    def run(index: int, kind_id: int, starts_at: datetime) -> None:
        barrier.wait(timeout=60)
        results[index] = _book(app, manager.id, agent.id, kind_id, starts_at)

    threads = [
        threading.Thread(target=run, args=(i, kind_id, starts_at))
        for i, (kind_id, starts_at) in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a booking thread hung"
    return results


def test_fifty_threads_overlapping_one_wins(app, factory):
    """50 threads book overlapping periods of different lengths for one agent: one wins."""
    manager = factory.user("booking-manager")
    agent = factory.user("agent", name="Agent Concurrent")
    kinds = _kinds(factory)
    instant = at(3, 11)
    attempts = []
    for i in range(THREADS):
        kind = kinds[i % len(kinds)]
        attempts.append((kind.id, _overlapping_start(kind, instant, i)))
    assert len({(k, s) for k, s in attempts}) > len(kinds)  # genuinely different periods

    results = _run_threads(app, attempts, manager, agent)

    outcomes = [r[0] for r in results]
    assert outcomes.count("error") == 0, [r for r in results if r[0] == "error"]
    assert outcomes.count("ok") == 1
    assert outcomes.count("conflict") == THREADS - 1
    for _, message in (r for r in results if r[0] == "conflict"):
        assert "Agent Concurrent already has a booking at that time" in message
    assert _counts(app, agent.id) == (1, 1, 1)


def test_fifty_threads_disjoint_periods_all_win(app, factory):
    """50 threads book back-to-back, non-overlapping holds of one agent at once: all succeed."""
    manager = factory.user("booking-manager")
    agent = factory.user("agent", name="Agent Busy")
    kinds = _kinds(factory)
    cursor = at(3, 0)
    attempts = []
    for i in range(THREADS):
        kind = kinds[i % len(kinds)]
        starts_at = cursor + timedelta(minutes=kind.buffer_before_minutes)
        attempts.append((kind.id, starts_at))
        # the next hold starts exactly where this one ends (holds are half-open)
        cursor = starts_at + kind.duration + timedelta(minutes=kind.buffer_after_minutes)

    results = _run_threads(app, attempts, manager, agent)

    assert [r[0] for r in results] == ["ok"] * THREADS, [r for r in results if r[0] != "ok"]
    assert _counts(app, agent.id) == (THREADS, THREADS, THREADS)


def _book_in_child(database_url, redis_url, ids, starts_at, barrier, results) -> None:
    """Runs in a spawned process: its own app, engine and connections."""
    from app import create_app
    from app.accounts.models import User
    from app.config import TestConfig

    app = create_app(TestConfig(database_url, redis_url))
    manager_id, agent_id, kind_id = ids
    try:
        with app.app_context():  # warm up (connect, compile) so the race after the barrier is tight
            db.session.get(User, manager_id)
            db.session.remove()
        barrier.wait(timeout=60)
        results.put(_book(app, manager_id, agent_id, kind_id, starts_at))
    except Exception as exc:
        results.put(("error", repr(exc)))
    finally:
        with app.app_context():
            db.engine.dispose()


def test_four_processes_overlapping_one_wins(app, factory, database_url):
    """4 processes book overlapping periods of different lengths for one agent: one wins."""
    manager = factory.user("booking-manager")
    agent = factory.user("agent", name="Agent Multiprocess")
    kinds = _kinds(factory)
    instant = at(4, 9)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = []
    for i in range(PROCESSES):
        kind = kinds[i % len(kinds)]
        ids = (manager.id, agent.id, kind.id)
        args = (
            database_url,
            app.config["REDIS_URL"],
            ids,
            _overlapping_start(kind, instant, i + 1),
            barrier,
            results,
        )
        processes.append(ctx.Process(target=_book_in_child, args=args))
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0

    assert [o for o in outcomes if o[0] == "error"] == []
    assert sorted(o[0] for o in outcomes) == ["conflict"] * (PROCESSES - 1) + ["ok"]
    for kind_, message in outcomes:
        if kind_ == "conflict":
            assert "Agent Multiprocess already has a booking at that time" in message
    assert _counts(app, agent.id) == (1, 1, 1)


def test_overlap_refused_below_the_service(app, factory, database_url):
    """Inactive overlapping holds are allowed; an active one is refused by the database
    (PostgreSQL exclusion constraint) or by the write-locked re-check (SQLite)."""
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType

    manager = factory.user("booking-manager")
    agent = factory.user("agent", name="Agent Guarded")
    other = factory.user("agent")
    kind = factory.booking_type(duration_minutes=60)
    start = at(5, 10)
    held = factory.booking(manager, kind, start, [agent])
    spare = factory.booking(manager, kind, start, [other])  # a booking to hang raw holds on

    with app.app_context():
        begin_write()
        db.session.add(
            Hold(
                booking_id=spare.id,
                person_id=agent.id,
                active=False,
                starts_at=start + timedelta(minutes=15),
                ends_at=start + timedelta(minutes=45),
            )
        )
        db.session.commit()  # an inactive overlapping hold is fine on every backend
        dialect = db.engine.dialect.name
        db.session.remove()

    if dialect == "postgresql":
        extra = factory.booking(manager, kind, start + timedelta(days=1), [other])
        with app.app_context():
            db.session.add(
                Hold(
                    booking_id=extra.id,
                    person_id=agent.id,
                    active=True,
                    starts_at=start + timedelta(minutes=59),
                    ends_at=start + timedelta(minutes=90),
                )
            )
            with pytest.raises(IntegrityError, match="no_overlapping_holds"):
                db.session.flush()
            db.session.rollback()
            db.session.remove()
    else:
        assert dialect == "sqlite"
        # The re-check is only safe because the checker holds the write lock: while one
        # transaction is between begin_write() and commit, no other writer can start.
        path = database_url.removeprefix("sqlite:///")
        with app.app_context():
            begin_write()
            outsider = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    outsider.execute("BEGIN IMMEDIATE")
            finally:
                outsider.close()
            with pytest.raises(service.ConflictError, match="Agent Guarded"):
                service.create_booking(
                    db.session.get(User, manager.id),
                    db.session.get(BookingType, kind.id),
                    start + timedelta(minutes=59),
                    [db.session.get(User, agent.id)],
                )
            db.session.rollback()
            db.session.remove()

    # Whatever the backend, the agent still has exactly the one active hold of ``held``.
    with app.app_context():
        active = db.session.scalars(
            select(Hold).where(Hold.person_id == agent.id, Hold.active.is_(True))
        ).all()
        assert [h.booking_id for h in active] == [held.id]
        db.session.remove()


def test_second_writer_waits_for_the_first_and_sees_its_hold(app, factory, database_url):
    """A writer for the same person waits for the first one's commit, then gets a conflict.

    On PostgreSQL the wait is on the per-person advisory lock (``lock_people``): without it
    both writers can insert under the exclusion constraint at once and one is aborted as a
    deadlock instead of being told about the conflict. On SQLite the wait is the write lock.
    """
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType
    from app.database import PERSON_LOCK_NAMESPACE

    manager = factory.user("booking-manager")
    agent = factory.user("agent", name="Agent Turns")
    kind = factory.booking_type(duration_minutes=60)
    start = at(6, 10)
    result: list = []

    with app.app_context():
        begin_write()
        first = service.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            start,
            [db.session.get(User, agent.id)],
        )
        second = threading.Thread(
            target=lambda: result.append(
                _book(app, manager.id, agent.id, kind.id, start + timedelta(minutes=30))
            )
        )
        second.start()
        if db.engine.dialect.name == "postgresql":
            assert _advisory_waiter(database_url, PERSON_LOCK_NAMESPACE, agent.id)
        db.session.commit()
        first_id = first.id
        db.session.remove()
    second.join(60)

    assert not second.is_alive()
    assert result[0][0] == "conflict", result
    assert "Agent Turns already has a booking at that time" in result[0][1]
    with app.app_context():
        active = db.session.scalars(select(Hold.booking_id).where(Hold.active.is_(True))).all()
        assert active == [first_id]
        db.session.remove()


def _advisory_waiter(database_url: str, namespace: int, person_id: int) -> bool:
    """Poll pg_locks until someone waits for the person's advisory lock (or 30 s pass)."""
    import time

    import psycopg

    deadline = time.monotonic() + 30
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = %s AND objid = %s",
                (namespace, person_id),
            ).fetchone()[0]
            if waiting:
                return True
            time.sleep(0.05)
    return False
