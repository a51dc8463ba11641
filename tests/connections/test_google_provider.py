"""The Google providers against the local Google OAuth + Calendar API server (issue [12]).

Everything goes over HTTPS through ``app.connections.http.fetch`` to
``tests/fakes/google_server.py``; nothing in the providers is patched. Waits are recorded
through the providers' ``_sleep`` seam instead of being slept.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from app.connections.models import BusyStatus, Connection, ConnectionKind, LinkedCalendar
from app.connections.providers.base import (
    AuthFailed,
    CursorExpired,
    EventData,
    ProviderError,
    RateLimited,
    SyncResult,
    TemporaryFailure,
)
from app.connections.providers.google import (
    GoogleOrgProvider,
    GooglePersonalProvider,
    NotDelegated,
    event_id_for,
    finish_link,
    start_link,
)

MONDAY = datetime(2030, 3, 4, tzinfo=UTC)  # a fixed future week: nothing depends on "now"
WINDOW = (MONDAY - timedelta(days=1), MONDAY + timedelta(days=30))
ADA = "ada@gmail.example"
CALLBACK = "https://slotbook.test/me/calendars/google/callback"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def personal(fake, refresh_token: str, **settings) -> GooglePersonalProvider:
    connection = Connection(id=2, kind=ConnectionKind.GOOGLE, user_id=1)
    provider = GooglePersonalProvider(connection, refresh_token, fake.provider_settings(**settings))
    provider._sleep = Sleeps()
    return provider


def org(fake, info: dict | None = None, **settings) -> GoogleOrgProvider:
    import json

    connection = Connection(id=1, kind=ConnectionKind.GOOGLE_ORG, domains=["school.example"])
    secret = json.dumps({"service_account": info or fake.service_account_info()})
    provider = GoogleOrgProvider(connection, secret, fake.provider_settings(**settings))
    provider._sleep = Sleeps()
    return provider


def calendar(n: int, remote_id: str) -> LinkedCalendar:
    return LinkedCalendar(id=n, connection_id=1, person_id=n, remote_id=remote_id)


def blocks(result: SyncResult) -> list[tuple]:
    return sorted(
        (b.starts_at, b.ends_at, b.status, b.title) for c in result.changes for b in c.blocks
    )


def booking(uid: str = "booking-17@slotbook", **fields) -> EventData:
    values = {
        "uid": uid,
        "title": "[PENDING] Forklift refresher",
        "starts_at": at(1, 9),
        "ends_at": at(1, 11),
        "tentative": True,
        "description": "Booked through Slotbook",
        "location": "Yard 2",
    }
    values.update(fields)
    return EventData(**values)


@pytest.fixture
def ada(google_server):
    google_server.add_account(ADA, "Ada Agent", time_zone="Europe/London")
    return google_server.issue_refresh_token(ADA)


# --- personal: calendars and busy time ------------------------------------------------------


def test_calendar_list_pages_primary_first_and_only_readable(google_server, ada):
    google_server.calendar_page_size = 2
    google_server.add_calendar(ADA, "Team rota", access_role="writer")
    google_server.add_calendar(ADA, "Holidays in UK", access_role="reader")
    google_server.add_calendar(ADA, "Boss (free/busy only)", access_role="freeBusyReader")

    found = personal(google_server, ada).list_calendars()

    assert [(c.name, c.writable) for c in found] == [
        (ADA, True),
        ("Team rota", True),
        ("Holidays in UK", False),
    ]
    assert found[0].remote_id == ADA
    assert len(google_server.api_requests("GET", "/calendarList")) == 2
    assert len(google_server.token_requests("refresh_token")) == 1


def test_first_read_expands_and_classifies_every_kind_of_event(google_server, ada):
    """singleEvents expansion, paging, and the A2 rules: transparent, cancelled and declined
    are free; tentative counts; out of office is "oof"; an all-day event is busy from
    midnight to midnight in the calendar owner's zone (London, summer time here)."""
    google_server.events_page_size = 3
    g = google_server
    g.add_event(ADA, "Standup", at(0, 9), at(0, 9, 15), daily=5)
    g.add_event(ADA, "Lunch (free)", at(0, 12), at(0, 13), transparency="transparent")
    g.add_event(ADA, "Maybe", at(1, 14), at(1, 15), status="tentative")
    g.add_event(
        ADA,
        "Declined review",
        at(2, 10),
        at(2, 11),
        attendees=[
            {"email": "boss@x.example", "responseStatus": "accepted"},
            {"email": ADA, "self": True, "responseStatus": "declined"},
        ],
    )
    g.add_event(ADA, "Leave", at(3, 0), at(4, 0), event_type="outOfOffice")
    g.add_event(ADA, "Conference", date(2030, 6, 3), date(2030, 6, 4))
    gone = g.add_event(ADA, "Cancelled", at(2, 15), at(2, 16))
    g.delete_event(ADA, gone)
    g.add_event(ADA, "Far away", at(60, 9), at(60, 10))

    window = (MONDAY - timedelta(days=1), MONDAY + timedelta(days=100))
    result = personal(g, ada).read_busy(calendar(1, ADA), *window, None)

    assert result.full and result.cursor
    summer_midnight = datetime(2030, 6, 2, 23, 0, tzinfo=UTC)  # 00:00 BST
    assert blocks(result) == sorted(
        [(at(d, 9), at(d, 9, 15), BusyStatus.BUSY, "Standup") for d in range(5)]
        + [
            (at(1, 14), at(1, 15), BusyStatus.TENTATIVE, "Maybe"),
            (at(3, 0), at(4, 0), BusyStatus.OUT_OF_OFFICE, "Leave"),
            (summer_midnight, summer_midnight + timedelta(days=1), BusyStatus.BUSY, "Conference"),
            (at(60, 9), at(60, 10), BusyStatus.BUSY, "Far away"),
        ]
    )
    listed = g.api_requests("GET", "/events")
    first = dict(parse_qsl(listed[0].query))
    assert first["singleEvents"] == "true" and "timeMin" in first and "timeMax" in first
    assert len(listed) == 4  # 11 items, 3 a page
    assert result.requests == 5  # and the access token
    assert all("pageToken" in r.query for r in listed[1:])


def test_incremental_read_after_edit_and_delete_touches_only_those(google_server, ada):
    g = google_server
    keep = g.add_event(ADA, "Keep", at(0, 9), at(0, 10))
    moved = g.add_event(ADA, "Moved", at(1, 9), at(1, 10))
    gone = g.add_event(ADA, "Gone", at(2, 9), at(2, 10))
    provider = personal(g, ada)
    first = provider.read_busy(calendar(1, ADA), *WINDOW, None)
    assert len(first.changes) == 3

    g.edit_event(ADA, moved, start=at(1, 14), end=at(1, 15))
    g.delete_event(ADA, gone)
    second = provider.read_busy(calendar(1, ADA), *WINDOW, first.cursor)

    assert not second.full and second.cursor and second.cursor != first.cursor
    assert {
        c.key: (c.deleted, [(b.starts_at, b.ends_at) for b in c.blocks]) for c in second.changes
    } == {
        moved: (False, [(at(1, 14), at(1, 15))]),
        gone: (True, []),
    }
    assert keep not in {c.key for c in second.changes}
    incremental = g.api_requests("GET", "/events")[-1]
    query = dict(parse_qsl(incremental.query))
    assert query["syncToken"] == first.cursor and "timeMin" not in query

    third = provider.read_busy(calendar(1, ADA), *WINDOW, second.cursor)
    assert third.changes == [] and third.requests == 1  # nothing changed: one request


def test_an_invalidated_sync_token_is_cursor_expired(google_server, ada):
    g = google_server
    g.add_event(ADA, "Keep", at(0, 9), at(0, 10))
    provider = personal(g, ada)
    first = provider.read_busy(calendar(1, ADA), *WINDOW, None)
    g.invalidate_sync_tokens()
    with pytest.raises(CursorExpired):
        provider.read_busy(calendar(1, ADA), *WINDOW, first.cursor)
    gone = g.api_requests("GET", "/events")[-1]
    assert gone.status == 410


# --- personal: write-back (K5) ------------------------------------------------------------------


def test_write_back_lifecycle_in_the_servers_state(google_server, ada):
    """Create with the id derived from the UID; a retried create never duplicates; update
    with If-Match; a 412 after a hand edit re-reads and re-applies only our fields; delete;
    and a booking brought back re-uses the same id."""
    g = google_server
    provider = personal(g, ada)
    target = calendar(1, ADA)
    event_id = event_id_for("booking-17@slotbook")
    assert event_id == event_id_for("booking-17@slotbook")
    assert set(event_id) <= set("abcdefghijklmnopqrstuv0123456789") and 5 <= len(event_id) <= 1024

    written = provider.create_event(target, booking())
    assert written.remote_id == event_id and written.etag
    stored = g.event(ADA, event_id)
    assert (stored.summary, stored.status, stored.start, stored.end) == (
        "[PENDING] Forklift refresher",
        "tentative",
        at(1, 9),
        at(1, 11),
    )
    assert stored.extra["extendedProperties"] == {"private": {"slotbookUid": "booking-17@slotbook"}}

    again = provider.create_event(target, booking())  # the retry of a create that landed
    assert again.remote_id == event_id
    assert len(g.events_in(ADA)) == 1
    assert [r.status for r in g.api_requests("POST", "/events")] == [200, 409]

    confirmed = booking(title="Forklift refresher", tentative=False)
    updated = provider.update_event(target, event_id, confirmed, again.etag)
    patch = g.api_requests("PATCH")[-1]
    assert patch.if_match == again.etag and patch.status == 200
    assert (g.event(ADA, event_id).summary, g.event(ADA, event_id).status) == (
        "Forklift refresher",
        "confirmed",
    )

    g.edit_event(ADA, event_id, colorId="5", summary="Renamed by hand")  # someone edits it
    moved = booking(
        title="Forklift refresher", tentative=False, starts_at=at(2, 9), ends_at=at(2, 11)
    )
    final = provider.update_event(target, event_id, moved, updated.etag)
    statuses = [r.status for r in g.api_requests("PATCH")[-2:]]
    assert statuses == [412, 200]
    stored = g.event(ADA, event_id)
    assert (stored.summary, stored.start, stored.extra["colorId"]) == (
        "Forklift refresher",
        at(2, 9),
        "5",  # their edit of another field survives
    )
    assert final.etag == stored.etag

    provider.delete_event(target, event_id, final.etag)
    assert g.event(ADA, event_id).cancelled and g.events_in(ADA) == []
    provider.delete_event(target, event_id, None)  # already gone: not an error (410)
    assert g.api_requests("DELETE")[-1].status == 410

    back = provider.create_event(target, confirmed)  # the booking is reinstated
    assert back.remote_id == event_id and not g.event(ADA, event_id).cancelled
    assert len(g.events_in(ADA, include_cancelled=True)) == 1


# --- faults (K6) ---------------------------------------------------------------------------------


def test_429_waits_for_retry_after(google_server, ada):
    google_server.throttle(1, status=429, retry_after=2)
    provider = personal(google_server, ada)
    provider.list_calendars()
    assert provider._sleep == [2.0]


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_403_rate_limits_back_off_with_jitter_then_give_up(google_server, ada, reason):
    google_server.throttle(1, status=403, reason=reason)
    provider = personal(google_server, ada)
    assert provider.list_calendars()  # one wait, then it worked
    assert len(provider._sleep) == 1 and 0.5 <= provider._sleep[0] <= 1.5

    google_server.throttle(10, status=403, reason=reason, retry_after=3)
    provider = personal(google_server, ada, http_attempts=3)
    with pytest.raises(RateLimited) as caught:
        provider.list_calendars()
    assert provider._sleep == [3.0, 3.0] and caught.value.retry_after >= 3
    assert "rate limit" in str(caught.value)


def test_a_long_retry_after_is_not_waited_for(google_server, ada):
    google_server.throttle(1, status=403, reason="rateLimitExceeded", retry_after=120)
    provider = personal(google_server, ada)
    with pytest.raises(RateLimited) as caught:
        provider.list_calendars()
    assert caught.value.retry_after == 120 and provider._sleep == []


def test_5xx_with_an_html_body_is_temporary(google_server, ada):
    google_server.fail_with_html(10, status=502)
    provider = personal(google_server, ada, http_attempts=2)
    with pytest.raises(TemporaryFailure) as caught:
        provider.list_calendars()
    assert "internal error (502)" in str(caught.value) and len(provider._sleep) == 1
    google_server.fail_with_html(1, status=500)
    assert personal(google_server, ada).list_calendars()  # one HTML 500, then fine


def test_a_revoked_grant_needs_relinking_and_names_no_token(google_server, ada):
    google_server.revoke_refresh_tokens()
    with pytest.raises(AuthFailed) as caught:
        personal(google_server, ada).list_calendars()
    assert "invalid_grant" in str(caught.value) and "link your Google account again" in str(
        caught.value
    )
    assert ada not in str(caught.value)


def test_an_expired_access_token_is_renewed_once(google_server, ada):
    provider = personal(google_server, ada)
    provider.list_calendars()
    google_server.expire_access_tokens()
    provider.list_calendars()
    assert [r.status for r in google_server.api_requests()] == [200, 401, 200]
    assert len(google_server.token_requests("refresh_token")) == 2


# --- the personal link flow -----------------------------------------------------------------------


def test_link_flow_uses_pkce_state_and_offline_access(google_server):
    g = google_server
    g.add_account(ADA, "Ada Agent")
    g.redirect_uris.add(CALLBACK)
    g.sign_in_as(ADA)
    settings = g.provider_settings()
    flow = start_link(settings, login_hint=ADA)
    params = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    assert flow["auth_uri"].startswith(g.auth_uri)
    assert params["code_challenge_method"] == "S256" and params["access_type"] == "offline"
    assert params["state"] == flow["state"] and params["redirect_uri"] == CALLBACK
    assert "code_verifier" not in flow["auth_uri"] and params["login_hint"] == ADA
    assert "https://www.googleapis.com/auth/calendar.events" in params["scope"].split()

    answer = requests.get(flow["auth_uri"], allow_redirects=False, verify=g.ca_path, timeout=10)
    back = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert back["state"] == flow["state"]

    with pytest.raises(ProviderError):  # a forged state
        finish_link(settings, flow, {**back, "state": "forged"})
    tampered = {**flow, "code_verifier": "x" * 60}  # PKCE: the server checks the verifier
    with pytest.raises(ProviderError):
        finish_link(settings, tampered, back)

    answer = requests.get(flow["auth_uri"], allow_redirects=False, verify=g.ca_path, timeout=10)
    back = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    account = finish_link(settings, flow, back)
    assert (account.email, account.name) == (ADA, "Ada Agent")
    assert account.refresh_token.startswith("1//")
    assert "refresh" not in repr(account) or account.refresh_token not in repr(account)


def test_link_without_the_calendar_scope_is_refused(google_server):
    g = google_server
    g.add_account(ADA)
    g.redirect_uris.add(CALLBACK)
    g.sign_in_as(ADA)
    g.grant_only({"openid", "email"})
    settings = g.provider_settings()
    flow = start_link(settings)
    answer = requests.get(flow["auth_uri"], allow_redirects=False, verify=g.ca_path, timeout=10)
    back = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    with pytest.raises(ProviderError, match="did not grant access to your calendar"):
        finish_link(settings, flow, back)


# --- organisation: service account with domain-wide delegation ---------------------------------


def test_org_acts_for_each_person_with_a_jwt_bearer_grant(google_server):
    g = google_server
    people = [g.add_account(f"p{n}@school.example") for n in range(3)]
    g.add_event(people[1], "Moderation", at(0, 9), at(0, 10))
    provider = org(g)

    results = provider.read_busy_many([calendar(n + 1, p) for n, p in enumerate(people)], *WINDOW)

    assert blocks(results[2]) == [(at(0, 9), at(0, 10), BusyStatus.BUSY, "Moderation")]
    assert all(isinstance(r, SyncResult) and r.full and r.cursor for r in results.values())
    grants = g.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer")
    assert len(grants) == 3 and all(r.status == 200 for r in grants)

    again = org(g).read_busy_many(
        [calendar(n + 1, p) for n, p in enumerate(people)], *WINDOW
    )  # a later sync: tokens kept, only the reads
    assert len(g.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer")) == 3
    assert sum(r.requests for r in again.values()) == 3


def test_a_person_without_delegation_fails_alone(google_server):
    g = google_server
    ok, denied = g.add_account("ok@school.example"), g.add_account("no@school.example")
    g.deny_delegation(denied)
    results = org(g).read_busy_many([calendar(1, ok), calendar(2, denied)], *WINDOW)
    assert isinstance(results[1], SyncResult)
    assert isinstance(results[2], NotDelegated)
    assert "not allowed to act for no@school.example" in str(results[2])
    assert "domain-wide delegation" in str(results[2])


def test_a_key_google_does_not_accept_fails_the_whole_connection(google_server):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    g = google_server
    g.add_account("ok@school.example")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = g.service_account_info()
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(AuthFailed, match="upload it again"):
        org(g, info).read_busy_many([calendar(1, "ok@school.example")], *WINDOW)


def test_org_write_back_goes_into_the_persons_primary_calendar(google_server):
    g = google_server
    person = g.add_account("tutor@school.example")
    provider = org(g)
    written = provider.create_event(calendar(1, person), booking(tentative=False, title="Review"))
    assert g.event(person, written.remote_id).summary == "Review"
    provider.delete_event(calendar(1, person), written.remote_id, written.etag)
    assert g.events_in(person) == []


def test_free_busy_answers_as_google_does(google_server):
    """The stand-in's freeBusy (not used by the providers; see README) answers in Google's
    shape, with a per-calendar notFound error."""
    g = google_server
    person = g.add_account("tutor@school.example")
    g.add_event(person, "Busy", at(0, 9), at(0, 10))
    g.add_event(person, "Free", at(0, 11), at(0, 12), transparency="transparent")
    token = org(g).token_as(person)
    answer = requests.post(
        g.api_url + "/freeBusy",
        json={
            "timeMin": "2030-03-04T00:00:00Z",
            "timeMax": "2030-03-05T00:00:00Z",
            "items": [{"id": person}, {"id": "ghost@school.example"}],
        },
        headers={"Authorization": f"Bearer {token}"},
        verify=g.ca_path,
        timeout=10,
    ).json()
    assert answer["calendars"][person]["busy"] == [
        {"start": "2030-03-04T09:00:00Z", "end": "2030-03-04T10:00:00Z"}
    ]
    assert answer["calendars"]["ghost@school.example"]["errors"][0]["reason"] == "notFound"
