"""Setting "Purge outdated events at midnight": visitors' details go N days after the booking,
the booking and its audit trail stay, and running it twice (or on two workers) changes
nothing more."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.bookings.models import Attendee, AuditEntry, Booking
from app.extensions import db
from app.public.models import PublicBooking
from tests.public.conftest import book_form, first_slot, set_settings


def _book_two(app, client, public) -> tuple[int, int]:
    """Two visitor bookings three days apart; returns their ids, earlier first."""
    early = first_slot(app, public["kind"], after_days=2)
    late = first_slot(app, public["kind"], after_days=5)
    assert book_form(client, "consultation", early, phone="+44 20 7946 0000").status_code == 200
    assert (
        book_form(
            client, "consultation", late, name="Walt Visitor", email="walt@example.test"
        ).status_code
        == 200
    )
    with app.app_context():
        ids = list(db.session.scalars(select(Booking.id).order_by(Booking.starts_at)))
        db.session.rollback()
    return ids[0], ids[1]


def _purge_at(app, now) -> int:
    from app.database import begin_write
    from app.public.purge import purge_outdated_visitors

    with app.app_context():
        begin_write()
        purged = purge_outdated_visitors(now)
        db.session.commit()
        return purged


def _visitor(app, booking_id: int) -> dict:
    with app.app_context():
        record = db.session.get(PublicBooking, booking_id)
        booking = db.session.get(Booking, booking_id)
        guests = db.session.scalars(
            select(Attendee).where(Attendee.booking_id == booking_id, Attendee.user_id.is_(None))
        ).all()
        out = {
            "name": record.contact_name,
            "email": record.contact_email,
            "phone": record.contact_phone,
            "description": booking.description,
            "status": booking.status,
            "guests": [(g.name, g.email) for g in guests],
            "audit": list(
                db.session.scalars(
                    select(AuditEntry.action)
                    .where(AuditEntry.booking_id == booking_id)
                    .order_by(AuditEntry.id)
                )
            ),
        }
        db.session.rollback()
    return out


def _ends(app, booking_id: int):
    with app.app_context():
        ends = db.session.get(Booking, booking_id).ends_at
        db.session.rollback()
    return ends


def test_only_visitors_past_the_cutoff_are_anonymised_once(app, client, public):
    set_settings(app, purge_outdated_events=True, purge_after_days=30)
    early, late = _book_two(app, client, public)
    before_late = _visitor(app, late)
    now = _ends(app, early) + timedelta(days=31)  # early is 31 days old, late only 28

    assert _purge_at(app, now) == 1
    gone = _visitor(app, early)
    assert (gone["name"], gone["email"], gone["phone"]) == ("Removed visitor", None, None)
    assert "Vera" not in gone["description"]
    assert gone["guests"] == [("Removed visitor", gone["guests"][0][1])]
    assert gone["guests"][0][1].endswith("@visitor.invalid")
    assert gone["status"] == "confirmed"  # the booking itself stays
    assert gone["audit"] == ["created", "visitor_details_removed"]  # history kept, purge noted
    assert _visitor(app, late) == before_late

    assert _purge_at(app, now) == 0  # a second run finds nothing more
    assert _visitor(app, early) == gone


def test_setting_off_or_fewer_days_changes_what_is_purged(app, client, public):
    early, _ = _book_two(app, client, public)
    now = _ends(app, early) + timedelta(days=31)
    assert _purge_at(app, now) == 0  # off by default
    assert _visitor(app, early)["email"] == "vera@example.test"
    set_settings(app, purge_outdated_events=True, purge_after_days=20)
    assert _purge_at(app, now) == 2  # both are older than 20 days


@pytest.mark.db
def test_two_workers_at_once_anonymise_each_visitor_once(app, client, public):
    """Both run the job at the same moment: each visitor is purged and audited exactly once."""
    set_settings(app, purge_outdated_events=True, purge_after_days=1)
    early, late = _book_two(app, client, public)
    now = _ends(app, late) + timedelta(days=2)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(_purge_at(app, now))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) in ([0, 2], [1, 1])
    with app.app_context():
        audits = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "visitor_details_removed")
        )
        db.session.rollback()
    assert audits == 2
    assert _visitor(app, early)["name"] == _visitor(app, late)["name"] == "Removed visitor"


def test_the_purge_runs_nightly_once_across_workers(app, redis):
    """The schedule holds it once a day; two workers ticking the same night enqueue it once."""
    from app import jobs

    [entry] = [p for p in jobs.SCHEDULE if p.func is jobs.purge_outdated_visitors]
    assert entry.every_seconds == 86400
    midnight = 86400 * 20_000 + 5
    first = jobs.tick(redis, now=midnight, schedule=[entry])
    second = jobs.tick(redis, now=midnight + 3600, schedule=[entry])
    assert len(first) == 1 and second == []
    assert len(jobs.tick(redis, now=midnight + 86400, schedule=[entry])) == 1
