"""The booking form and its live day preview (C3): conflicts, quick picks, C2 titles."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from sqlalchemy import func, select

from app.bookings.models import Booking
from app.extensions import db
from tests.bookings.conftest import (
    HX,
    add_busy,
    is_fragment,
    local,
    set_setting,
    varies_on_hx,
    weekday,
)
from tests.conftest import csrf_from, login

PICK_RE = re.compile(r'data-fill-time="(\d\d:\d\d)"')


def _args(cast, day, start=None, people=None, **extra):
    args = {
        "booking_type": cast.review.id,
        "people": [p.id for p in (people or [cast.agent])],
        "learner": 0,
        "day": day.isoformat(),
        **extra,
    }
    if start:
        args["start"] = start
    return urlencode(args, doseq=True)


def _preview(client, cast, day, start=None, **kw):
    return client.get(f"/bookings/preview?{_args(cast, day, start, **kw)}", headers=HX)


def _count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Booking))


def test_form_is_a_fragment_for_htmx_and_a_page_otherwise(app, client, cast):
    """GET /bookings/new: the drawer form for HTMX, the page without; both Vary."""
    login(client, cast.manager.email)
    fragment = client.get("/bookings/new", headers=HX)
    assert fragment.status_code == 200 and is_fragment(fragment) and varies_on_hx(fragment)
    html = fragment.get_data(as_text=True)
    assert 'hx-post="/bookings/new"' in html and "data-drawer-close" in html
    assert 'hx-get="/bookings/preview"' in html and 'hx-trigger="change[' in html
    assert "Your time zone: Europe/London" in html
    page = client.get("/bookings/new")
    assert not is_fragment(page) and varies_on_hx(page)
    assert 'hx-post="/bookings/new"' not in page.get_data(as_text=True)


def test_form_prefills_from_the_query_string(app, client, cast):
    """The calendar links to /bookings/new?day=…; the date is filled and the day previewed."""
    login(client, cast.manager.email)
    day = weekday()
    html = client.get(f"/bookings/new?{_args(cast, day, '10:30')}").get_data(as_text=True)
    assert f'value="{day.isoformat()}"' in html and 'value="10:30"' in html
    assert "Amara Okafor" in html and "is free for everyone chosen" in html


def test_preview_is_a_fragment_for_htmx_and_a_page_otherwise(app, client, cast):
    """GET /bookings/preview answers with _preview.html or a page around it; both Vary."""
    login(client, cast.manager.email)
    day = weekday()
    fragment = _preview(client, cast, day, "10:00")
    assert fragment.status_code == 200 and is_fragment(fragment) and varies_on_hx(fragment)
    page = client.get(f"/bookings/preview?{_args(cast, day, '10:00')}")
    assert not is_fragment(page) and varies_on_hx(page)
    assert "Day preview" in page.get_data(as_text=True)


def test_preview_marks_an_overlapping_busy_block_and_offers_free_times(app, client, cast):
    """10:30 over a 10:00-11:00 busy block: red-striped, "Conflicts with Busy", picks avoid it."""
    day = weekday()
    add_busy(app, cast.agent, local(day, 10), local(day, 11))
    login(client, cast.manager.email)
    html = _preview(client, cast, day, "10:30").get_data(as_text=True)
    assert "pv-proposed pv-conflict" in html
    assert "Conflicts with Busy" in html
    assert "10:30–11:30 conflicts with:" in html and "you may still book over it" in html
    picks = PICK_RE.findall(html)
    assert picks and "11:00" in picks and "09:00" in picks
    assert "10:00" not in picks and "10:30" not in picks

    clear = _preview(client, cast, day, "13:00").get_data(as_text=True)
    assert "pv-conflict" not in clear and "13:00–14:00 is free for everyone chosen." in clear


def test_preview_marks_another_booking_of_the_same_person(app, client, factory, cast):
    """Overlapping one of the person's Slotbook bookings is a conflict that will be refused."""
    day = weekday()
    factory.booking(None, cast.review, local(day, 14), [cast.agent], title="Gateway review")
    login(client, cast.manager.email)
    html = _preview(client, cast, day, "14:30").get_data(as_text=True)
    assert "Conflicts with Gateway review" in html
    assert "another Slotbook booking holds this time, so it cannot be booked" in html
    assert "14:00" not in PICK_RE.findall(html)


def test_preview_titles_follow_c2(app, client, cast):
    """Organisation Microsoft blocks show their title only with "Show event details" on;
    other sources are always "Busy"."""
    day = weekday()
    add_busy(app, cast.agent, local(day, 9), local(day, 10), source="graph-org", title="Board")
    add_busy(app, cast.agent, local(day, 12), local(day, 13), source="graph:4", title="Dentist")
    login(client, cast.manager.email)
    html = _preview(client, cast, day).get_data(as_text=True)
    assert "Private event" in html and "Board" not in html and "Dentist" not in html
    set_setting(app, "show_event_details", True)
    html = _preview(client, cast, day).get_data(as_text=True)
    assert "Board" in html and "Dentist" not in html and "Busy" in html


def test_preview_only_shows_people_the_viewer_may_choose(app, client, factory, cast):
    """An agent (no bookings.assign) asking for someone else's day gets no preview of it."""
    day = weekday()
    add_busy(app, cast.other_agent, local(day, 10), local(day, 11))
    login(client, cast.agent.email)
    html = _preview(client, cast, day, "10:30", people=[cast.other_agent]).get_data(as_text=True)
    assert "Ben Brown" not in html and "Choose the booking type" in html


def test_preview_hides_titles_of_bookings_the_viewer_cannot_see(app, client, factory, cast):
    """A learner's other booking shows as "Booked" to an agent who is not part of it."""
    day = weekday()
    factory.booking(
        None, cast.review, local(day, 9), [cast.other_agent], learner=cast.learner, title="Secret"
    )
    login(client, cast.agent.email)
    html = _preview(client, cast, day, "09:30", learner=cast.learner.id).get_data(as_text=True)
    assert "Secret" not in html and "Conflicts with Booked" in html


def test_quick_picks_avoid_a_chosen_learners_other_bookings(app, client, factory, cast):
    """The learner is held too: a time they are booked elsewhere is not offered."""
    day = weekday()
    factory.booking(None, cast.review, local(day, 9), [cast.other_agent], learner=cast.learner)
    login(client, cast.manager.email)
    alone = PICK_RE.findall(_preview(client, cast, day).get_data(as_text=True))
    html = _preview(client, cast, day, learner=cast.learner.id).get_data(as_text=True)
    with_learner = PICK_RE.findall(html)
    assert "09:00" in alone and "09:00" not in with_learner
    assert set(with_learner) == set(alone) - {"09:00"}


def test_staff_may_book_over_a_busy_block(app, client, cast):
    """C3 shows the busy-block conflict; it does not refuse the booking."""
    day = weekday()
    add_busy(app, cast.agent, local(day, 10), local(day, 11))
    login(client, cast.manager.email)
    token = csrf_from(client, "/bookings/new")
    data = {
        "csrf_token": token,
        "booking_type": cast.review.id,
        "people": [cast.agent.id],
        "learner": "0",
        "day": day.isoformat(),
        "start": "10:30",
        "location_mode": "face_to_face",
    }
    response = client.post("/bookings/new", data=data)
    assert response.status_code == 302 and response.headers["Location"].startswith("/bookings/")


def test_overlapping_a_booking_of_the_same_person_is_refused_inline(app, client, factory, cast):
    """409 with the holds' message, shown in the form (the HTMX drawer too); nothing saved."""
    day = weekday()
    factory.booking(None, cast.review, local(day, 10), [cast.agent])
    login(client, cast.manager.email)
    before = _count(app)
    data = {
        "csrf_token": csrf_from(client, "/bookings/new"),
        "booking_type": cast.review.id,
        "people": [cast.agent.id],
        "learner": "0",
        "day": day.isoformat(),
        "start": "10:30",
        "location_mode": "face_to_face",
    }
    for headers in ({}, HX):
        response = client.post("/bookings/new", data=data, headers=headers)
        assert response.status_code == 409
        html = response.get_data(as_text=True)
        assert "Amara Okafor already has a booking at that time" in html
        assert "pv-conflict" in html  # the preview is rendered with the form
        assert is_fragment(response) == bool(headers)
    assert _count(app) == before


def test_creating_from_the_drawer_swaps_in_the_new_booking(app, client, cast, teams_connection):
    """An HTMX create answers with the new booking's drawer and HX-Trigger."""
    login(client, cast.manager.email)
    data = {
        "csrf_token": csrf_from(client, "/bookings/new"),
        "booking_type": cast.planning.id,
        "people": [cast.agent.id],
        "learner": cast.learner.id,
        "day": weekday().isoformat(),
        "start": "11:00",
        "location_mode": "teams",
    }
    response = client.post("/bookings/new", data=data, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "bookingChanged"
    html = response.get_data(as_text=True)
    assert "Booked: Planning meeting, awaiting approval." in html and "[PENDING]" in html


def test_validation_messages_are_inline(app, client, cast):
    """Missing date and a remote booking without a link: 400, messages beside the fields."""
    login(client, cast.manager.email)
    data = {
        "csrf_token": csrf_from(client, "/bookings/new"),
        "booking_type": cast.review.id,
        "people": [cast.agent.id],
        "learner": "0",
        "start": "10:00",
        "location_mode": "remote",
        "location_detail": "somewhere",
    }
    response = client.post("/bookings/new", data=data, headers=HX)
    assert response.status_code == 400 and is_fragment(response)
    html = response.get_data(as_text=True)
    assert 'id="bf-day-error"' in html and "Choose a date." in html
    assert "Enter the meeting link for a remote booking" in html


def test_edit_preview_does_not_count_the_booking_itself(app, client, factory, cast):
    """Previewing a move: the booking's own time is no conflict, its neighbour's is."""
    day = weekday()
    booking = factory.booking(None, cast.review, local(day, 10), [cast.agent])
    factory.booking(None, cast.review, local(day, 12), [cast.agent], title="Neighbour")
    login(client, cast.manager.email)
    url = f"/bookings/preview?booking={booking.id}&day={day.isoformat()}"
    same = client.get(f"{url}&start=10:00", headers=HX).get_data(as_text=True)
    assert "pv-conflict" not in same and "10:00–11:00 is free for everyone chosen." in same
    moved = client.get(f"{url}&start=11:30", headers=HX).get_data(as_text=True)
    assert "Conflicts with Neighbour" in moved


def test_garbage_in_the_query_string_is_ignored(app, client, cast):
    """Untrusted query values that do not parse give an empty preview, never an error page."""
    login(client, cast.manager.email)
    for query in (
        "booking_type=abc&people=x&day=31/12/2030&start=noon",
        "booking_type=999&people=999&day=2030-01-07&start=10:00",
        f"booking={cast.review.id}x&day=2030-01-07",
    ):
        for url in (f"/bookings/new?{query}", f"/bookings/preview?{query}"):
            response = client.get(url, headers=HX)
            assert response.status_code == 200, url
            assert "Choose the booking type" in response.get_data(as_text=True), url
