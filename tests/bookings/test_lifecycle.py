"""B2 state machine: every transition, legal and illegal, through the service, with audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.bookings import lifecycle, service
from app.bookings.lifecycle import Action, TransitionError, next_status
from app.bookings.models import AuditEntry, Booking, Hold, Status
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.conftest import at

ALL_STATUSES = list(Status)
LEGAL = {
    (Status.PROVISIONAL, Action.APPROVE): Status.CONFIRMED,
    (Status.PROVISIONAL, Action.REJECT): Status.REJECTED,
    (Status.PROVISIONAL, Action.CANCEL): Status.CANCELLED,
    (Status.PROVISIONAL, Action.RESCHEDULE): Status.PROVISIONAL,
    (Status.CONFIRMED, Action.CANCEL): Status.CANCELLED,
    (Status.CONFIRMED, Action.COMPLETE): Status.COMPLETED,
    (Status.CONFIRMED, Action.RESCHEDULE): Status.CONFIRMED,
    (Status.CONFIRMED, Action.REBOOK): Status.CONFIRMED,
    (Status.COMPLETED, Action.REBOOK): Status.COMPLETED,
    (Status.CONFIRMED, Action.NO_SHOW): Status.NO_SHOW,
}


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("action", list(Action))
def test_table_allows_exactly_the_b2_moves(status, action):
    """The pure table agrees with B2 (plus no_show) for every (status, action) pair."""
    if (status, action) in LEGAL:
        assert next_status(status, action) == LEGAL[(status, action)]
        assert action in lifecycle.allowed_actions(status)
    else:
        with pytest.raises(TransitionError, match=f"A {status} booking cannot be"):
            next_status(status, action)
        assert action not in lifecycle.allowed_actions(status)


@pytest.fixture
def people(factory):
    manager = factory.user("booking-manager", name="Mo Manager")
    agent = factory.user("agent", name="Ada Agent")
    learner = factory.user("learner", name="Lee Learner")
    return manager, agent, learner


def _make(factory, people, status: Status, day: int = 3):
    """A booking driven into ``status`` through the service (as the system, for brevity)."""
    manager, agent, learner = people
    needs_approval = status in {Status.PROVISIONAL, Status.REJECTED}
    kind = factory.booking_type(requires_approval=needs_approval)
    start = at(-day)  # in the past, so "complete" is possible where the status allows it
    booking = factory.booking(manager, kind, start, [agent], learner=learner)
    steps = {
        Status.REJECTED: service.reject,
        Status.CANCELLED: service.cancel,
        Status.COMPLETED: service.complete,
        Status.NO_SHOW: service.mark_no_show,
    }
    if status in steps:
        with factory.app.app_context():
            begin_write()
            steps[status](None, db.session.get(Booking, booking.id))
            db.session.commit()
    return booking


def _run(app, action: Action, booking_id: int, actor_id: int):
    """Perform ``action`` in a fresh transaction; return the (reloaded) booking or raise."""
    from app.accounts.models import User

    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, booking_id)
        actor = db.session.get(User, actor_id)
        calls = {
            Action.APPROVE: lambda: service.approve(actor, booking),
            Action.REJECT: lambda: service.reject(actor, booking),
            Action.CANCEL: lambda: service.cancel(actor, booking),
            Action.COMPLETE: lambda: service.complete(actor, booking),
            Action.RESCHEDULE: lambda: service.reschedule(
                actor, booking, booking.starts_at + (booking.ends_at - booking.starts_at) * 3
            ),
            Action.REBOOK: lambda: service.rebook(actor, booking, at(20), "resit"),
            Action.NO_SHOW: lambda: service.mark_no_show(actor, booking),
        }
        try:
            result = calls[action]()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return result


def _snapshot(app, booking_id):
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        return (
            booking.status,
            booking.starts_at,
            booking.sequence,
            db.session.scalar(select(db.func.count()).select_from(AuditEntry)),
            db.session.scalar(select(db.func.count()).select_from(OutboxMessage)),
            db.session.scalar(select(db.func.count()).select_from(Booking)),
        )


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("action", list(Action))
def test_service_transition(app, factory, people, status, action):
    """Each legal move lands in the right status with an audit entry naming who and what;
    each illegal one raises a readable TransitionError and changes nothing."""
    manager = people[0]
    booking = _make(factory, people, status)
    before = _snapshot(app, booking.id)
    if (status, action) not in LEGAL:
        with pytest.raises(TransitionError) as excinfo:
            _run(app, action, booking.id, manager.id)
        assert str(excinfo.value).startswith(f"A {status} booking cannot be")
        assert _snapshot(app, booking.id) == before
        return

    result = _run(app, action, booking.id, manager.id)
    with app.app_context():
        original = db.session.get(Booking, booking.id)
        assert original.status == LEGAL[(status, action)]
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking.id).order_by(AuditEntry.id)
        ).all()
        last = entries[-1]
        assert last.actor_id == manager.id
        assert last.created_at is not None and last.created_at.tzinfo is not None
        if action == Action.REBOOK:
            new = db.session.get(Booking, result.id)
            assert new.rebook_of_id == original.id and new.rebook_kind == "resit"
            assert last.action == "rebooked" and last.changes["rebooked_as"] == [None, new.id]
        elif action == Action.RESCHEDULE:
            assert last.action == "rescheduled"
            assert last.changes["starts_at"][0] == before[1].isoformat()
            assert original.starts_at != before[1] and original.sequence == before[2] + 1
        else:
            assert (
                last.action
                == {
                    "approve": "approved",
                    "reject": "rejected",
                    "cancel": "cancelled",
                    "complete": "completed",
                    "no_show": "no_show",
                }[action]
            )
            assert last.changes == {"status": [status.value, LEGAL[(status, action)].value]}


def test_cancel_and_reject_release_holds_and_provisional_holds(app, factory, people):
    """Provisional bookings hold their slot; cancelling or rejecting frees it for others."""
    manager, agent, _ = people
    kind = factory.booking_type(requires_approval=True)
    pending = factory.booking(manager, kind, at(4), [agent])
    with pytest.raises(service.ConflictError, match="Ada Agent already has a booking"):
        factory.booking(manager, kind, at(4, minute=30), [agent])

    _run(app, Action.REJECT, pending.id, manager.id)
    again = factory.booking(manager, kind, at(4, minute=30), [agent])  # now free
    _run(app, Action.CANCEL, again.id, manager.id)
    with app.app_context():
        holds = db.session.scalars(select(Hold)).all()
        assert holds and not any(h.active for h in holds)
    factory.booking(manager, kind, at(4), [agent])


def test_buffers_are_part_of_the_hold(app, factory, people):
    """A buffer after one booking blocks a booking that starts inside it."""
    manager, agent, _ = people
    kind = factory.booking_type(duration_minutes=60, buffer_after_minutes=30)
    factory.booking(manager, kind, at(5, hour=9), [agent])
    with pytest.raises(service.ConflictError):
        factory.booking(manager, kind, at(5, hour=10, minute=15), [agent])
    factory.booking(manager, kind, at(5, hour=10, minute=30), [agent])


def test_reschedule_into_a_clash_changes_nothing(app, factory, people):
    """Moving onto someone's other booking is refused and the booking keeps its time."""
    manager, agent, _ = people
    kind = factory.booking_type()
    first = factory.booking(manager, kind, at(6, hour=9), [agent])
    second = factory.booking(manager, kind, at(6, hour=13), [agent])
    before = _snapshot(app, second.id)
    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, second.id)
        with pytest.raises(service.ConflictError):
            service.reschedule(None, booking, first.starts_at)
        db.session.rollback()
    assert _snapshot(app, second.id) == before


def test_rebook_keeps_the_original_and_links_the_new(app, factory, people):
    """A resit is a new booking linked to the original, which keeps its status and time (B4)."""
    manager, agent, learner = people
    done = _make(factory, people, Status.COMPLETED, day=2)
    new = _run(app, Action.REBOOK, done.id, manager.id)
    with app.app_context():
        original = db.session.get(Booking, done.id)
        resit = db.session.get(Booking, new.id)
        assert original.status == Status.COMPLETED and original.starts_at == done.starts_at
        assert resit.rebook_of_id == original.id and resit.learner_id == learner.id
        assert {a.user_id for a in resit.attendees} == {agent.id, learner.id}
        assert resit.uid != original.uid


def test_attendee_changes_are_audited_and_emitted(app, factory, people):
    """Adding and removing attendees writes audit entries and attendee.* outbox messages."""
    manager, agent, learner = people
    kind = factory.booking_type()
    booking = factory.booking(manager, kind, at(7), [agent])
    with app.app_context():
        begin_write()
        b = db.session.get(Booking, booking.id)
        from app.accounts.models import User

        actor = db.session.get(User, manager.id)
        added = service.add_attendee(actor, b, guest=service.Guest("Mentor@Example.com", "Meg"))
        service.add_attendee(actor, b, user=db.session.get(User, learner.id))
        db.session.commit()
        assert added.email == "mentor@example.com"
        begin_write()
        b = db.session.get(Booking, booking.id)
        service.remove_attendee(actor, b, next(a for a in b.attendees if a.email))
        db.session.commit()
        kinds = db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
        assert kinds == ["booking.created", "attendee.added", "attendee.added", "attendee.removed"]
        removed = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "attendee.removed")
        ).one()
        assert removed.payload["attendee"]["email"] == "mentor@example.com"
        actions = [e.action for e in db.session.get(Booking, booking.id).audit_entries]
        assert actions == ["created", "attendee_added", "attendee_added", "attendee_removed"]
        # the learner now holds the time too
        assert {h.person_id for h in db.session.get(Booking, booking.id).holds} == {
            agent.id,
            learner.id,
        }


def test_bad_input_is_refused_with_a_clear_message(app, factory, people):
    """Naive times, inactive types, wrong location modes and bad guest emails are refused."""
    from datetime import datetime

    manager, agent, _ = people
    kind = factory.booking_type(location_modes=["face_to_face"])
    with pytest.raises(service.BookingError, match="time zone"):
        factory.booking(manager, kind, datetime(2030, 1, 1, 9), [agent])
    with pytest.raises(service.BookingError, match="location"):
        factory.booking(manager, kind, at(3), [agent], location_mode="teams")
    with pytest.raises(service.BookingError, match="not a valid email"):
        factory.booking(manager, kind, at(3), [agent], guests=[service.Guest("nope")])
    with pytest.raises(service.BookingError, match="before it starts"):
        booking = factory.booking(manager, kind, at(3), [agent])
        _run(app, Action.COMPLETE, booking.id, manager.id)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Booking)) == 1


@pytest.mark.parametrize(
    "email",
    [
        "eve@example.test\r\nBcc: victim@example.test",
        "eve@exam\nple.test",
        "eve@example.test\x00",
        "eve\t@example.test",
        "eve@exa mple.test",
        "eve@example.test\u2028x",
    ],
)
def test_guest_emails_with_line_breaks_or_control_characters_are_refused(
    app, factory, people, email
):
    """CR/LF or control characters would crash the planner's calendar file later."""
    manager, agent, _ = people
    kind = factory.booking_type()
    with pytest.raises(service.BookingError, match="line breaks or control characters"):
        factory.booking(manager, kind, at(3), [agent], guests=[service.Guest(email)])
    booking = factory.booking(manager, kind, at(5), [agent])
    with app.app_context():
        begin_write()
        from app.accounts.models import User

        actor = db.session.get(User, manager.id)
        with pytest.raises(service.BookingError, match="line breaks or control characters"):
            service.add_attendee(
                actor, db.session.get(Booking, booking.id), guest=service.Guest(email)
            )
        db.session.rollback()
