"""Write-back (K5, seed 000) through the real outbox into a real Radicale and the local
Microsoft stand-in: events are created, retitled, moved and deleted exactly as the seed's
event-handling rules say, and a retried delivery never makes a second event."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from icalendar import Calendar
from sqlalchemy import select

from app import outbox
from app.accounts.models import User
from app.bookings import service as bookings
from app.bookings.models import Booking, BookingType
from app.connections import service
from app.connections.models import Connection, LinkedCalendar, RemoteEvent
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.conftest import at
from tests.connections import test_linking as linking
from tests.connections.conftest import CalDavAccount
from tests.connections.test_cli import allow_private_urls
from tests.fakes import graph_server as _fake_microsoft

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
microsoft = linking.microsoft
call = linking.call


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def people(app, factory):
    allow_private_urls(app)
    manager = factory.user("booking-manager", name="Mo Manager")
    ada = factory.user("agent", email="ada@contoso.test", name="Ada Agent")
    return manager, ada


@pytest.fixture
def ada_on_radicale(app, people, caldav_account):
    """Ada linked her CalDAV account; her "Work" calendar receives bookings."""
    _, ada = people
    connection_id = linking.link_caldav(app, ada, caldav_account)
    work = linking.calendar_id(app, connection_id, "Work")
    call(
        app,
        lambda: service.set_calendar_options(
            db.session.get(User, ada.id), work, for_availability=True, receives_bookings=True
        ),
    )
    assert set(deliver_all(app)) == {"done"}  # linking's own messages (nothing to write yet)
    return caldav_account


def deliver_all(app) -> list[str]:
    """Run every pending outbox row once, as the worker would, including rows those
    deliveries emit; their statuses."""
    seen: set[int] = set()
    statuses: list[str] = []
    with app.app_context():
        while True:
            ids = [
                i
                for i in db.session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == outbox.PENDING)
                    .where(OutboxMessage.kind.not_like("notify.%"))  # mail: tests/notifications
                    .order_by(OutboxMessage.id)
                )
                if i not in seen
            ]
            db.session.rollback()
            if not ids:
                break
            seen.update(ids)
            statuses += [outbox.deliver(i) for i in ids]
        db.session.remove()
    return statuses


def act(app, fn, booking_id: int, *args, **kwargs) -> int:
    """A booking action by the manager (user id 1 in these tests is not assumed)."""

    def run():
        manager = db.session.scalar(select(User).where(User.email.like("booking-manager%")))
        booking = db.session.get(Booking, booking_id)
        result = fn(manager, booking, *args, **kwargs)
        return result if isinstance(result, Booking) else booking

    return call(app, run)


def remote_events(app, booking_id: int) -> list[RemoteEvent]:
    with app.app_context():
        rows = db.session.scalars(
            select(RemoteEvent).where(RemoteEvent.booking_id == booking_id)
        ).all()
        db.session.commit()  # read only; commit keeps the rows loaded (rollback expires them)
        return rows


def vevent(account, href: str):
    response = account.get(href)
    assert response.status_code == 200, (href, response.status_code)
    events = [c for c in Calendar.from_ical(response.content).walk("VEVENT")]
    assert len(events) == 1
    return events[0]


def object_names(account, slug: str = "work") -> list[str]:
    return [n for n in account.object_names(slug) if n.endswith(".ics")]


# --- CalDAV (Radicale) -----------------------------------------------------------------


def test_provisional_then_approved_then_moved_then_cancelled(app, factory, people, ada_on_radicale):
    manager, ada = people
    kind = factory.booking_type(name="Planning meeting", requires_approval=True)
    start = at(3, 10)
    booking = factory.booking(manager, kind, start, [ada])
    assert booking.status == "provisional"
    assert deliver_all(app) == ["done"]

    [record] = remote_events(app, booking.id)
    assert record.remote_id.endswith(f"/work/{booking.uid}.ics")
    event = vevent(ada_on_radicale, record.remote_id)
    assert str(event["SUMMARY"]) == "[PENDING] Planning meeting"
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["UID"]) == booking.uid
    assert event.decoded("DTSTART") == start

    act(app, bookings.approve, booking.id)
    assert deliver_all(app) == ["done"]
    event = vevent(ada_on_radicale, record.remote_id)
    assert str(event["SUMMARY"]) == "Planning meeting"  # [PENDING] removed on approval
    assert str(event["STATUS"]) == "CONFIRMED"

    later = start + timedelta(days=1, hours=2)
    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]
    [moved] = remote_events(app, booking.id)
    assert moved.remote_id == record.remote_id  # moved, not a second event
    event = vevent(ada_on_radicale, moved.remote_id)
    assert event.decoded("DTSTART") == later
    assert event.decoded("DTEND") == later + kind.duration
    assert object_names(ada_on_radicale) == [f"{booking.uid}.ics"]

    act(app, bookings.cancel, booking.id)
    assert deliver_all(app) == ["done"]
    assert remote_events(app, booking.id) == []
    assert ada_on_radicale.get(record.remote_id).status_code == 404
    assert object_names(ada_on_radicale) == []


def test_rejected_provisional_booking_loses_its_event(app, factory, people, ada_on_radicale):
    manager, ada = people
    kind = factory.booking_type(name="Planning meeting", requires_approval=True)
    booking = factory.booking(manager, kind, at(4, 11), [ada])
    deliver_all(app)
    assert object_names(ada_on_radicale) == [f"{booking.uid}.ics"]

    act(app, bookings.reject, booking.id)
    assert deliver_all(app) == ["done"]
    assert object_names(ada_on_radicale) == []


def test_resit_keeps_the_old_event_and_adds_a_new_one(app, factory, people, ada_on_radicale):
    manager, ada = people
    kind = factory.booking_type(name="Observation")
    start = at(-2, 10)  # in the past, so it can be completed
    with app.app_context():
        begin_write()
        original = bookings.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            start,
            [db.session.get(User, ada.id)],
            title="Observation for Lee",
        )
        db.session.commit()
        original_id, original_uid = original.id, original.uid
    act(app, bookings.complete, original_id)
    resit_id = act(app, bookings.rebook, original_id, at(5, 10), "resit")
    assert deliver_all(app) == ["done", "done", "done"]

    with app.app_context():
        resit_uid = db.session.get(Booking, resit_id).uid
    assert sorted(object_names(ada_on_radicale)) == sorted(
        [f"{original_uid}.ics", f"{resit_uid}.ics"]
    )
    old = vevent(ada_on_radicale, remote_events(app, original_id)[0].remote_id)
    assert old.decoded("DTSTART") == start  # the past event stays where it was
    assert str(old["SUMMARY"]) == "Observation for Lee"  # names its type (5.14.0)


def test_switching_to_teams_deletes_our_event(app, factory, people, ada_on_radicale, microsoft):
    """The Teams invitation takes over: our event goes, the organisation's Microsoft 365
    connection makes the Teams meeting in Ada's mailbox (tests/teams/ covers the rest)."""
    manager, ada = people
    microsoft.add_user(ada.email, "Ada Agent")
    linking.save_org(app, microsoft)
    kind = factory.booking_type(name="Review")
    booking = factory.booking(manager, kind, at(3, 14), [ada], title="Progress")
    deliver_all(app)
    [record] = remote_events(app, booking.id)
    assert str(vevent(ada_on_radicale, record.remote_id)["SUMMARY"]) == "Review: Progress"

    act(app, bookings.update_details, booking.id, location_mode="teams")
    assert set(deliver_all(app)) == {"done"}
    assert object_names(ada_on_radicale) == []
    assert remote_events(app, booking.id) == []
    [(event, _)] = microsoft.teams_meetings_of(ada.email)
    assert event.subject == "Review: Progress"


def test_a_retried_delivery_never_duplicates(app, factory, people, ada_on_radicale):
    """The same message delivered again, and a create whose record was lost after the
    server took it (commit failed), both end with exactly one event."""
    manager, ada = people
    kind = factory.booking_type(name="Review")
    booking = factory.booking(manager, kind, at(3, 9), [ada])
    deliver_all(app)
    with app.app_context():
        begin_write()
        message = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "booking.created")
        ).one()
        message.status = outbox.PENDING  # as if the worker died before marking it done
        message.handled = []
        db.session.execute(RemoteEvent.__table__.delete())  # and the record was never saved
        db.session.commit()
    assert deliver_all(app) == ["done"]
    assert object_names(ada_on_radicale) == [f"{booking.uid}.ics"]
    assert len(remote_events(app, booking.id)) == 1


def test_person_without_a_receiving_calendar_gets_no_event(app, factory, people, caldav_account):
    manager, ada = people
    connection_id = linking.link_caldav(app, ada, caldav_account)
    with app.app_context():
        begin_write()
        for calendar in db.session.scalars(
            select(LinkedCalendar).where(LinkedCalendar.connection_id == connection_id)
        ):
            calendar.receives_bookings = False
        db.session.commit()
    deliver_all(app)
    kind = factory.booking_type(name="Review")
    booking = factory.booking(manager, kind, at(3, 9), [ada])
    assert deliver_all(app) == ["done"]
    assert remote_events(app, booking.id) == []
    assert object_names(caldav_account) == []


def test_server_down_keeps_the_message_for_a_retry(app, factory, people, ada_on_radicale, radicale):
    """A fault in the provider loses nothing: the outbox row stays pending with the error."""
    manager, ada = people
    with app.app_context():
        begin_write()
        for calendar in db.session.scalars(select(LinkedCalendar)):
            # the server moved away: nothing listens on the discard port
            calendar.remote_id = calendar.remote_id.replace(radicale.base_url, "http://127.0.0.1:9")
            calendar.connection.url = "http://127.0.0.1:9/"
        db.session.commit()
    kind = factory.booking_type(name="Review")
    booking = factory.booking(manager, kind, at(3, 9), [ada])
    assert deliver_all(app) == ["pending"]
    with app.app_context():
        message = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "booking.created")
        ).one()
        assert message.attempts == 1 and "Could not reach" in message.last_error
    assert remote_events(app, booking.id) == []


def test_old_calendar_refusing_login_does_not_block_the_move(
    app, factory, people, ada_on_radicale, radicale
):
    """Ada's old CalDAV password was revoked and she chose a calendar of another account: the
    event is written there, the OLD connection needs re-linking, the new one does not."""
    manager, ada = people
    first = ada_on_radicale
    booking = factory.booking(manager, factory.booking_type(name="Review"), at(3, 10), [ada])
    assert deliver_all(app) == ["done"]
    assert object_names(first) == [f"{booking.uid}.ics"]

    username, password = f"user-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    radicale.add_user(username, password)
    session = requests.Session()
    session.auth = (username, password)
    second = CalDavAccount(radicale.base_url, username, password, session)
    second.make_calendar("work", "Work")
    with app.app_context():
        first_id = db.session.scalar(
            select(Connection.id).where(Connection.username == first.username)
        )
        db.session.rollback()
    second_id = linking.link_caldav(app, ada, second)
    with app.app_context():
        begin_write()
        db.session.get(Connection, first_id).store_secret("wrong")
        db.session.commit()
    target = linking.calendar_id(app, second_id, "Work")
    call(
        app,
        lambda: service.set_calendar_options(
            db.session.get(User, ada.id), target, for_availability=True, receives_bookings=True
        ),
    )

    assert set(deliver_all(app)) == {"done"}

    assert object_names(second) == [f"{booking.uid}.ics"]
    [record] = remote_events(app, booking.id)
    assert record.remote_id.startswith(f"/{username}/work/")
    with app.app_context():
        assert db.session.get(Connection, first_id).needs_relink is True
        assert db.session.get(Connection, second_id).needs_relink is False
        db.session.rollback()
    session.close()


# --- Microsoft 365 ---------------------------------------------------------------------


def test_organisation_calendar_receives_bookings_of_tenant_users(app, factory, people, microsoft):
    """K1: Ada has linked nothing; her Microsoft 365 mailbox gets the event through the
    organisation connection (client credentials)."""
    manager, ada = people
    microsoft.add_user(ada.email, "Ada Agent")
    linking.save_org(app, microsoft)
    from app.connections.sync import sync_due

    with app.app_context():
        reports = sync_due()
        assert [r.error for r in reports] == [None]
    deliver_all(app)  # Ada joined the organisation's coverage: nothing to write yet
    kind = factory.booking_type(name="Planning meeting", requires_approval=True)
    booking = factory.booking(manager, kind, at(3, 10), [ada])
    assert deliver_all(app) == ["done"]

    [event] = microsoft.events_of(ada.email)
    assert event.subject == "[PENDING] Planning meeting"
    assert event.show_as == "tentative"
    microsoft.delete_event(event.id)  # Ada deleted it in Outlook; the booking still stands
    act(app, bookings.approve, booking.id)
    assert deliver_all(app) == ["done"]
    [event] = microsoft.events_of(ada.email)
    assert (event.subject, event.show_as) == ("Planning meeting", "busy")
    act(app, bookings.cancel, booking.id)
    deliver_all(app)
    assert microsoft.events_of(ada.email) == []


def test_personal_microsoft_link_outranks_the_organisation(app, factory, people, microsoft):
    """Seed 000: with both links, the event goes to the personal account's calendar."""
    manager, ada = people
    microsoft.add_user(ada.email, "Ada Agent")
    microsoft.add_user("ada.home@outlook.test", "Ada at home")
    linking.save_org(app, microsoft)
    from app.connections.providers.graph import LinkedAccount

    account = LinkedAccount(
        refresh_token=microsoft.issue_refresh_token("ada.home@outlook.test"),
        email="ada.home@outlook.test",
        name="Ada at home",
    )
    call(app, lambda: service.finish_microsoft_link(db.session.get(User, ada.id), account))
    from app.connections.sync import sync_due

    with app.app_context():
        assert [r.error for r in sync_due()] == [None, None]
    deliver_all(app)
    kind = factory.booking_type(name="Review")
    factory.booking(manager, kind, at(3, 10), [ada])
    assert deliver_all(app) == ["done"]
    assert [e.subject for e in microsoft.events_of("ada.home@outlook.test")] == ["Review"]
    assert microsoft.events_of(ada.email) == []


def test_linking_writes_upcoming_bookings_and_a_new_choice_moves_them(
    app, factory, people, caldav_account
):
    """Bookings made before Ada linked her calendar land in it once she links; choosing
    another calendar to receive bookings moves them there; a past booking is left alone."""
    manager, ada = people
    kind = factory.booking_type(name="Review")
    upcoming = factory.booking(manager, kind, at(3, 10), [ada])
    with app.app_context():
        begin_write()
        past = bookings.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            at(-3, 10),
            [db.session.get(User, ada.id)],
        )
        db.session.commit()
        past_uid = past.uid
    deliver_all(app)  # nothing linked yet: nothing written

    connection_id = linking.link_caldav(app, ada, caldav_account)
    assert set(deliver_all(app)) == {"done"}
    with app.app_context():  # one short delivery per upcoming booking, none for the past one
        resyncs = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "booking.calendar_resync")
        ).all()
        assert [m.payload["booking_id"] for m in resyncs] == [upcoming.id]
        db.session.rollback()
    receiving = {name: flags[1] for name, flags in linking.calendars_of(app, connection_id).items()}
    first = next(name for name, on in receiving.items() if on)
    other = next(name for name, on in receiving.items() if not on and name != "Tasks")
    slug = {"Work": "work", "Personal": "personal"}
    assert object_names(caldav_account, slug[first]) == [f"{upcoming.uid}.ics"]
    assert past_uid not in " ".join(object_names(caldav_account, slug[first]))

    target = linking.calendar_id(app, connection_id, other)
    call(
        app,
        lambda: service.set_calendar_options(
            db.session.get(User, ada.id), target, for_availability=True, receives_bookings=True
        ),
    )
    assert set(deliver_all(app)) == {"done"}
    assert object_names(caldav_account, slug[first]) == []
    assert object_names(caldav_account, slug[other]) == [f"{upcoming.uid}.ics"]
    [record] = remote_events(app, upcoming.id)
    assert f"/{slug[other]}/" in record.remote_id


def test_a_hanging_calendar_server_holds_no_database_lock(app, factory, people, radicale):
    """While a delivery waits on a CalDAV server that does not answer, another booking is
    written at once (the old delivery held SQLite's write lock for the whole call); when the
    server answers, the event is written and recorded."""
    import threading
    import time

    from tests.fakes.holding_relay import HoldingRelay

    manager, ada = people
    relay = HoldingRelay(int(radicale.base_url.rsplit(":", 1)[1]))
    username, password = f"user-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    radicale.add_user(username, password)
    session = requests.Session()
    session.auth = (username, password)
    account = CalDavAccount(relay.base_url, username, password, session)
    account.make_calendar("work", "Work")
    try:
        connection_id = linking.link_caldav(app, ada, account)
        work = linking.calendar_id(app, connection_id, "Work")
        call(
            app,
            lambda: service.set_calendar_options(
                db.session.get(User, ada.id), work, for_availability=True, receives_bookings=True
            ),
        )
        assert set(deliver_all(app)) == {"done"}

        kind = factory.booking_type(name="Review")
        booking = factory.booking(manager, kind, at(3, 9), [ada])
        with app.app_context():
            message_id = db.session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.kind == "booking.created")
            ).one()
            db.session.rollback()
        relay.hold()
        result: list[str] = []

        def worker() -> None:
            with app.app_context():
                result.append(outbox.deliver(message_id))
                db.session.remove()

        thread = threading.Thread(target=worker)
        thread.start()
        assert relay.held.wait(30), "the delivery never called the calendar server"
        started = time.monotonic()
        factory.booking(manager, kind, at(4, 9), [ada])  # a write while the call hangs
        took = time.monotonic() - started
        still_waiting = thread.is_alive()
        relay.release()
        thread.join(60)
        assert took < 1, f"a booking waited {took:.1f} s for the calendar server"
        assert still_waiting, "the call did not hang"
        assert result == ["done"]
        [record] = remote_events(app, booking.id)
        assert record.remote_id.endswith(f"/work/{booking.uid}.ics")
        assert object_names(account) == [f"{booking.uid}.ics"]
    finally:
        relay.close()
        session.close()
