"""The booking type and group screens in a real browser: a group filled with the picker, a
type drawing on it whose "next free times" follow the unsaved duration, axe-checked and
screenshotted at desk and phone width."""

from __future__ import annotations

from tests.browser.conftest import htmx_settled, shoot, sign_in


def _preview_times(page) -> list[str]:
    page.wait_for_timeout(600)  # the preview waits 400 ms after a change
    htmx_settled(page)
    return page.locator("#bt-preview time").all_inner_texts()


def test_group_and_booking_type_screens(app, live_server, page, factory):
    """Create a group, add a member with the picker, make a type that draws on the group and
    watch the preview change with the duration, then save it."""
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    ada = factory.user("agent", name="Ada Agent")
    sign_in(page, live_server, owner.email)

    page.goto(f"{live_server}/admin/groups")
    shoot(page, "groups-empty")
    page.get_by_label("Name").fill("Assessors")
    page.get_by_role("button", name="Create group").click()
    page.wait_for_url("**/admin/groups/*")
    page.get_by_label("Add a member").select_option(label=f"Ada Agent (Agent, {ada.email})")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text("Ada Agent added to Assessors.").wait_for()
    shoot(page, "group-members")

    page.goto(f"{live_server}/admin/booking-types/new")
    htmx_settled(page)  # the live preview listens only once htmx has bound the form
    page.get_by_label("Name", exact=True).fill("EPA review")
    page.get_by_label("A group", exact=True).check()
    page.get_by_label("Group (when availability comes from a group)").select_option(
        label="Assessors (1 member)"
    )
    hour = _preview_times(page)
    assert len(hour) == 5 and all("GMT" in t or "BST" in t for t in hour)
    page.get_by_label("Duration (minutes)").fill("30")
    page.get_by_label("Duration (minutes)").dispatch_event("change")
    half = _preview_times(page)
    assert len(half) == 5 and half != hour
    shoot(page, "booking-type-new")
    page.get_by_role("button", name="Create booking type").click()
    page.wait_for_url("**/admin/booking-types/*")
    page.get_by_text("Booking type EPA review created.").wait_for()
    shoot(page, "booking-type-edit")

    page.goto(f"{live_server}/admin/booking-types")
    assert page.get_by_role("link", name="EPA review").is_visible()
    shoot(page, "booking-types")
    page.goto(f"{live_server}/admin/groups")
    shoot(page, "groups")
