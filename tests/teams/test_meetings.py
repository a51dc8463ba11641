"""Teams meetings through Microsoft Graph (T1, T2, issue [10] acceptance 1, 2, 4), checked
in the local Microsoft stand-in's state after the real outbox delivered the booking's
messages: create, reschedule, attendee added, cancel, switching to and from Teams, a retried
delivery, 429/503 and a revoked secret, the scheduling window with an injected clock, and
what happens when Teams cannot work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import outbox
from app.accounts.models import User
from app.bookings import service as bookings
from app.bookings.models import Booking
from app.connections.models import Connection, RemoteEvent
from app.database import begin_write
from app.extensions import db
from app.notifications.models import Notification
from app.outbox import OutboxMessage
from app.teams import meetings
from app.teams.models import OnlineMeeting
from app.teams.service import TeamsUnavailable
from tests.conftest import at
from tests.fakes import graph_server as _fake_microsoft
from tests.teams import meet_helpers
from tests.teams.meet_helpers import booking_row, call, deliver_all, meeting_of

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
tenant = meet_helpers.tenant


def act(app, fn, booking_id: int, *args, **kwargs) -> int:
    """A booking action by the manager."""

    def run():
        manager = db.session.scalar(select(User).where(User.email == "mo@contoso.test"))
        booking = db.session.get(Booking, booking_id)
        result = fn(manager, booking, *args, **kwargs)
        return result if isinstance(result, Booking) else booking

    return call(app, run)


def teams_booking(factory, tenant, days: int = 3, **kwargs):
    manager, ada, lee = tenant
    kind = factory.booking_type(
        name="Review", location_modes=["teams", "face_to_face"], default_location_mode="teams"
    )
    kwargs.setdefault("location_mode", "teams")
    return factory.booking(
        manager, kind, at(days, 10), [ada], learner=lee, title="Progress", **kwargs
    )


def outbox_rows(app, kind_prefix: str) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind.like(kind_prefix + "%"))
            .order_by(OutboxMessage.id)
        ).all()
        db.session.commit()
        return rows


# --- T1: the meeting follows the booking --------------------------------------------------


def test_inside_the_window_the_meeting_is_made_at_once_with_its_join_link(
    app, factory, tenant, graph_server
):
    """Organiser's mailbox, isOnlineMeeting + teamsForBusiness, type-named title, agenda,
    the learner invited; the join URL and the onlineMeeting id are stored; no calendar event
    of ours is written (the Teams invitation takes over)."""
    _, ada, lee = tenant
    booking = teams_booking(factory, tenant, description="Targets for next month")
    assert set(deliver_all(app)) == {"done"}

    [(event, meeting)] = graph_server.teams_meetings_of(ada.email)
    assert event.subject == "Review: Progress"
    assert event.body["content"] == "Targets for next month"
    assert event.start == booking.starts_at
    assert [a["emailAddress"]["address"] for a in meeting.attendees] == [lee.email]
    data = graph_server._event_json(event, "UTC")
    assert (data["isOnlineMeeting"], data["onlineMeetingProvider"]) == (True, "teamsForBusiness")

    row = meeting_of(app, booking.id)
    assert row.state == "scheduled"
    assert row.join_url == meeting.join_url
    assert row.graph_event_id == event.id
    assert row.graph_online_meeting_id == meeting.id  # found by JoinWebUrl eq '…'
    assert graph_server.graph_requests("GET", "/onlineMeetings")
    with app.app_context():
        assert db.session.scalars(select(RemoteEvent)).all() == []


def test_reschedule_attendee_and_cancel_update_the_meeting(app, factory, tenant, graph_server):
    manager, ada, lee = tenant
    booking = teams_booking(factory, tenant)
    deliver_all(app)
    [(event, _)] = graph_server.teams_meetings_of(ada.email)

    act(app, bookings.reschedule, booking.id, at(4, 14))
    assert set(deliver_all(app)) == {"done"}
    assert graph_server.event(event.id).start == at(4, 14)

    guest_adder = factory.user("employer", email="erin@employer.test", name="Erin Employer")
    with app.app_context():
        begin_write()
        actor = db.session.get(User, manager.id)
        bookings.add_attendee(
            actor, db.session.get(Booking, booking.id), user=db.session.get(User, guest_adder.id)
        )
        db.session.commit()
    assert set(deliver_all(app)) == {"done"}
    invited = [a["emailAddress"]["address"] for a in graph_server.teams_meeting(event.id).attendees]
    assert invited == [lee.email, "erin@employer.test"]

    act(app, bookings.cancel, booking.id)
    assert set(deliver_all(app)) == {"done"}
    assert graph_server.teams_meetings_of(ada.email) == []
    assert graph_server.event(event.id).is_cancelled
    assert graph_server.teams_meeting(event.id).cancelled_comment
    assert meeting_of(app, booking.id).state == "cancelled"
    # Only the one event was ever made (the reschedule and the new attendee were PATCHes).
    assert len(graph_server.graph_requests("POST", "/calendar/events")) == 1


def test_switching_to_and_from_teams(app, factory, tenant, graph_server):
    """To Teams: our Outlook event goes, the Teams meeting comes. Back: the meeting is
    cancelled and write-back puts our event in again (K5)."""
    manager, ada, lee = tenant
    kind = factory.booking_type(name="Review", location_modes=["face_to_face", "teams"])
    booking = factory.booking(manager, kind, at(3, 9), [ada], learner=lee)
    deliver_all(app)
    [ours] = graph_server.events_of(ada.email)
    assert graph_server.teams_meetings_of(ada.email) == []

    act(app, bookings.update_details, booking.id, location_mode="teams")
    assert set(deliver_all(app)) == {"done"}
    assert graph_server.event(ours.id).deleted
    [(event, _)] = graph_server.teams_meetings_of(ada.email)

    act(app, bookings.update_details, booking.id, location_mode="face_to_face")
    assert set(deliver_all(app)) == {"done"}
    assert graph_server.teams_meetings_of(ada.email) == []
    assert graph_server.event(event.id).is_cancelled
    [back] = graph_server.events_of(ada.email)
    assert back.subject == "Review" and back.id != event.id
    assert meeting_of(app, booking.id).state == "cancelled"

    act(app, bookings.update_details, booking.id, location_mode="teams")  # and back again
    assert set(deliver_all(app)) == {"done"}
    [(again, _)] = graph_server.teams_meetings_of(ada.email)
    assert again.id != event.id
    assert graph_server.events_of(ada.email) == [again]


def test_a_retried_delivery_creates_no_second_meeting(app, factory, tenant, graph_server):
    """The create reached Microsoft but our record was lost: the same transactionId brings
    back the first event."""
    _, ada, _ = tenant
    booking = teams_booking(factory, tenant)
    deliver_all(app)
    first = meeting_of(app, booking.id)
    with app.app_context():
        begin_write()
        message = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "booking.created")
        ).one()
        message.status, message.handled = outbox.PENDING, []
        row = db.session.get(OnlineMeeting, first.id)
        row.state, row.graph_event_id, row.join_url = "waiting", None, None
        db.session.commit()
    assert set(deliver_all(app)) == {"done"}
    assert len(graph_server.teams_meetings_of(ada.email)) == 1
    assert len(graph_server.graph_requests("POST", "/calendar/events")) == 2
    again = meeting_of(app, booking.id)
    assert (again.graph_event_id, again.join_url) == (first.graph_event_id, first.join_url)


@pytest.mark.parametrize("fault", ["429", "503"])
def test_throttled_or_unavailable_graph_is_retried_later(app, factory, tenant, graph_server, fault):
    """K6: the meeting keeps waiting, the outbox row is retried after Retry-After, and the
    retry makes the meeting."""
    _, ada, _ = tenant
    if fault == "429":
        graph_server.throttle(times=1, retry_after=120)
    else:
        graph_server.fail_next(times=1, status=503)
    booking = teams_booking(factory, tenant)
    statuses = deliver_all(app)
    assert "pending" in statuses
    assert meeting_of(app, booking.id).state == "waiting"
    assert graph_server.teams_meetings_of(ada.email) == []
    [created] = [m for m in outbox_rows(app, "booking.created")]
    assert created.status == "pending"
    if fault == "429":  # Retry-After: 120 is believed over the shorter back-off
        assert created.available_at >= datetime.now(UTC) + timedelta(seconds=100)
    with app.app_context():
        assert outbox.deliver(created.id) == "done"
    assert meeting_of(app, booking.id).state == "scheduled"
    assert len(graph_server.teams_meetings_of(ada.email)) == 1


def test_a_revoked_secret_marks_the_connection_and_falls_back(app, factory, tenant, graph_server):
    """K6: the organisation connection needs re-linking, the meeting failed with the reason,
    the owner is told, and the attendees get .ics invitations instead."""
    _, ada, lee = tenant
    graph_server.client_secret = "rotated-by-an-admin"
    booking = teams_booking(factory, tenant)
    deliver_all(app)
    row = meeting_of(app, booking.id)
    assert row.state == "failed"
    assert "Microsoft" in row.error
    with app.app_context():
        assert db.session.scalar(select(Connection.needs_relink)) is True
        note = db.session.scalars(select(Notification).where(Notification.rule == "teams_failed"))
        assert [n.user_id for n in note] == [ada.id]
        mails = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "notify.email")
        ).all()
        with_ics = [m for m in mails if m.payload.get("ics")]
        assert {m.payload["to"] for m in with_ics} >= {lee.email}


def test_organiser_outside_the_tenant_fails_with_a_visible_reason(app, factory, tenant):
    _, ada, lee = tenant
    booking = teams_booking(factory, tenant, organiser_email="someone@elsewhere.test")
    deliver_all(app)
    row = meeting_of(app, booking.id)
    assert row.state == "failed"
    assert "someone@elsewhere.test is not a user" in row.error
    # Write-back stands in: Ada's and Lee's Outlook events are written as for any booking.
    assert sorted(e.person_id for e in _remote_events(app)) == [ada.id, lee.id]


def _remote_events(app):
    with app.app_context():
        rows = db.session.scalars(select(RemoteEvent)).all()
        db.session.commit()
        return rows


def test_the_organiser_email_entered_on_the_booking_is_the_organiser(
    app, factory, tenant, graph_server
):
    manager, ada, lee = tenant
    booking = teams_booking(factory, tenant, organiser_email="MO@contoso.test")
    deliver_all(app)
    assert graph_server.teams_meetings_of(ada.email) == []
    [(_, meeting)] = graph_server.teams_meetings_of(manager.email)
    invited = {a["emailAddress"]["address"] for a in meeting.attendees}
    assert invited == {ada.email, lee.email}
    assert meeting_of(app, booking.id).organiser_email == "mo@contoso.test"


# --- T2: the scheduling window ---------------------------------------------------------------


def test_ten_days_out_waits_then_the_job_pushes_it_inside_the_window(
    app, factory, tenant, graph_server
):
    _, ada, _ = tenant
    booking = teams_booking(factory, tenant, days=10)
    assert set(deliver_all(app)) == {"done"}
    row = meeting_of(app, booking.id)
    assert row.state == "waiting"
    assert row.push_after == booking.starts_at - timedelta(days=5)
    assert graph_server.teams_meetings_of(ada.email) == []

    with app.app_context():
        begin_write()
        assert meetings.schedule_due(now=booking.starts_at - timedelta(days=6)) == 0
        db.session.commit()
    deliver_all(app)
    assert graph_server.teams_meetings_of(ada.email) == []

    with app.app_context():
        begin_write()
        assert meetings.schedule_due(now=booking.starts_at - timedelta(days=4)) == 1
        db.session.commit()
    assert set(deliver_all(app)) == {"done"}
    assert meeting_of(app, booking.id).state == "scheduled"
    assert len(graph_server.teams_meetings_of(ada.email)) == 1


def test_a_booking_two_hours_ahead_is_refused(app, factory, tenant, graph_server):
    manager, ada, _ = tenant
    kind = factory.booking_type(name="Review", location_modes=["teams"])
    soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    with pytest.raises(bookings.BookingError, match="at least 3 hours from now"):
        factory.booking(manager, kind, soon, [ada], location_mode="teams")
    with app.app_context():
        assert db.session.scalars(select(Booking)).all() == []
    assert graph_server.graph_requests("POST", "/events") == []


# --- when Teams cannot work ------------------------------------------------------------------


def test_without_a_connection_teams_is_refused(app, factory):
    manager = factory.user("booking-manager")
    ada = factory.user("agent")
    kind = factory.booking_type(name="Review", location_modes=["teams", "face_to_face"])
    with pytest.raises(TeamsUnavailable, match="Microsoft 365 connection"):
        factory.booking(manager, kind, at(3, 10), [ada], location_mode="teams")


def test_an_existing_booking_falls_back_when_the_connection_is_gone(
    app, factory, tenant, graph_server, client
):
    """The connection was removed after the booking was made: the window job's push fails,
    the booking shows why, and write-back + .ics stand in."""
    booking = teams_booking(factory, tenant, days=10)
    deliver_all(app)
    with app.app_context():
        begin_write()
        db.session.execute(Connection.__table__.delete())
        meetings.schedule_due(now=booking.starts_at - timedelta(days=4))
        db.session.commit()
    deliver_all(app)
    row = meeting_of(app, booking.id)
    assert row.state == "failed"
    assert "Microsoft 365 connection" in row.error
    entries = [e.action for e in booking_row(app, booking.id).audit_entries]
    assert "teams_failed" in entries


def test_an_update_refused_keeps_the_meeting_that_exists(app, factory, tenant, graph_server):
    """The meeting was made and its invitations went out; a later move that Microsoft
    refuses (secret revoked) keeps it scheduled with the reason, marks the connection, and
    adds no calendar events of ours beside the Teams invitation."""
    booking = teams_booking(factory, tenant)
    deliver_all(app)
    graph_server.client_secret = "rotated-by-an-admin"
    act(app, bookings.reschedule, booking.id, at(4, 14))
    deliver_all(app)
    row = meeting_of(app, booking.id)
    assert row.state == "scheduled"
    assert row.error.startswith("Could not update the Teams meeting")
    assert _remote_events(app) == []
    with app.app_context():
        assert db.session.scalar(select(Connection.needs_relink)) is True
