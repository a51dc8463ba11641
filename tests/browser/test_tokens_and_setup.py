"""Issue [09] in the browser: API tokens at /me/tokens (made with a name, shown once with a
copy button, listed, revoked after a confirmation, refused by the API afterwards; owners see
everyone's) and the first-run checklist an owner of an empty database lands on."""

from __future__ import annotations

import urllib.error
import urllib.request

from playwright.sync_api import expect

from tests.browser.conftest import shoot, sign_in
from tests.conftest import PASSWORD


def _api_status(base: str, token: str) -> int:
    request = urllib.request.Request(
        f"{base}/api/v1/booking-types", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tokens_made_shown_once_revoked_and_seen_by_the_owner(app, live_server, page, factory):
    agent = factory.user("agent", email="aled@example.test", name="Aled Agent")
    factory.user("owner", email="olive@example.test", name="Olive Owner")
    factory.booking_type(name="Review")
    sign_in(page, live_server, agent.email)

    page.get_by_role("link", name="Profile").click()
    page.get_by_role("main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", level=1)).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()

    page.get_by_role("button", name="Create token").click()  # no name: a clear message
    expect(page.get_by_text("Give the token a name")).to_be_visible()
    page.get_by_label("Token name").fill("Nightly export")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("you will not see it again")).to_be_visible()
    expect(page.get_by_role("button", name="Copy token")).to_be_visible()
    token = page.get_by_label("New API token").input_value()
    assert token.startswith("sb") and len(token) > 30
    expect(page.get_by_role("cell", name="Nightly export", exact=True)).to_be_visible()
    shoot(page, "tokens-new")
    assert _api_status(live_server, token) == 200

    page.goto(f"{live_server}/me/tokens")
    expect(page.get_by_label("New API token")).to_have_count(0)  # shown once only
    expect(page.get_by_role("cell", name="Nightly export", exact=True)).to_be_visible()
    shoot(page, "tokens-list")

    page.get_by_role("link", name="Revoke Nightly export").click()
    expect(page.get_by_role("heading", name="Revoke the token “Nightly export”?")).to_be_visible()
    shoot(page, "tokens-revoke-confirm")
    page.get_by_role("button", name="Revoke “Nightly export”").click()
    expect(page.get_by_text("it no longer opens the API")).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    assert _api_status(live_server, token) == 401

    # The owner sees everyone's tokens and may revoke them.
    page.get_by_label("Token name").fill("Calendar sync")
    page.get_by_role("button", name="Create token").click()
    second = page.get_by_label("New API token").input_value()
    page.context.clear_cookies()
    sign_in(page, live_server, "olive@example.test", PASSWORD)
    page.goto(f"{live_server}/me/tokens")
    page.get_by_role("link", name="Everyone's API tokens").click()
    expect(page.get_by_role("cell", name="Calendar sync", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Aled Agent aled@example.test")).to_be_visible()
    shoot(page, "tokens-everyone")
    page.get_by_role("link", name="Revoke Calendar sync of Aled Agent").click()
    page.get_by_role("button", name="Revoke “Calendar sync”").click()
    expect(page.get_by_text("Revoked Aled Agent's token")).to_be_visible()
    expect(page.get_by_text("Nobody has a live API token.")).to_be_visible()
    assert _api_status(live_server, second) == 401


def test_first_run_checklist_on_an_empty_database(app, live_server, page, factory):
    result = app.test_cli_runner().invoke(
        args=["create-owner", "olive@example.test", "--name", "Olive Owner", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    sign_in(page, live_server, "olive@example.test")
    assert page.url == f"{live_server}/calendar"
    expect(page.get_by_role("heading", name="Set up your organisation")).to_be_visible()
    expect(page.get_by_text("0 of 6 steps done.")).to_be_visible()
    steps = page.locator(".setup-step")
    expect(steps).to_have_count(6)
    expect(page.locator(".setup-step .badge", has_text="To do")).to_have_count(6)
    shoot(page, "first-run-checklist")

    # A step done elsewhere ticks itself.
    page.locator("#setup-hours").get_by_role("link").click()
    page.get_by_label("Monday range 1 start").fill("09:00")
    page.get_by_label("Monday range 1 end").fill("17:00")
    page.get_by_role("button", name="Save working hours").click()
    expect(page.get_by_text("Working hours saved.")).to_be_visible()
    page.get_by_role("link", name="Calendar", exact=True).click()
    expect(page.locator("#setup-hours .badge")).to_have_text("Done")
    expect(page.get_by_text("1 of 6 steps done.")).to_be_visible()

    page.get_by_role("link", name="Show the calendar anyway").click()
    expect(page.locator(".cal-page")).to_be_visible()

    # Staff and a booking type: the calendar itself from then on.
    factory.booking_type(name="Review")
    factory.user("agent", name="Aled Agent")
    page.goto(f"{live_server}/calendar")
    expect(page.locator(".cal-page")).to_be_visible()
    expect(page.get_by_role("heading", name="Set up your organisation")).to_have_count(0)
