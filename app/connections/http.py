"""Outbound HTTP for calendar providers: address checks, redirects, Retry-After (K2, K6).

Users type CalDAV and ICS URLs, so a URL could point the server at itself or its LAN
(server-side request forgery). ``check_url`` refuses loopback, link-local, private and other
non-public addresses unless ``SLOTBOOK_ALLOW_PRIVATE_URLS`` or the admin setting allows them,
and ``fetch`` follows redirects itself so that every hop is checked, never just the first.

``fetch`` also owns the retry rules every provider shares: 429 and 503 wait for Retry-After
(capped), other 5xx and network errors back off exponentially with jitter, and whatever is
still failing becomes ``RateLimited`` or ``TemporaryFailure`` for the sync job to schedule.
Credentials (an ``Authorization`` header, ``auth=``) go only to the origin they were meant
for: a redirect to another host, port or scheme is followed without them.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import Callable, Collection
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests

from app.connections.providers.base import (
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
    UnsafeURL,
)
from app.database import utcnow

MAX_REDIRECTS = 5
RETRY_STATUSES = {429, 500, 502, 503, 504}
USER_AGENT = "Slotbook calendar sync"


def check_url(url: str, allow_private: bool, allowed_hosts: Collection[str] = ()) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) and every address it resolves to is public
    (or private addresses are allowed, for every host or for the named ``allowed_hosts``)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port like 99999
    except ValueError as exc:
        raise UnsafeURL("The address is not a valid web address.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("The address must start with https:// (or http://) and name a server.")
    if allow_private or parts.hostname.lower() in allowed_hosts:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TemporaryFailure(f"Could not find the server {parts.hostname}.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _is_public(address):
            # The resolved address is not named: the user learns nothing about our network.
            raise UnsafeURL(
                f"{parts.hostname} is a local or private address; calendar servers "
                "on the local network are only allowed when an administrator turns that on."
            )


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
    interprets 4xx). ``guard`` checks the URL and every redirect target."""
    kwargs.setdefault("timeout", settings.timeout)
    attempts = attempts or settings.http_attempts
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            response = _follow(session, method, url, settings, guard, kwargs)
        except requests.RequestException as exc:
            if attempt == attempts:
                host = urlsplit(url).hostname
                raise TemporaryFailure(f"Could not reach {host}: {type(exc).__name__}.") from exc
            sleep(_jitter(delay))
            delay *= 2
            continue
        if response.status_code not in RETRY_STATUSES:
            return response
        response.close()  # not used; frees the connection of a streamed response
        # Retry-After is honoured where it means "busy" (429, 503); a 500 asking for an hour
        # must not stall the worker, so other errors always use the capped backoff.
        wait = _jitter(delay)
        if response.status_code in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"), wait)
            if wait > settings.max_retry_wait:
                raise RateLimited(_busy_message(response), retry_after=wait)
        if attempt == attempts:
            if response.status_code in (429, 503):
                raise RateLimited(_busy_message(response), retry_after=max(wait, delay))
            raise TemporaryFailure(
                f"The calendar server had an internal error ({response.status_code})."
            )
        sleep(wait)
        delay *= 2
    raise AssertionError("unreachable")


def _follow(session, method, url, settings, guard, kwargs) -> requests.Response:
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        if guard:
            check_url(url, settings.allow_private_urls, settings.private_hosts)
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
