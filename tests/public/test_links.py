"""S4 confirmation links and the release job; S5 manage links: tampered, expired, reused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking, Status
from app.public.models import LinkToken, PublicBooking
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from
from tests.public.conftest import book_form, first_slot, outbox, set_settings, token_from


def _booking(app) -> tuple[str, bool]:
    from app.extensions import db

    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        record = db.session.get(PublicBooking, booking.id)
        result = booking.status, record.pending_confirmation
        db.session.rollback()
    return result


def _post(client, url):
    return client.post(url, data={"csrf_token": csrf_from(client, "/book/consultation?tz=UTC")})


def test_confirmation_link_confirms_on_post_only(app, client, public):
    """S4: GET shows a page and changes nothing; POST confirms; the link is then used up."""
    set_settings(app, confirmation_timeout_minutes=30)
    response = book_form(client, "consultation", first_slot(app, public["kind"]))
    assert "please confirm" in response.get_data(as_text=True)
    [message] = outbox(app, "public.confirmation_requested")
    assert "/book/manage/" in message["manage_url"]
    url = "/book/confirm/" + token_from(message["confirm_url"])
    before = db_state(app)
    page = client.get(url)
    assert page.status_code == 200 and "Confirm booking" in page.get_data(as_text=True)
    assert not changed_tables(before, db_state(app))
    assert _booking(app) == (Status.CONFIRMED, True)
    assert _post(client, url).status_code == 200
    assert _booking(app) == (Status.CONFIRMED, False)
    before = db_state(app)
    assert client.get(url).status_code == 410
    assert _post(client, url).status_code == 410
    assert not changed_tables(before, db_state(app))


def test_release_job_cancels_unconfirmed_bookings(app, client, public):
    """Past the deadline the periodic job cancels the booking, audited as "released"."""
    from app.extensions import db
    from app.jobs import SCHEDULE, release_unconfirmed_bookings
    from app.public.service import release_unconfirmed

    assert any(p.func is release_unconfirmed_bookings for p in SCHEDULE)
    set_settings(app, confirmation_timeout_minutes=15)
    book_form(client, "consultation", first_slot(app, public["kind"]))
    with app.app_context():
        assert release_unconfirmed_bookings() == 0  # not due yet
    with app.app_context():
        from app.database import begin_write, utcnow

        begin_write()
        assert release_unconfirmed(utcnow() + timedelta(minutes=16)) == 1
        db.session.commit()
    assert _booking(app) == (Status.CANCELLED, False)
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        holds = [h.active for h in db.session.scalars(select(Booking)).one().holds]
    assert actions[-1] == "released" and holds == [False]
    [message] = outbox(app, "public.confirmation_requested")
    assert client.get("/book/confirm/" + token_from(message["confirm_url"])).status_code in (410,)


def test_manage_tampered_wrong_purpose_and_expired_tokens_change_nothing(app, client, public):
    """S5: a tampered token, a confirm token on the manage URL and an expired one: clear pages."""
    set_settings(app, confirmation_timeout_minutes=30)
    book_form(client, "consultation", first_slot(app, public["kind"]))
    [message] = outbox(app, "public.confirmation_requested")
    manage = token_from(message["manage_url"])
    confirm = token_from(message["confirm_url"])
    before = db_state(app)
    tampered = manage[:-1] + ("A" if manage[-1] != "A" else "B")
    for url in (
        f"/book/manage/{tampered}",
        f"/book/manage/{tampered}/cancel",
        f"/book/manage/{confirm}",
        f"/book/confirm/{manage}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Link not recognised" in response.get_data(as_text=True)
    for url in (
        f"/book/manage/{tampered}/cancel",
        f"/book/manage/{confirm}/cancel",
        f"/book/confirm/{manage}",
    ):
        assert _post(client, url).status_code == 404
    assert not changed_tables(before, db_state(app))

    from app.extensions import db

    with app.app_context():
        from app.database import begin_write

        begin_write()
        for row in db.session.scalars(select(LinkToken)):
            row.expires_at = row.created_at - timedelta(minutes=1)
        db.session.commit()
    before = db_state(app)
    assert client.get(f"/book/manage/{manage}").status_code == 410
    assert _post(client, f"/book/manage/{manage}/cancel").status_code == 410
    assert _post(client, f"/book/confirm/{confirm}").status_code == 410
    assert not changed_tables(before, db_state(app))
    assert _booking(app) == (Status.CONFIRMED, True)


def test_manage_cancel_needs_post_and_is_single_use(app, client, public):
    """GET pages never act; cancel on POST; the used link then changes nothing."""
    book_form(client, "consultation", first_slot(app, public["kind"]))
    [message] = outbox(app, "public.booking_created")
    token = token_from(message["manage_url"])
    before = db_state(app)
    for url in (
        f"/book/manage/{token}",
        f"/book/manage/{token}/cancel",
        f"/book/manage/{token}/reschedule",
    ):
        assert client.get(url).status_code == 200, url
    assert not changed_tables(before, db_state(app))
    assert client.get(f"/book/manage/{token}").headers["Referrer-Policy"] == "no-referrer"
    response = _post(client, f"/book/manage/{token}/cancel")
    assert response.status_code == 200 and "cancelled" in response.get_data(as_text=True)
    assert _booking(app)[0] == Status.CANCELLED
    before = db_state(app)
    assert client.get(f"/book/manage/{token}").status_code == 410
    assert _post(client, f"/book/manage/{token}/cancel").status_code == 410
    assert not changed_tables(before, db_state(app))


def test_manage_reschedule_moves_the_booking(app, client, public):
    """Reschedule through the manage link keeps the link working for the new time."""
    start = first_slot(app, public["kind"])
    book_form(client, "consultation", start)
    token = token_from(outbox(app, "public.booking_created")[0]["manage_url"])
    new = start + timedelta(days=1)
    response = client.post(
        f"/book/manage/{token}/reschedule",
        data={
            "csrf_token": csrf_from(client, "/book/consultation?tz=UTC"),
            "start": new.isoformat(),
            "tz": "UTC",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    from app.extensions import db

    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert booking.starts_at == new
        row = db.session.scalars(select(LinkToken)).one()
        assert row.expires_at == booking.ends_at
    assert client.get(f"/book/manage/{token}").status_code == 200


def test_access_log_lines_never_show_link_tokens():
    """The werkzeug access log masks /book/manage/<token> and /book/confirm/<token>."""
    import logging

    from app.secret_links import RedactTokens

    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s "%s" %s',
        ("1.2.3.4", "GET /book/manage/sbm_secret/cancel HTTP/1.1", 200),
        None,
    )
    RedactTokens().filter(record)
    assert "sbm_secret" not in record.getMessage()
    assert "/book/manage/[redacted]/cancel" in record.getMessage()


def test_delivering_public_messages_never_logs_the_link(app, client, public, caplog):
    """The outbox row holds the link (database only); delivering it logs no token."""
    import logging

    from app.extensions import db
    from app.outbox import OutboxMessage, deliver

    book_form(client, "consultation", first_slot(app, public["kind"]))
    [message] = outbox(app, "public.booking_created")
    token = token_from(message["manage_url"])
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        rows = list(db.session.execute(select(OutboxMessage.id, OutboxMessage.kind)))
        db.session.rollback()
        for message_id, _kind in rows:
            assert deliver(message_id) == "done"
        # The planned emails too (to the test's mail folder: no MAIL_SERVER here).
        mails = select(OutboxMessage.id).where(OutboxMessage.kind == "notify.email")
        mail_ids = db.session.scalars(mails).all()
        db.session.rollback()
        assert mail_ids
        for message_id in mail_ids:
            assert deliver(message_id) == "done"
    assert token not in caplog.text


def test_reschedule_to_a_taken_slot_is_a_409_that_changes_nothing(app, client, public, factory):
    """Another visitor holds the wanted time: a friendly page, the booking stays put."""
    start = first_slot(app, public["kind"])
    book_form(client, "consultation", start)
    token = token_from(outbox(app, "public.booking_created")[0]["manage_url"])
    other = start + timedelta(days=1)
    book_form(app.test_client(), "consultation", other, email="other@example.test")
    before = db_state(app)
    response = client.post(
        f"/book/manage/{token}/reschedule",
        data={
            "csrf_token": csrf_from(client, "/book/consultation?tz=UTC"),
            "start": other.isoformat(),
            "tz": "UTC",
        },
    )
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)
    assert not changed_tables(before, db_state(app))
