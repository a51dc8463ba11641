"""Google calendars in a real browser (issue [12]): an administrator enters the OAuth client
and uploads the Workspace service account key on the organisation screen; a person connects
their own Google account through the local Google stand-in's consent redirect; a person
covered by the Workspace link whom the service account may not act for is told so.
Screenshots: ``admin-calendars-google``, ``calendars-google-linked`` and
``calendars-google-workspace`` (each also at phone width)."""

from __future__ import annotations

import json

from playwright.sync_api import expect
from sqlalchemy import select

from app.connections.models import Connection, ConnectionKind
from app.connections.sync import sync_connection
from app.extensions import db
from tests.browser.conftest import PHONE_WIDTH, htmx_settled, shoot, sign_in


def _point_at(app, live_server, google_server) -> None:
    app.config.update(**google_server.config(), SLOTBOOK_BASE_URL=live_server)
    google_server.redirect_uris.add(f"{live_server}/me/calendars/google/callback")


def _sync_all(app) -> None:
    with app.app_context():
        ids = db.session.scalars(select(Connection.id).order_by(Connection.id)).all()
        for connection_id in ids:
            sync_connection(connection_id)
        db.session.remove()


def test_admin_sets_up_google_and_people_link_or_are_covered(
    app, factory, live_server, browser, google_server, tmp_path
):
    _point_at(app, live_server, google_server)
    admin = factory.user("administrator", email="olu@school.example", name="Olu Admin")
    ada = factory.user("agent", email="ada@school.example", name="Ada Agent")
    dan = factory.user("agent", email="dan@school.example", name="Dan Dunn")
    for person in (admin, ada, dan):
        google_server.add_account(person.email, person.name)
    google_server.add_account("ada@gmail.example", "Ada at home")
    google_server.add_calendar("ada@gmail.example", "Family", access_role="reader")
    google_server.deny_delegation(dan.email)
    key_file = tmp_path / "slotbook-sync-key.json"
    key_file.write_text(json.dumps(google_server.service_account_info()))
    with app.app_context():
        from app.admin.settings import set_setting
        from app.database import begin_write

        begin_write()
        set_setting("primary_calendar_provider", "google")
        db.session.commit()

    # The Chromium profile trusts the stand-in's throw-away certificate authority only here.
    context = browser.new_context(
        viewport={"width": 1280, "height": 860},
        timezone_id="Europe/London",
        locale="en-GB",
        ignore_https_errors=True,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, live_server, admin.email)
        page.goto(f"{live_server}/admin/calendars")
        expect(page.get_by_role("heading", name="Google", exact=True)).to_be_visible()
        page.get_by_label("OAuth client id").fill(google_server.client_id)
        page.get_by_label("OAuth client secret").fill(google_server.client_secret)
        page.get_by_role("button", name="Save OAuth client").click()
        expect(page.get_by_text("Google OAuth client saved")).to_be_visible()
        page.get_by_label("Service account key (JSON)").set_input_files(str(key_file))
        page.get_by_label("Workspace domains").fill("school.example")
        page.get_by_role("button", name="Save Workspace connection").click()
        expect(page.get_by_text("Google Workspace connection saved")).to_be_visible()
        _sync_all(app)
        page.reload()
        expect(page.get_by_text(f"Saved for {google_server.sa_email}")).to_be_visible()
        expect(page.get_by_text("Covers 3 people.")).to_be_visible()
        assert "PRIVATE KEY" not in page.content()
        assert google_server.client_secret not in page.content()
        shoot(page, "admin-calendars-google")

        # Ada links her own Google account: Google's consent answers with a redirect back.
        context.clear_cookies()  # sign out
        sign_in(page, live_server, ada.email)
        page.goto(f"{live_server}/me/calendars")
        google_server.sign_in_as("ada@gmail.example")
        page.get_by_role("button", name="Connect Google account").click()
        page.wait_for_url(f"{live_server}/me/calendars**")
        expect(page.get_by_text("Linked “ada@gmail.example”")).to_be_visible()
        section = page.get_by_role("region", name="ada@gmail.example")
        expect(section).to_be_visible()
        expect(section.get_by_role("group", name="Family (read-only)")).to_be_visible()
        _sync_all(app)
        page.reload()
        htmx_settled(page)
        shoot(page, "calendars-google-linked")
        with app.app_context():
            kinds = db.session.scalars(
                select(Connection.kind).where(Connection.user_id == ada.id)
            ).all()
            assert kinds == [ConnectionKind.GOOGLE]
            db.session.rollback()

        # Dan is covered by the Workspace link, which may not act for him: his page says so.
        context.clear_cookies()  # sign out
        sign_in(page, live_server, dan.email)
        page.goto(f"{live_server}/me/calendars")
        expect(page.get_by_text("Google Workspace · set up by an administrator")).to_be_visible()
        expect(page.get_by_text("Your calendar could not be read")).to_be_visible()
        expect(page.get_by_text("domain-wide delegation", exact=False)).to_be_visible()
        shoot(page, "calendars-google-workspace")
        assert page.viewport_size["width"] > PHONE_WIDTH
    finally:
        context.close()
