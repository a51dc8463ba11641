"""Browser fixtures: the app served on loopback and Debian's headless Chromium via Playwright."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
# Test runs keep their screenshots out of the tree; `make screenshots` refreshes docs/.
SCREENSHOTS = Path(
    os.environ.get(
        "SLOTBOOK_SCREENSHOT_DIR",
        Path(__file__).resolve().parents[2] / "test-results" / "screenshots",
    )
)


BROWSER_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items) -> None:
    """Every test in this folder is a browser test (`make screenshots` runs `-m browser`)."""
    for item in items:
        if BROWSER_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_server(app):
    """The test app on a real HTTP port, in a thread, for as long as the test runs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, timezone_id="Europe/London", locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    # Staff land on the calendar, learners and employers on their bookings list.
    page.wait_for_url(lambda url: url.startswith(base_url) and "/login" not in url)


PHONE_WIDTH = 390


def shoot(page, name: str) -> Path:
    """Check the screen with axe-core and save its screenshot, as it is and at a phone's
    width (``<name>-phone.png``): every screen worth a picture is one people use, on a desk
    or on a phone, so each is held to the accessibility bar at both widths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert_accessible(page, name)
    page.screenshot(path=str(path), full_page=True)
    size = page.viewport_size
    if size and size["width"] > PHONE_WIDTH:
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        try:
            assert_accessible(page, f"{name} at {PHONE_WIDTH} px")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        finally:
            page.set_viewport_size(size)
    return path


AXE_SCRIPT = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = {"serious", "critical"}


def assert_accessible(page, context: str = "") -> None:
    """Run axe-core on the page as it is now; fail on serious or critical findings, naming
    the rule and the elements so the fix is obvious."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: `make test` installs axe-core with npm")
    # A page still being parsed has no <head> to take the script (a click that navigated
    # returns once the new document is committed, not loaded).
    page.wait_for_load_state("domcontentloaded")
    if not page.evaluate("() => window.axe !== undefined"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    report = [
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in blocking
    ]
    assert not report, f"accessibility findings on {context or page.url}:\n" + "\n".join(report)


def htmx_settled(page) -> None:
    """Wait until htmx has nothing in flight and has finished settling swapped content: a
    control swapped in is bound (e.g. hx-trigger="change") only then, and a person could not
    act faster than that anyway."""
    page.wait_for_load_state()
    page.wait_for_function(
        "() => window.htmx !== undefined && !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
