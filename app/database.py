"""Database plumbing shared by every feature: UTC timestamps and SQLite write locking.

SQLite has no row locks. A booking must check for overlaps and insert its holds as one
atomic step, so write requests open their transaction with ``BEGIN IMMEDIATE``: the second
writer waits (busy timeout) instead of reading a snapshot that is already stale. On
PostgreSQL the exclusion constraint on holds decides, and per-person advisory locks
(``lock_people``) keep concurrent writers from deadlocking on it.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

from sqlalchemy import (
    Date,
    DateTime,
    String,
    Text,
    Time,
    cast,
    event,
    func,
    inspect,
    text,
    type_coerce,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from app.extensions import db

IMMEDIATE = "slotbook_sqlite_immediate"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text. Naive input is refused
    rather than guessed, because a guessed zone is how double bookings across DST happen.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect, coltype):
        """SQLite hands back text; parse it in one C call instead of SQLAlchemy's regex plus
        a second pass (availability reads ~20,000 of these per request)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value):
            if value is None:
                return None
            if isinstance(value, str):  # naive UTC text; appending the offset beats .replace()
                return datetime.fromisoformat(value + "+00:00")
            return self.process_result_value(value, dialect)

        return process

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def install_sqlite_hooks(engine: Engine) -> None:
    """Take transaction control from pysqlite so BEGIN can be IMMEDIATE when asked."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriteOrderError(RuntimeError):
    """A write path started reading before taking the write lock (a programming error)."""


def begin_write() -> None:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE).

    Call before the first query of a request or job that may write. Harmless on PostgreSQL.
    """
    session = db.session()  # the scoped session's current Session
    if session.in_transaction():
        conn = session.connection()
        if conn.dialect.name == "sqlite" and not conn.get_execution_options().get(IMMEDIATE):
            raise WriteOrderError(
                "begin_write() must come before the first query of a writing transaction"
            )
        return
    session.connection(execution_options={IMMEDIATE: True})


# Ids are PostgreSQL ``integer`` columns: beyond this no row can exist, and comparing with a
# larger number raises instead of finding nothing, so every edge answers such ids "not found".
MAX_ID = 2**31 - 1

PERSON_LOCK_NAMESPACE = 0x5107  # keeps our advisory locks apart from any other application's


def lock_people(person_ids) -> None:
    """Serialise writers that change the same people's time (PostgreSQL advisory locks).

    Two transactions inserting overlapping rows under an exclusion constraint can each wait
    for the other and be aborted as a deadlock, rather than one of them getting the clean
    constraint violation. Taking a per-person lock first, always in ascending id order, makes
    the later writer wait for the earlier one's commit; its re-check then sees the committed
    hold and reports a conflict. SQLite needs nothing: ``begin_write`` already holds the
    database write lock.
    """
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        return
    for person_id in sorted(set(person_ids)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :person)"),
            {"namespace": PERSON_LOCK_NAMESPACE, "person": person_id},
        )


NAME_LOCK_NAMESPACE = 0x5108  # advisory locks keyed on a string (e.g. a visitor's contact)


def lock_names(names: Iterable[str]) -> None:
    """Serialise writers that count or change rows belonging to the same names (PostgreSQL
    advisory locks on a 32-bit hash of each name, taken in ascending order, held until commit).

    For limits no row can carry: "at most N bookings per contact per day" (S3) is a count of
    rows that do not exist yet, so two writers each counting N-1 would both insert. A hash
    collision only makes two unrelated names take turns. SQLite needs nothing: ``begin_write``
    already holds the database write lock, which is taken here if it is not yet.
    """
    begin_write()
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({zlib.crc32(name.encode()) - 2**31 for name in names})  # signed int4
    for key in keys:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": NAME_LOCK_NAMESPACE, "key": key},
        )


def lock_row(instance) -> None:
    """Make this transaction the only writer of ``instance``'s row until it ends, and reload
    the row, so what the caller checks next is the state it will change.

    PostgreSQL: ``SELECT ... FOR UPDATE`` through ``Session.refresh``: a second writer waits
    here for the first one's commit and then reads what it committed, never the state both
    saw before (the lost update: two approvals of one booking both succeeding). The refresh
    also expires the row's loaded collections, and the rows already loaded into them (a
    booking's holds and attendees) are expired too, so all of it is read again under the lock.
    SQLite: the write transaction (``begin_write``: BEGIN IMMEDIATE before the first read)
    already excludes every other writer, so nothing read in it can be stale.

    Call before changing the row; anything pending is flushed first so a refresh cannot
    silently drop it.
    """
    begin_write()
    session = db.session()
    if session.connection().dialect.name == "sqlite":
        return
    session.flush()
    state = inspect(instance)
    children = [
        child
        for rel in state.mapper.relationships
        if rel.uselist and rel.key in state.dict
        for child in state.dict[rel.key]
    ]
    # OF the row's own table: its eager joins are outer joins, which PostgreSQL cannot lock
    session.refresh(instance, with_for_update={"of": state.mapper.class_})
    for child in children:
        if inspect(child).persistent:
            session.expire(child)


# --- bulk reading (issue [14]) --------------------------------------------------------------
#
# Availability and the Team calendar read thousands of timestamps per request; SQLAlchemy's
# per-value converters were a sixth of that time.


class BulkReader:
    """Column expressions whose values the driver hands over without SQLAlchemy's per-value
    converters, and converters that turn a whole column at once (``map`` over a C function).

    Instants are read as text of the UTC time plus ``+00:00`` and parsed by
    ``datetime.fromisoformat`` straight to aware UTC datetimes (all sharing ``UTC``, so the
    engine compares them without asking a zone for offsets). SQLite stores that text already;
    PostgreSQL writes it (``timezone('UTC', t)::text``, ISO, the DateStyle psycopg requires
    anyway), which costs its driver less than building a datetime in the session's zone that
    is then moved to UTC. Times and dates: ``fromisoformat`` on SQLite's text; PostgreSQL's
    driver already returns them as objects."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def instant(self, column):
        if self.sqlite:
            return type_coerce(column, String).concat("+00:00")
        return cast(func.timezone("UTC", column), Text).concat("+00:00")

    def clock(self, column):
        return type_coerce(column, String if self.sqlite else Time)

    def day(self, column):
        return type_coerce(column, String if self.sqlite else Date)

    @staticmethod
    def instants(values: Iterable) -> Iterable[datetime]:
        """The same on both databases: both read instants as ISO text (see ``instant``)."""
        return map(datetime.fromisoformat, values)

    def one_instant(self, value) -> datetime:
        return datetime.fromisoformat(value)

    def one_clock(self, value) -> time:
        return time.fromisoformat(value) if self.sqlite else value

    def one_day(self, value) -> date:
        return date.fromisoformat(value) if self.sqlite else value


def driver_rows(statement, values: dict | None = None) -> list[tuple]:
    """Every row of ``statement`` as the driver's own tuple, on the session's connection (its
    transaction). For bulk reads whose columns need no converter (see :class:`BulkReader`):
    a SQLAlchemy ``Row`` per row cost ~5 ms at 200 agents x 8 weeks in availability, and a
    quarter of the feed's query time again.

    On SQLite the statement runs as the text it compiled to once (:func:`_positional`),
    through ``exec_driver_sql``: the same events and transaction, without SQLAlchemy looking
    its compiled form up and building its parameters again on every execution (27 instead of
    36 us a statement, measured on availability's week query)."""
    connection = db.session.connection()
    values = values or {}
    compiled = _positional(statement, connection.dialect)
    if compiled is None:
        result = connection.execute(statement, values)
    else:
        result = connection.exec_driver_sql(compiled.sql, compiled.parameters(values))
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


class _Compiled:
    """A statement's text for a positional driver, and the name of each of its ``?`` in
    order, with the values of the parameters the statement itself fixes."""

    def __init__(self, sql: str, names: Iterable[str], fixed: dict) -> None:
        self.sql = sql
        self.names = tuple(names)
        self.fixed = fixed

    def parameters(self, values: dict) -> tuple:
        fixed = self.fixed
        return tuple(values[name] if name in values else fixed[name] for name in self.names)


_COMPILED: dict[tuple[int, str], tuple[object, _Compiled | None]] = {}
_COMPILED_MAX = 256


def _positional(statement, dialect) -> _Compiled | None:
    """``statement`` compiled once for a positional driver, or None where SQLAlchemy must
    build each execution's parameters itself: another paramstyle (PostgreSQL's named
    ones), a list expanded into several, or a type that converts the values it binds."""
    if dialect.paramstyle != "qmark":
        return None
    key = (id(statement), dialect.name)
    cached = _COMPILED.get(key)
    if cached is not None and cached[0] is statement:  # never another's id, reused
        return cached[1]
    if len(_COMPILED) >= _COMPILED_MAX:  # statements built per call must not pile up
        _COMPILED.clear()
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    plain = compiled.positiontup is not None and not any(
        bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
        for bind in binds.values()
    )
    found = None
    if plain:
        names = compiled.positiontup
        fixed = {name: binds[name].effective_value for name in names if not binds[name].required}
        found = _Compiled(compiled.string, names, fixed)
    _COMPILED[key] = (statement, found)  # the statement kept alive, so its id stays its own
    return found


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a bulk read and what is built from it without CPython's cyclic garbage collector.

    Availability, the Team week and a feed allocate tens of thousands of rows, datetimes and
    pieces of text in a few milliseconds. Those allocations set off the collector, and its
    full collections walk every object of the process (the app, SQLAlchemy, Jinja: about
    200,000) and free nothing: these objects form no cycles and reference counting frees
    them. Measured (issue [14]), that walk was 40–50 % of a 100-person week's CPU and two
    thirds of a 200-agent availability request. The collector runs again afterwards, as
    usual. Only the outermost pause switches it back on: one already off (a nested pause,
    another thread's, a caller's) is left to its owner.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
