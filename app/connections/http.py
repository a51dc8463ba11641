"""Outbound HTTP for calendar providers: addresses that cannot be rebound, one deadline per
request, redirects checked hop by hop, Retry-After (K2, K6).

**Addresses.** Users type CalDAV and ICS URLs, so a URL could point the server at itself or
its LAN (server-side request forgery). A name is resolved once, *every* address it has is
checked (no loopback, link-local, private … unless ``SLOTBOOK_ALLOW_PRIVATE_URLS``, the admin
setting or ``private_hosts`` allow them), and the socket is connected to one of those very
addresses. Checking one lookup's answer and connecting to another's is what DNS rebinding
exploits (public on the first look-up, 127.0.0.1 on the second), so the check lives where the
socket is opened (``_PinnedConnection``): the first request, every redirect hop and every
retry are checked, and a pinned connection with no rules refuses to connect at all. TLS
still verifies the certificate against the name, and the Host header still carries it.
``resolve`` is the one seam tests replace, to play a rebinding DNS server.

Checked requests never use an HTTP proxy from the environment: a proxy would resolve the
name again itself, and the check would mean nothing.

**One deadline.** A socket timeout bounds each read, not their sum: a server dripping one
byte a second never trips it, and redirects and retries add up. ``deadline(seconds)`` bounds
everything inside it: connecting, TLS, every redirect hop and every read, however the
library splits them, because each socket operation waits at most what is left.
``fetch`` gives every attempt ``settings.timeout`` in all; a caller that reads a streamed
body (the ICS feed) wraps the whole download in a deadline of its own.

``fetch`` also owns the retry rules every provider shares: 429 and 503 wait for Retry-After
(capped), other 5xx and network errors back off exponentially with jitter, and whatever is
still failing becomes ``RateLimited`` or ``TemporaryFailure`` for the sync job to schedule.
Credentials (an ``Authorization`` header, ``auth=``) go only to the origin they were meant
for: a redirect to another host, port or scheme is followed without them.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from app.connections.providers.base import (
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
    UnsafeURL,
)
from app.database import utcnow

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
RETRY_STATUSES = {429, 500, 502, 503, 504}
USER_AGENT = "Slotbook calendar sync"
NOT_A_WEB_ADDRESS = "The address must start with https:// (or http://) and name a server."


# --- which addresses may be reached ------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` has, in the order the system prefers. The single place names
    become addresses for checked requests (tests replace it to act as a rebinding DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class AddressRules:
    """Where checked requests may connect: public addresses, plus private ones for every
    host (``allow_private``) or for the named ``private_hosts`` (one LAN server)."""

    allow_private: bool = False
    private_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: ProviderSettings) -> AddressRules:
        return cls(settings.allow_private_urls, frozenset(settings.private_hosts))

    def permits(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.allow_private or host.lower().rstrip(".") in self.private_hosts:
            return True
        return _is_public(address)


# Configured endpoints (Microsoft Graph) are not checked, but still pinned and deadlined.
ANY_ADDRESS = AddressRules(allow_private=True)


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or ``UnsafeURL`` saying what is wrong with it.
    IPv6 literals come back without their brackets (``[::1]`` → ``::1``)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port like 99999
    except ValueError as exc:
        raise UnsafeURL("The address is not a valid web address.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(NOT_A_WEB_ADDRESS)
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def vetted_addresses(host: str, port: int, rules: AddressRules) -> list[str]:
    """Resolve ``host`` once and return its addresses if every one of them is allowed;
    ``UnsafeURL`` if any is not (a name must not mix a public and a private answer)."""
    try:
        found = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise TemporaryFailure(f"Could not find the server {host}.") from exc
    if not found:
        raise TemporaryFailure(f"Could not find the server {host}.")
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as exc:
            raise UnsafeURL(f"{host} did not resolve to an internet address.") from exc
        if not rules.permits(host, address):
            # The resolved address is not named: the user learns nothing about our network.
            raise UnsafeURL(
                f"{host} is a local or private address; calendar servers "
                "on the local network are only allowed when an administrator turns that on."
            )
    return found


def check_url(url: str, allow_private: bool, allowed_hosts: Collection[str] = ()) -> list[str]:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) and every address it resolves to is
    allowed; return those addresses. ``fetch`` needs no call to this: its connections check
    themselves, at the moment they connect."""
    _, host, port = parse_target(url)
    rules = AddressRules(allow_private, frozenset(h.lower() for h in allowed_hosts))
    return vetted_addresses(host, port, rules)


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated "::a.b.c.d"


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global unicast, and so is every IPv4 address an IPv6 one carries (mapped, 6to4,
    Teredo, NAT64, IPv4-compatible): those reach the IPv4 address they wrap."""
    if not address.is_global or address.is_multicast:
        return False
    return all(_is_public(inner) for inner in _embedded_ipv4(address))


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        inner.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        inner.append(address.sixtofour)
    if address.teredo is not None:
        inner += list(address.teredo)  # (server, client)
    if address in NAT64 or address in IPV4_COMPATIBLE:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return inner


# --- one deadline ------------------------------------------------------------------------

_DEADLINE: ContextVar[float | None] = ContextVar("slotbook_http_deadline", default=None)
_RULES: ContextVar[AddressRules | None] = ContextVar("slotbook_http_rules", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Everything inside finishes within ``seconds`` in all (or fails with a timeout). An
    enclosing deadline that ends sooner still wins."""
    ends = time.monotonic() + seconds
    current = _DEADLINE.get()
    token = _DEADLINE.set(ends if current is None else min(current, ends))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left of the deadline in force (None: no deadline)."""
    ends = _DEADLINE.get()
    return None if ends is None else ends - time.monotonic()


def out_of_time() -> bool:
    left = time_left()
    return left is not None and left <= 0


class _DeadlineIO:
    """Socket operations that never outlive the deadline: before each one the socket's
    timeout is lowered to what is left (it is never raised; urllib3 sets the per-read
    timeout again before every request on a kept-alive connection)."""

    __slots__ = ()  # so that an existing socket can become one (see ``_bounded``)

    def _bound(self) -> None:
        left = time_left()
        if left is None:
            return
        if left <= 0:
            raise TimeoutError("The request ran out of time.")
        current = super().gettimeout()
        if current is None or current > left:
            super().settimeout(left)

    def recv(self, *args):
        self._bound()
        return super().recv(*args)

    def recv_into(self, *args):
        self._bound()
        return super().recv_into(*args)

    def send(self, *args):
        self._bound()
        return super().send(*args)

    def sendall(self, *args):
        self._bound()
        return super().sendall(*args)


class _DeadlineSocket(_DeadlineIO, socket.socket):
    __slots__ = ()


class _DeadlineSSLSocket(_DeadlineIO, ssl.SSLSocket):
    __slots__ = ()


def _bounded(sock):
    """The same socket object, now honouring the deadline. Its class is swapped rather than
    the socket wrapped, because urllib3 (and urllib3-future) keep references to the object
    and TLS wraps it by type; both classes add behaviour only, no state."""
    if type(sock) is socket.socket:
        sock.__class__ = _DeadlineSocket
    elif type(sock) is ssl.SSLSocket:
        sock.__class__ = _DeadlineSSLSocket
    if isinstance(sock, _DeadlineIO):
        sock._bound()
    return sock


# --- connections pinned to checked addresses ---------------------------------------------


class _PinnedConnection:
    """Resolves its host once, checks every address against the rules of the request being
    sent, and connects to the first checked address that answers. The TLS handshake and the
    Host header keep using the name."""

    def _new_conn(self):
        rules = _RULES.get()
        if rules is None:  # fail closed: only ``GuardedAdapter.send`` opens these
            raise UnsafeURL("Slotbook only connects to calendar servers it has checked.")
        name = self._dns_host
        host = name.strip("[]")
        addresses = vetted_addresses(host, self.port or self.default_port, rules)
        failure: Exception | None = None
        for address in addresses:
            if out_of_time():
                break
            log.debug("connecting to %s at %s", host, address)
            try:
                sock = self._connect_to(name, address)
            except (NewConnectionError, ConnectTimeoutError) as exc:
                failure = exc  # the next address of the same name may answer
                continue
            return _bounded(sock)
        raise failure or ConnectTimeoutError(self, f"Connecting to {host} ran out of time.")

    def _connect_to(self, name: str, address: str):
        """urllib3's own connect (socket options, its error types) aimed at ``address``,
        with the connect timeout cut to what is left of the deadline."""
        timeout, left = self.timeout, time_left()
        self._dns_host = address
        if left is not None and (not isinstance(timeout, int | float) or timeout > left):
            self.timeout = left
        try:
            return super()._new_conn()
        finally:
            self._dns_host, self.timeout = name, timeout

    def connect(self) -> None:
        super().connect()
        self.sock = _bounded(self.sock)  # over TLS, the socket is a new (SSL) object


class _PinnedHTTPConnection(_PinnedConnection, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection is pinned to addresses checked against
    ``rules``, and whose sockets honour ``deadline``. Never uses a proxy (see above)."""

    def __init__(self, rules: AddressRules) -> None:
        self.rules = rules
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPPool,
            "https": _PinnedHTTPSPool,
        }

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        token = _RULES.set(self.rules)
        try:
            return super().send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={}
            )
        finally:
            _RULES.reset(token)


def _guard(session: requests.Session, rules: AddressRules) -> None:
    """Mount the pinning adapter for ``rules`` (kept while the rules stay the same, so
    kept-alive connections are reused)."""
    for prefix in ("http://", "https://"):
        current = session.adapters.get(prefix)
        if not (isinstance(current, GuardedAdapter) and current.rules == rules):
            session.mount(prefix, GuardedAdapter(rules))


# --- requests with the shared rules ------------------------------------------------------


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After as seconds: either a number or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return default


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def fetch(
    session: requests.Session,
    method: str,
    url: str,
    settings: ProviderSettings,
    *,
    guard: bool = True,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs,
) -> requests.Response:
    """One HTTP call with the shared rules; returns any non-retryable response (the caller
    interprets 4xx). ``guard`` holds the URL and every redirect target to the address
    rules; without it (configured endpoints) connections are still pinned and deadlined.
    Each attempt has ``settings.timeout`` in all; an enclosing ``deadline`` ends retries."""
    kwargs.setdefault("timeout", settings.timeout)
    attempts = attempts or settings.http_attempts
    _guard(session, AddressRules.of(settings) if guard else ANY_ADDRESS)
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            with deadline(settings.timeout):
                response = _follow(session, method, url, guard, kwargs)
        except requests.RequestException as exc:
            wait = _jitter(delay)
            if attempt == attempts or not _can_wait(wait):
                raise TemporaryFailure(_unreachable(url, exc)) from exc
            sleep(wait)
            delay *= 2
            continue
        if response.status_code not in RETRY_STATUSES:
            return response
        response.close()  # not used; frees the connection of a streamed response
        # Retry-After is honoured where it means "busy" (429, 503); a 500 asking for an hour
        # must not stall the worker, so other errors always use the capped backoff.
        wait = _jitter(delay)
        busy = response.status_code in (429, 503)
        if busy:
            wait = retry_after_seconds(response.headers.get("Retry-After"), wait)
            if wait > settings.max_retry_wait:
                raise RateLimited(_busy_message(response), retry_after=wait)
        if attempt == attempts or not _can_wait(wait):
            if busy:
                raise RateLimited(_busy_message(response), retry_after=max(wait, delay))
            raise TemporaryFailure(
                f"The calendar server had an internal error ({response.status_code})."
            )
        sleep(wait)
        delay *= 2
    raise AssertionError("unreachable")


def _can_wait(seconds: float) -> bool:
    """Whether a retry after ``seconds`` still fits the enclosing deadline, if any."""
    left = time_left()
    return left is None or seconds < left


def _unreachable(url: str, exc: requests.RequestException) -> str:
    host = urlsplit(url).hostname
    if isinstance(exc, requests.Timeout) or out_of_time():
        return f"{host} took too long to answer."
    return f"Could not reach {host}: {type(exc).__name__}."


def _follow(session, method, url, guard, kwargs) -> requests.Response:
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        if guard:
            parse_target(url)  # the address itself is checked when the socket connects
        response = session.request(method, url, allow_redirects=False, **kwargs)
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method = "GET"  # as browsers and requests do; the body is not sent again
            kwargs = {k: v for k, v in kwargs.items() if k not in ("data", "json", "files")}
        if _origin(url) != origin:
            kwargs = _without_credentials(kwargs)
    raise TemporaryFailure("The calendar server redirected too many times.")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _without_credentials(kwargs: dict) -> dict:
    """Request options for another origin: no Authorization header (given per call or set on
    the session) and no ``auth`` (per call, on the session or from .netrc)."""
    given = kwargs.get("headers") or {}
    headers = {k: v for k, v in given.items() if k.lower() != "authorization"}
    headers["Authorization"] = None  # requests drops a session header that is set to None
    return {**kwargs, "headers": headers, "auth": _no_auth}


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _jitter(delay: float) -> float:
    return delay * (0.5 + random.random())  # spreading retries, not security


def _busy_message(response: requests.Response) -> str:
    return f"The calendar service is busy ({response.status_code}); Slotbook will try again."
