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
from datetime import UTC, date, datetime

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
    if value.tzinfo is not UTC:  # the engine's instants are all in UTC already
        if value.utcoffset() is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
    if sqlite:
        return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"
    return value.isoformat()


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
