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
query and two small ones (the types and owners, by id), and ``If-None-Match`` gets a 304
without the feed being built. The events' DTSTAMP is
the booking's last change, so the same inputs always give the same bytes. A rename of an
attendee shows up at the booking's next change (attendee names are not part of the hash).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import repeat
from typing import NamedTuple

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import Select, and_, bindparam, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import lazyload

from app.accounts.models import User
from app.bookings.models import Attendee, Booking, BookingType, Status
from app.database import BulkReader, collector_paused, driver_rows, utcnow
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


def _listed():
    """The bookings a feed lists, as a SQL condition on the parameters ``person`` (the feed's
    owner) and ``since`` (the earliest end still listed)."""
    person = bindparam("person")
    attending = select(Attendee.booking_id).where(Attendee.user_id == person)
    return and_(
        or_(Booking.owner_id == person, Booking.id.in_(attending)),
        Booking.status.in_([s.value for s in FEED_STATUSES]),
        Booking.ends_at >= bindparam("since"),
    )


# A feed row's columns: first the ETag's ingredients (all the narrow query reads), then the
# rest of what an event shows. Instants come as the driver hands them over (``BulkReader``:
# text on SQLite), so the ETag hashes them as read and the feed converts them a column at a
# time. The stamp is the booking's last change: the event's DTSTAMP. Types and owners come
# as ids: a feed names a handful of each, read once (``_Names``) rather than once per event.
_ID, _SEQUENCE, _STATUS, _STAMP, _KIND_ID, _OWNER_ID = range(6)
_INGREDIENTS = 6
_UID, _TITLE, _DESCRIPTION, _STARTS, _ENDS, _MODE, _DETAIL, _PEOPLE = range(6, 14)


def _ingredient_columns(read: BulkReader) -> tuple:
    return (
        Booking.id,
        Booking.sequence,
        Booking.status,
        read.instant(Booking.updated_at),
        Booking.booking_type_id,
        Booking.owner_id,
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
        _people(read),
    )


def _people(read: BulkReader):
    """Each booking's attendees' names, ", "-joined in the order they were added (a person's
    name, else a guest's name, else their email, else "Guest"), as one column of the
    bookings query: one aggregate per booking in SQL instead of a second statement and a row
    per attendee to group in Python.

    PostgreSQL orders the aggregate itself. SQLite's group_concat takes no ORDER BY before
    3.44 and joins the rows in the order it visits them: by ``ix_attendees_booking_order``
    (booking, id), so in the order they were added. An ordered subquery inside it sorted
    nothing more and cost a co-routine per booking: 1.8 of the query's 27.7 ms for 5,000
    bookings (issue [14]). tests/notifications/test_feed_rows.py checks the order against
    the ORM's and the plan's index on every run."""
    shown = func.coalesce(
        func.nullif(User.name, ""),
        func.nullif(Attendee.name, ""),
        func.nullif(Attendee.email, ""),
        "Guest",
    )
    if read.sqlite:
        joined = func.group_concat(shown, ", ")
    else:
        joined = func.string_agg(shown, aggregate_order_by(literal(", "), Attendee.id))
    names = (
        select(joined)
        .select_from(Attendee)
        .outerjoin(User, User.id == Attendee.user_id)
        .where(Attendee.booking_id == Booking.id)
    )
    return func.coalesce(names.scalar_subquery(), "")


@lru_cache(maxsize=4)
def _query(dialect: str, full: bool) -> Select:
    """The feed's query, built once per database and shape so that SQLAlchemy finds its
    compiled form by the statement's cached key: the ETag's ingredients, or everything."""
    read = BulkReader(dialect)
    columns = _ingredient_columns(read) + (_event_columns(read) if full else ())
    return select(*columns).where(_listed()).order_by(Booking.starts_at, Booking.id)


def _columns(user: User, now: datetime, full: bool) -> list[tuple]:
    """The listed bookings' columns (see ``_query``), in the feed's order, as one tuple per
    column."""
    query = _query(db.session.connection().dialect.name, full)
    values = {"person": user.id, "since": now - timedelta(days=PAST_DAYS)}
    rows = driver_rows(query, values)
    return list(zip(*rows, strict=True)) or [()] * len(query.selected_columns)


class _Names(NamedTuple):
    """The booking types and owners a feed's events name, by id."""

    kinds: dict[int, _Kind]
    owners: dict[int, _Owner]


_KINDS = select(BookingType.id, BookingType.name).where(
    BookingType.id.in_(bindparam("ids", expanding=True))
)
_OWNERS = select(User.id, User.name, User.email, User.timezone).where(
    User.id.in_(bindparam("ids", expanding=True))
)


def _names(ingredients: list[tuple]) -> _Names:
    """One small statement each for the feed's types and owners (none for an empty feed)."""
    kind_ids = set(ingredients[_KIND_ID])
    owner_ids = set(ingredients[_OWNER_ID]) - {None}
    kinds = driver_rows(_KINDS, {"ids": list(kind_ids)}) if kind_ids else []
    owners = driver_rows(_OWNERS, {"ids": list(owner_ids)}) if owner_ids else []
    return _Names(
        {kind_id: _Kind(name) for kind_id, name in kinds},
        {owner_id: _Owner(*details) for owner_id, *details in owners},
    )


def _etag(user: User, ingredients: list[tuple], names: _Names) -> str:
    """A strong ETag over the feed's ingredients (see the module docstring), given as columns
    and hashed in one piece: a digest update per row cost more than the query that read them.
    The types' and owners' details are hashed once each, sorted by id."""
    head = (FORMAT_VERSION, user.id, user.name, current_app.config["SLOTBOOK_BASE_URL"])
    named = (sorted(names.kinds.items()), sorted(names.owners.items()))
    digest = hashlib.sha256(repr((head, ingredients, named)).encode())
    return f'"{digest.hexdigest()[:40]}"'


def current_etag(user: User, now: datetime | None = None) -> str:
    """The ETag the feed would have now, from the narrow query and the names (no feed is
    built)."""
    ingredients = _columns(user, now or utcnow(), full=False)
    return _etag(user, ingredients, _names(ingredients))


def load(user: User, now: datetime) -> list[FeedRow]:
    """The rows the feed's events are written from: the bookings with their attendees'
    names in one query, then their types and owners."""
    columns = _columns(user, now, full=True)
    return _feed_rows(columns, _names(columns))


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
    with collector_paused():  # thousands of rows and strings, none in a cycle
        columns = _columns(user, now, full=True)
        names = _names(columns)
        etag = _etag(user, columns[:_INGREDIENTS], names)
        body = _kept(etag)
        if body is None:
            body = feed_writer.write_rows_utf8(user, _feed_rows(columns, names))
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


def _feed_rows(columns: list[tuple], names: _Names) -> list[FeedRow]:
    """The writer's rows, built a column at a time (maps over C functions; the only Python
    call per row is the row itself)."""
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
                BulkReader.instants(columns[_STARTS]),
                BulkReader.instants(columns[_ENDS]),
                columns[_MODE],
                columns[_DETAIL],
                BulkReader.instants(columns[_STAMP]),
                map(names.owners.get, columns[_OWNER_ID]),
                map(names.kinds.__getitem__, columns[_KIND_ID]),
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
