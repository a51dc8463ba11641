"""The contact form: honeypot, required fields, the S3 daily limit, and the booking race."""

from __future__ import annotations

import threading

import pytest

from app.bookings.models import Booking
from app.public.models import PublicBooking
from tests.conftest import csrf_from
from tests.public.conftest import book_form, count, first_slot, outbox, set_settings


def test_booking_creates_one_booking_with_contact_and_manage_link(app, client, public):
    """A valid post books the agent, stores the contact and emits a manage link."""
    start = first_slot(app, public["kind"])
    response = book_form(client, "consultation", start)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "You're booked" in html
    assert count(app, Booking) == 1 and count(app, PublicBooking) == 1
    [message] = outbox(app, "public.booking_created")
    assert message["email"] == "vera@example.test" and "/book/manage/" in message["manage_url"]
    assert message["manage_url"].rsplit("/", 1)[1] not in html  # never on the page


def test_honeypot_filled_pretends_success_and_creates_nothing(app, client, public):
    """A bot filling the hidden field sees a thank-you and nothing is written."""
    start = first_slot(app, public["kind"])
    response = book_form(client, "consultation", start, website="http://spam.example")
    assert response.status_code == 200
    assert "Thank you" in response.get_data(as_text=True)
    assert count(app, Booking) == 0 and outbox(app, "public.booking_created") == []


def test_honeypot_field_is_hidden_and_labelled(client, public):
    html = client.get("/book/consultation?tz=UTC").get_data(as_text=True)
    assert '<label for="website">Leave this empty</label>' in html
    assert 'name="website" tabindex="-1" autocomplete="off"' in html


@pytest.mark.parametrize(
    ("required", "email", "phone", "ok"),
    [
        ("email", "", "+44 20 7946 0000", False),
        ("email", "v@example.test", "", True),
        ("phone", "v@example.test", "", False),
        ("phone", "", "+44 20 7946 0000", True),
        ("both", "v@example.test", "", False),
        ("both", "v@example.test", "+44 20 7946 0000", True),
        ("neither", "", "", True),
    ],
)
def test_required_contact_fields_follow_the_setting(
    app, client, public, required, email, phone, ok
):
    """email / phone / both / neither: a missing required field is a 400 and no booking."""
    set_settings(app, contact_required_fields=required)
    start = first_slot(app, public["kind"])
    response = book_form(client, "consultation", start, email=email, phone=phone)
    assert (response.status_code == 200) is ok, response.status_code
    assert count(app, Booking) == (1 if ok else 0)


def test_name_is_always_required(app, client, public):
    response = book_form(client, "consultation", first_slot(app, public["kind"]), name="")
    assert response.status_code == 400 and count(app, Booking) == 0


def test_daily_limit_per_contact(app, client, public):
    """S3: over the limit the visitor is told, the manage link is re-sent, not shown."""
    set_settings(app, max_bookings_per_contact_per_day=1)
    start = first_slot(app, public["kind"])
    assert book_form(client, "consultation", start).status_code == 200
    from datetime import timedelta

    later = start + timedelta(hours=2)
    response = book_form(client, "consultation", later, email="VERA@example.test")
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert "already have a booking that day" in html
    assert count(app, Booking) == 1
    [resent] = outbox(app, "public.manage_link_resent")
    assert resent["email"] == "vera@example.test"
    assert resent["manage_url"].rsplit("/", 1)[1] not in html
    # by phone as well
    set_settings(app, contact_required_fields="phone")
    book_form(client, "consultation", start + timedelta(days=1), email="", phone="07700 900123")
    again = book_form(
        client, "consultation", start + timedelta(days=1, hours=2), email="", phone="07700 900123"
    )
    assert again.status_code == 429


@pytest.mark.db  # run again on PostgreSQL by .ci/run
def test_twenty_concurrent_posts_for_one_slot(app, public):
    """Exactly one booking; the other 19 get a 409 "just taken" page with other slots."""
    start = first_slot(app, public["kind"])
    clients = []
    for n in range(20):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.0.0.{n + 1}"
        clients.append((c, csrf_from(c, "/book/consultation?tz=UTC")))
    barrier = threading.Barrier(20)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def post(n):
        c, token = clients[n]
        data = {
            "csrf_token": token,
            "tz": "UTC",
            "start": start.isoformat(),
            "name": f"Visitor {n}",
            "email": f"visitor{n}@example.test",
        }
        barrier.wait()
        response = c.post("/book/consultation", data=data)
        with lock:
            results.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(code for code, _ in results)
    assert codes == [200] + [409] * 19, codes
    assert count(app, Booking) == 1
    for code, html in results:
        if code == 409:
            assert "just taken" in html and 'name="start"' in html
            assert start.isoformat() not in html  # the taken slot is no longer offered


BASE = "https://slotbook.example/app"


def test_manage_link_ignores_a_forged_host_header(app, client, public):
    """Emailed links are built on SLOTBOOK_BASE_URL, never on the request's Host header."""
    app.config["SLOTBOOK_BASE_URL"] = BASE
    start = first_slot(app, public["kind"])
    evil = app.test_client()
    evil.environ_base["HTTP_HOST"] = "evil.example"
    response = book_form(evil, "consultation", start)
    assert response.status_code == 200, response.get_data(as_text=True)
    [message] = outbox(app, "public.booking_created")
    assert message["manage_url"].startswith(BASE + "/book/manage/")
    assert "evil.example" not in str(message)


def test_resent_manage_link_ignores_a_forged_host_header(app, public):
    """The S3 daily-limit resend path builds its link on SLOTBOOK_BASE_URL as well."""
    from datetime import timedelta

    app.config["SLOTBOOK_BASE_URL"] = BASE
    set_settings(app, max_bookings_per_contact_per_day=1)
    start = first_slot(app, public["kind"])
    evil = app.test_client()
    evil.environ_base["HTTP_HOST"] = "evil.example"
    assert book_form(evil, "consultation", start).status_code == 200
    response = book_form(evil, "consultation", start + timedelta(hours=2))
    assert response.status_code == 429
    [resent] = outbox(app, "public.manage_link_resent")
    assert resent["manage_url"].startswith(BASE + "/book/manage/")
    assert "evil.example" not in str(resent)
