"""``flask connections add-caldav|add-ics|list`` and ``flask sync run`` (SPEC I2, I5), against
a real ICS feed served over HTTP by this module and the real Radicale of ``conftest.py``.

``IcsFeedServer`` is also used by the linking, access-table and browser tests.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.connections.models import BusyBlock, Connection, ConnectionKind, LinkedCalendar
from app.database import begin_write
from app.extensions import db

# --- a real ICS feed over HTTP -------------------------------------------------------------


def ics_feed_text(name: str, events: list[tuple[str, datetime, datetime, str]]) -> str:
    """A small iCalendar feed: (uid, start, end, summary) per event, times in UTC."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Slotbook tests//ICS feed//EN",
        f"X-WR-CALNAME:{name}",
    ]
    for uid, start, end, summary in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{summary}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def default_feed() -> str:
    """Two busy events in the coming days, in a calendar called "Team rota"."""
    soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    return ics_feed_text(
        "Team rota",
        [
            ("rota-1@example.test", soon, soon + timedelta(hours=1), "Early shift"),
            (
                "rota-2@example.test",
                soon + timedelta(days=1),
                soon + timedelta(days=1, hours=2),
                "Late shift",
            ),
        ],
    )


class IcsFeedServer:
    """Serves iCalendar feeds published at paths, with ETag / If-None-Match, on 127.0.0.1.
    Unknown paths get 404; ``hits`` records every request path."""

    def __init__(self) -> None:
        self.feeds: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.hits: list[str] = []
        self.failures: dict[str, tuple[int, dict[str, str]]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                server.hits.append(self.path)
                if path in server.failures:
                    status, headers = server.failures[path]
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": "0"}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    return
                body = server.feeds.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", server.content_types[path])
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def publish(
        self, path: str, text: str, content_type: str = "text/calendar; charset=utf-8"
    ) -> str:
        self.feeds[path] = text.encode()
        self.content_types[path] = content_type
        return self.url(path)

    def fail(self, path: str, status: int, **headers: str) -> None:
        """Answer ``path`` with ``status`` (and headers) from now on."""
        self.failures[path] = (status, {k.replace("_", "-"): v for k, v in headers.items()})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


@pytest.fixture
def ics_server() -> Iterator[IcsFeedServer]:
    server = IcsFeedServer()
    yield server
    server.close()


def allow_private_urls(app) -> None:
    """The test servers listen on 127.0.0.1: let the organisation allow LAN calendar servers."""
    from app.admin.settings import set_setting

    with app.app_context():
        begin_write()
        set_setting("allow_private_calendar_urls", True)
        db.session.commit()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def cli(app):
    """Invoke a command the way ``flask`` does: in a fresh app context of its own."""
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(args=list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def ada(factory):
    return factory.user("agent", email="ada@example.test", name="Ada Agent")


def _connections(app) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(
            select(Connection.kind, Connection.user_id, Connection.url, Connection.username)
        ).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def _count(app, model) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
        return n


# --- add-ics ---------------------------------------------------------------------------------


def test_add_ics_links_a_read_only_feed(app, cli, ada, ics_server):
    """add-ics checks the feed, saves it with its calendar (read-only) and asks for a sync."""
    allow_private_urls(app)
    url = ics_server.publish("/rota.ics", default_feed())
    result = cli("connections", "add-ics", "ada@example.test", url)
    assert result.exit_code == 0, result.output
    assert "Linked connection" in result.output and "Team rota" in result.output
    assert ics_server.hits, "the feed was not fetched before saving"
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert (connection.kind, connection.user_id) == ("ics", ada.id)
        assert connection.url == url  # nothing to hide in http://127.0.0.1:port/rota.ics
        assert connection.reveal_secret() == url  # the address itself is sealed
        assert connection.next_sync_at is not None  # due now
        [calendar] = connection.calendars
        assert calendar.person_id == ada.id
        assert (calendar.writable, calendar.receives_bookings) == (False, False)
        assert calendar.use_for_availability is True


def test_add_ics_refuses_a_private_address_unless_allowed(app, cli, ada, ics_server):
    """Without the admin setting, a loopback feed is refused with a clear message."""
    url = ics_server.publish("/rota.ics", default_feed())
    result = cli("connections", "add-ics", "ada@example.test", url)
    assert result.exit_code == 1
    assert "local or private address" in result.output
    assert ics_server.hits == []
    assert _connections(app) == []


def test_add_ics_refuses_a_page_that_is_not_a_calendar(app, cli, ada, ics_server):
    allow_private_urls(app)
    url = ics_server.publish("/shop", "<!doctype html><h1>Shop</h1>", "text/html")
    result = cli("connections", "add-ics", "ada@example.test", url)
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert _connections(app) == []


def test_add_ics_for_an_unknown_user(app, cli, ics_server):
    url = ics_server.publish("/rota.ics", default_feed())
    result = cli("connections", "add-ics", "nobody@example.test", url)
    assert result.exit_code == 1
    assert "No user with the email nobody@example.test" in result.output
    assert _connections(app) == []


# --- add-caldav ------------------------------------------------------------------------------


def test_add_caldav_reads_the_password_from_stdin(app, cli, ada, caldav_account):
    """The password comes on stdin (not an option); the calendars are discovered and the
    first writable one receives bookings; the password is stored sealed."""
    allow_private_urls(app)
    result = cli(
        "connections",
        "add-caldav",
        "ada@example.test",
        "--url",
        caldav_account.base_url,
        "--username",
        caldav_account.username,
        input=caldav_account.password + "\n",
    )
    assert result.exit_code == 0, result.output
    assert caldav_account.password not in result.output
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert connection.kind == ConnectionKind.CALDAV
        assert connection.username == caldav_account.username
        assert caldav_account.password not in (connection.secret_sealed or "")
        assert connection.reveal_secret() == caldav_account.password
        names = sorted(c.name for c in connection.calendars)
        assert {"Work", "Personal"} <= set(names)
        receiving = [c for c in connection.calendars if c.receives_bookings]
        assert len(receiving) == 1 and receiving[0].writable
        db.session.rollback()


def test_add_caldav_with_a_wrong_password_saves_nothing(app, cli, ada, caldav_account):
    allow_private_urls(app)
    result = cli(
        "connections",
        "add-caldav",
        "ada@example.test",
        "--url",
        caldav_account.base_url,
        "--username",
        caldav_account.username,
        input="not-the-password\n",
    )
    assert result.exit_code == 1
    assert "not-the-password" not in result.output
    assert _connections(app) == [] and _count(app, LinkedCalendar) == 0


def test_add_caldav_without_a_password_on_stdin(app, cli, ada, caldav_account):
    allow_private_urls(app)
    result = cli(
        "connections",
        "add-caldav",
        "ada@example.test",
        "--url",
        caldav_account.base_url,
        "--username",
        caldav_account.username,
        input="",
    )
    assert result.exit_code == 1
    assert "No password given" in result.output
    assert _connections(app) == []


# --- list ------------------------------------------------------------------------------------


def test_list_shows_connections_without_secrets(app, cli, ada, ics_server, caldav_account):
    """One line per connection: id, owner, kind, address (no password, no query key),
    calendar count, last success, state."""
    allow_private_urls(app)
    feed = ics_server.publish("/private/rota.ics", default_feed())
    assert cli("connections", "add-ics", "ada@example.test", feed + "?key=s3cr3t").exit_code == 0
    linked = cli(
        "connections",
        "add-caldav",
        "ada@example.test",
        "--url",
        caldav_account.base_url,
        "--username",
        caldav_account.username,
        input=caldav_account.password + "\n",
    )
    assert linked.exit_code == 0, linked.output

    result = cli("connections", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == [
        "ID",
        "OWNER",
        "KIND",
        "LABEL",
        "/",
        "URL",
        "CALENDARS",
        "LAST",
        "SUCCESS",
        "STATE",
    ]
    ics_line = next(line for line in lines if " ics " in line)
    assert "ada@example.test" in ics_line and "/…/rota.ics" in ics_line
    assert "?" not in ics_line and "/private/" not in ics_line
    assert ics_line.split()[-3:] == ["never", "never", "synced"]
    caldav_line = next(line for line in lines if " caldav " in line)
    assert caldav_account.base_url in caldav_line
    assert "s3cr3t" not in result.output
    assert caldav_account.password not in result.output


def test_list_with_nothing_linked(cli, app):
    result = cli("connections", "list")
    assert result.exit_code == 0
    assert "No calendar connections yet." in result.output


# --- sync run --------------------------------------------------------------------------------


def test_sync_run_reads_every_connection_and_summarises(app, cli, ada, factory, ics_server):
    """Both users' feeds are read; the summary counts the busy blocks written."""
    allow_private_urls(app)
    factory.user("agent", email="bo@example.test")
    a = ics_server.publish("/a.ics", default_feed())
    b = ics_server.publish("/b.ics", default_feed())
    assert cli("connections", "add-ics", "ada@example.test", a).exit_code == 0
    assert cli("connections", "add-ics", "bo@example.test", b).exit_code == 0

    result = cli("sync", "run")
    assert result.exit_code == 0, result.output
    assert "Synced 2 connections: 4 busy blocks added, 0 removed, 0 warnings, 0 errors." in (
        result.output
    )
    assert _count(app, BusyBlock) == 4
    with app.app_context():
        assert all(c.last_success_at for c in db.session.scalars(select(Connection)))
        db.session.rollback()


def test_sync_run_for_one_user(app, cli, ada, factory, ics_server):
    allow_private_urls(app)
    bo = factory.user("agent", email="bo@example.test")
    assert (
        cli(
            "connections",
            "add-ics",
            "ada@example.test",
            ics_server.publish("/a.ics", default_feed()),
        ).exit_code
        == 0
    )
    assert (
        cli(
            "connections",
            "add-ics",
            "bo@example.test",
            ics_server.publish("/b.ics", default_feed()),
        ).exit_code
        == 0
    )

    result = cli("sync", "run", "--user", "bo@example.test")
    assert result.exit_code == 0, result.output
    assert "Synced 1 connection: 2 busy blocks added" in result.output
    with app.app_context():
        people = set(db.session.scalars(select(BusyBlock.person_id)))
        db.session.rollback()
    assert people == {bo.id}


def test_sync_run_reports_a_vanished_feed_as_an_error(app, cli, ada, ics_server):
    """A feed that now answers 404 fails its connection (nothing could be read), clearly and
    without a crash; the cached busy time stays until it goes stale."""
    allow_private_urls(app)
    url = ics_server.publish("/gone.ics", default_feed())
    assert cli("connections", "add-ics", "ada@example.test", url).exit_code == 0
    del ics_server.feeds["/gone.ics"]

    result = cli("sync", "run")
    assert result.exit_code == 1, result.output
    assert "Synced 1 connection: 0 busy blocks added, 0 removed, 0 warnings, 1 error." in (
        result.output
    )
    assert "error, connection 1: Team rota: No calendar feed was found" in result.output


def test_sync_run_exits_1_when_a_connection_fails(app, cli, ada, ics_server):
    """A server that says "come back in an hour" fails the connection: exit code 1, the
    error printed and recorded on the connection's health."""
    allow_private_urls(app)
    url = ics_server.publish("/busy.ics", default_feed())
    assert cli("connections", "add-ics", "ada@example.test", url).exit_code == 0
    ics_server.fail("/busy.ics", 429, Retry_After="3600")

    result = cli("sync", "run")
    assert result.exit_code == 1, result.output
    assert "Synced 1 connection: 0 busy blocks added, 0 removed, 0 warnings, 1 error." in (
        result.output
    )
    assert "error, connection" in result.output
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert connection.last_error and connection.last_success_at is None
        db.session.rollback()


def test_sync_run_with_nothing_linked(cli):
    result = cli("sync", "run")
    assert result.exit_code == 0
    assert "No calendar connections to sync." in result.output
