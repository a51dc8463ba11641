"""Webhook delivery (SPEC I6): every event type reaches a real receiver signed with the
endpoint's secret; a failing receiver is retried and then shown as failed; loopback and
private addresses are refused unless the deployment allows them."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import User
from app.bookings import service as bookings
from app.bookings.models import Attendee, Booking
from app.database import begin_write
from app.extensions import db
from app.webhooks.models import EVENTS, Webhook
from tests.conftest import at, login
from tests.webhooks.conftest import outbox_status, register, run_outbox


def _act(app, change):
    """Run a booking-service change the way a request does (one write transaction, one
    commit), then let the worker deliver what it emitted, as it would within moments."""
    with app.app_context():
        begin_write()
        result = change()
        db.session.commit()
    run_outbox(app)
    return result


def _drive_every_event(app, factory, admin) -> dict[str, int]:
    """Make each of the seven events happen through the booking service; booking ids by event."""
    agent = factory.user("agent")
    plain = factory.booking_type()
    approval = factory.booking_type(requires_approval=True)
    moved = factory.booking(admin, plain, at(2, 10), [agent])
    pending = factory.booking(admin, approval, at(3, 10), [agent])
    declined = factory.booking(admin, approval, at(4, 10), [agent])

    def actor():
        return db.session.get(User, admin.id)

    def booking(b):
        return db.session.get(Booking, b.id)

    _act(app, lambda: bookings.approve(actor(), booking(pending)))
    _act(app, lambda: bookings.reject(actor(), booking(declined)))
    _act(app, lambda: bookings.reschedule(actor(), booking(moved), at(2, 14)))
    guest = _act(
        app,
        lambda: (
            bookings.add_attendee(
                actor(), booking(moved), guest=bookings.Guest("visitor@example.test", "Vic")
            ).id
        ),
    )
    _act(
        app,
        lambda: bookings.remove_attendee(actor(), booking(moved), db.session.get(Attendee, guest)),
    )
    _act(app, lambda: bookings.cancel(actor(), booking(moved)))
    return {
        "booking.created": moved.id,
        "booking.confirmed": pending.id,
        "booking.rejected": declined.id,
        "booking.rescheduled": moved.id,
        "attendee.added": moved.id,
        "attendee.removed": moved.id,
        "booking.cancelled": moved.id,
    }


def test_every_event_type_arrives_signed_with_the_secret_shown_once(
    app, client, factory, admin, receiver
):
    """Each of the seven events reaches the receiver once, with a valid v1 signature over
    timestamp and body, its name in Slotbook-Event, a delivery id, and no link tokens."""
    login(client, admin.email)
    webhook_id, secret = register(client, receiver.url(), list(EVENTS))
    expected = _drive_every_event(app, factory, admin)

    run_outbox(app)

    by_event: dict[str, list] = {}
    for request in receiver.received:
        by_event.setdefault(request.json["event"], []).append(request)
    assert set(by_event) == set(EVENTS)
    for event, booking_id in expected.items():
        created = [r for r in by_event[event] if r.json["data"]["booking"]["id"] == booking_id]
        assert created, (event, booking_id)
    for request in receiver.received:
        assert request.signed_with(secret), request.headers
        assert not request.signed_with(secret + "x")
        assert request.headers["Slotbook-Event"] == request.json["event"]
        assert request.headers["Slotbook-Delivery"].isdigit()
        assert request.headers["Content-Type"] == "application/json"
        assert set(request.json) == {"event", "created_at", "data"}
        text = request.body.decode()
        assert "/manage/" not in text and "token" not in text and "whsec_" not in text
    [added] = by_event["attendee.added"]
    assert added.json["data"]["attendee"]["email"] == "visitor@example.test"
    [removed] = by_event["attendee.removed"]
    assert removed.json["data"]["attendee"]["name"] == "Vic"
    [confirmed] = by_event["booking.confirmed"]
    assert confirmed.json["data"]["booking"]["status"] == "confirmed"
    # The signature is also bound to the timestamp: another timestamp does not verify.
    tampered = type(added)(added.path, {**added.headers, "Slotbook-Timestamp": "1"}, added.body)
    assert not tampered.signed_with(secret)

    assert {s for s, _, _ in outbox_status(app, "webhook.deliver")} == {"done"}
    log = client.get(f"/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert log.count("Delivered") == len(receiver.received)
    assert secret not in log
    with app.app_context():
        sealed = db.session.get(Webhook, webhook_id).secret_sealed
        assert secret not in sealed


def test_only_subscribed_enabled_endpoints_get_an_event(app, client, factory, admin, receiver):
    """An endpoint gets only the events it chose; a disabled one gets nothing."""
    login(client, admin.email)
    register(client, receiver.url("/created"), ["booking.created"])
    off_id, _ = register(client, receiver.url("/off"), list(EVENTS))
    register(client, receiver.url("/cancelled"), ["booking.cancelled"])
    token = client.get(f"/admin/webhooks/{off_id}").get_data(as_text=True)
    from tests.conftest import CSRF_RE

    csrf = CSRF_RE.search(token).group(1)
    response = client.post(
        f"/admin/webhooks/{off_id}/active", data={"active": "0", "csrf_token": csrf}
    )
    assert response.status_code == 303
    agent = factory.user("agent")
    factory.booking(admin, factory.booking_type(), at(2, 10), [agent])

    run_outbox(app)

    assert [(r.path, r.json["event"]) for r in receiver.received] == [
        ("/created", "booking.created")
    ]


def test_a_failing_receiver_is_retried_then_shown_as_failed(app, client, factory, admin, receiver):
    """A 500 is retried through the outbox (same delivery id each time) until the attempts
    run out; the log lists every attempt with its code and marks the last one failed."""
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    receiver.status = 500
    login(client, admin.email)
    webhook_id, _ = register(client, receiver.url(), ["booking.created"])
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])

    run_outbox(app)

    assert len(receiver.received) == 3
    assert len({r.headers["Slotbook-Delivery"] for r in receiver.received}) == 1
    [(status, attempts, error)] = outbox_status(app, "webhook.deliver")
    assert (status, attempts) == ("failed", 3)
    assert "500" in error
    html = client.get(f"/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert html.count("The endpoint answered 500.") == 3
    assert html.count(">Failed</span> No more attempts.") == 1
    assert "Delivered" not in html
    for attempt in (1, 2, 3):
        assert f"<td>{attempt}</td>" in html


def test_a_receiver_that_recovers_gets_the_event_on_a_retry(app, client, factory, admin, receiver):
    """The first attempt fails (503), the retry succeeds: the log shows both, the row is done."""
    receiver.status = 503
    login(client, admin.email)
    webhook_id, _ = register(client, receiver.url(), ["booking.created"])
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])
    run_outbox(app, rounds=2)  # the booking row, then one delivery attempt
    assert len(receiver.received) == 1
    html = client.get(f"/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert "Will retry" in html

    receiver.status = 200
    run_outbox(app)

    assert len(receiver.received) == 2
    assert [s for s, _, _ in outbox_status(app, "webhook.deliver")] == ["done"]
    html = client.get(f"/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert "The endpoint answered 503." in html and "Delivered" in html


def _post_url(client, url: str):
    from tests.conftest import csrf_from

    token = csrf_from(client, "/admin/webhooks")
    return client.post(
        "/admin/webhooks",
        data={"url": url, "events": ["booking.created"], "csrf_token": token},
    )


def test_loopback_and_plain_http_are_refused_at_registration(app, client, admin, receiver):
    """Without SLOTBOOK_ALLOW_PRIVATE_URLS: http:// and loopback/private addresses are
    refused with a clear message and nothing is stored; with it, the same URL is taken."""
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = False
    login(client, admin.email)
    cases = {
        receiver.url(): "The address must start with https://.",
        f"https://127.0.0.1:{receiver.port}/hook": "127.0.0.1 is a local or private address",
        "https://localhost/hook": "localhost is a local or private address",
        "https://10.1.2.3/hook": "webhooks to the local network are only allowed",
        "ftp://example.test/x": "must start with https://",
    }
    for url, message in cases.items():
        response = _post_url(client, url)
        assert response.status_code == 400, url
        assert message in response.get_data(as_text=True), url
    with app.app_context():
        assert db.session.scalars(select(Webhook)).all() == []

    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = True
    assert _post_url(client, receiver.url()).status_code == 201


def test_loopback_is_refused_at_delivery_too(app, client, factory, admin, receiver):
    """An endpoint registered while private URLs were allowed is not called once they are
    not: plain http and a loopback https address are refused where the socket would connect,
    and the log says so."""
    app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    login(client, admin.email)
    http_id, _ = register(client, receiver.url(), ["booking.created"])
    https_id, _ = register(client, receiver.url(), ["booking.created"])
    with app.app_context():
        begin_write()
        db.session.get(Webhook, https_id).url = f"https://127.0.0.1:{receiver.port}/hook"
        db.session.commit()
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = False
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])

    run_outbox(app)

    assert receiver.received == []
    assert [s for s, _, _ in outbox_status(app, "webhook.deliver")] == ["failed", "failed"]
    html = client.get(f"/admin/webhooks/{http_id}").get_data(as_text=True)
    assert "Refused: webhooks are only sent to https:// addresses." in html
    html = client.get(f"/admin/webhooks/{https_id}").get_data(as_text=True)
    assert "Refused: 127.0.0.1 is a local or private address" in html


def test_a_name_that_turns_private_after_registration_is_refused(
    app, client, factory, admin, receiver, monkeypatch
):
    """DNS rebinding: the name resolved to a public address when registered and to 127.0.0.1
    when delivering; the pinned connection checks the address it connects to and refuses."""
    from app.connections import http

    app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = False
    answers = {"hooks.example.test": ["93.184.216.34"]}
    monkeypatch.setattr(http, "resolve", lambda host, port: answers.get(host, ["127.0.0.1"]))
    login(client, admin.email)
    response = _post_url(client, f"https://hooks.example.test:{receiver.port}/hook")
    assert response.status_code == 201
    answers["hooks.example.test"] = ["127.0.0.1"]
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])

    run_outbox(app)

    assert receiver.received == []
    with app.app_context():
        [webhook] = db.session.scalars(select(Webhook)).all()
        [delivery] = webhook.deliveries
        assert delivery.status_code is None
        assert delivery.error.startswith("Refused: hooks.example.test is a local or private")


def test_deleted_endpoint_is_skipped_and_its_log_goes(app, client, factory, admin, receiver):
    """Deleting an endpoint drops its log; an event queued for it is not sent."""
    login(client, admin.email)
    webhook_id, _ = register(client, receiver.url(), ["booking.created"])
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])
    run_outbox(app, rounds=1)  # the booking row fans out; the delivery row waits
    from tests.conftest import csrf_from

    token = csrf_from(client, f"/admin/webhooks/{webhook_id}/delete")
    response = client.post(f"/admin/webhooks/{webhook_id}/delete", data={"csrf_token": token})
    assert response.status_code == 303

    run_outbox(app)

    assert receiver.received == []
    assert [s for s, _, _ in outbox_status(app, "webhook.deliver")] == ["done"]
    with app.app_context():
        from app.webhooks.models import WebhookDelivery

        assert db.session.scalars(select(WebhookDelivery)).all() == []


def test_rotating_keys_reseals_the_signing_secret(app, client, factory, admin, receiver):
    """``flask rotate-keys`` re-seals webhook secrets too: with the old key removed, the next
    delivery is still signed with the secret the admin copied."""
    from app.security import KeyRing, generate_key

    login(client, admin.email)
    webhook_id, secret = register(client, receiver.url(), ["booking.created"])
    old = app.config["SLOTBOOK_ENCRYPTION_KEYS"]
    new = generate_key()
    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = f"{new},{old}"
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        sealed = db.session.get(Webhook, webhook_id).secret_sealed
        assert sealed.split(".")[1] == KeyRing.from_config(new).current_id

    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = new
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])
    run_outbox(app)

    [request] = receiver.received
    assert request.signed_with(secret)


def test_the_readme_example_verifies_a_real_delivery(app, client, factory, admin, receiver):
    """The README's example accepts a real request and refuses a tampered body."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # the documentation under test, not input
    login(client, admin.email)
    _, secret = register(client, receiver.url(), ["booking.created"])
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])
    run_outbox(app)

    [request] = receiver.received
    assert namespace["verified"](secret, request.headers, request.body)
    assert not namespace["verified"](secret, request.headers, request.body + b" ")
    assert not namespace["verified"]("whsec_other", request.headers, request.body)


def test_a_slow_endpoint_is_cut_off_at_the_deadline_and_retried(
    app, client, factory, admin, receiver
):
    """An endpoint slower than the deadline costs one deadline, not more; the log says it
    took too long, and the outbox keeps the event for a retry."""
    import time

    app.config["SLOTBOOK_WEBHOOK_TIMEOUT"] = 0.5
    receiver.delay = 3
    login(client, admin.email)
    webhook_id, _ = register(client, receiver.url(), ["booking.created"])
    factory.booking(admin, factory.booking_type(), at(2, 10), [factory.user("agent")])
    run_outbox(app, rounds=1)  # the booking row fans out
    started = time.monotonic()
    run_outbox(app, rounds=1)  # one delivery attempt
    assert time.monotonic() - started < 2.5

    [(status, attempts, _)] = outbox_status(app, "webhook.deliver")
    assert (status, attempts) == ("pending", 1)
    html = client.get(f"/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert "127.0.0.1 took too long to answer (more than 0.5 s)." in html
    assert "Will retry" in html
