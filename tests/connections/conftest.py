"""Real servers for the calendar connection tests.

``radicale``: one Radicale CalDAV server per test session (htpasswd auth with plain-text
passwords, so a wrong password really gets a 401), started from this virtualenv on a free
port of 127.0.0.1. ``caldav_account``: a fresh user with two event calendars and one task
list per test, so tests never see each other's events. ``stub_server``: a tiny HTTP server
answering every request with one canned response (a web page, a 429 …) and counting hits.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
import requests

from tests.conftest import free_port

RADICALE_CONFIG = """\
[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
htpasswd_cache = False
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {storage}

[logging]
level = warning
"""

GETETAG = b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{name}</D:displayname>
    <C:supported-calendar-component-set>
      <C:comp name="{component}"/>
    </C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"""


@dataclass
class RadicaleServer:
    """A running Radicale; ``add_user`` appends to its htpasswd file (read on every login)."""

    port: int
    users: Path
    process: Popen

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_user(self, username: str, password: str) -> None:
        with self.users.open("a") as handle:
            handle.write(f"{username}:{password}\n")


@pytest.fixture(scope="session")
def radicale(tmp_path_factory) -> Iterator[RadicaleServer]:
    root = tmp_path_factory.mktemp("radicale")
    users = root / "users"
    users.write_text("")
    port = free_port()
    config = root / "config"
    config.write_text(RADICALE_CONFIG.format(port=port, users=users, storage=root / "storage"))
    log = (root / "radicale.log").open("w")
    process = Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)], stdout=log, stderr=log
    )
    server = RadicaleServer(port=port, users=users, process=process)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _wait_until_up(server: RadicaleServer) -> None:
    deadline = time.monotonic() + 15
    while True:
        if server.process.poll() is not None:
            raise RuntimeError("Radicale exited at start-up; see radicale.log in the tmp dir")
        try:
            requests.get(server.base_url + "/", timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class CalDavAccount:
    """A Radicale user with calendars ``work`` and ``personal`` (events) and ``tasks`` (to-dos).

    The helpers talk plain HTTP to Radicale, independently of the code under test.
    """

    base_url: str
    username: str
    password: str
    session: requests.Session = field(repr=False)

    @property
    def principal_url(self) -> str:
        return f"{self.base_url}/{self.username}/"

    def calendar_url(self, slug: str = "work") -> str:
        return f"{self.principal_url}{slug}/"

    def href(self, name: str, slug: str = "work") -> str:
        """The path Radicale reports for an object (what the provider uses as its key)."""
        return f"/{self.username}/{slug}/{name}"

    def put(self, name: str, ics: str, slug: str = "work") -> requests.Response:
        response = self.session.put(
            self.calendar_url(slug) + name,
            data=ics.encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert response.status_code in (201, 204), response.text
        return response

    def get(self, href: str) -> requests.Response:
        return self.session.get(self.base_url + href)

    def delete(self, name: str, slug: str = "work") -> None:
        response = self.session.delete(self.calendar_url(slug) + name)
        assert response.status_code in (200, 204), response.text

    def object_names(self, slug: str = "work") -> list[str]:
        """Names of the objects in a calendar, by a depth-1 PROPFIND."""
        response = self.session.request(
            "PROPFIND", self.calendar_url(slug), headers={"Depth": "1"}, data=GETETAG
        )
        assert response.status_code == 207
        tree = ElementTree.fromstring(response.content)
        hrefs = [unquote(h.text) for h in tree.iterfind("{DAV:}response/{DAV:}href")]
        prefix = f"/{self.username}/{slug}/"
        return sorted(h.removeprefix(prefix) for h in hrefs if h != prefix)

    def make_calendar(self, slug: str, name: str, component: str = "VEVENT") -> None:
        response = self.session.request(
            "MKCALENDAR",
            self.calendar_url(slug),
            data=MKCALENDAR.format(name=name, component=component).encode(),
            headers={"Content-Type": "application/xml; charset=utf-8"},
        )
        assert response.status_code == 201, response.text


@pytest.fixture
def caldav_account(radicale: RadicaleServer) -> Iterator[CalDavAccount]:
    username = f"user-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    radicale.add_user(username, password)
    session = requests.Session()
    session.auth = (username, password)
    account = CalDavAccount(radicale.base_url, username, password, session)
    account.make_calendar("work", "Work")
    account.make_calendar("personal", "Personal")
    account.make_calendar("tasks", "Tasks", component="VTODO")
    yield account
    session.close()


# --- a canned-response HTTP server ----------------------------------------------------


@dataclass
class StubServer:
    """Answers every request with ``status``, ``headers`` and ``body``; counts requests."""

    port: int
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    body: bytes = b"<!doctype html><html><body><h1>Welcome to our shop</h1></body></html>"
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    stub = StubServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            stub.hits.append(f"{self.command} {self.path}")
            self.send_response(stub.status)
            for name, value in stub.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(stub.body)))
            self.end_headers()
            self.wfile.write(stub.body)

        def do_GET(self) -> None:
            self._answer()

        def do_PROPFIND(self) -> None:
            self._answer()

        def do_REPORT(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
