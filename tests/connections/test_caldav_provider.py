"""The CalDAV provider against a real Radicale server (K2, K4, K5, K6).

Events go into Radicale with plain HTTP PUTs; everything is then read and written through
``CalDavProvider`` only, and written events are checked by fetching them back from Radicale.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.connections.models import Connection, LinkedCalendar
from app.connections.providers.base import (
    AuthFailed,
    CursorExpired,
    EventData,
    NotACalendarServer,
    ProviderError,
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
    UnsafeURL,
)
from app.connections.providers.caldav import AUTH_FAILED, CalDavProvider
from tests.conftest import free_port

WINDOW = (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC))


def utc(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def vcalendar(*vevents: str) -> str:
    body = "".join(
        f"BEGIN:VEVENT\r\nDTSTAMP:20291201T000000Z\r\n{v}END:VEVENT\r\n" for v in vevents
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tests//EN\r\n{body}END:VCALENDAR\r\n"


# Weekly from Monday 7 January 2030, five times: the 14th is excluded (EXDATE), the 21st is
# moved to Tuesday 22nd 13:00-14:30 (RECURRENCE-ID), the 28th is cancelled.
WEEKLY = vcalendar(
    "UID:weekly-1\r\nSUMMARY:Team meeting\r\nDTSTART:20300107T090000Z\r\n"
    "DTEND:20300107T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\nEXDATE:20300114T090000Z\r\n",
    "UID:weekly-1\r\nSUMMARY:Team meeting (moved)\r\nRECURRENCE-ID:20300121T090000Z\r\n"
    "DTSTART:20300122T130000Z\r\nDTEND:20300122T143000Z\r\n",
    "UID:weekly-1\r\nSUMMARY:Team meeting\r\nRECURRENCE-ID:20300128T090000Z\r\n"
    "DTSTART:20300128T090000Z\r\nDTEND:20300128T100000Z\r\nSTATUS:CANCELLED\r\n",
)
ALL_DAY = vcalendar(
    "UID:allday-1\r\nSUMMARY:Conference\r\nDTSTART;VALUE=DATE:20300110\r\n"
    "DTEND;VALUE=DATE:20300111\r\n"
)
TRANSPARENT = vcalendar(
    "UID:free-1\r\nSUMMARY:Reminder\r\nDTSTART:20300111T120000Z\r\n"
    "DTEND:20300111T130000Z\r\nTRANSP:TRANSPARENT\r\n"
)
SINGLE = vcalendar(
    "UID:single-1\r\nSUMMARY:Dentist\r\nDTSTART:20300116T150000Z\r\nDTEND:20300116T160000Z\r\n"
)
SINGLE_MOVED = vcalendar(
    "UID:single-1\r\nSUMMARY:Dentist\r\nSEQUENCE:1\r\nDTSTART:20300117T080000Z\r\n"
    "DTEND:20300117T083000Z\r\n"
)


@pytest.fixture
def make_provider(app, factory):
    """Builds a provider over a real (unflushed) connection row with a sealed secret."""
    user = factory.user()

    def make(url: str, username: str, password: str, allow_private: bool = True, **more):
        with app.app_context():
            connection = Connection(kind="caldav", user_id=user.id, url=url, username=username)
            connection.store_secret(password)
        settings = ProviderSettings(allow_private_urls=allow_private, **more)
        return CalDavProvider(connection, password, settings)

    return make


@pytest.fixture
def provider(make_provider, caldav_account):
    account = caldav_account
    return make_provider(account.base_url, account.username, account.password)


def linked(app, remote_id: str) -> LinkedCalendar:
    with app.app_context():
        return LinkedCalendar(remote_id=remote_id, name="Work")


def busy(result) -> dict[str, list[tuple[datetime, datetime, str]]]:
    return {
        change.key: [(b.starts_at, b.ends_at, b.status) for b in change.blocks]
        for change in result.changes
        if not change.deleted
    }


# --- discovery -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["root", "well-known", "principal", "calendar"])
def test_discovers_event_calendars(make_provider, caldav_account, where):
    """From the root, /.well-known/caldav (a redirect), principal or a calendar URL alike:
    the two event calendars, not the task list."""
    account = caldav_account
    url = {
        "root": account.base_url,
        "well-known": account.base_url + "/.well-known/caldav",
        "principal": account.principal_url,
        "calendar": account.calendar_url("personal"),
    }[where]
    provider = make_provider(url, account.username, account.password)

    calendars = provider.list_calendars()

    assert [(c.name, c.remote_id, c.writable) for c in calendars] == [
        ("Personal", account.calendar_url("personal"), True),
        ("Work", account.calendar_url("work"), True),
    ]


def test_wrong_password_is_auth_failed(make_provider, caldav_account, app):
    """A 401 says so in words the person can act on, for discovery and for reads."""
    account = caldav_account
    provider = make_provider(account.base_url, account.username, "not-the-password")

    with pytest.raises(AuthFailed) as raised:
        provider.list_calendars()
    assert str(raised.value) == AUTH_FAILED
    assert "not-the-password" not in str(raised.value)
    with pytest.raises(AuthFailed):
        provider.read_busy(linked(app, account.calendar_url()), *WINDOW, None)


def test_web_page_is_not_a_calendar_server(make_provider, stub_server):
    """An address that answers with an ordinary web page."""
    provider = make_provider(stub_server.url, "someone", "secret")

    with pytest.raises(NotACalendarServer, match="not a CalDAV server"):
        provider.list_calendars()
    assert stub_server.hits == ["PROPFIND /"]


@pytest.mark.parametrize("status", [404, 405])
def test_propfind_refused_is_not_a_calendar_server(make_provider, stub_server, status):
    stub_server.status = status

    with pytest.raises(NotACalendarServer):
        make_provider(stub_server.url, "someone", "secret").list_calendars()


def test_radicale_web_interface_is_not_a_calendar_url(make_provider, caldav_account):
    """Radicale's own web UI path answers PROPFIND with 403."""
    account = caldav_account
    provider = make_provider(account.base_url + "/.web/", account.username, account.password)

    with pytest.raises(NotACalendarServer):
        provider.list_calendars()


def test_redirect_to_another_server_does_not_forward_the_password(
    make_provider, stub_server, caldav_account
):
    """The password only goes where the user pointed it; a redirect elsewhere is explained."""
    account = caldav_account
    stub_server.status = 301
    stub_server.headers = {"Location": account.principal_url}
    provider = make_provider(stub_server.url, account.username, account.password)

    with pytest.raises(ProviderError) as raised:
        provider.list_calendars()
    assert str(raised.value) == (
        f"That address sends Slotbook on to {account.principal_url}; enter that address instead."
    )


def test_unreachable_server(make_provider):
    port = free_port()  # nothing listens there
    provider = make_provider(f"http://127.0.0.1:{port}/", "someone", "secret")

    with pytest.raises(TemporaryFailure, match=r"Could not reach 127\.0\.0\.1"):
        provider.list_calendars()


def test_rate_limited_with_long_retry_after(make_provider, stub_server, app):
    """429 with a Retry-After beyond the wait we accept: RateLimited, no waiting, one hit."""
    stub_server.status = 429
    stub_server.headers = {"Retry-After": "3600"}
    provider = make_provider(stub_server.url, "someone", "secret")

    with pytest.raises(RateLimited) as raised:
        provider.read_busy(linked(app, stub_server.url + "cal/"), *WINDOW, None)
    assert raised.value.retry_after == 3600
    assert stub_server.hits == ["REPORT /cal/"]


def test_private_address_refused_before_any_request(make_provider, stub_server, app):
    """Without the admin setting, 127.0.0.1 is refused and nothing is sent."""
    provider = make_provider(stub_server.url, "someone", "secret", allow_private=False)
    calendar = linked(app, stub_server.url + "cal/")
    event = EventData("uid-1", "Meeting", utc(7, 9), utc(7, 10), tentative=False)

    with pytest.raises(UnsafeURL):
        provider.list_calendars()
    with pytest.raises(UnsafeURL):
        provider.read_busy(calendar, *WINDOW, None)
    with pytest.raises(UnsafeURL):
        provider.create_event(calendar, event)
    assert stub_server.hits == []


# --- reading busy time -----------------------------------------------------------------


@pytest.fixture
def filled(caldav_account):
    """The work calendar with the sample events, and a distraction in another calendar."""
    account = caldav_account
    for name, ics in [
        ("weekly.ics", WEEKLY),
        ("allday.ics", ALL_DAY),
        ("transparent.ics", TRANSPARENT),
        ("single.ics", SINGLE),
    ]:
        account.put(name, ics)
    account.put("other.ics", SINGLE.replace("single-1", "other-1"), slug="personal")
    return account


def test_full_sync_expands_and_filters(provider, filled, app):
    """Recurrences with EXDATE, a moved and a cancelled instance, all-day busy, transparent
    not busy; keys are the objects' hrefs; one request, and a sync token to continue from."""
    account = filled

    result = provider.read_busy(linked(app, account.calendar_url()), *WINDOW, None)

    assert result.full is True
    assert result.cursor
    assert result.requests == 1
    assert busy(result) == {
        account.href("weekly.ics"): [
            (utc(7, 9), utc(7, 10), "busy"),
            (utc(22, 13), utc(22, 14, 30), "busy"),
            (utc(4, 9, month=2), utc(4, 10, month=2), "busy"),
        ],
        account.href("allday.ics"): [(utc(10, 0), utc(11, 0), "busy")],
        account.href("single.ics"): [(utc(16, 15), utc(16, 16), "busy")],
    }


def test_incremental_sync_reports_only_changes(provider, filled, app):
    """After an edit and a delete, the cursor read returns exactly those two hrefs."""
    account = filled
    calendar = linked(app, account.calendar_url())
    first = provider.read_busy(calendar, *WINDOW, None)
    account.put("single.ics", SINGLE_MOVED)
    account.delete("weekly.ics")

    result = provider.read_busy(calendar, *WINDOW, first.cursor)

    assert result.full is False
    assert result.requests == 1
    assert result.cursor and result.cursor != first.cursor
    by_key = {change.key: change for change in result.changes}
    assert set(by_key) == {account.href("single.ics"), account.href("weekly.ics")}
    assert by_key[account.href("weekly.ics")].deleted is True
    moved = by_key[account.href("single.ics")]
    assert moved.deleted is False
    assert [(b.starts_at, b.ends_at) for b in moved.blocks] == [(utc(17, 8), utc(17, 8, 30))]


def test_unchanged_calendar_costs_one_request(provider, filled, app):
    calendar = linked(app, filled.calendar_url())
    first = provider.read_busy(calendar, *WINDOW, None)

    result = provider.read_busy(calendar, *WINDOW, first.cursor)

    assert result.changes == []
    assert result.requests == 1
    assert result.full is False
    assert result.cursor


def test_event_turned_transparent_is_cleared(provider, filled, app):
    """An incremental change to "no busy time" is reported with no blocks, not left out."""
    account = filled
    calendar = linked(app, account.calendar_url())
    first = provider.read_busy(calendar, *WINDOW, None)
    account.put(
        "single.ics", SINGLE.replace("SUMMARY:Dentist", "SUMMARY:Dentist\r\nTRANSP:TRANSPARENT")
    )

    result = provider.read_busy(calendar, *WINDOW, first.cursor)

    assert [(c.key, c.blocks, c.deleted) for c in result.changes] == [
        (account.href("single.ics"), [], False)
    ]


def test_read_cut_short_by_the_time_budget_is_not_complete(make_provider, filled, app):
    """The budget runs out before the objects are expanded: not a full result and no sync
    token (a full result would clear the unread events' busy time, and the token would
    skip them for good), so the next sync reads the whole calendar again."""
    account = filled
    provider = make_provider(
        account.base_url, account.username, account.password, max_expand_seconds=0
    )
    calendar = linked(app, account.calendar_url())

    result = provider.read_busy(calendar, *WINDOW, None)

    assert result.full is False
    assert result.cursor is None
    assert any("read in full again" in warning for warning in result.warnings)
    assert not any(change.deleted for change in result.changes)


def test_incremental_read_cut_short_drops_the_token(make_provider, filled, app):
    account = filled
    calendar = linked(app, account.calendar_url())
    first = make_provider(account.base_url, account.username, account.password).read_busy(
        calendar, *WINDOW, None
    )
    account.put("single.ics", SINGLE_MOVED)
    provider = make_provider(
        account.base_url, account.username, account.password, max_expand_seconds=0
    )

    result = provider.read_busy(calendar, *WINDOW, first.cursor)

    assert result.full is False
    assert result.cursor is None


def test_read_cut_short_by_the_page_cap_is_not_complete(make_provider, stub_server, app):
    """A server that keeps saying "truncated" without moving on: the pages read replace
    only their own events, and no token is kept."""
    stub_server.status = 207
    stub_server.headers = {"Content-Type": "application/xml; charset=utf-8"}
    stub_server.body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:response><D:href>/cal/a.ics</D:href><D:propstat><D:prop>"
        '<D:getetag>"1"</D:getetag><C:calendar-data>'
        + SINGLE.replace("\r\n", "&#13;\n")
        + "</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        "</D:response>"
        "<D:response><D:href>/cal/</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
        "<D:sync-token>http://example.com/sync/1</D:sync-token>"
        "</D:multistatus>"
    ).encode()
    provider = make_provider(stub_server.url, "someone", "secret")

    result = provider.read_busy(linked(app, stub_server.url + "cal/"), *WINDOW, None)

    assert result.full is False
    assert result.cursor is None
    assert busy(result) == {"/cal/a.ics": [(utc(16, 15), utc(16, 16), "busy")]}


def test_bogus_cursor_is_cursor_expired(provider, caldav_account, app):
    calendar = linked(app, caldav_account.calendar_url())

    with pytest.raises(CursorExpired):
        provider.read_busy(calendar, *WINDOW, "http://radicale.org/ns/sync/not-a-real-token")


# --- writing events --------------------------------------------------------------------


def booking(**changes) -> EventData:
    fields = dict(
        uid="booking-42@slotbook.test",
        title="[PENDING] Driving lesson",
        starts_at=utc(8, 10),
        ends_at=utc(8, 11),
        tentative=True,
        description="Booked through Slotbook",
        location="Main office",
        sequence=0,
    )
    fields.update(changes)
    return EventData(**fields)


def test_create_update_delete_round_trip(provider, caldav_account, app):
    account = caldav_account
    calendar = linked(app, account.calendar_url())

    written = provider.create_event(calendar, booking())
    stored = account.get(written.remote_id)
    assert written.remote_id == account.href("booking-42@slotbook.test.ics")
    assert written.etag == stored.headers["ETag"]
    text = stored.text.replace("\r\n", "\n")
    assert "UID:booking-42@slotbook.test\n" in text
    assert "SUMMARY:[PENDING] Driving lesson\n" in text
    assert "STATUS:TENTATIVE\n" in text
    assert "DTSTART:20300108T100000Z\n" in text
    assert "LOCATION:Main office\n" in text

    # Our own event reads back as tentative busy time under the same key.
    read = provider.read_busy(calendar, *WINDOW, None)
    assert busy(read) == {written.remote_id: [(utc(8, 10), utc(8, 11), "tentative")]}

    approved = booking(
        title="Driving lesson",
        tentative=False,
        starts_at=utc(9, 14),
        ends_at=utc(9, 15),
        sequence=1,
    )
    updated = provider.update_event(calendar, written.remote_id, approved, written.etag)
    stored = account.get(written.remote_id)
    text = stored.text.replace("\r\n", "\n")
    assert updated.remote_id == written.remote_id
    assert updated.etag == stored.headers["ETag"] != written.etag
    assert "SUMMARY:Driving lesson\n" in text
    assert "STATUS:CONFIRMED\n" in text
    assert "DTSTART:20300109T140000Z\n" in text
    assert "SEQUENCE:1\n" in text

    provider.delete_event(calendar, written.remote_id, updated.etag)
    assert account.get(written.remote_id).status_code == 404


def test_update_with_stale_etag_overwrites(provider, caldav_account, app):
    """Someone edited our event in their calendar app: we own it, so ours wins."""
    account = caldav_account
    calendar = linked(app, account.calendar_url())
    written = provider.create_event(calendar, booking())
    edited = account.get(written.remote_id).text.replace("Driving lesson", "Edited by hand")
    account.put("booking-42@slotbook.test.ics", edited)

    updated = provider.update_event(calendar, written.remote_id, booking(sequence=1), written.etag)

    stored = account.get(written.remote_id)
    assert "SUMMARY:[PENDING] Driving lesson" in stored.text
    assert updated.etag == stored.headers["ETag"]


def test_update_of_deleted_event_recreates_it(provider, caldav_account, app):
    account = caldav_account
    calendar = linked(app, account.calendar_url())
    written = provider.create_event(calendar, booking())
    account.delete("booking-42@slotbook.test.ics")

    updated = provider.update_event(calendar, written.remote_id, booking(), written.etag)

    assert account.get(updated.remote_id).status_code == 200
    assert account.object_names() == ["booking-42@slotbook.test.ics"]


def test_creating_twice_does_not_duplicate(provider, caldav_account, app):
    """A retried delivery with the same UID updates the event it created the first time."""
    account = caldav_account
    calendar = linked(app, account.calendar_url())

    first = provider.create_event(calendar, booking())
    second = provider.create_event(calendar, booking(title="[PENDING] Driving lesson (2)"))

    assert second.remote_id == first.remote_id
    assert account.object_names() == ["booking-42@slotbook.test.ics"]
    assert "SUMMARY:[PENDING] Driving lesson (2)" in account.get(first.remote_id).text


def test_unusual_uid_gets_a_safe_stable_name(provider, caldav_account, app):
    account = caldav_account
    calendar = linked(app, account.calendar_url())
    uid = "booking 7/with odd?chars"

    first = provider.create_event(calendar, booking(uid=uid))
    second = provider.create_event(calendar, booking(uid=uid))

    assert first.remote_id == second.remote_id
    assert "UID:booking 7/with odd?chars" in account.get(first.remote_id).text
    assert len(account.object_names()) == 1


def test_deleting_a_missing_event_is_fine(provider, caldav_account, app):
    calendar = linked(app, caldav_account.calendar_url())

    provider.delete_event(calendar, caldav_account.href("never-existed.ics"), None)
