"""Whose calendar data can be trusted right now (K4: fail closed).

An agent whose busy data is older than three sync intervals, was never read, or whose link
needs renewing offers no slots: offering time we cannot vouch for leads to double bookings.
Staff are told why, so a missing slot is never a mystery.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Select, select

from app.admin.settings import get_setting
from app.connections.models import Connection, LinkedCalendar
from app.database import BulkReader, driver_rows, utcnow
from app.extensions import db
from app.sql_values import id_list, member

STALE_AFTER_INTERVALS = 3


def sync_interval() -> timedelta:
    return timedelta(minutes=int(get_setting("cache_update_interval_minutes")))


@cache
def _calendars(dialect: str) -> Select:
    """Built once per database (a statement object keeps its cache key; availability runs
    this per request), the ids bound as one value (:mod:`app.sql_values`), the instant as
    text (:class:`BulkReader`), so its rows are the driver's own (:func:`driver_rows`)."""
    return (
        select(
            LinkedCalendar.person_id,
            LinkedCalendar.name,
            BulkReader(dialect).instant(LinkedCalendar.last_synced_at),
            Connection.needs_relink,
        )
        .join(Connection, Connection.id == LinkedCalendar.connection_id)
        .where(
            member(LinkedCalendar.person_id, dialect),
            LinkedCalendar.use_for_availability.is_(True),
        )
        .order_by(LinkedCalendar.id)
    )


def stale_people(
    person_ids: Iterable[int], now: datetime | None = None, interval: timedelta | None = None
) -> dict[int, str]:
    """For each person whose calendar data cannot be trusted, a sentence saying why.
    ``interval``: the sync interval when the caller has already read the settings."""
    ids = list(set(person_ids))
    if not ids:
        return {}
    now = now or utcnow()
    limit = now - STALE_AFTER_INTERVALS * (interval if interval is not None else sync_interval())
    dialect = db.session.connection().dialect.name
    rows = driver_rows(_calendars(dialect), {"ids": id_list(dialect, ids)})
    reasons: dict[int, str] = {}
    for person_id, name, synced_text, needs_relink in rows:
        if person_id in reasons:
            continue
        synced_at = None if synced_text is None else datetime.fromisoformat(synced_text)
        label = f"calendar “{name}”" if name else "linked calendar"
        if needs_relink:
            reasons[person_id] = f"Their {label} needs to be linked again."
        elif synced_at is None:
            reasons[person_id] = f"Their {label} has not been read yet."
        elif synced_at < limit:
            reasons[person_id] = f"Their {label} has not synced since {synced_at:%d %b %H:%M} UTC."
    return reasons
