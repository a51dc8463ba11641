"""Off-the-job hours in a real browser (issue 12, acceptance 5, OTJ half): the nightly job reads
two ended Teams meetings from the Graph stand-in; staff correct the one held on another day on
its booking page, then the off-the-job report shows both verified minutes, per learner and
month; the learner sees them on their own page. Axe-checked, screenshots at both widths."""

from __future__ import annotations

from tests.browser.conftest import htmx_settled, shoot, sign_in
from tests.conftest import at
from tests.teams.test_attendance import (  # noqa: F401  (fixtures)
    LEARNER,
    TUTOR,
    _graph_tls,
    ended_teams_booking,
    graph_server,
    ms,
    nightly,
    people,
    session,
)


def test_staff_review_and_the_report_show_verified_minutes(
    app,
    live_server,
    page,
    factory,
    people,  # noqa: F811 - the fixture imported above, by name
    ms,  # noqa: F811
):
    on_the_day, meeting = ended_teams_booking(app, factory, people)
    session(ms, meeting, at(-1, 10), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 3000)])
    other_day, late = ended_teams_booking(app, factory, people, days_ago=2, hour=14)
    session(ms, late, at(-1, 16), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 2700)])
    nightly(app)

    manager = factory.user("booking-manager", email="mo@example.test", name="Mo Manager")
    sign_in(page, live_server, manager.email)
    page.goto(f"{live_server}/bookings/{other_day}")
    box = page.locator(f"#attendance-{other_day}")
    assert "Needs review" in box.inner_text()
    assert "not on the day it was booked for" in box.inner_text()
    minutes = page.get_by_label("Off-the-job minutes")
    assert minutes.input_value() == "45"  # what the rules would give, proposed
    shoot(page, "otj-needs-review")
    minutes.fill("40")
    page.get_by_role("button", name="Record these minutes").click()
    page.get_by_text("Off-the-job minutes recorded.").wait_for()
    assert "40 min verified" in page.locator(f"#attendance-{other_day}").inner_text()
    history = page.locator("ol.audit").inner_text()
    assert "Progress review hours verified" in history and "Mo Manager" in history

    page.get_by_role("link", name="Off-the-job hours").click()
    htmx_settled(page)
    table = page.locator("table.otj-table")
    assert "Lee Learner" in table.inner_text()
    shoot(page, "otj-report")

    page.get_by_role("link", name="Lee Learner").click()
    htmx_settled(page)
    lines = page.locator("section[aria-labelledby='otj-lines-h']").inner_text()
    assert "50 min" in lines and "40 min" in lines and "Verified" in lines
    assert page.get_by_role("link", name="Download CSV").is_visible()
    shoot(page, "otj-report-learner")

    page.goto(f"{live_server}/bookings/{on_the_day}")
    assert "50 min verified" in page.locator(f"#attendance-{on_the_day}").inner_text()

    page.context.clear_cookies()
    sign_in(page, live_server, LEARNER)
    page.goto(f"{live_server}/me/book")
    mine = page.locator("section[aria-labelledby='otj-mine-h']")
    assert "1 h 30 min" in mine.inner_text() or (
        "50 min" in mine.inner_text() and "40 min" in mine.inner_text()
    )
    shoot(page, "otj-learner-page")
