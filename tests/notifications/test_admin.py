"""N1/N4 admin screen: channels per rule saved as rows, failed sends listed with their error,
and "Retry" delivering a failed text once through the normal outbox path."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from markupsafe import escape
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from app import jobs
from app.database import begin_write, utcnow
from app.extensions import db
from app.notifications.models import RuleChannel
from app.notifications.rules import RULES, Channel, Rule, channels_for
from app.outbox import DONE, FAILED, PENDING, QUEUE_NAME, OutboxMessage
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login
from tests.notifications import test_sms as _sms
from tests.notifications.test_sms import emit_sms, row

# Fixtures of the SMS tests, used here by name.
sms_server = _sms.sms_server
sms_app = _sms.sms_app

HX = {"HX-Request": "true"}


def _admin(client, factory):
    admin = factory.user("administrator", email="admin@example.test")
    login(client, admin.email)
    return admin


def _add(app, kind: str, status: str, attempts: int, payload: dict, error: str | None) -> int:
    with app.app_context():
        begin_write()
        message = OutboxMessage(
            kind=kind,
            payload=payload,
            status=status,
            attempts=attempts,
            last_error=error,
            available_at=utcnow() + timedelta(minutes=5),
        )
        db.session.add(message)
        db.session.commit()
        return message.id


def _checked(html: str) -> set[str]:
    """The matrix cells ticked on the page ("rule.channel")."""
    return set(re.findall(r'name="channel" value="([a-z_]+\.[a-z_]+)"[^>]*?\schecked', html))


def _channels(app, rule: Rule) -> set[Channel]:
    with app.app_context():
        chosen = channels_for(rule)
        db.session.rollback()
        return chosen


def _work(app) -> None:
    """Run every queued outbox job, as ``worker.py --burst`` would."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection).work(
        burst=True, logging_level="WARNING"
    )


# --- channels per rule -----------------------------------------------------------------


def test_matrix_shows_every_rule_with_its_defaults(app, client, factory):
    """Rows are the rules of seed 004, columns Email / In-app / SMS, defaults ticked; the SMS
    column explains that no gateway is configured."""
    _admin(client, factory)
    html = client.get("/admin/notifications").get_data(as_text=True)
    for info in RULES.values():
        assert f'<th scope="row">{escape(info.label)}</th>' in html
    for label in ("Email", "In-app", "SMS"):
        assert f'<th scope="col">{label}' in html
    defaults = {f"{r.value}.{c.value}" for r, info in RULES.items() for c in info.default_channels}
    assert _checked(html) == defaults
    assert "No SMS gateway is configured" in html and 'aria-describedby="sms-note"' in html
    assert 'aria-current="page">Settings</a>' in html  # reached from the Settings menu item
    assert 'href="/admin/notifications"' in client.get("/admin/settings/general").get_data(
        as_text=True
    )  # ... where it is one of the sections

    app.config["SMS_GATEWAY_URL"] = "https://sms.example/send"
    assert "No SMS gateway is configured" not in client.get("/admin/notifications").get_data(
        as_text=True
    )


def test_saving_the_matrix_stores_rows_that_take_effect(app, client, factory):
    """Ticking SMS for reminders and unticking email for invites is stored as RuleChannel rows,
    the planner's ``channels_for`` sees it, and the page shows it."""
    _admin(client, factory)
    token = csrf_from(client, "/admin/notifications")
    ticked = {f"{r.value}.{c.value}" for r, info in RULES.items() for c in info.default_channels}
    ticked = (ticked | {"reminder.sms"}) - {"meeting_invite.email"}
    response = client.post(
        "/admin/notifications/channels",
        data={
            "csrf_token": token,
            "rules-shown": [r.value for r in RULES],
            "channel": sorted(ticked),
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/notifications"

    assert _channels(app, Rule.REMINDER) == {Channel.EMAIL, Channel.IN_APP, Channel.SMS}
    assert _channels(app, Rule.MEETING_INVITE) == {Channel.IN_APP}
    with app.app_context():
        rows = db.session.scalars(select(RuleChannel)).all()
        assert len(rows) == len(RULES) * len(Channel)
        db.session.rollback()
    page = client.get("/admin/notifications").get_data(as_text=True)
    assert "Notification channels saved." in page
    assert _checked(page) == ticked


def test_rules_missing_from_the_form_keep_their_choice(app, client, factory):
    """Only rules that were on the submitted form change (a rule added later keeps its own)."""
    _admin(client, factory)
    token = csrf_from(client, "/admin/notifications")
    client.post(
        "/admin/notifications/channels",
        data={"csrf_token": token, "rules-shown": ["reminder", "not-a-rule"], "channel": []},
    )
    assert _channels(app, Rule.REMINDER) == set()
    assert _channels(app, Rule.MEETING_INVITE) == {Channel.EMAIL, Channel.IN_APP}


@pytest.mark.parametrize("role", ["agent", "booking-manager", "learner"])
def test_people_without_settings_manage_are_refused(app, client, factory, role):
    """Without ``settings.manage``: 403 for the page and both posts, and nothing changes."""
    failed = _add(app, "notify.sms", FAILED, 8, {"to": "+447700900123"}, "boom")
    person = factory.user(role)
    login(client, person.email)
    token = csrf_from(client, "/me/notifications")
    before = db_state(app)
    assert client.get("/admin/notifications").status_code == 403
    posts = {
        "/admin/notifications/channels": {"rules-shown": ["reminder"], "channel": []},
        f"/admin/notifications/messages/{failed}/retry": {},
    }
    for url, data in posts.items():
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 403, url
    assert changed_tables(before, db_state(app)) == []
    page = client.get("/calendar").get_data(as_text=True)
    assert 'href="/admin/notifications"' not in page


# --- messages that could not be sent ---------------------------------------------------


def test_failed_and_retrying_messages_are_listed(app, client, factory):
    """Failed email/SMS rows with recipient, subject or rule, attempts and error; pending ones
    that already failed once as "Retrying" (no button); nothing else."""
    email = _add(
        app,
        "notify.email",
        FAILED,
        8,
        {"to": "ada@example.test", "subject": "Meeting invite: Review", "rule": "meeting_invite"},
        "SMTPServerDisconnected: Connection unexpectedly closed",
    )
    retrying = _add(
        app,
        "notify.sms",
        PENDING,
        2,
        {"to": "+447700900123", "text": "x", "rule": "reminder"},
        "SmsError: SMS gateway answered HTTP 502",
    )
    _add(app, "notify.email", PENDING, 0, {"to": "new@example.test", "subject": "Fresh"}, None)
    _add(app, "notify.email", DONE, 1, {"to": "sent@example.test", "subject": "Sent"}, None)
    _add(app, "booking.created", FAILED, 8, {"booking_id": 1}, "not a message to a person")
    _admin(client, factory)

    html = client.get("/admin/notifications").get_data(as_text=True)
    failed_row = re.search(rf'<tr id="message-{email}">(.*?)</tr>', html, re.S).group(1)
    for expected in (
        "Failed",
        "Email",
        "ada@example.test",
        "Meeting invite: Review",
        "<td>8</td>",
        "SMTPServerDisconnected: Connection unexpectedly closed",
        f"/admin/notifications/messages/{email}/retry",
    ):
        assert expected in failed_row, expected
    retry_row = re.search(rf'<tr id="message-{retrying}">(.*?)</tr>', html, re.S).group(1)
    for expected in ("Retrying", "SMS", "+447700900123", "Meeting reminder", "HTTP 502"):
        assert expected in retry_row, expected
    assert "/retry" not in retry_row
    for absent in ("new@example.test", "sent@example.test", "not a message to a person"):
        assert absent not in html


def test_only_failed_notification_rows_can_be_retried(app, client, factory):
    """Retrying a done, pending, non-notification or unknown row is a 404 that changes nothing."""
    ids = [
        _add(app, "notify.email", DONE, 1, {"to": "a@example.test"}, None),
        _add(app, "notify.sms", PENDING, 3, {"to": "+44"}, "HTTP 500"),
        _add(app, "booking.created", FAILED, 8, {"booking_id": 1}, "boom"),
        999999,
    ]
    _admin(client, factory)
    token = csrf_from(client, "/admin/notifications")
    before = db_state(app)
    for message_id in ids:
        url = f"/admin/notifications/messages/{message_id}/retry"
        assert client.post(url, data={"csrf_token": token}).status_code == 404, message_id
    assert changed_tables(before, db_state(app)) == []


def test_retry_from_the_screen_delivers_a_failed_text_once(
    sms_app, sms_server, client, factory, redis, monkeypatch
):
    """Acceptance 3 (SMS): the gateway fails, the row gives up and shows as failed with the
    error; "Retry" re-queues it, the worker sends it once, and it leaves the list."""
    monkeypatch.setattr(jobs, "_app", sms_app)  # the in-process worker's jobs use this app
    sms_app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    sms_server.fail_next(500)
    message_id = emit_sms(sms_app, to="+447700900555", text="Meeting reminder: Review")
    _work(sms_app)
    assert row(sms_app, message_id).status == FAILED
    assert [r.status for r in sms_server.requests] == [500]

    _admin(client, factory)
    page = client.get("/admin/notifications").get_data(as_text=True)
    listed = re.search(rf'<tr id="message-{message_id}">(.*?)</tr>', page, re.S).group(1)
    assert "+447700900555" in listed and "SMS gateway answered HTTP 500" in listed

    token = csrf_from(client, "/admin/notifications")
    url = f"/admin/notifications/messages/{message_id}/retry"
    response = client.post(url, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="failures"')
    assert f"Message {message_id} will be sent again" in fragment
    assert f'id="message-{message_id}"' not in fragment
    queued = row(sms_app, message_id)
    assert (queued.status, queued.attempts) == (PENDING, 0)
    assert queued.available_at <= utcnow()
    assert f"outbox-{message_id}" in Queue(QUEUE_NAME, connection=redis).get_job_ids()

    _work(sms_app)
    assert row(sms_app, message_id).status == DONE
    assert [r.status for r in sms_server.requests] == [500, 200]
    [sent] = sms_server.delivered
    assert sent.body == {"to": "+447700900555", "text": "Meeting reminder: Review"}

    # A second click (a stale page) finds nothing to retry, and nothing is sent again.
    again = client.post(url, data={"csrf_token": token})
    assert again.status_code == 404
    _work(sms_app)
    assert len(sms_server.requests) == 2
    assert f'id="message-{message_id}"' not in client.get("/admin/notifications").get_data(
        as_text=True
    )


def test_retry_without_javascript_redirects_back(app, client, factory):
    """The plain form post re-queues the row and comes back to the list with a message."""
    failed = _add(app, "notify.email", FAILED, 8, {"to": "a@example.test", "subject": "S"}, "x")
    _admin(client, factory)
    token = csrf_from(client, "/admin/notifications")
    response = client.post(
        f"/admin/notifications/messages/{failed}/retry", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/notifications#failures-h"
    page = client.get("/admin/notifications").get_data(as_text=True)
    assert f"Message {failed} will be sent again" in page
    assert row(app, failed).status == PENDING
