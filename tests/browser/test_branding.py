"""Branding in a real browser (issue [09]): the contrast check refuses an unreadable colour,
an SVG with a script and a 5 MB file are refused with clear messages, a logo uploaded through
the form shows on /book in the new colour, and removing it asks first. Axe-checked and
screenshotted at desk and phone width."""

from __future__ import annotations

from tests.browser.conftest import shoot, sign_in
from tests.public import conftest as _public

public = _public.public  # public scheduling on, with one public booking type

LOGO_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="150" height="40" viewBox="0 0 150 40">'
    b'<rect width="150" height="40" rx="6" fill="#ffffff"/>'
    b'<circle cx="20" cy="20" r="12" fill="#1f6f43"/>'
    b'<text x="40" y="27" font-family="Arial" font-size="18" font-weight="bold" '
    b'fill="#1f6f43">Acme</text></svg>'
)
SCRIPTED_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _upload(page, name: str, data: bytes, mime: str) -> None:
    page.get_by_label("Upload a logo").set_input_files(
        {"name": name, "mimeType": mime, "buffer": data}
    )
    page.get_by_role("button", name="Upload logo").click()
    page.wait_for_load_state()


def test_branding_through_the_screen(app, live_server, page, factory, public):
    """Refusals first (contrast, scripted SVG, 5 MB), then a logo and colour that /book shows,
    then removing the logo after a confirmation."""
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    sign_in(page, live_server, owner.email)
    page.goto(f"{live_server}/admin/settings/branding")
    assert page.get_by_role("link", name="Branding").first.get_attribute("aria-current") == "page"
    shoot(page, "settings-branding")

    page.get_by_label("Primary colour").fill("#ffcc00")
    page.get_by_role("button", name="Save name and colour").click()
    error = page.locator("#b-colour-error")
    error.wait_for()
    assert "contrast ratio is 1.51:1 and at least 4.5:1 is needed" in error.inner_text()
    assert page.get_by_label("Primary colour").get_attribute("aria-invalid") == "true"
    shoot(page, "settings-branding-contrast")

    page.get_by_label("Organisation name").fill("Acme Training")
    page.get_by_label("Primary colour").fill("#1f6f43")
    page.get_by_role("button", name="Save name and colour").click()
    page.get_by_text("Branding saved").wait_for()

    _upload(page, "logo.svg", SCRIPTED_SVG, "image/svg+xml")
    assert "may not contain a <script> element" in page.locator("#b-logo-error").inner_text()
    _upload(page, "huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), "image/png")
    message = page.locator("#b-logo-error").inner_text()
    assert "The file is 5.0 MB; a logo may be at most 512 KB. Nothing was changed." in message
    shoot(page, "settings-branding-too-large")

    _upload(page, "acme.svg", LOGO_SVG, "image/svg+xml")
    page.get_by_text(f"Logo uploaded (SVG, {len(LOGO_SVG)} bytes).").wait_for()
    shoot(page, "settings-branding-logo")

    page.goto(f"{live_server}/book")
    logo = page.locator("header.pub-header img.pub-logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    header = page.locator("header.pub-header")
    assert header.evaluate("h => getComputedStyle(h).backgroundColor") == "rgb(31, 111, 67)"
    assert "Acme Training" in header.inner_text()
    shoot(page, "book-branded")
    page.get_by_role("link", name="Consultation").click()
    page.locator("header.pub-header img.pub-logo").wait_for()
    shoot(page, "book-branded-picker")

    page.goto(f"{live_server}/admin/settings/branding")
    assert page.locator("header.topbar img.brand-logo").evaluate("img => img.naturalWidth > 0")
    page.get_by_role("link", name="Remove the logo…").click()
    page.get_by_role("heading", name="Remove the logo?").wait_for()
    shoot(page, "settings-branding-remove")
    page.get_by_role("button", name="Remove the logo").click()
    page.get_by_text("Logo removed").wait_for()
    page.goto(f"{live_server}/book")
    assert page.locator("header.pub-header img").count() == 0
