"""Linking calendars (K1-K2): the service rules and the screens, against real servers (Radicale,
a local ICS feed, the local Microsoft stand-in). Every refusal is checked to change nothing."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from app.accounts.models import User
from app.admin.settings import set_setting
from app.connections import service
from app.connections.models import (
    BusyBlock,
    Connection,
    ConnectionKind,
    LinkedCalendar,
    RemoteEvent,
)
from app.connections.service import LinkError, NotFound
from app.connections.sync import sync_connection
from app.database import begin_write, utcnow
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import at, csrf_from, free_port, login
from tests.connections import test_cli as _cli
from tests.connections.test_cli import allow_private_urls, default_feed
from tests.fakes import graph_server as _fake_microsoft

# Fixtures of other modules, used here by name.
ics_server = _cli.ics_server
graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls

CALLBACK = "http://localhost/me/calendars/microsoft/callback"


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def ada(factory):
    return factory.user("agent", email="ada@example.test", name="Ada Agent")


@pytest.fixture
def bo(factory):
    return factory.user("agent", email="bo@example.test", name="Bo Brown")


def call(app, fn, *args, **kwargs):
    """Run a service function as a request would: one writing transaction, committed."""
    with app.app_context():
        begin_write()
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return result.id if hasattr(result, "id") else result


def as_user(user_id: int) -> User:
    return db.session.get(User, user_id)


def link_caldav(app, user, account) -> int:
    def run():
        return service.add_caldav(
            as_user(user.id), account.base_url, account.username, account.password
        )

    return call(app, run)


def link_ics(app, user, url: str) -> int:
    return call(app, lambda: service.add_ics(as_user(user.id), url))


def calendars_of(app, connection_id: int) -> dict[str, tuple[bool, bool, bool]]:
    """name -> (counts for availability, receives bookings, writable)."""
    with app.app_context():
        rows = db.session.scalars(
            select(LinkedCalendar).where(LinkedCalendar.connection_id == connection_id)
        ).all()
        result = {c.name: (c.use_for_availability, c.receives_bookings, c.writable) for c in rows}
        db.session.rollback()
        return result


def count(app, model) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
        return n


def page(client, url: str = "/me/calendars") -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def post(client, url: str, data: dict | None = None, headers: dict | None = None, token=None):
    token = token or csrf_from(client, "/me/calendars")
    return client.post(url, data={**(data or {}), "csrf_token": token}, headers=headers or {})


def run_link_checks(app) -> None:
    """What the worker does within a moment: run every queued link check (checks.py)."""
    from rq import SimpleWorker

    from app import jobs
    from app.connections import checks

    with app.app_context():
        link_queue = jobs.queue(checks.QUEUE)
        SimpleWorker([link_queue], connection=link_queue.connection).work(burst=True)
        db.session.remove()


def link_through_the_page(app, client, url: str, data: dict) -> str:
    """Post a linking form as the browser does (it only queues the check and redirects to
    the page that follows it), let the worker check, then load that page."""
    response = post(client, url, data)
    assert response.status_code == 303, response.get_data(as_text=True)
    followed = response.headers["Location"]
    assert "check=" in followed
    run_link_checks(app)
    return page(client, followed)


def calendar_id(app, connection_id: int, name: str) -> int:
    with app.app_context():
        value = db.session.scalar(
            select(LinkedCalendar.id).where(
                LinkedCalendar.connection_id == connection_id, LinkedCalendar.name == name
            )
        )
        db.session.rollback()
        return value


# --- CalDAV ----------------------------------------------------------------------------------


def test_add_caldav_discovers_calendars_and_picks_one_for_bookings(app, ada, caldav_account):
    """Every event calendar becomes a LinkedCalendar of the person, counting for availability;
    the first writable one receives bookings; the password is sealed; a sync is due now."""
    allow_private_urls(app)
    connection_id = link_caldav(app, ada, caldav_account)
    calendars = calendars_of(app, connection_id)
    assert {"Work", "Personal"} <= set(calendars)
    assert all(available for available, _, _ in calendars.values())
    receiving = [name for name, (_, receives, _) in calendars.items() if receives]
    assert len(receiving) == 1 and calendars[receiving[0]][2] is True
    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert connection.user_id == ada.id and connection.kind == ConnectionKind.CALDAV
        assert caldav_account.password not in connection.secret_sealed
        assert connection.reveal_secret() == caldav_account.password
        assert connection.next_sync_at is not None and connection.next_sync_at <= utcnow()
        assert {c.person_id for c in connection.calendars} == {ada.id}


def test_add_caldav_does_not_keep_a_password_typed_into_the_address(app, ada, caldav_account):
    """An address with "name:password@" links fine, but only the bare address is stored."""
    allow_private_urls(app)
    account = caldav_account
    port = account.base_url.rsplit(":", 1)[1]
    typed = f"http://{account.username}:{account.password}@127.0.0.1:{port}/"

    connection_id = call(
        app, lambda: service.add_caldav(as_user(ada.id), typed, account.username, account.password)
    )

    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert connection.url == f"http://127.0.0.1:{port}/"
        assert account.password not in (connection.label or "")
        assert connection.reveal_secret() == account.password
        assert {c.name for c in connection.calendars} >= {"Work", "Personal"}
        db.session.rollback()


def test_add_caldav_through_the_page(app, client, ada, caldav_account):
    """The form links the account (checked in the background) and the page lists its
    calendars with their choices."""
    allow_private_urls(app)
    login(client, ada.email)
    html = link_through_the_page(
        app,
        client,
        "/me/calendars/caldav",
        {
            "url": caldav_account.base_url,
            "username": caldav_account.username,
            "password": caldav_account.password,
        },
    )
    assert f"Linked “{caldav_account.username} on 127.0.0.1”" in html
    assert "Counts for availability" in html and "Receives bookings" in html
    assert "Never synced" in html and "the first sync runs within a minute" in html


def test_wrong_password_is_explained_and_nothing_is_saved(app, client, ada, caldav_account):
    allow_private_urls(app)
    login(client, ada.email)
    before = db_state(app)
    html = link_through_the_page(
        app,
        client,
        "/me/calendars/caldav",
        {
            "url": caldav_account.base_url,
            "username": caldav_account.username,
            "password": "wrong-password-123",
        },
    )
    assert "The server refused the username or password" in html
    assert "wrong-password-123" not in html  # a password field is never filled back in
    assert caldav_account.username in html  # the rest of the form is kept
    assert changed_tables(before, db_state(app)) == []


def test_unreachable_server_is_explained(app, client, ada):
    allow_private_urls(app)
    login(client, ada.email)
    before = db_state(app)
    url = f"http://127.0.0.1:{free_port()}/dav/"  # nothing listens there
    html = link_through_the_page(
        app, client, "/me/calendars/caldav", {"url": url, "username": "ada", "password": "s-1"}
    )
    assert "Could not reach 127.0.0.1" in html
    assert changed_tables(before, db_state(app)) == []


def test_a_web_page_is_not_a_caldav_server(app, client, ada, stub_server):
    allow_private_urls(app)
    login(client, ada.email)
    before = db_state(app)
    html = link_through_the_page(
        app,
        client,
        "/me/calendars/caldav",
        {"url": stub_server.url, "username": "ada", "password": "secret-1"},
    )
    assert "That address is not a CalDAV server" in html
    assert stub_server.hits  # it really was asked
    assert changed_tables(before, db_state(app)) == []


def test_private_addresses_are_refused_unless_allowed(app, client, ada, caldav_account, ics_server):
    """Without the admin setting, 127.0.0.1 is refused before any request reaches it."""
    login(client, ada.email)
    feed = ics_server.publish("/rota.ics", default_feed())
    before = db_state(app)
    for url, data in [
        (
            "/me/calendars/caldav",
            {
                "url": caldav_account.base_url,
                "username": caldav_account.username,
                "password": caldav_account.password,
            },
        ),
        ("/me/calendars/ics", {"url": feed}),
    ]:
        assert "local or private address" in link_through_the_page(app, client, url, data)
    assert ics_server.hits == []
    assert changed_tables(before, db_state(app)) == []


def test_linking_the_same_caldav_account_again_keeps_the_choices(app, ada, caldav_account):
    """A new app password for a connection that needs re-linking: same connection, flag
    cleared, the person's choices untouched."""
    allow_private_urls(app)
    first = link_caldav(app, ada, caldav_account)
    personal = calendar_id(app, first, "Personal")
    call(
        app,
        lambda: service.set_calendar_options(
            as_user(ada.id), personal, for_availability=False, receives_bookings=True
        ),
    )
    with app.app_context():
        begin_write()
        connection = db.session.get(Connection, first)
        connection.needs_relink = True
        connection.last_error = "The server refused the username or password."
        db.session.commit()
    choices = calendars_of(app, first)

    again = link_caldav(app, ada, caldav_account)
    assert again == first and count(app, Connection) == 1
    assert calendars_of(app, first) == choices
    with app.app_context():
        connection = db.session.get(Connection, first)
        assert connection.needs_relink is False and connection.last_error is None


def test_providers_the_organisation_did_not_allow_are_neither_offered_nor_accepted(
    app, client, ada, caldav_account
):
    allow_private_urls(app)
    with app.app_context():
        begin_write()
        set_setting("personal_providers", ["ics"])
        db.session.commit()
    login(client, ada.email)
    html = page(client)
    assert "ICS subscription" in html
    assert "CalDAV account" not in html and "Connect Microsoft account" not in html
    before = db_state(app)
    response = post(
        client,
        "/me/calendars/caldav",
        {
            "url": caldav_account.base_url,
            "username": caldav_account.username,
            "password": caldav_account.password,
        },
    )
    assert response.status_code == 400
    assert "does not allow linking CalDAV calendars" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


# --- ICS -------------------------------------------------------------------------------------


def test_ics_feed_is_read_only_and_never_receives_bookings(app, client, ada, ics_server):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    assert calendars_of(app, connection_id) == {"Team rota": (True, False, False)}
    feed_calendar = calendar_id(app, connection_id, "Team rota")
    with pytest.raises(LinkError, match="read-only"):
        call(
            app,
            lambda: service.set_calendar_options(
                as_user(ada.id), feed_calendar, for_availability=True, receives_bookings=True
            ),
        )
    login(client, ada.email)
    before = db_state(app)
    response = post(
        client,
        f"/me/calendars/calendars/{feed_calendar}",
        {"for_availability": "y", "receives_bookings": "y"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "is read-only" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_webcal_addresses_mean_https():
    """Calendar apps hand out webcal:// links; they are fetched over https."""
    assert service._clean_url("webcal://cal.example.test/a.ics", webcal=True) == (
        "https://cal.example.test/a.ics"
    )
    with pytest.raises(LinkError, match="must start with https://"):
        service._clean_url("ftp://cal.example.test/a.ics")


# --- calendar choices ------------------------------------------------------------------------


def test_only_one_calendar_receives_bookings(app, client, ada, caldav_account):
    """Choosing another calendar to receive bookings clears the first; the HTMX answer is the
    list fragment showing both; "Stop sending bookings here" leaves none receiving."""
    allow_private_urls(app)
    connection_id = link_caldav(app, ada, caldav_account)
    calendars = calendars_of(app, connection_id)
    [first] = [name for name in ("Work", "Personal") if calendars[name][1]]
    other = "Personal" if first == "Work" else "Work"
    other_id = calendar_id(app, connection_id, other)
    login(client, ada.email)
    response = post(
        client,
        f"/me/calendars/calendars/{other_id}",
        {"for_availability": "y", "receives_bookings": "y"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="my-calendars"')
    assert "<html" not in fragment
    assert f"Saved: “{other}” counts for availability and receives bookings." in fragment
    calendars = calendars_of(app, connection_id)
    assert calendars[other][1] is True and calendars[first][1] is False

    response = post(
        client,
        f"/me/calendars/calendars/{other_id}",
        {"for_availability": "y", "receives_bookings": "y", "stop_receiving": "1"},
    )
    assert response.status_code == 303  # without JavaScript: back to the page
    assert not any(receives for _, receives, _ in calendars_of(app, connection_id).values())


def test_unticking_availability_drops_that_calendars_busy_time_at_once(app, ada, ics_server):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    with app.app_context():
        report = sync_connection(connection_id)
    assert report.error is None and report.added == 2
    feed_calendar = calendar_id(app, connection_id, "Team rota")
    call(
        app,
        lambda: service.set_calendar_options(
            as_user(ada.id), feed_calendar, for_availability=False, receives_bookings=False
        ),
    )
    assert count(app, BusyBlock) == 0
    call(
        app,
        lambda: service.set_calendar_options(
            as_user(ada.id), feed_calendar, for_availability=True, receives_bookings=False
        ),
    )
    with app.app_context():
        calendar = db.session.get(LinkedCalendar, feed_calendar)
        assert calendar.sync_cursor is None  # read in full next time
        assert calendar.connection.next_sync_at <= utcnow()
        db.session.rollback()
        report = sync_connection(connection_id)
    assert report.added == 2 and count(app, BusyBlock) == 2


def test_another_persons_ids_are_not_found(app, client, ada, bo, ics_server):
    """Bo's calendar and connection ids give Ada 404 on every route, and nothing changes."""
    allow_private_urls(app)
    connection_id = link_ics(app, bo, ics_server.publish("/bo.ics", default_feed()))
    bo_calendar = calendar_id(app, connection_id, "Team rota")
    with pytest.raises(NotFound):
        call(
            app,
            lambda: service.set_calendar_options(
                as_user(ada.id), bo_calendar, for_availability=False, receives_bookings=False
            ),
        )
    login(client, ada.email)
    token = csrf_from(client, "/me/calendars")
    before = db_state(app)
    assert client.get(f"/me/calendars/{connection_id}/disconnect").status_code == 404
    for url in [
        f"/me/calendars/calendars/{bo_calendar}",
        f"/me/calendars/{connection_id}/sync",
        f"/me/calendars/{connection_id}/disconnect",
    ]:
        assert post(client, url, token=token).status_code == 404, url
    assert changed_tables(before, db_state(app)) == []
    assert "Team rota" not in page(client)


def test_linking_routes_refuse_a_missing_csrf_token(app, client, ada, ics_server):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    feed_calendar = calendar_id(app, connection_id, "Team rota")
    login(client, ada.email)
    before = db_state(app)
    for url, data in [
        ("/me/calendars/ics", {"url": ics_server.url("/rota.ics")}),
        ("/me/calendars/caldav", {"url": "https://dav.example.test", "username": "a"}),
        ("/me/calendars/microsoft", {}),
        (f"/me/calendars/calendars/{feed_calendar}", {}),
        (f"/me/calendars/{connection_id}/sync", {}),
        (f"/me/calendars/{connection_id}/disconnect", {}),
    ]:
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "Your form expired" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


# --- sync now and disconnect -----------------------------------------------------------------


def test_sync_now_marks_the_connection_due(app, client, ada, ics_server):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    with app.app_context():
        begin_write()
        db.session.get(Connection, connection_id).next_sync_at = utcnow() + timedelta(hours=1)
        db.session.commit()
    login(client, ada.email)
    response = post(client, f"/me/calendars/{connection_id}/sync", headers={"HX-Request": "1"})
    assert response.status_code == 200
    assert "will be synced within a minute" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Connection, connection_id).next_sync_at <= utcnow()


def test_disconnect_asks_first_then_removes_busy_time_but_not_bookings(
    app, client, factory, ada, ics_server
):
    """The confirm step changes nothing; confirming removes the connection, its calendars
    and busy blocks; the booking stays and its written event loses the calendar (SET NULL)."""
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    with app.app_context():
        sync_connection(connection_id)
    feed_calendar = calendar_id(app, connection_id, "Team rota")
    booking = factory.booking(None, factory.booking_type(name="Review"), at(5), [ada])
    with app.app_context():
        begin_write()
        db.session.add(
            RemoteEvent(
                booking_id=booking.id,
                person_id=ada.id,
                calendar_id=feed_calendar,
                remote_id="evt-1",
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
            )
        )
        db.session.commit()
    assert count(app, BusyBlock) == 2

    login(client, ada.email)
    before = db_state(app)
    confirm = page(client, f"/me/calendars/{connection_id}/disconnect")
    assert "Disconnect “127.0.0.1”?" in confirm and "Your bookings stay" in confirm
    inline = client.get(
        f"/me/calendars/{connection_id}/disconnect", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Yes, disconnect" in inline and "<html" not in inline
    assert changed_tables(before, db_state(app)) == []

    response = post(client, f"/me/calendars/{connection_id}/disconnect")
    assert response.status_code == 303
    assert "Disconnected “127.0.0.1”" in page(client)
    assert count(app, Connection) == count(app, LinkedCalendar) == count(app, BusyBlock) == 0
    with app.app_context():
        event = db.session.scalars(select(RemoteEvent)).one()
        assert event.calendar_id is None and event.booking_id == booking.id


# --- Microsoft (personal link through the organisation's app registration) --------------------


@pytest.fixture
def microsoft(app, graph_server):
    """The app pointed at the local Microsoft, which accepts the app's callback URL."""
    app.config.update(
        MS_AUTHORITY_HOST=graph_server.authority_host,
        MS_GRAPH_URL=graph_server.graph_url,
        SLOTBOOK_BASE_URL="http://localhost",  # the redirect URI is built on it, not on Host
    )
    graph_server.redirect_uris.add(CALLBACK)
    return graph_server


def save_org(app, ms, show_details: bool = False) -> int:
    return call(
        app,
        lambda: service.save_organisation_connection(
            ms.tenant_id, ms.client_id, ms.client_secret, show_details
        ),
    )


def start_link(client, login_hint: str = "") -> tuple[str, dict]:
    response = post(client, "/me/calendars/microsoft", {"login_hint": login_hint})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    auth_uri = response.headers["Location"]
    return auth_uri, {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}


def consent(ms, auth_uri: str) -> str:
    """The person signs in at Microsoft and consents: the callback path Microsoft sends back."""
    answer = requests.get(auth_uri, allow_redirects=False, verify=ms.ca_path, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix("http://localhost")


def test_microsoft_link_and_link_again(app, client, ada, microsoft):
    """Connect → Microsoft → callback: a "microsoft" connection for the account with its
    calendars (the default one receives bookings). Linking again after "needs re-link"
    refreshes the token on the same connection and keeps the choices."""
    microsoft.add_user(ada.email, "Ada Agent")
    microsoft.add_calendar(ada.email, "Birthdays", can_edit=False)
    save_org(app, microsoft)
    microsoft.sign_in_as(ada.email)
    login(client, ada.email)
    assert "Connect Microsoft account" in page(client)

    auth_uri, params = start_link(client)
    assert auth_uri.startswith(microsoft.authority_host)
    assert params["redirect_uri"] == CALLBACK and params["state"]
    with client.session_transaction() as browser_session:  # the cookie the browser holds
        kept = browser_session["microsoft_link_flow"]
        assert kept.startswith("v1.") and "code_verifier" not in kept  # sealed PKCE verifier
    response = client.get(consent(microsoft, auth_uri))
    assert response.status_code == 303
    assert f"Linked “{ada.email}”" in page(client)
    with app.app_context():
        connection = db.session.scalars(
            select(Connection).where(Connection.kind == ConnectionKind.MICROSOFT)
        ).one()
        assert (connection.user_id, connection.username) == (ada.id, ada.email)
        assert connection.reveal_secret().startswith("rt-")
        first_id = connection.id
    assert calendars_of(app, first_id) == {
        "Calendar": (True, True, True),
        "Birthdays": (True, False, False),
    }

    # The grant is revoked; the sync marked it; the person unticks a calendar meanwhile.
    birthdays = calendar_id(app, first_id, "Birthdays")
    call(
        app,
        lambda: service.set_calendar_options(
            as_user(ada.id), birthdays, for_availability=False, receives_bookings=False
        ),
    )
    with app.app_context():
        begin_write()
        db.session.get(Connection, first_id).needs_relink = True
        db.session.commit()
    html = page(client)
    assert "needs to be linked again" in html and "Link again" in html

    auth_uri, params = start_link(client, login_hint=ada.email)
    assert params["login_hint"] == ada.email
    assert client.get(consent(microsoft, auth_uri)).status_code == 303
    assert count(app, Connection) == 2  # the organisation's and Ada's
    with app.app_context():
        assert db.session.get(Connection, first_id).needs_relink is False
    assert calendars_of(app, first_id)["Birthdays"] == (False, False, False)
    assert "needs to be linked again" not in page(client)


def test_microsoft_access_denied_is_explained(app, client, ada, microsoft):
    save_org(app, microsoft)
    login(client, ada.email)
    _, params = start_link(client)
    before = db_state(app)
    response = client.get(
        "/me/calendars/microsoft/callback?error=access_denied"
        f"&error_description=AADSTS65004&state={params['state']}"
    )
    assert response.status_code == 303
    assert "You did not give Slotbook access to your Microsoft calendar" in page(client)
    assert changed_tables(before, db_state(app)) == []


def test_microsoft_state_mismatch_is_refused(app, client, ada, microsoft):
    """A callback whose state is not the one this browser started links nothing, even with a
    valid code; and the flow is used up, so replaying the right state fails too."""
    microsoft.add_user(ada.email)
    microsoft.sign_in_as(ada.email)
    save_org(app, microsoft)
    login(client, ada.email)
    auth_uri, _ = start_link(client)
    callback = consent(microsoft, auth_uri)
    query = parse_qs(urlsplit(callback).query)
    before = db_state(app)
    forged = f"/me/calendars/microsoft/callback?code={query['code'][0]}&state=forged"
    assert client.get(forged).status_code == 303
    assert "did not match the sign-in started from this browser" in page(client)
    assert client.get(callback).status_code == 303  # the flow was used up by the forgery
    assert changed_tables(before, db_state(app)) == []


def test_microsoft_button_explains_when_there_is_no_app_registration(app, client, ada):
    login(client, ada.email)
    html = page(client)
    assert "An administrator must first set up the organisation's Microsoft app" in html
    assert 'disabled aria-describedby="ms-not-ready"' in html
    before = db_state(app)
    response = post(client, "/me/calendars/microsoft")
    assert response.status_code == 303
    assert "once an administrator has set up" in page(client)
    assert changed_tables(before, db_state(app)) == []


# --- the organisation's connection (admin) ---------------------------------------------------


def test_admin_page_needs_integrations_manage(app, client, factory, ada):
    login(client, ada.email)
    assert client.get("/admin/calendars").status_code == 403
    assert "Organisation calendar settings" not in page(client)
    admin = factory.user("administrator", email="admin@example.test")
    other = app.test_client()
    login(other, admin.email)
    assert "Organisation Microsoft 365" in page(other, "/admin/calendars")
    assert app.test_client().get("/admin/calendars").status_code == 302


def test_admin_saves_the_organisation_connection_after_checking_it(app, client, factory, microsoft):
    """A wrong secret is refused with Microsoft's reason and saves nothing; the right one is
    saved sealed, the switch is stored, and the page never shows the secret again."""
    microsoft.add_user("ada@example.test")
    admin = factory.user("administrator", email="admin@example.test")
    login(client, admin.email)
    form = {
        "tenant_id": microsoft.tenant_id,
        "client_id": microsoft.client_id,
        "client_secret": "not-the-secret",
        "show_details": "y",
    }
    before = db_state(app)
    response = post(client, "/admin/calendars", form)
    assert response.status_code == 400
    assert "not-the-secret" not in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []

    response = post(client, "/admin/calendars", {**form, "client_secret": microsoft.client_secret})
    assert response.status_code == 303
    html = page(client, "/admin/calendars")
    assert "connection saved" in html
    assert microsoft.client_secret not in html
    assert 'placeholder="saved — leave blank to keep"' in html
    with app.app_context():
        org = db.session.scalars(select(Connection)).one()
        assert (org.kind, org.user_id, org.tenant_id) == (
            "microsoft-org",
            None,
            microsoft.tenant_id,
        )
        assert org.reveal_secret() == microsoft.client_secret
        assert microsoft.client_secret not in org.secret_sealed
        from app.admin.settings import get_setting

        assert get_setting("show_event_details") is True

    # Leaving the secret blank keeps it; the switch goes off.
    response = post(client, "/admin/calendars", {**form, "client_secret": "", "show_details": ""})
    assert response.status_code == 303
    with app.app_context():
        org = db.session.scalars(select(Connection)).one()
        assert org.reveal_secret() == microsoft.client_secret
        from app.admin.settings import get_setting

        assert get_setting("show_event_details") is False


def test_admin_refuses_ids_that_are_not_ids(app, client, factory):
    admin = factory.user("administrator", email="admin@example.test")
    login(client, admin.email)
    before = db_state(app)
    cases = [
        (
            {"tenant_id": "not a tenant", "client_id": "11111111-2222-3333-4444-555555555555"},
            "tenant id",
        ),
        (
            {"tenant_id": "contoso.onmicrosoft.com", "client_id": "my-app"},
            "client (application) id",
        ),
        (
            {
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555",
            },
            "Enter the client secret",
        ),
    ]
    for data, message in cases:
        response = post(client, "/admin/calendars", {**data, "client_secret": ""})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True), message
    assert changed_tables(before, db_state(app)) == []


def test_admin_health_table_and_sync_now(app, client, factory, ada, ics_server):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    with app.app_context():
        begin_write()
        connection = db.session.get(Connection, connection_id)
        connection.last_error = "The calendar server had an internal error (500)."
        connection.last_error_at = utcnow()
        connection.next_sync_at = utcnow() + timedelta(hours=2)
        db.session.commit()
    admin = factory.user("administrator", email="admin@example.test")
    login(client, admin.email)
    html = page(client, "/admin/calendars")
    assert "Ada Agent" in html and "ICS subscription" in html
    assert "The calendar server had an internal error (500)." in html
    response = post(
        client, f"/admin/calendars/{connection_id}/sync", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True).lstrip().startswith('<div id="health-table"')
    with app.app_context():
        assert db.session.get(Connection, connection_id).next_sync_at <= utcnow()
    assert post(client, "/admin/calendars/99999/sync").status_code == 404


# --- health, banner, page ---------------------------------------------------------------------


def test_connection_health_states():
    now = utcnow()
    interval = timedelta(minutes=15)

    def health(**fields):
        base = dict(
            needs_relink=False,
            last_error=None,
            last_error_at=None,
            last_success_at=None,
            next_sync_at=None,
            warnings=[],
        )
        return service.connection_health(Connection(**{**base, **fields}), now, interval)

    assert health().state == "never synced"
    ok = health(last_success_at=now - timedelta(minutes=3))
    assert (ok.state, ok.label, ok.tone) == ("ok", "OK", "ok")
    assert health(last_success_at=now, warnings=["Bad TZID"]).state == "warning"
    stale = health(last_success_at=now - timedelta(hours=1))
    assert stale.state == "warning" and "availability ignores" in stale.warnings[0]
    error = health(last_success_at=now, last_error="Server down", last_error_at=now)
    assert (error.state, error.last_error, error.tone) == ("error", "Server down", "bad")
    assert health(needs_relink=True, last_error="Refused").state == "needs re-link"


def test_page_shows_health_in_the_persons_time_zone(app, client, factory, ics_server):
    """ "Last synced 3 min ago" with the local clock time and zone name; errors with their
    message and next try; the empty state before anything is linked."""
    allow_private_urls(app)
    kim = factory.user("agent", email="kim@example.test", timezone="America/New_York")
    login(client, kim.email)
    html = page(client)
    assert "No calendars linked yet." in html
    assert "America/New_York" in html

    connection_id = link_ics(app, kim, ics_server.publish("/rota.ics", default_feed()))
    synced = utcnow() - timedelta(minutes=3)
    with app.app_context():
        begin_write()
        db.session.get(Connection, connection_id).last_success_at = synced
        db.session.commit()
    html = page(client)
    zone = synced.astimezone(kim.zone if hasattr(kim, "zone") else None).tzname()
    assert "Last synced 3 min ago" in html
    assert f"{synced.astimezone(kim.zone):%H:%M} {zone}" in html
    assert "No calendars linked yet." not in html

    with app.app_context():
        begin_write()
        connection = db.session.get(Connection, connection_id)
        connection.last_error = "Could not reach 127.0.0.1: ConnectionError."
        connection.last_error_at = utcnow()
        connection.next_sync_at = utcnow() + timedelta(minutes=30)
        db.session.commit()
    html = page(client)
    assert "The last sync failed" in html and "Could not reach 127.0.0.1" in html
    assert "Next try in 29 min" in html or "Next try in 30 min" in html


def test_relink_banner_for_the_owner_and_for_integration_managers(
    app, client, factory, ada, bo, ics_server
):
    allow_private_urls(app)
    connection_id = link_ics(app, ada, ics_server.publish("/rota.ics", default_feed()))
    with app.app_context():
        begin_write()
        db.session.get(Connection, connection_id).needs_relink = True
        org = Connection(
            kind=ConnectionKind.MICROSOFT_ORG, label="M365", needs_relink=True, warnings=[]
        )
        db.session.add(org)
        db.session.commit()
    login(client, ada.email)
    html = page(client, "/bookings")
    assert "Your ICS calendar “127.0.0.1” needs to be linked again" in html
    assert f'href="/me/calendars#connection-{connection_id}">Fix it' in html
    assert "Microsoft 365 connection needs" not in html  # not Ada's to fix

    bo_client = app.test_client()
    login(bo_client, bo.email)
    assert "needs to be linked again" not in page(bo_client, "/bookings")

    admin = factory.user("administrator", email="admin@example.test")
    admin_client = app.test_client()
    login(admin_client, admin.email)
    html = page(admin_client, "/bookings")
    assert "Microsoft 365 connection needs to be set up again" in html
    assert 'href="/admin/calendars">Fix it' in html


def test_no_secret_is_ever_rendered(
    app, client, factory, ada, caldav_account, ics_server, microsoft
):
    """CalDAV password, feed key and client secret: absent from every page that shows the
    connections, including the forms shown again after an error."""
    allow_private_urls(app)
    microsoft.add_user(ada.email)
    save_org(app, microsoft)
    caldav_id = link_caldav(app, ada, caldav_account)
    feed = ics_server.publish("/private.ics", default_feed()) + "?key=feedkey-s3cr3t"
    ics_id = link_ics(app, ada, feed)
    secrets = [caldav_account.password, "feedkey-s3cr3t", microsoft.client_secret]

    login(client, ada.email)
    pages = [
        page(client),
        page(client, f"/me/calendars?relink={caldav_id}"),
        page(client, f"/me/calendars/{caldav_id}/disconnect"),
        page(client, f"/me/calendars/{ics_id}/disconnect"),
        post(
            client,
            "/me/calendars/caldav",
            {"url": caldav_account.base_url, "username": caldav_account.username, "password": ""},
        ).get_data(as_text=True),
    ]
    admin = factory.user("administrator", email="admin@example.test")
    admin_client = app.test_client()
    login(admin_client, admin.email)
    pages.append(page(admin_client, "/admin/calendars"))
    for html in pages:
        for secret in secrets:
            assert secret not in html
    assert "127.0.0.1" in pages[0] and "/private.ics" in pages[0]  # redacted, no query


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        (
            "https://calendar.google.com/calendar/ical/a%40b.c/private-0f1e2d/basic.ics",
            "https://calendar.google.com/…/basic.ics",
        ),
        (
            "webcal://p01-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEy",
            "webcal://p01-caldav.icloud.com/…/",
        ),
        ("https://example.test/rota.ics?key=s3cr3t", "https://example.test/rota.ics"),
        ("https://example.test/abcdef0123456789", "https://example.test/…/"),
        (
            "https://example.test/feeds/3f9a1c2b5d6e7f8091a2b3c4d5e60718.ics",
            "https://example.test/…/",
        ),
        ("https://example.test/3f9a1c2b5d6e7f8091a2.ics", "https://example.test/…/"),
        ("https://example.test/team-rota-2030.ics", "https://example.test/team-rota-2030.ics"),
        ("https://user:s3cr3t@example.test/rota.ics", "https://example.test/rota.ics"),
        ("https://example.test:8443/", "https://example.test:8443/"),
    ],
)
def test_feed_addresses_are_kept_only_redacted(address, kept):
    assert service.redacted_feed_url(address) == kept


def test_microsoft_redirect_uri_ignores_a_forged_host(app, microsoft):
    """The redirect URI comes from SLOTBOOK_BASE_URL, never from the request's Host header."""
    from app.connections.providers import provider_settings

    with app.test_request_context("/me/calendars", base_url="http://evil.example"):
        assert provider_settings().redirect_uri == CALLBACK
