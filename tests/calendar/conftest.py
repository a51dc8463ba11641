"""Helpers for the calendar tests: busy blocks, bookings written as rows, fixed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

LONDON = ZoneInfo("Europe/London")
MONDAY = date(2030, 1, 14)  # a winter week, far from any clock change


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = LONDON) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


@pytest.fixture
def rows(app):
    """Write rows directly (busy blocks as a sync would; bookings as imported data would)."""

    class Rows:
        def busy(self, person, start, end, *, status="busy", source="caldav:1", title=None):
            from app.connections.models import BusyBlock
            from app.database import begin_write
            from app.extensions import db

            with app.app_context():
                begin_write()
                block = BusyBlock(
                    person_id=person.id,
                    starts_at=start,
                    ends_at=end,
                    status=status,
                    source=source,
                    title=title,
                )
                db.session.add(block)
                db.session.commit()
                return block.id

        def booking(self, kind, person, start, end, *, title="Imported", status="confirmed"):
            """A booking with one internal attendee and no hold (as if imported): the only way
            two active bookings of one person can overlap, which the calendar must still show."""
            from app.bookings.models import Attendee, Booking
            from app.database import begin_write
            from app.extensions import db

            with app.app_context():
                begin_write()
                booking = Booking(
                    booking_type_id=kind.id,
                    status=status,
                    title=title,
                    starts_at=start,
                    ends_at=end,
                    owner_id=person.id,
                )
                booking.attendees.append(Attendee(user_id=person.id, role="agent"))
                db.session.add(booking)
                db.session.commit()
                return booking.id

        def setting(self, key, value):
            from app.admin.settings import set_setting
            from app.database import begin_write
            from app.extensions import db

            with app.app_context():
                begin_write()
                set_setting(key, value)
                db.session.commit()

    return Rows()
