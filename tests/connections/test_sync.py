"""The busy cache (K4) and its faults (K6), end to end: a real Radicale and the local
Microsoft stand-in are read by ``sync_connection`` into busy blocks, incrementally where the
provider allows, with the C2 title rule and the organisation/personal priority of seed 000."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.admin.settings import set_setting
from app.connections import service
from app.connections.freshness import stale_people
from app.connections.models import BusyBlock, Connection, LinkedCalendar
from app.connections.providers.graph import LinkedAccount
from app.connections.sync import sync_connection, sync_due
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import OutboxMessage
from tests.connections import test_linking as linking
from tests.connections.test_cli import allow_private_urls
from tests.fakes import graph_server as _fake_microsoft

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
microsoft = linking.microsoft
call = linking.call


def _monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())  # next Monday (always in the future)


MONDAY = _monday()


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` days after next Monday, at a UTC clock time."""
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=UTC)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _calendar(*events: str) -> str:
    body = "".join(events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def _event(uid: str, start: datetime, end: datetime, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{_stamp(start)}\r\nDTSTART:{_stamp(start)}\r\n"
        f"DTEND:{_stamp(end)}\r\nSUMMARY:{uid}\r\n{extra}END:VEVENT\r\n"
    )


# Weekly on Mondays 09:00-10:00 from next Monday, four times: week 2 excluded (EXDATE),
# week 3 moved to Wednesday 14:00-15:00, week 4 cancelled.
WEEKLY = _calendar(
    _event(
        "weekly",
        _utc(0, 9),
        _utc(0, 10),
        f"RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE:{_stamp(_utc(7, 9))}\r\n",
    ),
    _event("weekly", _utc(16, 14), _utc(16, 15), f"RECURRENCE-ID:{_stamp(_utc(14, 9))}\r\n"),
    _event(
        "weekly",
        _utc(21, 9),
        _utc(21, 10),
        f"RECURRENCE-ID:{_stamp(_utc(21, 9))}\r\nSTATUS:CANCELLED\r\n",
    ),
)
ALL_DAY = _calendar(
    "BEGIN:VEVENT\r\nUID:allday\r\nDTSTAMP:20260101T000000Z\r\n"
    f"DTSTART;VALUE=DATE:{(MONDAY + timedelta(days=1)):%Y%m%d}\r\n"
    f"DTEND;VALUE=DATE:{(MONDAY + timedelta(days=2)):%Y%m%d}\r\nSUMMARY:Away\r\nEND:VEVENT\r\n"
)
TRANSPARENT = _calendar(_event("free", _utc(2, 9), _utc(2, 17), "TRANSP:TRANSPARENT\r\n"))
SINGLE = _calendar(_event("single", _utc(3, 11), _utc(3, 12), "STATUS:TENTATIVE\r\n"))


def blocks(app, person_id: int) -> list[tuple[datetime, datetime, str, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(BusyBlock.starts_at, BusyBlock.ends_at, BusyBlock.status, BusyBlock.title)
            .where(BusyBlock.person_id == person_id)
            .order_by(BusyBlock.starts_at)
        ).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def block_ids(app, person_id: int) -> dict[datetime, int]:
    with app.app_context():
        rows = db.session.execute(
            select(BusyBlock.starts_at, BusyBlock.id).where(BusyBlock.person_id == person_id)
        ).all()
        db.session.rollback()
        return dict(rows)


def sync(app, connection_id: int):
    with app.app_context():
        report = sync_connection(connection_id)
        db.session.remove()
        return report


def connection_row(app, connection_id: int) -> Connection:
    with app.app_context():
        row = db.session.get(Connection, connection_id)
        db.session.commit()
        return row


@pytest.fixture
def ada(app, factory):
    allow_private_urls(app)
    return factory.user("agent", email="ada@contoso.test", name="Ada Agent")


# --- CalDAV ----------------------------------------------------------------------------


def test_caldav_full_then_incremental_then_resync(app, ada, caldav_account):
    account = caldav_account
    for name, text in [
        ("weekly.ics", WEEKLY),
        ("allday.ics", ALL_DAY),
        ("free.ics", TRANSPARENT),
        ("single.ics", SINGLE),
    ]:
        account.put(name, text)
    connection_id = linking.link_caldav(app, ada, account)

    first = sync(app, connection_id)
    assert first.error is None and first.calendars == 2  # Work and Personal count
    expected = [
        (_utc(0, 9), _utc(0, 10), "busy", None),
        (_utc(1, 0), _utc(2, 0), "busy", None),  # all day is busy (UTC day here)
        (_utc(3, 11), _utc(3, 12), "tentative", None),
        (_utc(16, 14), _utc(16, 15), "busy", None),  # the moved instance
    ]
    assert blocks(app, ada.id) == expected  # no EXDATE week, no cancelled week, no free time
    assert first.added == 4 and first.removed == 0
    before = block_ids(app, ada.id)

    # An edit and a delete: the next sync touches only those two events.
    account.put("single.ics", SINGLE.replace(_stamp(_utc(3, 11)), _stamp(_utc(3, 10))))
    account.delete("allday.ics")
    second = sync(app, connection_id)
    assert second.error is None
    assert (second.added, second.removed) == (1, 2)
    assert second.requests == 2  # one sync-collection REPORT per calendar
    after = block_ids(app, ada.id)
    assert after[_utc(0, 9)] == before[_utc(0, 9)]  # untouched rows are the same rows
    assert after[_utc(16, 14)] == before[_utc(16, 14)]
    assert blocks(app, ada.id) == [
        expected[0],
        (_utc(3, 10), _utc(3, 12), "tentative", None),
        expected[3],
    ]

    # The server forgets our sync token: a full read replaces everything, and an event
    # deleted meanwhile does not come back.
    with app.app_context():
        begin_write()
        for calendar in db.session.scalars(select(LinkedCalendar)):
            calendar.sync_cursor = "http://radicale.org/ns/sync/0000bogus"
        db.session.commit()
    account.delete("weekly.ics")
    third = sync(app, connection_id)
    assert third.error is None
    assert blocks(app, ada.id) == [(_utc(3, 10), _utc(3, 12), "tentative", None)]
    with app.app_context():
        assert stale_people([ada.id]) == {}


def test_wrong_password_later_marks_the_connection_and_fails_closed(app, ada, caldav_account):
    connection_id = linking.link_caldav(app, ada, caldav_account)
    assert sync(app, connection_id).error is None
    with app.app_context():
        begin_write()
        db.session.get(Connection, connection_id).store_secret("an-old-password")
        db.session.commit()

    report = sync(app, connection_id)
    assert "refused the username or password" in report.error
    row = connection_row(app, connection_id)
    assert row.needs_relink and row.failure_count == 1
    assert row.next_sync_at > utcnow()
    with app.app_context():
        assert "needs to be linked again" in stale_people([ada.id])[ada.id]
        kinds = db.session.scalars(select(OutboxMessage.kind)).all()
        assert kinds.count("connection.needs_relink") == 1
    sync(app, connection_id)  # failing again does not notify again
    with app.app_context():
        kinds = db.session.scalars(select(OutboxMessage.kind)).all()
        assert kinds.count("connection.needs_relink") == 1


def test_unreachable_server_backs_off_and_keeps_the_cache(app, ada, caldav_account, radicale):
    connection_id = linking.link_caldav(app, ada, caldav_account)
    caldav_account.put("single.ics", SINGLE)
    assert sync(app, connection_id).error is None
    with app.app_context():
        begin_write()
        for calendar in db.session.scalars(select(LinkedCalendar)):
            calendar.remote_id = calendar.remote_id.replace(radicale.base_url, "http://127.0.0.1:9")
        db.session.commit()

    report = sync(app, connection_id)
    assert "Could not reach" in report.error
    row = connection_row(app, connection_id)
    assert row.failure_count == 1 and not row.needs_relink
    assert row.last_success_at < row.last_attempt_at
    assert row.next_sync_at >= row.last_attempt_at + timedelta(minutes=12)  # 15 min, jittered
    # the cache is kept as it was (and goes stale in time: fail closed, not fail empty)
    assert blocks(app, ada.id) == [(_utc(3, 11), _utc(3, 12), "tentative", None)]


# --- Microsoft 365 ---------------------------------------------------------------------


def _org(app, ms, show_details=False) -> int:
    return linking.save_org(app, ms, show_details)


def _personal(app, user, ms, email: str) -> int:
    account = LinkedAccount(ms.issue_refresh_token(email), email, "Personal")
    return call(app, lambda: service.finish_microsoft_link(db.session.get(User, user.id), account))


def _label(app, person_id: int) -> list[str]:
    from app.connections.titles import busy_label

    with app.app_context():
        from app.admin.settings import get_setting

        show = bool(get_setting("show_event_details"))
        rows = db.session.scalars(
            select(BusyBlock).where(BusyBlock.person_id == person_id).order_by(BusyBlock.starts_at)
        ).all()
        labels = [busy_label(r.status, r.source, r.title, show) for r in rows]
        db.session.rollback()
        return labels


def test_organisation_covers_tenant_users_and_personal_links_win(app, factory, ada, microsoft):
    """K1 + seed 000: Ada (no personal link) is read through the organisation; Bo linked his
    own Microsoft account, which takes priority; Cy is not in the tenant."""
    bo = factory.user("agent", email="bo@contoso.test", name="Bo Brown")
    cy = factory.user("agent", email="cy@elsewhere.test", name="Cy")
    for user in (ada, bo):
        microsoft.add_user(user.email, user.name)
    microsoft.add_user("bo@outlook.test", "Bo at home")
    microsoft.add_event(ada.email, None, "Board meeting", _utc(0, 9), _utc(0, 10))
    microsoft.add_event(ada.email, None, "Dentist", _utc(1, 9), _utc(1, 10), show_as="oof")
    microsoft.add_event(ada.email, None, "Lunch", _utc(1, 12), _utc(1, 13), show_as="free")
    microsoft.add_event(bo.email, None, "Work thing", _utc(0, 11), _utc(0, 12))
    microsoft.add_event("bo@outlook.test", None, "Gym", _utc(0, 7), _utc(0, 8))
    org_id = _org(app, microsoft)
    _personal(app, bo, microsoft, "bo@outlook.test")

    with app.app_context():
        reports = sync_due()
        assert [r.error for r in reports] == [None, None]
        org = db.session.get(Connection, org_id)
        assert sorted(c.person_id for c in org.calendars) == [ada.id]  # not Bo, not Cy
        db.session.rollback()

    assert [(b[0], b[2]) for b in blocks(app, ada.id)] == [
        (_utc(0, 9), "busy"),
        (_utc(1, 9), "oof"),
    ]
    assert [b[0] for b in blocks(app, bo.id)] == [_utc(0, 7)]  # personal calendar only
    assert blocks(app, cy.id) == []
    assert _label(app, ada.id) == ["Private event", "Private event (out of office)"]
    assert _label(app, bo.id) == ["Busy"]

    # "Show event details": real titles for organisation data only, never for a personal link.
    with app.app_context():
        begin_write()
        set_setting("show_event_details", True)
        db.session.commit()
        assert [r.error for r in sync_due(utcnow() + timedelta(hours=1))] == [None, None]
    assert _label(app, ada.id) == ["Board meeting", "Dentist (out of office)"]
    assert _label(app, bo.id) == ["Busy"]
    assert [b[3] for b in blocks(app, bo.id)] == [None]  # not even stored


def test_throttling_waits_for_retry_after(app, ada, microsoft):
    microsoft.add_user(ada.email, ada.name)
    microsoft.add_event(ada.email, None, "Busy", _utc(0, 9), _utc(0, 10))
    org_id = _org(app, microsoft)
    microsoft.requests.clear()
    microsoft.throttle(times=1, retry_after=1)

    report = sync(app, org_id)
    assert report.error is None
    graph = microsoft.graph_requests()
    assert [r.status for r in graph[:2]] == [429, 200]  # the throttled one and its retry
    assert graph[0].path == graph[1].path
    assert (graph[1].time - graph[0].time) >= 1.0  # Retry-After honoured
    assert {r.status for r in graph[2:]} == {200}

    microsoft.throttle(times=10, retry_after=600)  # longer than a sync should wait
    report = sync(app, org_id)
    assert "busy" in report.error
    row = connection_row(app, org_id)
    assert not row.needs_relink
    assert row.next_sync_at >= row.last_attempt_at + timedelta(seconds=599)


def test_delta_410_resyncs_in_full_without_resurrecting(app, factory, ada, microsoft):
    microsoft.add_user("ada@outlook.test", "Ada at home")
    keep = microsoft.add_event("ada@outlook.test", None, "Keep", _utc(0, 9), _utc(0, 10))
    gone = microsoft.add_event("ada@outlook.test", None, "Gone", _utc(0, 11), _utc(0, 12))
    assert keep and gone
    _org(app, microsoft)  # the app registration personal links use
    connection_id = _personal(app, ada, microsoft, "ada@outlook.test")
    assert sync(app, connection_id).error is None
    assert [b[0] for b in blocks(app, ada.id)] == [_utc(0, 9), _utc(0, 11)]

    microsoft.delete_event(gone)
    microsoft.add_event("ada@outlook.test", None, "New", _utc(2, 9), _utc(2, 10))
    microsoft.invalidate_delta_tokens()
    report = sync(app, connection_id)
    assert report.error is None
    assert [b[0] for b in blocks(app, ada.id)] == [_utc(0, 9), _utc(2, 9)]
    delta_calls = microsoft.graph_requests(contains="delta")
    assert any(r.status == 410 for r in delta_calls)


def test_revoked_grant_needs_relink(app, client, ada, microsoft):
    microsoft.add_user("ada@outlook.test", "Ada at home")
    _org(app, microsoft)
    connection_id = _personal(app, ada, microsoft, "ada@outlook.test")
    assert sync(app, connection_id).error is None
    microsoft.revoke_refresh_tokens()

    report = sync(app, connection_id)
    assert "link" in report.error.lower()
    assert connection_row(app, connection_id).needs_relink
    linking.login(client, ada.email)
    html = linking.page(client, "/me/calendars")
    assert "needs to be linked again" in html


def test_synced_busy_time_shows_in_the_calendar_and_the_booking_form(
    app, client, factory, ada, caldav_account
):
    """Acceptance 6: a block read from Radicale is drawn in the team calendar and the booking
    form, and a booking over it is red-striped in both."""
    from app.accounts import hours
    from app.bookings import service as bookings
    from app.bookings.models import BookingType

    manager = factory.user("booking-manager", name="Mo Manager", timezone="UTC")
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(
            db.session.get(User, ada.id), {d: [(time(0), time(23, 59))] for d in range(7)}
        )
        db.session.commit()
    caldav_account.put("single.ics", SINGLE.replace("STATUS:TENTATIVE\r\n", ""))
    connection_id = linking.link_caldav(app, ada, caldav_account)
    assert sync(app, connection_id).error is None
    kind = factory.booking_type(name="Review", duration_minutes=60)
    with app.app_context():  # staff may book over external busy time; it is then flagged
        begin_write()
        bookings.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            _utc(3, 11, 30),
            [db.session.get(User, ada.id)],
            title="Ada's review",
        )
        db.session.commit()

    linking.login(client, manager.email)
    day = (MONDAY + timedelta(days=3)).isoformat()
    html = client.get(
        "/calendar", query_string={"scope": "team", "view": "day", "date": day}
    ).get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "11:00–12:00 Busy (from a linked calendar)" in text
    review = next(part for part in html.split('<li class="')[1:] if "Ada&#39;s review" in part)
    assert "has-conflict" in review.split('"')[0]
    assert "Conflicts with: Busy" in review

    preview = client.get(
        "/bookings/preview",
        query_string={
            "booking_type": kind.id,
            "people": [ada.id],
            "learner": 0,
            "day": day,
            "start": "11:00",
        },
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "pv-busy" in preview and "pv-conflict" in preview
    assert "Conflicts with Busy" in preview


def test_the_worker_schedule_syncs_due_connections_once(app, ada, redis):
    """The periodic dispatcher queues one job per due connection (never a second copy while
    one waits), and the worker's job reads the calendar."""
    from rq import SimpleWorker

    from app import jobs
    from tests.connections.test_cli import IcsFeedServer

    feeds = IcsFeedServer()
    try:
        url = feeds.publish("/rota.ics", _calendar(_event("rota", _utc(2, 9), _utc(2, 10))))
        connection_id = linking.link_ics(app, ada, url)
        with app.app_context():
            assert jobs.dispatch_calendar_syncs() == 1
            assert jobs.dispatch_calendar_syncs() == 0  # already queued
            sync_queue = jobs.queue(jobs.SYNC_QUEUE)
            SimpleWorker([sync_queue], connection=sync_queue.connection).work(burst=True)
            db.session.remove()
        assert blocks(app, ada.id) == [(_utc(2, 9), _utc(2, 10), "busy", None)]
        assert connection_row(app, connection_id).last_success_at is not None
        with app.app_context():
            assert jobs.dispatch_calendar_syncs() == 0  # next one is an interval away
    finally:
        feeds.close()


def test_events_slotbook_wrote_are_not_read_back_as_busy(app, factory, ada, caldav_account):
    """Write-back puts each booking into the calendar the sync reads: it must not come back
    as an external busy block (every booking would conflict with itself)."""
    from app import outbox
    from app.bookings import service as bookings
    from app.bookings.models import BookingType

    manager = factory.user("booking-manager")
    connection_id = linking.link_caldav(app, ada, caldav_account)
    caldav_account.put("single.ics", SINGLE)
    kind = factory.booking_type(name="Review", duration_minutes=60)
    with app.app_context():
        begin_write()
        bookings.create_booking(
            db.session.get(User, manager.id),
            db.session.get(BookingType, kind.id),
            _utc(4, 9),
            [db.session.get(User, ada.id)],
        )
        db.session.commit()
        ids = db.session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == outbox.PENDING)
        ).all()
        db.session.commit()
        assert {outbox.deliver(i) for i in ids} == {"done"}
        db.session.remove()
    written = [
        n
        for slug in ("work", "personal")
        for n in caldav_account.object_names(slug)
        if n.endswith(".ics") and n != "single.ics"
    ]
    assert len(written) == 1  # the booking is in Ada's receiving calendar

    assert sync(app, connection_id).error is None
    assert blocks(app, ada.id) == [(_utc(3, 11), _utc(3, 12), "tentative", None)]


def test_a_moving_window_forces_a_full_read_once_a_day(app, ada, caldav_account):
    """An unchanged daily event is expanded only as far as the last full read reached; when
    the window has moved a day past that, the next read is full and covers the new days."""
    daily = _calendar(_event("daily", _utc(0, 8), _utc(0, 9), "RRULE:FREQ=DAILY\r\n"))
    caldav_account.put("daily.ics", daily)
    connection_id = linking.link_caldav(app, ada, caldav_account)
    assert sync(app, connection_id).error is None
    first_last = blocks(app, ada.id)[-1][0]

    with app.app_context():
        two_days = utcnow() + timedelta(days=2)
        assert sync_connection(connection_id, now=two_days).error is None  # nothing changed
        db.session.remove()
    last = blocks(app, ada.id)[-1][0]
    assert last >= first_last + timedelta(days=2)  # the new days of the window are busy too
    with app.app_context():
        covered = {c.covered_until for c in db.session.scalars(select(LinkedCalendar))}
        assert all(c is not None and c > two_days + timedelta(days=300) for c in covered)
        db.session.rollback()


def test_a_choice_made_while_the_sync_reads_is_kept(app, ada, caldav_account):
    """Someone unticks a calendar between the sync's read (no lock held) and its store: the
    store must not put back that calendar's busy time or cursor. The two phases of
    ``sync_connection`` are run here one by one, with the person's change in between."""
    from app.connections import sync as phases
    from app.connections.providers import provider_for

    caldav_account.put("single.ics", SINGLE)
    connection_id = linking.link_caldav(app, ada, caldav_account)
    work = linking.calendar_id(app, connection_id, "Work")
    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        wanted = list(connection.calendars)
        used = {c.id: c.sync_cursor for c in wanted}
        results = phases._read(provider_for(connection), wanted, utcnow())
        db.session.commit()
        assert results[work].changes  # the read saw the event
        db.session.remove()

    call(  # the person's change, in its own request
        app,
        lambda: service.set_calendar_options(
            db.session.get(User, ada.id), work, for_availability=False, receives_bookings=False
        ),
    )

    with app.app_context():
        begin_write()
        connection = phases._reload(connection_id)
        phases._store(connection, results, used, utcnow(), phases.SyncReport(connection_id))
        db.session.commit()
        calendar = db.session.get(LinkedCalendar, work)
        assert calendar.use_for_availability is False and calendar.sync_cursor is None
        db.session.remove()
    assert blocks(app, ada.id) == []
