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
