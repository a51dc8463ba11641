"""Setting "Compute availability from calendars": on, a linked calendar's busy time removes
the slots it overlaps; off, the same busy time is kept (the calendar still shows it) but no
slot depends on it."""

from __future__ import annotations

from datetime import timedelta

from app.extensions import db
from tests.bookings.conftest import add_busy
from tests.public.conftest import first_slot, set_settings


def _offered(app, kind, start) -> bool:
    from app.bookings.models import BookingType
    from app.public.service import offered_slots

    with app.app_context():
        slots = offered_slots(
            db.session.get(BookingType, kind.id),
            start - timedelta(hours=1),
            start + timedelta(hours=2),
        )
        db.session.rollback()
    return any(s.start == start for s in slots)


def test_busy_block_removes_a_slot_only_when_computing_availability(app, public):
    start = first_slot(app, public["kind"])
    add_busy(app, public["agent"], start, start + timedelta(minutes=30))

    set_settings(app, compute_availability=True)
    assert not _offered(app, public["kind"], start)

    set_settings(app, compute_availability=False)
    assert _offered(app, public["kind"], start)
