"""The ICS subscription provider (K2, K4, K6) against a real local HTTP server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.connections.models import Connection, ConnectionKind, LinkedCalendar
from app.connections.providers import provider_for
from app.connections.providers.base import (
    AuthFailed,
    NotACalendarServer,
    ProviderError,
    ProviderSettings,
    TemporaryFailure,
    UnsafeURL,
)
from app.connections.providers.ics import MAX_FEED_BYTES, IcsProvider, feed_url
from tests.connections.ics_server import FeedServer, Reply

LOCAL = ProviderSettings(allow_private_urls=True, timeout=5, http_attempts=1)
WINDOW = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def feed(*events: str, name: str | None = "Anna's work") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example//EN"]
    if name:
        lines.append(f"X-WR-CALNAME:{name}")
    for event in events:
        lines += ["BEGIN:VEVENT", *[ln.strip() for ln in event.strip().splitlines()], "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


DENTIST = """
    UID:dentist
    SUMMARY:Dentist
    DTSTART:20260310T090000Z
    DTEND:20260310T100000Z
"""
TEAM_MEETING = """
    UID:team
    SUMMARY:Team meeting
    DTSTART;TZID=Europe/London:20260303T140000
    DTEND;TZID=Europe/London:20260303T150000
    RRULE:FREQ=WEEKLY
"""


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def other_server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def person(factory):
    return factory.user("agent", email="anna@example.test")


def provider(person, url: str, settings=LOCAL, **fields) -> IcsProvider:
    secret = fields.pop("secret", None)
    connection = Connection(kind=ConnectionKind.ICS, user_id=person.id, url=url, **fields)
    return IcsProvider(connection, secret, settings)


def linked(person, url: str) -> LinkedCalendar:
    return LinkedCalendar(person_id=person.id, remote_id=url, name="Feed", writable=False)


def by_key(result) -> dict[str, list[tuple[datetime, datetime]]]:
    return {c.key: [(b.starts_at, b.ends_at) for b in c.blocks] for c in result.changes}


# --- listing -------------------------------------------------------------------------------


def test_the_feed_is_one_read_only_calendar_named_by_the_feed(server, person):
    server.feed("/anna.ics", feed(DENTIST))

    (calendar,) = provider(person, server.url("/anna.ics")).list_calendars()

    assert calendar.remote_id.startswith("feed-")  # names the feed without its address
    assert "anna" not in calendar.remote_id
    assert calendar.name == "Anna's work"
    assert calendar.writable is False
    assert IcsProvider.can_write is False


def test_a_feed_without_a_name_is_named_after_its_host(server, person):
    server.feed("/anon.ics", feed(DENTIST, name=None))

    (calendar,) = provider(person, server.url("/anon.ics")).list_calendars()

    assert calendar.name == "127.0.0.1"


def test_an_address_that_is_not_a_feed_is_refused(server, person):
    server.replies("/login", Reply(200, b"<!doctype html><title>Sign in</title>"))
    ics = provider(person, server.url("/login"))

    with pytest.raises(NotACalendarServer, match="did not return an iCalendar feed"):
        ics.list_calendars()
    with pytest.raises(NotACalendarServer):
        ics.read_busy(linked(person, server.url("/login")), *WINDOW, None)


def test_webcal_addresses_are_fetched_over_https():
    assert feed_url("webcal://example.com/a.ics?k=1") == "https://example.com/a.ics?k=1"
    assert feed_url(" WEBCALS://example.com/a.ics ") == "https://example.com/a.ics"
    assert feed_url("https://example.com/a.ics") == "https://example.com/a.ics"
    with pytest.raises(ProviderError, match="no feed address"):
        feed_url("")


def test_an_address_too_long_to_store_is_refused(server, person):
    url = server.url("/feed.ics?token=" + "t" * 1000)

    with pytest.raises(ProviderError, match="longer than 1000 characters"):
        provider(person, url).list_calendars()

    assert server.hits == []


def test_the_registry_builds_an_ics_provider(person):
    connection = Connection(kind=ConnectionKind.ICS, user_id=person.id, url="https://x.test/")

    assert isinstance(provider_for(connection, LOCAL), IcsProvider)


# --- reading with validators ---------------------------------------------------------------


def test_first_read_is_full_and_an_unchanged_feed_costs_one_request(server, person):
    server.feed("/anna.ics", feed(DENTIST, TEAM_MEETING))
    ics = provider(person, server.url("/anna.ics"))
    calendar = linked(person, server.url("/anna.ics"))

    first = ics.read_busy(calendar, *WINDOW, None)

    assert first.full is True
    assert first.requests == 1
    assert first.warnings == []
    blocks = by_key(first)
    assert blocks["dentist"] == [(utc(2026, 3, 10, 9), utc(2026, 3, 10, 10))]
    assert blocks["team"][0] == (utc(2026, 3, 3, 14), utc(2026, 3, 3, 15))
    assert blocks["team"][4] == (utc(2026, 3, 31, 13), utc(2026, 3, 31, 14))  # BST
    assert first.cursor

    second = ics.read_busy(calendar, *WINDOW, first.cursor)

    assert (second.full, second.changes, second.requests) == (False, [], 1)
    assert second.cursor == first.cursor
    plain, conditional = server.hits_to("/anna.ics")
    assert "if-none-match" not in plain.headers
    assert conditional.headers["if-none-match"] == server.routes["/anna.ics"].etag


def test_a_changed_feed_is_read_in_full_again(server, person):
    source = server.feed("/anna.ics", feed(DENTIST, TEAM_MEETING))
    ics = provider(person, server.url("/anna.ics"))
    calendar = linked(person, server.url("/anna.ics"))
    first = ics.read_busy(calendar, *WINDOW, None)

    moved = DENTIST.replace("20260310T09", "20260312T15").replace("20260310T10", "20260312T16")
    source.update(feed(moved))
    second = ics.read_busy(calendar, *WINDOW, first.cursor)

    assert second.full is True
    assert by_key(second) == {"dentist": [(utc(2026, 3, 12, 15), utc(2026, 3, 12, 16))]}
    assert second.cursor != first.cursor


def test_last_modified_alone_makes_a_conditional_request(server, person):
    server.feed("/old-server.ics", feed(DENTIST), etag=False)
    ics = provider(person, server.url("/old-server.ics"))
    calendar = linked(person, server.url("/old-server.ics"))

    first = ics.read_busy(calendar, *WINDOW, None)
    second = ics.read_busy(calendar, *WINDOW, first.cursor)

    assert second.full is False and second.changes == []
    assert "if-modified-since" in server.hits_to("/old-server.ics")[1].headers


def test_a_feed_without_validators_is_read_in_full_every_time(server, person):
    server.feed("/plain.ics", feed(DENTIST), etag=False, last_modified=False)
    calendar = linked(person, server.url("/plain.ics"))

    result = provider(person, server.url("/plain.ics")).read_busy(calendar, *WINDOW, None)

    assert result.full is True
    assert result.cursor is None


def test_a_window_beyond_the_last_read_is_fetched_in_full(server, person):
    """An unchanged feed still has new instances of a weekly event as the window moves on,
    so a 304 is only trusted for the span that was expanded last time."""
    server.feed("/anna.ics", feed(TEAM_MEETING))
    ics = provider(person, server.url("/anna.ics"))
    calendar = linked(person, server.url("/anna.ics"))
    first = ics.read_busy(calendar, *WINDOW, None)
    start, end = WINDOW

    nearly = ics.read_busy(
        calendar, start + timedelta(days=5), end + timedelta(days=6), first.cursor
    )
    later = ics.read_busy(
        calendar, start + timedelta(days=30), end + timedelta(days=30), first.cursor
    )

    assert nearly.full is False  # within the week read past the end last time
    assert later.full is True
    assert max(s for s, _ in by_key(later)["team"]) > max(s for s, _ in by_key(first)["team"])
    assert "if-none-match" not in server.hits_to("/anna.ics")[-1].headers


def test_an_unreadable_cursor_just_costs_a_full_read(server, person):
    server.feed("/anna.ics", feed(DENTIST))
    calendar = linked(person, server.url("/anna.ics"))

    result = provider(person, server.url("/anna.ics")).read_busy(calendar, *WINDOW, "{not json")

    assert result.full is True


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_a_missing_feed_says_so(server, person, status):
    server.replies("/gone.ics", Reply(status, b"gone"))
    calendar = linked(person, server.url("/gone.ics"))

    with pytest.raises(
        ProviderError, match=f"No calendar feed was found.*\\({status}\\)"
    ) as caught:
        provider(person, server.url("/gone.ics")).read_busy(calendar, *WINDOW, None)

    assert not isinstance(caught.value, AuthFailed)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_feed_needs_relinking(server, person, status):
    server.replies("/private.ics", Reply(status, b"no"))

    with pytest.raises(AuthFailed, match=f"refused access \\({status}\\)"):
        provider(person, server.url("/private.ics")).list_calendars()


def test_other_client_errors_are_provider_errors(server, person):
    server.replies("/teapot.ics", Reply(418, b"short and stout"))

    with pytest.raises(ProviderError, match=r"\(418\)"):
        provider(person, server.url("/teapot.ics")).list_calendars()


def test_server_errors_are_temporary(server, person):
    server.replies("/broken.ics", Reply(500, b"oops"))

    with pytest.raises(TemporaryFailure):
        provider(person, server.url("/broken.ics")).list_calendars()


def test_a_feed_declared_too_large_is_refused_unread(server, person):
    server.replies("/huge.ics", Reply(200, b"", {"Content-Length": str(MAX_FEED_BYTES + 1)}))

    with pytest.raises(ProviderError, match="larger than 20 MB"):
        provider(person, server.url("/huge.ics")).list_calendars()


def test_a_streamed_feed_is_cut_off_at_the_size_cap(server, person):
    """No Content-Length: the body is read in chunks and refused once past the cap, instead
    of being loaded into memory whole."""
    chunk = b"X-FILLER:" + b"x" * (64 * 1024 - 11) + b"\r\n"
    server.stream("/endless.ics", chunk, count=MAX_FEED_BYTES // len(chunk) + 20)
    calendar = linked(person, server.url("/endless.ics"))

    with pytest.raises(ProviderError, match="larger than 20 MB"):
        provider(person, server.url("/endless.ics")).read_busy(calendar, *WINDOW, None)


def test_a_feed_cut_short_keeps_what_could_not_be_read(server, person):
    """A truncated file gives a partial result: the events read are updated, the others keep
    their cached busy time (not full), and the next sync downloads it again (no cursor)."""
    whole = feed(DENTIST, TEAM_MEETING)
    server.feed("/cut.ics", whole[: whole.index("UID:team")])
    calendar = linked(person, server.url("/cut.ics"))

    result = provider(person, server.url("/cut.ics")).read_busy(calendar, *WINDOW, None)

    assert result.full is False
    assert result.cursor is None
    assert list(by_key(result)) == ["dentist"]
    assert any("cut short" in warning for warning in result.warnings)


def test_problems_in_the_feed_come_back_as_warnings(server, person):
    event = DENTIST.replace("DTSTART:", "DTSTART;TZID=Mars/Olympus:").replace("Z\n", "\n")
    server.feed("/odd.ics", feed(event.replace("DTEND:20260310T100000Z", "DURATION:PT1H")))
    calendar = linked(person, server.url("/odd.ics"))

    result = provider(person, server.url("/odd.ics")).read_busy(calendar, *WINDOW, None)

    assert result.warnings == ["Unknown time zone 'Mars/Olympus' in event 'Dentist'; read as UTC."]
    assert by_key(result) == {"dentist": [(utc(2026, 3, 10, 9), utc(2026, 3, 10, 10))]}


def test_a_protected_feed_gets_the_credentials_in_its_address(server, person):
    """The address is the connection's sealed secret; credentials in it become Basic auth."""
    server.feed("/private.ics", feed(DENTIST))
    address = server.url("/private.ics").replace("http://", "http://anna:app-password@")
    ics = provider(person, "http://127.0.0.1/…/private.ics", secret=address)

    ics.list_calendars()

    expected = "Basic " + base64.b64encode(b"anna:app-password").decode()
    assert server.hits_to("/private.ics")[0].headers["authorization"] == expected


# --- addresses -----------------------------------------------------------------------------


def test_a_local_address_is_refused_unless_allowed(server, person):
    server.feed("/anna.ics", feed(DENTIST))

    with pytest.raises(UnsafeURL):
        provider(person, server.url("/anna.ics"), ProviderSettings()).list_calendars()

    assert server.hits == []


def test_a_redirect_into_the_local_network_is_refused(server, other_server, person):
    """localhost is explicitly allowed here (a named LAN server); the feed there redirects to
    127.0.0.1, which is not, and that hop is never requested."""
    other_server.feed("/internal.ics", feed(DENTIST))
    server.redirect("/anna.ics", other_server.url("/internal.ics"))
    settings = ProviderSettings(private_hosts=frozenset({"localhost"}), http_attempts=1)

    with pytest.raises(UnsafeURL):
        provider(person, server.url("/anna.ics", host="localhost"), settings).list_calendars()

    assert len(server.hits_to("/anna.ics")) == 1
    assert other_server.hits == []


def test_redirects_are_followed_and_counted(server, person):
    server.redirect("/old.ics", "/anna.ics", status=301)
    server.feed("/anna.ics", feed(DENTIST))
    calendar = linked(person, server.url("/old.ics"))

    result = provider(person, server.url("/old.ics")).read_busy(calendar, *WINDOW, None)

    assert result.requests == 2
    assert "dentist" in by_key(result)
