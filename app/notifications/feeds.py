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
from itertools import repeat

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased, lazyload

from app.accounts.models import User
from app.bookings.models import Attendee, Booking, BookingType, Status
from app.database import BulkReader, collector_paused, utcnow
from app.extensions import db, redis_client
from app.notifications import feed_writer
from app.notifications.feed_writer import FeedRow
from app.notifications.models import FeedToken
from app.security import hash_token, new_token, tokens_match
from app.urls import absolute_url

TOKEN_PREFIX = "feed"  # noqa: S105 - the readable start of every feed token, not a secret
PAST_DAYS = 60
FEED_STATUSES = (Status.PROVISIONAL, Status.CONFIRMED, Status.COMPLETED)
# Bump when the feed's text changes shape, so clients holding an old copy fetch the new one.
FORMAT_VERSION = "1"
log = logging.getLogger(__name__)


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
    found = db.session.execute(
        select(User, FeedToken.token_hash)
        .join(FeedToken, FeedToken.user_id == User.id)
        .where(FeedToken.token_hash == hash_token(token))
        .options(lazyload(User.role))  # one statement: a feed needs no role or permissions
    ).one_or_none()
    if found is None or not tokens_match(token, found.token_hash):
        return None
    user = found[0]
    return user if user.active else None


# --- the feed ------------------------------------------------------------------------------


def _listed(user: User, now: datetime):
    """The bookings a feed lists, as a SQL condition."""
    attending = select(Attendee.booking_id).where(Attendee.user_id == user.id)
    return and_(
        or_(Booking.owner_id == user.id, Booking.id.in_(attending)),
        Booking.status.in_([s.value for s in FEED_STATUSES]),
        Booking.ends_at >= now - timedelta(days=PAST_DAYS),
    )


# A feed row's columns: first the ETag's ingredients (all the narrow query reads), then the
# rest of what an event shows. Instants come as the driver hands them over (``BulkReader``:
# text on SQLite), so the ETag hashes them as read and the feed converts them a column at a
# time. The stamp is the booking's last change (updated, else created): the event's DTSTAMP.
_ID, _SEQUENCE, _STATUS, _STAMP, _KIND, _OWNER_NAME, _OWNER_EMAIL, _OWNER_ZONE = range(8)
_INGREDIENTS = 8
_UID, _TITLE, _DESCRIPTION, _STARTS, _ENDS, _MODE, _DETAIL, _OWNER_ID, _PEOPLE = range(8, 17)


def _ingredient_columns(read: BulkReader) -> tuple:
    return (
        Booking.id,
        Booking.sequence,
        Booking.status,
        read.instant(func.coalesce(Booking.updated_at, Booking.created_at)),
        BookingType.name,
        User.name,
        User.email,
        User.timezone,
    )


def _event_columns(read: BulkReader) -> tuple:
    return (
        Booking.uid,
        Booking.title,
        Booking.description,
        read.instant(Booking.starts_at),
        read.instant(Booking.ends_at),
        Booking.location_mode,
        Booking.location_detail,
        Booking.owner_id,
        _people(read),
    )


def _people(read: BulkReader):
    """Each booking's attendees' names, ", "-joined in the order they were added (a person's
    name, else a guest's name, else their email, else "Guest"), as one column of the
    bookings query: one aggregate per booking in SQL instead of a second statement and a row
    per attendee to group in Python."""
    person = aliased(User)  # the query's ``User`` is the booking's owner
    shown = func.coalesce(
        func.nullif(person.name, ""),
        func.nullif(Attendee.name, ""),
        func.nullif(Attendee.email, ""),
        "Guest",
    )
    mine = Attendee.booking_id == Booking.id
    if read.sqlite:
        # group_concat (no ORDER BY argument before SQLite 3.44) joins the rows in the order
        # the ordered subquery yields them; tests/notifications/test_feed_rows.py checks the
        # order against the ORM's on every run.
        ordered = (
            select(shown.label("name"))
            .select_from(Attendee)
            .outerjoin(person, person.id == Attendee.user_id)
            .where(mine)
            .order_by(Attendee.id)
            .correlate(Booking)
            .subquery()
        )
        joined = select(func.group_concat(ordered.c.name, ", "))
    else:
        joined = (
            select(func.string_agg(shown, aggregate_order_by(literal(", "), Attendee.id)))
            .select_from(Attendee)
            .outerjoin(person, person.id == Attendee.user_id)
            .where(mine)
        )
    return func.coalesce(joined.scalar_subquery(), "")


def _columns(user: User, now: datetime, columns: tuple) -> list[tuple]:
    """The listed bookings' ``columns`` (with their type and owner), in the feed's order:
    plain rows read on the Core connection, turned into one tuple per column."""
    query = (
        select(*columns)
        .join(BookingType, BookingType.id == Booking.booking_type_id)
        .outerjoin(User, User.id == Booking.owner_id)
        .where(_listed(user, now))
        .order_by(Booking.starts_at, Booking.id)
    )
    result = db.session.connection().execute(query)
    try:
        # The driver's own tuples: no column here has a result processor (instants are read
        # as BulkReader hands them over), and SQLAlchemy's Row per row, then iterating Rows
        # to turn them into columns, cost a quarter as much again as the query itself.
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return list(zip(*rows, strict=True)) or [()] * len(columns)


def _etag(user: User, ingredients: list[tuple]) -> str:
    """A strong ETag over the feed's ingredients (see the module docstring), given as columns
    and hashed in one piece: a digest update per row cost more than the query that read them."""
    head = (FORMAT_VERSION, user.id, user.name, current_app.config["SLOTBOOK_BASE_URL"])
    digest = hashlib.sha256(repr((head, ingredients)).encode())
    return f'"{digest.hexdigest()[:40]}"'


def _reader() -> BulkReader:
    return BulkReader(db.session.connection().dialect.name)


def current_etag(user: User, now: datetime | None = None) -> str:
    """The ETag the feed would have now, from one narrow query (no feed is built)."""
    return _etag(user, _columns(user, now or utcnow(), _ingredient_columns(_reader())))


def load(user: User, now: datetime) -> list[FeedRow]:
    """The rows the feed's events are written from: one query (the bookings with their type,
    owner and attendees' names)."""
    read = _reader()
    return _feed_rows(_columns(user, now, _ingredient_columns(read) + _event_columns(read)), read)


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


def answer(user: User, now: datetime | None = None) -> tuple[bytes, str]:
    """The feed's body and ETag, from one query: the bookings' rows give the ETag; a body
    kept under it is sent as it is, else the feed is written from the same rows and kept (a
    feed built from scratch does not run the narrow ETag query as well)."""
    now = now or utcnow()
    read = _reader()
    with collector_paused():  # thousands of rows and strings, none in a cycle
        columns = _columns(user, now, _ingredient_columns(read) + _event_columns(read))
        etag = _etag(user, columns[:_INGREDIENTS])
        body = _kept(etag)
        if body is None:
            body = feed_writer.write_rows_utf8(user, _feed_rows(columns, read))
            _keep(etag, body)
    return body, etag


def _kept(etag: str) -> bytes | None:
    if not current_app.config.get("REDIS_URL"):
        return None
    try:
        return redis_client().get(BODY_KEY + etag.strip('"'))
    except _CACHE_ERRORS as exc:
        log.warning("feed body cache unreachable (%s): building the feed", type(exc).__name__)
        return None


def _keep(etag: str, body: bytes) -> None:
    if not current_app.config.get("REDIS_URL"):
        return
    try:
        redis_client().set(BODY_KEY + etag.strip('"'), body, ex=BODY_TTL_SECONDS)
    except _CACHE_ERRORS as exc:
        log.warning("feed body cache unreachable (%s): not kept", type(exc).__name__)


# --- the rows the writer reads ------------------------------------------------------------
#
# A feed may list thousands of bookings. Loading them as ORM objects with their attendees took
# longer than writing the calendar, and so did building a record per booking and per attendee
# (issue [14]); the feed reads plain rows in one query (attendees' names aggregated in SQL)
# and hands the writer one tuple per event, its columns converted a column at a time, owners
# and types shared between events.


def _feed_rows(columns: list[tuple], read: BulkReader) -> list[FeedRow]:
    """The writer's rows, built a column at a time (maps over C functions; the only Python
    call per row is the row itself)."""
    kinds = {name: _Kind(name) for name in set(columns[_KIND])}
    owners = {
        owner_id: _Owner(name, email, zone)
        for owner_id, name, email, zone in set(
            zip(
                columns[_OWNER_ID],
                columns[_OWNER_NAME],
                columns[_OWNER_EMAIL],
                columns[_OWNER_ZONE],
                strict=True,
            )
        )
        if owner_id is not None
    }
    stamps = [None if value is None else read.one_instant(value) for value in columns[_STAMP]]
    return list(
        map(
            tuple.__new__,  # FeedRow._make without a Python call per row
            repeat(FeedRow),
            zip(
                columns[_ID],
                columns[_UID],
                columns[_SEQUENCE],
                columns[_STATUS],
                columns[_TITLE],
                columns[_DESCRIPTION],
                read.instants(columns[_STARTS]),
                read.instants(columns[_ENDS]),
                columns[_MODE],
                columns[_DETAIL],
                stamps,
                map(owners.get, columns[_OWNER_ID]),
                map(kinds.__getitem__, columns[_KIND]),
                columns[_PEOPLE],
                strict=True,
            ),
        )
    )


# --- booking-like records --------------------------------------------------------------------
#
# ``feed_writer.write`` (and ``ics.feed_icalendar``, the reference it is checked against) read
# any booking-like object; these small records are the shape the byte-for-byte corpus uses.


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
