"""Personal calendar feeds (F1): each person's secret address listing their bookings as ICS.

The address holds a 256-bit random token. Only its SHA-256 is stored (``FeedToken``), so a
leaked database does not open anyone's calendar, and the token is shown to its owner once,
when it is made. Regenerating overwrites the stored hash: the old address is dead at once.

What a feed lists: the bookings a person owns or attends that hold time (provisional,
confirmed, completed) and end no earlier than ``PAST_DAYS`` ago; the future is not cut off.
Cancelled and rejected bookings are left out rather than sent as STATUS:CANCELLED: a
subscribed calendar drops an event that disappears from the feed, while several clients
(Google among them) still draw a cancelled one.

Calendar clients poll feeds every few minutes to hours, so answering "nothing changed" must
be cheap: the ETag is a hash of what the feed is made of (each booking's id, sequence,
status and last change, plus the owner and type details its text uses), read by one narrow
query, and ``If-None-Match`` gets a 304 without the feed being built. The events' DTSTAMP is
the booking's last change, so the same inputs always give the same bytes. A rename of an
attendee shows up at the booking's next change (attendee names are not part of the hash).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select

from app.accounts.models import User
from app.bookings.models import Attendee, Booking, BookingType, Status
from app.database import utcnow
from app.extensions import db, redis_client
from app.notifications import ics
from app.notifications.models import FeedToken
from app.security import hash_token, new_token, tokens_match
from app.urls import absolute_url

TOKEN_PREFIX = "feed"  # noqa: S105 - the readable start of every feed token, not a secret
PAST_DAYS = 60
FEED_STATUSES = (Status.PROVISIONAL, Status.CONFIRMED, Status.COMPLETED)
# Bump when the feed's text changes shape, so clients holding an old copy fetch the new one.
FORMAT_VERSION = "1"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltFeed:
    body: str
    etag: str
    count: int


# --- tokens --------------------------------------------------------------------------------


def rotate(user: User) -> str:
    """Give ``user`` a new feed token and return it; any previous address stops working.

    The caller commits. The plain token exists only in the return value: show it once.
    """
    token = new_token(TOKEN_PREFIX)
    row = db.session.get(FeedToken, user.id)
    if row is None:
        row = FeedToken(user_id=user.id)
        db.session.add(row)
    row.token_hash = hash_token(token)
    row.created_at = utcnow()
    db.session.flush()
    return token


def feed_of(user: User) -> FeedToken | None:
    """The user's feed, if they made one (it holds only the hash and when it was made)."""
    return db.session.get(FeedToken, user.id)


def feed_url(token: str) -> str:
    """The address to subscribe to: ``<SLOTBOOK_BASE_URL>/feeds/<token>.ics``."""
    return absolute_url("feeds.feed", token=token)


def user_for_token(token: str) -> User | None:
    """The active user a feed token belongs to, or None for any token that opens nothing.

    The lookup is by the token's hash (an equality on a unique column leaks nothing useful
    about the token), and the stored hash is then compared in constant time as well.
    """
    if not token.startswith(f"{TOKEN_PREFIX}_") or len(token) > 100:
        return None
    row = db.session.scalars(select(FeedToken).where(FeedToken.token_hash == hash_token(token)))
    row = row.one_or_none()
    if row is None or not tokens_match(token, row.token_hash):
        return None
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user


# --- the feed ------------------------------------------------------------------------------


def _listed(user: User, now: datetime):
    """The bookings a feed lists, as a SQL condition."""
    attending = select(Attendee.booking_id).where(Attendee.user_id == user.id)
    return and_(
        or_(Booking.owner_id == user.id, Booking.id.in_(attending)),
        Booking.status.in_([s.value for s in FEED_STATUSES]),
        Booking.ends_at >= now - timedelta(days=PAST_DAYS),
    )


def _etag(user: User, rows) -> str:
    """A strong ETag over the feed's ingredients (see the module docstring)."""
    digest = hashlib.sha256()
    head = (FORMAT_VERSION, user.id, user.name, current_app.config["SLOTBOOK_BASE_URL"])
    digest.update(repr(head).encode())
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return f'"{digest.hexdigest()[:40]}"'


def _ingredients(booking: FeedEntry) -> tuple:
    owner = booking.owner
    return (
        booking.id,
        booking.sequence,
        str(booking.status),
        booking.updated_at.isoformat() if booking.updated_at else None,
        booking.booking_type.name,
        owner.name if owner else None,
        owner.email if owner else None,
        owner.timezone if owner else None,
    )


def current_etag(user: User, now: datetime | None = None) -> str:
    """The ETag the feed would have now, from one narrow query (no feed is built)."""
    now = now or utcnow()
    rows = db.session.execute(
        select(
            Booking.id,
            Booking.sequence,
            Booking.status,
            Booking.updated_at,
            BookingType.name,
            User.name,
            User.email,
            User.timezone,
        )
        .join(BookingType, BookingType.id == Booking.booking_type_id)
        .outerjoin(User, User.id == Booking.owner_id)
        .where(_listed(user, now))
        .order_by(Booking.starts_at, Booking.id)
    )
    return _etag(
        user,
        (
            (i, seq, str(status), updated.isoformat() if updated else None, *rest)
            for i, seq, status, updated, *rest in rows
        ),
    )


def build(user: User, now: datetime | None = None) -> BuiltFeed:
    """The feed's text and its ETag, both from the same rows."""
    entries = _entries(user, now or utcnow())
    body = ics.feed(user, entries)
    return BuiltFeed(body, _etag(user, (_ingredients(e) for e in entries)), len(entries))


# --- built bodies, kept by ETag ------------------------------------------------------------
#
# Clients that never send If-None-Match (and every client after its cache is cleared) would
# have the whole feed built on each poll. The body is a function of its ETag (same
# ingredients, same bytes), so it is kept in Redis under the ETag itself: a changed feed has a
# new ETag and simply misses, in every worker process at once, with nothing to invalidate.
# Stale entries expire. Redis unreachable: the feed is built, as before (fail open).

BODY_KEY = "slotbook:feed-body:"
BODY_TTL_SECONDS = 6 * 3600
_CACHE_ERRORS = (RedisError, ConnectionError, TimeoutError, OSError)


def answer(user: User, etag: str | None = None) -> tuple[str, str]:
    """The feed's body and ETag: from the cache when the current ETag (``etag``, or read now
    with one narrow query) has a body kept, else built and kept."""
    etag = etag or current_etag(user)
    body = _kept(etag)
    if body is not None:
        return body, etag
    built = build(user)
    _keep(built.etag, built.body)
    return built.body, built.etag


def _kept(etag: str) -> str | None:
    if not current_app.config.get("REDIS_URL"):
        return None
    try:
        raw = redis_client().get(BODY_KEY + etag.strip('"'))
    except _CACHE_ERRORS as exc:
        log.warning("feed body cache unreachable (%s): building the feed", type(exc).__name__)
        return None
    return raw.decode() if raw is not None else None


def _keep(etag: str, body: str) -> None:
    if not current_app.config.get("REDIS_URL"):
        return
    try:
        redis_client().set(BODY_KEY + etag.strip('"'), body.encode(), ex=BODY_TTL_SECONDS)
    except _CACHE_ERRORS as exc:
        log.warning("feed body cache unreachable (%s): not kept", type(exc).__name__)


# --- a light read model --------------------------------------------------------------------
#
# A feed may list thousands of bookings. Loading them as ORM objects with their attendees
# (each with its user and role) took longer than writing the calendar, so the feed reads plain
# rows in two queries into these small records, which ``ics.feed`` reads like bookings.


@dataclass(frozen=True)
class _Owner:
    name: str
    email: str
    timezone: str


@dataclass(frozen=True)
class _Kind:
    name: str


@dataclass(frozen=True)
class _Person:
    display_name: str


@dataclass
class FeedEntry:
    """The parts of a booking its feed event shows."""

    id: int
    uid: str
    sequence: int
    status: str
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    location_mode: str
    location_detail: str
    updated_at: datetime | None
    created_at: datetime | None
    owner_id: int | None
    owner: _Owner | None
    booking_type: _Kind
    attendees: list[_Person] = field(default_factory=list)


def _entries(user: User, now: datetime) -> list[FeedEntry]:
    rows = db.session.execute(
        select(
            Booking.id,
            Booking.uid,
            Booking.sequence,
            Booking.status,
            Booking.title,
            Booking.description,
            Booking.starts_at,
            Booking.ends_at,
            Booking.location_mode,
            Booking.location_detail,
            Booking.updated_at,
            Booking.created_at,
            Booking.owner_id,
            User.name,
            User.email,
            User.timezone,
            BookingType.name,
        )
        .join(BookingType, BookingType.id == Booking.booking_type_id)
        .outerjoin(User, User.id == Booking.owner_id)
        .where(_listed(user, now))
        .order_by(Booking.starts_at, Booking.id)
    )
    entries = {}
    for *fields, owner_name, owner_email, owner_zone, kind in rows:
        owner = _Owner(owner_name, owner_email, owner_zone) if fields[-1] is not None else None
        entries[fields[0]] = FeedEntry(*fields, owner=owner, booking_type=_Kind(kind))
    people = db.session.execute(
        select(Attendee.booking_id, User.name, Attendee.name, Attendee.email)
        .outerjoin(User, User.id == Attendee.user_id)
        .where(Attendee.booking_id.in_(select(Booking.id).where(_listed(user, now))))
        .order_by(Attendee.id)
    )
    for booking_id, user_name, guest_name, guest_email in people:
        entry = entries.get(booking_id)
        if entry is not None:
            entry.attendees.append(_Person(user_name or guest_name or guest_email or "Guest"))
    return list(entries.values())
