"""The account pages a person meets first, in Chromium: an invitation sent from the people
screen arrives by real SMTP, its link sets the password once and signs them in; their profile
changes the zone every time is shown in; forgot-password answers without saying who exists."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import shoot, sign_in
from tests.notifications import conftest as _mail
from tests.notifications.conftest import deliver_all

smtp_server = _mail.smtp_server  # the real local SMTP server fixture

NEW_PASSWORD = "correct horse battery"
LINK_RE = re.compile(r"https?://\S+/set-password/[A-Za-z0-9_\-]+")


def test_invited_person_sets_a_password_and_edits_their_profile(
    app, live_server, page, browser, factory, smtp_server
):
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    sign_in(page, live_server, owner.email)
    page.goto(f"{live_server}/admin/people/new")
    page.get_by_label("Name", exact=True).fill("Ines Invited")
    page.get_by_label("Email", exact=True).fill("ines@example.test")
    page.get_by_label("Role").select_option("agent")
    expect(page.get_by_label("Send an invitation email")).to_be_checked()
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("heading", name="Ines Invited")).to_be_visible()

    deliver_all(app)
    [mail] = smtp_server.to("ines@example.test")
    [link] = set(LINK_RE.findall(mail.text))
    path = urlsplit(link).path

    invited = browser.new_context(
        viewport={"width": 1280, "height": 860}, timezone_id="Europe/London", locale="en-GB"
    )
    try:
        ines = invited.new_page()
        ines.set_default_timeout(10_000)
        ines.goto(f"{live_server}{path}")
        expect(ines.get_by_role("heading", name="Welcome to Slotbook")).to_be_visible()
        shoot(ines, "set-password")
        ines.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        ines.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
        ines.get_by_role("button", name="Set password and sign in").click()
        expect(ines.get_by_text("Your password is set and you are signed in.")).to_be_visible()

        ines.get_by_role("link", name="Profile").click()
        ines.get_by_label("Time zone").select_option("America/New_York")
        ines.get_by_role("button", name="Save profile").click()
        expect(ines.get_by_text("Your profile is saved.")).to_be_visible()
        expect(ines.locator(".facts")).to_contain_text("America/New_York")
        shoot(ines, "profile")

        # The link was used: opening it again explains that, and sets nothing.
        ines.goto(f"{live_server}{path}")
        expect(ines.get_by_text("already been used", exact=False)).to_be_visible()
        expect(ines.get_by_label("New password", exact=True)).to_have_count(0)
    finally:
        invited.close()

    from app.accounts.models import User
    from app.extensions import db

    with app.app_context():
        ines_row = db.session.query(User).filter_by(email="ines@example.test").one()
        assert ines_row.timezone == "America/New_York"
        assert ines_row.check_password(NEW_PASSWORD)
        db.session.rollback()


def test_forgot_password_answers_the_same_for_anyone(app, live_server, page, factory):
    factory.user("agent", email="known@example.test")
    answers = []
    for email in ("known@example.test", "nobody@example.test"):
        page.goto(f"{live_server}/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.wait_for_url("**/forgot-password")
        if not answers:
            shoot(page, "forgot-password")
        page.get_by_label("Email").fill(email)
        page.get_by_role("button", name="Email me a link").click()
        status = page.get_by_role("status")
        expect(status).to_be_visible()
        answers.append(status.inner_text().replace(email, "<email>"))
    assert answers[0] == answers[1]
    shoot(page, "forgot-password-sent")
