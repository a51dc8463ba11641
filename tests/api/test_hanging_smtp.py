"""Writes never wait on SMTP (issue [08], acceptance 2).

A real HTTP server (werkzeug, in a thread) takes API writes while a real ``worker.py``
process delivers the outbox to an SMTP address that accepts connections and never answers.
Every write and read still finishes in well under a second (the worker claims a row and
commits before it talks to SMTP, so it holds no database lock while the server hangs), and
once the server answers every message is delivered: nothing is lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.config import PROJECT_ROOT
from app.extensions import db
from app.outbox import DONE, OutboxMessage
from tests.api.conftest import london, winter_monday
from tests.conftest import process_env
from tests.fakes.holding_relay import HoldingRelay
from tests.notifications.conftest import SmtpServer

WRITES = 20
LIMIT_SECONDS = 1.0


@pytest.fixture
def mailbox():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hanging_smtp(mailbox):
    """The mailbox behind a relay that accepts connections and says nothing until released."""
    relay = HoldingRelay(mailbox.port, holding=True)
    yield relay
    relay.close()


@contextmanager
def live_server(app):
    """The app behind a real threaded HTTP server on loopback."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@contextmanager
def worker_process(app, database_url, redis_url, smtp_port, tmp_path):
    """``python worker.py`` as deployed, sharing the test's database, Redis and keys."""
    env = process_env(
        app,
        database_url,
        redis_url,
        tmp_path / "worker-instance",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_USE_TLS="0",
        MAIL_USE_SSL="0",
    )
    process = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _booking_body(world, start) -> dict:
    return {
        "booking_type": "review",
        "start": start.isoformat(),
        "people": [world.agent.id],
        "learner": world.learner.id,
        "location_mode": "remote",
        "location_detail": "https://meet.example.test/room",
    }


def _timed(method, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = method(url, timeout=60, **kwargs)
    return response, time.monotonic() - started


def _outbox_state(app) -> tuple[int, int, list[tuple]]:
    """(rows not done, notify.email rows, their recipients)."""
    with app.app_context():
        not_done = db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != DONE)
        )
        emails = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "notify.email")
        ).all()
        recipients = sorted((m.id, m.payload["to"]) for m in emails)
        db.session.rollback()
    return not_done, len(emails), recipients


def test_api_writes_finish_at_once_while_smtp_hangs_and_every_mail_goes_out_after(
    app, world, database_url, redis_url, mailbox, hanging_smtp, tmp_path
):
    """20 API writes (each followed by a read) while the worker is stuck in an SMTP
    conversation: each under a second; after the server answers, every mail arrives."""
    day = winter_monday()
    starts = [london(day + timedelta(days=d), h) for d in range(3) for h in range(9, 17)]
    headers = {"Authorization": f"Bearer {world.tokens[world.manager.id]}"}

    with (
        live_server(app) as base,
        worker_process(app, database_url, redis_url, hanging_smtp.port, tmp_path) as worker,
    ):
        # One booking first, so the worker is inside a hanging SMTP conversation …
        first = requests.post(
            f"{base}/api/v1/bookings", json=_booking_body(world, starts[0]), headers=headers
        )
        assert first.status_code == 201, first.text
        assert hanging_smtp.held.wait(90), "the worker never connected to SMTP"

        # … while these writes and reads happen.
        timings: list[tuple[str, float]] = []
        for n, start in enumerate(starts[1 : WRITES + 1], 1):
            created, took = _timed(
                requests.post,
                f"{base}/api/v1/bookings",
                json=_booking_body(world, start),
                headers=headers,
            )
            assert created.status_code == 201, created.text
            timings.append((f"write {n}", took))
            read, took = _timed(
                requests.get, f"{base}/api/v1/bookings/{created.json()['id']}", headers=headers
            )
            assert read.status_code == 200, read.text
            timings.append((f"read {n}", took))
        assert worker.poll() is None, worker.stdout.read()[-3000:]
        assert mailbox.messages == [], "SMTP answered before the writes were done"
        slow = [(label, round(took, 2)) for label, took in timings if took >= LIMIT_SECONDS]
        assert not slow, f"requests that waited on SMTP: {slow}"

        hanging_smtp.release()
        deadline = time.monotonic() + 240  # a send that timed out waits out its back-off
        while (state := _outbox_state(app))[0] and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read()[-3000:]
            time.sleep(0.5)

    not_done, email_rows, recipients = state
    assert not_done == 0, f"{not_done} outbox row(s) never delivered"
    assert email_rows == 2 * (WRITES + 1)  # the agent and the learner of each booking
    received = mailbox.messages
    assert len(received) == email_rows  # every one, none twice
    assert len({m.message["Message-ID"] for m in received}) == email_rows
    assert sorted(a for m in received for a in m.to) == sorted(to for _, to in recipients)
