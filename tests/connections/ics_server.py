"""A real HTTP server on 127.0.0.1 for the ICS-feed and outbound-HTTP tests.

It speaks plain HTTP/1.0 from a thread (``http.server``), so the code under test goes through
its real socket, redirect and retry paths. Each path answers from a route: a feed with ETag
and Last-Modified that honours conditional requests, a scripted list of replies (429, 503,
redirects …), a streamed body, a body dripped a byte at a time, or no answer at all. Every
request is logged with its headers and the ``time.monotonic()`` at which it arrived, so tests
can check what the client sent and when. It listens on 127.0.0.1, or on ``::1`` (IPv6), and
speaks TLS when given a server context.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.database import utcnow


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    body: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Feed:
    """An ICS document with validators; a matching If-None-Match / If-Modified-Since → 304."""

    def __init__(self, body: str | bytes, etag: bool = True, last_modified: bool = True) -> None:
        self.use_etag = etag
        self.use_last_modified = last_modified
        self.update(body)

    def update(self, body: str | bytes) -> None:
        self.body = body.encode() if isinstance(body, str) else body
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'
        self.modified = utcnow().replace(microsecond=0)

    def reply(self, headers: dict[str, str]) -> Reply:
        validators = {}
        if self.use_etag:
            validators["ETag"] = self.etag
        if self.use_last_modified:
            validators["Last-Modified"] = format_datetime(self.modified, usegmt=True)
        if self._unchanged(headers):
            return Reply(304, b"", validators)
        return Reply(200, self.body, {"Content-Type": "text/calendar", **validators})

    def _unchanged(self, headers: dict[str, str]) -> bool:
        if self.use_etag and "if-none-match" in headers:
            return headers["if-none-match"] == self.etag
        if self.use_last_modified and "if-modified-since" in headers:
            try:
                return parsedate_to_datetime(headers["if-modified-since"]) >= self.modified
            except (TypeError, ValueError):
                return False
        return False


class Stream:
    """A body written in chunks without Content-Length (ends when the connection closes)."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count


class Trickle:
    """Headers at once, then the body one byte every ``interval`` seconds: every single read
    is quick, the whole is not."""

    def __init__(self, interval: float, count: int) -> None:
        self.interval = interval
        self.count = count


class Silence:
    """Reads the request and never answers (until the server closes)."""


Route = Feed | Stream | Trickle | Silence | list[Reply] | Callable[[Hit], Reply]


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class FeedServer:
    """Start with ``with FeedServer() as server:``; add routes with the helpers below."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.host = host
        self.scheme = "https" if tls else "http"
        self.closing = threading.Event()  # ends a trickle or a silence
        self._lock = threading.Lock()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._httpd = server_class((host, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/", host: str | None = None) -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{self.scheme}://{host}:{self.port}{path}"

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.02)  # quick shutdown between tests

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    # -- routes ---------------------------------------------------------------------------

    def feed(self, path: str, body: str | bytes, **validators: bool) -> Feed:
        feed = Feed(body, **validators)
        self.routes[path] = feed
        return feed

    def replies(self, path: str, *replies: Reply) -> None:
        """Answer successive requests with ``replies`` in turn; the last one repeats."""
        self.routes[path] = list(replies)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = [Reply(status, b"", {"Location": location})]

    def stream(self, path: str, chunk: bytes, count: int) -> None:
        self.routes[path] = Stream(chunk, count)

    def trickle(self, path: str, interval: float, count: int) -> None:
        self.routes[path] = Trickle(interval, count)

    def silence(self, path: str) -> None:
        self.routes[path] = Silence()

    def hits_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    # -- serving --------------------------------------------------------------------------

    def _record(self, hit: Hit) -> Route | None:
        with self._lock:
            self.hits.append(hit)
            return self.routes.get(hit.path)


def _next_reply(route: list[Reply]) -> Reply:
    return route.pop(0) if len(route) > 1 else route[0]


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_HEAD(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            hit = Hit(self.command, self.path, headers, time.monotonic(), body)
            route = server._record(hit)
            if isinstance(route, Stream):
                self._stream(route)
                return
            if isinstance(route, Trickle):
                self._trickle(route)
                return
            if isinstance(route, Silence):
                server.closing.wait()
                return
            if route is None:
                reply = Reply(404, b"not here")
            elif isinstance(route, Feed):
                reply = route.reply(headers)
            elif isinstance(route, list):
                reply = _next_reply(route)
            else:
                reply = route(hit)
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                given = {name.lower() for name in reply.headers}
                if reply.status != 304 and "content-length" not in given:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.status != 304:
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a deadline test) before the answer

        def _stream(self, route: Stream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(route.count):
                    self.wfile.write(route.chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, which is what the size cap is for

        def _trickle(self, route: Trickle) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(route.count))
            self.end_headers()
            try:
                for _ in range(route.count):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    if server.closing.wait(route.interval):
                        return
            except OSError:
                pass  # the client gave up, which is what its deadline is for

        def log_message(self, format: str, *args) -> None:
            """Quiet: the tests read ``server.hits`` instead."""

    return Handler
