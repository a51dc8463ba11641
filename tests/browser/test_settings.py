"""Settings screens in a real browser (issue [09] acceptance 2 and 6): every section passes
axe at desk and phone widths; a change saved through HTMX shows in the recent changes; an
unreadable colour pair is refused with its ratio; "Send test email" reaches the local SMTP
server and a closed port is reported in words; the public picker wears the saved colours.
Screenshots: ``settings-<section>.png``, ``settings-contrast-refused.png``,
``settings-test-email.png``, ``settings-picker-colours.png``."""

from __future__ import annotations

from playwright.sync_api import expect

from app.admin.settings import SECTIONS
from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.conftest import free_port
from tests.notifications import conftest as _mail
from tests.public import conftest as _public

smtp_server = _mail.smtp_server  # the real local SMTP server fixture
public = _public.public  # one agent and a public booking type

SCREENS = [s for s in SECTIONS if s.endpoint is None]


def _admin(factory):
    return factory.user("administrator", email="admin@example.test", name="Adam Admin")


def test_every_section_is_accessible_and_a_change_is_saved(app, factory, live_server, page):
    """Each section renders its fields and passes axe; saving one change through HTMX says
    so and lists it under Recent changes, and the navigation links Notifications."""
    admin = _admin(factory)
    sign_in(page, live_server, admin.email)
    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name="Settings", exact=True).click()
    expect(page).to_have_url(f"{live_server}/admin/settings/general")
    nav = page.get_by_role("navigation", name="Settings sections")
    expect(nav.get_by_role("link", name="Notifications")).to_have_attribute(
        "href", "/admin/notifications"
    )
    for section in SCREENS:
        nav.get_by_role("link", name=section.title, exact=True).click()
        expect(page.get_by_role("heading", name=section.title, exact=True)).to_be_visible()
        expect(nav.get_by_role("link", name=section.title, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        shoot(page, f"settings-{section.slug}")

    nav.get_by_role("link", name="Time", exact=True).click()
    page.get_by_label("Reminder before meetings (minutes)").fill("45")
    page.get_by_role("button", name="Save Time settings").click()
    htmx_settled(page)
    expect(page.get_by_role("status")).to_have_text("Time settings saved (1 changed).")
    changes = page.locator("#settings-changes")
    expect(changes).to_contain_text("Reminder before meetings (minutes)")
    expect(changes).to_contain_text("60 → 45")
    expect(changes).to_contain_text("Adam Admin")
    page.reload()
    expect(page.get_by_label("Reminder before meetings (minutes)")).to_have_value("45")


def test_unreadable_colours_are_refused_and_readable_ones_reach_the_picker(
    app, factory, live_server, page, public
):
    """A light grey text on the available green is refused with the ratio (nothing saved);
    a readable choice is saved and the public picker's times use it."""
    admin = _admin(factory)
    sign_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/settings/ux")
    page.get_by_label("Time slot text colour").fill("#999999")
    page.get_by_role("button", name="Save UX preferences settings").click()
    htmx_settled(page)
    alert = page.locator("#settings-errors")
    expect(alert).to_contain_text("Nothing was saved.")
    expect(alert).to_contain_text("has a contrast of")
    expect(alert).to_contain_text("at least 4.5:1 (WCAG AA)")
    background = page.get_by_label("Available time slot background")
    expect(background).to_have_attribute("aria-invalid", "true")
    shoot(page, "settings-contrast-refused")
    page.reload()
    expect(page.get_by_label("Time slot text colour")).to_have_value("#1d2330")

    page.get_by_label("Time slot text colour").fill("#000000")
    page.get_by_label("Available time slot background").fill("#ffe08a")
    page.get_by_role("button", name="Save UX preferences settings").click()
    htmx_settled(page)
    expect(page.get_by_role("status")).to_contain_text("UX preferences settings saved")

    page.goto(f"{live_server}/book/consultation")
    slot = page.locator("label.slot").first
    expect(slot).to_be_visible()
    expect(slot).to_have_css("background-color", "rgb(255, 224, 138)")
    expect(slot).to_have_css("color", "rgb(0, 0, 0)")
    shoot(page, "settings-picker-colours")


def test_send_test_email_reports_success_and_smtp_errors(
    app, factory, live_server, page, smtp_server
):
    """The test email reaches the local SMTP server with the saved sender; with nothing
    listening on the port, the screen says the connection was refused."""
    admin = _admin(factory)
    sign_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/settings/mailer")
    page.get_by_label("Mailer from name").fill("Riverside Desk")
    page.get_by_label("Mailer from address").fill("desk@riverside.example")
    page.get_by_label("Reply-to address").fill("help@riverside.example")
    page.get_by_role("button", name="Save Mailer settings").click()
    htmx_settled(page)
    expect(page.get_by_role("status")).to_contain_text("Mailer settings saved (3 changed)")

    page.get_by_role("button", name="Send test email").click()
    htmx_settled(page)
    expect(page.locator("#test-email-message")).to_contain_text(
        "A test email was sent to admin@example.test"
    )
    [mail] = smtp_server.to("admin@example.test")
    assert mail.message["From"] == "Riverside Desk <desk@riverside.example>"
    assert mail.message["Reply-To"] == "help@riverside.example"
    shoot(page, "settings-test-email")

    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    page.get_by_role("button", name="Send test email").click()
    htmx_settled(page)
    message = page.locator("#test-email-message")
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text("was refused: nothing is listening there")
    shoot(page, "settings-test-email-error")
