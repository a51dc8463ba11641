"""The transactional outbox: side effects are rows first, jobs second.

A service adds ``OutboxMessage`` rows in the same transaction as the change they describe.
After the commit, new rows are pushed to RQ; if Redis is down nothing is lost, because the
periodic sweeper re-enqueues every row that is due, not queued recently and not being worked
on. Running a row twice is harmless: a done row is skipped, and each handler that succeeded
is remembered on the row and never runs again for it.

Delivery never holds a database transaction across a network call (DESIGN: a slow or hanging
SMTP, CalDAV, Graph or SMS server must never hold the SQLite write lock):

1. **claim**: a short write transaction marks the row as taken (``claimed_by``, and a lease
   ``claimed_until``) and commits. A second worker given the same id sees the lease and
   leaves the row alone; a crashed worker's lease simply runs out and the sweeper re-queues
   the row.
2. per handler, **prepare**: the handler runs in a short write transaction. A handler that
   only touches the database (the notification planner) is done there: its writes and the
   "handled" mark commit together, exactly once. A handler that talks to the network
   returns a ``Send``: its writes are committed, then ``Send.io`` runs with no transaction
   open, then ``Send.record`` stores the outcome in a new short transaction together with the
   "handled" mark. A crash between the I/O and the record repeats that I/O once (emails
   carry a stable Message-ID, calendar events a stable UID, so a repeat is recognisable).
3. **finish**: a short transaction releases the claim and marks the row done, or schedules
   a retry with back-off (failed after ``max_attempts``).

Rows about one booking share an ``ordering_key``; only one of them is worked on at a time,
so two workers never push two versions of one booking into a calendar at once.

Link tokens (visitors' manage and confirm links, poll answer links, and the rendered mail
and SMS bodies that carry them) are sealed in the payload with the app's encryption keys
(``SEALED_FIELDS``) and removed once the row is done: a database dump holds no live link.
Handlers read ``message.data``, which opens them.
"""

from __future__ import annotations

import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import JSON, Integer, String, Text, event, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.database import IMMEDIATE, UTCDateTime, begin_write, utcnow
from app.extensions import db

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
# What ``deliver`` returns for a row it left alone: another worker holds it (CLAIMED), or
# holds another row of the same booking (BUSY). Neither is a stored status.
CLAIMED, BUSY = "claimed", "busy"
QUEUE_NAME = "outbox"
UNHANDLED_RETRY = timedelta(hours=1)
DEFAULT_LEASE_SECONDS = 300
ORDERING_LOCK_NAMESPACE = 0x0B0C  # PostgreSQL advisory locks; apart from app.database's

# Payload fields that can hold a live link token. Sealed at ``emit``, dropped once done.
SEALED_FIELDS = frozenset({"manage_url", "confirm_url", "url", "token", "text", "html"})
SEALED = "sealed"


@dataclass(frozen=True)
class Send:
    """The network part of a handler, returned by it instead of doing the I/O itself.

    ``io`` runs after the handler's own writes are committed, with no transaction open; it
    gets everything it needs from the closure (plain values, or rows loaded in the handler),
    never from lazy loads. ``record`` gets what ``io`` returned and runs in a new short write
    transaction; raising ``PartialFailure`` there keeps its writes but retries the handler.
    """

    io: Callable[[], Any]
    record: Callable[[Any], None] | None = None


class PartialFailure(Exception):
    """Raised by ``Send.record``: what it wrote stands (e.g. the calendars that worked), but
    the handler is not done and runs again later. ``retry_after`` (seconds) is believed."""

    def __init__(self, message: str, retry_after: float = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LostClaim(Exception):
    """Our lease ran out and another worker took the row over: stop, it finishes the row."""


Handler = Callable[["OutboxMessage"], Send | None]
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
    # When the row was last handed to RQ (None: not queued, the sweeper takes it when due).
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Handlers that already succeeded for this row: a retry runs only the others, so one
    # consumer's trouble (a calendar server down) neither repeats nor delays another's work.
    handled: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Optional "at most once" key (a reminder per booking, attendee and start time).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The worker delivering the row now, and until when its claim holds.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Rows with one key are delivered one at a time ("booking:42").
    ordering_key: Mapped[str | None] = mapped_column(String(80), index=True)

    @property
    def data(self) -> dict:
        """The payload with its sealed fields opened (what handlers read)."""
        return open_payload(self.payload)


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


# --- writing rows ----------------------------------------------------------------------


def _new(kind: str, payload: dict, dedupe_key: str | None = None) -> OutboxMessage:
    return OutboxMessage(
        kind=kind,
        payload=seal_payload(payload),
        dedupe_key=dedupe_key,
        ordering_key=ordering_key(kind, payload),
        enqueued_at=utcnow(),  # queued right after the commit; the sweeper covers a failure
    )


def emit(kind: str, **payload: object) -> OutboxMessage:
    """Add a message to the current transaction; it is enqueued only if the commit succeeds."""
    message = _new(kind, payload)
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
            message = _new(kind, payload, dedupe_key)
            db.session.add(message)
    except IntegrityError:
        return None
    return message


def ordering_key(kind: str, payload: dict) -> str | None:
    """Booking and attendee changes of one booking are delivered one at a time: each writes
    that booking into people's calendars, and two at once could leave the older version
    there. Other rows (mail, SMS, visitors' links) go in parallel."""
    booking_id = payload.get("booking_id")
    if kind.split(".", 1)[0] in {"booking", "attendee"} and isinstance(booking_id, int):
        return f"booking:{booking_id}"
    return None


def reset_failed(message: OutboxMessage) -> None:
    """Give a failed row a fresh set of attempts, due now (an admin's "Retry"). Handlers that
    already succeeded stay remembered, so only what failed runs again. The caller commits
    and enqueues it (``enqueue_ids``); the sweeper covers a Redis outage."""
    message.status = PENDING
    message.attempts = 0
    message.available_at = utcnow()
    message.enqueued_at = utcnow()


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


# --- sealed link tokens --------------------------------------------------------------------


def seal_payload(payload: dict) -> dict:
    """Move the fields that can carry a link token into one encrypted ``sealed`` value."""
    secret = {k: v for k, v in payload.items() if k in SEALED_FIELDS and v is not None}
    if not secret:
        return dict(payload)
    from app.security import keyring

    kept = {k: v for k, v in payload.items() if k not in secret}
    kept[SEALED] = keyring().encrypt(json.dumps(secret))
    return kept


def open_payload(payload: dict | None) -> dict:
    """The payload as it was emitted (sealed fields decrypted); raises ``DecryptionError``
    when the key that sealed it is gone, which fails the row visibly."""
    payload = dict(payload or {})
    sealed = payload.pop(SEALED, None)
    if not sealed:
        return payload
    from app.security import keyring

    return {**payload, **json.loads(keyring().decrypt(sealed))}


def reseal_pending() -> tuple[int, int]:
    """Re-seal the payloads of rows not done yet with the newest key (``flask rotate-keys``);
    returns (re-sealed, sealed rows). Done rows hold nothing sealed."""
    from app.security import keyring

    ring = keyring()
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.status != DONE)).all()
    sealed = [r for r in rows if (r.payload or {}).get(SEALED)]
    resealed = 0
    for row in sealed:
        if ring.needs_rotation(row.payload[SEALED]):
            row.payload = {**row.payload, SEALED: ring.encrypt(ring.decrypt(row.payload[SEALED]))}
            resealed += 1
    db.session.flush()
    return resealed, len(sealed)


def _scrub(message: OutboxMessage) -> None:
    """Delivered: the links inside were for the recipient only; keep no copy of them."""
    if (message.payload or {}).get(SEALED):
        message.payload = {k: v for k, v in message.payload.items() if k != SEALED}


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
    """Hand rows to RQ (a row already waiting in the queue is not queued twice); a Redis
    failure is logged and left to the sweeper. Returns how many are now queued."""
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
    """Re-enqueue rows that are pending, due, not claimed by a live worker and not queued
    within ``older_than`` (None: however recently); returns how many were queued.

    Their ``enqueued_at`` is stamped in a short transaction of its own, so the next sweep
    leaves rows alone that are still waiting in the queue.
    """
    now = utcnow()
    query = select(OutboxMessage.id).where(
        OutboxMessage.status == PENDING,
        OutboxMessage.available_at <= now,
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
    )
    if older_than is not None:
        query = query.where(
            or_(OutboxMessage.enqueued_at.is_(None), OutboxMessage.enqueued_at <= now - older_than)
        )
    ids = list(db.session.scalars(query.order_by(OutboxMessage.id)))
    if not ids:
        return 0
    queued = enqueue_ids(ids)
    if queued:
        _stamp_enqueued(ids, now)
    return queued


def _stamp_enqueued(ids: list[int], now: datetime) -> None:
    """Record the enqueue on a connection of its own: the caller's session may be inside a
    read transaction, which on SQLite cannot become a writer."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            for start in range(0, len(ids), 500):
                conn.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids[start : start + 500]))
                    .values(enqueued_at=now)
                )


# --- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    id: int
    token: str
    lease: timedelta


def lease_length() -> timedelta:
    """How long a claim holds without being renewed (``OUTBOX_LEASE_SECONDS``); longer than
    any one handler may take, since a handler still running when it ends may be repeated."""
    seconds = DEFAULT_LEASE_SECONDS
    if has_app_context():
        seconds = int(current_app.config.get("OUTBOX_LEASE_SECONDS", seconds))
    return timedelta(seconds=seconds)


def deliver(message_id: int, max_attempts: int = 8) -> str:
    """Run the handlers of one row, each at most once to success; return the row's status
    (or ``CLAIMED`` / ``BUSY`` when another worker has it, or ``"missing"``).

    A failing handler leaves the row pending with an exponential back-off until
    ``max_attempts``, then marks it failed; only the handlers that failed run again. It
    works in short transactions of its own: call it with none open (one is rolled back).
    """
    claim = _claim(message_id)
    if isinstance(claim, str):
        return claim
    failures: list[Exception] = []
    try:
        for handler in _pending_handlers(claim):
            try:
                _run_handler(claim, handler)
            except LostClaim:
                raise
            except Exception as exc:
                db.session.rollback()
                log.exception("outbox: message %s: %s failed", message_id, handler_name(handler))
                failures.append(exc)
    except LostClaim:
        db.session.rollback()
        log.warning("outbox: message %s was taken over after its lease ran out", message_id)
        return CLAIMED
    return _finish(claim, failures, max_attempts)


def _claim(message_id: int) -> _Claim | str:
    """Take the row in a short write transaction, or say why not."""
    db.session.rollback()  # a claim starts its own transaction, whatever the caller read
    begin_write()
    now = utcnow()
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    ).one_or_none()
    if message is None or message.status != PENDING:
        status = message.status if message else "missing"
        db.session.rollback()
        return status
    if message.claimed_until is not None and message.claimed_until > now:
        db.session.rollback()
        return CLAIMED
    if not handlers_for(message.kind):
        # Nothing consumes this kind yet (e.g. visitor links before the mailer exists): keep
        # the row, look again in an hour, and never call it done with nobody having seen it.
        message.last_error = f"no handler registered for {message.kind!r} yet"
        message.available_at = now + UNHANDLED_RETRY
        message.enqueued_at = None
        db.session.commit()
        return PENDING
    if message.ordering_key and _ordering_key_busy(message, now):
        message.enqueued_at = None  # the next sweep queues it again
        db.session.commit()
        return BUSY
    claim = _Claim(message.id, secrets.token_hex(16), lease_length())
    message.claimed_by = claim.token
    message.claimed_until = now + claim.lease
    message.attempts += 1
    db.session.commit()
    return claim


def _ordering_key_busy(message: OutboxMessage, now: datetime) -> bool:
    """Whether another row with this row's key is being delivered. On PostgreSQL a
    transaction-scoped advisory lock on the key makes check-and-claim atomic; on SQLite the
    write lock already does."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(message.ordering_key.encode())
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": ORDERING_LOCK_NAMESPACE, "key": key - 2**32 if key >= 2**31 else key},
        )
    other = db.session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.ordering_key == message.ordering_key,
            OutboxMessage.id != message.id,
            OutboxMessage.status == PENDING,
            OutboxMessage.claimed_until > now,
        )
    )
    return other is not None


def _pending_handlers(claim: _Claim) -> list[Handler]:
    message = _own(claim)
    done = set(message.handled or [])
    handlers = [h for h in handlers_for(message.kind) if handler_name(h) not in done]
    db.session.rollback()
    return handlers


def _own(claim: _Claim) -> OutboxMessage:
    """The row, freshly read; ``LostClaim`` if another worker has taken it over."""
    message = db.session.get(OutboxMessage, claim.id, populate_existing=True)
    if message is None or message.claimed_by != claim.token:
        raise LostClaim(claim.id)
    return message


def _run_handler(claim: _Claim, handler: Handler) -> None:
    """Prepare (write transaction) → I/O (no transaction) → record (write transaction)."""
    name = handler_name(handler)
    begin_write()
    message = _own(claim)
    message.claimed_until = utcnow() + claim.lease  # renewed for each handler
    step = handler(message)
    if step is None:  # database only: its writes and the mark commit as one
        _mark_handled(message, name)
        db.session.commit()
        return
    db.session.commit()
    result = step.io()
    if db.session().in_transaction():  # a lazy load during the I/O: close it, and say so
        log.warning("outbox: %s read the database during its I/O", name)
        db.session.rollback()
    begin_write()
    try:
        if step.record is not None:
            step.record(result)
    except PartialFailure:
        db.session.commit()  # what worked is recorded; the handler runs again
        raise
    message = db.session.get(OutboxMessage, claim.id, populate_existing=True)
    if message is not None:  # even after losing the claim: the I/O did happen
        _mark_handled(message, name)
    db.session.commit()


def _mark_handled(message: OutboxMessage, name: str) -> None:
    message.handled = sorted(set(message.handled or []) | {name})


def _finish(claim: _Claim, failures: list[Exception], max_attempts: int) -> str:
    """Release the claim: done (links scrubbed), or back-off, or failed."""
    begin_write()
    try:
        message = _own(claim)
    except LostClaim:
        db.session.rollback()
        return CLAIMED
    message.claimed_by = None
    message.claimed_until = None
    if failures:
        message.last_error = "; ".join(f"{type(e).__name__}: {e}" for e in failures)[:2000]
        if message.attempts >= max_attempts:
            message.status = FAILED
        else:
            backoff = min(3600, 2**message.attempts * 15)
            # A provider that said when to come back (Retry-After) is believed.
            asked = max(float(getattr(e, "retry_after", 0) or 0) for e in failures)
            message.available_at = utcnow() + timedelta(seconds=max(backoff, asked))
            message.enqueued_at = None  # the sweeper queues it again once it is due
    else:
        message.status = DONE
        message.done_at = utcnow()
        message.last_error = None
        _scrub(message)
        # Kind and id only: payloads can hold visitors' private links.
        log.info("outbox delivered %s id=%s", message.kind, message.id)
    status = message.status
    db.session.commit()
    return status
