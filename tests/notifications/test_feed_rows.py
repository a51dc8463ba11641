"""Issue [14]: a feed reads its events as plain rows in one query (the attendees' names
aggregated in SQL, instants read as the driver hands them over). Those rows must say what the
bookings say: compared field by field with the rows ``feed_writer.row_of`` makes from the ORM
bookings (which the byte-for-byte corpus test checks against icalendar), on SQLite and, with
``TEST_DATABASE_URL``, on PostgreSQL."""

from __future__ import annotations

import pytest

from app.accounts.models import User
from app.bookings.models import Booking
from app.database import utcnow
from app.extensions import db
from app.notifications import feed_writer, feeds
from tests.conftest import at, query_plan
from tests.notifications.test_feeds import ann as ann  # the fixture

pytestmark = pytest.mark.db


def _plain(row: feed_writer.FeedRow) -> tuple:
    owner = row.owner
    who = (owner.name, owner.email, owner.timezone) if owner is not None else None
    return (*row._replace(owner=None, booking_type=None), who, row.booking_type.name)


def test_the_rows_read_in_sql_are_the_bookings_rows(app, factory, ann):
    """Same values, same order of events, attendees named in the order they were added."""
    from app.bookings.service import Guest

    zed = factory.user("agent", email="zed@example.test", name="Zed Zebra", timezone="UTC")
    kind = factory.booking_type(name="Observation")
    held = factory.booking(
        None,
        kind,
        at(3),
        [zed, ann],
        guests=[Guest("b@example.test", "Bea Guest"), Guest("a@example.test", "")],
    )
    alone = factory.booking(None, kind, at(2), [ann])
    with app.test_request_context():
        user = db.session.get(User, ann.id)
        rows = feeds.load(user, utcnow())
        bookings = [db.session.get(Booking, b.id) for b in (alone, held)]
        assert [_plain(r) for r in rows] == [_plain(feed_writer.row_of(b)) for b in bookings]
        assert rows[1].people == "Zed Zebra, Ann Agent, Bea Guest, a@example.test"
        assert rows[0].people == "Ann Agent"
        db.session.rollback()


def test_a_feed_without_bookings_reads_no_rows(app, ann):
    with app.test_request_context():
        assert feeds.load(db.session.get(User, ann.id), utcnow()) == []
        db.session.rollback()


def test_the_utf8_feed_is_the_text_feed_encoded():
    """The served bytes (head encoded apart) are the text feed's UTF-8, awkward corpus too."""
    from types import SimpleNamespace

    from tests.notifications.test_feed_writer import _corpus

    user = SimpleNamespace(id=1, name="Zoë Ørsted – 漢字")
    for seed in range(3):
        rows = [feed_writer.row_of(entry) for entry in _corpus(seed, 60)]
        text = feed_writer.write_rows(user, rows)
        assert feed_writer.write_rows_utf8(user, rows) == text.encode()
    assert feed_writer.write_rows_utf8(user, []) == feed_writer.write_rows(user, []).encode()


def test_the_feed_query_reads_attendees_through_their_indexes(app, factory, ann):
    """The bookings a person attends come from ``ix_attendees_user_id`` (without it, every
    attendee row of the organisation is read on each feed request); on SQLite each booking's
    attendees come from ``ix_attendees_booking_order`` already in the order they were added
    (PostgreSQL may take either index on the booking and sorts the few rows itself)."""
    factory.booking(None, factory.booking_type(), at(2), [ann])
    with app.test_request_context():
        user = db.session.get(User, ann.id)
        details = query_plan(lambda: feeds.load(user, utcnow()), "FROM bookings")
        sqlite = db.engine.dialect.name == "sqlite"
    assert "ix_attendees_user_id" in details, details
    if sqlite:
        assert "ix_attendees_booking_order" in details, details
