"""Issue [14]: values availability binds in the driver's own form (app.sql_values) compare
exactly as the values SQLAlchemy binds through ``UTCDateTime`` would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from app.database import UTCDateTime
from app.sql_values import id_list, instant_text, instant_texts

INSTANTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2030, 3, 31, 0, 59, 59, 999999, tzinfo=UTC),
    datetime(2030, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/London")),
    datetime(2030, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    datetime(2030, 6, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=45))),
]


@pytest.mark.parametrize("value", INSTANTS)
def test_sqlite_text_is_what_utcdatetime_stores(value):
    dialect = sqlite.dialect()
    stored = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(value)
    assert instant_text(value, sqlite=True) == stored


@pytest.mark.parametrize("value", INSTANTS)
def test_postgresql_text_is_the_same_instant(value):
    text = instant_text(value, sqlite=False)
    assert text.endswith("+00:00")
    # timestamps: an aware comparison across zones calls a repeated hour's fold=1 unequal
    assert datetime.fromisoformat(text).timestamp() == value.timestamp()


@pytest.mark.parametrize("flag", [True, False])
def test_many_instants_are_written_as_one_at_a_time(flag):
    # Shared dates and times of day (written once on SQLite) among the odd ones out.
    day = datetime(2030, 3, 18, 9, tzinfo=UTC)
    values = [*INSTANTS, *(day + timedelta(days=d, minutes=m) for d in range(3) for m in (0, 1))]
    assert instant_texts(values, sqlite=flag) == [instant_text(v, sqlite=flag) for v in values]
    assert instant_texts([], sqlite=flag) == []


def test_naive_instants_are_refused():
    for flag in (True, False):
        with pytest.raises(ValueError, match="naive"):
            instant_text(datetime(2030, 1, 1, 9), sqlite=flag)
        with pytest.raises(ValueError, match="naive"):
            instant_texts([datetime(2030, 1, 1, 9, tzinfo=UTC), datetime(2030, 1, 1, 9)], flag)


def test_id_lists_are_integers_only():
    assert id_list("sqlite", [3, 1, 2]) == "[3,1,2]"
    assert id_list("sqlite", []) == "[]"
    assert id_list("postgresql", (3, 1)) == [3, 1]
    with pytest.raises(ValueError):
        id_list("sqlite", ["1) OR 1=1 --"])


def test_sqlite_day_text_is_what_a_date_column_stores():
    from datetime import date

    from sqlalchemy import Date

    from app.sql_values import day_value

    dialect = sqlite.dialect()
    store = Date().dialect_impl(dialect).bind_processor(dialect)
    for day in (date(1, 1, 1), date(2030, 3, 31), date(9999, 12, 31)):
        assert day_value(day, "sqlite") == store(day)
        assert day_value(day, "postgresql") == day
