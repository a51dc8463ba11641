"""Issue [11]: all-day and floating times in subscribed (ICS) and CalDAV calendars are read in
the calendar owner's zone, end to end: a real feed server and a real Radicale are synced by
``sync_connection`` into busy blocks, compared with recurring-ical-events as the oracle."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.connections.models import BusyBlock
from app.connections.sync import sync_connection
from app.database import utcnow
from app.extensions import db
from tests.connections import test_linking as linking
from tests.connections.ics_server import FeedServer
from tests.connections.test_cli import allow_private_urls
from tests.connections.test_expand_oracle import oracle

SYDNEY = ZoneInfo("Australia/Sydney")


TODAY = utcnow().date()  # once, so a test running across midnight stays consistent


def _day(offset: int):
    return TODAY + timedelta(days=offset)


def _events() -> list[list[str]]:
    """An all-day day off in ten days, and a floating 07:00 gym session weekly from the day
    after, three times (no zone given: the owner's wall clock)."""
    holiday, gym = _day(10), _day(11)
    return [
        [
            "UID:holiday",
            "SUMMARY:Holiday",
            f"DTSTART;VALUE=DATE:{holiday:%Y%m%d}",
            f"DTEND;VALUE=DATE:{holiday + timedelta(days=1):%Y%m%d}",
        ],
        [
            "UID:gym",
            "SUMMARY:Gym",
            f"DTSTART:{gym:%Y%m%d}T070000",
            f"DTEND:{gym:%Y%m%d}T080000",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ],
    ]


def _calendar(events: list[list[str]]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotbook tests//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20260101T000000Z", *event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def _expected(text: str) -> list[tuple[datetime, datetime]]:
    window = (utcnow() - timedelta(days=1), utcnow() + timedelta(days=60))
    found = oracle(text, window, SYDNEY)
    holiday = datetime.combine(_day(10), time(), tzinfo=SYDNEY)
    assert found[0] == (holiday.astimezone(UTC), (holiday + timedelta(days=1)).astimezone(UTC))
    assert len(found) == 4
    return found


def _busy(app, person_id: int) -> list[tuple[datetime, datetime]]:
    with app.app_context():
        rows = db.session.execute(
            select(BusyBlock.starts_at, BusyBlock.ends_at)
            .where(BusyBlock.person_id == person_id)
            .order_by(BusyBlock.starts_at)
        ).all()
        db.session.rollback()
        return [(start, end) for start, end in rows]


def _sync(app, connection_id: int) -> None:
    with app.app_context():
        report = sync_connection(connection_id)
        db.session.remove()
    assert report.error is None and report.warnings == []


@pytest.fixture
def sydney(app, factory):
    allow_private_urls(app)
    return factory.user("agent", email="sam@example.test", name="Sam", timezone="Australia/Sydney")


def test_a_subscribed_feed_reads_all_day_and_floating_in_the_owners_zone(app, sydney):
    text = _calendar(_events())
    with FeedServer() as server:
        server.feed("/sam.ics", text)
        connection_id = linking.link_ics(app, sydney, server.url("/sam.ics"))
        _sync(app, connection_id)

    assert _busy(app, sydney.id) == _expected(text)


def test_caldav_reads_all_day_and_floating_in_the_owners_zone(app, sydney, caldav_account):
    text = _calendar(_events())
    for number, event in enumerate(_events()):
        caldav_account.put(f"sydney-{number}.ics", _calendar([event]))
    connection_id = linking.link_caldav(app, sydney, caldav_account)

    _sync(app, connection_id)

    assert _busy(app, sydney.id) == _expected(text)
