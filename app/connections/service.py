"""The rules for linking calendars (K1-K2): what may be linked, by whom, and how it is checked.

Routes and the CLI only load, authorise and call these functions. Each one validates first
and changes nothing on bad input: it raises ``LinkError`` with a sentence for people (the
provider's own message for a wrong password, an unreachable or private server, a URL that is
not a calendar). Secrets are sealed on the row (K3) and never appear in a message.

Linking talks to the calendar server before saving, so a typo is caught before anything is
kept. From the screens that talk happens in a background job (``checks.py``): a web request
only builds the draft (``caldav_draft``, ``ics_draft``: every rule that needs no network),
so a slow calendar server never holds a web worker. The CLI links directly (``add_caldav``,
``add_ics``) and waits. Either way the talk happens outside any writing transaction: on
SQLite the write lock is released first and taken again only for the short step that saves
the result, so a slow server never makes a booking wait (the same rule ``sync.py`` follows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import selectinload

from app.admin.settings import get_setting, set_setting
from app.connections.freshness import STALE_AFTER_INTERVALS, sync_interval
from app.connections.http import parse_target
from app.connections.models import (
    KIND_LABELS,
    ORGANISATION_KINDS,
    BusyBlock,
    Connection,
    ConnectionKind,
    LinkedCalendar,
)
from app.connections.providers import provider_for, provider_settings
from app.connections.providers.base import Provider, ProviderError, RemoteCalendar
from app.connections.sync import request_sync, write_calendar_changed
from app.database import begin_write, utcnow
from app.extensions import db
from app.security import DecryptionError, keyring

MAX_URL_LENGTH = 2000
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN_RE = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
PERSONAL_KINDS = (
    ConnectionKind.CALDAV,
    ConnectionKind.ICS,
    ConnectionKind.MICROSOFT,
    ConnectionKind.GOOGLE,
)
ACCESS_DENIED = (
    "You did not give Slotbook access to your Microsoft calendar, so nothing was linked."
)
STATE_MISMATCH = (
    "The answer from Microsoft did not match the sign-in started from this browser, so "
    "nothing was linked. Please start again."
)


class LinkError(Exception):
    """A linking request was refused; ``str(error)`` is a sentence for the person."""


class NotFound(LinkError):
    """The id is not one of the person's own connections or calendars (the route says 404)."""


# --- what people may link --------------------------------------------------------------


def allowed_providers() -> list[str]:
    """The personal providers the organisation lets people link (setting ``personal_providers``)."""
    return list(get_setting("personal_providers"))  # type: ignore[arg-type]


def _require_provider(kind: str) -> None:
    if kind not in allowed_providers():
        label = KIND_LABELS.get(kind, kind)
        raise LinkError(f"Your organisation does not allow linking {label} calendars.")


def organisation_app_ready() -> bool:
    """Whether personal Microsoft links can work: they use the organisation's app registration
    (checked without decrypting its secret)."""
    organisation = _organisation_connection()
    return bool(organisation and organisation.client_id and organisation.secret_sealed)


# --- personal connections ----------------------------------------------------------------


def add_caldav(user, url: str, username: str, password: str) -> Connection:
    """Link a CalDAV account after checking the server accepts the login. Linking the same
    account again (a new app-specific password) updates it and keeps the person's choices."""
    return link_draft(user.id, caldav_draft(user, url, username, password))


def caldav_draft(user, url: str, username: str, password: str) -> Connection:
    """A CalDAV account to link, checked as far as it can be without the network (unsaved;
    its password sealed)."""
    _require_provider(ConnectionKind.CALDAV)
    url = _without_userinfo(_clean_url(url))  # the password goes sealed, never in the URL
    username = (username or "").strip()
    if not username:
        raise LinkError("Enter the user name you sign in to the calendar server with.")
    if not password:
        raise LinkError("Enter the app-specific password for this account.")
    draft = Connection(
        kind=ConnectionKind.CALDAV,
        user_id=user.id,
        url=url,
        username=username[:300],
        label=f"{username} on {_host(url)}"[:200],
    )
    draft.store_secret(password)
    return draft


def add_ics(user, url: str) -> Connection:
    """Subscribe to a read-only ICS feed after checking it answers as iCalendar."""
    return link_draft(user.id, ics_draft(user, url))


def ics_draft(user, url: str) -> Connection:
    """An ICS subscription to link, checked as far as it can be without the network."""
    _require_provider(ConnectionKind.ICS)
    url = _clean_url(url, webcal=True)
    # Private feed addresses are bearer secrets (Google's "secret address", iCloud's
    # published token): the whole URL is sealed, and only a redacted form is kept in clear.
    draft = Connection(
        kind=ConnectionKind.ICS, user_id=user.id, url=redacted_feed_url(url), label=_host(url)
    )
    draft.store_secret(url)
    return draft


def start_microsoft_link(user, login_hint: str | None = None) -> dict:
    """The msal auth-code flow to keep in the session; its ``auth_uri`` is where to send the
    person. Needs the organisation's app registration (personal links use its client id)."""
    from app.connections.providers import graph

    _require_provider(ConnectionKind.MICROSOFT)
    settings = provider_settings()
    if not settings.ms_client_id:
        raise LinkError(
            "Microsoft accounts can be linked once an administrator has set up the "
            "organisation's Microsoft app registration (Calendars screen)."
        )
    _release_for_network()
    try:
        return graph.start_link(settings, settings.redirect_uri, login_hint=login_hint or None)
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc


def complete_microsoft_link(user, flow: dict | None, query: dict[str, str]) -> Connection:
    """Finish the link from Microsoft's answer: check it belongs to the flow this browser
    started, turn the code into a refresh token, then save the account and its calendars."""
    from app.connections.providers import graph

    _require_provider(ConnectionKind.MICROSOFT)
    if query.get("error"):
        if query["error"] == "access_denied":
            raise LinkError(ACCESS_DENIED)
        raise LinkError("Microsoft did not link the account. Please try again.")
    if not flow or not query.get("state") or query.get("state") != flow.get("state"):
        raise LinkError(STATE_MISMATCH)
    settings = provider_settings()
    _release_for_network()
    try:
        account = graph.finish_link(settings, flow, query)
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc
    except ValueError as exc:  # msal's own state check
        raise LinkError(STATE_MISMATCH) from exc
    return finish_microsoft_link(user, account)


def seal_flow(flow: dict) -> str:
    """The auth-code flow as it may travel in the (signed, not encrypted) session cookie: it
    holds the PKCE code verifier, which only the server should know."""
    return keyring().encrypt(json.dumps(flow))


def open_flow(sealed: str | None) -> dict | None:
    """The flow back from the session; None when absent or not ours (a state mismatch)."""
    if not sealed:
        return None
    try:
        return json.loads(keyring().decrypt(sealed))
    except (DecryptionError, ValueError):
        return None


def finish_microsoft_link(user, account) -> Connection:
    """Save a personal Microsoft account (``LinkedAccount``). The same account linked again
    gets its new token, loses "needs re-link" and keeps the person's calendar choices."""
    _require_provider(ConnectionKind.MICROSOFT)
    email = (account.email or "").strip()
    if not email or not account.refresh_token:
        raise LinkError("Microsoft did not say which account was linked. Please try again.")
    draft = Connection(
        kind=ConnectionKind.MICROSOFT,
        user_id=user.id,
        username=email[:300],
        label=email[:200],
    )
    draft.store_secret(account.refresh_token)
    connection = link_draft(user.id, draft)
    organisation = _organisation_connection()
    if organisation is not None:
        request_sync(organisation)  # the personal link now outranks it for this person
    return connection


def link_draft(user_id: int, draft: Connection) -> Connection:
    """Check the draft against its server, then save it (or refresh the same account).
    Waits for the server: call it from a job or the CLI, never from a web request. The
    provider is checked again: the organisation may have withdrawn it since the draft."""
    _require_provider(draft.kind)
    provider = provider_for(draft)
    _release_for_network()
    remote = _discover(provider)
    if rotated := getattr(provider, "new_secret", None):
        draft.store_secret(rotated)  # Microsoft may hand out a new refresh token on first use
    begin_write()
    writable = type(provider).can_write
    existing = _same_account(user_id, draft)
    if existing is not None:
        return _relink(existing, draft, remote, writable)
    db.session.add(draft)
    _add_calendars(draft, user_id, remote, writable)
    request_sync(draft)
    write_calendar_changed(user_id)
    db.session.flush()
    return draft


def _discover(provider: Provider, require_some: bool = True) -> list[RemoteCalendar]:
    """The account's calendars, as its server lists them. The provider checks the address
    as it connects (``http.py``), so a name cannot resolve one way here and another there."""
    try:
        remote = provider.list_calendars()
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc
    if require_some and not remote:
        raise LinkError("The server answered, but this account has no calendars to link.")
    return remote


def _same_account(user_id: int, draft: Connection) -> Connection | None:
    query = select(Connection).where(Connection.user_id == user_id, Connection.kind == draft.kind)
    if draft.kind == ConnectionKind.ICS:  # the feed address is sealed: compare it opened
        address = draft.reveal_secret()
        return next(
            (
                c
                for c in db.session.scalars(query.order_by(Connection.id))
                if c.reveal_secret() == address
            ),
            None,
        )
    if draft.url:
        query = query.where(Connection.url == draft.url)
    if draft.username:
        query = query.where(func.lower(Connection.username) == draft.username.lower())
    return db.session.scalars(query.order_by(Connection.id)).first()


def _relink(
    existing: Connection, draft: Connection, remote: list[RemoteCalendar], writable: bool
) -> Connection:
    existing.secret_sealed = draft.secret_sealed
    existing.needs_relink = False
    existing.last_error = None
    existing.failure_count = 0
    known = {c.remote_id for c in existing.calendars}
    new = [r for r in remote if r.remote_id not in known]
    _add_calendars(existing, existing.user_id, new, writable)
    request_sync(existing)
    write_calendar_changed(existing.user_id)  # writes refused while it was broken
    db.session.flush()
    return existing


def _add_calendars(
    connection: Connection, person_id: int, remote: Iterable[RemoteCalendar], writable: bool
) -> None:
    """One row per remote calendar, all counting for availability; the first writable one
    receives bookings when the person has no calendar doing that yet."""
    wants_receiver = not _has_receiving_calendar(person_id)
    for item in remote:
        calendar = LinkedCalendar(
            person_id=person_id,
            remote_id=item.remote_id[:1000],
            name=(item.name or "Calendar")[:300],
            writable=bool(writable and item.writable),
            use_for_availability=True,
            receives_bookings=False,
        )
        if wants_receiver and calendar.writable:
            calendar.receives_bookings = True
            wants_receiver = False
        connection.calendars.append(calendar)


def _has_receiving_calendar(person_id: int) -> bool:
    return (
        db.session.scalar(
            select(LinkedCalendar.id)
            .where(LinkedCalendar.person_id == person_id, LinkedCalendar.receives_bookings)
            .limit(1)
        )
        is not None
    )


def set_calendar_options(
    user, calendar_id: int, *, for_availability: bool, receives_bookings: bool
) -> LinkedCalendar:
    """Choose whether one of the person's calendars counts for availability and whether it
    receives bookings; at most one calendar per person receives them."""
    calendar = db.session.get(LinkedCalendar, calendar_id)
    if calendar is None or calendar.person_id != user.id:
        raise NotFound("That calendar is not one of yours.")
    if receives_bookings and not calendar.writable:
        raise LinkError(
            f"“{calendar.name}” is read-only, so bookings cannot be written into it. "
            "Choose another calendar to receive bookings."
        )
    if receives_bookings != calendar.receives_bookings:
        write_calendar_changed(user.id)
    if receives_bookings and not calendar.receives_bookings:
        db.session.execute(
            update(LinkedCalendar)
            .where(LinkedCalendar.person_id == user.id, LinkedCalendar.id != calendar.id)
            .values(receives_bookings=False)
            .execution_options(synchronize_session="fetch")
        )
    if for_availability and not calendar.use_for_availability:
        calendar.sync_cursor = None  # read it in full: its busy time was dropped
        request_sync(calendar.connection)
    elif calendar.use_for_availability and not for_availability:
        # Its busy time stops counting now, not at the next sync.
        db.session.execute(delete(BusyBlock).where(BusyBlock.calendar_id == calendar.id))
        calendar.sync_cursor = None
    calendar.use_for_availability = for_availability
    calendar.receives_bookings = receives_bookings
    db.session.flush()
    return calendar


def request_connection_sync(user, connection_id: int) -> Connection:
    """Mark one of the person's own connections to be synced within a minute."""
    connection = own_connection(user, connection_id)
    request_sync(connection)
    db.session.flush()
    return connection


def disconnect(user, connection_id: int) -> str:
    """Remove one of the person's connections with its calendars and cached busy time.
    Bookings stay; events written for them lose their calendar link (FK SET NULL).
    Returns the label, for the message."""
    connection = own_connection(user, connection_id)
    label, kind = connection.label, connection.kind
    calendar_ids = [c.id for c in connection.calendars]
    if calendar_ids:
        db.session.execute(delete(BusyBlock).where(BusyBlock.calendar_id.in_(calendar_ids)))
    db.session.delete(connection)
    write_calendar_changed(user.id)
    if kind == ConnectionKind.MICROSOFT and (organisation := _organisation_connection()):
        request_sync(organisation)  # the organisation link covers this person again
    if kind == ConnectionKind.GOOGLE and (workspace := google_workspace_connection()):
        request_sync(workspace)
    db.session.flush()
    return label


def calendar_name(calendar: LinkedCalendar) -> str:
    """A calendar's name on screen; the organisation's rows are named after their person,
    which reads oddly to that person."""
    if calendar.connection.kind == ConnectionKind.GOOGLE_ORG:
        return "Google Workspace calendar"
    if calendar.connection.is_organisation:
        return "Microsoft 365 calendar"
    return calendar.name or "Calendar"


def own_connection(user, connection_id: int) -> Connection:
    """One of the person's own connections, or ``NotFound`` (never another person's)."""
    connection = db.session.get(Connection, connection_id)
    if connection is None or connection.user_id is None or connection.user_id != user.id:
        raise NotFound("That connection is not one of yours.")
    return connection


def user_connections(user) -> list[Connection]:
    """The person's own connections with their calendars (two queries, however many)."""
    return list(
        db.session.scalars(
            select(Connection)
            .where(Connection.user_id == user.id)
            .options(selectinload(Connection.calendars))
            .order_by(Connection.created_at, Connection.id)
        )
    )


def organisation_calendars(user) -> list[LinkedCalendar]:
    """The person's calendars that come from an organisation link (Microsoft 365, Google
    Workspace)."""
    return list(
        db.session.scalars(
            select(LinkedCalendar)
            .join(Connection, Connection.id == LinkedCalendar.connection_id)
            .where(
                LinkedCalendar.person_id == user.id,
                Connection.kind.in_(ORGANISATION_KINDS),
            )
            .options(selectinload(LinkedCalendar.connection))
            .order_by(LinkedCalendar.id)
        )
    )


# --- the organisation's Microsoft 365 connection -------------------------------------------


def _organisation_connection() -> Connection | None:
    return db.session.scalars(
        select(Connection)
        .where(Connection.kind == ConnectionKind.MICROSOFT_ORG)
        .order_by(Connection.id)
    ).first()


def organisation_connection() -> Connection | None:
    """The organisation's Microsoft 365 connection, if an administrator set one up."""
    return _organisation_connection()


def save_organisation_connection(
    tenant_id: str, client_id: str, client_secret: str | None, show_details: bool
) -> Connection:
    """Create or update the one organisation connection (K1). A blank secret keeps the saved
    one; a new secret is checked by listing the tenant's users before anything is saved."""
    tenant_id, client_id = (tenant_id or "").strip().lower(), (client_id or "").strip().lower()
    if not (GUID_RE.match(tenant_id) or DOMAIN_RE.match(tenant_id)):
        raise LinkError(
            "The tenant id is a GUID (00000000-0000-0000-0000-000000000000) or the tenant's "
            "domain (contoso.onmicrosoft.com)."
        )
    if not GUID_RE.match(client_id):
        raise LinkError(
            "The client (application) id is a GUID like 00000000-0000-0000-0000-000000000000."
        )
    existing = _organisation_connection()
    secret = (client_secret or "").strip() or None
    if secret is None and (existing is None or not existing.secret_sealed):
        raise LinkError("Enter the client secret of the app registration.")
    if secret is None and existing.client_id != client_id:
        raise LinkError("A different client id needs its own client secret.")
    if secret is not None:
        draft = Connection(
            kind=ConnectionKind.MICROSOFT_ORG,
            tenant_id=tenant_id,
            client_id=client_id,
            label="Microsoft 365",
        )
        draft.store_secret(secret)
        provider = provider_for(draft)
        _release_for_network()
        _discover(provider, require_some=False)
        begin_write()
        existing = _organisation_connection()
    connection = existing or Connection(kind=ConnectionKind.MICROSOFT_ORG, label="Microsoft 365")
    if connection.id is None:
        db.session.add(connection)
    connection.tenant_id, connection.client_id = tenant_id, client_id
    connection.label = "Microsoft 365"
    if secret is not None:
        connection.store_secret(secret)
        connection.needs_relink = False
        connection.last_error = None
        connection.failure_count = 0
    _set_show_details(connection, show_details)
    request_sync(connection)
    db.session.flush()
    return connection


def _set_show_details(connection: Connection, show_details: bool) -> None:
    """C2: titles are kept only while the switch is on. Turning it off forgets them; turning
    it on reads the organisation calendars in full so existing events get their titles."""
    if bool(get_setting("show_event_details")) == show_details:
        return
    set_setting("show_event_details", show_details)
    if connection.id is None:
        return
    if show_details:
        for calendar in connection.calendars:
            calendar.sync_cursor = None
    else:
        calendar_ids = select(LinkedCalendar.id).where(
            LinkedCalendar.connection_id == connection.id
        )
        db.session.execute(
            update(BusyBlock).where(BusyBlock.calendar_id.in_(calendar_ids)).values(title=None)
        )


def all_connections() -> list[tuple[Connection, object]]:
    """Every connection with its owner (None for the organisation's), for the health table."""
    from app.accounts.models import User

    rows = db.session.execute(
        select(Connection, User)
        .outerjoin(User, User.id == Connection.user_id)
        .options(selectinload(Connection.calendars))
        .order_by(Connection.user_id.is_not(None), User.name, Connection.id)
    )
    return [(connection, owner) for connection, owner in rows]


def request_any_sync(connection_id: int) -> Connection:
    """An administrator's "Sync now" on any connection."""
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise NotFound("That connection no longer exists.")
    request_sync(connection)
    db.session.flush()
    return connection


# --- health ----------------------------------------------------------------------------

OK, WARNING, ERROR, NEEDS_RELINK, NEVER_SYNCED = (
    "ok",
    "warning",
    "error",
    "needs re-link",
    "never synced",
)
TONES = {OK: "ok", WARNING: "warn", ERROR: "bad", NEEDS_RELINK: "bad", NEVER_SYNCED: "muted"}


@dataclass(frozen=True)
class Health:
    """A connection's health as the owner and administrators see it (K4)."""

    state: str
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_try: datetime | None
    warnings: tuple[str, ...] = ()

    @property
    def tone(self) -> str:
        return TONES[self.state]

    @property
    def label(self) -> str:
        return "OK" if self.state == OK else self.state.capitalize()


def connection_health(
    connection: Connection, now: datetime | None = None, interval: timedelta | None = None
) -> Health:
    """Worst first: needs re-link, error, never synced, warning (sync warnings or data older
    than three intervals, when availability stops trusting it), ok."""
    now = now or utcnow()
    warnings = tuple(connection.warnings or ())
    if connection.needs_relink:
        state = NEEDS_RELINK
    elif connection.last_error:
        state = ERROR
    elif connection.last_success_at is None:
        state = NEVER_SYNCED
    else:
        interval = interval or sync_interval()
        if connection.last_success_at < now - STALE_AFTER_INTERVALS * interval:
            warnings += ("Not synced for a while: availability ignores this calendar's people.",)
        state = WARNING if warnings else OK
    return Health(
        state=state,
        last_success=connection.last_success_at,
        last_error=connection.last_error,
        last_error_at=connection.last_error_at,
        next_try=connection.next_sync_at,
        warnings=warnings,
    )


def health_of(connections: Iterable[Connection]) -> dict[int, Health]:
    """Health for many connections with one settings read."""
    now, interval = utcnow(), sync_interval()
    return {c.id: connection_health(c, now, interval) for c in connections}


def relink_notices(user) -> list[Connection]:
    """Connections the signed-in person should re-link: their own, plus the organisation's
    for people who manage integrations. One small query (the banner in ``base.html``)."""
    from app.accounts.permissions import Perm

    mine = Connection.user_id == user.id
    if user.can(Perm.INTEGRATIONS_MANAGE):
        mine = or_(mine, Connection.kind.in_(ORGANISATION_KINDS))
    rows = db.session.scalars(
        select(Connection).where(Connection.needs_relink.is_(True), mine).order_by(Connection.id)
    )
    return list(rows)


# --- small helpers ---------------------------------------------------------------------


def _release_for_network() -> None:
    """End the current transaction before a calendar server is contacted (nothing has been
    written yet), so the SQLite write lock is not held across the network call."""
    db.session.commit()


def _clean_url(url: str, webcal: bool = False) -> str:
    """The address as typed, if it is an http(s) URL naming a server (IPv6 literals in
    brackets included); nothing is looked up here."""
    url = (url or "").strip()
    if webcal and url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    if not url:
        raise LinkError("Enter the server address.")
    if len(url) > MAX_URL_LENGTH:
        raise LinkError("That address is too long.")
    try:
        parse_target(url)
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc
    return url


def _without_userinfo(url: str) -> str:
    """The URL without any "user:password@" typed into it (it would be stored in clear)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname or url


def _netloc(parts) -> str:
    """Host and port without any user name or password; an IPv6 host keeps its brackets,
    or the address would no longer parse ("http://::1:8080/")."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


MAX_SHOWN_FEED_NAME = 20


def redacted_feed_url(url: str) -> str:
    """What may be stored and shown of a feed address: the server and a file name such as
    "basic.ics", never the other path segments or the query that usually hold its key."""
    parts = urlsplit(url)
    host = _netloc(parts)
    segments = [s for s in parts.path.split("/") if s]
    last = segments[-1] if segments else ""
    # Only a short name: a longer one may well be the key itself ("3f9a…0718.ics").
    shown = last if "." in last and len(last) <= MAX_SHOWN_FEED_NAME else ""
    hidden = "…/" if len(segments) > (1 if shown else 0) else ""
    return f"{parts.scheme}://{host}/{hidden}{shown}"


def display_url(url: str | None) -> str:
    """A URL as it may be shown or printed: no user name or password, no query string (feed
    URLs often carry their access key there)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = _netloc(parts)
    except ValueError:  # stored before addresses were checked this carefully
        return ""
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return shown + ("?…" if parts.query else "")


# --- Google (issue [12]) -----------------------------------------------------------------

GOOGLE_ACCESS_DENIED = (
    "You did not give Slotbook access to your Google calendar, so nothing was linked."
)
GOOGLE_STATE_MISMATCH = (
    "The answer from Google did not match the sign-in started from this browser, so "
    "nothing was linked. Please start again."
)
GOOGLE_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
MAX_KEY_FILE = 64 * 1024  # a service account key is about 2.4 KB


def google_workspace_connection() -> Connection | None:
    """The organisation's Google row (OAuth client for personal links, and the Workspace
    service account with its domains), if an administrator set either up."""
    return db.session.scalars(
        select(Connection)
        .where(Connection.kind == ConnectionKind.GOOGLE_ORG)
        .order_by(Connection.id)
    ).first()


def google_app_ready() -> bool:
    """Whether personal Google links can work: they use the organisation's OAuth client."""
    return bool(provider_settings().google_client_id)


def start_google_link(user, login_hint: str | None = None) -> dict:
    """The authorization-code flow to keep (sealed) in the session; its ``auth_uri`` is
    where to send the person."""
    from app.connections.providers import google

    _require_provider(ConnectionKind.GOOGLE)
    settings = provider_settings()
    try:
        return google.start_link(settings, login_hint=login_hint or None)
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc


def complete_google_link(user, flow: dict | None, query: dict[str, str]) -> Connection:
    """Finish the link from Google's answer: check it belongs to the flow this browser
    started, redeem the code (with the PKCE verifier) for a refresh token, then save the
    account and its calendars."""
    from app.connections.providers import google

    _require_provider(ConnectionKind.GOOGLE)
    if query.get("error"):
        if query["error"] == "access_denied":
            raise LinkError(GOOGLE_ACCESS_DENIED)
        raise LinkError("Google did not link the account. Please try again.")
    if not flow or not query.get("state") or query.get("state") != flow.get("state"):
        raise LinkError(GOOGLE_STATE_MISMATCH)
    settings = provider_settings()
    _release_for_network()
    try:
        account = google.finish_link(settings, flow, query)
    except ProviderError as exc:
        raise LinkError(str(exc)) from exc
    return finish_google_link(user, account)


def finish_google_link(user, account) -> Connection:
    """Save a personal Google account. The same account linked again gets its new token,
    loses "needs re-link" and keeps the person's calendar choices."""
    _require_provider(ConnectionKind.GOOGLE)
    email = (account.email or "").strip().lower()
    if not email or not account.refresh_token:
        raise LinkError("Google did not say which account was linked. Please try again.")
    draft = Connection(
        kind=ConnectionKind.GOOGLE, user_id=user.id, username=email[:300], label=email[:200]
    )
    draft.store_secret(account.refresh_token)
    connection = link_draft(user.id, draft)
    if (workspace := google_workspace_connection()) is not None:
        request_sync(workspace)  # the personal link now outranks it for this person
    return connection


def _google_row() -> Connection:
    row = google_workspace_connection()
    if row is None:
        row = Connection(kind=ConnectionKind.GOOGLE_ORG, label="Google Workspace", domains=[])
        db.session.add(row)
    return row


def _google_secret(row: Connection) -> dict:
    from app.connections.providers.google import org_secret

    return org_secret(row.reveal_secret()) if row.secret_sealed else {}


def save_google_client(client_id: str, client_secret: str | None) -> Connection:
    """The organisation's OAuth client for personal Google links (id and secret from the
    Google Cloud console). A blank secret keeps the saved one for the same client id."""
    client_id = (client_id or "").strip()
    if not GOOGLE_CLIENT_ID_RE.match(client_id):
        raise LinkError(
            "The OAuth client id looks like 1234567890-abc123.apps.googleusercontent.com."
        )
    secret = (client_secret or "").strip() or None
    row = google_workspace_connection()
    saved = _google_secret(row) if row is not None else {}
    if secret is None and not (saved.get("client_secret") and row.client_id == client_id):
        raise LinkError("Enter the OAuth client secret (a new client id needs its own).")
    row = _google_row()
    row.client_id = client_id[:200]
    if secret is not None:
        saved["client_secret"] = secret[:500]
    row.store_secret(json.dumps(saved))
    db.session.flush()
    return row


def parse_domains(values: Iterable[str]) -> list[str]:
    """Workspace domains, lower case, each checked; at least one."""
    domains: list[str] = []
    for value in values:
        for part in re.split(r"[\s,]+", value or ""):
            domain = part.strip().lower().lstrip("@")
            if not domain:
                continue
            if not DOMAIN_RE.match(domain):
                raise LinkError(f"“{domain[:80]}” is not a domain such as example.org.")
            if domain not in domains:
                domains.append(domain)
    if not domains:
        raise LinkError("Enter at least one Workspace domain, such as example.org.")
    if len(domains) > 50:
        raise LinkError("At most 50 domains.")
    return domains


def parse_service_account_key(raw: bytes | str) -> dict:
    """The uploaded JSON key, checked (a service account key whose private key opens)."""
    from app.connections.providers.google import ServiceAccount

    if isinstance(raw, bytes):
        if len(raw) > MAX_KEY_FILE:
            raise LinkError("That file is too large to be a service account key.")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LinkError("The key file must be the JSON file Google made.") from exc
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise LinkError("The key file must be the JSON file Google made.") from exc
    try:
        ServiceAccount.from_info(info)
    except ValueError as exc:
        raise LinkError(str(exc)) from exc
    return info


def save_google_workspace(key: dict | None, domains: list[str]) -> Connection:
    """Set the service account (its key sealed with the rest of the row's secret; None
    keeps the saved key) and the domains whose people it covers (K1). The next sync checks
    the key against Google for each person."""
    row = google_workspace_connection()
    saved = _google_secret(row) if row is not None else {}
    if key is None and not saved.get("service_account"):
        raise LinkError("Upload the service account's JSON key.")
    row = _google_row()
    if key is not None:
        saved["service_account"] = key
        row.username = str(key.get("client_email") or "")[:300]
        row.needs_relink = False
        row.last_error = None
        row.failure_count = 0
        from app.connections.providers.google import forget_all_tokens

        forget_all_tokens()  # tokens of an older key must not be reused
    row.domains = list(domains)
    row.store_secret(json.dumps(saved))
    request_sync(row)
    db.session.flush()
    return row


def remove_google_workspace() -> Connection | None:
    """Stop covering people through the service account (the OAuth client stays)."""
    row = google_workspace_connection()
    if row is None:
        return None
    saved = _google_secret(row)
    saved.pop("service_account", None)
    row.store_secret(json.dumps(saved))
    row.username = None
    row.domains = []
    request_sync(row)
    db.session.flush()
    return row


def google_workspace_summary(row: Connection | None) -> dict:
    """What the admin screen shows of the Google row (never a secret)."""
    if row is None:
        return {"client_id": "", "has_client_secret": False, "service_account": "", "domains": []}
    saved = _google_secret(row)
    return {
        "client_id": row.client_id or "",
        "has_client_secret": bool(saved.get("client_secret")),
        "service_account": row.username if saved.get("service_account") else "",
        "domains": list(row.domains or []),
    }
