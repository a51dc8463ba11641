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

Each delivery is split in three, so no calendar call ever runs inside a database
transaction (a slow CalDAV or Graph server must not hold the SQLite write lock): ``plan``
reads the booking, its records and each person's write calendar and builds the providers;
``_run`` makes the calls with no transaction open and returns what happened; ``_record``
stores it (event records, connections needing re-linking, errors) in a short transaction.
The outbox delivers the messages of one booking one at a time (their ordering key), so
two deliveries never write two versions of one booking at once.

Calls are made with one HTTP attempt and no waiting for Retry-After: a slow or throttled
provider is retried later by the outbox (which honours the provider's Retry-After) instead
of being waited for here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select

from app.accounts.models import User
from app.admin.settings import get_setting
from app.bookings.models import Attendee, Booking, LocationMode, Status
from app.connections.models import (
    PERSONAL_KIND_OF,
    Connection,
    LinkedCalendar,
    RemoteEvent,
)
from app.connections.providers import provider_for, provider_settings
from app.connections.providers.base import (
    AuthFailed,
    EventData,
    EventMissing,
    Provider,
    ProviderError,
    RateLimited,
    TemporaryFailure,
    WrittenEvent,
)
from app.connections.sync import mark_needs_relink
from app.database import utcnow
from app.extensions import db
from app.outbox import OutboxMessage, PartialFailure, Send, emit, handles

log = logging.getLogger(__name__)

PENDING_PREFIX = "[PENDING] "
RESYNC_KIND = "booking.calendar_resync"  # no notification rule matches it
# A no-show keeps its event: the person's time was taken waiting, as for a completed booking.
EVENT_STATUSES = frozenset({Status.PROVISIONAL, Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW})


class WritebackRetry(PartialFailure):
    """Some calendars could not be written for a passing reason; the outbox tries again
    (what the other calendars took is recorded)."""


@dataclass(frozen=True)
class Wanted:
    calendar: LinkedCalendar
    event: EventData


@dataclass(frozen=True)
class _Record:
    """What we know we wrote for one person (a ``RemoteEvent`` row, as plain values)."""

    remote_id: str
    etag: str | None
    calendar_id: int | None
    title: str
    starts_at: datetime
    ends_at: datetime
    tentative: bool

    def matches(self, event: EventData) -> bool:
        return (self.title, self.starts_at, self.ends_at, self.tentative) == (
            event.title,
            event.starts_at,
            event.ends_at,
            event.tentative,
        )


@dataclass
class _Task:
    """One person's calendar work, with everything the calls need already loaded."""

    person_id: int
    record: _Record | None
    old_calendar: LinkedCalendar | None  # where the recorded event is (None: disconnected)
    old_provider: Provider | None
    want: Wanted | None
    new_provider: Provider | None


@dataclass
class _Outcome:
    """What one person's calls did, for ``_record`` to store."""

    person_id: int
    drop_record: bool = False
    written: tuple[int, WrittenEvent, EventData] | None = None  # calendar id, result, event
    relink: list[tuple[int, str]] = field(default_factory=list)  # connection id, message
    errors: list[tuple[int, str]] = field(default_factory=list)
    retry: ProviderError | None = None
    rotated: dict[int, str] = field(default_factory=dict)  # connection id -> refresh token


@handles("booking.*", "attendee.*")
def write_back_message(message: OutboxMessage) -> Send | None:
    booking = db.session.get(Booking, message.payload.get("booking_id"))
    if booking is None:
        return None
    return reconcile(booking)


@handles("connection.write_calendar_changed")
def write_back_person(message: OutboxMessage) -> None:
    """A person's write calendar changed: bring each of their upcoming bookings into line
    (write into the new calendar, remove from the old). Finished bookings stay as they are.

    One outbox message per booking rather than all of them here: each is then written in
    its own short delivery, and one calendar's trouble retries only that booking.
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


def reconcile(booking: Booking) -> Send | None:
    """The calls that make each attendee's calendar match this booking, as a ``Send`` for
    the outbox (None when every calendar already matches).

    Its record step raises ``WritebackRetry`` when a calendar failed for a passing reason
    (after storing what the others took); a refused login marks that connection for
    re-linking instead.
    """
    tasks = plan(booking)
    if not tasks:
        return None
    booking_id = booking.id
    return Send(io=lambda: [_run(task) for task in tasks], record=lambda o: _record(booking_id, o))


def plan(booking: Booking) -> list[_Task]:
    """Database only: who needs a call, to which calendar, through which provider."""
    settings = replace(provider_settings(), http_attempts=1, max_retry_wait=0, timeout=10)
    existing = {
        e.person_id: e
        for e in db.session.scalars(select(RemoteEvent).where(RemoteEvent.booking_id == booking.id))
    }
    wanted = _wanted(booking) if get_setting("two_way_sync") else {}
    tasks = []
    for person_id in sorted(set(existing) | set(wanted)):
        row, want = existing.get(person_id), wanted.get(person_id)
        record = _snapshot(row) if row is not None else None
        if (
            record is not None
            and want is not None
            and record.calendar_id == want.calendar.id
            and record.matches(want.event)
        ):
            continue  # already right: no call
        old_calendar = row.calendar if row is not None else None
        tasks.append(
            _Task(
                person_id=person_id,
                record=record,
                old_calendar=old_calendar,
                old_provider=_provider(old_calendar, settings),
                want=want,
                new_provider=_provider(want.calendar if want else None, settings),
            )
        )
    return tasks


def _snapshot(row: RemoteEvent) -> _Record:
    return _Record(
        row.remote_id,
        row.etag,
        row.calendar_id,
        row.title,
        row.starts_at,
        row.ends_at,
        row.tentative,
    )


def _provider(calendar: LinkedCalendar | None, settings) -> Provider | None:
    return provider_for(calendar.connection, settings) if calendar is not None else None


# --- the calls (no transaction open) -----------------------------------------------------


def _run(task: _Task) -> _Outcome:
    """One person's calls, mirroring what must exist; faults become part of the outcome."""
    outcome = _Outcome(task.person_id)
    record, want = task.record, task.want
    try:
        if record is not None and (want is None or record.calendar_id != want.calendar.id):
            _remove(task, outcome, moving=want is not None)
            record = None
        if want is not None:
            _write(task, record, want, outcome)
    except AuthFailed as exc:
        outcome.relink.append((_connection_id(task), str(exc)))
    except (RateLimited, TemporaryFailure) as exc:
        outcome.retry = exc
    except ProviderError as exc:  # e.g. a read-only calendar: tell the owner, go on
        outcome.errors.append((_connection_id(task), str(exc)))
    for provider in (task.old_provider, task.new_provider):
        if provider is not None and getattr(provider, "new_secret", None):
            outcome.rotated[provider.connection.id] = provider.new_secret
    return outcome


def _remove(task: _Task, outcome: _Outcome, moving: bool) -> None:
    """Delete our old event. Its faults belong to the old calendar's connection, not to the
    one the event moves to: a refused login marks the old connection for re-linking and our
    record is dropped (we cannot delete the event any more), so the move goes on; a passing
    fault raises for a retry. Any other refusal is noted on the old connection and, when the
    event moves, the record is dropped too so the new calendar still gets its event."""
    calendar, provider = task.old_calendar, task.old_provider
    if calendar is None or provider is None:  # a disconnected calendar took its events along
        outcome.drop_record = True
        return
    old_connection = calendar.connection.id
    try:
        provider.delete_event(calendar, task.record.remote_id, task.record.etag)
    except (RateLimited, TemporaryFailure):
        raise
    except AuthFailed as exc:
        outcome.relink.append((old_connection, str(exc)))
    except ProviderError as exc:
        if not moving:
            raise  # noted against the old connection by _run; a later try may manage
        outcome.errors.append((old_connection, str(exc)))
    outcome.drop_record = True


def _write(task: _Task, record: _Record | None, want: Wanted, outcome: _Outcome) -> None:
    provider, event = task.new_provider, want.event
    if record is None:
        written = provider.create_event(want.calendar, event)
    elif not record.matches(event):
        try:
            written = provider.update_event(want.calendar, record.remote_id, event, record.etag)
        except EventMissing:  # deleted by hand in the calendar: the booking still stands
            written = provider.create_event(want.calendar, event)
    else:
        return
    outcome.written = (want.calendar.id, written, event)


def _connection_id(task: _Task) -> int | None:
    """The connection a fault of this task is charged to: the new calendar's, else the old."""
    if task.want is not None:
        return task.want.calendar.connection.id
    if task.old_calendar is not None:
        return task.old_calendar.connection.id
    return None


# --- storing what happened (a short transaction) -------------------------------------------


def _record(booking_id: int, outcomes: list[_Outcome]) -> None:
    """Store each person's outcome; raise ``WritebackRetry`` for passing faults, after."""
    now = utcnow()
    for outcome in outcomes:
        row = db.session.scalars(
            select(RemoteEvent)
            .where(RemoteEvent.booking_id == booking_id, RemoteEvent.person_id == outcome.person_id)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if outcome.written is not None:
            calendar_id, written, event = outcome.written
            if row is None:
                row = RemoteEvent(booking_id=booking_id, person_id=outcome.person_id)
                db.session.add(row)
            row.calendar_id = calendar_id
            row.remote_id, row.etag = written.remote_id, written.etag
            row.title, row.tentative = event.title, event.tentative
            row.starts_at, row.ends_at = event.starts_at, event.ends_at
        elif outcome.drop_record and row is not None:
            db.session.delete(row)
        for connection_id, text in outcome.relink:
            if (connection := _connection(connection_id)) is not None:
                mark_needs_relink(connection, f"Could not write a booking: {text}", now)
        for connection_id, text in outcome.errors:
            _note_error(_connection(connection_id), text, now)
        for connection_id, secret in outcome.rotated.items():
            if (connection := _connection(connection_id)) is not None:
                connection.store_secret(secret)  # Microsoft rotates refresh tokens
    db.session.flush()
    retry = [o.retry for o in outcomes if o.retry is not None]
    if retry:
        wait = max((getattr(e, "retry_after", 0) for e in retry), default=0)
        raise WritebackRetry("; ".join(str(e) for e in retry), retry_after=wait)


def _connection(connection_id: int | None) -> Connection | None:
    """The connection as it is now (not as ``plan`` loaded it, before the calls)."""
    if connection_id is None:
        return None
    return db.session.get(Connection, connection_id, populate_existing=True)


# --- what should exist -----------------------------------------------------------------


def _wanted(booking: Booking) -> dict[int, Wanted]:
    if booking.status not in EVENT_STATUSES or teams_takes_over(booking):
        return {}
    event = event_for(booking)
    wanted = {}
    for person in booking.internal_people:
        calendar = write_calendar_for(person)
        if calendar is not None:
            wanted[person.id] = Wanted(calendar, event)
    return wanted


def teams_takes_over(booking: Booking) -> bool:
    """A Teams booking's invitation comes from Microsoft, not from us (K5), unless its
    meeting could not be made: then our events and .ics stand in (issue [10]). The meeting
    row is read through the relationship the Teams package adds, so bookings needs no
    import of it."""
    if booking.location_mode != LocationMode.TEAMS:
        return False
    meeting = getattr(booking, "online_meeting", None)
    return meeting is None or meeting.state != "failed"


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
    links, else their organisation calendar (Microsoft 365 or Google Workspace) unless they
    linked that provider themselves (the personal link takes priority, seed 000)."""
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
    personal = {c.connection.kind for c in rows}
    organisation = [
        c
        for c in rows
        if c.connection.is_organisation and PERSONAL_KIND_OF[c.connection.kind] not in personal
    ]
    return organisation[0] if organisation else None


# --- faults ----------------------------------------------------------------------------


def _note_error(connection: Connection | None, text: str, now: datetime) -> None:
    if connection is None:
        return
    log.warning("write-back to connection %s failed: %s", connection.id, text)
    connection.last_error = f"Could not write a booking: {text}"
    connection.last_error_at = now
