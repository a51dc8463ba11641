"""Lists bound as ONE parameter, for the bulk reads of availability (issue [14]).

``column IN (:ids)`` with an expanding parameter makes SQLAlchemy rewrite the statement's
text and bind each id on every execution, so the statement differs with the number of people
and its preparation costs time per id. Here a list is a single value instead: JSON text read
by ``json_each`` on SQLite (JSON1: built in since 3.38, compiled in by distributions long
before) and an ``integer[]`` array on PostgreSQL. The
statement's text is fixed, whatever the number of ids.

Instants bound as text (:func:`instant_text`) are in the form each database compares them
in: SQLite's stored naive UTC text, PostgreSQL's ISO with offset (read as ``timestamptz``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from sqlalchemy import Integer, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def member(column, dialect: str, name: str = "ids"):
    """``column`` is one of the ids bound as ``name`` (its value: :func:`id_list`)."""
    if dialect == "sqlite":
        values = func.json_each(bindparam(name, type_=String)).table_valued("value")
        return column.in_(select(values.c.value))
    return column == any_(bindparam(name, type_=ARRAY(Integer)))


def id_list(dialect: str, ids: Iterable[int]):
    """The value of a :func:`member` parameter. Ids are integers (``int`` refuses others)."""
    if dialect == "sqlite":
        return "[" + ",".join(map(str, map(int, ids))) + "]"
    return [int(i) for i in ids]


def instant_text(value: datetime, sqlite: bool) -> str:
    """An aware instant as the text its database compares (naive ones are refused, as by
    ``UTCDateTime``): SQLite ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, as stored), PostgreSQL ISO
    8601 with ``+00:00``."""
    value = _in_utc(value)
    if sqlite:
        return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"
    return value.isoformat()


def instant_texts(values: Iterable[datetime], sqlite: bool) -> list[str]:
    """:func:`instant_text` of each of ``values``. On SQLite each date's text and each time
    of day's is written once and joined: the busy-block query binds two instants per working
    day, mostly at a few shift times, and ``isoformat`` of an aware instant costs over twice
    as much as the join (issue [14])."""
    if not sqlite:
        return [instant_text(value, False) for value in values]
    days: dict[date, str] = {}
    clocks: dict[time, str] = {}
    texts = []
    for value in values:
        value = _in_utc(value)
        day, clock = value.date(), value.time()
        day_text = days.get(day)
        if day_text is None:
            day_text = days[day] = day.isoformat()
        clock_text = clocks.get(clock)
        if clock_text is None:
            clock_text = clocks[clock] = clock.isoformat("microseconds")
        texts.append(day_text + " " + clock_text)
    return texts


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is not UTC:  # the engine's instants are all in UTC already
        if value.utcoffset() is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
    return value


def stored_param(name: str, dialect: str):
    """A bound instant or date compared with a stored one. On SQLite it is bound as the
    stored text itself (its value: :func:`instant_value` or :func:`day_value`), so no
    ``UTCDateTime`` or ``Date`` converter runs on each execution; PostgreSQL binds the value
    as the column's type does."""
    return bindparam(name, type_=String) if dialect == "sqlite" else bindparam(name)


def instant_value(value: datetime, dialect: str) -> datetime | str:
    """The value of a :func:`stored_param` for an instant."""
    return instant_text(value, sqlite=True) if dialect == "sqlite" else value


def day_value(value: date, dialect: str) -> date | str:
    """The value of a :func:`stored_param` for a date (SQLite stores dates as ISO text)."""
    return value.isoformat() if dialect == "sqlite" else value
