"""The busy cache job (K4): read each connection's calendars and store their busy time.

One call syncs one connection in one transaction: it reads every calendar that counts for
availability (incrementally where the provider keeps a cursor), replaces the cached busy
blocks of what changed, and records the connection's health. Provider faults never escape
(K6): a rate limit waits for Retry-After, a refused login marks the connection for
re-linking and tells its owner, an expired cursor falls back to a full read, anything else
backs off. ``flask sync run`` and the worker's schedule are the two callers.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from app.accounts.models import User
from app.admin.settings import get_setting
from app.connections.freshness import sync_interval
from app.connections.models import (
    PERSONAL_KIND_OF,
    BusyBlock,
    BusyStatus,
    Connection,
    ConnectionKind,
    LinkedCalendar,
    RemoteEvent,
)
from app.connections.providers import provider_for, provider_settings
from app.connections.providers.base import (
    AuthFailed,
    CursorExpired,
    Provider,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    SyncResult,
)
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import emit
from app.security import DecryptionError

log = logging.getLogger(__name__)

PAST = timedelta(days=1)  # keep yesterday: a booking moved into the past still shows clashes
MAX_HORIZON_DAYS = 400
MAX_BACKOFF = timedelta(hours=6)
OUTGROWN_AFTER = timedelta(days=1)


@dataclass
class SyncReport:
    """What one connection's sync did, for the CLI summary and the health screen."""

    connection_id: int
    calendars: int = 0
    added: int = 0  # busy blocks written
    removed: int = 0  # busy blocks deleted
    requests: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def due_connections(now: datetime | None = None) -> list[int]:
    """Ids of connections whose next sync time has come (never-synced ones first)."""
    now = now or utcnow()
    query = (
        select(Connection.id)
        .where((Connection.next_sync_at.is_(None)) | (Connection.next_sync_at <= now))
        .order_by(Connection.next_sync_at.is_not(None), Connection.next_sync_at, Connection.id)
    )
    return list(db.session.scalars(query))


def request_sync(connection: Connection) -> None:
    """Ask for a sync as soon as the scheduler next looks (within a minute); no Redis needed."""
    connection.next_sync_at = utcnow()


def write_calendar_changed(person_id: int | None) -> None:
    """Where this person's bookings are written may have changed (a calendar linked, chosen,
    re-linked or removed): write-back brings their upcoming bookings into line."""
    if person_id is not None:
        emit("connection.write_calendar_changed", person_id=person_id)


def sync_window(now: datetime) -> tuple[datetime, datetime]:
    horizon = min(int(get_setting("booking_horizon_days")), MAX_HORIZON_DAYS)
    return now - PAST, now + timedelta(days=horizon)


def sync_connection(connection_id: int, now: datetime | None = None) -> SyncReport:
    """Sync one connection now, record its health and commit. Provider faults become health
    (``report.error``), never exceptions.

    Network calls happen outside any writing transaction: on SQLite the write lock is held
    only for the short step that stores the result, so a slow calendar server never makes a
    booking wait. Whatever changed in between (a calendar unticked, the link removed) is
    re-read under the lock before anything is stored.
    """
    now = now or utcnow()
    report = SyncReport(connection_id)
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        db.session.rollback()
        report.error = "The connection no longer exists."
        return report
    results: dict[int, SyncResult | ProviderError] = {}
    used: dict[int, str | None] = {}  # the cursor each calendar was read from
    failure: Exception | None = None
    provider: Provider | None = None
    try:
        # One retry within a sync is enough: the next sync is only an interval away.
        provider = provider_for(connection, replace(provider_settings(), http_attempts=2))
        if connection.is_organisation:
            tenant = _organisation_members(connection, provider)
            _end_read()
            begin_write()
            _match_tenant_users(_reload(connection_id), tenant)
            db.session.commit()
        wanted = [c for c in connection.calendars if c.use_for_availability]
        used = {c.id: c.sync_cursor for c in wanted}
        _end_read()
        results = _read(provider, wanted, now)
    except Exception as exc:  # recorded below, under the write lock
        failure = exc
    new_secret = getattr(provider, "new_secret", None)

    _end_read()
    begin_write()
    connection = _reload(connection_id)
    if connection is None:
        db.session.rollback()
        report.error = "The connection was removed while it was being read."
        return report
    connection.last_attempt_at = now
    if new_secret:
        connection.store_secret(new_secret)  # Microsoft rotates refresh tokens
    if failure is None:
        connection.reseal_if_old()  # it opened, so an older key is re-sealed with the newest
        failed = _store(connection, results, used, now, report)
        if failed and failed == report.calendars:  # nothing could be read: that is a fault
            report.error = report.warnings.pop(0)
            _record_failure(connection, report.error, now)
        else:
            _record_success(connection, report, now)
    else:
        report.error = _record_fault(connection, failure, now)
    db.session.commit()
    return report


def _end_read() -> None:
    """Finish the read-only transaction (commit keeps loaded objects usable)."""
    db.session.commit()


def _reload(connection_id: int) -> Connection | None:
    """The connection and its calendars as they are now (a person may have changed their
    choices while we were reading)."""
    connection = db.session.get(Connection, connection_id, populate_existing=True)
    if connection is not None:
        db.session.scalars(
            select(LinkedCalendar)
            .where(LinkedCalendar.connection_id == connection_id)
            .execution_options(populate_existing=True)
        ).all()
    return connection


def _record_fault(connection: Connection, exc: Exception, now: datetime) -> str:
    if isinstance(exc, AuthFailed):
        mark_needs_relink(connection, str(exc), now)
    elif isinstance(exc, RateLimited):
        _record_failure(connection, str(exc), now, wait=timedelta(seconds=exc.retry_after))
    elif isinstance(exc, ProviderError):
        _record_failure(connection, str(exc), now)
    elif isinstance(exc, DecryptionError):
        _record_failure(
            connection,
            "The saved credentials cannot be opened: the encryption key that sealed them is "
            "no longer in SLOTBOOK_ENCRYPTION_KEYS. Restore it, or link the calendar again.",
            now,
        )
    else:  # a bug or an answer nobody foresaw: record it, go on with the other connections
        log.error("sync of connection %s failed", connection.id, exc_info=exc)
        _record_failure(connection, f"Unexpected error ({type(exc).__name__}).", now)
    return connection.last_error or ""


# --- reading ---------------------------------------------------------------------------


def _read(
    provider: Provider, calendars: list[LinkedCalendar], now: datetime
) -> dict[int, SyncResult | ProviderError]:
    if not calendars:
        return {}
    start, end = sync_window(now)
    outgrown = [c for c in calendars if c.sync_cursor and _outgrown(c, end)]
    rest = [c for c in calendars if c not in outgrown]
    results = provider.read_busy_many(rest, start, end) if rest else {}
    for calendar in outgrown:
        results[calendar.id] = _full_read(provider, calendar, start, end)
    for calendar in calendars:
        if isinstance(results.get(calendar.id), CursorExpired):
            # The provider forgot our place (Graph 410, CalDAV invalid sync-token): read it
            # all again. A full result replaces everything, so nothing deleted comes back.
            results[calendar.id] = _full_read(provider, calendar, start, end)
    return results


def _outgrown(calendar: LinkedCalendar, end: datetime) -> bool:
    """The window has moved a day past what the last full read expanded (at most one full
    read a day per calendar; a changes-only read would leave the newest days open)."""
    return calendar.covered_until is None or end > calendar.covered_until + OUTGROWN_AFTER


def _full_read(provider, calendar, start, end) -> SyncResult | ProviderError:
    try:
        return provider.read_busy(calendar, start, end, None)
    except (AuthFailed, RateLimited):
        raise
    except ProviderError as exc:
        return exc


def _store(
    connection: Connection,
    results: dict[int, SyncResult | ProviderError],
    used: dict[int, str | None],
    now: datetime,
    report: SyncReport,
) -> int:
    """Store what was read; returns how many calendars could not be read."""
    failed = 0
    window_end = sync_window(now)[1]
    for calendar in connection.calendars:
        if not calendar.use_for_availability:
            report.removed += _clear(calendar)
            calendar.sync_cursor = None
            continue
        report.calendars += 1
        result = results.get(calendar.id)
        if result is None or calendar.sync_cursor != used.get(calendar.id):
            continue  # ticked, or reset, while we were reading: the next sync reads it
        if isinstance(result, ProviderError):
            report.warnings.append(f"{calendar.name or 'Calendar'}: {result}")
            calendar.last_error = str(result)[:2000]  # its person sees why (K6)
            failed += 1
            continue
        calendar.last_error = None
        _apply(connection, calendar, result, report)
        calendar.sync_cursor = result.cursor
        calendar.last_synced_at = now
        if result.full:
            calendar.covered_until = window_end
    return failed


def _apply(
    connection: Connection, calendar: LinkedCalendar, result: SyncResult, report: SyncReport
) -> None:
    if result.full:
        report.removed += _clear(calendar)
    keep_titles = connection.is_organisation and bool(get_setting("show_event_details"))
    own_ids, own_times = _own_events(calendar.person_id)
    rows = []
    for change in result.changes:
        if not result.full:
            report.removed += db.session.execute(
                delete(BusyBlock).where(
                    BusyBlock.calendar_id == calendar.id, BusyBlock.event_key == change.key
                )
            ).rowcount
        if change.deleted or change.key in own_ids:
            continue  # gone, or an event Slotbook wrote for one of this person's bookings
        for block in change.blocks:
            if block.status == BusyStatus.FREE or block.ends_at <= block.starts_at:
                continue
            if (block.starts_at, block.ends_at) in own_times:
                continue  # our own event read back (getSchedule items carry no id)
            title = (block.title or "").strip()[:300] if keep_titles else ""
            rows.append(
                BusyBlock(
                    person_id=calendar.person_id,
                    calendar_id=calendar.id,
                    event_key=change.key[:1000],
                    starts_at=block.starts_at,
                    ends_at=block.ends_at,
                    status=block.status,
                    source=connection.source,
                    title=title or None,  # C2: only organisation titles, only when enabled
                )
            )
    db.session.add_all(rows)
    report.added += len(rows)
    report.requests += result.requests
    report.warnings.extend(result.warnings)


def _own_events(person_id: int) -> tuple[set[str], set[tuple[datetime, datetime]]]:
    """Remote ids and times of the events Slotbook wrote into this person's calendars:
    reading them back as "busy" would make every booking conflict with itself. Times catch
    what carries no id (getSchedule items, a subscribed copy of the calendar); an outside
    event at exactly a written booking's times is taken for ours."""
    rows = db.session.execute(
        select(RemoteEvent.remote_id, RemoteEvent.starts_at, RemoteEvent.ends_at).where(
            RemoteEvent.person_id == person_id
        )
    ).all()
    return {r.remote_id for r in rows}, {(r.starts_at, r.ends_at) for r in rows}


def _clear(calendar: LinkedCalendar) -> int:
    return db.session.execute(
        delete(BusyBlock).where(BusyBlock.calendar_id == calendar.id)
    ).rowcount


def _organisation_members(connection: Connection, provider: Provider) -> list[RemoteCalendar]:
    """Who an organisation link could cover. Microsoft lists the tenant's users; Google
    Workspace covers the active people whose email is in its domains (a directory read
    would need an admin scope), once the provider has checked its key opens."""
    if connection.kind != ConnectionKind.GOOGLE_ORG:
        return provider.list_calendars()
    domains = {d.lower() for d in connection.domains or []}
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)).all()
    provider.list_calendars()
    return [
        RemoteCalendar(u.email.lower(), u.name or u.email)
        for u in users
        if u.email and u.email.rpartition("@")[2].lower() in domains
    ]


def _primary_allows(connection: Connection) -> Callable[[str], bool]:
    """Setting ``primary_calendar_provider`` (seed 002), as a test of one email: the
    organisation link of the primary provider covers people; with "both", Google Workspace
    covers its domains and Microsoft 365 everyone else in its tenant."""
    primary = get_setting("primary_calendar_provider")
    google = connection.kind == ConnectionKind.GOOGLE_ORG
    if primary != "both":
        covers = primary == ("google" if google else "microsoft")
        return lambda email: covers
    if google:
        return lambda email: True
    workspace = db.session.scalars(
        select(Connection).where(Connection.kind == ConnectionKind.GOOGLE_ORG)
    ).first()
    domains = {d.lower() for d in (workspace.domains or [])} if workspace else set()
    return lambda email: email.rpartition("@")[2].lower() not in domains


def _match_tenant_users(connection: Connection | None, tenant: list[RemoteCalendar]) -> None:
    """Give every Slotbook user whose email is in the tenant an organisation calendar (K1),
    except people with their own link at the same provider, which takes priority (seed
    000), and people the primary provider setting gives to the other organisation link."""
    if connection is None:
        return
    allows = _primary_allows(connection)
    by_email = {c.remote_id.lower(): c for c in tenant if allows(c.remote_id)}
    personal = set(
        db.session.scalars(
            select(Connection.user_id).where(Connection.kind == PERSONAL_KIND_OF[connection.kind])
        )
    )
    users = db.session.scalars(
        select(User).where(func.lower(User.email).in_(list(by_email)), User.active.is_(True))
    ).all()
    eligible = {u.id: u for u in users if u.id not in personal}
    existing = {c.person_id: c for c in connection.calendars}
    for person_id, calendar in existing.items():
        if person_id not in eligible:
            connection.calendars.remove(calendar)  # cascade removes its busy blocks
    for person_id in set(existing) ^ set(eligible):
        write_calendar_changed(person_id)  # joined or left the organisation's coverage
    for person_id, user in eligible.items():
        if person_id not in existing:
            remote = by_email[user.email.lower()]
            connection.calendars.append(
                LinkedCalendar(
                    person_id=person_id,
                    remote_id=remote.remote_id,
                    name=remote.name or user.email,
                    use_for_availability=True,
                    receives_bookings=False,
                )
            )


# --- health ----------------------------------------------------------------------------


def _record_success(connection: Connection, report: SyncReport, now: datetime) -> None:
    connection.last_success_at = now
    connection.failure_count = 0
    connection.needs_relink = False
    connection.last_error = None
    connection.warnings = report.warnings[:20]
    connection.next_sync_at = now + sync_interval()


def _record_failure(
    connection: Connection, message: str, now: datetime, wait: timedelta | None = None
) -> None:
    connection.failure_count += 1
    connection.last_error = message
    connection.last_error_at = now
    if wait is None:
        backoff = sync_interval() * 2 ** min(connection.failure_count - 1, 6)
        wait = min(backoff, MAX_BACKOFF) * (0.8 + 0.4 * random.random())  # jitter spreads retries
    connection.next_sync_at = now + wait


def mark_needs_relink(connection: Connection, message: str, now: datetime) -> None:
    """The provider refused our login (K6): flag the connection and tell its owner, once."""
    first_time = not connection.needs_relink
    connection.needs_relink = True
    _record_failure(connection, message, now)
    if first_time:
        # The owner sees a banner at once; the notifications feature mails it from here.
        emit(
            "connection.needs_relink",
            connection_id=connection.id,
            user_id=connection.user_id,
            connection_kind=connection.kind,
        )


def sync_due(now: datetime | None = None) -> list[SyncReport]:
    """Sync every due connection, one transaction each."""
    ids = due_connections(now)
    db.session.commit()
    return [sync_connection(i, now) for i in ids]
