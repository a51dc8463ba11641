"""Microsoft 365 / Outlook calendars through Microsoft Graph (K1, K2).

Two providers share the Graph plumbing here:

* ``GraphOrgProvider`` (``microsoft-org``): the organisation's app registration with client
  credentials. Each tenant user is one "calendar" (its remote id is the user's email), and busy
  time comes from ``getSchedule`` in batches of at most 20 people and windows under 62 days,
  the limits Graph documents for that call.
* ``GraphPersonalProvider`` (``microsoft``): one person's delegated link, its secret is their
  refresh token. Busy time comes from ``calendarView/delta`` so later syncs fetch only changes.

Tokens come from msal; every Graph call goes through ``app.connections.http.fetch`` so 429/503
Retry-After and back-off behave as for every other provider. The authority host and Graph base
URL come from settings (national clouds, and the local fake in tests). Neither the access
token nor the refresh token ever appears in an exception message.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import msal
import requests
from msal.exceptions import MsalServiceError

from app.connections.http import fetch, new_session, retry_after_seconds
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

DELEGATED_SCOPES = ["Calendars.ReadWrite"]
LINK_SCOPES = ["Calendars.ReadWrite", "User.Read"]  # msal adds openid, profile, offline_access
SCHEDULE_BATCH = 20  # getSchedule accepts at most 20 schedules per call
SCHEDULE_CHUNK = timedelta(days=61)  # and a window shorter than 62 days
SCHEDULE_INTERVAL = 15
DELTA_PAGE_SIZE = 50
UTC_PREFER = 'outlook.timezone="UTC"'
# Errors after which only a new link helps (revoked or expired grant, consent withdrawn,
# wrong client secret).
RELINK_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "interaction_required"}
TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error", "no_token"}
# What a write-back re-applies over an event edited by hand since (412 on If-Match).
OWNED_FIELDS = ("subject", "start", "end", "showAs")
TOKEN_RETRY_AFTER = 60.0  # seconds, when the sign-in service is busy and does not say
SHOW_AS = {
    "busy": BusyStatus.BUSY,
    "tentative": BusyStatus.TENTATIVE,
    "oof": BusyStatus.OUT_OF_OFFICE,
    "workingelsewhere": BusyStatus.BUSY,
    "unknown": BusyStatus.BUSY,  # fail closed
}


@dataclass(frozen=True)
class LinkedAccount:
    """What a finished personal link gives the UI to store."""

    refresh_token: str = field(repr=False)
    email: str
    name: str


# --- shared Graph plumbing -------------------------------------------------------------


class _GraphProvider(Provider):
    """Token handling, error mapping, paging and event bodies shared by both providers."""

    def __init__(
        self, connection: Connection, secret: str | None, settings: ProviderSettings
    ) -> None:
        super().__init__(connection, secret, settings)
        self.new_secret: str | None = None  # a rotated refresh token the sync should store
        self._token: str | None = None
        self._msal: msal.ConfidentialClientApplication | None = None
        self._session = new_session()
        self._requests = 0
        self._session.hooks["response"].append(self._count)

    # --- subclass hooks ----------------------------------------------------------------

    def _acquire_token(self, fresh: bool) -> str:
        """An access token for Graph; ``fresh`` bypasses any cached one."""
        raise NotImplementedError

    def _relink_message(self) -> str:
        raise NotImplementedError

    # --- HTTP --------------------------------------------------------------------------

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._requests += 1

    def _url(self, path: str) -> str:
        return self.settings.graph_url.rstrip("/") + path

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: dict | None = None,
        prefer: str | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
        if_match: str | None = None,
    ) -> requests.Response:
        """One Graph request with a bearer token; a 401 gets one fresh token and a retry.
        Links from responses (nextLink, deltaLink) must stay on the Graph host: the bearer
        token goes with them."""
        if not _same_origin(url, self.settings.graph_url):
            raise ProviderError(
                "Microsoft Graph sent a link to another server; Slotbook ignored it."
            )
        response = self._send(method, url, json, prefer, fresh=False, if_match=if_match)
        if response.status_code == 401:
            response = self._send(method, url, json, prefer, fresh=True, if_match=if_match)
        if response.status_code not in ok:
            self._raise_for(response)
        return response

    def _send(self, method, url, json, prefer, fresh: bool, if_match=None) -> requests.Response:
        if fresh or self._token is None:
            self._token = self._acquire_token(fresh)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if prefer:
            headers["Prefer"] = prefer
        if if_match:
            headers["If-Match"] = if_match
        return fetch(
            self._session, method, url, self.settings, guard=False, json=json, headers=headers
        )

    def _get_json(self, url: str, prefer: str | None = None) -> dict:
        return _json(self._call("GET", url, prefer=prefer))

    def _pages(self, url: str, prefer: str | None = None) -> Iterator[dict]:
        """Every item of a collection, following ``@odata.nextLink``."""
        while url:
            page = self._get_json(url, prefer)
            yield from page.get("value") or []
            url = page.get("@odata.nextLink")

    def _raise_for(self, response: requests.Response) -> None:
        code, message = _graph_error(response)
        status = response.status_code
        if status == 401:
            raise AuthFailed(
                f"Microsoft no longer accepts Slotbook's access ({code}). " + self._relink_message()
            )
        if status == 410:
            raise CursorExpired(
                "Microsoft discarded the calendar's change history; Slotbook will read it "
                "again in full."
            )
        if status == 403:
            raise ProviderError(
                f"Microsoft denied access to the calendar ({code}): {message} Check that the "
                "app registration has the calendar permissions and admin consent."
            )
        if status == 404:
            raise EventMissing(f"Microsoft could not find the calendar or event ({code}).")
        if status >= 500:
            raise TemporaryFailure(f"Microsoft Graph had an internal error ({status}).")
        raise ProviderError(f"Microsoft Graph refused the request ({status} {code}): {message}")

    # --- msal --------------------------------------------------------------------------

    def _app(self, client_id: str, secret: str, tenant: str) -> msal.ConfidentialClientApplication:
        if self._msal is None:
            self._msal = _confidential_app(self.settings, client_id, secret, tenant)
        return self._msal

    def _check_token_result(self, result: Mapping[str, Any] | None) -> str:
        """The access token from an msal result, or the matching error (never the token)."""
        if result and result.get("access_token"):
            return str(result["access_token"])
        error = (result or {}).get("error", "no_token")
        if error in RELINK_ERRORS:
            raise AuthFailed(
                f"Microsoft refused the sign-in ({error}{_aadsts(result)}). "
                + self._relink_message()
            )
        if error in TRANSIENT_ERRORS:
            raise TemporaryFailure(
                f"Microsoft sign-in failed ({error}{_aadsts(result)}); Slotbook will try again."
            )
        raise ProviderError(
            f"Microsoft refused Slotbook's sign-in request ({error}{_aadsts(result)}); the app "
            "registration may be set up differently than Slotbook expects."
        )

    # --- write-back --------------------------------------------------------------------

    def _create(self, url: str, event: EventData) -> WrittenEvent:
        body = _event_body(event)
        body["transactionId"] = event.uid  # Graph's idempotency key for retried POSTs
        return _written(self._call("POST", url, json=body, prefer=UTC_PREFER))

    def _update(self, url: str, event: EventData, etag: str | None = None) -> WrittenEvent:
        """PATCH our event, If-Match the ETag stored when we last wrote it. A 412 means it
        was edited by hand since: it is read again and only the fields Slotbook owns (time,
        title, busy status) are applied, so the person's own edits (notes, location,
        reminders, categories) survive the reschedule."""
        body = _event_body(event)
        ok = (200, 201, 204, 412)
        response = self._call("PATCH", url, json=body, prefer=UTC_PREFER, if_match=etag, ok=ok)
        if response.status_code != 412:
            return _written(response)
        current = _json(self._call("GET", url, prefer=UTC_PREFER)).get("@odata.etag")
        owned = {key: body[key] for key in OWNED_FIELDS}
        response = self._call("PATCH", url, json=owned, prefer=UTC_PREFER, if_match=current, ok=ok)
        if response.status_code == 412:
            raise TemporaryFailure(
                "The event was being edited in Outlook; Slotbook will try again."
            )
        return _written(response)

    def _delete(self, url: str) -> None:
        self._call("DELETE", url, ok=(200, 202, 204, 404, 410))


# --- organisation (client credentials, getSchedule) ------------------------------------


@register
class GraphOrgProvider(_GraphProvider):
    """The tenant's calendars through the organisation's app registration (K1)."""

    kind = ConnectionKind.MICROSOFT_ORG

    def _acquire_token(self, fresh: bool) -> str:
        conn = self.connection
        if not (conn.tenant_id and conn.client_id and self.secret):
            raise AuthFailed(
                "The Microsoft 365 connection needs a tenant id, client id and client secret."
            )
        app = self._app(conn.client_id, self.secret, conn.tenant_id)
        if fresh:
            app.remove_tokens_for_client()
        return self._check_token_result(
            _msal_call(lambda: app.acquire_token_for_client(scopes=[_default_scope(self)]))
        )

    def _relink_message(self) -> str:
        return (
            "An administrator needs to check the tenant id, client id and client secret of "
            "the Microsoft 365 connection and link it again."
        )

    def list_calendars(self) -> list[RemoteCalendar]:
        """One calendar per tenant user with a mailbox address, keyed by lower-case email."""
        url = self._url("/users?" + urlencode({"$select": "id,mail,userPrincipalName,displayName"}))
        seen: dict[str, RemoteCalendar] = {}
        for user in self._pages(url):
            email = (user.get("mail") or user.get("userPrincipalName") or "").strip().lower()
            if email and email not in seen:
                seen[email] = RemoteCalendar(email, user.get("displayName") or email)
        return list(seen.values())

    def read_busy(
        self, calendar: LinkedCalendar, start: datetime, end: datetime, cursor: str | None
    ) -> SyncResult:
        result = self.read_busy_many([calendar], start, end)[calendar.id]
        if isinstance(result, ProviderError):
            raise result
        return result

    def read_busy_many(
        self, calendars: Sequence[LinkedCalendar], start: datetime, end: datetime
    ) -> dict[int, SyncResult | ProviderError]:
        """getSchedule for everyone, 20 people and < 62 days per call. Each result is full;
        a batch's request count is put on its first calendar so the sum is the total."""
        by_email: dict[str, list[LinkedCalendar]] = {}
        for calendar in calendars:
            by_email.setdefault(calendar.remote_id.lower(), []).append(calendar)
        emails = list(by_email)
        results: dict[int, SyncResult | ProviderError] = {}
        for i in range(0, len(emails), SCHEDULE_BATCH):
            batch = emails[i : i + SCHEDULE_BATCH]
            before = self._requests
            per_email = self._read_batch(batch, start, end)
            for email in batch:
                outcome = per_email[email]
                for calendar in by_email[email]:
                    if isinstance(outcome, ProviderError):
                        results[calendar.id] = outcome
                    else:
                        results[calendar.id] = SyncResult(outcome, cursor=None, full=True)
            first = by_email[batch[0]][0]
            if isinstance(results[first.id], SyncResult):
                results[first.id].requests = self._requests - before
        return results

    def _read_batch(
        self, emails: list[str], start: datetime, end: datetime
    ) -> dict[str, list[EventChange] | ProviderError]:
        items: dict[str, Counter] = {email: Counter() for email in emails}
        errors: dict[str, ProviderError] = {}
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + SCHEDULE_CHUNK)
            try:
                schedules = self._get_schedule(emails, chunk_start, chunk_end)
            except (AuthFailed, RateLimited):
                raise  # the whole connection is affected
            except ProviderError as exc:
                return {email: exc for email in emails}
            for schedule in schedules:
                email = str(schedule.get("scheduleId") or "").lower()
                if email not in items:
                    continue
                if schedule.get("error"):
                    errors[email] = _schedule_error(email, schedule["error"])
                    continue
                chunk = Counter(_schedule_item_key(item) for item in _busy_items(schedule))
                items[email] |= chunk  # an event crossing chunks is reported by both
            chunk_start = chunk_end
        return {email: errors.get(email) or _schedule_changes(items[email]) for email in emails}

    def _get_schedule(self, emails: list[str], start: datetime, end: datetime) -> list[dict]:
        body = {
            "schedules": emails,
            "startTime": {"dateTime": _naive_utc(start), "timeZone": "UTC"},
            "endTime": {"dateTime": _naive_utc(end), "timeZone": "UTC"},
            "availabilityViewInterval": SCHEDULE_INTERVAL,
        }
        missing: dict = {}
        for anchor in emails:
            # Posted on the batch's first mailbox; one unknown to the tenant (404) would hide
            # everyone else, so the next one anchors instead.
            url = self._url(f"/users/{_seg(anchor)}/calendar/getSchedule")
            response = self._call("POST", url, json=body, prefer=UTC_PREFER, ok=(200, 404))
            if response.status_code == 200:
                return _json(response).get("value") or []
            code, message = _graph_error(response)
            missing = {"responseCode": code, "message": message}
        return [{"scheduleId": email, "error": missing} for email in emails]

    # --- write-back into the person's default calendar ---------------------------------

    def create_event(self, calendar: LinkedCalendar, event: EventData) -> WrittenEvent:
        return self._create(self._url(f"/users/{_seg(calendar.remote_id)}/calendar/events"), event)

    def update_event(
        self, calendar: LinkedCalendar, remote_id: str, event: EventData, etag: str | None
    ) -> WrittenEvent:
        return self._update(self._event_url(calendar, remote_id), event, etag)

    def delete_event(self, calendar: LinkedCalendar, remote_id: str, etag: str | None) -> None:
        self._delete(self._event_url(calendar, remote_id))

    def _event_url(self, calendar: LinkedCalendar, remote_id: str) -> str:
        return self._url(f"/users/{_seg(calendar.remote_id)}/events/{_seg(remote_id)}")

    # --- Teams meetings (T1): events with an online meeting in the organiser's mailbox ---

    def create_online_event(self, mailbox: str, body: dict) -> dict:
        """POST the event; ``body['transactionId']`` makes a retried POST return the first
        event instead of a second one. Returns Graph's event JSON (id, onlineMeeting)."""
        url = self._url(f"/users/{_seg(mailbox)}/calendar/events")
        return _json(self._call("POST", url, json=body, prefer=UTC_PREFER))

    def update_online_event(self, mailbox: str, event_id: str, body: dict) -> dict:
        url = self._url(f"/users/{_seg(mailbox)}/events/{_seg(event_id)}")
        return _json(self._call("PATCH", url, json=body, prefer=UTC_PREFER))

    def cancel_online_event(self, mailbox: str, event_id: str, comment: str) -> None:
        """The organiser cancels: Microsoft sends the attendees the cancellation. An event
        already gone is not an error."""
        url = self._url(f"/users/{_seg(mailbox)}/events/{_seg(event_id)}/cancel")
        self._call("POST", url, json={"comment": comment}, ok=(200, 202, 204, 404, 410))

    def find_online_meeting_id(self, mailbox: str, join_url: str) -> str | None:
        """The onlineMeeting behind a join URL (its attendance reports hang off it)."""
        escaped = join_url.replace("'", "''")
        query = urlencode({"$filter": f"JoinWebUrl eq '{escaped}'"}, quote_via=quote)
        page = self._get_json(self._url(f"/users/{_seg(mailbox)}/onlineMeetings?{query}"))
        found = page.get("value") or []
        return str(found[0]["id"]) if found and found[0].get("id") else None


# --- personal (delegated, calendarView delta) ------------------------------------------


@register
class GraphPersonalProvider(_GraphProvider):
    """One person's own Microsoft calendars through a delegated link (K2)."""

    kind = ConnectionKind.MICROSOFT

    def _acquire_token(self, fresh: bool) -> str:
        refresh_token = self.new_secret or self.secret
        if not refresh_token:
            raise AuthFailed("This Microsoft account is not linked any more. " + _RELINK)
        if self._msal is None:
            self._msal = _personal_app(self.settings)
        app = self._msal
        result = _msal_call(
            lambda: app.acquire_token_by_refresh_token(refresh_token, scopes=DELEGATED_SCOPES)
        )
        token = self._check_token_result(result)
        rotated = result.get("refresh_token")
        if rotated and rotated != refresh_token:
            self.new_secret = rotated
        return token

    def _relink_message(self) -> str:
        return _RELINK

    def list_calendars(self) -> list[RemoteCalendar]:
        return [
            RemoteCalendar(c["id"], c.get("name") or "Calendar", bool(c.get("canEdit", True)))
            for c in self._pages(self._url("/me/calendars"))
        ]

    def read_busy(
        self, calendar: LinkedCalendar, start: datetime, end: datetime, cursor: str | None
    ) -> SyncResult:
        """calendarView delta: a full round without a cursor, only the changes with one."""
        before = self._requests
        if cursor:
            self._check_cursor(cursor)
            url, full = cursor, False
        else:
            query = urlencode({"startDateTime": _iso_z(start), "endDateTime": _iso_z(end)})
            url = self._url(f"/me/calendars/{_seg(calendar.remote_id)}/calendarView/delta?{query}")
            full = True
        changes: list[EventChange] = []
        prefer = f"{UTC_PREFER}, odata.maxpagesize={DELTA_PAGE_SIZE}"
        delta_link = None
        while url:
            page = self._get_json(url, prefer)
            changes.extend(c for c in map(_delta_change, page.get("value") or []) if c)
            url = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink") or delta_link
        if full:
            changes = [c for c in changes if not c.deleted]
        return SyncResult(changes, delta_link, full, requests=self._requests - before)

    def _check_cursor(self, cursor: str) -> None:
        """A delta link from another Graph endpoint (configuration changed) cannot be used."""
        if not _same_origin(cursor, self.settings.graph_url):
            raise CursorExpired("The saved Microsoft sync position belongs to another server.")

    def create_event(self, calendar: LinkedCalendar, event: EventData) -> WrittenEvent:
        return self._create(self._url(f"/me/calendars/{_seg(calendar.remote_id)}/events"), event)

    def update_event(
        self, calendar: LinkedCalendar, remote_id: str, event: EventData, etag: str | None
    ) -> WrittenEvent:
        return self._update(self._url(f"/me/events/{_seg(remote_id)}"), event, etag)

    def delete_event(self, calendar: LinkedCalendar, remote_id: str, etag: str | None) -> None:
        self._delete(self._url(f"/me/events/{_seg(remote_id)}"))


_RELINK = "Please link your Microsoft account again under Calendars."


# --- the personal link flow (used by the UI) -------------------------------------------


def start_link(
    settings: ProviderSettings, redirect_uri: str, login_hint: str | None = None
) -> dict:
    """Begin the authorization-code flow (PKCE, state, nonce by msal). The returned dict
    goes into the session as-is; send the browser to its ``auth_uri``."""
    app = _personal_app(settings)
    with warnings.catch_warnings():
        # msal recommends response_mode=form_post; a cross-site POST would arrive without
        # the Lax session cookie that holds this flow, so the callback takes a query string.
        warnings.filterwarnings("ignore", message="response_mode='form_post'")
        flow = _msal_call(
            lambda: app.initiate_auth_code_flow(
                LINK_SCOPES, redirect_uri=redirect_uri, login_hint=login_hint
            )
        )
    if "error" in flow or not flow.get("auth_uri"):
        raise ProviderError("Slotbook could not start the Microsoft sign-in. Please try again.")
    return flow


def finish_link(
    settings: ProviderSettings, flow: Mapping[str, Any], query_params: Mapping[str, str]
) -> LinkedAccount:
    """Redeem the code Microsoft sent back to the callback for a refresh token and the
    account's email; a mismatched state (CSRF or a stale tab) is refused."""
    app = _personal_app(settings)
    response = {key: query_params[key] for key in query_params}
    try:
        result = _msal_call(lambda: app.acquire_token_by_auth_code_flow(dict(flow), response))
    except (ValueError, RuntimeError) as exc:  # state/nonce mismatch, or a replayed callback
        raise ProviderError(
            "The Microsoft sign-in did not match this linking attempt (it may have expired or "
            "been opened twice). Please start linking again."
        ) from exc
    if "error" in result:
        if result["error"] == "access_denied":
            raise ProviderError("The Microsoft sign-in was cancelled or permission was declined.")
        raise ProviderError(
            f"Microsoft did not link the account ({result['error']}{_aadsts(result)}). "
            "Please try again."
        )
    if not result.get("refresh_token"):
        raise ProviderError("Microsoft did not grant offline access, so the link cannot last.")
    email, name = _account_identity(settings, result)
    return LinkedAccount(refresh_token=result["refresh_token"], email=email, name=name)


def _account_identity(settings: ProviderSettings, result: Mapping[str, Any]) -> tuple[str, str]:
    claims = result.get("id_token_claims") or {}
    email = claims.get("preferred_username") or claims.get("email") or ""
    name = claims.get("name") or ""
    if not email or "@" not in email:
        response = fetch(
            new_session(),
            "GET",
            settings.graph_url.rstrip("/") + "/me",
            settings,
            guard=False,
            headers={"Authorization": f"Bearer {result['access_token']}"},
        )
        if response.status_code != 200:
            raise ProviderError("Microsoft did not tell Slotbook which account was linked.")
        me = _json(response)
        email = me.get("mail") or me.get("userPrincipalName") or ""
        name = name or me.get("displayName") or ""
    return email.lower(), name or email


# --- helpers ---------------------------------------------------------------------------


def _confidential_app(
    settings: ProviderSettings, client_id: str, secret: str, tenant: str
) -> msal.ConfidentialClientApplication:
    """An msal client for this authority; instance discovery is off because the host is
    configured (national clouds, tests), and tenant discovery failures become sentences."""
    authority = f"{settings.authority_host.rstrip('/')}/{tenant}"

    def build() -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=authority,
            instance_discovery=False,
            http_client=_TokenSession(settings.timeout),
        )

    try:
        return _msal_call(build)
    except ValueError as exc:  # msal's message would echo the server's body; keep ours
        raise ProviderError(
            f"Microsoft does not recognise the tenant {tenant!r}; check the tenant id."
        ) from exc


def _personal_app(settings: ProviderSettings) -> msal.ConfidentialClientApplication:
    if not (settings.ms_client_id and settings.ms_client_secret):
        raise ProviderError(
            "Microsoft accounts can be linked once an administrator has set up the "
            "organisation's Microsoft 365 connection."
        )
    return _confidential_app(settings, settings.ms_client_id, settings.ms_client_secret, "common")


def _msal_call(call):
    """Network trouble inside msal becomes TemporaryFailure like everywhere else, and so does
    a busy or failing sign-in service: msal raises ``MsalServiceError`` for a 5xx and
    ``ValueError`` for a body that is not JSON (an HTML 503 or 429 page); the answer itself
    (``_TokenSession``) tells which, and its Retry-After how long to wait (K6)."""
    _token_answer.set(None)
    try:
        return call()
    except requests.RequestException as exc:
        raise TemporaryFailure(
            f"Could not reach the Microsoft sign-in service: {type(exc).__name__}."
        ) from exc
    except (MsalServiceError, ValueError) as exc:
        answer = _token_answer.get()
        if answer is not None:
            status, headers = answer.status_code, answer.headers
        else:  # msal replayed an error it had cached (its throttling): the status is all
            found = _HTTP_ERROR.search(str(exc)) if isinstance(exc, MsalServiceError) else None
            status, headers = (int(found.group(1)) if found else 0), {}
        if not (status >= 500 or status == 429):
            raise
        raise _sign_in_unavailable(status, headers) from exc


_HTTP_ERROR = re.compile(r"HTTP Error: (\d{3})")


_token_answer: ContextVar[requests.Response | None] = ContextVar("_token_answer", default=None)


class _TokenSession(requests.Session):
    """msal's HTTP client: a plain session with the configured timeout that remembers the
    last answer, so a failed sign-in can be told apart from a refused one."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        _token_answer.set(response)
        return response


def _sign_in_unavailable(status: int, headers: Mapping[str, str]) -> ProviderError:
    """429 and 503 are "busy, come back after Retry-After"; other 5xx back off as usual."""
    if status in (429, 503):
        wait = retry_after_seconds(headers.get("Retry-After"), TOKEN_RETRY_AFTER)
        return RateLimited(
            f"The Microsoft sign-in service is busy ({status}); Slotbook will try again.",
            retry_after=wait,
        )
    return TemporaryFailure(
        f"The Microsoft sign-in service had an internal error ({status}); Slotbook will try again."
    )


def _default_scope(provider: _GraphProvider) -> str:
    parts = urlsplit(provider.settings.graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def _aadsts(result: Mapping[str, Any] | None) -> str:
    """``, AADSTS50173`` from an identity error: enough to look up, nothing sensitive."""
    codes = (result or {}).get("error_codes") or []
    return f", AADSTS{codes[0]}" if codes else ""


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError("Microsoft Graph sent a response Slotbook cannot read.") from exc
    if not isinstance(data, dict):
        raise ProviderError("Microsoft Graph sent a response Slotbook cannot read.")
    return data


def _graph_error(response: requests.Response) -> tuple[str, str]:
    """(code, message) from Graph's ``{"error": {"code", "message"}}`` body."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or response.status_code)
    message = " ".join(str(error.get("message") or response.reason or "").split())[:300]
    if message and not message.endswith("."):
        message += "."
    return code, message


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _seg(value: str) -> str:
    return quote(value, safe="@")


def _naive_utc(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _iso_z(value: datetime) -> str:
    return _naive_utc(value) + "Z"


def _parse_graph_time(value: Mapping[str, Any] | None) -> datetime | None:
    """Graph's ``dateTimeTimeZone`` (``2024-05-01T09:00:00.0000000``, 7 decimals) → UTC."""
    if not value or not value.get("dateTime"):
        return None
    text = str(value["dateTime"])
    head, _, fraction = text.partition(".")
    try:
        parsed = datetime.fromisoformat(head)
    except ValueError:
        return None
    digits = "".join(ch for ch in fraction if ch.isdigit())
    if digits:
        parsed = parsed.replace(microsecond=int((digits + "000000")[:6]))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(str(value.get("timeZone") or "UTC")))
    return parsed.astimezone(UTC)


def _zone(name: str):
    """We ask for UTC everywhere; an IANA name is honoured, anything else read as UTC."""
    if name.upper() in ("UTC", "ETC/UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return UTC


def _status(show_as: str | None) -> BusyStatus | None:
    """Graph ``showAs``/``status`` → our status; None for free (it blocks nothing)."""
    value = (show_as or "busy").strip().lower()
    if value == "free":
        return None
    return SHOW_AS.get(value, BusyStatus.BUSY)


def _busy_items(schedule: Mapping[str, Any]) -> Iterator[dict]:
    for item in schedule.get("scheduleItems") or []:
        if isinstance(item, dict) and _status(item.get("status")) is not None:
            yield item


def _schedule_item_key(item: Mapping[str, Any]) -> tuple:
    start, end = _parse_graph_time(item.get("start")), _parse_graph_time(item.get("end"))
    return (start, end, str(_status(item.get("status"))), item.get("subject") or None)


def _schedule_changes(items: Counter) -> list[EventChange]:
    """One change per schedule item, keyed ``start|end|n`` so identical times stay apart."""
    changes = []
    taken: Counter = Counter()
    for (start, end, status, subject), count in sorted(items.items(), key=_item_order):
        if start is None or end is None or end <= start:
            continue
        for _ in range(count):
            n = taken[(start, end)]
            taken[(start, end)] += 1
            key = f"{start.isoformat()}|{end.isoformat()}|{n}"
            changes.append(EventChange(key, [BusyInterval(start, end, status, subject)]))
    return changes


def _item_order(entry: tuple[tuple, int]) -> tuple:
    (start, end, status, subject), _ = entry
    never = datetime.min.replace(tzinfo=UTC)
    return (start or never, end or never, status, subject or "")


def _schedule_error(email: str, error: Mapping[str, Any]) -> ProviderError:
    code = error.get("responseCode") or "error"
    message = " ".join(str(error.get("message") or "").split())[:200]
    return ProviderError(f"Microsoft could not read the calendar of {email} ({code}): {message}")


def _delta_change(item: Mapping[str, Any]) -> EventChange | None:
    """One delta item → its change: removed/cancelled → deleted, free → no blocks."""
    event_id = item.get("id")
    if not event_id:
        return None
    if "@removed" in item or item.get("isCancelled"):
        return EventChange(str(event_id), deleted=True)
    if item.get("type") == "seriesMaster":  # calendarView lists the occurrences themselves
        return None
    status = _status(item.get("showAs"))
    start, end = _parse_graph_time(item.get("start")), _parse_graph_time(item.get("end"))
    if status is None or start is None or end is None or end <= start:
        return EventChange(str(event_id))
    return EventChange(
        str(event_id), [BusyInterval(start, end, status, item.get("subject") or None)]
    )


def _event_body(event: EventData) -> dict:
    return {
        "subject": event.title,
        "body": {"contentType": "text", "content": event.description},
        "start": {"dateTime": _naive_utc(event.starts_at), "timeZone": "UTC"},
        "end": {"dateTime": _naive_utc(event.ends_at), "timeZone": "UTC"},
        "showAs": "tentative" if event.tentative else "busy",
        "location": {"displayName": event.location},
    }


def _written(response: requests.Response) -> WrittenEvent:
    data = _json(response)
    if not data.get("id"):
        raise ProviderError("Microsoft Graph did not return the event it saved.")
    return WrittenEvent(remote_id=str(data["id"]), etag=data.get("@odata.etag"))
