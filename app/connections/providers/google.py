"""Google Calendar through the Calendar API v3 (K1, K2, issue [12]).

Two providers share the plumbing here:

* ``GooglePersonalProvider`` (``google``): one person's own Google account, linked with the
  OAuth 2.0 authorization-code flow (PKCE, ``state``, offline access); its secret is their
  refresh token, exchanged at ``GOOGLE_TOKEN_URI`` for an access token.
* ``GoogleOrgProvider`` (``google-org``): the organisation's service account with domain-wide
  delegation. Each covered person is one "calendar" (its remote id is their email, which is
  also the id of their primary calendar); a token for that person comes from the JWT-bearer
  grant with ``sub`` set to their email, signed with the service account's key (google-auth).

Busy time comes from ``events.list`` for both: the first read expands recurring events
(``singleEvents``) over the sync window, later reads send the ``syncToken`` Google handed
back and get only what changed; a 410 (``fullSyncRequired``) becomes ``CursorExpired`` and
the sync job reads the calendar again in full, which replaces everything cached (so a
deleted event never comes back). The organisation link uses the same call rather than
``freeBusy``: the README says why.

Every request goes through ``app.connections.http.fetch`` (pinned, deadlined, 429/503 with
Retry-After); Google's other throttling answer, 403 ``rateLimitExceeded`` /
``userRateLimitExceeded``, is retried here the same way. The endpoints come from settings
(``GOOGLE_AUTH_URI``, ``GOOGLE_TOKEN_URI``, ``GOOGLE_CALENDAR_API_URL``), so a deployment or
the tests' local server can stand in for Google. No token or key ever appears in a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import requests

from app.connections.http import (
    ANY_ADDRESS,
    GuardedAdapter,
    fetch,
    new_session,
    retry_after_seconds,
)
from app.connections.models import BusyStatus, ConnectionKind
from app.connections.providers import register
from app.connections.providers.base import (
    AuthFailed,
    BusyInterval,
    CursorExpired,
    EventChange,
    EventData,
    EventMissing,
    Provider,
    ProviderError,
    ProviderSettings,
    RateLimited,
    RemoteCalendar,
    SyncResult,
    TemporaryFailure,
    WrittenEvent,
)

if TYPE_CHECKING:
    from app.connections.models import Connection, LinkedCalendar

# Reading the list of calendars, and reading and writing events in all of them.
SCOPE_CALENDAR_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
LINK_SCOPES = ["openid", "email", SCOPE_CALENDAR_LIST, SCOPE_EVENTS]
ORG_SCOPES = [SCOPE_EVENTS]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAGE_SIZE = 250  # events.list's own default; the maximum is 2500
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
RELINK_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}
# Roles that may read events; "freeBusyReader" cannot, so such calendars are not offered.
READ_ROLES = {"owner", "writer", "reader"}
WRITE_ROLES = {"owner", "writer"}
TOKEN_MARGIN = 60.0  # seconds: an access token this close to expiry is renewed first


class NotDelegated(ProviderError):
    """The service account may not act for this one person (K6): their health says so,
    everyone else keeps working."""


@dataclass(frozen=True)
class LinkedAccount:
    """What a finished personal link gives the UI to store."""

    refresh_token: str = field(repr=False)
    email: str
    name: str


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a service account's JSON key Slotbook uses."""

    client_email: str
    private_key: str = field(repr=False)
    private_key_id: str = ""

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServiceAccount:
        """Checked as google-auth would load it: a service account key with a usable RSA
        private key. Raises ``ValueError`` with a sentence for the administrator."""

        if not isinstance(info, Mapping) or info.get("type") != "service_account":
            raise ValueError(
                "That file is not a service account key (its type must be “service_account”)."
            )
        email = str(info.get("client_email") or "").strip()
        key = str(info.get("private_key") or "")
        if "@" not in email or not key:
            raise ValueError("The key file has no client_email or private_key.")
        try:
            _signer(key, str(info.get("private_key_id") or ""))
        except (ValueError, TypeError, IndexError) as exc:
            raise ValueError("The key file's private key cannot be read.") from exc
        return cls(email, key, str(info.get("private_key_id") or ""))


# Loading an RSA key checks it and costs ~0.1 s of CPU: each key is loaded once a process.
_SIGNERS: dict[str, Any] = {}


def _signer(private_key: str, key_id: str):
    """google-auth's RS256 signer for a service account key (cached by the key's hash)."""
    from google.auth import crypt

    cache_key = _cache_key("signer", private_key, key_id)
    with _TOKENS_LOCK:
        found = _SIGNERS.get(cache_key)
    if found is None:
        found = crypt.RSASigner.from_string(private_key, key_id or None)
        with _TOKENS_LOCK:
            if len(_SIGNERS) > 50:
                _SIGNERS.clear()
            _SIGNERS[cache_key] = found
    return found


# --- tokens shared across syncs ----------------------------------------------------------

# Access tokens live an hour; the worker keeps them between syncs so a refresh with no
# changes costs one request per calendar, not two. Keyed by a hash, never the secret itself.
_TOKENS: dict[str, tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


def _cached_token(key: str) -> str | None:
    with _TOKENS_LOCK:
        found = _TOKENS.get(key)
        if found and found[1] - TOKEN_MARGIN > time.monotonic():
            return found[0]
        _TOKENS.pop(key, None)
        return None


def _keep_token(key: str, token: str, expires_in: float) -> None:
    with _TOKENS_LOCK:
        if len(_TOKENS) > 5000:
            _TOKENS.clear()
        _TOKENS[key] = (token, time.monotonic() + max(0.0, expires_in))


def _forget_token(key: str) -> None:
    with _TOKENS_LOCK:
        _TOKENS.pop(key, None)


def forget_all_tokens() -> None:
    """Drop every cached access token (tests, and a changed key or client)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _cache_key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


# Every Google connection talks to the same few hosts: one pinned adapter for the process
# keeps their TLS connections alive from one connection's sync to the next (a no-change
# refresh of many personal links is then one request each, without a handshake each).
_ADAPTER: GuardedAdapter | None = None
_ADAPTER_LOCK = threading.Lock()


def _pooled_session() -> requests.Session:
    """A session of its own (its own hooks and headers) over the shared connection pool;
    ``fetch`` keeps the adapter because its rules are the ones configured endpoints use."""
    global _ADAPTER
    with _ADAPTER_LOCK:
        if _ADAPTER is None:
            _ADAPTER = GuardedAdapter(ANY_ADDRESS)
        adapter = _ADAPTER
    session = new_session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --- shared plumbing ---------------------------------------------------------------------


class _GoogleProvider(Provider):
    """HTTP, errors, paging, busy time and event bodies shared by both providers."""

    def __init__(
        self, connection: Connection, secret: str | None, settings: ProviderSettings
    ) -> None:
        super().__init__(connection, secret, settings)
        self.new_secret: str | None = None
        self._session = _pooled_session()
        self._requests = 0
        self._session.hooks["response"].append(self._count)
        self._sleep = time.sleep

    # --- subclass hooks ----------------------------------------------------------------

    def _token_for(self, calendar: LinkedCalendar | None, fresh: bool) -> str:
        raise NotImplementedError

    def _calendar_path(self, calendar: LinkedCalendar) -> str:
        return f"/calendars/{_seg(calendar.remote_id)}"

    def _relink_message(self) -> str:
        raise NotImplementedError

    # --- HTTP --------------------------------------------------------------------------

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._requests += 1

    def _url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = self.settings.google_api_url.rstrip("/") + path
        return url + ("?" + urlencode(query) if query else "")

    def _call(
        self,
        calendar: LinkedCalendar | None,
        method: str,
        url: str,
        *,
        json_body: dict | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> requests.Response:
        """One Calendar API request as ``calendar``'s owner. A 401 gets one fresh token and a
        retry; 403 rate limits wait like 429s do in ``fetch`` (Retry-After, else back-off
        with jitter) and become ``RateLimited`` when they do not clear."""
        fresh = False
        delay = 1.0
        attempts = max(1, self.settings.http_attempts)
        for attempt in range(1, attempts + 2):
            token = self._token_for(calendar, fresh)
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            sent.update(headers or {})
            response = fetch(
                self._session,
                method,
                url,
                self.settings,
                guard=False,
                sleep=self._sleep,
                json=json_body,
                headers=sent,
            )
            if response.status_code == 401 and not fresh:
                fresh = True
                continue
            if response.status_code == 403 and _reason(response) in RATE_LIMIT_REASONS:
                wait = retry_after_seconds(response.headers.get("Retry-After"), _jitter(delay))
                if wait > self.settings.max_retry_wait or attempt >= attempts:
                    raise RateLimited(
                        "Google asks Slotbook to slow down (rate limit); it will try again.",
                        retry_after=max(wait, delay),
                    )
                self._sleep(wait)
                delay *= 2
                continue
            if response.status_code not in ok:
                self._raise_for(response)
            return response
        self._raise_for(response)
        raise AssertionError("unreachable")

    def _raise_for(self, response: requests.Response) -> None:
        status = response.status_code
        reason, message = _reason(response), _message(response)
        if status == 401:
            raise AuthFailed(
                f"Google no longer accepts Slotbook's access ({reason or status}). "
                + self._relink_message()
            )
        if status == 410 and reason in ("fullSyncRequired", "updatedMinTooLongAgo", ""):
            raise CursorExpired(
                "Google discarded the calendar's change history; Slotbook will read it again "
                "in full."
            )
        if status in (404, 410):
            raise EventMissing(f"Google could not find the calendar or event ({reason or status}).")
        if status == 403:
            raise ProviderError(
                f"Google denied access to the calendar ({reason or status}): {message}"
            )
        if status >= 500:
            raise TemporaryFailure(f"Google Calendar had an internal error ({status}).")
        raise ProviderError(f"Google Calendar refused the request ({status} {reason}): {message}")

    def _get_json(self, calendar: LinkedCalendar | None, url: str) -> dict:
        return _json(self._call(calendar, "GET", url))

    # --- token endpoint ----------------------------------------------------------------

    def _token_request(self, form: dict[str, str]) -> dict:
        """POST to GOOGLE_TOKEN_URI; the OAuth error comes back in the result, not raised."""
        return token_request(self._session, self.settings, form)

    # --- busy time ---------------------------------------------------------------------

    def read_busy(
        self, calendar: LinkedCalendar, start: datetime, end: datetime, cursor: str | None
    ) -> SyncResult:
        """events.list: in full over [start, end) with recurring events expanded, or only
        the changes since ``cursor`` (a syncToken). Either way the result's cursor is the
        ``nextSyncToken`` of the last page."""
        before = self._requests
        full = not cursor
        query: dict[str, Any] = {"singleEvents": "true", "maxResults": PAGE_SIZE}
        if full:
            query |= {"timeMin": _rfc3339(start), "timeMax": _rfc3339(end)}
        else:
            query["syncToken"] = cursor
        changes: list[EventChange] = []
        next_sync: str | None = None
        page_token: str | None = None
        while True:
            page_query = query | ({"pageToken": page_token} if page_token else {})
            url = self._url(self._calendar_path(calendar) + "/events", page_query)
            page = self._get_json(calendar, url)
            zone = self._all_day_zone(calendar, page.get("timeZone"))
            for item in page.get("items") or []:
                change = _change(item, zone, start, end)
                if change is not None:
                    changes.append(change)
            page_token = page.get("nextPageToken")
            next_sync = page.get("nextSyncToken") or next_sync
            if not page_token:
                break
        if full:
            changes = [c for c in changes if not c.deleted]
        return SyncResult(changes, next_sync, full, requests=self._requests - before)

    def _all_day_zone(self, calendar: LinkedCalendar, google_zone: Any):
        """All-day events are busy midnight to midnight in the owner's zone: their Slotbook
        Profile zone when known (as for CalDAV and ICS), else the calendar's own zone in
        Google."""
        if dict(self.settings.person_zones).get(calendar.person_id):
            return self.owner_zone(calendar)
        return _zone(google_zone)

    # --- write-back --------------------------------------------------------------------

    def create_event(self, calendar: LinkedCalendar, event: EventData) -> WrittenEvent:
        """Insert with an id derived from the booking's UID: a retry after a create that
        reached Google but not our database answers 409, and the event is updated instead
        (so is one we deleted earlier, which Google keeps as cancelled)."""
        body = _event_body(event) | {"id": event_id_for(event.uid)}
        url = self._url(self._calendar_path(calendar) + "/events")
        response = self._call(calendar, "POST", url, json_body=body, ok=(200, 201, 409))
        if response.status_code == 409:
            return self.update_event(calendar, body["id"], event, None)
        return _written(response)

    def update_event(
        self, calendar: LinkedCalendar, remote_id: str, event: EventData, etag: str | None
    ) -> WrittenEvent:
        """PATCH only our fields, guarded by the stored ETag. A 412 means someone edited the
        event since: read it, and apply our fields again on its new ETag (their other edits
        stay)."""
        url = self._url(self._calendar_path(calendar) + f"/events/{_seg(remote_id)}")
        body = _event_body(event)
        headers = {"If-Match": etag} if etag else {}
        response = self._call(
            calendar, "PATCH", url, json_body=body, headers=headers, ok=(200, 412)
        )
        if response.status_code == 412:
            current = self._get_json(calendar, url)
            headers = {"If-Match": current["etag"]} if current.get("etag") else {}
            response = self._call(calendar, "PATCH", url, json_body=body, headers=headers)
        return _written(response)

    def delete_event(self, calendar: LinkedCalendar, remote_id: str, etag: str | None) -> None:
        url = self._url(self._calendar_path(calendar) + f"/events/{_seg(remote_id)}")
        self._call(calendar, "DELETE", url, ok=(200, 204, 404, 410))


# --- personal (authorization code, refresh token) ----------------------------------------


@register
class GooglePersonalProvider(_GoogleProvider):
    """One person's own Google calendars through their refresh token (K2)."""

    kind = ConnectionKind.GOOGLE

    def _token_for(self, calendar: LinkedCalendar | None, fresh: bool) -> str:
        refresh_token = self.new_secret or self.secret
        if not refresh_token:
            raise AuthFailed("This Google account is not linked any more. " + _RELINK)
        settings = self.settings
        if not (settings.google_client_id and settings.google_client_secret):
            raise AuthFailed(
                "The organisation's Google OAuth client is not set up any more; an "
                "administrator needs to enter it on the Calendar connections screen."
            )
        key = _cache_key("refresh", settings.google_token_uri, refresh_token)
        if not fresh and (token := _cached_token(key)):
            return token
        result = self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": settings.google_client_id,
                "client_secret": settings.google_client_secret,
            }
        )
        token = _check_token_result(result, _RELINK)
        if result.get("refresh_token") and result["refresh_token"] != refresh_token:
            self.new_secret = str(result["refresh_token"])
        _keep_token(key, token, float(result.get("expires_in") or 3600))
        return token

    def _relink_message(self) -> str:
        return _RELINK

    def list_calendars(self) -> list[RemoteCalendar]:
        """The account's calendars it may read events of, the primary one first."""
        found: list[tuple[bool, RemoteCalendar]] = []
        page_token = None
        while True:
            query = {"minAccessRole": "reader", "maxResults": 250}
            if page_token:
                query["pageToken"] = page_token
            page = self._get_json(None, self._url("/users/me/calendarList", query))
            for item in page.get("items") or []:
                role = item.get("accessRole")
                if not item.get("id") or role not in READ_ROLES or item.get("deleted"):
                    continue
                name = item.get("summaryOverride") or item.get("summary") or "Calendar"
                remote = RemoteCalendar(str(item["id"]), str(name), role in WRITE_ROLES)
                found.append((bool(item.get("primary")), remote))
            page_token = page.get("nextPageToken")
            if not page_token:
                break
        found.sort(key=lambda pair: not pair[0])  # stable: primary first, then Google's order
        return [remote for _, remote in found]


_RELINK = "Please link your Google account again under Calendars."


# --- organisation (service account, domain-wide delegation) ------------------------------


@register
class GoogleOrgProvider(_GoogleProvider):
    """Every covered person's primary calendar through the organisation's service account
    acting for them (K1). The secret is the sealed JSON of ``org_secret``."""

    kind = ConnectionKind.GOOGLE_ORG

    def __init__(
        self, connection: Connection, secret: str | None, settings: ProviderSettings
    ) -> None:
        super().__init__(connection, secret, settings)
        self._account: ServiceAccount | None = None

    def _service_account(self) -> ServiceAccount:
        if self._account is None:
            info = org_secret(self.secret).get("service_account")
            if not info:
                raise AuthFailed(
                    "The Google Workspace connection has no service account key; an "
                    "administrator needs to upload one."
                )
            try:
                self._account = ServiceAccount.from_info(info)
            except ValueError as exc:
                raise AuthFailed(f"{exc} An administrator needs to upload the key again.") from exc
        return self._account

    def _relink_message(self) -> str:
        return (
            "An administrator needs to check the service account key and its domain-wide "
            "delegation, and upload the key again."
        )

    def _token_for(self, calendar: LinkedCalendar | None, fresh: bool) -> str:
        if calendar is None:
            raise ProviderError("The Google Workspace connection reads people's calendars only.")
        return self.token_as(calendar.remote_id, fresh)

    def token_as(self, email: str, fresh: bool = False) -> str:
        """An access token for acting as ``email`` (JWT-bearer grant with ``sub``)."""
        account = self._service_account()
        settings = self.settings
        key = _cache_key(
            "sa",
            settings.google_token_uri,
            account.client_email,
            account.private_key_id,
            email.lower(),
        )
        if not fresh and (token := _cached_token(key)):
            return token
        result = self._token_request(
            {"grant_type": JWT_BEARER, "assertion": self._assertion(account, email)}
        )
        error = str(result.get("error") or "")
        if not result.get("access_token") and error:
            _forget_token(key)
            raise _org_token_error(
                account, email, error, str(result.get("error_description") or "")
            )
        token = _check_token_result(result, self._relink_message())
        _keep_token(key, token, float(result.get("expires_in") or 3600))
        return token

    def _assertion(self, account: ServiceAccount, email: str) -> str:
        """The signed JWT of RFC 7523 / Google's service account flow, made by google-auth."""
        from google.auth import jwt

        now = int(time.time())
        claims = {
            "iss": account.client_email,
            "sub": email,
            "scope": " ".join(ORG_SCOPES),
            "aud": self.settings.google_token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        signer = _signer(account.private_key, account.private_key_id)
        return jwt.encode(signer, claims).decode()

    def list_calendars(self) -> list[RemoteCalendar]:
        """Checks the key opens; who is covered is decided by the organisation's domains
        (``sync``), not by a directory read, which would need an admin scope."""
        self._service_account()
        return []

    def read_busy_many(
        self, calendars: Sequence[LinkedCalendar], start: datetime, end: datetime
    ) -> dict[int, SyncResult | ProviderError]:
        """Each person on their own; one person the service account may not act for is a
        warning for them, not a failure for the others."""
        self._service_account()  # a broken key fails the whole connection, at once
        results: dict[int, SyncResult | ProviderError] = {}
        for calendar in calendars:
            try:
                results[calendar.id] = self.read_busy(calendar, start, end, calendar.sync_cursor)
            except (AuthFailed, RateLimited):
                raise
            except ProviderError as exc:
                results[calendar.id] = exc
        return results


def _org_token_error(
    account: ServiceAccount, email: str, error: str, description: str
) -> ProviderError:
    """What a refused JWT-bearer grant means. A bad key or a deleted service account fails
    the whole connection; a refusal for one person (no delegation for them, unknown to the
    domain) is theirs alone."""
    text = description.lower()
    if error == "invalid_client" or "signature" in text or "account not found" in text:
        return AuthFailed(
            f"Google refused the service account {account.client_email} ({error}). An "
            "administrator needs to check its key and upload it again."
        )
    if error == "unauthorized_client":
        return NotDelegated(
            f"The service account is not allowed to act for {email} (unauthorized_client): "
            "domain-wide delegation for its client id and the calendar scope is missing in "
            "the Google Admin console."
        )
    if error == "invalid_grant":
        return NotDelegated(
            f"Google would not let the service account act for {email} ({error}: "
            f"{_short(description)}). Check that the account exists in the Workspace domain."
        )
    if error in ("temporarily_unavailable", "server_error", "internal_failure"):
        return TemporaryFailure(f"Google's sign-in service is unavailable ({error}).")
    return ProviderError(f"Google refused the service account's request for {email} ({error}).")


# --- the secret of the organisation row ----------------------------------------------------


def org_secret(sealed_plaintext: str | None) -> dict:
    """The organisation row's opened secret: ``{"client_secret": …, "service_account": …}``
    (either may be missing)."""
    if not sealed_plaintext:
        return {}
    try:
        data = json.loads(sealed_plaintext)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- the personal link flow (used by the UI) -----------------------------------------------


def start_link(settings: ProviderSettings, login_hint: str | None = None) -> dict:
    """Begin the authorization-code flow with PKCE (S256) and ``state``, asking for offline
    access. The returned dict goes into the session sealed (it holds the code verifier);
    send the browser to its ``auth_uri``."""
    if not (settings.google_client_id and settings.google_client_secret):
        raise ProviderError(
            "Google accounts can be linked once an administrator has entered the "
            "organisation's Google OAuth client."
        )
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(24)
    query = {
        "response_type": "code",
        "client_id": settings.google_client_id,
        "redirect_uri": settings.google_redirect_uri,
        "scope": " ".join(LINK_SCOPES),
        "state": state,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",  # so linking again hands out a refresh token again
        "include_granted_scopes": "true",
    }
    if login_hint:
        query["login_hint"] = login_hint
    return {
        "state": state,
        "code_verifier": verifier,
        "redirect_uri": settings.google_redirect_uri,
        "auth_uri": settings.google_auth_uri + "?" + urlencode(query),
    }


def finish_link(
    settings: ProviderSettings, flow: Mapping[str, Any], query: Mapping[str, str]
) -> LinkedAccount:
    """Redeem the code for a refresh token (with the PKCE verifier) and learn the account's
    email from the ID token that came with it, straight from the token endpoint over TLS."""
    if not flow or query.get("state") != flow.get("state") or not query.get("code"):
        raise ProviderError(
            "The Google sign-in did not match this linking attempt. Please start again."
        )
    result = token_request(
        new_session(),
        settings,
        {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": str(flow.get("redirect_uri") or settings.google_redirect_uri),
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret,
            "code_verifier": str(flow.get("code_verifier") or ""),
        },
    )
    if result.get("error"):
        raise ProviderError(
            f"Google did not link the account ({result['error']}). Please try again."
        )
    if not result.get("refresh_token"):
        raise ProviderError("Google did not grant offline access, so the link cannot last.")
    granted = set(str(result.get("scope") or "").split())
    if granted and SCOPE_EVENTS not in granted:
        raise ProviderError(
            "Google did not grant access to your calendar's events (the box was unticked), "
            "so nothing was linked. Please link again and allow calendar access."
        )
    claims = _id_token_claims(str(result.get("id_token") or ""))
    email = str(claims.get("email") or "").strip().lower()
    if "@" not in email:
        raise ProviderError("Google did not tell Slotbook which account was linked.")
    return LinkedAccount(str(result["refresh_token"]), email, str(claims.get("name") or email))


def token_request(session: requests.Session, settings: ProviderSettings, form: dict) -> dict:
    """One POST to the token endpoint. OAuth errors (400/401 with ``error``) come back as the
    parsed body for the caller to judge; a server fault or garbage raises."""
    response = fetch(
        session,
        "POST",
        settings.google_token_uri,
        settings,
        guard=False,
        data=form,
        headers={"Accept": "application/json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code >= 500:
            raise TemporaryFailure(
                f"Google's sign-in service had an error ({response.status_code})."
            )
        raise ProviderError("Google's sign-in service sent an answer Slotbook cannot read.")
    if response.status_code != 200 and not body.get("error"):
        body["error"] = f"http_{response.status_code}"
    return body


def _check_token_result(result: Mapping[str, Any], relink: str) -> str:
    if result.get("access_token"):
        return str(result["access_token"])
    error = str(result.get("error") or "no_token")
    if error in RELINK_ERRORS:
        raise AuthFailed(f"Google refused the sign-in ({error}). {relink}")
    if error in ("temporarily_unavailable", "server_error", "internal_failure"):
        raise TemporaryFailure(f"Google's sign-in service is unavailable ({error}).")
    raise ProviderError(f"Google refused Slotbook's sign-in request ({error}).")


def _id_token_claims(id_token: str) -> dict:
    """The payload of an ID token received directly from the token endpoint over TLS
    (OpenID Connect Core 3.1.3.7 lets a client skip the signature check then)."""
    try:
        payload = id_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- helpers ---------------------------------------------------------------------------


def event_id_for(uid: str) -> str:
    """The Google event id for a booking: base32hex of a hash of its UID (only the letters
    a-v and digits Google allows, 52 characters), the same on every try."""
    digest = hashlib.sha256(uid.encode()).digest()
    return "sb" + base64.b32hexencode(digest).decode().lower().rstrip("=")


def _event_body(event: EventData) -> dict:
    return {
        "summary": event.title,
        "description": event.description,
        "location": event.location,
        "start": {"dateTime": _rfc3339(event.starts_at), "timeZone": "UTC"},
        "end": {"dateTime": _rfc3339(event.ends_at), "timeZone": "UTC"},
        "status": "tentative" if event.tentative else "confirmed",
        "transparency": "opaque",
        "extendedProperties": {"private": {"slotbookUid": event.uid}},
    }


def _written(response: requests.Response) -> WrittenEvent:
    data = _json(response)
    if not data.get("id"):
        raise ProviderError("Google Calendar did not return the event it saved.")
    return WrittenEvent(remote_id=str(data["id"]), etag=data.get("etag"))


def _change(item: Mapping[str, Any], zone, start: datetime, end: datetime) -> EventChange | None:
    """One events.list item → its change: cancelled → deleted; transparent, declined or
    outside the window → no busy time; out of office → "oof"; all-day → the whole days in
    the calendar's own zone."""
    event_id = item.get("id")
    if not event_id:
        return None
    key = str(event_id)
    if item.get("status") == "cancelled":
        return EventChange(key, deleted=True)
    if item.get("transparency") == "transparent" or _declined(item):
        return EventChange(key)
    begins, ends = _when(item.get("start"), zone), _when(item.get("end"), zone)
    if begins is None or ends is None or ends <= begins or ends <= start or begins >= end:
        return EventChange(key)
    if item.get("eventType") == "outOfOffice":
        status = BusyStatus.OUT_OF_OFFICE
    elif item.get("status") == "tentative":
        status = BusyStatus.TENTATIVE
    else:
        status = BusyStatus.BUSY
    return EventChange(key, [BusyInterval(begins, ends, status, item.get("summary") or None)])


def _declined(item: Mapping[str, Any]) -> bool:
    for attendee in item.get("attendees") or []:
        if isinstance(attendee, dict) and attendee.get("self"):
            return attendee.get("responseStatus") == "declined"
    return False


def _when(value: Any, zone) -> datetime | None:
    """Google's ``{"dateTime": RFC 3339}`` or ``{"date": "2030-03-05"}`` (all day) → UTC."""
    if not isinstance(value, dict):
        return None
    if value.get("dateTime"):
        text = str(value["dateTime"]).replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_zone(value.get("timeZone")) or zone)
        return parsed.astimezone(UTC)
    if value.get("date"):
        try:
            day = date.fromisoformat(str(value["date"]))
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return None


def _zone(name: Any):
    if not name:
        return UTC
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError):
        return UTC


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _seg(value: str) -> str:
    return quote(value, safe="@")


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError("Google Calendar sent a response Slotbook cannot read.") from exc
    if not isinstance(data, dict):
        raise ProviderError("Google Calendar sent a response Slotbook cannot read.")
    return data


def _error(response: requests.Response) -> dict:
    """Google's ``{"error": {"code", "message", "errors": [{"reason", …}], "status"}}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _reason(response: requests.Response) -> str:
    errors = _error(response).get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("reason") or "")


def _message(response: requests.Response) -> str:
    message = " ".join(str(_error(response).get("message") or response.reason or "").split())
    message = message[:300]
    return message if not message or message.endswith(".") else message + "."


def _short(text: str) -> str:
    return " ".join(text.split())[:120]


def _jitter(delay: float) -> float:
    return delay * (0.5 + random.random())  # spreading retries, not security


__all__ = [
    "GoogleOrgProvider",
    "GooglePersonalProvider",
    "LinkedAccount",
    "NotDelegated",
    "ServiceAccount",
    "event_id_for",
    "finish_link",
    "org_secret",
    "start_link",
]
