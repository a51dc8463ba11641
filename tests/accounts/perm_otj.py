"""Permission-table builders for Teams attendance review and the off-the-job report (T3, T4).

``POST /bookings/<id>/attendance`` is guarded per booking like the booking's own actions (404
when the sender cannot see it, then ``bookings.edit``); each request reviews a fresh past
booking whose attendance needs review. The report and its CSV need ``bookings.view_all``.
``register(tables)`` adds them to the shared tables of ``tests/accounts/conftest.py``.
"""

from __future__ import annotations

import itertools

from app.accounts.permissions import Perm
from tests.conftest import at

# Days of our own, far in the past: the world's day counter is shared, and taking numbers
# from it would move the days later builders book on into each other.
_DAYS = itertools.count(200)


def _needs_review(world, holder) -> int:
    from app.bookings.models import Booking
    from app.database import begin_write
    from app.extensions import db
    from app.teams.attendance_models import MeetingAttendance

    booking = world.factory.booking(None, world.plain_type, at(-next(_DAYS)), [holder])
    with world.app.app_context():
        begin_write()
        row = db.session.get(Booking, booking.id)
        row.location_mode = "teams"
        row.planned_otj_minutes = 60
        db.session.add(
            MeetingAttendance(
                booking_id=row.id,
                state="needs_review",
                otj_minutes=30,
                people=[],
                reason="Held on another day.",
                tries=0,
            )
        )
        db.session.commit()
    return booking.id


def register(tables: dict) -> None:
    """Add this area's routes to the permission tables."""
    req = tables["Req"]

    def review(world, holder, actor):
        booking_id = _needs_review(world, holder)
        return [
            req(
                "otj:review",
                "POST",
                f"/bookings/{booking_id}/attendance",
                {"minutes": "45"},
                303,
                Perm.BOOKINGS_EDIT,
                booking_id,
                involved=actor is not None and holder.id == actor.id,
            )
        ]

    def report(world, holder, actor):
        return [req("otj:report", "GET", "/reports/otj", permission=Perm.BOOKINGS_VIEW_ALL)]

    def report_csv(world, holder, actor):
        return [req("otj:csv", "GET", "/reports/otj.csv", permission=Perm.BOOKINGS_VIEW_ALL)]

    tables["OBJECT_BUILDERS"]["otj.review_attendance"] = review
    tables["GUARDED_PERMISSIONS"].update(
        {"otj.report": Perm.BOOKINGS_VIEW_ALL, "otj.report_csv": Perm.BOOKINGS_VIEW_ALL}
    )
    tables["GUARDED_BUILDERS"].update({"otj.report": report, "otj.report_csv": report_csv})
