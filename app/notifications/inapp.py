"""The bell (N1 in-app channel): each person's notifications, their unread count, marking read.

Every function takes the signed-in person's id and only ever touches that person's rows: a
notification id from someone else is ``NotFound`` (a 404), exactly like an id that does not
exist, so ids cannot be probed. The rows themselves are written by the planner from outbox
messages; this module only reads them and stamps ``read_at``.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.database import utcnow
from app.extensions import db
from app.notifications.models import Notification

PAGE_SIZE = 100


class NotFound(LookupError):
    """No such notification for this person (missing, or somebody else's)."""


def unread_count(user_id: int) -> int:
    """The badge number: one COUNT over the (user_id, read_at) index, cheap enough to poll."""
    query = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return db.session.scalar(query) or 0


def latest(user_id: int, limit: int = PAGE_SIZE) -> list[Notification]:
    """The person's newest notifications first (ties broken by id, so the order is stable)."""
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def own(user_id: int, notification_id: int) -> Notification:
    """One of the person's notifications, or ``NotFound``."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise NotFound(notification_id)
    return notification


def mark_read(user_id: int, notification_id: int) -> Notification:
    """Mark one read; reading it again keeps the first time it was read."""
    notification = own(user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()
    return notification


def mark_all_read(user_id: int) -> int:
    """Mark every unread notification of the person read in one statement; returns how many."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount or 0


def link_for(notification: Notification) -> str | None:
    """Where the notification leads: its stored path when it is one inside Slotbook, else the
    booking's page. A stored URL pointing elsewhere (``//host``, ``javascript:``) is ignored,
    so a bad row can never turn the list into a link to another site."""
    url = notification.url or ""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    if notification.booking_id is not None:
        return f"/bookings/{notification.booking_id}"
    return None
