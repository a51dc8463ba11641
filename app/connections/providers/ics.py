"""Read-only ICS subscriptions (K2): one feed URL, polled with HTTP validators.

A feed has no incremental reads: every change means downloading the whole file again. What
HTTP does offer is the conditional GET: the cursor keeps the feed's ETag and Last-Modified,
and a 304 answer means "nothing changed" for the price of one tiny request.

"Nothing changed" is only true for the window that was expanded last time, though: a weekly
event in an unchanged feed still gets a new instance each week at the far end of the sync
window. So each full read expands a week past the requested end and records that span in
the cursor; conditional requests are made only while the requested window lies inside it.

The body is untrusted: it is streamed with a size and time cap and expanded by
``busy_from_ical``, which bounds instances and time. An address that answers with something
other than iCalendar is an error (nothing usable, keep what we had); a feed that is cut short
or too slow to expand yields what could be read, as a partial (not full) result with
warnings, so busy time that could not be read is not wiped from the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from urllib.parse import urlsplit, urlunsplit

import requests

from app.connections import http
from app.connections.expand import busy_from_ical, looks_like_calendar, parse_calendar_name
from app.connections.models import Connection, ConnectionKind, LinkedCalendar
from app.connections.providers import register
from app.connections.providers.base import (
    AuthFailed,
    NotACalendarServer,
    Provider,
    ProviderError,
    ProviderSettings,
    RemoteCalendar,
    SyncResult,
    TemporaryFailure,
)

MAX_FEED_BYTES = 20 * 1024 * 1024
MAX_URL_LENGTH = 1000
CHUNK_BYTES = 64 * 1024
WINDOW_SLACK = timedelta(days=7)
NOT_A_FEED = "That address did not return an iCalendar feed."


@register
class IcsProvider(Provider):
    """A subscribed feed: read-only, one calendar, no incremental reads beyond a 304."""

    kind = ConnectionKind.ICS
    can_write = False

    def __init__(
        self, connection: Connection, secret: str | None, settings: ProviderSettings
    ) -> None:
        super().__init__(connection, secret, settings)
        self.session = http.new_session()
        self.requests = 0
        self.session.hooks["response"].append(self._count)

    def list_calendars(self) -> list[RemoteCalendar]:
        """The feed itself, once it has shown that it really is iCalendar."""
        url = self._address()
        if len(url) > MAX_URL_LENGTH:
            raise ProviderError(f"That address is longer than {MAX_URL_LENGTH} characters.")
        with http.deadline(self.settings.download_timeout):
            body = self._download(url, {})
        if not looks_like_calendar(body):
            raise NotACalendarServer(NOT_A_FEED)
        name = parse_calendar_name(body) or urlsplit(url).hostname or "ICS feed"
        # The id names the feed without repeating its (secret) address.
        remote_id = "feed-" + hashlib.sha256(url.encode()).hexdigest()[:16]
        return [RemoteCalendar(remote_id=remote_id, name=name, writable=False)]

    def read_busy(
        self,
        calendar: LinkedCalendar,
        start: datetime,
        end: datetime,
        cursor: str | None,
    ) -> SyncResult:
        """Unchanged feed (304) → no changes; otherwise the whole feed, expanded."""
        self.requests = 0
        url = self._address()
        previous = Validators.load(cursor)
        conditional = previous is not None and previous.covers(start, end)
        with http.deadline(self.settings.download_timeout):
            response = self._get(url, previous.headers() if conditional else {})
            if response.status_code == 304 and conditional:
                response.close()
                return SyncResult(changes=[], cursor=cursor, full=False, requests=self.requests)
            body = self._body(self._checked(response))
        zone = self.owner_zone(calendar)
        return self._expanded(body, response, start, end + WINDOW_SLACK, zone)

    def _address(self) -> str:
        """The feed URL: sealed as the connection's secret (it usually carries an access
        key), or in clear for a feed linked without one."""
        return feed_url(self.secret or self.connection.url or "")

    # -- reading the feed -----------------------------------------------------------------

    def _expanded(
        self,
        body: bytes,
        response: requests.Response,
        start: datetime,
        until: datetime,
        zone: tzinfo,
    ) -> SyncResult:
        """Busy time of the whole feed; all-day and floating times in the owner's ``zone``."""
        result = busy_from_ical(
            body,
            start,
            until,
            max_instances=self.settings.max_instances_per_event,
            max_seconds=self.settings.max_expand_seconds,
            floating_zone=zone,
        )
        if not result.readable:
            raise NotACalendarServer(NOT_A_FEED)
        if not result.complete:  # keep cached busy time we could not re-read; retry in full
            return SyncResult(
                changes=result.changes,
                cursor=None,
                full=False,
                warnings=result.warnings,
                requests=self.requests,
            )
        validators = Validators.from_response(response, start, until)
        return SyncResult(
            changes=result.changes,
            cursor=validators.dump() if validators else None,
            full=True,
            warnings=result.warnings,
            requests=self.requests,
        )

    def _download(self, url: str, headers: dict[str, str]) -> bytes:
        return self._body(self._checked(self._get(url, headers)))

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        # A protected feed carries its user name and password in the (sealed) address;
        # requests sends them as Basic auth, and never to another host on a redirect.
        return http.fetch(
            self.session,
            "GET",
            url,
            self.settings,
            guard=True,
            headers={"Accept": "text/calendar, */*;q=0.5", **headers},
            stream=True,
        )

    def _checked(self, response: requests.Response) -> requests.Response:
        """The response if it carries the feed; otherwise the error that says why not."""
        status = response.status_code
        if 200 <= status < 300:
            return response
        response.close()
        if status in (401, 403):
            raise AuthFailed(
                f"The calendar feed refused access ({status}); the link may have been "
                "withdrawn. Add the feed again with a current address."
            )
        if status in (404, 410):
            raise ProviderError(
                f"No calendar feed was found at that address ({status}); it may have been "
                "moved or unpublished."
            )
        if status >= 500:
            raise TemporaryFailure(f"The calendar feed's server had an error ({status}).")
        raise ProviderError(f"The calendar feed's server answered with an error ({status}).")

    def _body(self, response: requests.Response) -> bytes:
        """The body, streamed, refused beyond ``MAX_FEED_BYTES``. Called inside the
        download's deadline: a server dripping one byte at a time never trips a per-read
        timeout, but runs out of deadline in the middle of a read."""
        host = urlsplit(response.url or "").hostname or "the server"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_FEED_BYTES:
            response.close()
            raise ProviderError(_too_big())
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise ProviderError(_too_big())
                chunks.append(chunk)
        except requests.RequestException as exc:
            if http.out_of_time():
                raise TemporaryFailure(
                    f"Downloading the calendar feed from {host} took too long."
                ) from exc
            raise TemporaryFailure(f"The download from {host} broke off.") from exc
        finally:
            response.close()
        return b"".join(chunks)

    def _count(self, response: requests.Response, *args, **kwargs) -> requests.Response:
        """Session hook: every HTTP exchange, redirects and retries included."""
        self.requests += 1
        return response


@dataclass(frozen=True)
class Validators:
    """The cursor: the feed's HTTP validators and the window the last full read covered."""

    etag: str | None
    last_modified: str | None
    start: datetime
    until: datetime

    @classmethod
    def from_response(
        cls, response: requests.Response, start: datetime, until: datetime
    ) -> Validators | None:
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if not etag and not last_modified:
            return None  # nothing to ask "changed since?" with
        return cls(etag, last_modified, start, until)

    @classmethod
    def load(cls, cursor: str | None) -> Validators | None:
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            return cls(
                data.get("etag"),
                data.get("last_modified"),
                datetime.fromisoformat(data["from"]),
                datetime.fromisoformat(data["until"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # an unreadable cursor only costs one full download

    def dump(self) -> str:
        return json.dumps(
            {
                "etag": self.etag,
                "last_modified": self.last_modified,
                "from": self.start.isoformat(),
                "until": self.until.isoformat(),
            }
        )

    def covers(self, start: datetime, end: datetime) -> bool:
        try:
            return self.start <= start and end <= self.until
        except TypeError:  # a naive datetime from an old or odd cursor
            return False

    def headers(self) -> dict[str, str]:
        found = {}
        if self.etag:
            found["If-None-Match"] = self.etag
        if self.last_modified:
            found["If-Modified-Since"] = self.last_modified
        return found


def feed_url(url: str | None) -> str:
    """The address to fetch: ``webcal://`` (what calendar apps hand out) is HTTPS."""
    url = (url or "").strip()
    if not url:
        raise ProviderError("This subscription has no feed address.")
    parts = urlsplit(url)
    if parts.scheme.lower() in ("webcal", "webcals"):
        return urlunsplit(("https", parts.netloc, parts.path, parts.query, parts.fragment))
    return url


def _too_big() -> str:
    megabytes = MAX_FEED_BYTES // (1024 * 1024)
    return f"The calendar feed is larger than {megabytes} MB, more than Slotbook reads."
