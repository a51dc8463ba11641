"""A local stand-in for the Microsoft identity platform and Microsoft Graph, over HTTPS.

Microsoft cannot be reached from the test machine, so this server speaks the documented wire
protocol instead: OpenID discovery, the v2.0 authorize and token endpoints (client credentials,
authorization code with PKCE, rotating refresh tokens, AADSTS error bodies), and the Graph
calls Slotbook makes (``/users``, ``getSchedule``, ``/me/calendars``, ``calendarView/delta``
with ``@odata.nextLink``/``@odata.deltaLink``, events CRUD, ``{"error": {"code", "message"}}``
bodies, 429 + Retry-After, 410 ``syncStateNotFound``). msal only accepts an https authority, so
the server uses a certificate from a throw-away CA; the fixture trusts it through the standard
``REQUESTS_CA_BUNDLE`` variable, as an operator with a private CA would.

State is in memory and changed through plain methods (``add_user``, ``add_event``,
``throttle``, ``revoke_refresh_tokens`` …); ``requests`` logs every call for assertions.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

GRAPH_PREFIX = "/v1.0"
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
MAX_SCHEDULES = 20
MAX_SCHEDULE_DAYS = 62
TOKEN_LIFETIME = 3599


# --- TLS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    ca_path: str
    cert_path: str
    key_path: str


def make_tls_files(directory: Path) -> TLSFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Slotbook test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(
        ca_path=str(directory / "ca.pem"),
        cert_path=str(directory / "server.pem"),
        key_path=str(directory / "server.key"),
    )
    Path(files.ca_path).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_path).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- state -----------------------------------------------------------------------------


@dataclass
class FakeUser:
    id: str
    mail: str
    name: str
    upn: str


@dataclass
class FakeCalendar:
    id: str
    owner: str
    name: str
    can_edit: bool = True
    is_default: bool = False


@dataclass
class FakeEvent:
    id: str
    owner: str
    calendar_id: str
    subject: str
    start: datetime  # aware UTC
    end: datetime
    seq: int
    show_as: str = "busy"
    is_all_day: bool = False
    is_cancelled: bool = False
    private: bool = False
    body: dict = field(default_factory=lambda: {"contentType": "text", "content": ""})
    location: str = ""
    transaction_id: str | None = None
    change_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass
class AccessToken:
    client_id: str
    user: str | None  # None: an application (client credentials) token
    scopes: set[str]
    expires: float


@dataclass
class RefreshToken:
    client_id: str
    user: str
    scopes: set[str]


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: str
    scopes: set[str]


@dataclass
class DeltaRound:
    """One round of calendarView delta pages: a snapshot served page by page."""

    calendar_id: str
    start: datetime
    end: datetime
    items: list[dict]
    page_size: int
    seq: int  # the change sequence the snapshot reflects


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    time: float  # time.monotonic() when the request arrived
    status: int
    body: dict | None = None  # a Graph request's JSON body (never identity forms: secrets)


class GraphError(Exception):
    """Answer with Graph's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class IdentityError(Exception):
    """Answer with the OAuth error body Microsoft identity uses (RFC 6749 5.2 + AADSTS)."""

    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(description)
        self.status, self.error, self.aadsts, self.description = status, error, aadsts, description


# --- the server object ------------------------------------------------------------------


class FakeMicrosoft:
    """Microsoft identity + Graph for one test. Knobs are plain methods; see module doc."""

    def __init__(self, tls: TLSFiles) -> None:
        self.tls = tls
        self.ca_path = tls.ca_path
        self.tenant_id = str(uuid.uuid4())
        self.tenant_domain = "contoso.onmicrosoft.com"
        self.client_id = str(uuid.uuid4())
        self.client_secret = "fake-client-secret-" + secrets.token_urlsafe(8)
        self.redirect_uris: set[str] = {"https://slotbook.test/me/calendars/microsoft/callback"}
        self.users_page_size = 100
        self.calendars_page_size = 10
        self.delta_page_size = 10
        self.requests: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._users: dict[str, FakeUser] = {}
        self._calendars: dict[str, FakeCalendar] = {}
        self._events: dict[str, FakeEvent] = {}
        self._seq = 0
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._codes: dict[str, AuthCode] = {}
        self._rounds: dict[str, DeltaRound] = {}
        self._delta_states: dict[str, tuple[str, datetime, datetime, int]] = {}
        self._throttle_left = 0
        self._throttle_after = 0
        self._signed_in: str | None = None
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
    def authority_host(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        return self.base_url + GRAPH_PREFIX

    def provider_settings(self, **overrides):
        """``ProviderSettings`` pointing at this server with its app registration."""
        from app.connections.providers.base import ProviderSettings

        values = {
            "authority_host": self.authority_host,
            "graph_url": self.graph_url,
            "ms_client_id": self.client_id,
            "ms_client_secret": self.client_secret,
            "redirect_uri": sorted(self.redirect_uris)[0],
            "allow_private_urls": True,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ProviderSettings(**values)

    # --- knobs: directory and calendars ------------------------------------------------

    def add_user(self, email: str, name: str = "", upn: str | None = None) -> FakeUser:
        """A tenant user with a mailbox and its default calendar "Calendar"."""
        with self._lock:
            user = FakeUser(str(uuid.uuid4()), email, name or email.split("@")[0], upn or email)
            self._users[email.lower()] = user
            self.add_calendar(email, "Calendar", is_default=True)
            return user

    def add_user_without_mailbox(self, upn: str, name: str = "") -> FakeUser:
        """A directory user with no Exchange mailbox (``mail`` is null)."""
        with self._lock:
            user = FakeUser(str(uuid.uuid4()), "", name or upn, upn)
            self._users[upn.lower()] = user
            return user

    def add_calendar(
        self, owner: str, name: str, can_edit: bool = True, is_default: bool = False
    ) -> str:
        with self._lock:
            calendar = FakeCalendar(_graph_id(), owner.lower(), name, can_edit, is_default)
            self._calendars[calendar.id] = calendar
            return calendar.id

    def calendar_id(self, owner: str, name: str | None = None) -> str:
        """The id of a user's calendar by name (default calendar when ``name`` is None)."""
        for calendar in self._calendars.values():
            if calendar.owner != owner.lower():
                continue
            if (name is None and calendar.is_default) or calendar.name == name:
                return calendar.id
        raise KeyError(f"{owner} has no calendar {name!r}")

    def add_event(
        self,
        owner: str,
        calendar: str | None,
        subject: str,
        start: datetime,
        end: datetime,
        show_as: str = "busy",
        is_all_day: bool = False,
        private: bool = False,
        is_cancelled: bool = False,
    ) -> str:
        """An event in ``calendar`` (an id or a name; None = default) as if made in Outlook."""
        with self._lock:
            calendar_id = (
                calendar if calendar in self._calendars else self.calendar_id(owner, calendar)
            )
            event = FakeEvent(
                id=_graph_id(),
                owner=owner.lower(),
                calendar_id=calendar_id,
                subject=subject,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                seq=self._next_seq(),
                show_as=show_as,
                is_all_day=is_all_day,
                private=private,
                is_cancelled=is_cancelled,
            )
            self._events[event.id] = event
            return event.id

    def update_event(self, event_id: str, **changes) -> None:
        """Change an event as Outlook would: new change key, visible to the next delta."""
        with self._lock:
            event = self._events[event_id]
            for name, value in changes.items():
                if name in ("start", "end"):
                    value = value.astimezone(UTC)
                setattr(event, name, value)
            self._touch(event)

    def delete_event(self, event_id: str) -> None:
        with self._lock:
            event = self._events[event_id]
            event.deleted = True
            self._touch(event)

    def event(self, event_id: str) -> FakeEvent:
        return self._events[event_id]

    def events_of(self, owner: str, calendar: str | None = None) -> list[FakeEvent]:
        """The owner's live events (optionally of one calendar id), oldest first."""
        return [
            e
            for e in self._events.values()
            if e.owner == owner.lower()
            and not e.deleted
            and (calendar is None or e.calendar_id == calendar)
        ]

    # --- knobs: faults and identity ----------------------------------------------------

    def throttle(self, times: int, retry_after: int) -> None:
        """Answer the next ``times`` Graph requests with 429 and ``Retry-After``."""
        with self._lock:
            self._throttle_left, self._throttle_after = times, retry_after

    def revoke_refresh_tokens(self) -> None:
        """As if the user changed their password or an admin revoked sessions."""
        with self._lock:
            self._refresh.clear()

    def invalidate_delta_tokens(self) -> None:
        """Every delta/skip token now gets 410 Gone ``syncStateNotFound``."""
        with self._lock:
            self._rounds.clear()
            self._delta_states.clear()

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token.expires = 0.0

    def sign_in_as(self, email: str) -> None:
        """Who "types their password" at the authorize endpoint (else the login hint)."""
        self._signed_in = email.lower()

    def issue_refresh_token(
        self, email: str, scopes: tuple[str, ...] = ("Calendars.ReadWrite", "User.Read")
    ) -> str:
        """A refresh token as the link flow would have produced, for tests that skip it."""
        with self._lock:
            token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[token] = RefreshToken(self.client_id, email.lower(), set(scopes))
            return token

    def graph_requests(self, method: str | None = None, contains: str = "") -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if r.path.startswith(GRAPH_PREFIX)
            and (method is None or r.method == method)
            and contains in r.path
        ]

    # --- internals ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self, event: FakeEvent) -> None:
        event.seq = self._next_seq()
        event.change_key = secrets.token_urlsafe(12)
        event.modified = datetime.now(UTC)

    def _log(self, method: str, path: str, query: str, arrived: float, status: int, body) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(method, path, query, arrived, status, body))

    # --- identity ----------------------------------------------------------------------

    def _known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (
            self.tenant_id,
            self.tenant_domain,
            "common",
            "organizations",
            "consumers",
        )

    def openid_configuration(self, tenant: str) -> dict:
        if not self._known_tenant(tenant):
            raise IdentityError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )
        base = f"{self.base_url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in ("common", "organizations") else self.tenant_id
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.base_url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.graph_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": urlsplit(self.graph_url).netloc,
        }

    def authorize(self, tenant: str, query: dict[str, str]) -> str:
        """Validate an authorize request and return the redirect (the user consents)."""
        if not self._known_tenant(tenant):
            raise IdentityError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if query.get("client_id") != self.client_id:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{query.get('client_id')}' was not found.",
            )
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            raise IdentityError(
                400,
                "invalid_request",
                50011,
                "The redirect URI specified in the request does not match the redirect URIs "
                "configured for the application.",
            )
        if query.get("response_type") != "code":
            raise IdentityError(400, "unsupported_response_type", 700054, "Use response_type=code.")
        if not query.get("state"):
            raise IdentityError(400, "invalid_request", 900144, "The request must contain state.")
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            raise IdentityError(
                400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter."
            )
        user = self._signed_in or (query.get("login_hint") or "").lower()
        if user not in self._users:
            raise IdentityError(400, "invalid_request", 50034, "The user account does not exist.")
        code = "code-" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthCode(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=query["code_challenge"],
                nonce=query.get("nonce"),
                user=user,
                scopes=_plain_scopes(query.get("scope", "")),
            )
        params = {"code": code, "state": query["state"], "session_state": str(uuid.uuid4())}
        return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)

    def token(self, tenant: str, form: dict[str, str], basic: tuple[str, str] | None) -> dict:
        if not self._known_tenant(tenant):
            raise IdentityError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != self.client_id:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if secret != self.client_secret:
            raise IdentityError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID.",
            )
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(tenant, form)
        if grant == "authorization_code":
            return self._authorization_code(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        raise IdentityError(400, "unsupported_grant_type", 70003, f"Grant {grant!r} unsupported.")

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> dict:
        if tenant.lower() in ("common", "organizations", "consumers"):
            raise IdentityError(
                400,
                "invalid_request",
                1002012,
                "The provided value for scope is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier and a "
                "specific tenant.",
            )
        scopes = form.get("scope", "").split()
        resource = urlsplit(self.graph_url)
        expected = f"{resource.scheme}://{resource.netloc}/.default"
        if scopes != [expected]:
            raise IdentityError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have "
                "a scope value with /.default suffixed to the resource identifier.",
            )
        token = self._new_access_token(None, {".default"})
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }

    def _authorization_code(self, form: dict[str, str]) -> dict:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None:
            raise IdentityError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed or is not valid.",
            )
        if form.get("redirect_uri") != code.redirect_uri:
            raise IdentityError(
                400, "invalid_grant", 50148, "The redirect_uri does not match the one requested."
            )
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if digest.rstrip(b"=").decode() != code.challenge:
            raise IdentityError(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
        return self._user_tokens(code.user, code.scopes, code.scopes, code.nonce)

    def _refresh_grant(self, form: dict[str, str]) -> dict:
        with self._lock:
            grant = self._refresh.get(form.get("refresh_token", ""))
        if grant is None:
            raise IdentityError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password.",
            )
        wanted = _plain_scopes(form.get("scope", "")) or grant.scopes
        if not wanted <= grant.scopes:
            raise IdentityError(
                400,
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application.",
            )
        return self._user_tokens(grant.user, wanted, grant.scopes, None)

    def _user_tokens(
        self, user: str, scopes: set[str], consented: set[str], nonce: str | None
    ) -> dict:
        """Access, rotated refresh and id token for a signed-in user, as AAD returns them."""
        person = self._users[user]
        access = self._new_access_token(user, scopes)
        refresh = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[refresh] = RefreshToken(self.client_id, user, set(consented))
        now = int(time.time())
        claims = {
            "aud": self.client_id,
            "iss": f"{self.base_url}/{self.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": person.name,
            "oid": person.id,
            "preferred_username": person.upn,
            "sub": hashlib.sha256(person.id.encode()).hexdigest()[:43],
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        if person.mail:
            claims["email"] = person.mail
        if nonce:
            claims["nonce"] = nonce
        client_info = {"uid": person.id, "utid": self.tenant_id}
        return {
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": _unsigned_jwt(claims),
            "client_info": _b64(json.dumps(client_info).encode()),
        }

    def _new_access_token(self, user: str | None, scopes: set[str]) -> str:
        token = "at-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access[token] = AccessToken(
                self.client_id, user, set(scopes), time.time() + TOKEN_LIFETIME
            )
        return token

    # --- Graph: authentication and throttling ------------------------------------------

    def _take_throttle(self) -> None:
        with self._lock:
            if self._throttle_left <= 0:
                return
            self._throttle_left -= 1
            after = self._throttle_after
        raise GraphError(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            {"Retry-After": str(after)},
        )

    def _authenticate(self, header: str | None) -> AccessToken:
        if not header or not header.startswith("Bearer "):
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token is empty.", _bearer_challenge()
            )
        token = self._access.get(header.removeprefix("Bearer ").strip())
        if token is None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed.",
                _bearer_challenge(),
            )
        if token.expires < time.time():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
                _bearer_challenge(),
            )
        return token

    # --- Graph: routing ----------------------------------------------------------------

    def graph(
        self, method: str, path: str, query: dict[str, str], headers, body: dict | None
    ) -> tuple[int, dict | None, dict]:
        """Serve one Graph call: (status, JSON body or None, extra headers)."""
        self._take_throttle()
        token = self._authenticate(headers.get("Authorization"))
        prefer = _parse_prefer(headers.get("Prefer", ""))
        if headers.get("If-Match"):
            prefer["if-match"] = headers["If-Match"]  # carried with the other request options
        parts = [unquote(p) for p in path.removeprefix(GRAPH_PREFIX).strip("/").split("/")]
        with self._lock:
            if parts[0] == "me":
                if token.user is None:
                    raise GraphError(
                        400,
                        "BadRequest",
                        "/me request is only valid with delegated authentication flow.",
                    )
                return self._route_mailbox(token.user, parts[1:], method, query, prefer, body)
            if parts[0] == "users":
                if len(parts) == 1 and method == "GET":
                    if token.user is not None:
                        raise _access_denied()
                    return 200, self._list_users(query), {}
                if len(parts) >= 2:
                    owner = self._resolve_user(parts[1])
                    if token.user is not None and token.user != owner:
                        raise _access_denied()
                    return self._route_mailbox(owner, parts[2:], method, query, prefer, body)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{parts[0]}'.")

    def _resolve_user(self, key: str) -> str:
        key = key.lower()
        if key in self._users:
            return key
        for email, user in self._users.items():
            if user.id == key or user.upn.lower() == key:
                return email
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")

    def _route_mailbox(self, owner, parts, method, query, prefer, body):
        tz = prefer.get("outlook.timezone", "UTC")
        route = "/".join(parts)
        if route == "" and method == "GET":
            return 200, self._user_json(owner), {}
        if len(parts) >= 3 and parts[0] == "onlineMeetings" and parts[2] == "attendanceReports":
            return self._attendance_call(owner, parts, method, query)  # T3 section below
        if route == "calendar/getSchedule" and method == "POST":
            return 200, self._get_schedule(body or {}, tz), _applied(prefer)
        if route == "calendars" and method == "GET":
            return 200, self._list_calendars(owner, query), {}
        if (
            parts[:1] == ["calendars"]
            and len(parts) == 4
            and parts[2:] == ["calendarView", "delta"]
        ):
            self._owned_calendar(owner, parts[1])
            return 200, self._delta(owner, parts[1], query, prefer), _applied(prefer)
        if route == "calendarView/delta":
            calendar = self.calendar_id(owner)
            return 200, self._delta(owner, calendar, query, prefer), _applied(prefer)
        if method == "POST" and route == "calendar/events":
            return self._create_event(owner, self.calendar_id(owner), body or {}, tz)
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "calendars"
            and parts[2] == "events"
        ):
            calendar = self._owned_calendar(owner, parts[1])
            return self._create_event(owner, calendar.id, body or {}, tz)
        if len(parts) == 2 and parts[0] == "events":
            return self._event_call(owner, parts[1], method, body, prefer, tz)
        raise GraphError(
            400, "BadRequest", f"Unsupported request: {method} {'/'.join(parts) or '(root)'}."
        )

    # --- Graph: users and calendars ----------------------------------------------------

    def _user_json(self, owner: str) -> dict:
        user = self._users[owner]
        return {
            "@odata.context": f"{self.graph_url}/$metadata#users/$entity",
            "businessPhones": [],
            "displayName": user.name,
            "givenName": user.name.split(" ")[0],
            "jobTitle": None,
            "mail": user.mail or None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-GB",
            "surname": user.name.split(" ")[-1],
            "userPrincipalName": user.upn,
            "id": user.id,
        }

    def _list_users(self, query: dict[str, str]) -> dict:
        users = sorted(self._users.values(), key=lambda u: u.upn.lower())
        rows = [
            {
                "id": u.id,
                "mail": u.mail or None,
                "userPrincipalName": u.upn,
                "displayName": u.name,
            }
            for u in users
        ]
        select = query.get("$select")
        if select:
            keep = set(select.split(","))
            rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
        return self._page(
            rows, query, "users", self.users_page_size, {"$select": select} if select else {}
        )

    def _page(self, rows: list, query: dict, path: str, default_size: int, keep: dict) -> dict:
        """Server-driven paging with an opaque ``$skiptoken``, as Graph collections do."""
        offset, size = 0, default_size
        if "$top" in query:
            size = max(1, min(999, int(query["$top"])))
        if "$skiptoken" in query:
            state = json.loads(_unb64(query["$skiptoken"]))
            offset, size = state["o"], state["n"]
        page = rows[offset : offset + size]
        result: dict = {"@odata.context": f"{self.graph_url}/$metadata#{path}", "value": page}
        if offset + size < len(rows):
            token = _b64(json.dumps({"o": offset + size, "n": size}).encode())
            params = {**keep, "$skiptoken": token}
            result["@odata.nextLink"] = f"{self.graph_url}/{path}?{urlencode(params, safe='$,')}"
        return result

    def _list_calendars(self, owner: str, query: dict[str, str]) -> dict:
        user = self._users[owner]
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "color": "auto",
                "hexColor": "",
                "isDefaultCalendar": c.is_default,
                "changeKey": secrets.token_urlsafe(8),
                "canShare": c.can_edit,
                "canViewPrivateItems": True,
                "canEdit": c.can_edit,
                "allowedOnlineMeetingProviders": ["teamsForBusiness"],
                "defaultOnlineMeetingProvider": "teamsForBusiness",
                "isTallyingResponses": True,
                "isRemovable": not c.is_default,
                "owner": {"name": user.name, "address": user.mail or user.upn},
            }
            for c in self._calendars.values()
            if c.owner == owner
        ]
        return self._page(rows, query, "me/calendars", self.calendars_page_size, {})

    def _owned_calendar(self, owner: str, calendar_id: str) -> FakeCalendar:
        calendar = self._calendars.get(calendar_id)
        if calendar is None or calendar.owner != owner:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return calendar

    # --- Graph: getSchedule ------------------------------------------------------------

    def _get_schedule(self, body: dict, tz: str) -> dict:
        body = {k.lower(): v for k, v in body.items()}
        schedules = body.get("schedules")
        if not isinstance(schedules, list) or not schedules:
            raise GraphError(400, "ErrorInvalidParameter", "The schedules parameter is required.")
        if len(schedules) > MAX_SCHEDULES:
            raise GraphError(
                400,
                "ErrorInvalidParameter",
                f"The number of schedules requested ({len(schedules)}) exceeds the maximum "
                f"of {MAX_SCHEDULES}.",
            )
        start = _parse_time_zone_value(body.get("starttime"))
        end = _parse_time_zone_value(body.get("endtime"))
        if end <= start:
            raise GraphError(400, "ErrorInvalidParameter", "The end time must follow the start.")
        if end - start >= timedelta(days=MAX_SCHEDULE_DAYS):
            raise GraphError(
                400,
                "ErrorInvalidParameter",
                f"The requested time duration specified is too long. The maximum is "
                f"{MAX_SCHEDULE_DAYS} days.",
            )
        interval = int(body.get("availabilityviewinterval") or 30)
        if not 5 <= interval <= 1440:
            raise GraphError(
                400, "ErrorInvalidParameter", "availabilityViewInterval must be 5 to 1440."
            )
        value = [self._schedule(str(s), start, end, interval, tz) for s in schedules]
        return {
            "@odata.context": f"{self.graph_url}/$metadata#Collection"
            "(microsoft.graph.scheduleInformation)",
            "value": value,
        }

    def _schedule(self, email: str, start: datetime, end: datetime, interval: int, tz: str):
        owner = email.lower()
        user = self._users.get(owner)
        if user is None or not user.mail:
            return {
                "scheduleId": email,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {
                    "message": "Not a valid mailbox or the mailbox was not found.",
                    "responseCode": "ErrorMailRecipientNotFound",
                },
            }
        events = sorted(
            (
                e
                for e in self._events.values()
                if e.owner == owner
                and not e.deleted
                and not e.is_cancelled
                and e.start < end
                and e.end > start
            ),
            key=lambda e: (e.start, e.end),
        )
        items = []
        for e in events:
            item = {
                "isPrivate": e.private,
                "status": e.show_as,
                "isMeeting": False,
                "isRecurring": False,
                "isException": False,
                "isReminderSet": True,
                "start": _dt_tz(e.start, tz),
                "end": _dt_tz(e.end, tz),
            }
            if not e.private:
                item["subject"] = e.subject
                item["location"] = e.location
            items.append(item)
        return {
            "scheduleId": email,
            "availabilityView": _availability_view(events, start, end, interval),
            "scheduleItems": items,
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": "UTC"},
            },
        }

    # --- Graph: calendarView delta -----------------------------------------------------

    def _delta(self, owner: str, calendar_id: str, query: dict, prefer: dict) -> dict:
        tz = prefer.get("outlook.timezone", "UTC")
        page_size = min(self.delta_page_size, int(prefer.get("odata.maxpagesize") or 10**6))
        base = f"{self.graph_url}/me/calendars/{calendar_id}/calendarView/delta"
        if "$skiptoken" in query:
            round_id, offset = _unb64(query["$skiptoken"]).split(".")
            return self._serve_round(round_id, int(offset), base)
        if "$deltatoken" in query:
            state = self._delta_states.get(query["$deltatoken"])
            if state is None or state[0] != calendar_id:
                raise _sync_state_gone()
            _, start, end, since = state
            changed = [
                e for e in self._events.values() if e.calendar_id == calendar_id and e.seq > since
            ]
            items = []
            for e in sorted(changed, key=lambda e: e.seq):
                if e.deleted or not (e.start < end and e.end > start):
                    items.append({"@removed": {"reason": "deleted"}, "id": e.id})
                else:
                    items.append(self._event_json(e, tz))
        else:
            if "startDateTime" not in query or "endDateTime" not in query:
                raise GraphError(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string "
                    "parameters StartDateTime and EndDateTime.",
                )
            start = _parse_query_time(query["startDateTime"])
            end = _parse_query_time(query["endDateTime"])
            current = [
                e
                for e in self._events.values()
                if e.calendar_id == calendar_id
                and not e.deleted
                and e.start < end
                and e.end > start
            ]
            items = [self._event_json(e, tz) for e in sorted(current, key=lambda e: e.start)]
        round_id = secrets.token_hex(8)
        self._rounds[round_id] = DeltaRound(calendar_id, start, end, items, page_size, self._seq)
        return self._serve_round(round_id, 0, base)

    def _serve_round(self, round_id: str, offset: int, base: str) -> dict:
        delta_round = self._rounds.get(round_id)
        if delta_round is None:
            raise _sync_state_gone()
        page = delta_round.items[offset : offset + delta_round.page_size]
        result: dict = {"@odata.context": f"{self.graph_url}/$metadata#Collection(event)"}
        end = offset + delta_round.page_size
        if end < len(delta_round.items):
            token = _b64(f"{round_id}.{end}".encode())
            result["@odata.nextLink"] = f"{base}?{urlencode({'$skiptoken': token}, safe='$')}"
        else:
            state_id = secrets.token_urlsafe(16)
            self._delta_states[state_id] = (
                delta_round.calendar_id,
                delta_round.start,
                delta_round.end,
                delta_round.seq,
            )
            result["@odata.deltaLink"] = f"{base}?{urlencode({'$deltatoken': state_id}, safe='$')}"
        result["value"] = page
        return result

    # --- Graph: events -----------------------------------------------------------------

    def _event_json(self, e: FakeEvent, tz: str) -> dict:
        user = self._users.get(e.owner)
        address = (user.mail or user.upn) if user else e.owner
        return {
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": e.etag,
            "id": e.id,
            "createdDateTime": _iso_z(e.created),
            "lastModifiedDateTime": _iso_z(e.modified),
            "changeKey": e.change_key,
            "categories": [],
            "transactionId": e.transaction_id,
            "originalStartTimeZone": "UTC",
            "originalEndTimeZone": "UTC",
            "iCalUId": "040000008200E00074C5B7101A82E008" + e.id[-16:],
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "subject": e.subject,
            "bodyPreview": (e.body.get("content") or "")[:255],
            "importance": "normal",
            "sensitivity": "private" if e.private else "normal",
            "isAllDay": e.is_all_day,
            "isCancelled": e.is_cancelled,
            "isOrganizer": True,
            "showAs": e.show_as,
            "type": "singleInstance",
            "body": dict(e.body),
            "start": _dt_tz(e.start, tz),
            "end": _dt_tz(e.end, tz),
            "location": {"displayName": e.location, "locationType": "default"},
            "organizer": {"emailAddress": {"name": user.name if user else "", "address": address}},
        }

    def _create_event(self, owner: str, calendar_id: str, body: dict, tz: str):
        transaction = body.get("transactionId")
        if transaction:
            for e in self._events.values():
                if e.owner == owner and e.transaction_id == transaction and not e.deleted:
                    return 201, self._event_json(e, tz), {}
        start = _parse_time_zone_value(body.get("start"))
        end = _parse_time_zone_value(body.get("end"))
        if end < start:
            raise GraphError(400, "ErrorInvalidRequest", "The end time precedes the start time.")
        event = FakeEvent(
            id=_graph_id(),
            owner=owner,
            calendar_id=calendar_id,
            subject=str(body.get("subject") or ""),
            start=start,
            end=end,
            seq=self._next_seq(),
            show_as=str(body.get("showAs") or "busy"),
            is_all_day=bool(body.get("isAllDay")),
            body=dict(body.get("body") or {"contentType": "text", "content": ""}),
            location=str((body.get("location") or {}).get("displayName") or ""),
            transaction_id=transaction,
        )
        self._events[event.id] = event
        return 201, self._event_json(event, tz), {}

    def _event_call(self, owner, event_id, method, body, prefer, tz):
        event = self._events.get(event_id)
        if event is None or event.deleted or event.owner != owner:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        if method == "GET":
            return 200, self._event_json(event, tz), {}
        if method == "DELETE":
            event.deleted = True
            self._touch(event)
            return 204, None, {}
        if method == "PATCH":
            if_match = prefer.get("if-match")
            if if_match and if_match != event.etag:
                raise GraphError(
                    412,
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the change "
                    "key passed in the request does not match the current change key for the "
                    "item.",
                )
            self._apply_patch(event, body or {})
            self._touch(event)
            return 200, self._event_json(event, tz), {}
        raise GraphError(405, "Request_BadRequest", f"{method} is not allowed on an event.")

    @staticmethod
    def _apply_patch(event: FakeEvent, body: dict) -> None:
        if "subject" in body:
            event.subject = str(body["subject"] or "")
        if "showAs" in body:
            event.show_as = str(body["showAs"])
        if "body" in body:
            event.body = dict(body["body"] or {})
        if "location" in body:
            event.location = str((body["location"] or {}).get("displayName") or "")
        if "isAllDay" in body:
            event.is_all_day = bool(body["isAllDay"])
        if "start" in body:
            event.start = _parse_time_zone_value(body["start"])
        if "end" in body:
            event.end = _parse_time_zone_value(body["end"])


# --- Graph: online meeting attendance reports (T3; the attendance helper's section) ------
#
# ``GET /users/{id}/onlineMeetings/{meetingId}/attendanceReports`` lists one
# ``meetingAttendanceReport`` per session of the meeting (none until Teams has made one), and
# ``…/attendanceReports/{reportId}/attendanceRecords`` one ``attendanceRecord`` per person, both
# paged with ``@odata.nextLink`` (``attendance_page_size``). Reports are kept by
# (organiser, meeting id); the meeting objects themselves belong to the onlineMeetings section.


@dataclass
class FakeAttendanceReport:
    id: str
    start: datetime  # aware UTC
    end: datetime
    records: list[dict]  # attendanceRecord JSON


def _attendance_state(fake: FakeMicrosoft) -> dict[tuple[str, str], list[FakeAttendanceReport]]:
    if not hasattr(fake, "_attendance_reports"):
        fake._attendance_reports = {}
    return fake._attendance_reports


def _add_attendance_report(
    self: FakeMicrosoft,
    organiser: str,
    meeting_id: str,
    start: datetime,
    end: datetime,
    people: list[tuple[str, str, int]],
) -> str:
    """A session of the meeting as Teams reports it: ``people`` are (email, role, seconds),
    role "Organizer", "Presenter" or "Attendee"; each person's intervals add up to seconds."""
    records = []
    for email, role, seconds in people:
        user = self._users.get(email.lower())
        joined = start.astimezone(UTC)
        records.append(
            {
                "id": user.id if user else email,
                "emailAddress": email,
                "totalAttendanceInSeconds": seconds,
                "role": role,
                "identity": {
                    "id": user.id if user else None,
                    "displayName": user.name if user else email.split("@")[0],
                    "tenantId": self.tenant_id if user else None,
                },
                "attendanceIntervals": [
                    {
                        "joinDateTime": _iso_z(joined),
                        "leaveDateTime": _iso_z(joined + timedelta(seconds=seconds)),
                        "durationInSeconds": seconds,
                    }
                ],
            }
        )
    report = FakeAttendanceReport(_graph_id(), start.astimezone(UTC), end.astimezone(UTC), records)
    with self._lock:
        _attendance_state(self).setdefault((organiser.lower(), meeting_id), []).append(report)
    return report.id


def _attendance_call(self: FakeMicrosoft, owner: str, parts: list[str], method: str, query):
    if method != "GET":
        raise GraphError(405, "BadRequest", f"{method} is not allowed on attendance reports.")
    reports = _attendance_state(self).get((owner, parts[1]), [])
    size = getattr(self, "attendance_page_size", 10)
    base = f"users/{owner}/onlineMeetings/{parts[1]}/attendanceReports"
    if len(parts) == 3:
        rows = [
            {
                "id": r.id,
                "totalParticipantCount": len(r.records),
                "meetingStartDateTime": _iso_z(r.start),
                "meetingEndDateTime": _iso_z(r.end),
            }
            for r in reports
        ]
        return 200, self._page(rows, query, base, size, {}), {}
    report = next((r for r in reports if r.id == parts[3]), None)
    if report is None:
        raise GraphError(404, "NotFound", "The attendance report was not found.")
    if len(parts) == 5 and parts[4] == "attendanceRecords":
        return (
            200,
            self._page(report.records, query, f"{base}/{report.id}/attendanceRecords", size, {}),
            {},
        )
    raise GraphError(400, "BadRequest", f"Unsupported request: GET {'/'.join(parts)}.")


FakeMicrosoft.add_attendance_report = _add_attendance_report
FakeMicrosoft._attendance_call = _attendance_call


# --- Graph: Teams meetings as calendar events (T1; the Teams meetings helper's section) ----
#
# An event POSTed with ``isOnlineMeeting: true`` and ``onlineMeetingProvider:
# "teamsForBusiness"`` gets an ``onlineMeeting`` (``joinUrl``) as Graph documents, and the
# meeting object behind it is found with ``GET /users/{id}/onlineMeetings?$filter=JoinWebUrl
# eq '…'``. Attendees are kept and returned; ``POST /users/{id}/events/{id}/cancel`` cancels
# the event (Microsoft tells the attendees; the stand-in keeps the comment). A retried POST
# with the same ``transactionId`` returns the first event (the base section's rule), with its
# meeting. ``fail_next(times, status)`` answers the next Graph calls with e.g. 503.


@dataclass
class FakeTeamsMeeting:
    id: str
    event_id: str
    organiser: str
    join_url: str
    attendees: list[dict]
    cancelled_comment: str | None = None


def _teams_state(fake: FakeMicrosoft) -> dict[str, FakeTeamsMeeting]:
    if not hasattr(fake, "_teams_meetings"):
        fake._teams_meetings = {}  # by event id
    return fake._teams_meetings


_plain_create_event = FakeMicrosoft._create_event
_plain_event_json = FakeMicrosoft._event_json
_plain_event_call = FakeMicrosoft._event_call
_plain_route_mailbox = FakeMicrosoft._route_mailbox
_plain_graph = FakeMicrosoft.graph


def _teams_create_event(self: FakeMicrosoft, owner: str, calendar_id: str, body: dict, tz: str):
    status, payload, headers = _plain_create_event(self, owner, calendar_id, body, tz)
    meetings = _teams_state(self)
    event_id = payload["id"]
    online = body.get("isOnlineMeeting") and body.get("onlineMeetingProvider") == "teamsForBusiness"
    if online and event_id not in meetings:
        meeting_id = "MSo" + _b64(secrets.token_bytes(24))
        meetings[event_id] = FakeTeamsMeeting(
            id=meeting_id,
            event_id=event_id,
            organiser=owner,
            join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
            + secrets.token_urlsafe(16)
            + "%40thread.v2/0",
            attendees=list(body.get("attendees") or []),
        )
        payload = self._event_json(self._events[event_id], tz)
    return status, payload, headers


def _teams_event_json(self: FakeMicrosoft, e: FakeEvent, tz: str) -> dict:
    data = _plain_event_json(self, e, tz)
    meeting = _teams_state(self).get(e.id)
    data["isOnlineMeeting"] = meeting is not None
    data["onlineMeetingProvider"] = "teamsForBusiness" if meeting else "unknown"
    data["onlineMeeting"] = {"joinUrl": meeting.join_url} if meeting else None
    data["attendees"] = [
        {**a, "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}}
        for a in (meeting.attendees if meeting else [])
    ]
    return data


def _teams_event_call(self: FakeMicrosoft, owner, event_id, method, body, prefer, tz):
    result = _plain_event_call(self, owner, event_id, method, body, prefer, tz)
    meeting = _teams_state(self).get(event_id)
    if method == "PATCH" and meeting is not None and "attendees" in (body or {}):
        meeting.attendees = list(body["attendees"] or [])
        result = (result[0], self._event_json(self._events[event_id], tz), result[2])
    return result


def _teams_route_mailbox(self: FakeMicrosoft, owner, parts, method, query, prefer, body):
    if parts == ["onlineMeetings"] and method == "GET":
        wanted = _join_url_filter(query.get("$filter", ""))
        found = [
            m
            for m in _teams_state(self).values()
            if m.organiser == owner and m.join_url == wanted and m.cancelled_comment is None
        ]
        value = [
            {"id": m.id, "joinWebUrl": m.join_url, "subject": self._events[m.event_id].subject}
            for m in found
        ]
        return (
            200,
            {"@odata.context": f"{self.graph_url}/$metadata#onlineMeetings", "value": value},
            {},
        )
    if len(parts) == 3 and parts[0] == "events" and parts[2] == "cancel" and method == "POST":
        event = self._events.get(parts[1])
        if event is None or event.deleted or event.owner != owner:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        event.is_cancelled = True
        event.deleted = True  # gone from the organiser's calendar, as in Outlook
        self._touch(event)
        meeting = _teams_state(self).get(event.id)
        if meeting is not None:
            meeting.cancelled_comment = str((body or {}).get("comment") or "")
        return 202, None, {}
    return _plain_route_mailbox(self, owner, parts, method, query, prefer, body)


def _join_url_filter(text: str) -> str:
    """The URL of ``JoinWebUrl eq '…'`` (quotes doubled inside, as OData escapes them)."""
    head = "JoinWebUrl eq '"
    if not (text.startswith(head) and text.endswith("'")):
        raise GraphError(
            400, "BadRequest", "Filter on onlineMeetings supports only JoinWebUrl eq '…'."
        )
    return text[len(head) : -1].replace("''", "'")


def _teams_graph(self: FakeMicrosoft, method, path, query, headers, body):
    with self._lock:
        left = getattr(self, "_fail_left", 0)
        if left > 0:
            self._fail_left = left - 1
            raise GraphError(
                self._fail_status,
                "ServiceUnavailable",
                "Service unavailable.",
                {"Retry-After": "1"},
            )
    return _plain_graph(self, method, path, query, headers, body)


def _fail_next(self: FakeMicrosoft, times: int, status: int = 503) -> None:
    """Answer the next ``times`` Graph requests with ``status`` (5xx) and Retry-After: 1."""
    with self._lock:
        self._fail_left, self._fail_status = times, status


def _teams_meetings_of(self: FakeMicrosoft, owner: str) -> list[tuple[FakeEvent, FakeTeamsMeeting]]:
    """The organiser's live Teams events with their meetings, oldest first."""
    return [
        (e, _teams_state(self)[e.id]) for e in self.events_of(owner) if e.id in _teams_state(self)
    ]


def _teams_meeting(self: FakeMicrosoft, event_id: str) -> FakeTeamsMeeting:
    return _teams_state(self)[event_id]


FakeMicrosoft._create_event = _teams_create_event
FakeMicrosoft._event_json = _teams_event_json
FakeMicrosoft._event_call = _teams_event_call
FakeMicrosoft._route_mailbox = _teams_route_mailbox
FakeMicrosoft.graph = _teams_graph
FakeMicrosoft.fail_next = _fail_next
FakeMicrosoft.teams_meetings_of = _teams_meetings_of
FakeMicrosoft.teams_meeting = _teams_meeting


# --- helpers ---------------------------------------------------------------------------


def _graph_id() -> str:
    return "AAMkAG" + secrets.token_urlsafe(30)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> str:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphError(400, "BadRequest", "The skip token is not valid.") from exc


def _unsigned_jwt(claims: dict) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _plain_scopes(scope: str) -> set[str]:
    """Scopes without OIDC ones and without the resource prefix (``https://…/x`` → ``x``)."""
    return {s.rsplit("/", 1)[-1] for s in scope.split() if s not in RESERVED_SCOPES}


def _bearer_challenge() -> dict:
    return {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}


def _access_denied() -> GraphError:
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def _sync_state_gone() -> GraphError:
    return GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found. Resync is required.",
    )


def _applied(prefer: dict) -> dict:
    applied = (
        [f'outlook.timezone="{prefer["outlook.timezone"]}"'] if "outlook.timezone" in prefer else []
    )
    if "odata.maxpagesize" in prefer:
        applied.append(f"odata.maxpagesize={prefer['odata.maxpagesize']}")
    return {"Preference-Applied": ", ".join(applied)} if applied else {}


def _parse_prefer(header: str) -> dict[str, str]:
    """``Prefer: outlook.timezone="UTC", odata.maxpagesize=50`` → dict (RFC 7240)."""
    result = {}
    for match in re.finditer(r'([\w.-]+)\s*=\s*("([^"]*)"|[^,\s]+)', header):
        result[match.group(1).lower()] = (
            match.group(3) if match.group(3) is not None else match.group(2)
        )
    return result


def _zone(name: str):
    if name.upper() in ("UTC", "ETC/UTC", "COORDINATED UNIVERSAL TIME"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GraphError(
            400, "ErrorTimeZoneNotFound", f"The specified time zone '{name}' is invalid."
        ) from exc


def _parse_time_zone_value(value) -> datetime:
    """A Graph ``dateTimeTimeZone`` object → aware UTC datetime."""
    if not isinstance(value, dict) or "dateTime" not in value:
        raise GraphError(400, "ErrorInvalidRequest", "A dateTimeTimeZone value is missing.")
    text = str(value["dateTime"])
    head, _, frac = text.partition(".")
    try:
        naive = datetime.fromisoformat(head)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"Cannot parse '{text}'.") from exc
    if frac:
        naive = naive.replace(microsecond=int((frac.rstrip("Z") + "000000")[:6]))
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=_zone(str(value.get("timeZone") or "UTC"))).astimezone(UTC)


def _parse_query_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"Cannot parse '{text}'.") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dt_tz(value: datetime, tz: str) -> dict:
    zone = UTC
    try:
        zone = _zone(tz)
    except GraphError:
        tz = "UTC"
    local = value.astimezone(zone).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz}


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _availability_view(events, start: datetime, end: datetime, interval: int) -> str:
    codes = {"free": 0, "tentative": 1, "busy": 2, "oof": 3, "workingelsewhere": 4}
    step = timedelta(minutes=interval)
    view, slot = [], start
    while slot < end:
        level = 0
        for e in events:
            if e.start < slot + step and e.end > slot:
                level = max(level, codes.get(e.show_as.lower(), 2))
        view.append(str(level))
        slot += step
    return "".join(view)


# --- HTTP ------------------------------------------------------------------------------


class _TLSServer(ThreadingHTTPServer):
    """TLS handshake in the worker thread, so one slow client cannot stall the others."""

    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext, fake: FakeMicrosoft):
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


class _Handler(BaseHTTPRequestHandler):
    _unlogged: tuple | None = None  # the request being answered, until _send logs it
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _TLSServer

    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        arrived = time.monotonic()
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        is_graph = parts.path.startswith(GRAPH_PREFIX + "/")
        # Logged by _send just before the answer goes out: a test that has its answer must
        # find the request in the log (logging afterwards raced the test under load).
        self._unlogged = (method, parts.path, parts.query, arrived, _body_for_log(raw, is_graph))
        try:
            if is_graph:
                self._graph(fake, method, parts, raw)
            else:
                self._identity(fake, method, parts, raw)
        except Exception:  # a bug in the fake: answer 500 and show it in the test output
            traceback.print_exc()
            self._send_json(500, _graph_error("InternalServerError", "The fake failed."))
        finally:
            self._log_once(500)  # no answer was sent

    def _log_once(self, status: int) -> None:
        if self._unlogged is not None:
            method, path, query, arrived, body = self._unlogged
            self._unlogged = None
            self.server.fake._log(method, path, query, arrived, status, body)

    def _graph(self, fake: FakeMicrosoft, method: str, parts, raw: bytes) -> int:
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw) if raw else None
            if raw and not isinstance(body, dict):
                raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
            headers = {k: v for k, v in self.headers.items()}
            status, payload, extra = fake.graph(method, parts.path, query, headers, body)
        except json.JSONDecodeError:
            status, payload, extra = 400, _graph_error("BadRequest", "Invalid JSON body."), {}
        except GraphError as exc:
            status, payload, extra = exc.status, _graph_error(exc.code, exc.message), exc.headers
        self._send_json(status, payload, extra)
        return status

    def _identity(self, fake: FakeMicrosoft, method: str, parts, raw: bytes) -> int:
        segments = parts.path.strip("/").split("/")
        tenant, rest = segments[0], "/".join(segments[1:])
        try:
            if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
                self._send_json(200, fake.openid_configuration(tenant))
                return 200
            if method == "GET" and rest == "discovery/v2.0/keys":
                self._send_json(200, {"keys": []})
                return 200
            if method == "GET" and rest == "oauth2/v2.0/authorize":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                location = fake.authorize(tenant, query)
                self._send(302, b"", {"Location": location, "Content-Type": "text/html"})
                return 302
            if method == "POST" and rest == "oauth2/v2.0/token":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                result = fake.token(tenant, form, self._basic_auth())
                self._send_json(200, result, {"Cache-Control": "no-store"})
                return 200
        except IdentityError as exc:
            self._send_json(exc.status, _identity_error(exc))
            return exc.status
        self._send(404, b"Not Found", {"Content-Type": "text/plain"})
        return 404

    def _basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return unquote(user), unquote(password)

    def _send_json(self, status: int, payload: dict | None, headers: dict | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        extra = {"Content-Type": "application/json; charset=utf-8"} if payload is not None else {}
        extra.update(headers or {})
        self._send(status, body, extra)

    def _send(self, status: int, body: bytes, headers: dict) -> None:
        self._log_once(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("request-id", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _body_for_log(raw: bytes, is_graph: bool) -> dict | None:
    if not (raw and is_graph):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _graph_error(code: str, message: str) -> dict:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


def _identity_error(exc: IdentityError) -> dict:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": exc.error,
        "error_description": f"AADSTS{exc.aadsts}: {exc.description} Trace ID: {trace} "
        f"Correlation ID: {correlation} Timestamp: {stamp}",
        "error_codes": [exc.aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": "https://login.microsoftonline.com/error?code=" + str(exc.aadsts),
    }


# --- identity: a failing token endpoint ([11]; the iCalendar-correctness helper's section) -
#
# ``fail_token_endpoint(times, status, retry_after)`` answers the next ``times`` token requests
# with ``status`` and an HTML page, as the load balancers in front of the sign-in service do,
# with a Retry-After header when one is given. ``if_match_seen`` lists each PATCH's If-Match.


def _fail_token_endpoint(
    self: FakeMicrosoft, times: int, status: int = 503, retry_after: int | None = None
) -> None:
    with self._lock:
        self._token_failures = (times, status, retry_after)


def _token_failure(fake: FakeMicrosoft) -> tuple[int, int | None] | None:
    """(status, Retry-After) for this token request if it is to fail, else None."""
    with fake._lock:
        times, status, retry_after = getattr(fake, "_token_failures", (0, 503, None))
        if times <= 0:
            return None
        fake._token_failures = (times - 1, status, retry_after)
        return status, retry_after


def _identity_or_failure(self: _Handler, fake: FakeMicrosoft, method: str, parts, raw) -> int:
    failure = None
    if method == "POST" and parts.path.endswith("/oauth2/v2.0/token"):
        failure = _token_failure(fake)
    if failure is None:
        return _plain_identity(self, fake, method, parts, raw)
    status, retry_after = failure
    headers = {"Content-Type": "text/html; charset=utf-8"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    self._send(status, b"<html><body><h1>503 Service Unavailable</h1></body></html>", headers)
    return status


def _graph_noting_if_match(self: FakeMicrosoft, method, path, query, headers, body):
    """Every PATCH's If-Match header (None when absent), in order, in ``if_match_seen``."""
    if method == "PATCH":
        with self._lock:
            self.__dict__.setdefault("if_match_seen", []).append(headers.get("If-Match"))
    return _graph_before_if_match(self, method, path, query, headers, body)


_plain_identity = _Handler._identity
_Handler._identity = _identity_or_failure
_graph_before_if_match = FakeMicrosoft.graph
FakeMicrosoft.graph = _graph_noting_if_match
FakeMicrosoft.fail_token_endpoint = _fail_token_endpoint


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _graph_tls(tmp_path_factory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture
def graph_server(_graph_tls, monkeypatch) -> Iterator[FakeMicrosoft]:
    """A fresh fake Microsoft (identity + Graph) whose CA requests and msal trust."""
    server = FakeMicrosoft(_graph_tls)
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_path)
    try:
        yield server
    finally:
        server.stop()


__all__ = ["FakeMicrosoft", "LoggedRequest", "TLSFiles", "graph_server", "make_tls_files"]
