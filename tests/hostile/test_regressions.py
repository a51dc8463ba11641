"""The hostile inputs that gave a 500 (issue [08]), one test each: a clear 4xx in the product's
style (JSON under /api/), and nothing written. Marked ``db``: several were PostgreSQL-only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.accounts.conftest import _public_booking, _public_slot, _public_world, changed_tables
from tests.accounts.conftest import db_state as snapshot
from tests.bookings.conftest import weekday
from tests.conftest import at, csrf_from, login

pytestmark = pytest.mark.db

MAX_INT4 = 2**31 - 1


def _owner(factory):
    return factory.user("owner", email="owner@example.test", name="Olive Owner")


def _signed_in(app, user):
    client = app.test_client()
    login(client, user.email)
    return client, csrf_from(client, "/bookings/new")


def _product_page(response, status: int, text: str) -> None:
    """Our error page (layout, message, way back), never Werkzeug's bare one."""
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:500]
    assert text in html, html[:1000]
    assert "Back to Slotbook" in html or "Make a new booking" in html
    assert "The browser (or proxy) sent a request" not in html


# --- NUL bytes ---------------------------------------------------------------------------------


def test_nul_in_the_sign_in_email_is_a_clear_400(app, factory):
    """A NUL byte in the email (PostgreSQL cannot compare it: it was a 500 without signing in)
    is refused with the product's page; nobody is signed in and nothing is written."""
    user = factory.user("agent", email="ada@example.test")
    client = app.test_client()
    token = csrf_from(client, "/login")
    before = snapshot(app)
    response = client.post(
        "/login", data={"email": "ada@example.test\x00", "password": "x", "csrf_token": token}
    )
    _product_page(response, 400, "cannot be accepted (a NUL byte")
    assert changed_tables(before, snapshot(app)) == []
    assert client.get("/bookings").status_code == 302
    login(client, user.email)  # the form still works


def test_nul_in_the_public_contact_form_and_query_is_a_clear_400(app, world):
    """The visitor's name with a NUL byte, and a NUL in the picker's query: 400, no booking."""
    _, slug = _public_world(world)
    client = app.test_client()
    token = csrf_from(client, "/login")
    before = snapshot(app)
    data = {
        "start": _public_slot(world).isoformat(),
        "tz": "UTC",
        "name": "Vi\x00sitor",
        "email": "v@example.test",
        "csrf_token": token,
    }
    _product_page(client.post(f"/book/{slug}", data=data), 400, "NUL byte")
    _product_page(client.get(f"/book/{slug}?tz=UTC%00"), 400, "NUL byte")
    assert changed_tables(before, snapshot(app)) == []


def test_nul_in_a_staff_form_field_name_is_refused(app, factory):
    """Field names reach views too: a NUL in one is refused like one in a value."""
    client, token = _signed_in(app, _owner(factory))
    before = snapshot(app)
    response = client.post("/bookings/new", data={"csrf_token": token, "a\x00b": "1"})
    _product_page(response, 400, "NUL byte")
    assert changed_tables(before, snapshot(app)) == []


# --- ids beyond PostgreSQL's integer -----------------------------------------------------------


@pytest.mark.parametrize("booking_id", [MAX_INT4 + 1, 2**63, 10**40])
def test_a_huge_id_in_an_html_route_is_404(app, factory, booking_id):
    """Path ids beyond int4 are the same 404 page as a missing id, for GET and POST alike
    (the value used to reach the query and overflow it)."""
    client, token = _signed_in(app, _owner(factory))
    before = snapshot(app)
    for url in (f"/bookings/{booking_id}", f"/polls/{booking_id}", f"/admin/people/{booking_id}"):
        _product_page(client.get(url), 404, "Not found")
    for url in (
        f"/bookings/{booking_id}/cancel",
        f"/me/notifications/{booking_id}/read",
        f"/me/calendars/{booking_id}/sync",
        f"/admin/notifications/messages/{booking_id}/retry",
    ):
        _product_page(client.post(url, data={"csrf_token": token}), 404, "Not found")
    assert changed_tables(before, snapshot(app)) == []


def test_a_huge_or_odd_id_in_a_field_is_refused(app, world, factory):
    """Ids in query and form fields beyond int4 (they overflowed the query): the preview
    ignores one as it ignores any garbage, the poll answers "no such option" (422); digits
    other than 0-9 are a 400."""
    from tests.accounts.conftest import _poll

    owner = _owner(factory)
    client, token = _signed_in(app, owner)
    poll_id, _, _ = _poll(world, owner)
    before = snapshot(app)
    response = client.get(f"/bookings/preview?booking={MAX_INT4 + 1}")  # ignored, as garbage is
    assert response.status_code == 200 and "Choose the booking type" in response.text
    response = client.post(f"/polls/{poll_id}/book", data={"option_id": "²", "csrf_token": token})
    _product_page(response, 400, "digits 0 to 9")
    for option in (str(MAX_INT4 + 1), str(2**63)):
        data = {"option_id": option, "csrf_token": token}
        response = client.post(f"/polls/{poll_id}/book", data=data)
        assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert changed_tables(before, snapshot(app)) == []


def test_the_api_answers_a_huge_path_id_with_json_404(app, factory):
    """The same rule under /api/: JSON, and 404 for every method of the path (never 405)."""
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.database import begin_write
    from app.extensions import db

    owner = _owner(factory)
    with app.app_context():
        begin_write()
        token = create_api_token(db.session.get(User, owner.id), "t")
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for method in ("GET", "PATCH"):
        response = client.open(f"/api/v1/bookings/{2**40}", method=method, headers=headers)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"


# --- years 1 and 9999 --------------------------------------------------------------------------


def _staff_form(world, owner, token: str, day: str) -> dict:
    return {
        "booking_type": str(world.plain_type.id),
        "people": [str(owner.id)],
        "learner": "0",
        "location_mode": "face_to_face",
        "location_detail": "",
        "description": "",
        "day": day,
        "start": "10:00",
        "csrf_token": token,
    }


@pytest.mark.parametrize("day", ["0001-01-01", "00010101", "9999-12-31"])
def test_the_staff_form_refuses_year_1_and_9999(app, world, factory, day):
    """Year 1 was stored from the staff form (and then broke the notifier); 9999 was a 500."""
    owner = _owner(factory)
    client, token = _signed_in(app, owner)
    before = snapshot(app)
    response = client.post("/bookings/new", data=_staff_form(world, owner, token, day))
    _product_page(response, 400, "Dates must fall between the years 1900 and 2999")
    response = client.get(f"/bookings/preview?booking_type={world.plain_type.id}&day={day}")
    _product_page(response, 400, "Dates must fall between")
    assert changed_tables(before, snapshot(app)) == []


@pytest.mark.parametrize(
    "when,msg",
    [
        (at(-400), "more than a year ago"),
        (at(400), "more than 365 days ahead (the booking horizon)"),
    ],
    ids=["two-years-ago", "beyond-horizon"],
)
def test_staff_bookings_stay_within_a_year_back_and_the_horizon(app, world, factory, when, msg):
    """Sane years, but more than a year ago or beyond the type's horizon: the form says why
    and stores nothing; the same holds for the service every caller goes through."""
    from app.accounts.models import User
    from app.bookings import service
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    owner = _owner(factory)
    client, token = _signed_in(app, owner)
    before = snapshot(app)
    form = _staff_form(world, owner, token, when.date().isoformat())
    response = client.post("/bookings/new", data=form)
    assert response.status_code == 400 and msg in response.get_data(as_text=True)
    assert changed_tables(before, snapshot(app)) == []
    with app.app_context(), pytest.raises(service.BookingError, match=re.escape(msg)):
        begin_write()
        actor = db.session.get(User, owner.id)
        kind = db.session.get(BookingType, world.plain_type.id)
        service.create_booking(actor, kind, when, [actor])
    assert changed_tables(before, snapshot(app)) == []


def test_a_type_with_its_own_horizon_uses_it(app, world, factory):
    """A type looking 30 days ahead refuses staff bookings 40 days out; 20 days is fine."""
    owner = _owner(factory)
    kind = factory.booking_type(name="Short notice", horizon_days=30)
    client, token = _signed_in(app, owner)
    form = _staff_form(world, owner, token, at(40).date().isoformat())
    form["booking_type"] = str(kind.id)
    response = client.post("/bookings/new", data=form)
    assert response.status_code == 400
    assert "more than 30 days ahead" in response.get_data(as_text=True)
    form["day"] = weekday(20).isoformat()  # a weekend would ask for "book anyway" (409)
    assert client.post("/bookings/new", data=form).status_code == 302


@pytest.mark.parametrize("day", ["9999-12-31", "99991231", "0001-01-01", "9999-W52-7"])
def test_the_public_picker_refuses_extreme_years(app, world, day):
    """Year 9999 in the picker's ``day`` (week and month maths overflowed without signing in)."""
    _, slug = _public_world(world)
    client = app.test_client()
    _product_page(client.get(f"/book/{slug}?day={day}"), 400, "Dates must fall between")


def test_the_public_post_refuses_extreme_years(app, world):
    """A public booking for year 9999: 400 and no booking."""
    _, slug = _public_world(world)
    client = app.test_client()
    token = csrf_from(client, "/login")
    before = snapshot(app)
    data = {"start": "9999-12-31T23:00:00+00:00", "tz": "UTC", "name": "V", "email": "v@e.test"}
    response = client.post(f"/book/{slug}", data={**data, "csrf_token": token})
    _product_page(response, 400, "Dates must fall between")
    assert changed_tables(before, snapshot(app)) == []


def test_the_poll_pages_refuse_extreme_years(app, world, factory):
    """The poll search from year 1 or 9999, and a proposed time in year 9999: 400, no poll."""
    client, token = _signed_in(app, _owner(factory))
    kind = world.plain_type.id
    before = snapshot(app)
    for day in ("0001-01-01", "9999-12-31"):
        response = client.get(f"/polls/new?booking_type={kind}&from={day}&days=14&search=1")
        _product_page(response, 400, "Dates must fall between")
    data = {"booking_type": str(kind), "starts": "9999-12-31T10:00:00+00:00", "title": "P"}
    response = client.post("/polls/new", data={**data, "csrf_token": token})
    _product_page(response, 400, "Dates must fall between")
    assert changed_tables(before, snapshot(app)) == []


# --- lone surrogates in API JSON ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"description": "a\ud800b"},
        {"name": "\udfff"},
        {"\ud800": "x"},
        {"people": [{"nested": ["\ud83d"]}]},
    ],
    ids=["value", "lone-low", "key", "nested"],
)
def test_a_lone_surrogate_in_api_json_is_a_json_400(app, world, factory, body):
    """ "\\ud800" is valid JSON but cannot be encoded as UTF-8 (it was a 500): 400 JSON with
    the API's error shape, nothing written."""
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.database import begin_write
    from app.extensions import db

    owner = _owner(factory)
    booking = world.booking(owner)
    with app.app_context():
        begin_write()
        token = create_api_token(db.session.get(User, owner.id), "t")
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    before = snapshot(app)
    for method, url in (
        ("PATCH", f"/api/v1/bookings/{booking.id}"),
        ("POST", "/api/v1/groups"),
        ("POST", "/api/v1/bookings"),
    ):
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)
        error = response.get_json()
        assert error["error"] == "validation_error" and "NUL byte or a broken" in error["message"]
    assert changed_tables(before, snapshot(app)) == []


# --- a public booking that staff cancelled ------------------------------------------------------


def _cancel_as_staff(app, manage_token: str, owner) -> None:
    from app.accounts.models import User
    from app.bookings import service
    from app.database import begin_write
    from app.extensions import db
    from app.public import tokens

    with app.app_context():
        begin_write()
        _, row = tokens.lookup(manage_token, tokens.Purpose.MANAGE)
        service.cancel(db.session.get(User, owner.id), row.booking)
        db.session.commit()


def test_rescheduling_a_booking_staff_cancelled_is_a_clear_page(app, world, factory):
    """The visitor's manage link after staff cancelled the booking: the change and cancel
    pages and their posts say it was cancelled (410) and change nothing (it was a 500)."""
    manage, _ = _public_booking(world)
    _cancel_as_staff(app, manage, _owner(factory))
    client = app.test_client()
    token = csrf_from(client, "/login")
    before = snapshot(app)
    base = f"/book/manage/{manage}"
    _product_page(client.get(f"{base}/reschedule"), 410, "This booking has been cancelled")
    _product_page(client.get(f"{base}/cancel"), 410, "This booking has been cancelled")
    start = _public_slot(world, 2) + timedelta(hours=0)
    data = {"start": start.isoformat(), "tz": "UTC", "csrf_token": token}
    response = client.post(f"{base}/reschedule", data=data)
    _product_page(response, 410, "This booking has been cancelled")
    response = client.post(f"{base}/cancel", data={"csrf_token": token})
    _product_page(response, 410, "This booking has been cancelled")
    assert changed_tables(before, snapshot(app)) == []
    page = client.get(base)  # the manage page itself still shows the booking, without buttons
    assert page.status_code == 200 and "cancelled" in page.get_data(as_text=True)
    assert f"{base}/reschedule" not in page.get_data(as_text=True)


# --- error pages in the product's style ---------------------------------------------------------


def test_refusals_are_fragments_for_htmx_and_json_for_the_api(app, factory):
    """A refused HTMX request gets the message fragment (no full page); the API gets JSON."""
    client, _ = _signed_in(app, _owner(factory))
    response = client.get("/bookings?status=%00", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "NUL byte" in html and "<html" not in html
    response = client.get("/api/v1/booking-types?x=%00")
    assert response.status_code == 400 and response.get_json()["error"] == "validation_error"


def test_an_unexpected_error_is_the_products_page_and_api_json(app):
    """Should anything still fail, people see our page (the API its JSON), not Werkzeug's."""

    def boom():
        raise RuntimeError("unexpected")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production
    app.add_url_rule("/hostile-boom", "hostile_boom", boom)
    app.add_url_rule("/api/v1/hostile-boom", "hostile_api_boom", boom)
    client = app.test_client()
    _product_page(client.get("/hostile-boom"), 500, "Something went wrong on our side")
    response = client.get("/api/v1/hostile-boom")
    assert response.status_code == 500 and response.get_json()["error"] == "internal_error"


def test_a_body_beyond_every_form_is_refused_before_it_is_read(app, factory):
    """No form of ours takes more than 5 MB; a 9 MB post (signed out: CSRF would read it all)
    gets the product's 413 page and writes nothing."""
    client = app.test_client()
    before = snapshot(app)
    response = client.post(
        "/login", data={"email": "a@example.test", "password": "x" * (9 * 1024 * 1024)}
    )
    assert response.status_code == 413
    assert "Werkzeug" not in response.get_data(as_text=True)
    assert changed_tables(before, snapshot(app)) == []
