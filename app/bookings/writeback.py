"""Write-back (K5, seed 000): keep each attendee's own calendar in step with the booking.

Driven by the outbox: every ``booking.*`` and ``attendee.*`` message asks "make the calendars
match this booking now". Reconciling state, rather than replaying the event that happened,
is what makes a retried delivery safe: an event already written is updated or left alone,
never created twice (and the providers' creates are idempotent by the booking's UID, for
the case where a create reached the server but our commit did not).

The rules of seed 000:
- provisional and confirmed bookings have an event in each internal attendee's write calendar
  (the one they chose, their personal link before the organisation's); provisional ones are
  titled "[PENDING] …" and marked tentative, and approval removes both;
- reschedule or edit moves the event; cancel and reject delete it; completed keeps it;
- a resit or retake is a new booking with its own UID, so the old event stays where it is;
- a booking switched to a Teams meeting loses our event: the Teams invitation takes over;
- titles carry the booking type name (5.14.0).

Calls are made with one HTTP attempt and no waiting for Retry-After: the outbox row is held
while its handlers run, so a slow or throttled provider is retried later by the outbox (which
honours the provider's Retry-After) instead of being waited for here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy import select

from app.accounts.models import User
from app.admin.settings import get_setting
from app.bookings.models import Attendee, Booking, LocationMode, Status
from app.connections.models import Connection, ConnectionKind, LinkedCalendar, RemoteEvent
from app.connections.providers import provider_for, provider_settings
from app.connections.providers.base import (
    AuthFailed,
    EventData,
    EventMissing,
    ProviderError,
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
)
from app.connections.sync import mark_needs_relink
from app.database import utcnow
from app.extensions import db
from app.outbox import OutboxMessage, emit, handles

log = logging.getLogger(__name__)

PENDING_PREFIX = "[PENDING] "
RESYNC_KIND = "booking.calendar_resync"  # no notification rule matches it
EVENT_STATUSES = frozenset({Status.PROVISIONAL, Status.CONFIRMED, Status.COMPLETED})


class WritebackRetry(Exception):
    """Some calendars could not be written for a passing reason; the outbox tries again."""

    def __init__(self, message: str, retry_after: float = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Wanted:
    calendar: LinkedCalendar
    event: EventData


@handles("booking.*", "attendee.*")
def write_back_message(message: OutboxMessage) -> None:
    booking = db.session.get(Booking, message.payload.get("booking_id"))
    if booking is not None:
        reconcile(booking)


@handles("connection.write_calendar_changed")
def write_back_person(message: OutboxMessage) -> None:
    """A person's write calendar changed: bring each of their upcoming bookings into line
    (write into the new calendar, remove from the old). Finished bookings stay as they are.

    One outbox message per booking rather than all of them here: each is then written in
    its own short delivery (on SQLite the write lock is held for one booking's calls, not
    for fifty), and one calendar's trouble retries only that booking.
    """
    person_id = message.payload.get("person_id")
    upcoming = db.session.scalars(
        select(Booking.id)
        .join(Attendee, Attendee.booking_id == Booking.id)
        .where(
            Attendee.user_id == person_id,
            Booking.ends_at > utcnow(),
            Booking.status.in_([Status.PROVISIONAL, Status.CONFIRMED]),
        )
        .order_by(Booking.starts_at)
    ).all()
    for booking_id in upcoming:
        emit(RESYNC_KIND, booking_id=booking_id)  # "booking.*": handled by write_back_message


def reconcile(booking: Booking) -> None:
    """Create, move or delete this booking's events so each attendee's calendar matches it.

    Raises ``WritebackRetry`` when a calendar failed for a passing reason (after doing all the
    others); a refused login marks that connection for re-linking instead.
    """
    settings = replace(provider_settings(), http_attempts=1, max_retry_wait=0, timeout=10)
    existing = {
        e.person_id: e
        for e in db.session.scalars(select(RemoteEvent).where(RemoteEvent.booking_id == booking.id))
    }
    wanted = _wanted(booking) if get_setting("two_way_sync") else {}
    retry: list[ProviderError] = []
    for person_id in sorted(set(existing) | set(wanted)):
        try:
            _sync_one(booking, person_id, existing.get(person_id), wanted.get(person_id), settings)
        except AuthFailed as exc:
            _mark_relink(_connection_of(existing.get(person_id), wanted.get(person_id)), exc)
        except (RateLimited, TemporaryFailure) as exc:
            retry.append(exc)
        except ProviderError as exc:  # e.g. a read-only calendar: tell the owner, go on
            _note_error(_connection_of(existing.get(person_id), wanted.get(person_id)), exc)
    if retry:
        wait = max((getattr(e, "retry_after", 0) for e in retry), default=0)
        raise WritebackRetry("; ".join(str(e) for e in retry), retry_after=wait)


def _sync_one(
    booking: Booking,
    person_id: int,
    record: RemoteEvent | None,
    want: Wanted | None,
    settings: ProviderSettings,
) -> None:
    if record is not None and (want is None or record.calendar_id != want.calendar.id):
        _remove(record, settings, moving=want is not None)
        record = None
    if want is None:
        return
    provider = provider_for(want.calendar.connection, settings)
    event = want.event
    if record is None:
        written = provider.create_event(want.calendar, event)
        record = RemoteEvent(
            booking_id=booking.id, person_id=person_id, calendar_id=want.calendar.id
        )
        db.session.add(record)
    elif (record.title, record.starts_at, record.ends_at, record.tentative) != (
        event.title,
        event.starts_at,
        event.ends_at,
        event.tentative,
    ):
        try:
            written = provider.update_event(want.calendar, record.remote_id, event, record.etag)
        except EventMissing:  # deleted by hand in the calendar: the booking still stands
            written = provider.create_event(want.calendar, event)
    else:
        return
    record.remote_id, record.etag = written.remote_id, written.etag
    record.title, record.tentative = event.title, event.tentative
    record.starts_at, record.ends_at = event.starts_at, event.ends_at
    db.session.flush()


def _remove(record: RemoteEvent, settings: ProviderSettings, moving: bool) -> None:
    """Delete our old event. Its faults belong to the old calendar's connection, not to the
    one the event moves to: a refused login marks the old connection for re-linking and our
    record is dropped (we cannot delete the event any more), so the move goes on; a passing
    fault raises for a retry. Any other refusal is noted on the old connection and, when the
    event moves, the record is dropped too so the new calendar still gets its event."""
    old = record.calendar.connection if record.calendar is not None else None
    try:
        _delete(record, settings)
    except (RateLimited, TemporaryFailure):
        raise
    except AuthFailed as exc:
        _mark_relink(old, exc)
    except ProviderError as exc:
        if not moving:
            raise  # noted against the old connection by reconcile; a later try may manage
        _note_error(old, exc)
    else:
        return
    db.session.delete(record)
    db.session.flush()


def _delete(record: RemoteEvent, settings: ProviderSettings) -> None:
    calendar = record.calendar
    if calendar is not None:  # a disconnected calendar took its events' fate with it
        provider_for(calendar.connection, settings).delete_event(
            calendar, record.remote_id, record.etag
        )
    db.session.delete(record)
    db.session.flush()


# --- what should exist -----------------------------------------------------------------


def _wanted(booking: Booking) -> dict[int, Wanted]:
    if booking.status not in EVENT_STATUSES or booking.location_mode == LocationMode.TEAMS:
        return {}
    event = event_for(booking)
    wanted = {}
    for person in booking.internal_people:
        calendar = write_calendar_for(person)
        if calendar is not None:
            wanted[person.id] = Wanted(calendar, event)
    return wanted


def event_for(booking: Booking) -> EventData:
    tentative = booking.status == Status.PROVISIONAL
    return EventData(
        uid=booking.uid,
        title=(PENDING_PREFIX if tentative else "") + calendar_title(booking),
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        tentative=tentative,
        description=booking.description or "",
        location=booking.location_detail or "",
        sequence=booking.sequence,
    )


def calendar_title(booking: Booking) -> str:
    """The booking's title, always naming its type (seed 000, 5.14.0)."""
    kind = booking.booking_type.name
    title = (booking.title or "").strip()
    if not title or title.casefold() == kind.casefold():
        return kind
    return title if kind.casefold() in title.casefold() else f"{kind}: {title}"


def write_calendar_for(person: User) -> LinkedCalendar | None:
    """The calendar that receives this person's bookings: the one they chose among their own
    links, else their organisation Microsoft 365 calendar unless they linked Microsoft
    themselves (the personal link takes priority, seed 000)."""
    rows = db.session.scalars(
        select(LinkedCalendar)
        .join(Connection, Connection.id == LinkedCalendar.connection_id)
        .where(LinkedCalendar.person_id == person.id)
        .order_by(LinkedCalendar.id)
    ).all()
    chosen = [
        c for c in rows if c.receives_bookings and c.writable and not c.connection.is_organisation
    ]
    if chosen:
        return chosen[0]
    if any(c.connection.kind == ConnectionKind.MICROSOFT for c in rows):
        return None
    organisation = [c for c in rows if c.connection.is_organisation]
    return organisation[0] if organisation else None


# --- faults ----------------------------------------------------------------------------


def _connection_of(record: RemoteEvent | None, want: Wanted | None) -> Connection | None:
    if want is not None:
        return want.calendar.connection
    if record is not None and record.calendar is not None:
        return record.calendar.connection
    return None


def _mark_relink(connection: Connection | None, exc: ProviderError) -> None:
    if connection is not None:
        mark_needs_relink(connection, f"Could not write a booking: {exc}", utcnow())


def _note_error(connection: Connection | None, exc: ProviderError) -> None:
    if connection is None:
        return
    log.warning("write-back to connection %s failed: %s", connection.id, exc)
    connection.last_error = f"Could not write a booking: {exc}"
    connection.last_error_at = utcnow()
