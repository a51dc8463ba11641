"""The Microsoft Graph providers against the local Microsoft identity + Graph server (K1, K2).

Everything goes over HTTPS through msal and ``app.connections.http.fetch`` to
``tests/fakes/graph_server.py``; nothing in the providers is patched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
)
from app.connections.providers.graph import (
    GraphOrgProvider,
    GraphPersonalProvider,
    finish_link,
    start_link,
)

MONDAY = datetime(2030, 3, 4, tzinfo=UTC)  # a fixed future week: nothing depends on "now"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def org_provider(fake, secret: str | None = None) -> GraphOrgProvider:
    connection = Connection(
        id=1,
        kind=ConnectionKind.MICROSOFT_ORG,
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
    )
    secret = fake.client_secret if secret is None else secret
    return GraphOrgProvider(connection, secret, fake.provider_settings())


def personal_provider(fake, refresh_token: str) -> GraphPersonalProvider:
    connection = Connection(id=2, kind=ConnectionKind.MICROSOFT, user_id=1)
    return GraphPersonalProvider(connection, refresh_token, fake.provider_settings())


def calendar(n: int, remote_id: str) -> LinkedCalendar:
    return LinkedCalendar(id=n, connection_id=1, person_id=n, remote_id=remote_id)


def token_requests(fake) -> list:
    return [r for r in fake.requests if r.path.endswith("/oauth2/v2.0/token")]


def blocks(result: SyncResult) -> list[tuple]:
    return sorted(
        (b.starts_at, b.ends_at, b.status, b.title)
        for change in result.changes
        for b in change.blocks
    )


def event(uid: str = "booking-17@slotbook", **fields) -> EventData:
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


# --- organisation: client credentials, /users, getSchedule -----------------------------


def test_org_lists_every_tenant_user_across_pages(graph_server):
    """/users is read page by page; each user becomes a calendar keyed by lower-case email."""
    graph_server.users_page_size = 4
    for n in range(9):
        graph_server.add_user(f"Person{n}@Contoso.example", f"Person {n}")
    graph_server.add_user_without_mailbox("Bot@contoso.onmicrosoft.com", "Build bot")

    found = org_provider(graph_server).list_calendars()

    assert len(found) == 10
    assert {c.remote_id for c in found} >= {"person0@contoso.example", "person8@contoso.example"}
    assert "bot@contoso.onmicrosoft.com" in {c.remote_id for c in found}  # UPN when no mail
    assert {c.name for c in found} >= {"Person 3", "Build bot"}
    assert len(graph_server.graph_requests("GET", "/users")) == 3
    assert len(token_requests(graph_server)) == 1  # the client-credentials token is reused
    assert graph_server.requests[0].path.endswith("/v2.0/.well-known/openid-configuration")


def test_get_schedule_batches_of_20_and_windows_under_62_days(graph_server):
    """45 people → 3 getSchedule calls; 120 days → two chunks each; every result is full."""
    emails = [f"agent{n:02d}@contoso.example" for n in range(45)]
    for email in emails:
        graph_server.add_user(email)
    graph_server.add_event(emails[44], None, "Audit", at(2, 9), at(2, 10))
    crossing_start = MONDAY + timedelta(days=61) - timedelta(hours=1)
    graph_server.add_event(
        emails[0], None, "Overnight", crossing_start, crossing_start + timedelta(hours=3)
    )
    calendars = [calendar(n + 1, email) for n, email in enumerate(emails)]
    provider = org_provider(graph_server)

    short = provider.read_busy_many(calendars, MONDAY, MONDAY + timedelta(days=30))
    posts = graph_server.graph_requests("POST", "/getSchedule")
    assert [len(p.body["schedules"]) for p in posts] == [20, 20, 5]
    assert all(isinstance(r, SyncResult) and r.full and r.cursor is None for r in short.values())
    assert blocks(short[45]) == [(at(2, 9), at(2, 10), BusyStatus.BUSY, "Audit")]
    assert sum(r.requests for r in short.values()) == 3

    long = provider.read_busy_many(calendars, MONDAY, MONDAY + timedelta(days=120))
    posts = graph_server.graph_requests("POST", "/getSchedule")[3:]
    assert len(posts) == 6
    for post in posts:
        assert post.status == 200 and len(post.body["schedules"]) <= 20
        window = _naive(post.body["endTime"]) - _naive(post.body["startTime"])
        assert window < timedelta(days=62)
        assert post.body["availabilityViewInterval"] == 15
        assert post.body["startTime"]["timeZone"] == "UTC"
    assert _naive(posts[0].body["startTime"]) == MONDAY.replace(tzinfo=None)
    assert _naive(posts[-1].body["endTime"]) == (MONDAY + timedelta(days=120)).replace(tzinfo=None)
    overnight = long[1].changes
    assert len(overnight) == 1  # reported by both chunks, kept once
    assert overnight[0].blocks[0].starts_at == crossing_start
    assert sum(r.requests for r in long.values()) == 6


def _naive(value: dict) -> datetime:
    return datetime.fromisoformat(value["dateTime"])


def test_schedule_statuses_and_subjects(graph_server):
    """free is left out; tentative, busy, oof and workingElsewhere map; titles come along."""
    email = "trainer@contoso.example"
    graph_server.add_user(email, "Tess Trainer")
    graph_server.add_event(email, None, "Lunch", at(0, 12), at(0, 13), show_as="free")
    graph_server.add_event(email, None, "Maybe", at(0, 9), at(0, 10), show_as="tentative")
    graph_server.add_event(email, None, "Course", at(0, 10), at(0, 11), show_as="busy")
    graph_server.add_event(email, None, "Holiday", at(1, 0), at(2, 0), show_as="oof")
    graph_server.add_event(email, None, "Site", at(2, 9), at(2, 17), show_as="workingElsewhere")
    graph_server.add_event(email, None, "Doctor", at(3, 9), at(3, 10), private=True)
    graph_server.add_event(email, None, "Twin", at(0, 10), at(0, 11), show_as="busy")

    result = org_provider(graph_server).read_busy(calendar(7, email), MONDAY, at(7, 0), None)

    assert result.full is True
    assert blocks(result) == [
        (at(0, 9), at(0, 10), BusyStatus.TENTATIVE, "Maybe"),
        (at(0, 10), at(0, 11), BusyStatus.BUSY, "Course"),
        (at(0, 10), at(0, 11), BusyStatus.BUSY, "Twin"),
        (at(1, 0), at(2, 0), BusyStatus.OUT_OF_OFFICE, "Holiday"),
        (at(2, 9), at(2, 17), BusyStatus.BUSY, "Site"),
        (at(3, 9), at(3, 10), BusyStatus.BUSY, None),  # private: Graph hides the subject
    ]
    keys = [change.key for change in result.changes]
    assert len(keys) == len(set(keys)) == 6
    prefer = graph_server.graph_requests("POST", "/getSchedule")[0]
    assert prefer.status == 200


def test_unknown_mailbox_is_an_error_for_that_calendar_only(graph_server):
    """A schedule with an error object fails its own calendar, even as the batch's anchor."""
    graph_server.add_user("known@contoso.example")
    graph_server.add_event("known@contoso.example", None, "Class", at(0, 9), at(0, 10))
    calendars = [calendar(1, "gone@contoso.example"), calendar(2, "known@contoso.example")]

    results = org_provider(graph_server).read_busy_many(calendars, MONDAY, at(7, 0))

    assert isinstance(results[1], ProviderError)
    assert "gone@contoso.example" in str(results[1])
    assert "ErrorMailRecipientNotFound" in str(results[1])
    assert isinstance(results[2], SyncResult)
    assert blocks(results[2]) == [(at(0, 9), at(0, 10), BusyStatus.BUSY, "Class")]
    with pytest.raises(ProviderError, match=r"gone@contoso\.example"):
        org_provider(graph_server).read_busy(calendars[0], MONDAY, at(7, 0), None)


def test_org_wrong_client_secret_is_auth_failed(graph_server):
    """invalid_client → AuthFailed asking for a new link, without echoing the secret."""
    graph_server.add_user("a@contoso.example")
    wrong = "not-the-secret-123"

    with pytest.raises(AuthFailed) as caught:
        org_provider(graph_server, secret=wrong).list_calendars()

    message = str(caught.value)
    assert "invalid_client" in message and "link it again" in message
    assert wrong not in message and graph_server.client_secret not in message


def test_expired_access_token_is_renewed_once(graph_server):
    """A 401 for an expired token gets one fresh token and the call succeeds."""
    graph_server.add_user("a@contoso.example")
    provider = org_provider(graph_server)
    provider.list_calendars()
    graph_server.expire_access_tokens()

    assert [c.remote_id for c in provider.list_calendars()] == ["a@contoso.example"]
    statuses = [r.status for r in graph_server.graph_requests("GET", "/users")]
    assert statuses == [200, 401, 200]
    assert len(token_requests(graph_server)) == 2


def test_org_write_back_into_the_default_calendar(graph_server):
    """Create, update and delete in /users/{email}; a retried create does not duplicate."""
    email = "trainer@contoso.example"
    graph_server.add_user(email)
    target = calendar(3, email)
    provider = org_provider(graph_server)

    written = provider.create_event(target, event())
    again = provider.create_event(target, event())

    assert again.remote_id == written.remote_id
    [stored] = graph_server.events_of(email)
    assert stored.calendar_id == graph_server.calendar_id(email)
    assert (stored.subject, stored.show_as, stored.start) == (
        "[PENDING] Forklift refresher",
        "tentative",
        at(1, 9),
    )
    updated = provider.update_event(
        target, written.remote_id, event(title="Forklift refresher", tentative=False), None
    )
    assert updated.etag != written.etag
    assert (stored.subject, stored.show_as) == ("Forklift refresher", "busy")
    provider.delete_event(target, written.remote_id, updated.etag)
    provider.delete_event(target, written.remote_id, updated.etag)  # already gone: fine
    assert graph_server.events_of(email) == []
    assert graph_server.graph_requests("POST", f"/users/{email}/calendar/events")


# --- personal: link flow ----------------------------------------------------------------


def _link(fake, email: str):
    settings = fake.provider_settings()
    flow = start_link(settings, settings.redirect_uri, login_hint=email)
    response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert response.status_code == 302
    callback = urlsplit(response.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == settings.redirect_uri
    return settings, flow, dict(parse_qsl(callback.query))


def test_personal_link_flow_gives_a_refresh_token_and_the_email(graph_server):
    """start_link → authorize redirect → finish_link redeems the code with PKCE."""
    graph_server.add_user("Sam.Jones@Outlook.example", "Sam Jones")

    settings, flow, query = _link(graph_server, "sam.jones@outlook.example")
    authorize = urlsplit(flow["auth_uri"])
    params = dict(parse_qsl(authorize.query))
    assert authorize.path.endswith("/common/oauth2/v2.0/authorize")
    assert {"Calendars.ReadWrite", "User.Read", "offline_access"} <= set(params["scope"].split())
    assert params["code_challenge_method"] == "S256" and params["state"] == flow["state"]

    account = finish_link(settings, flow, query)

    assert account.email == "sam.jones@outlook.example"
    assert account.name == "Sam Jones"
    assert account.refresh_token.startswith("rt-")
    assert account.refresh_token not in repr(account)
    provider = personal_provider(graph_server, account.refresh_token)
    assert [c.name for c in provider.list_calendars()] == ["Calendar"]

    with pytest.raises(ProviderError):  # the code was redeemed already
        finish_link(settings, flow, query)


def test_link_with_a_mismatched_state_is_refused(graph_server):
    """A callback whose state is not the one we sent (CSRF, stale tab) links nothing."""
    graph_server.add_user("sam@outlook.example")
    settings, flow, query = _link(graph_server, "sam@outlook.example")
    query["state"] = "forged"

    with pytest.raises(ProviderError, match="start linking again"):
        finish_link(settings, flow, query)
    assert not [r for r in token_requests(graph_server) if r.status == 200]


def test_link_declined_by_the_user(graph_server):
    """An error in the callback (the user said no) becomes a clear sentence."""
    graph_server.add_user("sam@outlook.example")
    settings = graph_server.provider_settings()
    flow = start_link(settings, settings.redirect_uri)
    declined = {"error": "access_denied", "state": flow["state"], "error_description": "no"}

    with pytest.raises(ProviderError, match="declined"):
        finish_link(settings, flow, declined)


# --- personal: calendars, delta, faults ----------------------------------------------------


def test_personal_calendars(graph_server):
    """/me/calendars is paged; read-only calendars are marked so."""
    graph_server.calendars_page_size = 2
    graph_server.add_user("sam@outlook.example")
    graph_server.add_calendar("sam@outlook.example", "Work")
    graph_server.add_calendar("sam@outlook.example", "Holidays (UK)", can_edit=False)
    token = graph_server.issue_refresh_token("sam@outlook.example")

    found = personal_provider(graph_server, token).list_calendars()

    assert [(c.name, c.writable) for c in found] == [
        ("Calendar", True),
        ("Work", True),
        ("Holidays (UK)", False),
    ]
    assert found[1].remote_id == graph_server.calendar_id("sam@outlook.example", "Work")
    assert len(graph_server.graph_requests("GET", "/me/calendars")) == 2


def test_delta_full_round_then_only_the_changes(graph_server):
    """The first read pages to a delta link; the next returns just the add/edit/delete."""
    owner = "sam@outlook.example"
    graph_server.add_user(owner)
    work = graph_server.add_calendar(owner, "Work")
    ids = [
        graph_server.add_event(
            owner, work, f"Class {n}", at(n % 5, 9 + n % 8), at(n % 5, 10 + n % 8)
        )
        for n in range(23)
    ]
    graph_server.add_event(owner, work, "Lunch", at(0, 12), at(0, 13), show_as="free")
    graph_server.add_event(owner, work, "Conference", at(3, 0), at(5, 0), is_all_day=True)
    graph_server.add_event(owner, work, "Far away", at(40, 9), at(40, 10))
    graph_server.add_event(owner, None, "Other calendar", at(0, 9), at(0, 10))
    provider = personal_provider(graph_server, graph_server.issue_refresh_token(owner))
    linked = calendar(5, work)
    window = (MONDAY, at(14, 0))

    first = provider.read_busy(linked, *window, None)

    assert first.full is True and first.cursor and "$deltatoken=" in first.cursor
    assert len(first.changes) == 25
    assert first.requests == 3  # pages of 10
    by_title = {b.title: b for change in first.changes for b in change.blocks}
    assert "Lunch" not in by_title and "Far away" not in by_title
    assert (by_title["Conference"].starts_at, by_title["Conference"].ends_at) == (
        at(3, 0),
        at(5, 0),
    )
    assert by_title["Class 0"].status == BusyStatus.BUSY
    delta_calls = graph_server.graph_requests("GET", "/calendarView/delta")
    assert all(r.status == 200 for r in delta_calls)

    added = graph_server.add_event(owner, work, "New class", at(4, 14), at(4, 15), "tentative")
    graph_server.update_event(ids[1], subject="Moved class", start=at(2, 15), end=at(2, 16))
    graph_server.delete_event(ids[2])
    graph_server.update_event(ids[3], is_cancelled=True)
    graph_server.add_event(owner, None, "Not this calendar", at(1, 9), at(1, 10))

    second = provider.read_busy(linked, *window, first.cursor)

    assert second.full is False and second.cursor and second.cursor != first.cursor
    changes = {c.key: c for c in second.changes}
    assert set(changes) == {added, ids[1], ids[2], ids[3]}
    assert changes[ids[2]].deleted and changes[ids[3]].deleted
    assert [(b.starts_at, b.status, b.title) for b in changes[added].blocks] == [
        (at(4, 14), BusyStatus.TENTATIVE, "New class")
    ]
    assert [(b.starts_at, b.title) for b in changes[ids[1]].blocks] == [(at(2, 15), "Moved class")]

    third = provider.read_busy(linked, *window, second.cursor)
    assert third.changes == [] and third.requests == 1


def test_expired_delta_link_raises_cursor_expired(graph_server):
    """410 Gone syncStateNotFound → CursorExpired so the sync starts a full read."""
    owner = "sam@outlook.example"
    graph_server.add_user(owner)
    graph_server.add_event(owner, None, "Class", at(0, 9), at(0, 10))
    provider = personal_provider(graph_server, graph_server.issue_refresh_token(owner))
    linked = calendar(5, graph_server.calendar_id(owner))
    first = provider.read_busy(linked, MONDAY, at(7, 0), None)
    graph_server.invalidate_delta_tokens()

    with pytest.raises(CursorExpired):
        provider.read_busy(linked, MONDAY, at(7, 0), first.cursor)

    assert graph_server.graph_requests("GET", "/calendarView/delta")[-1].status == 410
    again = provider.read_busy(linked, MONDAY, at(7, 0), None)
    assert again.full and len(again.changes) == 1


def test_retry_after_is_honoured(graph_server):
    """429 with Retry-After: 1 → the same call again no sooner than a second later."""
    owner = "sam@outlook.example"
    graph_server.add_user(owner)
    provider = personal_provider(graph_server, graph_server.issue_refresh_token(owner))
    graph_server.throttle(times=1, retry_after=1)

    assert [c.name for c in provider.list_calendars()] == ["Calendar"]

    throttled, retried = graph_server.graph_requests("GET", "/me/calendars")
    assert (throttled.status, retried.status) == (429, 200)
    assert retried.time - throttled.time >= 1.0


def test_long_retry_after_is_rate_limited(graph_server):
    """A Retry-After beyond what a sync may wait becomes RateLimited with that delay."""
    graph_server.add_user("a@contoso.example")
    graph_server.throttle(times=1, retry_after=600)

    with pytest.raises(RateLimited) as caught:
        org_provider(graph_server).read_busy_many(
            [calendar(1, "a@contoso.example")], MONDAY, at(7, 0)
        )

    assert caught.value.retry_after == 600
    assert len(graph_server.graph_requests("POST", "/getSchedule")) == 1


def test_refresh_token_rotation_and_revocation(graph_server):
    """A rotated refresh token is handed back; a revoked one is AuthFailed without the token."""
    owner = "sam@outlook.example"
    graph_server.add_user(owner)
    token = graph_server.issue_refresh_token(owner)
    provider = personal_provider(graph_server, token)
    provider.list_calendars()
    assert provider.new_secret and provider.new_secret != token
    graph_calls = len(graph_server.graph_requests())

    graph_server.revoke_refresh_tokens()
    revoked = personal_provider(graph_server, provider.new_secret)
    with pytest.raises(AuthFailed) as caught:
        revoked.list_calendars()

    message = str(caught.value)
    assert "invalid_grant" in message and "link your Microsoft account again" in message
    assert token not in message and provider.new_secret not in message
    assert len(graph_server.graph_requests()) == graph_calls  # no Graph call without a token


def test_personal_write_back(graph_server):
    """Create in the chosen calendar (idempotent by uid), PATCH subject/showAs, delete."""
    owner = "sam@outlook.example"
    graph_server.add_user(owner)
    work = graph_server.add_calendar(owner, "Work")
    provider = personal_provider(graph_server, graph_server.issue_refresh_token(owner))
    target = calendar(5, work)

    written = provider.create_event(target, event())
    retried = provider.create_event(target, event())

    assert retried.remote_id == written.remote_id and written.etag
    [stored] = graph_server.events_of(owner)
    assert stored.calendar_id == work and stored.transaction_id == "booking-17@slotbook"
    assert (stored.start, stored.end, stored.location) == (at(1, 9), at(1, 11), "Yard 2")
    assert stored.body == {"contentType": "text", "content": "Booked through Slotbook"}
    assert stored.show_as == "tentative"

    moved = event(
        title="Forklift refresher", tentative=False, starts_at=at(2, 13), ends_at=at(2, 15)
    )
    updated = provider.update_event(target, written.remote_id, moved, written.etag)

    assert updated.remote_id == written.remote_id and updated.etag != written.etag
    assert (stored.subject, stored.show_as, stored.start) == (
        "Forklift refresher",
        "busy",
        at(2, 13),
    )
    provider.delete_event(target, written.remote_id, updated.etag)
    assert graph_server.events_of(owner) == []
    provider.delete_event(target, written.remote_id, None)  # a second delete is harmless
    with pytest.raises(ProviderError, match="could not find"):
        provider.update_event(target, written.remote_id, moved, None)


def test_personal_link_needs_the_organisation_app(graph_server):
    """Without the organisation's app registration there is nothing to link with."""
    settings = graph_server.provider_settings(ms_client_id="", ms_client_secret="")

    with pytest.raises(ProviderError, match="administrator"):
        start_link(settings, settings.redirect_uri)


def test_the_fake_enforces_graphs_documented_limits(graph_server):
    """The batching test means something only if the server refuses what Graph refuses."""
    graph_server.add_user("a@contoso.example")
    form = {
        "grant_type": "client_credentials",
        "client_id": graph_server.client_id,
        "client_secret": graph_server.client_secret,
        "scope": graph_server.base_url + "/.default",
    }
    token_url = f"{graph_server.authority_host}/{graph_server.tenant_id}/oauth2/v2.0/token"
    token = requests.post(token_url, data=form, timeout=10).json()["access_token"]
    url = graph_server.graph_url + "/users/a@contoso.example/calendar/getSchedule"

    def post(schedules: int, days: int, auth: bool = True) -> requests.Response:
        body = {
            "schedules": [f"u{n}@contoso.example" for n in range(schedules)],
            "startTime": {"dateTime": "2030-03-04T00:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": _naive_utc_text(days), "timeZone": "UTC"},
        }
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        return requests.post(url, json=body, headers=headers, timeout=10)

    assert post(20, 61).status_code == 200
    assert post(21, 1).status_code == 400
    assert post(1, 62).json()["error"]["code"] == "ErrorInvalidParameter"
    unauthenticated = post(1, 1, auth=False)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "InvalidAuthenticationToken"


def _naive_utc_text(days: int) -> str:
    return (MONDAY + timedelta(days=days)).replace(tzinfo=None).isoformat()
