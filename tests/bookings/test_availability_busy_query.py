"""Issue [14]: the busy-block query of availability finds exactly the blocking blocks that meet
one of the spans it is given, on SQLite and PostgreSQL, through the partial index.

The query joins "pieces" of time (from the end of one span to the end of the next) to the
blocks by their start (``app.bookings.availability._busy_pieces``, one JSON value of every
piece, and the people as one value too: ``app.sql_values``); these tests compare it with
the plain definition (a blocking block of one of the people that meets some span) on edge
cases (blocks from years ago, touching ends, blocks across several spans) and on random data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import groupby

import pytest
from sqlalchemy import insert

from app.bookings import availability
from app.connections.models import BLOCKING_STATUSES, BusyBlock, BusyStatus
from app.database import BulkReader, begin_write
from app.extensions import db
from app.sql_values import id_list
from tests.conftest import query_plan

pytestmark = pytest.mark.db

T0 = datetime(2030, 4, 1, tzinfo=UTC)
BLOCKING = {s.value for s in BLOCKING_STATUSES}


def _hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def _rows(ids: list[int], spans: list[tuple[datetime, datetime]]) -> list:
    connection = db.session.connection()
    dialect = connection.dialect.name
    return connection.execute(
        availability._busy_statement(dialect),
        {"ids": id_list(dialect, ids), "pieces": availability._busy_pieces(spans, dialect)},
    ).all()


def _found(ids: list[int], spans: list[tuple[datetime, datetime]]) -> list[tuple]:
    rows = _rows(ids, spans)
    read = BulkReader(db.session.connection().dialect.name)
    return sorted(
        (person, start, end)
        for person, start, end in zip(
            [r[0] for r in rows],
            read.instants(r[1] for r in rows),
            read.instants(r[2] for r in rows),
            strict=True,
        )
    )


def _expected(blocks: list[dict], ids: list[int], spans) -> list[tuple]:
    return sorted(
        (b["person_id"], b["starts_at"], b["ends_at"])
        for b in blocks
        if b["person_id"] in ids
        and b["status"] in BLOCKING
        and any(b["starts_at"] < e and b["ends_at"] > s for s, e in spans)
    )


def _store(blocks: list[dict]) -> None:
    begin_write()
    db.session.execute(insert(BusyBlock), [{**b, "source": "test"} for b in blocks])
    db.session.commit()


def test_edges(app, factory):
    """Touching is not meeting; a block is found once however many spans it crosses."""
    a, b = factory.user("agent").id, factory.user("agent").id
    spans = [(_hours(9), _hours(17)), (_hours(33), _hours(41)), (_hours(57), _hours(65))]
    cases = {
        "years before, into the first span": (T0 - timedelta(days=900), _hours(10), True),
        "years before, ends as the first starts": (T0 - timedelta(days=900), _hours(9), False),
        "ends as a span starts": (_hours(20), _hours(33), False),
        "starts as a span ends": (_hours(17), _hours(30), False),
        "inside a gap": (_hours(18), _hours(30), False),
        "from a gap into a span": (_hours(30), _hours(34), True),
        "across every span": (_hours(8), _hours(70), True),
        "from a span over the next": (_hours(16), _hours(50), True),
        "a second long, at the end of a span": (
            _hours(17) - timedelta(seconds=1),
            _hours(17),
            True,
        ),
        "after the last span": (_hours(65), _hours(90), False),
        "inside the last span": (_hours(60), _hours(61), True),
    }
    blocks = [
        {"person_id": a, "starts_at": s, "ends_at": e, "status": "busy"}
        for s, e, _ in cases.values()
    ]
    blocks += [
        {"person_id": a, "starts_at": _hours(10), "ends_at": _hours(11), "status": "free"},
        {"person_id": b, "starts_at": _hours(10), "ends_at": _hours(11), "status": "oof"},
    ]
    with app.app_context():
        _store(blocks)
        found = _found([a], spans)
        wanted = sorted((a, s, e) for s, e, meets in cases.values() if meets)
        assert found == wanted
        assert _found([a, b], spans) == sorted([*wanted, (b, _hours(10), _hours(11))])
        assert _found([a, b], []) == []
        one = [(_hours(0), _hours(100))]
        assert _found([a], one) == _expected(blocks, [a], one)


@pytest.mark.parametrize("seed", range(3))
def test_random_blocks_and_spans(app, factory, seed):
    rng = random.Random(seed)
    people = [factory.user("agent").id for _ in range(4)]
    statuses = [s.value for s in BusyStatus]
    blocks = []
    for _ in range(400):
        start = T0 + timedelta(minutes=rng.randrange(-3000, 20000))
        blocks.append(
            {
                "person_id": rng.choice(people),
                "starts_at": start,
                "ends_at": start + timedelta(minutes=rng.choice((1, 15, 60, 300, 3000))),
                "status": rng.choice(statuses),
            }
        )
    with app.app_context():
        _store(blocks)
        for _ in range(5):
            cuts = sorted(rng.sample(range(0, 20000, 5), 2 * rng.randrange(1, 12)))
            spans = [
                (T0 + timedelta(minutes=cuts[i]), T0 + timedelta(minutes=cuts[i + 1]))
                for i in range(0, len(cuts), 2)
            ]
            ids = rng.sample(people, rng.randrange(1, 5))
            assert _found(ids, spans) == _expected(blocks, ids, spans)
            if db.session.connection().dialect.name == "sqlite":
                # Person by person: one run of rows each (availability adds them a run at a
                # time); PostgreSQL's order is its planner's.
                order = [row[0] for row in _rows(ids, spans)]
                assert len(list(groupby(order))) == len(set(order))


def test_blocks_are_read_through_the_partial_index(app):
    """The query must imply the partial index's condition, or neither database can use it:
    SQLite only when the query repeats the condition literally; PostgreSQL when it proves it
    (sequential scans are switched off here, as a table of a few rows would prefer one)."""
    spans = [(_hours(9), _hours(17)), (_hours(33), _hours(41))]
    with app.app_context():
        details = query_plan(lambda: _found([1, 2], spans), "busy_blocks")
    assert "ix_busy_blocks_blocking_period" in details, details
