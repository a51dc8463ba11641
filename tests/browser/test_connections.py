"""Linking calendars in a real browser: add an ICS feed (checked in the background while the
page polls), change a choice (HTMX), disconnect through the confirm step; the organisation
screen with its health table. Screenshots: ``calendars-checking.png``,
``calendars-linked.png`` and ``admin-calendars.png``."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from app.connections import service
from app.connections.models import BusyBlock, Connection, LinkedCalendar
from app.connections.sync import sync_connection
from app.database import begin_write, utcnow
from app.extensions import db
from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.connections import conftest as _calendar_servers
from tests.connections import test_cli as _cli
from tests.connections.test_cli import allow_private_urls, default_feed
from tests.connections.test_linking import run_link_checks
from tests.fakes import graph_server as _fake_microsoft

# Fixtures of other modules, used here by name.
ics_server = _cli.ics_server
radicale = _calendar_servers.radicale
caldav_account = _calendar_servers.caldav_account
graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls


def _link_caldav_for(app, user_id: int, account) -> int:
    """A CalDAV account linked and synced beforehand, so the page shows a healthy one too."""
    from app.accounts.models import User

    with app.app_context():
        begin_write()
        connection = service.add_caldav(
            db.session.get(User, user_id), account.base_url, account.username, account.password
        )
        connection.label = "ada@fastmail.example"  # how a real account reads on screen
        db.session.commit()
        connection_id = connection.id
        sync_connection(connection_id)
        return connection_id


def _organisation_on(app, ms, *people) -> None:
    """The organisation's Microsoft 365 connection (local stand-in), saved and synced."""
    app.config.update(MS_AUTHORITY_HOST=ms.authority_host, MS_GRAPH_URL=ms.graph_url)
    for person in people:
        ms.add_user(person.email, person.name)
    with app.app_context():
        begin_write()
        org = service.save_organisation_connection(
            ms.tenant_id, ms.client_id, ms.client_secret, False
        )
        db.session.commit()
        assert sync_connection(org.id).error is None


def _broken_feed_for(app, user_id: int) -> None:
    """Another person's feed whose server keeps failing: an error row in the health table."""
    from app.connections.models import ConnectionKind

    with app.app_context():
        begin_write()
        url = "https://calendars.example.org/rota.ics"
        connection = Connection(
            kind=ConnectionKind.ICS,
            user_id=user_id,
            url=url,
            label="calendars.example.org",
            last_success_at=utcnow() - timedelta(hours=5),
            last_error="The calendar server had an internal error (503).",
            last_error_at=utcnow() - timedelta(minutes=4),
            next_sync_at=utcnow() + timedelta(minutes=26),
            failure_count=3,
        )
        connection.calendars.append(
            LinkedCalendar(person_id=user_id, remote_id=url, name="Rota", writable=False)
        )
        db.session.add(connection)
        db.session.commit()


def test_link_a_feed_choose_and_disconnect(
    app, factory, live_server, page, ics_server, caldav_account, graph_server
):
    """Calendars → add an ICS feed → untick "Counts for availability" → Disconnect… → confirm."""
    allow_private_urls(app)
    ada = factory.user("administrator", email="ada@example.test", name="Ada Lovelace")
    bo = factory.user("agent", email="bo@example.test", name="Bo Brown")
    _link_caldav_for(app, ada.id, caldav_account)
    _broken_feed_for(app, bo.id)
    _organisation_on(app, graph_server, ada, bo)
    feed = ics_server.publish("/team-rota.ics", default_feed())

    sign_in(page, live_server, ada.email)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Calendars", exact=True).click()
    expect(page.get_by_role("heading", name="Calendars", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Calendars", exact=True)).to_have_attribute(
        "aria-current", "page"
    )

    page.get_by_label("Feed URL").fill(feed)
    page.get_by_role("button", name="Check and subscribe").click()
    check = page.locator("#link-check")
    expect(check).to_have_attribute("role", "status")
    expect(check).to_contain_text("Checking “127.0.0.1” with its server…")
    expect(page.get_by_role("region", name="127.0.0.1")).to_have_count(0)
    shoot(page, "calendars-checking")
    run_link_checks(app)  # the worker's part; the page notices by itself
    expect(check).to_contain_text("Linked “127.0.0.1” with 1 calendar", timeout=15_000)
    expect(page.get_by_role("region", name="127.0.0.1")).to_be_visible()  # list swapped in
    with app.app_context():
        feed_id = db.session.scalars(
            select(Connection.id).where(Connection.kind == "ics", Connection.user_id == ada.id)
        ).one()
        sync_connection(feed_id)  # what the worker does within a minute
    page.goto(f"{live_server}/me/calendars")
    expect(page.get_by_role("region", name="From your organisation")).to_contain_text("OK")
    feed_card = page.get_by_role("region", name="127.0.0.1")
    expect(feed_card.get_by_text("OK", exact=True)).to_be_visible()
    expect(feed_card).to_contain_text("Last synced just now")
    available = feed_card.get_by_label("Counts for availability")
    expect(available).to_be_checked()
    expect(feed_card.get_by_label("Receives bookings")).to_be_disabled()
    shoot(page, "calendars-linked")

    available.uncheck()
    htmx_settled(page)
    expect(page.get_by_role("status").first).to_contain_text(
        "Saved: “Team rota” does not count for availability."
    )
    expect(feed_card.get_by_label("Counts for availability")).not_to_be_checked()
    expect(feed_card.get_by_label("Counts for availability")).to_be_focused()
    with app.app_context():
        calendar = db.session.scalars(
            select(LinkedCalendar).where(LinkedCalendar.connection_id == feed_id)
        ).one()
        assert calendar.use_for_availability is False
        assert (
            db.session.scalars(select(BusyBlock).where(BusyBlock.calendar_id == calendar.id)).all()
            == []
        )

    feed_card.get_by_role("link", name="Disconnect… 127.0.0.1").click()
    htmx_settled(page)
    confirm = feed_card.get_by_role("group", name="Disconnect “127.0.0.1”?")
    expect(confirm).to_contain_text("Your bookings stay")
    with app.app_context():
        assert db.session.get(Connection, feed_id) is not None  # asking changed nothing
    confirm.get_by_role("button", name="Yes, disconnect").click()
    htmx_settled(page)
    message = page.get_by_role("status").first
    expect(message).to_contain_text("Disconnected “127.0.0.1”")
    expect(message).to_be_focused()
    expect(page.get_by_role("region", name="127.0.0.1")).to_have_count(0)
    with app.app_context():
        assert db.session.get(Connection, feed_id) is None

    page.get_by_role("link", name="Organisation calendar settings").click()
    expect(page.get_by_role("heading", name="Calendar connections")).to_be_visible()
    expect(page.get_by_label("Client secret", exact=True)).to_have_attribute("type", "password")
    table = page.locator("#health-table")
    expect(table).to_contain_text("Bo Brown")
    expect(table).to_contain_text("internal error (503)")
    shoot(page, "admin-calendars")
    table.get_by_role("button", name="Sync now calendars.example.org").click()
    htmx_settled(page)
    expect(page.get_by_role("status").first).to_contain_text(
        "“calendars.example.org” will be synced within a minute."
    )
