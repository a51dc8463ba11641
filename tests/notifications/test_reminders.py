"""N3 reminders: one ``reminder.due`` per attendee per start time, however often (or however
many workers at once) the job runs; a moved meeting earns a new one."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select

from app import jobs
from app.admin.settings import set_setting
from app.bookings import service
from app.bookings.models import Booking
from app.bookings.service import Guest
from app.database import begin_write, utcnow
from app.extensions import db
from app.notifications.reminders import queue_reminders
from app.outbox import OutboxMessage
from tests.conftest import at
from tests.notifications.conftest import deliver_all, outbox_rows


def _run(app, now: datetime) -> int:
    """One run of the reminder pass, committed, as the periodic job does it."""
    with app.app_context():
        begin_write()
        emitted = queue_reminders(now)
        db.session.commit()
        db.session.remove()
        return emitted


def _reminders(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "reminder.due")
            .order_by(OutboxMessage.id)
        ).all()
        result = [{"key": r.dedupe_key, **r.payload} for r in rows]
        db.session.rollback()
        return result


def _setting(app, key: str, value: object) -> None:
    with app.app_context():
        begin_write()
        set_setting(key, value)
        db.session.commit()


def _meeting(factory, start: datetime, **kwargs):
    """A confirmed meeting: an agent holds it, with a learner and an outside guest."""
    agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    kind = factory.booking_type(name="Progress review", **kwargs)
    booking = factory.booking(
        None,
        kind,
        start,
        [agent],
        learner=learner,
        guests=[Guest("Mentor@Example.test", "Meg Mentor")],
    )
    return booking, agent, learner


def test_running_twice_sends_one_reminder_per_attendee(app, factory):
    """Two runs in the same window: one ``reminder.due`` per attendee, with the payload the
    planner reads."""
    start = at(2)
    booking, agent, learner = _meeting(factory, start)
    now = start - timedelta(minutes=30)

    assert _run(app, now) == 3
    assert _run(app, now + timedelta(minutes=1)) == 0

    reminders = _reminders(app)
    assert {r["key"] for r in reminders} == {
        f"reminder:{booking.id}:u{agent.id}:{start.isoformat()}",
        f"reminder:{booking.id}:u{learner.id}:{start.isoformat()}",
        next(r["key"] for r in reminders if r["attendee"]["user_id"] is None),
    }
    by_email = {r["attendee"]["email"]: r for r in reminders}
    assert set(by_email) == {"ada@example.test", "lee@example.test", "mentor@example.test"}
    assert by_email["ada@example.test"]["attendee"] == {
        "user_id": agent.id,
        "email": "ada@example.test",
        "name": "Ada Agent",
    }
    assert by_email["mentor@example.test"]["attendee"]["name"] == "Meg Mentor"
    guest_key = by_email["mentor@example.test"]["key"]
    assert "mentor" not in guest_key  # the address is hashed, not spelled out in the key
    for reminder in reminders:
        assert reminder["booking_id"] == booking.id
        assert reminder["status"] == "confirmed"
        assert reminder["sequence"] == booking.sequence


def test_two_workers_at_once_still_send_one(app, factory):
    """The periodic job started by two workers at the same moment emits each reminder once."""
    start = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=30)
    _meeting(factory, start)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.append(jobs.queue_meeting_reminders())
                db.session.remove()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(results) == [0, 3]
    assert len(_reminders(app)) == 3


def test_a_rescheduled_meeting_gets_a_new_reminder(app, factory):
    """Moving the meeting to a new time inside the window reminds everyone of the new time."""
    start = at(2)
    booking, _, _ = _meeting(factory, start)
    now = start - timedelta(minutes=40)
    assert _run(app, now) == 3

    new_start = start + timedelta(minutes=15)
    with app.app_context():
        begin_write()
        service.reschedule(None, db.session.get(Booking, booking.id), new_start)
        db.session.commit()
    assert _run(app, now + timedelta(minutes=1)) == 3
    assert _run(app, now + timedelta(minutes=2)) == 0

    reminders = _reminders(app)
    assert len(reminders) == 6
    assert sum(r["key"].endswith(new_start.isoformat()) for r in reminders) == 3
    assert {r["sequence"] for r in reminders[3:]} == {booking.sequence + 1}


def test_nothing_outside_the_window(app, factory):
    """Too early, already started: nothing. The window is the ``reminder_minutes`` setting."""
    start = at(2)
    _meeting(factory, start)
    assert _run(app, start - timedelta(minutes=61)) == 0  # the default is 60 minutes
    assert _run(app, start) == 0  # starting now: too late for a reminder
    assert _run(app, start + timedelta(minutes=5)) == 0
    assert _reminders(app) == []

    _setting(app, "reminder_minutes", 120)
    assert _run(app, start - timedelta(minutes=61)) == 3


def test_zero_minutes_turns_reminders_off(app, factory):
    """``reminder_minutes`` = 0 sends no reminders at all."""
    start = at(2)
    _meeting(factory, start)
    _setting(app, "reminder_minutes", 0)
    assert _run(app, start - timedelta(minutes=1)) == 0
    assert _reminders(app) == []


def test_cancelled_and_provisional_meetings_get_none(app, factory):
    """Only confirmed meetings are reminded of: not cancelled ones, not unapproved ones."""
    start = at(2)
    booking, agent, _ = _meeting(factory, start)
    with app.app_context():
        begin_write()
        service.cancel(None, db.session.get(Booking, booking.id))
        db.session.commit()
    approval = factory.booking_type(name="Planning meeting", requires_approval=True)
    provisional = factory.booking(None, approval, start + timedelta(hours=3), [agent])
    assert provisional.status == "provisional"

    assert _run(app, start - timedelta(minutes=30)) == 0
    assert _run(app, provisional.starts_at - timedelta(minutes=30)) == 0
    assert _reminders(app) == []


def test_the_job_is_scheduled_every_minute():
    """The worker's periodic schedule runs the reminder pass every 60 seconds."""
    [entry] = [p for p in jobs.SCHEDULE if p.func is jobs.queue_meeting_reminders]
    assert entry.every_seconds == 60


def test_each_attendee_receives_one_reminder_email(app, factory, smtp_server):
    """Acceptance 4: the job runs twice for the same window, the outbox is delivered to a
    real SMTP server, and each attendee has exactly one reminder in their inbox."""
    start = at(2)
    _meeting(factory, start)
    deliver_all(app)  # the invitations
    smtp_server.clear()
    now = start - timedelta(minutes=20)

    assert _run(app, now) == 3
    deliver_all(app)
    assert _run(app, now + timedelta(minutes=1)) == 0
    deliver_all(app)

    for address in ("ada@example.test", "lee@example.test", "mentor@example.test"):
        received = smtp_server.to(address)
        assert len(received) == 1, (address, [m.subject for m in received])
        assert "Progress review" in received[0].subject
    assert len(smtp_server.messages) == 3


def _reminder_mails(app) -> list[dict]:
    return [
        r["payload"] for r in outbox_rows(app, "notify.email") if r["payload"]["rule"] == "reminder"
    ]


def test_a_reminder_planned_after_a_cancel_is_dropped(app, factory):
    """A ``reminder.due`` still waiting when the meeting is cancelled reminds nobody."""
    start = at(2)
    booking, _, _ = _meeting(factory, start)
    assert _run(app, start - timedelta(minutes=30)) == 3
    with app.app_context():
        begin_write()
        service.cancel(None, db.session.get(Booking, booking.id))
        db.session.commit()
    deliver_all(app)
    assert _reminder_mails(app) == []


def test_a_reminder_planned_after_a_move_is_dropped_for_the_new_ones(app, factory):
    """A reminder of the old time planned after a reschedule is dropped; the new time's
    reminders go out, one per attendee."""
    start = at(2)
    booking, _, _ = _meeting(factory, start)
    now = start - timedelta(minutes=40)
    assert _run(app, now) == 3
    with app.app_context():
        begin_write()
        service.reschedule(None, db.session.get(Booking, booking.id), start + timedelta(hours=1))
        db.session.commit()
    deliver_all(app)
    assert _reminder_mails(app) == []  # the new time is not due yet
    assert _run(app, now + timedelta(hours=1)) == 3
    deliver_all(app)
    assert len(_reminder_mails(app)) == 3


def test_a_reminder_survives_an_edit_that_keeps_the_time(app, factory):
    """Adding a guest raises the sequence but not the start: the reminder still goes out."""
    start = at(2)
    booking, _, _ = _meeting(factory, start)
    assert _run(app, start - timedelta(minutes=30)) == 3
    with app.app_context():
        begin_write()
        service.add_attendee(
            None, db.session.get(Booking, booking.id), guest=Guest("late@example.test", "Lou")
        )
        db.session.commit()
    deliver_all(app)
    assert len(_reminder_mails(app)) == 3


def test_a_quiet_minute_asks_the_outbox_once(app, factory):
    """With every reminder already sent, a run looks the keys up in one query, not one per
    attendee (the job runs every minute)."""
    from sqlalchemy import event

    start = at(2)
    _meeting(factory, start)
    now = start - timedelta(minutes=30)
    assert _run(app, now) == 3

    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        if "dedupe_key" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert _run(app, now + timedelta(minutes=1)) == 0
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1, statements
    assert len(_reminders(app)) == 3
