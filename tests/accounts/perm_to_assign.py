"""Permission-table builders for "Take it" on the calendar's To-assign list
(``POST /bookings/<id>/take``, setting "Show unassigned bookings on agent dashboards").

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py``. Each request takes a fresh booking whose person was
deactivated, on a weekday afternoon no other booking of the sweep uses, so an allowed sender
is free then and the take really writes.
"""

from __future__ import annotations

from datetime import timedelta

from app.accounts.permissions import Perm


def _orphan(world) -> int:
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    leaver = world.factory.user("agent")
    start = world.future().replace(hour=16)
    while start.weekday() >= 5:  # the organisation's default week has no weekends
        start += timedelta(days=1)
    with world.app.app_context():
        begin_write()
        person = db.session.get(User, leaver.id)
        kind = db.session.get(BookingType, world.plain_type.id)
        booking = service.create_booking(None, kind, start, [person])
        person.active = False
        db.session.commit()
        return booking.id


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    req = tables["Req"]

    def take(world, holder, actor):
        url = f"/bookings/{_orphan(world)}/take"
        return [req("bookings:take", "POST", url, {}, 303, Perm.BOOKINGS_EDIT)]

    tables["LOGIN_ONLY_BUILDERS"]["bookings.take"] = take
