"""The worker: periodic jobs once per tick across workers, and ``worker.py --burst`` for real."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

from redis import Redis
from rq import Queue
from sqlalchemy import select

from app import config as app_config
from app import create_app, jobs
from app.config import PROJECT_ROOT
from app.database import begin_write
from app.extensions import db
from app.outbox import DONE, PENDING, QUEUE_NAME, OutboxMessage
from tests.conftest import Factory, at, free_port, run_burst_worker

T = 60 * 29_000_000  # a tick boundary of the 60 s outbox sweep
# The sweep alone: other periodic jobs (e.g. public-release-unconfirmed) tick the same way.
SWEEP = [p for p in jobs.SCHEDULE if p.name == "outbox-sweep"]


def test_two_workers_enqueue_each_tick_once(redis, redis_url):
    """Two workers ticking the same instant enqueue one job; the next tick enqueues one more."""
    workers = [Redis.from_url(redis_url) for _ in range(2)]
    barrier = threading.Barrier(len(workers))
    results: list[list[str]] = []

    def run(connection: Redis) -> None:
        barrier.wait(timeout=30)
        results.append(jobs.tick(connection, now=T, schedule=SWEEP))

    threads = [threading.Thread(target=run, args=(c,)) for c in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first = f"periodic-outbox-sweep-{T // 60}"
    assert sorted(results, key=len) == [[], [first]]

    # Restarted, or a second worker with a clock a little ahead: still the same tick.
    assert jobs.tick(workers[0], now=T, schedule=SWEEP) == []
    assert jobs.tick(workers[1], now=T + 30, schedule=SWEEP) == []

    second = f"periodic-outbox-sweep-{T // 60 + 1}"
    assert jobs.tick(workers[1], now=T + 60, schedule=SWEEP) == [second]
    assert jobs.tick(workers[0], now=T + 61, schedule=SWEEP) == []
    assert Queue("default", connection=redis).job_ids == [first, second]


def test_worker_burst_delivers_rows_left_by_a_redis_outage(
    database_url, redis, redis_url, tmp_path
):
    """``python worker.py --burst`` picks up rows that could not be queued, and exits 0."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(app_config.TestConfig(database_url, unreachable))
    with app.app_context():
        from app.accounts.service import ensure_roles

        begin_write()
        ensure_roles()
        db.session.commit()
        db.session.remove()
    factory = Factory(app)
    manager = factory.user("booking-manager")
    agent = factory.user("agent")
    booking = factory.booking(manager, factory.booking_type(), at(2), [agent])

    def rows():
        with app.app_context():
            found = db.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind.not_like("notify.%"))  # emails: tests/notifications
                .order_by(OutboxMessage.id)
            ).all()
            db.session.remove()
            return found

    assert [(r.kind, r.status) for r in rows()] == [("booking.created", PENDING)]
    assert rows()[0].payload["booking_id"] == booking.id
    assert Queue(QUEUE_NAME, connection=redis).count == 0

    run_burst_worker(app, database_url, redis_url, tmp_path)
    assert [(r.status, r.attempts) for r in rows()] == [(DONE, 1)]
    assert Queue(QUEUE_NAME, connection=redis).count == 0
    with app.app_context():
        db.engine.dispose()


def test_long_running_worker_ticks_and_survives_idle_time(
    app, database_url, redis, redis_url, tmp_path
):
    """``python worker.py`` claims the periodic sweep, stays up while idle, stops on SIGTERM.

    It once quit after five idle seconds: the ticker opened a pooled Redis connection with a
    short socket timeout before RQ could raise it for its blocking dequeue.
    """
    import signal
    import time

    env = {
        **os.environ,
        "SLOTBOOK_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SLOTBOOK_INSTANCE_DIR": str(tmp_path / "instance"),
    }
    worker = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = time.monotonic()
        while not redis.keys("slotbook:periodic:outbox-sweep:*"):
            assert worker.poll() is None, worker.stdout.read()[-3000:]
            assert time.monotonic() - started < 60, "the ticker never claimed a tick"
            time.sleep(0.2)
        while time.monotonic() - started < 8:  # past the 5 s socket timeout that killed it
            assert worker.poll() is None, worker.stdout.read()[-3000:]
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    output = worker.stdout.read()
    assert "Redis connection timeout" not in output


def _burst(app, database_url, redis_url, tmp_path, mail_port: int) -> subprocess.CompletedProcess:
    """The burst worker, sending mail to the test's SMTP server."""
    return run_burst_worker(
        app,
        database_url,
        redis_url,
        tmp_path,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(mail_port),
    )


def _claim_current_ticks(redis) -> list[str]:
    """Claim this period (and the next, in case the minute turns) of every periodic job, as
    a long-running worker that already ran them would have."""
    import time

    now = time.time()
    keys = [
        f"slotbook:periodic:{job.name}:{int(now // job.every_seconds) + ahead}"
        for job in jobs.SCHEDULE
        for ahead in (0, 1)
    ]
    for key in keys:
        redis.set(key, "1", ex=300)
    return keys


def test_burst_runs_the_due_periodic_jobs_reminder_and_release(
    app, factory, database_url, redis, redis_url, tmp_path
):
    """Cron-style hosting: ``worker.py --burst`` runs the periodic jobs that are due, so a
    meeting starting in half an hour gets its reminders (through a real SMTP server) and a
    visitor's booking left unconfirmed past its deadline is released. A period that a
    long-running worker already ran is not run again."""
    from app.bookings.models import AuditEntry, Booking, Status
    from app.bookings.service import Guest
    from app.database import utcnow
    from app.public.models import PublicBooking
    from tests.notifications.conftest import SmtpServer

    mailbox = SmtpServer()
    mailbox.start()
    try:
        agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
        kind = factory.booking_type(name="Progress review")
        soon = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=30)
        meeting = factory.booking(None, kind, soon, [agent], guests=[Guest("meg@example.test")])
        held = factory.booking(None, factory.booking_type(name="Consultation"), at(3), [agent])
        with app.app_context():
            begin_write()
            db.session.add(
                PublicBooking(
                    booking_id=held.id,
                    contact_name="Vera Visitor",
                    contact_email="vera@example.test",
                    pending_confirmation=True,
                    confirm_deadline=utcnow() - timedelta(minutes=5),
                )
            )
            db.session.commit()
            db.session.remove()

        def state() -> tuple[str, str, bool, list[str]]:
            with app.app_context():
                status = db.session.get(Booking, held.id).status
                record = db.session.get(PublicBooking, held.id)
                actions = list(
                    db.session.scalars(
                        select(AuditEntry.action).where(AuditEntry.booking_id == held.id)
                    )
                )
                result = (db.session.get(Booking, meeting.id).status, status)
                result += (record.pending_confirmation, actions)
                db.session.remove()
            return result

        def reminders() -> list[str]:
            return sorted(
                address
                for m in mailbox.messages
                if m.subject.startswith("Reminder: Progress review")
                for address in m.to
            )

        # A long-running worker already ran this minute's jobs: the burst runs none of them
        # again (it still delivers the outbox: the invitations go out).
        claimed = _claim_current_ticks(redis)
        _burst(app, database_url, redis_url, tmp_path, mailbox.port)
        assert state() == (Status.CONFIRMED, Status.CONFIRMED, True, ["created"])
        assert reminders() == []
        assert mailbox.to("ada@example.test"), "the invitations were not delivered"

        redis.delete(*claimed)  # the next period: due again
        _burst(app, database_url, redis_url, tmp_path, mailbox.port)
        assert state() == (
            Status.CONFIRMED,
            Status.CANCELLED,
            False,
            ["created", "cancelled", "released"],
        )
        assert reminders() == ["ada@example.test", "meg@example.test"]
        with app.app_context():
            undelivered = db.session.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.status != DONE)
            ).all()
            db.session.remove()
        assert undelivered == []  # the release's cancellation mails went out in the same run
        assert any(m.subject.startswith("Meeting cancelled") for m in mailbox.messages)
    finally:
        mailbox.stop()
