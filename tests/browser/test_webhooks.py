"""The webhook screens in a real browser: register an endpoint (a real receiver on loopback),
copy the secret shown once, see a signed delivery and a refused one in the log, axe-checked
and screenshotted at desk and phone width."""

from __future__ import annotations

from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.conftest import at
from tests.webhooks.conftest import Receiver, run_outbox


def test_register_a_webhook_see_its_secret_once_and_its_deliveries(app, live_server, page, factory):
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = True
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    sign_in(page, live_server, owner.email)

    with Receiver() as receiver:
        page.goto(f"{live_server}/admin/webhooks")
        page.get_by_role("link", name="Webhooks").wait_for()
        shoot(page, "webhooks-empty")

        page.get_by_label("Address (URL)").fill(receiver.url("/slotbook"))
        page.get_by_label("booking.rejected").uncheck()
        page.get_by_role("button", name="Add webhook").click()
        page.get_by_role("heading", name="Webhook added").wait_for()
        secret = page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")
        shoot(page, "webhook-created")

        page.get_by_role("link", name="Open this webhook and its delivery log").click()
        page.get_by_text("Nothing sent yet.").wait_for()
        assert secret not in page.content()

        factory.booking(owner, factory.booking_type(name="EPA review"), at(2, 10), [owner])
        run_outbox(app)
        [request] = receiver.received
        assert request.signed_with(secret)

        page.get_by_role("link", name="Refresh the delivery log").click()
        htmx_settled(page)
        row = page.locator("#webhook-deliveries tbody tr")
        assert row.count() == 1
        assert "booking.created" in row.inner_text() and "Delivered" in row.inner_text()
        shoot(page, "webhook-log")

        page.goto(f"{live_server}/admin/webhooks")
        assert page.get_by_role("link", name=receiver.url("/slotbook")).is_visible()
        shoot(page, "webhooks")

    # The receiver is gone: the next event's attempt is logged as an error in words.
    app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    factory.booking(owner, factory.booking_type(name="Gateway"), at(3, 10), [owner])
    run_outbox(app)
    page.get_by_role("link", name=receiver.url("/slotbook")).click()
    failed = page.locator("#webhook-deliveries tbody tr").first
    assert "Could not connect to 127.0.0.1." in failed.inner_text()
    assert "Failed" in failed.inner_text()
    shoot(page, "webhook-log-failed")

    page.get_by_role("link", name="Delete this webhook…").click()
    page.get_by_role("heading", name="Delete this webhook?").wait_for()
    shoot(page, "webhook-delete")
    page.get_by_role("button", name="Delete webhook").click()
    page.get_by_text("deleted, with its delivery log").wait_for()
    page.get_by_text("No webhooks yet.").wait_for()
