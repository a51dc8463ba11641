"""``app.database.driver_rows`` (issue [14]): on SQLite a statement runs as the text it was
compiled to once; its rows, events and transaction are those of SQLAlchemy's own execution.
Statements whose values SQLAlchemy must convert or expand still go through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, event, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from app.accounts.models import User
from app.bookings import availability
from app.database import _positional, driver_rows
from app.extensions import db

# A literal the statement fixes (bound, not written into the text) and two values given.
PLAIN = (
    select(User.id, literal("user ") + User.email)
    .where(User.id >= bindparam("low"), User.id <= bindparam("high"))
    .order_by(User.id)
)
# Each a value SQLAlchemy must handle: a list expanded into several, an instant converted.
EXPANDED = select(User.id).where(User.id.in_(bindparam("ids", expanding=True))).order_by(User.id)
CONVERTED = select(User.id).where(User.created_at < bindparam("before", type_=User.created_at.type))


def _users(factory, count: int) -> list[int]:
    return [factory.user(email=f"rows{n}@example.test").id for n in range(count)]


def test_rows_and_events_are_those_of_sqlalchemy(app, factory):
    ids = _users(factory, 4)
    values = {"low": ids[1], "high": ids[2]}
    with app.app_context():
        connection = db.session.connection()
        seen: list[tuple[str, object, object]] = []

        def note(conn, cursor, statement, parameters, context, executemany):
            seen.append((statement, parameters, context.compiled))

        event.listen(db.engine, "before_cursor_execute", note)
        try:
            rows = driver_rows(PLAIN, values)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        expected = [tuple(row) for row in connection.execute(PLAIN, values)]
        assert rows == expected
        assert rows == [(i, f"user rows{n + 1}@example.test") for n, i in enumerate(ids[1:3])]
        assert len(seen) == 1  # query counters and the benchmark still see it
        text, parameters, compiled = seen[0]
        if connection.dialect.name == "sqlite":  # the driver's own SQL: no compiled form
            assert compiled is None
            assert text == str(PLAIN.compile(dialect=connection.dialect))
            assert parameters == ("user ", *ids[1:3])
        else:
            assert compiled is not None


def test_values_sqlalchemy_converts_or_expands_still_go_through_it(app, factory):
    ids = _users(factory, 3)
    with app.app_context():
        dialect = db.session.connection().dialect
        assert _positional(EXPANDED, dialect) is None
        assert _positional(CONVERTED, dialect) is None
        assert driver_rows(EXPANDED, {"ids": [ids[0], ids[2]]}) == [(ids[0],), (ids[2],)]
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert {row[0] for row in driver_rows(CONVERTED, {"before": later})} >= set(ids)
        assert driver_rows(CONVERTED, {"before": datetime(2000, 1, 1, tzinfo=UTC)}) == []


def test_availability_reads_take_the_compiled_path_on_sqlite_only():
    statements = availability._statements("sqlite")
    reads = [
        statements.weeks,
        statements.overrides,
        statements.time_off,
        statements.holds,
        statements.holds_counted,
        availability._busy_statement("sqlite"),
    ]
    for statement in reads:
        assert _positional(statement, sqlite.dialect()) is not None
    assert _positional(availability._busy_statement("postgresql"), postgresql.dialect()) is None
