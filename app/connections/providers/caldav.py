"""CalDAV calendars (K2): discovery, busy time by sync-token (K4) and write-back (K5).

The ``caldav`` library's ``DAVClient`` does the WebDAV work here: building request bodies,
authentication and parsing multistatus replies. Its HTTP session is replaced by
``_Transport``, which sends every request through ``app.connections.http.fetch``:

* every connection, to the first URL and to every redirect target, goes to an address
  checked as it connects (``fetch`` follows redirects itself, hop by hop, and pins each
  connection to the addresses it checked), so neither a redirect nor a DNS answer that
  changes between look-ups can bounce Slotbook onto a loopback or LAN address;
* each request has one deadline (``settings.timeout``), however slowly the server answers;
* the password goes only to the origin it was meant for (``fetch`` drops it on a redirect
  to another host, port or scheme), and a redirect from https:// down to plain http:// is
  refused outright, so it never travels in clear text after the user chose https;
* 429/503 honour Retry-After and 5xx back off, as for every provider, ending in
  ``RateLimited`` / ``TemporaryFailure``;
* every request sent (redirect hops and retries included) is counted for
  ``SyncResult.requests``.

Reads use one sync-collection REPORT (RFC 6578) asking for the calendar data too: with no
cursor it lists every object and hands out the first sync-token, with a cursor only what
changed since. An unchanged calendar therefore costs one request per refresh. Credentials
are sent with the first request (Basic) rather than after a 401 challenge, which would
double that; a server that only offers Digest is switched to Digest after its first 401.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import icalendar
import requests
from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.lib import error as dav_error
from caldav.response import CalendarQueryResult, DAVResponse
from lxml import etree

from app.connections import http
from app.connections.expand import busy_from_ical
from app.connections.models import ConnectionKind
from app.connections.providers import register
from app.connections.providers.base import (
    AuthFailed,
    CursorExpired,
    EventChange,
    EventData,
    NotACalendarServer,
    Provider,
    ProviderError,
    ProviderSettings,
    RemoteCalendar,
    SyncResult,
    TemporaryFailure,
    UnsafeURL,
    WrittenEvent,
)

if TYPE_CHECKING:
    from app.connections.models import Connection, LinkedCalendar

AUTH_FAILED = (
    "The server refused the username or password. Check them, or create a new "
    "app-specific password."
)
NOT_CALDAV = (
    "That address is not a CalDAV server. Use the CalDAV address your calendar provider "
    "gives (often it ends in /dav or /caldav), or the server's main address."
)
REFUSED = "The calendar server refused access to that calendar for this account."
BAD_REPLY = "The calendar server sent a reply Slotbook could not understand."
GONE = "The calendar no longer exists on the server; choose another one."

XML = "application/xml; charset=utf-8"
ICS = "text/calendar; charset=utf-8"
MAX_SYNC_PAGES = 50  # truncated sync-collection replies (RFC 6578 3.6) followed at most
WRITE_PRIVILEGES = {"{DAV:}write", "{DAV:}write-content", "{DAV:}bind", "{DAV:}all"}
SAFE_NAME = re.compile(r"[A-Za-z0-9._@-]{1,200}")
PATH_SAFE = "/@:!$&'()*+,;=~"
CALENDAR_LIST_PROPS = (
    dav.ResourceType,
    dav.DisplayName,
    cdav.SupportedCalendarComponentSet,
    dav.CurrentUserPrivilegeSet,
)


# --- transport ---------------------------------------------------------------------------


class _CountingSession(requests.Session):
    """The session under ``http.fetch``: counts every request and refuses https → http."""

    def __init__(self, secure_origin: bool) -> None:
        super().__init__()
        self.headers["User-Agent"] = http.USER_AGENT
        self.secure_origin = secure_origin
        self.count = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if self.secure_origin and urlsplit(url).scheme != "https":
            raise UnsafeURL(
                "The server redirected to a plain http:// address; Slotbook will not send the "
                "password there."
            )
        self.count += 1
        return super().request(method, url, *args, **kwargs)


class _Transport:
    """Stands in for ``DAVClient.session`` (which the library only calls ``request`` and
    ``close`` on) so that every CalDAV request takes the checked path of ``http.fetch``."""

    def __init__(self, settings: ProviderSettings, secure_origin: bool) -> None:
        self.settings = settings
        self.session = _CountingSession(secure_origin)
        self.attempts: int | None = None  # None: settings.http_attempts
        self.final_url: str | None = None  # where the last request ended up after redirects
        self.challenge = ""  # WWW-Authenticate of the last 401

    @property
    def count(self) -> int:
        return self.session.count

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.pop("proxies", None)  # the library passes None; fetch needs no proxy override
        response = http.fetch(
            self.session, method, url, self.settings, attempts=self.attempts, **kwargs
        )
        self.final_url = response.url
        if response.status_code == 401:
            self.challenge = response.headers.get("WWW-Authenticate", "")
        return response

    def close(self) -> None:
        self.session.close()


class _Refused(Exception):
    """A 403 from the server; ``preconditions`` tells an expired sync token apart."""

    def __init__(self, preconditions: list[str]) -> None:
        super().__init__("403")
        self.preconditions = preconditions


class _BadReply(Exception):
    """The server answered with something that is not the WebDAV reply asked for."""


@dataclass
class _Listing:
    """What a sync-collection read found: objects with their data, and removed hrefs."""

    changed: dict[str, str | None]  # href -> calendar data (None: not sent, fetch it)
    deleted: set[str]
    token: str | None
    warnings: list[str]
    partial: bool = False  # the page cap stopped the read before the server's last page


# --- the provider ------------------------------------------------------------------------


@register
class CalDavProvider(Provider):
    """A CalDAV account: server URL, username and app-specific password."""

    kind = ConnectionKind.CALDAV

    def __init__(
        self, connection: Connection, secret: str | None, settings: ProviderSettings
    ) -> None:
        super().__init__(connection, secret, settings)
        self._dav: DAVClient | None = None
        self._transport: _Transport | None = None

    # -- discovery ------------------------------------------------------------------------

    def list_calendars(self) -> list[RemoteCalendar]:
        """The principal's event calendars: principal → calendar-home-set → calendars.

        Network failures are not retried here: the person linking the calendar is waiting
        (for the background check), and all of discovery has one deadline.
        """
        self._client(attempts=1)
        with self._faults(), http.deadline(self.settings.download_timeout):
            try:
                return self._discover()
            except (_Refused, _BadReply, dav_error.DAVError) as exc:
                raise NotACalendarServer(NOT_CALDAV) from exc
            except AuthFailed:
                self._explain_moved()
                raise

    def _explain_moved(self) -> None:
        """A 401 after a redirect to another server came without the password (it only goes
        where the user pointed it), so ask for that server's address instead."""
        final = self._transport.final_url or ""
        if final and _origin(final) != _origin(self.connection.url or ""):
            raise ProviderError(
                f"That address sends Slotbook on to {_without_query(final)}; enter that "
                "address instead."
            )

    def _discover(self) -> list[RemoteCalendar]:
        start = self.connection.url or ""
        first = self._propfind(
            start, [dav.CurrentUserPrincipal, cdav.CalendarHomeSet, dav.ResourceType], 0
        )
        base = self._transport.final_url or start  # after redirects (/.well-known/caldav)
        props = first[0].properties if first else {}
        principal = props.get(dav.CurrentUserPrincipal.tag)
        homes = _as_list(props.get(cdav.CalendarHomeSet.tag))
        if principal and not homes:
            found = self._propfind(urljoin(base, _quote(principal)), [cdav.CalendarHomeSet], 0)
            homes = _as_list(found[0].properties.get(cdav.CalendarHomeSet.tag) if found else None)
        if not homes and not principal and not _is_calendar(props):
            raise _BadReply("no principal, no calendar home, not a calendar")
        calendars: list[RemoteCalendar] = []
        for home in homes or [principal or base]:
            home_url = urljoin(base, _quote(home))
            listing = self._propfind(home_url, CALENDAR_LIST_PROPS, 1)
            calendars += _event_calendars(listing, home_url)
        return sorted(set(calendars), key=lambda c: (c.name.lower(), c.remote_id))

    def _propfind(self, url: str, props: Any, depth: int) -> list[Any]:
        body = _xml(dav.Propfind().append(dav.Prop().append([prop() for prop in props])))
        response = self._send("PROPFIND", url, body, {"Depth": str(depth), "Content-Type": XML})
        if response.status != 207 or response.tree is None:
            raise _BadReply(f"PROPFIND answered {response.status}")
        return response.parse_propfind()

    # -- reading busy time ----------------------------------------------------------------

    def read_busy(
        self,
        calendar: LinkedCalendar,
        start: datetime,
        end: datetime,
        cursor: str | None,
    ) -> SyncResult:
        """Full read (``cursor`` None) or the changes since ``cursor``, by sync-collection."""
        self._client()
        before = self._transport.count
        url = _collection_url(calendar.remote_id)
        with self._faults():
            listing = self._sync_collection(url, cursor)
            if listing is None:  # the server cannot do sync-collection: plain query
                listing = self._query_all(url)
            self._fill_missing_data(url, listing, full=cursor is None)
        changes, warnings, expanded_all = self._expand(
            listing, start, end, full=cursor is None, zone=self.owner_zone(calendar)
        )
        if listing.partial or not expanded_all:
            # Cut short (page cap or time budget): what was read replaces only those events,
            # the rest keep their cached busy time, and no token is kept, so the next sync
            # reads the whole calendar again instead of never seeing the unread events.
            return SyncResult(
                changes=changes,
                cursor=None,
                full=False,
                warnings=[
                    *listing.warnings,
                    *warnings,
                    "Only part of this calendar could be read; it is read in full again on "
                    "the next sync.",
                ],
                requests=self._transport.count - before,
            )
        return SyncResult(
            changes=changes,
            cursor=listing.token,
            full=cursor is None,
            warnings=listing.warnings + warnings,
            requests=self._transport.count - before,
        )

    def _sync_collection(self, url: str, cursor: str | None) -> _Listing | None:
        """Every page of a sync-collection REPORT; None when the server has no such report
        (only possible without a cursor: with one, the server handed out that token)."""
        listing = _Listing(changed={}, deleted=set(), token=cursor, warnings=[])
        own_path = unquote(urlsplit(url).path).rstrip("/")
        for _page in range(MAX_SYNC_PAGES):
            result = self._sync_page(url, listing.token, cursor)
            if result is None:
                return None
            for item in result.changed:
                if item.href.rstrip("/") != own_path:
                    listing.changed[item.href] = item.calendar_data
                    listing.deleted.discard(item.href)
            for href in result.deleted:
                listing.changed.pop(href, None)
                listing.deleted.add(href)
            progressed = bool(result.sync_token) and result.sync_token != listing.token
            listing.token = result.sync_token or listing.token
            if not result.truncated:
                return listing
            if not progressed:
                break
        listing.partial = True
        listing.warnings.append(
            "The calendar server sent only part of the calendar; some events may be missing."
        )
        return listing

    def _sync_page(self, url: str, token: str | None, cursor: str | None) -> Any:
        body = _xml(
            dav.SyncCollection().append(
                [dav.SyncToken(value=token or ""), dav.SyncLevel(value="1"), _data_props()]
            )
        )
        try:
            response = self._send("REPORT", url, body, {"Depth": "0", "Content-Type": XML})
        except _Refused as exc:
            # With a cursor any 403 is taken as "token refused": the full read that follows
            # reports a real permission problem with its own, clearer error.
            if cursor is not None or dav.ValidSyncToken.tag in exc.preconditions:
                raise CursorExpired("The calendar's sync token expired.") from exc
            if dav.SupportedReport.tag in exc.preconditions:
                return None
            raise
        if response.status == 404:
            raise ProviderError(GONE)
        if response.status != 207 or response.tree is None:
            if cursor is not None:
                # 409/412/400 …: the token is not accepted; a full read will show any
                # other trouble with a clearer error.
                raise CursorExpired("The calendar server no longer accepts the sync token.")
            return None
        return response.parse_sync_collection()

    def _query_all(self, url: str) -> _Listing:
        """Every VEVENT object by calendar-query, for servers without sync-collection; no
        cursor comes out of this, so the next read is a full one again."""
        vevents = cdav.CompFilter("VCALENDAR") + cdav.CompFilter("VEVENT")
        body = _xml(cdav.CalendarQuery().append([_data_props(), cdav.Filter() + vevents]))
        response = self._send("REPORT", url, body, {"Depth": "1", "Content-Type": XML})
        if response.status == 404:
            raise ProviderError(GONE)
        if response.status != 207 or response.tree is None:
            raise _BadReply(f"calendar-query answered {response.status}")
        items = response.parse_calendar_query()
        changed = {item.href: item.calendar_data for item in items if item.status != 404}
        return _Listing(changed=changed, deleted=set(), token=None, warnings=[])

    def _fill_missing_data(self, url: str, listing: _Listing, full: bool) -> None:
        """Fetch, in one calendar-multiget, the objects a server listed without their data."""
        missing = [href for href, data in listing.changed.items() if data is None]
        if not missing:
            return
        hrefs = [dav.Href(value=_quote(href)) for href in missing]
        body = _xml(cdav.CalendarMultiGet().append([_data_props(), *hrefs]))
        response = self._send("REPORT", url, body, {"Content-Type": XML})
        if response.status != 207 or response.tree is None:
            raise _BadReply(f"calendar-multiget answered {response.status}")
        found: dict[str, CalendarQueryResult] = {
            item.href: item for item in response.parse_calendar_query()
        }
        for href in missing:
            item = found.get(href)
            if item is None or item.status == 404 or item.calendar_data is None:
                del listing.changed[href]  # removed meanwhile
                if not full:
                    listing.deleted.add(href)
            else:
                listing.changed[href] = item.calendar_data

    def _expand(
        self, listing: _Listing, start: datetime, end: datetime, full: bool, zone: tzinfo = UTC
    ) -> tuple[list[EventChange], list[str], bool]:
        """Busy blocks per object, keyed by its href, all-day and floating times in the
        owner's ``zone``; the time budget is per calendar. The
        flag is False when the budget ran out before every object was expanded; then every
        object read is listed, busy or not, as the result can only replace those."""
        deleted = [EventChange(key=href, deleted=True) for href in sorted(listing.deleted)]
        expanded: list[EventChange] = []
        warnings: list[str] = []
        deadline = time.monotonic() + self.settings.max_expand_seconds
        expanded_all = True
        for href, data in sorted(listing.changed.items()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                expanded_all = False
                warnings.append(
                    "Reading this calendar's recurring events took too long; some busy time "
                    "may be missing."
                )
                break
            result = busy_from_ical(
                data or "",
                start,
                end,
                max_instances=self.settings.max_instances_per_event,
                max_seconds=remaining,
                key_prefix=href,
                floating_zone=zone,
            )
            warnings += result.warnings
            blocks = [block for change in result.changes for block in change.blocks]
            expanded.append(EventChange(key=href, blocks=sorted(blocks, key=_block_order)))
            if not result.complete and time.monotonic() >= deadline:
                expanded_all = False  # the budget ran out inside this object
                break
        if full and expanded_all:  # a full result replaces everything: skip the empty ones
            expanded = [change for change in expanded if change.blocks]
        # (incrementally, a change to "no busy time" must clear the event, so it stays)
        return deleted + expanded, warnings, expanded_all

    # -- writing events -------------------------------------------------------------------

    def create_event(self, calendar: LinkedCalendar, event: EventData) -> WrittenEvent:
        """PUT at ``<calendar>/<uid>.ics`` only if absent; present means an earlier try of
        ours got through, so it is overwritten instead (a retry never duplicates)."""
        self._client()
        url = _collection_url(calendar.remote_id)
        href = unquote(urlsplit(url).path) + _resource_name(event.uid)
        with self._faults():
            response = self._put(urljoin(url, _quote(href)), event, {"If-None-Match": "*"})
            if response.status == 412:
                response = self._put(urljoin(url, _quote(href)), event, {})
            return WrittenEvent(remote_id=href, etag=self._written(response))

    def update_event(
        self, calendar: LinkedCalendar, remote_id: str, event: EventData, etag: str | None
    ) -> WrittenEvent:
        """PUT over our event, If-Match the ETag stored when we last wrote it. A 412 means it
        was edited by hand since: it is read again and only Slotbook's properties (time,
        title, status, sequence) are replaced in it, so the person's own additions (a
        description, a location, alarms) survive. A missing event is created afresh."""
        self._client()
        url = urljoin(_collection_url(calendar.remote_id), _quote(remote_id))
        with self._faults():
            response = self._put(url, event, {"If-Match": etag} if etag else {})
            if response.status == 412:
                response = self._reapply(url, event)
            if response.status == 404:
                return self.create_event(calendar, event)
            return WrittenEvent(remote_id=remote_id, etag=self._written(response))

    def _reapply(self, url: str, event: EventData) -> DAVResponse:
        """Read the hand-edited event and PUT it back with our properties replaced, If-Match
        its current ETag; an event we cannot read as ours is overwritten whole."""
        current = self._send("GET", url, "", {})
        if current.status == 404:
            return current
        etag = current.headers.get("ETag")
        merged = reapplied(current.raw, event) if current.status == 200 else None
        headers = {"Content-Type": ICS, **({"If-Match": etag} if etag else {})}
        response = self._send("PUT", url, merged or event_ical(event), headers)
        if response.status == 412:
            raise TemporaryFailure(
                "The event was being edited at the same time; Slotbook will try again."
            )
        return response

    def delete_event(self, calendar: LinkedCalendar, remote_id: str, etag: str | None) -> None:
        """DELETE without If-Match: it is our event whatever its state; gone is fine."""
        self._client()
        url = urljoin(_collection_url(calendar.remote_id), _quote(remote_id))
        with self._faults():
            response = self._send("DELETE", url, "", {})
            if response.status not in (200, 202, 204, 404, 410):
                raise ProviderError(
                    f"The calendar server did not delete the event ({response.status})."
                )

    def _put(self, url: str, event: EventData, headers: dict[str, str]) -> DAVResponse:
        return self._send("PUT", url, event_ical(event), {"Content-Type": ICS, **headers})

    @staticmethod
    def _written(response: DAVResponse) -> str | None:
        if response.status in (200, 201, 204):
            return response.headers.get("ETag")
        if response.status == 404:
            raise ProviderError(GONE)
        if response.status == 409:
            raise ProviderError(
                "The calendar server refused the event: the calendar may no longer exist, or "
                "it already holds this booking under another name."
            )
        raise ProviderError(f"The calendar server did not save the event ({response.status}).")

    # -- plumbing -------------------------------------------------------------------------

    def _client(self, attempts: int | None = None) -> DAVClient:
        """The caldav client, created once per provider object; refuses a URL that is not
        http(s) before any request is made (its address is checked as each request connects)."""
        url = self.connection.url or ""
        http.parse_target(url)
        if self._dav is None:
            client = DAVClient(
                url=url,
                username=self.connection.username,
                password=self.secret,
                timeout=self.settings.timeout,
                enable_rfc6764=False,  # its DNS look-ups would bypass the checked transport
            )
            client.session.close()
            self._transport = _Transport(self.settings, urlsplit(url).scheme == "https")
            client.session = self._transport
            client.auth = requests.auth.HTTPBasicAuth(
                self.connection.username or "", self.secret or ""
            )
            self._dav = client
        self._transport.attempts = attempts
        return self._dav

    def _send(self, method: str, url: str, body: str, headers: dict[str, str]) -> DAVResponse:
        """One WebDAV request; 401 becomes ``AuthFailed`` (after trying Digest if that is all
        the server offers), 403 ``_Refused``, an unreadable body ``_BadReply``."""
        client = self._dav
        for _try in range(2):
            try:
                return client.request(url, method, body, headers)
            except dav_error.AuthorizationError as exc:
                if exc.status != 401:
                    raise _Refused(exc.preconditions) from exc
                if not self._use_digest(client):
                    raise AuthFailed(AUTH_FAILED) from exc
            except etree.LxmlError as exc:
                raise _BadReply(str(exc)) from exc
        raise AuthFailed(AUTH_FAILED)

    def _use_digest(self, client: DAVClient) -> bool:
        challenge = self._transport.challenge.lower()
        if "digest" not in challenge or "basic" in challenge:
            return False
        if isinstance(client.auth, requests.auth.HTTPDigestAuth):
            return False
        client.auth = requests.auth.HTTPDigestAuth(
            self.connection.username or "", self.secret or ""
        )
        return True

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """Whatever the library or server did wrong, callers see a ``ProviderError``."""
        try:
            yield
        except _Refused as exc:
            raise ProviderError(REFUSED) from exc
        except _BadReply as exc:
            raise ProviderError(BAD_REPLY) from exc
        except dav_error.DAVError as exc:
            raise ProviderError(BAD_REPLY) from exc


# --- helpers -----------------------------------------------------------------------------


def event_ical(event: EventData) -> str:
    """The VCALENDAR we store for a booking: one VEVENT, times in UTC."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Slotbook//Slotbook//EN")
    cal.add("version", "2.0")
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    vevent.add("dtstart", event.starts_at.astimezone(UTC))
    vevent.add("dtend", event.ends_at.astimezone(UTC))
    vevent.add("summary", event.title)
    vevent.add("sequence", event.sequence)
    vevent.add("status", "TENTATIVE" if event.tentative else "CONFIRMED")
    vevent.add("transp", "OPAQUE")
    if event.description:
        vevent.add("description", event.description)
    if event.location:
        vevent.add("location", event.location)
    cal.add_component(vevent)
    return cal.to_ical().decode("utf-8")


# The properties Slotbook owns in an event it wrote; on a hand-edited event only these are
# replaced (DURATION goes: DTEND says how long it is).
OWNED_PROPERTIES = ("DTSTAMP", "DTSTART", "DTEND", "DURATION", "SUMMARY", "SEQUENCE", "STATUS")


def reapplied(text: str, event: EventData) -> str | None:
    """``text`` (an event as stored, edited by hand) with Slotbook's properties set from
    ``event`` and everything else kept; None when it is not one VEVENT with our UID."""
    try:
        calendar = icalendar.Calendar.from_ical(text.encode("utf-8"))
        vevents = [c for c in calendar.walk("VEVENT") if str(c.get("UID", "")) == event.uid]
        if len(vevents) != 1 or vevents[0].get("RRULE") is not None:
            return None
        ours = icalendar.Calendar.from_ical(event_ical(event).encode("utf-8"))
        [fresh] = ours.walk("VEVENT")
        vevent = vevents[0]
        for name in OWNED_PROPERTIES:
            vevent.pop(name, None)
            if name in fresh:
                vevent[name] = fresh[name]
        return calendar.to_ical().decode("utf-8")
    except Exception:  # anything odd in what the server holds: write ours whole
        return None


def _resource_name(uid: str) -> str:
    """``<uid>.ics`` when the UID is safe in a URL path, else a digest of it (stable, so a
    retry still lands on the same resource)."""
    if SAFE_NAME.fullmatch(uid):
        return f"{uid}.ics"
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()[:40] + ".ics"


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where credentials may go."""
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _collection_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _quote(href: str) -> str:
    """Hrefs come back from the library unquoted; quote them again for a request line."""
    return quote(href, safe=PATH_SAFE)


def _data_props() -> Any:
    """<prop><getetag/><calendar-data/></prop>: objects come back with their data."""
    return dav.Prop().append([dav.GetEtag(), cdav.CalendarData()])


def _xml(element: Any) -> str:
    return etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True).decode()


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [v for v in value if v]


def _is_calendar(props: dict[str, Any]) -> bool:
    return cdav.Calendar.tag in _as_list(props.get(dav.ResourceType.tag))


def _event_calendars(results: list[Any], listed_url: str) -> list[RemoteCalendar]:
    """Calendars in a depth-1 listing that can hold events (no component set = any).

    The library hands hrefs back as paths, so they are joined to the URL that was listed,
    which may be on another host than the one the user typed (iCloud's calendar homes)."""
    calendars = []
    for result in results:
        props = result.properties
        components = _as_list(props.get(cdav.SupportedCalendarComponentSet.tag))
        if not _is_calendar(props) or (components and "VEVENT" not in components):
            continue
        privileges = props.get(dav.CurrentUserPrivilegeSet.tag)
        writable = privileges is None or bool(WRITE_PRIVILEGES & set(_as_list(privileges)))
        url = _collection_url(urljoin(listed_url, _quote(result.href)))
        name = props.get(dav.DisplayName.tag) or unquote(url.rstrip("/").rsplit("/", 1)[-1])
        calendars.append(RemoteCalendar(remote_id=url, name=str(name), writable=writable))
    return calendars


def _block_order(block: Any) -> tuple[datetime, datetime]:
    return (block.starts_at, block.ends_at)
