"""Issue [11], provider faults against the local Microsoft stand-in and a real Radicale:

- the sign-in service answering 5xx/429 with an HTML page (msal raises ``MsalServiceError``
  or cannot read the body) is a temporary failure that backs off, honouring Retry-After
  (K6), and the next sync succeeds;
- write-back updates send the stored ETag in If-Match; an event edited by hand since (its
  ETag changed) is read again and only Slotbook's fields are applied, so the hand edit to
  the other fields survives a reschedule (Graph and CalDAV alike).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from app.bookings import service as bookings
from app.connections.models import BusyBlock, Connection
from app.connections.sync import sync_connection
from app.database import utcnow
from app.extensions import db
from tests.conftest import at
from tests.connections import test_linking as linking
from tests.connections import test_writeback as writeback
from tests.fakes import graph_server as _fake_microsoft

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
microsoft = linking.microsoft
people = writeback.people
ada_on_radicale = writeback.ada_on_radicale
deliver_all = writeback.deliver_all
act = writeback.act
remote_events = writeback.remote_events


def _sync(app, connection_id: int, now):
    with app.app_context():
        report = sync_connection(connection_id, now)
        row = db.session.get(Connection, connection_id)
        health = (row.failure_count, row.next_sync_at, row.last_error)
        db.session.remove()
    return report, health


def _busy_count(app, person_id: int) -> int:
    with app.app_context():
        rows = db.session.scalars(select(BusyBlock).where(BusyBlock.person_id == person_id))
        count = len(rows.all())
        db.session.rollback()
    return count


# --- the sign-in service failing -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [(503, 120, timedelta(seconds=120)), (429, 30, timedelta(seconds=30)), (500, None, None)],
)
def test_a_failing_sign_in_service_backs_off_and_the_next_sync_succeeds(
    app, people, microsoft, status, retry_after, wait
):
    _, ada = people
    microsoft.add_user(ada.email, "Ada Agent")
    microsoft.add_event(ada.email, None, "Planning", at(2, 9), at(2, 10))
    connection_id = linking.save_org(app, microsoft)
    microsoft.fail_token_endpoint(1, status, retry_after)
    now = utcnow()

    report, (failures, next_sync, error) = _sync(app, connection_id, now)

    assert report.error == error
    assert "Unexpected" not in error and "sign-in service" in error
    assert failures == 1
    if wait is not None:  # busy: exactly as long as Retry-After asked
        assert next_sync == now + wait
        assert "busy" in error
    else:  # an internal error: the usual back-off (one sync interval, with jitter)
        assert now < next_sync <= now + timedelta(hours=1)
        assert "internal error" in error
    assert _busy_count(app, ada.id) == 0

    report, (failures, _, error) = _sync(app, connection_id, next_sync)

    assert report.error is None and error is None and failures == 0
    assert _busy_count(app, ada.id) == 1


# --- If-Match and hand edits -----------------------------------------------------------


def _graph_booking(app, factory, people, microsoft):
    manager, ada = people
    microsoft.add_user(ada.email, "Ada Agent")
    linking.save_org(app, microsoft)
    from app.connections.sync import sync_due

    with app.app_context():
        assert [r.error for r in sync_due()] == [None]
        db.session.remove()
    deliver_all(app)
    kind = factory.booking_type(name="Observation")
    booking = factory.booking(manager, kind, at(3, 10), [ada])
    assert deliver_all(app) == ["done"]
    [event] = microsoft.events_of(ada.email)
    [record] = remote_events(app, booking.id)
    assert record.etag == event.etag  # the ETag Graph gave back is what we keep
    return booking, kind, event


def _patches(microsoft) -> list:
    return [r for r in microsoft.graph_requests("PATCH")]


def test_graph_update_sends_the_stored_etag(app, factory, people, microsoft):
    booking, kind, event = _graph_booking(app, factory, people, microsoft)
    etag = event.etag
    later = at(4, 14)

    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]

    [moved] = microsoft.events_of(people[1].email)
    assert (moved.start, moved.end) == (later, later + kind.duration)
    [patch] = _patches(microsoft)
    assert patch.status == 200
    assert microsoft.if_match_seen == [etag]
    assert microsoft.graph_requests("GET", contains=f"/events/{event.id}") == []  # no re-read
    [record] = remote_events(app, booking.id)
    assert record.etag == moved.etag != etag


def test_graph_hand_edit_survives_a_reschedule(app, factory, people, microsoft):
    """Ada added notes and a room in Outlook (the ETag changed): the reschedule gets a 412,
    reads the event again and moves it, keeping her notes and room."""
    booking, kind, event = _graph_booking(app, factory, people, microsoft)
    notes = {"contentType": "text", "content": "Bring the red folder"}
    written = event.etag
    microsoft.update_event(event.id, body=notes, location="Room 4")
    edited = microsoft.event(event.id).etag
    later = at(4, 14)

    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]

    [moved] = microsoft.events_of(people[1].email)
    assert (moved.start, moved.end) == (later, later + kind.duration)
    assert (moved.body, moved.location) == (notes, "Room 4")  # the hand edit survived
    assert moved.subject == "Observation"
    first, second = _patches(microsoft)
    assert first.status == 412 and second.status == 200
    assert microsoft.if_match_seen == [written, edited]
    assert set(second.body) == {"subject", "start", "end", "showAs"}
    [record] = remote_events(app, booking.id)
    assert record.etag == moved.etag


# --- CalDAV (Radicale) ------------------------------------------------------------------


def _vevent(account, href: str):
    response = account.get(href)
    assert response.status_code == 200
    [event] = Calendar.from_ical(response.content).walk("VEVENT")
    return event, response.headers["ETag"]


def test_caldav_hand_edit_survives_a_reschedule(app, factory, people, ada_on_radicale):
    """Ada added an alarm, a description and a location in her calendar app (the ETag
    changed): the reschedule's If-Match PUT gets a 412, and the event is read again and
    only Slotbook's properties are replaced."""
    manager, ada = people
    account = ada_on_radicale
    kind = factory.booking_type(name="Observation")
    booking = factory.booking(manager, kind, at(3, 10), [ada])
    assert deliver_all(app) == ["done"]
    [record] = remote_events(app, booking.id)
    text = account.get(record.remote_id).text
    edited = text.replace(
        "END:VEVENT",
        "DESCRIPTION:Bring the red folder\r\nLOCATION:Room 4\r\nX-ADA-NOTE:mine\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\n"
        "END:VALARM\r\nEND:VEVENT",
    )
    name = record.remote_id.rsplit("/", 1)[-1]
    account.put(name, edited)
    later = at(4, 14)

    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]

    event, etag = _vevent(account, record.remote_id)
    assert event.decoded("DTSTART") == later
    assert event.decoded("DTEND") == later + kind.duration
    assert str(event["DESCRIPTION"]) == "Bring the red folder"
    assert str(event["LOCATION"]) == "Room 4"
    assert str(event["X-ADA-NOTE"]) == "mine"
    assert [str(a["TRIGGER"].to_ical().decode()) for a in event.walk("VALARM")] == ["-PT15M"]
    [moved] = remote_events(app, booking.id)
    assert moved.etag == etag


def test_caldav_update_without_hand_edit_writes_everything(app, factory, people, ada_on_radicale):
    manager, ada = people
    account = ada_on_radicale
    kind = factory.booking_type(name="Observation")
    booking = factory.booking(manager, kind, at(3, 10), [ada])
    assert deliver_all(app) == ["done"]
    [record] = remote_events(app, booking.id)

    later = at(4, 14)
    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]

    event, etag = _vevent(account, record.remote_id)
    assert event.decoded("DTSTART") == later
    [moved] = remote_events(app, booking.id)
    assert moved.etag == etag != record.etag


def test_msal_replaying_a_cached_failure_is_still_temporary(app, graph_server):
    """msal remembers a 5xx for a while and raises it again without asking the server; the
    second attempt with the same client is still a temporary failure, not an unexpected one."""
    from app.connections.providers.base import RateLimited
    from app.connections.providers.graph import GraphOrgProvider

    fake = graph_server
    fake.redirect_uris.add("http://localhost/callback")
    with app.app_context():
        connection = Connection(
            kind="microsoft-org", tenant_id=fake.tenant_id, client_id=fake.client_id
        )
    provider = GraphOrgProvider(connection, fake.client_secret, fake.provider_settings())
    fake.fail_token_endpoint(1, 503, retry_after=45)

    with pytest.raises(RateLimited) as first:
        provider.list_calendars()
    with pytest.raises(RateLimited) as second:
        provider.list_calendars()

    assert first.value.retry_after == 45
    assert second.value.retry_after > 0
    tokens = [r for r in fake.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert [r.status for r in tokens] == [503]  # the second failure never reached the server
