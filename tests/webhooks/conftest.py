"""Webhook tests: a real HTTP receiver on 127.0.0.1 (a thread) that records every request and
answers with the status a test sets; the app allows private URLs so it may reach it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from
from tests.notifications.conftest import pending_ids


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """Verify the way the README tells receivers to."""
        timestamp = self.headers["Slotbook-Timestamp"]
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(self.headers["Slotbook-Signature"], f"v1={expected}")


class Receiver:
    """An HTTP server in a thread; ``status`` is what it answers to every POST."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 204
        self.delay = 0.0  # seconds to wait before answering (a slow endpoint)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app):
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = True
    app.config["SLOTBOOK_WEBHOOK_TIMEOUT"] = 5.0
    with Receiver() as server:
        yield server


@pytest.fixture
def admin(factory):
    return factory.user("administrator")


def register(client, url: str, events: list[str]) -> tuple[int, str]:
    """Register a webhook through the screen; (webhook id, the secret shown once)."""
    token = csrf_from(client, "/admin/webhooks")
    response = client.post(
        "/admin/webhooks", data={"url": url, "events": events, "csrf_token": token}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 201, html[:2000]
    secret = re.search(r'id="webhook-secret" readonly value="([^"]+)"', html).group(1)
    webhook_id = int(re.search(r"/admin/webhooks/(\d+)\"", html).group(1))
    return webhook_id, secret


def run_outbox(app, rounds: int = 12) -> None:
    """Deliver pending rows the way the worker does, until none is pending (or ``rounds``)."""
    from app.extensions import db
    from app.jobs import deliver_outbox_message

    for _ in range(rounds):
        ids = pending_ids(app)
        if not ids:
            return
        for message_id in ids:
            with app.app_context():
                deliver_outbox_message(message_id)
                db.session.remove()


def outbox_status(app, kind: str) -> list[tuple[str, int, str | None]]:
    from app.extensions import db
    from app.outbox import OutboxMessage

    with app.app_context():
        rows = db.session.execute(
            select(OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.last_error)
            .where(OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id)
        ).all()
        db.session.rollback()
    return [tuple(r) for r in rows]
