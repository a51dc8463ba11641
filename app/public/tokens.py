"""Private links for visitors (S5): unguessable, expiring, single-purpose, stored as hashes.

Plaintext tokens exist only in the outbox row that carries the link to the (future) mailer:
in the database, never in logs. ``public.*`` outbox kinds have no logging handler, and
nothing here logs a token or a URL holding one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update

from app.bookings.models import Booking
from app.database import utcnow
from app.extensions import db
from app.public.models import LinkToken
from app.security import hash_token, new_token


class Purpose(StrEnum):
    MANAGE = "manage"
    CONFIRM = "confirm"


class LinkState(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"  # tampered, never issued, or for another purpose
    EXPIRED = "expired"
    USED = "used"


def issue(booking: Booking, purpose: Purpose, expires_at: datetime) -> str:
    """A new token for ``booking``; returns the plaintext, stores only its hash."""
    token = new_token(f"sb{purpose.value[0]}")
    db.session.add(
        LinkToken(
            booking=booking,
            purpose=purpose.value,
            token_hash=hash_token(token),
            expires_at=expires_at,
        )
    )
    return token


def lookup(token: str, purpose: Purpose, now: datetime | None = None):
    """``(state, LinkToken | None)``; the row only when the state is OK."""
    if not token or len(token) > 100:
        return LinkState.UNKNOWN, None
    row = db.session.scalars(
        select(LinkToken).where(LinkToken.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or row.purpose != purpose.value:
        return LinkState.UNKNOWN, None
    if row.used_at is not None:
        return LinkState.USED, None
    if row.expires_at <= (now or utcnow()):
        return LinkState.EXPIRED, None
    return LinkState.OK, row


def use_up(row: LinkToken, now: datetime | None = None) -> bool:
    """Mark a single-use link used: True for the one request that did, False when another
    got there first (a conditional update, so this holds across processes and databases)."""
    now = now or utcnow()
    result = db.session.execute(
        update(LinkToken)
        .where(LinkToken.id == row.id, LinkToken.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def move_expiry(booking: Booking, purpose: Purpose, expires_at: datetime) -> None:
    """Unused links of ``booking`` now expire at ``expires_at`` (a rescheduled booking)."""
    for row in db.session.scalars(
        select(LinkToken).where(
            LinkToken.booking_id == booking.id,
            LinkToken.purpose == purpose.value,
            LinkToken.used_at.is_(None),
        )
    ):
        row.expires_at = expires_at
