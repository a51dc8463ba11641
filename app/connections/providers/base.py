"""What every calendar provider can do, and the errors it may raise.

The sync job (``connections/sync.py``) and write-back (``bookings/writeback.py``) talk to
providers only through this interface, so CalDAV, ICS and Microsoft Graph are
interchangeable to them. Providers never touch the database: they get a connection row and
its decrypted secret, and return plain data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from app.connections.models import Connection, LinkedCalendar


# --- errors ----------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call failed. ``str(error)`` is a sentence meant for the person who linked
    the calendar; it never contains a secret."""


class AuthFailed(ProviderError):
    """Wrong password, revoked or expired grant (401, ``invalid_grant``): needs re-linking."""


class RateLimited(ProviderError):
    """429/503 that did not clear after honouring Retry-After; try again after ``retry_after``."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TemporaryFailure(ProviderError):
    """Network trouble or a 5xx: try again later."""


class CursorExpired(ProviderError):
    """The sync token or delta link is no longer valid (CalDAV 403/409 valid-sync-token,
    Graph 410): the caller starts a full resync."""


class EventMissing(ProviderError):
    """The calendar or event is not there (404): someone deleted it by hand."""


class NotACalendarServer(ProviderError):
    """The URL answered, but not as a CalDAV server or an iCalendar feed."""


class UnsafeURL(ProviderError):
    """The URL points at loopback, link-local or private addresses and that is not allowed."""


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteCalendar:
    remote_id: str  # CalDAV href, Graph calendar id, feed URL, tenant user's email
    name: str
    writable: bool = True


@dataclass(frozen=True)
class BusyInterval:
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    status: str  # a BusyStatus value
    title: str | None = None  # the provider's title; C2 decides later whether it is shown


@dataclass
class EventChange:
    """One remote event's busy time after the change (``blocks``), or its removal."""

    key: str  # stable identity of the remote event (href, Graph id, UID)
    blocks: list[BusyInterval] = field(default_factory=list)
    deleted: bool = False


@dataclass
class SyncResult:
    """What a read found. ``full`` means ``changes`` lists every event of the calendar in the
    window, so anything cached and not listed is gone; otherwise only changed events appear."""

    changes: list[EventChange]
    cursor: str | None
    full: bool
    warnings: list[str] = field(default_factory=list)
    requests: int = 0  # HTTP requests it took (benchmarks and tests read this)


@dataclass(frozen=True)
class EventData:
    """A booking as written into a calendar (K5)."""

    uid: str  # the booking's stable iCalendar UID
    title: str  # already carries "[PENDING] " when provisional
    starts_at: datetime
    ends_at: datetime
    tentative: bool
    description: str = ""
    location: str = ""
    sequence: int = 0


@dataclass(frozen=True)
class WrittenEvent:
    remote_id: str
    etag: str | None = None


# --- the interface ---------------------------------------------------------------------


class Provider(ABC):
    kind: ClassVar[str]
    can_write: ClassVar[bool] = True

    def __init__(self, connection: Connection, secret: str | None, settings: ProviderSettings):
        self.connection = connection
        self.secret = secret
        self.settings = settings

    @abstractmethod
    def list_calendars(self) -> list[RemoteCalendar]:
        """The calendars this account can see; raises on a wrong password or URL."""

    @abstractmethod
    def read_busy(
        self,
        calendar: LinkedCalendar,
        start: datetime,
        end: datetime,
        cursor: str | None,
    ) -> SyncResult:
        """Busy time in [start, end): incremental from ``cursor`` where the provider allows,
        full otherwise (``cursor`` None, or the provider has no incremental reads)."""

    def read_busy_many(
        self,
        calendars: Sequence[LinkedCalendar],
        start: datetime,
        end: datetime,
    ) -> dict[int, SyncResult | ProviderError]:
        """Read several calendars at once; providers with a batch API override this."""
        results: dict[int, SyncResult | ProviderError] = {}
        for calendar in calendars:
            try:
                results[calendar.id] = self.read_busy(calendar, start, end, calendar.sync_cursor)
            except (AuthFailed, RateLimited):
                raise  # the whole connection is affected
            except ProviderError as exc:
                results[calendar.id] = exc
        return results

    def owner_zone(self, calendar: LinkedCalendar) -> tzinfo:
        """The zone of the calendar's owner, for all-day and floating times (an all-day event
        in Sydney blocks Sydney's midnight to midnight); UTC when unknown."""
        name = dict(self.settings.person_zones).get(calendar.person_id)
        try:
            return ZoneInfo(name) if name else UTC
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return UTC

    def create_event(self, calendar: LinkedCalendar, event: EventData) -> WrittenEvent:
        raise ProviderError(f"{self.connection.kind_label} calendars are read-only.")

    def update_event(
        self, calendar: LinkedCalendar, remote_id: str, event: EventData, etag: str | None
    ) -> WrittenEvent:
        raise ProviderError(f"{self.connection.kind_label} calendars are read-only.")

    def delete_event(self, calendar: LinkedCalendar, remote_id: str, etag: str | None) -> None:
        """Remove an event we wrote; an event already gone is not an error."""
        raise ProviderError(f"{self.connection.kind_label} calendars are read-only.")


@dataclass(frozen=True)
class ProviderSettings:
    """What providers need from configuration, read once so they need no app context."""

    allow_private_urls: bool = False
    # Host names that may resolve to private addresses even when allow_private_urls is off
    # (one LAN server rather than the whole network); lower case.
    private_hosts: frozenset[str] = frozenset()
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    redirect_uri: str = ""  # the Microsoft link callback (personal connections)
    # One HTTP request in all (connect, redirect hops, every read), not per read: see
    # ``http.deadline``. A feed's whole download, first connect to last byte, gets
    # ``download_timeout``.
    timeout: float = 20.0
    download_timeout: float = 60.0
    http_attempts: int = 4  # write-back uses 1 and lets the outbox retry later
    max_retry_wait: float = 30.0  # Retry-After longer than this becomes RateLimited
    max_instances_per_event: int = 2000  # recurrence expansion cap (K6)
    max_expand_seconds: float = 5.0  # expansion time budget per calendar (K6)
    # (person id, IANA zone) of the people whose calendars are read: all-day and floating
    # times are read in the calendar owner's zone (filled by ``providers.provider_for``).
    person_zones: tuple[tuple[int, str], ...] = ()
    # The organisation's app registration, also used for personal Microsoft links (K2).
    ms_client_id: str = ""
    ms_client_secret: str = field(default="", repr=False)
    # Google (issue [12]): the OAuth endpoints, the Calendar API base, the organisation's
    # OAuth client for personal links and the callback it redirects to.
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    google_api_url: str = "https://www.googleapis.com/calendar/v3"
    google_client_id: str = ""
    google_client_secret: str = field(default="", repr=False)
    google_redirect_uri: str = ""
