"""Settings "Join early" and "Maximum waiting time": the visitor's Join button appears that
many minutes before an online meeting; after the start plus the waiting time an agent on the
booking may mark it a no-show, which is audited, notified and visible in the API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking
from app.database import utcnow
from app.extensions import db
from tests.conftest import csrf_from, login
from tests.notifications.conftest import deliver_all, smtp_server  # noqa: F401 - fixture
from tests.public.conftest import book_form, first_slot, outbox, set_settings, token_from

LINK = "https://meet.example.test/room-42"


def _online_booking(app, client, public) -> tuple[int, str]:
    """A visitor's booking, made public and then moved to an online room; (id, manage token)."""
    assert book_form(client, "consultation", first_slot(app, public["kind"])).status_code == 200
    [created] = outbox(app, "public.booking_created")
    return created["booking_id"], token_from(created["manage_url"])


def _move(app, booking_id: int, starts_in: timedelta) -> None:
    from app.database import begin_write

    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, booking_id)
        booking.starts_at = utcnow() + starts_in
        booking.ends_at = booking.starts_at + timedelta(hours=1)
        booking.location_mode, booking.location_detail = "remote", LINK
        db.session.commit()


def test_join_button_appears_join_early_minutes_before_the_start(app, client, public):
    booking_id, token = _online_booking(app, client, public)
    _move(app, booking_id, timedelta(minutes=10))
    set_settings(app, join_early_minutes=5)
    page = client.get(f"/book/manage/{token}").get_data(as_text=True)
    assert LINK not in page and 'data-testid="join-later"' in page

    set_settings(app, join_early_minutes=15)
    page = client.get(f"/book/manage/{token}").get_data(as_text=True)
    assert f'href="{LINK}"' in page and 'data-testid="join"' in page


def test_face_to_face_booking_has_no_join_button(app, client, public):
    _, token = _online_booking(app, client, public)
    set_settings(app, join_early_minutes=120)
    page = client.get(f"/book/manage/{token}").get_data(as_text=True)
    assert "Online meeting" not in page


def _no_show(client, booking_id: int):
    token = csrf_from(client, f"/bookings/{booking_id}")
    return client.post(f"/bookings/{booking_id}/no_show", data={"csrf_token": token})


def test_no_show_only_after_the_waiting_time_with_audit_and_email(
    app,
    client,
    public,
    smtp_server,  # noqa: F811 - the imported fixture
):
    booking_id, _ = _online_booking(app, client, public)
    deliver_all(app)
    smtp_server.clear()
    _move(app, booking_id, -timedelta(minutes=10))  # started ten minutes ago
    login(client, "agent@example.test")

    set_settings(app, max_waiting_minutes=15)
    assert "Mark as no-show" not in client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    refused = _no_show(client, booking_id)
    assert refused.status_code == 400
    assert "maximum waiting time" in refused.get_data(as_text=True)

    set_settings(app, max_waiting_minutes=5)
    assert "Mark as no-show" in client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert _no_show(client, booking_id).status_code == 303
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "no_show"
        audit = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(AuditEntry.id)
        ).all()[-1]
        assert (audit.action, audit.changes) == ("no_show", {"status": ["confirmed", "no_show"]})
        db.session.rollback()
    assert _no_show(client, booking_id).status_code == 409  # once only

    deliver_all(app)
    told = {m.to[0]: m.subject for m in smtp_server.messages}
    assert "vera@example.test" in told and "agent@example.test" in told
    assert all("no-show" in subject for subject in told.values())


def test_api_marks_and_reports_no_show(app, client, public):
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.database import begin_write

    booking_id, _ = _online_booking(app, client, public)
    _move(app, booking_id, -timedelta(minutes=30))
    with app.app_context():
        begin_write()
        token = create_api_token(db.session.get(User, public["agent"].id), "test")
        db.session.commit()
    response = client.patch(
        f"/api/v1/bookings/{booking_id}",
        json={"status": "no_show"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "no_show"


def test_a_no_show_keeps_its_calendar_event_and_reads_no_show(app, client, public):
    """The agent's time was taken waiting: the event stays CONFIRMED in .ics feeds and on
    linked calendars, and screens say "No-show"."""
    from app.bookings.writeback import EVENT_STATUSES
    from app.notifications.ics import invitation

    booking_id, _ = _online_booking(app, client, public)
    _move(app, booking_id, -timedelta(hours=2))
    login(client, "agent@example.test")
    assert _no_show(client, booking_id).status_code == 303
    assert "No-show" in client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert "STATUS:CONFIRMED" in invitation(booking, method="REQUEST", sequence=1)
        assert booking.status in EVENT_STATUSES
        db.session.rollback()
