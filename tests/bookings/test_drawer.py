"""The booking side drawer (C4): fragment or page, only permitted actions, HTMX changes."""

from __future__ import annotations

from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking, Status
from app.extensions import db
from tests.bookings.conftest import HX, is_fragment, local, varies_on_hx, weekday
from tests.conftest import csrf_from, login


def _booking(factory, cast, state="provisional", day_offset=10, hour=10, **kwargs):
    kind = cast.planning if state == "provisional" else cast.review
    kwargs.setdefault("learner", cast.learner)
    return factory.booking(None, kind, local(weekday(day_offset), hour), [cast.agent], **kwargs)


def _status(app, booking_id):
    with app.app_context():
        return db.session.get(Booking, booking_id).status


def test_drawer_is_a_fragment_for_htmx_and_a_page_otherwise(app, client, factory, cast):
    """HX-Request gets the drawer markup; a plain GET or a history restore gets the page."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    url = f"/bookings/{booking.id}"

    fragment = client.get(url, headers=HX)
    assert fragment.status_code == 200 and is_fragment(fragment) and varies_on_hx(fragment)
    html = fragment.get_data(as_text=True)
    assert 'class="booking-panel in-drawer"' in html and "data-drawer-close" in html
    assert f'hx-post="/bookings/{booking.id}/approve"' in html

    page = client.get(url)
    assert page.status_code == 200 and not is_fragment(page) and varies_on_hx(page)
    text = page.get_data(as_text=True)
    assert 'class="booking-panel"' in text and "data-drawer-close" not in text
    assert f'action="/bookings/{booking.id}/approve"' in text and "hx-post" not in text

    restore = client.get(url, headers={**HX, "HX-History-Restore-Request": "true"})
    assert not is_fragment(restore) and varies_on_hx(restore)


def test_drawer_shows_details_attendees_shortcuts_and_history(app, client, factory, cast):
    """Details, attendees with the mentor/assessor shortcuts, and the audit trail are there."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    html = client.get(f"/bookings/{booking.id}", headers=HX).get_data(as_text=True)
    for text in (
        "Planning meeting",
        "[PENDING]",
        "Amara Okafor",
        "Aisha Ali",
        "Add workplace mentor (Mo Mentor)",
        "Add on-programme assessor (Asa Assessor)",
        "History",
        "created",
    ):
        assert text in html, text


def test_agent_without_approve_sees_no_approve_button_and_gets_403(app, client, factory, cast):
    """An agent who holds a provisional booking may cancel it, never approve or reject it."""
    booking = _booking(factory, cast)
    login(client, cast.agent.email)
    html = client.get(f"/bookings/{booking.id}", headers=HX).get_data(as_text=True)
    assert f"/bookings/{booking.id}/approve" not in html
    assert f"/bookings/{booking.id}/reject" not in html
    assert f"/bookings/{booking.id}/cancel" in html  # what the agent may do is offered
    token = csrf_from(client, f"/bookings/{booking.id}")
    for action in ("approve", "reject"):
        response = client.post(
            f"/bookings/{booking.id}/{action}", data={"csrf_token": token}, headers=HX
        )
        assert response.status_code == 403, action
        assert "You do not have permission" in response.get_data(as_text=True)
    assert _status(app, booking.id) == Status.PROVISIONAL


def test_approve_from_the_drawer_swaps_it_and_tells_the_calendar(app, client, factory, cast):
    """An HTMX approve answers with the new drawer and HX-Trigger: bookingChanged."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(
        f"/bookings/{booking.id}/approve", data={"csrf_token": token}, headers=HX
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "bookingChanged"
    html = response.get_data(as_text=True)
    assert is_fragment(response) and "Booking approved." in html and "Confirmed" in html
    assert f"/bookings/{booking.id}/approve" not in html  # no second approve
    assert _status(app, booking.id) == Status.CONFIRMED
    with app.app_context():
        last = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking.id).order_by(AuditEntry.id)
        ).all()[-1]
        assert (last.action, last.actor_id) == ("approved", cast.manager.id)


def test_without_htmx_actions_still_post_and_redirect(app, client, factory, cast):
    """The same action without HX-Request is the plain POST/redirect it always was."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(f"/bookings/{booking.id}/approve", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/bookings/{booking.id}"
    assert "HX-Trigger" not in response.headers


def test_destructive_actions_keep_their_confirmation_step(app, client, factory, cast):
    """Cancel and reject sit behind a <details> "Yes, … it" step in the drawer too."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    html = client.get(f"/bookings/{booking.id}", headers=HX).get_data(as_text=True)
    for action in ("reject", "cancel"):
        block = html.split(f"{action.capitalize()}…</summary>", 1)[1].split("</details>", 1)[0]
        assert f'hx-post="/bookings/{booking.id}/{action}"' in block
        assert f"Yes, {action} it" in block


def test_an_illegal_action_answers_inside_the_drawer(app, client, factory, cast):
    """Approving a confirmed booking is a 409 whose body is the drawer with the reason."""
    booking = _booking(factory, cast, "confirmed")
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(
        f"/bookings/{booking.id}/approve", data={"csrf_token": token}, headers=HX
    )
    assert response.status_code == 409 and is_fragment(response)
    assert "A confirmed booking cannot be approved." in response.get_data(as_text=True)
    assert "HX-Trigger" not in response.headers


def test_attendee_shortcut_from_the_drawer(app, client, factory, cast):
    """The mentor shortcut adds the learner's workplace mentor and re-renders the drawer."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(
        f"/bookings/{booking.id}/attendees",
        data={"csrf_token": token, "shortcut": "mentor", "user_id": "0"},
        headers=HX,
    )
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "bookingChanged"
    html = response.get_data(as_text=True)
    assert "Attendee added." in html and "Remove Mo Mentor" in html
    assert "Add workplace mentor" not in html  # the shortcut is used up


def test_rebook_from_the_drawer_shows_the_new_booking(app, client, factory, cast):
    """A resit booked from the drawer swaps in the new booking, linked to the original."""
    booking = _booking(factory, cast, "confirmed", day_offset=-3)
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(
        f"/bookings/{booking.id}/rebook",
        data={
            "csrf_token": token,
            "kind": "resit",
            "day": weekday(12).isoformat(),
            "start": "14:00",
        },
        headers=HX,
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    html = response.get_data(as_text=True)
    assert "Resit booked." in html and "Review (resit)" in html and "Resit of" in html


def test_edit_form_moves_and_edits_in_one_go(app, client, factory, cast):
    """GET edit is a fragment or page; an HTMX save moves the booking and edits its notes."""
    booking = _booking(factory, cast, "confirmed")
    login(client, cast.manager.email)
    url = f"/bookings/{booking.id}/edit"
    fragment = client.get(url, headers=HX)
    assert is_fragment(fragment) and varies_on_hx(fragment)
    assert 'id="edit-preview"' in fragment.get_data(as_text=True)
    page = client.get(url)
    assert not is_fragment(page) and varies_on_hx(page)

    token = csrf_from(client, url)
    day = weekday(11)
    response = client.post(
        url,
        data={
            "csrf_token": token,
            "day": day.isoformat(),
            "start": "15:00",
            "location_detail": "Room 4",
            "description": "Bring the portfolio",
        },
        headers=HX,
    )
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "bookingChanged"
    with app.app_context():
        row = db.session.get(Booking, booking.id)
        assert row.starts_at == local(day, 15)
        assert (row.location_detail, row.description) == ("Room 4", "Bring the portfolio")
        assert [e.action for e in row.audit_entries][-2:] == ["rescheduled", "updated"]


def test_edit_onto_another_booking_of_the_same_person_is_refused(app, client, factory, cast):
    """Moving onto the agent's other booking is a 409 with the message; nothing moves."""
    booking = _booking(factory, cast, "confirmed", hour=10)
    _booking(factory, cast, "confirmed", hour=14)
    login(client, cast.manager.email)
    url = f"/bookings/{booking.id}/edit"
    token = csrf_from(client, url)
    response = client.post(
        url,
        data={"csrf_token": token, "day": weekday(10).isoformat(), "start": "14:30"},
        headers=HX,
    )
    assert response.status_code == 409 and is_fragment(response)
    assert "already has a booking at that time" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Booking, booking.id).starts_at == local(weekday(10), 10)


def test_ids_of_invisible_bookings_are_404_everywhere(app, client, factory, cast):
    """Another agent's booking is not found, as drawer, page, edit form or preview."""
    booking = _booking(factory, cast)
    login(client, cast.other_agent.email)
    for url in (
        f"/bookings/{booking.id}",
        f"/bookings/{booking.id}/edit",
        f"/bookings/preview?booking={booking.id}&day={weekday().isoformat()}",
    ):
        assert client.get(url, headers=HX).status_code == 404, url
        assert client.get(url).status_code == 404, url


def test_bookings_list_is_a_fragment_for_htmx_and_opens_the_drawer(app, client, factory, cast):
    """The list answers HTMX with its table, reloads on bookingChanged, links into #drawer."""
    booking = _booking(factory, cast)
    login(client, cast.manager.email)
    fragment = client.get("/bookings", headers=HX)
    assert is_fragment(fragment) and varies_on_hx(fragment)
    html = fragment.get_data(as_text=True)
    assert 'hx-trigger="bookingChanged from:body"' in html
    assert f'hx-get="/bookings/{booking.id}" hx-target="#drawer"' in html
    page = client.get("/bookings")
    assert not is_fragment(page) and 'id="drawer"' in page.get_data(as_text=True)


def test_a_bad_reschedule_answers_with_the_edit_form_and_inline_errors(app, client, factory, cast):
    """The plain reschedule route with no date: 400, the edit form with the message beside it."""
    booking = _booking(factory, cast, "confirmed")
    login(client, cast.manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(
        f"/bookings/{booking.id}/reschedule", data={"csrf_token": token, "start": "10:00"}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="edit-day-error"' in html and "Choose a date." in html
    assert "Check the new date and time." in html


def test_mark_completed_is_offered_only_once_the_booking_has_started(app, client, factory, cast):
    """A future confirmed booking has no "Mark completed" (the service would refuse it)."""
    future = _booking(factory, cast, "confirmed")
    past = _booking(factory, cast, "confirmed", day_offset=-5)
    login(client, cast.manager.email)
    assert "Mark completed" not in client.get(f"/bookings/{future.id}", headers=HX).get_data(
        as_text=True
    )
    assert "Mark completed" in client.get(f"/bookings/{past.id}", headers=HX).get_data(as_text=True)


def test_edit_form_switches_how_the_booking_meets(app, client, factory, cast, teams_connection):
    """The edit form offers the type's location modes; switching to Teams is an edit (and
    write-back then removes Slotbook's own calendar events, K5). A mode the type does not
    allow is refused and nothing changes."""
    booking = _booking(factory, cast, "confirmed")
    with app.app_context():
        modes = db.session.get(Booking, booking.id).booking_type.location_modes
    assert "teams" in modes
    login(client, cast.manager.email)
    url = f"/bookings/{booking.id}/edit"
    form = client.get(url).get_data(as_text=True)
    assert 'name="location_mode"' in form and 'value="teams"' in form
    local_start = booking.starts_at.astimezone(cast.manager.zone)
    data = {
        "csrf_token": csrf_from(client, url),
        "day": local_start.date().isoformat(),
        "start": local_start.strftime("%H:%M"),
        "location_detail": "",
        "description": "",
    }
    refused = client.post(url, data={**data, "location_mode": "moon"}, headers=HX)
    assert refused.status_code == 400
    assert client.post(url, data={**data, "location_mode": "teams"}, headers=HX).status_code == 200
    with app.app_context():
        row = db.session.get(Booking, booking.id)
        assert row.location_mode == "teams"
        assert row.audit_entries[-1].changes["location_mode"] == [booking.location_mode, "teams"]
