"""The bell in a real browser (acceptance 6): someone else books the viewer, the outbox is
delivered as the worker would, and the count in the header rises without a reload; then the
list, and "Mark as read" through HTMX bringing the count back down. Screenshot:
``notifications.png``."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.jobs import deliver_outbox_message
from app.outbox import PENDING, OutboxMessage
from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.conftest import at


def _deliver_pending(app, rounds: int = 5) -> None:
    """Deliver every pending outbox row in id order, as the worker does, until none is left
    (planning a booking change adds the email rows it plans)."""
    for _ in range(rounds):
        with app.app_context():
            ids = db.session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.status == PENDING)
                .order_by(OutboxMessage.id)
            ).all()
            db.session.rollback()
        if not ids:
            return
        for message_id in ids:
            with app.app_context():
                deliver_outbox_message(message_id)
                db.session.remove()


def test_bell_count_rises_when_someone_else_books_the_viewer(
    app, factory, live_server, page, tmp_path
):
    """A is signed in on the calendar; B books a meeting with A; A's bell shows 1 without the
    page reloading, the list shows the meeting, and "Mark as read" clears the badge."""
    app.config["SLOTBOOK_BELL_POLL_SECONDS"] = 1
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "mail")  # no SMTP here: emails are filed
    ada = factory.user("agent", email="ada@example.test", name="Ada Lovelace")
    bo = factory.user("booking-manager", email="bo@example.test", name="Bo Manager")
    kind = factory.booking_type(name="Gateway review")

    sign_in(page, live_server, ada.email)
    bell = page.get_by_role("link", name="Notifications", exact=True)
    expect(bell).to_be_visible()
    expect(page.locator("#bell-count")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#bell-count .bell-badge")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")

    booking = factory.booking(bo, kind, at(3), [bo, ada], title="Gateway review with Bo")
    _deliver_pending(app)

    # The poll (every second here) brings the new count; the page was never reloaded.
    expect(page.locator("#bell-count .bell-badge")).to_have_text("1")
    expect(page.get_by_role("link", name="Notifications 1 unread")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_role("link", name="Notifications 1 unread").click()
    page.wait_for_url(f"{live_server}/me/notifications")
    htmx_settled(page)
    item = page.locator("li.notification.is-unread")
    expect(item).to_have_count(1)
    expect(item.get_by_role("link")).to_have_attribute("href", f"/bookings/{booking.id}")
    expect(item).to_contain_text("Gateway review")
    shoot(page, "notifications")

    item.get_by_role("button", name="Mark as read").click()
    htmx_settled(page)
    expect(page.locator("li.notification.is-unread")).to_have_count(0)
    expect(page.locator("li.notification")).to_have_count(1)
    expect(page.locator("#bell-count .bell-badge")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("as read")
    assert page.url == f"{live_server}/me/notifications"
