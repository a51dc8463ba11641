"""Google calendars end to end (issue [12]): the linking screens, the admin screen, the CLI,
the sync job and write-back through the real outbox, against the local Google stand-in
(``tests/fakes/google_server.py``) reached through GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI and
GOOGLE_CALENDAR_API_URL. Every refusal is checked to change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from app.accounts.models import User
from app.admin.settings import set_setting
from app.bookings import service as bookings
from app.connections import service
from app.connections.models import (
    BusyBlock,
    Connection,
    ConnectionKind,
    LinkedCalendar,
    RemoteEvent,
)
from app.connections.providers.google import LinkedAccount, event_id_for
from app.connections.sync import sync_connection, sync_due
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import OutboxMessage
from app.security import KeyRing, generate_key
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login
from tests.connections import test_linking as linking
from tests.connections.test_secrets import dump
from tests.connections.test_writeback import act, deliver_all

CALLBACK = "http://localhost/me/calendars/google/callback"
call = linking.call
page = linking.page
post = linking.post


def _monday() -> datetime:
    today = utcnow().date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return _monday() + timedelta(days=day, hours=hour, minutes=minute)


@pytest.fixture
def google(app, google_server):
    """The app pointed at the local Google through its three variables."""
    app.config.update(**google_server.config(), SLOTBOOK_BASE_URL="http://localhost")
    google_server.redirect_uris.add(CALLBACK)
    return google_server


@pytest.fixture
def ada(factory):
    return factory.user("agent", email="ada@school.example", name="Ada Agent")


def save_client(app, g) -> int:
    return call(app, lambda: service.save_google_client(g.client_id, g.client_secret))


def save_workspace(app, g, *domains: str, primary: str = "google") -> int:
    def run():
        set_setting("primary_calendar_provider", primary)
        return service.save_google_workspace(g.service_account_info(), list(domains))

    return call(app, run)


def link_personal(app, g, user, email: str) -> int:
    """A personal Google link as the flow would leave it (the flow itself is tested below)."""
    save_client(app, g)
    g.add_account(email)
    account = LinkedAccount(g.issue_refresh_token(email), email, email)
    return call(app, lambda: service.finish_google_link(db.session.get(User, user.id), account))


def start(client, login_hint: str = "") -> tuple[str, dict]:
    response = post(client, "/me/calendars/google", {"login_hint": login_hint})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    auth_uri = response.headers["Location"]
    return auth_uri, {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}


def consent(g, auth_uri: str) -> str:
    """The person signs in at Google and consents: the callback path Google sends back."""
    answer = requests.get(auth_uri, allow_redirects=False, verify=g.ca_path, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix("http://localhost")


def blocks(app, person_id: int) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(
            select(BusyBlock.id, BusyBlock.starts_at, BusyBlock.status, BusyBlock.event_key)
            .where(BusyBlock.person_id == person_id)
            .order_by(BusyBlock.starts_at)
        ).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def sync(app, connection_id: int):
    with app.app_context():
        report = sync_connection(connection_id)
        db.session.remove()
        return report


def the_connection(app, kind: str) -> Connection:
    with app.app_context():
        row = db.session.scalars(select(Connection).where(Connection.kind == kind)).one()
        assert row.calendars is not None  # loaded before the session ends
        db.session.commit()
        return row


# --- the personal link through the screens ------------------------------------------------------


def test_google_link_end_to_end_and_link_again(app, client, factory, ada, google):
    """An administrator enters the OAuth client on the admin screen; Ada connects her Google
    account (PKCE, state, offline access), her calendars are listed (the primary one
    receives bookings), the sync reads her busy time; a revoked grant marks the link, tells
    her, and linking again mends the same connection with her choices kept."""
    google.add_account("ada@gmail.example", "Ada at home")
    google.add_calendar("ada@gmail.example", "Family", access_role="reader")
    google.add_event("ada@gmail.example", "Dentist", at(1, 9), at(1, 10))
    admin = factory.user("administrator", email="admin@school.example")
    screen = app.test_client()
    login(screen, admin.email)
    login(client, ada.email)
    assert "An administrator must first enter the organisation's Google OAuth client" in page(
        client
    )

    token = csrf_from(screen, "/admin/calendars")
    saved = screen.post(
        "/admin/calendars/google/client",
        data={"csrf_token": token, "client_id": google.client_id, "client_secret": ""},
    )
    assert saved.status_code == 400  # the first save needs the secret
    assert "Enter the OAuth client secret" in saved.get_data(as_text=True)
    saved = screen.post(
        "/admin/calendars/google/client",
        data={
            "csrf_token": token,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
    )
    assert saved.status_code == 303
    admin_page = page(screen, "/admin/calendars")
    assert google.client_secret not in admin_page and "A secret is saved" in admin_page
    assert CALLBACK in admin_page

    google.sign_in_as("ada@gmail.example")
    assert "Connect Google account" in page(client)
    auth_uri, params = start(client)
    assert auth_uri.startswith(google.auth_uri)
    assert params["redirect_uri"] == CALLBACK and params["state"]
    assert params["code_challenge_method"] == "S256" and params["access_type"] == "offline"
    with client.session_transaction() as browser_session:
        kept = browser_session["google_link_flow"]
        assert kept.startswith("v1.") and "code_verifier" not in kept  # sealed verifier
    response = client.get(consent(google, auth_uri))
    assert response.status_code == 303
    assert "Linked “ada@gmail.example”" in page(client)
    connection = the_connection(app, ConnectionKind.GOOGLE)
    assert (connection.user_id, connection.username) == (ada.id, "ada@gmail.example")
    assert linking.calendars_of(app, connection.id) == {
        "ada@gmail.example": (True, True, True),
        "Family": (True, False, False),
    }

    report = sync(app, connection.id)
    assert report.error is None and report.added == 1
    assert [(b[1], b[2]) for b in blocks(app, ada.id)] == [(at(1, 9), "busy")]

    # She removes Slotbook's access at Google; the next sync marks the link and tells her.
    family = linking.calendar_id(app, connection.id, "Family")
    call(
        app,
        lambda: service.set_calendar_options(
            db.session.get(User, ada.id), family, for_availability=False, receives_bookings=False
        ),
    )
    google.revoke_refresh_tokens()
    with app.app_context():
        report = sync_connection(connection.id, utcnow() + timedelta(hours=1))
        told = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "connection.needs_relink")
        ).all()
        assert [m.payload["user_id"] for m in told] == [ada.id]
        db.session.remove()
    assert "invalid_grant" in report.error
    html = page(client)
    assert "needs to be linked again" in html and "Link again" in html
    assert 'action="/me/calendars/google"' in html

    auth_uri, params = start(client, login_hint="ada@gmail.example")
    assert params["login_hint"] == "ada@gmail.example"
    assert client.get(consent(google, auth_uri)).status_code == 303
    assert linking.count(app, Connection) == 2  # the Google row and Ada's one link
    assert the_connection(app, ConnectionKind.GOOGLE).needs_relink is False
    assert linking.calendars_of(app, connection.id)["Family"] == (False, False, False)
    assert sync(app, connection.id).error is None


def test_google_refusals_link_nothing(app, client, ada, google):
    """Declined consent, a forged state and a replayed callback each link nothing."""
    save_client(app, google)
    google.add_account("ada@gmail.example")
    google.sign_in_as("ada@gmail.example")
    login(client, ada.email)
    before = db_state(app)

    google.decline_consent()
    auth_uri, _ = start(client)
    assert client.get(consent(google, auth_uri)).status_code == 303
    assert "You did not give Slotbook access to your Google calendar" in page(client)

    google.decline_consent(False)
    auth_uri, _ = start(client)
    callback = consent(google, auth_uri)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert client.get(f"/me/calendars/google/callback?code={code}&state=forged").status_code == 303
    assert "did not match the sign-in started from this browser" in page(client)
    assert client.get(callback).status_code == 303  # the flow was used up by the forgery
    assert "did not match" in page(client)
    assert changed_tables(before, db_state(app)) == []


# --- the organisation's Workspace link ---------------------------------------------------------


def test_workspace_covers_its_domains_and_a_personal_link_wins(app, factory, ada, google):
    """K1 + seed 000: Ada (no personal link) is read through the service account; Bo linked
    his own Google account, which takes priority; Cy is outside the domains. With Microsoft
    as the primary provider, the Workspace link covers nobody."""
    bo = factory.user("agent", email="bo@school.example", name="Bo Brown")
    cy = factory.user("agent", email="cy@elsewhere.example", name="Cy")
    for user in (ada, bo, cy):
        google.add_account(user.email, user.name)
    google.add_event(ada.email, "Moderation", at(0, 9), at(0, 10))
    google.add_event(ada.email, "Leave", at(1, 0), at(2, 0), event_type="outOfOffice")
    google.add_event(bo.email, "Work thing", at(0, 11), at(0, 12))
    google.add_event(cy.email, "Other school", at(0, 13), at(0, 14))
    workspace_id = save_workspace(app, google, "school.example")
    link_personal(app, google, bo, "bo@gmail.example")
    google.add_event("bo@gmail.example", "Gym", at(0, 7), at(0, 8))

    with app.app_context():
        reports = sync_due()
        assert [r.error for r in reports] == [None, None]
        workspace = db.session.get(Connection, workspace_id)
        assert sorted(c.person_id for c in workspace.calendars) == [ada.id]
        db.session.rollback()
    assert [(b[1], b[2]) for b in blocks(app, ada.id)] == [(at(0, 9), "busy"), (at(1, 0), "oof")]
    assert [b[1] for b in blocks(app, bo.id)] == [at(0, 7)]  # his own calendar only
    assert blocks(app, cy.id) == []
    grants = google.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer")
    assert len(grants) == 1  # only Ada was acted for

    with app.app_context():
        begin_write()
        set_setting("primary_calendar_provider", "microsoft")
        db.session.commit()
        assert sync_connection(workspace_id, utcnow() + timedelta(hours=1)).error is None
        assert db.session.get(Connection, workspace_id).calendars == []
        db.session.rollback()
    assert blocks(app, ada.id) == []


def test_a_person_the_service_account_may_not_act_for_is_told_alone(
    app, client, factory, ada, google
):
    dan = factory.user("agent", email="dan@school.example", name="Dan")
    for user in (ada, dan):
        google.add_account(user.email)
    google.add_event(ada.email, "Moderation", at(0, 9), at(0, 10))
    google.deny_delegation(dan.email)
    workspace_id = save_workspace(app, google, "school.example")

    report = sync(app, workspace_id)
    assert report.error is None and len(report.warnings) == 1
    assert "not allowed to act for dan@school.example" in report.warnings[0]
    assert len(blocks(app, ada.id)) == 1
    login(client, dan.email)
    html = page(client)
    assert "Your calendar could not be read" in html and "domain-wide delegation" in html
    other = app.test_client()
    login(other, ada.email)
    assert "Your calendar could not be read" not in page(other)
    assert "Google Workspace calendar" in page(other)


def test_admin_screen_saves_the_workspace_key_sealed(app, factory, google):
    admin = factory.user("administrator", email="admin@school.example")
    screen = app.test_client()
    login(screen, admin.email)
    key = json.dumps(google.service_account_info()).encode()
    before = db_state(app)

    def send(data: bytes | None, domains: str):
        from io import BytesIO

        token = csrf_from(screen, "/admin/calendars")
        form = {"csrf_token": token, "domains": domains}
        if data is not None:
            form["key_file"] = (BytesIO(data), "key.json")
        return screen.post(
            "/admin/calendars/google/workspace", data=form, content_type="multipart/form-data"
        )

    refused = send(b'{"type": "authorized_user"}', "school.example")
    assert refused.status_code == 400
    assert "not a service account key" in refused.get_data(as_text=True)
    assert send(key, "not a domain").status_code == 400
    assert send(None, "school.example").status_code == 400  # no key saved yet
    assert changed_tables(before, db_state(app)) == []

    assert send(key, "School.example, training.school.example").status_code == 303
    html = page(screen, "/admin/calendars")
    assert google.sa_email in html and "BEGIN PRIVATE KEY" not in html
    row = the_connection(app, ConnectionKind.GOOGLE_ORG)
    assert row.domains == ["school.example", "training.school.example"]
    assert row.secret_sealed.startswith("v1.") and "PRIVATE" not in row.secret_sealed
    assert send(None, "school.example").status_code == 303  # the saved key is kept
    with app.app_context():
        from app.connections.providers.google import org_secret

        saved = org_secret(db.session.get(Connection, row.id).reveal_secret())
        assert saved["service_account"]["client_email"] == google.sa_email
        db.session.rollback()


def test_cli_set_google_org(app, google, ada, tmp_path):
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(google.service_account_info()))
    runner = app.test_cli_runner()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    before = db_state(app)
    result = runner.invoke(
        args=["connections", "set-google-org", "--key-file", str(bad), "--domain", "school.example"]
    )
    assert result.exit_code != 0 and "not a service account key" in result.output
    result = runner.invoke(args=["connections", "set-google-org", "--key-file", str(key_file)])
    assert result.exit_code != 0  # --domain is required
    assert changed_tables(before, db_state(app)) == []

    args = ["connections", "set-google-org", "--key-file", str(key_file)]
    result = runner.invoke(args=[*args, "--domain", "school.example", "--domain", "b.example"])
    assert result.exit_code == 0, result.output
    assert google.sa_email in result.output and "covers nobody yet" in result.output
    row = the_connection(app, ConnectionKind.GOOGLE_ORG)
    assert row.domains == ["school.example", "b.example"]

    google.add_account(ada.email)
    google.add_event(ada.email, "Moderation", at(0, 9), at(0, 10))
    with app.app_context():
        begin_write()
        set_setting("primary_calendar_provider", "google")
        db.session.commit()
    result = runner.invoke(args=["sync", "run"])
    assert result.exit_code == 0, result.output
    assert "1 busy block added" in result.output
    assert len(blocks(app, ada.id)) == 1


# --- busy time: incremental reads ------------------------------------------------------------


def test_incremental_sync_after_edit_and_delete_touches_only_those(app, ada, google):
    connection_id = link_personal(app, google, ada, "ada@gmail.example")
    g, cal = google, "ada@gmail.example"
    keep = g.add_event(cal, "Keep", at(0, 9), at(0, 10))
    moved = g.add_event(cal, "Moved", at(1, 9), at(1, 10))
    gone = g.add_event(cal, "Gone", at(2, 9), at(2, 10))
    g.add_event(cal, "Standup", at(3, 8), at(3, 8, 15), daily=3)
    assert sync(app, connection_id).added == 6
    first = {b[3]: b[0] for b in blocks(app, ada.id)}

    g.edit_event(cal, moved, start=at(1, 14), end=at(1, 15))
    g.delete_event(cal, gone)
    report = sync(app, connection_id)
    assert (report.added, report.removed) == (1, 2)  # the moved one replaced, the gone one
    after = {b[3]: (b[0], b[1]) for b in blocks(app, ada.id)}
    assert gone not in after and after[moved][1] == at(1, 14)
    assert after[keep][0] == first[keep]  # untouched rows are the very same rows
    assert {k: v[0] for k, v in after.items() if k not in (moved,)} == {
        k: v for k, v in first.items() if k not in (moved, gone)
    }
    incremental = [r for r in g.api_requests("GET", "/events") if "syncToken" in r.query]
    assert len(incremental) == 1 and "timeMin" not in incremental[0].query

    # Google forgets the sync position: a full re-read, and the deleted event stays gone.
    g.invalidate_sync_tokens()
    report = sync(app, connection_id)
    assert report.error is None
    assert [r.status for r in g.api_requests("GET", "/events")[-2:]] == [410, 200]
    assert sorted(k for k in (b[3] for b in blocks(app, ada.id))) == sorted(after)


def test_faults_in_a_sync_become_health(app, ada, google):
    """A throttled calendar waits and is retried later; an HTML 5xx is temporary and keeps
    the cache; neither needs a re-link."""
    connection_id = link_personal(app, google, ada, "ada@gmail.example")
    google.add_event("ada@gmail.example", "Keep", at(0, 9), at(0, 10))
    assert sync(app, connection_id).error is None

    google.fail_with_html(10, status=503)
    report = sync(app, connection_id)
    assert report.error and "busy" in report.error  # 503 is Google saying "back off"
    google.fail_with_html(10, status=502)
    report = sync(app, connection_id)
    assert "internal error (502)" in report.error
    google.fail_with_html(0)
    google.throttle(10, status=403, reason="userRateLimitExceeded", retry_after=600)
    report = sync(app, connection_id)
    assert "rate limit" in report.error
    row = the_connection(app, ConnectionKind.GOOGLE)
    assert not row.needs_relink and row.next_sync_at >= utcnow() + timedelta(seconds=590)
    assert len(blocks(app, ada.id)) == 1  # the cache is kept while Google is away


# --- write-back through the outbox ----------------------------------------------------------------


def test_write_back_lifecycle_in_googles_state(app, factory, ada, google):
    """Seed 000 rules into a personal Google calendar: [PENDING] and tentative, approval,
    move, a hand edit kept through a 412, cancel; the event id comes from the UID and a
    retried delivery never duplicates."""
    manager = factory.user("booking-manager", name="Mo Manager")
    connection_id = link_personal(app, google, ada, "ada@gmail.example")
    assert set(deliver_all(app)) <= {"done"}
    cal = "ada@gmail.example"
    kind = factory.booking_type(name="Planning meeting", requires_approval=True)
    start_at = at(3, 10)
    booking = factory.booking(manager, kind, start_at, [ada])
    assert deliver_all(app) == ["done"]
    event_id = event_id_for(booking.uid)
    stored = google.event(cal, event_id)
    assert (stored.summary, stored.status, stored.start) == (
        "[PENDING] Planning meeting",
        "tentative",
        start_at,
    )
    with app.app_context():
        record = db.session.scalars(select(RemoteEvent)).one()
        assert (record.remote_id, record.etag) == (event_id, stored.etag)
        db.session.rollback()

    act(app, bookings.approve, booking.id)
    assert deliver_all(app) == ["done"]
    assert (google.event(cal, event_id).summary, google.event(cal, event_id).status) == (
        "Planning meeting",
        "confirmed",
    )
    assert google.api_requests("PATCH")[-1].if_match  # guarded by the stored ETag

    google.edit_event(cal, event_id, colorId="11")  # Ada colours it in Google
    later = start_at + timedelta(days=1, hours=2)
    act(app, bookings.reschedule, booking.id, later)
    assert deliver_all(app) == ["done"]
    stored = google.event(cal, event_id)
    assert (stored.start, stored.extra["colorId"]) == (later, "11")
    assert [r.status for r in google.api_requests("PATCH")[-2:]] == [412, 200]
    assert len(google.events_in(cal)) == 1

    # A delivery retried after Google saved the event but our commit was lost.
    with app.app_context():
        begin_write()
        db.session.execute(RemoteEvent.__table__.delete())
        db.session.commit()
        from app.bookings.writeback import reconcile

        send = reconcile(db.session.get(type(booking), booking.id))
        db.session.commit()
        outcomes = send.io()  # the calls, with no transaction open
        begin_write()
        send.record(outcomes)
        db.session.commit()
        db.session.remove()
    assert outcomes[0].written[1].remote_id == event_id
    assert len(google.events_in(cal, include_cancelled=True)) == 1

    act(app, bookings.cancel, booking.id)
    assert deliver_all(app) == ["done"]
    assert google.event(cal, event_id).cancelled and google.events_in(cal) == []
    assert linking.count(app, RemoteEvent) == 0
    del connection_id


def test_workspace_calendar_receives_bookings_unless_a_personal_link_outranks(
    app, factory, ada, google
):
    manager = factory.user("booking-manager", name="Mo Manager")
    bo = factory.user("agent", email="bo@school.example", name="Bo Brown")
    for user in (ada, bo):
        google.add_account(user.email)
    workspace_id = save_workspace(app, google, "school.example")
    link_personal(app, google, bo, "bo@gmail.example")
    assert sync(app, workspace_id).error is None
    deliver_all(app)
    kind = factory.booking_type(name="Review")
    booking = factory.booking(manager, kind, at(2, 10), [ada, bo])
    assert deliver_all(app) == ["done"]
    event_id = event_id_for(booking.uid)
    assert google.event(ada.email, event_id).summary == "Review"  # via the service account
    assert [e.id for e in google.events_in("bo@gmail.example")] == [event_id]
    assert google.events_in(bo.email) == []  # his personal link outranks the Workspace one


# --- secrets (K3) ---------------------------------------------------------------------------


@pytest.mark.db
def test_dump_holds_no_refresh_token_or_private_key_and_rotation_keeps_working(
    app, database_url, factory, ada, google
):
    bo = factory.user("agent", email="bo@school.example", name="Bo Brown")
    google.add_account(bo.email)
    google.add_event(bo.email, "Moderation", at(0, 9), at(0, 10))
    save_client(app, google)
    workspace_id = save_workspace(app, google, "school.example")
    personal_id = link_personal(app, google, ada, "ada@gmail.example")
    ids = [workspace_id, personal_id]
    for connection_id in ids:
        assert sync(app, connection_id).error is None
    info = google.service_account_info()
    key_lines = [line for line in info["private_key"].splitlines() if "PRIVATE" not in line]
    secrets = [google.client_secret, *google._refresh, *key_lines[:3], info["private_key"]]
    text = dump(database_url)
    assert "calendar_connections" in text or "INSERT" in text
    for secret in secrets:
        assert secret not in text

    old = app.config["SLOTBOOK_ENCRYPTION_KEYS"]
    new = generate_key()
    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = f"{new},{old}"
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        sealed = db.session.scalars(
            select(Connection.secret_sealed).where(Connection.id.in_(ids))
        ).all()
        assert {s.split(".")[1] for s in sealed} == {KeyRing.from_config(new).current_id}
        db.session.rollback()
    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = new  # the old key is gone for good
    from app.connections.providers.google import forget_all_tokens

    forget_all_tokens()  # so the sealed refresh token and key really are used again
    with app.app_context():
        errors = [sync_connection(i, utcnow() + timedelta(hours=1)).error for i in ids]
        db.session.remove()
    assert errors == [None, None]
    assert len(blocks(app, bo.id)) == 1
    with app.app_context():
        assert db.session.scalar(select(LinkedCalendar.id).where(LinkedCalendar.person_id == bo.id))
        db.session.rollback()


def test_both_providers_split_a_mixed_tenant_by_domain(app, factory, ada, google, graph_server):
    """Seed 002 "both": Google Workspace covers its domains, Microsoft 365 the rest of its
    tenant, so nobody is read (or written) twice."""
    app.config.update(
        MS_AUTHORITY_HOST=graph_server.authority_host, MS_GRAPH_URL=graph_server.graph_url
    )
    mo = factory.user("agent", email="mo@contoso.example", name="Mo")
    for user in (ada, mo):
        graph_server.add_user(user.email, user.name)  # the tenant lists both
    google.add_account(ada.email)
    save_workspace(app, google, "school.example", primary="both")
    linking.save_org(app, graph_server)
    with app.app_context():
        assert [r.error for r in sync_due()] == [None, None]
        covered = {
            kind: sorted(
                c.person_id
                for c in db.session.scalars(
                    select(LinkedCalendar).join(Connection).where(Connection.kind == kind)
                )
            )
            for kind in (ConnectionKind.GOOGLE_ORG, ConnectionKind.MICROSOFT_ORG)
        }
        db.session.rollback()
    assert covered == {ConnectionKind.GOOGLE_ORG: [ada.id], ConnectionKind.MICROSOFT_ORG: [mo.id]}
