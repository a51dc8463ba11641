"""Issue [14]: a feed's built body is kept in Redis under its ETag, so a repeated full answer
is a lookup; a changed feed has a new ETag and is built afresh (nothing to invalidate)."""

from __future__ import annotations

from datetime import UTC

import icalendar

from app.notifications.feeds import BODY_KEY
from tests.conftest import at
from tests.notifications.test_feeds import _act, _make_feed
from tests.notifications.test_feeds import ann as ann  # the fixture


def test_a_full_answer_comes_from_the_body_kept_under_its_etag(app, client, factory, redis, ann):
    booking = factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    feeds = app.test_client()
    first = feeds.get(path)
    etag = first.headers["ETag"]
    key = BODY_KEY + etag.strip('"')
    assert redis.get(key) == first.get_data()  # kept under the ETag it was served with
    assert 0 < redis.ttl(key) <= 6 * 3600

    # A body kept under the current ETag is what the next full answer sends: it was not built.
    redis.set(key, b"KEPT")
    assert feeds.get(path).get_data() == b"KEPT"
    assert feeds.get(path, headers={"If-None-Match": '"0000"'}).get_data() == b"KEPT"
    assert feeds.get(path, headers={"If-None-Match": etag}).status_code == 304

    # A change gives a new ETag: built afresh, kept under the new one.
    _act(app, booking.id, "reschedule", at(9))
    changed = feeds.get(path)
    assert changed.headers["ETag"] != etag
    assert changed.get_data() != b"KEPT"
    event = icalendar.Calendar.from_ical(changed.get_data()).walk("VEVENT")[0]
    assert event.DTSTART.astimezone(UTC) == at(9)
    assert redis.get(BODY_KEY + changed.headers["ETag"].strip('"')) == changed.get_data()


def test_without_redis_the_feed_is_built_each_time(app, client, factory, ann):
    factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    app.config["REDIS_URL"] = None
    app.config["RATELIMIT_ENABLED"] = False
    first = app.test_client().get(path)
    assert first.status_code == 200
    assert b"BEGIN:VEVENT" in first.get_data()


def test_renaming_the_type_or_the_owner_gives_a_new_etag_and_body(app, client, factory, redis):
    """A feed reads its types and owners once, apart from the bookings' rows: their details
    are still part of the ETag, so a kept body never outlives a rename shown in its text."""
    from app.accounts.models import User
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    ann = factory.user("agent", email="ann@example.test", name="Ann Agent")
    bob = factory.user("agent", email="bob@example.test", name="Bob Owner")
    kind = factory.booking_type(name="Observation")
    factory.booking(None, kind, at(2), [bob, ann])  # held by Bob, Ann attends
    _, path = _make_feed(client, ann.email)
    feeds = app.test_client()
    tags = [feeds.get(path).headers["ETag"]]

    def rename(model, row_id: int, **values) -> bytes:
        with app.app_context():
            begin_write()
            for name, value in values.items():
                setattr(db.session.get(model, row_id), name, value)
            db.session.commit()
        answer = feeds.get(path, headers={"If-None-Match": tags[-1]})
        assert answer.status_code == 200, values
        assert answer.headers["ETag"] not in tags
        tags.append(answer.headers["ETag"])
        return answer.get_data()

    assert b"Gateway review" in rename(BookingType, kind.id, name="Gateway review")
    assert b"Robert Owner" in rename(User, bob.id, name="Robert Owner")
    assert b"robert@example.test" in rename(User, bob.id, email="robert@example.test")
    assert b"TZID=America/New_York" in rename(User, bob.id, timezone="America/New_York")
    assert feeds.get(path, headers={"If-None-Match": tags[-1]}).status_code == 304
