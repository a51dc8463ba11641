"""The visitor's journey ([13]): choosing how to meet, what the pages after booking say (start
and end in the visitor's zone, with whom, where, "Add to calendar"), an empty week offering no
form, and a time that was never offered called that rather than "just taken"."""

from __future__ import annotations

import base64
import html as html_lib
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import select

from app.bookings.models import Booking, BookingType
from app.extensions import db
from tests.notifications.conftest import deliver_all, smtp_server  # noqa: F401 - fixture
from tests.public.conftest import book_form, count, first_slot, outbox, token_from

TOKYO = ZoneInfo("Asia/Tokyo")
LINK = "https://meet.example.test/desk"


def _modes(app, kind, **fields) -> None:
    from app.database import begin_write

    with app.app_context():
        begin_write()
        row = db.session.get(BookingType, kind.id)
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.commit()


def _ics_of(page: str) -> Calendar:
    found = re.search(r'href="data:text/calendar;charset=utf-8;base64,([^"]+)"', page)
    assert found, "no calendar file on the page"
    return Calendar.from_ical(base64.b64decode(found.group(1)))


def _the_booking(app) -> Booking:
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        db.session.expunge(booking)
    return booking


def test_picker_offers_the_types_modes_but_not_teams_while_teams_cannot_work(client, public):
    """Face to face (with its address) and online are offered; Teams is left out."""
    _modes(
        client.application,
        public["kind"],
        location_modes=["face_to_face", "remote", "teams"],
        face_to_face_detail="Reception, 1 High Street",
        remote_detail=LINK,
    )
    page = client.get("/book/consultation?tz=UTC").get_data(as_text=True)
    assert re.findall(r'name="location_mode" value="([a-z_]+)"', page) == [
        "face_to_face",
        "remote",
    ]
    assert "At Reception, 1 High Street" in page
    assert LINK not in page  # the link comes with the confirmation, not before booking


def test_teams_is_offered_once_teams_meetings_can_be_made(client, public, teams_connection):
    """With the organisation's Microsoft 365 connection Teams works, so a visitor may pick it."""
    _modes(client.application, public["kind"], location_modes=["face_to_face", "teams"])
    page = client.get("/book/consultation?tz=UTC").get_data(as_text=True)
    assert re.findall(r'name="location_mode" value="([a-z_]+)"', page) == [
        "face_to_face",
        "teams",
    ]
    assert "Microsoft Teams" in page


def test_a_visitor_booking_remote_gets_the_link_end_time_with_whom_and_a_calendar(
    app, client, public
):
    _modes(
        app,
        public["kind"],
        location_modes=["face_to_face", "remote"],
        face_to_face_detail="Reception, 1 High Street",
        remote_detail=LINK,
    )
    start = first_slot(app, public["kind"])
    response = book_form(client, "consultation", start, tz="Asia/Tokyo", location_mode="remote")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    booking = _the_booking(app)
    assert (booking.location_mode, booking.location_detail) == ("remote", LINK)

    begin, end = start.astimezone(TOKYO), (start + timedelta(hours=1)).astimezone(TOKYO)
    when = f"{begin:%A %d %B %Y}, {begin:%H:%M}–{end:%H:%M} JST"
    assert f'data-testid="when">{when}<' in page
    assert 'data-testid="with">Agnes Agent<' in page
    assert f'<a href="{LINK}"' in page  # where: the link, clickable

    [event] = _ics_of(page).walk("VEVENT")
    assert event.decoded("dtstart") == start and event.decoded("dtend") == booking.ends_at
    assert str(event["location"]) == LINK and str(event["uid"]) == booking.uid
    assert "With: Agnes Agent" in str(event["description"])
    assert "/book/manage/" not in page  # the manage link goes to the email only

    google = re.search(r'data-testid="google" href="([^"]+)"', page).group(1)
    query = parse_qs(urlsplit(html_lib.unescape(google)).query)
    assert query["dates"] == [f"{start:%Y%m%dT%H%M%SZ}/{booking.ends_at:%Y%m%dT%H%M%SZ}"]
    assert query["location"] == [LINK]
    outlook = re.search(r'data-testid="outlook" href="([^"]+)"', page).group(1)
    assert parse_qs(urlsplit(html_lib.unescape(outlook)).query)["startdt"] == [
        f"{start:%Y-%m-%dT%H:%M:%SZ}"
    ]


def test_face_to_face_shows_the_address_and_the_manage_page_says_the_same(app, client, public):
    _modes(app, public["kind"], face_to_face_detail="Reception, 1 High Street")
    start = first_slot(app, public["kind"])
    page = book_form(client, "consultation", start, location_mode="face_to_face").get_data(
        as_text=True
    )
    assert 'data-testid="where">Face to face: Reception, 1 High Street<' in page
    token = token_from(outbox(app, "public.booking_created")[0]["manage_url"])
    manage = client.get(f"/book/manage/{token}").get_data(as_text=True)
    assert 'data-testid="where">Face to face: Reception, 1 High Street<' in manage
    assert 'data-testid="with">Agnes Agent<' in manage
    [event] = _ics_of(manage).walk("VEVENT")
    assert f"/book/manage/{token}" in str(event["description"])  # its own page's address


def test_a_way_to_meet_not_offered_is_refused_and_nothing_is_booked(app, client, public):
    _modes(app, public["kind"], location_modes=["remote", "teams"])
    start = first_slot(app, public["kind"])
    response = book_form(client, "consultation", start, location_mode="teams")
    assert response.status_code == 400
    assert "Choose one of the ways to meet" in response.get_data(as_text=True)
    assert count(app, Booking) == 0


def test_an_empty_week_shows_no_contact_form_and_no_book_button(client, public):
    far = (datetime.now(UTC) + timedelta(days=900)).date()  # beyond every booking horizon
    page = client.get(f"/book/consultation?tz=UTC&day={far.isoformat()}").get_data(as_text=True)
    assert 'data-testid="empty-week"' in page
    assert "Book this time" not in page and 'name="name"' not in page


def test_contact_form_waits_for_a_time_to_be_chosen(client, public):
    """Without script the form is in the page but hidden by CSS until a time is checked."""
    page = client.get("/book/consultation?tz=UTC").get_data(as_text=True)
    assert '<div class="pub-after-time">' in page and "Choose a time above to continue." in page
    css = client.get("/static/css/public.css").get_data(as_text=True)
    assert ".pub-book:not(:has(input[name=start]:checked)) .pub-after-time{display:none}" in css


def test_a_time_never_offered_is_called_not_available_not_just_taken(app, client, public):
    night = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), time(3), UTC)
    response = book_form(client, "consultation", night)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "That time is not available" in page and "just taken" not in page
    assert count(app, Booking) == 0


def test_a_time_taken_meanwhile_is_called_just_taken(app, client, public):
    start = first_slot(app, public["kind"])
    assert book_form(client, "consultation", start).status_code == 200
    again = book_form(client, "consultation", start, email="other@example.test")
    page = again.get_data(as_text=True)
    assert again.status_code == 409
    assert "that time was just taken" in page and "not available" not in page


def test_the_confirmation_email_gives_end_time_clickable_link_and_calendar_links(
    app,
    client,
    public,
    smtp_server,  # noqa: F811 - the imported fixture
):
    _modes(app, public["kind"], location_modes=["face_to_face", "remote"], remote_detail=LINK)
    start = first_slot(app, public["kind"])
    assert (
        book_form(client, "consultation", start, tz="Asia/Tokyo", location_mode="remote")
    ).status_code == 200
    deliver_all(app)
    [mail] = smtp_server.to("vera@example.test")
    begin, end = start.astimezone(TOKYO), (start + timedelta(hours=1)).astimezone(TOKYO)
    assert f"{begin:%H:%M}–{end:%H:%M} JST (Asia/Tokyo)" in mail.text
    assert "Agnes Agent" in mail.text
    assert f'<a href="{LINK}">{LINK}</a>' in mail.html
    google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', mail.html).group(1)
    dates = parse_qs(urlsplit(html_lib.unescape(google)).query)["dates"]
    assert dates == [f"{start:%Y%m%dT%H%M%SZ}/{(start + timedelta(hours=1)):%Y%m%dT%H%M%SZ}"]
    assert "Add to Outlook.com: https://outlook.live.com/" in mail.text


def test_staff_see_a_bookings_meeting_link_as_a_link(app, client, factory):
    """Meeting links are clickable where staff read a booking; other details stay text."""
    from tests.conftest import at, login

    owner = factory.user("owner", email="olive@example.test")
    agent = factory.user("agent")
    kind = factory.booking_type(location_modes=["remote", "face_to_face"])
    online = factory.booking(
        owner, kind, at(2), [agent], location_mode="remote", location_detail=LINK
    )
    office = factory.booking(
        owner, kind, at(3), [agent], location_mode="face_to_face", location_detail="Room 2"
    )
    login(client, owner.email)
    page = client.get(f"/bookings/{online.id}").get_data(as_text=True)
    assert f'<a href="{LINK}" rel="noopener noreferrer" target="_blank">{LINK}</a>' in page
    page = client.get(f"/bookings/{office.id}").get_data(as_text=True)
    assert "Face to face: Room 2</dd>" in page


def test_no_add_to_calendar_while_the_visitor_has_not_confirmed(app, client, public):
    """With a confirmation timeout the time is only held: nothing to add to a calendar until
    the visitor confirms from the email, then the confirmed page offers it."""
    from tests.public.conftest import set_settings

    set_settings(app, confirmation_timeout_minutes=30)
    start = first_slot(app, public["kind"])
    page = book_form(client, "consultation", start).get_data(as_text=True)
    assert "Almost done: please confirm" in page and "Add to calendar" not in page
    [request] = outbox(app, "public.confirmation_requested")
    token = token_from(request["confirm_url"])
    form = client.get(f"/book/confirm/{token}").get_data(as_text=True)
    assert "Add to calendar" not in form
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    confirmed = client.post(f"/book/confirm/{token}", data={"csrf_token": csrf})
    assert confirmed.status_code == 200
    [event] = _ics_of(confirmed.get_data(as_text=True)).walk("VEVENT")
    assert event.decoded("dtstart") == start


def test_every_page_has_the_favicon(client, public):
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert icon in client.get("/book").get_data(as_text=True)  # public pages
    assert icon in client.get("/login").get_data(as_text=True)  # staff and learner pages
    served = client.get("/static/favicon.svg")
    assert served.status_code == 200 and served.mimetype == "image/svg+xml"
    assert served.get_data(as_text=True).startswith("<svg")
