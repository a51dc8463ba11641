"""The transactional outbox: side effects are rows first, jobs second.

A service adds ``OutboxMessage`` rows in the same transaction as the change they describe.
After the commit, new rows are pushed to RQ; if Redis is down nothing is lost, because the
periodic sweeper re-enqueues every row that is not done. Delivery takes the row, skips it if
it is already done and runs the handler registered for its kind, so running a row twice is
harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import JSON, Integer, String, Text, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.database import UTCDateTime, begin_write, utcnow
from app.extensions import db

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
QUEUE_NAME = "outbox"
UNHANDLED_RETRY = timedelta(hours=1)

Handler = Callable[["OutboxMessage"], None]
_handlers: dict[str, list[Handler]] = {}


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Handlers that already succeeded for this row: a retry runs only the others, so one
    # consumer's trouble (a calendar server down) neither repeats nor delays another's work.
    handled: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Optional "at most once" key (a reminder per booking, attendee and start time).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more message kinds (later features plug in here)."""

    def register(func: Handler) -> Handler:
        for kind in kinds:
            if func not in _handlers.setdefault(kind, []):
                _handlers[kind].append(func)
        return func

    return register


def handlers_for(kind: str) -> list[Handler]:
    """Exact kind first, then the wildcard of its family ("booking.*"), then "*"."""
    family = kind.split(".", 1)[0] + ".*"
    return [h for k in (kind, family, "*") for h in _handlers.get(k, [])]


def emit(kind: str, **payload: object) -> OutboxMessage:
    """Add a message to the current transaction; it is enqueued only if the commit succeeds."""
    message = OutboxMessage(kind=kind, payload=payload)
    db.session.add(message)
    return message


def emit_once(dedupe_key: str, kind: str, **payload: object) -> OutboxMessage | None:
    """Like ``emit``, but only if no message with ``dedupe_key`` exists (None otherwise).

    The unique key makes it hold across processes: on PostgreSQL a racing twin fails at the
    insert and is dropped inside its savepoint; on SQLite the write lock serialises them.
    """
    exists = db.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    )
    if exists is not None:
        return None
    try:
        with db.session.begin_nested():
            message = OutboxMessage(kind=kind, payload=payload, dedupe_key=dedupe_key)
            db.session.add(message)
    except IntegrityError:
        return None
    return message


def reset_failed(message: OutboxMessage) -> None:
    """Give a failed row a fresh set of attempts, due now (an admin's "Retry"). Handlers that
    already succeeded stay remembered, so only what failed runs again. The caller commits
    and enqueues it (``enqueue_ids``); the sweeper covers a Redis outage."""
    message.status = PENDING
    message.attempts = 0
    message.available_at = utcnow()


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


# --- enqueue after commit -------------------------------------------------------------

_NEW_IDS = "slotbook_new_outbox_ids"


@event.listens_for(Session, "after_flush")
def _collect_new(session: Session, _context) -> None:
    new_ids = session.info.setdefault(_NEW_IDS, set())
    new_ids.update(obj.id for obj in session.new if isinstance(obj, OutboxMessage))


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: wait for the real commit
    ids = session.info.pop(_NEW_IDS, None)
    if ids:
        enqueue_ids(sorted(ids))


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    if session.in_nested_transaction():
        return  # ids of a rolled-back savepoint stay; delivery skips rows that do not exist
    session.info.pop(_NEW_IDS, None)


def enqueue_ids(ids: list[int]) -> int:
    """Push rows to RQ; a Redis failure is logged and left to the sweeper. Returns the count."""
    from app.jobs import enqueue_outbox  # jobs imports services; keep this edge lazy

    try:
        for message_id in ids:
            enqueue_outbox(message_id)
    except Exception as exc:  # redis.ConnectionError, TimeoutError, no REDIS_URL …
        log.warning(
            "outbox: could not enqueue %d message(s), sweeper will retry: %s", len(ids), exc
        )
        return 0
    return len(ids)


def sweep(older_than: timedelta | None = None) -> int:
    """Re-enqueue rows that are not done and are due; returns how many were pushed."""
    now = utcnow()
    query = select(OutboxMessage.id).where(
        OutboxMessage.status == PENDING, OutboxMessage.available_at <= now
    )
    if older_than is not None:
        query = query.where(OutboxMessage.created_at <= now - older_than)
    ids = list(db.session.scalars(query.order_by(OutboxMessage.id)))
    return enqueue_ids(ids) if ids else 0


def deliver(message_id: int, max_attempts: int = 8) -> str:
    """Run the handlers of one row, each at most once to success; return the row's status.

    The row is taken under the write lock (SQLite) or ``FOR UPDATE`` (PostgreSQL), so two
    workers given the same id cannot both run it. Each handler runs in its own savepoint and
    is remembered once it succeeds; a failing one leaves the row pending with an exponential
    back-off until ``max_attempts``, then marks it failed, and only the failed ones run again.
    """
    begin_write()
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    ).one_or_none()
    if message is None or message.status != PENDING:
        db.session.rollback()
        return message.status if message else "missing"
    handlers = handlers_for(message.kind)
    if not handlers:
        # Nothing consumes this kind yet (e.g. visitor links before the mailer exists): keep
        # the row, look again in an hour, and never call it done with nobody having seen it.
        message.last_error = f"no handler registered for {message.kind!r} yet"
        message.available_at = utcnow() + UNHANDLED_RETRY
        db.session.commit()
        return PENDING
    message.attempts += 1
    done = set(message.handled or [])
    failures: list[Exception] = []
    for handler in handlers:
        name = handler_name(handler)
        if name in done:
            continue
        try:
            with db.session.begin_nested():
                handler(message)
        except Exception as exc:
            log.exception("outbox: message %s (%s): %s failed", message.id, message.kind, name)
            failures.append(exc)
        else:
            done.add(name)
    message.handled = sorted(done)
    if failures:
        message.last_error = "; ".join(f"{type(e).__name__}: {e}" for e in failures)[:2000]
        if message.attempts >= max_attempts:
            message.status = FAILED
        else:
            backoff = min(3600, 2**message.attempts * 15)
            # A provider that said when to come back (Retry-After) is believed.
            asked = max(float(getattr(e, "retry_after", 0) or 0) for e in failures)
            message.available_at = utcnow() + timedelta(seconds=max(backoff, asked))
    else:
        message.status = DONE
        message.done_at = utcnow()
        message.last_error = None
        # Kind and id only: payloads can hold visitors' private links.
        log.info("outbox delivered %s id=%s", message.kind, message.id)
    status = message.status
    db.session.commit()
    return status
