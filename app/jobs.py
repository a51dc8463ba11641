"""RQ entry points and the periodic schedule.

Jobs take ids, never objects or secrets; each runs inside an app context and commits once.
Periodic jobs are enqueued by every worker's ticker, but a Redis ``SET NX`` on the job's
name and tick number lets only one of them through, and the job id is derived from the same
tick, so two workers (or a restart) never run one tick twice. ``worker.py --burst`` ticks
once through the same claims, so cron-style hosting runs what is due, and only that.

Redis is reached through the app's one client (``app.extensions.redis_client``); only the
worker builds its own, because RQ re-tunes the pool of the client it blocks on.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, has_app_context
from redis import Redis
from rq import Queue

from app.extensions import db, new_redis_client, redis_client

log = logging.getLogger(__name__)

_app = None


def use_app(app) -> None:
    """Let jobs run in this app (the worker's) instead of building their own."""
    global _app
    _app = app


def _worker_app():
    if _app is None:
        from app import create_app

        use_app(create_app())
    return _app


def in_app_context(func: Callable) -> Callable:
    """Run an RQ job inside the app (the worker's own when none is active) and clean up."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        with _worker_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper


def redis_connection(url: str | None = None) -> Redis:
    """The app's shared Redis client; with ``url``, a new client of its own (the worker's)."""
    if url:
        return new_redis_client(url)
    return redis_client()


def queue(name: str, connection: Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection())


# --- outbox -------------------------------------------------------------------------

# RQ statuses of a job that is still waiting to run: queueing it again would only run it twice.
_WAITING = {"queued", "deferred", "scheduled"}


def enqueue_outbox(message_id: int) -> bool:
    """Queue the delivery of one row unless it is already waiting in the queue; True when
    it was queued now. The job id is the row's, so RQ never holds two copies of it."""
    from app.outbox import QUEUE_NAME, lease_length

    outbox_queue = queue(QUEUE_NAME)
    job_id = f"outbox-{message_id}"
    existing = outbox_queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=False) in _WAITING:
        return False
    outbox_queue.enqueue(
        deliver_outbox_message,
        message_id,
        job_id=job_id,
        result_ttl=60,
        failure_ttl=86400,
        # Shorter than the row's lease, so a job RQ stops is not still running when the
        # lease ends and another worker takes the row.
        job_timeout=max(30, int(lease_length().total_seconds()) - 60),
    )
    return True


@in_app_context
def deliver_outbox_message(message_id: int) -> str:
    from app.outbox import deliver

    return deliver(message_id, current_app.config["OUTBOX_MAX_ATTEMPTS"])


@in_app_context
def sweep_outbox() -> int:
    from datetime import timedelta

    from app.outbox import sweep

    return sweep(older_than=timedelta(seconds=current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"]))


@in_app_context
def record_api_token_uses() -> int:
    """Write the API token uses noted in Redis to ``last_used_at`` (see ``app.api.auth``)."""
    from app.api.auth import flush_token_uses

    return flush_token_uses()


# --- periodic schedule --------------------------------------------------------------


@dataclass(frozen=True)
class Periodic:
    name: str
    every_seconds: int
    func: Callable
    queue: str = "default"


@in_app_context
def release_unconfirmed_bookings() -> int:
    """S4: cancel visitor bookings not confirmed before their deadline."""
    from app.database import begin_write
    from app.public.service import release_unconfirmed

    begin_write()
    released = release_unconfirmed()
    db.session.commit()
    return released


# --- calendar sync (K4) ----------------------------------------------------------------

SYNC_QUEUE = "sync"
_LIVE_STATUSES = {"queued", "started", "deferred", "scheduled"}


@in_app_context
def dispatch_calendar_syncs() -> int:
    """Queue a sync for every connection that is due, at most one live job per connection
    (a slow server must not pile up copies of its own sync)."""
    from app.connections.sync import due_connections

    ids = due_connections()
    db.session.commit()
    sync_queue = queue(SYNC_QUEUE)
    pushed = 0
    for connection_id in ids:
        job_id = f"sync-connection-{connection_id}"
        existing = sync_queue.fetch_job(job_id)
        if existing is not None and existing.get_status(refresh=False) in _LIVE_STATUSES:
            continue
        sync_queue.enqueue(
            sync_calendar_connection,
            connection_id,
            job_id=job_id,
            result_ttl=60,
            failure_ttl=86400,
            job_timeout=600,
        )
        pushed += 1
    return pushed


@in_app_context
def sync_calendar_connection(connection_id: int) -> str | None:
    """One connection's busy-cache refresh; returns its error sentence, if any."""
    from app.connections.sync import sync_connection

    return sync_connection(connection_id).error


@in_app_context
def queue_meeting_reminders() -> int:
    """N3: a reminder per attendee of meetings starting soon, each sent once."""
    from app.database import begin_write
    from app.notifications.reminders import queue_reminders

    begin_write()
    emitted = queue_reminders()
    db.session.commit()
    return emitted


@in_app_context
def purge_outdated_visitors() -> int:
    """Nightly: remove visitors' personal details once their booking is old enough."""
    from app.database import begin_write
    from app.public.purge import purge_outdated_visitors as purge

    begin_write()
    purged = purge()
    db.session.commit()
    return purged


# --- Teams attendance → off-the-job minutes (T3) -------------------------------------------


@in_app_context
def record_teams_attendance() -> int:
    """Nightly: read ended Teams meetings' attendance reports and record off-the-job minutes
    (``app.teams.attendance`` ends its own transactions around the Graph calls)."""
    from app.teams.attendance import run

    summary = run()
    if summary.error:
        log.warning("Teams attendance stopped: %s", summary.error)
    return summary.checked


# --- Teams meetings: the scheduling window (T2) ---------------------------------------------


@in_app_context
def schedule_teams_meetings() -> int | None:
    """Push the Teams meetings that entered the scheduling window (once per
    ``teams_schedule_interval_hours``; ``app.teams.meetings.run_periodic`` keeps the pace)."""
    from app.database import begin_write
    from app.teams.meetings import run_periodic

    begin_write()
    queued = run_periodic()
    db.session.commit()
    return queued


SCHEDULE: list[Periodic] = [
    Periodic("outbox-sweep", 60, sweep_outbox),
    Periodic("public-release-unconfirmed", 60, release_unconfirmed_bookings),
    Periodic("calendar-sync-dispatch", 60, dispatch_calendar_syncs),
    Periodic("notification-reminders", 60, queue_meeting_reminders),
    Periodic("api-token-uses", 60, record_api_token_uses),
    # Its tick number is the UTC day, so it runs once a night, just after midnight UTC.
    Periodic("purge-outdated-visitors", 86400, purge_outdated_visitors),
    # Nightly too: a meeting's attendance is read the night after it (seed 001).
    Periodic("teams-attendance", 86400, record_teams_attendance),
    # Ticks every 15 minutes; the job itself runs once per teams_schedule_interval_hours.
    Periodic("teams-schedule", 900, schedule_teams_meetings),
]


def tick(
    connection: Redis, now: float | None = None, schedule: list[Periodic] = SCHEDULE
) -> list[str]:
    """Enqueue each periodic job whose tick has come and that no other worker has claimed.

    Returns the job ids this call enqueued.
    """
    now = time.time() if now is None else now
    enqueued = []
    for job in schedule:
        number = int(now // job.every_seconds)
        claim = f"slotbook:periodic:{job.name}:{number}"
        if connection.set(claim, "1", nx=True, ex=job.every_seconds * 2):
            job_id = f"periodic-{job.name}-{number}"
            Queue(job.queue, connection=connection).enqueue(job.func, job_id=job_id, result_ttl=600)
            enqueued.append(job_id)
    return enqueued
