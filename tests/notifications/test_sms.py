"""N1 SMS channel: the HTTP gateway against a real local HTTP server, retries through the
outbox, and the log-only gateway that keeps private links out of the log."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.database import begin_write
from app.extensions import db
from app.jobs import deliver_outbox_message
from app.notifications.sms import (
    HttpSmsGateway,
    LogSmsGateway,
    SmsError,
    has_private_link,
)
from app.outbox import DONE, FAILED, PENDING, OutboxMessage, emit
from tests.conftest import free_port

TOKEN = "sms-test-token-0123456789"


@dataclass
class SmsRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: object
    status: int  # what the server answered


@dataclass
class SmsServer:
    """A real HTTP server on loopback that records every request and answers each with the
    next status from ``script`` (200 once the script runs out)."""

    port: int = field(default_factory=free_port)
    script: list[tuple[int, dict]] = field(default_factory=list)
    requests: list[SmsRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/messages"

    def fail_next(self, *statuses: int, headers: dict | None = None) -> None:
        with self.lock:
            self.script.extend((status, headers or {}) for status in statuses)

    def answer(self) -> tuple[int, dict]:
        with self.lock:
            return self.script.pop(0) if self.script else (200, {})

    @property
    def delivered(self) -> list[SmsRequest]:
        return [r for r in self.requests if 200 <= r.status < 300]


def _handler_for(server: SmsServer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            status, extra = server.answer()
            server.requests.append(
                SmsRequest(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw),
                    status,
                )
            )
            body = json.dumps({"id": len(server.requests)} if status < 300 else {"error": "no"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def sms_server():
    """The SMS gateway stand-in, running in a thread for the test."""
    server = SmsServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", server.port), _handler_for(server))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


@pytest.fixture
def sms_app(app, sms_server):
    """The app configured to send texts through ``sms_server``."""
    app.config.update(SMS_GATEWAY_URL=sms_server.url, SMS_GATEWAY_TOKEN=TOKEN)
    return app


def emit_sms(app, to: str = "+447700900123", text: str = "Meeting invite: Review") -> int:
    """A ``notify.sms`` row as the planner writes it; returns its id."""
    with app.app_context():
        begin_write()
        message = emit("notify.sms", to=to, text=text, rule="meeting_invite", source=None)
        db.session.commit()
        return message.id


def deliver(app, message_id: int) -> str:
    """Deliver one row as the worker's job does."""
    with app.app_context():
        status = deliver_outbox_message(message_id)
        db.session.remove()
        return status


def row(app, message_id: int) -> OutboxMessage:
    with app.app_context():
        message = db.session.get(OutboxMessage, message_id)
        db.session.expunge(message)
        db.session.rollback()
        return message


# --- the HTTP gateway -----------------------------------------------------------------


def test_posts_json_with_bearer_token(sms_server):
    """Default body {"to", "text"}; the token in ``Authorization: Bearer``; quotes and newlines
    in the text arrive intact."""
    text = 'Meeting "Review" moved\nto 10:00'
    HttpSmsGateway(sms_server.url, TOKEN).send("+447700900123", text)
    [request] = sms_server.requests
    assert request.path == "/v1/messages"
    assert request.body == {"to": "+447700900123", "text": text}
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"


def test_body_template_and_custom_auth_header(sms_server):
    """A provider's own body shape and key header, placeholders filled inside strings only."""
    template = '{"recipient": "{to}", "message": "Slotbook: {text}", "tags": ["{to}"], "n": 1}'
    gateway = HttpSmsGateway(sms_server.url, TOKEN, template, auth_header="X-API-Key")
    gateway.send("+15550100", 'say "hi" {to}')
    [request] = sms_server.requests
    assert request.body == {
        "recipient": "+15550100",
        "message": 'Slotbook: say "hi" {to}',
        "tags": ["+15550100"],
        "n": 1,
    }
    assert request.headers["x-api-key"] == TOKEN
    assert "authorization" not in request.headers


def test_refusals_and_network_errors_raise(sms_server):
    """Non-2xx answers and an unreachable gateway raise, so the outbox retries; a
    ``Retry-After`` is passed on."""
    gateway = HttpSmsGateway(sms_server.url, TOKEN)
    sms_server.fail_next(500)
    with pytest.raises(SmsError, match="HTTP 500"):
        gateway.send("+447700900123", "x")
    sms_server.fail_next(429, headers={"Retry-After": "120"})
    with pytest.raises(SmsError, match="HTTP 429") as raised:
        gateway.send("+447700900123", "x")
    assert raised.value.retry_after == 120
    closed = HttpSmsGateway(f"http://127.0.0.1:{free_port()}/sms", TOKEN, timeout=2)
    with pytest.raises(SmsError, match="unreachable") as raised:
        closed.send("+447700900123", "x")
    assert TOKEN not in str(raised.value)


# --- through the outbox ----------------------------------------------------------------


def test_outbox_sends_notify_sms_through_the_configured_gateway(sms_app, sms_server):
    """A ``notify.sms`` row from the planner goes out once and is done."""
    message_id = emit_sms(sms_app, text="Reminder: Review at 10:00")
    assert deliver(sms_app, message_id) == DONE
    assert deliver(sms_app, message_id) == DONE  # delivered twice: sent once
    [request] = sms_server.requests
    assert request.body == {"to": "+447700900123", "text": "Reminder: Review at 10:00"}
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_a_500_keeps_the_row_for_a_retry_and_then_fails_it(sms_app, sms_server):
    """500: the row stays pending with the error and a back-off; the next try sends it. With
    no tries left it is failed, with the error, for the admin screen."""
    sms_server.fail_next(500)
    message_id = emit_sms(sms_app)
    assert deliver(sms_app, message_id) == PENDING
    after_failure = row(sms_app, message_id)
    assert after_failure.attempts == 1
    assert "SmsError: SMS gateway answered HTTP 500" in after_failure.last_error
    assert after_failure.available_at > after_failure.created_at
    assert deliver(sms_app, message_id) == DONE
    assert [r.status for r in sms_server.requests] == [500, 200]

    sms_app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    sms_server.fail_next(503, 503)
    doomed = emit_sms(sms_app, to="+447700900999")
    assert deliver(sms_app, doomed) == PENDING
    assert deliver(sms_app, doomed) == FAILED
    failed = row(sms_app, doomed)
    assert failed.attempts == 2 and "HTTP 503" in failed.last_error
    assert len(sms_server.delivered) == 1


def test_bad_payload_is_not_sent(sms_app, sms_server):
    """A row without a number fails its tries with a clear error and reaches no gateway."""
    with sms_app.app_context():
        begin_write()
        message = emit("notify.sms", text="no number", rule="reminder")
        db.session.commit()
        message_id = message.id
    assert deliver(sms_app, message_id) == PENDING
    assert "needs a recipient number" in row(sms_app, message_id).last_error
    assert sms_server.requests == []


# --- development: the log ------------------------------------------------------------


def test_without_a_gateway_texts_go_to_the_log(app, caplog):
    """SMS_GATEWAY_URL unset: the row is done and the text is in the log."""
    assert not app.config.get("SMS_GATEWAY_URL")
    message_id = emit_sms(app, text="Meeting cancelled: Review")
    with caplog.at_level(logging.INFO, logger="app.notifications.sms"):
        assert deliver(app, message_id) == DONE
    lines = [r.getMessage() for r in caplog.records if r.name == "app.notifications.sms"]
    assert lines == ["SMS to +447700900123: Meeting cancelled: Review"]


def test_log_gateway_keeps_private_links_out(caplog):
    """A text with a manage link (its token in the URL) is logged without the text."""
    token = "sbm_" + "Q" * 20 + "x9" * 11
    with caplog.at_level(logging.INFO, logger="app.notifications.sms"):
        LogSmsGateway().send(
            "+447700900123", f"Manage: https://slotbook.example/book/manage/{token}"
        )
        LogSmsGateway().send("+447700900123", "See https://slotbook.example/bookings/12")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged and "slotbook.example/book/manage" not in logged
    assert "text not logged" in logged
    assert "See https://slotbook.example/bookings/12" in logged


@pytest.mark.parametrize(
    ("text", "private"),
    [
        ("Meeting invite: Review on Tue 10:00", False),
        ("Details: https://slotbook.example/bookings/42", False),
        ("Confirm: https://slotbook.example/book/confirm/sbc_AbCdEfGhIjKlMnOpQrSt", True),
        ("Answer: http://x.example/polls/answer/sbp_0123456789abcdefXYZ", True),
        ("Open https://x.example/feed?token=abc", True),
        ("Open https://x.example/a?signature=1", True),
    ],
)
def test_private_link_detection(text, private):
    """Links that carry something token-like are private; ordinary app links are not."""
    assert has_private_link(text) is private


def test_handler_is_registered(app):
    """``notify.sms`` rows have the SMS handler (registered when the app is created)."""
    from app.outbox import handlers_for

    with app.app_context():
        names = [f"{h.__module__}.{h.__qualname__}" for h in handlers_for("notify.sms")]
        assert "app.notifications.sms.send_sms" in names
