"""F1: each person's secret calendar feed: made and regenerated on the calendars page (CSRF,
confirmation, shown once), served without sign-in with ETag/304 and private headers, dead at
once when regenerated or when its owner is deactivated, never written to a log."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import urllib.request
from datetime import UTC
from urllib.parse import urlsplit

import icalendar
import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.bookings.models import Booking
from app.database import begin_write
from app.extensions import db
from app.notifications.models import FeedToken
from tests.accounts.conftest import changed_tables, db_state
from tests.browser import conftest as browser_fixtures
from tests.conftest import at, csrf_from, login
from tests.notifications.test_ics import parse_with_icaljs

URL_RE = re.compile(r'value="(http://[^"]+/feeds/(feed_[A-Za-z0-9_-]+)\.ics)"')


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def ann(factory):
    return factory.user("agent", email="ann@example.test", name="Ann Agent")


def _make_feed(client, email: str) -> tuple[str, str]:
    """Sign in as ``email`` and press "Create feed URL"; the full URL and its path."""
    login(client, email)
    page = client.get("/me/calendars").get_data(as_text=True)
    assert "Create feed URL" in page
    response = client.post("/me/feed", data={"csrf_token": csrf_from(client, "/me/calendars")})
    assert response.status_code == 200
    match = URL_RE.search(response.get_data(as_text=True))
    assert match, "the new address is shown"
    return match.group(1), urlsplit(match.group(1)).path


def _uids(body: bytes) -> set[str]:
    return {str(e["UID"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def _set_active(app, user_id: int, active: bool) -> None:
    with app.app_context():
        begin_write()
        db.session.get(User, user_id).active = active
        db.session.commit()


def _act(app, booking_id: int, action: str, *args) -> None:
    from app.bookings import service

    with app.app_context():
        begin_write()
        getattr(service, action)(None, db.session.get(Booking, booking_id), *args)
        db.session.commit()


# --- making the address ----------------------------------------------------------------------


def test_create_shows_the_address_once_and_stores_only_its_hash(app, client, ann):
    """Pressing "Create feed URL" shows the address; only the token's SHA-256 is kept anywhere
    in the database, and the page never shows the address again."""
    url, path = _make_feed(client, ann.email)
    token = path.removeprefix("/feeds/").removesuffix(".ics")
    assert url == f"{app.config['SLOTBOOK_BASE_URL']}{path}"
    assert len(token.removeprefix("feed_")) >= 43  # 256 bits, base64url
    with app.app_context():
        row = db.session.get(FeedToken, ann.id)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(db_state(app))
    later = client.get("/me/calendars").get_data(as_text=True)
    assert token not in later
    assert "You have a feed address" in later and "Regenerate the address" in later


def test_create_answer_is_not_cached_and_htmx_gets_the_section(app, client, ann):
    """The answer holding the address says no-store; under HTMX it is the section alone."""
    login(client, ann.email)
    token = csrf_from(client, "/me/calendars")
    response = client.post("/me/feed", data={"csrf_token": token}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert html.lstrip().startswith("<section") or "<html" not in html
    assert 'id="calendar-feed"' in html and URL_RE.search(html)
    assert "cannot show it to you again" in html
    assert "Outlook" in html and "Google Calendar" in html and "Apple Calendar" in html


def test_create_with_a_feed_already_there_asks_first(app, client, ann):
    """A second "Create" (a double click, a stale page) changes nothing and shows the
    confirmation step instead."""
    _make_feed(client, ann.email)
    before = db_state(app)
    response = client.post("/me/feed", data={"csrf_token": csrf_from(client, "/me/calendars")})
    assert response.status_code == 200
    assert "stops working at once" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_posts_need_the_csrf_token(app, client, ann):
    """Create and regenerate without a valid CSRF token: 400 and nothing written."""
    login(client, ann.email)
    for url in ("/me/feed", "/me/feed/regenerate"):
        for data in ({}, {"csrf_token": "forged"}):
            before = db_state(app)
            response = client.post(url, data=data)
            assert response.status_code == 400, url
            assert "Your form expired" in response.get_data(as_text=True)
            assert changed_tables(before, db_state(app)) == []


def test_feed_controls_need_a_signed_in_user(client):
    """Anonymous visitors are sent to sign in for every /me/feed page and post."""
    token = csrf_from(client, "/login")
    for method, url in (
        ("get", "/me/feed"),
        ("get", "/me/feed/regenerate"),
        ("post", "/me/feed"),
        ("post", "/me/feed/regenerate"),
    ):
        response = getattr(client, method)(url, data={"csrf_token": token})
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login")


# --- regenerating --------------------------------------------------------------------------


def test_regenerate_confirms_then_kills_the_old_address_at_once(app, client, ann):
    """The confirmation warns; after it the old address is a 404 and the new one works."""
    _, old = _make_feed(client, ann.email)
    feed_client = app.test_client()
    assert feed_client.get(old).status_code == 200
    confirm = client.get("/me/feed/regenerate").get_data(as_text=True)
    assert "The old address stops working at once" in confirm
    assert 'action="/me/feed/regenerate"' in confirm
    response = client.post(
        "/me/feed/regenerate", data={"csrf_token": csrf_from(client, "/me/calendars")}
    )
    match = URL_RE.search(response.get_data(as_text=True))
    new = urlsplit(match.group(1)).path
    assert new != old
    assert feed_client.get(old).status_code == 404
    assert feed_client.get(new).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(FeedToken)) == 1


# --- serving the feed ------------------------------------------------------------------------


def test_unknown_regenerated_and_disabled_tokens_get_the_same_404(app, client, ann):
    """Wrong token, regenerated-away token, deactivated owner: 404 with one identical body."""
    _, old = _make_feed(client, ann.email)
    _, current = _make_feed_again(client)
    feeds = app.test_client()
    assert feeds.get(current).status_code == 200

    wrong = feeds.get("/feeds/feed_" + "A" * 43 + ".ics")
    malformed = feeds.get("/feeds/not-a-token.ics")
    rotated = feeds.get(old)
    _set_active(app, ann.id, False)
    disabled = feeds.get(current)
    answers = [wrong, malformed, rotated, disabled]
    assert [r.status_code for r in answers] == [404] * 4
    assert len({r.get_data() for r in answers}) == 1
    assert all("Set-Cookie" not in r.headers for r in answers)
    _set_active(app, ann.id, True)
    assert feeds.get(current).status_code == 200


def _make_feed_again(client) -> tuple[str, str]:
    """Regenerate through the confirmation form and return the new URL and path."""
    response = client.post(
        "/me/feed/regenerate", data={"csrf_token": csrf_from(client, "/me/calendars")}
    )
    match = URL_RE.search(response.get_data(as_text=True))
    return match.group(1), urlsplit(match.group(1)).path


def test_feed_lists_the_right_bookings(app, client, factory, ann):
    """Owned or attended, provisional/confirmed/completed, ending in the last 60 days or later;
    never cancelled, rejected, older, or other people's bookings."""
    from app.bookings.service import Guest

    other = factory.user("agent", email="otto@example.test", name="Otto")
    plain = factory.booking_type(name="Observation")
    approval = factory.booking_type(name="Planning meeting", requires_approval=True)
    mine = factory.booking(None, plain, at(3), [ann])
    pending = factory.booking(None, approval, at(4), [ann])
    attending = factory.booking(None, plain, at(5), [other, ann])
    as_learner = factory.booking(None, plain, at(6), [other], learner=ann)
    recent = factory.booking(None, plain, at(-30), [ann])
    _act(app, recent.id, "complete")
    old = factory.booking(None, plain, at(-70), [ann])
    cancelled = factory.booking(None, plain, at(7), [ann])
    _act(app, cancelled.id, "cancel")
    rejected = factory.booking(None, approval, at(8), [ann])
    _act(app, rejected.id, "reject")
    not_mine = factory.booking(None, plain, at(9), [other], guests=[Guest("x@example.test", "X")])

    _, path = _make_feed(client, ann.email)
    response = app.test_client().get(path)
    assert response.status_code == 200
    uids = _uids(response.get_data())
    assert uids == {b.uid for b in (mine, pending, attending, as_learner, recent)}
    assert not uids & {b.uid for b in (old, cancelled, rejected, not_mine)}
    read = parse_with_icaljs(response.get_data(as_text=True))
    titles = {e["uid"]: e["summary"] for e in read["events"]}
    assert titles[pending.uid] == "[PENDING] Planning meeting"
    assert titles[mine.uid] == "Observation"
    assert read["calname"] == "Slotbook – Ann Agent"


def test_feed_headers(app, client, factory, ann):
    """Content type, strong ETag, private caching, no referrer, no sniffing."""
    factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert re.fullmatch(r'"[0-9a-f]{40}"', response.headers["ETag"])  # strong: no W/
    assert response.headers["Cache-Control"] == "private, max-age=300"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers


def test_etag_gives_304_until_a_booking_changes(app, client, factory, ann):
    """Same ETag back: 304 with no body. A reschedule changes the ETag and the feed."""
    booking = factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    feeds = app.test_client()
    first = feeds.get(path)
    etag = first.headers["ETag"]
    assert feeds.get(path).headers["ETag"] == etag  # the same bytes give the same tag
    assert feeds.get(path).get_data() == first.get_data()

    again = feeds.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "private, max-age=300"
    assert again.headers["Referrer-Policy"] == "no-referrer"
    stale = feeds.get(path, headers={"If-None-Match": '"0000"'})
    assert stale.status_code == 200

    _act(app, booking.id, "reschedule", at(9))
    changed = feeds.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    event = icalendar.Calendar.from_ical(changed.get_data()).walk("VEVENT")[0]
    assert event.DTSTART.astimezone(UTC) == at(9)
    assert feeds.get(path, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_feed_is_rate_limited_per_feed(app, client, ann):
    """Over the per-feed limit the feed answers 429 with Retry-After."""
    app.config["SLOTBOOK_LIMIT_FEED"] = "2/minute"
    _, path = _make_feed(client, ann.email)
    feeds = app.test_client()
    assert [feeds.get(path).status_code for _ in range(3)] == [200, 200, 429]
    assert int(feeds.get(path).headers["Retry-After"]) > 0


def test_feed_is_served_when_the_limit_store_is_down(database_url, tmp_path, caplog):
    """Redis stopped: the feed still answers (a read changes nothing: fail open), with a
    warning in the log."""
    from app import create_app
    from app.accounts.service import create_user, ensure_roles
    from app.config import TestConfig
    from app.notifications import feeds
    from tests.conftest import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    app = create_app(TestConfig(database_url, server.url))
    try:
        with app.app_context():
            begin_write()
            ensure_roles()
            path = urlsplit(
                feeds.feed_url(feeds.rotate(create_user("b@example.test", "B", "agent")))
            )
            db.session.commit()
        client = app.test_client()
        assert client.get(path.path).status_code == 200
        server.stop()
        assert client.get(path.path).status_code == 200
        assert "rate limit storage unreachable" in caplog.text
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()


# --- the command line ------------------------------------------------------------------------


def test_cli_rotate_prints_a_working_url(app, ann):
    """`flask feeds rotate EMAIL` prints the new address; it works and the previous one dies."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["feeds", "rotate", "ANN@example.test"])
    assert first.exit_code == 0, first.output
    url = first.output.strip()
    assert url.startswith(app.config["SLOTBOOK_BASE_URL"] + "/feeds/feed_") and url.endswith(".ics")
    feeds = app.test_client()
    assert feeds.get(urlsplit(url).path).status_code == 200
    second = runner.invoke(args=["feeds", "rotate", ann.email])
    assert feeds.get(urlsplit(url).path).status_code == 404
    assert feeds.get(urlsplit(second.output.strip()).path).status_code == 200

    missing = runner.invoke(args=["feeds", "rotate", "nobody@example.test"])
    assert missing.exit_code != 0 and "No user" in missing.output


# --- logs ----------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(app, client, factory, ann, caplog):
    """Every log record of making, serving, 304-ing, regenerating and refusing feeds, and the
    development server's access log, is free of the token (the path shows "[redacted]")."""
    from werkzeug.serving import make_server

    caplog.set_level(logging.DEBUG)
    factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    feeds = app.test_client()
    etag = feeds.get(path).headers["ETag"]
    feeds.get(path, headers={"If-None-Match": etag})
    runner = app.test_cli_runner()
    cli_path = urlsplit(runner.invoke(args=["feeds", "rotate", ann.email]).output.strip()).path
    _set_active(app, ann.id, False)
    feeds.get(cli_path)

    _set_active(app, ann.id, True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(2):  # the second is served from Redis's count, the same way
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{cli_path}") as answer:
                assert answer.status == 200
    finally:
        server.shutdown()
        thread.join(10)

    tokens = {p.removeprefix("/feeds/").removesuffix(".ics") for p in (path, cli_path)}
    lines = [record.getMessage() for record in caplog.records]
    access = [line for line in lines if "GET /feeds/" in line]
    assert access and all("/feeds/[redacted]" in line for line in access)
    leaked = [line for line in lines for token in tokens if token in line]
    assert not leaked


def test_calendars_page_shows_the_feed_section(app, client, ann):
    """The calendars page carries the section, with the no-JS form and its CSRF token."""
    login(client, ann.email)
    page = client.get("/me/calendars").get_data(as_text=True)
    section = page[page.index('id="calendar-feed"') :]
    assert "Calendar feed" in section
    assert 'action="/me/feed"' in section and 'name="csrf_token"' in section


# --- in a real browser ---------------------------------------------------------------------

live_server = browser_fixtures.live_server


def _in_a_browser(work) -> None:
    """Run ``work(page)`` in headless Chromium on a thread of its own. Playwright's sync API
    will not start a second time on a thread where it already runs, and the session-wide
    browser of tests/browser may be running on this one."""
    from playwright.sync_api import sync_playwright

    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(
                    executable_path=browser_fixtures.CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
                )
                context = chromium.new_context(
                    viewport={"width": 1280, "height": 860}, locale="en-GB"
                )
                page = context.new_page()
                page.set_default_timeout(10_000)
                try:
                    work(page)
                finally:
                    chromium.close()
        except BaseException as exc:  # handed back to the test's own thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the browser did not finish in time"
    if failure:
        raise failure[0]


@pytest.mark.browser
def test_feed_section_in_the_browser(app, ann, live_server):
    """Create (HTMX), copy with the button, regenerate after confirming: the copied address
    serves the feed, and after regenerating it is dead and the new one works."""
    feeds = app.test_client()
    addresses: list[str] = []

    def work(page) -> None:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
        browser_fixtures.sign_in(page, live_server, ann.email)
        page.goto(f"{live_server}/me/calendars")
        section = page.locator("#calendar-feed")
        section.get_by_role("button", name="Create feed URL").click()
        browser_fixtures.htmx_settled(page)
        first = page.get_by_label("Feed address").input_value()
        page.get_by_role("button", name="Copy address").click()
        page.get_by_text("Copied to the clipboard.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == first
        browser_fixtures.shoot(page, "calendar-feed-created")
        addresses.append(first)
        assert feeds.get(urlsplit(first).path).status_code == 200

        page.goto(f"{live_server}/me/calendars")
        assert first not in page.content()
        page.get_by_role("link", name="Regenerate the address…").click()
        browser_fixtures.htmx_settled(page)
        assert "The old address stops working at once" in section.inner_text()
        section.get_by_role("button", name="Yes, make a new address").click()
        browser_fixtures.htmx_settled(page)
        addresses.append(page.get_by_label("Feed address").input_value())

    _in_a_browser(work)
    first, second = addresses
    assert URL_RE.search(f'value="{first}"') and URL_RE.search(f'value="{second}"')
    assert first != second
    assert feeds.get(urlsplit(first).path).status_code == 404
    assert feeds.get(urlsplit(second).path).status_code == 200


def _encoded(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


@pytest.mark.parametrize(
    "path",
    [
        "/feeds//{token}.ics",
        "/%66eeds/{token}.ics",
        "/%66eeds//{token}.ics",
        "/x/../feeds/{token}.ics",
        "/feeds/{encoded_token}.ics",
        "/feeds/%66eed_{body}.ics",
        "/feeds/{upper_prefix}.ics",
    ],
)
def test_the_log_filter_redacts_tokens_by_their_shape(path):
    """Paths that dodge the "/feeds/<token>" pattern still lose the token: a werkzeug access
    line (its format and arguments) goes through the filter and keeps no part of it."""
    from app.secret_links import RedactTokens
    from app.security import new_token

    token = new_token("feed")
    body = token.removeprefix("feed_")
    requested = path.format(
        token=token,
        body=body,
        encoded_token=_encoded(token),
        upper_prefix="FEED_" + body,
    )
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '127.0.0.1 - - [01/Jan/2030 10:00:00] "%s" %s %s\n',
        (f"GET {requested} HTTP/1.1", "404", "-"),
        None,
    )
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert "[redacted]" in line
    assert body not in line and _encoded(body) not in line
    assert body[:12] not in line  # not even a prefix of it


def test_tokens_in_odd_paths_never_reach_the_access_log(app, client, factory, ann, caplog):
    """Through the development server, "/feeds//<token>.ics" and "/%66eeds/<token>.ics" are
    logged with the token redacted."""
    import urllib.error

    from werkzeug.serving import make_server

    caplog.set_level(logging.DEBUG)
    _, path = _make_feed(client, ann.email)
    token = path.removeprefix("/feeds/").removesuffix(".ics")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for odd in (f"/feeds//{token}.ics", f"/%66eeds/{token}.ics"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{server.port}{odd}").close()
            except urllib.error.HTTPError as answer:
                answer.close()
    finally:
        server.shutdown()
        thread.join(10)
    lines = [record.getMessage() for record in caplog.records]
    access = [line for line in lines if "GET /" in line and "eeds/" in line]
    assert len(access) >= 2, lines  # "//" is redirected (308) to the tidy path, then served
    assert all("[redacted]" in line for line in access)
    assert not [line for line in lines if token.removeprefix("feed_") in line]


# --- the collector (issue [14]) ---------------------------------------------------------------


def test_a_built_feed_is_written_with_the_collector_paused_and_it_is_on_after(
    app, client, factory, ann, monkeypatch
):
    """Thousands of rows and strings, none in a cycle: the feed is read and written without
    the cyclic collector, which is on again afterwards (app.database.collector_paused)."""
    import gc

    from app.notifications import feed_writer

    factory.booking(None, factory.booking_type(), at(2), [ann])
    _, path = _make_feed(client, ann.email)
    seen = []
    write = feed_writer.write_rows_utf8

    def spying(*args, **kwargs):
        seen.append(gc.isenabled())
        return write(*args, **kwargs)

    monkeypatch.setattr(feed_writer, "write_rows_utf8", spying)
    try:
        assert gc.isenabled()
        assert app.test_client().get(path).status_code == 200
        assert seen == [False]
        assert gc.isenabled()
    finally:
        gc.enable()
