"""The email channel end to end: MIME shape and branding, the visitor flow, the admin's
channel choice, SMTP outages with retries and the admin retry, and development mail files."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from rq import Queue
from sqlalchemy import select

from tests.conftest import at, csrf_from
from tests.notifications.conftest import deliver_all, outbox_rows, pending_ids
from tests.public.conftest import book_form, first_slot, public, set_settings, token_from

__all__ = ["public"]  # the public world fixture, used by the visitor tests below

AGENT = "agent@example.test"
LEARNER = "learner@example.test"
GUEST = "guest@example.test"
VISITOR = "vera@example.test"


@pytest.fixture
def people(factory):
    return {
        "manager": factory.user("manager", email="manager@example.test", name="Mia Manager"),
        "agent": factory.user("agent", email=AGENT, name="Agnes Agent"),
        "learner": factory.user(
            "learner", email=LEARNER, name="Leo Learner", timezone="America/New_York"
        ),
        "kind": factory.booking_type(slug="planning", name="Planning meeting"),
    }


def book(factory, people) -> int:
    from app.bookings.service import Guest

    return factory.booking(
        people["manager"],
        people["kind"],
        at(3, 10),
        [people["agent"]],
        learner=people["learner"],
        guests=[Guest(GUEST, "Gail Guest")],
    ).id


def booking_status(app, booking_id: int) -> str | None:
    from app.bookings.models import Booking
    from app.extensions import db

    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        status = booking.status if booking else None
        db.session.rollback()
    return status


def deliver(app, message_id: int) -> str:
    """One delivery attempt of one row, as the RQ job makes it."""
    from app.extensions import db
    from app.jobs import deliver_outbox_message

    with app.app_context():
        status = deliver_outbox_message(message_id)
        db.session.remove()
    return status


# --- the message itself ------------------------------------------------------------------


def test_an_invitation_is_branded_multipart_with_the_calendar_twice(
    app, factory, people, smtp_server
):
    """From carries the mailer name; plain text and HTML (in the brand colour) alternate with
    a text/calendar part whose method matches the attached invite.ics."""
    set_settings(app, mailer_from_name="Acme Training", brand_primary_colour="#aa3300")
    app.config["MAIL_DEFAULT_SENDER"] = "bookings@acme.example"
    booking_id = book(factory, people)
    deliver_all(app)

    [mail] = smtp_server.to(LEARNER)
    message = mail.message
    assert mail.mail_from == "bookings@acme.example"
    assert message["From"].addresses[0].display_name == "Acme Training"
    assert message["From"].addresses[0].addr_spec == "bookings@acme.example"
    assert message["To"].addresses[0].addr_spec == LEARNER
    assert message["To"].addresses[0].display_name == "Leo Learner"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/mixed"
    [alternative] = [p for p in message.iter_parts() if p.is_multipart()]
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    calendar = mail.calendar_part
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset().upper() == "UTF-8"
    assert mail.attachment.get_content_type() == "application/ics"
    assert str(mail.ics()["METHOD"]) == "REQUEST"

    # Branding and content in both bodies, times in the learner's zone.
    assert "#aa3300" in mail.html and "Acme Training" in mail.html
    assert "Acme Training" in mail.text
    assert "America/New_York" in mail.text and "Planning meeting" in mail.text
    assert f"/bookings/{booking_id}" in mail.text  # internal people get the booking's link
    [guest_mail] = smtp_server.to(GUEST)
    assert "/bookings/" not in guest_mail.text  # a guest cannot sign in: no dead link
    assert "Europe/London" in guest_mail.text


def test_a_malformed_brand_colour_never_reaches_the_styles(app, factory, people, smtp_server):
    """A bad stored colour (the screens and ``flask settings set`` refuse one, but an older
    database or a hand edit may hold it) falls back to the default instead of breaking the CSS."""
    from app.admin.models import OrgSetting
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        evil = "red;background:url(http://evil.example/x)"
        db.session.add(OrgSetting(key="brand_primary_colour", value=evil))
        db.session.commit()
    book(factory, people)
    deliver_all(app)
    [mail] = smtp_server.to(AGENT)
    assert "evil.example" not in mail.html
    assert "#2457a7" in mail.html


def test_html_bodies_escape_what_people_typed(app, factory, people, smtp_server):
    """A title with markup is shown as text in the HTML body, never as markup."""
    from app.bookings.service import Guest

    factory.booking(
        people["manager"],
        people["kind"],
        at(3, 10),
        [people["agent"]],
        guests=[Guest(GUEST, "<b>Gail</b>")],
        title="<script>alert(1)</script> Review",
    )
    deliver_all(app)
    [mail] = smtp_server.to(GUEST)
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "<b>Gail</b>" not in mail.html
    assert "<script>alert(1)</script> Review" in mail.subject


# --- visitors ----------------------------------------------------------------------------


def test_a_visitor_asked_to_confirm_gets_the_confirm_link_once(
    app, client, public, smtp_server, caplog
):
    """Public booking with confirmation: the visitor gets one email with their confirm and
    manage links (no second invitation from booking.created); the agent gets the invite;
    no log line carries a link's token."""
    set_settings(app, confirmation_timeout_minutes=30)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="mail.log")  # the test server's own transcript
    response = book_form(client, "consultation", first_slot(app, public["kind"]))
    assert response.status_code in (200, 302, 303)
    [request] = outbox_rows(app, "public.confirmation_requested")
    confirm_url = request["payload"]["confirm_url"]
    manage_url = request["payload"]["manage_url"]
    deliver_all(app)

    [mail] = smtp_server.to(VISITOR)
    assert mail.subject.startswith("Please confirm your booking: Consultation on ")
    assert confirm_url in mail.text and manage_url in mail.text
    assert f'href="{confirm_url}"' in mail.html
    assert mail.attachment is None  # nothing to put in a calendar until it is confirmed
    [invite] = smtp_server.to("agent@example.test")
    assert invite.subject.startswith("Meeting invitation: Consultation on ")
    assert confirm_url not in invite.text and manage_url not in invite.text
    for url in (confirm_url, manage_url):
        assert token_from(url) not in caplog.text

    # Confirming sends the calendar invitation, with a fresh manage link.
    smtp_server.clear()
    path = "/book/confirm/" + token_from(confirm_url)
    assert client.post(path, data={"csrf_token": csrf_from(client, path)}).status_code == 200
    [resent] = outbox_rows(app, "public.booking_confirmed")  # links are dropped once sent
    deliver_all(app)
    [confirmed] = smtp_server.to(VISITOR)
    assert confirmed.subject.startswith("Booking confirmed: Consultation on ")
    assert resent["payload"]["manage_url"] in confirmed.text
    assert str(confirmed.ics()["METHOD"]) == "REQUEST"
    assert str(confirmed.event()["STATUS"]) == "CONFIRMED"
    assert token_from(resent["payload"]["manage_url"]) not in caplog.text


def test_a_visitor_booking_without_confirmation_mails_the_manage_link_and_invite(
    app, client, public, smtp_server
):
    """No confirmation step: the visitor's one email confirms, carries the manage link and
    an .ics REQUEST that names them as attendee."""
    response = book_form(client, "consultation", first_slot(app, public["kind"]))
    assert response.status_code in (200, 302, 303)
    [created] = outbox_rows(app, "public.booking_created")
    deliver_all(app)
    [mail] = smtp_server.to(VISITOR)
    assert mail.subject.startswith("Booking confirmed: Consultation on ")
    assert created["payload"]["manage_url"] in mail.text
    event = mail.event()
    assert str(mail.ics()["METHOD"]) == "REQUEST"
    assert str(event["STATUS"]) == "CONFIRMED"
    attendees = event.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert f"mailto:{VISITOR}" in {str(a).lower() for a in attendees}


def test_a_visitor_over_the_daily_limit_is_mailed_their_manage_link(
    app, client, public, smtp_server
):
    """Refused for the daily limit, the visitor's earlier booking's manage link is re-sent
    to the address on file (never shown on the page)."""
    set_settings(app, max_bookings_per_contact_per_day=1)
    start = first_slot(app, public["kind"])
    book_form(client, "consultation", start)
    deliver_all(app)
    smtp_server.clear()
    refused = book_form(app.test_client(), "consultation", start + timedelta(hours=1))
    assert refused.status_code == 429
    [resent] = outbox_rows(app, "public.manage_link_resent")
    assert resent["payload"]["manage_url"] not in refused.get_data(as_text=True)
    deliver_all(app)
    [mail] = smtp_server.messages
    assert mail.to == [VISITOR]
    assert mail.subject.startswith("Your booking link: Consultation on ")
    assert resent["payload"]["manage_url"] in mail.text
    assert mail.attachment is None


def test_sms_is_planned_only_where_a_phone_is_known(app, client, public, smtp_server):
    """With SMS switched on for visitor confirmations, the visitor who gave a phone number
    gets a notify.sms row with their manage link."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.models import RuleChannel
    from app.outbox import deliver

    with app.app_context():
        begin_write()
        db.session.add(RuleChannel(rule="visitor_booked", channel="sms", enabled=True))
        db.session.commit()
    book_form(client, "consultation", first_slot(app, public["kind"]), phone="+447700900123")
    [created] = outbox_rows(app, "public.booking_created")
    with app.app_context():
        assert deliver(created["id"]) == "done"
        db.session.remove()
    [sms] = outbox_rows(app, "notify.sms")
    assert sms["payload"]["to"] == "+447700900123"
    assert created["payload"]["manage_url"] in sms["payload"]["text"]
    assert sms["payload"]["rule"] == "visitor_booked"


# --- the admin's channel choice -------------------------------------------------------


def test_email_switched_off_sends_nothing_but_the_bell_still_rings(
    app, factory, people, smtp_server
):
    """Email off for "Meeting invite": no mail at all, in-app notifications still made."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.models import Notification, RuleChannel

    with app.app_context():
        begin_write()
        db.session.add(RuleChannel(rule="meeting_invite", channel="email", enabled=False))
        db.session.commit()
    booking_id = book(factory, people)
    deliver_all(app)
    assert smtp_server.messages == []
    assert outbox_rows(app, "notify.email") == []
    with app.app_context():
        rows = db.session.scalars(select(Notification)).all()
        assert {r.user_id for r in rows} == {people["agent"].id, people["learner"].id}
        assert all(r.rule == "meeting_invite" and r.booking_id == booking_id for r in rows)
        db.session.rollback()


# --- SMTP down, retries, the admin retry ----------------------------------------------


def test_smtp_down_keeps_the_booking_fails_the_send_and_an_admin_retry_delivers_once(
    app, factory, people, smtp_server, redis
):
    """SMTP unreachable: the booking stands, each email is retried and then marked failed
    with the error; with SMTP back, the admin's retry queues it and it arrives exactly once."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications import admin
    from app.outbox import QUEUE_NAME, enqueue_ids

    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    smtp_server.stop()
    booking_id = book(factory, people)
    assert booking_status(app, booking_id) == "confirmed"

    [created] = outbox_rows(app, "booking.created")
    assert deliver(app, created["id"]) == "done"  # planning needs no SMTP
    emails = outbox_rows(app, "notify.email")
    assert sorted(e["payload"]["to"] for e in emails) == sorted([AGENT, LEARNER, GUEST])
    target = next(e for e in emails if e["payload"]["to"] == LEARNER)
    assert [deliver(app, target["id"]) for _ in range(3)] == ["pending", "pending", "failed"]
    [row] = [e for e in outbox_rows(app, "notify.email") if e["id"] == target["id"]]
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "refused" in row["last_error"].lower() or "connect" in row["last_error"].lower()
    assert booking_status(app, booking_id) == "confirmed"  # never rolled back
    with app.app_context():
        assert target["id"] in {m.id for m in admin.undelivered() if m.failed}
        db.session.rollback()

    smtp_server.start()
    queue = Queue(QUEUE_NAME, connection=redis)
    queue.empty()
    with app.app_context():
        begin_write()
        admin.retry(target["id"])
        db.session.commit()
        assert enqueue_ids([target["id"]]) == 1
        db.session.remove()
    assert f"outbox-{target['id']}" in queue.job_ids
    assert deliver(app, target["id"]) == "done"
    assert deliver(app, target["id"]) == "done"  # a duplicate job changes nothing
    assert len(smtp_server.to(LEARNER)) == 1
    [row] = [e for e in outbox_rows(app, "notify.email") if e["id"] == target["id"]]
    assert row["status"] == "done" and row["last_error"] is None

    deliver_all(app)  # the others, still pending, go out now too
    assert sorted(a for m in smtp_server.messages for a in m.to) == sorted([AGENT, LEARNER, GUEST])


def test_retry_failed_refuses_rows_that_did_not_fail(app, factory, people, smtp_server):
    """Only failed notification rows can be reset; a done one is left alone."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications import admin

    book(factory, people)
    deliver_all(app)
    [created] = outbox_rows(app, "booking.created")
    done_email = outbox_rows(app, "notify.email")[0]
    with app.app_context():
        begin_write()
        for message_id in (done_email["id"], created["id"], 999_999):
            with pytest.raises(admin.NotFound):
                admin.retry(message_id)
        db.session.rollback()
    assert pending_ids(app) == []


def test_a_refused_recipient_is_an_error_the_outbox_keeps(app, factory, people, smtp_server):
    """The server answering 550 for the address is a failure, not a silent success."""

    async def refuse(server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user here"

    smtp_server.inbox.handle_RCPT = refuse
    smtp_server.stop()
    smtp_server.start()
    book(factory, people)
    [created] = outbox_rows(app, "booking.created")
    deliver(app, created["id"])
    first = outbox_rows(app, "notify.email")[0]
    assert deliver(app, first["id"]) == "pending"
    [row] = [e for e in outbox_rows(app, "notify.email") if e["id"] == first["id"]]
    assert "No such user" in row["last_error"]
    assert smtp_server.messages == []


# --- development: mail to a folder -------------------------------------------------------


def test_without_mail_server_messages_are_written_to_the_mail_folder(
    app, factory, people, tmp_path, caplog
):
    """Development: no MAIL_SERVER, so each email is an .eml file in MAIL_OUTBOX_DIR, named
    by time and outbox id, with the path (and never the body) in the log."""
    folder = tmp_path / "mail"
    app.config["MAIL_SERVER"] = None
    app.config["MAIL_OUTBOX_DIR"] = str(folder)
    caplog.set_level(logging.INFO, logger="app.notifications.mailer")
    book(factory, people)
    deliver_all(app)

    files = sorted(folder.glob("*.eml"))
    emails = {e["id"]: e for e in outbox_rows(app, "notify.email")}
    assert len(files) == len(emails) == 3
    recipients = set()
    for path in files:
        match = re.fullmatch(r"\d{8}T\d{12}Z-(\d+)\.eml", path.name)
        assert match, path.name
        assert int(match.group(1)) in emails
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        recipients.add(parsed["To"].addresses[0].addr_spec)
        assert str(parsed["Subject"]).strip().startswith("Meeting invitation: Planning meeting")
        assert str(path) in caplog.text
    assert recipients == {AGENT, LEARNER, GUEST}
    assert "Hello" not in caplog.text and "BEGIN:VCALENDAR" not in caplog.text
    assert not list(folder.glob("*.partial"))


def test_a_visitor_on_an_approval_type_is_told_it_awaits_approval(app, client, public, smtp_server):
    """On a type that needs approval the booking is provisional: the visitor's email says
    their request is received and awaiting approval (never "confirmed"), matching the
    TENTATIVE invitation attached."""
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        db.session.get(BookingType, public["kind"].id).requires_approval = True
        db.session.commit()
    response = book_form(client, "consultation", first_slot(app, public["kind"]))
    assert response.status_code in (200, 302, 303)
    [created] = outbox_rows(app, "public.booking_created")
    deliver_all(app)
    [mail] = smtp_server.to(VISITOR)
    assert mail.subject.startswith("Booking request received: Consultation on ")
    for body in (mail.text, mail.html):
        assert "awaiting approval" in body
        assert "confirmed" not in body.lower()
    assert str(mail.event()["STATUS"]) == "TENTATIVE"
    assert created["payload"]["manage_url"] in mail.text
