"""A local stand-in for Google's OAuth 2.0 server and the Calendar API v3, over HTTPS.

Google cannot be reached from the test machine, so this server speaks the documented wire
protocol instead, at the three addresses Slotbook is configured with (``GOOGLE_AUTH_URI``,
``GOOGLE_TOKEN_URI``, ``GOOGLE_CALENDAR_API_URL``):

* OAuth 2.0: the authorization endpoint (code flow, PKCE S256 required, ``state`` echoed,
  ``access_type=offline``, ``access_denied`` when the person declines), the token endpoint
  (``authorization_code`` with ``code_verifier``, ``refresh_token``, and the JWT-bearer grant
  of service accounts with ``sub``, the RS256 signature checked against the key this server
  made), and Google's error bodies (``{"error": "invalid_grant", "error_description": …}``);
* Calendar API v3: ``users/me/calendarList`` (``pageToken``), ``events.list`` (``timeMin`` /
  ``timeMax``, ``singleEvents`` expansion of daily/weekly recurrences, ``pageToken``,
  ``nextSyncToken``, ``syncToken`` answering only changes and 410 ``fullSyncRequired`` once
  tokens are invalidated), ``freeBusy``, events get/insert/patch/delete with ETags,
  ``If-Match`` and 412, client-chosen ids (base32hex, 5–1024 characters) and 409 for a
  duplicate, and ``{"error": {"errors": [{"domain", "reason", "message"}], "code",
  "message"}}`` bodies; throttling as 429 or 403 ``rateLimitExceeded`` /
  ``userRateLimitExceeded`` (with or without Retry-After) and 5xx with an HTML body.

State is in memory and changed through plain methods (``add_account``, ``add_event``,
``edit_event``, ``throttle`` …); ``requests`` logs every call for assertions.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.graph_server import TLSFiles

API_PREFIX = "/calendar/v3"
AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
TOKEN_LIFETIME = 3599


# --- state -----------------------------------------------------------------------------


@dataclass
class FakeCalendar:
    id: str
    owner: str
    summary: str
    access_role: str = "owner"
    primary: bool = False
    time_zone: str = "Europe/London"


@dataclass
class FakeEvent:
    id: str
    calendar_id: str
    summary: str
    start: datetime | date  # aware UTC, or a date for all-day events
    end: datetime | date
    seq: int
    status: str = "confirmed"
    transparency: str = "opaque"
    event_type: str = "default"
    attendees: list = field(default_factory=list)
    daily: int = 0  # > 0: a daily recurrence with this COUNT
    weekly: int = 0
    description: str = ""
    location: str = ""
    extra: dict = field(default_factory=dict)  # other fields (hand edits, extendedProperties)
    etag_value: str = ""

    @property
    def etag(self) -> str:
        return f'"{self.etag_value}"'

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass
class AccessToken:
    user: str
    scopes: set[str]
    expires: float
    service_account: bool = False


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    challenge: str
    user: str
    scopes: set[str]
    offline: bool


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    if_match: str | None = None
    body: dict | None = None  # Calendar API JSON bodies only (never token forms: secrets)
    form: dict | None = None  # token endpoint form, with secret values masked


class ApiError(Exception):
    """Answer with Calendar API's error body."""

    def __init__(
        self, status: int, reason: str, message: str, domain: str = "global", headers=None
    ):
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.headers = headers or {}


class OAuthError(Exception):
    """Answer with Google's OAuth error body."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


# --- the server object ------------------------------------------------------------------


class FakeGoogle:
    """Google OAuth + Calendar API for one test. Knobs are plain methods; see module doc."""

    def __init__(self, tls: TLSFiles) -> None:
        self.tls = tls
        self.ca_path = tls.ca_path
        self.client_id = f"{secrets.randbelow(10**12)}-fake.apps.googleusercontent.com"
        self.client_secret = "GOCSPX-" + secrets.token_urlsafe(18)
        self.redirect_uris: set[str] = set()
        self.calendar_page_size = 100
        self.events_page_size: int | None = None  # None: honour maxResults
        self.requests: list[LoggedRequest] = []
        self._lock = threading.RLock()
        # Requests being answered: each is logged after its answer has gone out, so the
        # readers of the log wait for them (a test that has its answer must find it logged).
        self._answering = 0
        self._all_logged = threading.Condition(self._lock)
        self._accounts: dict[str, str] = {}  # email -> name
        self._calendars: dict[str, FakeCalendar] = {}
        self._events: dict[tuple[str, str], FakeEvent] = {}
        self._seq = 0
        self._epoch = 0
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, tuple[str, set[str]]] = {}
        self._codes: dict[str, AuthCode] = {}
        self._pages: dict[str, tuple[list[dict], int, str, str]] = {}
        self._throttle: list[tuple[int, str, str | None]] = []  # (status, reason, retry_after)
        self._html_errors: list[int] = []
        self._signed_in: str | None = None
        self._declines = False
        self._granted_override: set[str] | None = None
        # The service account: its key, the domains it may act in, and who it may not.
        self._sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sa_email = "slotbook-sync@fake-project.iam.gserviceaccount.com"
        self.sa_key_id = secrets.token_hex(20)
        self.delegated_scopes: set[str] = {SCOPE_EVENTS}
        self._not_delegated: set[str] = set()
        self._httpd: _TLSServer | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        self._httpd = _TLSServer(("127.0.0.1", 0), _Handler, context, self)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def auth_uri(self) -> str:
        return self.base_url + AUTH_PATH

    @property
    def token_uri(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    def config(self) -> dict[str, str]:
        """The three configuration variables pointing at this server."""
        return {
            "GOOGLE_AUTH_URI": self.auth_uri,
            "GOOGLE_TOKEN_URI": self.token_uri,
            "GOOGLE_CALENDAR_API_URL": self.api_url,
        }

    def provider_settings(self, **overrides):
        """``ProviderSettings`` pointing at this server with its OAuth client."""
        from app.connections.providers.base import ProviderSettings

        values = {
            "google_auth_uri": self.auth_uri,
            "google_token_uri": self.token_uri,
            "google_api_url": self.api_url,
            "google_client_id": self.client_id,
            "google_client_secret": self.client_secret,
            "google_redirect_uri": sorted(self.redirect_uris)[0] if self.redirect_uris else "",
            "timeout": 10.0,
            "max_retry_wait": 5.0,
        }
        values.update(overrides)
        return ProviderSettings(**values)

    def service_account_info(self, token_uri: str | None = None) -> dict:
        """The JSON key file Google's console would download for the service account."""
        pem = self._sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": self.sa_key_id,
            "private_key": pem,
            "client_email": self.sa_email,
            "client_id": "1" + "".join(str(secrets.randbelow(10)) for _ in range(20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
            "universe_domain": "googleapis.com",
        }

    # --- knobs: accounts, calendars, events --------------------------------------------

    def add_account(self, email: str, name: str = "", time_zone: str = "Europe/London") -> str:
        """A Google account with its primary calendar (whose id is the email)."""
        email = email.lower()
        with self._lock:
            self._accounts[email] = name or email.split("@")[0]
            self._calendars[email] = FakeCalendar(
                email, email, email, "owner", primary=True, time_zone=time_zone
            )
            return email

    def add_calendar(self, owner: str, summary: str, access_role: str = "owner") -> str:
        with self._lock:
            calendar_id = f"{secrets.token_hex(12)}@group.calendar.google.com"
            self._calendars[calendar_id] = FakeCalendar(
                calendar_id, owner.lower(), summary, access_role
            )
            return calendar_id

    def add_event(
        self,
        calendar_id: str,
        summary: str,
        start: datetime | date,
        end: datetime | date,
        **fields,
    ) -> str:
        """An event made in Google Calendar by hand (Google picks its id)."""
        with self._lock:
            event_id = secrets.token_hex(13)
            event = FakeEvent(
                id=event_id,
                calendar_id=calendar_id.lower() if "@" in calendar_id else calendar_id,
                summary=summary,
                start=_utc(start),
                end=_utc(end),
                seq=0,
            )
            for name, value in fields.items():
                setattr(event, name, value)
            self._touch(event)
            self._events[(event.calendar_id, event_id)] = event
            return event_id

    def edit_event(self, calendar_id: str, event_id: str, **changes) -> None:
        """Change an event as the Google Calendar app would: new ETag, seen by a sync."""
        with self._lock:
            event = self._events[(calendar_id, event_id)]
            for name, value in changes.items():
                if name in ("start", "end"):
                    value = _utc(value)
                if hasattr(event, name):
                    setattr(event, name, value)
                else:
                    event.extra[name] = value
            self._touch(event)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self._lock:
            event = self._events[(calendar_id, event_id)]
            event.status = "cancelled"
            self._touch(event)

    def event(self, calendar_id: str, event_id: str) -> FakeEvent:
        return self._events[(calendar_id, event_id)]

    def events_in(self, calendar_id: str, include_cancelled: bool = False) -> list[FakeEvent]:
        return [
            e
            for (cal, _), e in self._events.items()
            if cal == calendar_id and (include_cancelled or not e.cancelled)
        ]

    # --- knobs: faults and identity ----------------------------------------------------

    def throttle(
        self, times: int, status: int = 429, reason: str = "rateLimitExceeded", retry_after=None
    ) -> None:
        """Answer the next ``times`` Calendar API requests as throttled."""
        with self._lock:
            self._throttle = [(status, reason, retry_after)] * times

    def fail_with_html(self, times: int, status: int = 502) -> None:
        """The next ``times`` Calendar API requests get a 5xx with Google's HTML error page."""
        with self._lock:
            self._html_errors = [status] * times

    def revoke_refresh_tokens(self) -> None:
        """As if the person removed Slotbook's access or changed their password."""
        with self._lock:
            self._refresh.clear()
            self._access = {k: v for k, v in self._access.items() if v.service_account}

    def invalidate_sync_tokens(self) -> None:
        """Every sync token issued so far now gets 410 ``fullSyncRequired``."""
        with self._lock:
            self._epoch += 1

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token.expires = 0.0

    def sign_in_as(self, email: str) -> None:
        self._signed_in = email.lower()

    def decline_consent(self, decline: bool = True) -> None:
        self._declines = decline

    def grant_only(self, scopes: set[str] | None) -> None:
        """The person unticks scopes on the consent screen (granular consent)."""
        self._granted_override = scopes

    def deny_delegation(self, email: str) -> None:
        """The service account may not act for this one person."""
        self._not_delegated.add(email.lower())

    def issue_refresh_token(self, email: str) -> str:
        with self._lock:
            token = "1//" + secrets.token_urlsafe(40)
            self._refresh[token] = (email.lower(), {SCOPE_EVENTS, SCOPE_LIST, "email", "openid"})
            return token

    def _logged(self) -> list[LoggedRequest]:
        with self._all_logged:
            self._all_logged.wait_for(lambda: self._answering == 0, timeout=5)
            return list(self.requests)

    def api_requests(self, method: str | None = None, contains: str = "") -> list[LoggedRequest]:
        return [
            r
            for r in self._logged()
            if r.path.startswith(API_PREFIX)
            and (method is None or r.method == method)
            and contains in r.path
        ]

    def token_requests(self, grant: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self._logged()
            if r.path == TOKEN_PATH and (grant is None or (r.form or {}).get("grant_type") == grant)
        ]

    # --- internals ---------------------------------------------------------------------

    def _touch(self, event: FakeEvent) -> None:
        self._seq += 1
        event.seq = self._seq
        event.etag_value = str(3_180_000_000_000_000 + self._seq * 1000 + secrets.randbelow(999))

    def _log(self, entry: LoggedRequest) -> None:
        with self._all_logged:
            self.requests.append(entry)
            self._answering -= 1
            self._all_logged.notify_all()

    # --- OAuth -------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        """Validate an authorization request and return where the browser goes next."""
        if query.get("client_id") != self.client_id:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            raise OAuthError(400, "redirect_uri_mismatch", "Error 400: redirect_uri_mismatch")
        if query.get("response_type") != "code":
            raise OAuthError(400, "unsupported_response_type", "Invalid response_type.")
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            raise OAuthError(400, "invalid_request", "Missing code_challenge (PKCE).")
        scopes = set((query.get("scope") or "").split())
        if not scopes:
            raise OAuthError(400, "invalid_request", "Missing required parameter: scope")
        state = query.get("state")
        back = {"state": state} if state else {}
        if self._declines:
            return _with_query(redirect_uri, {"error": "access_denied", **back})
        user = self._signed_in or (query.get("login_hint") or "").lower()
        if user not in self._accounts:
            raise OAuthError(400, "invalid_request", "Couldn't find your Google Account.")
        granted = scopes if self._granted_override is None else scopes & self._granted_override
        code = "4/0A" + secrets.token_urlsafe(30)
        with self._lock:
            self._codes[code] = AuthCode(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=query["code_challenge"],
                user=user,
                scopes=granted,
                offline=query.get("access_type") == "offline",
            )
        return _with_query(redirect_uri, {"code": code, "scope": " ".join(sorted(granted)), **back})

    def token(self, form: dict[str, str]) -> dict:
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion") or "")
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        if grant == "authorization_code":
            return self._authorization_code(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant))

    def _authorization_code(self, form: dict[str, str]) -> dict:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
        if not verifier or digest.rstrip("=") != code.challenge.rstrip("="):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        result = self._user_tokens(code.user, code.scopes)
        if code.offline:
            refresh = "1//" + secrets.token_urlsafe(40)
            with self._lock:
                self._refresh[refresh] = (code.user, code.scopes)
            result["refresh_token"] = refresh
        if "openid" in code.scopes or "email" in code.scopes:
            result["id_token"] = self._id_token(code.user)
        return result

    def _refresh_grant(self, form: dict[str, str]) -> dict:
        with self._lock:
            found = self._refresh.get(form.get("refresh_token", ""))
        if found is None:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        return self._user_tokens(*found)

    def _user_tokens(self, user: str, scopes: set[str]) -> dict:
        token = "ya29." + secrets.token_urlsafe(40)
        with self._lock:
            self._access[token] = AccessToken(user, set(scopes), time.time() + TOKEN_LIFETIME)
        return {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }

    def _id_token(self, user: str) -> str:
        header = _b64(json.dumps({"alg": "RS256", "kid": "fake", "typ": "JWT"}).encode())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": self.client_id,
            "sub": str(int(hashlib.sha256(user.encode()).hexdigest()[:15], 16)),
            "email": user,
            "email_verified": True,
            "name": self._accounts.get(user, user),
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
        }
        return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'not-checked')}"

    def _jwt_bearer(self, assertion: str) -> dict:
        """Google's service account flow: an RS256 JWT signed with the account's key."""
        try:
            head, body, signature = assertion.split(".")
            header = json.loads(_unb64(head))
            claims = json.loads(_unb64(body))
        except ValueError as exc:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: malformed.") from exc
        if header.get("alg") != "RS256" or claims.get("iss") != self.sa_email:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        try:
            self._sa_key.public_key().verify(
                _unb64(signature),
                f"{head}.{body}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception as exc:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from exc
        now = time.time()
        if claims.get("aud") != self.token_uri:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token")
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)):
            raise OAuthError(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        subject = str(claims.get("sub") or "").lower()
        scopes = set(str(claims.get("scope") or "").split())
        if subject not in self._accounts:
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        if subject in self._not_delegated or not scopes or not scopes <= self.delegated_scopes:
            raise OAuthError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        token = "ya29.c." + secrets.token_urlsafe(40)
        with self._lock:
            self._access[token] = AccessToken(
                subject, scopes, time.time() + TOKEN_LIFETIME, service_account=True
            )
        return {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}

    # --- Calendar API ------------------------------------------------------------------

    def api(self, method: str, path: str, query: dict[str, str], headers, body) -> tuple:
        """(status, payload, extra headers) for one Calendar API request."""
        token = self._authenticate(headers.get("Authorization"))
        with self._lock:
            if self._throttle:
                status, reason, retry_after = self._throttle.pop(0)
                extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                domain = "usageLimits"
                raise ApiError(
                    status, reason, _RATE_MESSAGES.get(reason, "Rate Limit Exceeded"), domain, extra
                )
        parts = [unquote(p) for p in path[len(API_PREFIX) :].strip("/").split("/")]
        if parts == ["users", "me", "calendarList"] and method == "GET":
            return 200, self._calendar_list(token, query), {}
        if parts == ["freeBusy"] and method == "POST":
            return 200, self._free_busy(token, body or {}), {}
        if len(parts) >= 3 and parts[0] == "calendars" and parts[2] == "events":
            calendar = self._calendar(token, parts[1])
            if len(parts) == 3 and method == "GET":
                return 200, self._list_events(calendar, query), {}
            if len(parts) == 3 and method == "POST":
                return 200, self._insert(calendar, body or {}), {}
            if len(parts) == 4:
                return self._event_call(calendar, parts[3], method, headers, body or {})
        raise ApiError(404, "notFound", "Not Found")

    def _authenticate(self, header: str | None) -> AccessToken:
        value = (header or "").removeprefix("Bearer ").strip()
        with self._lock:
            token = self._access.get(value)
        if token is None or token.expires < time.time():
            raise ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        return token

    def _calendar(self, token: AccessToken, calendar_id: str) -> FakeCalendar:
        key = (
            calendar_id.lower()
            if "@" in calendar_id and "group." not in calendar_id
            else calendar_id
        )
        if key == "primary":
            key = token.user
        calendar = self._calendars.get(key)
        if calendar is None or calendar.owner != token.user:
            raise ApiError(404, "notFound", "Not Found")
        return calendar

    def _calendar_list(self, token: AccessToken, query: dict[str, str]) -> dict:
        if not token.scopes & {SCOPE_LIST, SCOPE_CALENDAR}:
            raise ApiError(403, "insufficientPermissions", "Insufficient Permission")
        rows = [
            {
                "kind": "calendar#calendarListEntry",
                "etag": f'"{secrets.randbelow(10**15)}"',
                "id": c.id,
                "summary": c.summary,
                "timeZone": c.time_zone,
                "accessRole": c.access_role,
                **({"primary": True} if c.primary else {}),
            }
            for c in self._calendars.values()
            if c.owner == token.user
        ]
        offset = int(query.get("pageToken") or 0)
        size = self.calendar_page_size
        page = {
            "kind": "calendar#calendarList",
            "etag": '"p1"',
            "items": rows[offset : offset + size],
        }
        if offset + size < len(rows):
            page["nextPageToken"] = str(offset + size)
        else:
            page["nextSyncToken"] = "cl-" + secrets.token_urlsafe(8)
        return page

    def _list_events(self, calendar: FakeCalendar, query: dict[str, str]) -> dict:
        if query.get("pageToken"):
            return self._serve_page(query["pageToken"])
        single = query.get("singleEvents") == "true"
        size = self.events_page_size or int(query.get("maxResults") or 250)
        if query.get("syncToken"):
            if "timeMin" in query or "timeMax" in query:
                raise ApiError(400, "invalid", "Sync token cannot be used with timeMin or timeMax.")
            epoch, seq = self._read_sync_token(query["syncToken"], calendar.id)
            if epoch != self._epoch:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            rows = [
                item
                for e in self.events_in(calendar.id, include_cancelled=True)
                if e.seq > seq
                for item in self._items(e, single, None, None, calendar)
            ]
        else:
            low = _parse_time(query["timeMin"]) if query.get("timeMin") else None
            high = _parse_time(query["timeMax"]) if query.get("timeMax") else None
            show_deleted = query.get("showDeleted") == "true"
            rows = [
                item
                for e in self.events_in(calendar.id, include_cancelled=show_deleted)
                for item in self._items(e, single, low, high, calendar)
            ]
        sync_token = self._sync_token(calendar.id, self._seq)
        page_id = secrets.token_urlsafe(12)
        with self._lock:
            self._pages[page_id] = (rows, size, sync_token, calendar.time_zone)
        return self._serve_page(f"{page_id}:0")

    def _serve_page(self, page_token: str) -> dict:
        page_id, _, offset_text = page_token.partition(":")
        with self._lock:
            found = self._pages.get(page_id)
        if found is None or not offset_text.isdigit():
            raise ApiError(400, "invalid", "Invalid page token value.")
        rows, size, sync_token, zone = found
        offset = int(offset_text)
        page = {
            "kind": "calendar#events",
            "etag": f'"{secrets.randbelow(10**15)}"',
            "summary": "calendar",
            "timeZone": zone,
            "accessRole": "owner",
            "items": rows[offset : offset + size],
        }
        if offset + size < len(rows):
            page["nextPageToken"] = f"{page_id}:{offset + size}"
        else:
            page["nextSyncToken"] = sync_token
        return page

    def _sync_token(self, calendar_id: str, seq: int) -> str:
        raw = json.dumps({"c": calendar_id, "s": seq, "e": self._epoch}).encode()
        return "CP" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _read_sync_token(self, token: str, calendar_id: str) -> tuple[int, int]:
        try:
            data = json.loads(_unb64(token.removeprefix("CP")))
            if data["c"] != calendar_id:
                raise ValueError
            return int(data["e"]), int(data["s"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "invalid", "Invalid sync token value.") from exc

    def _items(self, e: FakeEvent, single: bool, low, high, calendar: FakeCalendar) -> list[dict]:
        """The event as events.list shows it: itself, or its instances with singleEvents."""
        if e.cancelled:
            if (e.daily or e.weekly) and single:
                return [
                    {
                        "kind": "calendar#event",
                        "id": f"{e.id}_{_stamp(s)}",
                        "status": "cancelled",
                    }
                    for s, _ in self._occurrences(e, calendar)
                ]
            return [{"kind": "calendar#event", "id": e.id, "etag": e.etag, "status": "cancelled"}]
        if not (e.daily or e.weekly):
            if low is not None and not _overlaps(e.start, e.end, low, high, calendar):
                return []
            return [self._event_json(e)]
        if not single:
            return [self._event_json(e)]
        items = []
        for start, end in self._occurrences(e, calendar):
            if low is not None and not _overlaps(start, end, low, high, calendar):
                continue
            item = self._event_json(e, start, end)
            item["id"] = f"{e.id}_{_stamp(start)}"
            item["recurringEventId"] = e.id
            items.append(item)
        return items

    def _occurrences(self, e: FakeEvent, calendar: FakeCalendar):
        step = timedelta(days=1 if e.daily else 7)
        for n in range(e.daily or e.weekly):
            yield e.start + n * step, e.end + n * step

    def _event_json(self, e: FakeEvent, start=None, end=None) -> dict:
        start, end = start or e.start, end or e.end
        data = {
            "kind": "calendar#event",
            "etag": e.etag,
            "id": e.id,
            "status": e.status,
            "htmlLink": f"https://www.google.com/calendar/event?eid={e.id}",
            "created": "2030-01-01T00:00:00.000Z",
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "summary": e.summary,
            "description": e.description,
            "location": e.location,
            "start": _when(start),
            "end": _when(end),
            "iCalUID": f"{e.id}@google.com",
            "sequence": 0,
            "eventType": e.event_type,
        }
        if e.transparency != "opaque":
            data["transparency"] = e.transparency
        if e.attendees:
            data["attendees"] = e.attendees
        if e.daily or e.weekly:
            data["recurrence"] = [
                f"RRULE:FREQ={'DAILY' if e.daily else 'WEEKLY'};COUNT={e.daily or e.weekly}"
            ]
        data.update(e.extra)
        return data

    def _insert(self, calendar: FakeCalendar, body: dict) -> dict:
        event_id = str(body.get("id") or secrets.token_hex(13))
        if not EVENT_ID.match(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        with self._lock:
            if (calendar.id, event_id) in self._events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
            event = FakeEvent(
                id=event_id,
                calendar_id=calendar.id,
                summary="",
                start=datetime.now(UTC),
                end=datetime.now(UTC),
                seq=0,
            )
            _apply(event, body)
            if event.end <= event.start:
                raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
            self._touch(event)
            self._events[(calendar.id, event_id)] = event
            return self._event_json(event)

    def _event_call(self, calendar, event_id, method, headers, body) -> tuple:
        with self._lock:
            event = self._events.get((calendar.id, event_id))
            if event is None:
                raise ApiError(404, "notFound", "Not Found")
            if_match = headers.get("If-Match")
            if method == "GET":
                return 200, self._event_json(event), {"ETag": event.etag}
            if method == "DELETE":
                if event.cancelled:
                    raise ApiError(410, "deleted", "Resource has been deleted")
                if if_match and if_match != event.etag:
                    raise _precondition_failed()
                event.status = "cancelled"
                self._touch(event)
                return 204, None, {}
            if method in ("PATCH", "PUT"):
                if if_match and if_match != event.etag:
                    raise _precondition_failed()
                _apply(event, body)
                self._touch(event)
                return 200, self._event_json(event), {"ETag": event.etag}
        raise ApiError(405, "methodNotAllowed", "Method not allowed")

    def _free_busy(self, token: AccessToken, body: dict) -> dict:
        low, high = _parse_time(body["timeMin"]), _parse_time(body["timeMax"])
        answer: dict = {}
        for item in body.get("items") or []:
            calendar = self._calendars.get(str(item.get("id", "")).lower())
            if calendar is None:
                answer[item.get("id")] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            busy = []
            for e in self.events_in(calendar.id):
                if e.transparency == "transparent":
                    continue
                for s, t in (
                    self._occurrences(e, calendar) if (e.daily or e.weekly) else [(e.start, e.end)]
                ):
                    if _overlaps(s, t, low, high, calendar):
                        busy.append(
                            {"start": _iso(_as_dt(s, calendar)), "end": _iso(_as_dt(t, calendar))}
                        )
            answer[calendar.id] = {"busy": sorted(busy, key=lambda b: b["start"])}
        return {
            "kind": "calendar#freeBusy",
            "timeMin": _iso(low),
            "timeMax": _iso(high),
            "calendars": answer,
        }


_RATE_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
}


def _precondition_failed() -> ApiError:
    return ApiError(412, "conditionNotMet", "Precondition Failed")


def _apply(event: FakeEvent, body: dict) -> None:
    """PATCH semantics: the fields sent replace those of the event; the others stay."""
    for name, value in body.items():
        if name == "summary":
            event.summary = str(value)
        elif name == "description":
            event.description = str(value)
        elif name == "location":
            event.location = str(value)
        elif name == "status":
            event.status = str(value)
        elif name == "transparency":
            event.transparency = str(value)
        elif name in ("start", "end"):
            if "dateTime" in value:
                parsed = _parse_time(value["dateTime"])
            else:
                parsed = date.fromisoformat(value["date"])
            setattr(event, name, parsed)
        elif name != "id":
            event.extra[name] = value


# --- helpers -----------------------------------------------------------------------------


def _utc(value):
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _as_dt(value, calendar: FakeCalendar) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(calendar.time_zone))


def _overlaps(start, end, low, high, calendar: FakeCalendar) -> bool:
    s, e = _as_dt(start, calendar), _as_dt(end, calendar)
    return (high is None or s < high) and (low is None or e > low)


def _when(value) -> dict:
    if isinstance(value, datetime):
        return {"dateTime": _iso(value), "timeZone": "UTC"}
    return {"date": value.isoformat()}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ApiError(400, "badRequest", "Bad Request")
    return parsed.astimezone(UTC)


def _with_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- HTTP --------------------------------------------------------------------------------


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext, fake: FakeGoogle):
        super().__init__(address, handler)
        self.context = context
        self.fake = fake

    def finish_request(self, request, client_address) -> None:
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(wrapped, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()


HTML_ERROR = (
    "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {status} (Server Error)!!1"
    "</title><p><b>{status}.</b> <ins>That’s an error.</ins><p>The server encountered a "
    "temporary error and could not complete your request.<p>Please try again in 30 seconds. "
    "<ins>That’s all we know.</ins></html>"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _TLSServer

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        with fake._lock:
            fake._answering += 1
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body_log, form_log = 500, None, None
        try:
            if parts.path.startswith(API_PREFIX + "/"):
                status, body_log = self._api(fake, method, parts, raw)
            elif parts.path == AUTH_PATH and method == "GET":
                status = self._authorize(fake, parts)
            elif parts.path == TOKEN_PATH and method == "POST":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                form_log = {
                    k: (
                        "***"
                        if k
                        in ("client_secret", "refresh_token", "assertion", "code", "code_verifier")
                        else v
                    )
                    for k, v in form.items()
                }
                status = self._token(fake, form)
            else:
                self._send(404, b"Not Found", {"Content-Type": "text/plain"})
                status = 404
        except Exception:  # a bug in the fake: answer 500 and show it in the test output
            traceback.print_exc()
            self._send_json(500, _api_error(500, "backendError", "The fake failed."))
        finally:
            fake._log(
                LoggedRequest(
                    method,
                    parts.path,
                    parts.query,
                    status,
                    self.headers.get("If-Match"),
                    body_log,
                    form_log,
                )
            )

    def _api(self, fake: FakeGoogle, method: str, parts, raw: bytes) -> tuple[int, dict | None]:
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = None
        with fake._lock:
            html_status = fake._html_errors.pop(0) if fake._html_errors else None
        if html_status is not None:
            page = HTML_ERROR.format(status=html_status).encode()
            self._send(html_status, page, {"Content-Type": "text/html; charset=UTF-8"})
            return html_status, None
        try:
            body = json.loads(raw) if raw else None
            if raw and not isinstance(body, dict):
                raise ApiError(400, "parseError", "Parse Error")
            headers = {k: v for k, v in self.headers.items()}
            status, payload, extra = fake.api(method, parts.path, query, headers, body)
        except json.JSONDecodeError:
            status, payload, extra = 400, _api_error(400, "parseError", "Parse Error"), {}
        except ApiError as exc:
            status = exc.status
            payload, extra = (
                _api_error(exc.status, exc.reason, exc.message, exc.domain),
                exc.headers,
            )
        self._send_json(status, payload, extra)
        return status, body

    def _authorize(self, fake: FakeGoogle, parts) -> int:
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            location = fake.authorize(query)
        except OAuthError as exc:
            page = f"<html><body><h1>Access blocked: {exc.error}</h1></body></html>".encode()
            self._send(exc.status, page, {"Content-Type": "text/html; charset=utf-8"})
            return exc.status
        self._send(302, b"", {"Location": location, "Content-Type": "text/html"})
        return 302

    def _token(self, fake: FakeGoogle, form: dict) -> int:
        try:
            result = fake.token(form)
        except OAuthError as exc:
            self._send_json(exc.status, {"error": exc.error, "error_description": exc.description})
            return exc.status
        self._send_json(200, result, {"Cache-Control": "no-cache, no-store, max-age=0"})
        return 200

    def _send_json(self, status: int, payload: dict | None, headers: dict | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        extra = {"Content-Type": "application/json; charset=UTF-8"} if payload is not None else {}
        extra.update(headers or {})
        self._send(status, body, extra)

    def _send(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _api_error(status: int, reason: str, message: str, domain: str = "global") -> dict:
    """Google's JSON error body (the v1 "errors" list and the newer "status")."""
    statuses = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        410: "ABORTED",
        412: "FAILED_PRECONDITION",
        429: "RESOURCE_EXHAUSTED",
    }
    error = {
        "errors": [{"domain": domain, "reason": reason, "message": message}],
        "code": status,
        "message": message,
    }
    if status in statuses:
        error["status"] = statuses[status]
    if status == 412:
        error["errors"][0] |= {"locationType": "header", "location": "If-Match"}
    return {"error": error}


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def google_server(_graph_tls, monkeypatch) -> Iterator[FakeGoogle]:
    """A fresh fake Google (OAuth + Calendar API) whose CA ``requests`` trusts (the same
    throw-away CA as the Microsoft stand-in, so a test may use both)."""
    from app.connections.providers.google import forget_all_tokens

    server = FakeGoogle(_graph_tls)
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_path)
    forget_all_tokens()
    try:
        yield server
    finally:
        forget_all_tokens()
        server.stop()


__all__ = ["FakeGoogle", "LoggedRequest", "google_server"]
